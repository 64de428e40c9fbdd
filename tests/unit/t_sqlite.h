/* Helpers for unit tests that drive SQLite directly: a statement run with
 * its error printed, and the removal of a test database's files. */
#ifndef OMS_T_SQLITE_H
#define OMS_T_SQLITE_H

#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

static inline int t_sqlite_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  %s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    return rc;
}

/* The database `file`, its log and shared memory, then `dir`. */
static inline void t_sqlite_remove(const char *file, const char *dir)
{
    char path[256];
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", file, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
}

#endif
