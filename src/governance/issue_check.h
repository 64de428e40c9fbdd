/* Issue-tracking enforcement (SPEC §6.3), driven by the route table's
 * `change` flag: every change route is covered, with no list to keep in
 * step with the routes (the replaced service's list drifted and its check
 * never ran). */
#ifndef OMS_ISSUE_CHECK_H
#define OMS_ISSUE_CHECK_H

#include <stdbool.h>

#include "http/request.h"

struct oms_config;

/* Reads the settings (key patterns, exempt globs, tracker); start-up. */
int oms_issue_check_configure(const struct oms_config *cfg, oms_error *err);

/* Pipeline, for change routes, once the body is parsed and before the
 * handler: returns false with the refusal queued (422 issue_required,
 * 503 when the tracker cannot be reached) when the change may not proceed. */
bool oms_issue_check(oms_request *req);

/* Checks one key against the tracker (cached). OMS_OK when it exists,
 * OMS_ENOTFOUND when the tracker says it does not, OMS_EUNAVAIL when the
 * tracker cannot answer (callers fail closed). OMS_OK when no tracker is
 * configured. */
int oms_issue_tracker_check(const char *key, oms_error *err);

#endif
