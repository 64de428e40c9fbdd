/* History (first-parent), commit detail, diff between refs, and the commits
 * linked to an issue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "governance/issue_refs.h"
#include "http/app.h"
#include "http/params.h"
#include "util/time.h"
#include "http/pipeline.h"
#include "vcs/read_access.h"
#include "vcs/commit.h"
#include "vcs/handlers.h"
#include "vcs/refs.h"
#include "vcs/snapshot.h"
#include "vcs/write.h"

static int problem_from(oms_request *req, int rc, const oms_error *err)
{
    return oms_resp_problem(req, (oms_err)rc, err->msg, NULL);
}

static json_t *commit_row_json(const oms_dbres *r, size_t i)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 4));
    json_t *parents = json_loads(oms_dbres_get(r, i, 2), 0, NULL);
    json_t *keys = json_loads(oms_dbres_get(r, i, 5), 0, NULL);
    return json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:o}", "id", oms_dbres_get(r, i, 0), "tree", oms_dbres_get(r, i, 1),
                     "parents", parents ? parents : json_array(), "author", oms_dbres_get(r, i, 3), "time", t,
                     "message", oms_dbres_get(r, i, 6), "issue_keys", keys ? keys : json_array());
}

static json_t *commit_row(const oms_dbres *r, size_t i, void *ctx)
{
    (void)ctx;
    return commit_row_json(r, i);
}

int oms_h_branch_history(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    char start[65];
    if (rc == OMS_OK)
        rc = oms_resolve_ref(c, req->params[0], start, &err);
    if (rc == OMS_OK && cursor) {
        if (!oms_is_commit_id(cursor))
            return oms_resp_problem(req, OMS_EINVAL, "cursor is not valid", NULL);
        snprintf(start, sizeof start, "%s", cursor);
    }
    if (rc)
        return problem_from(req, rc, &err);
    /* Walk first parents from the start, one more than asked to know whether
     * a next page exists. */
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(start), DBP_INT((int64_t)limit)};
    rc = oms_db_exec(c,
                     "WITH RECURSIVE chain(id, n) AS ("
                     " SELECT $1, 0"
                     " UNION ALL SELECT c.first_parent, chain.n + 1 FROM commits c JOIN chain ON c.id = chain.id"
                     " WHERE c.first_parent IS NOT NULL AND chain.n < $2)"
                     " SELECT c.id, c.tree, c.parents, c.author, c.time_ms, c.issue_keys, c.message"
                     " FROM chain JOIN commits c ON c.id = chain.id ORDER BY chain.n",
                     p, 2, &r, &err);
    if (rc)
        return problem_from(req, rc, &err);
    json_t *items = json_array();
    size_t n = r->nrows < limit ? r->nrows : limit;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, commit_row_json(r, i));
    json_t *next = r->nrows > limit ? json_string(oms_cursor_encode(req, oms_dbres_get(r, limit, 0))) : json_null();
    oms_dbres_free(r);
    return oms_resp_json(req, 200, json_pack("{s:o,s:o}", "items", items, "next_cursor", next));
}

static json_t *load_doc(oms_dbconn *c, const char *hash, oms_error *err)
{
    if (!hash)
        return NULL;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(hash)};
    json_t *doc = NULL;
    if (oms_db_exec(c, "SELECT content FROM objects WHERE hash = $1", p, 1, &r, err) == OMS_OK && r->nrows)
        doc = json_loads(oms_dbres_get(r, 0, 0), 0, NULL);
    oms_dbres_free(r);
    return doc;
}

int oms_h_commit_get(oms_request *req)
{
    const char *id = req->params[0];
    if (!oms_is_commit_id(id))
        return oms_resp_problem(req, OMS_EINVAL, "a commit id is 64 lowercase hex digits", NULL);
    oms_error err;
    oms_dbconn *c;
    json_t *commit = NULL;
    bool readable = false;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK && (rc = oms_commit_readable(req, c, id, &readable, &err)) == OMS_OK && !readable) {
        oms_refuse_unreadable(req, "the commit is on no branch you may read (schema:read)");
        return OMS_OK;
    }
    if (rc == OMS_OK)
        rc = oms_commit_load_json(c, id, &commit, &err);
    if (rc)
        return problem_from(req, rc, &err);
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(id)};
    rc = oms_db_exec(c, "SELECT resource, change, old_hash, new_hash FROM commit_changes WHERE commit_id = $1"
                        " ORDER BY resource", p, 1, &r, &err);
    if (rc) {
        json_decref(commit);
        return problem_from(req, rc, &err);
    }
    json_t *changes = json_array();
    bool any_breaking = false;
    for (size_t i = 0; i < r->nrows; i++) {
        const char *res = oms_dbres_get(r, i, 0);
        oms_kind kind;
        char seg[32];
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(res, "/"), res);
        if (oms_kind_parse(&kind, seg))
            continue;
        json_t *o = load_doc(c, oms_dbres_get(r, i, 2), &err), *n = load_doc(c, oms_dbres_get(r, i, 3), &err);
        bool breaking = false;
        json_t *fields = oms_diff_documents(kind, o, n, &breaking);
        any_breaking = any_breaking || breaking;
        json_decref(o);
        json_decref(n);
        json_array_append_new(changes, json_pack("{s:s,s:s,s:s?,s:s?,s:b,s:o}", "resource", res, "change",
                                                 oms_dbres_get(r, i, 1), "old_hash", oms_dbres_get(r, i, 2),
                                                 "new_hash", oms_dbres_get(r, i, 3), "breaking", breaking, "fields",
                                                 fields ? fields : json_array()));
    }
    oms_dbres_free(r);
    json_object_set_new(commit, "changes", changes);
    json_object_set_new(commit, "breaking", json_boolean(any_breaking));
    oms_resp_etag(req, id);
    return oms_resp_json(req, 200, commit);
}

/* Resource-level diff of two snapshots: buckets with equal hashes are
 * skipped whole, so a diff costs what changed, not the ontology's size. */
json_t *oms_snapshot_diff(const oms_snapshot *from, const oms_snapshot *to, bool *breaking)
{
    json_t *out = json_array();
    *breaking = false;
    for (int b = 0; b < OMS_BUCKETS; b++) {
        const oms_bucket *x = from->b[b], *y = to->b[b];
        if ((!x && !y) || (x && y && x->hash[0] && strcmp(x->hash, y->hash) == 0))
            continue;
        size_t i = 0, j = 0, nx = x ? x->n : 0, ny = y ? y->n : 0;
        while (i < nx || j < ny) {
            const oms_entry *o = NULL, *n = NULL;
            int cmp = i >= nx ? 1 : j >= ny ? -1 : strcmp(x->e[i]->key, y->e[j]->key);
            if (cmp <= 0)
                o = x->e[i++];
            if (cmp >= 0)
                n = y->e[j++];
            if (o && n && strcmp(o->hash, n->hash) == 0)
                continue;
            bool br = false;
            json_t *fields = oms_entry_diff(o, n, &br);
            *breaking = *breaking || br;
            json_array_append_new(out, json_pack("{s:s,s:s,s:s?,s:s?,s:b,s:o}", "resource", o ? o->key : n->key,
                                                 "change", !o ? "added" : !n ? "removed" : "modified", "old_hash",
                                                 o ? o->hash : NULL, "new_hash", n ? n->hash : NULL, "breaking", br,
                                                 "fields", fields ? fields : json_array()));
        }
    }
    return out;
}

int oms_h_diff(oms_request *req)
{
    const char *from = oms_req_query(req, "from"), *to = oms_req_query(req, "to");
    if (!from || !to || !*from || !*to)
        return oms_resp_problem(req, OMS_EINVAL, "diff needs from= and to= (branch names or commit ids)", NULL);
    oms_error err;
    oms_dbconn *c;
    char a[65], b[65];
    oms_snapshot *sa = NULL, *sb = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, from, a, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, to, b, &err);
    if (rc && req->responded)
        return OMS_OK;
    if (rc == OMS_OK)
        rc = oms_snapshot_for_commit(c, a, &sa, &err);
    if (rc == OMS_OK)
        rc = oms_snapshot_for_commit(c, b, &sb, &err);
    if (rc) {
        oms_snapshot_unref(sa);
        return problem_from(req, rc, &err);
    }
    bool breaking;
    json_t *changes = oms_snapshot_diff(sa, sb, &breaking);
    oms_snapshot_unref(sa);
    oms_snapshot_unref(sb);
    return oms_resp_json(req, 200, json_pack("{s:s,s:s,s:b,s:o}", "from", a, "to", b, "breaking", breaking,
                                             "changes", changes));
}

/* Issue links list only commits the caller may read (SPEC §6.2). */
typedef struct {
    oms_request *req;
    oms_dbconn *c;
} issue_rows;

static json_t *readable_commit_row(const oms_dbres *r, size_t i, void *ctx)
{
    issue_rows *ir = ctx;
    bool ok = false;
    oms_error err;
    if (oms_commit_readable(ir->req, ir->c, oms_dbres_get(r, i, 0), &ok, &err) != OMS_OK || !ok)
        return NULL;
    return commit_row(r, i, NULL);
}

int oms_h_issue_commits(oms_request *req)
{
    const char *key = req->params[0];
    if (!oms_issue_key_valid(key))
        return oms_resp_problem(req, OMS_EINVAL, "not an issue key (ABC-123, GH-123 or #123)", NULL);
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    oms_dbparam p[] = {DBP_TEXT(key), DBP_TEXT(cursor ? cursor : ""), DBP_INT((int64_t)limit + 1)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "SELECT c.id, c.tree, c.parents, c.author, c.time_ms, c.issue_keys, c.message"
                         " FROM commit_issues i JOIN commits c ON c.id = i.commit_id"
                         " WHERE i.issue_key = $1 AND c.id > $2 ORDER BY c.id LIMIT $3",
                         p, 3, &r, &err);
    if (rc)
        return problem_from(req, rc, &err);
    issue_rows ctx = {req, c};
    oms_resp_page(req, r, limit, 0, readable_commit_row, &ctx, json_pack("{s:s}", "issue", key));
    oms_dbres_free(r);
    return OMS_OK;
}
