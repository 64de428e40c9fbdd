/* Fewer round trips (src/store/db.h, docs/storage.md "Round trips"): a
 * BEGIN and the statements held back by oms_db_exec_later travel with the
 * transaction's next statement, and oms_db_batch_run sends independent
 * statements together. On SQLite all of it runs one statement after the
 * other; on PostgreSQL (when OMS_PG_URL is set) in one pipeline. Either way
 * the results must be those of running the statements one by one:
 *   - a held-back write is seen by the next statement and committed;
 *   - a held-back write that fails fails the next statement (or COMMIT)
 *     with its own error, and nothing of the transaction is committed;
 *   - the connection is usable afterwards;
 *   - a batch returns every statement's rows and stops at the first error;
 *   - a transaction with nothing in it costs no round trip;
 *   - a round trip is counted per pipeline, not per statement;
 *   - a held-back read (oms_db_read_later) gets its rows when it is sent,
 *     in order with the held-back writes; a batch with several results
 *     is one pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "t.h"

static oms_db *g_db;
static const char *g_name;

static oms_dbconn *conn(void)
{
    oms_error err;
    oms_dbconn *c = NULL;
    if (oms_db_conn(g_db, &c, &err) != OMS_OK)
        fprintf(stderr, "  cannot connect: %s\n", err.msg);
    return c;
}

static int64_t count_rows(oms_dbconn *c, const char *v)
{
    oms_error err;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(v)};
    int rc = oms_db_exec(c, "SELECT count(*) FROM batch_t WHERE v = $1", p, 1, &r, &err);
    int64_t n = rc ? -1 : oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return n;
}

static int insert_later(oms_dbconn *c, const char *v, oms_error *err)
{
    oms_dbparam p[] = {DBP_TEXT(v)};
    return oms_db_exec_later(c, "INSERT INTO batch_t (v) VALUES ($1)", p, 1, err);
}

static void held_back_write_is_seen_and_committed(void)
{
    oms_dbconn *c = conn();
    oms_error err;
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    CHECK_EQ_INT(insert_later(c, "a1", &err), OMS_OK);
    CHECK_EQ_INT(insert_later(c, "a2", &err), OMS_OK);
    CHECK_EQ_INT(count_rows(c, "a1"), 1); /* the held-back writes went first */
    CHECK_EQ_INT(insert_later(c, "a3", &err), OMS_OK);
    CHECK_EQ_INT(oms_db_commit(c, &err), OMS_OK); /* a3 travels with COMMIT */
    CHECK_EQ_INT(count_rows(c, "a2"), 1);
    CHECK_EQ_INT(count_rows(c, "a3"), 1);
}

static void failing_held_back_write_fails_the_next_statement(void)
{
    oms_dbconn *c = conn();
    oms_error err;
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    bool pg = oms_db_backend_of(g_db) == OMS_DB_PG;
    CHECK_EQ_INT(insert_later(c, "b1", &err), OMS_OK);
    /* unique: fails when sent (SQLite: at once) */
    CHECK_EQ_INT(insert_later(c, "a1", &err), pg ? OMS_OK : OMS_ECONFLICT);
    if (pg)
        CHECK_EQ_INT(count_rows(c, "b1"), -1);
    oms_db_rollback(c);
    CHECK_EQ_INT(count_rows(c, "b1"), 0);
    CHECK_EQ_INT(count_rows(c, "a1"), 1); /* and the connection answers */
}

static void failing_held_back_write_fails_the_commit(void)
{
    oms_dbconn *c = conn();
    oms_error err;
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    bool pg = oms_db_backend_of(g_db) == OMS_DB_PG;
    CHECK_EQ_INT(insert_later(c, "c1", &err), OMS_OK);
    if (pg) {
        CHECK_EQ_INT(insert_later(c, "a2", &err), OMS_OK);
        CHECK_EQ_INT(oms_db_commit(c, &err), OMS_ECONFLICT); /* COMMIT did not run */
    } else {
        CHECK_EQ_INT(insert_later(c, "a2", &err), OMS_ECONFLICT); /* at once: the caller rolls back */
        oms_db_rollback(c);
    }
    CHECK_EQ_INT(count_rows(c, "c1"), 0);
    CHECK(!oms_db_in_tx(c));
}

static void batch_returns_rows_and_stops_at_the_first_error(void)
{
    oms_dbconn *c = conn();
    oms_error err;
    oms_dbres *r1 = NULL, *r2 = NULL;
    oms_dbparam pd[] = {DBP_TEXT("d1")}, pa[] = {DBP_TEXT("a1")};
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    oms_db_stmt ok[] = {
        {"INSERT INTO batch_t (v) VALUES ($1)", pd, 1, NULL},
        {"SELECT count(*) FROM batch_t WHERE v = $1", pd, 1, &r1},
        {"SELECT v FROM batch_t WHERE v = $1", pa, 1, &r2},
    };
    CHECK_EQ_INT(oms_db_batch_run(c, ok, 3, &err), OMS_OK);
    CHECK_EQ_INT(oms_dbres_int(r1, 0, 0), 1);
    CHECK_EQ_STR(oms_dbres_get(r2, 0, 0), "a1");
    oms_dbres_free(r1);
    oms_dbres_free(r2);
    r1 = NULL;
    oms_dbparam pe[] = {DBP_TEXT("e1")};
    oms_db_stmt bad[] = {
        {"INSERT INTO batch_t (v) VALUES ($1)", pe, 1, NULL},
        {"INSERT INTO batch_t (v) VALUES ($1)", pa, 1, NULL},
        {"SELECT count(*) FROM batch_t", NULL, 0, &r1},
    };
    CHECK_EQ_INT(oms_db_batch_run(c, bad, 3, &err), OMS_ECONFLICT);
    CHECK(r1 == NULL);
    oms_db_rollback(c);
    CHECK_EQ_INT(count_rows(c, "d1"), 0);
    CHECK_EQ_INT(count_rows(c, "e1"), 0);
}

static void empty_transaction_and_round_trips(void)
{
    oms_dbconn *c = conn();
    oms_error err;
    bool pg = oms_db_backend_of(g_db) == OMS_DB_PG;
    uint64_t t0 = oms_db_roundtrips(false);
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_commit(c, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_roundtrips(false) - t0, pg ? 0 : 2);
    t0 = oms_db_roundtrips(false);
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    CHECK_EQ_INT(insert_later(c, "f1", &err), OMS_OK);
    CHECK_EQ_INT(insert_later(c, "f2", &err), OMS_OK);
    CHECK_EQ_INT(count_rows(c, "f1"), 1);
    CHECK_EQ_INT(insert_later(c, "f3", &err), OMS_OK);
    CHECK_EQ_INT(oms_db_commit(c, &err), OMS_OK);
    /* PostgreSQL: [BEGIN, f1, f2, count], [f3, COMMIT]; SQLite: one call each */
    CHECK_EQ_INT(oms_db_roundtrips(false) - t0, pg ? 2 : 6);
}

static void held_back_reads_travel_with_the_next_statement(void)
{
    oms_dbconn *c = conn();
    oms_error err;
    bool pg = oms_db_backend_of(g_db) == OMS_DB_PG;
    oms_dbres *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    oms_dbparam pg1[] = {DBP_TEXT("g1")}, pa[] = {DBP_TEXT("a1")};
    uint64_t t0 = oms_db_roundtrips(false);
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    CHECK_EQ_INT(insert_later(c, "g1", &err), OMS_OK);
    CHECK_EQ_INT(oms_db_read_later(c, "SELECT count(*) FROM batch_t WHERE v = $1", pg1, 1, &r1, &err), OMS_OK);
    CHECK(pg ? r1 == NULL : r1 != NULL); /* PostgreSQL: not sent yet */
    CHECK_EQ_INT(oms_db_read_later(c, "SELECT v FROM batch_t WHERE v = $1", pa, 1, &r2, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_flush(c, &err), OMS_OK);
    CHECK_EQ_INT(oms_dbres_int(r1, 0, 0), 1); /* in order: after the held-back write */
    CHECK_EQ_STR(oms_dbres_get(r2, 0, 0), "a1");
    /* a batch with several results is one pipeline too */
    oms_db_stmt both[] = {
        {"SELECT count(*) FROM batch_t WHERE v = $1", pg1, 1, &r3},
        {"SELECT v FROM batch_t WHERE v = $1", pa, 1, &r4},
    };
    CHECK_EQ_INT(oms_db_batch_run(c, both, 2, &err), OMS_OK);
    CHECK_EQ_INT(oms_dbres_int(r3, 0, 0), 1);
    CHECK_EQ_STR(oms_dbres_get(r4, 0, 0), "a1");
    oms_db_rollback(c);
    /* PostgreSQL: [BEGIN, g1, count, v], [count, v]; SQLite: one call each */
    CHECK_EQ_INT(oms_db_roundtrips(false) - t0, pg ? 2 : 6);
    CHECK_EQ_INT(count_rows(c, "g1"), 0);
    oms_dbres_free(r1);
    oms_dbres_free(r2);
    oms_dbres_free(r3);
    oms_dbres_free(r4);
}

static void run_suite(const char *url, const char *name)
{
    oms_error err;
    g_name = name;
    if (oms_db_open(&g_db, url, NULL, &err) != OMS_OK) {
        fprintf(stderr, "cannot open %s: %s\n", name, err.msg);
        exit(1);
    }
    oms_dbconn *c = conn();
    if (!c)
        exit(1);
    oms_db_exec(c, "DROP TABLE IF EXISTS batch_t", NULL, 0, NULL, &err);
    if (oms_db_exec(c, "CREATE TABLE batch_t (v TEXT PRIMARY KEY)", NULL, 0, NULL, &err) != OMS_OK) {
        fprintf(stderr, "cannot create the table: %s\n", err.msg);
        exit(1);
    }
}

int main(void)
{
    static const t_case cases[] = {
        T(held_back_write_is_seen_and_committed),
        T(failing_held_back_write_fails_the_next_statement),
        T(failing_held_back_write_fails_the_commit),
        T(batch_returns_rows_and_stops_at_the_first_error),
        T(empty_transaction_and_round_trips),
        T(held_back_reads_travel_with_the_next_statement),
    };
    char dir[] = "/tmp/oms-db-batch.XXXXXX", url[128];
    int rc = 0;
    /* scripts/run-tests.sh runs the PostgreSQL part again once its
     * throwaway server is up, with OMS_UNIT_PG_ONLY set */
    const char *pg_only = getenv("OMS_UNIT_PG_ONLY");
    if (!(pg_only && *pg_only)) {
        if (!mkdtemp(dir))
            return 1;
        snprintf(url, sizeof url, "sqlite:%s/t.db", dir);
        run_suite(url, "sqlite");
        rc = T_RUN("db_batch(sqlite)", cases);
        oms_db_close(g_db);
        char rm[160];
        snprintf(rm, sizeof rm, "rm -rf %s", dir);
        if (system(rm) != 0)
            rc = 1;
    }
    const char *pg = getenv("OMS_PG_URL");
    if (pg && *pg) {
        run_suite(pg, "pg");
        rc |= T_RUN("db_batch(pg)", cases);
        oms_error err;
        oms_dbconn *c = conn();
        if (c)
            oms_db_exec(c, "DROP TABLE IF EXISTS batch_t", NULL, 0, NULL, &err);
        oms_db_close(g_db);
    } else {
        printf("db_batch(pg): skipped (OMS_PG_URL not set)\n");
    }
    return rc;
}
