/* Checkpoints of a SQLite database's write-ahead log on a thread of their
 * own (docs/storage.md "The WAL (SQLite)"): the commit that takes the log
 * past its threshold wakes the thread instead of copying the log into the
 * database itself, so no request waits for a checkpoint. One thread per
 * database file in the process, shared by its connections. */
#ifndef OMS_STORE_SQLITE_CHECKPOINTER_H
#define OMS_STORE_SQLITE_CHECKPOINTER_H

#include <sqlite3.h>

typedef struct oms_sqlite_ckpt oms_sqlite_ckpt;

/* Installs the write-ahead log hook on `db` (a connection to `path`) for a
 * threshold of `pages` pages of log, starting the file's thread when it is
 * the first. NULL when no thread could be started: the connection then
 * keeps SQLite's own checkpoints at commit (sqlite3_wal_autocheckpoint). */
oms_sqlite_ckpt *oms_sqlite_ckpt_attach(sqlite3 *db, const char *path, int pages);

/* After the connection is closed: the last one stops the thread, whose own
 * handle is then the last to close. NULL is ignored. */
void oms_sqlite_ckpt_detach(oms_sqlite_ckpt *k);

#endif
