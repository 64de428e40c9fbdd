/* Sealing rounds (docs/audit.md "Chain" and "Checkpoints"): every ~250 ms
 * one round chains the events that committed since the last round
 * (chainer.c) and seals the chain up to its new tip with a checkpoint
 * {id, kind, from_seq, upto_seq (chain positions), chain_hash, event_count,
 * time, sealed_by, detail, prev_hmac} signed with
 * HMAC-SHA256(OMS_AUDIT_KEY), in one transaction. Ids are 1, 2, 3, ... and
 * each names its predecessor's hmac, so a removed or forged checkpoint is
 * found too. On PostgreSQL exactly one instance runs a round at a time: the
 * round's transaction holds a transaction-scoped advisory lock, taken with
 * try, so the others skip that round instead of waiting. On SQLite the
 * round's write transaction serialises it. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "infra/log.h"
#include "store/audit_sql.h"
#include "util/alloc.h"
#include "util/time.h"

/* Positions one round chains and seals at most; a backlog takes several
 * rounds (at 4 rounds a second, 40,000 events a second). */
#define SEAL_MAX_EVENTS 10000

const char *oms_audit_instance(void)
{
    static char name[128];
    if (!name[0]) {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
    }
    return name;
}

void oms_audit_checkpoint_from_row(oms_audit_checkpoint *cp, const oms_dbres *r, size_t row)
{
    memset(cp, 0, sizeof *cp);
    const char *s;
    cp->id = oms_dbres_int(r, row, OMS_AUDIT_CP_COL_ID);
    snprintf(cp->kind, sizeof cp->kind, "%s", (s = oms_dbres_get(r, row, OMS_AUDIT_CP_COL_KIND)) ? s : "");
    cp->from_seq = oms_dbres_int(r, row, OMS_AUDIT_CP_COL_FROM);
    cp->upto_seq = oms_dbres_int(r, row, OMS_AUDIT_CP_COL_UPTO);
    snprintf(cp->chain_hash, sizeof cp->chain_hash, "%s",
             (s = oms_dbres_get(r, row, OMS_AUDIT_CP_COL_CHAIN_HASH)) ? s : "");
    cp->event_count = oms_dbres_int(r, row, OMS_AUDIT_CP_COL_COUNT);
    cp->time_ms = oms_dbres_int(r, row, OMS_AUDIT_CP_COL_TIME);
    snprintf(cp->sealed_by, sizeof cp->sealed_by, "%s", (s = oms_dbres_get(r, row, OMS_AUDIT_CP_COL_SEALED_BY)) ? s : "");
    s = oms_dbres_get(r, row, OMS_AUDIT_CP_COL_DETAIL);
    cp->detail = s ? oms_xstrdup(s) : NULL;
    snprintf(cp->prev_hmac, sizeof cp->prev_hmac, "%s", (s = oms_dbres_get(r, row, OMS_AUDIT_CP_COL_PREV_HMAC)) ? s : "");
    snprintf(cp->hmac, sizeof cp->hmac, "%s", (s = oms_dbres_get(r, row, OMS_AUDIT_CP_COL_HMAC)) ? s : "");
}

void oms_audit_checkpoint_clear(oms_audit_checkpoint *cp)
{
    free(cp->detail);
    cp->detail = NULL;
}

static void add_field(unsigned char **buf, size_t *len, size_t *cap, const char *s)
{
    char pre[32];
    size_t n = s ? strlen(s) : 0;
    int pl = s ? snprintf(pre, sizeof pre, "|%zu:", n) : snprintf(pre, sizeof pre, "|~");
    if (*len + (size_t)pl + n > *cap) {
        while (*len + (size_t)pl + n > *cap)
            *cap = *cap ? *cap * 2 : 512;
        *buf = oms_xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, pre, (size_t)pl);
    *len += (size_t)pl;
    if (n)
        memcpy(*buf + *len, s, n);
    *len += n;
}

bool oms_audit_checkpoint_hmac(char out[65], const oms_audit_checkpoint *cp)
{
    char id[24], from[24], upto[24], count[24], t[24];
    snprintf(id, sizeof id, "%lld", (long long)cp->id);
    snprintf(from, sizeof from, "%lld", (long long)cp->from_seq);
    snprintf(upto, sizeof upto, "%lld", (long long)cp->upto_seq);
    snprintf(count, sizeof count, "%lld", (long long)cp->event_count);
    snprintf(t, sizeof t, "%lld", (long long)cp->time_ms);
    const char *fields[] = {id, cp->kind, from, upto, cp->chain_hash, count, t, cp->sealed_by, cp->detail,
                            cp->prev_hmac};
    static const char k_tag[] = "oms-audit-checkpoint/1";
    size_t cap = 512, len = sizeof k_tag - 1;
    unsigned char *buf = oms_xmalloc(cap);
    memcpy(buf, k_tag, len);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        add_field(&buf, &len, &cap, fields[i]);
    bool ok = oms_audit_hmac_hex(out, buf, len);
    free(buf);
    return ok;
}

int oms_audit_checkpoint_insert(oms_dbconn *c, oms_audit_checkpoint *cp, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_audit_checkpoint_last(c, &r, err);
    if (rc)
        return rc;
    cp->id = r->nrows ? oms_dbres_int(r, 0, 0) + 1 : 1;
    snprintf(cp->prev_hmac, sizeof cp->prev_hmac, "%s", r->nrows ? oms_dbres_get(r, 0, 1) : AUDIT_GENESIS);
    oms_dbres_free(r);
    snprintf(cp->sealed_by, sizeof cp->sealed_by, "%s", oms_audit_instance());
    if (!oms_audit_may_sign() || !oms_audit_checkpoint_hmac(cp->hmac, cp))
        return oms_err_set(err, OMS_ECONFIG, "no audit key: cannot sign a checkpoint");
    oms_store_audit_checkpoint_row row = {
        .id = cp->id, .kind = cp->kind, .from_pos = cp->from_seq, .upto_pos = cp->upto_seq,
        .chain_hash = cp->chain_hash, .event_count = cp->event_count, .time_ms = cp->time_ms,
        .sealed_by = cp->sealed_by, .detail = cp->detail, .prev_hmac = cp->prev_hmac, .hmac = cp->hmac};
    return oms_store_audit_checkpoint_insert(c, &row, err);
}

/* Where sealing resumes: the checkpoint (seal or archive) that reaches
 * furthest, or the genesis. */
static int frontier(oms_dbconn *c, int64_t *upto, char hash[65], oms_error *err)
{
    bool found;
    int rc = oms_store_audit_checkpoint_frontier(c, &found, upto, hash, err);
    if (rc == OMS_OK && !found)
        snprintf(hash, 65, "%s", AUDIT_GENESIS);
    return rc;
}

/* The common round finds nothing to do: answer that without a transaction
 * (no write lock on SQLite, no advisory lock on PostgreSQL). Work is a
 * queued event that exists, or chain positions beyond the last checkpoint
 * (left by the version-8 migration). */
static int idle(oms_dbconn *c, bool *out, oms_error *err)
{
    bool queued;
    int64_t chain_end, legacy_upto, sealed;
    int rc = oms_store_audit_seal_state(c, &queued, &chain_end, &legacy_upto, &sealed, err);
    if (rc)
        return rc;
    *out = !queued && chain_end <= sealed && legacy_upto <= sealed;
    return OMS_OK;
}

static int64_t g_logged_bad_pos = -1; /* tampering seen by the sealer, logged once */

int oms_audit_seal(oms_store *s, int64_t *sealed_upto, oms_error *err)
{
    if (sealed_upto)
        *sealed_upto = 0;
    if (!oms_audit_may_sign())
        return oms_err_set(err, OMS_ECONFIG, "no audit key that signed this database's checkpoints: cannot seal");
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    bool nothing = false;
    if (rc == OMS_OK)
        rc = idle(c, &nothing, err);
    if (rc || nothing)
        return rc;
    if ((rc = oms_db_begin(c, true, err)))
        return rc;
    bool got = false;
    if ((rc = oms_store_audit_seal_try_lock(c, &got, err)) || !got)
        goto done; /* another instance runs this round */
    int64_t upto, legacy_upto, appended = 0;
    char hash[65];
    bool broken = false;
    oms_audit_walk w;
    if ((rc = frontier(c, &upto, hash, err)) || (rc = oms_audit_legacy_upto(c, &legacy_upto, err)))
        goto done;
    /* Positions beyond the last checkpoint are re-checked before they are
     * signed (normally there are none: chaining and sealing commit
     * together). A row that does not check out is never sealed, and
     * nothing is chained after it: verification reports it. */
    oms_audit_walk_init(&w, legacy_upto, upto, hash);
    if ((rc = oms_audit_walk_db(c, &w, 0, SEAL_MAX_EVENTS, NULL, NULL, &broken, err)))
        goto done;
    if (broken) {
        if (w.bad_pos != g_logged_bad_pos) {
            g_logged_bad_pos = w.bad_pos;
            oms_log_write(OMS_LOG_ERROR, NULL, NULL,
                          "audit chain broken at position %lld (seq %lld: %s): nothing is chained or sealed after it;"
                          " run oms audit verify",
                          (long long)w.bad_pos, (long long)w.bad_seq, w.reason);
        }
        goto done;
    }
    if (w.count < SEAL_MAX_EVENTS && (rc = oms_audit_chain_queued(c, &w, SEAL_MAX_EVENTS - w.count, &appended, err)))
        goto done;
    if (w.last_pos > upto) {
        oms_audit_checkpoint cp = {.kind = "seal", .from_seq = upto + 1, .upto_seq = w.last_pos,
                                   .event_count = w.count, .time_ms = oms_now_ms()};
        memcpy(cp.chain_hash, w.prev, sizeof cp.chain_hash);
        if ((rc = oms_audit_checkpoint_insert(c, &cp, err)))
            goto done;
    }
    if ((rc = oms_db_commit(c, err)))
        return rc;
    if (sealed_upto)
        *sealed_upto = w.last_pos > upto ? w.last_pos : 0;
    return OMS_OK;
done:
    if (oms_db_in_tx(c))
        oms_db_rollback(c);
    return rc;
}

void oms_audit_seal_run(oms_store *s)
{
    static int64_t last_error_log;
    oms_error err;
    if (oms_audit_seal(s, NULL, &err) != OMS_OK) {
        if (err.code == OMS_EDB)
            oms_db_conn_reset(s->db);
        int64_t now = oms_now_ms();
        if (now - last_error_log > 10000) { /* at most one line per 10 s */
            last_error_log = now;
            oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit sealing failed: %s", err.msg);
        }
    }
}
