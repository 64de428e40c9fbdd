/* Proposals from the command line:
 *   oms propose --source B [--target main] --title T [--description D] [--draft] [--issue KEY]
 *   oms review approve|reject|request-changes|comment ID [-m TEXT] [--resource KIND/NAME] [--field PTR]
 *   oms merge --proposal ID [--issue KEY] | oms merge SOURCE --into TARGET -m MSG --issue KEY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

/* POST with an optional X-Issue-ID; prints the answer on success. */
static int post(oms_cli *c, const char *what, const char *path, json_t *body, const char *issue, long ok,
                void (*human)(const json_t *))
{
    char *ih = issue ? oms_xasprintf("X-Issue-ID: %s", issue) : NULL;
    const char *headers[] = {ih, NULL};
    oms_cli_resp r = {0};
    int code = OMS_CLI_FAILED;
    if (body && !(code = oms_cli_request(c, "POST", path, body, headers, &r))) {
        if (r.status != ok) {
            if (r.status == 404 && !r.json)
                fprintf(stderr, "oms: %s: this service does not offer %s yet\n", what, path);
            code = oms_cli_problem(c, what, &r);
        } else if (c->json) {
            oms_cli_print_json(r.json);
        } else {
            human(r.json);
        }
    }
    oms_cli_resp_clear(&r);
    json_decref(body);
    free(ih);
    return code;
}

static void show_proposal(const json_t *p)
{
    printf("proposal %s: %s -> %s, %s\n", oms_cli_str(p, "id"), oms_cli_str(p, "source"), oms_cli_str(p, "target"),
           oms_cli_str(p, "state"));
}

int oms_cli_cmd_propose(oms_cli *c, int argc, char **argv)
{
    const char *source = NULL, *target = "main", *title = NULL, *desc = "", *issue = NULL;
    bool draft = false;
    oms_cli_opt opts[] = {{"--source", "-s", &source, NULL}, {"--target", "-t", &target, NULL},
                          {"--title", NULL, &title, NULL},   {"--description", "-d", &desc, NULL},
                          {"--issue", NULL, &issue, NULL},   {"--draft", NULL, NULL, &draft},
                          {0}};
    int code = oms_cli_parse(c, argc, argv, opts, NULL, 0, NULL);
    if (code)
        return code;
    if (!source || !title)
        return oms_cli_usage("oms propose --source B [--target main] --title T [--description D] [--draft] "
                             "[--issue KEY]");
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:b}", "source", source, "target", target, "title", title,
                             "description", desc, "draft", draft);
    if (body && issue)
        json_object_set_new(body, "issue_ids", json_pack("[s]", issue));
    return post(c, "propose", "/api/v1/proposals", body, NULL, 201, show_proposal);
}

static void show_review(const json_t *p)
{
    const char *state = oms_cli_str(p, "state");
    printf("recorded%s%s\n", *state ? "; proposal is " : "", state);
}

int oms_cli_cmd_review(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms review approve|reject|request-changes|comment PROPOSAL [-m TEXT] "
                              "[--resource KIND/NAME] [--field PTR]";
    const char *text = NULL, *resource = NULL, *field = NULL, *pos[2];
    size_t np = 0;
    oms_cli_opt opts[] = {{"--message", "-m", &text, NULL}, {"--resource", NULL, &resource, NULL},
                          {"--field", NULL, &field, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 2, &np);
    if (code)
        return code;
    if (np != 2)
        return oms_cli_usage(use);
    const char *verb = pos[0], *action;
    if (!strcmp(verb, "approve") || !strcmp(verb, "reject") || !strcmp(verb, "request-changes"))
        action = verb;
    else if (!strcmp(verb, "comment"))
        action = "comments";
    else
        return oms_cli_usage(use);
    if (!strcmp(action, "comments") && !text)
        return oms_cli_usage("oms review comment PROPOSAL -m TEXT [--resource KIND/NAME] [--field PTR]");
    char *id = oms_cli_escape(pos[1]);
    char *path = oms_xasprintf("/api/v1/proposals/%s/%s", id, action);
    json_t *body = json_object();
    if (body && text)
        json_object_set_new(body, !strcmp(action, "comments") ? "body" : "comment", json_string(text));
    if (body && resource)
        json_object_set_new(body, "resource", json_string(resource));
    if (body && field)
        json_object_set_new(body, "field", json_string(field));
    code = post(c, "review", path, body, NULL, !strcmp(action, "comments") ? 201 : 200, show_review);
    free(id);
    free(path);
    return code;
}

static void show_merge(const json_t *m)
{
    const char *commit = oms_cli_str(m, "commit");
    if (!*commit)
        commit = oms_cli_str(m, "merged_commit");
    printf("merged%s%s%s\n", *commit ? " in commit " : "", commit,
           json_is_true(json_object_get(m, "fast_forward")) ? " (fast-forward)" : "");
}

int oms_cli_cmd_merge(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms merge --proposal ID [--issue KEY] | oms merge SOURCE --into TARGET -m MSG "
                              "--issue KEY";
    const char *proposal = NULL, *into = NULL, *msg = NULL, *issue = NULL, *pos[1];
    size_t np = 0;
    oms_cli_opt opts[] = {{"--proposal", "-p", &proposal, NULL}, {"--into", NULL, &into, NULL},
                          {"--message", "-m", &msg, NULL},       {"--issue", NULL, &issue, NULL},
                          {0}};
    int code = oms_cli_parse(c, argc, argv, opts, pos, 1, &np);
    if (code)
        return code;
    char *esc = NULL, *path = NULL;
    json_t *body = json_object();
    if (body && msg)
        json_object_set_new(body, "message", json_string(msg));
    if (proposal && !np) {
        esc = oms_cli_escape(proposal);
        path = oms_xasprintf("/api/v1/proposals/%s/merge", esc);
    } else if (!proposal && np == 1 && into) {
        esc = oms_cli_escape(into);
        path = oms_xasprintf("/api/v1/branches/%s/merge", esc);
        if (body)
            json_object_set_new(body, "source", json_string(pos[0]));
    } else {
        json_decref(body);
        return oms_cli_usage(use);
    }
    code = post(c, "merge", path, body, issue, 200, show_merge);
    free(esc);
    free(path);
    return code;
}
