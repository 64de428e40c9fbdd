/* Resource-level diffs between two commits, cached (commits are immutable,
 * so a diff between two ids never changes): the console and `oms diff` ask
 * for the same pair repeatedly. Bounded by count, least recently used out. */
#ifndef OMS_DIFF_CACHE_H
#define OMS_DIFF_CACHE_H

#include <jansson.h>
#include <stdbool.h>

/* A copy of the cached diff (owned by the caller), or NULL. */
json_t *oms_diff_cache_get(const char *from, const char *to, bool *breaking);
/* Keeps a copy of `changes`. */
void oms_diff_cache_put(const char *from, const char *to, const json_t *changes, bool breaking);

#endif
