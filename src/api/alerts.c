#include "api/alerts.h"

#include <stdint.h>
#include <stdlib.h>

#include "http/app.h"
#include "http/params.h"
#include "store/alerts_sql.h"
#include "util/time.h"

static json_t *alert_row(const oms_dbres *r, size_t i, void *ctx)
{
    (void)ctx;
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, OMS_ALERT_COL_TIME));
    json_t *detail = json_loads(oms_dbres_get(r, i, OMS_ALERT_COL_DETAIL), 0, NULL);
    return json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:o}", "id", oms_dbres_get(r, i, OMS_ALERT_COL_ID), "time", t,
                     "rule", oms_dbres_get(r, i, OMS_ALERT_COL_RULE), "severity",
                     oms_dbres_get(r, i, OMS_ALERT_COL_SEVERITY), "subject",
                     oms_dbres_get(r, i, OMS_ALERT_COL_SUBJECT), "client_addr",
                     oms_dbres_get(r, i, OMS_ALERT_COL_CLIENT_ADDR), "request_id",
                     oms_dbres_get(r, i, OMS_ALERT_COL_REQUEST_ID), "detail", detail ? detail : json_object());
}

int oms_h_alert_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_ctx *ctx = oms_req_ctx(req);
    const char *rule = oms_req_query(req, "rule");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    /* Newest first; the cursor is the time of the last alert seen. */
    int64_t before = cursor ? strtoll(cursor, NULL, 10) : INT64_MAX;
    int rc = oms_db_conn(ctx->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_store_alerts_list(c, before, rule, (int64_t)limit + 1, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_resp_page(req, r, limit, OMS_ALERT_COL_TIME, alert_row, NULL, NULL);
    oms_dbres_free(r);
    return OMS_OK;
}
