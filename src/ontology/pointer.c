/* JSON pointers (RFC 6901) built token by token, and error objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ontology/internal.h"
#include "util/alloc.h"

void oms_ont_ptr_init(oms_ont_ptr *p)
{
    p->buf = NULL;
    p->len = p->cap = 0;
    p->oom = false;
}

void oms_ont_ptr_free(oms_ont_ptr *p)
{
    free(p->buf);
    oms_ont_ptr_init(p);
}

static bool reserve(oms_ont_ptr *p, size_t extra)
{
    if (p->len + extra + 1 <= p->cap)
        return true;
    size_t cap = p->cap ? p->cap : 64;
    while (cap < p->len + extra + 1)
        cap *= 2;
    char *b = oms_xrealloc(p->buf, cap);
    p->buf = b;
    p->cap = cap;
    return true;
}

size_t oms_ont_ptr_push(oms_ont_ptr *p, const char *token)
{
    size_t mark = p->len;
    /* Worst case every byte is escaped to two. */
    if (!reserve(p, 1 + 2 * strlen(token)))
        return mark;
    p->buf[p->len++] = '/';
    for (const char *c = token; *c; c++) {
        if (*c == '~' || *c == '/') {
            p->buf[p->len++] = '~';
            p->buf[p->len++] = *c == '~' ? '0' : '1';
        } else {
            p->buf[p->len++] = *c;
        }
    }
    p->buf[p->len] = '\0';
    return mark;
}

size_t oms_ont_ptr_push_index(oms_ont_ptr *p, size_t index)
{
    char tok[24];
    snprintf(tok, sizeof tok, "%zu", index);
    return oms_ont_ptr_push(p, tok);
}

void oms_ont_ptr_pop(oms_ont_ptr *p, size_t mark)
{
    if (mark <= p->len) {
        p->len = mark;
        if (p->buf)
            p->buf[mark] = '\0';
    }
}

const char *oms_ont_ptr_str(const oms_ont_ptr *p)
{
    return p->buf ? p->buf : "";
}

void oms_ont_error_append(json_t *errors, const char *path, const char *code, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "path", path, "message", message);
    if (!e)
        return;
    if (code)
        json_object_set_new(e, "code", json_string(code));
    json_array_append_new(errors, e);
}
