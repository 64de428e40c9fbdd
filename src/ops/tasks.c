/* The background task table (src/ops/background.h). */
#include "ops/background.h"

#include <stddef.h>

#include "audit/audit.h"
#include "governance/overrides.h"
#include "locks/reaper.h"
#include "search/rebuild.h"

/* A task with nothing to do keeps the table non-empty in C; real tasks are
 * added above it by the subsystems that need them. */
static void heartbeat(oms_app *app) { (void)app; }

const oms_task oms_tasks[] = {
    /* name, interval (ms), function */
    {"audit-seal", 250, oms_audit_seal_task}, /* events are sealed into a signed checkpoint within a second */
    {"lock-reaper", 1000, oms_lock_reaper_run}, /* expiry is exact without it; this records and audits it */
    {"override-expiry", 5000, oms_override_expiry_task},
    {"search-jobs", 1000, oms_search_jobs_task}, /* fails rebuilds whose lock lapsed; drops retired generations */
    {"heartbeat", 60000, heartbeat},
};
const int oms_tasks_count = (int)(sizeof oms_tasks / sizeof oms_tasks[0]);
