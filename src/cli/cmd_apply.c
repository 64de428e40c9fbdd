/* oms apply -f DIR --branch B -m MSG --issue KEY [--dry-run] [--prune]
 *           [--confirm] [--if-match COMMIT]
 * Ontology as code: the files of DIR against the branch head. The plan
 * (creates, replaces, deletes with --prune) is computed here from canonical
 * forms, checked by the service's validate route (breaking flags, integrity)
 * and applied as one batch commit guarded by If-Match on the head the plan
 * was made against: if anyone wrote in between, nothing is applied (412). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"
#include "util/canonical.h"

#define MAX_BODY (1024 * 1024) /* the service's request body limit (SPEC §5) */

typedef struct {
    oms_cli *c;
    const char *branch, *dir, *message, *issues, *if_match;
    bool dry_run, prune, confirm;
    oms_cli_locals locals;
    json_t *server;   /* the export of the branch */
    json_t *by_name;  /* "KIND/NAME" -> its document in `server` (borrowed) */
    json_t *ops;      /* batch operations */
    long *op_local;   /* per op: index into locals, -1 for deletes */
    char head[80];
    char *path_b;     /* escaped branch */
} apply;

static int index_server(apply *a)
{
    if (!(a->by_name = json_object()))
        return -1;
    for (size_t k = 0; oms_cli_kinds[k]; k++) {
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(a->server, oms_cli_kinds[k]), i, d) {
            char *key = oms_xasprintf("%s/%s", oms_cli_kinds[k], oms_cli_str(d, "api_name"));
            int rc = json_object_set(a->by_name, key, d);
            free(key);
            if (rc)
                return -1;
        }
    }
    return 0;
}

static bool same(const json_t *x, const json_t *y)
{
    char *cx = oms_canonical_dump(x), *cy = oms_canonical_dump(y);
    bool eq = cx && cy && !strcmp(cx, cy);
    free(cx);
    free(cy);
    return eq;
}

static int add_op(apply *a, json_t *op, long local)
{
    size_t n = json_array_size(a->ops);
    long *nl = oms_xrealloc(a->op_local, (n + 1) * sizeof *nl);
    a->op_local = nl;
    if (!op)
        return -1;
    nl[n] = local;
    return json_array_append_new(a->ops, op);
}

/* Creates and replaces for files that differ; deletes (--prune) for what the
 * directory no longer has. */
static int compute(apply *a)
{
    json_t *seen = json_object();
    int rc = -1;
    if (!seen)
        return -1;
    for (size_t i = 0; i < a->locals.n; i++) {
        oms_cli_local *l = &a->locals.items[i];
        char *key = oms_xasprintf("%s/%s", l->kind, l->name);
        json_t *s = json_object_get(a->by_name, key);
        json_t *op = NULL;
        if (!s)
            op = json_pack("{s:s,s:s,s:O}", "op", "create", "kind", l->kind, "document", l->doc);
        else if (!same(s, l->doc))
            op = json_pack("{s:s,s:s,s:s,s:O}", "op", "replace", "kind", l->kind, "api_name", l->name, "document",
                           l->doc);
        if (json_object_set_new(seen, key, json_true()) || ((s == NULL || op) && add_op(a, op, (long)i))) {
            free(key);
            goto cleanup;
        }
        free(key);
    }
    for (size_t k = 0; a->prune && oms_cli_kinds[k]; k++) {
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(a->server, oms_cli_kinds[k]), i, d) {
            char *key = oms_xasprintf("%s/%s", oms_cli_kinds[k], oms_cli_str(d, "api_name"));
            bool kept = json_object_get(seen, key);
            free(key);
            if (!kept && add_op(a, json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", oms_cli_kinds[k], "api_name",
                                              oms_cli_str(d, "api_name")), -1))
                goto cleanup;
        }
    }
    rc = 0;
cleanup:
    json_decref(seen);
    return rc;
}

static json_t *issue_list(const char *issues)
{
    json_t *l = json_array();
    char *copy = issues ? oms_xstrdup(issues) : NULL;
    for (char *save = NULL, *t = copy ? strtok_r(copy, ", ", &save) : NULL; l && t; t = strtok_r(NULL, ", ", &save))
        json_array_append_new(l, json_string(t));
    free(copy);
    return l;
}

/* "/operations/3/document/properties/0/type" -> the file and line. */
static void print_error(apply *a, const json_t *e)
{
    const char *path = oms_cli_str(e, "path"), *msg = oms_cli_str(e, "message");
    const char *field = oms_cli_str(e, "field");
    unsigned long idx;
    int used = 0;
    if (sscanf(path, "/operations/%lu%n", &idx, &used) == 1 && idx < json_array_size(a->ops) &&
        a->op_local[idx] >= 0) {
        oms_cli_local *l = &a->locals.items[a->op_local[idx]];
        const char *rest = path + used;
        if (!strncmp(rest, "/document", 9))
            rest += 9;
        char *ptr = *field ? oms_xasprintf("%s/%s", rest, field) : oms_xstrdup(rest);
        int line = oms_cli_lines_find(l->lines, ptr);
        free(ptr);
        fprintf(stderr, "%s:%d: %s%s%s (%s)\n", l->path, line ? line : 1, msg, *field ? " " : "", field,
                *rest ? rest : "/");
        return;
    }
    const char *code = oms_cli_str(e, "code");
    fprintf(stderr, "  %s%s%s%s%s\n", *code ? code : "", *code ? ": " : "", path, *path ? ": " : "", msg);
    const json_t *detail = json_object_get(e, "detail");
    if (detail) {
        char *s = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            fprintf(stderr, "    %s\n", s);
        free(s);
    }
}

static bool is_breaking(const json_t *change) { return json_is_true(json_object_get(change, "breaking")); }

/* "KIND/NAME" -> the service's change for it (validate's answer). */
static json_t *index_changes(const json_t *changes)
{
    json_t *m = json_object();
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        if (m && json_object_set(m, oms_cli_str(ch, "resource"), ch)) {
            json_decref(m);
            return NULL;
        }
    }
    return m;
}

static const json_t *change_for(const json_t *by_resource, const char *resource)
{
    return json_object_get(by_resource, resource);
}

static char *op_resource(const json_t *op)
{
    const char *name = json_object_get(op, "api_name") ? oms_cli_str(op, "api_name")
                                                        : oms_cli_str(json_object_get(op, "document"), "api_name");
    return oms_xasprintf("%s/%s", oms_cli_str(op, "kind"), name);
}

/* Drops the operations the service says change nothing. */
static int keep_changing(apply *a, const json_t *changes)
{
    json_t *kept = json_array();
    size_t i, n = 0;
    json_t *op;
    if (!kept)
        return -1;
    json_array_foreach(a->ops, i, op) {
        char *res = op_resource(op);
        if (change_for(changes, res)) {
            json_array_append(kept, op);
            a->op_local[n++] = a->op_local[i];
        }
        free(res);
    }
    json_decref(a->ops);
    a->ops = kept;
    return 0;
}

/* The plan as people read it; as JSON entries into `plan`. */
static void show_plan(apply *a, const json_t *changes, json_t *plan, size_t *nbreaking)
{
    size_t i, counts[3] = {0};
    json_t *op;
    *nbreaking = 0;
    if (!a->c->json)
        printf("plan for %s (head %s):\n", a->branch, a->head);
    json_array_foreach(a->ops, i, op) {
        const char *what = oms_cli_str(op, "op");
        char *res = op_resource(op);
        const json_t *ch = change_for(changes, res);
        bool brk = ch && is_breaking(ch);
        *nbreaking += brk;
        counts[what[0] == 'c' ? 0 : what[0] == 'r' ? 1 : 2]++;
        if (a->c->json) {
            json_array_append_new(plan, json_pack("{s:s,s:s,s:b,s:s?}", "op", what, "resource", res,
                                                  "breaking", brk, "file",
                                                  a->op_local[i] >= 0 ? a->locals.items[a->op_local[i]].path : NULL));
        } else {
            const char *sym = what[0] == 'c' ? "+" : what[0] == 'r' ? "~" : "-";
            const char *col = what[0] == 'c' ? "32" : what[0] == 'r' ? "33" : "31";
            printf("  %s%s %-8s%s %s%s%s%s\n", oms_cli_paint(a->c, col), sym, what, oms_cli_reset(a->c), res,
                   brk ? "  " : "", brk ? oms_cli_paint(a->c, "1;31") : "", brk ? "BREAKING" : "");
            if (brk)
                fputs(oms_cli_reset(a->c), stdout);
            size_t j;
            const json_t *f;
            json_array_foreach(json_object_get(ch, "fields"), j, f) {
                if (!is_breaking(f))
                    continue;
                const char *rule = oms_cli_str(f, "rule"), *why = oms_cli_str(f, "message");
                printf("      breaking: %s %s%s%s%s%s\n", *oms_cli_str(f, "path") ? oms_cli_str(f, "path") : "/",
                       oms_cli_str(f, "op"), *rule ? " [" : "", rule, *rule ? "] " : "", why);
            }
        }
        free(res);
    }
    if (!a->c->json)
        printf("%zu changes: %zu to create, %zu to replace, %zu to delete; %zu breaking\n",
               json_array_size(a->ops), counts[0], counts[1], counts[2], *nbreaking);
}

static bool confirmed(apply *a)
{
    fflush(stdout); /* the plan must be seen before the question */
    fprintf(stderr, "apply these %zu changes to %s? type \"yes\": ", json_array_size(a->ops), a->branch);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return !strcmp(line, "yes");
}

static int refused(apply *a, const char *what, const oms_cli_resp *r)
{
    if (r->status == 412) {
        fprintf(stderr, "oms: %s: %s moved since the plan was made against %s: someone else wrote to it; "
                        "nothing was applied (412). Run apply again to plan against the new head.\n",
                what, a->branch, a->head);
        return OMS_CLI_CONFLICT;
    }
    int code = oms_cli_problem(a->c, what, r);
    if (!a->c->json) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r->json, "errors"), i, e) print_error(a, e);
    }
    return code;
}

static int run(apply *a)
{
    oms_cli *c = a->c;
    oms_cli_resp r = {0};
    char *path = NULL, *body_text = NULL, *ifm = NULL;
    json_t *body = NULL, *plan = json_array(), *out = NULL, *by_res = NULL;
    size_t nerr = 0, nbreaking = 0;
    int code = oms_cli_read_dir(c, a->dir, &a->locals, &nerr);
    if (code)
        goto cleanup;
    if (nerr) {
        fprintf(stderr, "oms: apply: %zu file%s with problems; nothing applied\n", nerr, nerr == 1 ? "" : "s");
        code = OMS_CLI_FAILED;
        goto cleanup;
    }
    code = OMS_CLI_FAILED;
    if (!plan)
        goto cleanup;
    a->path_b = oms_cli_escape(a->branch);
    path = oms_xasprintf("/api/v1/schemas/%s", a->path_b);
    if ((code = oms_cli_request(c, "GET", path, NULL, NULL, &r)))
        goto cleanup;
    if (r.status != 200) {
        code = oms_cli_problem(c, "apply", &r);
        goto cleanup;
    }
    a->server = r.json;
    r.json = NULL;
    oms_cli_resp_clear(&r);
    snprintf(a->head, sizeof a->head, "%s", a->if_match ? a->if_match : oms_cli_str(a->server, "commit"));
    code = OMS_CLI_FAILED;
    if (!(a->ops = json_array()) || index_server(a) || compute(a))
        goto cleanup;
    out = json_pack("{s:s,s:s,s:O,s:b,s:n}", "branch", a->branch, "head", a->head, "plan", plan, "dry_run",
                    a->dry_run, "commit");
    if (!out)
        goto cleanup;
    if (json_array_size(a->ops) == 0) {
        if (c->json)
            oms_cli_print_json(out);
        else
            printf("no changes: %s at %s matches %s\n", a->branch, a->head, a->dir);
        code = OMS_CLI_OK;
        goto cleanup;
    }
    json_t *issues = issue_list(a->issues);
    body = json_pack("{s:s,s:o,s:O}", "message", a->message ? a->message : "oms apply", "issue_ids",
                     issues ? issues : json_array(), "operations", a->ops);
    body_text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    ifm = oms_xasprintf("If-Match: \"%s\"", a->head);
    if (!body_text)
        goto cleanup;
    size_t len = strlen(body_text);
    if (len > MAX_BODY) {
        fprintf(stderr, "oms: apply: the change set is %zu bytes; the service takes at most 1 MiB in one commit. "
                        "Apply the directory in parts (e.g. one kind at a time).\n", len);
        goto cleanup;
    }
    const char *headers[] = {ifm, NULL};
    free(path);
    path = oms_xasprintf("/api/v1/schemas/%s/validate", a->path_b);
    if ((code = oms_cli_request_raw(c, "POST", path, body_text, len, headers, &r)))
        goto cleanup;
    if (r.status != 200) {
        code = refused(a, "apply: validate", &r);
        goto cleanup;
    }
    json_t *changes = json_object_get(r.json, "changes");
    if (!(by_res = index_changes(changes)))
        goto cleanup;
    if (!json_is_true(json_object_get(r.json, "valid"))) {
        size_t i;
        json_t *e;
        bool moved = false;
        json_array_foreach(json_object_get(r.json, "errors"), i, e) {
            moved = moved || !strcmp(oms_cli_str(e, "code"), "precondition_failed");
        }
        if (moved) {
            r.status = 412;
            code = refused(a, "apply", &r);
            goto cleanup;
        }
        fprintf(stderr, "oms: apply: the change set is not valid; nothing applied\n");
        json_array_foreach(json_object_get(r.json, "errors"), i, e) print_error(a, e);
        if (c->json)
            oms_cli_print_json(r.json);
        code = OMS_CLI_FAILED;
        goto cleanup;
    }
    if (json_array_size(changes) == 0) {
        if (c->json)
            oms_cli_print_json(out);
        else
            printf("no changes: the files match %s at %s once defaults are filled\n", a->branch, a->head);
        code = OMS_CLI_OK;
        goto cleanup;
    }
    /* replaces that only spell out defaults change nothing: leave them out,
     * so the commit holds exactly the plan shown */
    if (keep_changing(a, by_res))
        goto cleanup;
    json_object_set(body, "operations", a->ops);
    free(body_text);
    if (!(body_text = json_dumps(body, JSON_COMPACT)))
        goto cleanup;
    len = strlen(body_text);
    json_t *jplan = json_object_get(out, "plan");
    show_plan(a, by_res, jplan, &nbreaking);
    json_object_set_new(out, "breaking", json_boolean(nbreaking > 0));
    oms_cli_resp_clear(&r);
    if (a->dry_run) {
        if (c->json)
            oms_cli_print_json(out);
        else
            printf("dry run: nothing applied\n");
        code = OMS_CLI_OK;
        goto cleanup;
    }
    if (a->confirm && !confirmed(a)) {
        fprintf(stderr, "oms: apply: not confirmed; nothing applied\n");
        code = OMS_CLI_FAILED;
        goto cleanup;
    }
    free(path);
    path = oms_xasprintf("/api/v1/schemas/%s/changes", a->path_b);
    if ((code = oms_cli_request_raw(c, "POST", path, body_text, len, headers, &r)))
        goto cleanup;
    if (r.status != 200) {
        code = refused(a, "apply", &r);
        goto cleanup;
    }
    const char *commit = oms_cli_str(r.json, "commit");
    json_object_set_new(out, "commit", json_string(commit));
    if (c->json)
        oms_cli_print_json(out);
    else
        printf("applied %zu changes to %s in commit %s\n", json_array_size(json_object_get(r.json, "changes")),
               a->branch, commit);
    code = OMS_CLI_OK;
cleanup:
    oms_cli_resp_clear(&r);
    json_decref(body);
    json_decref(by_res);
    json_decref(plan);
    json_decref(out);
    free(body_text);
    free(ifm);
    free(path);
    return code;
}

int oms_cli_cmd_apply(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms apply -f DIR --branch B [-m MSG] [--issue KEY[,KEY]] [--dry-run] [--prune] "
                              "[--confirm] [--if-match COMMIT]";
    apply a = {.c = c};
    oms_cli_opt opts[] = {{"--file", "-f", &a.dir, NULL},         {"--branch", "-b", &a.branch, NULL},
                          {"--message", "-m", &a.message, NULL},  {"--issue", NULL, &a.issues, NULL},
                          {"--if-match", NULL, &a.if_match, NULL}, {"--dry-run", NULL, NULL, &a.dry_run},
                          {"--prune", NULL, NULL, &a.prune},      {"--confirm", NULL, NULL, &a.confirm},
                          {0}};
    int code = oms_cli_parse(c, argc, argv, opts, NULL, 0, NULL);
    if (code)
        return code;
    if (!a.dir || !a.branch)
        return oms_cli_usage(use);
    code = run(&a);
    oms_cli_locals_free(&a.locals);
    json_decref(a.server);
    json_decref(a.by_name);
    json_decref(a.ops);
    free(a.op_local);
    free(a.path_b);
    return code;
}
