/* The background task table (src/ops/background.h). */
#include "ops/background.h"

#include <stdatomic.h>
#include <stddef.h>

#include "audit/audit.h"
#include "audit/monitor.h"
#include "auth/identity.h"
#include "governance/overrides.h"
#include "http/app.h"
#include "infra/config.h"
#include "infra/log.h"
#include "http/ratelimit.h"
#include "locks/reaper.h"
#include "search/rebuild.h"
#include "store/store.h"
#include "webhooks/sender.h"

/* A task with nothing to do keeps the table non-empty in C; real tasks are
 * added above it by the subsystems that need them. */
static void heartbeat(oms_app *app) { (void)app; }

static void identity_poll(oms_app *app)
{
    (void)app;
    oms_identity_poll_task();
}

static void search_jobs(oms_app *app) { oms_search_jobs_task(app->store, atomic_load(&app->draining)); }
static void override_expiry(oms_app *app) { oms_override_expire(app->store); }
static void lock_reaper(oms_app *app) { oms_lock_reap(app->store); }
static void audit_seal(oms_app *app) { oms_audit_seal_run(app->store); }
static void security_monitor(oms_app *app) { oms_monitor_task(app->store); }

/* SQLite only (a no-op on PostgreSQL): see oms_db_wal_reset. */
static void wal_reset(oms_app *app)
{
    oms_error err = {0};
    int64_t limit = oms_config_int(app->cfg, "OMS_SQLITE_WAL_RESET_MB") * 1024 * 1024;
    if (oms_db_wal_reset(app->store->db, limit, 1000, &err) < 0)
        oms_log(OMS_LOG_WARN, "write-ahead log reset failed: %s", err.msg);
}

static void events_retention(oms_app *app) { oms_events_retention_task(app->store, app->cfg); }

static void log_flush(oms_app *app)
{
    (void)app;
    oms_log_flush_suppressed();
}

const oms_task oms_tasks[] = {
    /* name, interval (ms), function */
    {"audit-seal", 250, audit_seal}, /* events are sealed into a signed checkpoint within a second */
    {"lock-reaper", 1000, lock_reaper}, /* expiry is exact without it; this records and audits it */
    {"override-expiry", 5000, override_expiry},
    {"log-suppressed", 1000, log_flush}, /* "suppressed K similar lines" within a second of the last one held back */
    {"security-monitor", 250, security_monitor}, /* burst alerts, stored off the request path */
    {"ratelimit-audit", 1000, oms_ratelimit_task}, /* aggregated refusals of ended windows; storm alerts */
    {"identity-files", 1000, identity_poll}, /* its own interval: OMS_SECRET_FILE_POLL_SECONDS */
    {"search-jobs", 1000, search_jobs}, /* fails rebuilds whose lock lapsed; drops retired generations */
    {"events-retention", 60000, events_retention}, /* OMS_EVENTS_RETENTION_HOURS */
    {"wal-reset", 1000, wal_reset}, /* SQLite: OMS_SQLITE_WAL_RESET_MB */
    {"heartbeat", 60000, heartbeat},
};
const int oms_tasks_count = (int)(sizeof oms_tasks / sizeof oms_tasks[0]);
