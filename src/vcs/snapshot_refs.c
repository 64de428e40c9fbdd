/* The reverse-reference index of a snapshot (snapshot.h): integrity checks
 * ask "who references X" for the resources a change touches, so a commit
 * costs what it touches, not the ontology's size. Built once per cached
 * snapshot (parsing each document's references once: they stay on the
 * entry), then forks copy only the index buckets a change touches. */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/encoding.h"
#include "vcs/snapshot.h"

static unsigned rbucket_of(const char *key)
{
    unsigned h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % OMS_BUCKETS;
}

static int pair_cmp(const char *t1, const char *k1, const char *t2, const char *k2)
{
    int c = strcmp(t1, t2);
    return c ? c : strcmp(k1, k2);
}

static int revref_cmp(const void *a, const void *b)
{
    const oms_revref *x = a, *y = b;
    return pair_cmp(x->target, x->from->key, y->target, y->from->key);
}

static oms_rbucket *rbucket_new(size_t cap)
{
    oms_rbucket *b = oms_xcalloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    b->cap = cap ? cap : 4;
    b->v = oms_xmalloc(b->cap * sizeof *b->v);
    return b;
}

static void rbucket_unref(oms_rbucket *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    for (size_t i = 0; i < b->n; i++)
        oms_entry_unref(b->v[i].from);
    free(b->v);
    free(b);
}

static void rbucket_append(oms_rbucket *b, const char *target, oms_entry *from)
{
    if (b->n == b->cap) {
        b->cap *= 2;
        b->v = oms_xrealloc(b->v, b->cap * sizeof *b->v);
    }
    atomic_fetch_add(&from->refs, 1);
    b->v[b->n].target = target;
    b->v[b->n].from = from;
    b->n++;
}

/* First index whose pair is >= (target, key). */
static size_t lower_bound(const oms_rbucket *b, const char *target, const char *key)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const oms_revref *r = &b->v[mid];
        int c = key ? pair_cmp(r->target, r->from->key, target, key) : strcmp(r->target, target);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void oms_revidx_free(oms_revidx *r)
{
    if (!r)
        return;
    for (int i = 0; i < OMS_BUCKETS; i++)
        rbucket_unref(r->b[i]);
    free(r);
}

oms_revidx *oms_revidx_fork(const oms_revidx *base)
{
    oms_revidx *r = oms_xcalloc(1, sizeof *r);
    for (int i = 0; i < OMS_BUCKETS; i++)
        if ((r->b[i] = base->b[i]) != NULL)
            atomic_fetch_add(&r->b[i]->refs, 1);
    r->pairs = base->pairs;
    return r;
}

static void build_entry(void *p, const oms_entry *ce)
{
    oms_revidx *r = p;
    oms_entry *e = (oms_entry *)ce;
    const oms_refs *refs = oms_entry_refs(e);
    for (size_t i = 0; i < refs->n; i++) {
        unsigned k = rbucket_of(refs->v[i]);
        if (!r->b[k])
            r->b[k] = rbucket_new(8);
        rbucket_append(r->b[k], refs->v[i], e);
        r->pairs++;
    }
}

void oms_snapshot_revidx_ensure(oms_snapshot *s)
{
    if (atomic_load(&s->rev))
        return;
    oms_revidx *r = oms_xcalloc(1, sizeof *r);
    oms_snapshot_each(s, build_entry, r);
    for (int i = 0; i < OMS_BUCKETS; i++)
        if (r->b[i])
            qsort(r->b[i]->v, r->b[i]->n, sizeof *r->b[i]->v, revref_cmp);
    oms_revidx *expected = NULL;
    if (!atomic_compare_exchange_strong(&s->rev, &expected, r))
        oms_revidx_free(r); /* another thread built it first */
}

/* The fork's own copy of bucket k, made before it changes. */
static oms_rbucket *writable(oms_revidx *r, unsigned k)
{
    oms_rbucket *b = r->b[k];
    if (!b)
        return r->b[k] = rbucket_new(4);
    if (atomic_load(&b->refs) == 1)
        return b;
    oms_rbucket *copy = rbucket_new(b->n + 4);
    for (size_t i = 0; i < b->n; i++)
        rbucket_append(copy, b->v[i].target, b->v[i].from);
    rbucket_unref(b);
    return r->b[k] = copy;
}

void oms_revidx_replace(oms_snapshot *s, const oms_entry *old_e, oms_entry *new_e)
{
    oms_revidx *r = atomic_load(&s->rev);
    if (!r)
        return;
    if (old_e) {
        const oms_refs *refs = oms_entry_refs(old_e);
        for (size_t i = 0; i < refs->n; i++) {
            oms_rbucket *b = writable(r, rbucket_of(refs->v[i]));
            size_t at = lower_bound(b, refs->v[i], old_e->key);
            if (at < b->n && strcmp(b->v[at].target, refs->v[i]) == 0 &&
                strcmp(b->v[at].from->key, old_e->key) == 0) {
                oms_entry_unref(b->v[at].from);
                memmove(b->v + at, b->v + at + 1, (b->n - at - 1) * sizeof *b->v);
                b->n--;
                r->pairs--;
            }
        }
    }
    if (new_e) {
        const oms_refs *refs = oms_entry_refs(new_e);
        for (size_t i = 0; i < refs->n; i++) {
            oms_rbucket *b = writable(r, rbucket_of(refs->v[i]));
            size_t at = lower_bound(b, refs->v[i], new_e->key);
            rbucket_append(b, refs->v[i], new_e); /* grows; then moved into place */
            oms_revref last = b->v[b->n - 1];
            memmove(b->v + at + 1, b->v + at, (b->n - 1 - at) * sizeof *b->v);
            b->v[at] = last;
            r->pairs++;
        }
    }
}

int oms_snapshot_key_order(const char *a, const char *b)
{
    int ba = oms_bucket_of(a), bb = oms_bucket_of(b);
    return ba != bb ? (ba < bb ? -1 : 1) : strcmp(a, b);
}

typedef struct {
    const oms_entry *e;
    int bucket;
} ordered;

static int ordered_cmp(const void *a, const void *b)
{
    const ordered *x = a, *y = b;
    return x->bucket != y->bucket ? (x->bucket < y->bucket ? -1 : 1) : strcmp(x->e->key, y->e->key);
}

bool oms_snapshot_referrers(const oms_snapshot *s, const char *target, oms_referrer_fn fn, void *ctx)
{
    oms_revidx *r = atomic_load(&((oms_snapshot *)s)->rev);
    if (!r)
        return false;
    const oms_rbucket *b = r->b[rbucket_of(target)];
    if (!b)
        return true;
    size_t at = lower_bound(b, target, NULL), end = at;
    while (end < b->n && strcmp(b->v[end].target, target) == 0)
        end++;
    if (end == at)
        return true;
    ordered *v = oms_xmalloc((end - at) * sizeof *v);
    for (size_t i = at; i < end; i++) {
        v[i - at].e = b->v[i].from;
        v[i - at].bucket = b->v[i].from->khash[0];
    }
    qsort(v, end - at, sizeof *v, ordered_cmp);
    for (size_t i = 0; i < end - at; i++)
        fn(ctx, v[i].e);
    free(v);
    return true;
}
