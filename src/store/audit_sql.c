#include "store/audit_sql.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/dialect.h"

#define INSERT_EVENT(NOW)                                                                                     \
    "INSERT INTO audit_events (event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent, action,"  \
    " outcome, http_status, request_id, method, route, resource_kind, resource_branch, resource_id,"         \
    " issue_keys, override_id, commit_id, before_hash, after_hash, changed_paths, detail) VALUES ($1,"       \
    " COALESCE($2, " NOW "), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,"  \
    " $20, $21, $22)"

int oms_store_audit_event_insert(oms_dbconn *c, const oms_dbparam *p, oms_error *err)
{
    /* PostgreSQL: one round trip for the event and its queue row. SQLite
     * has no data-modifying WITH, and a second statement costs no round
     * trip there. */
    static const oms_sql q = {INSERT_EVENT(OMS_DB_NOW_SQLITE),
                              "WITH ev AS (" INSERT_EVENT(OMS_DB_NOW_PG) " RETURNING seq)"
                              " INSERT INTO audit_unchained (seq) SELECT seq FROM ev"};
    /* Held back inside a transaction on PostgreSQL: the event travels with
     * the transaction's next statement, usually its COMMIT, and a failure
     * is the audit store's wherever it shows (fail closed, 503). */
    if (oms_db_backend_of_conn(c) == OMS_DB_PG)
        return oms_db_exec_later_as(c, q.pg, p, OMS_AUDIT_EVENT_NPARAMS, OMS_EAUDIT, "the audit store cannot write",
                                    err);
    int rc = oms_db_run(c, &q, p, OMS_AUDIT_EVENT_NPARAMS, NULL, err);
    if (rc == OMS_OK)
        rc = oms_db_exec(c, "INSERT INTO audit_unchained (seq) VALUES (last_insert_rowid())", NULL, 0, NULL, err);
    return rc;
}

/* The queried columns of the events just chained at positions from..upto,
 * in the chainer's transaction (migration 0021, docs/audit.md "Queries").
 * A facet already there (none should be) is left as it is rather than
 * failing the round: the chain matters more than an index of it. Only the
 * chainer writes facets, under the sealer's lock, so a probe is enough:
 * ON CONFLICT cost PostgreSQL a confirmation record per row. */
static int audit_facets_insert(oms_dbconn *c, int64_t from, int64_t upto, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO audit_facets (" OMS_AUDIT_FACET_COLS ") SELECT e.seq, e.time_ms, e.actor_sub, e.action,"
        " e.resource_branch, e.request_id FROM audit_chain x JOIN audit_events e ON e.seq = x.event_seq"
        " WHERE x.pos >= $1 AND x.pos <= $2 AND (SELECT y.seq FROM audit_facets y WHERE y.seq = e.seq) IS NULL");
    oms_dbparam p[] = {DBP_INT(from), DBP_INT(upto)};
    return oms_db_run(c, &q, p, 2, NULL, err);
}

/* One statement for the rows: they travel as one JSON array parameter of
 * [pos, event_seq, prev_hash, hash] arrays (as in src/store/bulk_sql.c). */
int oms_store_audit_chain_insert(oms_dbconn *c, const oms_store_audit_link *rows, size_t n, oms_error *err)
{
    static const oms_sql q = {"INSERT INTO audit_chain (pos, event_seq, prev_hash, hash) SELECT"
                              " json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
                              " json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each($1)",
                              "INSERT INTO audit_chain (pos, event_seq, prev_hash, hash) SELECT (x->>0)::bigint,"
                              " (x->>1)::bigint, x->>2, x->>3 FROM jsonb_array_elements($1::jsonb) AS x"};
    if (n == 0)
        return OMS_OK;
    json_t *a = json_array();
    bool ok = a != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(a, json_pack("[I,I,s,s]", (json_int_t)rows[i].pos, (json_int_t)rows[i].event_seq,
                                                rows[i].prev_hash, rows[i].hash)) == 0;
    char *text = ok ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    oms_dbparam p[] = {DBP_TEXT(text)};
    int rc = oms_db_run(c, &q, p, 1, NULL, err);
    free(text);
    return rc ? rc : audit_facets_insert(c, rows[0].pos, rows[n - 1].pos, err);
}

int oms_store_audit_seal_lock(oms_dbconn *c, oms_error *err)
{
    return oms_db_xact_lock(c, OMS_AUDIT_SEAL_LOCK_KEY, false, err);
}

int oms_store_audit_seal_try_lock(oms_dbconn *c, bool *got, oms_error *err)
{
    *got = true;
    if (oms_db_backend_of_conn(c) != OMS_DB_PG)
        return OMS_OK;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(OMS_AUDIT_SEAL_LOCK_KEY)};
    int rc = oms_db_exec(c, "SELECT pg_try_advisory_xact_lock($1)", p, 1, &r, err);
    *got = rc == OMS_OK && oms_dbres_get(r, 0, 0) && oms_dbres_get(r, 0, 0)[0] == 't';
    oms_dbres_free(r);
    return rc;
}

bool oms_store_audit_shared(const oms_db *db) { return oms_db_backend_of(db) == OMS_DB_PG; }

/* ---- helpers ---- */

/* ---- the chain ---- */

int oms_store_audit_legacy_upto(oms_dbconn *c, int64_t *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT legacy_upto FROM audit_chain_head WHERE id = 1");
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    if (rc == OMS_OK)
        *out = r->nrows ? oms_dbres_int(r, 0, 0) : 0;
    oms_dbres_free(r);
    return rc;
}

#define STR_(x) #x
#define STR(x) STR_(x)

int oms_store_audit_walk_page(oms_dbconn *c, bool legacy, int64_t after, int64_t upto, oms_dbres **out,
                              oms_error *err)
{
    static const oms_sql k_legacy = OMS_SQL_BOTH("SELECT e.seq, e.seq, " OMS_AUDIT_EVENT_COLS ", NULL, NULL"
                                                 " FROM audit_events e WHERE e.seq > $1 AND e.seq <= $2"
                                                 " ORDER BY e.seq LIMIT " STR(OMS_AUDIT_WALK_PAGE));
    static const oms_sql k_chain = OMS_SQL_BOTH("SELECT c.pos, c.event_seq, " OMS_AUDIT_COLS " FROM audit_chain c"
                                                " LEFT JOIN audit_events e ON e.seq = c.event_seq"
                                                " WHERE c.pos > $1 AND c.pos <= $2 ORDER BY c.pos LIMIT "
                                                STR(OMS_AUDIT_WALK_PAGE));
    oms_dbparam p[] = {DBP_INT(after), DBP_INT(upto)};
    return oms_db_run(c, legacy ? &k_legacy : &k_chain, p, 2, out, err);
}

int oms_store_audit_unchained_page(oms_dbconn *c, int64_t limit, oms_dbres **out, oms_error *err)
{
    /* Only committed events are visible; an event that commits after this
     * read is chained by a later round. The join leaves out a queue row
     * whose event is gone (evidence for verify, see docs/audit.md); the
     * chain lookup a stale one whose event is chained. That lookup is a
     * scalar subquery, one probe of the chain's event_seq index per queue
     * row: written as NOT EXISTS, PostgreSQL planned it as an anti join
     * and, with statistics that put the queue at thousands of rows, hashed
     * the whole chain (every event ever chained) on every round. The
     * events' side is likewise a probe per queue row on PostgreSQL (a
     * lateral subquery that OFFSET 0 keeps from becoming a join): as a
     * join, with the same statistics, it read every audit event (23 ms at
     * 5,439 events, growing with the table) and probed the queue for each. */
#define UNCHAINED_PAGE(EVENTS)                                                                              \
    "SELECT " OMS_AUDIT_EVENT_COLS " FROM audit_unchained q " EVENTS                                        \
    " WHERE (SELECT x.pos FROM audit_chain x WHERE x.event_seq = q.seq) IS NULL ORDER BY q.seq LIMIT $1"
    static const oms_sql q = {
        UNCHAINED_PAGE("JOIN audit_events e ON e.seq = q.seq"),
        UNCHAINED_PAGE("CROSS JOIN LATERAL (SELECT * FROM audit_events e WHERE e.seq = q.seq OFFSET 0) e")};
#undef UNCHAINED_PAGE
    oms_dbparam p[] = {DBP_INT(limit)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_audit_unchained_prune(oms_dbconn *c, oms_error *err)
{
    /* a probe per queue row, as in the page above */
    static const oms_sql q = OMS_SQL_BOTH("DELETE FROM audit_unchained WHERE (SELECT x.pos FROM audit_chain x"
                                          " WHERE x.event_seq = audit_unchained.seq) IS NOT NULL");
    return oms_db_run(c, &q, NULL, 0, NULL, err);
}

int oms_store_audit_unchained_check(oms_dbconn *c, int64_t legacy_upto, int64_t older_than_ms, int64_t *forged,
                                    int64_t *pending, int64_t *overdue, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT MIN(CASE WHEN q.seq IS NULL THEN e.seq END),"
        " COALESCE(SUM(CASE WHEN q.seq IS NULL THEN 0 ELSE 1 END), 0),"
        " COALESCE(SUM(CASE WHEN q.seq IS NOT NULL AND e.time_ms < $2 THEN 1 ELSE 0 END), 0)"
        " FROM audit_events e LEFT JOIN audit_unchained q ON q.seq = e.seq"
        " WHERE e.seq > $1 AND NOT EXISTS (SELECT 1 FROM audit_chain x WHERE x.event_seq = e.seq)");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(legacy_upto), DBP_INT(older_than_ms)};
    int rc = oms_db_run(c, &q, p, 2, &r, err);
    if (rc == OMS_OK) {
        *forged = oms_dbres_get(r, 0, 0) ? oms_dbres_int(r, 0, 0) : 0;
        *pending = oms_dbres_int(r, 0, 1);
        *overdue = oms_dbres_int(r, 0, 2);
    }
    oms_dbres_free(r);
    return rc;
}

int oms_store_audit_unchained_gone(oms_dbconn *c, int64_t *seq, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT MIN(q.seq) FROM audit_unchained q WHERE NOT EXISTS (SELECT 1"
                                          " FROM audit_events e WHERE e.seq = q.seq) AND NOT EXISTS (SELECT 1"
                                          " FROM audit_chain x WHERE x.event_seq = q.seq)");
    return oms_db_run_int(c, &q, NULL, 0, seq, err);
}

int oms_store_audit_facets_check(oms_dbconn *c, int64_t legacy_upto, int64_t *differs, int64_t *orphan,
                                 oms_error *err)
{
#define DIFFERS(COL) " OR f." COL " IS DISTINCT FROM e." COL
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT (SELECT MIN(e.seq) FROM audit_events e LEFT JOIN audit_facets f ON f.seq = e.seq"
        " WHERE (e.seq <= $1 OR EXISTS (SELECT 1 FROM audit_chain x WHERE x.event_seq = e.seq))"
        " AND (f.seq IS NULL" DIFFERS("time_ms") DIFFERS("actor_sub") DIFFERS("action") DIFFERS("resource_branch")
            DIFFERS("request_id") ")),"
        " (SELECT MIN(f.seq) FROM audit_facets f WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.seq = f.seq)"
        " OR (f.seq > $1 AND NOT EXISTS (SELECT 1 FROM audit_chain x WHERE x.event_seq = f.seq)))");
#undef DIFFERS
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(legacy_upto)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK) {
        *differs = oms_dbres_get(r, 0, 0) ? oms_dbres_int(r, 0, 0) : 0;
        *orphan = oms_dbres_get(r, 0, 1) ? oms_dbres_int(r, 0, 1) : 0;
    }
    oms_dbres_free(r);
    return rc;
}

int oms_store_audit_facets_rebuild(oms_dbconn *c, int64_t *rows, oms_error *err)
{
    int rc = oms_db_exec(c, "DELETE FROM audit_facets", NULL, 0, NULL, err);
    oms_dbres *r = NULL;
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "INSERT INTO audit_facets (" OMS_AUDIT_FACET_COLS ") SELECT e.seq, e.time_ms, e.actor_sub,"
                         " e.action, e.resource_branch, e.request_id FROM audit_events e WHERE e.seq <= COALESCE("
                         "(SELECT legacy_upto FROM audit_chain_head WHERE id = 1), 0) OR EXISTS (SELECT 1"
                         " FROM audit_chain x WHERE x.event_seq = e.seq)",
                         NULL, 0, &r, err);
    if (rc == OMS_OK && rows)
        *rows = r->changes;
    oms_dbres_free(r);
    return rc;
}

int oms_store_audit_seal_state(oms_dbconn *c, bool *queued, int64_t *chain_end, int64_t *legacy_upto,
                               int64_t *sealed, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        /* the (short) queue drives the search, a probe of the events'
         * key per queue row: as a join, SQLite walked every audit event 4
         * times a second; as nested EXISTS, PostgreSQL made it a semi join
         * and, with statistics that put the queue above the events, read
         * the events from the oldest until one was queued (the newest) */
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM audit_unchained q WHERE"
        " (SELECT e.seq FROM audit_events e WHERE e.seq = q.seq) IS NOT NULL)"
        " THEN 1 ELSE 0 END, (SELECT COALESCE(MAX(pos), 0) FROM audit_chain),"
        " (SELECT legacy_upto FROM audit_chain_head WHERE id = 1),"
        " (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints)");
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    if (rc == OMS_OK) {
        *queued = oms_dbres_int(r, 0, 0) != 0;
        *chain_end = oms_dbres_int(r, 0, 1);
        *legacy_upto = oms_dbres_int(r, 0, 2);
        *sealed = oms_dbres_int(r, 0, 3);
    }
    oms_dbres_free(r);
    return rc;
}

/* ---- checkpoints ---- */

int oms_store_audit_checkpoint_insert(oms_dbconn *c, const oms_store_audit_checkpoint_row *cp, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("INSERT INTO audit_checkpoints (" OMS_AUDIT_CHECKPOINT_COLS ")"
                                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    oms_dbparam p[] = {DBP_INT(cp->id), DBP_TEXT(cp->kind), DBP_INT(cp->from_pos), DBP_INT(cp->upto_pos),
                       DBP_TEXT(cp->chain_hash), DBP_INT(cp->event_count), DBP_INT(cp->time_ms),
                       DBP_TEXT(cp->sealed_by), DBP_TEXT(cp->detail), DBP_TEXT(cp->prev_hmac),
                       DBP_TEXT(cp->hmac)};
    return oms_db_run(c, &q, p, 11, NULL, err);
}

int oms_store_audit_checkpoint_last(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT id, hmac FROM audit_checkpoints ORDER BY id DESC LIMIT 1");
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_audit_checkpoint_frontier(oms_dbconn *c, bool *found, int64_t *upto, char hash[65], oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT upto_seq, chain_hash FROM audit_checkpoints"
                                          " ORDER BY upto_seq DESC, id DESC LIMIT 1");
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    if (rc == OMS_OK) {
        *found = r->nrows > 0;
        *upto = *found ? oms_dbres_int(r, 0, 0) : 0;
        snprintf(hash, 65, "%s", *found && oms_dbres_get(r, 0, 1) ? oms_dbres_get(r, 0, 1) : "");
    }
    oms_dbres_free(r);
    return rc;
}

int oms_store_audit_checkpoints_all(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " OMS_AUDIT_CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id");
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_audit_checkpoint_count(oms_dbconn *c, int64_t *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT count(*) FROM audit_checkpoints");
    return oms_db_run_int(c, &q, NULL, 0, out, err);
}

int oms_store_audit_checkpoint_edge(oms_dbconn *c, bool newest, oms_dbres **out, oms_error *err)
{
    static const oms_sql q_newest = OMS_SQL_BOTH("SELECT " OMS_AUDIT_CHECKPOINT_COLS
                                                 " FROM audit_checkpoints ORDER BY id DESC LIMIT 1");
    static const oms_sql q_oldest = OMS_SQL_BOTH("SELECT " OMS_AUDIT_CHECKPOINT_COLS
                                                 " FROM audit_checkpoints ORDER BY id LIMIT 1");
    return oms_db_run(c, newest ? &q_newest : &q_oldest, NULL, 0, out, err);
}

/* ---- archiving ---- */

int oms_store_audit_archive_start_hash(oms_dbconn *c, int64_t upto, bool *found, char hash[65], oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT chain_hash FROM audit_checkpoints WHERE kind = 'archive'"
                                          " AND upto_seq = $1 ORDER BY id DESC LIMIT 1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(upto)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK) {
        *found = r->nrows > 0;
        if (*found)
            snprintf(hash, 65, "%s", oms_dbres_get(r, 0, 0));
    }
    oms_dbres_free(r);
    return rc;
}

int oms_store_audit_archive_chain_end(oms_dbconn *c, int64_t before_ms, int64_t after, int64_t upto, int64_t *out,
                                      oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT MAX(c.pos) FROM audit_chain c JOIN audit_events e"
                                          " ON e.seq = c.event_seq WHERE e.time_ms < $1 AND c.pos > $2"
                                          " AND c.pos <= $3");
    oms_dbparam p[] = {DBP_INT(before_ms), DBP_INT(after), DBP_INT(upto)};
    return oms_db_run_int(c, &q, p, 3, out, err);
}

int oms_store_audit_archive_legacy_end(oms_dbconn *c, int64_t before_ms, int64_t after, int64_t upto, int64_t *out,
                                       oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT MAX(seq) FROM audit_events WHERE time_ms < $1 AND seq > $2"
                                          " AND seq <= $3");
    oms_dbparam p[] = {DBP_INT(before_ms), DBP_INT(after), DBP_INT(upto)};
    return oms_db_run_int(c, &q, p, 3, out, err);
}

int oms_store_audit_archive_delete(oms_dbconn *c, int64_t upto, int64_t legacy_upto, oms_error *err)
{
#define ARCHIVED "seq IN (SELECT event_seq FROM audit_chain WHERE pos <= $1) OR (seq <= $1 AND seq <= $2)"
    static const oms_sql facets = OMS_SQL_BOTH("DELETE FROM audit_facets WHERE " ARCHIVED);
    static const oms_sql events = OMS_SQL_BOTH("DELETE FROM audit_events WHERE " ARCHIVED);
#undef ARCHIVED
    static const oms_sql chain = OMS_SQL_BOTH("DELETE FROM audit_chain WHERE pos <= $1");
    oms_dbparam p[] = {DBP_INT(upto), DBP_INT(legacy_upto)};
    int rc = oms_db_run(c, &facets, p, 2, NULL, err);
    rc = rc ? rc : oms_db_run(c, &events, p, 2, NULL, err);
    return rc ? rc : oms_db_run(c, &chain, p, 1, NULL, err);
}

int oms_store_audit_archive_records(oms_dbconn *c, int64_t from, int64_t upto, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " OMS_AUDIT_CHECKPOINT_COLS " FROM audit_checkpoints"
                                          " WHERE kind = 'archive' AND from_seq = $1 AND upto_seq = $2 ORDER BY id");
    oms_dbparam p[] = {DBP_INT(from), DBP_INT(upto)};
    return oms_db_run(c, &q, p, 2, out, err);
}

/* ---- reads ---- */

static void sql_put(oms_store_audit_query *q, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sql_put(oms_store_audit_query *q, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (*len < sizeof q->sql)
        *len += (size_t)vsnprintf(q->sql + *len, sizeof q->sql - *len, fmt, ap);
    va_end(ap);
}

/* One arm's WHERE terms, in a fixed order so that both arms number the
 * parameters alike; `bind` (the first arm) also adds the parameters. `fc`
 * qualifies the columns audit_facets holds ("f." in the facets arm, "e."
 * in the queue's); `key` is the arm's seq. */
static void arm_terms(oms_store_audit_query *q, size_t *len, const oms_store_audit_filter *f, const char *fc,
                      const char *key, bool first_is_where, bool bind)
{
    int k = 0;
    bool where = first_is_where;
#define TERM(V, ...)                                                                                 \
    do {                                                                                             \
        sql_put(q, len, "%s", where ? " WHERE " : " AND ");                                          \
        where = false;                                                                               \
        sql_put(q, len, __VA_ARGS__);                                                                \
        if (bind)                                                                                    \
            q->p[q->n++] = (V);                                                                      \
    } while (0)
    if (f->actor)
        TERM(DBP_TEXT(f->actor), "%sactor_sub = $%d", fc, ++k);
    if (f->action && f->action_prefix) {
        /* "auth.*" -> the first 5 characters are "auth." (no LIKE: '_' is a wildcard there) */
        size_t n = strlen(f->action) - 1;
        TERM(DBP_TEXT(f->action), "substr(%saction, 1, %zu) = substr($%d, 1, %zu)", fc, n, ++k, n);
    } else if (f->action) {
        TERM(DBP_TEXT(f->action), "%saction = $%d", fc, ++k);
    }
    if (f->resource_kind)
        TERM(DBP_TEXT(f->resource_kind), "e.resource_kind = $%d", ++k);
    if (f->resource_id)
        TERM(DBP_TEXT(f->resource_id), "e.resource_id = $%d", ++k);
    if (f->branch)
        TERM(DBP_TEXT(f->branch), "%sresource_branch = $%d", fc, ++k);
    if (f->outcome)
        TERM(DBP_TEXT(f->outcome), "e.outcome = $%d", ++k);
    if (f->request_id)
        TERM(DBP_TEXT(f->request_id), "%srequest_id = $%d", fc, ++k);
    if (f->commit_id)
        TERM(DBP_TEXT(f->commit_id), "e.commit_id = $%d", ++k);
    if (f->has_from)
        TERM(DBP_INT(f->from_ms), "%stime_ms >= $%d", fc, ++k);
    if (f->has_to)
        TERM(DBP_INT(f->to_ms), "%stime_ms < $%d", fc, ++k);
    if (f->has_cursor)
        TERM(DBP_INT(f->cursor_seq), "%s %s $%d", key, f->asc ? ">" : "<", ++k);
    if (f->upto_seq > 0)
        TERM(DBP_INT(f->upto_seq), "%s <= $%d", key, ++k);
#undef TERM
}

/* Two arms, merged in seq order (docs/audit.md "Queries"): the chained
 * events through the indexes of audit_facets, and the events still queued
 * for the chainer (never more than a few rounds' worth), filtered on the
 * events' own columns. The queue arm leaves out an event with facets: the
 * chainer removes the queue row in the transaction that writes them, so
 * this only guards against listing one twice.
 *
 * Each arm returns its driving table's seq, in that order, at most the
 * limit: the facets' indexes end in seq, so each backend walks one and
 * stops at the limit, and the outer sort sees at most twice the limit.
 * (Without the arms' own ORDER BY and LIMIT, PostgreSQL planned a join arm
 * for its whole result and sorted it: it merges ordered arms of a UNION ALL
 * only when they are single tables.) Each arm then reads its event by key,
 * one probe a row, as the events' own indexes did: SQLite's CROSS JOIN
 * keeps the join order as written, and on PostgreSQL a lateral subquery
 * that OFFSET 0 keeps from becoming a join (as a join, the facets arm was
 * merged with a scan of every event from the newest down to the cursor;
 * the queue arm, with statistics that put the queue at thousands of rows,
 * would read every event: see oms_store_audit_unchained_page). */
void oms_store_audit_filter_sql(oms_store_audit_query *q, const oms_store_audit_filter *f, int64_t limit, bool pg)
{
    memset(q, 0, sizeof *q);
    size_t len = 0;
    const char *dir = f->asc ? "ASC" : "DESC";
    sql_put(q, &len,
        "SELECT * FROM (SELECT f.seq, " OMS_AUDIT_EVENT_COLS_AFTER_SEQ ", c.prev_hash, c.hash FROM audit_facets f"
        " %s LEFT JOIN audit_chain c ON c.event_seq = e.seq",
        pg ? "CROSS JOIN LATERAL (SELECT * FROM audit_events e WHERE e.seq = f.seq OFFSET 0) e"
           : "CROSS JOIN audit_events e ON e.seq = f.seq");
    arm_terms(q, &len, f, "f.", "f.seq", true, true);
    int lim = q->n + 1; /* the limit's parameter, after the filter's */
    sql_put(q, &len, " ORDER BY f.seq %s LIMIT $%d) a UNION ALL SELECT * FROM (SELECT q.seq, " OMS_AUDIT_EVENT_COLS_AFTER_SEQ
        ", CAST(NULL AS TEXT), CAST(NULL AS TEXT) FROM audit_unchained q %s"
        " WHERE (SELECT x.seq FROM audit_facets x WHERE x.seq = q.seq) IS NULL",
        dir, lim,
        pg ? "CROSS JOIN LATERAL (SELECT * FROM audit_events e WHERE e.seq = q.seq OFFSET 0) e"
           : "CROSS JOIN audit_events e ON e.seq = q.seq");
    arm_terms(q, &len, f, "e.", "q.seq", false, false);
    q->p[q->n++] = DBP_INT(limit);
    sql_put(q, &len, " ORDER BY q.seq %s LIMIT $%d) b ORDER BY 1 %s LIMIT $%d", dir, lim, dir, lim);
}

int oms_store_audit_events_page(oms_dbconn *c, const oms_store_audit_filter *f, int64_t limit, oms_dbres **out,
                                oms_error *err)
{
    oms_store_audit_query q;
    oms_store_audit_filter_sql(&q, f, limit, oms_db_backend_of_conn(c) == OMS_DB_PG);
    return oms_db_exec(c, q.sql, q.p, q.n, out, err);
}

int oms_store_audit_event_by_id(oms_dbconn *c, const char *event_id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " OMS_AUDIT_COLS " FROM " OMS_AUDIT_FROM " WHERE e.event_id = $1");
    oms_dbparam p[] = {DBP_TEXT(event_id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_audit_max_seq(oms_dbconn *c, int64_t *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT COALESCE(MAX(seq), 0) FROM audit_events");
    return oms_db_run_int(c, &q, NULL, 0, out, err);
}

/* ---- the compliance report ---- */

/* Actions that are changes needing an issue reference (SPEC §6.3). */
#define CHANGE_ACTIONS                                                                                           \
    "('schema.changes', 'branch.merge', 'branch.revert', 'branch.delete', 'proposal.merge',"                     \
    " 'lock.force_release', 'resource.create', 'resource.update', 'resource.delete', 'object_type.create',"       \
    " 'object_type.update', 'object_type.delete', 'link_type.create', 'link_type.update', 'link_type.delete',"    \
    " 'action_type.create', 'action_type.update', 'action_type.delete', 'function_type.create',"                 \
    " 'function_type.update', 'function_type.delete', 'interface.create', 'interface.update', 'interface.delete'," \
    " 'shared_property.create', 'shared_property.update', 'shared_property.delete')"
#define IS_CHANGE "(action IN " CHANGE_ACTIONS " OR substr(action, 1, 4) = 'acl.')"
/* The period's events: the chained ones through audit_facets' time index,
 * with the (short) queue of those not chained yet (docs/audit.md
 * "Queries"); the outer terms then read the events themselves. */
#define PERIOD                                                                                                 \
    "seq IN (SELECT f.seq FROM audit_facets f WHERE f.time_ms >= $1 AND f.time_ms < $2 UNION ALL SELECT q.seq" \
    " FROM audit_unchained q) AND time_ms >= $1 AND time_ms < $2"

int oms_store_audit_report(oms_dbconn *c, oms_store_audit_report_read which, int64_t from_ms, int64_t to_ms,
                           oms_dbres **out, oms_error *err)
{
    static const oms_sql k[] = {
        [OMS_AUDIT_REPORT_TOTALS] = OMS_SQL_BOTH("SELECT action, outcome, count(*) FROM audit_events WHERE " PERIOD
                                                 " GROUP BY action, outcome ORDER BY action, outcome"),
        [OMS_AUDIT_REPORT_CHANGE_COUNT] = OMS_SQL_BOTH("SELECT count(*) FROM audit_events WHERE " PERIOD
                                                       " AND outcome = 'success' AND " IS_CHANGE),
        [OMS_AUDIT_REPORT_NO_ISSUE] = OMS_SQL_BOTH(
            "SELECT event_id, seq, time_ms, actor_sub, action, resource_branch, resource_kind, resource_id,"
            " commit_id FROM audit_events WHERE " PERIOD " AND outcome = 'success' AND " IS_CHANGE
            " AND (issue_keys IS NULL OR issue_keys = '' OR issue_keys = '[]') ORDER BY seq"),
        [OMS_AUDIT_REPORT_OVERRIDES] = OMS_SQL_BOTH(
            "SELECT COALESCE(override_id, resource_id), action, actor_sub, time_ms, resource_branch,"
            " detail, commit_id FROM audit_events WHERE " PERIOD " AND outcome = 'success'"
            " AND (substr(action, 1, 9) = 'override.' OR override_id IS NOT NULL) ORDER BY seq"),
        [OMS_AUDIT_REPORT_MERGES] = OMS_SQL_BOTH(
            "SELECT event_id, seq, time_ms, actor_sub, action, resource_branch, commit_id, detail,"
            " issue_keys, override_id FROM audit_events WHERE " PERIOD " AND outcome = 'success'"
            " AND action IN ('proposal.merge', 'branch.merge') ORDER BY seq"),
        [OMS_AUDIT_REPORT_FORCED_RELEASES] = OMS_SQL_BOTH(
            "SELECT event_id, seq, time_ms, actor_sub, resource_branch, resource_id, detail, issue_keys"
            " FROM audit_events WHERE " PERIOD " AND outcome = 'success' AND action = 'lock.force_release'"
            " ORDER BY seq"),
        [OMS_AUDIT_REPORT_ACTORS] = OMS_SQL_BOTH("SELECT actor_sub, outcome, count(*) FROM audit_events WHERE " PERIOD
                                                 " AND actor_sub IS NOT NULL GROUP BY actor_sub, outcome"),
        [OMS_AUDIT_REPORT_DENIALS] = OMS_SQL_BOTH(
            "SELECT actor_sub, count(*) FROM audit_events WHERE " PERIOD
            " AND outcome = 'denied' AND actor_sub IS NOT NULL GROUP BY actor_sub ORDER BY count(*) DESC, actor_sub"),
        [OMS_AUDIT_REPORT_AUTH_FAILURES] = OMS_SQL_BOTH(
            "SELECT client_addr, count(*) FROM audit_events WHERE " PERIOD
            " AND action = 'auth.failed' GROUP BY client_addr ORDER BY count(*) DESC, client_addr"),
    };
    oms_dbparam p[] = {DBP_INT(from_ms), DBP_INT(to_ms)};
    return oms_db_run(c, &k[which], p, 2, out, err);
}

int oms_store_audit_branch_rules(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT name, issue_required, protected FROM branches");
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_audit_approvers(oms_dbconn *c, const char *proposal, int64_t until_ms, oms_dbres **out,
                              oms_error *err)
{
    /* chained approvals through audit_facets' action index, and the queue of
     * those not chained yet, as PERIOD above */
    static const oms_sql q = OMS_SQL_BOTH("SELECT DISTINCT actor_sub FROM audit_events WHERE seq IN (SELECT f.seq"
                                          " FROM audit_facets f WHERE f.action = 'proposal.approve' UNION ALL"
                                          " SELECT q.seq FROM audit_unchained q) AND action = 'proposal.approve'"
                                          " AND outcome = 'success' AND resource_id = $1 AND time_ms <= $2"
                                          " ORDER BY actor_sub");
    oms_dbparam p[] = {DBP_TEXT(proposal), DBP_INT(until_ms)};
    return oms_db_run(c, &q, p, 2, out, err);
}
