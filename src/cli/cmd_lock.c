/* oms lock list [--branch B] [--holder H]
 *      lock acquire --branch B [--resource KIND/NAME | --resource-type KIND | --whole-branch]
 *           [--kind manual] [--reason R] [--ttl S] [--heartbeat S]
 *      lock heartbeat ID [--percent P] [--phase X] [--message M]
 *      lock release ID [--issue KEY] [--reason R]   (SPEC §7) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

static void lock_row(oms_cli_table *t, const json_t *l)
{
    char res[300];
    const char *scope = oms_cli_str(l, "scope");
    if (!strcmp(scope, "branch"))
        snprintf(res, sizeof res, "(whole branch)");
    else if (!strcmp(scope, "resource_type"))
        snprintf(res, sizeof res, "%s/*", oms_cli_str(l, "resource_type"));
    else
        snprintf(res, sizeof res, "%s/%s", oms_cli_str(l, "resource_type"), oms_cli_str(l, "resource_id"));
    char pct[16] = "";
    const json_t *p = json_object_get(json_object_get(l, "progress"), "percent");
    if (json_is_number(p))
        snprintf(pct, sizeof pct, "%.0f%%", json_number_value(p));
    const char *row[] = {oms_cli_str(l, "id"), oms_cli_str(l, "branch"), res, oms_cli_str(l, "kind"),
                         oms_cli_str(l, "holder"), oms_cli_str(l, "expires_at"), pct, oms_cli_str(l, "reason")};
    oms_cli_table_row(t, row);
}

static int show(oms_cli *c, const char *what, const oms_cli_resp *r, bool list)
{
    if (r->status < 200 || r->status >= 300)
        return oms_cli_problem(c, what, r);
    if (c->json) {
        if (r->json)
            oms_cli_print_json(r->json);
        return OMS_CLI_OK;
    }
    if (!r->json) {
        printf("%s: done\n", what);
        return OMS_CLI_OK;
    }
    static const char *const head[] = {"ID", "BRANCH", "RESOURCE", "KIND", "HOLDER", "EXPIRES", "PROGRESS", "REASON"};
    oms_cli_table *t = oms_cli_table_new(c, head, 8);
    if (list) {
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(r->json, "items"), i, l) lock_row(t, l);
    } else {
        lock_row(t, r->json);
    }
    oms_cli_table_print(t);
    oms_cli_table_free(t);
    return OMS_CLI_OK;
}

/* One request and its display; `body` is stolen. */
static int call(oms_cli *c, const char *what, const char *method, char *path, json_t *body, const char *issue,
                bool list)
{
    char *ih = issue ? oms_xasprintf("X-Issue-ID: %s", issue) : NULL;
    const char *headers[] = {ih, NULL};
    oms_cli_resp r = {0};
    int code = oms_cli_request(c, method, path, body, headers, &r);
    if (!code)
        code = show(c, what, &r, list);
    oms_cli_resp_clear(&r);
    json_decref(body);
    free(path);
    free(ih);
    return code;
}

static json_t *num_or_null(const char *s)
{
    char *end = NULL;
    double v = s ? strtod(s, &end) : 0;
    return s && end && !*end && end != s ? json_real(v) : NULL;
}

int oms_cli_cmd_lock(oms_cli *c, int argc, char **argv)
{
    static const char use[] =
        "oms lock list [--branch B] | acquire --branch B [--resource KIND/NAME | --resource-type KIND | "
        "--whole-branch] [--kind K] [--reason R] [--ttl S] [--heartbeat S] | heartbeat ID [--percent P] "
        "[--phase X] [--message M] | release ID [--issue KEY] [--reason R]";
    const char *branch = NULL, *holder = NULL, *resource = NULL, *rtype = NULL, *kind = "manual", *reason = NULL;
    const char *ttl = NULL, *hb = NULL, *percent = NULL, *phase = NULL, *message = NULL, *issue = NULL, *pos[2];
    bool whole = false;
    size_t np = 0;
    oms_cli_opt opts[] = {{"--branch", "-b", &branch, NULL},     {"--holder", NULL, &holder, NULL},
                          {"--resource", NULL, &resource, NULL}, {"--resource-type", NULL, &rtype, NULL},
                          {"--kind", NULL, &kind, NULL},         {"--reason", NULL, &reason, NULL},
                          {"--ttl", NULL, &ttl, NULL},           {"--heartbeat", NULL, &hb, NULL},
                          {"--percent", NULL, &percent, NULL},   {"--phase", NULL, &phase, NULL},
                          {"--message", "-m", &message, NULL},   {"--issue", NULL, &issue, NULL},
                          {"--whole-branch", NULL, NULL, &whole}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 2, &np);
    if (code)
        return code;
    if (np == 1 && !strcmp(pos[0], "list")) {
        char *b = branch ? oms_cli_escape(branch) : NULL, *h = holder ? oms_cli_escape(holder) : NULL;
        char *path = oms_xasprintf("/api/v1/locks?limit=1000%s%s%s%s", b ? "&branch=" : "", b ? b : "",
                                   h ? "&holder=" : "", h ? h : "");
        free(b);
        free(h);
        return call(c, "lock list", "GET", path, NULL, NULL, true);
    }
    if (np == 1 && !strcmp(pos[0], "acquire") && branch) {
        json_t *body = json_pack("{s:s,s:s}", "branch", branch, "kind", kind);
        const char *slash = resource ? strchr(resource, '/') : NULL;
        if (!body || (resource && !slash) || (!!resource + !!rtype + whole) > 1) {
            json_decref(body);
            return oms_cli_usage(use);
        }
        if (whole) {
            json_object_set_new(body, "scope", json_string("branch"));
        } else if (rtype) {
            json_object_set_new(body, "scope", json_string("resource_type"));
            json_object_set_new(body, "resource_type", json_string(rtype));
        } else if (resource) {
            json_object_set_new(body, "scope", json_string("resource"));
            json_object_set_new(body, "resource_type", json_stringn(resource, (size_t)(slash - resource)));
            json_object_set_new(body, "resource_id", json_string(slash + 1));
        } else {
            json_decref(body);
            return oms_cli_usage(use);
        }
        if (reason)
            json_object_set_new(body, "reason", json_string(reason));
        if (ttl)
            json_object_set_new(body, "ttl_seconds", json_integer(atoll(ttl)));
        if (hb)
            json_object_set_new(body, "heartbeat_seconds", json_integer(atoll(hb)));
        return call(c, "lock acquire", "POST", oms_xstrdup("/api/v1/locks"), body, NULL, false);
    }
    if (np == 2 && (!strcmp(pos[0], "heartbeat") || !strcmp(pos[0], "release"))) {
        char *id = oms_cli_escape(pos[1]);
        json_t *body = NULL;
        char *path;
        if (pos[0][0] == 'h') {
            json_t *prog = json_object();
            json_t *p = num_or_null(percent);
            if (p)
                json_object_set_new(prog, "percent", p);
            if (phase)
                json_object_set_new(prog, "phase", json_string(phase));
            if (message)
                json_object_set_new(prog, "message", json_string(message));
            body = json_object_size(prog) ? json_pack("{s:o}", "progress", prog) : (json_decref(prog), json_object());
            path = oms_xasprintf("/api/v1/locks/%s/heartbeat", id);
            free(id);
            return call(c, "lock heartbeat", "POST", path, body, NULL, false);
        }
        if (reason)
            body = json_pack("{s:s}", "reason", reason);
        path = oms_xasprintf("/api/v1/locks/%s", id);
        free(id);
        return call(c, "lock release", "DELETE", path, body, issue, false);
    }
    return oms_cli_usage(use);
}
