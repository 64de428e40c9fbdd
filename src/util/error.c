#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The one mapping from error code to HTTP status, problem code and title. */
static const struct {
    oms_err code;
    int status;
    const char *problem;
    const char *title;
} k_errors[] = {
    {OMS_OK, 200, "ok", "OK"},
    {OMS_EINVAL, 400, "invalid_request", "Invalid request"},
    {OMS_EBADPATH, 400, "invalid_path", "Invalid request path"},
    {OMS_ENOAUTH, 401, "token_missing", "Authentication required"},
    {OMS_ETOKEN, 401, "token_invalid", "Invalid token"},
    {OMS_EEXPIRED, 401, "token_expired", "Token expired"},
    {OMS_EFORBIDDEN, 403, "forbidden", "Forbidden"},
    {OMS_ENOTFOUND, 404, "not_found", "Not found"},
    {OMS_EMETHOD, 405, "method_not_allowed", "Method not allowed"},
    {OMS_ECONFLICT, 409, "conflict", "Conflict"},
    {OMS_EPRECOND, 412, "precondition_failed", "Precondition failed"},
    {OMS_ETOOBIG, 413, "payload_too_large", "Payload too large"},
    {OMS_EURI, 414, "uri_too_long", "URI too long"},
    {OMS_EMEDIA, 415, "unsupported_media_type", "Unsupported media type"},
    {OMS_EUNPROCESSABLE, 422, "unprocessable", "Unprocessable request"},
    {OMS_ELOCKED, 423, "locked", "Locked"},
    {OMS_EPRECONDREQ, 428, "precondition_required", "Precondition required"},
    {OMS_ERATE, 429, "rate_limited", "Too many requests"},
    {OMS_EHEADERS, 431, "headers_too_large", "Request header fields too large"},
    {OMS_EINTERNAL, 500, "internal", "Internal server error"},
    {OMS_EUNAVAIL, 503, "unavailable", "Service unavailable"},
    {OMS_EDB, 503, "database_unavailable", "Database unavailable"},
    {OMS_ECONFIG, 500, "configuration", "Configuration error"},
    {OMS_ENOMEM, 500, "internal", "Internal server error"},
    {OMS_EIO, 500, "internal", "Internal server error"},
    {OMS_EAUDIT, 503, "audit_unavailable", "Audit store unavailable"},
    {OMS_ENOTMODIFIED, 304, "not_modified", "Not modified"},
    {OMS_ELOCKLOST, 409, "lock_expired", "Lock expired"},
    {OMS_EFRAMING, 400, "ambiguous_framing", "Ambiguous request framing"},
    {OMS_ENOTIMPL, 501, "not_implemented", "Not implemented"},
    {OMS_ELOCKNOTHOLDER, 403, "not_lock_holder", "Not the lock holder"},
    {OMS_ETIMEOUT, 503, "database_timeout", "Database timeout"},
    {OMS_EFULL, 507, "storage_full", "Insufficient storage"},
};

static int find(oms_err code)
{
    for (size_t i = 0; i < sizeof k_errors / sizeof k_errors[0]; i++)
        if (k_errors[i].code == code)
            return (int)i;
    return -1;
}

int oms_err_set(oms_error *e, oms_err code, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        e->problem = NULL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int oms_err_set_as(oms_error *e, oms_err code, const char *problem, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        e->problem = problem;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void oms_err_clear(oms_error *e)
{
    e->code = OMS_OK;
    e->problem = NULL;
    e->msg[0] = '\0';
}

int oms_err_http_status(oms_err code)
{
    int i = find(code);
    return i < 0 ? 500 : k_errors[i].status;
}

const char *oms_err_problem_code(oms_err code)
{
    int i = find(code);
    return i < 0 ? "internal" : k_errors[i].problem;
}

const char *oms_err_title(oms_err code)
{
    int i = find(code);
    return i < 0 ? "Internal server error" : k_errors[i].title;
}
