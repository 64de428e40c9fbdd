/* The commit graph in memory (docs/merge.md "The commit graph").
 *
 * A merge base and "the commits one head has and another has not" are
 * walks down two histories. In SQL each step of such a walk is two indexed
 * lookups by a random key (commit_parents, then commits for the
 * generation), and on SQLite every read transaction that finds the log
 * changed starts with an empty page cache: a proposal's view walked a few
 * hundred commits in 7-11 ms, more as the file grew, and on SQLite its
 * merge does so while it holds the writer. Here the walks run in memory,
 * over a process-wide cache of each commit's generation, parents and issue
 * keys; a commit the cache lacks is loaded with its ancestors a window of
 * generations deep, in one statement.
 *
 * The cache needs no invalidation: a commit's id is the hash of its
 * content, parents included, so what the cache holds for an id is true in
 * any database that has that commit. It is bounded (oldest entries go
 * first). */
#ifndef OMS_VCS_COMMIT_GRAPH_H
#define OMS_VCS_COMMIT_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* A lowest common ancestor of `a` and `b`: of the commits both reach, the
 * one with the highest generation, then the smallest id (the same answer
 * as oms_store_merge_base). *found is false when they share no commit or
 * either does not exist. */
int oms_commit_graph_merge_base(oms_dbconn *c, const char *a, const char *b, char out[65], bool *found,
                                oms_error *err);

/* Gives `each` the distinct issue keys of the commits `head` reaches and
 * `exclude` does not, sorted bytewise (the same answer as
 * oms_store_commits_issue_keys_between). */
int oms_commit_graph_keys_between(oms_dbconn *c, const char *head, const char *exclude,
                                  void (*each)(void *ctx, const char *key), void *ctx, oms_error *err);

/* Notes a commit this server is storing (oms_commit_store), so that walks
 * through the newest commits, which every proposal view and merge makes,
 * find them here rather than loading windows of them with SQL (on SQLite,
 * random-key lookups in a file that grows; docs/merge.md). Its generation
 * is computed from its parents' as the insert computes it, so it is noted
 * only when every parent is cached; false when it was not noted. Noting it
 * before its transaction commits is safe: an entry describes what the id
 * names, and an id no stored commit reaches is never walked to. */
bool oms_commit_graph_note(const char *id, const char *const *parents, size_t nparents, const char *issue_keys);

/* The generation the cache holds for commit `id`; -1 when it holds none. */
int64_t oms_commit_graph_cached_generation(const char *id);

/* Commits answered from the cache, windows loaded, and commits noted since
 * the start (notes may be NULL). */
void oms_commit_graph_counts(unsigned long *hits, unsigned long *loads, unsigned long *notes);

/* Drops every cached commit (tests). */
void oms_commit_graph_clear(void);

#endif
