/* The search index in the database (SPEC §8, docs/search.md): generations
 * of per-branch documents, kept current inside every commit's own
 * transaction, and the storage operations the query, the rebuild jobs and
 * the hooks of the write path share. Both dialects sit side by side here:
 * SQLite FTS5 (an external-content table over search_docs) and PostgreSQL
 * tsvector with a GIN index ('simple' configuration). */
#ifndef OMS_SEARCH_INDEX_H
#define OMS_SEARCH_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "vcs/snapshot.h"

/* ---- hooks of the write path: call inside the change's transaction ---- */

/* A commit moved `branch` to `commit`, whose state is `state`; `changes` is
 * [{resource, change: added|modified|removed}, ...]. The active generation
 * is updated in place; a generation being built records the resources
 * for its catch-up. A branch without a generation yet has nothing to keep
 * (its first search builds one from the head). */
int oms_search_on_commit(oms_dbconn *c, const char *branch, const oms_snapshot *state, const json_t *changes,
                         const char *commit, oms_error *err);
/* A branch was created at `commit`: from branch `from` (its active
 * generation is copied: the source's row is share-locked by the caller, so
 * the copy is the source's state at that commit), or from a commit (`from`
 * NULL: indexed from the commit's snapshot). */
int oms_search_on_branch_create(oms_dbconn *c, const char *branch, const char *from, const char *commit,
                                oms_error *err);
/* A branch was deleted: its generations are retired (dropped later in
 * batches) and a running rebuild of it fails. */
int oms_search_on_branch_delete(oms_dbconn *c, const char *branch, oms_error *err);

/* ---- generations ---- */

/* The branch's active generation and the branch head, in one statement.
 * *gen is 0 when the branch has no generation yet; OMS_ENOTFOUND when the
 * branch does not exist. `commit` (may be NULL) gets the commit the
 * generation holds. */
int oms_search_active(oms_dbconn *c, const char *branch, int64_t *gen, char commit[65], oms_error *err);

/* Builds the branch's first generation from its head in one write
 * transaction that holds the branch row (so no commit slips between the
 * head read and the generation becoming active); returns the generation.
 * A concurrent bootstrap or rebuild that got there first is simply used. */
int oms_search_bootstrap(oms_dbconn *c, const char *branch, int64_t *gen, oms_error *err);

/* Indexes `entries` (n of them) into generation `gen`, replacing any
 * document of the same resource. Inside the caller's write transaction. */
int oms_search_put_entries(oms_dbconn *c, int64_t gen, const oms_entry *const *entries, size_t n, oms_error *err);
/* Every entry of `s`, in snapshot order: an array of *n pointers borrowed
 * from `s` (free the array, not the entries). */
const oms_entry **oms_search_snapshot_entries(const oms_snapshot *s, size_t *n);
/* Removes the documents of `resources` (a JSON array of KIND/NAME). */
int oms_search_remove(oms_dbconn *c, int64_t gen, const json_t *resources, oms_error *err);

/* Deletes up to `batch` documents of a retired generation retired more
 * than `grace_ms` ago (its pending rows, and the generation row once it is
 * empty). *did says whether anything was left to do. One transaction. */
int oms_search_drop_step(oms_dbconn *c, int64_t grace_ms, int batch, bool *did, oms_error *err);

#endif
