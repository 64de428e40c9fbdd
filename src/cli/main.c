/* The client's entry: which words are client commands (src/app/main.c asks
 * before it loads the server's configuration, so server settings never
 * swallow a client option), the session set-up and the command table. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(oms_cli *c, int argc, char **argv);
    bool needs_service; /* resolve OMS_URL and the token first */
} command;

static const command k_commands[] = {
    {"branch", oms_cli_cmd_branch, true},   {"get", oms_cli_cmd_get, true},
    {"export", oms_cli_cmd_export, true},   {"apply", oms_cli_cmd_apply, true},
    {"diff", oms_cli_cmd_diff, true},       {"propose", oms_cli_cmd_propose, true},
    {"review", oms_cli_cmd_review, true},   {"merge", oms_cli_cmd_merge, true},
    {"tag", oms_cli_cmd_tag, true},         {"lock", oms_cli_cmd_lock, true},
    {"search", oms_cli_cmd_search, true},   {"audit", oms_cli_cmd_audit, true},
    {"login", oms_cli_cmd_login, false},    {"logout", oms_cli_cmd_logout, false},
    {"help", NULL, false},
};

static const char k_help[] =
    "usage: oms COMMAND ... [--json]     (client of an OMS service: OMS_URL, OMS_TOKEN or OMS_TOKEN_FILE)\n"
    "  login --token-file FILE|- --url URL   store the URL and token in a 0600 credentials file\n"
    "  logout                                remove it\n"
    "  branch list | create NAME [--from REF] | delete NAME --issue KEY\n"
    "  get KIND/NAME [--branch B] [--at REF] [--format yaml|json]\n"
    "  export --branch B -o DIR [--at REF] [--format yaml|json]\n"
    "  apply -f DIR --branch B -m MSG --issue KEY [--dry-run] [--prune] [--confirm] [--if-match COMMIT]\n"
    "  diff A B                              changes from ref A to ref B, breaking flags\n"
    "  propose --source B [--target main] --title T [--description D] [--draft] [--issue KEY]\n"
    "  review approve|reject|request-changes|comment PROPOSAL [-m TEXT] [--resource KIND/NAME] [--field PTR]\n"
    "  merge --proposal ID [--issue KEY] | merge SOURCE --into TARGET -m MSG --issue KEY\n"
    "  tag list | create NAME --ref REF [-m MSG] | delete NAME --issue KEY\n"
    "  lock list [--branch B] | acquire --branch B [--resource KIND/NAME | --resource-type KIND] [--kind K]\n"
    "       [--reason R] [--ttl S] [--heartbeat S] | heartbeat ID [--percent P] [--phase X] [--message M]\n"
    "       | release ID [--issue KEY] [--reason R]\n"
    "  search QUERY [--branch B] [--limit N]\n"
    "  audit tail [-n N] [--follow] [--action A] [--actor SUB] [--branch B]\n"
    "exit codes: 0 ok, 1 failed, 2 usage, 3 conflict, 4 denied, 5 locked, 6 not found, 7 unavailable\n";

static const command *find(const char *name)
{
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(k_commands[i].name, name))
            return &k_commands[i];
    return NULL;
}

/* `oms audit` is also the operator's command (verify, export, ...): only
 * `oms audit tail` is the client's. */
bool oms_cli_is_command(int argc, char **argv)
{
    if (argc < 2)
        return false;
    if (!strcmp(argv[1], "audit"))
        return argc > 2 && !strcmp(argv[2], "tail");
    return find(argv[1]) != NULL;
}

int oms_cli_main(int argc, char **argv)
{
    const command *cmd = find(argv[1]);
    if (!cmd)
        return OMS_CLI_USAGE;
    if (!cmd->fn || (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))) {
        fputs(k_help, cmd->fn ? stderr : stdout);
        return cmd->fn ? OMS_CLI_USAGE : OMS_CLI_OK;
    }
    oms_cli c = {0};
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    bool dumb = term && !strcmp(term, "dumb");
    c.color = isatty(STDOUT_FILENO) && !(nc && *nc) && !dumb;
    c.progress = isatty(STDERR_FILENO) && !dumb;
    int code;
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "oms: cannot initialise the HTTP client\n");
        return OMS_CLI_FAILED;
    }
    if (cmd->needs_service && (code = oms_cli_configure(&c)))
        goto cleanup;
    code = cmd->fn(&c, argc - 2, argv + 2);
cleanup:
    fflush(stdout);
    oms_cli_http_cleanup(&c);
    oms_cli_unconfigure(&c);
    curl_global_cleanup();
    return code;
}
