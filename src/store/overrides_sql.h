/* Storage of governance (SPEC §6.3, §6.4): emergency overrides, their
 * approvals, and the branch's issue rule. Both dialects side by side. */
#ifndef OMS_STORE_OVERRIDES_SQL_H
#define OMS_STORE_OVERRIDES_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* The columns of an override row, in this order (OMS_OVR_COL_*). */
enum {
    OMS_OVR_COL_ID,
    OMS_OVR_COL_KIND,
    OMS_OVR_COL_BRANCH,
    OMS_OVR_COL_RESOURCE,
    OMS_OVR_COL_JUSTIFICATION,
    OMS_OVR_COL_INCIDENT,
    OMS_OVR_COL_REQUESTER,
    OMS_OVR_COL_STATE,
    OMS_OVR_COL_TTL,
    OMS_OVR_COL_APPROVALS_REQUIRED,
    OMS_OVR_COL_CREATED_AT,
    OMS_OVR_COL_EXPIRES_AT,
    OMS_OVR_COL_DECIDED_AT,
    OMS_OVR_COL_DECIDED_BY,
    OMS_OVR_COL_USED_AT,
    OMS_OVR_COL_USED_REQUEST_ID
};

typedef struct {
    const char *id, *kind, *branch, *resource, *justification, *incident, *requester;
    int64_t ttl_seconds, approvals_required, created_at, expires_at;
} oms_override_new;

/* One override (OMS_ENOTFOUND when none); `for_update` row-locks it where
 * the backend locks rows. */
int oms_store_override_load(oms_dbconn *c, const char *id, bool for_update, oms_dbres **out, oms_error *err);
/* Overrides with id > after, of `state` (NULL: any), by id, at most `limit`. */
int oms_store_overrides_list(oms_dbconn *c, const char *after, const char *state, int64_t limit, oms_dbres **out,
                             oms_error *err);
/* The approvals of an override: approver, created_at, oldest first. */
int oms_store_override_approvals(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
int oms_store_override_insert(oms_dbconn *c, const oms_override_new *o, oms_error *err);
/* Records an approval (a repeated one changes nothing). */
int oms_store_override_approve(oms_dbconn *c, const char *id, const char *approver, int64_t now, oms_error *err);
int oms_store_override_set_state(oms_dbconn *c, const char *id, const char *state, int64_t now, const char *by,
                                 oms_error *err);
/* Marks an approved, unexpired override of `requester` used (database
 * clock); *used is false when no row moved (used, expired, withdrawn). */
int oms_store_override_use(oms_dbconn *c, const char *id, const char *requester, int64_t now, const char *request_id,
                           bool *used, oms_error *err);
/* Pending and approved overrides past their expiry become expired;
 * returns the rows moved: id, branch. */
int oms_store_overrides_expire(oms_dbconn *c, oms_dbres **out, oms_error *err);

/* The branch's own issue rule: 1 required, 0 not, -1 when the branch has
 * no setting (or does not exist). */
int oms_store_branch_issue_setting(oms_dbconn *c, const char *branch, int *out, oms_error *err);

#endif
