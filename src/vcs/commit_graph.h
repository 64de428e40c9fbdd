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

/* Commits answered from the cache, and windows loaded, since the start. */
void oms_commit_graph_counts(unsigned long *hits, unsigned long *loads);

/* Drops every cached commit (tests). */
void oms_commit_graph_clear(void);

#endif
