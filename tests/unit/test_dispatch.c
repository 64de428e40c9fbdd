/* The handler pool (src/http/dispatch.c): jobs one after another run on the
 * thread that went idle last (its caches, and its database session, warm),
 * jobs beyond the handlers queue and all run, and a pool stops with its
 * handlers idle. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "http/dispatch.h"
#include "t.h"
#include "util/time.h"

#define HANDLERS 4

typedef struct {
    oms_job job;
    pthread_t ran_on;
    int sleep_us;
    atomic_bool done;
} test_job;

static void run_job(oms_job *j)
{
    test_job *t = (test_job *)j;
    t->ran_on = pthread_self();
    if (t->sleep_us)
        usleep((useconds_t)t->sleep_us);
    atomic_store(&t->done, true);
}

static void refuse_job(oms_job *j, oms_refusal why)
{
    (void)why;
    atomic_store(&((test_job *)j)->done, true);
}

static oms_dispatch *new_pool(void)
{
    oms_dispatch *d = NULL;
    oms_dispatch_config cfg = {.handlers = HANDLERS, .refusers = 1, .queue_cap = 256,
                               .deadline_ns = 10LL * 1000000000};
    return oms_dispatch_new(&d, &cfg) == 0 ? d : NULL;
}

static void init_job(test_job *t, int sleep_us)
{
    t->job = (oms_job){.run = run_job, .refuse = refuse_job};
    t->sleep_us = sleep_us;
    atomic_store(&t->done, false);
}

static bool wait_for(atomic_bool *flag)
{
    int64_t until = oms_mono_ns() + 5LL * 1000000000;
    while (!atomic_load(flag) && oms_mono_ns() < until)
        usleep(100);
    return atomic_load(flag);
}

/* Every handler started and back on the idle stack. */
static bool wait_all_idle(oms_dispatch *d)
{
    int64_t until = oms_mono_ns() + 5LL * 1000000000;
    while (oms_dispatch_idle(d) < HANDLERS) {
        if (oms_mono_ns() >= until)
            return false;
        usleep(100);
    }
    return true;
}

static void sequential_jobs_run_on_the_thread_that_went_idle_last(void)
{
    oms_dispatch *d = new_pool();
    CHECK(d != NULL);
    if (!d)
        return;
    pthread_t first = 0;
    int same = 0;
    for (int i = 0; i < 20; i++) {
        CHECK(wait_all_idle(d));
        test_job t;
        init_job(&t, 0);
        CHECK(oms_dispatch_submit(d, &t.job, NULL, NULL));
        CHECK(wait_for(&t.done));
        if (i == 0)
            first = t.ran_on;
        same += pthread_equal(first, t.ran_on) != 0;
    }
    CHECK_EQ_INT(same, 20);
    CHECK_EQ_INT((int)oms_dispatch_stop(d, oms_mono_ns() + 1000000000), 0);
    oms_dispatch_free(d);
}

/* Jobs that wait until HANDLERS of them run at once (or 5 s pass). */
static atomic_int g_started, g_alone;

static void run_meeting_job(oms_job *j)
{
    atomic_fetch_add(&g_started, 1);
    int64_t until = oms_mono_ns() + 5LL * 1000000000;
    while (atomic_load(&g_started) < HANDLERS && oms_mono_ns() < until)
        usleep(200);
    if (atomic_load(&g_started) < HANDLERS)
        atomic_fetch_add(&g_alone, 1);
    run_job(j);
}

static void jobs_beyond_the_handlers_queue_and_all_run(void)
{
    oms_dispatch *d = new_pool();
    CHECK(d != NULL);
    if (!d)
        return;
    enum { N = 40 };
    static test_job jobs[N];
    atomic_store(&g_started, 0);
    atomic_store(&g_alone, 0);
    for (int i = 0; i < N; i++) {
        init_job(&jobs[i], 0);
        if (i < HANDLERS)
            jobs[i].job.run = run_meeting_job;
        CHECK(oms_dispatch_submit(d, &jobs[i].job, NULL, NULL));
    }
    for (int i = 0; i < N; i++)
        CHECK(wait_for(&jobs[i].done));
    /* the first HANDLERS jobs met: every handler was woken, not only the
     * one on top of the idle stack */
    CHECK_EQ_INT(atomic_load(&g_alone), 0);
    for (int i = 0; i < HANDLERS; i++)
        for (int k = 0; k < i; k++)
            CHECK(!pthread_equal(jobs[i].ran_on, jobs[k].ran_on));
    CHECK_EQ_INT((int)oms_dispatch_stop(d, oms_mono_ns() + 1000000000), 0);
    oms_dispatch_free(d);
}

static void an_idle_pool_stops_at_once(void)
{
    oms_dispatch *d = new_pool();
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK(wait_all_idle(d));
    int64_t t0 = oms_mono_ns();
    CHECK_EQ_INT((int)oms_dispatch_stop(d, t0 + 2000000000), 0);
    test_job t;
    init_job(&t, 0);
    CHECK(!oms_dispatch_submit(d, &t.job, NULL, NULL)); /* a stopped pool takes nothing */
    oms_dispatch_free(d); /* joins every handler: each was woken off the idle stack */
    CHECK(oms_mono_ns() - t0 < 1000000000);
}

int main(void)
{
    static const t_case cases[] = {
        T(sequential_jobs_run_on_the_thread_that_went_idle_last),
        T(jobs_beyond_the_handlers_queue_and_all_run),
        T(an_idle_pool_stops_at_once),
    };
    return t_main("dispatch", cases, sizeof cases / sizeof *cases);
}
