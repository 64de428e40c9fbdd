/* In-memory state of one commit: every resource of the ontology at that
 * commit, arranged as the commit's tree (256 buckets by the first byte of
 * SHA-256("KIND/API_NAME"), each sorted by key). Snapshots are immutable and
 * reference-counted; a new commit's snapshot shares every unchanged bucket
 * and entry with its parent's (copy-on-write per bucket).
 *
 * The tree id (what commit ids hash) is content-addressed: a bucket's hash
 * is the SHA-256 of the canonical JSON {"KIND/NAME": resource_hash, ...};
 * the id is that of {"00": bucket_hash, ...} over non-empty buckets (two
 * lowercase hex digits); an empty ontology's is that of "{}". Only the
 * trie (util/trie.h) is stored: each bucket is one subtree of it. */
#ifndef OMS_SNAPSHOT_H
#define OMS_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ontology/ontology.h"
#include "store/db.h"
#include "util/trie.h"

#define OMS_BUCKETS 256

typedef struct {
    atomic_int refs;
    char *key;            /* "object-types/Person" */
    const char *api_name; /* into key, after the '/' */
    oms_kind kind;
    char hash[65];        /* content hash: the resource's ETag */
    /* The trie's view of the entry (util/trie.h), computed once: SHA-256 of
     * the key, and the content hash as bytes (raw_ok: it is 64 hex digits;
     * unit-test stand-ins are not, and are hashed at seal time instead). */
    unsigned char khash[32];
    unsigned char raw[32];
    bool raw_ok;
    char *text;           /* canonical JSON of the document */
    size_t len;
    /* The document's top-level "status" (oms_status_index), -1 when it
     * has none: read once here, because a
     * list filtered by status would otherwise scan every document's text
     * (canonical JSON puts "status" after the properties). */
    signed char status;
    char commit[65];      /* last commit on the first-parent line that changed it */
    char *author;
    int64_t time_ms;
    _Atomic(struct oms_refs *) refs_to; /* outgoing references, computed on first use */
} oms_entry;

/* Outgoing references of a resource as "KIND/NAME" strings. */
typedef struct oms_refs {
    size_t n;
    char *v[];
} oms_refs;

/* The entry's outgoing references (parsed once, then shared). */
const oms_refs *oms_entry_refs(const oms_entry *e);
/* Sets a new entry's references from its parsed document (the write path
 * has it: no need to parse the canonical text again). */
void oms_entry_refs_from_doc(oms_entry *e, const json_t *doc);

typedef struct oms_bucket {
    atomic_int refs;
    size_t n, cap;
    oms_entry **e;        /* sorted by key */
    char hash[65];
    unsigned char node[32]; /* the bucket's trie subtree (util/trie.h), set when sealed */
    struct oms_bucket *base; /* the sealed bucket this one was copied from, until sealed:
                              * only the subtree nodes it lacks are new */
    size_t bytes;         /* memory estimate, set when sealed */
    size_t cache_users;   /* cached snapshots holding it (under the cache's mutex) */
} oms_bucket;

/* The reverse-reference index (snapshot_refs.c): who references a resource.
 * Pairs (target, referrer) live in OMS_BUCKETS buckets by the target's key,
 * each sorted by (target, referrer key) and shared copy-on-write between a
 * snapshot and its forks, like the tree's buckets. A pair holds a
 * reference to its referrer entry, whose refs_to owns the target text. */
typedef struct {
    const char *target;   /* "KIND/NAME", owned by from->refs_to */
    oms_entry *from;
} oms_revref;

typedef struct {
    atomic_int refs;
    size_t n, cap;
    oms_revref *v;
    size_t cache_users; /* cached snapshots holding it (under the cache's mutex) */
} oms_rbucket;

typedef struct oms_revidx {
    oms_rbucket *b[OMS_BUCKETS];
    size_t pairs;
} oms_revidx;

typedef struct {
    atomic_int refs;
    char commit[65];
    char tree[65];
    oms_bucket *b[OMS_BUCKETS]; /* NULL for an empty bucket */
    /* The trie's top levels as of the last seal (top[0]: the stored root,
     * what trees.root names); a fork starts from its base's. */
    unsigned char top[OMS_TRIE_TOP_NODES][32];
    /* Buckets changed since `top` was computed (bit i: bucket i), so a seal
     * rehashes only the top nodes above them; top_stale: all of them (a
     * snapshot built from nothing). A fork inherits both. */
    unsigned char dirty[OMS_BUCKETS / 8];
    bool top_stale;
    size_t count;
    /* Built on first need for a published snapshot (then immutable),
     * inherited and kept up to date by forks of a snapshot that has one. */
    _Atomic(oms_revidx *) rev;
} oms_snapshot;

/* Entries. `text` is the canonical document (copied). Never NULL
 * (docs/memory.md). */
oms_entry *oms_entry_new(oms_kind kind, const char *api_name, const char *hash, const char *text,
                         size_t len, const char *commit, const char *author, int64_t time_ms);
void oms_entry_unref(oms_entry *e);
int oms_bucket_of(const char *key);
/* "KIND/NAME" into its kind and name (into key); -1 for another form. */
int oms_snapshot_key_split(const char *key, oms_kind *kind, const char **name);

oms_snapshot *oms_snapshot_new_empty(void);
void oms_snapshot_ref(oms_snapshot *s);
void oms_snapshot_unref(oms_snapshot *s);
const oms_entry *oms_snapshot_get(const oms_snapshot *s, oms_kind kind, const char *api_name);
const oms_entry *oms_snapshot_get_key(const oms_snapshot *s, const char *key);

/* A mutable copy sharing everything with `base`; buckets are copied on the
 * first put/remove that touches them. */
oms_snapshot *oms_snapshot_fork(const oms_snapshot *base);
/* Takes ownership of `e` (replacing an entry with the same key). */
void oms_snapshot_put(oms_snapshot *s, oms_entry *e);
/* Returns true when the key was present. */
bool oms_snapshot_remove(oms_snapshot *s, const char *key);
/* Recomputes the hashes of buckets changed since fork (their hash is empty)
 * and the root: s->tree, the tree id (the Merkle root over the buckets'
 * canonical JSON, what commit ids hash), and s->top, the stored trie.
 * Calls emit(ctx, hash, body, len) for every trie node that is new since
 * the fork's base (docs/storage.md "Tree storage"), so the caller stores
 * only those. */
int oms_snapshot_seal(oms_snapshot *s, oms_trie_emit_fn emit, void *ctx);

/* Iterates every entry (bucket order, then key order). */
typedef void (*oms_entry_fn)(void *ctx, const oms_entry *e);
void oms_snapshot_each(const oms_snapshot *s, oms_entry_fn fn, void *ctx);

/* Resource-level diff: [{resource, change, old_hash, new_hash, breaking,
 * fields}], skipping buckets whose hashes are equal. */
json_t *oms_snapshot_diff(const oms_snapshot *from, const oms_snapshot *to, bool *breaking);

/* ---- the reverse-reference index (snapshot_refs.c) ---- */

/* Builds the index of a sealed snapshot unless it has one (thread-safe:
 * the first builder wins). Its forks then maintain theirs as they change. */
void oms_snapshot_revidx_ensure(oms_snapshot *s);
/* Calls fn for every entry of `s` that references `target` ("KIND/NAME"),
 * in snapshot order (bucket, then key). Needs the index (false without). */
typedef void (*oms_referrer_fn)(void *ctx, const oms_entry *from);
bool oms_snapshot_referrers(const oms_snapshot *s, const char *target, oms_referrer_fn fn, void *ctx);
/* Keeps a fork's index up to date: `old_e` leaves, `new_e` arrives (either NULL). */
void oms_revidx_replace(oms_snapshot *s, const oms_entry *old_e, oms_entry *new_e);
oms_revidx *oms_revidx_fork(const oms_revidx *base);
void oms_revidx_free(oms_revidx *r);
/* Order of two keys in a snapshot (bucket, then key), as for qsort. */
int oms_snapshot_key_order(const char *a, const char *b);

/* ---- the cache (snapshot_cache.c) ---- */

/* The process-wide cache of snapshots by commit id: an LRU bounded by bytes
 * (OMS_SNAPSHOT_CACHE_MB, default 256). Returned snapshots carry a
 * reference the caller must drop.
 * get: a branch state (with provenance), also one still pending: only for
 * ids read from the database. get_any: also tree-built snapshots, never a
 * pending one. */
oms_snapshot *oms_snapshot_cache_get(const char *commit);
oms_snapshot *oms_snapshot_cache_get_any(const char *commit);
void oms_snapshot_cache_put(oms_snapshot *s);
void oms_snapshot_cache_put_tree(oms_snapshot *s);
/* A writer's new state before its transaction commits (see
 * snapshot_cache.c); put confirms it, drop_pending withdraws it. */
void oms_snapshot_cache_put_pending(oms_snapshot *s);
void oms_snapshot_cache_drop_pending(oms_snapshot *s);
void oms_snapshot_cache_stats(size_t *bytes, size_t *limit, size_t *count);
void oms_snapshot_cache_clear(void);

/* Snapshot of a branch's current head: the head is read from the database on
 * every call (never stale, also across instances); the snapshot comes from
 * the cache or is loaded from branch_resources in one read transaction.
 * OMS_ENOTFOUND when the branch does not exist. */
int oms_snapshot_for_branch(oms_dbconn *c, const char *branch, oms_snapshot **out, oms_error *err);
/* The same when this request already read the head (head may be NULL). */
int oms_snapshot_for_branch_head(oms_dbconn *c, const char *branch, const char *head, oms_snapshot **out,
                                 oms_error *err);
/* The same for the write path (counted apart in /metrics). */
int oms_snapshot_for_branch_write(oms_dbconn *c, const char *branch, const char *head, oms_snapshot **out,
                                  oms_error *err);
/* Snapshot of any commit (from the cache or its stored tree; provenance
 * fields are then the commit itself). */
int oms_snapshot_for_commit(oms_dbconn *c, const char *commit, oms_snapshot **out, oms_error *err);

#endif
