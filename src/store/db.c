#include "store/db.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/metrics.h"
#include "store/db_driver.h"

struct oms_dbconn {
    oms_db *db;
    void *handle;
    int depth; /* open transactions: 0 or 1 */
};

struct oms_db {
    oms_db_backend backend;
    const oms_db_driver *drv;
    char *dsn;
    int busy_timeout_ms;
    pthread_key_t key;
    pthread_mutex_t mu;   /* guards `all` */
    oms_dbconn **all;     /* every thread's connection, closed with the db */
    size_t nall, capall;
};

static void forget_conn(oms_db *db, oms_dbconn *c)
{
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->nall; i++)
        if (db->all[i] == c) {
            db->all[i] = db->all[--db->nall];
            break;
        }
    pthread_mutex_unlock(&db->mu);
}

static void conn_destroy(void *p)
{
    oms_dbconn *c = p;
    if (!c)
        return;
    forget_conn(c->db, c);
    oms_metrics_db_conn(-1, -(c->depth > 0));
    c->db->drv->disconnect(c->handle);
    free(c);
}

int oms_db_open(oms_db **out, const char *url, int busy_timeout_ms, oms_error *err)
{
    const oms_db_driver *drv;
    const char *dsn;
    oms_db_backend backend;
    if (strncmp(url, "sqlite:", 7) == 0) {
        drv = &oms_db_sqlite_driver;
        dsn = url + 7;
        backend = OMS_DB_SQLITE;
    } else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        drv = &oms_db_pg_driver;
        dsn = url;
        backend = OMS_DB_PG;
    } else {
        return oms_err_set(err, OMS_ECONFIG,
                           "DATABASE_URL must start with sqlite: or postgresql://");
    }
    if (*dsn == '\0')
        return oms_err_set(err, OMS_ECONFIG, "DATABASE_URL names no database");
    oms_db *db = calloc(1, sizeof *db);
    if (!db)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    db->backend = backend;
    db->drv = drv;
    db->dsn = strdup(dsn);
    db->busy_timeout_ms = busy_timeout_ms;
    pthread_mutex_init(&db->mu, NULL);
    pthread_key_create(&db->key, conn_destroy);
    *out = db;
    return OMS_OK;
}

void oms_db_close(oms_db *db)
{
    if (!db)
        return;
    pthread_key_delete(db->key);
    /* Threads that used the db are gone (or idle) by now: close what is left. */
    for (size_t i = 0; i < db->nall; i++) {
        oms_metrics_db_conn(-1, -(db->all[i]->depth > 0));
        db->drv->disconnect(db->all[i]->handle);
        free(db->all[i]);
    }
    free(db->all);
    pthread_mutex_destroy(&db->mu);
    free(db->dsn);
    free(db);
}

oms_db_backend oms_db_backend_of(const oms_db *db) { return db->backend; }
const char *oms_db_backend_name(const oms_db *db) { return db->drv->name; }

int oms_db_conn(oms_db *db, oms_dbconn **out, oms_error *err)
{
    oms_dbconn *c = pthread_getspecific(db->key);
    if (c) {
        *out = c;
        return OMS_OK;
    }
    void *h = NULL;
    int rc = db->drv->connect(&h, db->dsn, db->busy_timeout_ms, err);
    if (rc)
        return rc;
    c = calloc(1, sizeof *c);
    c->db = db;
    c->handle = h;
    pthread_mutex_lock(&db->mu);
    if (db->nall == db->capall) {
        db->capall = db->capall ? db->capall * 2 : 16;
        db->all = realloc(db->all, db->capall * sizeof *db->all);
    }
    db->all[db->nall++] = c;
    pthread_mutex_unlock(&db->mu);
    oms_metrics_db_conn(1, 0);
    pthread_setspecific(db->key, c);
    *out = c;
    return OMS_OK;
}

void oms_db_conn_reset(oms_db *db)
{
    oms_dbconn *c = pthread_getspecific(db->key);
    if (!c)
        return;
    pthread_setspecific(db->key, NULL);
    conn_destroy(c);
}

static int exec_checked(oms_dbconn *c, const char *sql, const oms_dbparam *p, int n, oms_dbres **out,
                        oms_error *err)
{
    bool alone = c->depth == 0; /* a statement outside a transaction uses the connection by itself */
    oms_metrics_db_conn(0, alone);
    int rc = c->db->drv->exec(c->handle, sql, p, n, out, err);
    oms_metrics_db_conn(0, -alone);
    if (rc == OMS_EDB && c->depth == 0)
        oms_db_conn_reset(c->db); /* reconnect on next use */
    return rc;
}

int oms_db_exec(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams,
                oms_dbres **out, oms_error *err)
{
    if (out)
        *out = NULL;
    return exec_checked(c, sql, params, nparams, out, err);
}

int oms_db_exec_script(oms_dbconn *c, const char *sql, oms_error *err)
{
    return c->db->drv->exec_script(c->handle, sql, err);
}

/* A connection is in use (for /metrics) while a transaction is open. */
static void set_depth(oms_dbconn *c, int depth)
{
    oms_metrics_db_conn(0, (depth > 0) - (c->depth > 0));
    c->depth = depth;
}

int oms_db_begin(oms_dbconn *c, bool write, oms_error *err)
{
    int rc = c->db->drv->exec(c->handle, write ? c->db->drv->begin_write : "BEGIN", NULL, 0, NULL, err);
    if (rc == OMS_OK)
        set_depth(c, 1);
    return rc;
}

int oms_db_commit(oms_dbconn *c, oms_error *err)
{
    int rc = c->db->drv->exec(c->handle, "COMMIT", NULL, 0, NULL, err);
    if (rc != OMS_OK)
        c->db->drv->exec(c->handle, "ROLLBACK", NULL, 0, NULL, NULL);
    set_depth(c, 0);
    return rc;
}

void oms_db_rollback(oms_dbconn *c)
{
    oms_error ignored;
    c->db->drv->exec(c->handle, "ROLLBACK", NULL, 0, NULL, &ignored);
    set_depth(c, 0);
}

bool oms_db_in_tx(const oms_dbconn *c) { return c->depth > 0; }
oms_db_backend oms_db_backend_of_conn(const oms_dbconn *c) { return c->db->backend; }

oms_dbres *oms_dbres_new(size_t nrows, size_t ncols)
{
    oms_dbres *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->nrows = nrows;
    r->ncols = ncols;
    if (nrows && ncols) {
        r->cells = calloc(nrows * ncols, sizeof *r->cells);
        if (!r->cells) {
            free(r);
            return NULL;
        }
    }
    return r;
}

void oms_dbres_free(oms_dbres *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    free(r);
}

const char *oms_dbres_get(const oms_dbres *r, size_t row, size_t col)
{
    if (!r || row >= r->nrows || col >= r->ncols)
        return NULL;
    return r->cells[row * r->ncols + col];
}

int64_t oms_dbres_int(const oms_dbres *r, size_t row, size_t col)
{
    const char *s = oms_dbres_get(r, row, col);
    return s ? strtoll(s, NULL, 10) : 0;
}
