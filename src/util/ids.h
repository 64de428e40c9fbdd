#ifndef OMS_IDS_H
#define OMS_IDS_H

#include <stdbool.h>

/* A new identifier of 128 bits as 32 lowercase hex digits (out: 33 bytes):
 * the first 48 bits are the wall clock in milliseconds, big-endian, the
 * other 80 random (as a UUIDv7 lays them out). Ids made later sort after
 * ids made earlier, so a unique index on them grows at its right edge
 * instead of at a random leaf: on a database larger than its caches, a
 * random key costs every insert a page read and a page of its own in the
 * log (docs/storage.md "Time-ordered ids"). Returns false when the
 * system has no randomness to give (never on Linux >= 3.17). */
bool oms_time_ordered_id(char out[33]);

#endif
