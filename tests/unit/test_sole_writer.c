/* The sole-writer lease's edges inside one process (src/store/sole_writer.h,
 * src/store/db.c; docs/storage.md "The sole-writer lease"), on a fresh
 * PostgreSQL database (OMS_PG_URL; skipped without it). The API tests
 * (tests/api/test_sole_writer.py) cover what a client sees; these hold a
 * write transaction open across the moments an HTTP client cannot time:
 *   - a transaction begun under the lease and committed after the holder
 *     started giving it back commits at once (the holder keeps the lock
 *     until it ends; a guard would wait for that lock);
 *   - one committed after the lease's session was lost takes the guard
 *     first, and so waits out the holder's own row;
 *   - a writer of another process gets through within a fraction of a
 *     second of connecting;
 *   - the lease is not taken while a write transaction of the process's
 *     own has chosen the guard but not yet sent it (its guard would wait
 *     for the lease, as another writer's), and is once it ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infra/log.h"
#include "store/db.h"
#include "store/sole_writer.h"
#include "store/store.h"
#include "t.h"
#include "t_store.h"
#include "util/time.h"

static char g_url[512];
static oms_store *g_store;
static oms_sole_writer *g_sole;

static double now_s(void) { return (double)oms_mono_ns() / 1e9; }

static bool wait_held(bool want, double seconds)
{
    double until = now_s() + seconds;
    while (now_s() < until) {
        if (oms_sole_writer_held() == want)
            return true;
        usleep(5000);
    }
    return oms_sole_writer_held() == want;
}

/* Another process, as the lease sees it: an oms_db of its own. */
static oms_db *other_db(void)
{
    oms_db *db = NULL;
    oms_error err;
    if (oms_db_open(&db, g_url, NULL, &err) != OMS_OK)
        fprintf(stderr, "  cannot open: %s\n", err.msg);
    return db;
}

static int begin_insert(oms_dbconn *c, const char *name)
{
    oms_error err;
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_begin(c, true, &err);
    if (rc == OMS_OK)
        rc = oms_db_exec(c, "INSERT INTO sole_t (v) VALUES ($1)", p, 1, NULL, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    return rc;
}

static void commit_in_flight_at_give_back_is_not_held(void)
{
    CHECK(wait_held(true, 10));
    oms_dbconn *c;
    oms_error err;
    CHECK_EQ_INT(oms_db_conn(g_store->db, &c, &err), OMS_OK);
    CHECK_EQ_INT(begin_insert(c, "in-flight"), OMS_OK);
    CHECK_EQ_INT(oms_db_lease_unguarded(g_store->db), 1);
    /* a session of another process appears: the holder gives the lease
     * back, and waits for this transaction before it lets go of the lock */
    oms_db *other = other_db();
    void *h = NULL;
    CHECK_EQ_INT(oms_db_raw_open(other, &h, 5000, &err), OMS_OK);
    CHECK(wait_held(false, 2));
    usleep(200000);
    double t = now_s();
    CHECK_EQ_INT(oms_db_commit(c, &err), OMS_OK);
    CHECK(now_s() - t < 2.0);
    CHECK_EQ_INT(oms_db_lease_unguarded(g_store->db), 0);
    /* the other process writes: through at once, the lease given back */
    oms_dbres *r = NULL;
    t = now_s();
    CHECK_EQ_INT(oms_db_raw_exec(other, h, "BEGIN", NULL, 0, NULL, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_raw_exec(other, h, "SELECT oms_write_guard()", NULL, 0, NULL, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_raw_exec(other, h, "SELECT count(*) FROM sole_t WHERE v = 'in-flight'", NULL, 0, &r, &err),
                 OMS_OK);
    CHECK_EQ_STR(oms_dbres_get(r, 0, 0), "1");
    oms_dbres_free(r);
    CHECK_EQ_INT(oms_db_raw_exec(other, h, "COMMIT", NULL, 0, NULL, &err), OMS_OK);
    CHECK(now_s() - t < 1.0);
    oms_db_raw_close(other, h);
    oms_db_close(other);
}

static void commit_after_the_session_was_lost_takes_the_guard(void)
{
    /* the other session gone, the holder takes the lease again after its
     * back-off; here a fresh start does it at once */
    oms_sole_writer_stop(g_sole);
    oms_error err;
    CHECK_EQ_INT(oms_sole_writer_start(g_store->db, &g_sole, &err), OMS_OK);
    CHECK(wait_held(true, 10));
    oms_dbconn *c;
    CHECK_EQ_INT(oms_db_conn(g_store->db, &c, &err), OMS_OK);
    CHECK_EQ_INT(begin_insert(c, "after-loss"), OMS_OK);
    /* the lease's session is cut by the server, as an administrator or a
     * restart would; asked from inside the open transaction (a session of
     * another process would make the holder give the lease back first) */
    oms_dbres *r = NULL;
    CHECK_EQ_INT(oms_db_exec(c,
                             "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                             " AND mode = 'ExclusiveLock' AND classid = 1330467667 AND objid = 1330398465"
                             " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                             NULL, 0, &r, &err),
                 OMS_OK);
    CHECK(r && r->nrows == 1);
    oms_dbres_free(r);
    CHECK(wait_held(false, 1));
    /* this commit takes the guard: the holder's row is less than two
     * seconds old, and nothing tells the guard the holder stopped trusting
     * its memory, so it waits until the row has run out */
    double t = now_s();
    CHECK_EQ_INT(oms_db_commit(c, &err), OMS_OK);
    double took = now_s() - t;
    CHECK(took > 0.8);
    CHECK(took < 5.0);
    CHECK_EQ_INT(oms_db_lease_unguarded(g_store->db), 0);
}

static void take_waits_for_own_transaction_that_chose_the_guard(void)
{
    oms_sole_writer_stop(g_sole);
    g_sole = NULL;
    CHECK(wait_held(false, 1));
    oms_error err;
    oms_dbconn *c;
    CHECK_EQ_INT(oms_db_conn(g_store->db, &c, &err), OMS_OK);
    /* begun without the lease: the guard is chosen, and goes out with
     * the first statement, which has not been sent yet */
    CHECK_EQ_INT(oms_db_begin(c, true, &err), OMS_OK);
    uint64_t yields = oms_sole_writer_yields();
    CHECK_EQ_INT(oms_sole_writer_start(g_store->db, &g_sole, &err), OMS_OK);
    usleep(1500 * 1000); /* the first attempt is at once, the next after a second */
    CHECK(!oms_sole_writer_held());
    double t = now_s();
    oms_dbparam p[] = {DBP_TEXT("chose-the-guard")};
    CHECK_EQ_INT(oms_db_exec(c, "INSERT INTO sole_t (v) VALUES ($1)", p, 1, NULL, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_commit(c, &err), OMS_OK);
    CHECK(now_s() - t < 0.5); /* its guard found no holder to wait for */
    CHECK(wait_held(true, 5));
    CHECK(oms_sole_writer_yields() == yields);
}

int main(void)
{
    oms_log_set_level("warn"); /* the lease's own notices are expected here */
    t_pg_db pg;
    bool skip;
    oms_error err;
    oms_dbconn *c = NULL;
    if (!t_pg_store_open("sole", &pg, &g_store, &skip)) {
        if (skip)
            printf("sole_writer: skipped (OMS_PG_URL not set)\n");
        t_pg_store_remove(&pg, g_store);
        return skip ? 0 : 1;
    }
    snprintf(g_url, sizeof g_url, "%s", pg.url);
    if (oms_db_conn(g_store->db, &c, &err) ||
        oms_db_exec(c, "CREATE TABLE sole_t (v TEXT PRIMARY KEY)", NULL, 0, NULL, &err) ||
        oms_sole_writer_start(g_store->db, &g_sole, &err)) {
        fprintf(stderr, "cannot set up: %s\n", err.msg);
        t_pg_store_remove(&pg, g_store);
        return 1;
    }
    static const t_case cases[] = {
        T(commit_in_flight_at_give_back_is_not_held),
        T(commit_after_the_session_was_lost_takes_the_guard),
        T(take_waits_for_own_transaction_that_chose_the_guard),
    };
    int rc = t_main("sole_writer", cases, sizeof cases / sizeof *cases);
    oms_sole_writer_stop(g_sole);
    t_pg_store_remove(&pg, g_store);
    return rc;
}
