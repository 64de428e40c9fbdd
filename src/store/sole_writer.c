#include "store/sole_writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infra/log.h"
#include "util/alloc.h"
#include "util/ids.h"
#include "util/thread.h"
#include "util/time.h"

/* The advisory lock's key (migration 0017: 0x4F4D53534F4C4501), and its
 * halves as pg_locks shows a bigint key (classid, objid; objsubid 1). */
#define LOCK_KEY "5714315119480816897"
/* Who else is there: writers waiting for the lock, and sessions on this
 * database that are not ours ($1: oms_db_own_backends). A session that
 * writes without the guard (psql, a script, an older release) must at
 * least connect first: the lease is not taken while one is connected, and
 * is given back when one appears. */
static const char k_others_pg[] =
    "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = 1330467667 AND objid = 1330398465 AND objsubid = 1),"
    " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND pid <> ALL($1::int[]))";
/* The lease's other statements (PostgreSQL only, as this file). */
static const char k_try_lock_pg[] = "SELECT pg_try_advisory_lock(" LOCK_KEY ")";
static const char k_unlock_pg[] = "SELECT pg_advisory_unlock(" LOCK_KEY ")";
static const char k_young_rows_pg[] = "SELECT count(*) FROM oms_sole_writer WHERE holder <> $1"
                                      " AND clock_timestamp() < heartbeat + interval '2 seconds'";
static const char k_insert_row_pg[] = "INSERT INTO oms_sole_writer (holder, heartbeat) VALUES ($1, clock_timestamp())"
                                      " ON CONFLICT (holder) DO UPDATE SET heartbeat = excluded.heartbeat";
static const char k_delete_others_pg[] = "DELETE FROM oms_sole_writer WHERE holder <> $1";
static const char k_delete_mine_pg[] = "DELETE FROM oms_sole_writer WHERE holder = $1";
static const char k_heartbeat_pg[] =
    "UPDATE oms_sole_writer SET heartbeat = clock_timestamp() WHERE holder = $1 RETURNING 1";

#define POLL_MS 50          /* how often the holder looks for a waiting writer */
#define HEARTBEAT_MS 250    /* how often it renews its row */
#define LOCAL_LEASE_MS 1000 /* how long memory is trusted after a heartbeat began: half the guard's 2 s */
#define RETRY_MS 1000       /* another try after the lease was not free */
#define BACKOFF_MS 30000    /* after giving it back to another writer */
#define STATEMENT_MS 500    /* the lease's session: a statement slower than this ends it */
#define DRAIN_WAIT_MS 10000 /* giving back: how long to wait for write transactions begun without the guard */
#define PAUSE_MS 10         /* taking: how long this process's writes wait for its guarded ones to end */

struct oms_sole_writer {
    oms_db *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    void *session; /* the lease's own session (NULL: none now) */
    bool held;
    char holder[48];
    int64_t next_try, next_beat; /* monotonic ns */
};

static atomic_bool g_held;
static _Atomic uint64_t g_yields;

bool oms_sole_writer_held(void) { return atomic_load(&g_held); }
uint64_t oms_sole_writer_yields(void) { return atomic_load(&g_yields); }

static int64_t ms_ns(int ms) { return (int64_t)ms * 1000000; }

/* One statement on the lease's session; false (and the session closed)
 * when it failed: whatever the session held went with it. */
static bool run(oms_sole_writer *s, const char *sql, const oms_dbparam *p, int n, oms_dbres **out);

/* The session is gone or unusable: the lease is dropped at once. Write
 * transactions begun under it take the guard before their COMMIT
 * (store/db.c), and other writers wait out this holder's row. */
static void lost(oms_sole_writer *s)
{
    oms_db_lease_released(s->db); /* before the session goes: nothing waits any more */
    if (s->held) {
        oms_db_lease_drop(s->db, false);
        atomic_store(&g_held, false);
        s->held = false;
        oms_log(OMS_LOG_WARN, "sole-writer lease: its session was lost; repeat reads go to the database");
    }
    oms_db_raw_close(s->db, s->session);
    s->session = NULL;
    s->next_try = oms_mono_ns() + ms_ns(RETRY_MS);
}

static bool run(oms_sole_writer *s, const char *sql, const oms_dbparam *p, int n, oms_dbres **out)
{
    oms_error err;
    if (oms_db_raw_exec(s->db, s->session, sql, p, n, out, &err) == OMS_OK)
        return true;
    oms_log(OMS_LOG_DEBUG, "sole-writer lease: %s", err.msg);
    lost(s);
    return false;
}

/* A single-cell answer as an integer (-1: none). */
static long long cell(oms_dbres *r)
{
    const char *v = oms_dbres_get(r, 0, 0);
    long long x = !v ? -1 : v[0] == 't' ? 1 : v[0] == 'f' ? 0 : strtoll(v, NULL, 10);
    oms_dbres_free(r);
    return x;
}

/* *others: a writer waits for the lock, or a session not ours is
 * connected. A session this process was opening meanwhile may be one of
 * the unknown ones: *unsure then, and the caller looks again next time. */
static bool others_there(oms_sole_writer *s, bool *others, bool *unsure)
{
    char own[4096];
    uint64_t stamp = oms_db_sessions_stamp(s->db);
    oms_db_own_backends(s->db, own, sizeof own);
    oms_dbparam p[] = {DBP_TEXT(own)};
    oms_dbres *r;
    if (!run(s, k_others_pg, p, 1, &r))
        return false;
    const char *waiting = oms_dbres_get(r, 0, 0), *sessions = oms_dbres_get(r, 0, 1);
    bool waits = !waiting || strtoll(waiting, NULL, 10) > 0;
    bool strangers = !sessions || strtoll(sessions, NULL, 10) > 0;
    oms_dbres_free(r);
    bool stable = stamp != UINT64_MAX && oms_db_sessions_stamp(s->db) == stamp;
    *unsure = strangers && !waits && !stable;
    *others = waits || (strangers && stable);
    return true;
}

/* The lease given back: dropped in memory first (no new write transaction
 * skips the guard), then the ones that did are waited for, then the row
 * goes, then the lock: a writer let through finds no row and goes on. */
static void give_back(oms_sole_writer *s, bool to_writer)
{
    oms_db_lease_drop(s->db, true);
    atomic_store(&g_held, false);
    s->held = false;
    int open = oms_db_lease_unguarded(s->db);
    int64_t until = oms_mono_ns() + ms_ns(DRAIN_WAIT_MS);
    while (oms_db_lease_unguarded(s->db) > 0 && oms_mono_ns() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (oms_db_lease_unguarded(s->db) > 0) { /* the session goes: writers wait out the row */
        oms_log(OMS_LOG_WARN, "sole-writer lease: write transactions still open after %d ms; closing its session",
                DRAIN_WAIT_MS);
        lost(s);
        return;
    }
    oms_dbparam p[] = {DBP_TEXT(s->holder)};
    if (run(s, k_delete_mine_pg, p, 1, NULL))
        run(s, k_unlock_pg, NULL, 0, NULL);
    oms_db_lease_released(s->db);
    if (to_writer) {
        atomic_fetch_add(&g_yields, 1);
        oms_log(OMS_LOG_INFO,
                "sole-writer lease given back: another writer waits, or another session is connected"
                " (%d write transaction(s) begun under it waited for)",
                open);
    }
}

/* Whether the lease looks free: no other holder's row younger than the
 * guard's wait (it lost its session a moment ago and may still trust its
 * memory), no writer waiting for the lock, no session that is not ours. */
static bool looks_free(oms_sole_writer *s)
{
    oms_dbparam p[] = {DBP_TEXT(s->holder)};
    oms_dbres *r;
    bool others, unsure;
    return run(s, k_young_rows_pg, p, 1, &r) && cell(r) == 0 && others_there(s, &others, &unsure) && !others &&
           !unsure;
}

/* The take, while this process's writes are paused (try_take). */
static bool take(oms_sole_writer *s)
{
    oms_dbres *r;
    if (!run(s, k_try_lock_pg, NULL, 0, &r) || cell(r) != 1)
        return false; /* another holder, or writers in their transactions */
    if (!looks_free(s)) {
        if (s->session)
            run(s, k_unlock_pg, NULL, 0, NULL);
        return false;
    }
    int64_t t0 = oms_mono_ns();
    oms_dbparam p[] = {DBP_TEXT(s->holder)};
    if (!run(s, k_insert_row_pg, p, 1, NULL) || !run(s, k_delete_others_pg, p, 1, NULL))
        return false;
    oms_db_lease_take(s->db, t0 + ms_ns(LOCAL_LEASE_MS));
    atomic_store(&g_held, true);
    s->held = true;
    s->next_beat = t0 + ms_ns(HEARTBEAT_MS);
    return true;
}

static void try_take(oms_sole_writer *s)
{
    /* Looked at first with nothing paused: where other instances or
     * sessions are, this process's writes are never held up by a take. */
    if (!looks_free(s))
        return;
    /* This process's own write transactions that took the guard hold its
     * lock shared: the lock is not free while one is open, and one whose
     * guard reached the server just after the take would wait for the
     * lease to be given back (which it was, 30 s at a time, under a steady
     * load). So its new write transactions wait, those open end, and the
     * take is tried with none in flight. */
    bool taken = oms_db_lease_pause(s->db, PAUSE_MS) && take(s);
    oms_db_lease_resume(s->db);
    if (!taken)
        return;
    oms_log(OMS_LOG_INFO, "sole-writer lease taken: repeat reads are answered from memory");
    /* A writer of another process that came meanwhile: give it back. */
    bool waits, unsure;
    if (others_there(s, &waits, &unsure) && (waits || unsure)) {
        give_back(s, waits);
        s->next_try = oms_mono_ns() + ms_ns(RETRY_MS);
    }
}

static void heartbeat(oms_sole_writer *s)
{
    int64_t t0 = oms_mono_ns();
    oms_dbparam p[] = {DBP_TEXT(s->holder)};
    oms_dbres *r;
    if (!run(s, k_heartbeat_pg, p, 1, &r))
        return;
    bool mine = r->nrows == 1;
    oms_dbres_free(r);
    if (!mine) { /* the row is gone: not a lease any writer would respect */
        give_back(s, false);
        s->next_try = oms_mono_ns() + ms_ns(RETRY_MS);
        return;
    }
    oms_db_lease_extend(s->db, t0 + ms_ns(LOCAL_LEASE_MS));
    s->next_beat = t0 + ms_ns(HEARTBEAT_MS);
}

static void step(oms_sole_writer *s)
{
    int64_t now = oms_mono_ns();
    if (!s->session) {
        if (now < s->next_try)
            return;
        oms_error err;
        if (oms_db_raw_open(s->db, &s->session, STATEMENT_MS, &err) != OMS_OK) {
            s->next_try = now + ms_ns(RETRY_MS);
            return;
        }
    }
    if (!s->held) {
        if (now >= s->next_try) {
            s->next_try = now + ms_ns(RETRY_MS);
            try_take(s);
        }
        return;
    }
    bool waits, unsure;
    if (!others_there(s, &waits, &unsure))
        return;
    if (waits) {
        give_back(s, true);
        s->next_try = oms_mono_ns() + ms_ns(BACKOFF_MS);
    } else if (now >= s->next_beat) {
        heartbeat(s);
    }
}

static void *sole_main(void *arg)
{
    oms_sole_writer *s = arg;
    oms_thread_name("oms-sole-writer");
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        step(s);
        pthread_mutex_lock(&s->mu);
        if (s->stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &until);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->held && s->session)
        give_back(s, false);
    oms_db_raw_close(s->db, s->session);
    s->session = NULL;
    return NULL;
}

int oms_sole_writer_start(oms_db *db, oms_sole_writer **out, oms_error *err)
{
    *out = NULL;
    if (oms_db_backend_of(db) != OMS_DB_PG)
        return OMS_OK;
    oms_sole_writer *s = oms_xcalloc(1, sizeof *s);
    s->db = db;
    oms_random_id(s->holder, "oms-");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, sole_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return oms_err_set(err, OMS_EINTERNAL, "cannot start the sole-writer lease thread");
    }
    *out = s;
    return OMS_OK;
}

void oms_sole_writer_stop(oms_sole_writer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
