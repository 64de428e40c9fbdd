/* Branches: named pointers to commits (SPEC §4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "governance/issue_refs.h"
#include "governance/overrides.h"
#include "http/app.h"
#include "http/params.h"
#include "locks/lock_check.h"
#include "http/pipeline.h"
#include "search/index.h"
#include "util/time.h"
#include "vcs/commit.h"
#include "vcs/handlers.h"
#include "vcs/read_access.h"
#include "vcs/refs.h"
#include "vcs/snapshot.h"

#define BRANCH_COLS                                                                                     \
    "name, head, protected, required_approvals, breaking_change_approvals, issue_required, created_at,"     \
    " created_by, updated_at"

static json_t *branch_json(const oms_dbres *r, size_t i)
{
    char created[40], updated[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_dbres_int(r, i, 6));
    oms_time_rfc3339_ms(updated, sizeof updated, oms_dbres_int(r, i, 8));
    const char *ir = oms_dbres_get(r, i, 5);
    return json_pack("{s:s,s:s,s:b,s:I,s:I,s:o,s:s,s:s,s:s}", "name", oms_dbres_get(r, i, 0), "head",
                     oms_dbres_get(r, i, 1), "protected", oms_dbres_int(r, i, 2) != 0, "required_approvals",
                     (json_int_t)oms_dbres_int(r, i, 3), "breaking_change_approvals",
                     (json_int_t)oms_dbres_int(r, i, 4), "issue_required",
                     ir ? json_boolean(strcmp(ir, "0") != 0) : json_null(), "created_at", created, "created_by",
                     oms_dbres_get(r, i, 7), "updated_at", updated);
}

/* Lists omit what the caller may not read (SPEC §6.2). */
static json_t *branch_row(const oms_dbres *r, size_t i, void *ctx)
{
    if (!oms_branch_readable(ctx, oms_dbres_get(r, i, 0)))
        return NULL;
    return branch_json(r, i);
}

static int problem_from(oms_request *req, int rc, const oms_error *err)
{
    return oms_resp_problem(req, (oms_err)rc, err->msg, NULL);
}

int oms_h_branch_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    oms_dbparam p[] = {DBP_TEXT(cursor ? cursor : ""), DBP_INT((int64_t)limit + 1)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c, "SELECT " BRANCH_COLS " FROM branches WHERE name > $1 ORDER BY name LIMIT $2", p, 2, &r,
                         &err);
    if (rc)
        return problem_from(req, rc, &err);
    oms_resp_page(req, r, limit, 0, branch_row, req, NULL);
    oms_dbres_free(r);
    return OMS_OK;
}

typedef enum { BRANCH_READ, BRANCH_LOCK } branch_mode;

/* BRANCH_LOCK: inside a write transaction, the row as it is once every
 * transaction that holds it has ended, locked until this one ends
 * (PostgreSQL: FOR UPDATE, which waits for writers in flight and sees their
 * commit, or finds the row gone; SQLite: BEGIN IMMEDIATE already excludes
 * every other writer). */
static int load_branch(oms_dbconn *c, oms_request *req, const char *name, branch_mode mode, oms_dbres **out,
                       oms_error *err)
{
    static const char *const sql[2] = {"SELECT " BRANCH_COLS " FROM branches WHERE name = $1",
                                       "SELECT " BRANCH_COLS " FROM branches WHERE name = $1 FOR UPDATE"};
    bool lock = mode == BRANCH_LOCK && oms_db_backend_of(req->app->store->db) == OMS_DB_PG;
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_exec(c, sql[lock], p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", name);
    }
    return rc;
}

int oms_h_branch_get(oms_request *req)
{
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = load_branch(c, req, req->params[0], BRANCH_READ, &r, &err);
    if (rc)
        return problem_from(req, rc, &err);
    const char *head = oms_arena_strdup(req->arena, oms_dbres_get(r, 0, 1));
    json_t *b = branch_json(r, 0);
    oms_dbres_free(r);
    if (oms_not_modified(req, head)) {
        json_decref(b);
        return OMS_OK;
    }
    oms_resp_etag(req, head);
    return oms_resp_json(req, 200, b);
}

int oms_resolve_ref(oms_dbconn *c, const char *ref, char out[65], oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(ref)};
    int rc;
    if (oms_is_commit_id(ref)) {
        rc = oms_db_exec(c, "SELECT id FROM commits WHERE id = $1", p, 1, &r, err);
    } else {
        if (!oms_valid_branch_name(ref))
            return oms_err_set(err, OMS_EINVAL, "not a branch name or commit id");
        rc = oms_db_exec(c, "SELECT head FROM branches WHERE name = $1", p, 1, &r, err);
    }
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch or commit %.100s", ref);
    if (rc == OMS_OK)
        snprintf(out, 65, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    return rc;
}

typedef struct {
    oms_dbconn *c;
    const char *branch;
    int rc;
    oms_error *err;
} materialize_ctx;

static void materialize_entry(void *p, const oms_entry *e)
{
    materialize_ctx *m = p;
    if (m->rc)
        return;
    oms_dbparam q[] = {DBP_TEXT(m->branch), DBP_TEXT(e->key), DBP_TEXT(e->hash), DBP_TEXT(e->commit),
                       DBP_TEXT(e->author), DBP_INT(e->time_ms)};
    m->rc = oms_db_exec(m->c,
                        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
                        " VALUES ($1, $2, $3, $4, $5, $6)",
                        q, 6, NULL, m->err);
}

int oms_materialize_commit(oms_dbconn *c, const char *branch, const char *commit, oms_error *err)
{
    oms_snapshot *s = NULL;
    int rc = oms_snapshot_for_commit(c, commit, &s, err);
    if (rc)
        return rc;
    materialize_ctx m = {c, branch, OMS_OK, err};
    oms_snapshot_each(s, materialize_entry, &m);
    oms_snapshot_unref(s);
    return m.rc;
}

static void audit_branch(oms_dbconn *c, oms_request *req, const char *action, const char *branch,
                         const char *commit, int status, const json_t *issues, oms_error *err, int *rc)
{
    if (*rc)
        return;
    char *keys = issues ? json_dumps(issues, JSON_COMPACT) : NULL;
    oms_audit_event ev = {.action = action, .outcome = "success", .http_status = status,
                          .resource_kind = "branches", .resource_branch = branch, .resource_id = branch,
                          .commit_id = commit, .issue_keys = keys};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    *rc = oms_audit_append(c, &ev, err);
    free(keys);
    if (*rc)
        *rc = oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
}

static const char *const k_create_fields[] = {"name", "from", NULL};

int oms_h_branch_create(oms_request *req)
{
    json_t *b = req->json;
    if (!json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be {\"name\", \"from\"}", NULL);
    if (!oms_body_fields_ok(req, b, k_create_fields))
        return OMS_OK;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *from = json_string_value(json_object_get(b, "from"));
    if (!name || !oms_valid_branch_name(name))
        return oms_resp_problem(req, OMS_EINVAL,
                                "name must match ^[a-z0-9][a-z0-9._/-]{0,99}$ without '..', '//', a trailing '/' or '.lock'",
                                NULL);
    if (!from)
        from = "main";
    /* branch:create is decided for the new name; the copy reads `from`. */
    if (!oms_authorize_on(req, OMS_PERM_BRANCH_CREATE, name))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    char head[65];
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, from, head, &err);
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc)
        return req->responded ? OMS_OK : problem_from(req, rc, &err);
    bool from_branch = !oms_is_commit_id(from);
    int64_t now = oms_now_ms();
    if (from_branch && oms_db_backend_of(req->app->store->db) == OMS_DB_PG) {
        /* The source's head and its rows, copied below by another
         * statement, must be one state: share-lock the source's row, which
         * waits for a write or a delete of it in flight and holds off the
         * next ones until this branch exists. */
        oms_dbres *src = NULL;
        oms_dbparam p[] = {DBP_TEXT(from)};
        if (!oms_valid_branch_name(from))
            rc = oms_err_set(&err, OMS_EINVAL, "not a branch name or commit id");
        else if ((rc = oms_db_exec(c, "SELECT head FROM branches WHERE name = $1 FOR SHARE", p, 1, &src, &err)) ==
                     OMS_OK &&
                 src->nrows == 0)
            rc = oms_err_set(&err, OMS_ENOTFOUND, "no branch or commit %.100s", from);
        if (rc == OMS_OK)
            snprintf(head, sizeof head, "%s", oms_dbres_get(src, 0, 0));
        oms_dbres_free(src);
    } else {
        rc = oms_resolve_ref(c, from, head, &err);
    }
    if (rc)
        goto fail;
    {
        oms_dbparam p[] = {DBP_TEXT(name), DBP_TEXT(head), DBP_INT(now), DBP_TEXT(req->principal.sub)};
        rc = oms_db_exec(c,
                         "INSERT INTO branches (name, head, protected, created_at, created_by, updated_at)"
                         " VALUES ($1, $2, 0, $3, $4, $3)",
                         p, 4, NULL, &err);
        if (rc == OMS_ECONFLICT)
            oms_err_set(&err, OMS_ECONFLICT, "a branch named %s already exists", name);
    }
    if (rc)
        goto fail;
    if (from_branch) {
        oms_dbparam p[] = {DBP_TEXT(name), DBP_TEXT(from)};
        rc = oms_db_exec(c,
                         "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
                         " SELECT $1, resource, hash, commit_id, author, time_ms FROM branch_resources WHERE branch = $2",
                         p, 2, NULL, &err);
    } else {
        rc = oms_materialize_commit(c, name, head, &err);
    }
    if (rc == OMS_OK) /* its search index: the source's, or the commit's */
        rc = oms_search_on_branch_create(c, name, from_branch ? from : NULL, head, &err);
    audit_branch(c, req, "branch.create", name, head, 201, NULL, &err, &rc);
    if (rc || (rc = oms_db_commit(c, &err)))
        goto fail;
    oms_dbres *r = NULL;
    if ((rc = load_branch(c, req, name, BRANCH_READ, &r, &err)))
        return problem_from(req, rc, &err);
    json_t *out = branch_json(r, 0);
    oms_dbres_free(r);
    char *raw = oms_arena_strdup(req->arena, name);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/branches/%s", raw));
    oms_resp_etag(req, head);
    oms_resp_header(req, "X-Commit", head);
    return oms_resp_json(req, 201, out);
fail:
    oms_db_rollback(c);
    return problem_from(req, rc, &err);
}

int oms_h_branch_delete(oms_request *req)
{
    const char *name = req->params[0];
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc)
        return problem_from(req, rc, &err);
    /* The row first, locked: a write in flight commits before this reads
     * the head (If-Match is judged on the head the delete removes) and its
     * rows are then seen by the DELETE below; a write that comes later
     * waits and finds no branch (404). SPEC §4, docs/storage.md. */
    if ((rc = load_branch(c, req, name, BRANCH_LOCK, &r, &err)))
        goto fail;
    bool protect = oms_dbres_int(r, 0, 2) != 0;
    char head[65];
    snprintf(head, sizeof head, "%s", oms_dbres_get(r, 0, 1));
    oms_dbres_free(r);
    r = NULL;
    if (protect) {
        oms_db_rollback(c);
        return oms_resp_problem_as(req, OMS_EFORBIDDEN, "protected_branch", "protected branches cannot be deleted", NULL);
    }
    const char *if_match = oms_req_etag(req, "If-Match");
    if (if_match && strcmp(if_match, head) != 0 && strcmp(if_match, "*") != 0) {
        oms_db_rollback(c);
        return oms_resp_problem(req, OMS_EPRECOND, "the branch head has moved", json_pack("{s:s}", "current_etag", head));
    }
    /* Deleting a branch touches everything on it: any live lock blocks. */
    const char *whole[] = {OMS_LOCK_WHOLE_BRANCH};
    if ((rc = oms_lock_check_write(c, oms_req_ctx(req), name, whole, 1, &err))) {
        oms_db_rollback(c);
        return oms_resp_error(req, rc, &err);
    }
    json_t *issues = oms_issue_refs_collect(req, req->json, NULL, NULL);
    oms_dbparam p[] = {DBP_TEXT(name)};
    rc = oms_db_exec(c, "DELETE FROM branch_resources WHERE branch = $1", p, 1, NULL, &err);
    if (rc == OMS_OK && (rc = oms_db_exec(c, "DELETE FROM branches WHERE name = $1", p, 1, &r, &err)) == OMS_OK &&
        r->changes != 1)
        rc = oms_err_set(&err, OMS_EINTERNAL, "branch %s vanished under its row lock", name);
    oms_dbres_free(r);
    if (rc == OMS_OK)
        rc = oms_search_on_branch_delete(c, name, &err);
    if (rc == OMS_OK)
        rc = oms_governance_in_tx(c, oms_req_ctx(req), &err);
    audit_branch(c, req, "branch.delete", name, head, 204, issues, &err, &rc);
    json_decref(issues);
    if (rc || (rc = oms_db_commit(c, &err)))
        goto fail;
    return oms_resp_text(req, 204, "application/json", "", 0);
fail:
    oms_db_rollback(c);
    return problem_from(req, rc, &err);
}
