/* Expired locks are already powerless: every reader and the write path judge
 * expiry by the database clock themselves. The reaper only records the fact
 * (state 'expired', ended_at = the deadline that passed) and audits it, once.
 * On PostgreSQL one instance at a time reaps, under a transaction-scoped
 * try-lock; rows a writer holds are skipped, never waited for. */
#include "locks/reaper.h"

#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "http/app.h"
#include "locks/locks.h"
#include "infra/log.h"
#include "util/time.h"

#define BATCH "500"

#define PROBE(NOW) "SELECT 1 FROM locks WHERE state = 'active' AND deadline_at <= " NOW " LIMIT 1"

#define REAP(NOW, LOCKING)                                                                                 \
    "UPDATE locks SET state = 'expired', ended_at = deadline_at, ended_by = 'oms' WHERE id IN"              \
    " (SELECT id FROM locks WHERE state = 'active' AND deadline_at <= " NOW " ORDER BY id LIMIT " BATCH     \
    LOCKING ") RETURNING " OMS_LOCK_COLS_BARE

static int audit_expired(oms_dbconn *c, const oms_lock *l, oms_error *err)
{
    bool heartbeat = l->heartbeat_seconds > 0 && l->deadline_at < l->expires_at;
    char deadline[40];
    oms_time_rfc3339_ms(deadline, sizeof deadline, l->deadline_at);
    json_t *d = json_pack("{s:s,s:s?,s:s?,s:s,s:s,s:I,s:s,s:s}", "scope", l->scope, "resource_type",
                          l->resource_type, "resource_id", l->resource_id, "kind", l->kind, "holder", l->holder,
                          "fencing_token", (json_int_t)l->fencing_token, "cause",
                          heartbeat ? "missed_heartbeats" : "ttl", "deadline_at", deadline);
    char *detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    oms_audit_event ev = {.actor_sub = "oms", .action = "lock.expired", .outcome = "success",
                          .resource_kind = "locks", .resource_branch = l->branch, .resource_id = l->id,
                          .detail = detail};
    int rc = oms_audit_append(c, &ev, err);
    free(detail);
    return rc;
}

void oms_lock_reaper_run(oms_app *app)
{
    oms_db *db = app->store->db;
    bool pg = oms_db_backend_of(db) == OMS_DB_PG;
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_arena *a = NULL;
    if (oms_db_conn(db, &c, &err))
        return;
    /* A cheap read first: most runs find nothing and open no transaction. */
    int rc = oms_db_exec(c, pg ? PROBE(OMS_LOCK_NOW_PG) : PROBE(OMS_LOCK_NOW_SQLITE), NULL, 0, &r, &err);
    bool due = rc == OMS_OK && r->nrows > 0;
    oms_dbres_free(r);
    r = NULL;
    if (!due)
        goto out;
    if ((rc = oms_db_begin(c, true, &err)))
        goto out;
    if (pg) {
        rc = oms_db_exec(c, "SELECT pg_try_advisory_xact_lock(" OMS_LOCK_REAPER_KEY ")", NULL, 0, &r, &err);
        bool mine = rc == OMS_OK && strcmp(oms_dbres_get(r, 0, 0), "t") == 0;
        oms_dbres_free(r);
        r = NULL;
        if (!mine) /* another instance is reaping */
            goto rollback;
    }
    static const char *const sql[2] = {REAP(OMS_LOCK_NOW_SQLITE, ""), REAP(OMS_LOCK_NOW_PG, " FOR UPDATE SKIP LOCKED")};
    if ((rc = oms_db_exec(c, sql[pg], NULL, 0, &r, &err)))
        goto rollback;
    a = oms_arena_new(4096);
    for (size_t i = 0; i < r->nrows && rc == OMS_OK; i++) {
        oms_lock l;
        oms_lock_from_row(&l, r, i, 0, a);
        rc = audit_expired(c, &l, &err);
    }
    if (rc)
        goto rollback;
    if ((rc = oms_db_commit(c, &err)))
        goto rollback;
    if (r->nrows)
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "reaped %zu expired lock(s)", r->nrows);
    goto out;
rollback:
    oms_db_rollback(c);
out:
    if (rc) {
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "lock reaper: %s", err.msg);
        if (rc == OMS_EDB)
            oms_db_conn_reset(db);
    }
    oms_dbres_free(r);
    oms_arena_free(a);
}
