#include "locks/lock_check.h"

#include <stdio.h>
#include <string.h>

#include "auth/principal.h"
#include "governance/overrides.h"
#include "locks/locks.h"
#include "store/locks_sql.h"
#include "store/store.h"
#include "infra/metrics.h"

#define MAX_OWN_LOCKS OMS_LOCK_READS_MAX_OWN
#define MAX_BLOCKED_LISTED 100

/* Reads are never blocked (SPEC §7). A read route has no audit action, and a
 * handler that knows better (dry-run validation) clears its own. */
static bool is_read(const oms_ctx *ctx)
{
    return ctx->route && !ctx->route_action;
}

/* X-Lock-ID: one lock id, or several separated by commas (a batch touching
 * two locked regions). */
static int parse_own_ids(oms_ctx *ctx, const char **ids, size_t *n, oms_error *err)
{
    *n = 0;
    const char *h = ctx->lock_id;
    if (!h)
        return OMS_OK;
    char *copy = oms_arena_strdup(ctx->arena, h);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t len = strlen(t);
        while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
            t[--len] = '\0';
        if (!oms_lock_id_valid(t) || *n == MAX_OWN_LOCKS)
            return oms_err_set(err, OMS_EINVAL, "X-Lock-ID must name at most %d lock ids (lck_ + 32 hex digits)",
                               MAX_OWN_LOCKS);
        ids[(*n)++] = t;
    }
    if (*n == 0)
        return oms_err_set(err, OMS_EINVAL, "X-Lock-ID is empty");
    return OMS_OK;
}

/* Fencing: every lock the request writes under must still be live and held
 * by the caller, judged by the database clock inside the write's own
 * transaction. On PostgreSQL the row is share-locked so a concurrent
 * release, expiry or forced release waits until this write has committed.
 *
 * Whose lock it is comes first: another principal's lock id never gave the
 * caller any right, live or not, so it is a refusal of authority (403
 * not_lock_holder, as for a heartbeat), not fencing. Only the caller's own
 * lock that ended is 409 lock_expired: a holder that lost its lock learns
 * it must stop. The holder is compared exactly, as the issuer wrote the
 * subject: a case-variant of the holder's name is someone else
 * (docs/security.md). */
static int judge_own_lock(oms_ctx *ctx, const char *id, const oms_dbres *r, json_t **extra, oms_error *err)
{
    int rc = OMS_OK;
    const char *sub = ctx->principal && ctx->principal->sub ? ctx->principal->sub : "";
    if (r->nrows == 0) {
        *extra = json_pack("{s:s,s:s}", "lock_id", id, "lock_state", "unknown");
        rc = oms_err_set(err, OMS_ELOCKLOST, "X-Lock-ID %s names no lock", id);
    } else {
        oms_lock l;
        int64_t now = oms_dbres_int(r, 0, 0);
        oms_lock_from_row(&l, r, 0, 1, ctx->arena);
        if (strcmp(l.holder, sub) != 0) {
            *extra = json_pack("{s:s,s:s,s:s}", "lock_id", id, "lock_state", "not_holder", "holder", l.holder);
            rc = oms_err_set(err, OMS_ELOCKNOTHOLDER, "lock %s is held by %s, not by you: its id gives no right to"
                             " write", id, l.holder);
        } else if (!oms_lock_live(&l, now)) {
            *extra = json_pack("{s:s,s:s,s:o}", "lock_id", id, "lock_state", oms_lock_effective_state(&l, now),
                               "lock", oms_lock_json(&l, now));
            rc = oms_err_set(err, OMS_ELOCKLOST, "lock %s is %s: writes under it are refused (fencing)", id,
                             oms_lock_effective_state(&l, now));
        }
    }
    return rc;
}

static int check_own_lock(oms_dbconn *c, oms_ctx *ctx, const char *id, json_t **extra, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_lock_load(c, id, false, true, &r, err);
    if (rc == OMS_OK)
        rc = judge_own_lock(ctx, id, r, extra, err);
    oms_dbres_free(r);
    return rc;
}

/* An approved `lock` emergency override (SPEC §6.4), attached with
 * X-Override-ID by its requester, lets one write through other holders'
 * locks on its branch (only its resource, when it names one). Marking it
 * needed here makes the write path consume it (state `used`, once, with the
 * override_used alert) in this same transaction. It never revives a lapsed
 * lock of the caller's own: fencing is checked before. */
static bool lock_override_admits(oms_ctx *ctx, const char *branch, const char *const *resources, size_t n)
{
    return oms_override_permits(ctx, "lock", branch, resources, n);
}

static int64_t ceil_seconds(int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

/* The 423 problem members: the blocking locks, an ETA, what can still be
 * written, and Retry-After (header and member). */
static json_t *locked_problem(oms_ctx *ctx, const char *branch, const oms_lock *locks, size_t n, int64_t now,
                              const char *const *resources, size_t nres)
{
    json_t *list = json_array(), *patterns = json_array(), *blocked = json_array();
    int64_t retry = 1, eta_max = 0;
    bool eta_known = true, whole_branch = false;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, oms_lock_json(&locks[i], now));
        json_array_append_new(patterns, json_string(oms_lock_pattern(&locks[i], ctx->arena)));
        whole_branch = whole_branch || !strcmp(locks[i].scope, "branch");
        int64_t eta, until_end = ceil_seconds(locks[i].deadline_at - now), wait = until_end;
        if (oms_lock_eta_seconds(&locks[i], now, &eta)) {
            eta_max = eta > eta_max ? eta : eta_max;
            wait = eta < until_end ? eta : until_end;
        } else {
            eta_known = false;
        }
        retry = wait > retry ? wait : retry;
    }
    for (size_t i = 0; i < nres && json_array_size(blocked) < MAX_BLOCKED_LISTED; i++)
        for (size_t k = 0; k < n; k++)
            if (oms_lock_covers(&locks[k], resources[i])) {
                json_array_append_new(blocked, json_string(resources[i]));
                break;
            }
    const char *writable;
    if (whole_branch) {
        writable = oms_arena_printf(ctx->arena, "nothing on branch %s until the lock ends; every other branch", branch);
    } else {
        char *joined = oms_arena_strdup(ctx->arena, "");
        for (size_t i = 0; i < json_array_size(patterns); i++)
            joined = oms_arena_printf(ctx->arena, "%s%s%s", joined, i ? ", " : "",
                                      json_string_value(json_array_get(patterns, i)));
        writable = oms_arena_printf(ctx->arena, "resources outside %s on branch %s; every other branch", joined, branch);
    }
    /* The locks once, under `locks` (SPEC §7), and how their holder writes. */
    const char *holder_hint = oms_arena_printf(ctx->arena,
                                               "the holder of a lock writes through it with the header X-Lock-ID: %s",
                                               n ? locks[0].id : "<lock id>");
    return json_pack("{s:o,s:o,s:s,s:o,s:o,s:I,s:s}", "locks", list, "eta_seconds",
                     eta_known ? json_integer(eta_max) : json_null(), "writable", writable, "locked", patterns,
                     "blocked_resources", blocked, "retry_after_seconds", (json_int_t)retry, "holder_writes_with",
                     holder_hint);
}

/* The route's declared key (its key spec, set by the change transaction on
 * ctx) joins the resources the step reports when the check is on the
 * change's branch: one check, in the change's transaction, covers both, so
 * a step that forgets to report its route's resource is still refused. */
static const char *const *with_declared_key(oms_ctx *ctx, const char *branch, const char *const *resources,
                                            size_t *n)
{
    static const char *const whole[] = {OMS_LOCK_WHOLE_BRANCH};
    if (!ctx->touch_key || !ctx->touch_branch || strcmp(branch, ctx->touch_branch) != 0)
        return resources;
    ctx->touch_checked = true;
    if (!strcmp(ctx->touch_key, OMS_LOCK_WHOLE_BRANCH) || (*n == 1 && !strcmp(resources[0], OMS_LOCK_WHOLE_BRANCH))) {
        *n = 1;
        return whole;
    }
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(resources[i], ctx->touch_key))
            return resources;
    const char **all = oms_arena_alloc(ctx->arena, (*n + 1) * sizeof *all);
    for (size_t i = 0; i < *n; i++)
        all[i] = resources[i];
    all[(*n)++] = ctx->touch_key;
    return all;
}

/* The verdict on the live locks of the branch (`r`: oms_store_locks_live_on_branch's rows). */
static int judge_live(oms_ctx *ctx, const char *branch, const char *const *resources, size_t n,
                      const char *const *own, size_t nown, const oms_dbres *r, oms_error *err)
{
    oms_lock *blocking = r->nrows ? oms_arena_alloc(ctx->arena, r->nrows * sizeof *blocking) : NULL;
    size_t nblocking = 0;
    int64_t now = r->nrows ? oms_dbres_int(r, 0, 0) : 0;
    for (size_t i = 0; i < r->nrows; i++) {
        oms_lock *l = &blocking[nblocking];
        oms_lock_from_row(l, r, i, 1, ctx->arena);
        bool mine = false;
        for (size_t k = 0; k < nown; k++)
            mine = mine || strcmp(own[k], l->id) == 0;
        if (mine)
            continue;
        /* A branch lock covers every change to its branch, even one that
         * touches no resource (an empty merge commit still moves the head). */
        bool covers = !strcmp(l->scope, "branch") || (n == 1 && !strcmp(resources[0], OMS_LOCK_WHOLE_BRANCH));
        for (size_t k = 0; k < n && !covers; k++)
            covers = oms_lock_covers(l, resources[k]);
        if (covers)
            nblocking++;
    }
    if (nblocking == 0 || lock_override_admits(ctx, branch, resources, n))
        return OMS_OK;
    oms_metrics_lock_wait(OMS_LOCKWAIT_WRITE);
    oms_ctx_problem_extra(ctx, locked_problem(ctx, branch, blocking, nblocking, now, resources, n));
    return oms_err_set(err, OMS_ELOCKED, "%s on branch %s is locked by %s (%s): %s; the holder writes with X-Lock-ID: %s",
                       nblocking == 1 ? oms_lock_pattern(&blocking[0], ctx->arena) : "part of the change", branch,
                       blocking[0].holder, blocking[0].kind, blocking[0].reason, blocking[0].id);
}

int oms_lock_check_write(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *const *resources, size_t n,
                         oms_error *err)
{
    return oms_lock_check_write_with(c, ctx, NULL, branch, resources, n, err);
}

int oms_lock_check_read_ahead(oms_dbconn *c, oms_ctx *ctx, const char *branch, oms_lock_reads *r, oms_error *err)
{
    memset(r, 0, sizeof *r);
    if (is_read(ctx))
        return OMS_OK;
    const char *own[MAX_OWN_LOCKS];
    size_t nown = 0;
    oms_error ignored;
    if (parse_own_ids(ctx, own, &nown, &ignored) != OMS_OK)
        return OMS_OK; /* the check itself refuses the header, in its turn */
    int rc = oms_store_lock_check_reads_later(c, branch, own, nown, r->own_rows, &r->live, err);
    if (rc == OMS_OK) {
        r->branch = branch;
        r->nown = nown;
    }
    return rc;
}

bool oms_lock_reads_assume_none(const oms_ctx *ctx, const char *branch, oms_lock_reads *r)
{
    memset(r, 0, sizeof *r);
    if (ctx->lock_id)
        return false;
    r->branch = branch;
    r->none_live = true;
    return true;
}

bool oms_lock_reads_found_none(const oms_lock_reads *r)
{
    return r->branch && (r->none_live || (r->live && r->live->nrows == 0));
}

void oms_lock_reads_free(oms_lock_reads *r)
{
    for (size_t i = 0; i < OMS_LOCK_READS_MAX_OWN; i++)
        oms_dbres_free(r->own_rows[i]);
    oms_dbres_free(r->live);
    memset(r, 0, sizeof *r);
}

int oms_lock_check_write_with(oms_dbconn *c, oms_ctx *ctx, oms_lock_reads *ahead, const char *branch,
                              const char *const *resources, size_t n, oms_error *err)
{
    json_t *extra_ = NULL, **extra = &extra_;
    if (is_read(ctx))
        return OMS_OK;
    resources = with_declared_key(ctx, branch, resources, &n);
    const char *own[MAX_OWN_LOCKS];
    size_t nown = 0;
    oms_dbres *r = NULL;
    int rc = parse_own_ids(ctx, own, &nown, err);
    if (rc)
        return rc;
    /* Read ahead with the branch row (the same reads, in the same order,
     * sent earlier in this transaction): only its verdict is left. */
    bool have = ahead && ahead->branch && (ahead->live || ahead->none_live) && ahead->nown == nown &&
                strcmp(ahead->branch, branch) == 0;
    for (size_t i = 0; have && i < nown; i++)
        have = ahead->own_rows[i] != NULL;
    if (have && ahead->none_live) /* nothing live, nothing named: nothing blocks */
        return OMS_OK;
    if (have) {
        for (size_t i = 0; i < nown; i++)
            if ((rc = judge_own_lock(ctx, own[i], ahead->own_rows[i], extra, err))) {
                oms_ctx_problem_extra(ctx, *extra);
                return rc;
            }
        return judge_live(ctx, branch, resources, n, own, nown, ahead->live, err);
    }
    /* Shared against the exclusive lock every acquisition on this branch
     * takes: an acquisition waits for writes that already passed this check
     * and writes wait for an acquisition in flight, so no write commits
     * after a lock that covers it was granted (docs/locks.md). */
    if ((rc = oms_store_lock_branch_xact(c, branch, true, err)))
        return rc;
    for (size_t i = 0; i < nown; i++)
        if ((rc = check_own_lock(c, ctx, own[i], extra, err))) {
            oms_ctx_problem_extra(ctx, *extra);
            return rc;
        }

    if ((rc = oms_store_locks_live_on_branch(c, branch, &r, err)))
        return rc;
    rc = judge_live(ctx, branch, resources, n, own, nown, r, err);
    oms_dbres_free(r);
    return rc;
}
