/* Storage of locks (SPEC §7, docs/locks.md): the `locks` table, its
 * fencing sequence and the branch advisory locks, both dialects side by
 * side. Times are epoch milliseconds on the database clock, read once per
 * statement (n.t). Row sets that carry locks hold "now" in column 0 and the
 * lock's columns (OMS_LOCK_COLS below) from column 1, unless
 * said otherwise; oms_lock_from_row reads them. */
#ifndef OMS_STORE_LOCKS_SQL_H
#define OMS_STORE_LOCKS_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

/* The columns oms_lock_from_row reads, in order, qualified by alias `l`. */
#define OMS_LOCK_COLS                                                                                          \
    "l.id, l.branch, l.scope, l.resource_type, l.resource_id, l.kind, l.holder, l.reason, l.acquired_at,"      \
    " l.expires_at, l.heartbeat_seconds, l.last_heartbeat_at, l.deadline_at, l.progress_percent,"             \
    " l.progress_phase, l.progress_message, l.progress_updated_at, l.fencing_token, l.state, l.ended_at,"     \
    " l.ended_by"
#define OMS_LOCK_NCOLS 21
/* The same unqualified, for RETURNING (SQLite allows no alias there). */
#define OMS_LOCK_COLS_BARE                                                                                     \
    "id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at, expires_at,"            \
    " heartbeat_seconds, last_heartbeat_at, deadline_at, progress_percent, progress_phase, progress_message,"  \
    " progress_updated_at, fencing_token, state, ended_at, ended_by"

/* "The database clock now" as a SQL expression, and a statement prefix
 * binding it once as n.t (clock_timestamp() moves within a statement, so
 * it is read once in a materialised CTE). */
#define OMS_LOCK_NOW_PG OMS_DB_NOW_PG
#define OMS_LOCK_NOW_SQLITE OMS_DB_NOW_SQLITE
#define OMS_LOCK_WITH_NOW(NOW) "WITH n AS MATERIALIZED (SELECT " NOW " AS t) "

/* Picks the statement text of the connection's backend. */
static inline const char *oms_lock_sql(oms_db_backend b, const char *sqlite_sql, const char *pg_sql)
{
    return b == OMS_DB_PG ? pg_sql : sqlite_sql;
}

/* Keys of transaction-scoped advisory locks: one per branch (acquisitions
 * take it exclusively, writes shared), one for the reaper. */
int64_t oms_lock_branch_key(const char *branch);
#define OMS_LOCK_REAPER_KEY "5714314956222124114" /* "OMS-LRPR" in ASCII */

/* The values of a new lock row. */
typedef struct {
    const char *id, *branch, *scope, *resource_type, *resource_id, *kind, *holder, *reason;
    int64_t ttl_ms, heartbeat_seconds, deadline_ms; /* deadline: offset from now */
} oms_lock_row_new;

/* Serialises acquisitions on a branch (exclusive) against writes that
 * passed the lock check (shared), until the transaction ends. */
int oms_store_lock_branch_xact(oms_dbconn *c, const char *branch, bool shared, oms_error *err);

/* Inserts the lock unless the branch is missing or a live lock conflicts
 * (the SQL form of oms_locks_conflict), taking the next fencing token.
 * *inserted false when it inserted nothing; else *now and *token. */
int oms_store_lock_insert(oms_dbconn *c, const oms_lock_row_new *l, bool *inserted, int64_t *now, int64_t *token,
                          oms_error *err);
/* Why an insert was refused: one row set with now (col 0), the branch's
 * existence (col 1: count) and every live lock of the branch (from col 2;
 * col 2 NULL when there is none). */
int oms_store_lock_acquire_scan(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* Is the branch protected? Held back (oms_db_read_later) to travel with
 * the next statement: *rows gets one row (protected) or none. */
int oms_store_branch_protected_later(oms_dbconn *c, const char *branch, oms_dbres **rows, oms_error *err);

/* One lock with now; `for_update` row-locks it where rows are locked,
 * `for_share` share-locks it (the write path's fencing check). */
int oms_store_lock_load(oms_dbconn *c, const char *id, bool for_update, bool for_share, oms_dbres **out,
                        oms_error *err);
/* Every live lock of a branch, by fencing token, with now. */
int oms_store_locks_live_on_branch(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* The write path's lock reads held back (oms_db_read_later) to travel with
 * the next statement, in this order: the branch's shared advisory lock
 * (PostgreSQL), each lock of `own` share-locked (oms_store_lock_load's
 * rows, into own_rows[i]), then every live lock of the branch (*live). The
 * reads run after the advisory lock is granted, each with its own snapshot. */
int oms_store_lock_check_reads_later(oms_dbconn *c, const char *branch, const char *const *own, size_t nown,
                                     oms_dbres **own_rows, oms_dbres **live, oms_error *err);

/* The list's state filters: the index of `name` (active, expired,
 * released, force_released, all), or -1. */
int oms_store_lock_state_filter(const char *name);
/* Locks with fencing token > after, of branch / holder (NULL: any), of
 * the state filter `state` (index), by token, at most `limit`. */
int oms_store_locks_list(oms_dbconn *c, int64_t after, const char *branch, const char *holder, int state,
                         int64_t limit, oms_dbres **out, oms_error *err);

/* Stores expires_at, last_heartbeat_at, deadline_at and the progress of a
 * live lock (percent NULL when !has_percent, updated_at NULL when 0); held
 * back (oms_db_run_later) to travel with the transaction's next statement. */
int oms_store_lock_liveness(oms_dbconn *c, const char *id, int64_t expires_at, int64_t last_heartbeat_at,
                            int64_t deadline_at, bool has_percent, double percent, const char *phase,
                            const char *message, int64_t progress_updated_at, oms_error *err);
/* The holder `sub` releases its live lock, in one statement: one row (the
 * ended_at as now in col 0, the lock from col 1) when it did, none when the
 * lock is not that (someone else's, ended, unknown). */
int oms_store_lock_release_own(oms_dbconn *c, const char *id, const char *sub, oms_dbres **out, oms_error *err);
/* Ends an active lock: state released / force_released. */
int oms_store_lock_end(oms_dbconn *c, const char *id, const char *state, int64_t now, const char *by,
                       oms_error *err);

/* A lock change in one statement, its audit event and outbox row with it
 * (PostgreSQL only; store/locks_one_shot_sql.c, docs/locks.md "One round
 * trip"). Both are held back (oms_db_read_later) to travel with COMMIT,
 * and write only when every condition holds, each then one row in *out:
 *   - acquire: the branch exists, is unprotected unless the scope is
 *     `resource`, no live lock conflicts, and the ACL version is
 *     `acl_version` (-1: not checked). The row: acquired_at, fencing
 *     token. `token_text` is replaced in the event's detail and the outbox
 *     body by "fencing_token":<the token>.
 *   - release: the lock `id` is the live lock of `holder` on `branch` with
 *     fencing token `token`, at the ACL version `acl_version` (-1: not
 *     checked). The row: ended_at (now) in col 0, the lock from col 1.
 * `audit`: OMS_AUDIT_EVENT_NPARAMS values (store/audit_sql.h); `event`:
 * OMS_STORE_EVENT_NPARAMS values (store/events_sql.h), NULL for none. */
int oms_store_lock_acquire_one_shot(oms_dbconn *c, const oms_lock_row_new *l, int64_t acl_version,
                                    const char *token_text, const oms_dbparam *audit, const oms_dbparam *event,
                                    oms_dbres **out, oms_error *err);
int oms_store_lock_release_one_shot(oms_dbconn *c, const char *id, const char *holder, const char *branch,
                                    int64_t token, int64_t acl_version, const oms_dbparam *audit,
                                    const oms_dbparam *event, oms_dbres **out, oms_error *err);

/* The reaper: is any active lock past its deadline? */
int oms_store_locks_due(oms_dbconn *c, bool *out, oms_error *err);
/* The reaper's turn: false when another instance is reaping (a
 * transaction-scoped try-lock; always true where writers are serialised). */
int oms_store_locks_reaper_turn(oms_dbconn *c, bool *mine, oms_error *err);
/* Marks up to `batch` lapsed locks expired (ended_at = their deadline,
 * ended_by 'oms'), skipping rows a writer holds; returns them (the lock's
 * columns from col 0). */
int oms_store_locks_reap(oms_dbconn *c, oms_dbres **out, oms_error *err);

#endif
