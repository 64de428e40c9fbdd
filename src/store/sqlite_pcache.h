/* SQLite's own page cache, without a walk of the whole cache at the end of
 * most write transactions (docs/storage.md "SQLite's page cache").
 *
 * When a B-tree page splits, SQLite renumbers a new page for a moment to
 * the page just past its lock byte (page 262,145 at 4 KiB pages), and its
 * page cache (pcache1) remembers that number as the largest it holds. At
 * the end of the transaction the pager truncates the cache to the
 * database's size; while the database is under 1 GiB that size is below
 * the remembered number, and pcache1 walks every slot of its hash table to
 * find pages past the end, of which there are none. With a full 16 MiB
 * writer cache that walk was 5.5 % of a one-client server's samples, about
 * 120 µs of a 2.2 ms commit (docs/BENCHMARKS.md, round 22).
 *
 * This wraps pcache1 (every call goes to it) and keeps, per cache, an upper
 * bound on the page numbers it can hold, with the renumbering's temporary
 * page counted apart: a truncation past that bound, with no page at the
 * temporary number, cannot remove anything and is not passed on. Every
 * other truncation is pcache1's own. */
#ifndef OMS_STORE_SQLITE_PCACHE_H
#define OMS_STORE_SQLITE_PCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Installs the wrapper process-wide, once; must run before SQLite is
 * initialised (the first sqlite3_open does that). False when SQLite was
 * already initialised: its own cache stays, which is only slower. */
bool oms_sqlite_pcache_install(void);

/* Since start (tests, /metrics): truncations passed to pcache1; those not
 * passed (no page at or past the limit); pages renumbered to the temporary
 * number (each left pcache1 a walk to make at its transaction's end). Any
 * pointer may be NULL. */
void oms_sqlite_pcache_counts(uint64_t *passed, uint64_t *skipped, uint64_t *renumbered);

#endif
