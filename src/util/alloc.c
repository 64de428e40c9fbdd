#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Noreturn void out_of_memory(size_t n)
{
    /* No allocation here: the message is formatted on the stack. */
    char msg[96];
    int len = snprintf(msg, sizeof msg, "oms: out of memory allocating %zu bytes: aborting\n", n);
    if (len > 0 && write(STDERR_FILENO, msg, (size_t)len) < 0) {
        /* nothing more can be done */
    }
    abort();
}

void *oms_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *oms_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *oms_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *oms_xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = oms_xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *oms_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = oms_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *oms_xvasprintf(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) { /* an encoding error: a bug of the caller's, not an input */
        static const char msg[] = "oms: a format string could not be formatted: aborting\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
            /* nothing more can be done */
        }
        abort();
    }
    char *s = oms_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

char *oms_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = oms_xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

static void *json_xmalloc(size_t n) { return oms_xmalloc(n); }

void oms_alloc_init(void) { json_set_alloc_funcs(json_xmalloc, free); }
