/* The SQL driver under store.h: one small interface, two backends (SQLite and
 * PostgreSQL through libpq). Statements are written once with $1..$n
 * placeholders and portable SQL (BIGINT epoch-millisecond times, INTEGER
 * booleans, TEXT JSON); backend-specific SQL lives only in migrations.
 *
 * Connections are per thread (one per worker, like a pool sized to the
 * workers); PostgreSQL statements use PQexecParams and no session state, so
 * OMS also works behind a transaction-pooling proxy. */
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

int oms_db_open(oms_db **out, const char *url, int busy_timeout_ms, oms_error *err);
void oms_db_close(oms_db *db);
oms_db_backend oms_db_backend_of(const oms_db *db);
const char *oms_db_backend_name(const oms_db *db);

/* The calling thread's connection, opened on first use and reopened after a
 * connection failure. Borrowed: valid until the thread ends or the db closes. */
int oms_db_conn(oms_db *db, oms_dbconn **out, oms_error *err);
/* Drops the calling thread's connection (after an error left it unusable). */
void oms_db_conn_reset(oms_db *db);

/* One statement. `out` may be NULL. Errors: OMS_ECONFLICT for a unique or
 * primary-key violation, OMS_EDB for connection loss, OMS_EINTERNAL else. */
int oms_db_exec(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams,
                oms_dbres **out, oms_error *err);
/* Several statements without parameters (migrations). */
int oms_db_exec_script(oms_dbconn *c, const char *sql, oms_error *err);

/* Transactions. `write` takes the write lock up front on SQLite (BEGIN
 * IMMEDIATE) so a read-then-write transaction never deadlocks on upgrade. */
int oms_db_begin(oms_dbconn *c, bool write, oms_error *err);
int oms_db_commit(oms_dbconn *c, oms_error *err);
void oms_db_rollback(oms_dbconn *c);
bool oms_db_in_tx(const oms_dbconn *c);
oms_db_backend oms_db_backend_of_conn(const oms_dbconn *c);

/* The dialect of "the database clock now", in epoch milliseconds. One
 * clock for everything time-stamped (commits, audit events, locks): an
 * instance whose own clock is off never writes the future or the past. */
#define OMS_DB_NOW_PG "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define OMS_DB_NOW_SQLITE "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

void oms_dbres_free(oms_dbres *r);
const char *oms_dbres_get(const oms_dbres *r, size_t row, size_t col);
int64_t oms_dbres_int(const oms_dbres *r, size_t row, size_t col);

#endif
