#include "util/ids.h"
#include "audit/alerts.h"

#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "store/alerts_sql.h"
#include "util/encoding.h"
#include "util/time.h"

/* One structured line: the alert's members as fields of the log line, its
 * detail as an object (it is JSON text built by the rule). */
static void log_alert(const oms_alert_row *a)
{
    json_t *detail = json_loads(a->detail, 0, NULL);
    json_t *f = json_pack("{s:s,s:s,s:s}", "alert_id", a->id, "rule", a->rule, "severity", a->severity);
    if (f && a->subject)
        json_object_set_new(f, "subject", json_string(a->subject));
    if (f && a->client_addr)
        json_object_set_new(f, "client_addr", json_string(a->client_addr));
    if (f)
        json_object_set_new(f, "detail", detail ? detail : json_string(a->detail));
    char *s = f ? json_dumps(f, JSON_COMPACT) : NULL;
    json_decref(f);
    if (s) { /* the object's members after the fixed ones: its braces dropped */
        s[strlen(s) - 1] = '\0';
        s[0] = ',';
    }
    oms_log_write(OMS_LOG_WARN, a->request_id, s, "security alert %s", a->rule);
    free(s);
}

int oms_alert_raise(oms_dbconn *c, const oms_ctx *ctx, const char *rule, const char *severity, const char *detail,
                    oms_error *err)
{
    char id[40];
    oms_random_id(id, "alr_");
    oms_alert_row a = {.id = id,
                       .time_ms = oms_now_ms(),
                       .rule = rule,
                       .severity = severity,
                       .subject = ctx ? ctx->sub : NULL,
                       .client_addr = ctx ? ctx->client_addr : NULL,
                       .request_id = ctx ? ctx->request_id : NULL,
                       .detail = detail ? detail : "{}"};
    int rc = oms_store_alert_insert(c, &a, err);
    if (rc == OMS_OK) {
        /* its alert.raised event, in the same transaction (SPEC §13) */
        json_t *parsed = json_loads(a.detail, 0, NULL);
        json_t *data = json_pack("{s:s, s:s, s:s, s:I, s:o}", "id", id, "rule", rule, "severity", severity, "time_ms",
                                 (json_int_t)a.time_ms, "detail", parsed ? parsed : json_object());
        if (data && a.subject)
            json_object_set_new(data, "subject", json_string(a.subject));
        if (data && a.client_addr)
            json_object_set_new(data, "client_addr", json_string(a.client_addr));
        if (data && a.request_id)
            json_object_set_new(data, "request_id", json_string(a.request_id));
        rc = data ? oms_event_emit(c, "alert.raised", rule, NULL, data, err)
                  : oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    if (rc == OMS_OK) {
        oms_metrics_alert(rule);
        log_alert(&a);
    }
    return rc;
}

int oms_alert_raise_audited(oms_dbconn *c, const oms_ctx *ctx, const char *rule, const char *severity,
                            const json_t *detail, const oms_audit_event *like, oms_error *err)
{
    char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    if (detail && !text)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = oms_alert_raise(c, ctx, rule, severity, text, err);
    if (rc == OMS_OK) {
        oms_audit_event ev = *like;
        ev.action = "alert.raised";
        ev.detail = text;
        if (oms_audit_append(c, &ev, err))
            rc = oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
    }
    free(text);
    return rc;
}
