/* Serves the embedded console files with strict security headers: a CSP
 * that allows only the console's own scripts and styles (no inline script,
 * no eval), no framing, no referrer, no MIME sniffing. Cache-Control is the
 * server's no-store: the files are small and change with the binary. */
#include "api/ui.h"

#include <stdio.h>
#include <string.h>

#include "api/ui_assets.h"
#include "http/app.h"

/* The origin (scheme://host[:port]) of an https URL, or "" when it is not one. */
static void origin_of(const char *url, char *out, size_t cap)
{
    out[0] = '\0';
    if (!url || strncmp(url, "https://", 8) != 0)
        return;
    size_t n = 8 + strcspn(url + 8, "/?#");
    for (size_t i = 8; i < n; i++)
        if (!((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z') ||
              (url[i] >= '0' && url[i] <= '9') || url[i] == '.' || url[i] == '-' || url[i] == ':'))
            return; /* nothing that could break out of the header */
    if (n < cap)
        snprintf(out, cap, "%.*s", (int)n, url);
}

const char *oms_ui_csp(oms_request *req)
{
    char origin[256];
    origin_of(oms_config_str(req->app->cfg, "JWT_OIDC_ISSUER"), origin, sizeof origin);
    return oms_arena_printf(req->arena,
                            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                            "connect-src 'self'%s%s; form-action 'self'%s%s; base-uri 'none'; "
                            "frame-ancestors 'none'",
                            origin[0] ? " " : "", origin, origin[0] ? " " : "", origin);
}

static void security_headers(oms_request *req)
{
    oms_resp_header(req, "Content-Security-Policy", oms_ui_csp(req));
    oms_resp_header(req, "X-Frame-Options", "DENY");
    oms_resp_header(req, "Referrer-Policy", "no-referrer");
    oms_resp_header(req, "Cross-Origin-Opener-Policy", "same-origin");
    oms_resp_header(req, "Cross-Origin-Resource-Policy", "same-origin");
}

static const oms_ui_asset *find(const char *name)
{
    for (size_t i = 0; i < oms_ui_assets_count; i++)
        if (strcmp(oms_ui_assets[i].name, name) == 0)
            return &oms_ui_assets[i];
    return NULL;
}

static int serve(oms_request *req, const oms_ui_asset *a)
{
    security_headers(req);
    return oms_resp_text(req, 200, a->content_type, (const char *)a->data, a->size);
}

/* The query an OIDC provider sends back to the redirect URI (RFC 6749 §4.1.2). */
static bool callback_query_ok(const char *q)
{
    static const char *const k_allowed[] = {"code", "state", "error", "error_description", "iss", "session_state"};
    while (q && *q) {
        size_t n = strcspn(q, "=&");
        bool ok = false;
        for (size_t i = 0; i < sizeof k_allowed / sizeof k_allowed[0]; i++)
            ok = ok || (strlen(k_allowed[i]) == n && strncmp(q, k_allowed[i], n) == 0);
        if (!ok)
            return false;
        q = strchr(q, '&');
        q = q ? q + 1 : NULL;
    }
    return true;
}

int oms_h_ui_index(oms_request *req)
{
    if (req->raw_path_len == 3) { /* "/ui": one spelling, the directory's */
        oms_resp_header(req, "Location", "/ui/");
        security_headers(req);
        return oms_resp_text(req, 308, "text/plain; charset=utf-8", "/ui/\n", 5);
    }
    if (!callback_query_ok(req->raw_query))
        return oms_resp_problem(req, OMS_EINVAL, "unknown query parameter", NULL);
    const oms_ui_asset *a = find("index.html");
    if (!a)
        return oms_resp_problem(req, OMS_ENOTFOUND, "the console is not built into this binary", NULL);
    return serve(req, a);
}

int oms_h_ui_file(oms_request *req)
{
    const char *name = req->params[0];
    if (req->raw_query)
        return oms_resp_problem(req, OMS_EINVAL, "console files take no query parameters", NULL);
    if (strcmp(name, "config.json") == 0) {
        const oms_config *c = req->app->cfg;
        const char *issuer = oms_config_str(c, "JWT_OIDC_ISSUER");
        const char *client = oms_config_str(c, "JWT_AUDIENCE");
        security_headers(req);
        return oms_resp_json(req, 200,
                             json_pack("{s:s?, s:s?}", "oidc_issuer", issuer, "oidc_client_id", issuer ? client : NULL));
    }
    const oms_ui_asset *a = strcmp(name, "index.html") == 0 ? NULL : find(name);
    if (!a)
        return oms_resp_problem(req, OMS_ENOTFOUND, "no such console file", NULL);
    return serve(req, a);
}
