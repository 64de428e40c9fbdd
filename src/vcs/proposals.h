/* Proposals: reviewed merges of a source branch into a target (SPEC §4).
 * Creation, transitions and merges are change transactions
 * (src/txn/change.h); who may see a proposal is the API's decision (both
 * branches readable, src/api/proposals.c). */
#ifndef OMS_VCS_PROPOSALS_H
#define OMS_VCS_PROPOSALS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/context.h"
#include "store/db.h"

typedef struct {
    char id[64], source[128], target[128], state[16], author[256];
    oms_dbres *row; /* OMS_STORE_PROPOSAL_COLS (owned) */
} oms_proposal;

/* Loads proposal `id` (OMS_ENOTFOUND when absent). */
int oms_proposal_load(oms_ctx *ctx, const char *id, oms_proposal *out, oms_error *err);
void oms_proposal_free(oms_proposal *p);
/* The target branch of proposal `id` (arena), or NULL. */
const char *oms_proposal_target(oms_ctx *ctx, const char *id);

/* The view: stored fields plus everything computed against current heads:
 * merge preview (diff, conflicts, breaking), approvals that count, and the
 * approvals the merge needs. */
typedef struct {
    json_t *doc;        /* owned */
    bool mergeable;
    int64_t approvals, required, required_if_not_breaking;
    int64_t changes_requested; /* standing change requests: they block the merge */
    bool breaking;
    char compatibility[16]; /* the target's policy: warn, block or none */
    json_t *conflicts;  /* owned, may be NULL */
    char source_head[65]; /* the source commit the approvals were counted for */
} oms_proposal_view;
int oms_proposal_view_of(oms_ctx *ctx, const oms_proposal *p, oms_proposal_view *v, oms_error *err);
void oms_proposal_view_clear(oms_proposal_view *v);

/* A page of summary rows (id, source, target, title, state, author,
 * created_at) after `after`, limit + 1 fetched; and one row as JSON. */
int oms_proposal_page(oms_ctx *ctx, const char *after, const char *state, const char *target,
                      const char *needs_review_by, size_t limit, oms_dbres **out, oms_error *err);
json_t *oms_proposal_summary_json(const oms_dbres *r, size_t i);

typedef struct {
    const char *source, *target, *title, *description;
    bool draft;
    const json_t *reviewers; /* requested reviewers (array of subjects), may be NULL */
} oms_proposal_new;
/* Creates the proposal (its issue references: ctx->issue_keys); `id` gets
 * its id. OMS_ENOTFOUND when a branch does not exist. */
int oms_proposal_create(oms_ctx *ctx, const oms_proposal_new *n, char id[40], oms_error *err);

typedef enum { OMS_PROPOSAL_BY_AUTHOR, OMS_PROPOSAL_BY_REVIEWER, OMS_PROPOSAL_BY_AUTHOR_OR_REVIEWER } oms_proposal_who;
typedef struct {
    const char *const *from; /* states it may leave, NULL-terminated */
    const char *to;          /* NULL: the state stays */
    const char *action;      /* audit action */
    oms_proposal_who by;
    const char *verdict;     /* a review verdict recorded first, or NULL */
    const char *closed_reason;
} oms_proposal_transition;
/* Moves proposal `id` as `t` says, in one change transaction; a verdict
 * carries `comment` (may be NULL), also listed with the comments. */
int oms_proposal_transition_run(oms_ctx *ctx, const char *id, const oms_proposal_transition *t, const char *comment,
                                oms_error *err);

/* Comments (SPEC §4): on the proposal, on a resource (KIND/API_NAME) or on a
 * field of it (a JSON pointer); `seq` gets the comment's place (1, 2, ...). */
typedef struct {
    const char *body, *resource, *pointer;
} oms_proposal_comment;
int oms_proposal_comment_add(oms_ctx *ctx, const char *id, const oms_proposal_comment *cm, json_t **out,
                             oms_error *err);
/* Comments in order after `after_seq`, limit + 1 fetched. */
int oms_proposal_comment_page(oms_ctx *ctx, const char *id, int64_t after_seq, size_t limit, oms_dbres **out,
                              oms_error *err);
json_t *oms_proposal_comment_json(const oms_dbres *r, size_t i);
/* Adds requested reviewers (array of subjects), by the author or a reviewer. */
int oms_proposal_reviewers_add(oms_ctx *ctx, const char *id, const json_t *reviewers, oms_error *err);
/* The proposal's issue keys with its source commits' (not on the target):
 * they satisfy the issue rule for its merge (SPEC §4). New reference. */
json_t *oms_proposal_issue_keys(oms_ctx *ctx, const char *id);

/* Merges the open proposal `p` (already loaded and allowed): the approved
 * source commit into the target, the proposal marked merged in the same
 * transaction (SPEC §4); `commit` gets the target's head. `message` may be
 * NULL; the stored issue references are added to ctx->issue_keys. */
int oms_proposal_merge(oms_ctx *ctx, const oms_proposal *p, const char *message, char commit[65], oms_error *err);

#endif
