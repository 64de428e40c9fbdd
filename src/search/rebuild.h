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
#include <stdbool.h>
#include <stdint.h>

#include "core/context.h"
#include "locks/locks.h"
#include "store/db.h"
#include "store/store.h"

#define OMS_INDEX_JOB_ID_LEN 36 /* "idx_" + 32 hex */
#define OMS_INDEX_LOCK_REGION "search-index"

/* Records that `resources` (JSON array of KIND/NAME) changed at `commit`
 * while generation `gen` is being built. Inside the commit's transaction. */
int oms_search_pending_add(oms_dbconn *c, int64_t gen, const json_t *resources, const char *commit,
                           oms_error *err);
/* The branch was deleted (inside that transaction): its running job, if
 * any, fails and its locks are released. */
int oms_index_jobs_branch_deleted(oms_dbconn *c, const char *branch, oms_error *err);

/* POST /api/v1/branches/{branch}/index/rebuild creates the job (its lock,
 * its building generation from the head, its audit events) in one change
 * transaction (src/txn/change.h, run by src/api/search.c), then starts the
 * builder thread. */
typedef struct {
    const char *branch, *why; /* why: the optional reason */
    const char *holder;       /* the requester, or "oms" */
    int64_t heartbeat_s;
    char job[OMS_INDEX_JOB_ID_LEN + 1], lock_id[OMS_LOCK_ID_LEN + 1], head[65];
    int64_t gen, token;
} oms_index_rebuild;

/* `draining`: the instance is shutting down (OMS_EUNAVAIL). */
int oms_index_rebuild_prepare(oms_ctx *ctx, oms_index_rebuild *st, const char *branch, const char *why,
                              bool draining, oms_error *err);
/* The step, inside the write transaction: OMS_ENOTFOUND, OMS_ECONFLICT
 * ("rebuild_running" with the job, or "lock_conflict" with the conflicts,
 * in the problem), database errors. */
int oms_index_rebuild_write(oms_dbconn *c, oms_ctx *ctx, oms_index_rebuild *st, oms_error *err);
/* The index.rebuild (start) event's detail (owned). */
json_t *oms_index_rebuild_detail(const oms_index_rebuild *st);
/* After that event: the job lock's acquisition (lock.acquire). */
int oms_index_rebuild_lock_event(oms_dbconn *c, oms_ctx *ctx, const oms_index_rebuild *st, oms_error *err);
/* After the commit: starts the builder; *out is the job (owned). */
int oms_index_rebuild_launch(oms_ctx *ctx, const oms_index_rebuild *st, json_t **out, oms_error *err);

/* GET /api/v1/index-jobs/{id}: the job (owned) and its branch (in
 * ctx->arena), whose read access the caller applies. */
int oms_index_job_get(oms_ctx *ctx, const char *id, json_t **out, const char **branch, oms_error *err);

/* The background task (src/app/tasks.c): fails jobs whose lock lapsed,
 * drops retired generations in batches, and, once the instance drains,
 * stops this instance's builders (their jobs fail, their locks are
 * released) before it exits. */
void oms_search_jobs_task(oms_store *store, bool draining);

#endif
