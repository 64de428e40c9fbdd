/* What each backend implements; db.c holds the per-thread connections and
 * decides when a broken one is replaced and a statement sent again. */
#ifndef OMS_DB_DRIVER_H
#define OMS_DB_DRIVER_H

#include "store/db.h"

/* What the last call did to the connection: flags, 0 when it is usable. */
enum {
    OMS_DBC_LOST = 1,    /* unusable: replace it */
    OMS_DBC_SENT = 2,    /* the statement reached the server: it may have run */
    OMS_DBC_STALLED = 4, /* no answer within the deadline (a server that stopped answering) */
};

#define OMS_DB_NOT_AHEAD 1 /* pipeline_send: send it the ordinary way */

typedef struct {
    const char *name;
    int (*connect)(void **out, const char *dsn, const oms_db_opts *opts, oms_error *err);
    void (*disconnect)(void *conn);
    int (*exec)(void *conn, const char *sql, const oms_dbparam *p, int n, oms_dbres **out,
                oms_error *err);
    int (*exec_script)(void *conn, const char *sql, oms_error *err);
    int (*begin)(void *conn, bool write, oms_error *err);
    /* Is an idle connection still usable? Sends nothing. NULL: always. */
    bool (*alive)(void *conn);
    int (*state)(void *conn);
    /* See oms_db_deadline: > 0 bound in ms, 0 none, -1 the configured one. */
    void (*deadline)(void *conn, int ms);
    /* Several statements in one round trip (PostgreSQL's pipeline mode),
     * after the transaction's BEGIN when `begin` is set. Stops at the first
     * error: *failed is its index (-1 for the BEGIN, n when none failed),
     * and the statements after it did not run. NULL: the backend has no
     * pipeline, and db.c runs the statements one after the other. */
    int (*pipeline)(void *conn, bool begin, const oms_db_stmt *s, int n, int *failed, oms_error *err);
    /* A pipeline sent ahead: the statements (none reading rows) and a Sync
     * go out now, their results are read later, in order, by
     * pipeline_drain, before anything else is sent on the connection.
     * OMS_DB_NOT_AHEAD when this one cannot go ahead (nothing sent: send it
     * with pipeline). drain's error is the first failure among them; the
     * statements after it did not run. NULL: no such mode. */
    int (*pipeline_send)(void *conn, bool begin, const oms_db_stmt *s, int n, oms_error *err);
    int (*pipeline_drain)(void *conn, oms_error *err);
    /* After a write transaction on the handle writes share (SQLite's
     * writer handle, db.c): give back the cache memory a bulk write left.
     * NULL: nothing to do. */
    void (*settle)(void *conn);
    /* See oms_db_change_token. NULL: the backend has no such token. */
    bool (*change_token)(void *conn, unsigned char out[OMS_DB_CHANGE_TOKEN]);
    /* The server process serving the connection (PostgreSQL), for
     * oms_db_own_backends. NULL: no such thing. */
    int (*backend_pid)(void *conn);
} oms_db_driver;

extern const oms_db_driver oms_db_sqlite_driver;
extern const oms_db_driver oms_db_pg_driver;

/* Result building shared by the drivers. */
oms_dbres *oms_dbres_new(size_t nrows, size_t ncols);

/* The one mapping from the databases' own error codes to oms_err
 * (db_errors.c); sets `err` with a message naming the failure. */
int oms_db_pg_error(const char *sqlstate, const char *msg, oms_error *err);
int oms_db_sqlite_error(int rc, int extended, int sys_errno, const char *msg, int busy_ms, oms_error *err);

#endif
