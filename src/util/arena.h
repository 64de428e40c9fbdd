/* Per-request arena (nginx pools, h2o req->pool): everything a request
 * allocates lives here and is released at once when the request ends.
 * Cleanup hooks release non-memory resources (jansson values, DB results). */
#ifndef OMS_ARENA_H
#define OMS_ARENA_H

#include <stddef.h>

typedef struct oms_arena oms_arena;
typedef void (*oms_cleanup_fn)(void *);

oms_arena *oms_arena_new(size_t first_block);
void oms_arena_free(oms_arena *a);
void *oms_arena_alloc(oms_arena *a, size_t n);  /* zeroed, 16-byte aligned; never NULL (util/alloc.h) */
char *oms_arena_strdup(oms_arena *a, const char *s);
char *oms_arena_strndup(oms_arena *a, const char *s, size_t n);
char *oms_arena_printf(oms_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs fn(p) when the arena is freed, in reverse registration order. */
int oms_arena_on_cleanup(oms_arena *a, oms_cleanup_fn fn, void *p);

#endif
