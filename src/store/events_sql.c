#include "store/events_sql.h"

#include <stdlib.h>

#include "store/dialect.h"

/* ---- events ---- */

int oms_store_event_insert(oms_dbconn *c, const char *id, const char *type, const char *branch, int64_t time_ms,
                           const char *body, oms_error *err)
{
    /* SQLite serialises writers: the next position is known now and is the
     * commit order. PostgreSQL commits in any order: the event waits in its
     * queue and the sequencer moves what has committed into `events` with
     * its position (oms_store_events_order, migration 0018). */
    static const oms_sql q = {
        "INSERT INTO events (pos, id, type, branch, time_ms, body)"
        " VALUES ((SELECT COALESCE(MAX(pos), 0) + 1 FROM events), $1, $2, $3, $4, $5)",
        "INSERT INTO events_pending (id, type, branch, time_ms, body) VALUES ($1, $2, $3, $4, $5)"};
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(type), DBP_TEXT(branch), DBP_INT(time_ms), DBP_TEXT(body)};
    /* nobody reads its rows and its failure fails the change: it travels
     * with the transaction's next statement or its COMMIT (PostgreSQL) */
    return oms_db_run_later(c, &q, p, 5, err);
}

/* Events in `events` without a position, given the next ones in insert
 * order: on PostgreSQL those written by an earlier version during an
 * upgrade (before migration 0018), and on either backend those restored
 * from a PostgreSQL backup taken while they waited. None in the steady
 * state: its partial index (events_unordered) is empty. */
int oms_store_events_place(oms_dbconn *c, int64_t max, int64_t *n, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "WITH m AS (SELECT COALESCE(MAX(pos), 0) AS p FROM events),"
        " u AS (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) AS rn FROM"
        "       (SELECT seq FROM events WHERE pos IS NULL ORDER BY seq LIMIT $1) s)"
        " UPDATE events SET pos = m.p + u.rn FROM m, u WHERE events.seq = u.seq");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(max)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *n = rc == OMS_OK && r ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

/* What has committed in PostgreSQL's queue moves, in insert order, with
 * the next positions: `events` only ever gains rows (no dead row versions
 * for autovacuum to clear from its indexes). A queued event whose
 * transaction is still open is not visible here and waits its turn.
 *
 * The queue is read by its key only: the page's keys from its primary key
 * in order, the rows by `= ANY` of them, with sequential and bitmap scans
 * off for the round's transaction (oms_store_events_order). Between two
 * autovacuums the queue's heap fills with the dead rows of every event
 * moved, about ten a page with their bodies, and the planner, sizing the
 * table by those pages, read it whole on every round: as a hash semi join
 * (246 pages for none to move), or with a batch of 10,000 as a sequential
 * scan and a sort. The key's scan steps over dead entries once they are
 * marked (usually on its first pass): a few index pages. */
static int move_queued(oms_dbconn *c, int64_t max, int64_t *n, oms_error *err)
{
    static const char k_move_pg[] =
        "WITH m AS (SELECT COALESCE(MAX(pos), 0) AS p FROM events),"
        " mv AS (DELETE FROM events_pending WHERE seq = ANY (ARRAY"
        "        (SELECT seq FROM events_pending ORDER BY seq LIMIT $1))"
        "        RETURNING seq, id, type, branch, time_ms, body)"
        " INSERT INTO events (seq, pos, id, type, branch, time_ms, body)"
        " SELECT mv.seq, m.p + ROW_NUMBER() OVER (ORDER BY mv.seq), mv.id, mv.type, mv.branch, mv.time_ms, mv.body"
        " FROM mv, m";
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(max)};
    int rc = oms_db_exec(c, k_move_pg, p, 1, &r, err);
    *n = rc == OMS_OK && r ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

/* The round's planner settings (PostgreSQL: SQLite has no queue) */
static const char k_no_seqscan_pg[] = "SET LOCAL enable_seqscan = off";
static const char k_no_bitmapscan_pg[] = "SET LOCAL enable_bitmapscan = off";

int oms_store_events_order(oms_dbconn *c, int64_t max, int64_t *n, oms_error *err)
{
    *n = 0;
    if (oms_db_single_writer_conn(c))
        return OMS_OK;
    int rc = oms_db_begin(c, true, err);
    if (rc)
        return rc;
    /* one sequencer at a time across instances; the queue by its key
     * (move_queued), whatever the planner makes of its dead rows */
    int64_t placed = 0, moved = 0;
    if ((rc = oms_db_exec_later(c, k_no_seqscan_pg, NULL, 0, err)) == OMS_OK &&
        (rc = oms_db_exec_later(c, k_no_bitmapscan_pg, NULL, 0, err)) == OMS_OK &&
        (rc = oms_db_xact_lock(c, 0x6f6d736576656e74LL, false, err)) == OMS_OK &&
        (rc = oms_store_events_place(c, max, &placed, err)) == OMS_OK &&
        (placed >= max || (rc = move_queued(c, max - placed, &moved, err)) == OMS_OK)) {
        if ((rc = oms_db_commit(c, err)) == OMS_OK)
            *n = placed + moved;
    } else {
        oms_db_rollback(c);
    }
    return rc;
}

int oms_store_events_page(oms_dbconn *c, int64_t after, int64_t limit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT pos, id, type, branch, body FROM events WHERE pos > $1 ORDER BY pos LIMIT $2");
    oms_dbparam p[] = {DBP_INT(after), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_events_last_pos(oms_dbconn *c, int64_t *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT COALESCE(MAX(pos), 0) FROM events");
    return oms_db_run_int(c, &q, NULL, 0, out, err);
}

int oms_store_event_body(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT pos, body FROM events WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

/* Positions are given without gaps (MAX(pos) + 1 on SQLite, the
 * sequencer's MAX(pos) + ROW_NUMBER() on PostgreSQL) and an event is only
 * ever deleted at or below every enabled subscription's cursor, with the
 * newest kept (oms_store_events_expire): so the events past the lowest
 * cursor are the difference of two positions, read from the index's ends,
 * not counted. A COUNT(*) with `pos IS NULL OR pos > cursor` read every
 * event of the retention period on each scrape of /metrics (on
 * PostgreSQL 0.17 s a call in minutes 4-5 of the 20-minute soak and 0.44 s
 * in minutes 11-12, docs/BENCHMARKS.md round 44). */
int oms_store_events_depth(oms_dbconn *c, int64_t *out, oms_error *err)
{
#define EVENTS_DEPTH                                                                                           \
    "SELECT (SELECT COUNT(*) FROM events WHERE pos IS NULL),"                                                 \
    " (SELECT COALESCE(MAX(pos), 0) FROM events),"                                                            \
    " (SELECT MIN(cursor_pos) FROM webhooks WHERE enabled = 1),"                                              \
    " (SELECT COUNT(*) FROM webhook_deliveries WHERE status IN ('pending', 'retrying')),"
    /* PostgreSQL: and the events still waiting for their position */
    static const oms_sql q = {EVENTS_DEPTH " 0", EVENTS_DEPTH " (SELECT COUNT(*) FROM events_pending)"};
#undef EVENTS_DEPTH
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    if (rc == OMS_OK) {
        int64_t last = oms_dbres_int(r, 0, 1);
        /* a cursor past the last position (a database whose events all
         * expired before the newest was kept) has nothing to read */
        int64_t behind = oms_dbres_get(r, 0, 2) ? last - oms_dbres_int(r, 0, 2) : 0;
        *out = oms_dbres_int(r, 0, 0) + (behind > 0 ? behind : 0) + oms_dbres_int(r, 0, 3) + oms_dbres_int(r, 0, 4);
    }
    oms_dbres_free(r);
    return rc;
}

/* The retention sweep (every minute) in position order: the positions it
 * may delete are those below the first event young enough to keep, at or
 * below every enabled subscription's cursor, and below the newest event.
 * The newest stays because the next position is MAX(pos) + 1: with every
 * event expired (an idle week), positions would start again at 1, behind
 * every subscription's cursor and every consumer's `after`. The bounds come
 * from the position index's ends and one walk from the oldest event to the
 * first young one, so a sweep with nothing to delete reads a few index
 * pages; the delete then reads the range by that index. Before, with no
 * index on time, every sweep read every event (on PostgreSQL 0.26 s in
 * minutes 4-5 of the 20-minute soak and 0.52 s in minutes 11-12). An event
 * positioned after a younger one (its transaction committed later) waits
 * for that one: seconds past the retention age. */
int oms_store_events_expire(oms_dbconn *c, int64_t before_ms, int64_t *n, oms_error *err)
{
    static const oms_sql bounds = OMS_SQL_BOTH(
        "SELECT (SELECT MIN(pos) FROM events),"
        " (SELECT MAX(pos) FROM events),"
        " (SELECT y.pos FROM events y WHERE y.pos IS NOT NULL AND y.time_ms >= $1 ORDER BY y.pos LIMIT 1),"
        " (SELECT MIN(cursor_pos) FROM webhooks WHERE enabled = 1)");
    static const oms_sql ev = OMS_SQL_BOTH(
        "DELETE FROM events WHERE pos >= $2 AND pos <= $3 AND time_ms < $1"
        " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_pos = events.pos"
        "                 AND d.status IN ('pending', 'retrying'))");
    static const oms_sql dl = OMS_SQL_BOTH(
        "DELETE FROM webhook_deliveries WHERE updated_at < $1 AND status IN ('delivered', 'dead')");
    *n = 0;
    oms_dbparam p[] = {DBP_INT(before_ms), DBP_INT(0), DBP_INT(0)};
    oms_dbres *b = NULL, *r = NULL;
    int rc = oms_db_begin(c, true, err);
    if (rc)
        return rc;
    if ((rc = oms_db_run(c, &bounds, p, 1, &b, err)) == OMS_OK) {
        const char *lo = oms_dbres_get(b, 0, 0), *young = oms_dbres_get(b, 0, 2), *cursor = oms_dbres_get(b, 0, 3);
        int64_t hi = lo ? oms_dbres_int(b, 0, 1) - 1 : 0;
        if (young && oms_dbres_int(b, 0, 2) - 1 < hi)
            hi = oms_dbres_int(b, 0, 2) - 1;
        if (cursor && oms_dbres_int(b, 0, 3) < hi)
            hi = oms_dbres_int(b, 0, 3);
        if (lo && oms_dbres_int(b, 0, 0) <= hi) {
            p[1] = DBP_INT(oms_dbres_int(b, 0, 0));
            p[2] = DBP_INT(hi);
            rc = oms_db_run(c, &ev, p, 3, &r, err);
        }
    }
    if (rc == OMS_OK && (rc = oms_db_run(c, &dl, p, 1, NULL, err)) == OMS_OK)
        rc = oms_db_commit(c, err);
    else
        oms_db_rollback(c);
    *n = rc == OMS_OK && r ? r->changes : 0;
    oms_dbres_free(b);
    oms_dbres_free(r);
    return rc;
}

/* ---- webhook subscriptions ---- */

#define WH_COLS                                                                                                 \
    "id, url, types, branches, description, enabled, builtin, cursor_pos, created_at, created_by, updated_at, " \
    "secret"

int oms_store_webhook_insert(oms_dbconn *c, const oms_webhook_row *w, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO webhooks (id, url, secret, types, branches, description, enabled, builtin, cursor_pos,"
        " created_at, created_by, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT COALESCE(MAX(pos), 0) FROM events), $9, $10, $9)");
    oms_dbparam p[] = {DBP_TEXT(w->id),       DBP_TEXT(w->url),         DBP_TEXT(w->secret),
                       DBP_TEXT(w->types),    DBP_TEXT(w->branches),    DBP_TEXT(w->description ? w->description : ""),
                       DBP_INT(w->enabled),   DBP_INT(w->builtin),      DBP_INT(w->now_ms),
                       DBP_TEXT(w->created_by)};
    return oms_db_run(c, &q, p, 10, NULL, err);
}

int oms_store_webhook_update(oms_dbconn *c, const oms_webhook_row *w, bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "UPDATE webhooks SET url = COALESCE($2, url), secret = COALESCE($3, secret), types = $4, branches = $5,"
        " description = $6, enabled = $7, updated_at = $8 WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(w->id),       DBP_TEXT(w->url),      DBP_TEXT(w->secret),
                       DBP_TEXT(w->types),    DBP_TEXT(w->branches), DBP_TEXT(w->description ? w->description : ""),
                       DBP_INT(w->enabled),   DBP_INT(w->now_ms)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 8, &r, err);
    *found = rc == OMS_OK && r && r->changes > 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_webhook_delete(oms_dbconn *c, const char *id, bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("DELETE FROM webhooks WHERE id = $1");
    static const oms_sql d = OMS_SQL_BOTH("DELETE FROM webhook_deliveries WHERE webhook_id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *found = rc == OMS_OK && r && r->changes > 0;
    oms_dbres_free(r);
    return rc ? rc : oms_db_run(c, &d, p, 1, NULL, err);
}

int oms_store_webhook_get(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " WH_COLS " FROM webhooks WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_webhook_page(oms_dbconn *c, const char *after_id, int64_t limit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " WH_COLS " FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2");
    oms_dbparam p[] = {DBP_TEXT(after_id ? after_id : ""), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_webhook_claim(oms_dbconn *c, const char *owner, int64_t now_ms, int64_t until_ms, oms_dbres **out,
                            oms_error *err)
{
    static const oms_sql q = {
        "UPDATE webhooks SET lease_owner = $1, lease_until = $3 WHERE id = (SELECT id FROM webhooks"
        " WHERE enabled = 1 AND lease_until < $2 ORDER BY lease_until, id LIMIT 1) RETURNING " WH_COLS,
        "UPDATE webhooks SET lease_owner = $1, lease_until = $3 WHERE id = (SELECT id FROM webhooks"
        " WHERE enabled = 1 AND lease_until < $2 ORDER BY lease_until, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING " WH_COLS};
    /* Looked for with a read first: the idle workers poll several times a
     * second, and on SQLite an UPDATE takes the file's write lock even when
     * it matches nothing, so every poll would hold up a committing writer
     * (whose BEGIN IMMEDIATE then sleeps in the busy handler). */
    static const oms_sql any = OMS_SQL_BOTH("SELECT 1 FROM webhooks WHERE enabled = 1 AND lease_until < $1 LIMIT 1");
    oms_dbparam a[] = {DBP_INT(now_ms)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &any, a, 1, &r, err);
    bool claimable = rc == OMS_OK && r->nrows > 0;
    if (rc != OMS_OK || !claimable) {
        *out = r;
        return rc;
    }
    oms_dbres_free(r);
    oms_dbparam p[] = {DBP_TEXT(owner), DBP_INT(now_ms), DBP_INT(until_ms)};
    return oms_db_run(c, &q, p, 3, out, err);
}

int oms_store_webhook_release(oms_dbconn *c, const char *id, const char *owner, int64_t next_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "UPDATE webhooks SET lease_owner = NULL, lease_until = $3 WHERE id = $1 AND lease_owner = $2");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(owner), DBP_INT(next_ms)};
    return oms_db_run(c, &q, p, 3, NULL, err);
}

int oms_store_webhook_release_all(oms_dbconn *c, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE webhooks SET lease_owner = NULL, lease_until = 0");
    return oms_db_run(c, &q, NULL, 0, NULL, err);
}

int oms_store_webhook_set_cursor(oms_dbconn *c, const char *id, int64_t pos, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE webhooks SET cursor_pos = $2 WHERE id = $1 AND cursor_pos < $2");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_INT(pos)};
    return oms_db_run(c, &q, p, 2, NULL, err);
}

/* ---- deliveries ---- */

#define DLV_COLS \
    "id, webhook_id, event_id, event_pos, status, attempts, next_at, last_status, last_error, created_at, updated_at"

int oms_store_delivery_insert(oms_dbconn *c, const char *id, const char *webhook_id, const char *event_id,
                              int64_t event_pos, int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_pos, status, attempts, next_at,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(webhook_id), DBP_TEXT(event_id), DBP_INT(event_pos), DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 5, NULL, err);
}

int oms_store_delivery_next(oms_dbconn *c, const char *webhook_id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT " DLV_COLS " FROM webhook_deliveries WHERE webhook_id = $1 AND status IN ('pending', 'retrying')"
        " ORDER BY event_pos, created_at, id LIMIT 1");
    oms_dbparam p[] = {DBP_TEXT(webhook_id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_delivery_get(oms_dbconn *c, const char *webhook_id, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT " DLV_COLS " FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2");
    oms_dbparam p[] = {DBP_TEXT(webhook_id), DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_delivery_page(oms_dbconn *c, const char *webhook_id, const char *status, int64_t limit,
                            int64_t before_ms, const char *before_id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT " DLV_COLS " FROM webhook_deliveries WHERE webhook_id = $1"
        " AND (CAST($2 AS TEXT) IS NULL OR status = $2)"
        " AND (created_at < $3 OR (created_at = $3 AND id < $4))"
        " ORDER BY created_at DESC, id DESC LIMIT $5");
    oms_dbparam p[] = {DBP_TEXT(webhook_id), DBP_TEXT(status), DBP_INT(before_ms),
                       DBP_TEXT(before_id ? before_id : "~"), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 5, out, err);
}

int oms_store_delivery_attempted(oms_dbconn *c, const char *id, const char *status, int64_t next_at,
                                 int http_status, const char *error, int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_at = $3, last_status = $4,"
        " last_error = $5, updated_at = $6 WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id),
                       DBP_TEXT(status),
                       DBP_INT(next_at),
                       http_status ? DBP_INT(http_status) : DBP_NULL,
                       DBP_TEXT(error),
                       DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 6, NULL, err);
}
