/* Merging a source (branch or commit) into a target branch: fast-forward,
 * up-to-date, or a merge commit with two parents through the write path.
 * Shared by POST /branches/{b}/merge and proposal merges. */
#ifndef OMS_MERGING_H
#define OMS_MERGING_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
#include "store/db.h"

typedef struct {
    const char *target;
    const char *source;          /* branch name or commit id */
    const json_t *resolutions;   /* {"KIND/NAME": "source"|"target"|{document}} or NULL */
    const char *message;         /* the commit's issue references are ctx->issue_keys */
    bool bypass_protection;      /* proposal merges and approved overrides */
    const char *audit_action;    /* "branch.merge", "proposal.merge" */
    const json_t *audit_detail;  /* object or NULL */
    bool dry_run;                /* compute only (proposal views) */
    int (*in_tx)(oms_dbconn *c, void *ctx, const char *commit, oms_error *err); /* see oms_write */
    void *in_tx_ctx;
} oms_merge_request;

typedef struct {
    const char *status;          /* "merged", "fast_forward", "up_to_date" */
    char commit[65];             /* the target's head afterwards */
    char base[65], source_head[65], target_head[65];
    bool breaking;
    json_t *changes;             /* diff target -> result */
    json_t *conflicts;           /* unresolved conflicts (on 409) */
} oms_merge_result;

/* Refusals: the error with its precise problem code ("merge_conflict",
 * "protected_branch", ...) and the members in ctx->problem_extra. */
int oms_vcs_merge(oms_ctx *ctx, const oms_merge_request *m, oms_merge_result *out, oms_error *err);
void oms_merge_result_clear(oms_merge_result *r);

#endif
