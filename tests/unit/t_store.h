/* A migrated SQLite store in a fresh temporary directory, for unit tests
 * that need the real schema: t_store_open makes it (dir: a buffer of at
 * least 64 bytes, "/tmp/oms-<name>-XXXXXX" afterwards; the database is
 * <dir>/oms.db) and gives the calling thread's connection; t_store_remove
 * closes it and removes the directory. */
#ifndef OMS_T_STORE_H
#define OMS_T_STORE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

static inline bool t_store_open(const char *name, char dir[64], oms_store **store, oms_dbconn **conn)
{
    snprintf(dir, 64, "/tmp/oms-%s-XXXXXX", name);
    if (!mkdtemp(dir))
        return false;
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/oms.db", dir);
    oms_error err;
    int applied = 0;
    if (oms_store_open(store, url, 5000, &err) || oms_store_migrate(*store, &applied, &err) ||
        oms_db_conn((*store)->db, conn, &err)) {
        fprintf(stderr, "  store: %s\n", err.msg);
        return false;
    }
    return true;
}

static inline void t_store_remove(const char *dir, oms_store *store)
{
    if (store)
        oms_store_close(store);
    if (!dir[0])
        return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  cannot remove %s\n", dir);
}

#endif
