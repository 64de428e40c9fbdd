/* Reverting a commit on a branch: one new commit that undoes every change
 * the commit made, or nothing at all. */
#ifndef OMS_REVERT_H
#define OMS_REVERT_H

#include "core/context.h"
#include "vcs/write.h"

/* Reverts `commit` on `branch` (the caller decided the commit is readable).
 * Every change of the commit must still be in place (409 revert_conflict
 * with the conflicts otherwise) and every document it replaced or deleted
 * must load: when one cannot, the revert fails whole (500 internal, or the
 * database's own error) and nothing is committed. `message` may be NULL.
 * The commit's issue references are ctx->issue_keys. */
int oms_vcs_revert(oms_ctx *ctx, const char *branch, const char *commit, const char *message, oms_write_result *res,
                   oms_error *err);

#endif
