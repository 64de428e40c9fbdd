/* PostgreSQL backend through libpq, text parameters.
 *
 * Statements are prepared once per connection and then executed by name:
 * parsing and planning every statement again (PQexecParams) cost several
 * times the statement itself here (docs/BENCHMARKS.md). Prepared statements
 * are session state: behind a transaction-pooling proxy that does not track
 * them (PgBouncer before 1.21), set OMS_PG_PREPARED_STATEMENTS=0 and every
 * statement goes through PQexecParams again, with nothing in the session.
 *
 * Deadlines (docs/operations.md): connect_timeout and TCP keepalives are
 * connection parameters (the URL's own values win); statement_timeout,
 * lock_timeout and idle_in_transaction_session_timeout are set once per
 * connection, in the round trip that already set client_min_messages, or —
 * with session settings off, behind a transaction-pooling proxy — by SET
 * LOCAL in the BEGIN of every transaction. Every statement is sent and
 * awaited without blocking (libpq's asynchronous calls and poll), so OMS
 * itself stops waiting one second after the statement timeout: a server that
 * stopped answering (stopped process, dead host behind a live network) costs
 * a request its deadline, not a worker forever. Such a connection is
 * dropped, since its statement may still be running. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/log.h"
#include "store/db_driver.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/time.h"

#define STMT_CACHE 256
/* How much longer than the server's statement_timeout OMS waits for an
 * answer before it gives the connection up. */
#define CLIENT_GRACE_MS 1000
/* Segments a connection may have sent ahead (a group commit's members). */
#define MAX_AHEAD 128

bool oms_db_pg_prepared = true;

typedef struct {
    char *sql;
    uint64_t hash;
    char name[16];
} prepared;

typedef struct {
    PGconn *conn;
    int state;           /* what the last call did to the connection (OMS_DBC_*) */
    int wait_ms;         /* bound on waiting for one answer; 0: none */
    int configured_wait_ms;
    char begin_sql[320]; /* BEGIN, with SET LOCAL of the timeouts when there are no session settings */
    char begin_parts[4][80]; /* the same, one statement each (a pipeline sends one per message) */
    int nbegin_parts;
    prepared stmts[STMT_CACHE];
    int nstmts;
    /* Segments sent ahead (pg_pipeline_send): how many results each
     * awaits, read in order by pg_pipeline_drain. */
    int ahead[MAX_AHEAD];
    int nahead;
} pg_conn;


static void forget_statements(pg_conn *pc)
{
    for (int i = 0; i < pc->nstmts; i++)
        free(pc->stmts[i].sql);
    pc->nstmts = 0;
}

/* Server messages that reach the client outside a result (the FATAL of a
 * shutdown read from an idle connection, warnings) go to the debug log, not
 * raw onto stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    if (OMS_LOG_DEBUG >= oms_log_min)
        oms_log_write(OMS_LOG_DEBUG, NULL, NULL, "postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

/* ---- waiting with a deadline ---- */

static int remaining_ms(int64_t until_ns)
{
    if (!until_ns)
        return -1;
    int64_t left = (until_ns - oms_mono_ns()) / 1000000;
    return left < 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

/* Sends what libpq has buffered. False when the connection failed or the
 * deadline passed first; nothing of the statement has been processed then. */
static bool flush_all(pg_conn *pc, int64_t until_ns, bool *timed_out)
{
    for (;;) {
        int f = PQflush(pc->conn);
        if (f == 0)
            return true;
        if (f < 0)
            return false;
        int ms = remaining_ms(until_ns);
        if (ms == 0) {
            *timed_out = true;
            return false;
        }
        struct pollfd p = {.fd = PQsocket(pc->conn), .events = POLLOUT | POLLIN};
        int n = poll(&p, 1, ms);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && (p.revents & POLLIN) && !PQconsumeInput(pc->conn))
            return false;
    }
}

/* Waits until a result can be taken without blocking. */
static bool await_input(pg_conn *pc, int64_t until_ns, bool *timed_out)
{
    while (PQisBusy(pc->conn)) {
        int ms = remaining_ms(until_ns);
        if (ms == 0) {
            *timed_out = true;
            return false;
        }
        struct pollfd p = {.fd = PQsocket(pc->conn), .events = POLLIN};
        int n = poll(&p, 1, ms);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && !PQconsumeInput(pc->conn))
            return false;
    }
    return true;
}

typedef enum { SENT_OK, SEND_FAILED, SEND_TIMEOUT, WAIT_FAILED, WAIT_TIMEOUT } io_outcome;

/* Collects every result of what was sent; keeps the first error (else the
 * last result) in *out. */
static bool is_error(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY;
}

static io_outcome collect(pg_conn *pc, int64_t until_ns, PGresult **out)
{
    PGresult *keep = NULL;
    for (;;) {
        bool timed_out = false;
        if (!await_input(pc, until_ns, &timed_out)) {
            PQclear(keep);
            *out = NULL;
            return timed_out ? WAIT_TIMEOUT : WAIT_FAILED;
        }
        PGresult *r = PQgetResult(pc->conn);
        if (!r)
            break;
        if (keep && is_error(keep)) {
            PQclear(r);
            continue;
        }
        PQclear(keep);
        keep = r;
    }
    *out = keep;
    return keep ? SENT_OK : WAIT_FAILED;
}

static int64_t deadline_from_now(const pg_conn *pc)
{
    return pc->wait_ms > 0 ? oms_mono_ns() + (int64_t)pc->wait_ms * 1000000 : 0;
}

/* Turns an I/O outcome into the call's error and the connection's state. */
static int io_error(pg_conn *pc, io_outcome o, oms_error *err)
{
    pc->state = OMS_DBC_LOST | (o == WAIT_FAILED || o == WAIT_TIMEOUT ? OMS_DBC_SENT : 0) |
                (o == SEND_TIMEOUT || o == WAIT_TIMEOUT ? OMS_DBC_STALLED : 0);
    if (o == SEND_TIMEOUT || o == WAIT_TIMEOUT)
        return oms_err_set(err, OMS_ETIMEOUT, "PostgreSQL did not answer within %d ms", pc->wait_ms);
    const char *m = PQerrorMessage(pc->conn);
    return oms_err_set(err, OMS_EDB, "PostgreSQL connection lost: %.*s", (int)strcspn(m, "\n"), m && *m ? m : "?");
}

static int map_result(pg_conn *pc, PGresult *r, oms_error *err)
{
    if (!is_error(r))
        return OMS_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (PQstatus(pc->conn) != CONNECTION_OK) {
        /* The server ended the session (shutdown, idle timeout, crash):
         * did our statement run? Only a message it sent before reading
         * ours says no, and that we cannot tell apart: assume it may have. */
        pc->state = OMS_DBC_LOST | OMS_DBC_SENT;
        const char *m = msg ? msg : PQerrorMessage(pc->conn);
        return oms_err_set(err, OMS_EDB, "PostgreSQL connection lost: %.*s", (int)strcspn(m, "\n"), m);
    }
    return oms_db_pg_error(state, msg, err);
}

/* One query sent (simple protocol, several statements allowed) and its
 * results collected, within the connection's deadline. */
static int simple(pg_conn *pc, const char *sql, PGresult **out, oms_error *err)
{
    *out = NULL;
    pc->state = 0;
    int64_t until = deadline_from_now(pc);
    bool timed_out = false;
    if (!PQsendQuery(pc->conn, sql))
        return io_error(pc, SEND_FAILED, err);
    if (!flush_all(pc, until, &timed_out))
        return io_error(pc, timed_out ? SEND_TIMEOUT : SEND_FAILED, err);
    io_outcome o = collect(pc, until, out);
    if (o != SENT_OK)
        return io_error(pc, o, err);
    return map_result(pc, *out, err);
}

/* ---- connecting ---- */

static void fmt_int(char *buf, size_t cap, int v) { snprintf(buf, cap, "%d", v); }

static const char k_begin[] = "BEGIN ISOLATION LEVEL READ COMMITTED";

static int pg_connect(void **out, const char *dsn, const oms_db_opts *o, oms_error *err)
{
    /* Our parameters first, the URL last: what the URL says wins. */
    const char *keys[8], *vals[8];
    char ct[16], ki[16], kv[16], kc[16];
    int n = 0;
    if (o->connect_timeout_s > 0) {
        fmt_int(ct, sizeof ct, o->connect_timeout_s);
        keys[n] = "connect_timeout", vals[n++] = ct;
    }
    keys[n] = "keepalives", vals[n++] = "1";
    if (o->keepalives_idle_s > 0) {
        fmt_int(ki, sizeof ki, o->keepalives_idle_s);
        keys[n] = "keepalives_idle", vals[n++] = ki;
    }
    if (o->keepalives_interval_s > 0) {
        fmt_int(kv, sizeof kv, o->keepalives_interval_s);
        keys[n] = "keepalives_interval", vals[n++] = kv;
    }
    if (o->keepalives_count > 0) {
        fmt_int(kc, sizeof kc, o->keepalives_count);
        keys[n] = "keepalives_count", vals[n++] = kc;
    }
    keys[n] = "fallback_application_name", vals[n++] = "oms";
    keys[n] = "dbname", vals[n++] = dsn;
    keys[n] = NULL, vals[n] = NULL;
    /* Connected without blocking, so that the connect timeout is ours to
     * keep (libpq's own applies only to its blocking connect): a server
     * that accepts the connection and then says nothing (a stopped
     * postmaster) costs the timeout, not a worker. The URL's
     * connect_timeout, when it has one, is the timeout. */
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    int connect_ms = (o->connect_timeout_s > 0 ? o->connect_timeout_s : 10) * 1000;
    PQconninfoOption *info = c ? PQconninfo(c) : NULL;
    for (PQconninfoOption *i = info; i && i->keyword; i++)
        if (strcmp(i->keyword, "connect_timeout") == 0 && i->val && atoi(i->val) > 0)
            connect_ms = atoi(i->val) * 1000;
    PQconninfoFree(info);
    int64_t until = oms_mono_ns() + (int64_t)connect_ms * 1000000;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    bool timed_out = false;
    while (c && PQstatus(c) != CONNECTION_BAD && ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
        int ms = remaining_ms(until);
        if (ms == 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = PQsocket(c), .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int got = poll(&p, 1, ms);
        if (got < 0 && errno != EINTR)
            break;
        if (got > 0)
            ps = PQconnectPoll(c);
    }
    if (timed_out) {
        PQfinish(c);
        return oms_err_set(err, OMS_ETIMEOUT, "cannot connect to PostgreSQL: no answer within %d ms", connect_ms);
    }
    if (!c || PQstatus(c) != CONNECTION_OK) {
        /* libpq's message never contains the password; the DSN is not echoed. */
        const char *m = c ? PQerrorMessage(c) : "out of memory";
        oms_err_set(err, OMS_EDB, "cannot connect to PostgreSQL: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(c);
        return OMS_EDB;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    pg_conn *pc = oms_xcalloc(1, sizeof *pc);
    if (PQsetnonblocking(c, 1) != 0) {
        free(pc);
        PQfinish(c);
        return oms_err_set(err, OMS_EDB, "cannot set up the PostgreSQL connection");
    }
    pc->conn = c;
    pc->configured_wait_ms = o->statement_timeout_ms > 0 ? o->statement_timeout_ms + CLIENT_GRACE_MS : 0;
    /* the set-up round trip is bounded by what is left of the connect timeout */
    pc->wait_ms = remaining_ms(until) > 0 ? remaining_ms(until) : 1;
    /* A timeout of 0 is left to the server (postgresql.conf, ALTER ROLE). */
    char set[320], timeouts[256] = "";
    const char *names[] = {"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"};
    int values[] = {o->statement_timeout_ms, o->lock_timeout_ms, o->idle_tx_timeout_ms};
    /* Read committed whatever the server's default: a statement sees what
     * committed before it (the branch row after a hand-off, a group
     * commit's content settled beside it; docs/storage.md). */
    snprintf(pc->begin_parts[0], sizeof pc->begin_parts[0], "%s", k_begin);
    pc->nbegin_parts = 1;
    for (size_t i = 0, len = 0; i < 3 && len < sizeof timeouts; i++)
        if (values[i] > 0) {
            len += (size_t)snprintf(timeouts + len, sizeof timeouts - len, "; SET %s%s = %d",
                                    o->session_settings ? "" : "LOCAL ", names[i], values[i]);
            if (!o->session_settings)
                snprintf(pc->begin_parts[pc->nbegin_parts++], sizeof pc->begin_parts[0], "SET LOCAL %s = %d",
                         names[i], values[i]);
        }
    if (o->session_settings) {
        snprintf(set, sizeof set, "SET client_min_messages = warning%s", timeouts);
        snprintf(pc->begin_sql, sizeof pc->begin_sql, "%s", k_begin);
    } else {
        snprintf(set, sizeof set, "SET client_min_messages = warning");
        snprintf(pc->begin_sql, sizeof pc->begin_sql, "%s%s", k_begin, timeouts);
    }
    PGresult *r = NULL;
    int rc = simple(pc, set, &r, err);
    PQclear(r);
    if (rc) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = rc == OMS_ETIMEOUT ? OMS_ETIMEOUT : OMS_EDB;
        oms_err_set(err, rc, "cannot set up the PostgreSQL session: %.200s", why);
        PQfinish(c);
        free(pc);
        return rc;
    }
    pc->wait_ms = pc->configured_wait_ms;
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

static void pg_deadline(void *p, int ms)
{
    pg_conn *pc = p;
    pc->wait_ms = ms > 0 ? ms : ms == 0 ? 0 : pc->configured_wait_ms;
}

static int pg_state(void *p) { return ((pg_conn *)p)->state; }

/* An idle connection has nothing to say: input there is the server closing
 * it (a shutdown's FATAL, then the end of the stream) or, rarely, a message
 * of no consequence (a parameter report). Read it; whatever leaves the
 * connection bad, or keeps it talking, means a new one. */
static bool pg_alive(void *p)
{
    pg_conn *pc = p;
    if (PQstatus(pc->conn) != CONNECTION_OK)
        return false;
    for (int round = 0; round < 3; round++) {
        struct pollfd pfd = {.fd = PQsocket(pc->conn), .events = POLLIN};
        int n = poll(&pfd, 1, 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == EINTR;
        if (pfd.revents & (POLLERR | POLLNVAL))
            return false;
        if (!PQconsumeInput(pc->conn) || PQstatus(pc->conn) != CONNECTION_OK)
            return false;
        PGnotify *note;
        while ((note = PQnotifies(pc->conn)))
            PQfreemem(note);
    }
    return false;
}

/* ---- statements ---- */

/* Sends one statement with its parameters: named (prepared once per
 * connection) or unnamed. */
static bool send_statement(pg_conn *pc, const char *sql, const char *const *values, int n, const char *name)
{
    if (name)
        return PQsendQueryPrepared(pc->conn, name, n, values, NULL, NULL, 0) == 1;
    return PQsendQueryParams(pc->conn, sql, n, NULL, values, NULL, NULL, 0) == 1;
}

/* The statement's name on this connection, preparing it on first use; NULL
 * when it cannot be cached (then it runs unnamed). A failed preparation is
 * returned as *failed with the I/O outcome in *io. */
static const char *statement_name(pg_conn *pc, const char *sql, int n, int64_t until, PGresult **failed,
                                  io_outcome *io)
{
    *io = SENT_OK;
    uint64_t h = oms_fnv1a_str(sql);
    for (int i = 0; i < pc->nstmts; i++)
        if (pc->stmts[i].hash == h && strcmp(pc->stmts[i].sql, sql) == 0) {
            oms_db_count_statement(OMS_DB_STMT_HIT);
            return pc->stmts[i].name;
        }
    if (pc->nstmts == STMT_CACHE) {
        oms_db_count_statement(OMS_DB_STMT_UNCACHED);
        return NULL;
    }
    prepared *ps = &pc->stmts[pc->nstmts];
    snprintf(ps->name, sizeof ps->name, "oms_%d", pc->nstmts);
    bool timed_out = false;
    if (!PQsendPrepare(pc->conn, ps->name, sql, n, NULL)) {
        *io = SEND_FAILED;
        return NULL;
    }
    if (!flush_all(pc, until, &timed_out)) {
        *io = timed_out ? SEND_TIMEOUT : SEND_FAILED;
        return NULL;
    }
    PGresult *r = NULL;
    /* A Parse changes nothing: losing the connection now still means the
     * statement itself was never sent. */
    io_outcome o = collect(pc, until, &r);
    if (o != SENT_OK) {
        *io = o == WAIT_TIMEOUT ? SEND_TIMEOUT : SEND_FAILED;
        return NULL;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return NULL;
    }
    PQclear(r);
    ps->sql = oms_xstrdup(sql);
    ps->hash = h;
    pc->nstmts++;
    oms_db_count_statement(OMS_DB_STMT_PREPARED);
    return ps->name;
}

/* Runs one statement; the result (or an error result) in *out, or an I/O
 * outcome other than SENT_OK when the connection failed or time ran out. */
static io_outcome run(pg_conn *pc, const char *sql, const char *const *values, int n, bool plain, PGresult **out)
{
    *out = NULL;
    int64_t until = deadline_from_now(pc);
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *name = NULL;
        if (!plain && oms_db_pg_prepared) {
            PGresult *failed = NULL;
            io_outcome io;
            name = statement_name(pc, sql, n, until, &failed, &io);
            if (io != SENT_OK)
                return io;
            if (failed) {
                *out = failed;
                return SENT_OK;
            }
        }
        bool timed_out = false;
        if (!send_statement(pc, sql, values, n, name))
            return SEND_FAILED;
        if (!flush_all(pc, until, &timed_out))
            return timed_out ? SEND_TIMEOUT : SEND_FAILED;
        io_outcome o = collect(pc, until, out);
        if (o != SENT_OK)
            return o;
        const char *state = PQresultErrorField(*out, PG_DIAG_SQLSTATE);
        if (!(name && state && strcmp(state, "26000") == 0))
            return SENT_OK;
        /* The session lost its statements (a proxy handed us another
         * server connection): prepare again, once. */
        PQclear(*out);
        *out = NULL;
        forget_statements(pc);
    }
    return SENT_OK;
}

/* Parameters as text: `ints` holds the integers' digits. */
static int text_params(const oms_dbparam *params, int n, const char **values, char (*ints)[24], oms_error *err)
{
    if (n > OMS_DB_MAX_PARAMS)
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
    return OMS_OK;
}

/* BEGIN, COMMIT and ROLLBACK are not worth a name */
static bool is_plain(const char *sql, int n) { return n == 0 && (sql[0] == 'B' || sql[0] == 'C' || sql[0] == 'R'); }

static oms_dbres *to_res(PGresult *r)
{
    size_t nrows = (size_t)PQntuples(r), ncols = (size_t)PQnfields(r);
    oms_dbres *res = oms_dbres_new(nrows, ncols);
    for (size_t i = 0; i < nrows; i++)
        for (size_t j = 0; j < ncols; j++)
            if (!PQgetisnull(r, (int)i, (int)j))
                res->cells[i * ncols + j] = oms_xstrdup(PQgetvalue(r, (int)i, (int)j));
    const char *t = PQcmdTuples(r);
    res->changes = t && *t ? strtoll(t, NULL, 10) : 0;
    return res;
}

static int pg_exec(void *p, const char *sql, const oms_dbparam *params, int n, oms_dbres **out,
                   oms_error *err)
{
    pg_conn *pc = p;
    pc->state = 0;
    if (pc->nahead) /* db.c drains them before anything else */
        return oms_err_set(err, OMS_EINTERNAL, "results sent ahead were not read");
    const char *values[OMS_DB_MAX_PARAMS];
    char ints[OMS_DB_MAX_PARAMS][24];
    if (text_params(params, n, values, ints, err))
        return OMS_EINTERNAL;
    PGresult *r = NULL;
    io_outcome o = run(pc, sql, values, n, is_plain(sql, n), &r);
    if (o != SENT_OK)
        return io_error(pc, o, err);
    int rc = map_result(pc, r, err);
    if (rc == OMS_OK && out)
        *out = to_res(r);
    PQclear(r);
    return rc;
}

/* ---- pipelines ---- */

/* Leaves pipeline mode after its results were read (or the connection is
 * being given up anyway). */
static void leave_pipeline(pg_conn *pc)
{
    if (PQpipelineStatus(pc->conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(pc->conn))
        pc->state = OMS_DBC_LOST | OMS_DBC_SENT;
}

/* Reads one segment's results: the `nb` BEGIN parts, the `n` statements
 * and the Sync. The first error is the segment's (*failed: its index, -1
 * for the BEGIN); `s` (NULL for a segment sent ahead, which reads
 * nothing) receives the rows of the statements that asked for them. */
static int read_segment(pg_conn *pc, int nb, const oms_db_stmt *s, int n, const char *const *names, int64_t until,
                        int *failed, bool *stale, oms_error *err)
{
    int rc = OMS_OK;
    bool timed_out = false;
    for (int i = -nb; i < n + 1; i++) {
        /* each statement's results end with NULL; the Sync's does not */
        PGresult *r = NULL, *keep = NULL;
        for (;;) {
            if (!await_input(pc, until, &timed_out)) {
                PQclear(keep);
                return io_error(pc, timed_out ? WAIT_TIMEOUT : WAIT_FAILED, err);
            }
            r = PQgetResult(pc->conn);
            if (!r)
                break;
            if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                r = NULL;
                if (i < n)
                    return io_error(pc, WAIT_FAILED, err); /* fewer results than statements */
                break;
            }
            PQclear(keep);
            keep = r;
            if (i == n)
                break;
        }
        if (i == n) {
            PQclear(keep);
            break;
        }
        if (!keep)
            return io_error(pc, WAIT_FAILED, err);
        ExecStatusType st = PQresultStatus(keep);
        if (st == PGRES_PIPELINE_ABORTED || rc) {
            PQclear(keep);
            continue;
        }
        if (is_error(keep)) {
            const char *state = PQresultErrorField(keep, PG_DIAG_SQLSTATE);
            *stale = i >= 0 && names && names[i] && state && strcmp(state, "26000") == 0;
            rc = map_result(pc, keep, err);
            *failed = i < 0 ? -1 : i;
        } else if (i >= 0 && s && s[i].out) {
            *s[i].out = to_res(keep);
        }
        PQclear(keep);
    }
    return rc;
}

/* Sends the BEGIN parts (when `begin`), the statements and a Sync, in
 * pipeline mode (entered when it is off), without reading anything. */
static int send_segment(pg_conn *pc, bool begin, const oms_db_stmt *s, int n, const char *const *names,
                        int64_t until, int *failed, oms_error *err)
{
    if (PQpipelineStatus(pc->conn) == PQ_PIPELINE_OFF && !PQenterPipelineMode(pc->conn))
        return io_error(pc, SEND_FAILED, err);
    int nb = begin ? pc->nbegin_parts : 0;
    for (int i = 0; i < nb; i++)
        if (PQsendQueryParams(pc->conn, pc->begin_parts[i], 0, NULL, NULL, NULL, NULL, 0) != 1) {
            leave_pipeline(pc);
            return io_error(pc, SEND_FAILED, err);
        }
    for (int i = 0; i < n; i++) {
        const char *values[OMS_DB_MAX_PARAMS];
        char ints[OMS_DB_MAX_PARAMS][24];
        if (text_params(s[i].params, s[i].nparams, values, ints, err)) {
            /* nothing is flushed yet: the server saw none of it, but the
             * queued messages make the connection unusable */
            pc->state = OMS_DBC_LOST;
            *failed = i;
            return OMS_EINTERNAL;
        }
        if (!send_statement(pc, s[i].sql, values, s[i].nparams, names[i]))
            return io_error(pc, SEND_FAILED, err);
    }
    bool timed_out = false;
    if (PQpipelineSync(pc->conn) != 1 || !flush_all(pc, until, &timed_out)) {
        io_outcome o = timed_out ? SEND_TIMEOUT : SEND_FAILED;
        pc->state = OMS_DBC_LOST;
        return io_error(pc, o, err);
    }
    return OMS_OK;
}

/* One pipeline: names prepared first (a Parse of its own, outside the
 * pipeline, on first use), then every statement and one Sync sent
 * together, and the results read in order. */
static int pipeline_once(pg_conn *pc, bool begin, const oms_db_stmt *s, int n, int *failed, bool *stale,
                         oms_error *err)
{
    *failed = n;
    *stale = false;
    int64_t until = deadline_from_now(pc);
    const char *names[64];
    if (n > 64)
        return oms_err_set(err, OMS_EINTERNAL, "too many statements in one pipeline");
    for (int i = 0; i < n; i++) {
        names[i] = NULL;
        if (!is_plain(s[i].sql, s[i].nparams) && oms_db_pg_prepared) {
            PGresult *bad = NULL;
            io_outcome io;
            names[i] = statement_name(pc, s[i].sql, s[i].nparams, until, &bad, &io);
            if (io != SENT_OK)
                return io_error(pc, io, err);
            if (bad) { /* a statement that does not parse: nothing was sent */
                int rc = map_result(pc, bad, err);
                PQclear(bad);
                *failed = i;
                return rc ? rc : oms_err_set(err, OMS_EINTERNAL, "cannot prepare a statement");
            }
        }
    }
    int rc = send_segment(pc, begin, s, n, names, until, failed, err);
    if (rc)
        return rc;
    int nb = begin ? pc->nbegin_parts : 0;
    rc = read_segment(pc, nb, s, n, names, until, failed, stale, err);
    if (pc->state & OMS_DBC_LOST)
        return rc;
    leave_pipeline(pc);
    if (pc->state & OMS_DBC_LOST)
        return rc ? rc : oms_err_set(err, OMS_EDB, "PostgreSQL connection lost after a pipeline");
    return rc;
}

static int pg_pipeline(void *p, bool begin, const oms_db_stmt *s, int n, int *failed, oms_error *err)
{
    pg_conn *pc = p;
    pc->state = 0;
    *failed = n;
    if (pc->nahead) /* db.c drains them before anything else */
        return oms_err_set(err, OMS_EINTERNAL, "results sent ahead were not read");
    bool stale = false;
    int rc = pipeline_once(pc, begin, s, n, failed, &stale, err);
    if (rc && stale && begin && !pc->state) {
        /* The session lost its prepared statements (a proxy handed us
         * another server connection) in a transaction this pipeline began:
         * roll it back and send it all again, unnamed names prepared anew. */
        PGresult *r = NULL;
        oms_error ignored;
        simple(pc, "ROLLBACK", &r, &ignored);
        PQclear(r);
        forget_statements(pc);
        for (int i = 0; i < n; i++)
            if (s[i].out) {
                oms_dbres_free(*s[i].out);
                *s[i].out = NULL;
            }
        if (!pc->state)
            rc = pipeline_once(pc, begin, s, n, failed, &stale, err);
    }
    return rc;
}

/* ---- segments sent ahead (group commit, store/db.c) ---- */

/* Sends a segment without reading its results. OMS_DB_NOT_AHEAD when it cannot
 * go ahead (a statement not prepared on this connection yet, whose Parse
 * waits for its answer; too many segments ahead): nothing was sent, and
 * db.c sends it the ordinary way. */
static int pg_pipeline_send(void *p, bool begin, const oms_db_stmt *s, int n, oms_error *err)
{
    pg_conn *pc = p;
    pc->state = 0;
    const char *names[64];
    if (n > 64 || pc->nahead == MAX_AHEAD)
        return OMS_DB_NOT_AHEAD;
    for (int i = 0; i < n; i++) {
        names[i] = NULL;
        if (s[i].out)
            return OMS_DB_NOT_AHEAD;
        if (is_plain(s[i].sql, s[i].nparams) || !oms_db_pg_prepared)
            continue;
        uint64_t h = oms_fnv1a_str(s[i].sql);
        for (int k = 0; k < pc->nstmts && !names[i]; k++)
            if (pc->stmts[k].hash == h && strcmp(pc->stmts[k].sql, s[i].sql) == 0)
                names[i] = pc->stmts[k].name;
        if (!names[i] && pc->nstmts < STMT_CACHE)
            return OMS_DB_NOT_AHEAD; /* its Parse would wait for an answer */
    }
    int failed;
    int rc = send_segment(pc, begin, s, n, names, deadline_from_now(pc), &failed, err);
    if (rc == OMS_OK)
        pc->ahead[pc->nahead++] = (begin ? pc->nbegin_parts : 0) + n;
    return rc;
}

/* Reads every segment sent ahead, in order; the first error is the call's
 * (the statements after it, in that segment and the later ones, did not
 * run). Leaves pipeline mode. */
static int pg_pipeline_drain(void *p, oms_error *err)
{
    pg_conn *pc = p;
    pc->state = 0;
    int64_t until = deadline_from_now(pc);
    int rc = OMS_OK;
    for (int k = 0; k < pc->nahead; k++) {
        int failed;
        bool stale;
        oms_error seg_err;
        int seg = read_segment(pc, 0, NULL, pc->ahead[k], NULL, until, &failed, &stale, &seg_err);
        if (seg && !rc) {
            rc = seg;
            *err = seg_err;
        }
        if (pc->state & OMS_DBC_LOST)
            break;
    }
    pc->nahead = 0;
    if (pc->state & OMS_DBC_LOST)
        return rc ? rc : oms_err_set(err, OMS_EDB, "PostgreSQL connection lost after a pipeline");
    leave_pipeline(pc);
    if (pc->state & OMS_DBC_LOST)
        return rc ? rc : oms_err_set(err, OMS_EDB, "PostgreSQL connection lost after a pipeline");
    return rc;
}

static int pg_exec_script(void *p, const char *sql, oms_error *err)
{
    PGresult *r = NULL;
    int rc = simple(p, sql, &r, err);
    PQclear(r);
    return rc;
}

/* BEGIN, with the transaction's SET LOCALs when there are no session
 * settings; a transaction left open by a failed SET LOCAL is rolled back. */
static int pg_begin(void *p, bool write, oms_error *err)
{
    (void)write; /* writers serialise on the rows they lock (FOR UPDATE) */
    pg_conn *pc = p;
    PGresult *r = NULL;
    int rc = simple(pc, pc->begin_sql, &r, err);
    PQclear(r);
    if (rc && !pc->state && PQtransactionStatus(pc->conn) != PQTRANS_IDLE) {
        oms_error ignored;
        simple(pc, "ROLLBACK", &r, &ignored);
        PQclear(r);
    }
    return rc;
}

static int pg_backend_pid(void *p) { return PQbackendPID(((pg_conn *)p)->conn); }

const oms_db_driver oms_db_pg_driver = {
    .name = "postgresql",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .alive = pg_alive,
    .state = pg_state,
    .deadline = pg_deadline,
    .pipeline = pg_pipeline,
    .pipeline_send = pg_pipeline_send,
    .pipeline_drain = pg_pipeline_drain,
    .backend_pid = pg_backend_pid,
};
