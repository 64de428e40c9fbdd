/* Security alerts (SPEC §10): stored with the event that raised them (same
 * transaction), logged, counted; GET /api/v1/alerts lists them. Delivery to
 * a webhook reads the stored rows. */
#ifndef OMS_ALERTS_H
#define OMS_ALERTS_H

#include "http/request.h"
#include "store/db.h"

/* rule: "override_used", "forced_lock_release", "acl_change", ...;
 * severity: "info" | "warning" | "critical"; detail: JSON object text. */
int oms_alert_raise(oms_dbconn *c, const oms_ctx *ctx, const char *rule, const char *severity, const char *detail,
                    oms_error *err);

int oms_h_alert_list(oms_request *req);

#endif
