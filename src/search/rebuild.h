/* Zero-downtime rebuilds of a branch's search index (SPEC §8,
 * docs/search.md "Rebuilds"). A job builds the next generation in the
 * shadow from a snapshot, in batches, while the active generation keeps
 * serving and updating; commits made meanwhile are recorded
 * (search_pending) and caught up with; the switch happens under a short
 * branch lock of kind `indexing` (at most OMS_SEARCH_SWITCH_MAX_MS), during
 * which writes get 423 with the job's progress; then the old generation is
 * dropped in the background.
 *
 * The job holds a heartbeating lock (kind `indexing`, on the region
 * `search-index/JOB`, which no change touches) that carries its progress;
 * a job whose lock lapses (three missed heartbeats: its builder died) is
 * failed by any instance, and a new rebuild can start. The builder is a
 * thread of the instance that accepted the job. */
#ifndef OMS_SEARCH_REBUILD_H
#define OMS_SEARCH_REBUILD_H

#include <jansson.h>
#include <stdint.h>

#include "http/request.h"
#include "store/db.h"

#define OMS_INDEX_JOB_ID_LEN 36 /* "idx_" + 32 hex */
#define OMS_INDEX_LOCK_REGION "search-index"

/* Records that `resources` (JSON array of KIND/NAME) changed at `commit`
 * while generation `gen` is being built. Inside the commit's transaction. */
int oms_search_pending_add(oms_dbconn *c, int64_t gen, const json_t *resources, const char *commit,
                           oms_error *err);

/* The branch was deleted (inside that transaction): its running job, if
 * any, fails and its locks are released. */
int oms_index_jobs_branch_deleted(oms_dbconn *c, const char *branch, oms_error *err);

/* POST /api/v1/branches/{branch}/index/rebuild: creates the job (its lock,
 * its building generation from the head, its audit events) in one
 * transaction and starts the builder thread. Answers the request. */
int oms_index_rebuild_start(oms_request *req, const char *branch);

/* GET /api/v1/index-jobs/{id}: the job with its branch's read access
 * applied. Answers the request. */
int oms_index_job_get(oms_request *req, const char *id);

/* The background task (src/app/tasks.c): fails jobs whose lock lapsed,
 * drops retired generations in batches, and, once the instance drains,
 * stops this instance's builders (their jobs fail, their locks are
 * released) before it exits. */
typedef struct oms_app oms_app;
void oms_search_jobs_task(oms_app *app);

#endif
