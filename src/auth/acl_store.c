/* The process's shared ACL set and its refresh (see acl_store.h).
 *
 * Sharing: the newest set is published in g_cur under g_mu, holding one
 * reference. Each worker thread also keeps a reference to the set it last
 * used (tl_set), so the common case, "my set is as new as the database",
 * touches no shared cache line at all: no lock, no atomic. A thread takes
 * g_mu only when the database is ahead of its set; the first such thread
 * reloads, the others pick the published set up. Old sets are freed when
 * the last thread holding them moves on (or exits: a thread-key destructor
 * drops its reference). */
#include "auth/acl_store.h"

#include <pthread.h>
#include <string.h>

#include "http/app.h"
#include "http/routes.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static oms_acl *g_cur; /* guarded by g_mu; owns one reference */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key; /* the thread's reference, released when it exits */
static _Thread_local oms_acl *tl_set;

static void thread_exit(void *p) { oms_acl_unref(p); }
static void make_key(void) { pthread_key_create(&g_key, thread_exit); }

int oms_acl_db_version(oms_dbconn *c, int64_t *out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT version FROM acl_version WHERE id = 1", NULL, 0, &r, err);
    if (rc == OMS_OK && r->nrows != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    if (rc == OMS_OK)
        *out = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_acl_db_bump(oms_dbconn *c, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "UPDATE acl_version SET version = version + 1 WHERE id = 1", NULL, 0, &r, err);
    if (rc == OMS_OK && r->changes != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    oms_dbres_free(r);
    return rc;
}

/* One statement, so the version and the rows come from one snapshot even
 * under PostgreSQL's READ COMMITTED; with no policy the LEFT JOIN still
 * yields the version row (with a NULL id). */
int oms_acl_db_load(oms_dbconn *c, const void *owner, oms_acl **out, oms_error *err)
{
    oms_dbres *r = NULL;
    oms_acl *a = NULL;
    int rc = oms_db_exec(c,
                         "SELECT v.version, p.id, p.subject, p.effect, p.permissions, p.branches"
                         " FROM acl_version v LEFT JOIN acl_policies p ON 1 = 1"
                         " WHERE v.id = 1 ORDER BY p.created_at, p.id",
                         NULL, 0, &r, err);
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

/* The calling thread's set, at least as new as `version`; borrowed until
 * the thread's next call. */
static int thread_set(oms_dbconn *c, const void *owner, int64_t version, const oms_acl **out, oms_error *err)
{
    oms_acl *mine = tl_set;
    if (mine && oms_acl_owner(mine) == owner && oms_acl_version(mine) >= version) {
        *out = mine;
        return OMS_OK;
    }
    pthread_once(&g_once, make_key);
    pthread_mutex_lock(&g_mu);
    if (!g_cur || oms_acl_owner(g_cur) != owner || oms_acl_version(g_cur) < version) {
        oms_acl *fresh = NULL;
        int rc = oms_acl_db_load(c, owner, &fresh, err);
        if (rc) {
            pthread_mutex_unlock(&g_mu);
            return rc;
        }
        oms_acl_unref(g_cur);
        g_cur = fresh;
    }
    oms_acl *cur = oms_acl_ref(g_cur);
    pthread_mutex_unlock(&g_mu);
    oms_acl_unref(mine);
    tl_set = cur;
    pthread_setspecific(g_key, cur);
    *out = cur;
    return OMS_OK;
}

const char *oms_acl_route_branch(const oms_request *req)
{
    if (!req->route)
        return NULL;
    const char *p = req->route->pattern;
    size_t k = 0;
    while (*p) {
        if (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len && p[0] == '{') {
            if (len == 8 && strncmp(p, "{branch}", 8) == 0)
                return k < req->nparams ? req->params[k] : NULL;
            k++;
        }
        p += len;
    }
    return NULL;
}

/* The ACL version and the branch's head in one round trip: a read of a
 * branch needs both, fresh, and on PostgreSQL a round trip is the cost. */
static int version_and_head(oms_dbconn *c, const char *branch, int64_t *version, char head[65], oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_exec(c,
                         "SELECT v.version, (SELECT head FROM branches WHERE name = $1) FROM acl_version v"
                         " WHERE v.id = 1",
                         p, 1, &r, err);
    if (rc == OMS_OK && r->nrows != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    if (rc == OMS_OK) {
        *version = oms_dbres_int(r, 0, 0);
        const char *h = oms_dbres_get(r, 0, 1);
        snprintf(head, 65, "%s", h ? h : "");
    }
    oms_dbres_free(r);
    return rc;
}

/* The request whose version check this thread made last: a second
 * decision in the same request (a handler's own check) reuses it, so the
 * version is read at most once per request. start_ns (the monotonic clock
 * when the request arrived) tells apart two requests at one address; a
 * request without it is always checked. */
static _Thread_local const oms_request *tl_req;
static _Thread_local int64_t tl_req_start;

int oms_acl_check(oms_request *req, oms_perm perm, const char *branch, oms_acl_verdict *out, oms_error *err)
{
    oms_db *db = req->app->store->db;
    const oms_acl *set = tl_set;
    if (!(set && req->start_ns && tl_req == req && tl_req_start == req->start_ns && oms_acl_owner(set) == db)) {
        oms_dbconn *c;
        int64_t version = 0;
        int rc = oms_db_conn(db, &c, err);
        if (rc == OMS_OK && branch && !req->ctx.branch_head[0])
            rc = version_and_head(c, branch, &version, req->ctx.branch_head, err);
        else if (rc == OMS_OK)
            rc = oms_acl_db_version(c, &version, err);
        if (rc == OMS_OK)
            rc = thread_set(c, db, version, &set, err);
        if (rc)
            return rc;
        tl_req = req;
        tl_req_start = req->start_ns;
    }
    *out = oms_acl_decide(set, &req->principal, perm, branch);
    if (out->denied_by)
        out->denied_by = oms_arena_strdup(req->arena, out->denied_by);
    return OMS_OK;
}

int oms_acl_branch_denies(oms_request *req, oms_perm perm, bool *out, oms_error *err)
{
    oms_acl_verdict v;
    int rc = oms_acl_check(req, perm, NULL, &v, err); /* brings the thread's set up to date */
    if (rc == OMS_OK)
        *out = oms_acl_denies_on_some_branch(tl_set, &req->principal, perm);
    return rc;
}

int oms_acl_authorize(oms_request *req, oms_acl_verdict *out, oms_error *err)
{
    return oms_acl_check(req, req->route->perm, oms_acl_route_branch(req), out, err);
}
