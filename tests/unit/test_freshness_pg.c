/* Parked freshness reads on PostgreSQL (src/store/freshness.c), on a fresh
 * database (OMS_PG_URL; skipped without it). An event loop parks a read on
 * its branch's flight and the store's reader answers it:
 *   - requests parked on many branches, in a process that has served many
 *     more, are all answered, and the reader looks only at the flights
 *     that have parked requests (it once walked every flight at every
 *     wake-up, a cost that grew with every branch the process served);
 *   - a reader stopped and started again answers what parks next;
 *   - past the limit of flights a new branch takes over an idle one, and
 *     the lease's memo of the branch that flight served before answers
 *     nothing for the new one (it would answer another branch's head);
 *   - the same with threads reading, asking the memo and parking on a few
 *     branches at once while flights change hands all the time: every
 *     answer is its own branch's. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "infra/log.h"
#include "store/freshness.h"
#include "store/sole_writer.h"
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

static bool exec_sql(oms_dbconn *c, const char *q)
{
    oms_error err;
    int rc = oms_db_exec(c, q, NULL, 0, NULL, &err);
    if (rc)
        fprintf(stderr, "  %s: %s\n", q, err.msg);
    return rc == OMS_OK;
}

/* main read, then remembered under the lease. The memo trusts the lease
 * for a second after each heartbeat began; on a loaded machine a heartbeat
 * can come late and the lease lapse between the read and the lookup, which
 * proves nothing either way: the pair is tried again. A memo that never
 * answers fails. */
static bool main_is_remembered_under_the_lease(oms_dbconn *c)
{
    for (int tries = 0; tries < 50; tries++) {
        uint64_t epoch;
        int64_t until = oms_mono_ns() + 10 * (int64_t)1000000000;
        while (!oms_db_lease_current(g_store->db, &epoch) && oms_mono_ns() < until)
            usleep(5000);
        char head[65];
        int64_t version;
        int setting;
        oms_error err;
        oms_fresh_parked p;
        if (oms_store_fresh_version_and_head(c, "main", &version, head, &setting, &err) != OMS_OK ||
            strcmp(head, "c1") != 0)
            return false;
        if (oms_store_fresh_remembered(g_store->db, "main", &p))
            return strcmp(p.head, "c1") == 0;
        fprintf(stderr, "  (main read but not remembered: the lease lapsed meanwhile? again)\n");
        usleep(20000);
    }
    return false;
}

/* A branch not remembered while the lease is current: a lookup that
 * misses because the lease lapsed proves nothing, so the miss counts only
 * when the same lease was current just before and still just after it (a
 * lookup takes microseconds; a lapse lasts until the next heartbeat). */
static bool forgotten_under_the_lease(const char *branch)
{
    for (int tries = 0; tries < 50; tries++) {
        uint64_t before = 0, after = 0;
        int64_t until = oms_mono_ns() + 10 * (int64_t)1000000000;
        bool current = false;
        while (!(current = oms_db_lease_current(g_store->db, &before)) && oms_mono_ns() < until)
            usleep(5000);
        if (!current)
            return false; /* no lease within 10 s: nothing can be shown */
        oms_fresh_parked p;
        bool remembered = oms_store_fresh_remembered(g_store->db, branch, &p);
        if (remembered)
            return false;
        if (oms_db_lease_current(g_store->db, &after) && after == before)
            return true;
        usleep(20000);
    }
    return false;
}

static void a_flight_taken_over_answers_nothing_of_its_old_branch(void)
{
    oms_error err;
    oms_dbconn *c = NULL;
    if (oms_db_conn(g_store->db, &c, &err) != OMS_OK) {
        CHECK(!"no connection");
        return;
    }
    /* main read under the lease: its flight remembers head c1 */
    oms_fresh_parked p;
    CHECK(main_is_remembered_under_the_lease(c));
    /* no flight made from now on: new branches take idle ones over, until
     * the clock has come round to main's (well within three turns) */
    uint64_t recycled0 = oms_store_fresh_recycled();
    oms_store_fresh_limit_flights(0);
    int answered_from_memo = 0;
    for (int i = 0; i < 3 * SERVED; i++) {
        char name[32];
        snprintf(name, sizeof name, "fresh/new%05d", i);
        if (oms_store_fresh_remembered(g_store->db, name, &p))
            answered_from_memo++;
    }
    CHECK_EQ_INT(answered_from_memo, 0);
    CHECK(oms_store_fresh_recycled() - recycled0 >= SERVED);
    /* main's flight went to another branch: main is remembered no more */
    CHECK(forgotten_under_the_lease("main"));
    /* a request parked on a taken-over flight is answered by its own read */
    atomic_store(&g_ok, 0);
    atomic_store(&g_failed, 0);
    static oms_fresh_parked q;
    memset(&q, 0, sizeof q);
    q.answered = answered;
    /* (a clock that finds every flight it passes used lately hands out
     * none that time, and moves on: a few tries) */
    bool parked = false;
    for (int tries = 0; tries < 64 && !parked; tries++)
        parked = oms_store_fresh_park(g_store->db, "main", &q);
    CHECK(parked);
    CHECK(wait_answered(1, 10));
    CHECK_EQ_INT(atomic_load(&g_ok), 1);
    CHECK_EQ_STR(q.head, "c1");
    oms_store_fresh_limit_flights(1 << 30);
}

#define STRESS_THREADS 8
#define STRESS_ROUNDS 3000
#define STRESS_BRANCHES 400

static atomic_int g_wrong, g_stress_parked;

typedef struct {
    oms_fresh_parked p; /* first */
    atomic_bool done;
} stress_park;

static void stress_answered(oms_fresh_parked *p) { atomic_store(&((stress_park *)p)->done, true); }

/* One thread's rounds: a read, a memo lookup or a parked read of one of a
 * few branches (main, whose head is c1, or one with no head), each answer
 * checked against the branch asked about. */
static void *stress(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    oms_error err;
    oms_dbconn *c = NULL;
    if (oms_db_conn(g_store->db, &c, &err) != OMS_OK) {
        atomic_fetch_add(&g_wrong, 1);
        return NULL;
    }
    for (int i = 0; i < STRESS_ROUNDS; i++) {
        int b = rand_r(&seed) % 4 == 0 ? 0 : 1 + (int)(rand_r(&seed) % STRESS_BRANCHES);
        char name[32], head[65];
        snprintf(name, sizeof name, b == 0 ? "main" : "fresh/s%02d", b);
        const char *want = b == 0 ? "c1" : "";
        int64_t version;
        int setting;
        oms_fresh_parked p;
        stress_park sp;
        switch (rand_r(&seed) % 3) {
        case 0:
            if (oms_store_fresh_version_and_head(c, name, &version, head, &setting, &err) != OMS_OK ||
                strcmp(head, want) != 0)
                atomic_fetch_add(&g_wrong, 1);
            break;
        case 1:
            if (oms_store_fresh_remembered(g_store->db, name, &p) && strcmp(p.head, want) != 0)
                atomic_fetch_add(&g_wrong, 1);
            break;
        default:
            memset(&sp, 0, sizeof sp);
            sp.p.answered = stress_answered;
            if (!oms_store_fresh_park(g_store->db, name, &sp.p))
                break; /* no flight to be had: a request reads for itself */
            atomic_fetch_add(&g_stress_parked, 1);
            int64_t until = oms_mono_ns() + 10 * (int64_t)1000000000;
            while (!atomic_load(&sp.done) && oms_mono_ns() < until)
                usleep(50);
            if (!atomic_load(&sp.done) || sp.p.rc != OMS_OK || strcmp(sp.p.head, want) != 0)
                atomic_fetch_add(&g_wrong, 1);
            break;
        }
    }
    return NULL;
}

/* Flights change hands all the time (4 flights for 400 branches in use),
 * while eight threads ask. Run first: the flights it makes are all there
 * are. */
static void answers_stay_their_branchs_while_flights_change_hands(void)
{
    oms_store_fresh_limit_flights(4);
    atomic_store(&g_wrong, 0);
    atomic_store(&g_stress_parked, 0);
    pthread_t t[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_create(&t[i], NULL, stress, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(atomic_load(&g_wrong), 0);
    CHECK(atomic_load(&g_stress_parked) > 0);
    CHECK(oms_store_fresh_recycled() > 1000);
    oms_store_fresh_limit_flights(1 << 30);
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
    /* main's head is c1; the process holds the sole-writer lease, so reads
     * are remembered (its memo) */
    oms_error err;
    oms_dbconn *c = NULL;
    oms_sole_writer *sole = NULL;
    if (oms_db_conn(g_store->db, &c, &err) != OMS_OK ||
        !exec_sql(c, "INSERT INTO commits (id, tree, first_parent, parents, author, message, time_ms, issue_keys,"
                     " generation) VALUES ('c1', 't', NULL, '[]', 'a', 'm', 0, '[]', 1)") ||
        !exec_sql(c, "UPDATE branches SET head = 'c1' WHERE name = 'main'") ||
        oms_sole_writer_start(g_store->db, &sole, &err) != OMS_OK) {
        fprintf(stderr, "cannot set up\n");
        t_pg_store_remove(&pg, g_store);
        return 1;
    }
    int64_t until = oms_mono_ns() + 10 * (int64_t)1000000000;
    while (!oms_sole_writer_held() && oms_mono_ns() < until)
        usleep(5000);
    static const t_case cases[] = {
        T(answers_stay_their_branchs_while_flights_change_hands),
        T(parked_requests_on_many_branches_are_answered_looking_at_those_alone),
        T(a_reader_stopped_and_started_again_answers_what_parks_next),
        T(a_flight_taken_over_answers_nothing_of_its_old_branch),
    };
    int rc = t_main("freshness_pg", cases, sizeof cases / sizeof *cases);
    oms_sole_writer_stop(sole);
    oms_store_fresh_stop_reader();
    t_pg_store_remove(&pg, g_store);
    return rc;
}
