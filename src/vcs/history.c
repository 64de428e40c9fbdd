#include "vcs/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "util/time.h"
#include "vcs/commit.h"
#include "vcs/commit_rows.h"
#include "vcs/diff_cache.h"
#include "vcs/refs.h"
#include "vcs/tree_diff.h"
#include "vcs/write.h"

int oms_vcs_branch_snapshot(oms_ctx *ctx, const char *branch, oms_snapshot **out, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : oms_snapshot_for_branch_head(c, branch, ctx->branch_head, out, err);
}

/* Row i of a history statement: id, tree, parents, author, time_ms,
 * issue_keys, message (and first_parent, when the statement has it). */
static oms_commit_row row_at(const oms_dbres *r, size_t i)
{
    oms_commit_row row = {.id = oms_dbres_get(r, i, 0),
                          .tree = oms_dbres_get(r, i, 1),
                          .parents_json = oms_dbres_get(r, i, 2),
                          .author = oms_dbres_get(r, i, 3),
                          .time_ms = oms_dbres_int(r, i, 4),
                          .issue_keys_json = oms_dbres_get(r, i, 5),
                          .message = oms_dbres_get(r, i, 6)};
    if (r->ncols > 7)
        row.first_parent = oms_dbres_get(r, i, 7);
    return row;
}

json_t *oms_vcs_commit_row_json(const oms_dbres *r, size_t i)
{
    oms_commit_row row = row_at(r, i);
    return oms_commit_row_json(&row);
}

/* The first page of first parents from `start`: `limit` items and, when a
 * further commit exists, its id as *next. Rows come from memory
 * (vcs/commit_rows.h) as far as they are cached, the rest in one statement
 * (which caches them). */
static int first_parent_page(oms_ctx *ctx, oms_dbconn *c, const char *start, size_t limit, json_t *list,
                             const char **next, oms_error *err)
{
    char id[65], parent[65];
    snprintf(id, sizeof id, "%s", start);
    size_t got = 0; /* limit + 1 commits: the last says whether a next page exists */
    json_t *item;
    while (got <= limit && id[0] && (item = oms_commit_rows_item(id, parent)) != NULL) {
        if (got < limit)
            json_array_append_new(list, item);
        else {
            json_decref(item);
            *next = oms_arena_strdup(ctx->arena, id);
        }
        got++;
        memcpy(id, parent, sizeof id);
    }
    if (got > limit || !id[0])
        return OMS_OK;
    oms_dbres *r = NULL;
    int rc = oms_store_commit_history(c, id, (int64_t)(limit - got), &r, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->nrows; i++, got++) {
        oms_commit_row row = row_at(r, i);
        oms_commit_rows_put(&row);
        if (got < limit)
            json_array_append_new(list, oms_commit_row_json(&row));
        else
            *next = oms_arena_strdup(ctx->arena, row.id);
    }
    oms_dbres_free(r);
    return OMS_OK;
}

int oms_vcs_history(oms_ctx *ctx, const char *ref, const char *cursor, size_t limit, json_t **items,
                    const char **next, oms_error *err)
{
    return oms_vcs_history_filtered(ctx, ref, cursor, limit, NULL, items, next, err);
}

int oms_vcs_history_filtered(oms_ctx *ctx, const char *ref, const char *cursor, size_t limit,
                             const oms_history_filter *f, json_t **items, const char **next, oms_error *err)
{
    *items = NULL;
    *next = NULL;
    oms_dbconn *c;
    char start[65];
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_resolve_ref(c, ref, start, err);
    if (rc)
        return rc;
    if (cursor) {
        if (!oms_is_commit_id(cursor))
            return oms_err_set(err, OMS_EINVAL, "cursor is not valid");
        snprintf(start, sizeof start, "%s", cursor);
    }
    /* Walk first parents from the start, one more than asked to know
     * whether a next page exists. */
    if (!f) {
        json_t *page = json_array();
        if (!page)
            return oms_err_set(err, OMS_ENOMEM, "out of memory");
        if ((rc = first_parent_page(ctx, c, start, limit, page, next, err)) != OMS_OK) {
            json_decref(page);
            *next = NULL;
            return rc;
        }
        *items = page;
        return OMS_OK;
    }
    oms_dbres *r = NULL;
    rc = oms_store_commit_history_filtered(c, start, f->resource, f->author, f->since_ms, f->until_ms,
                                           (int64_t)limit + 1, &r, err);
    if (rc)
        return rc;
    json_t *list = json_array();
    size_t n = r->nrows < limit ? r->nrows : limit;
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, oms_vcs_commit_row_json(r, i))) {
            json_decref(list);
            list = NULL;
        }
    if (list && r->nrows > limit)
        *next = oms_arena_strdup(ctx->arena, oms_dbres_get(r, limit, 0));
    oms_dbres_free(r);
    if (!list)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    *items = list;
    return OMS_OK;
}

static json_t *load_doc(oms_dbconn *c, const char *hash, oms_error *err)
{
    if (!hash)
        return NULL;
    oms_dbres *r = NULL;
    json_t *doc = NULL;
    if (oms_store_object_content(c, hash, &r, err) == OMS_OK && r)
        doc = json_loads(oms_dbres_get(r, 0, 0), 0, NULL);
    oms_dbres_free(r);
    return doc;
}

int oms_vcs_commit_detail(oms_ctx *ctx, const char *id, json_t **out, oms_error *err)
{
    *out = NULL;
    oms_dbconn *c;
    json_t *commit = NULL;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_commit_load_json(c, id, &commit, err);
    if (rc == OMS_OK)
        rc = oms_store_commit_changes(c, id, &r, err);
    if (rc) {
        json_decref(commit);
        return rc;
    }
    json_t *changes = json_array();
    bool any_breaking = false;
    for (size_t i = 0; changes && i < r->nrows; i++) {
        const char *res = oms_dbres_get(r, i, 0);
        oms_kind kind;
        char seg[32];
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(res, "/"), res);
        if (oms_kind_parse(&kind, seg))
            continue;
        json_t *o = load_doc(c, oms_dbres_get(r, i, 2), err), *n = load_doc(c, oms_dbres_get(r, i, 3), err);
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
    if (!changes) {
        json_decref(commit);
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    json_object_set_new(commit, "changes", changes);
    json_object_set_new(commit, "breaking", json_boolean(any_breaking));
    *out = commit;
    return OMS_OK;
}

static int by_resource(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "resource")),
                  json_string_value(json_object_get(*(json_t *const *)b, "resource")));
}

/* Sorts diff entries by resource key ("KIND/API_NAME"): buckets are in
 * hash order, which means nothing to a reader. */
static json_t *sorted_by_resource(json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return arr;
    json_t **v = oms_xmalloc(n * sizeof *v);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(arr, i);
    qsort(v, n, sizeof *v, by_resource);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(arr);
    return out;
}

/* Resource-level diff of two snapshots: buckets with equal hashes are
 * skipped whole, so a diff costs what changed, not the ontology's size.
 * Entries are sorted by resource key. */
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
    return out ? sorted_by_resource(out) : NULL;
}

int oms_vcs_diff(oms_ctx *ctx, const char *a, const char *b, char **changes, size_t *len, bool *breaking,
                 oms_error *err)
{
    if ((*changes = oms_diff_cache_get(a, b, len, breaking)) != NULL)
        return OMS_OK;
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc)
        return rc;
    /* Both snapshots in memory: compare them. Otherwise read only the
     * parts of the two stored trees that differ (tree_diff.h) rather than
     * load a commit's every document to compare it (and cache it). */
    json_t *diff = NULL;
    oms_snapshot *sa = oms_snapshot_cache_get_any(a), *sb = oms_snapshot_cache_get_any(b);
    bool walked = false;
    if (!sa || !sb) {
        oms_snapshot_unref(sa);
        oms_snapshot_unref(sb);
        sa = sb = NULL;
        rc = oms_tree_diff(c, a, b, &diff, breaking, &walked, err);
    }
    if (rc == OMS_OK && !walked && !sa)
        rc = oms_snapshot_for_commit(c, a, &sa, err);
    if (rc == OMS_OK && !walked && !sb)
        rc = oms_snapshot_for_commit(c, b, &sb, err);
    if (rc == OMS_OK && !walked && !(diff = oms_snapshot_diff(sa, sb, breaking)))
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (rc == OMS_OK && !(*changes = json_dumps(diff, JSON_COMPACT | JSON_ENCODE_ANY)))
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (rc == OMS_OK) {
        *len = strlen(*changes);
        if (oms_is_commit_id(a) && oms_is_commit_id(b))
            oms_diff_cache_put(a, b, *changes, *len, *breaking);
    }
    json_decref(diff);
    oms_snapshot_unref(sa);
    oms_snapshot_unref(sb);
    return rc;
}

int oms_vcs_issue_commits(oms_ctx *ctx, const char *key, const char *after, size_t limit, oms_dbres **out,
                          oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : oms_store_issue_commits(c, key, after, (int64_t)limit + 1, out, err);
}
