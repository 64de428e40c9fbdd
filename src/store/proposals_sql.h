/* Storage operations of proposals (src/vcs/proposals.c), both dialects
 * side by side (store/dialect.h). */
#ifndef OMS_STORE_PROPOSALS_SQL_H
#define OMS_STORE_PROPOSALS_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

#define OMS_STORE_PROPOSAL_COLS                                                                                  \
    "id, source, target, title, description, state, author, issue_keys, created_at, updated_at, merged_commit," \
    " closed_reason"
/* Column positions of a row read with OMS_STORE_PROPOSAL_COLS. */
enum { OMS_PR_ID, OMS_PR_SOURCE, OMS_PR_TARGET, OMS_PR_TITLE, OMS_PR_DESCRIPTION, OMS_PR_STATE, OMS_PR_AUTHOR,
       OMS_PR_ISSUE_KEYS, OMS_PR_CREATED_AT, OMS_PR_UPDATED_AT, OMS_PR_MERGED_COMMIT, OMS_PR_CLOSED_REASON };

/* The proposal's row; `lock`: locked until the transaction ends (SQLite's
 * write transaction already serialises writers). *out NULL when absent. */
int oms_store_proposal_load(oms_dbconn *c, const char *id, bool lock, oms_dbres **out, oms_error *err);
/* Its target branch (*found false when there is no such proposal). */
int oms_store_proposal_target(oms_dbconn *c, const char *id, char *out, size_t cap, bool *found, oms_error *err);
/* A page of summaries (id, source, target, title, state, author,
 * created_at) after `after`, filtered by state and target (may be NULL). */
int oms_store_proposal_page(oms_dbconn *c, const char *after, const char *state, const char *target,
                            const char *needs_review_by, int64_t limit, oms_dbres **out, oms_error *err);
int oms_store_proposal_insert(oms_dbconn *c, const char *id, const char *source, const char *target, const char *title,
                              const char *description, const char *state, const char *author, const char *issue_keys,
                              int64_t now_ms, oms_error *err);
int oms_store_proposal_set_state(oms_dbconn *c, const char *id, const char *state, const char *closed_reason,
                                 int64_t now_ms, oms_error *err);
/* open -> merged at `commit`: *changed false when it was no longer open. */
int oms_store_proposal_mark_merged(oms_dbconn *c, const char *id, const char *commit, int64_t now_ms, bool *changed,
                                   oms_error *err);
/* Records (or replaces) a reviewer's verdict on the source head, with an
 * optional comment. */
int oms_store_proposal_review(oms_dbconn *c, const char *id, const char *reviewer, const char *verdict,
                              const char *source_head, const char *comment, int64_t now_ms, oms_error *err);
/* Change requests still standing: a reviewer's latest verdict is
 * changes_requested (reviewer, source_head, created_at, comment). */
int oms_store_proposal_changes_requested(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* Appends a comment (its seq is the proposal's next). */
int oms_store_proposal_comment_insert(oms_dbconn *c, const char *proposal, const char *id, const char *author,
                                      const char *body, const char *resource, const char *pointer,
                                      const char *verdict, const char *source_head, int64_t now_ms, oms_error *err);
/* Comments after seq `after_seq`, in order: seq, id, author, body,
 * resource, pointer, verdict, source_head, created_at. */
int oms_store_proposal_comments(oms_dbconn *c, const char *proposal, int64_t after_seq, int64_t limit,
                                oms_dbres **out, oms_error *err);
/* One comment by its id (same columns). */
int oms_store_proposal_comment_get(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* Requested reviewers: add one (idempotent), list them (reviewer). */
int oms_store_proposal_reviewer_add(oms_dbconn *c, const char *proposal, const char *reviewer, const char *by,
                                    int64_t now_ms, oms_error *err);
int oms_store_proposal_reviewers(oms_dbconn *c, const char *proposal, oms_dbres **out, oms_error *err);
/* Issue keys of the commits reachable from `head` but not from `exclude`
 * (a proposal's source commits), sorted, each given to `each`. */
int oms_store_commits_issue_keys_between(oms_dbconn *c, const char *head, const char *exclude,
                                         void (*each)(void *ctx, const char *key), void *ctx, oms_error *err);
/* Approvals of the source head: reviewer, created_at, oldest first. */
int oms_store_proposal_approvals(oms_dbconn *c, const char *id, const char *source_head, oms_dbres **out,
                                 oms_error *err);
/* The approvals a merge into `branch` needs, ordinary and breaking. */
int oms_store_branch_rules(oms_dbconn *c, const char *branch, int64_t *required, int64_t *breaking_required,
                           oms_error *err);

#endif
