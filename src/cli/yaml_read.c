/* One resource file (YAML, or JSON which YAML reads too) into a JSON
 * value, with libyaml's event parser. Plain scalars resolve by the YAML 1.2
 * core schema (null, true/false, decimal integers and floats; "yes" stays a
 * string); quoted ones are strings. Aliases, unknown tags, duplicate keys,
 * non-string keys, several documents and nesting deeper than 64 are refused
 * with the file, line and column. Each node's line is kept by JSON pointer so
 * the service's field errors can be shown where they are in the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/cli.h"
#include "util/alloc.h"

#define MAX_DEPTH 64
#define TAG(x) "tag:yaml.org,2002:" x

struct oms_cli_lines {
    char **ptr;
    int *line;
    size_t n, cap;
};

static int lines_add(oms_cli_lines *l, const char *ptr, int line)
{
    if (!l)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **np = oms_xrealloc(l->ptr, cap * sizeof *np);
        l->ptr = np;
        int *nl = oms_xrealloc(l->line, cap * sizeof *nl);
        l->line = nl;
        l->cap = cap;
    }
    l->ptr[l->n] = oms_xstrdup(ptr);
    l->line[l->n++] = line;
    return 0;
}

int oms_cli_lines_find(const oms_cli_lines *l, const char *pointer)
{
    if (!l)
        return 0;
    char *p = oms_xstrdup(pointer);
    int found = 0;
    while (p && !found) {
        for (size_t i = 0; i < l->n && !found; i++)
            if (!strcmp(l->ptr[i], p))
                found = l->line[i];
        char *slash = strrchr(p, '/');
        if (found || !slash)
            break;
        *slash = '\0';
    }
    free(p);
    return found;
}

void oms_cli_lines_free(oms_cli_lines *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->ptr[i]);
    free(l->ptr);
    free(l->line);
    free(l);
}

/* ---- scalars ---- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? with a '.' or exponent */
static bool is_float(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    size_t before = strspn(s, "0123456789");
    s += before;
    size_t after = 0;
    bool dot = *s == '.';
    if (dot) {
        s++;
        after = strspn(s, "0123456789");
        s += after;
    }
    if (!before && !after)
        return false;
    bool exp = *s == 'e' || *s == 'E';
    if (exp) {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!all_digits(s))
            return false;
        return true;
    }
    return dot && !*s;
}

/* The value of a plain scalar; NULL with *why on refusal. */
static json_t *resolve_plain(const char *s, const char **why)
{
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (all_digits(d)) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == ERANGE) {
            *why = "integer out of range";
            return NULL;
        }
        return json_integer(v);
    }
    if (is_float(s))
        return json_real(strtod(s, NULL));
    if (!strcmp(s, ".inf") || !strcmp(s, "-.inf") || !strcmp(s, ".nan") || !strcmp(s, ".NaN")) {
        *why = "infinity and NaN have no JSON form";
        return NULL;
    }
    return json_string(s);
}

static json_t *scalar_value(const yaml_event_t *ev, const char **why)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && strcmp(tag, "!")) {
        if (!strcmp(tag, TAG("str")))
            goto string;
        if (strcmp(tag, TAG("int")) && strcmp(tag, TAG("float")) && strcmp(tag, TAG("bool")) &&
            strcmp(tag, TAG("null"))) {
            *why = "unsupported tag";
            return NULL;
        }
    } else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, "!"))) {
        goto string;
    }
    if (memchr(text, '\0', len)) {
        *why = "NUL in a scalar";
        return NULL;
    }
    json_t *v = resolve_plain(text, why);
    if (v && tag && strcmp(tag, TAG("str")) && json_is_string(v)) {
        json_decref(v);
        *why = "the value does not match its tag";
        return NULL;
    }
    return v;
string:;
    json_t *s = json_stringn(text, len);
    if (!s)
        *why = "invalid UTF-8";
    return s;
}

/* ---- the tree ---- */

typedef struct {
    json_t *node;
    char *ptr;  /* JSON pointer of this container */
    char *key;  /* a mapping's key waiting for its value */
    int line;   /* line of the container's start */
} frame;

typedef struct {
    frame st[MAX_DEPTH + 1];
    int depth; /* frames in use */
    json_t *root;
    oms_cli_lines *lines;
    char *msg;
    size_t msgsz;
    const char *path;
} builder;

static int fail(builder *b, const yaml_mark_t *m, const char *why)
{
    snprintf(b->msg, b->msgsz, "%s:%zu:%zu: %s", b->path, m->line + 1, m->column + 1, why);
    return -1;
}

/* "~" and "/" escaped per RFC 6901 */
static char *child_ptr(const char *parent, const char *seg)
{
    size_t n = strlen(parent) + 2 * strlen(seg) + 2;
    char *p = oms_xmalloc(n), *w;
    w = p + sprintf(p, "%s/", parent);
    for (; *seg; seg++) {
        if (*seg == '~') { *w++ = '~'; *w++ = '0'; }
        else if (*seg == '/') { *w++ = '~'; *w++ = '1'; }
        else *w++ = *seg;
    }
    *w = '\0';
    return p;
}

/* The pointer a new value gets: parent's pointer plus key or index. */
static char *next_ptr(builder *b)
{
    if (b->depth == 0)
        return oms_xstrdup("");
    frame *f = &b->st[b->depth - 1];
    if (json_is_array(f->node)) {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", json_array_size(f->node));
        return child_ptr(f->ptr, idx);
    }
    return child_ptr(f->ptr, f->key);
}

/* Attaches v (stolen) to the current container, or makes it the root. */
static int attach(builder *b, json_t *v, const yaml_mark_t *m)
{
    if (b->depth == 0) {
        b->root = v;
        return 0;
    }
    frame *f = &b->st[b->depth - 1];
    if (json_is_array(f->node))
        return json_array_append_new(f->node, v) ? fail(b, m, "out of memory") : 0;
    int rc = json_object_set_new(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
    return rc ? fail(b, m, "out of memory") : 0;
}

/* A scalar in a mapping with no key pending is a key. */
static bool wants_key(builder *b)
{
    return b->depth > 0 && json_is_object(b->st[b->depth - 1].node) && !b->st[b->depth - 1].key;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    if (wants_key(b)) {
        frame *f = &b->st[b->depth - 1];
        const char *k = (const char *)ev->data.scalar.value;
        if (strlen(k) != ev->data.scalar.length)
            return fail(b, m, "NUL in a key");
        if (json_object_get(f->node, k)) {
            char why[160];
            snprintf(why, sizeof why, "duplicate key \"%.100s\"", k);
            return fail(b, m, why);
        }
        f->key = oms_xstrdup(k);
        return 0;
    }
    const char *why = "invalid scalar";
    json_t *v = scalar_value(ev, &why);
    if (!v)
        return fail(b, m, why);
    char *p = next_ptr(b);
    if (!p || lines_add(b->lines, p, (int)m->line + 1)) {
        free(p);
        json_decref(v);
        return fail(b, m, "out of memory");
    }
    free(p);
    return attach(b, v, m);
}

static int on_start(builder *b, const yaml_event_t *ev, bool mapping)
{
    const yaml_mark_t *m = &ev->start_mark;
    if (wants_key(b))
        return fail(b, m, "a key must be a string");
    if (b->depth == MAX_DEPTH)
        return fail(b, m, "nested deeper than 64");
    const char *tag = (const char *)(mapping ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    if (tag && strcmp(tag, mapping ? TAG("map") : TAG("seq")))
        return fail(b, m, "unsupported tag");
    frame *f = &b->st[b->depth];
    memset(f, 0, sizeof *f);
    f->node = mapping ? json_object() : json_array();
    f->ptr = next_ptr(b);
    f->line = (int)m->line + 1;
    if (!f->node || !f->ptr || lines_add(b->lines, f->ptr, f->line)) {
        json_decref(f->node);
        free(f->ptr);
        return fail(b, m, "out of memory");
    }
    b->depth++;
    return 0;
}

static int on_end(builder *b, const yaml_event_t *ev)
{
    frame *f = &b->st[--b->depth];
    json_t *node = f->node;
    /* an element with an api_name is also findable by it: the service
     * names properties and parameters that way in some messages */
    const char *name = json_string_value(json_object_get(node, "api_name"));
    if (name && b->depth > 0 && json_is_array(b->st[b->depth - 1].node)) {
        char *alias = child_ptr(b->st[b->depth - 1].ptr, name);
        if (alias)
            lines_add(b->lines, alias, f->line);
        free(alias);
    }
    free(f->ptr);
    free(f->key);
    f->ptr = f->key = NULL;
    return attach(b, node, &ev->start_mark);
}

/* Parses what `parser` reads; `name` (the file) prefixes messages. */
static int parse(json_t **out, oms_cli_lines **lines, yaml_parser_t *parser, const char *name, char *msg,
                 size_t msgsz)
{
    *out = NULL;
    if (lines)
        *lines = NULL;
    builder b = {.msg = msg, .msgsz = msgsz, .path = name};
    yaml_event_t ev;
    int rc = -1, docs = 0;
    bool done = false;
    if (lines && !(b.lines = oms_xcalloc(1, sizeof *b.lines))) {
        snprintf(msg, msgsz, "%s: out of memory", name);
        return -1;
    }
    while (!done) {
        if (!yaml_parser_parse(parser, &ev)) {
            snprintf(msg, msgsz, "%s:%zu:%zu: %s", name, parser->problem_mark.line + 1,
                     parser->problem_mark.column + 1, parser->problem ? parser->problem : "invalid YAML");
            goto cleanup;
        }
        int erc = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                erc = fail(&b, &ev.start_mark, "one resource per file: a second document starts here");
            break;
        case YAML_SCALAR_EVENT:
            erc = on_scalar(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            erc = on_start(&b, &ev, ev.type == YAML_MAPPING_START_EVENT);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            erc = on_end(&b, &ev);
            break;
        case YAML_ALIAS_EVENT:
            erc = fail(&b, &ev.start_mark, "aliases are not accepted");
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (erc)
            goto cleanup;
    }
    if (!b.root) {
        snprintf(msg, msgsz, "%s:1:1: the file holds no document", name);
        goto cleanup;
    }
    *out = b.root;
    b.root = NULL;
    if (lines) {
        *lines = b.lines;
        b.lines = NULL;
    }
    rc = 0;
cleanup:
    while (b.depth > 0) {
        frame *f = &b.st[--b.depth];
        json_decref(f->node);
        free(f->ptr);
        free(f->key);
    }
    json_decref(b.root);
    oms_cli_lines_free(b.lines);
    return rc;
}

int oms_cli_yaml_load(json_t **out, oms_cli_lines **lines, const char *path, char *msg, size_t msgsz)
{
    *out = NULL;
    if (lines)
        *lines = NULL;
    yaml_parser_t parser;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(msg, msgsz, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        snprintf(msg, msgsz, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, fp);
    int rc = parse(out, lines, &parser, path, msg, msgsz);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

int oms_cli_yaml_parse(json_t **out, oms_cli_lines **lines, const char *name, const char *data, size_t len,
                       char *msg, size_t msgsz)
{
    yaml_parser_t parser;
    *out = NULL;
    if (lines)
        *lines = NULL;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(msg, msgsz, "%s: out of memory", name);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    int rc = parse(out, lines, &parser, name, msg, msgsz);
    yaml_parser_delete(&parser);
    return rc;
}
