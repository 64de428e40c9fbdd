/* The process's shared ACL set and its refresh (see acl_store.h).
 *
 * Sharing: the newest set is published in g_cur under g_pub_mu, holding
 * one reference. Each worker thread also keeps a reference to the set it
 * last used (tl_set), so the common case, "my set is as new as the
 * database", touches no shared cache line at all: no lock, no atomic. A
 * thread looks at g_cur only when the database is ahead of its set (or a
 * newer set may be published); when g_cur is behind too, the first thread
 * to take g_load_mu reloads from the database, the others pick the
 * published set up. g_pub_mu is never held across a database read, so
 * taking it never waits for a load, and it is taken only when
 * g_pub_version (read-mostly: written when a set is published) says a
 * newer set is there. Old sets are freed when
 * the last thread holding them moves on (or exits: a thread-key destructor
 * drops its reference). */
#include "auth/acl_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "auth/rbac.h"
#include "store/acl_sql.h"
#include "store/freshness.h"
#include "store/store.h"

static pthread_mutex_t g_load_mu = PTHREAD_MUTEX_INITIALIZER; /* one load from the database at a time */
static pthread_mutex_t g_pub_mu = PTHREAD_MUTEX_INITIALIZER;  /* guards g_cur only */
static oms_acl *g_cur; /* guarded by g_pub_mu; owns one reference */
/* g_cur's version, written with it under g_pub_mu and read without: a
 * thread asking whether a newer set is published (every one-statement lock
 * change does) reads a line written only when a set is published, and
 * takes g_pub_mu only when the answer is yes. */
static _Atomic int64_t g_pub_version = INT64_MIN;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key; /* the thread's reference, released when it exits */
static _Thread_local oms_acl *tl_set;

static void thread_exit(void *p) { oms_acl_unref(p); }
static void make_key(void) { pthread_key_create(&g_key, thread_exit); }

int oms_acl_db_version(oms_dbconn *c, int64_t *out, oms_error *err) { return oms_store_acl_version(c, out, err); }

int oms_acl_db_bump(oms_dbconn *c, oms_error *err)
{
    int64_t n = 0;
    int rc = oms_store_acl_bump(c, &n, err);
    if (rc == OMS_OK && n != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    return rc;
}

/* One statement, so the version and the rows come from one snapshot even
 * under PostgreSQL's READ COMMITTED; with no policy the LEFT JOIN still
 * yields the version row (with a NULL id). */
int oms_acl_db_load(oms_dbconn *c, const void *owner, oms_acl **out, oms_error *err)
{
    oms_dbres *r = NULL;
    oms_acl *a = NULL;
    int rc = oms_store_acl_load_all(c, &r, err);
    if (rc)
        goto cleanup;
    if (r->nrows == 0) {
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
        goto cleanup;
    }
    if (!(a = oms_acl_new(oms_dbres_int(r, 0, 0), owner))) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < r->nrows; i++) {
        if (!oms_dbres_get(r, i, 1))
            continue;
        /* A stored policy that no longer compiles fails every decision
         * rather than being skipped: skipping a deny would fail open. */
        if ((rc = oms_acl_add(a, oms_dbres_get(r, i, 1), oms_dbres_get(r, i, 2), oms_dbres_get(r, i, 3),
                              oms_dbres_get(r, i, 4), oms_dbres_get(r, i, 5), err))) {
            rc = oms_err_set(err, OMS_EINTERNAL, "stored ACL policy %.40s does not compile",
                             oms_dbres_get(r, i, 1));
            goto cleanup;
        }
    }
    if ((rc = oms_acl_seal(a))) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    *out = a;
    a = NULL;
cleanup:
    oms_acl_unref(a);
    oms_dbres_free(r);
    return rc;
}

/* A reference to the published set when it is of `owner` and at least
 * `version`; NULL otherwise. */
static oms_acl *published_at_least(const void *owner, int64_t version)
{
    if (atomic_load_explicit(&g_pub_version, memory_order_relaxed) < version)
        return NULL;
    pthread_mutex_lock(&g_pub_mu);
    oms_acl *cur = g_cur && oms_acl_owner(g_cur) == owner && oms_acl_version(g_cur) >= version ? oms_acl_ref(g_cur)
                                                                                             : NULL;
    pthread_mutex_unlock(&g_pub_mu);
    return cur;
}

/* `set` (a reference the caller gives up) becomes the thread's. */
static void keep_for_thread(oms_acl *set)
{
    pthread_once(&g_once, make_key);
    oms_acl_unref(tl_set);
    tl_set = set;
    pthread_setspecific(g_key, set);
}

/* The calling thread's set, at least as new as `version`; borrowed until
 * the thread's next call. */
static int thread_set(oms_dbconn *c, const void *owner, int64_t version, const oms_acl **out, oms_error *err)
{
    oms_acl *mine = tl_set;
    if (mine && oms_acl_owner(mine) == owner && oms_acl_version(mine) >= version) {
        *out = mine;
        return OMS_OK;
    }
    oms_acl *cur = published_at_least(owner, version);
    if (!cur) {
        pthread_mutex_lock(&g_load_mu);
        if (!(cur = published_at_least(owner, version))) { /* no other thread loaded it meanwhile */
            oms_acl *fresh = NULL;
            int rc = oms_acl_db_load(c, owner, &fresh, err);
            if (rc) {
                pthread_mutex_unlock(&g_load_mu);
                return rc;
            }
            pthread_mutex_lock(&g_pub_mu);
            oms_acl_unref(g_cur);
            g_cur = fresh;
            atomic_store_explicit(&g_pub_version, oms_acl_version(fresh), memory_order_relaxed);
            cur = oms_acl_ref(fresh);
            pthread_mutex_unlock(&g_pub_mu);
        }
        pthread_mutex_unlock(&g_load_mu);
    }
    keep_for_thread(cur);
    *out = cur;
    return OMS_OK;
}

/* The ACL version and the branch's head in one round trip: a read of a
 * branch needs both, fresh, and on PostgreSQL a round trip is the cost.
 * Concurrent requests for one branch share a read that started after they
 * arrived (src/store/freshness.h). */
static int version_and_head(oms_ctx *ctx, oms_dbconn *c, const char *branch, int64_t *version, oms_error *err)
{
    int setting = -1;
    int rc = oms_store_fresh_version_and_head(c, branch, version, ctx->branch_head, &setting, err);
    if (rc == OMS_OK) {
        ctx->issue_setting = setting;
        ctx->issue_setting_branch = branch;
    }
    return rc;
}

/* The request whose version check this thread made last: a second
 * decision in the same request (a handler's own check) reuses it, so the
 * version is read at most once per request. The request is its context:
 * the context's arena forgets it when the request ends (before the context
 * can be reused for another request); a context without an arena is always
 * checked. */
typedef struct {
    _Atomic(const oms_ctx *) owner;
} checked_req;
static _Thread_local checked_req tl_checked;

typedef struct {
    checked_req *slot;
    const oms_ctx *ctx;
} forget_arg;

/* Runs when the request's arena is freed (on whatever thread): forgets the
 * request unless the slot's thread has moved on to another one. */
static void forget_request(void *p)
{
    forget_arg *f = p;
    const oms_ctx *expect = f->ctx;
    atomic_compare_exchange_strong(&f->slot->owner, &expect, NULL);
}

static const oms_principal k_nobody;

/* Leaves the decision to the change transaction (ctx->acl_deferred) when
 * the route allows it, the request has not read the version itself, and
 * the thread's set of this database allows it. A refusal is never left:
 * the caller decides it now, at a fresh version, as without deferral. */
static bool defer(oms_ctx *ctx, oms_perm perm, const char *branch, bool route_style, oms_acl_verdict *out)
{
    const oms_acl *set = tl_set;
    if (!ctx->acl_deferred.on || ctx->acl_deferred.settled || ctx->acl_deferred.n == OMS_CTX_DEFERRED_MAX ||
        !ctx->arena || !set || oms_acl_owner(set) != ctx->store->db || atomic_load(&tl_checked.owner) == ctx)
        return false;
    oms_acl_verdict v = oms_acl_decide(set, ctx->principal ? ctx->principal : &k_nobody, perm, branch);
    if (!v.allowed)
        return false;
    size_t i = ctx->acl_deferred.n++;
    ctx->acl_deferred.pending[i].perm = (int)perm;
    ctx->acl_deferred.pending[i].branch = branch ? oms_arena_strdup(ctx->arena, branch) : NULL;
    ctx->acl_deferred.pending[i].route_style = route_style;
    *out = v;
    out->denied_by = NULL;
    return true;
}

static int check(oms_ctx *ctx, oms_perm perm, const char *branch, bool route_style, oms_acl_verdict *out,
                 oms_error *err)
{
    if (defer(ctx, perm, branch, route_style, out))
        return OMS_OK;
    oms_db *db = ctx->store->db;
    const oms_acl *set = tl_set;
    if (!(set && ctx->arena && atomic_load(&tl_checked.owner) == ctx && oms_acl_owner(set) == db)) {
        oms_dbconn *c;
        int64_t version = 0;
        int rc = oms_db_conn(db, &c, err);
        if (rc == OMS_OK && branch && !ctx->branch_head[0])
            rc = version_and_head(ctx, c, branch, &version, err);
        else if (rc == OMS_OK)
            rc = oms_store_fresh_acl_version(c, &version, err);
        if (rc == OMS_OK)
            rc = thread_set(c, db, version, &set, err);
        if (rc)
            return rc;
        if (ctx->arena && atomic_load(&tl_checked.owner) != ctx) {
            forget_arg *f = oms_arena_alloc(ctx->arena, sizeof *f);
            if (f) {
                f->slot = &tl_checked;
                f->ctx = ctx;
                if (oms_arena_on_cleanup(ctx->arena, forget_request, f) == OMS_OK)
                    atomic_store(&tl_checked.owner, ctx);
            }
        }
    }
    *out = oms_acl_decide(set, ctx->principal ? ctx->principal : &k_nobody, perm, branch);
    if (out->denied_by)
        out->denied_by = oms_arena_strdup(ctx->arena, out->denied_by);
    return OMS_OK;
}

int oms_acl_check(oms_ctx *ctx, oms_perm perm, const char *branch, oms_acl_verdict *out, oms_error *err)
{
    return check(ctx, perm, branch, false, out, err);
}

int oms_acl_check_route(oms_ctx *ctx, oms_perm perm, const char *branch, oms_acl_verdict *out, oms_error *err)
{
    return check(ctx, perm, branch, true, out, err);
}

int oms_acl_refusal(oms_ctx *ctx, oms_perm perm, const char *branch, const oms_acl_verdict *v, json_t *extra,
                    oms_error *err)
{
    if (!extra)
        extra = json_object();
    json_object_set_new(extra, "missing_permission", json_string(oms_perm_name(perm)));
    if (v->denied_by)
        json_object_set_new(extra, "denied_by", json_string(v->denied_by));
    oms_ctx_problem_extra(ctx, extra);
    if (!branch)
        return oms_err_set(err, OMS_EFORBIDDEN, "this needs the permission %s", oms_perm_name(perm));
    return oms_err_set(err, OMS_EFORBIDDEN, "this needs the permission %s on branch %s", oms_perm_name(perm), branch);
}

bool oms_acl_deferring(const oms_ctx *ctx) { return ctx->acl_deferred.n > 0 && !ctx->acl_deferred.settled; }

int oms_acl_version_later(oms_dbconn *c, oms_dbres **rows, oms_error *err)
{
    return oms_store_acl_version_later(c, rows, err);
}

/* The version for the settle: the held-back read's row (flushed now if it
 * has not travelled yet), or a read now when none was held back. */
static int settle_version(oms_dbconn *c, oms_dbres **rows, int64_t *version, oms_error *err)
{
    if (!rows)
        return oms_store_acl_version(c, version, err);
    int rc = *rows ? OMS_OK : oms_db_flush(c, err);
    if (rc == OMS_OK && (!*rows || (*rows)->nrows != 1))
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    if (rc == OMS_OK)
        *version = oms_dbres_int(*rows, 0, 0);
    return rc;
}

/* Whether the thread's set is of `db` and at least at `version` (no
 * reload needed). */
static bool thread_set_current(const oms_db *db, int64_t version)
{
    const oms_acl *mine = tl_set;
    return mine && oms_acl_owner(mine) == db && oms_acl_version(mine) >= version;
}

int oms_acl_settle(oms_dbconn *c, oms_ctx *ctx, oms_dbres **rows, oms_error *err)
{
    ctx->acl_deferred.unreadable = false;
    if (ctx->acl_deferred.n == 0) {
        ctx->acl_deferred.settled = true;
        return OMS_OK;
    }
    int64_t version = 0;
    const oms_acl *set = NULL;
    int rc = settle_version(c, rows, &version, err);
    /* A reload's statement would carry what the step held back: their
     * failure is the step's, reported as such, not as the policies'. */
    if (rc == OMS_OK && !thread_set_current(ctx->store->db, version) && (rc = oms_db_flush(c, err)))
        return rc;
    if (rc == OMS_OK)
        rc = thread_set(c, ctx->store->db, version, &set, err);
    if (rc) {
        /* undecided: the checks stay recorded, and a retry settles again */
        ctx->acl_deferred.unreadable = true;
        return rc == OMS_EDB ? rc : oms_err_set(err, OMS_EUNAVAIL, "the ACL policies cannot be read");
    }
    ctx->acl_deferred.settled = true;
    for (size_t i = 0; i < ctx->acl_deferred.n; i++) {
        oms_perm perm = (oms_perm)ctx->acl_deferred.pending[i].perm;
        const char *branch = ctx->acl_deferred.pending[i].branch;
        oms_acl_verdict v = oms_acl_decide(set, ctx->principal ? ctx->principal : &k_nobody, perm, branch);
        if (v.allowed)
            continue;
        if (v.denied_by)
            v.denied_by = oms_arena_strdup(ctx->arena, v.denied_by);
        ctx->acl_deferred.denied = (int)i + 1;
        ctx->acl_deferred.denied_by = v.denied_by;
        return oms_acl_refusal(ctx, perm, branch, &v, NULL, err);
    }
    return OMS_OK;
}

/* The published set in place of the thread's when it is of `db` and at
 * least `version` (never waiting for a load); NULL when it is not (the
 * thread's set stays). */
static const oms_acl *adopt_shared(const oms_db *db, int64_t version)
{
    oms_acl *cur = published_at_least(db, version);
    if (cur)
        keep_for_thread(cur);
    return cur;
}

bool oms_acl_pinned_version(oms_ctx *ctx, int64_t *version)
{
    /* A newer set another thread loaded: a statement pinned to this
     * thread's older one would be refused by the version it checks, and
     * the change would take the usual way for nothing. */
    const oms_acl *mine = tl_set, *shared = adopt_shared(
        ctx->store->db, mine && oms_acl_owner(mine) == ctx->store->db ? oms_acl_version(mine) + 1 : 0);
    if (shared)
        mine = shared;
    if (!mine || oms_acl_owner(mine) != ctx->store->db)
        return false;
    for (size_t i = 0; i < ctx->acl_deferred.n; i++) {
        oms_acl_verdict v = oms_acl_decide(mine, ctx->principal ? ctx->principal : &k_nobody,
                                           (oms_perm)ctx->acl_deferred.pending[i].perm,
                                           ctx->acl_deferred.pending[i].branch);
        if (!v.allowed)
            return false;
    }
    *version = oms_acl_version(mine);
    return true;
}

void oms_acl_settled_pinned(oms_ctx *ctx) { ctx->acl_deferred.settled = true; }

/* The decision at a version read after the request arrived, without
 * waiting for a load: false when neither this thread's set nor the
 * published one is at that version yet (a handler loads it). */
static bool decide_at(oms_ctx *ctx, oms_db *db, oms_perm perm, const char *branch, int64_t version,
                      oms_acl_verdict *out)
{
    const oms_acl *mine = tl_set;
    if (!(mine && oms_acl_owner(mine) == db && oms_acl_version(mine) >= version) &&
        !(mine = adopt_shared(db, version)))
        return false; /* behind: a handler loads the new set */
    *out = oms_acl_decide(mine, ctx->principal ? ctx->principal : &k_nobody, perm, branch);
    if (out->denied_by)
        out->denied_by = oms_arena_strdup(ctx->arena, out->denied_by);
    return true;
}

bool oms_acl_check_now(oms_ctx *ctx, oms_perm perm, const char *branch, oms_acl_verdict *out)
{
    oms_db *db = ctx->store->db;
    oms_dbconn *c;
    oms_error err;
    int64_t version = 0;
    if (!branch || oms_db_conn(db, &c, &err) != OMS_OK || version_and_head(ctx, c, branch, &version, &err) != OMS_OK)
        return false;
    return decide_at(ctx, db, perm, branch, version, out);
}

bool oms_acl_check_read(oms_ctx *ctx, oms_perm perm, const char *branch, const oms_fresh_parked *read,
                        oms_acl_verdict *out)
{
    if (!branch || read->rc != OMS_OK)
        return false;
    snprintf(ctx->branch_head, sizeof ctx->branch_head, "%s", read->head);
    ctx->issue_setting = read->issue_setting;
    ctx->issue_setting_branch = branch;
    return decide_at(ctx, ctx->store->db, perm, branch, read->version, out);
}

int oms_acl_branch_denies(oms_ctx *ctx, oms_perm perm, bool *out, oms_error *err)
{
    oms_acl_verdict v;
    int rc = oms_acl_check(ctx, perm, NULL, &v, err); /* brings the thread's set up to date */
    if (rc == OMS_OK)
        *out = oms_acl_denies_on_some_branch(tl_set, ctx->principal ? ctx->principal : &k_nobody, perm);
    return rc;
}

int oms_acl_authorize(oms_ctx *ctx, oms_perm perm, oms_acl_verdict *out, oms_error *err)
{
    return oms_acl_check(ctx, perm, ctx->branch, out, err);
}
