#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "ops/log.h"
#include "store/migrations.h"
#include "util/time.h"

/* Key of the transaction-scoped advisory lock that serialises migrations
 * ("OMS-MIGR" in ASCII). */
#define MIGRATION_LOCK_KEY "5714731494813124946"

static const char *backend_tag(const oms_store *s)
{
    return oms_db_backend_of(s->db) == OMS_DB_PG ? "pg" : "sqlite";
}

int oms_store_open(oms_store **out, const char *url, int busy_timeout_ms, oms_error *err)
{
    oms_store *s = calloc(1, sizeof *s);
    int rc = oms_db_open(&s->db, url, busy_timeout_ms, err);
    if (rc) {
        free(s);
        return rc;
    }
    oms_dbconn *c;
    if ((rc = oms_db_conn(s->db, &c, err)) != OMS_OK) {
        oms_store_close(s);
        return rc;
    }
    *out = s;
    return OMS_OK;
}

void oms_store_close(oms_store *s)
{
    if (!s)
        return;
    oms_db_close(s->db);
    free(s);
}

int oms_store_latest_version(const oms_store *s)
{
    int v = 0;
    for (int i = 0; i < oms_migrations_count; i++)
        if (strcmp(oms_migrations[i].backend, backend_tag(s)) == 0 && oms_migrations[i].version > v)
            v = oms_migrations[i].version;
    return v;
}

static const char k_bootstrap[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

static int read_version(oms_dbconn *c, int *out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, &r, err);
    if (rc == OMS_OK)
        *out = (int)oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_store_schema_version(oms_store *s, int *out, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc)
        return rc;
    oms_dbres *r = NULL;
    /* A database that never saw a migration has no table yet: version 0. */
    const char *probe = oms_db_backend_of(s->db) == OMS_DB_PG
                            ? "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'"
                            : "SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'";
    if ((rc = oms_db_exec(c, probe, NULL, 0, &r, err)) != OMS_OK)
        return rc;
    bool exists = oms_dbres_int(r, 0, 0) > 0;
    oms_dbres_free(r);
    if (!exists) {
        *out = 0;
        return OMS_OK;
    }
    return read_version(c, out, err);
}

int oms_store_migrate(oms_store *s, int *applied, oms_error *err)
{
    return oms_store_migrate_to(s, oms_store_latest_version(s), applied, err);
}

int oms_store_migrate_to(oms_store *s, int target, int *applied, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err), current = 0, n = 0;
    if (rc)
        return rc;
    if ((rc = oms_db_begin(c, true, err)) != OMS_OK)
        return rc;
    if (oms_db_backend_of(s->db) == OMS_DB_PG &&
        (rc = oms_db_exec(c, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", NULL, 0, NULL, err)))
        goto fail;
    if ((rc = oms_db_exec(c, k_bootstrap, NULL, 0, NULL, err)) != OMS_OK)
        goto fail;
    if ((rc = read_version(c, &current, err)) != OMS_OK)
        goto fail;
    int latest = oms_store_latest_version(s);
    if (current > latest) {
        rc = oms_err_set(err, OMS_ECONFIG,
                         "database schema version %d is newer than this binary (%d): upgrade oms",
                         current, latest);
        goto fail;
    }
    /* Stopping early builds the databases of earlier versions that the
     * upgrade test starts from; migrations never run backwards. */
    if (target < 1 || target > latest || target < current) {
        rc = oms_err_set(err, OMS_ECONFIG,
                         "cannot migrate to version %d: the database is at %d, this binary knows 1 to %d", target,
                         current, latest);
        goto fail;
    }
    /* Versions apply in increasing order; a number no file uses is no
     * migration (versions are reserved per subsystem while work is under way). */
    for (int v = current + 1; v <= target; v++) {
        const oms_migration *m = NULL;
        for (int i = 0; i < oms_migrations_count; i++)
            if (oms_migrations[i].version == v && strcmp(oms_migrations[i].backend, backend_tag(s)) == 0)
                m = &oms_migrations[i];
        if (!m)
            continue;
        if ((rc = oms_db_exec_script(c, m->sql, err)) != OMS_OK) {
            oms_err_set(err, rc, "migration %s failed", m->name);
            goto fail;
        }
        oms_dbparam p[] = {DBP_INT(v), DBP_TEXT(m->name), DBP_INT(oms_now_ms())};
        if ((rc = oms_db_exec(c, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                              p, 3, NULL, err)))
            goto fail;
        n++;
    }
    if ((rc = oms_db_commit(c, err)) != OMS_OK)
        return rc;
    if (applied)
        *applied = n;
    return OMS_OK;
fail:
    oms_db_rollback(c);
    return rc;
}

int oms_store_ready(oms_store *s, oms_error *err)
{
    int v = 0, rc = oms_store_schema_version(s, &v, err);
    if (rc) {
        oms_db_conn_reset(s->db);
        return oms_err_set(err, OMS_EDB, "database unreachable");
    }
    if (v < oms_store_latest_version(s))
        return oms_err_set(err, OMS_EUNAVAIL, "migrations pending (%d of %d)", v,
                           oms_store_latest_version(s));
    return OMS_OK;
}
