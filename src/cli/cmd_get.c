/* oms get KIND/NAME [--branch B] [--at REF] [--format yaml|json], and
 * oms search QUERY [--branch B] [--limit N] [--kinds K,...]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

int oms_cli_cmd_get(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms get KIND/NAME [--branch B] [--at REF] [--format yaml|json]";
    const char *branch = "main", *at = NULL, *format = NULL, *pos[1];
    size_t np = 0;
    oms_cli_opt opts[] = {{"--branch", "-b", &branch, NULL}, {"--at", NULL, &at, NULL},
                          {"--format", NULL, &format, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 1, &np);
    if (code)
        return code;
    const char *slash = np == 1 ? strchr(pos[0], '/') : NULL;
    if (!slash || (format && strcmp(format, "yaml") && strcmp(format, "json")))
        return oms_cli_usage(use);
    char *kind = oms_xstrndup(pos[0], (size_t)(slash - pos[0]));
    if (!oms_cli_is_kind(kind)) {
        fprintf(stderr, "oms: get: unknown kind \"%s\" (object-types, link-types, action-types, function-types, "
                        "interfaces, shared-properties)\n", kind);
        free(kind);
        return OMS_CLI_USAGE;
    }
    char *b = oms_cli_escape(branch), *n = oms_cli_escape(slash + 1), *a = at ? oms_cli_escape(at) : NULL;
    char *path = oms_xasprintf("/api/v1/schemas/%s/%s/%s%s%s", b, kind, n, a ? "?at=" : "", a ? a : "");
    oms_cli_resp r = {0};
    if ((code = oms_cli_request(c, "GET", path, NULL, NULL, &r)))
        goto cleanup;
    if (r.status != 200) {
        code = oms_cli_problem(c, "get", &r);
        goto cleanup;
    }
    if (at && (code = oms_cli_check_at(c, "get", at, r.commit)))
        goto cleanup;
    code = OMS_CLI_FAILED;
    if (c->json || (format && !strcmp(format, "json"))) {
        oms_cli_print_json(r.json);
    } else {
        json_t *doc = json_deep_copy(r.json);
        json_object_del(doc, "meta");
        char *y = doc ? oms_cli_yaml_dump(doc) : NULL;
        json_decref(doc);
        if (!y)
            goto cleanup;
        fputs(y, stdout);
        free(y);
    }
    code = OMS_CLI_OK;
cleanup:
    oms_cli_resp_clear(&r);
    free(kind);
    free(b);
    free(n);
    free(a);
    free(path);
    return code;
}

int oms_cli_cmd_search(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms search QUERY [--branch B] [--limit N] [--kinds K,...]";
    const char *branch = "main", *limit = "20", *kinds = NULL, *pos[1];
    size_t np = 0;
    oms_cli_opt opts[] = {{"--branch", "-b", &branch, NULL}, {"--limit", "-n", &limit, NULL},
                          {"--kinds", NULL, &kinds, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 1, &np);
    if (code)
        return code;
    if (np != 1)
        return oms_cli_usage(use);
    char *b = oms_cli_escape(branch), *q = oms_cli_escape(pos[0]), *l = oms_cli_escape(limit);
    char *k = kinds ? oms_cli_escape(kinds) : NULL;
    char *path = oms_xasprintf("/api/v1/search/%s?q=%s&limit=%s%s%s", b, q, l, k ? "&kinds=" : "", k ? k : "");
    oms_cli_resp r = {0};
    if ((code = oms_cli_request(c, "GET", path, NULL, NULL, &r)))
        goto cleanup;
    if (r.status != 200) {
        code = oms_cli_problem(c, "search", &r);
        goto cleanup;
    }
    if (c->json) {
        oms_cli_print_json(r.json);
    } else {
        static const char *const head[] = {"RESOURCE", "DISPLAY NAME", "STATUS", "MATCH"};
        oms_cli_table *t = oms_cli_table_new(c, head, 4);
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(r.json, "items"), i, it) {
            const char *row[] = {oms_cli_str(it, "resource"), oms_cli_str(it, "display_name"),
                                 oms_cli_str(it, "status"), oms_cli_str(it, "match")};
            if (oms_cli_table_row(t, row))
                break;
        }
        oms_cli_table_print(t);
        oms_cli_table_free(t);
    }
    code = OMS_CLI_OK;
cleanup:
    oms_cli_resp_clear(&r);
    free(b);
    free(q);
    free(l);
    free(k);
    free(path);
    return code;
}
