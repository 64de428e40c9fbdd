/* A migrated SQLite store in a fresh temporary directory, for unit tests
 * that need the real schema: t_store_open makes it (dir: a buffer of at
 * least 64 bytes, "/tmp/oms-<name>-XXXXXX" afterwards; the database is
 * <dir>/oms.db) and gives the calling thread's connection; t_store_remove
 * closes it and removes the directory.
 *
 * The same on PostgreSQL: t_pg_store_open makes a database of its own on
 * the server OMS_PG_URL names (*skip when that is unset: the test reports
 * itself skipped), t_pg_store_remove closes the store and drops it. */
#ifndef OMS_T_STORE_H
#define OMS_T_STORE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
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

typedef struct {
    oms_db *admin; /* on the server's own database: makes and drops ours */
    void *handle;
    char name[64];
    char url[512]; /* ours */
} t_pg_db;

static inline bool t_pg_store_open(const char *name, t_pg_db *pg, oms_store **store, bool *skip)
{
    const char *base = getenv("OMS_PG_URL");
    memset(pg, 0, sizeof *pg);
    *store = NULL;
    *skip = !base || !*base;
    const char *slash = *skip ? NULL : strrchr(base, '/');
    if (!slash)
        return false;
    oms_error err;
    char sql[160];
    snprintf(pg->name, sizeof pg->name, "oms_unit_%s_%d", name, (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", pg->name);
    if (oms_db_open(&pg->admin, base, NULL, &err) || oms_db_raw_open(pg->admin, &pg->handle, 30000, &err) ||
        oms_db_raw_exec(pg->admin, pg->handle, sql, NULL, 0, NULL, &err)) {
        fprintf(stderr, "  cannot make a database on %s: %s\n", base, err.msg);
        pg->name[0] = 0;
        return false;
    }
    snprintf(pg->url, sizeof pg->url, "%.*s/%s", (int)(slash - base), base, pg->name);
    int applied = 0;
    if (oms_store_open(store, pg->url, 5000, &err) || oms_store_migrate(*store, &applied, &err)) {
        fprintf(stderr, "  store: %s\n", err.msg);
        return false;
    }
    return true;
}

static inline void t_pg_store_remove(t_pg_db *pg, oms_store *store)
{
    if (store)
        oms_store_close(store);
    if (!pg->admin)
        return;
    if (pg->handle && pg->name[0]) {
        char sql[160];
        oms_error err;
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", pg->name);
        oms_db_raw_exec(pg->admin, pg->handle, sql, NULL, 0, NULL, &err);
    }
    if (pg->handle)
        oms_db_raw_close(pg->admin, pg->handle);
    oms_db_close(pg->admin);
}

#endif
