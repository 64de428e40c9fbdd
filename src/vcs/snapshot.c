#include "vcs/snapshot.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infra/metrics.h"
#include "store/tree_sql.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "util/canonical.h"
#include "util/encoding.h"

/* ---- entries ---- */

typedef struct {
    char **v;
    size_t n, cap;
} strvec;

static void collect_ref(void *ctx, oms_kind kind, const char *api_name, const char *path)
{
    strvec *sv = ctx;
    char key[160];
    snprintf(key, sizeof key, "%s/%s", oms_kind_segment(kind), api_name);
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], key) == 0)
            return;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 4;
        sv->v = oms_xrealloc(sv->v, cap * sizeof *sv->v);
        sv->cap = cap;
    }
    sv->v[sv->n++] = oms_xstrdup(key);
}

oms_entry *oms_entry_new(oms_kind kind, const char *api_name, const char *hash, const char *text,
                         size_t len, const char *commit, const char *author, int64_t time_ms)
{
    oms_entry *e = oms_xcalloc(1, sizeof *e);
    atomic_init(&e->refs, 1);
    const char *seg = oms_kind_segment(kind);
    size_t sl = strlen(seg), al = strlen(api_name);
    e->key = oms_xmalloc(sl + 1 + al + 1);
    e->text = oms_xmalloc(len + 1);
    e->author = oms_xstrdup(author ? author : "");
    memcpy(e->key, seg, sl);
    e->key[sl] = '/';
    memcpy(e->key + sl + 1, api_name, al + 1);
    e->api_name = e->key + sl + 1;
    e->kind = kind;
    snprintf(e->hash, sizeof e->hash, "%s", hash);
    oms_sha256(e->khash, e->key, sl + 1 + al);
    e->raw_ok = strlen(e->hash) == 64 && oms_trie_unhex(e->raw, e->hash, 32) == 0;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->len = len;
    const char *st;
    size_t stn;
    e->status = (signed char)(oms_canonical_top_string(e->text, len, "status", &st, &stn) ? oms_status_index(st, stn)
                                                                                            : -1);
    snprintf(e->commit, sizeof e->commit, "%s", commit ? commit : "");
    e->time_ms = time_ms;
    return e;
}

/* Outgoing references are computed on first use and kept: deletes and
 * integrity checks need the dependents of a resource without parsing every
 * document each time, and most reads never need them at all. */
static oms_refs *refs_of(oms_kind kind, const json_t *doc)
{
    strvec sv = {0};
    if (doc)
        oms_document_refs(kind, doc, collect_ref, &sv);
    oms_refs *r = oms_xmalloc(sizeof *r + sv.n * sizeof r->v[0]);
    r->n = sv.n;
    for (size_t i = 0; i < sv.n; i++)
        r->v[i] = sv.v[i];
    free(sv.v);
    return r;
}

static const oms_refs *install_refs(oms_entry *e, oms_refs *r)
{
    oms_refs *expected = NULL;
    if (!atomic_compare_exchange_strong(&e->refs_to, &expected, r)) {
        /* another thread won the race: use its copy */
        for (size_t i = 0; i < r->n; i++)
            free(r->v[i]);
        free(r);
        r = expected;
    }
    return r;
}

const oms_refs *oms_entry_refs(const oms_entry *ce)
{
    oms_entry *e = (oms_entry *)ce;
    oms_refs *r = atomic_load(&e->refs_to);
    if (r)
        return r;
    json_t *doc = json_loadb(e->text, e->len, 0, NULL);
    r = refs_of(e->kind, doc);
    json_decref(doc);
    return install_refs(e, r);
}

void oms_entry_refs_from_doc(oms_entry *e, const json_t *doc)
{
    if (!atomic_load(&e->refs_to))
        install_refs(e, refs_of(e->kind, doc));
}

void oms_entry_unref(oms_entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    oms_refs *r = atomic_load(&e->refs_to);
    for (size_t i = 0; r && i < r->n; i++)
        free(r->v[i]);
    free(r);
    free(e->key);
    free(e->text);
    free(e->author);
    free(e);
}

int oms_bucket_of(const char *key)
{
    /* the first byte of the key's SHA-256: oms_entry.khash[0] for an entry */
    unsigned char md[32];
    oms_sha256(md, key, strlen(key));
    return md[0];
}

/* ---- buckets ---- */

static oms_bucket *bucket_new(size_t cap)
{
    oms_bucket *b = oms_xcalloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    b->cap = cap ? cap : 4;
    b->e = oms_xmalloc(b->cap * sizeof *b->e);
    return b;
}

static void bucket_unref(oms_bucket *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    for (size_t i = 0; i < b->n; i++)
        oms_entry_unref(b->e[i]);
    bucket_unref(b->base);
    free(b->e);
    free(b);
}

static oms_bucket *bucket_copy(const oms_bucket *src)
{
    oms_bucket *b = bucket_new(src->n + 4);
    for (size_t i = 0; i < src->n; i++) {
        b->e[i] = src->e[i];
        atomic_fetch_add(&b->e[i]->refs, 1);
    }
    b->n = src->n;
    b->hash[0] = '\0';
    if (src->hash[0]) { /* sealed: its subtree's nodes are stored already */
        b->base = (oms_bucket *)src;
        atomic_fetch_add(&b->base->refs, 1);
    }
    return b;
}

/* Index of key, or -(insertion point) - 1. */
static long bucket_find(const oms_bucket *b, const char *key)
{
    long lo = 0, hi = (long)b->n - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        int c = strcmp(b->e[mid]->key, key);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

/* ---- snapshots ---- */

oms_snapshot *oms_snapshot_new_empty(void)
{
    oms_snapshot *s = oms_xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->top_stale = true;
    return s;
}

void oms_snapshot_ref(oms_snapshot *s) { atomic_fetch_add(&s->refs, 1); }

void oms_snapshot_unref(oms_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    oms_revidx_free(atomic_load(&s->rev));
    for (int i = 0; i < OMS_BUCKETS; i++)
        bucket_unref(s->b[i]);
    free(s);
}

const oms_entry *oms_snapshot_get_key(const oms_snapshot *s, const char *key)
{
    const oms_bucket *b = s->b[oms_bucket_of(key)];
    if (!b)
        return NULL;
    long i = bucket_find(b, key);
    return i >= 0 ? b->e[i] : NULL;
}

const oms_entry *oms_snapshot_get(const oms_snapshot *s, oms_kind kind, const char *api_name)
{
    char key[160];
    snprintf(key, sizeof key, "%s/%s", oms_kind_segment(kind), api_name);
    return oms_snapshot_get_key(s, key);
}

oms_snapshot *oms_snapshot_fork(const oms_snapshot *base)
{
    oms_snapshot *s = oms_snapshot_new_empty();
    for (int i = 0; i < OMS_BUCKETS; i++)
        if (base->b[i]) {
            s->b[i] = base->b[i];
            atomic_fetch_add(&s->b[i]->refs, 1);
        }
    s->count = base->count;
    memcpy(s->top, base->top, sizeof s->top);
    memcpy(s->dirty, base->dirty, sizeof s->dirty);
    s->top_stale = base->top_stale;
    snprintf(s->tree, sizeof s->tree, "%s", base->tree);
    oms_revidx *rev = atomic_load(&((oms_snapshot *)base)->rev);
    if (rev)
        atomic_store(&s->rev, oms_revidx_fork(rev));
    return s;
}

/* A bucket of a forked snapshot, made private before it is changed. The
 * empty hash marks it for oms_snapshot_seal. */
static oms_bucket *writable_bucket(oms_snapshot *s, int idx)
{
    oms_bucket *b = s->b[idx];
    if (!b) {
        b = s->b[idx] = bucket_new(4);
    } else if (atomic_load(&b->refs) > 1 || b->hash[0]) {
        oms_bucket *copy = bucket_copy(b);
        bucket_unref(b);
        b = s->b[idx] = copy;
    }
    b->hash[0] = '\0';
    s->tree[0] = '\0';
    s->dirty[idx / 8] |= (unsigned char)(1u << (idx % 8));
    return b;
}

void oms_snapshot_put(oms_snapshot *s, oms_entry *e)
{
    oms_bucket *b = writable_bucket(s, e->khash[0]);
    long i = bucket_find(b, e->key);
    if (atomic_load(&s->rev))
        oms_revidx_replace(s, i >= 0 ? b->e[i] : NULL, e);
    if (i >= 0) {
        oms_entry_unref(b->e[i]);
        b->e[i] = e;
        return;
    }
    size_t at = (size_t)(-i - 1);
    if (b->n == b->cap) {
        b->cap *= 2;
        b->e = oms_xrealloc(b->e, b->cap * sizeof *b->e);
    }
    memmove(b->e + at + 1, b->e + at, (b->n - at) * sizeof *b->e);
    b->e[at] = e;
    b->n++;
    s->count++;
}

bool oms_snapshot_remove(oms_snapshot *s, const char *key)
{
    int idx = oms_bucket_of(key);
    if (!s->b[idx] || bucket_find(s->b[idx], key) < 0)
        return false;
    oms_bucket *b = writable_bucket(s, idx);
    long i = bucket_find(b, key);
    if (atomic_load(&s->rev))
        oms_revidx_replace(s, b->e[i], NULL);
    oms_entry_unref(b->e[i]);
    memmove(b->e + i, b->e + i + 1, (b->n - (size_t)i - 1) * sizeof *b->e);
    b->n--;
    s->count--;
    if (b->n == 0) {
        bucket_unref(b);
        s->b[idx] = NULL;
    }
    return true;
}

/* ---- sealing: the tree id and the stored trie ---- */

typedef struct {
    unsigned char (*v)[32];
    size_t n, cap;
} hashset;

static int collect_hash(void *p, const unsigned char hash[32], const unsigned char *body, size_t len)
{
    hashset *h = p;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 32;
        h->v = oms_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    memcpy(h->v[h->n++], hash, 32);
    return 0;
}

typedef struct {
    const hashset *old;
    oms_trie_emit_fn emit;
    void *ctx;
} new_only;

/* Passes on the nodes the base bucket's subtree does not have. */
static int emit_new(void *p, const unsigned char hash[32], const unsigned char *body, size_t len)
{
    new_only *f = p;
    for (size_t i = 0; i < f->old->n; i++)
        if (memcmp(f->old->v[i], hash, 32) == 0)
            return 0;
    return f->emit(f->ctx, hash, body, len);
}

/* The bucket's trie subtree (util/trie.h) from its sorted entries. */
static int bucket_subtree(const oms_bucket *b, unsigned char out[32], oms_trie_emit_fn emit, void *ctx)
{
    oms_trie_item *items = oms_xmalloc((b->n ? b->n : 1) * sizeof *items);
    for (size_t i = 0; i < b->n; i++) {
        const oms_entry *e = b->e[i];
        items[i].key = e->key;
        items[i].klen = strlen(e->key);
        memcpy(items[i].khash, e->khash, 32);
        /* content hashes are always 64 hex digits (oms_canonical_hash);
         * anything else (unit-test stand-ins) is stored hashed */
        if (e->raw_ok)
            memcpy(items[i].value, e->raw, 32);
        else
            oms_sha256(items[i].value, e->hash, strlen(e->hash));
    }
    int rc = oms_trie_subtree(items, b->n, OMS_TRIE_TOP_DEPTH, out, emit, ctx);
    free(items);
    return rc;
}

/* The bucket's hash: of the canonical JSON object {key: resource hash}. */
static int bucket_hash(oms_bucket *b, oms_canonical_map *m)
{
    bool plain = true;
    for (size_t i = 0; i < b->n && plain; i++)
        plain = oms_canonical_map_add(m, b->e[i]->key, b->e[i]->hash);
    if (plain) {
        oms_canonical_map_hash(m, b->hash);
        return 0;
    }
    json_t *o = json_object();
    for (size_t i = 0; i < b->n; i++)
        json_object_set_new(o, b->e[i]->key, json_string(b->e[i]->hash));
    int rc = oms_canonical_hash(o, b->hash, NULL);
    json_decref(o);
    return rc;
}

static int seal_bucket(oms_bucket *b, oms_canonical_map *m, oms_trie_emit_fn emit, void *ctx)
{
    b->bytes = sizeof *b + b->cap * sizeof *b->e;
    for (size_t i = 0; i < b->n; i++)
        b->bytes += sizeof *b->e[i] + strlen(b->e[i]->key) + b->e[i]->len + 2 * 16;
    oms_canonical_map_init(m, b->n * 100);
    int rc = bucket_hash(b, m);
    oms_canonical_map_free(m);
    if (rc == 0 && emit && b->base) {
        /* A changed bucket rewrites only the path to what changed: the
         * base's nodes are stored already. */
        hashset old = {0};
        unsigned char h[32];
        rc = bucket_subtree(b->base, h, collect_hash, &old);
        new_only f = {&old, emit, ctx};
        if (rc == 0)
            rc = bucket_subtree(b, b->node, emit_new, &f);
        free(old.v);
    } else if (rc == 0) {
        rc = bucket_subtree(b, b->node, emit, ctx);
    }
    bucket_unref(b->base);
    b->base = NULL;
    return rc;
}

int oms_snapshot_seal(oms_snapshot *s, oms_trie_emit_fn emit, void *ctx)
{
    /* The tree id stays the Merkle root over the buckets' canonical JSON
     * (commit ids hash it): the object {"%02x" bucket: bucket hash}; only
     * the trie is stored. */
    oms_canonical_map root, scratch;
    oms_canonical_map_init(&root, OMS_BUCKETS * 72);
    int rc = 0;
    unsigned char(*sub)[32] = oms_xcalloc(OMS_BUCKETS, 32);
    for (int i = 0; i < OMS_BUCKETS && rc == 0; i++) {
        oms_bucket *b = s->b[i];
        if (!b)
            continue;
        if (!b->hash[0])
            rc = seal_bucket(b, &scratch, emit, ctx);
        /* a sealed bucket's hash is 64 hex digits (oms_canonical_map_hash
         * or oms_canonical_hash), its name two */
        static const char digits[] = "0123456789abcdef";
        const char name[2] = {digits[i >> 4], digits[i & 15]};
        if (rc == 0)
            oms_canonical_map_add_printable(&root, name, 2, b->hash, 64);
        memcpy(sub[i], b->node, 32);
    }
    if (rc == 0)
        oms_canonical_map_hash(&root, s->tree);
    oms_canonical_map_free(&root);
    if (rc == 0) {
        unsigned char prev[OMS_TRIE_TOP_NODES][32];
        memcpy(prev, s->top, sizeof prev);
        rc = oms_trie_top((const unsigned char(*)[32])sub, s->top, (const unsigned char(*)[32])prev,
                          s->top_stale ? NULL : s->dirty, emit, ctx);
        if (rc == 0) {
            memset(s->dirty, 0, sizeof s->dirty);
            s->top_stale = false;
        }
    }
    free(sub);
    return rc;
}

void oms_snapshot_each(const oms_snapshot *s, oms_entry_fn fn, void *ctx)
{
    for (int i = 0; i < OMS_BUCKETS; i++)
        if (s->b[i])
            for (size_t k = 0; k < s->b[i]->n; k++)
                fn(ctx, s->b[i]->e[k]);
}

/* ---- loading ---- */

int oms_snapshot_key_split(const char *key, oms_kind *kind, const char **name)
{
    const char *slash = strchr(key, '/');
    if (!slash)
        return -1;
    char seg[32];
    size_t n = (size_t)(slash - key);
    if (n >= sizeof seg)
        return -1;
    memcpy(seg, key, n);
    seg[n] = '\0';
    *name = slash + 1;
    return oms_kind_parse(kind, seg);
}

/* The head and its rows in one statement: one snapshot of the database on
 * both backends (a PostgreSQL transaction reads committed, so two statements
 * could see a write, or a branch deletion and re-creation, committed between
 * them and file one head's rows under another's commit id). */
static int load_branch_rows(oms_dbconn *c, const char *branch, oms_snapshot **out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_branch_rows(c, branch, &r, err);
    if (rc)
        return rc;
    if (r->nrows == 0) {
        oms_dbres_free(r);
        return oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
    }
    oms_snapshot *s = oms_snapshot_new_empty();
    for (size_t i = 0; i < r->nrows; i++) {
        oms_kind kind;
        const char *name, *key = oms_dbres_get(r, i, 1), *text = oms_dbres_get(r, i, 6);
        if (!key || !text || oms_snapshot_key_split(key, &kind, &name))
            continue;
        oms_entry *e = oms_entry_new(kind, name, oms_dbres_get(r, i, 2), text, strlen(text), oms_dbres_get(r, i, 3),
                                     oms_dbres_get(r, i, 4), oms_dbres_int(r, i, 5));
        oms_snapshot_put(s, e);
    }
    snprintf(s->commit, sizeof s->commit, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    oms_snapshot_seal(s, NULL, NULL);
    *out = s;
    return OMS_OK;
}

int oms_snapshot_for_branch(oms_dbconn *c, const char *branch, oms_snapshot **out, oms_error *err)
{
    return oms_snapshot_for_branch_head(c, branch, NULL, out, err);
}

static int for_branch(oms_dbconn *c, const char *branch, const char *known, oms_snap_path path,
                      oms_snapshot **out, oms_error *err)
{
    char head[65];
    int rc = OMS_OK;
    if (known && *known)
        snprintf(head, sizeof head, "%s", known);
    else if ((rc = oms_store_branch_head(c, branch, false, head, NULL, err)))
        return rc;
    *out = oms_snapshot_cache_get(head);
    oms_metrics_snapshot_lookup(path, *out != NULL);
    if (*out)
        return OMS_OK;
    /* Cold load: the head may have moved since; the snapshot is the state
     * of the head read with its rows. */
    if ((rc = load_branch_rows(c, branch, out, err)) == OMS_OK)
        oms_snapshot_cache_put(*out);
    return rc;
}

int oms_snapshot_for_branch_head(oms_dbconn *c, const char *branch, const char *known, oms_snapshot **out,
                                 oms_error *err)
{
    return for_branch(c, branch, known, OMS_SNAP_READ, out, err);
}

int oms_snapshot_for_branch_write(oms_dbconn *c, const char *branch, const char *head, oms_snapshot **out,
                                  oms_error *err)
{
    return for_branch(c, branch, head, OMS_SNAP_COMMIT, out, err);
}

static int missing_object(oms_error *err, const char *hash)
{
    return oms_err_set(err, OMS_EINTERNAL, "object %.12s missing or unreadable", hash ? hash : "?");
}

/* The (key, resource hash) pairs of every leaf of a tree's nodes (rows
 * hash_hex, body_hex, depth) into `pairs` (key -> hash) and `want`. */
static int tree_pairs(const oms_dbres *nodes, json_t *pairs, json_t *want, const char *tree, oms_error *err)
{
    for (size_t i = 0; i < nodes->nrows; i++) {
        size_t len = 0;
        unsigned char *body = oms_trie_unhex_alloc(oms_dbres_get(nodes, i, 1), &len);
        oms_trie_node n;
        int rc = body ? oms_trie_parse(body, len, &n) : -1;
        const char *key;
        size_t klen;
        const unsigned char *value;
        while (rc == 0 && n.type == OMS_TRIE_LEAF && (rc = oms_trie_leaf_next(&n, &key, &klen, &value)) == 1) {
            char k[512], h[65];
            rc = klen < sizeof k ? 0 : -1;
            if (rc == 0) {
                memcpy(k, key, klen);
                k[klen] = '\0';
                oms_hex(h, value, 32);
                json_object_set_new(pairs, k, json_string(h));
                json_array_append_new(want, json_string(h));
            }
        }
        free(body);
        if (rc < 0)
            return oms_err_set(err, OMS_EINTERNAL, "tree %.12s: node %.12s is malformed", tree,
                               oms_dbres_get(nodes, i, 0));
    }
    return OMS_OK;
}

/* A commit's snapshot from its stored trie: every node in one recursive
 * statement, the documents in bulk, then the tree id and the trie root
 * recomputed and compared with what the commit and trees name (a node or a
 * document altered or missing is an internal error naming the commit,
 * never a wrong answer). */
int oms_snapshot_for_commit(oms_dbconn *c, const char *commit, oms_snapshot **out, oms_error *err)
{
    *out = oms_snapshot_cache_get_any(commit);
    oms_metrics_snapshot_lookup(OMS_SNAP_COMMIT_ID, *out != NULL);
    if (*out)
        return OMS_OK;
    oms_dbres *r = NULL, *nodes = NULL;
    int rc = oms_store_commit_tree(c, commit, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no commit %.64s", commit);
    if (rc) {
        oms_dbres_free(r);
        return rc;
    }
    const char *tree = oms_dbres_get(r, 0, 0);
    oms_snapshot *s = oms_snapshot_new_empty();
    json_t *pairs = json_object(), *want = json_array(), *docs = json_object();
    const char *root = NULL;
    if ((rc = oms_store_tree_nodes_all(c, tree, &nodes, err)))
        goto done;
    for (size_t i = 0; i < nodes->nrows && !root; i++)
        if (oms_dbres_int(nodes, i, 2) == 0)
            root = oms_dbres_get(nodes, i, 0);
    if (!root) {
        rc = oms_err_set(err, OMS_EINTERNAL, "commit %.12s: its tree %.12s is not stored", commit, tree);
        goto done;
    }
    if ((rc = tree_pairs(nodes, pairs, want, tree, err)) || (rc = oms_store_objects_load(c, want, false, docs, err)))
        goto done;
    const char *key;
    json_t *v;
    json_object_foreach(pairs, key, v) {
        oms_kind kind;
        const char *name;
        json_t *text = json_object_get(docs, json_string_value(v));
        if (oms_snapshot_key_split(key, &kind, &name)) {
            rc = oms_err_set(err, OMS_EINTERNAL, "commit %.12s: its tree names %.100s", commit, key);
            goto done;
        }
        if (!text) {
            rc = missing_object(err, json_string_value(v));
            goto done;
        }
        oms_entry *e = oms_entry_new(kind, name, json_string_value(v), json_string_value(text),
                                     json_string_length(text), commit, oms_dbres_get(r, 0, 1), oms_dbres_int(r, 0, 2));
        oms_snapshot_put(s, e);
    }
    oms_snapshot_seal(s, NULL, NULL);
    char got_root[65];
    oms_hex(got_root, s->top[0], 32);
    /* A tree that does not hash to its id (or whose nodes do not make its
     * root) was altered in the database. */
    if (strcmp(s->tree, tree) != 0 || strcasecmp(got_root, root) != 0)
        rc = oms_err_set(err, OMS_EINTERNAL, "commit %.12s: tree %.12s does not match its content", commit, tree);
    snprintf(s->commit, sizeof s->commit, "%s", commit);
done:
    json_decref(pairs);
    json_decref(want);
    json_decref(docs);
    oms_dbres_free(nodes);
    oms_dbres_free(r);
    if (rc) {
        oms_snapshot_unref(s);
        return rc;
    }
    /* Commits are immutable: the snapshot of one never changes. */
    oms_snapshot_cache_put_tree(s);
    *out = s;
    return OMS_OK;
}
