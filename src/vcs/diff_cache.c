/* The diff cache (diff_cache.h): an LRU of diffs by (from, to), bounded by
 * bytes. A diff is kept as its compact JSON text: a third to a fifth of
 * the memory of jansson's tree, measured exactly, and what a response
 * splices in as it is (a hit is a copy of the text, never parsed: the
 * parse was 3 % of the soak's samples).
 * A count bound alone let a few large diffs (a feature branch against a
 * `main` that moved on: thousands of changes with their documents) hold
 * hundreds of megabytes (docs/BENCHMARKS.md, the PostgreSQL soak). */
#include "vcs/diff_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "infra/metrics.h"
#include "util/alloc.h"

#define SLOTS 64

static struct {
    pthread_mutex_t mu;
    struct {
        char from[65], to[65];
        char *text; /* NULL: a free slot */
        size_t len;
        bool breaking;
        uint64_t used;
    } slot[SLOTS];
    uint64_t clock;
    size_t bytes, limit;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .limit = (size_t)OMS_DIFF_CACHE_DEFAULT_MB << 20};

void oms_diff_cache_set_limit_mb(size_t mb)
{
    pthread_mutex_lock(&g.mu);
    g.limit = mb << 20;
    pthread_mutex_unlock(&g.mu);
}

size_t oms_diff_cache_bytes(void)
{
    pthread_mutex_lock(&g.mu);
    size_t n = g.bytes;
    pthread_mutex_unlock(&g.mu);
    return n;
}

static bool same_pair(int i, const char *from, const char *to)
{
    return g.slot[i].text && strcmp(g.slot[i].from, from) == 0 && strcmp(g.slot[i].to, to) == 0;
}

/* Empties slot i; the text is the caller's to free (outside the mutex). */
static char *take(int i)
{
    char *t = g.slot[i].text;
    g.bytes -= g.slot[i].len;
    g.slot[i].text = NULL;
    g.slot[i].len = 0;
    oms_metrics_diff_cache_bytes(g.bytes);
    return t;
}

char *oms_diff_cache_get(const char *from, const char *to, size_t *len, bool *breaking)
{
    char *text = NULL;
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < SLOTS; i++)
        if (same_pair(i, from, to)) {
            *len = g.slot[i].len;
            text = oms_xmalloc(*len + 1);
            memcpy(text, g.slot[i].text, *len + 1);
            *breaking = g.slot[i].breaking;
            g.slot[i].used = ++g.clock;
            break;
        }
    pthread_mutex_unlock(&g.mu);
    return text;
}

void oms_diff_cache_put(const char *from, const char *to, const char *changes, size_t len, bool breaking)
{
    if (strlen(from) > 64 || strlen(to) > 64)
        return;
    char *text = oms_xmalloc(len + 1);
    memcpy(text, changes, len);
    text[len] = '\0';
    char *drop[SLOTS + 1];
    int nd = 0;
    pthread_mutex_lock(&g.mu);
    /* One diff may take an eighth of the cache: a bigger one would evict
     * most of the others for a single pair. */
    if (len > g.limit / 8) {
        pthread_mutex_unlock(&g.mu);
        free(text);
        return;
    }
    int at = -1;
    for (int i = 0; i < SLOTS && at < 0; i++)
        if (same_pair(i, from, to))
            drop[nd++] = take(at = i);
    /* Least recently used out until the new text fits and a slot is free. */
    for (;;) {
        int lru = -1, free_slot = -1;
        for (int i = 0; i < SLOTS; i++) {
            if (!g.slot[i].text) {
                if (free_slot < 0)
                    free_slot = i;
            } else if (lru < 0 || g.slot[i].used < g.slot[lru].used) {
                lru = i;
            }
        }
        if (at < 0)
            at = free_slot;
        if (g.bytes + len <= g.limit && at >= 0)
            break;
        drop[nd++] = take(lru);
        if (at < 0)
            at = lru;
    }
    memcpy(g.slot[at].from, from, strlen(from) + 1);
    memcpy(g.slot[at].to, to, strlen(to) + 1);
    g.slot[at].text = text;
    g.slot[at].len = len;
    g.slot[at].breaking = breaking;
    g.slot[at].used = ++g.clock;
    g.bytes += len;
    oms_metrics_diff_cache_bytes(g.bytes);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < nd; i++)
        free(drop[i]);
}
