/* Single flight with a freshness rule (src/util/flight.c): every caller is
 * answered by a read that started after it arrived, reads are shared under
 * contention, a failed shared read leaves each waiter to read alone, and a
 * caller that arrives while a read is in flight waits for the next one. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "t.h"
#include "util/flight.h"

/* The "database": a counter every read returns; reads take a while so that
 * callers pile up behind them. */
static _Atomic uint64_t g_value;    /* bumped by "commits" */
static _Atomic uint64_t g_reads;    /* reads made */
static _Atomic uint64_t g_fail_read; /* the read with this number (from 1) fails */
static _Atomic int g_read_us = 200; /* how long a read takes */

static int slow_read(void *arg, oms_flight_value *out)
{
    (void)arg;
    uint64_t n = atomic_fetch_add(&g_reads, 1) + 1;
    uint64_t v = atomic_load(&g_value); /* what the read sees when it starts */
    usleep((useconds_t)atomic_load(&g_read_us));
    if (n == atomic_load(&g_fail_read))
        return 7;
    memset(out, 0, sizeof *out);
    out->w[0] = v;
    out->w[OMS_FLIGHT_WORDS - 1] = ~v; /* a torn copy would not match */
    return 0;
}

static oms_flight g_f;

typedef struct {
    int calls;
    int stale;  /* answers older than the value at arrival */
    int torn;
    int errors;
    int shared;
} stats;

static void *caller(void *p)
{
    stats *s = p;
    for (int i = 0; i < s->calls; i++) {
        /* a "commit" acknowledged before this call arrives */
        uint64_t at_arrival = atomic_fetch_add(&g_value, 1) + 1;
        oms_flight_value v;
        bool shared = false;
        int rc = oms_flight_share(&g_f, slow_read, NULL, &v, &shared);
        if (rc) {
            s->errors++;
            continue;
        }
        if (v.w[0] < at_arrival)
            s->stale++;
        if (v.w[OMS_FLIGHT_WORDS - 1] != ~v.w[0])
            s->torn++;
        s->shared += shared;
    }
    return NULL;
}

static void never_older_than_arrival_and_shared(void)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_reads, 0);
    enum { N = 16, CALLS = 300 };
    pthread_t t[N];
    stats s[N];
    for (int i = 0; i < N; i++) {
        s[i] = (stats){.calls = CALLS};
        pthread_create(&t[i], NULL, caller, &s[i]);
    }
    int stale = 0, torn = 0, errors = 0, shared = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        stale += s[i].stale;
        torn += s[i].torn;
        errors += s[i].errors;
        shared += s[i].shared;
    }
    CHECK_EQ_INT(stale, 0);
    CHECK_EQ_INT(torn, 0);
    CHECK_EQ_INT(errors, 0);
    /* 16 callers behind 200 us reads: most answers come from another's read */
    CHECK(shared > N * CALLS / 2);
    CHECK(atomic_load(&g_reads) < (uint64_t)(N * CALLS) / 2);
    CHECK(atomic_load(&g_reads) + (uint64_t)shared == (uint64_t)(N * CALLS));
}

/* A read in flight when a caller arrives does not answer it. */
typedef struct {
    oms_flight_value v;
    int rc;
} one_call;

static void *lead_one(void *p)
{
    one_call *o = p;
    o->rc = oms_flight_share(&g_f, slow_read, NULL, &o->v, NULL);
    return NULL;
}

static void in_flight_read_is_not_shared(void)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_read_us, 100000);
    atomic_store(&g_value, 100);
    atomic_store(&g_reads, 0);
    one_call first = {0};
    pthread_t t;
    pthread_create(&t, NULL, lead_one, &first);
    while (atomic_load(&g_reads) == 0) /* the first read has started */
        usleep(100);
    atomic_store(&g_value, 101); /* committed while it is in flight */
    oms_flight_value v;
    bool shared = true;
    int rc = oms_flight_share(&g_f, slow_read, NULL, &v, &shared);
    pthread_join(t, NULL);
    atomic_store(&g_read_us, 200);
    CHECK_EQ_INT(first.rc, 0);
    CHECK_EQ_INT(first.v.w[0], 100);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(v.w[0], 101); /* its own read, started after the first ended */
    CHECK(!shared);
    CHECK_EQ_INT(atomic_load(&g_reads), 2);
}

/* Callers arriving while read 1 is in flight wait for read 2; read
 * `failing` fails. Returns the callers' outcomes: how many got the error,
 * how many the value. */
static void run_four(uint64_t failing, int *errors, int *ok)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_read_us, 50000);
    atomic_store(&g_reads, 0);
    atomic_store(&g_fail_read, failing);
    atomic_store(&g_value, 5);
    enum { N = 4 };
    one_call calls[N];
    pthread_t t[N];
    pthread_create(&t[0], NULL, lead_one, &calls[0]);
    while (atomic_load(&g_reads) == 0)
        usleep(100);
    for (int i = 1; i < N; i++)
        pthread_create(&t[i], NULL, lead_one, &calls[i]);
    *errors = *ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (calls[i].rc == 7)
            (*errors)++;
        else if (calls[i].rc == 0 && calls[i].v.w[0] == 5)
            (*ok)++;
    }
    atomic_store(&g_read_us, 200);
    atomic_store(&g_fail_read, 0);
}

/* Read 1 fails: only its own caller sees the error; the callers that
 * arrived during it never shared it and are answered by read 2. */
static void a_failed_read_is_not_given_to_later_arrivals(void)
{
    int errors, ok;
    run_four(1, &errors, &ok);
    CHECK_EQ_INT(errors, 1);
    CHECK_EQ_INT(ok, 3);
    CHECK_EQ_INT(atomic_load(&g_reads), 2);
}

/* Read 2, which three callers share, fails: its leader gets the error, the
 * two that waited for it each read alone (reads 3 and 4). */
static void waiters_of_a_failed_read_read_alone(void)
{
    int errors, ok;
    run_four(2, &errors, &ok);
    CHECK_EQ_INT(errors, 1);
    CHECK_EQ_INT(ok, 3);
    CHECK_EQ_INT(atomic_load(&g_reads), 4);
}

/* ---- parked callers (an event loop's requests) ---- */

typedef struct {
    oms_flight_parked base;
    _Atomic int answered;
    int rc;
    uint64_t value;
} parked_req;

static void parked_done(oms_flight_parked *p, int rc, const oms_flight_value *v)
{
    parked_req *r = (parked_req *)p;
    r->rc = rc;
    r->value = rc == 0 ? v->w[0] : 0;
    atomic_store(&r->answered, 1);
}

static void park(parked_req *r)
{
    memset(r, 0, sizeof *r);
    r->base.done = parked_done;
    oms_flight_park(&g_f, &r->base);
}

/* A caller parked before a read starts is answered by it; one parked while
 * that read is in flight is not (it waits for the next read, and is
 * answered with what that read saw). */
static void parked_callers_get_the_next_read(void)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_reads, 0);
    atomic_store(&g_read_us, 50000);
    atomic_store(&g_value, 1);
    parked_req early, late;
    park(&early);
    CHECK(oms_flight_has_parked(&g_f));
    one_call leader = {0};
    pthread_t t;
    pthread_create(&t, NULL, lead_one, &leader); /* read 1, which sees 1 */
    while (atomic_load(&g_reads) == 0)
        usleep(100);
    atomic_store(&g_value, 2); /* committed while read 1 is in flight */
    park(&late);
    pthread_join(t, NULL);
    CHECK_EQ_INT(atomic_load(&early.answered), 1);
    CHECK_EQ_INT(early.rc, 0);
    CHECK_EQ_INT(early.value, 1);
    CHECK_EQ_INT(atomic_load(&late.answered), 0); /* put back for read 2 */
    CHECK(oms_flight_has_parked(&g_f));
    oms_flight_value v;
    CHECK_EQ_INT(oms_flight_share(&g_f, slow_read, NULL, &v, NULL), 0); /* read 2 */
    CHECK_EQ_INT(atomic_load(&late.answered), 1);
    CHECK_EQ_INT(late.value, 2);
    CHECK(!oms_flight_has_parked(&g_f));
    atomic_store(&g_read_us, 200);
}

/* A failed read answers its parked callers with its error. */
static void parked_callers_get_a_failed_read(void)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_reads, 0);
    atomic_store(&g_fail_read, 1);
    parked_req r;
    park(&r);
    oms_flight_value v;
    CHECK_EQ_INT(oms_flight_share(&g_f, slow_read, NULL, &v, NULL), 7);
    CHECK_EQ_INT(atomic_load(&r.answered), 1);
    CHECK_EQ_INT(r.rc, 7);
    atomic_store(&g_fail_read, 0);
}

/* Closing answers what is parked at once, without waiting for the read in
 * flight; what that read would have put back, and what parks later, is
 * answered with the close's error too. */
static void closing_lets_every_parked_caller_go(void)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_reads, 0);
    atomic_store(&g_read_us, 100000);
    one_call leader = {0};
    pthread_t t;
    pthread_create(&t, NULL, lead_one, &leader);
    while (atomic_load(&g_reads) == 0)
        usleep(100);
    parked_req during, after;
    park(&during); /* would wait for read 2 */
    oms_flight_close(&g_f, 9);
    CHECK_EQ_INT(atomic_load(&during.answered), 1); /* at once: read 1 still runs */
    CHECK_EQ_INT(during.rc, 9);
    park(&after);
    CHECK_EQ_INT(atomic_load(&after.answered), 1);
    CHECK_EQ_INT(after.rc, 9);
    pthread_join(t, NULL);
    CHECK_EQ_INT(leader.rc, 0); /* the read itself ends normally */
    CHECK(!oms_flight_has_parked(&g_f));
    atomic_store(&g_read_us, 200);
}

/* Many parked callers, many leaders, concurrent: every parked caller is
 * answered exactly once, with a read that started after it parked. */
static _Atomic int g_stop_leaders;

static void *leader_loop(void *p)
{
    (void)p;
    oms_flight_value v;
    while (!atomic_load(&g_stop_leaders))
        oms_flight_share(&g_f, slow_read, NULL, &v, NULL);
    return NULL;
}

static void parked_callers_under_contention(void)
{
    memset(&g_f, 0, sizeof g_f);
    atomic_store(&g_read_us, 50);
    atomic_store(&g_stop_leaders, 0);
    enum { LEADERS = 3, PARKED = 2000 };
    pthread_t t[LEADERS];
    for (int i = 0; i < LEADERS; i++)
        pthread_create(&t[i], NULL, leader_loop, NULL);
    static parked_req reqs[PARKED];
    static uint64_t at_park[PARKED];
    for (int i = 0; i < PARKED; i++) {
        at_park[i] = atomic_fetch_add(&g_value, 1) + 1;
        park(&reqs[i]);
        if (i % 50 == 0)
            usleep(200);
    }
    /* the leaders keep reading until everything parked is answered */
    for (int tries = 0; tries < 5000 && oms_flight_has_parked(&g_f); tries++)
        usleep(1000);
    atomic_store(&g_stop_leaders, 1);
    for (int i = 0; i < LEADERS; i++)
        pthread_join(t[i], NULL);
    int unanswered = 0, stale = 0, errors = 0;
    for (int i = 0; i < PARKED; i++) {
        if (!atomic_load(&reqs[i].answered))
            unanswered++;
        else if (reqs[i].rc)
            errors++;
        else if (reqs[i].value < at_park[i])
            stale++;
    }
    CHECK_EQ_INT(unanswered, 0);
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(stale, 0);
    atomic_store(&g_read_us, 200);
}

int main(void)
{
    static const t_case cases[] = {
        T(never_older_than_arrival_and_shared),
        T(in_flight_read_is_not_shared),
        T(a_failed_read_is_not_given_to_later_arrivals),
        T(waiters_of_a_failed_read_read_alone),
        T(parked_callers_get_the_next_read),
        T(parked_callers_get_a_failed_read),
        T(closing_lets_every_parked_caller_go),
        T(parked_callers_under_contention),
    };
    return T_RUN("flight", cases);
}
