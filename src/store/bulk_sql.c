#include "store/bulk_sql.h"

#include <stdlib.h>

#include "store/dialect.h"

#define CHUNK 1000

/* SQLite, where a statement costs no round trip: each row its own
 * statement, $1... the row's columns (strings, integers or null), then the
 * extra parameters. Printing the rows as a JSON array and SQLite's parsing
 * it again (json_each, json_extract) cost more than the statements
 * (docs/BENCHMARKS.md round 33). */
static int each_row(oms_dbconn *c, const oms_sql *row, const json_t *rows, const oms_dbparam *extra, int nextra,
                    oms_error *err)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r) {
        oms_dbparam p[12];
        int n = 0;
        size_t k;
        const json_t *v;
        json_array_foreach(r, k, v) {
            if (n == 8)
                return oms_err_set(err, OMS_EINTERNAL, "a bulk row has more than 8 columns");
            p[n++] = json_is_string(v)    ? DBP_TEXT(json_string_value(v))
                     : json_is_integer(v) ? DBP_INT(json_integer_value(v))
                                          : DBP_NULL;
        }
        for (int x = 0; x < nextra && x < 4; x++)
            p[n++] = extra[x];
        int rc = oms_db_run_later(c, row, p, n, err);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

/* Runs `sql` with the rows in chunks: $1 is the chunk as JSON, then the
 * extra parameters as $2... Held back (oms_db_exec_later): inside a
 * transaction on PostgreSQL the chunks travel with the commit's next
 * statement, one round trip for all of them. On SQLite, `row` (when given)
 * runs once a row instead (each_row). */
typedef int (*run_fn)(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_error *err);

static int chunked_by(run_fn run, oms_dbconn *c, const oms_sql *sql, const oms_sql *row, const json_t *rows,
                      const oms_dbparam *extra, int nextra, oms_error *err)
{
    if (row && oms_db_backend_of_conn(c) == OMS_DB_SQLITE)
        return each_row(c, row, rows, extra, nextra, err);
    size_t total = json_array_size(rows); /* nothing to do: no round trip */
    for (size_t start = 0; start < total; start += CHUNK) {
        json_t *chunk = json_array();
        for (size_t i = start; chunk && i < total && i < start + CHUNK; i++)
            json_array_append(chunk, json_array_get(rows, i));
        char *text = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
        json_decref(chunk);
        oms_dbparam p[8] = {DBP_TEXT(text)};
        for (int i = 0; i < nextra && i < 7; i++)
            p[i + 1] = extra[i];
        int rc = text ? run(c, sql, p, nextra + 1, err) : oms_err_set(err, OMS_ENOMEM, "out of memory");
        free(text);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

static int chunked(oms_dbconn *c, const oms_sql *sql, const oms_sql *row, const json_t *rows,
                   const oms_dbparam *extra, int nextra, oms_error *err)
{
    return chunked_by(oms_db_run_later, c, sql, row, rows, extra, nextra, err);
}

/* The rows are a JSON array parameter: json_each on SQLite,
 * jsonb_array_elements on PostgreSQL (jsonb, not json: json re-parses an
 * element's text for every ->> of it; jsonb parses the array once, which
 * took a commit's tree-node insert from 74-79 to 47-53 µs in a micro-
 * benchmark of five 576-byte nodes, docs/BENCHMARKS.md round 17). */

int oms_bulk_objects(oms_dbconn *c, const json_t *rows, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO objects (hash, type, content)"
        " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')"
        " FROM json_each($1) WHERE true ON CONFLICT (hash) DO NOTHING",
        "INSERT INTO objects (hash, type, content)"
        " SELECT x->>0, x->>1, x->>2 FROM jsonb_array_elements($1::jsonb) AS x"
        " ON CONFLICT (hash) DO NOTHING"};
    static const oms_sql row = {"INSERT INTO objects (hash, type, content) VALUES ($1, $2, $3)"
                                " ON CONFLICT (hash) DO NOTHING",
                                NULL}; /* SQLite only (each_row) */
    return chunked_by(oms_db_run_content, c, &q, &row, rows, NULL, 0, err); /* content rows (store/db.h) */
}

int oms_bulk_changes(oms_dbconn *c, const char *commit, const json_t *rows, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO commit_changes (commit_id, resource, change, old_hash, new_hash)"
        " SELECT $2, json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
        " json_extract(value, '$[2]'), json_extract(value, '$[3]')"
        " FROM json_each($1) WHERE true ON CONFLICT DO NOTHING",
        "INSERT INTO commit_changes (commit_id, resource, change, old_hash, new_hash)"
        " SELECT $2, x->>0, x->>1, x->>2, x->>3 FROM jsonb_array_elements($1::jsonb) AS x"
        " ON CONFLICT DO NOTHING"};
    static const oms_sql row = {"INSERT INTO commit_changes (commit_id, resource, change, old_hash, new_hash)"
                                " VALUES ($5, $1, $2, $3, $4) ON CONFLICT DO NOTHING",
                                NULL}; /* SQLite only (each_row) */
    oms_dbparam extra[] = {DBP_TEXT(commit)};
    return chunked(c, &q, &row, rows, extra, 1, err);
}

#define UPSERT_TAIL                                                                                            \
    " ON CONFLICT (branch, resource) DO UPDATE SET hash = excluded.hash,"                                      \
    " commit_id = excluded.commit_id, author = excluded.author, time_ms = excluded.time_ms"

int oms_bulk_branch_upsert(oms_dbconn *c, const char *branch, const char *commit, const char *author,
                           int64_t time_ms, const json_t *rows, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), $3, $4, $5"
        " FROM json_each($1) WHERE true" UPSERT_TAIL,
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $2, x->>0, x->>1, $3, $4, $5 FROM jsonb_array_elements($1::jsonb) AS x ORDER BY 2" UPSERT_TAIL};
    static const oms_sql row = {"INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
                                " VALUES ($3, $1, $2, $4, $5, $6)" UPSERT_TAIL,
                                NULL}; /* SQLite only (each_row) */
    oms_dbparam extra[] = {DBP_TEXT(branch), DBP_TEXT(commit), DBP_TEXT(author), DBP_INT(time_ms)};
    return chunked(c, &q, &row, rows, extra, 4, err);
}

int oms_bulk_branch_upsert_rows(oms_dbconn *c, const char *branch, const json_t *rows, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
        " json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each($1) WHERE true" UPSERT_TAIL,
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $2, x->>0, x->>1, x->>2, x->>3, (x->>4)::bigint FROM jsonb_array_elements($1::jsonb) AS x"
        " ORDER BY 2" UPSERT_TAIL};
    oms_dbparam extra[] = {DBP_TEXT(branch)};
    return chunked(c, &q, NULL, rows, extra, 1, err);
}

/* A fork's view must not change with its base (docs/storage.md "Forks
 * share their base's rows"): before the base's rows of `resources` change,
 * every fork without its own row for one gets the base's row as it is, or
 * a tombstone (empty hash) where the base has none. Called only when the
 * branch has forks (oms_store_branch_has_forks): on PostgreSQL this
 * statement's plan is made per call (a custom plan) and cost about 0.6 ms a
 * commit. The base's rows are looked up by key (the lateral subquery kept
 * apart, OFFSET 0: joined, it hashed every row of the branch). Rows in
 * resource order on PostgreSQL, as the fork's own upserts, so that the two
 * never wait on each other in opposite orders. */
int oms_bulk_branch_push(oms_dbconn *c, const char *branch, const json_t *resources, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT f.branch, k.value, COALESCE(r.hash, ''), COALESCE(r.commit_id, ''), COALESCE(r.author, ''),"
        " COALESCE(r.time_ms, 0) FROM branch_forks f CROSS JOIN json_each($1) k"
        " LEFT JOIN branch_resources r ON r.branch = $2 AND r.resource = k.value"
        " WHERE f.base = $2 ON CONFLICT (branch, resource) DO NOTHING",
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT f.branch, k.k, COALESCE(r.hash, ''), COALESCE(r.commit_id, ''), COALESCE(r.author, ''),"
        " COALESCE(r.time_ms, 0) FROM branch_forks f CROSS JOIN jsonb_array_elements_text($1::jsonb) AS k(k)"
        " LEFT JOIN LATERAL (SELECT hash, commit_id, author, time_ms FROM branch_resources"
        " WHERE branch = $2 AND resource = k.k OFFSET 0) r ON true"
        " WHERE f.base = $2 ORDER BY 1, 2 ON CONFLICT (branch, resource) DO NOTHING"};
    oms_dbparam extra[] = {DBP_TEXT(branch)};
    return chunked(c, &q, NULL, resources, extra, 1, err);
}

/* A base drops its row; a fork keeps a tombstone instead, which hides the
 * base's row. Which of the two the branch is, each statement reads when it
 * runs: after the write's lock on the branch row, so a base deleted in the
 * meantime (its forks made bases) is seen. */
int oms_bulk_branch_delete(oms_dbconn *c, const char *branch, const json_t *resources, oms_error *err)
{
    static const oms_sql del = {
        "DELETE FROM branch_resources WHERE branch = $2 AND resource IN (SELECT value FROM json_each($1))"
        " AND NOT EXISTS (SELECT 1 FROM branch_forks WHERE branch = $2)",
        "DELETE FROM branch_resources WHERE branch = $2 AND resource IN (SELECT jsonb_array_elements_text($1::jsonb))"
        " AND NOT EXISTS (SELECT 1 FROM branch_forks WHERE branch = $2)"};
    static const oms_sql tomb = {
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $2, value, '', '', '', 0 FROM json_each($1)"
        " WHERE EXISTS (SELECT 1 FROM branch_forks WHERE branch = $2)" UPSERT_TAIL,
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $2, k, '', '', '', 0 FROM jsonb_array_elements_text($1::jsonb) AS k"
        " WHERE EXISTS (SELECT 1 FROM branch_forks WHERE branch = $2) ORDER BY 2" UPSERT_TAIL};
    oms_dbparam extra[] = {DBP_TEXT(branch)};
    int rc = chunked(c, &del, NULL, resources, extra, 1, err);
    return rc ? rc : chunked(c, &tomb, NULL, resources, extra, 1, err);
}
