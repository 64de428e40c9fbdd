/* History (first-parent), commit detail, diffs between commits and the
 * commits linked to an issue: the reads of the commit graph. */
#ifndef OMS_VCS_HISTORY_H
#define OMS_VCS_HISTORY_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
#include "store/db.h"
#include "vcs/snapshot.h"

/* The state of `branch` at its head (ctx->branch_head when the pipeline
 * read it, else read now); an owned reference. */
int oms_vcs_branch_snapshot(oms_ctx *ctx, const char *branch, oms_snapshot **out, oms_error *err);

/* A commit row (id, tree, parents, author, time_ms, issue_keys, message)
 * as the API shows it. */
json_t *oms_vcs_commit_row_json(const oms_dbres *r, size_t i);
/* `limit` commits of the first-parent history of `ref` (a branch or a
 * commit), or from `cursor` (a commit id) when given; *next (arena) is the
 * commit the next page starts at, NULL at the end. */
int oms_vcs_history(oms_ctx *ctx, const char *ref, const char *cursor, size_t limit, json_t **items,
                    const char **next, oms_error *err);
/* Filters of a history (SPEC §4): NULL / 0 / INT64_MAX for none. */
typedef struct {
    const char *resource, *author;
    int64_t since_ms, until_ms;
} oms_history_filter;
/* oms_vcs_history with filters (f may be NULL). */
int oms_vcs_history_filtered(oms_ctx *ctx, const char *ref, const char *cursor, size_t limit,
                             const oms_history_filter *f, json_t **items, const char **next, oms_error *err);
/* The commit with its changes and their field diffs (out: owned). */
int oms_vcs_commit_detail(oms_ctx *ctx, const char *id, json_t **out, oms_error *err);
/* The resource changes from commit `a` to commit `b`, as the compact JSON
 * text of their array (*changes: owned, NUL-terminated; *len its length):
 * what the diff cache keeps and a response splices in. */
int oms_vcs_diff(oms_ctx *ctx, const char *a, const char *b, char **changes, size_t *len, bool *breaking,
                 oms_error *err);
/* Commit rows linked to issue `key` after `after` (limit + 1 fetched). */
int oms_vcs_issue_commits(oms_ctx *ctx, const char *key, const char *after, size_t limit, oms_dbres **out,
                          oms_error *err);

#endif
