/* What people and scripts see: aligned tables (bold headers only on a
 * terminal), JSON for --json, and refused requests as the problem's title,
 * detail and code with an exit code chosen from the status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

int oms_cli_exit_for_status(long status)
{
    if (status >= 200 && status < 400)
        return OMS_CLI_OK;
    switch (status) {
    case 401:
    case 403:
        return OMS_CLI_DENIED;
    case 404:
        return OMS_CLI_NOT_FOUND;
    case 409:
    case 412:
    case 428:
        return OMS_CLI_CONFLICT;
    case 423:
        return OMS_CLI_LOCKED;
    case 429:
        return OMS_CLI_UNAVAILABLE;
    default:
        return status >= 500 ? OMS_CLI_UNAVAILABLE : OMS_CLI_FAILED;
    }
}

const char *oms_cli_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

const char *oms_cli_short(const char *id, char buf[16])
{
    snprintf(buf, 16, "%.12s", id ? id : "");
    return buf;
}

const char *oms_cli_paint(oms_cli *c, const char *code)
{
    static char buf[4][16];
    static int next;
    if (!c->color)
        return "";
    char *b = buf[next++ & 3];
    snprintf(b, 16, "\033[%sm", code);
    return b;
}

const char *oms_cli_reset(oms_cli *c) { return c->color ? "\033[0m" : ""; }

void oms_cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s)
        puts(s);
    free(s);
}

/* One field error line: "  /operations/0/document/type: unknown type". */
static void print_errors(const json_t *errors)
{
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e) {
        if (i == 20) {
            fprintf(stderr, "  ... and %zu more\n", json_array_size(errors) - 20);
            break;
        }
        const char *path = oms_cli_str(e, "path"), *msg = oms_cli_str(e, "message");
        const char *field = oms_cli_str(e, "field");
        fprintf(stderr, "  %s%s%s%s%s\n", path, *path ? ": " : "", msg, *field ? " " : "", field);
    }
}

int oms_cli_problem(oms_cli *c, const char *what, const oms_cli_resp *r)
{
    int code = oms_cli_exit_for_status(r->status);
    const json_t *p = r->json;
    if (c->json && p) {
        /* scripts get the problem document itself, on stderr */
        char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            fprintf(stderr, "%s\n", s);
        free(s);
        return code;
    }
    const char *title = oms_cli_str(p, "title"), *detail = oms_cli_str(p, "detail"), *pcode = oms_cli_str(p, "code");
    fprintf(stderr, "oms: %s: %s (%ld%s%s)\n", what, *title ? title : "the service refused the request", r->status,
            *pcode ? " " : "", pcode);
    if (*detail && strcmp(detail, title))
        fprintf(stderr, "  %s\n", detail);
    const char *perm = oms_cli_str(p, "missing_permission");
    if (*perm)
        fprintf(stderr, "  missing permission: %s\n", perm);
    print_errors(json_object_get(p, "errors"));
    const json_t *conflicts = json_object_get(p, "conflicts");
    size_t i;
    const json_t *x;
    json_array_foreach(conflicts, i, x) {
        if (json_is_object(x))
            fprintf(stderr, "  conflict: %s %s%s%s\n", oms_cli_str(x, "resource"), oms_cli_str(x, "kind"),
                    json_object_get(x, "path") ? " at " : "", oms_cli_str(x, "path"));
        else if (json_is_string(x))
            fprintf(stderr, "  conflict: %s\n", json_string_value(x));
    }
    const json_t *lock = json_object_get(p, "lock");
    if (!lock) /* a 423 names its locks under `locks` (SPEC §7) */
        lock = json_array_get(json_object_get(p, "locks"), 0);
    if (json_is_object(lock))
        fprintf(stderr, "  locked by %s (%s): %s\n", oms_cli_str(lock, "holder"), oms_cli_str(lock, "kind"),
                oms_cli_str(lock, "reason"));
    if (*r->retry_after)
        fprintf(stderr, "  retry after %s s\n", r->retry_after);
    if (*r->request_id)
        fprintf(stderr, "  request id: %s\n", r->request_id);
    return code;
}

/* ---- tables ---- */

struct oms_cli_table {
    oms_cli *c;
    size_t ncols, nrows, cap;
    char **cells; /* row-major, row 0 is the header */
};

static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80; /* UTF-8: count lead bytes only */
    return w;
}

oms_cli_table *oms_cli_table_new(oms_cli *c, const char *const *header, size_t ncols)
{
    oms_cli_table *t = oms_xcalloc(1, sizeof *t);
    t->c = c;
    t->ncols = ncols;
    if (oms_cli_table_row(t, header)) {
        oms_cli_table_free(t);
        return NULL;
    }
    return t;
}

int oms_cli_table_row(oms_cli_table *t, const char *const *cells)
{
    if (!t)
        return -1;
    if ((t->nrows + 1) * t->ncols > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16 * t->ncols;
        char **nc = oms_xrealloc(t->cells, cap * sizeof *nc);
        t->cells = nc;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *s = oms_xstrdup(cells[i] ? cells[i] : "");
        /* a cell is one line: a newline would break the alignment */
        for (char *p = s; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        t->cells[t->nrows * t->ncols + i] = s;
    }
    t->nrows++;
    return 0;
}

void oms_cli_table_print(oms_cli_table *t)
{
    if (!t)
        return;
    size_t *w = oms_xcalloc(t->ncols, sizeof *w);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t cw = width(t->cells[r * t->ncols + i]);
            if (cw > w[i])
                w[i] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        if (r == 0)
            fputs(oms_cli_paint(t->c, "1"), stdout);
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            if (i + 1 == t->ncols)
                fputs(s, stdout);
            else
                printf("%s%*s", s, (int)(w[i] - width(s) + 2), "");
        }
        if (r == 0)
            fputs(oms_cli_reset(t->c), stdout);
        putchar('\n');
    }
    free(w);
}

void oms_cli_table_free(oms_cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
