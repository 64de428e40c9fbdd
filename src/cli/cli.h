/* The command-line client (`oms branch|get|export|apply|...`): the same
 * binary as the server, speaking only the public HTTP API (SPEC §14). Nothing
 * here includes a server module; src/util is shared. docs/cli.md describes
 * the commands and the exit codes below. */
#ifndef OMS_CLI_H
#define OMS_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes, documented in docs/cli.md. */
enum {
    OMS_CLI_OK = 0,
    OMS_CLI_FAILED = 1,      /* the request failed: invalid input, 400/422, anything else */
    OMS_CLI_USAGE = 2,       /* bad arguments or configuration */
    OMS_CLI_CONFLICT = 3,    /* 409, 412, 428: someone else changed it, or a merge conflict */
    OMS_CLI_DENIED = 4,      /* 401, 403 */
    OMS_CLI_LOCKED = 5,      /* 423 */
    OMS_CLI_NOT_FOUND = 6,   /* 404 */
    OMS_CLI_UNAVAILABLE = 7, /* the service could not be reached, 429, 5xx */
};

/* A session: where the service is, who we are, how to print. */
typedef struct oms_cli {
    char *url;   /* base URL, no trailing '/' */
    char *token; /* never printed, never put in a URL */
    char *ca_file;
    bool json;      /* --json: machine output on stdout */
    bool color;     /* stdout is a terminal and NO_COLOR is unset */
    bool progress;  /* stderr is a terminal */
    void *curl;     /* CURL *, reused across requests (one connection) */
} oms_cli;

/* ---- http.c ---- */
typedef struct {
    long status;
    char *body; /* NUL-terminated, may be NULL */
    size_t len;
    json_t *json; /* parsed body, NULL when not JSON */
    char etag[80], commit[80], request_id[80], retry_after[24];
} oms_cli_resp;

/* One request. `body` may be NULL; `headers` NULL-terminated extra header
 * lines ("If-Match: ..."), may be NULL. Returns 0 with *out filled when the
 * service answered (any status), else prints why and returns an exit code. */
int oms_cli_request(oms_cli *c, const char *method, const char *path, const json_t *body,
                    const char *const *headers, oms_cli_resp *out);
/* The same with a pre-serialized JSON body of `len` bytes. */
int oms_cli_request_raw(oms_cli *c, const char *method, const char *path, const char *body, size_t len,
                        const char *const *headers, oms_cli_resp *out);
void oms_cli_resp_clear(oms_cli_resp *r);
/* Percent-encodes one path segment or query value (malloc'd, never NULL:
 * the client allocates through util/alloc.h, which aborts on failure; a
 * formatted string is oms_xasprintf's). */
char *oms_cli_escape(const char *s);
void oms_cli_http_cleanup(oms_cli *c);

/* ---- config.c ---- */
/* Resolves OMS_URL, the token (OMS_TOKEN, OMS_TOKEN_FILE, or the
 * credentials file) and TLS settings. Returns an exit code. */
int oms_cli_configure(oms_cli *c);
void oms_cli_unconfigure(oms_cli *c);
int oms_cli_cmd_login(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_logout(oms_cli *c, int argc, char **argv);

/* ---- args.c ---- */
typedef struct {
    const char *name;  /* "--branch" */
    const char *alias; /* "-b" or NULL */
    const char **value; /* set for options taking a value */
    bool *flag;         /* set for boolean switches */
} oms_cli_opt;
/* Parses argv (after the command words) against opts; positional arguments
 * land in pos (at most npos_max). Returns 0, or OMS_CLI_USAGE after a line
 * on stderr. --json is accepted everywhere and sets c->json. */
int oms_cli_parse(oms_cli *c, int argc, char **argv, const oms_cli_opt *opts, const char **pos, size_t npos_max,
                  size_t *npos);
int oms_cli_usage(const char *text);

/* ---- output.c ---- */
/* Prints a refused request (problem title, detail, code, field errors) on
 * stderr and maps its status to an exit code. */
int oms_cli_problem(oms_cli *c, const char *what, const oms_cli_resp *r);
int oms_cli_exit_for_status(long status);
void oms_cli_print_json(const json_t *v);
const char *oms_cli_str(const json_t *o, const char *key); /* "" when absent */
const char *oms_cli_short(const char *id, char buf[16]);    /* first 12 chars of an id */

typedef struct oms_cli_table oms_cli_table;
oms_cli_table *oms_cli_table_new(oms_cli *c, const char *const *header, size_t ncols);
int oms_cli_table_row(oms_cli_table *t, const char *const *cells);
void oms_cli_table_print(oms_cli_table *t);
void oms_cli_table_free(oms_cli_table *t);
/* Wraps text in an ANSI colour when colour is on ("31" red, "32" green, ...). */
const char *oms_cli_paint(oms_cli *c, const char *code);
const char *oms_cli_reset(oms_cli *c);

/* ---- progress.c ---- */
typedef struct {
    oms_cli *c;
    const char *label;
    size_t total, done;
    long long last_ms;
    bool shown;
} oms_cli_progress;
void oms_cli_progress_start(oms_cli_progress *p, oms_cli *c, const char *label, size_t total);
void oms_cli_progress_step(oms_cli_progress *p, size_t done);
void oms_cli_progress_end(oms_cli_progress *p);

/* ---- yaml_read.c ---- */
/* Line numbers of the nodes of a parsed document, by JSON pointer. */
typedef struct oms_cli_lines oms_cli_lines;
/* Parses one YAML (or JSON) document from a file. On failure *out is NULL
 * and `msg` holds "FILE:LINE:COL: reason". `lines` (may be NULL) gets the
 * line of every node. */
int oms_cli_yaml_load(json_t **out, oms_cli_lines **lines, const char *path, char *msg, size_t msgsz);
/* The same from memory; `name` stands for the file in messages. */
int oms_cli_yaml_parse(json_t **out, oms_cli_lines **lines, const char *name, const char *data, size_t len,
                       char *msg, size_t msgsz);
/* Line of the node at `pointer` or of its nearest ancestor (0 if unknown). */
int oms_cli_lines_find(const oms_cli_lines *l, const char *pointer);
void oms_cli_lines_free(oms_cli_lines *l);

/* ---- yaml_write.c ---- */
/* Deterministic YAML: keys sorted, two-space indentation, strings quoted
 * whenever a plain scalar would read back as anything but the same string. */
char *oms_cli_yaml_dump(const json_t *v);

/* ---- resources.c ---- */
extern const char *const oms_cli_kinds[]; /* the six kind segments, NULL-terminated */
bool oms_cli_is_kind(const char *s);

/* ---- resfiles.c: a directory of resource files ---- */
typedef struct {
    const char *kind; /* a kind segment (static) */
    char *name;       /* api_name */
    char *path;       /* DIR/kind/NAME.yaml */
    json_t *doc;
    oms_cli_lines *lines;
} oms_cli_local;
typedef struct {
    oms_cli_local *items;
    size_t n, cap;
} oms_cli_locals;
/* Reads every DIR/KIND/NAME.(yaml, yml or json). Problems are printed (file:line:
 * col) and counted in *nerrors; returns an exit code for hard failures. */
int oms_cli_read_dir(oms_cli *c, const char *dir, oms_cli_locals *out, size_t *nerrors);
void oms_cli_locals_free(oms_cli_locals *l);
/* Writes one resource as DIR/KIND/NAME.(yaml|json); 0 or -1 (errno). */
int oms_cli_write_resource(const char *dir, const char *kind, const char *name, const json_t *doc, bool json);

/* ---- at.c ---- */
/* After a `?at=REF` read: the served commit must be REF's. An exit code. */
int oms_cli_check_at(oms_cli *c, const char *what, const char *at, const char *served);

/* ---- commands ---- */
int oms_cli_cmd_branch(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_get(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_search(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_export(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_apply(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_diff(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_propose(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_review(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_merge(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_tag(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_lock(oms_cli *c, int argc, char **argv);
int oms_cli_cmd_audit(oms_cli *c, int argc, char **argv);

/* ---- main.c: the entry points src/app/main.c calls ---- */
bool oms_cli_is_command(int argc, char **argv);
int oms_cli_main(int argc, char **argv);

#endif
