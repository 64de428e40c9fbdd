#include "util/arena.h"

#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} block;

typedef struct cleanup {
    struct cleanup *next;
    oms_cleanup_fn fn;
    void *p;
} cleanup;

struct oms_arena {
    block *head;
    cleanup *cleanups;
    size_t next_size;
};

static block *block_new(size_t size)
{
    block *b = oms_xmalloc(sizeof *b + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

oms_arena *oms_arena_new(size_t first_block)
{
    oms_arena *a = oms_xcalloc(1, sizeof *a);
    a->next_size = first_block ? first_block : 4096;
    return a;
}

void oms_arena_free(oms_arena *a)
{
    if (!a)
        return;
    for (cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->p);
    block *b = a->head;
    while (b) {
        block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

void *oms_arena_alloc(oms_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = a->next_size;
        while (size < n)
            size *= 2;
        if (a->next_size < (1u << 20))
            a->next_size *= 2;
        b = block_new(size);
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *oms_arena_strndup(oms_arena *a, const char *s, size_t n)
{
    char *d = oms_arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *oms_arena_strdup(oms_arena *a, const char *s)
{
    return s ? oms_arena_strndup(a, s, strlen(s)) : NULL;
}

char *oms_arena_printf(oms_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = oms_arena_alloc(a, (size_t)n + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

int oms_arena_on_cleanup(oms_arena *a, oms_cleanup_fn fn, void *p)
{
    cleanup *c = oms_arena_alloc(a, sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}
