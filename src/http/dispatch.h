/* Handler threads fed by a bounded FIFO, beside the HTTP library's event
 * loops (docs/architecture.md "Dispatch"). The loops parse requests and
 * hand each one that may touch the database to this pool; a request that
 * waits in the queue past its deadline, or finds the queue full, goes to a
 * small refusal lane instead, whose threads answer it (503, recorded) even
 * while every handler thread is stuck in the database. */
#ifndef OMS_DISPATCH_H
#define OMS_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    OMS_REFUSE_DEADLINE, /* waited in the queue past the deadline */
    OMS_REFUSE_FULL,     /* the queue was full */
    OMS_REFUSE_DRAINING, /* the server is shutting down */
} oms_refusal;

/* A unit of work, embedded in its owner (no allocation per hand-off). The
 * pool never touches a job after calling run or refuse: either may end by
 * handing the job's memory back (resuming the connection that owns it). */
typedef struct oms_job {
    struct oms_job *next;
    int64_t deadline_ns;                          /* monotonic; set by submit */
    oms_refusal why;                              /* set on the refusal lane */
    void (*run)(struct oms_job *j);               /* on a handler thread */
    void (*refuse)(struct oms_job *j, oms_refusal why); /* on a refusal (or handler) thread */
} oms_job;

typedef struct {
    unsigned handlers;   /* handler threads */
    unsigned refusers;   /* refusal-lane threads */
    size_t queue_cap;    /* jobs waiting for a handler, at most */
    int64_t deadline_ns; /* longest wait in the queue */
} oms_dispatch_config;

typedef struct oms_dispatch oms_dispatch;

int oms_dispatch_new(oms_dispatch **out, const oms_dispatch_config *cfg);

/* Queues j for a handler thread. `accept(arg)`, when not NULL, runs under
 * the pool's lock once the job is taken and before any thread can see it
 * (the HTTP glue suspends the job's connection there), so a job is never
 * taken after oms_dispatch_stop. A full queue sends the job to the refusal
 * lane (OMS_REFUSE_FULL). Returns false, calling nothing, once stopped. */
bool oms_dispatch_submit(oms_dispatch *d, oms_job *j, void (*accept)(void *), void *arg);

/* Sends j straight to the refusal lane. Returns false, calling nothing,
 * once stopped or when `bounded` and the lane already holds its limit. */
bool oms_dispatch_refuse(oms_dispatch *d, oms_job *j, oms_refusal why, bool bounded, void (*accept)(void *),
                         void *arg);

/* Jobs queued, jobs on handler threads, and refusals pending or running. */
void oms_dispatch_counts(oms_dispatch *d, size_t *queued, size_t *running, size_t *refusing);

/* Handler threads waiting for work. */
unsigned oms_dispatch_idle(oms_dispatch *d);

/* Stops taking jobs: any still queued are refused (OMS_REFUSE_DRAINING),
 * then waits until every job is done or `until_ns` (monotonic) passes.
 * Returns the number of jobs not done (stuck on a handler thread). */
size_t oms_dispatch_stop(oms_dispatch *d, int64_t until_ns);

/* Joins the threads and frees the pool; only after oms_dispatch_stop
 * returned 0 (a stuck thread would never be joined). */
void oms_dispatch_free(oms_dispatch *d);

#endif
