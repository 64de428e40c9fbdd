/* Storage of security alerts (the `alerts` table): the operations the audit
 * layer's alerts (src/audit/alerts.c) and the alert list use. */
#ifndef OMS_STORE_ALERTS_SQL_H
#define OMS_STORE_ALERTS_SQL_H

#include <stdint.h>

#include "store/db.h"

typedef struct {
    const char *id, *rule, *severity, *subject, *client_addr, *request_id, *detail;
    int64_t time_ms;
} oms_alert_row;

/* Inserts one alert row in the caller's transaction. */
int oms_store_alert_insert(oms_dbconn *c, const oms_alert_row *a, oms_error *err);

/* Alerts newest first, older than `before_ms`, of `rule` (NULL: every rule),
 * at most `limit` rows. Columns: id, time_ms, rule, severity, subject,
 * client_addr, request_id, detail (OMS_ALERT_COL_*). */
int oms_store_alerts_list(oms_dbconn *c, int64_t before_ms, const char *rule, int64_t limit, oms_dbres **out,
                          oms_error *err);
enum {
    OMS_ALERT_COL_ID,
    OMS_ALERT_COL_TIME,
    OMS_ALERT_COL_RULE,
    OMS_ALERT_COL_SEVERITY,
    OMS_ALERT_COL_SUBJECT,
    OMS_ALERT_COL_CLIENT_ADDR,
    OMS_ALERT_COL_REQUEST_ID,
    OMS_ALERT_COL_DETAIL
};

#endif
