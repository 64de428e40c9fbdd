/* Replaceable shared objects for the authentication hot path: the token
 * verifier (secrets, keys) and a JWKS key set are read by every worker on
 * every request and replaced, rarely, by a reload or a key-set refresh.
 *
 * Readers take no lock and write no shared cache line: hazard pointers
 * (M. Michael, 2004). A reader publishes the pointer it is about to use in
 * its own thread's slot, re-checks that it is still current, uses it, and
 * clears the slot. A writer swaps in the new object, then waits until no
 * thread's slot names the old one before handing it back to be freed. So an
 * object is never freed while a request is using it, and a request sees
 * one whole version: the old one or the new one, never a mixture.
 *
 * Slots are per thread and per use; a thread holds at most one object per
 * slot. Never wait for a swap while holding a slot (a writer might be
 * waiting for that very slot). */
#ifndef OMS_AUTH_SWAP_H
#define OMS_AUTH_SWAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    OMS_SWAP_SLOT_VERIFIER = 0, /* the verifier's state (jwt.c) */
    OMS_SWAP_SLOT_KEYSET = 1,   /* a JWKS key set (jwks.c) */
    OMS_SWAP_SLOTS
};

typedef _Atomic(void *) oms_swap_ptr;

/* A thread's hazard slots; see swap.c. */
typedef struct oms_swap_rec {
    oms_swap_ptr slot[OMS_SWAP_SLOTS];
    atomic_bool in_use;
    struct oms_swap_rec *next;
} oms_swap_rec;

extern _Thread_local oms_swap_rec *oms_swap_self;
oms_swap_rec *oms_swap_register(void); /* the calling thread's first use */

/* Returns the current value of *p, protected in `slot` until
 * oms_swap_release(slot). NULL when *p is NULL (nothing to protect).
 * Inline: it is on every request's path. */
static inline void *oms_swap_acquire(oms_swap_ptr *p, int slot)
{
    oms_swap_rec *r = oms_swap_self ? oms_swap_self : oms_swap_register();
    void *v = atomic_load(p);
    for (;;) {
        atomic_store(&r->slot[slot], v); /* seq_cst: ordered before the re-read */
        void *again = atomic_load(p);
        if (again == v)
            return v;
        v = again;
    }
}

static inline void oms_swap_release(int slot)
{
    if (oms_swap_self)
        atomic_store_explicit(&oms_swap_self->slot[slot], NULL, memory_order_release);
}

/* Makes `next` current and returns the previous value once no thread holds
 * it any more: the caller frees it. Writers of one pointer must be
 * serialised by the caller. */
void *oms_swap_replace(oms_swap_ptr *p, void *next);

/* Counts replacements, process-wide: bumped by every oms_swap_replace
 * after the new object is in place (so a reader that sees the new count
 * and then acquires sees the new object). What was decided with the
 * objects of one generation may be reused while the count is unchanged
 * (auth/token_memo.h). */
uint64_t oms_swap_generation(void);

#endif
