/* oms branch list | create NAME [--from REF] | delete NAME --issue KEY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

static int list(oms_cli *c)
{
    json_t *all = json_array();
    char *cursor = NULL, *path = NULL;
    int code = OMS_CLI_FAILED;
    oms_cli_resp r = {0};
    if (!all)
        goto cleanup;
    for (;;) {
        char *cur = cursor ? oms_cli_escape(cursor) : NULL;
        path = oms_xasprintf("/api/v1/branches?limit=1000%s%s", cur ? "&cursor=" : "", cur ? cur : "");
        free(cur);
        if ((code = oms_cli_request(c, "GET", path, NULL, NULL, &r)))
            goto cleanup;
        if (r.status != 200) {
            code = oms_cli_problem(c, "branch list", &r);
            goto cleanup;
        }
        json_array_extend(all, json_object_get(r.json, "items"));
        const char *next = json_string_value(json_object_get(r.json, "next_cursor"));
        free(cursor);
        cursor = next ? oms_xstrdup(next) : NULL;
        free(path);
        path = NULL;
        oms_cli_resp_clear(&r);
        if (!cursor)
            break;
    }
    if (c->json) {
        oms_cli_print_json(all);
    } else {
        static const char *const head[] = {"NAME", "HEAD", "PROTECTED", "CREATED BY", "UPDATED"};
        oms_cli_table *t = oms_cli_table_new(c, head, 5);
        size_t i;
        json_t *b;
        json_array_foreach(all, i, b) {
            char sh[16];
            const char *row[] = {oms_cli_str(b, "name"), oms_cli_short(oms_cli_str(b, "head"), sh),
                                 json_is_true(json_object_get(b, "protected")) ? "yes" : "no",
                                 oms_cli_str(b, "created_by"), oms_cli_str(b, "updated_at")};
            if (oms_cli_table_row(t, row))
                break;
        }
        oms_cli_table_print(t);
        oms_cli_table_free(t);
    }
    code = OMS_CLI_OK;
cleanup:
    oms_cli_resp_clear(&r);
    free(cursor);
    free(path);
    json_decref(all);
    return code;
}

static int create(oms_cli *c, const char *name, const char *from)
{
    json_t *body = json_pack("{s:s,s:s}", "name", name, "from", from ? from : "main");
    oms_cli_resp r;
    int code = body ? oms_cli_request(c, "POST", "/api/v1/branches", body, NULL, &r) : OMS_CLI_FAILED;
    json_decref(body);
    if (code)
        return code;
    if (r.status != 201) {
        code = oms_cli_problem(c, "branch create", &r);
    } else if (c->json) {
        oms_cli_print_json(r.json);
    } else {
        printf("created branch %s at %s\n", name, oms_cli_str(r.json, "head"));
    }
    oms_cli_resp_clear(&r);
    return code;
}

static int delete(oms_cli *c, const char *name, const char *issue)
{
    char *n = oms_cli_escape(name), *path = oms_xasprintf("/api/v1/branches/%s", n);
    char *ih = issue ? oms_xasprintf("X-Issue-ID: %s", issue) : NULL;
    const char *headers[] = {ih, NULL};
    oms_cli_resp r = {0};
    int code = oms_cli_request(c, "DELETE", path, NULL, headers, &r);
    if (code)
        goto cleanup;
    if (r.status != 204)
        code = oms_cli_problem(c, "branch delete", &r);
    else if (!c->json)
        printf("deleted branch %s\n", name);
cleanup:
    oms_cli_resp_clear(&r);
    free(n);
    free(path);
    free(ih);
    return code;
}

int oms_cli_cmd_branch(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms branch list | create NAME [--from REF] | delete NAME --issue KEY";
    const char *from = NULL, *issue = NULL, *pos[2];
    size_t np = 0;
    oms_cli_opt opts[] = {{"--from", NULL, &from, NULL}, {"--issue", NULL, &issue, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 2, &np);
    if (code)
        return code;
    if (np == 1 && !strcmp(pos[0], "list"))
        return list(c);
    if (np == 2 && !strcmp(pos[0], "create"))
        return create(c, pos[1], from);
    if (np == 2 && !strcmp(pos[0], "delete"))
        return delete(c, pos[1], issue);
    return oms_cli_usage(use);
}
