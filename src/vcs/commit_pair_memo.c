#include "vcs/commit_pair_memo.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define SLOTS 512 /* about a hundred open proposals, each asking for a few pairs */
#define ID_MAX 64

typedef struct {
    oms_memo_kind kind;
    char a[ID_MAX + 1], b[ID_MAX + 1];
    char *value; /* NULL: empty */
} slot;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static slot g_slots[SLOTS];
static atomic_ulong g_hits, g_misses;

static unsigned slot_of(oms_memo_kind kind, const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '|') * 1099511628211ULL;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (unsigned)(h % SLOTS);
}

static bool keyable(const char *a, const char *b)
{
    return a && b && strlen(a) <= ID_MAX && strlen(b) <= ID_MAX;
}

char *oms_commit_pair_memo_get(oms_memo_kind kind, const char *a, const char *b)
{
    if (!keyable(a, b))
        return NULL;
    char *out = NULL;
    slot *s = &g_slots[slot_of(kind, a, b)];
    pthread_mutex_lock(&g_mu);
    if (s->value && s->kind == kind && strcmp(s->a, a) == 0 && strcmp(s->b, b) == 0)
        out = oms_xstrdup(s->value);
    pthread_mutex_unlock(&g_mu);
    atomic_fetch_add_explicit(out ? &g_hits : &g_misses, 1, memory_order_relaxed);
    return out;
}

void oms_commit_pair_memo_put(oms_memo_kind kind, const char *a, const char *b, const char *value)
{
    if (!keyable(a, b) || !value)
        return;
    char *copy = oms_xstrdup(value);
    slot *s = &g_slots[slot_of(kind, a, b)];
    pthread_mutex_lock(&g_mu);
    char *old = s->value;
    s->kind = kind;
    strcpy(s->a, a);
    strcpy(s->b, b);
    s->value = copy;
    pthread_mutex_unlock(&g_mu);
    free(old);
}

void oms_commit_pair_memo_counts(unsigned long *hits, unsigned long *misses)
{
    *hits = atomic_load(&g_hits);
    *misses = atomic_load(&g_misses);
}
