#include "http/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

const char *const oms_kind_segments[] = {
    "object-types", "link-types", "action-types", "function-types", "interfaces", "shared-properties",
};
const size_t oms_kind_segments_count = sizeof oms_kind_segments / sizeof oms_kind_segments[0];

typedef enum { SEG_LITERAL, SEG_BRANCH, SEG_API_NAME, SEG_ID, SEG_KIND, SEG_NAME, SEG_FILE } seg_type;

typedef struct {
    seg_type type;
    const char *literal;
    size_t len;
} compiled_seg;

typedef struct {
    const oms_route *route;
    compiled_seg seg[OMS_MAX_SEGMENTS];
    size_t nseg;
} compiled_route;

struct oms_route_table {
    compiled_route *routes;
    size_t n;
};

/* The only paths that may be public: an exact list, never a prefix. The
 * console's static files (/ui, /ui/{file}) are the one exception, by exact
 * pattern: they hold no data, and every API call the console makes carries
 * the user's token (docs/security.md, tests/unit/test_ui_routes.c). */
static const char *const k_public_paths[] = {"/health", "/ready", "/ui", "/ui/{file}"};

static int compile(compiled_route *cr, const oms_route *r, oms_error *err)
{
    cr->route = r;
    cr->nseg = 0;
    const char *p = r->pattern;
    if (p[0] != '/')
        return oms_err_set(err, OMS_ECONFIG, "route %s %s: pattern must start with /", r->method, p);
    p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || cr->nseg == OMS_MAX_SEGMENTS)
            return oms_err_set(err, OMS_ECONFIG, "route %s %s: bad pattern", r->method, r->pattern);
        compiled_seg *s = &cr->seg[cr->nseg++];
        s->literal = p;
        s->len = len;
        if (p[0] != '{') {
            s->type = SEG_LITERAL;
        } else if (len == 8 && strncmp(p, "{branch}", 8) == 0) {
            s->type = SEG_BRANCH;
        } else if (len == 10 && strncmp(p, "{api_name}", 10) == 0) {
            s->type = SEG_API_NAME;
        } else if (len == 4 && strncmp(p, "{id}", 4) == 0) {
            s->type = SEG_ID;
        } else if (len == 6 && strncmp(p, "{kind}", 6) == 0) {
            s->type = SEG_KIND;
        } else if ((len == 5 && strncmp(p, "{key}", 5) == 0) || (len == 6 && strncmp(p, "{name}", 6) == 0)) {
            s->type = SEG_NAME;
        } else if (len == 6 && strncmp(p, "{file}", 6) == 0) {
            s->type = SEG_FILE;
        } else {
            return oms_err_set(err, OMS_ECONFIG, "route %s %s: unknown parameter %.*s", r->method,
                               r->pattern, (int)len, p);
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return OMS_OK;
}

static int check_entry(const oms_route *r, oms_error *err)
{
    if (!r->method || !r->pattern || !r->handler)
        return oms_err_set(err, OMS_ECONFIG, "route %s %s: incomplete entry", r->method ? r->method : "?",
                           r->pattern ? r->pattern : "?");
    if (r->perm == OMS_PERM_UNSET || r->perm >= OMS_PERM__COUNT)
        return oms_err_set(err, OMS_ECONFIG, "route %s %s declares no permission", r->method, r->pattern);
    if (r->perm == OMS_PERM_PUBLIC) {
        bool ok = false;
        for (size_t i = 0; i < sizeof k_public_paths / sizeof k_public_paths[0]; i++)
            ok = ok || (strcmp(r->pattern, k_public_paths[i]) == 0 && strcmp(r->method, "GET") == 0);
        if (!ok)
            return oms_err_set(err, OMS_ECONFIG, "route %s %s may not be public", r->method, r->pattern);
    }
    if (r->answer_inline && (strcmp(r->method, "GET") != 0 || r->change || r->audit_action ||
                             r->perm == OMS_PERM_PUBLIC || r->perm == OMS_PERM_AUTHENTICATED ||
                             !strstr(r->pattern, "{branch}")))
        return oms_err_set(err, OMS_ECONFIG, "route %s %s may not be answered on the event loop", r->method,
                           r->pattern);
    if (r->change && !r->audit_action)
        return oms_err_set(err, OMS_ECONFIG, "change route %s %s has no audit action", r->method,
                           r->pattern);
    if (r->change && (r->touches == OMS_TOUCH_UNSET || r->touches > OMS_TOUCH_BODY))
        return oms_err_set(err, OMS_ECONFIG, "change route %s %s declares no key spec (touches)", r->method,
                           r->pattern);
    if (r->authorize_in_change && !r->audit_action)
        return oms_err_set(err, OMS_ECONFIG, "route %s %s decides in a change transaction but is no change",
                           r->method, r->pattern);
    if (r->touches == OMS_TOUCH_RESOURCE && (!strstr(r->pattern, "/{kind}/") || !strstr(r->pattern, "/{api_name}")))
        return oms_err_set(err, OMS_ECONFIG, "route %s %s touches {kind}/{api_name} but its pattern lacks them",
                           r->method, r->pattern);
    return OMS_OK;
}

int oms_routes_new(oms_route_table **out, const oms_route *routes, size_t n, oms_error *err)
{
    oms_route_table *t = oms_xcalloc(1, sizeof *t);
    t->routes = oms_xcalloc(n ? n : 1, sizeof *t->routes);
    int rc = OMS_OK;
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_entry(&routes[i], err)) || (rc = compile(&t->routes[i], &routes[i], err)))
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (strcmp(routes[j].method, routes[i].method) == 0 &&
                strcmp(routes[j].pattern, routes[i].pattern) == 0) {
                rc = oms_err_set(err, OMS_ECONFIG, "route %s %s registered twice", routes[i].method,
                                 routes[i].pattern);
                goto fail;
            }
        t->n++;
    }
    *out = t;
    return OMS_OK;
fail:
    oms_routes_free(t);
    return rc;
}

void oms_routes_free(oms_route_table *t)
{
    if (!t)
        return;
    free(t->routes);
    free(t);
}

size_t oms_routes_count(const oms_route_table *t) { return t->n; }
const oms_route *oms_routes_at(const oms_route_table *t, size_t i) { return t->routes[i].route; }

static bool is_kind(const char *s)
{
    for (size_t i = 0; i < oms_kind_segments_count; i++)
        if (strcmp(s, oms_kind_segments[i]) == 0)
            return true;
    return false;
}

/* Raw-segment match; parameters are not decoded here. */
static bool shape_matches(const compiled_route *cr, const oms_path *p)
{
    if (cr->nseg != p->nseg)
        return false;
    for (size_t i = 0; i < cr->nseg; i++) {
        const compiled_seg *s = &cr->seg[i];
        if (s->type == SEG_LITERAL) {
            if (strlen(p->seg[i]) != s->len || strncmp(p->seg[i], s->literal, s->len) != 0)
                return false;
        } else if (s->type == SEG_KIND && !is_kind(p->seg[i])) {
            return false;
        }
    }
    return true;
}

static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* A console file name: ^[a-z0-9][a-z0-9._-]{0,63}$ (no '/', no "..": flat). */
static bool file_name_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 64 || d[0] == '.' || d[0] == '-' || d[0] == '_' || strstr(d, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9') || d[i] == '.' || d[i] == '_' ||
              d[i] == '-'))
            return false;
    return true;
}

/* Decodes each parameter once and checks its grammar. */
static int bind_params(const compiled_route *cr, oms_request *req, oms_error *err)
{
    req->nparams = 0;
    for (size_t i = 0; i < cr->nseg; i++) {
        const compiled_seg *s = &cr->seg[i];
        if (s->type == SEG_LITERAL)
            continue;
        char *d = oms_pct_decode(req->path.seg[i], strlen(req->path.seg[i]), req->arena, NULL, err);
        if (!d)
            return err->code;
        bool ok = true;
        const char *what = "parameter";
        switch (s->type) {
        case SEG_BRANCH: ok = oms_valid_branch_name(d); what = "branch name"; break;
        case SEG_API_NAME: ok = oms_valid_api_name(d); what = "api_name"; break;
        case SEG_ID: ok = oms_valid_opaque_id(d); what = "id"; break;
        case SEG_NAME: ok = strlen(d) > 0 && strlen(d) <= 128; what = "key"; break;
        case SEG_FILE: ok = file_name_ok(d); what = "file name"; break;
        default: break;
        }
        if (!ok)
            return oms_err_set(err, OMS_EINVAL, "invalid %s in path", what);
        req->params[req->nparams++] = d;
    }
    return OMS_OK;
}

oms_route_match oms_routes_match(const oms_route_table *t, oms_request *req, char *allow,
                                 size_t allow_cap, oms_error *err)
{
    bool shape = false;
    size_t alen = 0;
    if (allow_cap)
        allow[0] = '\0';
    for (size_t i = 0; i < t->n; i++) {
        const compiled_route *cr = &t->routes[i];
        if (!shape_matches(cr, &req->path))
            continue;
        if (method_matches(cr->route->method, req->method)) {
            req->route = cr->route;
            oms_err_clear(err);
            bind_params(cr, req, err);
            return OMS_ROUTE_FOUND;
        }
        shape = true;
        if (!strstr(allow, cr->route->method)) {
            int n = snprintf(allow + alen, allow_cap - alen, "%s%s", alen ? ", " : "", cr->route->method);
            if (n > 0 && (size_t)n < allow_cap - alen)
                alen += (size_t)n;
        }
    }
    return shape ? OMS_ROUTE_WRONG_METHOD : OMS_ROUTE_NONE;
}
