/* The one mapping from the databases' own error codes to oms_err, for both
 * backends side by side. Running out of time is OMS_ETIMEOUT whatever the
 * cause (statement_timeout, lock_timeout, SQLite's write lock not free
 * within the busy timeout): every one answers 503 database_timeout with
 * Retry-After. A full disk is OMS_EFULL (507 storage_full). */
#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#include "store/db_driver.h"

/* SQLSTATEs by code, or by class when `state` has two characters. */
static const struct {
    const char *state;
    oms_err code;
    const char *what;
} k_pg[] = {
    {"23505", OMS_ECONFLICT, "unique constraint"},
    {"40001", OMS_EUNAVAIL, "serialization failure"},
    {"40P01", OMS_EUNAVAIL, "deadlock detected"},
    {"57014", OMS_ETIMEOUT, "statement timeout"},     /* query_canceled: statement_timeout (or a cancel) */
    {"55P03", OMS_ETIMEOUT, "lock timeout"},          /* lock_not_available: lock_timeout, NOWAIT */
    {"25P03", OMS_EDB, "idle-in-transaction timeout"}, /* the server ended the session */
    {"53100", OMS_EFULL, "disk full"},
    {"53300", OMS_EDB, "too many connections"},
    {"57P01", OMS_EDB, "server shutting down"},
    {"57P02", OMS_EDB, "server crashed"},
    {"57P03", OMS_EDB, "server not accepting connections yet"},
    {"25006", OMS_EDB, "server is read-only"},
    {"08", OMS_EDB, "connection error"},
};

int oms_db_pg_error(const char *state, const char *msg, oms_error *err)
{
    if (!msg)
        msg = "error";
    for (size_t i = 0; state && i < sizeof k_pg / sizeof k_pg[0]; i++) {
        size_t n = strlen(k_pg[i].state);
        if (strncmp(state, k_pg[i].state, n) == 0 && (n == 2 || state[n] == '\0'))
            return oms_err_set(err, k_pg[i].code, "PostgreSQL %s: %s", k_pg[i].what, msg);
    }
    return oms_err_set(err, OMS_EINTERNAL, "postgresql %s: %s", state ? state : "?", msg);
}

/* SQLite result codes: extended codes first, then primary ones. */
static const struct {
    int rc;
    oms_err code;
    const char *what;
} k_sqlite[] = {
    {SQLITE_CONSTRAINT_UNIQUE, OMS_ECONFLICT, "unique constraint"},
    {SQLITE_CONSTRAINT_PRIMARYKEY, OMS_ECONFLICT, "unique constraint"},
    {SQLITE_BUSY, OMS_ETIMEOUT, "database busy"},
    {SQLITE_LOCKED, OMS_ETIMEOUT, "database table locked"},
    {SQLITE_FULL, OMS_EFULL, "disk full"},
    {SQLITE_IOERR, OMS_EDB, "I/O error"},
    {SQLITE_READONLY, OMS_EDB, "database is read-only"},
    {SQLITE_CANTOPEN, OMS_EDB, "cannot open the database"},
};

int oms_db_sqlite_error(int rc, int extended, int sys_errno, const char *msg, int busy_ms, oms_error *err)
{
    if (!msg)
        msg = "error";
    /* An I/O error the kernel explained as "no space" is a full disk too
     * (the shared-memory index, a file being extended). */
    if ((rc & 0xff) == SQLITE_IOERR && (sys_errno == ENOSPC || sys_errno == EDQUOT))
        return oms_err_set(err, OMS_EFULL, "sqlite disk full: %s", msg);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof k_sqlite / sizeof k_sqlite[0]; i++) {
            int want = pass == 0 ? extended : (rc & 0xff);
            if (k_sqlite[i].rc != want)
                continue;
            if (k_sqlite[i].code == OMS_ETIMEOUT)
                return oms_err_set(err, OMS_ETIMEOUT, "sqlite %s: the write lock was not free within %d ms",
                                   k_sqlite[i].what, busy_ms);
            return oms_err_set(err, k_sqlite[i].code, "sqlite %s: %s", k_sqlite[i].what, msg);
        }
    return oms_err_set(err, OMS_EINTERNAL, "sqlite: %s", msg);
}
