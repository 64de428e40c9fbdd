/* The commit graph in memory (see commit_graph.h). */
#include "vcs/commit_graph.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/proposals_sql.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/json_strings.h"

#define SHARDS 16
#define PER_SHARD 2048       /* 32,768 commits in all, about 6 MB */
#define FIRST_WINDOW 32      /* generations loaded below a missing commit */
#define LAST_WINDOW 4096     /* each further miss of one walk doubles it, up to this */

typedef uint8_t commit_id[32];

/* ---- ids ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* A commit id as stored: 64 lowercase hex digits. */
static bool parse_id(const char *s, size_t len, commit_id out)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool parse_id_str(const char *s, commit_id out) { return s && parse_id(s, strlen(s), out); }

static uint64_t id_hash(const commit_id id)
{
    uint64_t h;
    memcpy(&h, id, sizeof h); /* ids are SHA-256 digests: any 8 bytes are uniform */
    return h;
}

/* ---- the process-wide cache ---- */

typedef struct gnode {
    struct gnode *next; /* bucket chain */
    commit_id id;
    int64_t gen;
    char *keys; /* the issue keys' JSON array; NULL when empty */
    uint32_t np;
    commit_id par[];
} gnode;

typedef struct {
    pthread_mutex_t mu;
    gnode *buckets[2 * PER_SHARD];
    gnode *ring[PER_SHARD]; /* insertion order: the oldest is evicted first */
    size_t n, hand;
} shard;

static shard g_shards[SHARDS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_ulong g_hits, g_loads, g_notes;

static void init_shards(void)
{
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&g_shards[i].mu, NULL);
}

static shard *shard_of(const commit_id id, size_t *bucket)
{
    uint64_t h = id_hash(id);
    *bucket = (size_t)((h >> 8) % (2 * PER_SHARD));
    return &g_shards[h % SHARDS];
}

static gnode **find_in(shard *s, size_t b, const commit_id id)
{
    gnode **p = &s->buckets[b];
    while (*p && memcmp((*p)->id, id, sizeof(commit_id)) != 0)
        p = &(*p)->next;
    return p;
}

static void node_free(gnode *n)
{
    if (n) {
        free(n->keys);
        free(n);
    }
}

/* Takes `n`; a commit already present is kept (its content is the same). */
static void cache_put(gnode *n)
{
    pthread_once(&g_once, init_shards);
    size_t b;
    shard *s = shard_of(n->id, &b);
    pthread_mutex_lock(&s->mu);
    gnode *old = NULL;
    if (*find_in(s, b, n->id)) {
        old = n;
    } else {
        if (s->n == PER_SHARD) {
            gnode *victim = s->ring[s->hand];
            size_t vb;
            shard_of(victim->id, &vb);
            gnode **vp = find_in(s, vb, victim->id);
            *vp = victim->next;
            old = victim;
            s->ring[s->hand] = n;
            s->hand = (s->hand + 1) % PER_SHARD;
        } else {
            s->ring[s->n++] = n;
        }
        n->next = s->buckets[b];
        s->buckets[b] = n;
    }
    pthread_mutex_unlock(&s->mu);
    node_free(old);
}

void oms_commit_graph_clear(void)
{
    pthread_once(&g_once, init_shards);
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &g_shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t k = 0; k < s->n; k++)
            node_free(s->ring[k]);
        memset(s->buckets, 0, sizeof s->buckets);
        s->n = s->hand = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

void oms_commit_graph_counts(unsigned long *hits, unsigned long *loads, unsigned long *notes)
{
    *hits = atomic_load(&g_hits);
    *loads = atomic_load(&g_loads);
    if (notes)
        *notes = atomic_load(&g_notes);
}

/* A commit's generation from the cache: -1 when it is not there. */
static int64_t cached_gen(const commit_id id)
{
    pthread_once(&g_once, init_shards);
    size_t b;
    shard *s = shard_of(id, &b);
    pthread_mutex_lock(&s->mu);
    gnode *g = *find_in(s, b, id);
    int64_t gen = g ? g->gen : -1;
    pthread_mutex_unlock(&s->mu);
    return gen;
}

int64_t oms_commit_graph_cached_generation(const char *id)
{
    commit_id b;
    return parse_id_str(id, b) ? cached_gen(b) : -1;
}

bool oms_commit_graph_note(const char *id, const char *const *parents, size_t nparents, const char *issue_keys)
{
    /* the stored generation is 1 + the highest of its first two parents'
     * (oms_store_commit_insert); every commit this server makes has at most two */
    if (nparents > 2)
        return false;
    gnode *n = oms_xcalloc(1, sizeof *n + nparents * sizeof(commit_id));
    n->np = (uint32_t)nparents;
    n->gen = 1;
    bool ok = parse_id_str(id, n->id);
    for (size_t k = 0; ok && k < nparents; k++) {
        int64_t pg = parse_id_str(parents[k], n->par[k]) ? cached_gen(n->par[k]) : -1;
        ok = pg > 0;
        if (ok && pg + 1 > n->gen)
            n->gen = pg + 1;
    }
    if (ok && issue_keys && strcmp(issue_keys, "[]") != 0)
        n->keys = oms_xstrdup(issue_keys);
    if (!ok) {
        node_free(n);
        return false;
    }
    cache_put(n);
    atomic_fetch_add_explicit(&g_notes, 1, memory_order_relaxed);
    return true;
}

/* ---- one walk ---- */

enum { SIDE_A = 1, SIDE_B = 2, BOTH = 3 };
#define NONE SIZE_MAX

typedef struct {
    commit_id id;
    int64_t gen; /* -1: no such commit */
    uint32_t np;
    commit_id *par; /* NULL when np == 0 */
    char *keys;     /* NULL when empty */
    uint8_t flags;
    bool queued;
} wnode;

typedef struct {
    oms_dbconn *c;
    wnode *nodes; /* in order of first sight; a node's index is its handle */
    size_t count, cap;
    size_t *index; /* open addressing by id: handles, NONE when empty */
    size_t icap;
    size_t *heap; /* max-heap of handles by generation */
    size_t nheap, heapcap;
    size_t queued[4]; /* queued nodes by flags */
    int64_t window;   /* the next load's depth */
} walk;

static void walk_init(walk *w, oms_dbconn *c)
{
    memset(w, 0, sizeof *w);
    w->c = c;
    w->window = FIRST_WINDOW;
}

static void walk_free(walk *w)
{
    for (size_t i = 0; i < w->count; i++) {
        free(w->nodes[i].par);
        free(w->nodes[i].keys);
    }
    free(w->nodes);
    free(w->index);
    free(w->heap);
}

static size_t index_slot(const walk *w, const commit_id id)
{
    size_t i = (size_t)(id_hash(id) % w->icap);
    while (w->index[i] != NONE && memcmp(w->nodes[w->index[i]].id, id, sizeof(commit_id)) != 0)
        i = (i + 1) % w->icap;
    return i;
}

static void index_grow(walk *w)
{
    free(w->index);
    w->icap = w->icap ? w->icap * 2 : 512;
    w->index = oms_xmalloc(w->icap * sizeof *w->index);
    for (size_t i = 0; i < w->icap; i++)
        w->index[i] = NONE;
    for (size_t h = 0; h < w->count; h++)
        w->index[index_slot(w, w->nodes[h].id)] = h;
}

static bool heap_less(const walk *w, size_t x, size_t y) { return w->nodes[x].gen < w->nodes[y].gen; }

static void heap_push(walk *w, size_t h)
{
    if (w->nheap == w->heapcap) {
        w->heapcap = w->heapcap ? w->heapcap * 2 : 256;
        w->heap = oms_xrealloc(w->heap, w->heapcap * sizeof *w->heap);
    }
    size_t i = w->nheap++;
    w->heap[i] = h;
    while (i > 0 && heap_less(w, w->heap[(i - 1) / 2], w->heap[i])) {
        size_t p = (i - 1) / 2, t = w->heap[p];
        w->heap[p] = w->heap[i];
        w->heap[i] = t;
        i = p;
    }
}

/* The queued node with the highest generation, taken off the queue. */
static size_t heap_pop(walk *w)
{
    size_t top = w->heap[0];
    w->heap[0] = w->heap[--w->nheap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && heap_less(w, w->heap[m], w->heap[l]))
            m = l;
        if (r < w->nheap && heap_less(w, w->heap[m], w->heap[r]))
            m = r;
        if (m == i)
            break;
        size_t t = w->heap[m];
        w->heap[m] = w->heap[i];
        w->heap[i] = t;
        i = m;
    }
    w->nodes[top].queued = false;
    w->queued[w->nodes[top].flags]--;
    return top;
}

/* Adds `flags` to node `h` and queues it if it is not queued. */
static void paint(walk *w, size_t h, uint8_t flags)
{
    wnode *n = &w->nodes[h];
    if (n->queued)
        w->queued[n->flags]--;
    n->flags |= flags;
    w->queued[n->flags]++;
    if (!n->queued) {
        n->queued = true;
        heap_push(w, h);
    }
}

/* Copies the cached commit into `n`; false when the cache lacks it. */
static bool cache_get(const commit_id id, wnode *n)
{
    pthread_once(&g_once, init_shards);
    size_t b;
    shard *s = shard_of(id, &b);
    pthread_mutex_lock(&s->mu);
    gnode *g = *find_in(s, b, id);
    if (g) {
        n->gen = g->gen;
        n->np = g->np;
        n->par = g->np ? oms_xmalloc(g->np * sizeof(commit_id)) : NULL;
        if (g->np)
            memcpy(n->par, g->par, g->np * sizeof(commit_id));
        n->keys = g->keys ? oms_xstrdup(g->keys) : NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (g)
        atomic_fetch_add_explicit(&g_hits, 1, memory_order_relaxed);
    return g != NULL;
}

/* A node from a row (id, generation, parents, issue_keys); NULL when the
 * row is not what the schema promises. */
static gnode *node_of_row(const oms_dbres *r, size_t i)
{
    const char *id = oms_dbres_get(r, i, 0), *parents = oms_dbres_get(r, i, 2), *keys = oms_dbres_get(r, i, 3);
    json_t *pa = parents ? json_loads(parents, 0, NULL) : NULL;
    gnode *n = NULL;
    if (json_is_array(pa)) {
        size_t np = json_array_size(pa);
        n = oms_xcalloc(1, sizeof *n + np * sizeof(commit_id));
        n->np = (uint32_t)np;
        n->gen = oms_dbres_int(r, i, 1);
        bool ok = parse_id_str(id, n->id) && n->gen > 0;
        for (size_t k = 0; ok && k < np; k++)
            ok = parse_id_str(json_string_value(json_array_get(pa, k)), n->par[k]);
        if (ok && keys && strcmp(keys, "[]") != 0)
            n->keys = oms_xstrdup(keys);
        if (!ok) {
            node_free(n);
            n = NULL;
        }
    }
    json_decref(pa);
    return n;
}

/* Loads `id` and its ancestors a window deep into the cache. */
static int load_window(walk *w, const commit_id id, oms_error *err)
{
    char hex[65];
    oms_hex(hex, id, sizeof(commit_id));
    oms_dbres *r = NULL;
    int rc = oms_store_commit_graph_window(w->c, hex, w->window, &r, err);
    if (rc)
        return rc;
    atomic_fetch_add_explicit(&g_loads, 1, memory_order_relaxed);
    for (size_t i = 0; i < r->nrows && rc == OMS_OK; i++) {
        gnode *n = node_of_row(r, i);
        if (n)
            cache_put(n);
        else
            rc = oms_err_set(err, OMS_EINTERNAL, "a stored commit row is malformed");
    }
    oms_dbres_free(r);
    if (w->window < LAST_WINDOW)
        w->window *= 2;
    return rc;
}

/* The walk's handle of commit `id`, loaded on first sight; its gen is -1
 * when no such commit exists. Handles stay valid; node pointers do not. */
static int see(walk *w, const commit_id id, size_t *handle, oms_error *err)
{
    if (4 * (w->count + 1) > 3 * w->icap)
        index_grow(w);
    size_t slot = index_slot(w, id);
    if (w->index[slot] != NONE) {
        *handle = w->index[slot];
        return OMS_OK;
    }
    wnode n = {0};
    memcpy(n.id, id, sizeof(commit_id));
    if (!cache_get(id, &n)) {
        int rc = load_window(w, id, err);
        if (rc)
            return rc;
        if (!cache_get(id, &n))
            n.gen = -1;
    }
    if (w->count == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->nodes = oms_xrealloc(w->nodes, w->cap * sizeof *w->nodes);
    }
    w->nodes[w->count] = n;
    w->index[slot] = w->count;
    *handle = w->count++;
    return OMS_OK;
}

/* Paints the parents of node `h` with its flags (those that exist). */
static int paint_parents(walk *w, size_t h, oms_error *err)
{
    uint8_t flags = w->nodes[h].flags;
    for (uint32_t k = 0; k < w->nodes[h].np; k++) {
        commit_id pid;
        memcpy(pid, w->nodes[h].par[k], sizeof pid); /* `see` may move the nodes */
        size_t ph;
        int rc = see(w, pid, &ph, err);
        if (rc)
            return rc;
        if (w->nodes[ph].gen > 0)
            paint(w, ph, flags);
    }
    return OMS_OK;
}

/* ---- merge base ---- */

int oms_commit_graph_merge_base(oms_dbconn *c, const char *a, const char *b, char out[65], bool *found,
                                oms_error *err)
{
    commit_id ia, ib;
    if (!parse_id_str(a, ia) || !parse_id_str(b, ib))
        return oms_store_merge_base(c, a, b, out, found, err); /* not an id this graph keys: SQL answers */
    *found = false;
    walk w;
    walk_init(&w, c);
    size_t ha, hb;
    int rc = see(&w, ia, &ha, err);
    if (rc == OMS_OK)
        rc = see(&w, ib, &hb, err);
    if (rc || w.nodes[ha].gen < 0 || w.nodes[hb].gen < 0)
        goto done;
    paint(&w, ha, SIDE_A);
    paint(&w, hb, SIDE_B);
    /* Highest generation first: a node's flags are final when it is popped
     * (its descendants all have higher generations). The first node both
     * sides reach is a deepest common ancestor; the others of its
     * generation are compared by id; nothing below it can be deeper, and
     * nothing is walked below a node both reach. */
    bool have = false;
    int64_t best_gen = 0;
    commit_id best;
    while (w.nheap > 0 && rc == OMS_OK) {
        /* no queued node carries one side alone and none both: no other
         * commit can be reached by both */
        if (!have && w.queued[BOTH] == 0 && (w.queued[SIDE_A] == 0 || w.queued[SIDE_B] == 0))
            break;
        size_t h = heap_pop(&w);
        const wnode *n = &w.nodes[h];
        if (have && n->gen < best_gen)
            break;
        if (n->flags == BOTH) {
            if (!have || memcmp(n->id, best, sizeof best) < 0) /* bytewise, as the hex ids sort */
                memcpy(best, n->id, sizeof best);
            have = true;
            best_gen = n->gen;
        } else if (!have) {
            rc = paint_parents(&w, h, err);
        }
    }
    if (rc == OMS_OK && have) {
        oms_hex(out, best, sizeof best);
        *found = true;
    }
done:
    walk_free(&w);
    return rc;
}

/* ---- the commits one head has and another has not ---- */

int oms_commit_graph_keys_between(oms_dbconn *c, const char *head, const char *exclude,
                                  void (*each)(void *ctx, const char *key), void *ctx, oms_error *err)
{
    commit_id ih, ix;
    if (!parse_id_str(head, ih) || !parse_id_str(exclude, ix))
        return oms_store_commits_issue_keys_between(c, head, exclude, each, ctx, err);
    walk w;
    walk_init(&w, c);
    char **docs = NULL;
    size_t ndocs = 0, capdocs = 0;
    size_t hh, hx;
    int rc = see(&w, ih, &hh, err);
    if (rc == OMS_OK)
        rc = see(&w, ix, &hx, err);
    if (rc || w.nodes[hh].gen < 0)
        goto done;
    paint(&w, hh, SIDE_A);
    if (w.nodes[hx].gen > 0) /* no such commit: it has none of the head's */
        paint(&w, hx, SIDE_B);
    /* Highest generation first (flags final when popped), until no queued
     * node is reached by the head alone. */
    while (w.queued[SIDE_A] > 0 && rc == OMS_OK) {
        size_t h = heap_pop(&w);
        const wnode *n = &w.nodes[h];
        if (n->flags == SIDE_A && n->keys) {
            if (ndocs == capdocs) {
                capdocs = capdocs ? capdocs * 2 : 16;
                docs = oms_xrealloc(docs, capdocs * sizeof *docs);
            }
            docs[ndocs++] = n->keys; /* the walk's; freed with it */
        }
        rc = paint_parents(&w, h, err);
    }
    if (rc == OMS_OK)
        oms_json_distinct_strings((const char *const *)docs, ndocs, each, ctx);
done:
    free(docs);
    walk_free(&w);
    return rc;
}
