/* The process-wide cache of snapshots by commit id (snapshot.h): an LRU
 * bounded by bytes (OMS_SNAPSHOT_CACHE_MB), not by a count, because a
 * team's branches and the commits a diff or a merge reads all want to stay.
 *
 * Bytes are charged per tree bucket, not per snapshot: successive commits
 * share every unchanged bucket, so a bucket is charged once however many
 * cached snapshots hold it (its users are counted under the cache mutex).
 * Entries shared between two versions of one bucket are charged to both:
 * the bound errs on the safe side by about one bucket per commit.
 *
 * A snapshot is cached under one of three states:
 *   full     the branch state with provenance (last commit per resource),
 *            usable by the branch-head path and by the commit path;
 *   tree     built from a commit's stored tree (provenance is the commit
 *            itself): only oms_snapshot_for_commit uses it;
 *   pending  a writer's new state, published before its transaction
 *            commits, so that the next writer (which reads the new head
 *            only once the row lock is released) never misses. Only callers
 *            that read the commit id from the database use it (the id proves
 *            the transaction committed); it is confirmed or dropped when the
 *            writer's transaction ends. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "infra/metrics.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "vcs/snapshot.h"
#include "vcs/snapshot_cache.h"

enum { ST_FULL, ST_TREE, ST_PENDING };

typedef struct centry {
    oms_snapshot *s;
    int state;
    struct centry *prev, *next; /* LRU: head is the most recently used */
    struct centry *hnext;       /* hash chain */
    oms_revidx *rev;            /* the reverse index charged with it (NULL: none yet) */
} centry;

#define HASH_SLOTS 4096

static struct {
    pthread_mutex_t mu;
    centry *slot[HASH_SLOTS];
    centry *head, *tail;
    size_t bytes, limit, count;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .limit = (size_t)OMS_SNAPSHOT_CACHE_DEFAULT_MB << 20};

void oms_snapshot_cache_set_limit_mb(size_t mb)
{
    pthread_mutex_lock(&g.mu);
    g.limit = mb << 20;
    pthread_mutex_unlock(&g.mu);
    oms_metrics_snapshot_cache_limit(mb << 20);
}

static size_t hash_of(const char *commit)
{
    return (size_t)(oms_fnv1a_str(commit) % HASH_SLOTS);
}

/* ---- byte accounting (under the mutex) ---- */

/* The reverse-reference index's share: its table, and each of its buckets
 * once however many cached snapshots share it (like the tree's buckets). A
 * cached index bucket never changes: a fork copies a bucket it shares
 * before changing it. */
static size_t charge_revidx(const oms_revidx *r, int sign)
{
    size_t n = sizeof *r;
    for (int i = 0; i < OMS_BUCKETS; i++) {
        oms_rbucket *b = r->b[i];
        if (!b)
            continue;
        if ((sign > 0 && b->cache_users++ == 0) || (sign < 0 && --b->cache_users == 0))
            n += sizeof *b + b->cap * sizeof *b->v;
    }
    return n;
}

static void charge(centry *e, int sign)
{
    oms_snapshot *s = e->s;
    size_t n = sizeof *s + sizeof *e;
    if (sign > 0)
        e->rev = atomic_load(&s->rev);
    if (e->rev)
        n += charge_revidx(e->rev, sign);
    for (int i = 0; i < OMS_BUCKETS; i++) {
        oms_bucket *b = s->b[i];
        if (!b)
            continue;
        if (sign > 0 && b->cache_users++ == 0)
            n += b->bytes;
        else if (sign < 0 && --b->cache_users == 0)
            n += b->bytes;
    }
    if (sign > 0)
        g.bytes += n;
    else
        g.bytes -= n < g.bytes ? n : g.bytes;
    oms_metrics_snapshot_cache_bytes(g.bytes);
}

/* A snapshot's index is built on first need, often after it was cached:
 * charged when the entry is next used. */
static void charge_late_revidx(centry *e)
{
    oms_revidx *r;
    if (e->rev || (r = atomic_load(&e->s->rev)) == NULL)
        return;
    e->rev = r;
    g.bytes += charge_revidx(r, +1);
    oms_metrics_snapshot_cache_bytes(g.bytes);
}

/* ---- list and hash (under the mutex) ---- */

static void lru_unlink(centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        g.head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        g.tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(centry *e)
{
    e->next = g.head;
    e->prev = NULL;
    if (g.head)
        g.head->prev = e;
    g.head = e;
    if (!g.tail)
        g.tail = e;
}

static centry *find(const char *commit, int state)
{
    for (centry *e = g.slot[hash_of(commit)]; e; e = e->hnext)
        if (e->state == state && strcmp(e->s->commit, commit) == 0)
            return e;
    return NULL;
}

/* Unlinks e and returns its snapshot, whose reference the caller drops
 * outside the mutex. */
static oms_snapshot *remove_entry(centry *e)
{
    centry **pp = &g.slot[hash_of(e->s->commit)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(e);
    charge(e, -1);
    g.count--;
    oms_snapshot *s = e->s;
    free(e);
    return s;
}

/* Evicts from the cold end until the cache fits, keeping `keep`. The
 * evicted snapshots are appended to `out` (at most `cap`). */
static size_t evict(centry *keep, oms_snapshot **out, size_t cap)
{
    size_t n = 0;
    while (g.bytes > g.limit && g.tail && g.tail != keep && n < cap)
        out[n++] = remove_entry(g.tail);
    return n;
}

static void unref_all(oms_snapshot **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        oms_snapshot_unref(v[i]);
}

static centry *insert(oms_snapshot *s, int state)
{
    centry *e = oms_xcalloc(1, sizeof *e);
    oms_snapshot_ref(s);
    e->s = s;
    e->state = state;
    size_t h = hash_of(s->commit);
    e->hnext = g.slot[h];
    g.slot[h] = e;
    lru_push_front(e);
    charge(e, +1);
    g.count++;
    return e;
}

static void put_state(oms_snapshot *s, int state)
{
    if (!s || !s->commit[0])
        return;
    oms_snapshot *drop[64];
    size_t nd = 0;
    pthread_mutex_lock(&g.mu);
    centry *e = find(s->commit, state);
    if (!e && state == ST_FULL && (e = find(s->commit, ST_PENDING)) != NULL && e->s == s)
        e->state = ST_FULL; /* the writer's transaction committed */
    if (e) {
        charge_late_revidx(e);
        lru_unlink(e);
        lru_push_front(e);
    } else {
        e = insert(s, state);
    }
    nd = evict(e, drop, 64);
    pthread_mutex_unlock(&g.mu);
    unref_all(drop, nd);
}

/* ---- the interface ---- */

static oms_snapshot *get_state(const char *commit, const int *states, int nstates)
{
    oms_snapshot *found = NULL;
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < nstates && !found; i++) {
        centry *e = find(commit, states[i]);
        if (e) {
            found = e->s;
            oms_snapshot_ref(found);
            charge_late_revidx(e);
            lru_unlink(e);
            lru_push_front(e);
        }
    }
    pthread_mutex_unlock(&g.mu);
    return found;
}

oms_snapshot *oms_snapshot_cache_get(const char *commit)
{
    static const int states[] = {ST_FULL, ST_PENDING};
    return get_state(commit, states, 2);
}

oms_snapshot *oms_snapshot_cache_get_any(const char *commit)
{
    static const int states[] = {ST_FULL, ST_TREE};
    return get_state(commit, states, 2);
}

void oms_snapshot_cache_put(oms_snapshot *s) { put_state(s, ST_FULL); }

void oms_snapshot_cache_put_tree(oms_snapshot *s) { put_state(s, ST_TREE); }

void oms_snapshot_cache_put_pending(oms_snapshot *s) { put_state(s, ST_PENDING); }

void oms_snapshot_cache_drop_pending(oms_snapshot *s)
{
    if (!s || !s->commit[0])
        return;
    oms_snapshot *drop = NULL;
    pthread_mutex_lock(&g.mu);
    centry *e = find(s->commit, ST_PENDING);
    if (e && e->s == s)
        drop = remove_entry(e);
    pthread_mutex_unlock(&g.mu);
    oms_snapshot_unref(drop);
}

void oms_snapshot_cache_stats(size_t *bytes, size_t *limit, size_t *count)
{
    pthread_mutex_lock(&g.mu);
    *bytes = g.bytes;
    *limit = g.limit;
    *count = g.count;
    pthread_mutex_unlock(&g.mu);
}

void oms_snapshot_cache_clear(void)
{
    for (;;) {
        oms_snapshot *drop[64];
        size_t nd = 0;
        pthread_mutex_lock(&g.mu);
        while (g.tail && nd < 64)
            drop[nd++] = remove_entry(g.tail);
        pthread_mutex_unlock(&g.mu);
        unref_all(drop, nd);
        if (nd == 0)
            return;
    }
}
