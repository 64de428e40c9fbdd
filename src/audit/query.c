/* Query filters shared by the API, the export stream and the CLI, the
 * public JSON form of an event, and RFC 3339 parsing. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/internal.h"
#include "util/alloc.h"
#include "util/time.h"

const char *const oms_audit_filter_names[] = {"actor", "action", "resource", "branch", "outcome", "from",
                                              "to", "request_id", "commit", "order", NULL};

static bool charset(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
            return false;
    return true;
}

bool oms_audit_parse_time(const char *s, int64_t *out_ms)
{
    int Y, M, D, h = 0, m = 0, sec = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &used) != 3 || used != 10)
        return false;
    const char *p = s + 10;
    int64_t frac_ms = 0, offset_s = 0;
    if (*p) {
        if ((*p != 'T' && *p != 't' && *p != ' ') || sscanf(p + 1, "%2d:%2d:%2d%n", &h, &m, &sec, &used) != 3 ||
            used != 8)
            return false;
        p += 9;
        if (*p == '.') {
            p++;
            int digits = 0;
            while (isdigit((unsigned char)*p)) {
                if (digits < 3)
                    frac_ms = frac_ms * 10 + (*p - '0');
                digits++;
                p++;
            }
            if (digits == 0)
                return false;
            for (; digits < 3; digits++)
                frac_ms *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &used) != 2 || used != 5 || oh > 23 || om > 59)
                return false;
            offset_s = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
            p += 6;
        } else {
            return false;
        }
        if (*p)
            return false;
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 1970)
        return false;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out_ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return true;
}

bool oms_audit_filter_set(oms_audit_filter *f, const char *name, const char *v, oms_error *err)
{
    if (!v || !*v) {
        oms_err_set(err, OMS_EINVAL, "%s must not be empty", name);
        return false;
    }
    if (!strcmp(name, "actor")) {
        if (strlen(v) > 256)
            return oms_err_set(err, OMS_EINVAL, "actor is too long"), false;
        f->actor = v;
    } else if (!strcmp(name, "action")) {
        size_t n = strlen(v);
        bool prefix = n > 2 && strcmp(v + n - 2, ".*") == 0;
        if (!charset(v, 128, "._-*") || strchr(v, '*') != (prefix ? v + n - 1 : NULL))
            return oms_err_set(err, OMS_EINVAL, "action must be a name such as authz.denied, or a prefix such as auth.*"),
                   false;
        f->action = v;
        f->action_prefix = prefix;
    } else if (!strcmp(name, "resource")) {
        const char *slash = strchr(v, '/');
        if (!charset(v, 240, "_-/") || (slash && (size_t)(slash - v) >= 128) || (slash && (strchr(slash + 1, '/') || slash == v || !slash[1])))
            return oms_err_set(err, OMS_EINVAL, "resource must be KIND or KIND/NAME, e.g. object-types/Person"), false;
        f->resource_kind = v;
        f->resource_id = NULL;
        if (slash) {
            snprintf(f->kind_buf, sizeof f->kind_buf, "%.*s", (int)(slash - v), v);
            f->resource_kind = f->kind_buf;
            f->resource_id = slash + 1;
        }
    } else if (!strcmp(name, "branch")) {
        if (strlen(v) > 200)
            return oms_err_set(err, OMS_EINVAL, "branch is too long"), false;
        f->branch = v;
    } else if (!strcmp(name, "outcome")) {
        if (strcmp(v, "success") && strcmp(v, "denied") && strcmp(v, "failure"))
            return oms_err_set(err, OMS_EINVAL, "outcome must be success, denied or failure"), false;
        f->outcome = v;
    } else if (!strcmp(name, "from") || !strcmp(name, "to")) {
        int64_t ms;
        if (!oms_audit_parse_time(v, &ms))
            return oms_err_set(err, OMS_EINVAL, "%s must be an RFC 3339 time such as 2026-01-31T00:00:00Z", name),
                   false;
        if (name[0] == 'f') {
            f->has_from = true;
            f->from_ms = ms;
        } else {
            f->has_to = true;
            f->to_ms = ms;
        }
    } else if (!strcmp(name, "request_id")) {
        if (!charset(v, 64, "._-"))
            return oms_err_set(err, OMS_EINVAL, "request_id is not a request id"), false;
        f->request_id = v;
    } else if (!strcmp(name, "commit")) {
        if (!charset(v, 64, ""))
            return oms_err_set(err, OMS_EINVAL, "commit must be a commit id"), false;
        f->commit_id = v;
    } else if (!strcmp(name, "order")) {
        if (strcmp(v, "asc") && strcmp(v, "desc"))
            return oms_err_set(err, OMS_EINVAL, "order must be asc or desc"), false;
        f->asc = v[0] == 'a';
    } else {
        return oms_err_set(err, OMS_EINVAL, "unknown filter %.32s", name), false;
    }
    return true;
}

json_t *oms_audit_filter_json(const oms_audit_filter *f)
{
    json_t *o = json_object();
    if (f->actor)
        json_object_set_new(o, "actor", json_string(f->actor));
    if (f->action)
        json_object_set_new(o, "action", json_string(f->action));
    if (f->resource_kind)
        json_object_set_new(o, "resource", f->resource_id ? json_sprintf("%s/%s", f->resource_kind, f->resource_id)
                                                          : json_string(f->resource_kind));
    if (f->branch)
        json_object_set_new(o, "branch", json_string(f->branch));
    if (f->outcome)
        json_object_set_new(o, "outcome", json_string(f->outcome));
    if (f->request_id)
        json_object_set_new(o, "request_id", json_string(f->request_id));
    if (f->commit_id)
        json_object_set_new(o, "commit", json_string(f->commit_id));
    char t[40];
    if (f->has_from) {
        oms_time_rfc3339_ms(t, sizeof t, f->from_ms);
        json_object_set_new(o, "from", json_string(t));
    }
    if (f->has_to) {
        oms_time_rfc3339_ms(t, sizeof t, f->to_ms);
        json_object_set_new(o, "to", json_string(t));
    }
    return o;
}

/* JSON text columns are served parsed; text that does not parse (it cannot
 * come from the service, but the database is not trusted) is served as a
 * string. */
static json_t *json_col(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}

static json_t *str_col(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    return v ? v : json_string("(invalid utf-8)");
}

json_t *oms_audit_row_json(const oms_dbres *r, size_t i)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, AC_TIME));
    const char *status = oms_dbres_get(r, i, AC_STATUS);
    json_t *actor = json_pack("{s:o,s:o,s:o,s:o}", "sub", str_col(oms_dbres_get(r, i, AC_SUB)), "roles",
                              json_col(oms_dbres_get(r, i, AC_ROLES)), "client_addr",
                              str_col(oms_dbres_get(r, i, AC_ADDR)), "user_agent", str_col(oms_dbres_get(r, i, AC_UA)));
    json_t *res = json_pack("{s:o,s:o,s:o}", "kind", str_col(oms_dbres_get(r, i, AC_RKIND)), "branch",
                            str_col(oms_dbres_get(r, i, AC_RBRANCH)), "id", str_col(oms_dbres_get(r, i, AC_RID)));
    json_t *o = json_object();
    json_object_set_new(o, "id", str_col(oms_dbres_get(r, i, AC_EVENT_ID)));
    json_object_set_new(o, "seq", json_integer(oms_dbres_int(r, i, AC_SEQ)));
    json_object_set_new(o, "time", json_string(t));
    json_object_set_new(o, "time_ms", json_integer(oms_dbres_int(r, i, AC_TIME)));
    json_object_set_new(o, "actor", actor);
    json_object_set_new(o, "action", str_col(oms_dbres_get(r, i, AC_ACTION)));
    json_object_set_new(o, "resource", res);
    json_object_set_new(o, "outcome", str_col(oms_dbres_get(r, i, AC_OUTCOME)));
    json_object_set_new(o, "status", status ? json_integer(strtol(status, NULL, 10)) : json_null());
    json_object_set_new(o, "request_id", str_col(oms_dbres_get(r, i, AC_REQUEST_ID)));
    json_object_set_new(o, "method", str_col(oms_dbres_get(r, i, AC_METHOD)));
    json_object_set_new(o, "route", str_col(oms_dbres_get(r, i, AC_ROUTE)));
    json_object_set_new(o, "issue_keys", json_col(oms_dbres_get(r, i, AC_ISSUES)));
    json_object_set_new(o, "override_id", str_col(oms_dbres_get(r, i, AC_OVERRIDE)));
    json_object_set_new(o, "commit_id", str_col(oms_dbres_get(r, i, AC_COMMIT)));
    json_object_set_new(o, "before_hash", str_col(oms_dbres_get(r, i, AC_BEFORE)));
    json_object_set_new(o, "after_hash", str_col(oms_dbres_get(r, i, AC_AFTER)));
    json_object_set_new(o, "changed_paths", json_col(oms_dbres_get(r, i, AC_PATHS)));
    json_object_set_new(o, "detail", json_col(oms_dbres_get(r, i, AC_DETAIL)));
    json_object_set_new(o, "prev_hash", str_col(oms_dbres_get(r, i, AC_PREV_HASH)));
    json_object_set_new(o, "hash", str_col(oms_dbres_get(r, i, AC_HASH)));
    return o;
}

/* ---- text buffers ---- */

void oms_sbuf_add(oms_sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->s = oms_xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void oms_sbuf_puts(oms_sbuf *b, const char *s) { oms_sbuf_add(b, s, strlen(s)); }

void oms_sbuf_printf(oms_sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        oms_sbuf_add(b, small, (size_t)n);
        return;
    }
    char *big = oms_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    oms_sbuf_add(b, big, (size_t)n);
    free(big);
}

void oms_sbuf_html(oms_sbuf *b, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': oms_sbuf_puts(b, "&amp;"); break;
        case '<': oms_sbuf_puts(b, "&lt;"); break;
        case '>': oms_sbuf_puts(b, "&gt;"); break;
        case '"': oms_sbuf_puts(b, "&quot;"); break;
        case '\'': oms_sbuf_puts(b, "&#39;"); break;
        default: oms_sbuf_add(b, p, 1); break;
        }
    }
}

void oms_sbuf_csv(oms_sbuf *b, const char *s)
{
    if (!s)
        return;
    bool formula = strchr("=+-@\t\r", s[0]) && s[0];
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        oms_sbuf_add(b, "\"", 1);
    if (formula)
        oms_sbuf_add(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            oms_sbuf_add(b, "\"", 1);
        oms_sbuf_add(b, p, 1);
    }
    if (quote)
        oms_sbuf_add(b, "\"", 1);
}
