/* Option parsing for the client's commands: "--name VALUE", "--name=VALUE",
 * short aliases, switches, positionals; "--" ends the options. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int oms_cli_usage(const char *text)
{
    fprintf(stderr, "usage: %s\n", text);
    return OMS_CLI_USAGE;
}

static const oms_cli_opt *find(const oms_cli_opt *opts, const char *a, size_t n)
{
    for (size_t i = 0; opts[i].name; i++) {
        if (strlen(opts[i].name) == n && !strncmp(opts[i].name, a, n))
            return &opts[i];
        if (opts[i].alias && strlen(opts[i].alias) == n && !strncmp(opts[i].alias, a, n))
            return &opts[i];
    }
    return NULL;
}

int oms_cli_parse(oms_cli *c, int argc, char **argv, const oms_cli_opt *opts, const char **pos, size_t npos_max,
                  size_t *npos)
{
    size_t np = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            if (np == npos_max) {
                fprintf(stderr, "oms: unexpected argument \"%s\"\n", a);
                return OMS_CLI_USAGE;
            }
            pos[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!strcmp(a, "--json")) {
            c->json = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const oms_cli_opt *o = find(opts, a, n);
        if (!o) {
            fprintf(stderr, "oms: unknown option %.*s\n", (int)n, a);
            return OMS_CLI_USAGE;
        }
        if (o->flag) {
            if (eq) {
                fprintf(stderr, "oms: %s takes no value\n", o->name);
                return OMS_CLI_USAGE;
            }
            *o->flag = true;
            continue;
        }
        if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            fprintf(stderr, "oms: %s needs a value\n", o->name);
            return OMS_CLI_USAGE;
        }
    }
    if (npos)
        *npos = np;
    return OMS_CLI_OK;
}
