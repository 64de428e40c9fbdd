#include "api/read_access.h"

#include <stdio.h>
#include <string.h>

#include "auth/acl_store.h"
#include "http/app.h"
#include "http/pipeline.h"
#include "http/params.h"
#include "http/path.h"
#include "store/vcs_sql.h"
#include "vcs/commit.h"
#include "vcs/refs.h"
#include "vcs/tags.h"

bool oms_branch_readable(oms_request *req, const char *name)
{
    oms_acl_verdict v;
    oms_error err;
    return oms_acl_check(oms_req_ctx(req), OMS_PERM_SCHEMA_READ, name, &v, &err) == OMS_OK && v.allowed;
}

int oms_commit_readable(oms_request *req, oms_dbconn *c, const char *commit, bool *out, oms_error *err)
{
    bool restricted = false;
    int rc = oms_acl_branch_denies(oms_req_ctx(req), OMS_PERM_SCHEMA_READ, &restricted, err);
    if (rc || !restricted) {
        *out = rc == OMS_OK;
        return rc;
    }
    *out = false;
    oms_dbres *b = NULL;
    int64_t generation = 0;
    bool found = false;
    if ((rc = oms_store_commit_generation(c, commit, &generation, &found, err)))
        goto done;
    if (!found) { /* no such commit: the caller's own lookup answers 404 */
        *out = true;
        goto done;
    }
    /* main first: most commits anyone asks about are on it */
    if ((rc = oms_store_branch_heads(c, &b, err)))
        goto done;
    for (size_t i = 0; i < b->nrows && !*out; i++) {
        if (!oms_branch_readable(req, oms_dbres_get(b, i, 0)))
            continue;
        if (strcmp(oms_dbres_get(b, i, 1), commit) == 0)
            *out = true;
        else if ((rc = oms_store_commit_reachable(c, oms_dbres_get(b, i, 1), commit, generation, out, err)))
            goto done;
    }
done:
    oms_dbres_free(b);
    return rc;
}

/* A commit id the caller may read (see the header), answered 403 when not. */
static int readable_commit(oms_request *req, oms_dbconn *c, const char *ref, char out[65], oms_error *err)
{
    bool ok = false;
    int rc = oms_commit_readable(req, c, ref, &ok, err);
    if (rc)
        return rc;
    if (!ok) {
        oms_refuse_unreadable(req, "the commit is on no branch you may read (schema:read)");
        return oms_err_set(err, OMS_EFORBIDDEN, "read denied");
    }
    snprintf(out, 65, "%s", ref);
    return OMS_OK;
}

int oms_read_at(oms_request *req, oms_dbconn *c, const char *at, char out[65], oms_error *err)
{
    char commit[65];
    int rc = oms_vcs_resolve_at(c, at, commit, err);
    return rc ? rc : readable_commit(req, c, commit, out, err);
}

int oms_read_ref(oms_request *req, oms_dbconn *c, const char *ref, char out[65], oms_error *err)
{
    if (!oms_is_commit_id(ref)) {
        bool found = false;
        int brc = oms_valid_branch_name(ref) ? oms_store_branch_head_of(c, ref, out, &found, err) : OMS_OK;
        if (brc)
            return brc;
        /* not a branch: a tag names its commit (SPEC §4); a name that is
         * neither is judged as a branch below, as before (a denied caller
         * learns nothing of which names exist) */
        if (!found && oms_valid_tag_name(ref)) {
            char commit[65];
            oms_error terr;
            int trc = oms_vcs_resolve_at(c, ref, commit, &terr);
            if (trc == OMS_OK)
                return readable_commit(req, c, commit, out, err);
            if (trc != OMS_ENOTFOUND) {
                *err = terr;
                return trc;
            }
        }
        if (oms_valid_branch_name(ref) && !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, ref))
            return oms_err_set(err, OMS_EFORBIDDEN, "read denied");
        return oms_resolve_ref(c, ref, out, err);
    }
    bool ok = false;
    int rc = oms_commit_readable(req, c, ref, &ok, err);
    if (rc)
        return rc;
    if (!ok) {
        oms_refuse_unreadable(req, "the commit is on no branch you may read (schema:read)");
        return oms_err_set(err, OMS_EFORBIDDEN, "read denied");
    }
    return oms_resolve_ref(c, ref, out, err);
}

/* ---- paged lists of rows naming commits ---- */

typedef struct {
    oms_request *req;
    oms_dbconn *c;
    size_t commit_col;
    json_t *(*row)(const oms_dbres *r, size_t i);
} readable_rows;

static json_t *readable_row(const oms_dbres *r, size_t i, void *p)
{
    readable_rows *rr = p;
    bool ok = false;
    oms_error err;
    if (oms_commit_readable(rr->req, rr->c, oms_dbres_get(r, i, rr->commit_col), &ok, &err) != OMS_OK || !ok)
        return NULL;
    return rr->row(r, i);
}

static void dbres_cb(void *p) { oms_dbres_free(p); }

int oms_resp_readable_page(oms_request *req, oms_commit_page_fetch fetch, void *arg, size_t commit_col,
                           json_t *(*row)(const oms_dbres *r, size_t i), json_t *extra)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor)) {
        json_decref(extra);
        return OMS_OK;
    }
    oms_error err = {0};
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = fetch(oms_req_ctx(req), arg, cursor, limit, &r, &err);
    if (rc) {
        json_decref(extra);
        return oms_resp_error(req, rc, &err);
    }
    if (oms_arena_on_cleanup(req->arena, dbres_cb, r)) {
        oms_dbres_free(r);
        json_decref(extra);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    readable_rows ctx = {req, c, commit_col, row};
    return oms_resp_page(req, r, limit, 0, readable_row, &ctx, extra);
}
