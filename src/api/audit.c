/* Audit and compliance routes (SPEC §9). */
#include "api/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "audit/monitor.h"
#include "http/app.h"
#include "http/params.h"
#include "infra/log.h"
#include "util/time.h"

#define DEFAULT_EXEMPT "sandbox/**,personal/**"

/* Reading the audit log is itself audited, durably, before the answer. On
 * failure a 503 is queued (database_unavailable when the database is
 * unreachable, else audit_unavailable) and the error returned. `detail` is
 * stolen. */
static int record_read(oms_request *req, const char *action, const char *resource_id, json_t *detail)
{
    oms_error err;
    int rc = oms_audit_record_read(oms_req_ctx(req), action, resource_id, detail, &err);
    if (rc)
        oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    return rc;
}

/* Filters from the query string; false with a 400 queued. */
static bool read_filter(oms_request *req, oms_audit_filter *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; oms_audit_filter_names[i]; i++) {
        const char *v = oms_req_query(req, oms_audit_filter_names[i]);
        oms_error err;
        if (v && !oms_audit_filter_set(f, oms_audit_filter_names[i], v, &err)) {
            oms_resp_problem(req, OMS_EINVAL, err.msg, NULL);
            return false;
        }
    }
    if (f->has_from && f->has_to && f->from_ms >= f->to_ms) {
        oms_resp_problem(req, OMS_EINVAL, "from must be before to", NULL);
        return false;
    }
    return true;
}

static int db_problem(oms_request *req, int rc, const oms_error *err)
{
    if (rc == OMS_EDB)
        oms_db_conn_reset(req->app->store->db);
    oms_log_write(OMS_LOG_ERROR, req->request_id, NULL, "audit query failed: %s", err->msg);
    return oms_resp_problem(req, rc == OMS_EDB ? OMS_EDB : OMS_EINTERNAL, NULL, NULL);
}

int oms_h_audit_list(oms_request *req)
{
    oms_audit_filter f;
    size_t limit;
    const char *cursor;
    if (!read_filter(req, &f) || !oms_paging(req, &limit, &cursor))
        return OMS_OK;
    if (cursor) {
        char *end;
        long long v = strtoll(cursor, &end, 10);
        if (*end || v < 0)
            return oms_resp_problem(req, OMS_EINVAL, "cursor is not valid", NULL);
        f.has_cursor = true;
        f.cursor_seq = v;
    }
    oms_error err;
    json_t *items = NULL;
    int64_t next_seq = 0;
    int rc = oms_audit_list(oms_req_ctx(req), &f, limit, &items, &next_seq, &err);
    if (rc)
        return db_problem(req, rc, &err);
    size_t n = json_array_size(items);
    json_t *next = json_null();
    if (next_seq) {
        char pos[24];
        snprintf(pos, sizeof pos, "%lld", (long long)next_seq);
        next = json_string(oms_cursor_encode(req, pos));
    }
    json_t *detail = json_pack("{s:o,s:I}", "filter", oms_audit_filter_json(&f), "returned", (json_int_t)n);
    if (record_read(req, "audit.read", NULL, detail)) {
        json_decref(items);
        json_decref(next);
        return OMS_OK;
    }
    return oms_resp_json(req, 200, json_pack("{s:o,s:o}", "items", items, "next_cursor", next));
}

int oms_h_audit_get(oms_request *req)
{
    const char *id = req->params[0];
    oms_error err;
    json_t *ev = NULL;
    int rc = oms_audit_get(oms_req_ctx(req), id, &ev, &err);
    if (rc == OMS_ENOTFOUND)
        return oms_resp_problem(req, OMS_ENOTFOUND, err.msg, NULL);
    if (rc)
        return db_problem(req, rc, &err);
    if (record_read(req, "audit.read", id, NULL)) {
        json_decref(ev);
        return OMS_OK;
    }
    return oms_resp_json(req, 200, ev);
}

int oms_h_audit_verify(oms_request *req)
{
    oms_audit_verify_result v;
    oms_error err;
    int rc = oms_audit_verify(req->app->store, &v, &err);
    if (rc) {
        if (rc == OMS_ECONFIG)
            return oms_resp_problem(req, OMS_EUNAVAIL, err.msg, NULL);
        return db_problem(req, rc, &err);
    }
    json_t *out = oms_audit_verify_json(&v);
    if (!v.ok) {
        oms_log_write(OMS_LOG_ERROR, req->request_id, NULL, "audit verification failed: %s", v.reason);
        /* SPEC §10: every verification failure is an alert; its own short
         * transaction, and a failure to store it is logged, not answered */
        json_t *al = json_pack("{s:s,s:s,s:O,s:O,s:s}", "rule", "audit_verification_failed", "by", "api",
                               "first_bad_seq", json_object_get(out, "first_bad_seq"), "bad_checkpoint",
                               json_object_get(out, "bad_checkpoint"), "reason", v.reason);
        oms_monitor_raise_now(req->app->store, oms_req_ctx(req), "audit_verification_failed", "critical", al);
        json_decref(al);
    }
    json_t *detail = json_pack("{s:b,s:O}", "ok", v.ok, "first_bad_seq", json_object_get(out, "first_bad_seq"));
    if (record_read(req, "audit.verify", NULL, detail)) {
        json_decref(out);
        return OMS_OK;
    }
    return oms_resp_json(req, 200, out);
}

/* ---- export ---- */

static long export_read(void *ctx, char *buf, size_t max)
{
    return oms_audit_exporter_read(ctx, buf, max);
}

static void export_free(void *ctx) { oms_audit_exporter_free(ctx); }

int oms_h_audit_export(oms_request *req)
{
    const char *format = oms_req_query(req, "format");
    oms_audit_format fmt;
    if (!format || !strcmp(format, "jsonl"))
        fmt = OMS_AUDIT_JSONL;
    else if (!strcmp(format, "csv"))
        fmt = OMS_AUDIT_CSV;
    else
        return oms_resp_problem(req, OMS_EINVAL, "format must be jsonl or csv", NULL);
    oms_audit_filter f;
    if (!read_filter(req, &f))
        return OMS_OK;
    oms_audit_exporter *x = NULL;
    oms_error err;
    int rc = oms_audit_exporter_new(&x, req->app->store->db, &f, fmt, &err);
    if (rc)
        return db_problem(req, rc, &err);
    json_t *detail = json_pack("{s:o,s:s}", "filter", oms_audit_filter_json(&f), "format",
                               fmt == OMS_AUDIT_CSV ? "csv" : "jsonl");
    if (record_read(req, "audit.export", NULL, detail)) {
        oms_audit_exporter_free(x);
        return OMS_OK;
    }
    oms_resp_header(req, "Content-Disposition", fmt == OMS_AUDIT_CSV ? "attachment; filename=\"audit-export.csv\""
                                                                     : "attachment; filename=\"audit-export.jsonl\"");
    return oms_resp_stream(req, 200, fmt == OMS_AUDIT_CSV ? "text/csv; charset=utf-8" : "application/x-ndjson", export_read,
                           x, export_free);
}

/* ---- compliance report ---- */

int oms_h_compliance_report(oms_request *req)
{
    const char *from = oms_req_query(req, "from"), *to = oms_req_query(req, "to");
    const char *format = oms_req_query(req, "format");
    int64_t from_ms = 0, to_ms = oms_now_ms() + 1;
    if (from && !oms_audit_parse_time(from, &from_ms))
        return oms_resp_problem(req, OMS_EINVAL, "from must be an RFC 3339 time such as 2026-01-01T00:00:00Z", NULL);
    if (to && !oms_audit_parse_time(to, &to_ms))
        return oms_resp_problem(req, OMS_EINVAL, "to must be an RFC 3339 time such as 2026-02-01T00:00:00Z", NULL);
    if (!from)
        from_ms = to_ms - 30LL * 86400 * 1000; /* the last 30 days */
    if (from_ms >= to_ms)
        return oms_resp_problem(req, OMS_EINVAL, "from must be before to", NULL);
    if (format && strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "html"))
        return oms_resp_problem(req, OMS_EINVAL, "format must be json, csv or html", NULL);
    const char *exempt = oms_config_str(req->app->cfg, "OMS_ISSUE_EXEMPT_BRANCHES");
    oms_error err;
    json_t *rep = oms_compliance_report(req->app->store, exempt ? exempt : DEFAULT_EXEMPT, from_ms, to_ms, &err);
    if (!rep)
        return db_problem(req, err.code, &err);
    json_t *detail = json_pack("{s:O,s:s}", "period", json_object_get(rep, "period"), "format", format ? format : "json");
    if (record_read(req, "compliance.report", NULL, detail)) {
        json_decref(rep);
        return OMS_OK;
    }
    if (!format || !strcmp(format, "json"))
        return oms_resp_json(req, 200, rep);
    char *body = !strcmp(format, "csv") ? oms_compliance_report_csv(rep) : oms_compliance_report_html(rep);
    json_decref(rep);
    if (!body)
        return oms_resp_problem(req, OMS_ENOMEM, NULL, NULL);
    if (!strcmp(format, "csv")) {
        oms_resp_header(req, "Content-Disposition", "attachment; filename=\"compliance-report.csv\"");
        return oms_resp_take(req, 200, "text/csv; charset=utf-8", body, strlen(body));
    }
    /* The page has no script and loads nothing: say so to the browser. */
    oms_resp_header(req, "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'");
    return oms_resp_take(req, 200, "text/html; charset=utf-8", body, strlen(body));
}
