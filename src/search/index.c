#include "search/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/rebuild.h"
#include "search/terms.h"
#include "store/search_rebuild_sql.h"
#include "store/search_sql.h"
#include "util/alloc.h"

#define CHUNK 500


/* ---- documents ---- */

/* The row of one entry: [resource, kind, api_name, api_norm, hash, api,
 * names, props, descr]. */
static json_t *doc_row(const oms_entry *e)
{
    json_t *doc = json_loadb(e->text, e->len, 0, NULL);
    oms_search_fields f;
    oms_search_fields_of(&f, e->kind, e->api_name, doc);
    char *norm = oms_xmalloc(strlen(e->api_name) + 1);
    oms_search_norm_name(norm, e->api_name);
    json_t *row = json_pack("[s,s,s,s,s,s,s,s,s]", e->key, oms_kind_segment(e->kind), e->api_name, norm, e->hash,
                            f.api.s, f.names.s, f.props.s, f.descr.s);
    free(norm);
    oms_search_fields_free(&f);
    json_decref(doc);
    return row;
}



/* Runs a store operation on the JSON text of `rows`. */
static int exec_json(oms_dbconn *c, int (*op)(oms_dbconn *, int64_t, const char *, oms_error *), json_t *rows,
                     int64_t gen, oms_error *err)
{
    char *text = json_dumps(rows, JSON_COMPACT);
    if (!text)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = op(c, gen, text, err);
    free(text);
    return rc;
}

int oms_search_remove(oms_dbconn *c, int64_t gen, const json_t *resources, oms_error *err)
{
    size_t total = json_array_size(resources);
    for (size_t start = 0; start < total; start += CHUNK) {
        json_t *chunk = json_array();
        for (size_t i = start; i < total && i < start + CHUNK; i++)
            json_array_append(chunk, json_array_get(resources, i));
        int rc = exec_json(c, oms_store_search_remove_docs, chunk, gen, err);
        json_decref(chunk);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

int oms_search_put_entries(oms_dbconn *c, int64_t gen, const oms_entry *const *entries, size_t n, oms_error *err)
{
    bool upsert = oms_store_search_upsert_replaces(c);
    for (size_t start = 0; start < n; start += CHUNK) {
        json_t *rows = json_array(), *keys = json_array();
        for (size_t i = start; i < n && i < start + CHUNK; i++) {
            json_array_append_new(rows, doc_row(entries[i]));
            json_array_append_new(keys, json_string(entries[i]->key));
        }
        /* SQLite rows are replaced by delete and insert (FTS5 external
         * content is kept by the insert and delete triggers only) */
        int rc = upsert ? OMS_OK : oms_search_remove(c, gen, keys, err);
        if (rc == OMS_OK)
            rc = exec_json(c, oms_store_search_put_docs, rows, gen, err);
        json_decref(rows);
        json_decref(keys);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

/* ---- hooks of the write path ---- */


static int one_trip_on_commit(oms_dbconn *c, const char *branch, const oms_snapshot *state, const json_t *changes,
                        const char *commit, oms_error *err)
{
    json_t *keys = json_array(), *removed = json_array(), *rows = json_array();
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        const char *key = json_string_value(json_object_get(ch, "resource"));
        if (!key)
            continue;
        const oms_entry *e = oms_snapshot_get_key(state, key);
        json_array_append_new(keys, json_string(key));
        if (e)
            json_array_append_new(rows, doc_row(e));
        else
            json_array_append_new(removed, json_string(key));
    }
    char *k = json_dumps(keys, JSON_COMPACT), *rm = json_dumps(removed, JSON_COMPACT),
         *up = json_dumps(rows, JSON_COMPACT);
    int rc;
    if (!k || !rm || !up) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    } else {
        rc = oms_store_search_commit_hook(c, branch, rm, up, commit, k, err);
    }
    free(k);
    free(rm);
    free(up);
    json_decref(keys);
    json_decref(removed);
    json_decref(rows);
    return rc;
}

int oms_search_on_commit(oms_dbconn *c, const char *branch, const oms_snapshot *state, const json_t *changes,
                         const char *commit, oms_error *err)
{
    if (json_array_size(changes) == 0)
        return OMS_OK;
    if (oms_store_search_commit_hook_one_trip(c))
        return one_trip_on_commit(c, branch, state, changes, commit, err);
    oms_dbres *r = NULL;
    int rc = oms_store_search_live_generations(c, branch, &r, err);
    if (rc)
        return rc;
    json_t *keys = json_array(), *removed = json_array();
    const oms_entry **put = oms_xcalloc(json_array_size(changes) + 1, sizeof *put);
    size_t nput = 0, i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        const char *key = json_string_value(json_object_get(ch, "resource"));
        const oms_entry *e = key ? oms_snapshot_get_key(state, key) : NULL;
        if (!key)
            continue;
        json_array_append_new(keys, json_string(key));
        if (e)
            put[nput++] = e;
        else
            json_array_append_new(removed, json_string(key));
    }
    /* a one-statement upsert replaces a document; else removed first */
    bool upsert = oms_store_search_upsert_replaces(c);
    for (size_t row = 0; row < r->nrows && rc == OMS_OK; row++) {
        int64_t gen = oms_dbres_int(r, row, 0);
        bool active = strcmp(oms_dbres_get(r, row, 1), "active") == 0;
        if (!active && oms_dbres_int(r, row, 2) == 0) {
            /* a rebuild building in the shadow: it catches up with these */
            rc = oms_search_pending_add(c, gen, keys, commit, err);
            continue;
        }
        /* the active generation, or a shadow that follows the commits
         * (its pending rows of these resources are done with: this
         * commit indexed them into it itself) */
        if ((rc = oms_search_remove(c, gen, upsert ? removed : keys, err)) == OMS_OK &&
            (rc = oms_search_put_entries(c, gen, put, nput, err)) == OMS_OK)
            rc = active ? oms_store_search_generation_commit(c, gen, commit, err)
                        : exec_json(c, oms_store_search_pending_forget, keys, gen, err);
    }
    oms_dbres_free(r);
    json_decref(keys);
    json_decref(removed);
    free(put);
    return rc;
}

typedef struct {
    const oms_entry **v;
    size_t n, cap;
} entry_list;

static void collect(void *ctx, const oms_entry *e)
{
    entry_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = oms_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = e;
}

const oms_entry **oms_search_snapshot_entries(const oms_snapshot *s, size_t *n)
{
    entry_list l = {0};
    oms_snapshot_each(s, collect, &l);
    *n = l.n;
    return l.v;
}

/* Indexes every resource of `commit` into `gen`. */
static int index_commit(oms_dbconn *c, int64_t gen, const char *commit, oms_error *err)
{
    oms_snapshot *s = NULL;
    int rc = oms_snapshot_for_commit(c, commit, &s, err);
    if (rc)
        return rc;
    size_t n;
    const oms_entry **v = oms_search_snapshot_entries(s, &n);
    rc = oms_search_put_entries(c, gen, v, n, err);
    free(v);
    oms_snapshot_unref(s);
    return rc;
}

static int new_active(oms_dbconn *c, const char *branch, const char *commit, int64_t *gen, oms_error *err)
{
oms_dbres *r = NULL;
    int rc = oms_store_search_new_active(c, branch, commit, &r, err);
    if (rc == OMS_OK)
        *gen = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_search_on_branch_create(oms_dbconn *c, const char *branch, const char *from, const char *commit,
                                oms_error *err)
{
    int64_t src = 0, gen = 0;
    int rc;
    if (from) {
        oms_dbres *r = NULL;
        if ((rc = oms_store_search_active_of(c, from, &r, err)))
            return rc;
        /* a source without an index yet: the new branch builds its own on
         * its first search, like the source */
        bool same = r->nrows == 1 && strcmp(oms_dbres_get(r, 0, 1), commit) == 0;
        src = r->nrows == 1 ? oms_dbres_int(r, 0, 0) : 0;
        oms_dbres_free(r);
        if (!src)
            return OMS_OK;
        if (!same)
            src = 0; /* never expected: index the commit itself rather than copy another state */
    }
    if ((rc = new_active(c, branch, commit, &gen, err)))
        return rc;
    if (!src)
        return index_commit(c, gen, commit, err);
    /* identical documents under the new generation's scope token */
    return oms_store_search_copy_docs(c, gen, src, err);
}

int oms_search_on_branch_delete(oms_dbconn *c, const char *branch, oms_error *err)
{
int rc = oms_store_search_retire_branch(c, branch, err);
    return rc ? rc : oms_index_jobs_branch_deleted(c, branch, err);
}

/* ---- generations ---- */

int oms_search_active(oms_dbconn *c, const char *branch, int64_t *gen, char commit[65], oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_search_head_and_active(c, branch, &r, err);
    if (rc)
        return rc;
    if (r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
    else {
        *gen = oms_dbres_get(r, 0, 1) ? oms_dbres_int(r, 0, 1) : 0;
        if (commit)
            snprintf(commit, 65, "%s", oms_dbres_get(r, 0, 2) ? oms_dbres_get(r, 0, 2) : oms_dbres_get(r, 0, 0));
    }
    oms_dbres_free(r);
    return rc;
}

int oms_search_bootstrap(oms_dbconn *c, const char *branch, int64_t *gen, oms_error *err)
{
    int rc = oms_db_begin(c, true, err);
    if (rc)
        return rc;
    oms_dbres *r = NULL;
    /* The branch row first, as every writer of the branch does: a commit in
     * flight finishes before the head is read, later ones wait and then
     * find the generation and keep it current. */
    rc = oms_store_search_branch_for_update(c, branch, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
    if (rc)
        goto fail;
    char head[65];
    snprintf(head, sizeof head, "%s", oms_dbres_get(r, 0, 0));
    *gen = oms_dbres_get(r, 0, 1) ? oms_dbres_int(r, 0, 1) : 0;
    oms_dbres_free(r);
    r = NULL;
    if (*gen == 0 && ((rc = new_active(c, branch, head, gen, err)) || (rc = index_commit(c, *gen, head, err))))
        goto fail;
    if ((rc = oms_db_commit(c, err)))
        goto fail;
    return OMS_OK;
fail:
    oms_dbres_free(r);
    oms_db_rollback(c);
    if (rc == OMS_ECONFLICT) {
        /* Another generation became active meanwhile (a rebuild's switch
         * committed while this waited for the branch row: under READ
         * COMMITTED the row is re-read, not the subquery): use it. */
        oms_error e2;
        int64_t other = 0;
        if (oms_search_active(c, branch, &other, NULL, &e2) == OMS_OK && other) {
            *gen = other;
            return OMS_OK;
        }
    }
    return rc;
}

int oms_search_drop_step(oms_dbconn *c, int64_t grace_ms, int batch, bool *did, oms_error *err)
{
    *did = false;
    oms_dbres *r = NULL;
    int rc = oms_store_search_retired_generation(c, grace_ms, &r, err);
    if (rc || r->nrows == 0) {
        oms_dbres_free(r);
        return rc;
    }
    int64_t gen = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    *did = true;
    if ((rc = oms_db_begin(c, true, err)))
        return rc;
    int64_t deleted = 0;
    rc = oms_store_search_drop_docs(c, gen, batch, &deleted, err);
    if (rc == OMS_OK && deleted < batch)
        rc = oms_store_search_drop_generation(c, gen, err);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, err);
    if (rc)
        oms_db_rollback(c);
    return rc;
}
