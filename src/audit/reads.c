/* Reading the audit log through the API (SPEC §9): the events a filter
 * selects, one event, and the audit of the read itself. The handlers
 * (src/api/audit.c) parse and render. */
#include <stdio.h>
#include <stdlib.h>

#include "audit/internal.h"
#include "infra/log.h"

int oms_audit_list(oms_ctx *ctx, const oms_audit_filter *f, size_t limit, json_t **items, int64_t *next_seq,
                   oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_audit_events_page(c, f, (int64_t)limit + 1, &r, err);
    if (rc)
        return rc;
    *items = json_array();
    size_t n = r->nrows < limit ? r->nrows : limit;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(*items, oms_audit_row_json(r, i));
    *next_seq = r->nrows > limit ? oms_dbres_int(r, limit - 1, AC_SEQ) : 0;
    oms_dbres_free(r);
    return OMS_OK;
}

int oms_audit_get(oms_ctx *ctx, const char *event_id, json_t **out, oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_audit_event_by_id(c, event_id, &r, err);
    if (rc)
        return rc;
    if (r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no audit event with that id");
    else
        *out = oms_audit_row_json(r, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_audit_record_read(oms_ctx *ctx, const char *action, const char *resource_id, json_t *detail, oms_error *err)
{
    char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    oms_audit_event ev = {.action = action, .outcome = "success", .http_status = 200,
                          .resource_kind = "audit", .resource_id = resource_id, .detail = d};
    oms_audit_from_ctx(&ev, ctx);
    int rc = oms_audit_record(ctx->store, &ev, err);
    if (rc) {
        oms_log_write(OMS_LOG_ERROR, ctx->request_id, NULL, "audit write failed: %s", err->msg);
        oms_audit_record_unrecorded(ctx->store, &ev, oms_err_http_status((oms_err)rc),
                                    oms_err_problem_code((oms_err)rc));
        oms_err_set(err, (oms_err)rc, "%s",
                    rc == OMS_EDB ? "the database is unavailable: this request cannot be recorded"
                                  : "the audit store cannot record this request");
    }
    free(d);
    ctx->audited = true; /* recorded, or its failure recorded late */
    return rc;
}
