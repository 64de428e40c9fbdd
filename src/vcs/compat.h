/* The compatibility policy of a branch (SPEC §4): `warn` (default: breaking
 * changes are flagged and need breaking_change_approvals), `block`
 * (breaking changes into the branch are refused unless a breaking_change
 * override is used), `none` (no breaking-change rule: ordinary approvals).
 * With `transitive`, a change is also checked against every tag whose
 * commit is an ancestor of the head (each release consumers may pin), for
 * the resources the change touches: a breaking entry against a tag names
 * it in `against` and in its reason. */
#ifndef OMS_VCS_COMPAT_H
#define OMS_VCS_COMPAT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
#include "store/db.h"
#include "vcs/snapshot.h"

/* Inside a change transaction that moves `branch` from `head` to the state
 * `after` with `changes` ([{resource, fields: [{path, breaking, rule,
 * reason}]}]): OMS_OK, or OMS_EUNPROCESSABLE "breaking_change_blocked" with
 * the problem member `breaking` ([{resource, path, rule, reason, against?}])
 * when the branch's policy is block and no override permits it. */
int oms_vcs_compat_check(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *head,
                         const oms_snapshot *after, const json_t *changes, oms_error *err);

/* The breaking entries of a change list ([{resource, path, rule, reason}]),
 * new reference. */
json_t *oms_vcs_breaking_entries(const json_t *changes);

#endif
