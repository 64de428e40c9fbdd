/* In-memory state of one commit: every resource of the ontology at that
 * commit, arranged as the commit's tree (256 buckets by the first byte of
 * SHA-256("KIND/API_NAME"), each sorted by key). Snapshots are immutable and
 * reference-counted; a new commit's snapshot shares every unchanged bucket
 * and entry with its parent's (copy-on-write per bucket).
 *
 * The tree is content-addressed: a bucket's hash is the SHA-256 of the
 * canonical JSON {"KIND/NAME": resource_hash, ...}; the root's is that of
 * {"00": bucket_hash, ...} over non-empty buckets (two lowercase hex digits).
 * An empty ontology's root is "{}". */
#ifndef OMS_SNAPSHOT_H
#define OMS_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ontology/ontology.h"
#include "store/db.h"

#define OMS_BUCKETS 256

typedef struct {
    atomic_int refs;
    char *key;            /* "object-types/Person" */
    const char *api_name; /* into key, after the '/' */
    oms_kind kind;
    char hash[65];        /* content hash: the resource's ETag */
    char *text;           /* canonical JSON of the document */
    size_t len;
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

typedef struct {
    atomic_int refs;
    size_t n, cap;
    oms_entry **e;        /* sorted by key */
    char hash[65];
} oms_bucket;

typedef struct {
    atomic_int refs;
    char commit[65];
    char tree[65];
    oms_bucket *b[OMS_BUCKETS]; /* NULL for an empty bucket */
    size_t count;
} oms_snapshot;

/* Entries. `text` is the canonical document (copied). */
oms_entry *oms_entry_new(oms_kind kind, const char *api_name, const char *hash, const char *text,
                         size_t len, const char *commit, const char *author, int64_t time_ms);
void oms_entry_unref(oms_entry *e);
int oms_bucket_of(const char *key);

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
 * and the root; fills s->tree. Calls emit(ctx, hash, text) for every tree
 * node it computed, so the caller can store new nodes. */
typedef int (*oms_tree_emit_fn)(void *ctx, const char *hash, const char *text);
int oms_snapshot_seal(oms_snapshot *s, oms_tree_emit_fn emit, void *ctx);

/* Iterates every entry (bucket order, then key order). */
typedef void (*oms_entry_fn)(void *ctx, const oms_entry *e);
void oms_snapshot_each(const oms_snapshot *s, oms_entry_fn fn, void *ctx);

/* Resource-level diff: [{resource, change, old_hash, new_hash, breaking,
 * fields}], skipping buckets whose hashes are equal. */
json_t *oms_snapshot_diff(const oms_snapshot *from, const oms_snapshot *to, bool *breaking);

/* The process-wide cache of snapshots by commit id (a small LRU). The
 * returned snapshot carries a reference the caller must drop. */
oms_snapshot *oms_snapshot_cache_get(const char *commit);
void oms_snapshot_cache_put(oms_snapshot *s);

/* Snapshot of a branch's current head: the head is read from the database on
 * every call (never stale, also across instances); the snapshot comes from
 * the cache or is loaded from branch_resources in one read transaction.
 * OMS_ENOTFOUND when the branch does not exist. */
int oms_snapshot_for_branch(oms_dbconn *c, const char *branch, oms_snapshot **out, oms_error *err);
/* The same when this request already read the head (head may be NULL). */
int oms_snapshot_for_branch_head(oms_dbconn *c, const char *branch, const char *head, oms_snapshot **out,
                                 oms_error *err);
/* Snapshot of any commit (from the cache or its stored tree; provenance
 * fields are then the commit itself). */
int oms_snapshot_for_commit(oms_dbconn *c, const char *commit, oms_snapshot **out, oms_error *err);
/* Loads stored objects by hash (`hashes` a JSON array of strings) into `out`
 * (a JSON object hash -> parsed JSON when `parse`, for tree nodes, or the
 * text as a JSON string, for resources). An absent hash is left out. */
int oms_objects_load(oms_dbconn *c, json_t *hashes, bool parse, json_t *out, oms_error *err);

#endif
