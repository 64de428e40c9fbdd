/* The process allocator (docs/memory.md "The allocator"): jemalloc in the
 * release build, the C library's under a sanitizer (which replaces it).
 * glibc's heap fragments under the server's mix of small JSON nodes and
 * request-sized blocks: in a 4-minute soak its bookkeeping grew from 13 %
 * to 19 % of the server's CPU and commits per minute fell 23 %; jemalloc
 * holds both flat (docs/BENCHMARKS.md, round 9). */
#ifndef OMS_HEAP_H
#define OMS_HEAP_H

/* Once, first thing in main: the allocator's process-wide settings. */
void oms_heap_configure(void);

/* Once, when the server starts (not for client commands): jemalloc's
 * background purging threads. */
void oms_heap_serve(void);

/* Gives memory freed by a large request back to the system now rather
 * than at the allocator's own pace. */
void oms_heap_release(void);

/* "jemalloc" or "glibc": which allocator this build uses. */
const char *oms_heap_allocator(void);

#endif
