/* Request accessors over libmicrohttpd, and the request's context for
 * domain code: the values the route and headers carry, parsed once. */
#include "http/request.h"

#include <microhttpd.h>
#include <string.h>

#include "http/app.h"
#include "http/params.h"
#include "http/routes.h"
#include "util/encoding.h"

const char *oms_req_header(oms_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *oms_req_query(oms_request *r, const char *name)
{
    if (!r->raw_query)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = r->raw_query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == nlen && strncmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = eq ? len - klen - 1 : 0;
            /* '+' means space in query strings */
            char *tmp = oms_arena_strndup(r->arena, v, vlen);
            for (char *q = tmp; *q; q++)
                if (*q == '+')
                    *q = ' ';
            oms_error err;
            return oms_pct_decode(tmp, vlen, r->arena, NULL, &err);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}


/* The route parameter named `name` ("{branch}"), decoded, or NULL. */
static const char *route_param(const oms_request *r, const char *name)
{
    if (!r->route)
        return NULL;
    size_t nlen = strlen(name), k = 0;
    for (const char *p = r->route->pattern; *p;) {
        if (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len && p[0] == '{') {
            if (len == nlen && strncmp(p, name, nlen) == 0)
                return k < r->nparams ? r->params[k] : NULL;
            k++;
        }
        p += len;
    }
    return NULL;
}

static void ctx_free_extra(void *p)
{
    oms_ctx *ctx = p;
    json_decref(ctx->problem_extra);
    ctx->problem_extra = NULL;
}

oms_ctx *oms_req_ctx(oms_request *r)
{
    oms_ctx *c = &r->ctx;
    if (!c->arena) { /* first call: what never changes, and the cleanup */
        c->arena = r->arena;
        c->store = r->app ? r->app->store : NULL;
        c->cfg = r->app ? r->app->cfg : NULL;
        c->request_id = r->request_id;
        c->client_addr = r->client_addr;
        c->user_agent = r->user_agent;
        c->method = r->method;
        oms_arena_on_cleanup(r->arena, ctx_free_extra, c);
    }
    c->principal = r->authenticated ? &r->principal : NULL;
    c->sub = r->authenticated ? r->principal.sub : NULL;
    c->roles = r->authenticated ? (const char *const *)r->principal.roles : NULL;
    c->nroles = r->authenticated ? r->principal.nroles : 0;
    c->route = r->route ? r->route->pattern : NULL;
    c->route_action = r->route ? r->route->audit_action : NULL;
    c->branch = route_param(r, "{branch}");
    c->kind_segment = route_param(r, "{kind}");
    c->api_name = route_param(r, "{api_name}");
    c->touches = r->route ? r->route->touches : OMS_TOUCH_UNSET;
    c->id = route_param(r, "{id}");
    if (!c->id)
        c->id = route_param(r, "{key}");
    c->body = r->json;
    if (r->conn) {
        c->lock_id = oms_req_header(r, "X-Lock-ID");
        c->if_match = oms_req_etag(r, "If-Match");
        c->if_none_match = oms_req_etag(r, "If-None-Match");
    }
    return c;
}
