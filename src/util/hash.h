#ifndef OMS_HASH_H
#define OMS_HASH_H

/* FNV-1a, 64 bits: the hash of the process's in-memory tables (statement
 * caches, memos, lock and freshness slots). Never stored: a table keyed by
 * it may change its hash with any build. Unseeded, so anyone can find
 * colliding keys: a table keyed by what a client sends is a direct-mapped
 * memo (a collision costs a miss) or bounded in entries, and one whose
 * chains a client could lengthen mixes in a per-process seed
 * (src/audit/monitor.c).
 *
 * Inline: the statement caches hash every statement's text on every call. */
#include <stddef.h>
#include <stdint.h>

#define OMS_FNV1A_BASIS 14695981039346656037ULL /* 0xcbf29ce484222325 */
#define OMS_FNV1A_PRIME 1099511628211ULL

/* `h` carried on over a NUL-terminated string (several parts of one key
 * hash in turn, starting from OMS_FNV1A_BASIS or the basis mixed with a
 * tag). */
static inline uint64_t oms_fnv1a_str_from(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * OMS_FNV1A_PRIME;
    return h;
}

static inline uint64_t oms_fnv1a_bytes_from(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * OMS_FNV1A_PRIME;
    return h;
}

static inline uint64_t oms_fnv1a_str(const char *s) { return oms_fnv1a_str_from(OMS_FNV1A_BASIS, s); }

#endif
