/* Resource-level diffs between two commits, cached (commits are immutable,
 * so a diff between two ids never changes): the console and `oms diff` ask
 * for the same pair repeatedly. At most 64 pairs and OMS_DIFF_CACHE_MB of
 * diff text, least recently used out. */
#ifndef OMS_DIFF_CACHE_H
#define OMS_DIFF_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#define OMS_DIFF_CACHE_DEFAULT_MB 32

/* A copy of the cached diff's compact JSON text (NUL-terminated, owned by
 * the caller; *len its length), or NULL. */
char *oms_diff_cache_get(const char *from, const char *to, size_t *len, bool *breaking);
/* Keeps a copy of the text `changes` (not when it exceeds an eighth of the
 * bound). */
void oms_diff_cache_put(const char *from, const char *to, const char *changes, size_t len, bool breaking);
void oms_diff_cache_set_limit_mb(size_t mb);
size_t oms_diff_cache_bytes(void); /* held now */

#endif
