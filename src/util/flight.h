/* Single flight with a freshness rule: callers that want "a read that
 * started after I arrived" share one read instead of making one each.
 *
 * A caller arriving while a read is in flight never takes that read (it may
 * have been answered before the caller arrived); it waits for the NEXT one,
 * which it or another caller leads, and every caller that arrived before
 * that next read started shares it. Used for the freshness read of a branch
 * on PostgreSQL (src/store/freshness.c), where the read is a round trip.
 *
 * Waiting costs no lock: the result is published in a seqlock slot and the
 * waiters sleep on a futex word, all woken by one call when a read ends and
 * each copying the result without contending for anything. (A mutex and a
 * condition variable here made every wake-up a queue on the mutex: a
 * quarter of the CPU of a GET on PostgreSQL under 32 connections,
 * docs/BENCHMARKS.md round 13.) Linux only, like the rest of the server. */
#ifndef OMS_UTIL_FLIGHT_H
#define OMS_UTIL_FLIGHT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The value a read produces: up to 96 bytes, copied word by word. */
#define OMS_FLIGHT_WORDS 12
typedef struct {
    uint64_t w[OMS_FLIGHT_WORDS];
} oms_flight_value;

/* A caller that cannot sleep (an event loop) parks instead: `done` runs on
 * the thread of the read that answers it, with that read's outcome (rc 0
 * and the value, or the read's error), and must not block. */
typedef struct oms_flight_parked {
    struct oms_flight_parked *next;
    uint64_t want;
    void (*done)(struct oms_flight_parked *p, int rc, const oms_flight_value *v);
} oms_flight_parked;

/* Zero-initialised (static storage or calloc) is ready to use; never
 * destroyed while in use. */
typedef struct {
    _Atomic uint64_t started;  /* reads started */
    _Atomic uint64_t done;     /* number of the last read that ended */
    _Atomic uint32_t done_word; /* its low 32 bits: the futex word */
    _Atomic uint32_t waiters;  /* callers asleep (or about to be) */
    atomic_bool busy;          /* a read is in flight */
    /* the last ended read's outcome, under a sequence count (odd while
     * being written; only the one leader writes) */
    _Atomic uint64_t seq;
    _Atomic uint64_t number;
    _Atomic int rc;
    _Atomic uint64_t value[OMS_FLIGHT_WORDS];
    _Atomic(oms_flight_parked *) parked; /* parked callers (a stack) */
    _Atomic int closed_rc;               /* non-zero: closed, parking fails so */
} oms_flight;

/* The read: fills *out and returns 0, or returns non-zero (an error code of
 * the caller's own; *out is then not shared). */
typedef int (*oms_flight_read_fn)(void *arg, oms_flight_value *out);

/* Answers *out from a read that started after this call began: this
 * thread's own (read(arg, out) run here) or one another caller led. When
 * the shared read failed, this caller reads alone. Returns read's result
 * for the read that answered; *shared (may be NULL) says whether another
 * caller's read answered. */
int oms_flight_share(oms_flight *f, oms_flight_read_fn read, void *arg, oms_flight_value *out, bool *shared);

/* Parks p (p->done set by the caller): it is answered by the first read to
 * start after this call, whoever leads it (on a closed flight: at once,
 * with the close's rc). Nothing here starts that read:
 * the caller makes sure one will (oms_flight_share from a thread that may
 * wait, while oms_flight_has_parked). */
void oms_flight_park(oms_flight *f, oms_flight_parked *p);
bool oms_flight_has_parked(oms_flight *f);
/* Answers every parked caller with rc (non-zero) and no read. */
void oms_flight_fail_parked(oms_flight *f, int rc);
/* For good: every caller parked now or later is answered with rc
 * (non-zero) at once, including those a read in flight would have put back
 * to wait for the next. Does not wait for that read. */
void oms_flight_close(oms_flight *f, int rc);

#endif
