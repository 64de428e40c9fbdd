/* Parked freshness reads on PostgreSQL (src/store/freshness.c), on a fresh
 * database (OMS_PG_URL; skipped without it). An event loop parks a read on
 * its branch's flight and the store's reader answers it:
 *   - requests parked on many branches, in a process that has served many
 *     more, are all answered, and the reader looks only at the flights
 *     that have parked requests (it once walked every flight at every
 *     wake-up, a cost that grew with every branch the process served);
 *   - a reader stopped and started again answers what parks next. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "infra/log.h"
#include "store/freshness.h"
#include "t.h"
#include "t_store.h"
#include "util/time.h"

#define SERVED 2000 /* branches the process has read */
#define PARKED 300  /* of them, with a parked request each */

static oms_store *g_store;
static atomic_int g_ok, g_failed;

static void answered(oms_fresh_parked *p)
{
    atomic_fetch_add(p->rc == OMS_OK ? &g_ok : &g_failed, 1);
}

static bool wait_answered(int want, double seconds)
{
    int64_t until = oms_mono_ns() + (int64_t)(seconds * 1e9);
    while (atomic_load(&g_ok) + atomic_load(&g_failed) < want && oms_mono_ns() < until)
        usleep(2000);
    return atomic_load(&g_ok) + atomic_load(&g_failed) >= want;
}

static void branch_name(char *buf, size_t n, int i) { snprintf(buf, n, "fresh/b%04d", i); }

static void parked_requests_on_many_branches_are_answered_looking_at_those_alone(void)
{
    oms_dbconn *c = NULL;
    oms_error err;
    CHECK(oms_db_conn(g_store->db, &c, &err) == OMS_OK);
    if (!c)
        return;
    /* a flight for each branch read (the branch need not exist) */
    for (int i = 0; i < SERVED; i++) {
        char name[32], head[65];
        int64_t version;
        int setting;
        branch_name(name, sizeof name, i);
        if (oms_store_fresh_version_and_head(c, name, &version, head, &setting, &err) != OMS_OK) {
            CHECK(!"a freshness read failed");
            return;
        }
    }
    static oms_fresh_parked ps[PARKED];
    uint64_t visits0 = oms_store_fresh_reader_visits();
    atomic_store(&g_ok, 0);
    atomic_store(&g_failed, 0);
    for (int i = 0; i < PARKED; i++) {
        char name[32];
        branch_name(name, sizeof name, i * (SERVED / PARKED));
        memset(&ps[i], 0, sizeof ps[i]);
        ps[i].answered = answered;
        CHECK(oms_store_fresh_park(g_store->db, name, &ps[i]));
    }
    CHECK(wait_answered(PARKED, 20));
    CHECK_EQ_INT(atomic_load(&g_ok), PARKED);
    CHECK_EQ_INT(atomic_load(&g_failed), 0);
    uint64_t visits = oms_store_fresh_reader_visits() - visits0;
    /* one look per parked branch, a second when a request parked while
     * its read ran; a walk of every flight is SERVED at each wake-up */
    CHECK(visits >= 1 && visits <= 2 * PARKED);
}

static void a_reader_stopped_and_started_again_answers_what_parks_next(void)
{
    oms_store_fresh_stop_reader();
    atomic_store(&g_ok, 0);
    atomic_store(&g_failed, 0);
    static oms_fresh_parked p;
    memset(&p, 0, sizeof p);
    p.answered = answered;
    CHECK(oms_store_fresh_park(g_store->db, "fresh/b0000", &p));
    CHECK(wait_answered(1, 10));
    CHECK_EQ_INT(atomic_load(&g_ok), 1);
}

int main(void)
{
    oms_log_set_level("warn");
    t_pg_db pg;
    bool skip;
    if (!t_pg_store_open("fresh", &pg, &g_store, &skip)) {
        if (skip)
            printf("freshness_pg: skipped (OMS_PG_URL not set)\n");
        t_pg_store_remove(&pg, g_store);
        return skip ? 0 : 1;
    }
    static const t_case cases[] = {
        T(parked_requests_on_many_branches_are_answered_looking_at_those_alone),
        T(a_reader_stopped_and_started_again_answers_what_parks_next),
    };
    int rc = t_main("freshness_pg", cases, sizeof cases / sizeof *cases);
    oms_store_fresh_stop_reader();
    t_pg_store_remove(&pg, g_store);
    return rc;
}
