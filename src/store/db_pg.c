/* PostgreSQL backend through libpq, text parameters.
 *
 * Statements are prepared once per connection and then executed by name:
 * parsing and planning every statement again (PQexecParams) cost several
 * times the statement itself here (docs/BENCHMARKS.md). Prepared statements
 * are session state: behind a transaction-pooling proxy that does not track
 * them (PgBouncer before 1.21), set OMS_PG_PREPARED_STATEMENTS=0 and every
 * statement goes through PQexecParams again, with nothing in the session. */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db_driver.h"

#define STMT_CACHE 256

bool oms_db_pg_prepared = true;

typedef struct {
    char *sql;
    uint64_t hash;
    char name[16];
} prepared;

typedef struct {
    PGconn *conn;
    prepared stmts[STMT_CACHE];
    int nstmts;
} pg_conn;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void forget_statements(pg_conn *pc)
{
    for (int i = 0; i < pc->nstmts; i++)
        free(pc->stmts[i].sql);
    pc->nstmts = 0;
}

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
    pg_conn *pc = calloc(1, sizeof *pc);
    pc->conn = c;
    *out = pc;
    return OMS_OK;
}

static void pg_disconnect(void *p)
{
    pg_conn *pc = p;
    if (!pc)
        return;
    forget_statements(pc);
    PQfinish(pc->conn);
    free(pc);
}

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

/* The statement's name on this connection, preparing it on first use;
 * NULL when it cannot be cached (then it runs unnamed). */
static const char *statement_name(pg_conn *pc, const char *sql, int n, PGresult **failed)
{
    uint64_t h = fnv1a(sql);
    for (int i = 0; i < pc->nstmts; i++)
        if (pc->stmts[i].hash == h && strcmp(pc->stmts[i].sql, sql) == 0)
            return pc->stmts[i].name;
    if (pc->nstmts == STMT_CACHE)
        return NULL;
    prepared *ps = &pc->stmts[pc->nstmts];
    snprintf(ps->name, sizeof ps->name, "oms_%d", pc->nstmts);
    PGresult *r = PQprepare(pc->conn, ps->name, sql, n, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return NULL;
    }
    PQclear(r);
    ps->sql = strdup(sql);
    ps->hash = h;
    pc->nstmts++;
    return ps->name;
}

static PGresult *run(pg_conn *pc, const char *sql, const char *const *values, int n)
{
    if (!oms_db_pg_prepared)
        return PQexecParams(pc->conn, sql, n, NULL, values, NULL, NULL, 0);
    PGresult *failed = NULL;
    const char *name = statement_name(pc, sql, n, &failed);
    if (failed)
        return failed;
    if (!name)
        return PQexecParams(pc->conn, sql, n, NULL, values, NULL, NULL, 0);
    PGresult *r = PQexecPrepared(pc->conn, name, n, values, NULL, NULL, 0);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "26000") == 0) {
        /* The session lost its statements (a proxy handed us another
         * server connection): prepare again, once. */
        PQclear(r);
        forget_statements(pc);
        failed = NULL;
        name = statement_name(pc, sql, n, &failed);
        if (failed)
            return failed;
        r = name ? PQexecPrepared(pc->conn, name, n, values, NULL, NULL, 0)
                 : PQexecParams(pc->conn, sql, n, NULL, values, NULL, NULL, 0);
    }
    return r;
}

static int pg_exec(void *p, const char *sql, const oms_dbparam *params, int n, oms_dbres **out,
                   oms_error *err)
{
    pg_conn *pc = p;
    PGconn *c = pc->conn;
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
    /* BEGIN, COMMIT and ROLLBACK are not worth a name */
    PGresult *r = n == 0 && (sql[0] == 'B' || sql[0] == 'C' || sql[0] == 'R')
                      ? PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0)
                      : run(pc, sql, values, n);
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
    PGconn *c = ((pg_conn *)p)->conn;
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
