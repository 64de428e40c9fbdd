#include "store/search_sql.h"

#include "store/dialect.h"

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
    " FROM jsonb_array_elements($1::jsonb) AS x"
    " ON CONFLICT (generation, resource) DO UPDATE SET kind = excluded.kind, api_name = excluded.api_name,"
    " api_norm = excluded.api_norm, hash = excluded.hash, tsv = excluded.tsv",
};

static const oms_sql k_remove_sql = {
    "DELETE FROM search_docs WHERE generation = $2 AND resource IN (SELECT value FROM json_each($1))",
    "DELETE FROM search_docs WHERE generation = $2 AND resource IN (SELECT jsonb_array_elements_text($1::jsonb))",
};

/* PostgreSQL: the whole hook in one round trip (data-modifying CTEs): the
 * branch's generations, then for the active one, and for a building one
 * that follows the commits, the removed documents deleted, the others
 * upserted; the active one's commit moved; for a building one the pending
 * rows: added while it is built, removed once it follows (the resources
 * are indexed here; docs/search.md "Follow the commits"). A branch
 * without a generation costs one cheap statement. */
static const char k_pg_on_commit[] =
    "WITH g AS (SELECT id, state, state = 'active' OR follows = 1 AS live FROM search_generations"
    " WHERE branch = $1 AND state IN ('active', 'building')),"
    " rm AS (DELETE FROM search_docs d USING g WHERE g.live AND d.generation = g.id"
    " AND d.resource IN (SELECT jsonb_array_elements_text($2::jsonb))),"
    " up AS (INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, tsv)"
    " SELECT g.id, x->>0, x->>1, x->>2, x->>3, x->>4,"
    " setweight(to_tsvector('simple', x->>5), 'A') || setweight(to_tsvector('simple', x->>6), 'B') ||"
    " setweight(to_tsvector('simple', x->>7), 'C') || setweight(to_tsvector('simple', x->>8), 'D') ||"
    " ('~' || g.id::text)::tsvector"
    " FROM g, jsonb_array_elements($3::jsonb) AS x WHERE g.live"
    " ON CONFLICT (generation, resource) DO UPDATE SET kind = excluded.kind, api_name = excluded.api_name,"
    " api_norm = excluded.api_norm, hash = excluded.hash, tsv = excluded.tsv),"
    " mv AS (UPDATE search_generations s SET commit_id = $4 FROM g WHERE s.id = g.id AND g.state = 'active'),"
    " pend AS (INSERT INTO search_pending (generation, resource, commit_id)"
    " SELECT g.id, k, $4 FROM g, jsonb_array_elements_text($5::jsonb) AS k WHERE g.state = 'building'"
    " AND NOT g.live ON CONFLICT (generation, resource) DO UPDATE SET commit_id = excluded.commit_id),"
    " unpend AS (DELETE FROM search_pending p USING g WHERE g.state = 'building' AND g.live"
    " AND p.generation = g.id AND p.resource IN (SELECT jsonb_array_elements_text($5::jsonb)))"
    " SELECT count(*) FROM g";

/* Both dialects: m, the generation's documents that match every term (the
 * database's own text search, with its index); c, each with its tier; p,
 * the page, by sort key after the cursor (a top-N sort); then the page's
 * documents and contents, and the count of every match (c is computed
 * once). */
#define RESULT_TAIL(COLLATE)                                                                                    \
    " p AS (SELECT id, " SORT_KEY " AS sk, tier FROM c WHERE " SORT_KEY " " COLLATE " > $8 ORDER BY " SORT_KEY " " COLLATE \
    " LIMIT $9)"                                                                                               \
    " SELECT d.resource, d.kind, d.api_name, d.hash, p.tier, p.sk, (SELECT count(*) FROM c), o.content"        \
    " FROM p " DOC_JOIN " search_docs d ON " DOC_KEY " LEFT JOIN objects o ON o.hash = d.hash ORDER BY p.sk " COLLATE

/* SQLite: FTS5 MATCH over the generation (its scope token and every term);
 * the tiers are the same MATCH restricted to columns, as row sets. $2..$4
 * need no scope token: they only classify rows of the generation. */
#define SORT_KEY "printf('%d %03d %s %s %s', tier, length(api_name), api_norm, api_name, kind)"
#define DOC_KEY "d.id = p.id"
#define DOC_JOIN "CROSS JOIN" /* SQLite's join-order hint: the page first */
static const char k_sqlite_sql[] =
    "WITH m AS MATERIALIZED (SELECT rowid AS id FROM search_fts WHERE search_fts MATCH $1),"
    " c AS MATERIALIZED (SELECT d.id, d.api_name, d.api_norm, d.kind,"
    " CASE WHEN d.api_norm = $6 THEN 0"
    " WHEN $6 <> '' AND substr(d.api_norm, 1, length($6)) = $6 THEN 1"
    " WHEN d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH $2) THEN 2"
    " WHEN d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH $3) THEN 3"
    " WHEN d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH $4) THEN 4 ELSE 5 END AS tier"
    " FROM m CROSS JOIN search_docs d ON d.id = m.id WHERE d.generation = $5"
    " AND ($7 = '' OR instr($7, ',' || d.kind || ',') > 0)),"
    RESULT_TAIL("");
#undef SORT_KEY
#undef DOC_KEY
#undef DOC_JOIN

/* PostgreSQL: the GIN index finds the generation's documents whose tsvector
 * holds the generation's lexeme and every term; the tiers are the same
 * query restricted to weights (A api name, B display name, C properties).
 * The lexeme alone scopes the match: a `generation = $5` beside it would
 * tempt the planner, with statistics from before a bulk load, to scan the
 * generation's rows through the primary key and test every tsvector. */
#define SORT_KEY                                                                                               \
    "(tier::text || ' ' || lpad(length(api_name)::text, 3, '0') || ' ' || api_norm || ' ' || api_name || ' ' ||" \
    " kind)"
#define DOC_KEY "d.generation = $5::bigint AND d.resource = p.id"
#define DOC_JOIN "JOIN"
static const char k_pg_sql[] =
    "WITH c AS MATERIALIZED (SELECT d.resource AS id, d.api_name, d.api_norm, d.kind,"
    " CASE WHEN d.api_norm = $6 THEN 0"
    " WHEN $6 <> '' AND left(d.api_norm, length($6)) = $6 THEN 1"
    " WHEN d.tsv @@ to_tsquery('simple', $2) THEN 2"
    " WHEN d.tsv @@ to_tsquery('simple', $3) THEN 3"
    " WHEN d.tsv @@ to_tsquery('simple', $4) THEN 4 ELSE 5 END AS tier"
    " FROM search_docs d WHERE d.tsv @@ (('~' || $5::bigint::text)::tsquery && to_tsquery('simple', $1))"
    " AND ($7 = '' OR strpos($7, ',' || d.kind || ',') > 0)),"
    RESULT_TAIL("COLLATE \"C\"");
#undef SORT_KEY
#undef DOC_KEY
#undef DOC_JOIN

static int run_json(oms_dbconn *c, const oms_sql *q, const char *text, int64_t gen, oms_error *err)
{
    oms_dbparam p[] = {DBP_TEXT(text), DBP_INT(gen)};
    return oms_db_run(c, q, p, 2, NULL, err);
}

int oms_store_search_put_docs(oms_dbconn *c, int64_t gen, const char *rows, oms_error *err)
{
    return run_json(c, &k_insert_sql, rows, gen, err);
}

bool oms_store_search_upsert_replaces(const oms_dbconn *c) { return oms_db_fts(c) == OMS_FTS_TSVECTOR; }

int oms_store_search_remove_docs(oms_dbconn *c, int64_t gen, const char *resources, oms_error *err)
{
    return run_json(c, &k_remove_sql, resources, gen, err);
}

bool oms_store_search_commit_hook_one_trip(const oms_dbconn *c) { return oms_db_fts(c) == OMS_FTS_TSVECTOR; }

int oms_store_search_commit_hook(oms_dbconn *c, const char *branch, const char *removed, const char *upserted,
                                 const char *commit, const char *keys, oms_error *err)
{
    if (!oms_store_search_commit_hook_one_trip(c))
        return oms_err_set(err, OMS_EINTERNAL, "the search commit hook has no one-trip form on this backend");
    oms_dbparam p[] = {DBP_TEXT(branch), DBP_TEXT(removed), DBP_TEXT(upserted), DBP_TEXT(commit), DBP_TEXT(keys)};
    /* rows unread, failure fails the commit: sent with the next statement */
    return oms_db_exec_later(c, k_pg_on_commit, p, 5, err);
}

int oms_store_search_live_generations(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT id, state, follows FROM search_generations WHERE branch = $1"
                                          " AND state IN ('active', 'building')");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_search_generation_commit(oms_dbconn *c, int64_t gen, const char *commit, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE search_generations SET commit_id = $2 WHERE id = $1");
    oms_dbparam p[] = {DBP_INT(gen), DBP_TEXT(commit)};
    return oms_db_run(c, &q, p, 2, NULL, err);
}

#define NEW_ACTIVE(NOW)                                                                                       \
    "INSERT INTO search_generations (branch, state, commit_id, created_at, activated_at)"                     \
    " VALUES ($1, 'active', $2, " NOW ", " NOW ") RETURNING id"

int oms_store_search_new_active(oms_dbconn *c, const char *branch, const char *commit, oms_dbres **out,
                                oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(NEW_ACTIVE);
    oms_dbparam p[] = {DBP_TEXT(branch), DBP_TEXT(commit)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_search_active_of(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("SELECT id, commit_id FROM search_generations WHERE branch = $1 AND state = 'active'");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_search_copy_docs(oms_dbconn *c, int64_t gen, int64_t src, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, gen, api, names, props,"
        " descr) SELECT $1, resource, kind, api_name, api_norm, hash, 'g' || $1, api, names, props, descr"
        " FROM search_docs WHERE generation = $2",
        "INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, tsv)"
        " SELECT $1::bigint, resource, kind, api_name, api_norm, hash,"
        " ts_delete(tsv, '~' || $2::bigint::text) || ('~' || $1::bigint::text)::tsvector"
        " FROM search_docs WHERE generation = $2::bigint"};
    oms_dbparam p[] = {DBP_INT(gen), DBP_INT(src)};
    return oms_db_run(c, &q, p, 2, NULL, err);
}

#define RETIRE(NOW)                                                                                           \
    "UPDATE search_generations SET state = 'retired', retired_at = " NOW " WHERE branch = $1 AND state <> 'retired'"

int oms_store_search_retire_branch(oms_dbconn *c, const char *branch, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(RETIRE);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, NULL, err);
}

int oms_store_search_head_and_active(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT b.head, g.id, g.commit_id FROM branches b LEFT JOIN search_generations g"
                                          " ON g.branch = b.name AND g.state = 'active' WHERE b.name = $1");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_search_branch_for_update(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {
        "SELECT b.head, (SELECT id FROM search_generations g WHERE g.branch = b.name"
        " AND g.state = 'active') FROM branches b WHERE b.name = $1",
        "SELECT b.head, (SELECT id FROM search_generations g WHERE g.branch = b.name"
        " AND g.state = 'active') FROM branches b WHERE b.name = $1 FOR UPDATE OF b"};
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

#define RETIRED(NOW)                                                                                          \
    "SELECT id FROM search_generations WHERE state = 'retired' AND retired_at <= " NOW " - $1 ORDER BY id LIMIT 1"

int oms_store_search_retired_generation(oms_dbconn *c, int64_t grace_ms, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(RETIRED);
    oms_dbparam p[] = {DBP_INT(grace_ms)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_search_drop_docs(oms_dbconn *c, int64_t gen, int batch, int64_t *deleted, oms_error *err)
{
    static const oms_sql q = {
        "DELETE FROM search_docs WHERE id IN (SELECT id FROM search_docs WHERE generation = $1 LIMIT $2)",
        "DELETE FROM search_docs WHERE generation = $1 AND resource IN"
        " (SELECT resource FROM search_docs WHERE generation = $1 LIMIT $2)"};
    oms_dbparam p[] = {DBP_INT(gen), DBP_INT(batch)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 2, &r, err);
    *deleted = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_search_drop_generation(oms_dbconn *c, int64_t gen, oms_error *err)
{
    static const oms_sql pending = OMS_SQL_BOTH("DELETE FROM search_pending WHERE generation = $1");
    static const oms_sql generation = OMS_SQL_BOTH("DELETE FROM search_generations WHERE id = $1 AND state = 'retired'");
    oms_dbparam g[] = {DBP_INT(gen)};
    int rc = oms_db_run(c, &pending, g, 1, NULL, err);
    return rc ? rc : oms_db_run(c, &generation, g, 1, NULL, err);
}

bool oms_store_search_tsquery(const oms_dbconn *c) { return oms_db_fts(c) == OMS_FTS_TSVECTOR; }

int oms_store_search_query(oms_dbconn *c, const oms_dbparam params[9], oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {k_sqlite_sql, k_pg_sql};
    return oms_db_run_content_read(c, &q, params, 9, out, err);
}
