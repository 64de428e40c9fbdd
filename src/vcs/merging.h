/* Merging a source (branch or commit) into a target branch: fast-forward,
 * up-to-date, or a merge commit with two parents through the write path.
 * Shared by POST /branches/{b}/merge and proposal merges. */
#ifndef OMS_MERGING_H
#define OMS_MERGING_H

#include <jansson.h>
#include <stdbool.h>

#include "http/request.h"
#include "store/db.h"

typedef struct {
    const char *target;
    const char *source;          /* branch name or commit id */
    const json_t *resolutions;   /* {"KIND/NAME": "source"|"target"|{document}} or NULL */
    const char *message;
    const json_t *issue_keys;
    const char *override_id;
    bool bypass_protection;      /* proposal merges and approved overrides */
    const char *audit_action;    /* "branch.merge", "proposal.merge" */
    const char *audit_detail;    /* JSON object text or NULL */
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
    const char *problem_code;
    json_t *problem_extra;
} oms_merge_result;

int oms_vcs_merge(oms_request *req, const oms_merge_request *m, oms_merge_result *out, oms_error *err);
void oms_merge_result_clear(oms_merge_result *r);

#endif
