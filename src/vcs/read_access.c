#include "vcs/read_access.h"

#include <stdio.h>
#include <string.h>

#include "auth/acl_store.h"
#include "http/app.h"
#include "http/pipeline.h"
#include "http/path.h"
#include "vcs/commit.h"
#include "vcs/refs.h"

bool oms_branch_readable(oms_request *req, const char *name)
{
    oms_acl_verdict v;
    oms_error err;
    return oms_acl_check(oms_req_ctx(req), OMS_PERM_SCHEMA_READ, name, &v, &err) == OMS_OK && v.allowed;
}

/* Whether `commit` is an ancestor of (or equal to) `head`. Generations only
 * grow along parent links, so the walk stops below the commit's own. */
static int reachable(oms_dbconn *c, const char *head, const char *commit, int64_t generation, bool *out,
                     oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(head), DBP_TEXT(commit), DBP_INT(generation)};
    int rc = oms_db_exec(c,
                         "WITH RECURSIVE anc(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT p.parent_id"
                         " FROM commit_parents p JOIN anc ON p.commit_id = anc.id"
                         " JOIN commits k ON k.id = p.parent_id WHERE k.generation >= $3)"
                         " SELECT 1 FROM anc WHERE id = $2 LIMIT 1",
                         p, 3, &r, err);
    if (rc == OMS_OK)
        *out = r->nrows > 0;
    oms_dbres_free(r);
    return rc;
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
    oms_dbres *g = NULL, *b = NULL;
    oms_dbparam p[] = {DBP_TEXT(commit)};
    if ((rc = oms_db_exec(c, "SELECT generation FROM commits WHERE id = $1", p, 1, &g, err)))
        goto done;
    if (g->nrows == 0) { /* no such commit: the caller's own lookup answers 404 */
        *out = true;
        goto done;
    }
    int64_t generation = oms_dbres_int(g, 0, 0);
    /* main first: most commits anyone asks about are on it */
    if ((rc = oms_db_exec(c, "SELECT name, head FROM branches ORDER BY CASE WHEN name = 'main' THEN 0 ELSE 1 END, name",
                          NULL, 0, &b, err)))
        goto done;
    for (size_t i = 0; i < b->nrows && !*out; i++) {
        if (!oms_branch_readable(req, oms_dbres_get(b, i, 0)))
            continue;
        if (strcmp(oms_dbres_get(b, i, 1), commit) == 0)
            *out = true;
        else if ((rc = reachable(c, oms_dbres_get(b, i, 1), commit, generation, out, err)))
            goto done;
    }
done:
    oms_dbres_free(g);
    oms_dbres_free(b);
    return rc;
}

int oms_read_ref(oms_request *req, oms_dbconn *c, const char *ref, char out[65], oms_error *err)
{
    if (!oms_is_commit_id(ref)) {
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
