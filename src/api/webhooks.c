#include "api/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "store/events_sql.h"
#include "webhooks/webhooks.h"

static const char *const k_fields[] = {"url", "types", "branches", "description", "enabled", NULL};

/* The body as an input; false with the 400 answered. */
static bool parse_input(oms_request *req, oms_webhook_input *in)
{
    json_t *b = req->json;
    if (!json_is_object(b)) {
        oms_resp_problem(req, OMS_EINVAL,
                         "the body must be {\"url\", \"types\", \"branches\", \"description\", \"enabled\"}", NULL);
        return false;
    }
    if (!oms_body_fields_ok(req, b, k_fields))
        return false;
    const json_t *desc = json_object_get(b, "description"), *en = json_object_get(b, "enabled");
    if ((desc && !json_is_string(desc)) || (en && !json_is_boolean(en))) {
        oms_resp_problem(req, OMS_EINVAL, "description must be a string and enabled a boolean", NULL);
        return false;
    }
    *in = (oms_webhook_input){.url = json_string_value(json_object_get(b, "url")),
                              .types = json_object_get(b, "types"),
                              .branches = json_object_get(b, "branches"),
                              .description = json_string_value(desc),
                              .enabled = en ? json_is_true(en) : true};
    return true;
}

int oms_h_webhook_create(oms_request *req)
{
    oms_webhook_input in;
    if (!parse_input(req, &in))
        return OMS_OK;
    oms_error err = {0};
    json_t *out = NULL;
    int rc = oms_webhook_create(oms_req_ctx(req), &in, &out, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    char loc[128];
    snprintf(loc, sizeof loc, "/api/v1/webhooks/%s", json_string_value(json_object_get(out, "id")));
    oms_resp_header(req, "Location", loc);
    oms_resp_header(req, "Cache-Control", "no-store"); /* the secret is in it */
    return oms_resp_json(req, 201, out);
}

int oms_h_webhook_update(oms_request *req)
{
    oms_webhook_input in;
    if (!parse_input(req, &in))
        return OMS_OK;
    oms_error err = {0};
    json_t *out = NULL;
    int rc = oms_webhook_update(oms_req_ctx(req), req->params[0], &in, &out, &err);
    return rc ? oms_resp_error(req, rc, &err) : oms_resp_json(req, 200, out);
}

int oms_h_webhook_delete(oms_request *req)
{
    oms_error err = {0};
    int rc = oms_webhook_delete(oms_req_ctx(req), req->params[0], &err);
    return rc ? oms_resp_error(req, rc, &err) : oms_resp_text(req, 204, "application/json", "", 0);
}

int oms_h_webhook_get(oms_request *req)
{
    oms_error err = {0};
    json_t *out = NULL;
    int rc = oms_webhook_get(oms_req_ctx(req), req->params[0], &out, &err);
    return rc ? oms_resp_error(req, rc, &err) : oms_resp_json(req, 200, out);
}

static json_t *webhook_row(const oms_dbres *r, size_t i, void *ctx)
{
    (void)ctx;
    return oms_webhook_json(r, i);
}

int oms_h_webhook_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_error err = {0};
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_store_webhook_page(c, cursor, (int64_t)limit + 1, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    rc = oms_resp_page(req, r, limit, OMS_WH_COL_ID, webhook_row, NULL, NULL);
    oms_dbres_free(r);
    return rc;
}

int oms_h_webhook_deliveries(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *status = oms_req_query(req, "status");
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "retrying") != 0 &&
        strcmp(status, "delivered") != 0 && strcmp(status, "dead") != 0)
        return oms_resp_problem(req, OMS_EINVAL, "status must be pending, retrying, delivered or dead", NULL);
    /* the cursor: "<created_at ms>:<delivery id>" of the last row shown */
    int64_t before_ms = INT64_MAX;
    const char *before_id = NULL;
    if (cursor) {
        char *end;
        before_ms = strtoll(cursor, &end, 10);
        if (*end != ':')
            return oms_resp_problem(req, OMS_EINVAL, "cursor is not one this list gave", NULL);
        before_id = end + 1;
    }
    oms_error err = {0};
    json_t *wh = NULL;
    int rc = oms_webhook_get(oms_req_ctx(req), req->params[0], &wh, &err);
    json_decref(wh);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_dbconn *c;
    oms_dbres *r = NULL;
    if ((rc = oms_db_conn(req->app->store->db, &c, &err)) == OMS_OK)
        rc = oms_store_delivery_page(c, req->params[0], status, (int64_t)limit + 1, before_ms, before_id, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    json_t *items = json_array();
    for (size_t i = 0; i < r->nrows && i < limit; i++)
        json_array_append_new(items, oms_delivery_json(r, i));
    json_t *next = json_null();
    if (r->nrows > limit) {
        char pos[160];
        snprintf(pos, sizeof pos, "%s:%s", oms_dbres_get(r, limit - 1, OMS_DLV_COL_CREATED_AT),
                 oms_dbres_get(r, limit - 1, OMS_DLV_COL_ID));
        json_decref(next);
        next = json_string(oms_cursor_encode(req, pos));
    }
    oms_dbres_free(r);
    return oms_resp_json(req, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

int oms_h_webhook_redeliver(oms_request *req)
{
    oms_error err = {0};
    json_t *out = NULL;
    int rc = oms_webhook_redeliver(oms_req_ctx(req), req->params[0], req->params[1], &out, &err);
    return rc ? oms_resp_error(req, rc, &err) : oms_resp_json(req, 202, out);
}
