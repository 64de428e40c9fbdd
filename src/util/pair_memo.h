/* A small process-wide memo of text values that a pair of content-addressed
 * names determines by itself (two commit ids, two versions of a document):
 * such a value never changes, so nothing is ever invalidated. Direct-mapped:
 * a pair that collides with another replaces it. The caller owns the slot
 * array (static storage); one mutex per memo. */
#ifndef OMS_UTIL_PAIR_MEMO_H
#define OMS_UTIL_PAIR_MEMO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define OMS_PAIR_MEMO_NAME_MAX 64

typedef struct {
    uint64_t tag; /* what else the value depends on (a kind, lengths) */
    char a[OMS_PAIR_MEMO_NAME_MAX + 1], b[OMS_PAIR_MEMO_NAME_MAX + 1];
    char *value; /* NULL: empty */
    size_t len;
} oms_pair_memo_slot;

typedef struct {
    pthread_mutex_t mu;
    oms_pair_memo_slot *slots;
    size_t nslots;
    size_t max_len; /* longer values are not kept */
    atomic_ulong hits, misses;
} oms_pair_memo;

/* A memo over a static slot array: OMS_PAIR_MEMO_INIT(slots, max_len). */
#define OMS_PAIR_MEMO_INIT(SLOTS, MAX_LEN)                                                                        \
    {                                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, (SLOTS), sizeof(SLOTS) / sizeof((SLOTS)[0]), (MAX_LEN), 0, 0                   \
    }

/* A copy of the value remembered for (tag, a, b) (NUL-terminated, free()
 * it; *len its length when len is not NULL), or NULL. */
char *oms_pair_memo_get(oms_pair_memo *m, uint64_t tag, const char *a, const char *b, size_t *len);

/* Remembers `len` bytes of `value` for (tag, a, b). Names longer than
 * OMS_PAIR_MEMO_NAME_MAX and values longer than the memo's max_len are not
 * kept. */
void oms_pair_memo_put(oms_pair_memo *m, uint64_t tag, const char *a, const char *b, const char *value, size_t len);

/* Lookups answered and missed since the start. */
void oms_pair_memo_counts(oms_pair_memo *m, unsigned long *hits, unsigned long *misses);

/* Forgets every value (tests). */
void oms_pair_memo_clear(oms_pair_memo *m);

#endif
