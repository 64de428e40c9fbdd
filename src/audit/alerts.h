/* Security alerts (SPEC §10): stored with the event that raised them (same
 * transaction), logged, counted; GET /api/v1/alerts lists them
 * (src/api/alerts.c). Delivery to a webhook reads the stored rows. */
#ifndef OMS_ALERTS_H
#define OMS_ALERTS_H

#include <jansson.h>

#include "audit/audit.h"
#include "core/context.h"
#include "store/db.h"

/* rule: "override_used", "forced_lock_release", "acl_change", ...;
 * severity: "info" | "warning" | "critical"; detail: JSON object text.
 * `ctx` may be NULL (a background task). */
int oms_alert_raise(oms_dbconn *c, const oms_ctx *ctx, const char *rule, const char *severity, const char *detail,
                    oms_error *err);

/* Raises the alert with `detail` (borrowed; NULL: {}) and appends its
 * `alert.raised` audit event: a copy of `like` (the event of the change
 * that raised it: actor, resource, issue keys) with the alert's detail. */
int oms_alert_raise_audited(oms_dbconn *c, const oms_ctx *ctx, const char *rule, const char *severity,
                            const json_t *detail, const oms_audit_event *like, oms_error *err);

#endif
