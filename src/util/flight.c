#include "util/flight.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

static void futex_wait(_Atomic uint32_t *word, uint32_t seen)
{
    /* returns at once when *word is no longer `seen`; spurious returns are
     * handled by the caller's loop */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Only the leader writes (it holds `busy`). */
static void publish(oms_flight *f, uint64_t number, int rc, const oms_flight_value *v)
{
    uint64_t s = atomic_load_explicit(&f->seq, memory_order_relaxed);
    atomic_store_explicit(&f->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&f->number, number, memory_order_relaxed);
    atomic_store_explicit(&f->rc, rc, memory_order_relaxed);
    for (int i = 0; i < OMS_FLIGHT_WORDS; i++)
        atomic_store_explicit(&f->value[i], rc == 0 ? v->w[i] : 0, memory_order_relaxed);
    atomic_store_explicit(&f->seq, s + 2, memory_order_release);
}

/* A consistent copy of the slot; returns its read number. */
static uint64_t copy_slot(oms_flight *f, int *rc, oms_flight_value *out)
{
    for (int tries = 0;; tries++) {
        uint64_t s1 = atomic_load_explicit(&f->seq, memory_order_acquire);
        if (s1 & 1) {
            if (tries > 64)
                sched_yield(); /* the leader was preempted mid-write */
            continue;
        }
        uint64_t number = atomic_load_explicit(&f->number, memory_order_relaxed);
        *rc = atomic_load_explicit(&f->rc, memory_order_relaxed);
        for (int i = 0; i < OMS_FLIGHT_WORDS; i++)
            out->w[i] = atomic_load_explicit(&f->value[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&f->seq, memory_order_relaxed) == s1)
            return number;
    }
}

static void push(oms_flight *f, oms_flight_parked *p)
{
    oms_flight_parked *top = atomic_load(&f->parked);
    do
        p->next = top;
    while (!atomic_compare_exchange_weak(&f->parked, &top, p));
}

void oms_flight_fail_parked(oms_flight *f, int rc)
{
    oms_flight_parked *p = atomic_exchange(&f->parked, NULL);
    while (p) {
        oms_flight_parked *next = p->next;
        p->done(p, rc, NULL);
        p = next;
    }
}

/* A parked caller goes back on the stack; on a closed flight, whoever sees
 * the close after pushing answers what is there (the closer sets the flag
 * before taking the stack, so between the two nothing is left behind). */
static void put_back(oms_flight *f, oms_flight_parked *p)
{
    push(f, p);
    int rc = atomic_load(&f->closed_rc);
    if (rc)
        oms_flight_fail_parked(f, rc);
}

void oms_flight_park(oms_flight *f, oms_flight_parked *p)
{
    p->want = atomic_load(&f->started) + 1;
    put_back(f, p);
}

void oms_flight_close(oms_flight *f, int rc)
{
    atomic_store(&f->closed_rc, rc);
    oms_flight_fail_parked(f, rc);
}

bool oms_flight_has_parked(oms_flight *f) { return atomic_load(&f->parked) != NULL; }

/* After read `number` ended: the parked callers it answers get its outcome;
 * those that parked after it started go back to wait for the next. */
static void answer_parked(oms_flight *f, uint64_t number, int rc, const oms_flight_value *v)
{
    oms_flight_parked *p = atomic_exchange(&f->parked, NULL);
    while (p) {
        oms_flight_parked *next = p->next; /* done() may end p's owner */
        if (p->want <= number)
            p->done(p, rc, v);
        else
            put_back(f, p);
        p = next;
    }
}

int oms_flight_share(oms_flight *f, oms_flight_read_fn read, void *arg, oms_flight_value *out, bool *shared)
{
    if (shared)
        *shared = false;
    /* Reads numbered from `want` on start after this point. */
    uint64_t want = atomic_load(&f->started) + 1;
    for (;;) {
        /* the futex word first: a read that ends after this load changes it,
         * so the wait below cannot miss that end */
        uint32_t seen = atomic_load(&f->done_word);
        if (atomic_load(&f->done) >= want) {
            int rc;
            if (copy_slot(f, &rc, out) >= want) {
                if (rc != 0)
                    return read(arg, out); /* the shared read failed: read alone */
                if (shared)
                    *shared = true;
                return 0;
            }
        }
        bool idle = false;
        if (atomic_compare_exchange_strong(&f->busy, &idle, true)) {
            /* This caller leads the next read, for itself and for every
             * caller waiting now or arriving until it starts. Having taken
             * `busy` it must end a read: waiters sleep until `done` moves. */
            uint64_t mine = atomic_fetch_add(&f->started, 1) + 1;
            int rc = read(arg, out);
            publish(f, mine, rc, out);
            atomic_store(&f->done, mine);
            atomic_store(&f->done_word, (uint32_t)mine);
            atomic_store(&f->busy, false);
            if (atomic_load(&f->waiters) > 0)
                futex_wake_all(&f->done_word);
            if (atomic_load(&f->parked))
                answer_parked(f, mine, rc, out);
            return rc;
        }
        atomic_fetch_add(&f->waiters, 1);
        futex_wait(&f->done_word, seen);
        atomic_fetch_sub(&f->waiters, 1);
    }
}
