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
/* The same with the branch's policy and transitive flag already read (the
 * write path reads them with the branch row). */
int oms_vcs_compat_check_policy(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *policy,
                                bool transitive, const char *head, const oms_snapshot *after, const json_t *changes,
                                oms_error *err);

/* Appends to `breaking` the entries of `changes` (the state `after`) that
 * break a tag reachable from `head`, each naming it in `against`: what a
 * transitive block policy refuses beyond the head's own breaking entries.
 * For views (a proposal's preview); writes use oms_vcs_compat_check. */
int oms_vcs_compat_tag_breaks(oms_dbconn *c, const char *head, const oms_snapshot *after, const json_t *changes,
                              json_t *breaking, oms_error *err);

/* The breaking entries of a change list ([{resource, path, rule, reason}]),
 * new reference. */
json_t *oms_vcs_breaking_entries(const json_t *changes);

#endif
