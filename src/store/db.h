/* The SQL driver under store.h: one small interface, two backends (SQLite and
 * PostgreSQL through libpq). Statements are written once with $1..$n
 * placeholders and portable SQL (BIGINT epoch-millisecond times, INTEGER
 * booleans, TEXT JSON); backend-specific SQL lives only in migrations.
 *
 * Connections are per thread (one per worker, like a pool sized to the
 * workers). A connection found broken is replaced: before a statement
 * outside a transaction (and before BEGIN) an idle connection that the
 * server closed is reopened without sending anything on it, and a statement
 * that certainly did not run (never sent, a BEGIN, a plain SELECT outside a
 * transaction) is sent once more on a fresh connection. A COMMIT whose
 * answer was lost is never repeated: its outcome is unknown.
 *
 * Every wait is bounded (docs/operations.md "Timeouts and deadlines"):
 * PostgreSQL gets statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout, connect_timeout and TCP keepalives,
 * and OMS itself stops waiting for an answer shortly after the statement
 * timeout; SQLite waits at most the busy timeout for its write lock. Running
 * out of time is OMS_ETIMEOUT (503 database_timeout), a full disk OMS_EFULL
 * (507 storage_full). */
#ifndef OMS_DB_H
#define OMS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef enum { OMS_DB_SQLITE, OMS_DB_PG } oms_db_backend;
typedef enum { OMS_DBP_NULL, OMS_DBP_TEXT, OMS_DBP_INT } oms_dbparam_type;

typedef struct {
    oms_dbparam_type type;
    const char *s;
    int64_t i;
} oms_dbparam;

static inline oms_dbparam DBP_TEXT(const char *s)
{
    return (oms_dbparam){.type = s ? OMS_DBP_TEXT : OMS_DBP_NULL, .s = s};
}
static inline oms_dbparam DBP_INT(int64_t i) { return (oms_dbparam){.type = OMS_DBP_INT, .i = i}; }
#define DBP_NULL ((oms_dbparam){.type = OMS_DBP_NULL})
/* The most parameters one statement may take (a lock change's statement
 * with its audit event and outbox row takes 40, store/locks_sql.c). */
#define OMS_DB_MAX_PARAMS 48

typedef struct oms_db oms_db;
typedef struct oms_dbconn oms_dbconn;

/* A materialised result: every cell as text, NULL for SQL NULL. */
typedef struct {
    size_t nrows, ncols;
    char **cells; /* row-major */
    int64_t changes; /* rows affected by INSERT/UPDATE/DELETE */
} oms_dbres;

/* PostgreSQL: prepare statements once per connection (default) or send
 * every one unnamed (for transaction-pooling proxies that cannot keep
 * prepared statements). Set before the first connection. */
extern bool oms_db_pg_prepared;

/* Deadlines of database work; 0 means none (or the system's default). */
typedef struct {
    int busy_timeout_ms;       /* SQLite: wait for the write lock */
    int writer_cache_mb;       /* SQLite: page cache of the handle write transactions run on (0: SQLite's) */
    int checkpoint_pages;      /* SQLite: the commit past this many pages of log checkpoints it (0: SQLite's 1,000) */
    int mmap_mb;               /* SQLite: MiB of the database file read through a memory map (0: read calls) */
    int statement_timeout_ms;  /* PostgreSQL statement_timeout, and OMS's own wait for an answer (+1 s) */
    int lock_timeout_ms;       /* PostgreSQL lock_timeout (row, table and advisory locks) */
    int idle_tx_timeout_ms;    /* PostgreSQL idle_in_transaction_session_timeout */
    int connect_timeout_s;     /* PostgreSQL connect_timeout */
    int keepalives_idle_s;     /* TCP keepalives to PostgreSQL (0: the system's) */
    int keepalives_interval_s;
    int keepalives_count;
    /* PostgreSQL: set the timeouts once per connection (true), or with SET
     * LOCAL at the start of every transaction (false: behind a
     * transaction-pooling proxy, where session settings would stay on a
     * server connection other clients get). */
    bool session_settings;
} oms_db_opts;

/* Defaults for tools that run without a configuration (no statement
 * deadline; a 5 s busy timeout; connect timeout and keepalives on). */
oms_db_opts oms_db_opts_default(void);

int oms_db_open(oms_db **out, const char *url, const oms_db_opts *opts, oms_error *err);
void oms_db_close(oms_db *db);
oms_db_backend oms_db_backend_of(const oms_db *db);
const char *oms_db_backend_name(const oms_db *db);

/* The calling thread's connection, opened on first use and reopened after a
 * connection failure. Borrowed: valid until the thread ends or the db closes. */
int oms_db_conn(oms_db *db, oms_dbconn **out, oms_error *err);
/* Drops the calling thread's connection (after an error left it unusable);
 * the next use reconnects. Pointers from oms_db_conn stay valid. */
void oms_db_conn_reset(oms_db *db);

/* A deadline of its own for what follows on this connection (readiness
 * checks, migrations): ms > 0 bounds each statement (SQLite: the busy
 * timeout; PostgreSQL: how long OMS waits for an answer), 0 lifts the
 * bound, -1 restores the configured one. Server-side timeouts on PostgreSQL
 * are changed with SET LOCAL by the caller, inside its transaction. */
void oms_db_deadline(oms_dbconn *c, int ms);

/* One write lock for the whole database (SQLite): a write that timed out
 * waiting for it means any other write would wait as long. */
bool oms_db_single_writer(const oms_db *db);
/* Reads are made in this process, from a file (SQLite): microseconds, no
 * network round trip; what the event loop may wait for (http/pipeline.h
 * oms_pipeline_try_inline). */
bool oms_db_reads_in_process(const oms_db *db);
/* Free bytes on the filesystem holding the database, or -1 when unknown
 * (PostgreSQL: the server's disks are not ours to see). */
int64_t oms_db_free_bytes(const oms_db *db);
/* SQLite: when the write-ahead log has grown past `min_bytes`, copies it
 * into the database and truncates it (PRAGMA wal_checkpoint(TRUNCATE)),
 * holding the process's writer turn for at most `wait_ms` while readers of
 * older snapshots finish. SQLite's own checkpoints (PASSIVE, at each 1,000
 * pages) copy the log but restart it only when a write begins with no
 * reader in it, which under steady reads never happens: the log then grows
 * without end and every read searches it (docs/storage.md "The WAL").
 * Answers 1 when it reset the log, 0 when there was nothing to do (or not
 * SQLite, or readers still held it), or an error. */
int oms_db_wal_reset(oms_db *db, int64_t min_bytes, int wait_ms, oms_error *err);

/* One statement. `out` may be NULL. Errors (mapped in db_errors.c):
 * OMS_ECONFLICT for a unique or primary-key violation, OMS_ETIMEOUT for a
 * statement or lock timeout (or SQLite's write lock not free in time),
 * OMS_EFULL for a full disk, OMS_EDB for connection loss, OMS_EINTERNAL else. */
int oms_db_exec(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams,
                oms_dbres **out, oms_error *err);
/* Fewer round trips (docs/storage.md "Round trips"). Inside a transaction
 * on PostgreSQL, a statement whose rows nobody reads and whose failure only
 * needs to fail the transaction is held back and sent, in one pipeline,
 * with the transaction's next statement (or its COMMIT); that call returns
 * the held-back statement's error if it failed. The transaction's BEGIN is
 * held back the same way until its first statement. Outside a transaction,
 * and on SQLite, it runs at once. */
int oms_db_exec_later(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_error *err);
/* The same, with its failure (wherever it shows) reported as `as_code`
 * with the static message `as_msg` (e.g. OMS_EAUDIT for the audit event of
 * a change, which must fail closed with its own answer). */
int oms_db_exec_later_as(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, int as_code,
                         const char *as_msg, oms_error *err);

/* A read held back the same way: it travels with the transaction's next
 * statement (or oms_db_flush), in order, and `*out` (NULL until then)
 * receives its rows when that call returns OMS_OK. For reads that can be
 * sent with a statement they do not depend on (the write path's lock reads
 * with the branch row: one round trip for both). Outside a transaction,
 * and on SQLite, it runs at once. */
int oms_db_read_later(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_dbres **out,
                      oms_error *err);

/* Sends what is held back now (and the pending BEGIN): for a caller that
 * must know its writes ran before it decides something outside the
 * database (the audit group-commit writer's withdrawals). */
int oms_db_flush(oms_dbconn *c, oms_error *err);

/* One statement of a batch; `out` (may be NULL) receives its rows. */
typedef struct {
    const char *sql;
    const oms_dbparam *params;
    int nparams;
    oms_dbres **out;
} oms_db_stmt;

/* A batch of statements in as few round trips as the backend allows:
 * inside a transaction on PostgreSQL, one pipeline with what is held back
 * (libpq pipeline mode: each statement still runs after the one before
 * it, with a snapshot of its own); on SQLite (and outside a transaction)
 * one after the other. Stops at the first error, which it
 * returns; the statements after it did not run. Independent statements
 * only: a statement cannot use the rows of one before it. */
int oms_db_batch_run(oms_dbconn *c, const oms_db_stmt *s, int n, oms_error *err);

/* Round trips to the database since start (every backend; on SQLite a
 * call into the library): /metrics oms_db_roundtrips_total, counted apart
 * for threads that declared themselves background work (the task loop:
 * audit chainer, reapers), so that a request's own count can be read. */
uint64_t oms_db_roundtrips(bool background);
void oms_db_count_as_background(void);

/* Statements run through a connection's cache of prepared statements,
 * since start: answered by the cache (hit), prepared and kept (prepared),
 * or prepared for one use because the connection's cache was full
 * (uncached: a cache too small for the statements the server runs).
 * /metrics oms_db_statement_cache_total. */
typedef enum { OMS_DB_STMT_HIT, OMS_DB_STMT_PREPARED, OMS_DB_STMT_UNCACHED } oms_db_stmt_outcome;
void oms_db_count_statement(oms_db_stmt_outcome o);
uint64_t oms_db_statements(oms_db_stmt_outcome o);

/* Several statements without parameters (migrations). */
int oms_db_exec_script(oms_dbconn *c, const char *sql, oms_error *err);

/* Transactions. `write` takes the write lock up front on SQLite (BEGIN
 * IMMEDIATE) so a read-then-write transaction never deadlocks on upgrade.
 * A commit whose connection was lost after it was sent fails with OMS_EDB
 * and says its outcome is unknown. */
int oms_db_begin(oms_dbconn *c, bool write, oms_error *err);
int oms_db_commit(oms_dbconn *c, oms_error *err);
void oms_db_rollback(oms_dbconn *c);
/* One change of a group commit inside the group's transaction
 * (txn/group_commit.c): a savepoint before it, released when it succeeded
 * (its held-back statements flushed, their failure its own), rolled back to
 * when it failed, leaving the transaction as it was before the change. One
 * level only. With a pipelining driver the savepoint travels with the
 * change's first statement; a change that sent nothing costs nothing. A
 * failed rollback means the transaction is lost. */
int oms_db_savepoint(oms_dbconn *c, oms_error *err);
int oms_db_savepoint_release(oms_dbconn *c, oms_error *err);
int oms_db_savepoint_rollback(oms_dbconn *c, oms_error *err);
/* The release sent ahead (PostgreSQL): the change's statements and the
 * release go out without waiting for their results, so the next change's
 * work overlaps the server's. The results are read before anything else is
 * sent on the connection (the next change's first read, the COMMIT). A
 * failure among them dooms the whole transaction: every later call of it
 * fails with that error without sending anything, oms_db_ahead_failure
 * returns it (until the next BEGIN), and only a rollback ends it (group commit then runs its changes again
 * the ordinary way). Without a driver that can, the same as
 * oms_db_savepoint_release. */
int oms_db_savepoint_release_ahead(oms_dbconn *c, oms_error *err);
int oms_db_ahead_failure(const oms_dbconn *c);

/* The content connection (PostgreSQL, group commit; docs/storage.md
 * "Content rows beside the batch"). A batch's leader borrows the idle
 * connection of one of its waiting members; the content-addressed rows the
 * batch writes (objects, tree nodes, trees: named by the hash of what they
 * hold, never updated, referenced by no foreign key) then go there, in a
 * transaction of their own sent ahead beside the batch's, so that the
 * connection holding the branch row runs only the rest.
 * - attach: false (nothing changes) when the backend cannot, or `side` is
 *   not an idle connection of the same database other than `c`.
 * - exec_content: the statement on the content connection when one is
 *   attached to `c` inside its transaction and has not failed (and the
 *   sole-writer lease `c` began under still holds), else as
 *   oms_db_exec_later on `c`. Its lock waits end within a second.
 * - settle: the content transaction committed (with synchronous_commit
 *   off: `c`'s COMMIT, which comes after it in the log, flushes it), so
 *   that `c` reads its rows; called before `c` reads content and by
 *   oms_db_commit before COMMIT. A failure of the content connection is
 *   kept (oms_db_content_failed) and returned by every later settle;
 *   oms_db_commit then rolls `c` back instead of committing: none of its
 *   commits may name content that is not stored.
 * - detach: rolls back what was not settled, forgets the failure. */
bool oms_db_content_attach(oms_dbconn *c, oms_dbconn *side);
int oms_db_exec_content(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_error *err);
int oms_db_content_settle(oms_dbconn *c, oms_error *err);
bool oms_db_content_failed(const oms_dbconn *c);
bool oms_db_content_used(const oms_dbconn *c); /* a content transaction was begun since attach */
void oms_db_content_detach(oms_dbconn *c);
bool oms_db_in_tx(const oms_dbconn *c);

/* A token that changes whenever a transaction commits on the database,
 * through any connection of any process: equal tokens taken before two
 * reads mean nothing was committed in between (the second read can be
 * skipped). On SQLite, the WAL-index header; false when the backend has
 * none or it cannot be read now (PostgreSQL: never). */
#define OMS_DB_CHANGE_TOKEN 48
bool oms_db_change_token(oms_dbconn *c, unsigned char out[OMS_DB_CHANGE_TOKEN]);

/* PostgreSQL's sole-writer lease (store/sole_writer.c holds it; docs/
 * storage.md "The sole-writer lease"). While this process holds it, no
 * other process commits a write: its write transactions run
 * oms_write_guard() first, which waits for the lease to be given back.
 * oms_db_lease_current: the lease is held and valid now; *epoch names this
 * holding (it moves whenever the lease is taken or dropped).
 * oms_db_local_commits: write transactions and autocommit writes this
 * process ended (any outcome), counted before their callers return. Under
 * one epoch, an unchanged count means nothing was committed since. */
bool oms_db_lease_current(oms_db *db, uint64_t *epoch);
/* After migrations: whether the database has the guard is asked again at
 * the next write transaction (it is asked once per process otherwise). */
void oms_db_write_guard_recheck(oms_db *db);
uint64_t oms_db_local_commits(oms_db *db);
/* For the lease's holder: take it (valid until a monotonic time), extend
 * it, drop it (from then on this process's write transactions are guarded
 * again): `waits` when the holder keeps the lock until the transactions
 * begun without the guard have ended (then oms_db_lease_released once it
 * let go of the lock), false when the lock is gone already (those
 * transactions then take the guard before their COMMIT); the number of
 * this process's write transactions still open without the guard. */
void oms_db_lease_take(oms_db *db, int64_t valid_until_ns);
void oms_db_lease_extend(oms_db *db, int64_t valid_until_ns);
void oms_db_lease_drop(oms_db *db, bool waits);
void oms_db_lease_released(oms_db *db);
int oms_db_lease_unguarded(oms_db *db);
/* Before a take: this process's new write transactions wait (before they
 * choose between the guard and the lease) until oms_db_lease_resume, and
 * those open with the guard are waited for, up to `max_wait_ms`: false
 * when some are still open (the take should not go on). Either way
 * oms_db_lease_resume follows, after oms_db_lease_take or without it. */
bool oms_db_lease_pause(oms_db *db, int max_wait_ms);
void oms_db_lease_resume(oms_db *db);
/* PostgreSQL: the server process ids of this process's per-thread
 * sessions, as an array literal ("{1,2}"), truncated to fit `cap` (a
 * session left out then counts as someone else's: the cautious side). */
void oms_db_own_backends(oms_db *db, char *out, size_t cap);
/* A session of ours is visible to the server a moment before it is noted:
 * sessions seen between two equal stamps (neither UINT64_MAX, which means
 * one is being opened) and not in oms_db_own_backends are someone else's. */
uint64_t oms_db_sessions_stamp(oms_db *db);
/* A session of its own, outside the per-thread connections: never
 * reopened or retried behind the caller's back (a session-level lock
 * lives and dies with it). Statements with the deadline given. */
int oms_db_raw_open(oms_db *db, void **handle, int deadline_ms, oms_error *err);
int oms_db_raw_exec(oms_db *db, void *handle, const char *sql, const oms_dbparam *params, int nparams,
                    oms_dbres **out, oms_error *err);
void oms_db_raw_close(oms_db *db, void *handle);

oms_db_backend oms_db_backend_of_conn(const oms_dbconn *c);
/* The database a connection belongs to. */
const oms_db *oms_db_of_conn(const oms_dbconn *c);

/* The dialect of "the database clock now", in epoch milliseconds. One
 * clock for everything time-stamped (commits, audit events, locks): an
 * instance whose own clock is off never writes the future or the past. */
#define OMS_DB_NOW_PG "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define OMS_DB_NOW_SQLITE "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

void oms_dbres_free(oms_dbres *r);
const char *oms_dbres_get(const oms_dbres *r, size_t row, size_t col);
int64_t oms_dbres_int(const oms_dbres *r, size_t row, size_t col);

#endif
