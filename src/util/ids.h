#ifndef OMS_IDS_H
#define OMS_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* Randomness and the identifiers made from it. One source for every id and
 * key the server makes, so that none of them has a weaker fallback of its
 * own: the kernel's generator (getrandom), which after boot never fails
 * for requests this small. */

/* True when the kernel gives randomness; main refuses to start otherwise,
 * so oms_random_bytes can never fail while the server runs. */
bool oms_random_available(void);

/* Fills `buf` with `n` (<= 256) random bytes. Never returns without them:
 * a system that stops giving randomness after the startup check aborts the
 * process rather than hand out a guessable id or key. */
void oms_random_bytes(void *buf, size_t n);

/* `prefix` followed by 32 lowercase hex digits of fresh randomness (out:
 * strlen(prefix) + 33 bytes): the opaque ids of ACL entries, overrides,
 * alerts, proposals, comments and index jobs. */
void oms_random_id(char *out, const char *prefix);

/* A new identifier of 128 bits as 32 lowercase hex digits (out: 33 bytes):
 * the first 48 bits are the wall clock in milliseconds, big-endian, the
 * other 80 random (as a UUIDv7 lays them out). Ids made later sort after
 * ids made earlier, so a unique index on them grows at its right edge
 * instead of at a random leaf: on a database larger than its caches, a
 * random key costs every insert a page read and a page of its own in the
 * log (docs/storage.md "Time-ordered ids"). */
void oms_time_ordered_id(char out[33]);

#endif
