/* PostgreSQL's sole-writer lease, held by a server that is the only writer
 * of its database (docs/storage.md "The sole-writer lease").
 *
 * A server that finds no other writer and no other session on its database
 * takes a session advisory lock exclusively, on a connection of its own,
 * and records itself in oms_sole_writer with a heartbeat. While it holds
 * them, every other write transaction, of any process, waits in
 * oms_write_guard() (store/db.c sends it with each BEGIN), so the holder
 * knows every commit: it answers repeat reads of a branch from memory while
 * its own commit count is unchanged (store/freshness.c), instead of a round
 * trip per read.
 *
 * It gives the lease back as soon as another writer waits or another
 * session connects (it looks every 50 ms): drops it in memory, waits for
 * its own write transactions begun without the guard, deletes its row,
 * unlocks. A holder that vanished
 * without that (killed, its connection cut) leaves its row: writers then
 * wait until two seconds after its last heartbeat, by the database's clock,
 * while the holder trusts its memory for at most one second after the
 * start of its last heartbeat that succeeded, by its own. */
#ifndef OMS_STORE_SOLE_WRITER_H
#define OMS_STORE_SOLE_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "util/error.h"

typedef struct oms_sole_writer oms_sole_writer;

/* Starts the thread that takes and keeps the lease (PostgreSQL only: *out
 * is NULL on other backends). */
int oms_sole_writer_start(oms_db *db, oms_sole_writer **out, oms_error *err);
/* Gives the lease back (as when another writer waits) and stops. NULL: nothing. */
void oms_sole_writer_stop(oms_sole_writer *s);

/* For /metrics: whether this process holds the lease, and how many times it
 * gave it back to another writer. */
bool oms_sole_writer_held(void);
uint64_t oms_sole_writer_yields(void);

#endif
