/* oms tag list | create NAME --ref REF [-m MSG] | delete NAME --issue KEY
 * (SPEC §4 tags: GET/POST /api/v1/tags, GET/DELETE /api/v1/tags/{name}).
 * A REF that is not a commit id is resolved to its branch head first, so
 * the tag names the commit that was current when it was made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

static bool is_commit_id(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int resolve(oms_cli *c, const char *ref, char out[80])
{
    if (is_commit_id(ref)) {
        snprintf(out, 80, "%s", ref);
        return OMS_CLI_OK;
    }
    char *b = oms_cli_escape(ref), *path = oms_xasprintf("/api/v1/branches/%s", b);
    oms_cli_resp r = {0};
    int code = oms_cli_request(c, "GET", path, NULL, NULL, &r);
    if (!code && r.status != 200)
        code = oms_cli_problem(c, "tag", &r);
    else if (!code)
        snprintf(out, 80, "%s", oms_cli_str(r.json, "head"));
    oms_cli_resp_clear(&r);
    free(b);
    free(path);
    return code;
}

static int done(oms_cli *c, const char *what, oms_cli_resp *r, bool list)
{
    int code = OMS_CLI_OK;
    if (r->status < 200 || r->status >= 300) {
        if (r->status == 404 && !strcmp(what, "tag list"))
            fprintf(stderr, "oms: this service does not offer tags yet (GET /api/v1/tags)\n");
        code = oms_cli_problem(c, what, r);
    } else if (c->json) {
        if (r->json)
            oms_cli_print_json(r->json);
    } else if (list) {
        static const char *const head[] = {"NAME", "COMMIT", "CREATED BY", "CREATED"};
        oms_cli_table *t = oms_cli_table_new(c, head, 4);
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(r->json, "items"), i, x) {
            char sh[16];
            const char *row[] = {oms_cli_str(x, "name"), oms_cli_short(oms_cli_str(x, "commit"), sh),
                                 oms_cli_str(x, "created_by"), oms_cli_str(x, "created_at")};
            oms_cli_table_row(t, row);
        }
        oms_cli_table_print(t);
        oms_cli_table_free(t);
    } else {
        printf("%s: done\n", what);
    }
    oms_cli_resp_clear(r);
    return code;
}

int oms_cli_cmd_tag(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms tag list | create NAME --ref REF [-m MSG] | delete NAME --issue KEY";
    const char *ref = NULL, *msg = NULL, *issue = NULL, *pos[2];
    size_t np = 0;
    oms_cli_opt opts[] = {{"--ref", NULL, &ref, NULL}, {"--message", "-m", &msg, NULL},
                          {"--issue", NULL, &issue, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 2, &np);
    if (code)
        return code;
    oms_cli_resp r = {0};
    if (np == 1 && !strcmp(pos[0], "list")) {
        if ((code = oms_cli_request(c, "GET", "/api/v1/tags?limit=1000", NULL, NULL, &r)))
            return code;
        return done(c, "tag list", &r, true);
    }
    if (np == 2 && !strcmp(pos[0], "create") && ref) {
        char commit[80];
        if ((code = resolve(c, ref, commit)))
            return code;
        json_t *body = json_pack("{s:s,s:s}", "name", pos[1], "commit", commit);
        if (body && msg)
            json_object_set_new(body, "message", json_string(msg));
        code = body ? oms_cli_request(c, "POST", "/api/v1/tags", body, NULL, &r) : OMS_CLI_FAILED;
        json_decref(body);
        return code ? code : done(c, "tag create", &r, false);
    }
    if (np == 2 && !strcmp(pos[0], "delete")) {
        char *n = oms_cli_escape(pos[1]), *path = oms_xasprintf("/api/v1/tags/%s", n);
        char *ih = issue ? oms_xasprintf("X-Issue-ID: %s", issue) : NULL;
        const char *headers[] = {ih, NULL};
        code = oms_cli_request(c, "DELETE", path, NULL, headers, &r);
        free(n);
        free(path);
        free(ih);
        return code ? code : done(c, "tag delete", &r, false);
    }
    return oms_cli_usage(use);
}
