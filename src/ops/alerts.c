#include "ops/alerts.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http/app.h"
#include "http/params.h"
#include "infra/log.h"
#include "util/encoding.h"
#include "util/time.h"

int oms_alert_raise(oms_dbconn *c, const oms_ctx *ctx, const char *rule, const char *severity, const char *detail,
                    oms_error *err)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return oms_err_set(err, OMS_EINTERNAL, "no randomness");
    char id[40] = "alr_";
    oms_hex(id + 4, rnd, sizeof rnd);
    oms_dbparam p[] = {DBP_TEXT(id),
                       DBP_INT(oms_now_ms()),
                       DBP_TEXT(rule),
                       DBP_TEXT(severity),
                       DBP_TEXT(ctx ? ctx->sub : NULL),
                       DBP_TEXT(ctx ? ctx->client_addr : NULL),
                       DBP_TEXT(ctx ? ctx->request_id : NULL),
                       DBP_TEXT(detail ? detail : "{}")};
    int rc = oms_db_exec(c,
                         "INSERT INTO alerts (id, time_ms, rule, severity, subject, client_addr, request_id, detail)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                         p, 8, NULL, err);
    if (rc == OMS_OK)
        oms_log_write(OMS_LOG_WARN, ctx ? ctx->request_id : NULL, NULL, "security alert %s (%s): %s", rule, severity,
                      detail ? detail : "{}");
    return rc;
}

static json_t *alert_row(const oms_dbres *r, size_t i, void *ctx)
{
    (void)ctx;
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 1));
    json_t *detail = json_loads(oms_dbres_get(r, i, 7), 0, NULL);
    return json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:o}", "id", oms_dbres_get(r, i, 0), "time", t, "rule",
                     oms_dbres_get(r, i, 2), "severity", oms_dbres_get(r, i, 3), "subject", oms_dbres_get(r, i, 4),
                     "client_addr", oms_dbres_get(r, i, 5), "request_id", oms_dbres_get(r, i, 6), "detail",
                     detail ? detail : json_object());
}

int oms_h_alert_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *rule = oms_req_query(req, "rule");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    /* Newest first; the cursor is the last id seen with its time. */
    int64_t before = cursor ? strtoll(cursor, NULL, 10) : INT64_MAX;
    oms_dbparam p[] = {DBP_INT(before), DBP_TEXT(rule), DBP_INT((int64_t)limit + 1)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "SELECT id, time_ms, rule, severity, subject, client_addr, request_id, detail FROM alerts"
                         " WHERE time_ms < $1 AND (CAST($2 AS TEXT) IS NULL OR rule = $2)"
                         " ORDER BY time_ms DESC, id LIMIT $3",
                         p, 3, &r, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    oms_resp_page(req, r, limit, 1, alert_row, NULL, NULL);
    oms_dbres_free(r);
    return OMS_OK;
}
