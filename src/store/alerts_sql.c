#include "store/alerts_sql.h"

#include "store/dialect.h"

int oms_store_alert_insert(oms_dbconn *c, const oms_alert_row *a, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO alerts (id, time_ms, rule, severity, subject, client_addr, request_id, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    oms_dbparam p[] = {DBP_TEXT(a->id),         DBP_INT(a->time_ms),       DBP_TEXT(a->rule),
                       DBP_TEXT(a->severity),   DBP_TEXT(a->subject),      DBP_TEXT(a->client_addr),
                       DBP_TEXT(a->request_id), DBP_TEXT(a->detail ? a->detail : "{}")};
    return oms_db_run(c, &q, p, 8, NULL, err);
}

int oms_store_alerts_list(oms_dbconn *c, int64_t before_ms, const char *rule, int64_t limit, oms_dbres **out,
                          oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT id, time_ms, rule, severity, subject, client_addr, request_id, detail FROM alerts"
        " WHERE time_ms < $1 AND (CAST($2 AS TEXT) IS NULL OR rule = $2)"
        " ORDER BY time_ms DESC, id LIMIT $3");
    oms_dbparam p[] = {DBP_INT(before_ms), DBP_TEXT(rule), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 3, out, err);
}
