#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/log.h"
#include "store/freshness.h"
#include "store/migrations.h"
#include "store/tree_convert.h"
#include "util/alloc.h"
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
    oms_db_opts o = oms_db_opts_default();
    o.busy_timeout_ms = busy_timeout_ms;
    return oms_store_open_opts(out, url, &o, err);
}

int oms_store_open_opts(oms_store **out, const char *url, const oms_db_opts *opts, oms_error *err)
{
    oms_store *s = oms_xcalloc(1, sizeof *s);
    int rc = oms_db_open(&s->db, url, opts, err);
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
    oms_store_fresh_stop_reader(); /* no request can park any more */
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

static bool known_migration(const oms_store *s, int v)
{
    for (int i = 0; i < oms_migrations_count; i++)
        if (oms_migrations[i].version == v && strcmp(oms_migrations[i].backend, backend_tag(s)) == 0)
            return true;
    return false;
}

/* The schema version: the highest v such that every migration this binary
 * knows up to v is applied. Versions are reserved per piece of work while
 * it is under way (docs/storage.md), so a database may have a later
 * migration recorded before an earlier one exists (0011 before 0010): when
 * the earlier one arrives the version drops below it, it counts as pending
 * and is applied then, out of order, instead of being skipped for ever.
 * `max` gets the highest version recorded (may be NULL). */
static int read_version(const oms_store *s, oms_dbconn *c, int *out, int *max, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT version FROM schema_migrations ORDER BY version", NULL, 0, &r, err);
    if (rc)
        return rc;
    int top = r->nrows ? (int)oms_dbres_int(r, r->nrows - 1, 0) : 0, v = top;
    for (int k = 1; k <= top; k++) {
        bool recorded = false;
        for (size_t i = 0; i < r->nrows && !recorded; i++)
            recorded = oms_dbres_int(r, i, 0) == k;
        if (!recorded && known_migration(s, k)) {
            v = k - 1;
            break;
        }
    }
    oms_dbres_free(r);
    *out = v;
    if (max)
        *max = top;
    return OMS_OK;
}

static int recorded(oms_dbconn *c, int v, bool *out, oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(v)};
    int rc = oms_db_exec(c, "SELECT 1 FROM schema_migrations WHERE version = $1", p, 1, &r, err);
    *out = rc == OMS_OK && r->nrows > 0;
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
    return read_version(s, c, out, NULL, err);
}

int oms_store_migrate(oms_store *s, int *applied, oms_error *err)
{
    return oms_store_migrate_to(s, oms_store_latest_version(s), applied, err);
}

/* Migrations with a data step in C: their script runs first (it must be
 * idempotent), then the step, and only then is the version recorded, so a
 * database whose step did not finish is still "migrations pending" and the
 * next start resumes it. Version 14: legacy JSON trees become the stored
 * trie (store/tree_convert.h). */
#define TREE_CONVERSION_VERSION 14

static bool has_data_step(int v) { return v == TREE_CONVERSION_VERSION; }

static int migration_lock(oms_store *s, oms_dbconn *c, oms_error *err)
{
    int rc;
    if (oms_db_backend_of(s->db) == OMS_DB_PG &&
        ((rc = oms_db_exec(c, "SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true)",
                           NULL, 0, NULL, err)) ||
         (rc = oms_db_exec(c, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", NULL, 0, NULL, err))))
        return rc;
    return OMS_OK;
}

static const oms_migration *migration_of(const oms_store *s, int v)
{
    const oms_migration *m = NULL;
    for (int i = 0; i < oms_migrations_count; i++)
        if (oms_migrations[i].version == v && strcmp(oms_migrations[i].backend, backend_tag(s)) == 0)
            m = &oms_migrations[i];
    return m;
}

static int record(oms_dbconn *c, const oms_migration *m, oms_error *err)
{
    oms_dbparam p[] = {DBP_INT(m->version), DBP_TEXT(m->name), DBP_INT(oms_now_ms())};
    return oms_db_exec(c, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", p, 3,
                       NULL, err);
}

/* Applies versions up to `target` in the caller's transaction. A version
 * with a data step: inline (restore, one transaction), or its script only,
 * *pending set to it and the walk stopped there (oms_store_migrate_to runs
 * the step in batches of transactions). */
static int migrate_steps(oms_store *s, oms_dbconn *c, int target, bool inline_data, int *applied, int *pending,
                         oms_error *err)
{
    int rc, current = 0, top = 0, n = 0;
    *pending = 0;
    if ((rc = migration_lock(s, c, err)))
        return rc;
    if ((rc = oms_db_exec(c, k_bootstrap, NULL, 0, NULL, err)) != OMS_OK)
        return rc;
    if ((rc = read_version(s, c, &current, &top, err)) != OMS_OK)
        return rc;
    int latest = oms_store_latest_version(s);
    if (top > latest)
        return oms_err_set(err, OMS_ECONFIG, "database schema version %d is newer than this binary (%d): upgrade oms",
                           top, latest);
    /* Stopping early builds the databases of earlier versions that the
     * upgrade test starts from; migrations never run backwards. */
    if (target < 1 || target > latest || target < current)
        return oms_err_set(err, OMS_ECONFIG,
                           "cannot migrate to version %d: the database is at %d, this binary knows 1 to %d", target,
                           current, latest);
    /* Versions apply in increasing order; a number no file uses is no
     * migration (versions are reserved per subsystem while work is under way). */
    for (int v = current + 1; v <= target; v++) {
        const oms_migration *m = migration_of(s, v);
        bool done = false;
        if (!m || (rc = recorded(c, v, &done, err)) != OMS_OK || done) {
            if (rc)
                return rc;
            continue; /* no such migration, or applied ahead of a reserved earlier one */
        }
        if ((rc = oms_db_exec_script(c, m->sql, err)) != OMS_OK)
            return oms_err_set(err, rc, "migration %s failed", m->name);
        if (has_data_step(v) && !inline_data) {
            *pending = v;
            break;
        }
        if (has_data_step(v) && (rc = oms_tree_conv_all(c, err)))
            return rc;
        if ((rc = record(c, m, err)))
            return rc;
        n++;
    }
    if (applied)
        *applied = n;
    return OMS_OK;
}

int oms_store_migrate_in_tx(oms_store *s, oms_dbconn *c, int target, int *applied, oms_error *err)
{
    int pending = 0;
    return migrate_steps(s, c, target, true, applied, &pending, err);
}

/* Test hook (tests/api/test_tree_storage.py): the process kills itself
 * after this many trees were converted and committed, one per batch. */
static int64_t kill_after(void)
{
    const char *v = getenv("OMS_TEST_TREE_CONVERT_KILL_AFTER");
    return v && *v ? strtoll(v, NULL, 10) : 0;
}

/* The data step of version `v` in batches of transactions, each under the
 * migration lock (crash-safe: a batch commits whole; idempotent: the next
 * start converts what is left), then the last transaction finishes the
 * step and records the version. Instances starting together may all run
 * it; *recorded_here is set only in the one that recorded the version (so
 * it alone counts it as applied). */
static int run_data_step(oms_store *s, oms_dbconn *c, int v, bool *recorded_here, oms_error *err)
{
    *recorded_here = false;
    oms_tree_conv *cv = oms_tree_conv_new();
    int64_t total = 0, n = 0, stop = kill_after();
    bool done = false;
    int rc = OMS_OK;
    do {
        if ((rc = oms_db_begin(c, true, err)))
            break;
        if ((rc = migration_lock(s, c, err)) == OMS_OK && (rc = recorded(c, v, &done, err)) == OMS_OK && !done)
            rc = oms_tree_conv_batch(cv, c, stop > 0 ? 1 : 200, &n, err);
        if (rc) {
            oms_db_rollback(c);
            break;
        }
        if ((rc = oms_db_commit(c, err)))
            break;
        total += done ? 0 : n;
        if (stop > 0 && total >= stop && n > 0)
            raise(SIGKILL);
    } while (!done && n > 0);
    oms_tree_conv_free(cv);
    if (rc || done)
        return rc;
    oms_log(OMS_LOG_INFO, "converted %lld trees to the stored trie (migration %d)", (long long)total, v);
    if ((rc = oms_db_begin(c, true, err)))
        return rc;
    if ((rc = migration_lock(s, c, err)) == OMS_OK && (rc = recorded(c, v, &done, err)) == OMS_OK && !done &&
        (rc = oms_tree_conv_all(c, err)) == OMS_OK)
        rc = record(c, migration_of(s, v), err);
    if (rc) {
        oms_db_rollback(c);
        return rc;
    }
    if ((rc = oms_db_commit(c, err)) == OMS_OK)
        *recorded_here = !done;
    return rc;
}

int oms_store_migrate_to(oms_store *s, int target, int *applied, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err), n = 0, total = 0, pending = 0;
    if (rc)
        return rc;
    /* A migration may take long, and so may waiting for another instance's:
     * no deadline for it (the request deadlines are for requests). */
    oms_db_deadline(c, 0);
    do {
        if ((rc = oms_db_begin(c, true, err)) != OMS_OK)
            goto out;
        if ((rc = migrate_steps(s, c, target, false, &n, &pending, err)) != OMS_OK) {
            oms_db_rollback(c);
            goto out;
        }
        if ((rc = oms_db_commit(c, err)) != OMS_OK)
            goto out;
        total += n;
        if (pending) {
            bool here = false;
            if ((rc = run_data_step(s, c, pending, &here, err)))
                goto out;
            total += here;
        }
    } while (pending);
    if (applied)
        *applied = total;
    /* migration 0017 may have added it, here or in another process */
    oms_db_write_guard_recheck(s->db);
out:
    oms_db_deadline(c, -1);
    return rc;
}

/* The write probe, inside its own transaction with its own deadline.
 * PostgreSQL: a transaction that gets a transaction id and commits writes
 * and flushes a commit record to the WAL, which is what every change
 * needs (a full WAL disk or a read-only server fails it), and touches no
 * table. SQLite: taking the write lock within the deadline (a full disk is
 * seen by the free-space check, which is cheaper than a failed write). */
static int write_probe(oms_store *s, oms_dbconn *c, int timeout_ms, oms_error *err)
{
    /* On PostgreSQL the probe changes no row (a transaction id proves the
     * server takes writes): begun as a read, it takes no write guard, so
     * it never waits on the sole-writer lease (docs/storage.md), which
     * waits in turn for writes that a locked row holds up. */
    int rc = oms_db_begin(c, oms_db_backend_of(s->db) != OMS_DB_PG, err);
    if (rc)
        return rc;
    if (oms_db_backend_of(s->db) == OMS_DB_PG) {
        char ms[16];
        snprintf(ms, sizeof ms, "%d", timeout_ms);
        oms_dbparam p[] = {DBP_TEXT(ms)};
        if ((rc = oms_db_exec(c, "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)",
                              p, 1, NULL, err)) == OMS_OK &&
            (rc = oms_db_exec(c, "SELECT txid_current()", NULL, 0, NULL, err)) == OMS_OK)
            return oms_db_commit(c, err);
    }
    oms_db_rollback(c);
    return rc;
}

int oms_store_probe(oms_store *s, int timeout_ms, int64_t min_free_bytes, oms_error *err)
{
    int64_t free_bytes = oms_db_free_bytes(s->db);
    if (free_bytes >= 0 && free_bytes < min_free_bytes)
        return oms_err_set(err, OMS_EFULL, "disk full: %lld KiB free on the database's filesystem (at least %lld KiB needed)",
                           (long long)(free_bytes / 1024), (long long)(min_free_bytes / 1024));
    oms_dbconn *c;
    oms_error e;
    int rc = oms_db_conn(s->db, &c, &e);
    if (rc)
        return oms_err_set(err, OMS_EDB, "database unreachable: %s", e.msg);
    oms_db_deadline(c, timeout_ms);
    int v = 0;
    if ((rc = oms_store_schema_version(s, &v, &e)) != OMS_OK)
        goto out;
    if (v < oms_store_latest_version(s)) {
        rc = oms_err_set(&e, OMS_EUNAVAIL, "migrations pending (%d of %d)", v, oms_store_latest_version(s));
        goto out;
    }
    rc = write_probe(s, c, timeout_ms, &e);
out:
    oms_db_deadline(c, -1);
    if (rc == OMS_OK)
        return OMS_OK;
    switch (rc) {
    case OMS_ETIMEOUT:
        return oms_err_set(err, OMS_ETIMEOUT, "database busy: no answer within %d ms (%s)", timeout_ms, e.msg);
    case OMS_EFULL: return oms_err_set(err, OMS_EFULL, "disk full: %s", e.msg);
    case OMS_EUNAVAIL: return oms_err_set(err, OMS_EUNAVAIL, "%s", e.msg);
    default: return oms_err_set(err, OMS_EDB, "database unreachable: %s", e.msg);
    }
}

int oms_store_ready(oms_store *s, oms_error *err)
{
    return oms_store_probe(s, 1000, 0, err);
}
