#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

void oms_buf_reserve(oms_buf *b, size_t n)
{
    if (b->cap - b->len > n)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= n)
        cap *= 2;
    b->data = oms_xrealloc(b->data, cap);
    b->cap = cap;
}

void oms_buf_append(oms_buf *b, const void *data, size_t n)
{
    oms_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void oms_buf_puts(oms_buf *b, const char *s) { oms_buf_append(b, s, strlen(s)); }

void oms_buf_putc(oms_buf *b, char c) { oms_buf_append(b, &c, 1); }

void oms_buf_vprintf(oms_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    oms_buf_reserve(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        oms_buf_reserve(b, (size_t)n);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, again);
    }
    va_end(again);
    if (n > 0)
        b->len += (size_t)n;
    b->data[b->len] = '\0';
}

void oms_buf_printf(oms_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    oms_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

const char *oms_buf_str(const oms_buf *b) { return b->data ? b->data : ""; }

char *oms_buf_take(oms_buf *b, size_t *len)
{
    if (!b->data)
        oms_buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void oms_buf_reset(oms_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void oms_buf_free(oms_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
