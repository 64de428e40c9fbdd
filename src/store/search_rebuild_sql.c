#include "store/search_rebuild_sql.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/dialect.h"
#include "store/locks_sql.h"

/* ---- jobs ---- */

#define JOB_COLS                                                                                               \
    "j.id, j.branch, j.state, j.phase, j.generation, j.previous_generation, j.commit_id, j.lock_id,"          \
    " j.switch_lock_id, j.done, j.total, j.percent, j.caught_up, j.requested_by, j.instance, j.created_at,"   \
    " j.updated_at, j.switch_started_at, j.switch_ended_at, j.finished_at, j.error, l.state, l.deadline_at"
#define JOB_FROM " FROM n CROSS JOIN index_jobs j LEFT JOIN locks l ON l.id = j.lock_id"

#define JOB_BY_ID(NOW) OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " JOB_COLS JOB_FROM " WHERE j.id = $1"
#define JOB_RUNNING(NOW) OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " JOB_COLS JOB_FROM " WHERE j.branch = $1 AND j.state = 'running'"
#define JOBS_LAPSED(NOW)                                                                                        \
    OMS_LOCK_WITH_NOW(NOW) "SELECT j.id" JOB_FROM " WHERE j.state = 'running' AND (l.id IS NULL"               \
                           " OR l.state <> 'active' OR l.deadline_at <= n.t)"

int oms_store_index_job_load(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOB_BY_ID);
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_index_job_running(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOB_RUNNING);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_index_jobs_running_on(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT id FROM index_jobs WHERE branch = $1 AND state = 'running'");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_index_jobs_lapsed(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOBS_LAPSED);
    return oms_db_run(c, &q, NULL, 0, out, err);
}

#define JOB_INSERT(NOW)                                                                                        \
    "INSERT INTO index_jobs (id, branch, state, phase, generation, commit_id, lock_id, requested_by,"          \
    " request_id, instance, created_at, updated_at) VALUES ($1, $2, 'running', 'snapshot', $3, $4, $5, $6,"   \
    " $7, $8, " NOW ", " NOW ")"

int oms_store_index_job_insert(oms_dbconn *c, const oms_store_index_job_new *j, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOB_INSERT);
    oms_dbparam p[] = {DBP_TEXT(j->id),           DBP_TEXT(j->branch),     DBP_INT(j->generation),
                       DBP_TEXT(j->commit),       DBP_TEXT(j->lock_id),    DBP_TEXT(j->requested_by),
                       DBP_TEXT(j->request_id),   DBP_TEXT(j->instance)};
    return oms_db_run(c, &q, p, 8, NULL, err);
}

#define JOB_FAIL(NOW)                                                                                          \
    "UPDATE index_jobs SET state = 'failed', error = $2, finished_at = " NOW ", updated_at = " NOW            \
    " WHERE id = $1 AND state = 'running'"                                                                    \
    " RETURNING branch, generation, lock_id, switch_lock_id, requested_by, phase, done, total"

int oms_store_index_job_fail(oms_dbconn *c, const char *id, const char *error, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOB_FAIL);
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(error)};
    return oms_db_run(c, &q, p, 2, out, err);
}

#define JOB_PROGRESS(NOW)                                                                                      \
    "UPDATE index_jobs SET phase = $2, percent = $3, done = $4, total = $5, caught_up = $6, updated_at = " NOW \
    " WHERE id = $1 AND state = 'running'"

int oms_store_index_job_progress(oms_dbconn *c, const char *id, const char *phase, double percent, int64_t done,
                                 int64_t total, int64_t caught_up, int64_t *changed, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOB_PROGRESS);
    char pct[40];
    snprintf(pct, sizeof pct, "%.17g", percent);
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(phase), DBP_TEXT(pct), DBP_INT(done), DBP_INT(total),
                       DBP_INT(caught_up)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 6, &r, err);
    *changed = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_index_job_switch_lock(oms_dbconn *c, const char *id, const char *switch_lock_id, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE index_jobs SET switch_lock_id = $2, switch_started_at ="
                                          " (SELECT acquired_at FROM locks WHERE id = $2) WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(switch_lock_id)};
    return oms_db_run(c, &q, p, 2, NULL, err);
}

#define JOB_SUCCEED(NOW)                                                                                       \
    "UPDATE index_jobs SET state = 'succeeded', phase = 'done', percent = 100, switch_ended_at ="             \
    " (SELECT CASE WHEN l.state = 'released' THEN l.ended_at ELSE l.deadline_at END FROM locks l"              \
    " WHERE l.id = index_jobs.switch_lock_id), finished_at = " NOW ", updated_at = " NOW                      \
    ", previous_generation = $2 WHERE id = $1 AND state = 'running' RETURNING switch_ended_at -"              \
    " switch_started_at, finished_at - created_at"

int oms_store_index_job_succeed(oms_dbconn *c, const char *id, int64_t previous_generation, bool *found,
                                int64_t *switch_ms, int64_t *took_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(JOB_SUCCEED);
    oms_dbparam p[] = {DBP_TEXT(id), previous_generation ? DBP_INT(previous_generation) : DBP_NULL};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 2, &r, err);
    *found = rc == OMS_OK && r->nrows == 1;
    *switch_ms = *found ? oms_dbres_int(r, 0, 0) : 0;
    *took_ms = *found ? oms_dbres_int(r, 0, 1) : 0;
    oms_dbres_free(r);
    return rc;
}

/* ---- the job's locks ---- */

#define LOCK_INSERT(NOW, TOKEN)                                                                              \
    OMS_LOCK_WITH_NOW(NOW)                                                                                    \
    "INSERT INTO locks (id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at,"     \
    " expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, progress_percent, progress_phase,"       \
    " progress_message, progress_updated_at, fencing_token, state)"                                           \
    " SELECT $1, $2, $3, $4, $5, 'indexing', $6, $7, n.t, n.t + $8, $9, n.t, n.t + $10, $11, $12, $13, n.t, " \
    TOKEN ", 'active' FROM n RETURNING acquired_at, fencing_token"

int oms_store_index_lock_insert(oms_dbconn *c, const oms_store_index_lock_new *l, int64_t *token, oms_error *err)
{
    static const oms_sql q = {LOCK_INSERT(OMS_DB_NOW_SQLITE, "$14"),
                              LOCK_INSERT(OMS_DB_NOW_PG, "nextval('lock_fencing_seq')")};
    /* The next fencing token: one sequence for every lock (SQLite: the
     * counter row; PostgreSQL: the sequence, read by the insert itself). */
    static const oms_sql counter = OMS_SQL_BOTH("UPDATE lock_fencing SET value = value + 1 WHERE id = 1"
                                                " RETURNING value");
    int64_t t = 0;
    bool seq = oms_db_has_sequences(c);
    oms_dbres *r = NULL;
    int rc;
    if (!seq) {
        rc = oms_db_run(c, &counter, NULL, 0, &r, err);
        if (rc == OMS_OK)
            t = oms_dbres_int(r, 0, 0);
        oms_dbres_free(r);
        r = NULL;
        if (rc)
            return rc;
    }
    char pct[40];
    snprintf(pct, sizeof pct, "%.17g", l->percent);
    oms_dbparam p[] = {DBP_TEXT(l->id),     DBP_TEXT(l->branch),      DBP_TEXT(l->scope),  DBP_TEXT(l->resource_type),
                       DBP_TEXT(l->resource_id), DBP_TEXT(l->holder), DBP_TEXT(l->reason), DBP_INT(l->ttl_ms),
                       DBP_INT(l->heartbeat_s), DBP_INT(l->deadline_ms), DBP_TEXT(pct),    DBP_TEXT(l->phase),
                       DBP_TEXT(l->message),   DBP_INT(t)};
    rc = oms_db_run(c, &q, p, seq ? 13 : 14, &r, err);
    if (rc == OMS_OK && token)
        *token = oms_dbres_int(r, 0, 1);
    oms_dbres_free(r);
    return rc;
}

#define LOCK_RELEASE(NOW)                                                                                      \
    "UPDATE locks SET state = 'released', ended_at = " NOW ", ended_by = $2 WHERE id = $1 AND state = 'active'" \
    " AND deadline_at > " NOW

int oms_store_index_lock_release(oms_dbconn *c, const char *id, const char *by, bool *released, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(LOCK_RELEASE);
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(by)};
    int rc = oms_db_run(c, &q, p, 2, &r, err);
    if (released)
        *released = rc == OMS_OK && r->changes == 1;
    oms_dbres_free(r);
    return rc;
}

#define HEARTBEAT_PG                                                                                           \
    OMS_LOCK_WITH_NOW(OMS_LOCK_NOW_PG)                                                                         \
    "UPDATE locks SET last_heartbeat_at = n.t, deadline_at = CASE WHEN heartbeat_seconds > 0 AND"             \
    " n.t + 3 * heartbeat_seconds * 1000 < expires_at THEN n.t + 3 * heartbeat_seconds * 1000 ELSE expires_at" \
    " END, progress_percent = $2, progress_phase = $3, progress_message = $4, progress_updated_at = n.t"      \
    " FROM n WHERE id = $1 AND state = 'active' AND deadline_at > n.t"
#define HEARTBEAT_SQLITE                                                                                       \
    "UPDATE locks SET last_heartbeat_at = " OMS_LOCK_NOW_SQLITE ", deadline_at = CASE WHEN heartbeat_seconds"  \
    " > 0 AND " OMS_LOCK_NOW_SQLITE " + 3 * heartbeat_seconds * 1000 < expires_at THEN " OMS_LOCK_NOW_SQLITE   \
    " + 3 * heartbeat_seconds * 1000 ELSE expires_at END, progress_percent = $2, progress_phase = $3,"        \
    " progress_message = $4, progress_updated_at = " OMS_LOCK_NOW_SQLITE                                        \
    " WHERE id = $1 AND state = 'active' AND deadline_at > " OMS_LOCK_NOW_SQLITE

int oms_store_index_lock_beat(oms_dbconn *c, const char *id, double percent, const char *phase, const char *message,
                              int64_t *changed, oms_error *err)
{
    static const oms_sql q = {HEARTBEAT_SQLITE, HEARTBEAT_PG};
    char pct[40];
    snprintf(pct, sizeof pct, "%.17g", percent);
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(pct), DBP_TEXT(phase), DBP_TEXT(message)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 4, &r, err);
    *changed = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

#define BRANCH_LOCKS(NOW)                                                                                      \
    OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " OMS_LOCK_COLS " FROM n CROSS JOIN locks l WHERE l.branch = $1"      \
                           " AND l.state = 'active' AND l.deadline_at > n.t AND l.scope = 'branch'"            \
                           " ORDER BY l.fencing_token"

int oms_store_index_branch_locks(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(BRANCH_LOCKS);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

/* ---- the pending log ---- */

int oms_store_search_pending_add(oms_dbconn *c, int64_t gen, const json_t *resources, const char *commit,
                                 oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO search_pending (generation, resource, commit_id)"
        " SELECT $2, value, $3 FROM json_each($1) WHERE true"
        " ON CONFLICT (generation, resource) DO UPDATE SET commit_id = excluded.commit_id",
        "INSERT INTO search_pending (generation, resource, commit_id)"
        " SELECT $2, x, $3 FROM json_array_elements_text($1::json) AS x"
        " ON CONFLICT (generation, resource) DO UPDATE SET commit_id = excluded.commit_id"};
    char *text = json_dumps(resources, JSON_COMPACT);
    if (!text)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    oms_dbparam p[] = {DBP_TEXT(text), DBP_INT(gen), DBP_TEXT(commit)};
    int rc = oms_db_run(c, &q, p, 3, NULL, err);
    free(text);
    return rc;
}

int oms_store_search_pending_forget(oms_dbconn *c, int64_t gen, const char *resources, oms_error *err)
{
    static const oms_sql q = {
        "DELETE FROM search_pending WHERE generation = $2 AND resource IN (SELECT value FROM json_each($1))",
        "DELETE FROM search_pending WHERE generation = $2 AND resource IN (SELECT json_array_elements_text($1::json))"};
    oms_dbparam p[] = {DBP_TEXT(resources), DBP_INT(gen)};
    return oms_db_run(c, &q, p, 2, NULL, err);
}

int oms_store_search_row_wait_ms(oms_dbconn *c, int64_t ms, oms_error *err)
{
    if (!oms_db_row_locking(c))
        return OMS_OK; /* SQLite: the write lock, taken at BEGIN */
    char v[32];
    snprintf(v, sizeof v, "%lldms", (long long)ms);
    oms_dbparam p[] = {DBP_TEXT(v)};
    return oms_db_exec_later(c, "SELECT set_config('lock_timeout', $1, true)", p, 1, err);
}

int oms_store_search_follow(oms_dbconn *c, int64_t gen, int64_t *changed, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("UPDATE search_generations SET follows = 1 WHERE id = $1 AND state = 'building'");
    oms_dbparam p[] = {DBP_INT(gen)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *changed = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_search_pending_page(oms_dbconn *c, int64_t gen, int64_t limit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT resource, commit_id FROM search_pending WHERE generation = $1"
                                          " ORDER BY resource LIMIT $2");
    oms_dbparam p[] = {DBP_INT(gen), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_search_pending_done(oms_dbconn *c, int64_t gen, const oms_dbres *rows, oms_error *err)
{
    static const oms_sql one = OMS_SQL_BOTH("DELETE FROM search_pending WHERE generation = $1 AND resource = $2"
                                            " AND commit_id = $3");
    static const oms_sql all = OMS_SQL_BOTH("DELETE FROM search_pending p USING json_array_elements($1::json) AS x"
                                            " WHERE p.generation = $2 AND p.resource = x->>0 AND p.commit_id = x->>1");
    if (oms_db_single_writer_conn(c)) {
        /* one cached statement per row, each a primary-key probe */
        int rc = OMS_OK;
        for (size_t i = 0; rc == OMS_OK && i < rows->nrows; i++) {
            oms_dbparam p[] = {DBP_INT(gen), DBP_TEXT(oms_dbres_get(rows, i, 0)), DBP_TEXT(oms_dbres_get(rows, i, 1))};
            rc = oms_db_run(c, &one, p, 3, NULL, err);
        }
        return rc;
    }
    /* one statement: every round trip counts on a server */
    json_t *a = json_array();
    for (size_t i = 0; a && i < rows->nrows; i++)
        json_array_append_new(a, json_pack("[s,s]", oms_dbres_get(rows, i, 0), oms_dbres_get(rows, i, 1)));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    oms_dbparam p[] = {DBP_TEXT(text), DBP_INT(gen)};
    int rc = oms_db_run(c, &all, p, 2, NULL, err);
    free(text);
    return rc;
}

int oms_store_search_pending_count(oms_dbconn *c, int64_t gen, int64_t *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT count(*) FROM search_pending WHERE generation = $1");
    oms_dbparam p[] = {DBP_INT(gen)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK)
        *out = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

/* The branch's rows of `resources` as oms_store_branch_rows reads them: a
 * fork's own, else its base's (a tombstone has no object: the join drops it). */
#define SEARCH_VIEW(KEYS)                                                                                      \
    "SELECT v.resource, v.hash, o.content FROM (SELECT resource, hash FROM branch_resources"                \
    " WHERE branch = $2 AND resource IN " KEYS " UNION ALL SELECT r.resource, r.hash FROM branch_forks f"   \
    " JOIN branch_resources r ON r.branch = f.base WHERE f.branch = $2 AND r.resource IN " KEYS             \
    " AND NOT EXISTS (SELECT 1 FROM branch_resources m WHERE m.branch = $2 AND m.resource = r.resource)) v" \
    " JOIN objects o ON o.hash = v.hash"

int oms_store_search_branch_rows(oms_dbconn *c, const char *branch, const char *resources, oms_dbres **out,
                                 oms_error *err)
{
    static const oms_sql q = {SEARCH_VIEW("(SELECT value FROM json_each($1))"),
                              SEARCH_VIEW("(SELECT json_array_elements_text($1::json))")};
    oms_dbparam p[] = {DBP_TEXT(resources), DBP_TEXT(branch)};
    return oms_db_run_content_read(c, &q, p, 2, out, err);
}

/* ---- generations ---- */

#define NEW_BUILDING(NOW)                                                                                      \
    "INSERT INTO search_generations (branch, state, job_id, commit_id, created_at)"                           \
    " VALUES ($1, 'building', $2, $3, " NOW ") RETURNING id"

int oms_store_search_new_building(oms_dbconn *c, const char *branch, const char *job, const char *commit,
                                  int64_t *gen, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(NEW_BUILDING);
    oms_dbparam p[] = {DBP_TEXT(branch), DBP_TEXT(job), DBP_TEXT(commit)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 3, &r, err);
    if (rc == OMS_OK)
        *gen = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

#define RETIRE_BUILDING(NOW)                                                                                   \
    "UPDATE search_generations SET state = 'retired', retired_at = " NOW " WHERE id = $1 AND state = 'building'"

int oms_store_search_drop_building(oms_dbconn *c, int64_t gen, oms_error *err)
{
    static const oms_sql retire = OMS_SQL_WITH_NOW(RETIRE_BUILDING);
    static const oms_sql pending = OMS_SQL_BOTH("DELETE FROM search_pending WHERE generation = $1");
    oms_dbparam p[] = {DBP_INT(gen)};
    int rc = oms_db_run(c, &retire, p, 1, NULL, err);
    return rc ? rc : oms_db_run(c, &pending, p, 1, NULL, err);
}

#define RETIRE_ACTIVE(NOW)                                                                                     \
    "UPDATE search_generations SET state = 'retired', retired_at = " NOW " WHERE branch = $1 AND state = 'active'"

int oms_store_search_retire_active(oms_dbconn *c, const char *branch, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(RETIRE_ACTIVE);
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, NULL, err);
}

#define ACTIVATE(NOW)                                                                                          \
    "UPDATE search_generations SET state = 'active', activated_at = " NOW ", commit_id = $2 WHERE id = $1"    \
    " AND state = 'building'"

int oms_store_search_activate(oms_dbconn *c, int64_t gen, const char *commit, int64_t *changed, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(ACTIVATE);
    oms_dbparam p[] = {DBP_INT(gen), DBP_TEXT(commit)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 2, &r, err);
    *changed = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_search_checkpoint_wal(oms_dbconn *c, oms_error *err)
{
    static const oms_sql q = {"PRAGMA wal_checkpoint(PASSIVE)", NULL};
    if (!oms_db_single_writer_conn(c))
        return OMS_OK;
    return oms_db_run(c, &q, NULL, 0, NULL, err);
}
