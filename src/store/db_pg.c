/* PostgreSQL backend through libpq. Every statement goes through
 * PQexecParams (unnamed statements, text parameters): nothing lives in the
 * session, so a transaction-pooling proxy in front of the database works. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db_driver.h"

static int pg_connect(void **out, const char *dsn, int busy_timeout_ms, oms_error *err)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message never contains the password; the DSN is not echoed. */
        const char *m = PQerrorMessage(c);
        oms_err_set(err, OMS_EDB, "cannot connect to PostgreSQL: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(c);
        return OMS_EDB;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    *out = c;
    return OMS_OK;
}

static void pg_disconnect(void *p) { PQfinish(p); }

static int map_result(PGconn *c, PGresult *r, oms_error *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return OMS_OK;
    if (PQstatus(c) != CONNECTION_OK)
        return oms_err_set(err, OMS_EDB, "PostgreSQL connection lost");
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg)
        msg = "error";
    if (state && strcmp(state, "23505") == 0)
        return oms_err_set(err, OMS_ECONFLICT, "unique constraint: %s", msg);
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
        return oms_err_set(err, OMS_EUNAVAIL, "serialization failure: %s", msg);
    if (state && strncmp(state, "08", 2) == 0)
        return oms_err_set(err, OMS_EDB, "PostgreSQL connection error: %s", msg);
    return oms_err_set(err, OMS_EINTERNAL, "postgresql %s: %s", state ? state : "?", msg);
}

static int pg_exec(void *p, const char *sql, const oms_dbparam *params, int n, oms_dbres **out,
                   oms_error *err)
{
    PGconn *c = p;
    const char *values[32];
    char ints[32][24];
    if (n > 32)
        return oms_err_set(err, OMS_EINTERNAL, "too many parameters");
    for (int i = 0; i < n; i++) {
        switch (params[i].type) {
        case OMS_DBP_TEXT: values[i] = params[i].s; break;
        case OMS_DBP_INT:
            snprintf(ints[i], sizeof ints[i], "%lld", (long long)params[i].i);
            values[i] = ints[i];
            break;
        default: values[i] = NULL; break;
        }
    }
    PGresult *r = PQexecParams(c, sql, n, NULL, values, NULL, NULL, 0);
    if (!r)
        return oms_err_set(err, OMS_EDB, "PostgreSQL connection lost");
    int rc = map_result(c, r, err);
    if (rc == OMS_OK && out) {
        size_t nrows = (size_t)PQntuples(r), ncols = (size_t)PQnfields(r);
        oms_dbres *res = oms_dbres_new(nrows, ncols);
        for (size_t i = 0; i < nrows; i++)
            for (size_t j = 0; j < ncols; j++)
                if (!PQgetisnull(r, (int)i, (int)j))
                    res->cells[i * ncols + j] = strdup(PQgetvalue(r, (int)i, (int)j));
        const char *t = PQcmdTuples(r);
        res->changes = t && *t ? strtoll(t, NULL, 10) : 0;
        *out = res;
    }
    PQclear(r);
    return rc;
}

static int pg_exec_script(void *p, const char *sql, oms_error *err)
{
    PGconn *c = p;
    PGresult *r = PQexec(c, sql);
    int rc = r ? map_result(c, r, err) : oms_err_set(err, OMS_EDB, "PostgreSQL connection lost");
    PQclear(r);
    return rc;
}

const oms_db_driver oms_db_pg_driver = {
    .name = "postgresql",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .exec_script = pg_exec_script,
    .begin_write = "BEGIN",
};
