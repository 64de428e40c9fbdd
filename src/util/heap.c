#include "util/heap.h"

#include <malloc.h>

#ifdef OMS_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

void oms_heap_configure(void)
{
#ifndef OMS_JEMALLOC
    /* glibc gives each thread its own heap arena; with many workers the
     * memory a large request freed stays spread over all of them. */
    mallopt(M_ARENA_MAX, 2);
#endif
}

void oms_heap_release(void)
{
#ifdef OMS_JEMALLOC
    /* every arena's unused dirty pages, at once (MALLCTL_ARENAS_ALL) */
    static const char purge_all[] = "arena.4096.purge";
    _Static_assert(MALLCTL_ARENAS_ALL == 4096, "purge_all names MALLCTL_ARENAS_ALL");
    mallctl(purge_all, NULL, NULL, NULL, 0);
#else
    malloc_trim(0);
#endif
}

const char *oms_heap_allocator(void)
{
#ifdef OMS_JEMALLOC
    return "jemalloc";
#else
    return "glibc";
#endif
}
