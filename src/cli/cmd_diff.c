/* oms diff A B: what changed from ref A to ref B (branches, commits or
 * tags), per resource with its field-level changes and breaking flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

static void show(oms_cli *c, const json_t *d)
{
    size_t i, nbreaking = 0;
    const json_t *ch;
    char s1[16], s2[16];
    printf("diff %s..%s\n", oms_cli_short(oms_cli_str(d, "from"), s1), oms_cli_short(oms_cli_str(d, "to"), s2));
    json_array_foreach(json_object_get(d, "changes"), i, ch) {
        const char *what = oms_cli_str(ch, "change");
        bool brk = json_is_true(json_object_get(ch, "breaking"));
        nbreaking += brk;
        const char *sym = !strcmp(what, "added") ? "+" : !strcmp(what, "removed") ? "-" : "~";
        const char *col = *sym == '+' ? "32" : *sym == '-' ? "31" : "33";
        printf("%s%s %-9s%s %s%s%s%s\n", oms_cli_paint(c, col), sym, what, oms_cli_reset(c), oms_cli_str(ch, "resource"),
               brk ? "  " : "", brk ? "BREAKING" : "", "");
        size_t j;
        const json_t *f;
        json_array_foreach(json_object_get(ch, "fields"), j, f) {
            const char *path = oms_cli_str(f, "path");
            if (!*path)
                continue; /* the whole resource: the line above says it */
            printf("    %-8s %s%s\n", oms_cli_str(f, "op"), path,
                   json_is_true(json_object_get(f, "breaking")) ? "  BREAKING" : "");
        }
    }
    printf("%zu changed resources, %zu breaking\n", json_array_size(json_object_get(d, "changes")), nbreaking);
}

int oms_cli_cmd_diff(oms_cli *c, int argc, char **argv)
{
    const char *pos[2];
    size_t np = 0;
    int code = oms_cli_parse(c, argc, argv, (oms_cli_opt[]){{0}}, pos, 2, &np);
    if (code)
        return code;
    if (np != 2)
        return oms_cli_usage("oms diff FROM TO   (branches, commits or tags)");
    char *f = oms_cli_escape(pos[0]), *t = oms_cli_escape(pos[1]);
    char *path = oms_xasprintf("/api/v1/diff?from=%s&to=%s", f, t);
    oms_cli_resp r = {0};
    if (!(code = oms_cli_request(c, "GET", path, NULL, NULL, &r))) {
        if (r.status != 200)
            code = oms_cli_problem(c, "diff", &r);
        else if (c->json)
            oms_cli_print_json(r.json);
        else
            show(c, r.json);
    }
    oms_cli_resp_clear(&r);
    free(f);
    free(t);
    free(path);
    return code;
}
