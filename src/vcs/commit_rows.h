/* Commit rows in memory, for history pages (GET /branches/{branch}/commits).
 *
 * A page of history is a walk down first parents, one lookup by a random
 * key per commit; in SQL that is a recursive statement whose every step is
 * two index descents, and on SQLite every read transaction that finds the
 * log changed starts with an empty page cache, so every page re-read those
 * index pages and cost more as the file grew. Here each commit's row is
 * kept once read: the next page of a branch that moved by one commit reads
 * one row.
 *
 * No invalidation is needed: a commit's id is the hash of its content, so
 * the row held for an id is the same in any database that has the commit
 * (as for vcs/commit_graph.h). Bounded: the oldest entries go first. */
#ifndef OMS_VCS_COMMIT_ROWS_H
#define OMS_VCS_COMMIT_ROWS_H

#include <jansson.h>
#include <stdint.h>

/* One commit as a history page shows it. Strings are borrowed. */
typedef struct {
    const char *id, *tree, *first_parent; /* first_parent NULL at a root */
    const char *parents_json, *author, *message, *issue_keys_json;
    int64_t time_ms;
} oms_commit_row;

/* The history item of a commit: {id, tree, parents, author, time,
 * message, issue_keys}. NULL when out of memory. */
json_t *oms_commit_row_json(const oms_commit_row *row);

/* The cached item of `id` (a new reference), with its first parent copied
 * into `first_parent` ("" at a root); NULL when the commit is not cached. */
json_t *oms_commit_rows_item(const char *id, char first_parent[65]);

/* Keeps a row read from the database (its strings are copied). */
void oms_commit_rows_put(const oms_commit_row *row);

/* Items answered from memory, and misses, since the start. */
void oms_commit_rows_counts(unsigned long *hits, unsigned long *misses);

/* Drops every cached row (tests). */
void oms_commit_rows_clear(void);

#endif
