#include "search/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/rebuild.h"
#include "search/terms.h"
#include "store/dialect.h"

#define CHUNK 500

/* The text search of the connection's backend is PostgreSQL's tsvector
 * (else SQLite's FTS5): store/dialect.h. */
static bool tsvector(const oms_dbconn *c) { return oms_db_fts(c) == OMS_FTS_TSVECTOR; }

/* ---- documents ---- */

/* The row of one entry: [resource, kind, api_name, api_norm, hash, api,
 * names, props, descr]. */
static json_t *doc_row(const oms_entry *e)
{
    json_t *doc = json_loadb(e->text, e->len, 0, NULL);
    oms_search_fields f;
    oms_search_fields_of(&f, e->kind, e->api_name, doc);
    char *norm = malloc(strlen(e->api_name) + 1);
    if (!norm)
        abort();
    oms_search_norm_name(norm, e->api_name);
    json_t *row = json_pack("[s,s,s,s,s,s,s,s,s]", e->key, oms_kind_segment(e->kind), e->api_name, norm, e->hash,
                            f.api.s, f.names.s, f.props.s, f.descr.s);
    free(norm);
    oms_search_fields_free(&f);
    json_decref(doc);
    return row;
}

static const oms_sql k_insert_sql = {
    /* SQLite: the AFTER INSERT trigger feeds FTS5 */
    "INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, gen, api, names, props, descr)"
    " SELECT $2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
    " json_extract(value, '$[3]'), json_extract(value, '$[4]'), 'g' || $2, json_extract(value, '$[5]'),"
    " json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]')"
    " FROM json_each($1)",
    /* PostgreSQL: weights A-D and the generation's own lexeme */
    "INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, tsv)"
    " SELECT $2::bigint, x->>0, x->>1, x->>2, x->>3, x->>4,"
    " setweight(to_tsvector('simple', x->>5), 'A') || setweight(to_tsvector('simple', x->>6), 'B') ||"
    " setweight(to_tsvector('simple', x->>7), 'C') || setweight(to_tsvector('simple', x->>8), 'D') ||"
    " ('~' || $2::bigint::text)::tsvector"
    " FROM json_array_elements($1::json) AS x"
    " ON CONFLICT (generation, resource) DO UPDATE SET kind = excluded.kind, api_name = excluded.api_name,"
    " api_norm = excluded.api_norm, hash = excluded.hash, tsv = excluded.tsv",
};

static const oms_sql k_remove_sql = {
    "DELETE FROM search_docs WHERE generation = $2 AND resource IN (SELECT value FROM json_each($1))",
    "DELETE FROM search_docs WHERE generation = $2 AND resource IN (SELECT json_array_elements_text($1::json))",
};

static int exec_json(oms_dbconn *c, const char *sql, json_t *rows, int64_t gen, oms_error *err)
{
    char *text = json_dumps(rows, JSON_COMPACT);
    if (!text)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    oms_dbparam p[] = {DBP_TEXT(text), DBP_INT(gen)};
    int rc = oms_db_exec(c, sql, p, 2, NULL, err);
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
        int rc = exec_json(c, oms_sql_for(c, &k_remove_sql), chunk, gen, err);
        json_decref(chunk);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

int oms_search_put_entries(oms_dbconn *c, int64_t gen, const oms_entry *const *entries, size_t n, oms_error *err)
{
    bool pg = tsvector(c);
    for (size_t start = 0; start < n; start += CHUNK) {
        json_t *rows = json_array(), *keys = json_array();
        for (size_t i = start; i < n && i < start + CHUNK; i++) {
            json_array_append_new(rows, doc_row(entries[i]));
            json_array_append_new(keys, json_string(entries[i]->key));
        }
        /* SQLite rows are replaced by delete and insert (FTS5 external
         * content is kept by the insert and delete triggers only) */
        int rc = pg ? OMS_OK : oms_search_remove(c, gen, keys, err);
        if (rc == OMS_OK)
            rc = exec_json(c, oms_sql_for(c, &k_insert_sql), rows, gen, err);
        json_decref(rows);
        json_decref(keys);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

/* ---- hooks of the write path ---- */

/* PostgreSQL: the whole hook in one round trip (data-modifying CTEs): the
 * branch's generations, then for the active one the removed documents
 * deleted, the others upserted, its commit moved; for a building one the
 * pending rows. A branch without a generation costs one cheap statement. */
static const char k_pg_on_commit[] =
    "WITH g AS (SELECT id, state FROM search_generations WHERE branch = $1 AND state IN ('active', 'building')),"
    " rm AS (DELETE FROM search_docs d USING g WHERE g.state = 'active' AND d.generation = g.id"
    " AND d.resource IN (SELECT json_array_elements_text($2::json))),"
    " up AS (INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, tsv)"
    " SELECT g.id, x->>0, x->>1, x->>2, x->>3, x->>4,"
    " setweight(to_tsvector('simple', x->>5), 'A') || setweight(to_tsvector('simple', x->>6), 'B') ||"
    " setweight(to_tsvector('simple', x->>7), 'C') || setweight(to_tsvector('simple', x->>8), 'D') ||"
    " ('~' || g.id::text)::tsvector"
    " FROM g, json_array_elements($3::json) AS x WHERE g.state = 'active'"
    " ON CONFLICT (generation, resource) DO UPDATE SET kind = excluded.kind, api_name = excluded.api_name,"
    " api_norm = excluded.api_norm, hash = excluded.hash, tsv = excluded.tsv),"
    " mv AS (UPDATE search_generations s SET commit_id = $4 FROM g WHERE s.id = g.id AND g.state = 'active'),"
    " pend AS (INSERT INTO search_pending (generation, resource, commit_id)"
    " SELECT g.id, k, $4 FROM g, json_array_elements_text($5::json) AS k WHERE g.state = 'building'"
    " ON CONFLICT (generation, resource) DO UPDATE SET commit_id = excluded.commit_id)"
    " SELECT count(*) FROM g";

static int pg_on_commit(oms_dbconn *c, const char *branch, const oms_snapshot *state, const json_t *changes,
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
        oms_dbparam p[] = {DBP_TEXT(branch), DBP_TEXT(rm), DBP_TEXT(up), DBP_TEXT(commit), DBP_TEXT(k)};
        rc = oms_db_exec(c, k_pg_on_commit, p, 5, NULL, err);
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
    if (tsvector(c))
        return pg_on_commit(c, branch, state, changes, commit, err);
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_exec(c,
                         "SELECT id, state FROM search_generations WHERE branch = $1"
                         " AND state IN ('active', 'building')",
                         p, 1, &r, err);
    if (rc)
        return rc;
    json_t *keys = json_array(), *removed = json_array();
    const oms_entry **put = calloc(json_array_size(changes) + 1, sizeof *put);
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
    bool pg = tsvector(c);
    for (size_t row = 0; row < r->nrows && rc == OMS_OK; row++) {
        int64_t gen = oms_dbres_int(r, row, 0);
        if (strcmp(oms_dbres_get(r, row, 1), "active") == 0) {
            if ((rc = oms_search_remove(c, gen, pg ? removed : keys, err)) == OMS_OK &&
                (rc = oms_search_put_entries(c, gen, put, nput, err)) == OMS_OK) {
                oms_dbparam q[] = {DBP_INT(gen), DBP_TEXT(commit)};
                rc = oms_db_exec(c, "UPDATE search_generations SET commit_id = $2 WHERE id = $1", q, 2, NULL, err);
            }
        } else {
            /* a rebuild in the shadow: it catches up with these */
            rc = oms_search_pending_add(c, gen, keys, commit, err);
        }
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
        const oms_entry **p = realloc(l->v, l->cap * sizeof *p);
        if (!p)
            abort();
        l->v = p;
    }
    l->v[l->n++] = e;
}

/* Indexes every resource of `commit` into `gen`. */
static int index_commit(oms_dbconn *c, int64_t gen, const char *commit, oms_error *err)
{
    oms_snapshot *s = NULL;
    int rc = oms_snapshot_for_commit(c, commit, &s, err);
    if (rc)
        return rc;
    entry_list l = {0};
    oms_snapshot_each(s, collect, &l);
    rc = oms_search_put_entries(c, gen, l.v, l.n, err);
    free(l.v);
    oms_snapshot_unref(s);
    return rc;
}

static int new_active(oms_dbconn *c, const char *branch, const char *commit, int64_t *gen, oms_error *err)
{
#define NEW_ACTIVE(NOW)                                                                                       \
    "INSERT INTO search_generations (branch, state, commit_id, created_at, activated_at)"                     \
    " VALUES ($1, 'active', $2, " NOW ", " NOW ") RETURNING id"
    static const oms_sql q = OMS_SQL_WITH_NOW(NEW_ACTIVE);
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch), DBP_TEXT(commit)};
    int rc = oms_db_run(c, &q, p, 2, &r, err);
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
        oms_dbparam p[] = {DBP_TEXT(from)};
        if ((rc = oms_db_exec(c,
                              "SELECT id, commit_id FROM search_generations WHERE branch = $1 AND state = 'active'",
                              p, 1, &r, err)))
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
    static const oms_sql copy = {
        "INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, gen, api, names, props,"
        " descr) SELECT $1, resource, kind, api_name, api_norm, hash, 'g' || $1, api, names, props, descr"
        " FROM search_docs WHERE generation = $2",
        "INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, tsv)"
        " SELECT $1::bigint, resource, kind, api_name, api_norm, hash,"
        " ts_delete(tsv, '~' || $2::bigint::text) || ('~' || $1::bigint::text)::tsvector"
        " FROM search_docs WHERE generation = $2::bigint"};
    oms_dbparam q[] = {DBP_INT(gen), DBP_INT(src)};
    return oms_db_run(c, &copy, q, 2, NULL, err);
}

int oms_search_on_branch_delete(oms_dbconn *c, const char *branch, oms_error *err)
{
#define RETIRE(NOW) "UPDATE search_generations SET state = 'retired', retired_at = " NOW \
                    " WHERE branch = $1 AND state <> 'retired'"
    static const oms_sql q = OMS_SQL_WITH_NOW(RETIRE);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_run(c, &q, p, 1, NULL, err);
    return rc ? rc : oms_index_jobs_branch_deleted(c, branch, err);
}

/* ---- generations ---- */

int oms_search_active(oms_dbconn *c, const char *branch, int64_t *gen, char commit[65], oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_exec(c,
                         "SELECT b.head, g.id, g.commit_id FROM branches b LEFT JOIN search_generations g"
                         " ON g.branch = b.name AND g.state = 'active' WHERE b.name = $1",
                         p, 1, &r, err);
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
    oms_dbparam p[] = {DBP_TEXT(branch)};
    /* The branch row first, as every writer of the branch does: a commit in
     * flight finishes before the head is read, later ones wait and then
     * find the generation and keep it current. */
    static const oms_sql branch_row = {
        "SELECT b.head, (SELECT id FROM search_generations g WHERE g.branch = b.name"
        " AND g.state = 'active') FROM branches b WHERE b.name = $1",
        "SELECT b.head, (SELECT id FROM search_generations g WHERE g.branch = b.name"
        " AND g.state = 'active') FROM branches b WHERE b.name = $1 FOR UPDATE OF b"};
    rc = oms_db_run(c, &branch_row, p, 1, &r, err);
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
    return rc;
}

int oms_search_drop_step(oms_dbconn *c, int64_t grace_ms, int batch, bool *did, oms_error *err)
{
    *did = false;
    oms_dbres *r = NULL;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT id FROM search_generations WHERE state = 'retired' AND retired_at <= %s - $1 ORDER BY id LIMIT 1",
             oms_sql_now(c));
    oms_dbparam p[] = {DBP_INT(grace_ms)};
    int rc = oms_db_exec(c, sql, p, 1, &r, err);
    if (rc || r->nrows == 0) {
        oms_dbres_free(r);
        return rc;
    }
    int64_t gen = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    r = NULL;
    *did = true;
    if ((rc = oms_db_begin(c, true, err)))
        return rc;
    oms_dbparam q[] = {DBP_INT(gen), DBP_INT(batch)};
    static const oms_sql drop = {
        "DELETE FROM search_docs WHERE id IN (SELECT id FROM search_docs WHERE generation = $1 LIMIT $2)",
        "DELETE FROM search_docs WHERE generation = $1 AND resource IN"
        " (SELECT resource FROM search_docs WHERE generation = $1 LIMIT $2)"};
    rc = oms_db_run(c, &drop, q, 2, &r, err);
    if (rc == OMS_OK && r->changes < batch) {
        oms_dbparam g[] = {DBP_INT(gen)};
        if ((rc = oms_db_exec(c, "DELETE FROM search_pending WHERE generation = $1", g, 1, NULL, err)) == OMS_OK)
            rc = oms_db_exec(c, "DELETE FROM search_generations WHERE id = $1 AND state = 'retired'", g, 1, NULL,
                             err);
    }
    oms_dbres_free(r);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, err);
    if (rc)
        oms_db_rollback(c);
    return rc;
}
