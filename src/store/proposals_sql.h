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
int oms_store_proposal_page(oms_dbconn *c, const char *after, const char *state, const char *target, int64_t limit,
                            oms_dbres **out, oms_error *err);
int oms_store_proposal_insert(oms_dbconn *c, const char *id, const char *source, const char *target, const char *title,
                              const char *description, const char *state, const char *author, const char *issue_keys,
                              int64_t now_ms, oms_error *err);
int oms_store_proposal_set_state(oms_dbconn *c, const char *id, const char *state, const char *closed_reason,
                                 int64_t now_ms, oms_error *err);
/* open -> merged at `commit`: *changed false when it was no longer open. */
int oms_store_proposal_mark_merged(oms_dbconn *c, const char *id, const char *commit, int64_t now_ms, bool *changed,
                                   oms_error *err);
/* Records (or replaces) a reviewer's verdict on the source head. */
int oms_store_proposal_review(oms_dbconn *c, const char *id, const char *reviewer, const char *verdict,
                              const char *source_head, int64_t now_ms, oms_error *err);
/* Approvals of the source head: reviewer, created_at, oldest first. */
int oms_store_proposal_approvals(oms_dbconn *c, const char *id, const char *source_head, oms_dbres **out,
                                 oms_error *err);
/* The approvals a merge into `branch` needs, ordinary and breaking. */
int oms_store_branch_rules(oms_dbconn *c, const char *branch, int64_t *required, int64_t *breaking_required,
                           oms_error *err);

#endif
