#include "store/locks_sql.h"

#include <stdio.h>
#include <string.h>

#include "store/dialect.h"
#include "util/encoding.h"

int64_t oms_lock_branch_key(const char *branch)
{
    unsigned char h[32];
    char buf[160];
    int n = snprintf(buf, sizeof buf, "oms.lock.branch:%s", branch);
    oms_sha256(h, buf, (size_t)n);
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = k << 8 | h[i];
    return (int64_t)k;
}

int oms_store_lock_branch_xact(oms_dbconn *c, const char *branch, bool shared, oms_error *err)
{
    return oms_db_xact_lock(c, oms_lock_branch_key(branch), shared, err);
}

/* The common case in one statement: insert unless the branch is missing or
 * a live lock conflicts (the SQL form of oms_locks_conflict). When it
 * inserts nothing, the scan below finds out why; the scan's verdict (in C)
 * is the one that counts. $9: TTL in ms, $11: the deadline's offset from
 * now in ms, $12: the fencing token (SQLite only). */
#define ACQUIRE_INSERT(NOW, TOKEN)                                                                          \
    OMS_LOCK_WITH_NOW(NOW)                                                                                  \
    "INSERT INTO locks (id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at,"   \
    " expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, fencing_token, state)"                 \
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, n.t, n.t + $9, $10, n.t, n.t + $11, " TOKEN ", 'active' FROM n" \
    " WHERE EXISTS (SELECT 1 FROM branches WHERE name = $2) AND NOT EXISTS (SELECT 1 FROM locks o"          \
    " WHERE o.branch = $2 AND o.state = 'active' AND o.deadline_at > n.t AND (o.scope = 'branch'"           \
    " OR $3 = 'branch' OR (o.resource_type = $4 AND (o.scope = 'resource_type' OR $3 = 'resource_type'"      \
    " OR o.resource_id = $5))))"                                                                           \
    " RETURNING acquired_at, fencing_token"

int oms_store_lock_insert(oms_dbconn *c, const oms_lock_row_new *l, bool *inserted, int64_t *now, int64_t *token,
                          oms_error *err)
{
    static const oms_sql insert = {ACQUIRE_INSERT(OMS_LOCK_NOW_SQLITE, "$12"),
                                   ACQUIRE_INSERT(OMS_LOCK_NOW_PG, "nextval('lock_fencing_seq')")};
    oms_dbres *r = NULL;
    int64_t next = 0;
    int rc;
    *inserted = false;
    bool pg = oms_db_backend_of_conn(c) == OMS_DB_PG;
    if (!pg) {
        /* The fencing token: one sequence for every lock, so it only
         * increases (SQLite: a counter row, rolled back with a refusal). */
        if ((rc = oms_db_exec(c, "UPDATE lock_fencing SET value = value + 1 WHERE id = 1 RETURNING value", NULL, 0,
                              &r, err)))
            return rc;
        next = oms_dbres_int(r, 0, 0);
        oms_dbres_free(r);
        r = NULL;
    }
    oms_dbparam p[] = {DBP_TEXT(l->id),         DBP_TEXT(l->branch),       DBP_TEXT(l->scope),
                       DBP_TEXT(l->resource_type), DBP_TEXT(l->resource_id), DBP_TEXT(l->kind),
                       DBP_TEXT(l->holder),     DBP_TEXT(l->reason),       DBP_INT(l->ttl_ms),
                       DBP_INT(l->heartbeat_seconds), DBP_INT(l->deadline_ms), DBP_INT(next)};
    if ((rc = oms_db_run(c, &insert, p, pg ? 11 : 12, &r, err)))
        return rc;
    if (r->nrows == 1) {
        *inserted = true;
        *now = oms_dbres_int(r, 0, 0);
        *token = oms_dbres_int(r, 0, 1);
    }
    oms_dbres_free(r);
    return OMS_OK;
}

/* Branch existence, the database clock and every live lock of the branch,
 * in one statement (row 0 exists even when there is no lock). */
#define ACQUIRE_SCAN(NOW)                                                                                   \
    OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, (SELECT count(*) FROM branches WHERE name = $1), " OMS_LOCK_COLS  \
                           " FROM n LEFT JOIN locks l ON l.branch = $1 AND l.state = 'active'"            \
                           " AND l.deadline_at > n.t ORDER BY l.fencing_token"

int oms_store_lock_acquire_scan(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(ACQUIRE_SCAN);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_branch_protected_later(oms_dbconn *c, const char *branch, oms_dbres **rows, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT protected FROM branches WHERE name = $1");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run_read_later(c, &q, p, 1, rows, err);
}

#define ONE_LOCK(NOW) OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " OMS_LOCK_COLS " FROM n CROSS JOIN locks l WHERE l.id = $1"
#define ONE_LOCK_UPDATE(NOW) ONE_LOCK(NOW) " FOR UPDATE OF l"
#define ONE_LOCK_SHARE(NOW) ONE_LOCK(NOW) " FOR SHARE OF l"

int oms_store_lock_load(oms_dbconn *c, const char *id, bool for_update, bool for_share, oms_dbres **out,
                        oms_error *err)
{
    /* SQLite's write transaction already excludes every other writer. */
    static const oms_sql plain = OMS_SQL_WITH_NOW(ONE_LOCK);
    static const oms_sql update = {ONE_LOCK(OMS_LOCK_NOW_SQLITE), ONE_LOCK_UPDATE(OMS_LOCK_NOW_PG)};
    static const oms_sql share = {ONE_LOCK(OMS_LOCK_NOW_SQLITE), ONE_LOCK_SHARE(OMS_LOCK_NOW_PG)};
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, for_update ? &update : for_share ? &share : &plain, p, 1, out, err);
}

#define BRANCH_LOCKS(NOW)                                                                                \
    OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " OMS_LOCK_COLS " FROM n CROSS JOIN locks l"                     \
                           " WHERE l.branch = $1 AND l.state = 'active' AND l.deadline_at > n.t"         \
                           " ORDER BY l.fencing_token"

int oms_store_locks_live_on_branch(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(BRANCH_LOCKS);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_lock_check_reads_later(oms_dbconn *c, const char *branch, const char *const *own, size_t nown,
                                     oms_dbres **own_rows, oms_dbres **live, oms_error *err)
{
    static const oms_sql share = {ONE_LOCK(OMS_LOCK_NOW_SQLITE), ONE_LOCK_SHARE(OMS_LOCK_NOW_PG)};
    static const oms_sql scan = OMS_SQL_WITH_NOW(BRANCH_LOCKS);
    int rc = oms_store_lock_branch_xact(c, branch, true, err);
    for (size_t i = 0; rc == OMS_OK && i < nown; i++) {
        oms_dbparam p[] = {DBP_TEXT(own[i])};
        rc = oms_db_run_read_later(c, &share, p, 1, &own_rows[i], err);
    }
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return rc ? rc : oms_db_run_read_later(c, &scan, p, 1, live, err);
}

/* State filters of the list: fixed SQL fragments (never client text). */
#define LIST(NOW, COND)                                                                                     \
    OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " OMS_LOCK_COLS " FROM n CROSS JOIN locks l WHERE l.fencing_token > $1" \
                           " AND ($2 = '' OR l.branch = $2) AND ($3 = '' OR l.holder = $3) AND " COND          \
                           " ORDER BY l.fencing_token LIMIT $4"
#define LIST_PAIR(COND) {LIST(OMS_LOCK_NOW_SQLITE, COND), LIST(OMS_LOCK_NOW_PG, COND)}

static const struct {
    const char *name;
    oms_sql q;
} k_state_filters[] = {
    {"active", LIST_PAIR("l.state = 'active' AND l.deadline_at > n.t")},
    {"expired", LIST_PAIR("(l.state = 'expired' OR (l.state = 'active' AND l.deadline_at <= n.t))")},
    {"released", LIST_PAIR("l.state = 'released'")},
    {"force_released", LIST_PAIR("l.state = 'force_released'")},
    {"all", LIST_PAIR("1 = 1")},
};

int oms_store_lock_state_filter(const char *name)
{
    for (size_t i = 0; i < sizeof k_state_filters / sizeof k_state_filters[0]; i++)
        if (!strcmp(name, k_state_filters[i].name))
            return (int)i;
    return -1;
}

int oms_store_locks_list(oms_dbconn *c, int64_t after, const char *branch, const char *holder, int state,
                         int64_t limit, oms_dbres **out, oms_error *err)
{
    if (state < 0 || (size_t)state >= sizeof k_state_filters / sizeof k_state_filters[0])
        return oms_err_set(err, OMS_EINVAL, "unknown state filter");
    oms_dbparam p[] = {DBP_INT(after), DBP_TEXT(branch ? branch : ""), DBP_TEXT(holder ? holder : ""),
                       DBP_INT(limit)};
    return oms_db_run(c, &k_state_filters[state].q, p, 4, out, err);
}

int oms_store_lock_liveness(oms_dbconn *c, const char *id, int64_t expires_at, int64_t last_heartbeat_at,
                            int64_t deadline_at, bool has_percent, double percent, const char *phase,
                            const char *message, int64_t progress_updated_at, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "UPDATE locks SET expires_at = $2, last_heartbeat_at = $3, deadline_at = $4,"
        " progress_percent = $5, progress_phase = $6, progress_message = $7,"
        " progress_updated_at = $8 WHERE id = $1 AND state = 'active'");
    char pct[40];
    snprintf(pct, sizeof pct, "%.17g", percent);
    oms_dbparam p[] = {DBP_TEXT(id),
                       DBP_INT(expires_at),
                       DBP_INT(last_heartbeat_at),
                       DBP_INT(deadline_at),
                       has_percent ? DBP_TEXT(pct) : DBP_NULL,
                       DBP_TEXT(phase),
                       DBP_TEXT(message),
                       progress_updated_at ? DBP_INT(progress_updated_at) : DBP_NULL};
    /* the row is held (FOR UPDATE) and live: nobody reads the count, so
     * the update travels with the COMMIT (or the audit event) */
    return oms_db_run_later(c, &q, p, 8, err);
}

#define RELEASE_OWN_SQLITE                                                                                  \
    "UPDATE locks SET state = 'released', ended_at = " OMS_LOCK_NOW_SQLITE ", ended_by = $2 WHERE id = $1"   \
    " AND holder = $2 AND state = 'active' AND deadline_at > " OMS_LOCK_NOW_SQLITE " RETURNING ended_at, "    \
    OMS_LOCK_COLS_BARE
#define RELEASE_OWN_PG                                                                                      \
    OMS_LOCK_WITH_NOW(OMS_LOCK_NOW_PG) "UPDATE locks SET state = 'released', ended_at = n.t, ended_by = $2"  \
                                       " FROM n WHERE id = $1 AND holder = $2 AND state = 'active'"          \
                                       " AND deadline_at > n.t RETURNING ended_at, " OMS_LOCK_COLS_BARE

int oms_store_lock_release_own(oms_dbconn *c, const char *id, const char *sub, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {RELEASE_OWN_SQLITE, RELEASE_OWN_PG};
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(sub)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_lock_end(oms_dbconn *c, const char *id, const char *state, int64_t now, const char *by,
                       oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "UPDATE locks SET state = $2, ended_at = $3, ended_by = $4 WHERE id = $1 AND state = 'active'");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(state), DBP_INT(now), DBP_TEXT(by)};
    return oms_db_run(c, &q, p, 4, NULL, err);
}

#define REAP_BATCH "500"
/* Every active lock through the partial index of active locks (by branch:
 * the only one, migration 0020), sorted by deadline; in id order SQLite
 * walked the primary key over every lock ever taken. */
#define PROBE(NOW) "SELECT 1 FROM locks WHERE state = 'active' AND deadline_at <= " NOW " LIMIT 1"
#define REAP(NOW, LOCKING)                                                                                 \
    "UPDATE locks SET state = 'expired', ended_at = deadline_at, ended_by = 'oms' WHERE id IN"              \
    " (SELECT id FROM locks WHERE state = 'active' AND deadline_at <= " NOW " ORDER BY deadline_at, id LIMIT " REAP_BATCH \
    LOCKING ") RETURNING " OMS_LOCK_COLS_BARE

int oms_store_locks_due(oms_dbconn *c, bool *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(PROBE);
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    *out = rc == OMS_OK && r->nrows > 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_locks_reaper_turn(oms_dbconn *c, bool *mine, oms_error *err)
{
    *mine = true;
    if (oms_db_backend_of_conn(c) != OMS_DB_PG) /* SQLite: one process owns the file */
        return OMS_OK;
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT pg_try_advisory_xact_lock(" OMS_LOCK_REAPER_KEY ")", NULL, 0, &r, err);
    *mine = rc == OMS_OK && strcmp(oms_dbres_get(r, 0, 0), "t") == 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_locks_reap(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {REAP(OMS_LOCK_NOW_SQLITE, ""), REAP(OMS_LOCK_NOW_PG, " FOR UPDATE SKIP LOCKED")};
    return oms_db_run(c, &q, NULL, 0, out, err);
}
