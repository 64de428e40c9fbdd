/* The write-ahead log's frames written in one system call per commit
 * (docs/storage.md "The log's writes").
 *
 * SQLite writes each frame of a commit to the log with two pwrite calls
 * (its 24-byte header, then the page) and then syncs the log: a lock
 * change, 19 frames, made 39 calls, each paying the kernel's fixed cost
 * per write (the file's lock, its times, the page-cache lookups) inside
 * the process's writer turn.
 *
 * This is a VFS over SQLite's own ("unix"): every file is that VFS's,
 * untouched, except the write-ahead log, whose writes that continue the
 * previous one are gathered in memory and written with one pwrite before
 * anything else touches the file: a sync, a read, a truncation, its size,
 * a file control, a write elsewhere, the gathered bytes reaching their
 * bound, or the file's close. A commit's frames become visible to other
 * connections only when the log's index header is published, after the
 * log's sync (synchronous=FULL, which every connection of the service
 * sets); a frame this connection reads back (a rewritten checksum, a
 * spilled page) is read after the flush. What a crash loses is what had
 * not been synced, as without it. */
#ifndef OMS_STORE_SQLITE_WALBUF_H
#define OMS_STORE_SQLITE_WALBUF_H

#include <stdint.h>

/* The VFS's name for sqlite3_open_v2, registered once (not as the
 * default); NULL when it cannot be (the default VFS is then used). Call
 * after oms_sqlite_pcache_install: registering initialises SQLite. */
const char *oms_sqlite_walbuf_vfs(void);

/* Since start (tests, /metrics): frame and header writes SQLite asked
 * for, and the pwrite calls made for them. */
void oms_sqlite_walbuf_counts(uint64_t *asked, uint64_t *written);

#endif
