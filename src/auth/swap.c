/* Hazard pointers; see swap.h.
 *
 * Each thread that ever reads owns one record on a global list. Records are
 * never unlinked (the list only grows to the peak number of threads): a
 * thread that ends marks its record free and a new thread reuses it.
 *
 * Why a reader cannot use a freed object: the reader stores its hazard and
 * then re-reads the pointer (both sequentially consistent). If the re-read
 * still sees the old value, the store came before the writer's exchange in
 * the single total order of seq_cst operations, so the writer's scan, which
 * follows its exchange, sees the hazard and waits. If the re-read sees a new
 * value, the reader retries with it. */
#include "auth/swap.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/alloc.h"

typedef oms_swap_rec hp_rec;

static _Atomic(hp_rec *) g_head;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
_Thread_local oms_swap_rec *oms_swap_self;

static void on_thread_exit(void *p)
{
    hp_rec *r = p;
    for (int i = 0; i < OMS_SWAP_SLOTS; i++)
        atomic_store(&r->slot[i], NULL);
    atomic_store(&r->in_use, false);
}

static void make_key(void)
{
    pthread_key_create(&g_key, on_thread_exit);
}

oms_swap_rec *oms_swap_register(void)
{
    if (oms_swap_self)
        return oms_swap_self;
    pthread_once(&g_once, make_key);
    hp_rec *r;
    for (r = atomic_load(&g_head); r; r = r->next) {
        bool expected = false;
        if (!atomic_load(&r->in_use) && atomic_compare_exchange_strong(&r->in_use, &expected, true))
            break;
    }
    if (!r) {
        r = oms_xcalloc(1, sizeof *r);
        atomic_store(&r->in_use, true);
        hp_rec *head = atomic_load(&g_head);
        do
            r->next = head;
        while (!atomic_compare_exchange_weak(&g_head, &head, r));
    }
    pthread_setspecific(g_key, r);
    oms_swap_self = r;
    return r;
}

static bool held_anywhere(const void *v)
{
    for (hp_rec *r = atomic_load(&g_head); r; r = r->next)
        for (int i = 0; i < OMS_SWAP_SLOTS; i++)
            if (atomic_load(&r->slot[i]) == v)
                return true;
    return false;
}

static _Atomic uint64_t g_generation;

uint64_t oms_swap_generation(void) { return atomic_load(&g_generation); }

void *oms_swap_replace(oms_swap_ptr *p, void *next)
{
    void *old = atomic_exchange(p, next);
    atomic_fetch_add(&g_generation, 1); /* after the exchange: see swap.h */
    if (!old)
        return NULL;
    /* Readers hold an object for one verification (microseconds). */
    for (int spins = 0; held_anywhere(old); spins++) {
        if (spins < 100) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return old;
}
