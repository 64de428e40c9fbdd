/* What each backend implements; db.c holds the per-thread connections. */
#ifndef OMS_DB_DRIVER_H
#define OMS_DB_DRIVER_H

#include "store/db.h"

typedef struct {
    const char *name;
    int (*connect)(void **out, const char *dsn, int busy_timeout_ms, oms_error *err);
    void (*disconnect)(void *conn);
    int (*exec)(void *conn, const char *sql, const oms_dbparam *p, int n, oms_dbres **out,
                oms_error *err);
    int (*exec_script)(void *conn, const char *sql, oms_error *err);
    const char *begin_write; /* SQL that opens a write transaction */
} oms_db_driver;

extern const oms_db_driver oms_db_sqlite_driver;
extern const oms_db_driver oms_db_pg_driver;

/* Result building shared by the drivers. */
oms_dbres *oms_dbres_new(size_t nrows, size_t ncols);

#endif
