/* Deterministic YAML for `oms export`: the same document always gives the
 * same bytes, so a git diff of two exports shows exactly what changed.
 * Keys sorted (byte order, as canonical JSON), block style, two spaces per
 * level, empty containers as [] and {}. A string is written plain only when
 * every reader (YAML 1.1 and 1.2) reads it back as that same string;
 * otherwise double-quoted with JSON escapes, which YAML shares. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *nb = oms_xrealloc(o->buf, cap);
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static void indent(out *o, int n)
{
    for (int i = 0; i < n; i++)
        put(o, " ", 1);
}

static bool plain_ok(const char *s)
{
    static const char *const reserved[] = {"null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
                                           "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON",
                                           "off", "Off", "OFF", "y", "Y", "n", "N", NULL};
    size_t n = strlen(s);
    if (!n || s[n - 1] == ' ')
        return false;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  strchr("_ .,/()-", ch);
        if (!ok)
            return false;
    }
    for (size_t i = 0; reserved[i]; i++)
        if (!strcmp(s, reserved[i]))
            return false;
    return true;
}

static void string(out *o, const char *s)
{
    if (plain_ok(s)) {
        puts_(o, s);
        return;
    }
    /* YAML 1.1 reads NEL, LS and PS as line breaks (folded away): those
     * strings are written all-ASCII, with \u escapes */
    bool breaks = strstr(s, "\xc2\x85") || strstr(s, "\xe2\x80\xa8") || strstr(s, "\xe2\x80\xa9");
    json_t *j = json_string(s);
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY | (breaks ? JSON_ENSURE_ASCII : 0)) : NULL;
    if (!q)
        o->oom = true;
    else
        puts_(o, q);
    free(q);
    json_decref(j);
}

static bool is_block(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static void scalar(out *o, const json_t *v)
{
    if (json_is_string(v)) {
        string(o, json_string_value(v));
    } else if (json_is_object(v)) {
        puts_(o, "{}");
    } else if (json_is_array(v)) {
        puts_(o, "[]");
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY); /* numbers as canonical JSON writes them */
        if (!t)
            o->oom = true;
        else
            puts_(o, t);
        free(t);
    }
    put(o, "\n", 1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void seq(out *o, const json_t *a, int ind, bool first_inline);

static void map(out *o, const json_t *m, int ind, bool first_inline)
{
    size_t n = json_object_size(m), i = 0;
    const char **keys = oms_xmalloc(n * sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++) {
        if (i || !first_inline)
            indent(o, ind);
        string(o, keys[i]);
        put(o, ":", 1);
        v = json_object_get(m, keys[i]);
        if (!is_block(v)) {
            put(o, " ", 1);
            scalar(o, v);
        } else {
            put(o, "\n", 1);
            if (json_is_object(v))
                map(o, v, ind + 2, false);
            else
                seq(o, v, ind + 2, false);
        }
    }
    free(keys);
}

static void seq(out *o, const json_t *a, int ind, bool first_inline)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (i || !first_inline)
            indent(o, ind);
        put(o, "- ", 2);
        if (!is_block(v))
            scalar(o, v);
        else if (json_is_object(v))
            map(o, v, ind + 2, true);
        else
            seq(o, v, ind + 2, true);
    }
}

char *oms_cli_yaml_dump(const json_t *v)
{
    out o = {0};
    if (json_is_object(v) && json_object_size(v))
        map(&o, v, 0, false);
    else if (json_is_array(v) && json_array_size(v))
        seq(&o, v, 0, false);
    else
        scalar(&o, v);
    if (o.oom) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}
