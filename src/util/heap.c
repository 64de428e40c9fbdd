#include "util/heap.h"

#include <malloc.h>
#include <stddef.h>

/* jemalloc's control interface, when the link brought jemalloc in (the
 * release build, -ljemalloc). Weak: the same objects also link without it
 * (sanitizer builds; the oms-glibc binary of the clock-skew test, which
 * libfaketime cannot run under jemalloc), and then it is NULL. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) __attribute__((weak));

/* MALLCTL_ARENAS_ALL in jemalloc.h: every arena at once */
#define ALL_ARENAS "4096"

void oms_heap_configure(void)
{
    if (mallctl)
        return; /* jemalloc's defaults (docs/memory.md "The allocator") */
    /* glibc gives each thread its own heap arena; with many workers the
     * memory a large request freed stays spread over all of them. */
    mallopt(M_ARENA_MAX, 2);
}

void oms_heap_release(void)
{
    if (mallctl)
        mallctl("arena." ALL_ARENAS ".purge", NULL, NULL, NULL, 0);
    else
        malloc_trim(0);
}

const char *oms_heap_allocator(void)
{
    return mallctl ? "jemalloc" : "glibc";
}
