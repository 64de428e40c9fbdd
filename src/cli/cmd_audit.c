/* oms audit tail [-n N] [--follow] [--action A] [--actor SUB] [--branch B]
 * [--outcome O]: the newest audit events, oldest first; --follow keeps
 * polling (every --interval seconds) and prints new events as they come.
 * The operator's `oms audit verify|export|...` is a different command:
 * src/app/main.c hands only `oms audit tail` to the client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/alloc.h"

typedef struct {
    oms_cli *c;
    char *filters; /* "&action=...&actor=..." */
    long long last_seq;
    char last_time[64];
} tail;

static void print_event(tail *t, const json_t *e)
{
    long long seq = (long long)json_integer_value(json_object_get(e, "seq"));
    if (seq <= t->last_seq)
        return;
    t->last_seq = seq;
    snprintf(t->last_time, sizeof t->last_time, "%s", oms_cli_str(e, "time"));
    if (t->c->json) {
        char *s = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            puts(s);
        free(s);
        return;
    }
    const json_t *res = json_object_get(e, "resource");
    char where[300];
    snprintf(where, sizeof where, "%s%s%s%s%s", oms_cli_str(res, "branch"), *oms_cli_str(res, "kind") ? " " : "",
             oms_cli_str(res, "kind"), *oms_cli_str(res, "id") ? "/" : "", oms_cli_str(res, "id"));
    const char *outcome = oms_cli_str(e, "outcome");
    bool ok = !strcmp(outcome, "success");
    printf("%6lld  %s  %-12s %-26s %s%-8s%s %3lld  %s\n", seq, oms_cli_str(e, "time"),
           oms_cli_str(json_object_get(e, "actor"), "sub"), oms_cli_str(e, "action"),
           oms_cli_paint(t->c, ok ? "32" : "31"), outcome, oms_cli_reset(t->c),
           (long long)json_integer_value(json_object_get(e, "status")), where);
}

static int fetch(tail *t, const char *query, json_t **items)
{
    char *path = oms_xasprintf("/api/v1/audit?%s%s", query, t->filters);
    oms_cli_resp r = {0};
    int code = oms_cli_request(t->c, "GET", path, NULL, NULL, &r);
    free(path);
    if (!code && r.status != 200)
        code = oms_cli_problem(t->c, "audit tail", &r);
    if (!code)
        *items = json_incref(json_object_get(r.json, "items"));
    oms_cli_resp_clear(&r);
    return code;
}

static void add_filter(char **f, const char *name, const char *v)
{
    if (!v)
        return;
    char *e = oms_cli_escape(v), *n = oms_xasprintf("%s&%s=%s", *f, name, e);
    free(e);
    free(*f);
    *f = n;
}

int oms_cli_cmd_audit(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms audit tail [-n N] [--follow] [--interval S] [--action A] [--actor SUB] "
                              "[--branch B] [--outcome O]";
    const char *n = "20", *action = NULL, *actor = NULL, *branch = NULL, *outcome = NULL, *interval = "2", *pos[1];
    bool follow = false;
    size_t np = 0;
    oms_cli_opt opts[] = {{"--lines", "-n", &n, NULL},        {"--action", NULL, &action, NULL},
                          {"--actor", NULL, &actor, NULL},    {"--branch", "-b", &branch, NULL},
                          {"--outcome", NULL, &outcome, NULL}, {"--interval", NULL, &interval, NULL},
                          {"--follow", "-f", NULL, &follow},  {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 1, &np);
    if (code)
        return code;
    long lines = atol(n), every = atol(interval);
    if (np != 1 || strcmp(pos[0], "tail") || lines < 1 || lines > 1000 || every < 1)
        return oms_cli_usage(use);
    tail t = {.c = c, .filters = oms_xstrdup("")};
    json_t *items = NULL;
    char *q = NULL;
    add_filter(&t.filters, "action", action);
    add_filter(&t.filters, "actor", actor);
    add_filter(&t.filters, "branch", branch);
    add_filter(&t.filters, "outcome", outcome);
    q = oms_xasprintf("order=desc&limit=%ld", lines);
    if ((code = fetch(&t, q, &items)))
        goto cleanup;
    for (size_t i = json_array_size(items); i > 0; i--)
        print_event(&t, json_array_get(items, i - 1));
    fflush(stdout);
    while (follow) {
        sleep((unsigned)every);
        json_decref(items);
        items = NULL;
        free(q);
        char *from = oms_cli_escape(*t.last_time ? t.last_time : "1970-01-01T00:00:00Z");
        q = oms_xasprintf("order=asc&limit=1000&from=%s", from);
        free(from);
        if ((code = fetch(&t, q, &items)))
            goto cleanup;
        size_t i;
        json_t *e;
        json_array_foreach(items, i, e) print_event(&t, e);
        fflush(stdout);
    }
    code = OMS_CLI_OK;
cleanup:
    json_decref(items);
    free(q);
    free(t.filters);
    return code;
}
