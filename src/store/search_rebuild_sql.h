/* The SQL of index rebuild jobs (src/search/rebuild.c, docs/search.md):
 * the index_jobs rows, the pending log of a building generation, the
 * generation switch and the job's own locks (kind `indexing`) in the locks
 * table. Both dialects side by side; times are epoch milliseconds on the
 * database clock. */
#ifndef OMS_STORE_SEARCH_REBUILD_SQL_H
#define OMS_STORE_SEARCH_REBUILD_SQL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "util/error.h"

/* The columns of a job row as the job reads return them: the database
 * clock first, then the job, then its lock's state and deadline (NULL
 * when the lock row is gone). */
enum {
    OMS_INDEX_JOB_COL_NOW,
    OMS_INDEX_JOB_COL_ID,
    OMS_INDEX_JOB_COL_BRANCH,
    OMS_INDEX_JOB_COL_STATE,
    OMS_INDEX_JOB_COL_PHASE,
    OMS_INDEX_JOB_COL_GENERATION,
    OMS_INDEX_JOB_COL_PREVIOUS_GENERATION,
    OMS_INDEX_JOB_COL_COMMIT,
    OMS_INDEX_JOB_COL_LOCK_ID,
    OMS_INDEX_JOB_COL_SWITCH_LOCK_ID,
    OMS_INDEX_JOB_COL_DONE,
    OMS_INDEX_JOB_COL_TOTAL,
    OMS_INDEX_JOB_COL_PERCENT,
    OMS_INDEX_JOB_COL_CAUGHT_UP,
    OMS_INDEX_JOB_COL_REQUESTED_BY,
    OMS_INDEX_JOB_COL_INSTANCE,
    OMS_INDEX_JOB_COL_CREATED_AT,
    OMS_INDEX_JOB_COL_UPDATED_AT,
    OMS_INDEX_JOB_COL_SWITCH_STARTED_AT,
    OMS_INDEX_JOB_COL_SWITCH_ENDED_AT,
    OMS_INDEX_JOB_COL_FINISHED_AT,
    OMS_INDEX_JOB_COL_ERROR,
    OMS_INDEX_JOB_COL_LOCK_STATE,
    OMS_INDEX_JOB_COL_LOCK_DEADLINE,
};

/* One job (OMS_INDEX_JOB_COL_*), no row when there is none. */
int oms_store_index_job_load(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* The running job of a branch (OMS_INDEX_JOB_COL_*), no row when none. */
int oms_store_index_job_running(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* The ids of the running jobs of a branch: rows (id). */
int oms_store_index_jobs_running_on(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* The ids of running jobs whose lock lapsed (or is gone): rows (id). */
int oms_store_index_jobs_lapsed(oms_dbconn *c, oms_dbres **out, oms_error *err);

/* A new job row, running in phase snapshot. */
typedef struct {
    const char *id, *branch, *commit, *lock_id, *requested_by, *request_id, *instance;
    int64_t generation;
} oms_store_index_job_new;
int oms_store_index_job_insert(oms_dbconn *c, const oms_store_index_job_new *j, oms_error *err);
/* Marks a running job failed with `error`: one row (branch, generation,
 * lock_id, switch_lock_id, requested_by, phase, done, total) when it was
 * running, none else. */
int oms_store_index_job_fail(oms_dbconn *c, const char *id, const char *error, oms_dbres **out, oms_error *err);
/* The progress of a running job; *changed 0 when it is no longer running. */
int oms_store_index_job_progress(oms_dbconn *c, const char *id, const char *phase, double percent, int64_t done,
                                 int64_t total, int64_t caught_up, int64_t *changed, oms_error *err);
/* Records the switch lock of a job (and when it was taken). */
int oms_store_index_job_switch_lock(oms_dbconn *c, const char *id, const char *switch_lock_id, oms_error *err);
/* Marks a running job succeeded (previous_generation: 0 for NULL): *found
 * false when it was not running; else *switch_ms (how long the switch
 * lock held writes) and *took_ms (the job's duration). */
int oms_store_index_job_succeed(oms_dbconn *c, const char *id, int64_t previous_generation, bool *found,
                                int64_t *switch_ms, int64_t *took_ms, oms_error *err);

/* A job's lock of kind `indexing`, inserted without a conflict check
 * (deadline_ms: the deadline's offset from now). */
typedef struct {
    const char *id, *branch, *scope, *resource_type, *resource_id, *holder, *reason;
    int64_t ttl_ms, heartbeat_s, deadline_ms;
    double percent;
    const char *phase, *message;
} oms_store_index_lock_new;
/* Inserts it with the next fencing token (*token; may be NULL). */
int oms_store_index_lock_insert(oms_dbconn *c, const oms_store_index_lock_new *l, int64_t *token, oms_error *err);
/* Releases a live lock (a lapsed one is left to the reaper); *released
 * (may be NULL) says whether it was live. */
int oms_store_index_lock_release(oms_dbconn *c, const char *id, const char *by, bool *released, oms_error *err);
/* Heartbeat and progress of a live lock; *changed 0 when it lapsed. */
int oms_store_index_lock_beat(oms_dbconn *c, const char *id, double percent, const char *phase, const char *message,
                              int64_t *changed, oms_error *err);
/* Live branch-scope locks of a branch, by fencing token: rows (now,
 * OMS_LOCK_COLS from col 1). */
int oms_store_index_branch_locks(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);

/* Adds `resources` (a JSON array of KIND/NAME) to the pending log of
 * generation `gen` at `commit`. */
int oms_store_search_pending_add(oms_dbconn *c, int64_t gen, const json_t *resources, const char *commit,
                                 oms_error *err);
/* Removes the pending rows of `resources` (JSON array text of KIND/NAME):
 * a commit indexed them itself into a generation that follows. */
int oms_store_search_pending_forget(oms_dbconn *c, int64_t gen, const char *resources, oms_error *err);
/* PostgreSQL: the longest the transaction's next lock waits (a row the
 * builder takes as commits do) is `ms`. */
int oms_store_search_row_wait_ms(oms_dbconn *c, int64_t ms, oms_error *err);
/* Marks a building generation as following the commits (its build is
 * done); *changed 0 when it is no longer building. */
int oms_store_search_follow(oms_dbconn *c, int64_t gen, int64_t *changed, oms_error *err);
/* Up to `limit` pending rows of a generation by resource: rows (resource,
 * commit_id). */
int oms_store_search_pending_page(oms_dbconn *c, int64_t gen, int64_t limit, oms_dbres **out, oms_error *err);
/* Removes the pending rows of `rows` (as read by
 * oms_store_search_pending_page) that still name the same commit. */
int oms_store_search_pending_done(oms_dbconn *c, int64_t gen, const oms_dbres *rows, oms_error *err);
int oms_store_search_pending_count(oms_dbconn *c, int64_t gen, int64_t *out, oms_error *err);
/* The current rows of `resources` (JSON array text of KIND/NAME) on a
 * branch: rows (resource, hash, content). */
int oms_store_search_branch_rows(oms_dbconn *c, const char *branch, const char *resources, oms_dbres **out,
                                 oms_error *err);

/* A new building generation of a branch for a job at `commit`: *gen. */
int oms_store_search_new_building(oms_dbconn *c, const char *branch, const char *job, const char *commit,
                                  int64_t *gen, oms_error *err);
/* Retires a building generation and removes its pending rows. */
int oms_store_search_drop_building(oms_dbconn *c, int64_t gen, oms_error *err);
/* Retires the active generation of a branch. */
int oms_store_search_retire_active(oms_dbconn *c, const char *branch, oms_error *err);
/* Activates a building generation at `commit`; *changed 0 when it is gone. */
int oms_store_search_activate(oms_dbconn *c, int64_t gen, const char *commit, int64_t *changed, oms_error *err);

/* One writer for the whole database (SQLite): checkpoints the write-ahead
 * log without waiting for anybody. Nothing on PostgreSQL. */
int oms_store_search_checkpoint_wal(oms_dbconn *c, oms_error *err);

#endif
