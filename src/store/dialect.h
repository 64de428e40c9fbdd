/* The small SQL dialect (docs/storage.md "Dialect"): where SQLite and
 * PostgreSQL differ, a statement is written once per backend, side by side,
 * and the store picks the one for the connection. Domain code never asks
 * which backend it talks to; it calls the operations of its module's
 * storage file (src/store/<module>_sql.c), which use these.
 *
 *   - the database clock, in epoch milliseconds: OMS_SQL_NOW(...) in a
 *     statement pair, one text per backend;
 *   - row locks: PostgreSQL "FOR UPDATE"/"FOR SHARE"; on SQLite the write
 *     transaction (BEGIN IMMEDIATE) already serialises every writer;
 *   - advisory locks: pg_advisory_xact_lock[_shared]; nothing on SQLite for
 *     the same reason;
 *   - upsert: INSERT ... ON CONFLICT (...) DO UPDATE, the same text on both;
 *   - sequences: nextval on PostgreSQL, a counter row on SQLite. */
#ifndef OMS_DIALECT_H
#define OMS_DIALECT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* One statement in both dialects. */
typedef struct {
    const char *sqlite;
    const char *pg;
} oms_sql;

/* The same text on both backends. */
#define OMS_SQL_BOTH(text) {(text), (text)}
/* A statement whose only difference is the clock expression: `fmt` names
 * it with the macro argument NOW (e.g. OMS_SQL_WITH_NOW(Q) where
 * Q(NOW) expands to "... " NOW " ..."). */
#define OMS_SQL_WITH_NOW(Q) {Q(OMS_DB_NOW_SQLITE), Q(OMS_DB_NOW_PG)}

/* The text of `q` for this connection's backend. */
const char *oms_sql_for(const oms_dbconn *c, const oms_sql *q);
/* oms_db_exec with the text of `q` for this connection. */
int oms_db_run(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_dbres **out,
               oms_error *err);
/* oms_db_run for one integer: the first cell of the first row in *out, 0
 * when there is no row or the cell is NULL. */
int oms_db_run_int(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, int64_t *out,
                   oms_error *err);
/* oms_db_exec_later with the text of `q` (a write whose rows nobody reads). */
int oms_db_run_later(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_error *err);
/* oms_db_exec_content with the text of `q` (content-addressed inserts). */
int oms_db_run_content(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_error *err);
/* oms_db_run of a read of content rows (objects, trees, tree nodes): the
 * content connection's rows settled first, so that this transaction sees
 * the ones it wrote. */
int oms_db_run_content_read(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_dbres **out,
                            oms_error *err);
/* oms_db_read_later with the text of `q` (a read sent with the next statement). */
int oms_db_run_read_later(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_dbres **out,
                          oms_error *err);
/* oms_db_batch_run of statement pairs (texts for this connection). */
typedef struct {
    const oms_sql *q;
    const oms_dbparam *params;
    int nparams;
    oms_dbres **out;
} oms_sql_stmt;
int oms_db_run_batch(oms_dbconn *c, const oms_sql_stmt *s, int n, oms_error *err);
/* A transaction-scoped advisory lock on `key` (shared or exclusive) on
 * PostgreSQL; nothing on SQLite, whose writers are already serialised.
 * Held back (oms_db_exec_later): it travels with the next statement, which
 * runs after it is granted (a pipeline runs in order, each statement with
 * a snapshot of its own under READ COMMITTED). */
int oms_db_xact_lock(oms_dbconn *c, int64_t key, bool shared, oms_error *err);
/* The database clock in epoch milliseconds (one statement). */
int oms_db_now_ms(oms_dbconn *c, int64_t *out, oms_error *err);
/* Does this connection's backend lock rows (FOR UPDATE)? For callers that
 * must know whether a read inside a write transaction already excludes
 * other writers. */
bool oms_db_row_locking(const oms_dbconn *c);
/* The database clock expression (epoch milliseconds) of this connection's
 * backend, for a statement composed at run time. */
const char *oms_sql_now(const oms_dbconn *c);
/* Sequences: true when the backend has them (nextval inside the statement);
 * false: the caller draws from a counter row first. */
bool oms_db_has_sequences(const oms_dbconn *c);
/* One writer at a time for the whole database (SQLite): a long job must
 * rest between its write transactions so that request writers get in, and
 * may checkpoint the write-ahead log it grew. */
bool oms_db_single_writer_conn(const oms_dbconn *c);
/* The full-text search of the backend: FTS5 tables fed by triggers
 * (SQLite), or a tsvector column with a GIN index (PostgreSQL). The two
 * need different statements and different upkeep (src/store/dialect.c). */
typedef enum { OMS_FTS_FTS5, OMS_FTS_TSVECTOR } oms_fts_kind;
oms_fts_kind oms_db_fts(const oms_dbconn *c);

#endif
