/* Issue-tracking enforcement (SPEC §6.3), driven by the route table's
 * `change` flag: every change route is covered, with no list to keep in
 * step with the routes (the replaced service's list drifted and its check
 * never ran). */
#ifndef OMS_ISSUE_CHECK_H
#define OMS_ISSUE_CHECK_H

#include <stdbool.h>

#include <jansson.h>

#include "core/context.h"

struct oms_config;

/* Reads the settings (key patterns, exempt globs, tracker); start-up. */
int oms_issue_check_configure(const struct oms_config *cfg, oms_error *err);

/* The decision for a change route, once the body is parsed and before the
 * handler (the pipeline reads the references: src/http/governance.c).
 * `branch`: the branch the change applies to (NULL when none); `keys`:
 * every reference found (stolen: it becomes ctx->issue_keys, which the
 * arena frees); `invalid`: the explicit references that are not keys
 * (borrowed). OMS_OK when the change may proceed (an approved
 * issue_requirement override may stand in for a missing reference);
 * otherwise OMS_EUNPROCESSABLE "issue_required" with accepted_forms (and
 * `invalid`) in ctx->problem_extra, OMS_EUNAVAIL
 * "issue_tracker_unavailable" when the tracker cannot be asked (fail
 * closed), OMS_EDB when the branch settings cannot be read. */
int oms_issue_check(oms_ctx *ctx, const char *branch, json_t *keys, const json_t *invalid, oms_error *err);

/* Checks one key against the tracker (cached). OMS_OK when it exists,
 * OMS_ENOTFOUND when the tracker says it does not, OMS_EUNAVAIL when the
 * tracker cannot answer (callers fail closed). OMS_OK when no tracker is
 * configured. */
int oms_issue_tracker_check(const char *key, oms_error *err);

#endif
