#include "locks/one_shot.h"

#include <stdio.h>
#include <string.h>

#include "locks/granted.h"
#include "store/locks_sql.h"

/* The pending token as the events' JSON text has it (compact, so with no
 * space after the colon). It cannot occur inside a JSON string: there its
 * quotes would be escaped. */
static void pending_token_text(char *buf, size_t cap)
{
    snprintf(buf, cap, "\"fencing_token\":%lld", (long long)OMS_LOCK_TOKEN_PENDING);
}

void oms_lock_acquire_predict(int64_t ttl_s, oms_lock_change *out)
{
    out->lock.fencing_token = OMS_LOCK_TOKEN_PENDING;
    out->status = 201;
    out->detail = oms_lock_acquire_detail(&out->lock, ttl_s);
}

int oms_lock_acquire_send(oms_dbconn *c, const oms_lock_change *chg, int64_t ttl_s, int64_t acl_version,
                          const oms_dbparam *audit, const oms_dbparam *event, oms_dbres **rows, oms_error *err)
{
    oms_lock_row_new row;
    oms_lock_acquire_row(&chg->lock, ttl_s, &row);
    char pending[64];
    pending_token_text(pending, sizeof pending);
    /* under the branch's lock, as the usual step: the statement after it
     * sees every acquisition committed before (docs/locks.md) */
    int rc = oms_store_lock_branch_xact(c, row.branch, false, err);
    return rc ? rc : oms_store_lock_acquire_one_shot(c, &row, acl_version, pending, audit, event, rows, err);
}

bool oms_lock_acquire_made(const oms_dbres *rows, int64_t ttl_s, oms_lock_change *out)
{
    if (!rows || rows->nrows != 1)
        return false;
    int64_t now = oms_dbres_int(rows, 0, 0);
    oms_lock_granted(&out->lock, now, oms_dbres_int(rows, 0, 1), ttl_s);
    out->now = now;
    return true;
}

bool oms_lock_release_predict(oms_ctx *ctx, const char *id, const char *reason, oms_lock_change *out)
{
    oms_lock l;
    if (!ctx->sub || !oms_locks_granted_recall(id, ctx->arena, &l) || strcmp(l.holder, ctx->sub) != 0)
        return false;
    out->lock = l;
    out->status = 200;
    out->detail = oms_lock_release_detail(&l, reason);
    return true;
}

int oms_lock_release_send(oms_dbconn *c, const oms_lock_change *chg, int64_t acl_version, const oms_dbparam *audit,
                          const oms_dbparam *event, oms_dbres **rows, oms_error *err)
{
    const oms_lock *l = &chg->lock;
    return oms_store_lock_release_one_shot(c, l->id, l->holder, l->branch, l->fencing_token, acl_version, audit,
                                           event, rows, err);
}

bool oms_lock_release_made(oms_ctx *ctx, const oms_dbres *rows, oms_lock_change *out)
{
    if (!rows || rows->nrows != 1)
        return false;
    out->now = oms_dbres_int(rows, 0, 0);
    oms_lock_from_row(&out->lock, rows, 0, 1, ctx->arena);
    oms_locks_granted_forget(out->lock.id);
    return true;
}
