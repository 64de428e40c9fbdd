/* The handler pool (dispatch.h). One lock guards two FIFOs: the queue of
 * jobs waiting for a handler thread, and the refusal lane. Handler threads
 * take the queue's head; refusal threads take the lane, and also the
 * queue's head once its deadline has passed, so a request is answered at
 * its deadline even when every handler thread is stuck in the database.
 *
 * Waking costs: a submit signals a handler only when one is idle, and the
 * refusal threads only when the new job is the queue's head and would
 * expire before the refusal thread's next planned look (`armed_ns`); under
 * load the queue is rarely empty, so a request costs one signal at most.
 *
 * Idle handlers wait on a stack, each on a condition of its own, and a
 * submit wakes the one that went idle last: under light load the same few
 * threads (and their database sessions) do all the work, with their caches
 * warm, instead of each request waking the thread idle longest (one shared
 * condition wakes its waiters roughly in arrival order) and a session that
 * has not run for as many requests as there are threads. */
#include "http/dispatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/time.h"
#include "util/thread.h"

#define LANE_LIMIT 4096         /* bounded refusals waiting in the lane */
#define IDLE_LOOK_NS 1000000000 /* a refusal thread looks at least once a second */

/* A handler thread waiting for work, on the idle stack. */
typedef struct idle_handler {
    pthread_cond_t wake;
    bool woken; /* taken off the stack by a submit (or the stop) */
    struct idle_handler *below;
} idle_handler;

struct oms_dispatch {
    pthread_mutex_t mu;
    idle_handler *idle_top; /* handlers waiting for work, the last to go idle on top */
    unsigned nidle;         /* how many */
    pthread_cond_t lane; /* refusers: the lane has a job, or the queue a new head */
    pthread_cond_t idle; /* the stopper: a job finished */
    oms_job *qh, *qt;    /* waiting for a handler */
    size_t qlen, cap;
    oms_job *rh, *rt; /* the refusal lane */
    size_t rlen;
    size_t running;         /* jobs on handler threads */
    size_t refusing;        /* refusals being made */
    int64_t armed_ns;       /* a refusal thread looks again by then */
    int64_t deadline_ns;
    bool stopping;
    pthread_t *threads;
    unsigned nthreads;
};

static void timespec_at(struct timespec *ts, int64_t mono_ns)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000);
    ts->tv_nsec = (long)(mono_ns % 1000000000);
}

static oms_job *pop_queue(oms_dispatch *d)
{
    oms_job *j = d->qh;
    d->qh = j->next;
    if (!d->qh)
        d->qt = NULL;
    d->qlen--;
    j->next = NULL;
    return j;
}

static void push_lane(oms_dispatch *d, oms_job *j, oms_refusal why)
{
    j->why = why;
    j->next = NULL;
    if (d->rt)
        d->rt->next = j;
    else
        d->rh = j;
    d->rt = j;
    d->rlen++;
}

static oms_job *pop_lane(oms_dispatch *d)
{
    oms_job *j = d->rh;
    d->rh = j->next;
    if (!d->rh)
        d->rt = NULL;
    d->rlen--;
    j->next = NULL;
    return j;
}

/* Wakes the handler that went idle last (under d->mu); false when none waits. */
static bool wake_idle(oms_dispatch *d)
{
    idle_handler *h = d->idle_top;
    if (!h)
        return false;
    d->idle_top = h->below;
    d->nidle--;
    h->woken = true;
    pthread_cond_signal(&h->wake);
    return true;
}

static void *handler_main(void *p)
{
    oms_thread_name("oms-handler");
    oms_dispatch *d = p;
    idle_handler self = {.woken = false};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self.wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->qh && !d->stopping) {
            self.woken = false;
            self.below = d->idle_top;
            d->idle_top = &self;
            d->nidle++;
            while (!self.woken)
                pthread_cond_wait(&self.wake, &d->mu);
        }
        if (!d->qh)
            break; /* stopping, nothing left */
        oms_job *j = pop_queue(d);
        d->running++;
        pthread_mutex_unlock(&d->mu);
        /* A job that waited past its deadline is refused by whichever
         * thread finds it first; here that costs a handler thread one audit
         * write instead of the request's whole work. */
        if (oms_mono_ns() > j->deadline_ns)
            j->refuse(j, OMS_REFUSE_DEADLINE);
        else
            j->run(j);
        pthread_mutex_lock(&d->mu);
        d->running--;
        if (d->stopping)
            pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->mu);
    pthread_cond_destroy(&self.wake);
    return NULL; /* the thread's database connection closes with its key */
}

static void *refuser_main(void *p)
{
    oms_thread_name("oms-refuser");
    oms_dispatch *d = p;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        int64_t now = oms_mono_ns();
        oms_job *j = NULL;
        oms_refusal why = OMS_REFUSE_DEADLINE;
        if (d->rh) {
            j = pop_lane(d);
            why = j->why;
        } else if (d->qh && d->qh->deadline_ns <= now) {
            j = pop_queue(d);
        }
        if (j) {
            d->refusing++;
            pthread_mutex_unlock(&d->mu);
            j->refuse(j, why);
            pthread_mutex_lock(&d->mu);
            d->refusing--;
            if (d->stopping)
                pthread_cond_broadcast(&d->idle);
            continue;
        }
        if (d->stopping)
            break; /* the queue was moved to the lane, which is empty */
        int64_t wake = d->qh ? d->qh->deadline_ns : now + IDLE_LOOK_NS;
        if (wake < d->armed_ns)
            d->armed_ns = wake;
        struct timespec ts;
        timespec_at(&ts, wake);
        pthread_cond_timedwait(&d->lane, &d->mu, &ts);
        if (d->armed_ns == wake)
            d->armed_ns = INT64_MAX;
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int oms_dispatch_new(oms_dispatch **out, const oms_dispatch_config *cfg)
{
    oms_dispatch *d = oms_xcalloc(1, sizeof *d);
    unsigned total = cfg->handlers + cfg->refusers;
    d->threads = oms_xcalloc(total, sizeof *d->threads);
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->lane, &ca);
    pthread_cond_init(&d->idle, &ca);
    pthread_condattr_destroy(&ca);
    d->cap = cfg->queue_cap;
    d->deadline_ns = cfg->deadline_ns;
    d->armed_ns = INT64_MAX;
    unsigned handlers = 0, refusers = 0;
    for (unsigned i = 0; i < total; i++) {
        bool is_handler = i < cfg->handlers;
        if (pthread_create(&d->threads[d->nthreads], NULL, is_handler ? handler_main : refuser_main, d) != 0)
            continue;
        d->nthreads++;
        if (is_handler)
            handlers++;
        else
            refusers++;
    }
    if (handlers == 0 || refusers == 0) {
        oms_dispatch_stop(d, 0);
        oms_dispatch_free(d);
        return OMS_ENOMEM;
    }
    *out = d;
    return OMS_OK;
}

bool oms_dispatch_submit(oms_dispatch *d, oms_job *j, void (*accept)(void *), void *arg)
{
    pthread_mutex_lock(&d->mu);
    if (d->stopping) {
        pthread_mutex_unlock(&d->mu);
        return false;
    }
    if (accept)
        accept(arg);
    j->next = NULL;
    j->deadline_ns = oms_mono_ns() + d->deadline_ns;
    bool wake_lane = false;
    if (d->qlen >= d->cap) {
        push_lane(d, j, OMS_REFUSE_FULL);
        wake_lane = true;
    } else {
        if (d->qt)
            d->qt->next = j;
        else
            d->qh = j;
        d->qt = j;
        d->qlen++;
        /* signalled under the lock: the handler's condition lives on its
         * stack, and the stop may be waiting for that thread to end */
        wake_idle(d);
        wake_lane = d->qh == j && j->deadline_ns < d->armed_ns;
    }
    pthread_mutex_unlock(&d->mu);
    /* Signalled after the unlock, so the woken thread does not block on
     * the lock at once; the state it looks for is already published. */
    if (wake_lane)
        pthread_cond_signal(&d->lane);
    return true;
}

bool oms_dispatch_refuse(oms_dispatch *d, oms_job *j, oms_refusal why, bool bounded, void (*accept)(void *),
                         void *arg)
{
    pthread_mutex_lock(&d->mu);
    if (d->stopping || (bounded && d->rlen >= LANE_LIMIT)) {
        pthread_mutex_unlock(&d->mu);
        return false;
    }
    if (accept)
        accept(arg);
    push_lane(d, j, why);
    pthread_cond_signal(&d->lane);
    pthread_mutex_unlock(&d->mu);
    return true;
}

void oms_dispatch_counts(oms_dispatch *d, size_t *queued, size_t *running, size_t *refusing)
{
    pthread_mutex_lock(&d->mu);
    *queued = d->qlen;
    *running = d->running;
    *refusing = d->refusing + d->rlen;
    pthread_mutex_unlock(&d->mu);
}

unsigned oms_dispatch_idle(oms_dispatch *d)
{
    pthread_mutex_lock(&d->mu);
    unsigned n = d->nidle;
    pthread_mutex_unlock(&d->mu);
    return n;
}

size_t oms_dispatch_stop(oms_dispatch *d, int64_t until_ns)
{
    pthread_mutex_lock(&d->mu);
    if (!d->stopping) {
        d->stopping = true;
        while (d->qh)
            push_lane(d, pop_queue(d), OMS_REFUSE_DRAINING);
        while (wake_idle(d))
            ;
        pthread_cond_broadcast(&d->lane);
    }
    struct timespec ts;
    timespec_at(&ts, until_ns);
    while ((d->running || d->refusing || d->rlen) && oms_mono_ns() < until_ns)
        pthread_cond_timedwait(&d->idle, &d->mu, &ts);
    size_t left = d->running + d->refusing + d->rlen;
    pthread_mutex_unlock(&d->mu);
    return left;
}

void oms_dispatch_free(oms_dispatch *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    while (wake_idle(d))
        ;
    pthread_cond_broadcast(&d->lane);
    pthread_mutex_unlock(&d->mu);
    for (unsigned i = 0; i < d->nthreads; i++)
        pthread_join(d->threads[i], NULL);
    pthread_cond_destroy(&d->lane);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->mu);
    free(d->threads);
    free(d);
}
