#include "util/pair_memo.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"

static size_t slot_of(const oms_pair_memo *m, uint64_t tag, const char *a, const char *b)
{
    uint64_t h = oms_fnv1a_str_from(OMS_FNV1A_BASIS ^ tag, a);
    h = oms_fnv1a_str_from(oms_fnv1a_bytes_from(h, "|", 1), b);
    return (size_t)(h % m->nslots);
}

static bool keyable(const char *a, const char *b)
{
    return a && b && strlen(a) <= OMS_PAIR_MEMO_NAME_MAX && strlen(b) <= OMS_PAIR_MEMO_NAME_MAX;
}

char *oms_pair_memo_get(oms_pair_memo *m, uint64_t tag, const char *a, const char *b, size_t *len)
{
    if (!keyable(a, b))
        return NULL;
    char *out = NULL;
    size_t n = 0;
    oms_pair_memo_slot *s = &m->slots[slot_of(m, tag, a, b)];
    pthread_mutex_lock(&m->mu);
    if (s->value && s->tag == tag && strcmp(s->a, a) == 0 && strcmp(s->b, b) == 0) {
        n = s->len;
        out = oms_xmalloc(n + 1);
        memcpy(out, s->value, n + 1);
    }
    pthread_mutex_unlock(&m->mu);
    atomic_fetch_add_explicit(out ? &m->hits : &m->misses, 1, memory_order_relaxed);
    if (out && len)
        *len = n;
    return out;
}

void oms_pair_memo_put(oms_pair_memo *m, uint64_t tag, const char *a, const char *b, const char *value, size_t len)
{
    if (!keyable(a, b) || !value || len > m->max_len)
        return;
    char *copy = oms_xmalloc(len + 1);
    memcpy(copy, value, len);
    copy[len] = '\0';
    oms_pair_memo_slot *s = &m->slots[slot_of(m, tag, a, b)];
    pthread_mutex_lock(&m->mu);
    char *old = s->value;
    s->tag = tag;
    strcpy(s->a, a);
    strcpy(s->b, b);
    s->value = copy;
    s->len = len;
    pthread_mutex_unlock(&m->mu);
    free(old);
}

void oms_pair_memo_counts(oms_pair_memo *m, unsigned long *hits, unsigned long *misses)
{
    *hits = atomic_load_explicit(&m->hits, memory_order_relaxed);
    *misses = atomic_load_explicit(&m->misses, memory_order_relaxed);
}

void oms_pair_memo_clear(oms_pair_memo *m)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nslots; i++) {
        free(m->slots[i].value);
        m->slots[i].value = NULL;
        m->slots[i].len = 0;
    }
    pthread_mutex_unlock(&m->mu);
}
