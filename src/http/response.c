/* Response building shared by every handler: JSON bodies and RFC 9457
 * problem documents carrying a stable `code` and the request id. Every 503
 * carries Retry-After (set here, once for all; a handler may set its own
 * value first). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/request.h"

void oms_resp_header(oms_request *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->nresp_headers; i++)
        if (strcasecmp(r->resp_headers[i].name, name) == 0) {
            r->resp_headers[i].value = oms_arena_strdup(r->arena, value);
            return;
        }
    if (r->nresp_headers < OMS_MAX_RESP_HEADERS) {
        r->resp_headers[r->nresp_headers].name = name;
        r->resp_headers[r->nresp_headers].value = oms_arena_strdup(r->arena, value);
        r->nresp_headers++;
    }
}

/* Seconds a client should wait before trying again after a 503: the
 * conditions behind one (a database busy past its deadline, a restart, a
 * drain) pass in about that time, or the next answer says so again. */
#define OMS_RETRY_AFTER_503 "1"

static void set_status(oms_request *r, int status)
{
    r->status = status;
    if (status != 503)
        return;
    for (size_t i = 0; i < r->nresp_headers; i++)
        if (strcasecmp(r->resp_headers[i].name, "Retry-After") == 0)
            return;
    oms_resp_header(r, "Retry-After", OMS_RETRY_AFTER_503);
}

static void drop_stream(oms_request *r)
{
    if (r->stream_fn && r->stream_free)
        r->stream_free(r->stream_ctx);
    r->stream_fn = NULL;
    r->stream_ctx = NULL;
    r->stream_free = NULL;
}

int oms_resp_stream(oms_request *r, int status, const char *content_type, long (*fn)(void *ctx, char *buf, size_t max),
                    void *ctx, void (*free_fn)(void *ctx))
{
    oms_resp_text(r, status, content_type, "", 0);
    r->stream_fn = fn;
    r->stream_ctx = ctx;
    r->stream_free = free_fn;
    return OMS_OK;
}

int oms_resp_text(oms_request *r, int status, const char *content_type, const char *text, size_t len)
{
    drop_stream(r);
    free(r->resp_owned);
    r->resp_owned = NULL;
    set_status(r, status);
    r->resp_type = content_type;
    r->resp_body = oms_arena_strndup(r->arena, text, len);
    r->resp_len = len;
    r->responded = true;
    return OMS_OK;
}

int oms_resp_take(oms_request *r, int status, const char *content_type, char *body, size_t len)
{
    drop_stream(r);
    free(r->resp_owned);
    set_status(r, status);
    r->resp_type = content_type;
    r->resp_owned = body;
    r->resp_body = body;
    r->resp_len = len;
    r->responded = true;
    return OMS_OK;
}

int oms_resp_json(oms_request *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!s) {
        static const char k_oom[] = "{\"status\":500,\"code\":\"internal\"}";
        return oms_resp_text(r, 500, "application/problem+json", k_oom, sizeof k_oom - 1);
    }
    int rc = oms_resp_text(r, status, "application/json", s, strlen(s));
    free(s);
    return rc;
}

int oms_resp_problem(oms_request *r, oms_err code, const char *detail, json_t *extra)
{
    return oms_resp_problem_as(r, code, NULL, detail, extra);
}

int oms_resp_problem_as(oms_request *r, oms_err code, const char *problem_code, const char *detail, json_t *extra)
{
    int status = oms_err_http_status(code);
    const char *pcode = problem_code ? problem_code : oms_err_problem_code(code);
    json_t *doc = json_object();
    json_object_set_new(doc, "type", json_sprintf("urn:oms:problem:%s", pcode));
    json_object_set_new(doc, "title", json_string(oms_err_title(code)));
    json_object_set_new(doc, "status", json_integer(status));
    /* detail is built by us; if it somehow is not UTF-8, fall back to the title */
    json_t *d = json_string(detail && *detail ? detail : oms_err_title(code));
    json_object_set_new(doc, "detail", d ? d : json_string(oms_err_title(code)));
    json_object_set_new(doc, "code", json_string(pcode));
    json_object_set_new(doc, "request_id", json_string(r->request_id));
    if (extra) {
        /* a 423 names when to come back (docs/locks.md) */
        json_t *ra = json_object_get(extra, "retry_after_seconds");
        if (status == 423 && json_is_integer(ra))
            oms_resp_header(r, "Retry-After", oms_arena_printf(r->arena, "%lld", (long long)json_integer_value(ra)));
        json_object_update_missing(doc, extra);
        json_decref(extra);
    }
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    oms_resp_text(r, status, "application/problem+json", s ? s : "{}", s ? strlen(s) : 2);
    free(s);
    r->problem_code = pcode;
    if (status == 401)
        oms_resp_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return code;
}

int oms_resp_error(oms_request *r, int rc, const oms_error *err)
{
    oms_err code = err && err->code != OMS_OK ? err->code : rc ? (oms_err)rc : OMS_EINTERNAL;
    const char *detail = err && err->code != OMS_OK ? err->msg : NULL;
    const char *problem = err && err->code != OMS_OK ? err->problem : NULL;
    json_t *extra = oms_ctx_take_problem_extra(&r->ctx);
    return oms_resp_problem_as(r, code, problem, detail, extra);
}
