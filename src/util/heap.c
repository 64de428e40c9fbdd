#include "util/heap.h"

#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

void oms_heap_serve(void)
{
    if (!mallctl)
        return;
    /* jemalloc returns freed pages to the system in whichever thread
     * allocates when the decay is due: a request then pays for madvise
     * calls and the page faults after them. Its background threads do that
     * work instead (Redis's `jemalloc-bg-thread yes`, for the same reason:
     * latency). MALLOC_CONF=background_thread:false turns them off. */
    const char *conf = getenv("MALLOC_CONF");
    if (conf && strstr(conf, "background_thread"))
        return; /* the operator chose */
    bool on = true;
    mallctl("background_thread", NULL, NULL, &on, sizeof on);
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
