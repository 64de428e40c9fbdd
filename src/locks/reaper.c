/* Expired locks are already powerless: every reader and the write path judge
 * expiry by the database clock themselves. The reaper only records the fact
 * (state 'expired', ended_at = the deadline that passed) and audits it, once.
 * On PostgreSQL one instance at a time reaps, under a transaction-scoped
 * try-lock; rows a writer holds are skipped, never waited for. */
#include "locks/reaper.h"

#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "events/events.h"
#include "locks/locks.h"
#include "infra/log.h"
#include "store/locks_sql.h"
#include "store/store.h"
#include "util/time.h"

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
    if (rc == OMS_OK) {
        json_t *data = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "action", "lock.expired", "id", l->id,
                                 "scope", l->scope, "resource_type", l->resource_type, "resource_id", l->resource_id,
                                 "holder", l->holder, "cause", heartbeat ? "missed_heartbeats" : "ttl", "deadline_at",
                                 deadline);
        if (l->branch && data)
            json_object_set_new(data, "branch", json_string(l->branch));
        rc = oms_event_emit(c, "lock.expired", l->id, l->branch, data, err);
    }
    return rc;
}

void oms_lock_reap(struct oms_store *store)
{
    oms_db *db = store->db;
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_arena *a = NULL;
    bool due = false, mine = false;
    if (oms_db_conn(db, &c, &err))
        return;
    /* A cheap read first: most runs find nothing and open no transaction. */
    int rc = oms_store_locks_due(c, &due, &err);
    if (rc || !due)
        goto out;
    if ((rc = oms_db_begin(c, true, &err)))
        goto out;
    if ((rc = oms_store_locks_reaper_turn(c, &mine, &err)) || !mine) /* another instance is reaping */
        goto rollback;
    if ((rc = oms_store_locks_reap(c, &r, &err)))
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
