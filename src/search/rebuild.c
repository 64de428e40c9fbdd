#include "util/ids.h"
#include "search/rebuild.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "events/events.h"
#include "locks/locks.h"
#include "infra/config.h"
#include "infra/log.h"
#include "search/index.h"
#include "store/dialect.h"
#include "store/locks_sql.h"
#include "store/search_rebuild_sql.h"
#include "store/search_sql.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/time.h"
#include "vcs/snapshot.h"
#include "util/thread.h"

/* Percent of the whole job at each phase's start (the build is most of it). */
#define PCT_BUILD 2.0
#define PCT_CATCH_UP 90.0
#define PCT_SWITCH 97.0
#define PCT_SWITCHED 99.0
/* Retired generations stay readable this long (a search that read the
 * generation id just before the switch still finds its documents). */
#define DROP_GRACE_MS 5000
#define DROP_BATCH 1000
/* Resources of a catch-up round before its rate is measured; also the
 * backlog small enough to leave to the switch window. */
#define SWITCH_CHUNK 100
/* A catch-up round holds the branch row, so commits wait for it: it takes
 * as many resources as the measured rate fits into this, at least
 * ROUND_MIN (see round_chunk()). */
#define ROUND_TARGET_MS 25
#define ROUND_MIN 16
/* Rest of the builder after a transaction that held what writers wait for
 * (see rest()). */
#define BREATH_MIN_US 2000
#define BREATH_MAX_US 200000

/* ---- the pending log ---- */

int oms_search_pending_add(oms_dbconn *c, int64_t gen, const json_t *resources, const char *commit,
                           oms_error *err)
{
    return oms_store_search_pending_add(c, gen, resources, commit, err);
}

/* ---- settings ---- */

typedef struct {
    int64_t switch_max_ms, heartbeat_s, lock_timeout_ms;
    int batch, throttle_ms;
} settings;

static settings settings_of(const oms_config *cfg)
{
    return (settings){.switch_max_ms = oms_config_int(cfg, "OMS_SEARCH_SWITCH_MAX_MS"),
                      .heartbeat_s = oms_config_int(cfg, "OMS_SEARCH_JOB_HEARTBEAT_SECONDS"),
                      .lock_timeout_ms = oms_config_int(cfg, "OMS_DB_LOCK_TIMEOUT_MS"),
                      .batch = (int)oms_config_int(cfg, "OMS_SEARCH_BATCH"),
                      .throttle_ms = (int)oms_config_int(cfg, "OMS_SEARCH_THROTTLE_MS")};
}

/* ---- audit and locks outside requests ---- */

/* An event the builder or the sweeper records inside its own transaction:
 * the service acts ("oms"), on behalf of the job's requester (in detail). */
static int audit_job(oms_dbconn *c, const char *action, const char *outcome, const char *branch, const char *job,
                     json_t *detail, oms_error *err)
{
    char *d = json_dumps(detail, JSON_COMPACT);
    oms_audit_event ev = {.actor_sub = "oms", .action = action, .outcome = outcome, .resource_kind = "index-jobs",
                          .resource_branch = branch, .resource_id = job, .detail = d};
    int rc = oms_audit_append(c, &ev, err);
    free(d);
    if (rc) {
        json_decref(detail);
        return oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
    }
    /* the job's end is an event too (docs/events.md), in the same transaction */
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:o}", "action", action, "job", job, "branch", branch, "outcome",
                             outcome, "detail", detail);
    return oms_event_emit(c, strcmp(outcome, "success") == 0 ? "index.rebuild_completed" : "index.rebuild_failed",
                          job, branch, data, err);
}

static int audit_lock(oms_dbconn *c, const char *action, const char *branch, const char *lock_id, json_t *detail,
                      oms_error *err)
{
    char *d = json_dumps(detail, JSON_COMPACT);
    oms_audit_event ev = {.actor_sub = "oms", .action = action, .outcome = "success", .resource_kind = "locks",
                          .resource_branch = branch, .resource_id = lock_id, .detail = d};
    int rc = oms_audit_append(c, &ev, err);
    free(d);
    if (rc) {
        json_decref(detail);
        return oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
    }
    json_t *data = json_pack("{s:s, s:s, s:s, s:o}", "action", action, "id", lock_id, "branch", branch, "detail",
                             detail);
    return oms_event_emit(c, strcmp(action, "lock.acquire") == 0 ? "lock.acquired" : "lock.released", lock_id, branch,
                          data, err);
}

typedef struct {
    const char *id, *branch, *scope, *resource_type, *resource_id, *holder, *reason;
    int64_t ttl_ms, heartbeat_s;
    double percent;
    const char *phase, *message;
} new_lock;

/* Inserts a lock of kind `indexing` without a conflict check: the caller
 * decided conflicts (the job's lock) or deliberately takes precedence
 * (the switch lock, bounded by OMS_SEARCH_SWITCH_MAX_MS). */
static int insert_lock(oms_dbconn *c, const new_lock *l, int64_t *token, oms_error *err)
{
    int64_t deadline_ms = l->heartbeat_s > 0 && OMS_LOCK_MISSED_HEARTBEATS * l->heartbeat_s * 1000 < l->ttl_ms
                              ? OMS_LOCK_MISSED_HEARTBEATS * l->heartbeat_s * 1000
                              : l->ttl_ms;
    oms_store_index_lock_new row = {.id = l->id, .branch = l->branch, .scope = l->scope,
                                    .resource_type = l->resource_type, .resource_id = l->resource_id,
                                    .holder = l->holder, .reason = l->reason, .ttl_ms = l->ttl_ms,
                                    .heartbeat_s = l->heartbeat_s, .deadline_ms = deadline_ms,
                                    .percent = l->percent, .phase = l->phase, .message = l->message};
    return oms_store_index_lock_insert(c, &row, token, err);
}

/* Releases a live lock (a lapsed one is left to the reaper, which records
 * its expiry). *released says whether it was live. */
static int release_lock(oms_dbconn *c, const char *id, const char *by, bool *released, oms_error *err)
{
    return oms_store_index_lock_release(c, id, by, released, err);
}

/* ---- jobs ---- */

static json_t *time_or_null(const oms_dbres *r, size_t row, size_t col)
{
    if (!oms_dbres_get(r, row, col))
        return json_null();
    char buf[40];
    oms_time_rfc3339_ms(buf, sizeof buf, oms_dbres_int(r, row, col));
    return json_string(buf);
}

static json_t *int_or_null(const oms_dbres *r, size_t row, size_t col)
{
    return oms_dbres_get(r, row, col) ? json_integer(oms_dbres_int(r, row, col)) : json_null();
}

/* A column of a job row by name (OMS_INDEX_JOB_COL_*). */
#define J(name) OMS_INDEX_JOB_COL_##name

/* Whether a running job's lock has lapsed (judged by the database clock),
 * in a job row (OMS_INDEX_JOB_COL_*). */
static bool lock_lapsed(const oms_dbres *r, size_t row, int64_t now)
{
    const char *ls = oms_dbres_get(r, row, J(LOCK_STATE));
    return !ls || strcmp(ls, "active") != 0 || oms_dbres_int(r, row, J(LOCK_DEADLINE)) <= now;
}

#define LAPSED_ERROR "the builder stopped: its lock lapsed (missed heartbeats); start a new rebuild"

/* The job document (a job row): a running job whose lock
 * lapsed reads `failed` even before a sweeper records it. */
static json_t *job_json(const oms_dbres *r, size_t row)
{
    int64_t now = oms_dbres_int(r, row, OMS_INDEX_JOB_COL_NOW);
    const char *state = oms_dbres_get(r, row, J(STATE));
    const char *error = oms_dbres_get(r, row, J(ERROR));
    bool running = strcmp(state, "running") == 0;
    if (running && lock_lapsed(r, row, now)) {
        state = "failed";
        running = false;
        error = LAPSED_ERROR;
    }
    double pct = strtod(oms_dbres_get(r, row, J(PERCENT)), NULL);
    int64_t created = oms_dbres_int(r, row, J(CREATED_AT));
    json_t *eta = json_null();
    if (running && pct > 0 && pct < 100 && now > created)
        eta = json_integer((int64_t)((double)(now - created) * (100.0 - pct) / pct / 1000.0 + 0.999));
    else if (!running && strcmp(state, "succeeded") == 0)
        eta = json_integer(0);
    json_t *sw = json_pack("{s:o,s:o,s:o,s:s?}", "started_at", time_or_null(r, row, J(SWITCH_STARTED_AT)), "ended_at",
                           time_or_null(r, row, J(SWITCH_ENDED_AT)), "blocked_ms", json_null(), "lock_id",
                           oms_dbres_get(r, row, J(SWITCH_LOCK_ID)));
    if (oms_dbres_get(r, row, J(SWITCH_STARTED_AT)) && oms_dbres_get(r, row, J(SWITCH_ENDED_AT)))
        json_object_set_new(sw, "blocked_ms",
                            json_integer(oms_dbres_int(r, row, J(SWITCH_ENDED_AT)) - oms_dbres_int(r, row, J(SWITCH_STARTED_AT))));
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:f,s:I,s:I,s:I,s:o,s:I,s:o,s:s,s:s,s:s,s:s}", "id",
                          oms_dbres_get(r, row, J(ID)), "branch", oms_dbres_get(r, row, J(BRANCH)), "state", state, "phase",
                          oms_dbres_get(r, row, J(PHASE)), "percent", pct, "done", (json_int_t)oms_dbres_int(r, row, J(DONE)),
                          "total", (json_int_t)oms_dbres_int(r, row, J(TOTAL)), "caught_up",
                          (json_int_t)oms_dbres_int(r, row, J(CAUGHT_UP)), "eta_seconds", eta, "generation",
                          (json_int_t)oms_dbres_int(r, row, J(GENERATION)), "previous_generation", int_or_null(r, row, J(PREVIOUS_GENERATION)),
                          "commit", oms_dbres_get(r, row, J(COMMIT)), "lock_id", oms_dbres_get(r, row, J(LOCK_ID)),
                          "requested_by", oms_dbres_get(r, row, J(REQUESTED_BY)), "instance", oms_dbres_get(r, row, J(INSTANCE)));
    if (!oms_dbres_get(r, row, J(SWITCH_LOCK_ID)))
        json_object_set_new(sw, "lock_id", json_null());
    json_object_set_new(o, "switch", sw);
    json_object_set_new(o, "created_at", time_or_null(r, row, J(CREATED_AT)));
    json_object_set_new(o, "updated_at", time_or_null(r, row, J(UPDATED_AT)));
    json_object_set_new(o, "finished_at", time_or_null(r, row, J(FINISHED_AT)));
    json_object_set_new(o, "error", error ? json_string(error) : json_null());
    return o;
}

static int load_job(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    int rc = oms_store_index_job_load(c, id, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no index job %.64s", id);
    }
    return rc;
}

/* Fails a running job in the caller's transaction: its building generation
 * is retired, its live locks released, and index.rebuild is audited with
 * outcome failure. *failed is false when the job was no longer running
 * (someone failed or finished it first). */
static int fail_job_tx(oms_dbconn *c, const char *id, const char *error, bool *failed, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_index_job_fail(c, id, error, &r, err);
    *failed = rc == OMS_OK && r->nrows == 1;
    if (!*failed) {
        oms_dbres_free(r);
        return rc;
    }
    const char *branch = oms_dbres_get(r, 0, 0), *lock_id = oms_dbres_get(r, 0, 2);
    const char *switch_lock = oms_dbres_get(r, 0, 3);
    bool job_released = false, switch_released = false;
    if ((rc = oms_store_search_drop_building(c, oms_dbres_int(r, 0, 1), err)) == OMS_OK &&
        (rc = release_lock(c, lock_id, "oms", &job_released, err)) == OMS_OK && switch_lock)
        rc = release_lock(c, switch_lock, "oms", &switch_released, err);
    if (rc == OMS_OK)
        rc = audit_job(c, "index.rebuild", "failure", branch, id,
                       json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "event", "fail", "error", error, "phase",
                                 oms_dbres_get(r, 0, 5), "requested_by", oms_dbres_get(r, 0, 4), "done",
                                 (json_int_t)oms_dbres_int(r, 0, 6), "total", (json_int_t)oms_dbres_int(r, 0, 7)),
                       err);
    if (rc == OMS_OK && job_released)
        rc = audit_lock(c, "lock.release", branch, lock_id, json_pack("{s:s,s:s}", "job", id, "reason", "job failed"),
                        err);
    if (rc == OMS_OK && switch_released)
        rc = audit_lock(c, "lock.release", branch, switch_lock,
                        json_pack("{s:s,s:s}", "job", id, "reason", "job failed"), err);
    oms_dbres_free(r);
    return rc;
}

/* The same in a transaction of its own. */
static int fail_job(oms_dbconn *c, const char *id, const char *error, oms_error *err)
{
    bool failed;
    int rc = oms_db_begin(c, true, err);
    if (rc == OMS_OK && (rc = fail_job_tx(c, id, error, &failed, err)) == OMS_OK)
        rc = oms_db_commit(c, err);
    if (rc)
        oms_db_rollback(c);
    return rc;
}

int oms_index_jobs_branch_deleted(oms_dbconn *c, const char *branch, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_index_jobs_running_on(c, branch, &r, err);
    for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++) {
        bool failed;
        rc = fail_job_tx(c, oms_dbres_get(r, i, 0), "the branch was deleted", &failed, err);
    }
    oms_dbres_free(r);
    return rc;
}

/* ---- the builder ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
    atomic_bool stop;
} g_builders = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

typedef struct {
    oms_store *store;
    settings s;
    char job[OMS_INDEX_JOB_ID_LEN + 1], lock_id[OMS_LOCK_ID_LEN + 1], commit[65];
    char branch[128], holder[256];
    int64_t gen;
    int64_t done, total, caught_up;
    double percent;
    const char *phase;
    double ns_per_resource; /* measured cost of catching up one resource (0: not yet measured) */
    int64_t last_beat_ns;
    oms_dbconn *c;
    oms_error err;
} builder;

static const char *progress_message(builder *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "index job %s, %s: %lld of %lld resources%s", b->job, b->phase, (long long)b->done,
             (long long)b->total, b->caught_up ? " (with commits made meanwhile)" : "");
    return buf;
}

/* Heartbeat and progress, inside the caller's transaction: the job's lock
 * must still be live and the job still running (fencing: a builder that
 * lost either stops writing). */
static int beat(builder *b)
{
    oms_dbconn *c = b->c;
    char msg[256];
    progress_message(b, msg, sizeof msg);
    int64_t changed = 0;
    int rc = oms_store_index_lock_beat(c, b->lock_id, b->percent, b->phase, msg, &changed, &b->err);
    if (rc == OMS_OK && changed != 1)
        rc = oms_err_set(&b->err, OMS_ELOCKLOST, "the job's lock lapsed (missed heartbeats)");
    if (rc)
        return rc;
    rc = oms_store_index_job_progress(c, b->job, b->phase, b->percent, b->done, b->total, b->caught_up, &changed,
                                      &b->err);
    if (rc == OMS_OK && changed != 1)
        rc = oms_err_set(&b->err, OMS_ECONFLICT, "the job is no longer running");
    if (rc == OMS_OK)
        b->last_beat_ns = oms_mono_ns();
    return rc;
}

static int beat_alone(builder *b)
{
    int rc = oms_db_begin(b->c, true, &b->err);
    if (rc == OMS_OK && (rc = beat(b)) == OMS_OK)
        rc = oms_db_commit(b->c, &b->err);
    if (rc)
        oms_db_rollback(b->c);
    return rc;
}

static bool stopping(void) { return atomic_load(&g_builders.stop); }

/* Sleeps `ms`, heartbeating at half the interval so a slow, throttled
 * build never looks dead. */
static int pause_ms(builder *b, int64_t ms)
{
    int64_t end = oms_mono_ns() + ms * 1000000;
    while (!stopping()) {
        int64_t now = oms_mono_ns();
        if (now >= end)
            return OMS_OK;
        if (now - b->last_beat_ns > b->s.heartbeat_s * 500000000LL) {
            int rc = beat_alone(b);
            if (rc)
                return rc;
        }
        int64_t left = (end - now) / 1000000;
        usleep((useconds_t)((left > 100 ? 100 : left) * 1000));
    }
    return OMS_OK;
}

/* After a transaction that held what writers wait for (SQLite's single
 * write lock; the branch row of a catch-up round): a rest as long as it
 * held it (at most half the time is the builder's). A waiting SQLite
 * writer retries after growing sleeps (up to 100 ms) and would hardly ever
 * find the lock free between back-to-back transactions. On SQLite the
 * write-ahead log the builder grew is checkpointed first (PASSIVE: it
 * waits for nobody), so that the automatic checkpoint does not fall on a
 * writer's commit. */
static void rest(builder *b, int64_t held_ns)
{
    if (oms_db_single_writer_conn(b->c)) {
        oms_error e;
        if (oms_store_search_checkpoint_wal(b->c, &e) != OMS_OK)
            oms_log_write(OMS_LOG_DEBUG, NULL, NULL, "index job %s: checkpoint: %s", b->job, e.msg);
    }
    int64_t held_us = held_ns / 1000;
    usleep((useconds_t)(held_us < BREATH_MIN_US ? BREATH_MIN_US : held_us > BREATH_MAX_US ? BREATH_MAX_US : held_us));
}

/* Between two batches of the build. On PostgreSQL its transactions lock
 * nothing a writer waits for: only the configured pause. On SQLite every
 * transaction holds the single write lock: a rest (rest()) first. */
static int breathe(builder *b, int64_t since_ns)
{
    if (oms_db_single_writer_conn(b->c))
        rest(b, oms_mono_ns() - since_ns);
    return b->s.throttle_ms ? pause_ms(b, b->s.throttle_ms) : OMS_OK;
}

static int kind_and_name(const char *key, oms_kind *kind, const char **name)
{
    const char *slash = strchr(key, '/');
    char seg[32];
    if (!slash || (size_t)(slash - key) >= sizeof seg)
        return -1;
    memcpy(seg, key, (size_t)(slash - key));
    seg[slash - key] = '\0';
    *name = slash + 1;
    return oms_kind_parse(kind, seg);
}

/* Takes the branch row, waiting at most half a heartbeat of the job's lock
 * (or the configured lock timeout, if shorter): round_alone() heartbeats
 * and tries again, so a long batch of commits cannot make the lock lapse. */
static int hold_branch(builder *b)
{
    int64_t wait_ms = b->s.heartbeat_s * 500;
    if (b->s.lock_timeout_ms > 0 && b->s.lock_timeout_ms < wait_ms)
        wait_ms = b->s.lock_timeout_ms;
    oms_dbres *r = NULL;
    int rc = oms_store_search_row_wait_ms(b->c, wait_ms, &b->err);
    if (rc == OMS_OK)
        rc = oms_store_search_branch_for_update(b->c, b->branch, &r, &b->err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(&b->err, OMS_ENOTFOUND, "the branch was deleted");
    oms_dbres_free(r);
    return rc;
}

/* One round of catch-up inside the caller's transaction, which holds the
 * branch row (hold_branch()): up to `limit` pending resources (0: all) are
 * re-indexed from the branch's current rows and their pending rows
 * removed, unless they name another commit than the one read (then they
 * stay for the next round). *n gets how many.
 *
 * The branch row keeps every commit out of the round: once the shadow
 * follows the commits, a commit writes its resources into it too, and one
 * committing between this round's read of a resource and its write would
 * have its newer document overwritten by the older one read. */
static int catch_up_round(builder *b, int limit, int64_t *n)
{
    oms_dbconn *c = b->c;
    oms_dbres *r = NULL, *cur = NULL;
    int rc = oms_store_search_pending_page(c, b->gen, limit > 0 ? limit : INT32_MAX, &r, &b->err);
    *n = 0;
    if (rc || r->nrows == 0)
        goto done;
    json_t *keys = json_array();
    for (size_t i = 0; i < r->nrows; i++)
        json_array_append_new(keys, json_string(oms_dbres_get(r, i, 0)));
    char *ktext = json_dumps(keys, JSON_COMPACT);
    rc = oms_store_search_branch_rows(c, b->branch, ktext, &cur, &b->err);
    oms_entry **entries = rc == OMS_OK ? oms_xcalloc(cur->nrows + 1, sizeof *entries) : NULL;
    size_t ne = 0;
    for (size_t i = 0; rc == OMS_OK && i < cur->nrows; i++) {
        oms_kind kind;
        const char *name, *text = oms_dbres_get(cur, i, 2);
        if (kind_and_name(oms_dbres_get(cur, i, 0), &kind, &name) == 0 && text)
            entries[ne++] = oms_entry_new(kind, name, oms_dbres_get(cur, i, 1), text, strlen(text), "", "", 0);
    }
    if (rc == OMS_OK && (rc = oms_search_remove(c, b->gen, keys, &b->err)) == OMS_OK &&
        (rc = oms_search_put_entries(c, b->gen, (const oms_entry *const *)entries, ne, &b->err)) == OMS_OK)
        rc = oms_store_search_pending_done(c, b->gen, r, &b->err);
    if (rc == OMS_OK)
        *n = (int64_t)r->nrows;
    for (size_t i = 0; i < ne; i++)
        oms_entry_unref(entries[i]);
    free(entries);
    free(ktext);
    json_decref(keys);
done:
    oms_dbres_free(r);
    oms_dbres_free(cur);
    return rc;
}

static int pending_count(builder *b, int64_t *n)
{
    return oms_store_search_pending_count(b->c, b->gen, n, &b->err);
}

/* What catching up one resource costs, from the rounds so far (a moving
 * average: the machine's load changes under a long rebuild). */
static void measure_round(builder *b, int64_t n, int64_t since_ns)
{
    if (n <= 0)
        return;
    double per = (double)(oms_mono_ns() - since_ns) / (double)n;
    b->ns_per_resource = b->ns_per_resource > 0 ? (b->ns_per_resource + per) / 2 : per;
}

/* Resources for the next round: it holds the branch row (commits wait),
 * so as many as the measured rate fits into ROUND_TARGET_MS, at least
 * ROUND_MIN, at most the batch; SWITCH_CHUNK before any measurement. */
static int round_chunk(builder *b)
{
    int chunk = SWITCH_CHUNK;
    if (b->ns_per_resource > 0) {
        double fit = ROUND_TARGET_MS * 1e6 / b->ns_per_resource;
        chunk = fit < ROUND_MIN ? ROUND_MIN : fit > b->s.batch ? b->s.batch : (int)fit;
    }
    return chunk < b->s.batch ? chunk : b->s.batch;
}

/* Rounds that found the branch row (or SQLite's write lock) held past
 * hold_branch()'s wait by a long batch of commits: tried again after a
 * heartbeat and a rest, this many times in a row before the job fails. */
#define ROUND_LOCK_RETRIES 5

/* One round of up to `chunk` in its own transaction, holding the branch
 * row: *n resources caught up; *held_ns, how long the row was held. */
static int round_alone(builder *b, int chunk, int64_t *n, int64_t *held_ns)
{
    *n = 0;
    int rc = oms_db_begin(b->c, true, &b->err);
    if (rc == OMS_OK)
        rc = hold_branch(b);
    for (int retry = 0; rc == OMS_ETIMEOUT && retry < ROUND_LOCK_RETRIES; retry++) {
        oms_db_rollback(b->c);
        if (stopping())
            return oms_err_set(&b->err, OMS_EUNAVAIL, "the instance stopped during the rebuild; start it again");
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "index job %s: a catch-up round could not begin (%s); trying again",
                      b->job, b->err.msg);
        if ((rc = beat_alone(b)))
            return rc;
        usleep(BREATH_MAX_US);
        if ((rc = oms_db_begin(b->c, true, &b->err)) == OMS_OK)
            rc = hold_branch(b);
    }
    int64_t t0 = oms_mono_ns();
    if (rc == OMS_OK && (rc = catch_up_round(b, chunk, n)) == OMS_OK) {
        b->caught_up += *n;
        b->done += *n;
        b->total += *n;
        rc = beat(b);
    }
    if (rc == OMS_OK)
        rc = oms_db_commit(b->c, &b->err);
    if (rc) {
        oms_db_rollback(b->c);
        return rc;
    }
    *held_ns = oms_mono_ns() - t0;
    measure_round(b, *n, t0);
    return OMS_OK;
}

/* Snapshot and build: every resource of the snapshot commit into the
 * shadow generation, `batch` per transaction. */
static int build(builder *b)
{
    oms_snapshot *s = NULL;
    int rc = oms_snapshot_for_commit(b->c, b->commit, &s, &b->err);
    if (rc)
        return rc;
    size_t n;
    const oms_entry **v = oms_search_snapshot_entries(s, &n);
    b->total = (int64_t)n;
    b->phase = "build";
    b->percent = PCT_BUILD;
    rc = beat_alone(b);
    for (size_t i = 0; rc == OMS_OK && i < n; i += (size_t)b->s.batch) {
        if (stopping())
            break;
        size_t k = n - i < (size_t)b->s.batch ? n - i : (size_t)b->s.batch;
        int64_t t0 = oms_mono_ns();
        if ((rc = oms_db_begin(b->c, true, &b->err)))
            break;
        b->done = (int64_t)(i + k);
        b->percent = PCT_BUILD + (PCT_CATCH_UP - PCT_BUILD) * (double)b->done / (double)b->total;
        if ((rc = oms_search_put_entries(b->c, b->gen, v + i, k, &b->err)) || (rc = beat(b)) ||
            (rc = oms_db_commit(b->c, &b->err))) {
            oms_db_rollback(b->c);
            break;
        }
        rc = breathe(b, t0);
    }
    free(v);
    oms_snapshot_unref(s);
    return rc;
}

/* Once built, the shadow follows the commits: each commit indexes its
 * resources into it and removes their pending rows (docs/search.md
 * "Follow the commits"). The pending rows left are those of commits
 * made during the build: a backlog that only shrinks. */
static int follow_commits(builder *b)
{
    int rc = oms_db_begin(b->c, true, &b->err);
    int64_t changed = 0;
    if (rc == OMS_OK && (rc = oms_store_search_follow(b->c, b->gen, &changed, &b->err)) == OMS_OK && changed != 1)
        rc = oms_err_set(&b->err, OMS_ECONFLICT, "the shadow generation is gone");
    if (rc == OMS_OK && (rc = beat(b)) == OMS_OK)
        rc = oms_db_commit(b->c, &b->err);
    if (rc)
        oms_db_rollback(b->c);
    return rc;
}

/* Catch-up with the commits made during the build, in rounds of
 * round_chunk() that hold the branch row, each followed by a rest as long
 * (2 to 200 ms: commits get about half the time at least), until what is left fits one round
 * of the switch (SWITCH_CHUNK) or stops shrinking. Only commits that read
 * the generations before the shadow followed can add to it, and they hold
 * the branch row, so all of them have ended once a round held it: the
 * count before the first round may miss some (a batch of a hundred
 * resources committing just after it made the first round look like no
 * progress, and the window caught up the whole backlog), so the first
 * round always runs and both ends are judged from the counts after it.
 * The backlog only shrinks, so the loop ends; every resource caught up
 * here is one the window, which refuses writes, need not. */
static int catch_up(builder *b)
{
    b->phase = "catch_up";
    b->percent = PCT_CATCH_UP;
    int rc = beat_alone(b);
    int64_t before = INT64_MAX, t_start = oms_mono_ns(), left = 0;
    int round = 0;
    for (; rc == OMS_OK && !stopping(); round++) {
        int64_t n = 0, held = 0;
        /* the first count may be short: one round always runs (it may
         * find nothing) and the counts after it are judged */
        if ((rc = pending_count(b, &left)) || (round > 0 && (left <= SWITCH_CHUNK || left >= before)))
            break;
        before = round == 0 ? INT64_MAX : left;
        if ((rc = round_alone(b, round_chunk(b), &n, &held)) == OMS_OK) {
            int64_t whole = b->caught_up + left - n;
            double f = whole > 0 ? (double)b->caught_up / (double)whole : 1.0;
            /* the first round may take rows its count had not seen */
            b->percent = PCT_CATCH_UP + (PCT_SWITCH - PCT_CATCH_UP) * (f < 1.0 ? f : 1.0);
            rest(b, held);
        }
    }
    if (rc == OMS_OK)
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "index job %s: catch-up: %d rounds in %lld ms, %lld left", b->job,
                      round, (long long)((oms_mono_ns() - t_start) / 1000000), (long long)left);
    return rc;
}

/* The switch (docs/search.md "The switch"). The window opens: a branch
 * lock of kind indexing, carrying the job's progress, bounded by
 * OMS_SEARCH_SWITCH_MAX_MS, taken on PostgreSQL under the branch's exclusive
 * advisory lock (which waits for writes that passed their lock check: they
 * commit first, and their pending rows with them). From then on a write to
 * the branch is answered 423, with that progress, instead of queueing
 * behind the switch (once the round it waited for ends). What is left to
 * catch up (a round's worth at most: catch_up() saw to it) is done in the
 * catch-up's rounds. Then, in one transaction that holds the branch row
 * (so nothing slips in, not even a write an emergency override lets
 * through the lock), the last pending resources are caught up, the shadow
 * becomes the active generation, the old one is retired, the window closes
 * (the switch lock is released) and the job succeeds.
 *
 * Should the backlog not be done within half the bound (a machine too slow
 * for what was left), the window closes again without a switch, the builder
 * catches up some more and tries again; after SWITCH_ATTEMPTS the job fails
 * rather than hold writes longer. The job's switch.started_at/ended_at are
 * those of the window that switched (ended_at: the release, or the lock's
 * deadline if the flip came later). */
#define SWITCH_ATTEMPTS 3

/* Opens the window: the switch lock, in its own transaction. */
static int open_window(builder *b, char switch_id[OMS_LOCK_ID_LEN + 1])
{
    oms_dbconn *c = b->c;
    char msg[256], reason[160];
    oms_lock_new_id(switch_id);
    b->phase = "switch";
    int rc = oms_db_begin(c, true, &b->err);
    if (rc)
        return rc;
    if ((rc = oms_store_lock_branch_xact(c, b->branch, false, &b->err)))
        goto fail;
    if ((rc = beat(b)))
        goto fail;
    snprintf(reason, sizeof reason, "search index switch of job %s: writes resume within %lld ms", b->job,
             (long long)b->s.switch_max_ms);
    new_lock sl = {.id = switch_id, .branch = b->branch, .scope = "branch", .holder = b->holder, .reason = reason,
                   .ttl_ms = b->s.switch_max_ms, .heartbeat_s = 0, .percent = b->percent, .phase = "switch",
                   .message = progress_message(b, msg, sizeof msg)};
    int64_t token = 0;
    if ((rc = insert_lock(c, &sl, &token, &b->err)))
        goto fail;
    if ((rc = oms_store_index_job_switch_lock(c, b->job, switch_id, &b->err)) ||
        (rc = audit_lock(c, "lock.acquire", b->branch, switch_id,
                         json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "scope", "branch", "kind", "indexing", "holder",
                                   b->holder, "job", b->job, "fencing_token", (json_int_t)token, "ttl_ms",
                                   (json_int_t)b->s.switch_max_ms),
                         &b->err)) ||
        (rc = oms_db_commit(c, &b->err)))
        goto fail;
    return OMS_OK;
fail:
    oms_db_rollback(c);
    return rc;
}

/* The backlog inside the window, in rounds of round_chunk() (they hold the
 * branch row: a writer meets the switch lock, and its 423, after one).
 * *drained is false when half the bound passed first. */
static int drain_window(builder *b, int64_t opened_ns, bool *drained, int64_t *caught)
{
    int64_t budget_ns = b->s.switch_max_ms * 500000LL;
    *drained = false;
    *caught = 0;
    for (int round = 0;; round++) {
        if (round && oms_mono_ns() - opened_ns > budget_ns)
            return OMS_OK;
        int chunk = round_chunk(b);
        int64_t n = 0, held = 0;
        int rc = round_alone(b, chunk, &n, &held);
        if (rc)
            return rc;
        *caught += n;
        if (n < chunk) {
            *drained = true;
            return OMS_OK;
        }
        if (oms_db_single_writer_conn(b->c)) /* a writer queued for SQLite's lock gets in, and its 423 */
            usleep((useconds_t)(held / 1000 > BREATH_MIN_US ? held / 1000 : BREATH_MIN_US));
    }
}

/* Closes a window that did not switch: writes resume. `drained` and
 * `left` (what the window caught up, what it left) go to the log: the
 * operator's measure of how far the catch-up fell behind. */
static int defer_window(builder *b, const char *switch_id, int64_t drained, int64_t open_ms)
{
    oms_dbconn *c = b->c;
    bool released = false;
    int rc = oms_db_begin(c, true, &b->err);
    if (rc == OMS_OK && (rc = release_lock(c, switch_id, b->holder, &released, &b->err)) == OMS_OK && released)
        rc = audit_lock(c, "lock.release", b->branch, switch_id,
                        json_pack("{s:s,s:s}", "job", b->job, "reason", "switch deferred: more to catch up"), &b->err);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, &b->err);
    if (rc)
        oms_db_rollback(c);
    int64_t left = -1;
    if (rc == OMS_OK)
        (void)pending_count(b, &left);
    oms_log_write(OMS_LOG_INFO, NULL, NULL,
                  "index job %s: switch deferred (writes outpaced the catch-up): the window caught up %lld"
                  " resources in %lld ms, %lld left",
                  b->job, (long long)drained, (long long)open_ms, (long long)left);
    return rc;
}

/* The flip, in one transaction holding the branch row. */
static int flip(builder *b, const char *switch_id)
{
    oms_dbconn *c = b->c;
    int rc = oms_db_begin(c, true, &b->err);
    if (rc)
        return rc;
    oms_dbres *r = NULL;
    rc = oms_store_search_branch_for_update(c, b->branch, &r, &b->err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(&b->err, OMS_ENOTFOUND, "the branch was deleted");
    char head[65] = "";
    int64_t old = 0;
    if (rc == OMS_OK) {
        snprintf(head, sizeof head, "%s", oms_dbres_get(r, 0, 0));
        old = oms_dbres_get(r, 0, 1) ? oms_dbres_int(r, 0, 1) : 0;
    }
    oms_dbres_free(r);
    r = NULL;
    int64_t n = 0;
    if (rc || (rc = catch_up_round(b, 0, &n)))
        goto fail;
    b->caught_up += n;
    b->done += n;
    b->total += n;
    b->percent = PCT_SWITCHED;
    if ((rc = oms_store_search_retire_active(c, b->branch, &b->err)))
        goto fail;
    int64_t changed = 0;
    if ((rc = oms_store_search_activate(c, b->gen, head, &changed, &b->err)) == OMS_OK && changed != 1)
        rc = oms_err_set(&b->err, OMS_ECONFLICT, "the shadow generation is gone");
    bool released = false;
    if (rc || (rc = beat(b)) || (rc = release_lock(c, switch_id, b->holder, &released, &b->err)))
        goto fail;
    bool found = false;
    int64_t blocked = 0, took = 0;
    if ((rc = oms_store_index_job_succeed(c, b->job, old, &found, &blocked, &took, &b->err)) == OMS_OK && !found)
        rc = oms_err_set(&b->err, OMS_ECONFLICT, "the job is no longer running");
    bool job_released = false;
    if (rc || (rc = release_lock(c, b->lock_id, b->holder, &job_released, &b->err)))
        goto fail;
    json_t *detail = json_pack("{s:s,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:s}", "event", "finish", "generation",
                               (json_int_t)b->gen, "previous_generation", (json_int_t)old, "commit", head,
                               "resources", (json_int_t)b->done, "caught_up", (json_int_t)b->caught_up, "switch_ms",
                               (json_int_t)blocked, "duration_ms", (json_int_t)took, "requested_by", b->holder);
    if ((rc = audit_job(c, "index.rebuild", "success", b->branch, b->job, detail, &b->err)) ||
        (released && (rc = audit_lock(c, "lock.release", b->branch, switch_id,
                                      json_pack("{s:s,s:s}", "job", b->job, "reason", "switched"), &b->err))) ||
        (job_released && (rc = audit_lock(c, "lock.release", b->branch, b->lock_id,
                                          json_pack("{s:s,s:s}", "job", b->job, "reason", "finished"), &b->err))) ||
        (rc = oms_db_commit(c, &b->err)))
        goto fail;
    oms_log_write(OMS_LOG_INFO, NULL, NULL,
                  "index job %s: branch %s switched to generation %lld (%lld resources, %lld caught up, writes"
                  " blocked %lld ms)",
                  b->job, b->branch, (long long)b->gen, (long long)b->done, (long long)b->caught_up,
                  (long long)blocked);
    return OMS_OK;
fail:
    oms_db_rollback(c);
    return rc;
}

static int switch_over(builder *b)
{
    for (int attempt = 0; attempt < SWITCH_ATTEMPTS; attempt++) {
        char switch_id[OMS_LOCK_ID_LEN + 1];
        b->percent = PCT_SWITCH;
        int64_t opened = oms_mono_ns();
        bool drained = false;
        int64_t caught = 0;
        int rc = open_window(b, switch_id);
        if (rc == OMS_OK)
            rc = drain_window(b, opened, &drained, &caught);
        if (rc == OMS_OK && drained)
            return flip(b, switch_id);
        if (rc || (rc = defer_window(b, switch_id, caught, (oms_mono_ns() - opened) / 1000000)) || (rc = catch_up(b)))
            return rc;
    }
    return oms_err_set(&b->err, OMS_EUNAVAIL,
                       "writes to the branch kept outpacing the catch-up: the switch could not finish within"
                       " OMS_SEARCH_SWITCH_MAX_MS; rebuild at a quieter time");
}

static void *builder_main(void *p)
{
    oms_thread_name("oms-index");
    builder *b = p;
    oms_db_count_as_background(); /* not a request's round trips (/metrics) */
    int rc = oms_db_conn(b->store->db, &b->c, &b->err);
    b->last_beat_ns = oms_mono_ns();
    if (rc == OMS_OK && (rc = build(b)) == OMS_OK && !stopping() && (rc = follow_commits(b)) == OMS_OK &&
        (rc = catch_up(b)) == OMS_OK && !stopping())
        rc = switch_over(b);
    if (rc == OMS_OK && stopping())
        oms_err_set(&b->err, OMS_EUNAVAIL, "the instance stopped during the rebuild; start it again");
    if (rc || stopping()) {
        if (rc == OMS_EDB)
            oms_db_conn_reset(b->store->db);
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "index job %s failed: %s", b->job, b->err.msg);
        oms_error e2;
        if (b->c || oms_db_conn(b->store->db, &b->c, &e2) == OMS_OK) {
            /* best effort: when this cannot write, the lock lapses and any
             * instance fails the job */
            if (fail_job(b->c, b->job, b->err.msg, &e2) == OMS_EDB)
                oms_db_conn_reset(b->store->db);
        }
    }
    pthread_mutex_lock(&g_builders.mu);
    g_builders.running--;
    pthread_cond_broadcast(&g_builders.cv);
    pthread_mutex_unlock(&g_builders.mu);
    free(b);
    return NULL;
}

/* ---- starting a job ---- */

static void new_job_id(char out[OMS_INDEX_JOB_ID_LEN + 1])
{
    oms_random_id(out, "idx_");
}

static void instance_name(char *out, size_t cap)
{
    char host[128] = "localhost";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(out, cap, "%s:%d", host, (int)getpid());
}

/* Live branch-scope locks of other holders: the job's lock conflicts with
 * them (SPEC §7 scope nesting). A JSON array, empty when none. */
static int branch_lock_conflicts(oms_dbconn *c, oms_ctx *ctx, const char *branch, json_t **out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_index_branch_locks(c, branch, &r, err);
    *out = json_array();
    for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++) {
        oms_lock l;
        oms_lock_from_row(&l, r, i, 1, ctx->arena);
        json_array_append_new(*out, oms_lock_json(&l, oms_dbres_int(r, i, 0)));
    }
    oms_dbres_free(r);
    return rc;
}

/* The job's creation, one change transaction (run by src/api/search.c):
 * the branch row and lock key as writers and acquisitions take them, the
 * running-job and lock-conflict checks, the job's lock, its building
 * generation and its row; the helper records index.rebuild (start), and
 * the lock's acquisition follows it. */
typedef oms_index_rebuild rebuild_start;

int oms_index_rebuild_prepare(oms_ctx *ctx, oms_index_rebuild *st, const char *branch, const char *why,
                              bool draining, oms_error *err)
{
    memset(st, 0, sizeof *st);
    if (stopping() || draining)
        return oms_err_set(err, OMS_EUNAVAIL, "this instance is shutting down: start the rebuild elsewhere");
    st->branch = branch;
    st->why = why;
    settings s = settings_of(ctx->cfg);
    st->heartbeat_s = s.heartbeat_s;
    st->holder = ctx->sub ? ctx->sub : "oms";
    return OMS_OK;
}

int oms_index_rebuild_write(oms_dbconn *c, oms_ctx *ctx, oms_index_rebuild *st, oms_error *err)
{
    const char *branch = st->branch;
    oms_dbres *r = NULL;
    int rc;
    /* The branch row first, as writers take it: every commit after this
     * transaction sees the building generation and records its changes. */
    if ((rc = oms_store_search_branch_for_update(c, branch, &r, err)))
        goto done;
    if (r->nrows == 0) {
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
        goto done;
    }
    snprintf(st->head, sizeof st->head, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    r = NULL;
    /* then the branch's lock key, as acquisitions take it: conflicts are
     * judged against every lock committed before */
    if ((rc = oms_store_lock_branch_xact(c, branch, false, err)))
        goto done;
    /* one job per branch: a running one answers 409, unless its builder
     * died (its lock lapsed): then it is failed here and replaced */
    if ((rc = oms_store_index_job_running(c, branch, &r, err)))
        goto done;
    if (r->nrows == 1) {
        if (!lock_lapsed(r, 0, oms_dbres_int(r, 0, J(NOW)))) {
            oms_ctx_problem_extra(ctx, json_pack("{s:o}", "job", job_json(r, 0)));
            rc = oms_err_set_as(err, OMS_ECONFLICT, "rebuild_running", "a rebuild of this branch is already running");
            goto done;
        }
        bool failed;
        char *dead = oms_arena_strdup(ctx->arena, oms_dbres_get(r, 0, J(ID)));
        oms_dbres_free(r);
        r = NULL;
        if ((rc = fail_job_tx(c, dead, LAPSED_ERROR, &failed, err)))
            goto done;
    }
    oms_dbres_free(r);
    r = NULL;
    json_t *conflicts = NULL;
    if ((rc = branch_lock_conflicts(c, ctx, branch, &conflicts, err)))
        goto done;
    if (json_array_size(conflicts)) {
        oms_ctx_problem_extra(ctx, json_pack("{s:o}", "conflicts", conflicts));
        rc = oms_err_set_as(err, OMS_ECONFLICT, "lock_conflict",
                            "the branch is locked: a rebuild needs the branch for its switch");
        goto done;
    }
    json_decref(conflicts);

    char inst[200], reason[1200], msg[200];
    new_job_id(st->job);
    oms_lock_new_id(st->lock_id);
    instance_name(inst, sizeof inst);
    snprintf(reason, sizeof reason, "search index rebuild %s%s%s", st->job, st->why ? ": " : "",
             st->why ? st->why : "");
    snprintf(msg, sizeof msg, "index job %s, snapshot of %.12s", st->job, st->head);
    new_lock jl = {.id = st->lock_id, .branch = branch, .scope = "resource", .resource_type = OMS_INDEX_LOCK_REGION,
                   .resource_id = st->job, .holder = st->holder, .reason = reason,
                   .ttl_ms = oms_lock_default_ttl("indexing") * 1000, .heartbeat_s = st->heartbeat_s, .percent = 0,
                   .phase = "snapshot", .message = msg};
    st->token = 0;
    if ((rc = insert_lock(c, &jl, &st->token, err)))
        goto done;
    if ((rc = oms_store_search_new_building(c, branch, st->job, st->head, &st->gen, err)))
        goto done;
    oms_store_index_job_new jr = {.id = st->job, .branch = branch, .generation = st->gen, .commit = st->head,
                                  .lock_id = st->lock_id, .requested_by = st->holder,
                                  .request_id = ctx->request_id, .instance = inst};
    if ((rc = oms_store_index_job_insert(c, &jr, err)))
        goto done;
done:
    oms_dbres_free(r);
    return rc;
}

json_t *oms_index_rebuild_detail(const oms_index_rebuild *st)
{
    return json_pack("{s:s,s:I,s:s,s:s,s:s?}", "event", "start", "generation", (json_int_t)st->gen, "commit", st->head,
                     "lock_id", st->lock_id, "reason", st->why);
}

int oms_index_rebuild_lock_event(oms_dbconn *c, oms_ctx *ctx, const oms_index_rebuild *st, oms_error *err)
{
    json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "scope", "resource", "resource_type",
                          OMS_INDEX_LOCK_REGION, "resource_id", st->job, "kind", "indexing", "holder", st->holder,
                          "fencing_token", (json_int_t)st->token, "heartbeat_seconds", (json_int_t)st->heartbeat_s,
                          "job", st->job);
    char *dt = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    oms_audit_event lev = {.action = "lock.acquire", .outcome = "success", .http_status = 202,
                           .resource_kind = "locks", .resource_branch = st->branch, .resource_id = st->lock_id,
                           .detail = dt};
    oms_audit_from_ctx(&lev, ctx);
    int rc = oms_audit_append(c, &lev, err);
    free(dt);
    if (rc)
        return oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}", "action", "lock.acquire", "id", st->lock_id, "branch",
                             st->branch, "job", st->job, "actor", ctx->sub, "request_id", ctx->request_id);
    return oms_event_emit(c, "lock.acquired", st->lock_id, st->branch, data, err);
}

int oms_index_rebuild_launch(oms_ctx *ctx, const oms_index_rebuild *st, json_t **out, oms_error *err)
{
    *out = NULL;
    const char *branch = st->branch;
    int rc;
    oms_dbconn *c;
    if ((rc = oms_db_conn(ctx->store->db, &c, err)))
        return rc;
    builder *b = oms_xcalloc(1, sizeof *b);
    b->store = ctx->store;
    b->s = settings_of(ctx->cfg);
    snprintf(b->job, sizeof b->job, "%s", st->job);
    snprintf(b->lock_id, sizeof b->lock_id, "%s", st->lock_id);
    snprintf(b->commit, sizeof b->commit, "%s", st->head);
    snprintf(b->branch, sizeof b->branch, "%s", branch);
    snprintf(b->holder, sizeof b->holder, "%s", st->holder);
    b->gen = st->gen;
    b->phase = "snapshot";
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&g_builders.mu);
    pthread_t t;
    bool started = pthread_create(&t, &attr, builder_main, b) == 0;
    if (started)
        g_builders.running++;
    pthread_mutex_unlock(&g_builders.mu);
    pthread_attr_destroy(&attr);
    if (!started) {
        free(b);
        fail_job(c, st->job, "the builder thread could not start", err);
    }
    oms_dbres *r = NULL;
    if ((rc = load_job(c, st->job, &r, err))) {
        if (rc == OMS_EDB)
            oms_db_conn_reset(ctx->store->db);
        return rc;
    }
    *out = job_json(r, 0);
    oms_dbres_free(r);
    return OMS_OK;
}

int oms_index_job_get(oms_ctx *ctx, const char *id, json_t **out, const char **branch, oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    *out = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc || (rc = load_job(c, id, &r, err))) {
        if (rc == OMS_EDB)
            oms_db_conn_reset(ctx->store->db);
        return rc;
    }
    *branch = oms_arena_strdup(ctx->arena, oms_dbres_get(r, 0, 2));
    *out = job_json(r, 0);
    oms_dbres_free(r);
    return OMS_OK;
}

/* ---- the background task ---- */

static void stop_builders(void)
{
    atomic_store(&g_builders.stop, true);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 15;
    pthread_mutex_lock(&g_builders.mu);
    while (g_builders.running > 0)
        if (pthread_cond_timedwait(&g_builders.cv, &g_builders.mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&g_builders.mu);
}

/* Jobs whose lock lapsed: their builder is gone (killed, or its instance
 * lost the database long enough). Any instance fails them, once (the
 * UPDATE ... WHERE state = 'running' decides who). */
static void fail_lapsed_jobs(oms_store *store, oms_dbconn *c)
{
    oms_dbres *r = NULL;
    oms_error err;
    if (oms_store_index_jobs_lapsed(c, &r, &err) != OMS_OK) {
        if (err.code == OMS_EDB)
            oms_db_conn_reset(store->db);
        oms_dbres_free(r);
        return;
    }
    for (size_t i = 0; i < r->nrows; i++) {
        const char *id = oms_dbres_get(r, i, 0);
        if (fail_job(c, id, LAPSED_ERROR, &err) == OMS_OK)
            oms_log_write(OMS_LOG_WARN, NULL, NULL, "index job %s failed: its lock lapsed", id);
        else
            oms_log_write(OMS_LOG_WARN, NULL, NULL, "index job %s: cannot record its failure: %s", id, err.msg);
    }
    oms_dbres_free(r);
}

void oms_search_jobs_task(oms_store *store, bool draining)
{
    if (draining)
        stop_builders(); /* their jobs fail and release their locks first */
    oms_error err;
    oms_dbconn *c;
    if (oms_db_conn(store->db, &c, &err))
        return;
    fail_lapsed_jobs(store, c);
    /* a bounded amount of dropping per run */
    for (int i = 0; i < 8; i++) {
        bool did = false;
        if (oms_search_drop_step(c, DROP_GRACE_MS, DROP_BATCH, &did, &err)) {
            if (err.code == OMS_EDB)
                oms_db_conn_reset(store->db);
            oms_log_write(OMS_LOG_WARN, NULL, NULL, "search: dropping a retired generation: %s", err.msg);
            break;
        }
        if (!did)
            break;
    }
}
