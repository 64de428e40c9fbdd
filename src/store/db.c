#include "store/db.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "infra/metrics.h"
#include "store/db_driver.h"
#include "util/alloc.h"
#include "util/time.h"

/* After the database stopped answering (no answer within a deadline, a
 * connect that got no reply), new work fails at once for this long instead
 * of each request spending its whole deadline on the same silence. */
#define STALL_BACKOFF_MS 1000

/* Statements held back at most: the next one is sent with them first. */
#define MAX_HELD_BACK 40

/* A statement held back to travel with the next one (oms_db_exec_later):
 * its text and parameters copied. */
typedef struct {
    char *sql;
    oms_dbparam params[OMS_DB_MAX_PARAMS];
    char *texts[OMS_DB_MAX_PARAMS];
    int nparams;
    int as_code;        /* its failure reported as this error (0: its own) */
    const char *as_msg; /* static */
    oms_dbres **out;    /* a held-back read: its rows, once sent (NULL: unread) */
} later_stmt;

struct oms_dbconn {
    oms_db *db;
    void *handle; /* NULL after the connection was lost: reopened on next use */
    int depth;    /* open transactions: 0 or 1 */
    int deadline; /* oms_db_deadline's last word, applied to every new handle */
    /* Pipelining backends: BEGIN not sent yet (it goes out with the
     * transaction's first statement), and the statements held back. */
    bool begin_pending;
    later_stmt *later;
    int nlater, caplater;
    bool savepoint_held; /* the member savepoint is still in `later`: never sent */
    /* Releases sent ahead (oms_db_savepoint_release_ahead), results unread,
     * and the first failure found among them, which dooms the transaction. */
    int nahead;
    bool ahead_failed;
    int ahead_rc;
    oms_error ahead_err;
    bool holds_writer;   /* SQLite: this connection's write transaction holds db->writer */
    void *own_handle;    /* SQLite, holding the writer: this connection's handle, while
                          * `handle` is the process's writer handle (borrow_writer_handle) */
    /* PostgreSQL, a write transaction: oms_write_guard() goes out with its
     * BEGIN (guard_pending), or it runs under this process's sole-writer
     * lease without it (unguarded, counted in db->unguarded until its
     * COMMIT or ROLLBACK ends; the lease's epoch when it began). */
    bool guard_pending;
    bool unguarded;
    bool guarded; /* counted in db->guarded until it ends */
    uint64_t unguarded_epoch;
    int backend_pid; /* PostgreSQL: the server process of `handle`, as noted (0: none) */
    /* Group commit's leader: the member's connection that takes the
     * batch's content rows (oms_db_content_attach), and its first failure. */
    struct oms_dbconn *content;
    bool content_used; /* a content transaction was begun on it */
    bool content_failed;
    int content_rc;
    oms_error content_err;
};

static _Atomic uint64_t g_roundtrips[2]; /* requests, background */
static _Thread_local bool tl_background;

void oms_db_count_as_background(void) { tl_background = true; }

uint64_t oms_db_roundtrips(bool background)
{
    return atomic_load_explicit(&g_roundtrips[background], memory_order_relaxed);
}

static _Atomic uint64_t g_statements[3];

void oms_db_count_statement(oms_db_stmt_outcome o)
{
    atomic_fetch_add_explicit(&g_statements[o], 1, memory_order_relaxed);
}

uint64_t oms_db_statements(oms_db_stmt_outcome o)
{
    return atomic_load_explicit(&g_statements[o], memory_order_relaxed);
}

static void count_trip(void) { atomic_fetch_add_explicit(&g_roundtrips[tl_background], 1, memory_order_relaxed); }

static void forget_later(oms_dbconn *c)
{
    for (int i = 0; i < c->nlater; i++) {
        free(c->later[i].sql);
        for (int j = 0; j < c->later[i].nparams; j++)
            free(c->later[i].texts[j]);
    }
    c->nlater = 0;
}

struct oms_db {
    oms_db_backend backend;
    const oms_db_driver *drv;
    char *dsn;
    oms_db_opts opts;
    _Atomic int64_t stalled_until; /* monotonic ns; 0: answering */
    pthread_key_t key;
    pthread_mutex_t mu;   /* guards `all` */
    /* SQLite: the process's write transactions take turns here, in the
     * order the mutex grants, instead of polling the file's lock in
     * SQLite's busy handler (whose sleeps of 1 to 100 ms starve a writer
     * among many threads: lock acquisitions waited up to 1.8 s in the
     * soak with eight handler threads). Other processes still meet the
     * busy handler. */
    pthread_mutex_t writer;
    void *writer_handle;  /* SQLite: the handle write transactions run on (guarded by `writer`) */
    oms_dbconn **all;     /* every thread's connection, closed with the db */
    size_t nall, capall;
    /* PostgreSQL: the sole-writer lease (store/sole_writer.c). While
     * `lease_on`, this process's write transactions skip the guard and
     * repeat reads may be answered from memory until `lease_valid_until`;
     * `lease_epoch` moves at every change of `lease_on`. */
    atomic_bool lease_on;
    _Atomic uint64_t lease_epoch;
    _Atomic int64_t lease_valid_until; /* monotonic ns */
    atomic_int unguarded;              /* write transactions open without the guard */
    atomic_bool lease_waits;           /* the holder still holds the lock and waits for them */
    /* Taking the lease: this process's own write transactions that took
     * the guard hold its lock shared, and one whose guard reached the
     * server just after the take would wait for the lease to be given
     * back. So new ones wait here (`taking`) while those open end. */
    atomic_int guarded;                /* write transactions open with the guard */
    atomic_bool taking;
    pthread_mutex_t take_mu;
    pthread_cond_t take_cv;
    atomic_int guard;                  /* oms_write_guard() exists: 1, does not: -1, not known yet: 0 */
    int *pids;                         /* PostgreSQL: the server processes of this process's sessions (under mu) */
    size_t npids, cappids;
    atomic_int connecting;             /* sessions being opened, not noted yet */
    _Atomic uint64_t connects;         /* sessions opened (noted or failed) */
    _Atomic uint64_t local_commits;    /* PostgreSQL: COMMITs and autocommit writes ended here */
};

oms_db_opts oms_db_opts_default(void)
{
    return (oms_db_opts){.busy_timeout_ms = 5000, .writer_cache_mb = 16, .checkpoint_pages = 4000, .mmap_mb = 0,
                         .connect_timeout_s = 10, .keepalives_idle_s = 30, .keepalives_interval_s = 10,
                         .keepalives_count = 3, .session_settings = true};
}

static void forget_conn(oms_db *db, oms_dbconn *c)
{
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->nall; i++)
        if (db->all[i] == c) {
            db->all[i] = db->all[--db->nall];
            break;
        }
    pthread_mutex_unlock(&db->mu);
}

/* PostgreSQL: the server process behind each session of ours, so that the
 * sole-writer lease can tell our sessions from anyone else's. Forgotten by
 * the id noted when it opened: a broken connection no longer tells it. */
static void note_backend(oms_dbconn *c, bool open)
{
    oms_db *db = c->db;
    if (!db->drv->backend_pid || (open && !c->handle) || (!open && !c->backend_pid))
        return;
    int pid = open ? db->drv->backend_pid(c->handle) : c->backend_pid;
    c->backend_pid = open ? pid : 0;
    pthread_mutex_lock(&db->mu);
    if (open) {
        if (db->npids == db->cappids) {
            db->cappids = db->cappids ? db->cappids * 2 : 16;
            db->pids = oms_xrealloc(db->pids, db->cappids * sizeof *db->pids);
        }
        db->pids[db->npids++] = pid;
    } else {
        for (size_t i = 0; i < db->npids; i++)
            if (db->pids[i] == pid) {
                db->pids[i] = db->pids[--db->npids];
                break;
            }
    }
    pthread_mutex_unlock(&db->mu);
}

static void drop_handle(oms_dbconn *c)
{
    c->nahead = 0; /* their results went with the connection */
    note_backend(c, false);
    if (c->handle) {
        c->db->drv->disconnect(c->handle);
        oms_metrics_db_conn(-1, 0);
    }
    c->handle = NULL;
}

/* A connection is in use (for /metrics) while a transaction is open. */
static void set_depth(oms_dbconn *c, int depth)
{
    oms_metrics_db_conn(0, (depth > 0) - (c->depth > 0));
    c->depth = depth;
}

/* SQLite: every write transaction of the process runs on one handle, the
 * writer handle, borrowed with the writer turn. A connection's page cache
 * survives its own commits but is emptied at the start of any transaction
 * that finds the log changed by another connection: with each thread
 * writing on its own handle, every write transaction (a group's leader is
 * whichever thread came first) began with a cold cache and read its B-tree
 * pages again (7 % of the server's samples, 16 writers at 10,000 types).
 * On the one writer handle the pages the last write left stay cached. */
static void borrow_writer_handle(oms_dbconn *c)
{
    oms_db *db = c->db;
    if (!db->writer_handle) {
        oms_error ignored;
        if (db->drv->connect(&db->writer_handle, db->dsn, &db->opts, &ignored) != OMS_OK) {
            db->writer_handle = NULL;
            return; /* the connection's own handle serves */
        }
        oms_metrics_db_conn(1, 0);
        /* Its cache now lasts: large enough for what writes touch (the
         * indexes' upper levels, the tails they append to). */
        if (db->opts.writer_cache_mb > 0) {
            char q[64];
            snprintf(q, sizeof q, "PRAGMA cache_size=-%d", db->opts.writer_cache_mb * 1024);
            oms_error unused;
            db->drv->exec(db->writer_handle, q, NULL, 0, NULL, &unused);
        }
    }
    c->own_handle = c->handle;
    c->handle = db->writer_handle;
    db->writer_handle = NULL;
    if (db->drv->deadline)
        db->drv->deadline(c->handle, c->deadline);
}

/* The end of a write transaction on SQLite: the writer handle back (or
 * none, if it was lost meanwhile: the next writer opens another), the
 * connection's own handle back, the turn to the next writer. */
static void end_turn(oms_dbconn *c)
{
    if (!c->holds_writer)
        return;
    if (c->own_handle) {
        if (c->handle && c->db->drv->settle)
            c->db->drv->settle(c->handle);
        c->db->writer_handle = c->handle;
        c->handle = c->own_handle;
        c->own_handle = NULL;
        /* a deadline set during the transaction went to the writer handle */
        if (c->handle && c->db->drv->deadline)
            c->db->drv->deadline(c->handle, c->deadline);
    }
    c->holds_writer = false;
    pthread_mutex_unlock(&c->db->writer);
}

/* SQLite: the process's turn to write, waited for at most the busy
 * timeout, like the file's lock itself; *waited_ms says how long. */
/* The writer turn, waited for at most `ms`. */
static bool lock_writer_within(oms_db *db, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&db->writer, &until) == 0;
}

static int take_writer(oms_dbconn *c, int *waited_ms, oms_error *err)
{
    *waited_ms = 0;
    if (!oms_db_single_writer(c->db))
        return OMS_OK;
    if (pthread_mutex_trylock(&c->db->writer) == 0) {
        c->holds_writer = true;
        borrow_writer_handle(c);
        return OMS_OK;
    }
    int64_t t0 = oms_mono_ns();
    int ms = c->db->opts.busy_timeout_ms > 0 ? c->db->opts.busy_timeout_ms : 5000;
    if (!lock_writer_within(c->db, ms))
        return oms_err_set(err, OMS_ETIMEOUT, "database is locked (waited %d ms for the other writers)", ms);
    c->holds_writer = true;
    borrow_writer_handle(c);
    *waited_ms = (int)((oms_mono_ns() - t0) / 1000000);
    return OMS_OK;
}

/* A statement outside a transaction uses the connection by itself. */
static int exec_counted(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_dbres **out,
                        oms_error *err)
{
    int alone = c->depth == 0;
    oms_metrics_db_conn(0, alone);
    count_trip();
    int rc = c->db->drv->exec(c->handle, sql, params, nparams, out, err);
    oms_metrics_db_conn(0, -alone);
    return rc;
}

static void conn_destroy(void *p)
{
    oms_dbconn *c = p;
    if (!c)
        return;
    forget_conn(c->db, c);
    end_turn(c);
    drop_handle(c);
    forget_later(c);
    free(c->later);
    free(c);
}

/* ---- PostgreSQL: the write guard and the sole-writer lease ----
 *
 * Every write transaction of a process that does not hold the lease runs
 * oms_write_guard() first (migration 0017), sent with its BEGIN: it waits
 * while an instance holds the lease, which that instance gives back when
 * it sees the wait (store/sole_writer.c). The holder's own write
 * transactions skip it, and are counted until they end, so that it gives
 * the lease back only once none is left open. docs/storage.md "The
 * sole-writer lease". */
static const char k_write_guard_pg[] = "SELECT oms_write_guard()";
static const char k_write_guard_exists_pg[] = "SELECT to_regprocedure('oms_write_guard()') IS NOT NULL";

static int after_failure(oms_dbconn *c);

static void wait_take(oms_db *db)
{
    pthread_mutex_lock(&db->take_mu);
    while (atomic_load(&db->taking))
        pthread_cond_wait(&db->take_cv, &db->take_mu);
    pthread_mutex_unlock(&db->take_mu);
}

/* The guard chosen: counted while it is open, unless a take of the lease
 * is under way (then after it, whose outcome may be the lease). Counted
 * first, then the flag read; oms_db_lease_pause stores the flag, then
 * reads the count: one of the two sees the other. */
static bool count_guarded(oms_dbconn *c)
{
    atomic_fetch_add(&c->db->guarded, 1);
    if (!atomic_load(&c->db->taking)) {
        c->guarded = true;
        return true;
    }
    atomic_fetch_sub(&c->db->guarded, 1);
    wait_take(c->db);
    return false;
}

static int choose_guard(oms_dbconn *c, oms_error *err)
{
    oms_db *db = c->db;
    int known;
    do {
        /* counted first, then the lease read: oms_db_lease_drop stores the
         * flag first, then reads the count, so one of the two sees the other */
        atomic_fetch_add(&db->unguarded, 1);
        if (atomic_load(&db->lease_on)) {
            c->unguarded = true;
            c->unguarded_epoch = atomic_load(&db->lease_epoch);
            return OMS_OK;
        }
        atomic_fetch_sub(&db->unguarded, 1);
        known = atomic_load(&db->guard);
    } while (known > 0 && !count_guarded(c));
    if (known) {
        c->guard_pending = known > 0;
        return OMS_OK;
    }
    /* Before migration 0017 the guard does not exist (nor can a lease be
     * taken): asked once, and again after this process migrated
     * (oms_db_write_guard_recheck). */
    oms_dbres *r = NULL;
    int rc = exec_counted(c, k_write_guard_exists_pg, NULL, 0, &r, err);
    if (rc) {
        after_failure(c);
        return rc;
    }
    const char *v = oms_dbres_get(r, 0, 0);
    bool exists = v && v[0] == 't';
    atomic_store(&db->guard, exists ? 1 : -1);
    oms_dbres_free(r);
    return choose_guard(c, err); /* known now */
}

void oms_db_write_guard_recheck(oms_db *db) { atomic_store(&db->guard, 0); }

/* The end of a write transaction: the counts it was in. */
static void end_unguarded(oms_dbconn *c)
{
    c->guard_pending = false;
    if (c->guarded) {
        c->guarded = false;
        atomic_fetch_sub(&c->db->guarded, 1);
    }
    if (!c->unguarded)
        return;
    c->unguarded = false;
    atomic_fetch_sub(&c->db->unguarded, 1);
}

bool oms_db_lease_current(oms_db *db, uint64_t *epoch)
{
    if (!atomic_load(&db->lease_on))
        return false;
    *epoch = atomic_load(&db->lease_epoch);
    /* the epoch before the time: a lease dropped and taken again meanwhile
     * shows a new epoch, and what was remembered under the old one is not used */
    return oms_mono_ns() < atomic_load(&db->lease_valid_until) && atomic_load(&db->lease_on);
}

uint64_t oms_db_local_commits(oms_db *db) { return atomic_load(&db->local_commits); }

void oms_db_lease_take(oms_db *db, int64_t valid_until_ns)
{
    atomic_store(&db->lease_waits, true);
    atomic_store(&db->lease_valid_until, valid_until_ns);
    atomic_fetch_add(&db->lease_epoch, 1);
    atomic_store(&db->lease_on, true);
}

void oms_db_lease_extend(oms_db *db, int64_t valid_until_ns) { atomic_store(&db->lease_valid_until, valid_until_ns); }

void oms_db_lease_drop(oms_db *db, bool waits)
{
    if (!waits)
        atomic_store(&db->lease_waits, false);
    atomic_store(&db->lease_on, false);
    atomic_fetch_add(&db->lease_epoch, 1);
    atomic_store(&db->lease_valid_until, 0);
}

void oms_db_lease_released(oms_db *db) { atomic_store(&db->lease_waits, false); }

bool oms_db_lease_pause(oms_db *db, int max_wait_ms)
{
    pthread_mutex_lock(&db->take_mu);
    atomic_store(&db->taking, true);
    pthread_mutex_unlock(&db->take_mu);
    int64_t until = oms_mono_ns() + (int64_t)max_wait_ms * 1000000;
    while (atomic_load(&db->guarded) > 0) {
        if (oms_mono_ns() >= until)
            return false;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void oms_db_lease_resume(oms_db *db)
{
    pthread_mutex_lock(&db->take_mu);
    atomic_store(&db->taking, false);
    pthread_cond_broadcast(&db->take_cv);
    pthread_mutex_unlock(&db->take_mu);
}

int oms_db_lease_unguarded(oms_db *db) { return atomic_load(&db->unguarded); }

uint64_t oms_db_sessions_stamp(oms_db *db)
{
    if (atomic_load(&db->connecting) > 0)
        return UINT64_MAX;
    uint64_t n = atomic_load(&db->connects);
    return atomic_load(&db->connecting) > 0 ? UINT64_MAX : n;
}

void oms_db_own_backends(oms_db *db, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "{");
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->npids && len + 16 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%d", i ? "," : "", db->pids[i]);
    pthread_mutex_unlock(&db->mu);
    snprintf(out + len, cap - len, "}");
}

int oms_db_raw_open(oms_db *db, void **handle, int deadline_ms, oms_error *err)
{
    int rc = db->drv->connect(handle, db->dsn, &db->opts, err);
    if (rc) {
        *handle = NULL;
        return rc;
    }
    if (db->drv->deadline)
        db->drv->deadline(*handle, deadline_ms);
    return OMS_OK;
}

int oms_db_raw_exec(oms_db *db, void *handle, const char *sql, const oms_dbparam *params, int nparams,
                    oms_dbres **out, oms_error *err)
{
    if (out)
        *out = NULL;
    return db->drv->exec(handle, sql, params, nparams, out, err);
}

void oms_db_raw_close(oms_db *db, void *handle)
{
    if (handle)
        db->drv->disconnect(handle);
}

int oms_db_open(oms_db **out, const char *url, const oms_db_opts *opts, oms_error *err)
{
    const oms_db_driver *drv;
    const char *dsn;
    oms_db_backend backend;
    if (strncmp(url, "sqlite:", 7) == 0) {
        drv = &oms_db_sqlite_driver;
        dsn = url + 7;
        backend = OMS_DB_SQLITE;
    } else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        drv = &oms_db_pg_driver;
        dsn = url;
        backend = OMS_DB_PG;
    } else {
        return oms_err_set(err, OMS_ECONFIG,
                           "DATABASE_URL must start with sqlite: or postgresql://");
    }
    if (*dsn == '\0')
        return oms_err_set(err, OMS_ECONFIG, "DATABASE_URL names no database");
    oms_db *db = oms_xcalloc(1, sizeof *db);
    db->backend = backend;
    db->drv = drv;
    db->dsn = oms_xstrdup(dsn);
    db->opts = opts ? *opts : oms_db_opts_default();
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->take_mu, NULL);
    pthread_cond_init(&db->take_cv, NULL);
    pthread_mutex_init(&db->writer, NULL);
    pthread_key_create(&db->key, conn_destroy);
    *out = db;
    return OMS_OK;
}

void oms_db_close(oms_db *db)
{
    if (!db)
        return;
    pthread_key_delete(db->key);
    /* Threads that used the db are gone (or idle) by now: close what is left. */
    for (size_t i = 0; i < db->nall; i++) {
        drop_handle(db->all[i]);
        forget_later(db->all[i]);
        free(db->all[i]->later);
        free(db->all[i]);
    }
    free(db->all);
    if (db->writer_handle) {
        db->drv->disconnect(db->writer_handle);
        oms_metrics_db_conn(-1, 0);
    }
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->take_mu);
    pthread_cond_destroy(&db->take_cv);
    pthread_mutex_destroy(&db->writer);
    free(db->pids);
    free(db->dsn);
    free(db);
}

oms_db_backend oms_db_backend_of(const oms_db *db) { return db->backend; }
const char *oms_db_backend_name(const oms_db *db) { return db->drv->name; }
bool oms_db_single_writer(const oms_db *db) { return db->backend == OMS_DB_SQLITE; }
bool oms_db_reads_in_process(const oms_db *db) { return db->backend == OMS_DB_SQLITE; }

int64_t oms_db_free_bytes(const oms_db *db)
{
    if (db->backend != OMS_DB_SQLITE)
        return -1;
    /* the directory holding the file: the file itself may not exist yet */
    char *dir = oms_xstrdup(db->dsn);
    char *slash = strrchr(dir, '/');
    const char *path = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
    struct statvfs st;
    int64_t r = statvfs(path, &st) == 0 ? (int64_t)st.f_bavail * (int64_t)st.f_frsize : -1;
    free(dir);
    return r;
}

int oms_db_wal_reset(oms_db *db, int64_t min_bytes, int wait_ms, oms_error *err)
{
    if (db->backend != OMS_DB_SQLITE)
        return 0;
    size_t n = strlen(db->dsn);
    char *wal = oms_xmalloc(n + 5);
    memcpy(wal, db->dsn, n);
    memcpy(wal + n, "-wal", 5);
    struct stat st;
    bool big = stat(wal, &st) == 0 && (int64_t)st.st_size >= min_bytes;
    free(wal);
    if (!big)
        return 0;
    oms_dbconn *c;
    int rc = oms_db_conn(db, &c, err);
    if (rc)
        return rc;
    /* The writer turn first: the process's writes wait in order behind the
     * reset instead of meeting the locked file in SQLite's busy handler. */
    if (!lock_writer_within(db, wait_ms))
        return 0; /* writes are queued: next time */
    oms_db_deadline(c, wait_ms);
    oms_dbres *r = NULL;
    rc = oms_db_exec(c, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, &r, err);
    oms_db_deadline(c, -1);
    pthread_mutex_unlock(&db->writer);
    /* one row: busy (1: readers still held the log), log frames, copied */
    bool reset = rc == OMS_OK && r && r->nrows == 1 && oms_dbres_int(r, 0, 0) == 0;
    oms_dbres_free(r);
    if (rc)
        return rc;
    if (reset)
        oms_metrics_wal_reset();
    return reset ? 1 : 0;
}

static void note_stall(oms_db *db)
{
    atomic_store(&db->stalled_until, oms_mono_ns() + (int64_t)STALL_BACKOFF_MS * 1000000);
}

/* New work is refused while the database is known not to answer. */
static int stall_gate(oms_db *db, oms_error *err)
{
    int64_t until = atomic_load(&db->stalled_until);
    if (!until)
        return OMS_OK;
    int64_t left = until - oms_mono_ns();
    if (left <= 0)
        return OMS_OK;
    return oms_err_set(err, OMS_ETIMEOUT, "the database stopped answering: trying it again in %lld ms",
                       (long long)(left / 1000000) + 1);
}

/* A new handle for the connection, with the connection's own deadline. */
static int reopen(oms_dbconn *c, oms_error *err)
{
    drop_handle(c);
    int rc = stall_gate(c->db, err);
    if (rc)
        return rc;
    /* visible to the server before it is noted here: oms_db_sessions_stamp */
    atomic_fetch_add(&c->db->connecting, 1);
    rc = c->db->drv->connect(&c->handle, c->db->dsn, &c->db->opts, err);
    if (rc == OMS_OK)
        note_backend(c, true);
    atomic_fetch_add(&c->db->connects, 1);
    atomic_fetch_sub(&c->db->connecting, 1);
    if (rc) {
        c->handle = NULL;
        if (rc == OMS_ETIMEOUT && c->deadline == -1)
            note_stall(c->db);
        return rc;
    }
    oms_metrics_db_conn(1, 0);
    atomic_store(&c->db->stalled_until, 0);
    if (c->deadline != -1 && c->db->drv->deadline)
        c->db->drv->deadline(c->handle, c->deadline);
    return OMS_OK;
}

int oms_db_conn(oms_db *db, oms_dbconn **out, oms_error *err)
{
    oms_dbconn *c = pthread_getspecific(db->key);
    if (c) {
        int rc = c->handle ? OMS_OK : reopen(c, err);
        if (rc == OMS_OK)
            *out = c;
        return rc;
    }
    c = oms_xcalloc(1, sizeof *c);
    c->db = db;
    c->deadline = -1;
    int rc = reopen(c, err);
    if (rc) {
        free(c);
        return rc;
    }
    pthread_mutex_lock(&db->mu);
    if (db->nall == db->capall) {
        db->capall = db->capall ? db->capall * 2 : 16;
        db->all = oms_xrealloc(db->all, db->capall * sizeof *db->all);
    }
    db->all[db->nall++] = c;
    pthread_mutex_unlock(&db->mu);
    pthread_setspecific(db->key, c);
    *out = c;
    return OMS_OK;
}

void oms_db_conn_reset(oms_db *db)
{
    oms_dbconn *c = pthread_getspecific(db->key);
    if (!c)
        return;
    drop_handle(c);
    c->begin_pending = false;
    forget_later(c);
    set_depth(c, 0);
    end_turn(c);
    end_unguarded(c);
}

void oms_db_deadline(oms_dbconn *c, int ms)
{
    c->deadline = ms;
    if (c->handle && c->db->drv->deadline)
        c->db->drv->deadline(c->handle, ms);
}

/* Before a statement that starts something (outside a transaction, or
 * BEGIN): an idle connection the server has closed (a restart, an idle
 * timeout, a proxy) is replaced before anything is sent on it. */
static int usable_idle(oms_dbconn *c, oms_error *err)
{
    int rc = stall_gate(c->db, err);
    if (rc)
        return rc;
    if (c->handle && (!c->db->drv->alive || c->db->drv->alive(c->handle)))
        return OMS_OK;
    return reopen(c, err);
}

/* The connection's state after a failed call (OMS_DBC_* flags); a lost
 * one is dropped, a stall noted. */
static int after_failure(oms_dbconn *c)
{
    int st = c->handle ? c->db->drv->state(c->handle) : OMS_DBC_LOST;
    if (st & OMS_DBC_LOST)
        drop_handle(c);
    /* Under a deadline of its own (a readiness check's is short on
     * purpose) silence says less about the server: only the configured
     * deadline speaks for everyone. */
    if ((st & OMS_DBC_STALLED) && c->deadline == -1)
        note_stall(c->db);
    return st;
}

/* The results of the releases sent ahead, read before anything else goes
 * out on the connection. Their first failure dooms the transaction (the
 * statements after it did not run, and the server refuses every other
 * until the rollback): each later call of the transaction answers it
 * without sending anything, and oms_db_ahead_failure tells the group. */
static int settle_ahead(oms_dbconn *c, oms_error *err)
{
    if (!c->ahead_failed && !c->nahead)
        return OMS_OK;
    if (!c->ahead_failed) {
        c->nahead = 0;
        oms_error e = {0};
        int rc = c->handle ? c->db->drv->pipeline_drain(c->handle, &e)
                           : oms_err_set(&e, OMS_EDB, "the database connection was lost in this transaction");
        if (rc == OMS_OK)
            return OMS_OK;
        if (c->handle)
            after_failure(c);
        c->ahead_failed = true;
        c->ahead_rc = rc;
        c->ahead_err = e;
    }
    if (err)
        *err = c->ahead_err;
    return c->ahead_rc;
}

/* Worth one more try on a fresh connection: the connection was lost (not
 * silent: a stalled server would only stall again) and the statement
 * certainly did not run, or running it twice is harmless. */
static bool retry_safe(int st, bool harmless)
{
    return (st & OMS_DBC_LOST) && !(st & OMS_DBC_STALLED) && (!(st & OMS_DBC_SENT) || harmless);
}

/* A statement that cannot have changed anything, so that sending it again
 * after a lost connection is safe whatever the server did with it. */
static bool read_only(const char *sql)
{
    while (isspace((unsigned char)*sql))
        sql++;
    return strncasecmp(sql, "SELECT", 6) == 0 && isspace((unsigned char)sql[6]);
}

/* A statement that may change data: anything but a SELECT, or a WITH
 * query none of whose parts is an INSERT, UPDATE, DELETE or MERGE. */
static bool may_write(const char *sql)
{
    while (isspace((unsigned char)*sql))
        sql++;
    if (read_only(sql))
        return false;
    if (strncasecmp(sql, "WITH", 4) != 0 || !isspace((unsigned char)sql[4]))
        return true;
    static const char *const verbs[] = {"insert", "update", "delete", "merge"}; /* matched in any case */
    for (const char *p = sql; *p; p++) {
        if (p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++) {
            size_t n = strlen(verbs[i]);
            if (strncasecmp(p, verbs[i], n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_')
                return true;
        }
    }
    return false;
}

/* A held-back statement's failure as its caller asked it reported; a lost
 * connection and a transient refusal keep their own code (callers retry
 * those). */
static int reported_as(int rc, int as_code, const char *as_msg, oms_error *err)
{
    if (!rc || !as_code || rc == OMS_EDB || rc == OMS_EUNAVAIL)
        return rc;
    return oms_err_set(err, as_code, "%s", as_msg);
}

/* The pending BEGIN, the statements held back and the `ntail` statements
 * of `tail` in one round trip. The first error is the call's; *failed says
 * whose (-1: the BEGIN, nlater + i: tail[i], nlater + ntail: none). A
 * pipeline that began the transaction is sent once more on a fresh
 * connection when the connection was lost without a stall: nothing of it
 * can have been committed. */
static int flush_later(oms_dbconn *c, const oms_db_stmt *tail, int ntail, bool may_retry, int *failed, int *state,
                       oms_error *err)
{
    *state = 0;
    int rc = settle_ahead(c, err);
    if (rc) {
        *failed = -1;
        c->begin_pending = false;
        c->savepoint_held = false;
        forget_later(c);
        return rc;
    }
    bool begin = c->begin_pending;
    int g = begin && c->guard_pending; /* the guard first, right after BEGIN */
    int n = g + c->nlater + ntail;
    oms_db_stmt stack[16], *s = n <= 16 ? stack : oms_xcalloc((size_t)n, sizeof *s);
    if (g)
        s[0] = (oms_db_stmt){k_write_guard_pg, NULL, 0, NULL};
    for (int i = 0; i < c->nlater; i++)
        s[g + i] = (oms_db_stmt){c->later[i].sql, c->later[i].params, c->later[i].nparams, c->later[i].out};
    for (int i = 0; i < ntail; i++)
        s[g + c->nlater + i] = tail[i];
    for (int attempt = 0;; attempt++) {
        *failed = n;
        count_trip();
        rc = c->db->drv->pipeline(c->handle, begin, s, n, failed, err);
        /* indexes as the caller knows them: the guard failing is the
         * transaction's start failing, like its BEGIN */
        if (g)
            *failed = *failed == 0 ? -1 : *failed > 0 ? *failed - 1 : *failed;
        if (rc == OMS_OK)
            break;
        int st = after_failure(c);
        *state = st;
        /* the whole transaction is in this pipeline: sent again on a fresh
         * connection when the first one was found lost, but one that ends
         * in COMMIT only when none of it reached the server */
        bool commits = ntail > 0 && strcmp(tail[ntail - 1].sql, "COMMIT") == 0;
        if (!(may_retry && begin && attempt == 0 && retry_safe(st, !commits)))
            break;
        oms_error rerr;
        if (reopen(c, &rerr) != OMS_OK)
            break;
        for (int i = 0; i < n; i++)
            if (s[i].out) {
                oms_dbres_free(*s[i].out);
                *s[i].out = NULL;
            }
    }
    if (rc && *failed >= 0 && *failed < c->nlater)
        rc = reported_as(rc, c->later[*failed].as_code, c->later[*failed].as_msg, err);
    c->begin_pending = false;
    c->guard_pending = false;
    c->savepoint_held = false;
    forget_later(c);
    if (s != stack)
        free(s);
    return rc;
}

/* Queues a statement to travel with the next one (see db.h); `out`, when
 * given, receives its rows once it was sent. */
static int queue_later(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, int as_code,
                       const char *as_msg, oms_dbres **out, oms_error *err)
{
    if (out)
        *out = NULL;
    if (c->depth == 0 || !c->db->drv->pipeline || !c->handle || nparams > OMS_DB_MAX_PARAMS) {
        return reported_as(oms_db_exec(c, sql, params, nparams, out, err), as_code, as_msg, err);
    }
    if (c->nlater >= MAX_HELD_BACK) { /* a pipeline has room for 64 statements, a batch's included */
        int failed, st;
        int rc = flush_later(c, NULL, 0, true, &failed, &st, err);
        if (rc)
            return rc;
    }
    if (c->nlater == c->caplater) {
        int cap = c->caplater ? c->caplater * 2 : 8;
        c->later = oms_xrealloc(c->later, (size_t)cap * sizeof *c->later);
        c->caplater = cap;
    }
    later_stmt *l = &c->later[c->nlater];
    l->sql = oms_xstrdup(sql);
    l->nparams = nparams;
    l->as_code = as_code;
    l->as_msg = as_msg;
    l->out = out;
    for (int i = 0; i < nparams; i++) {
        l->params[i] = params[i];
        l->texts[i] = NULL;
        if (params[i].type == OMS_DBP_TEXT) {
            l->texts[i] = oms_xstrdup(params[i].s);
            l->params[i].s = l->texts[i];
        }
    }
    c->nlater++;
    return OMS_OK;
}

int oms_db_exec_later(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_error *err)
{
    return queue_later(c, sql, params, nparams, 0, NULL, NULL, err);
}

int oms_db_exec_later_as(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, int as_code,
                         const char *as_msg, oms_error *err)
{
    return queue_later(c, sql, params, nparams, as_code, as_msg, NULL, err);
}

int oms_db_read_later(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_dbres **out,
                      oms_error *err)
{
    return queue_later(c, sql, params, nparams, 0, NULL, out, err);
}

int oms_db_flush(oms_dbconn *c, oms_error *err)
{
    if (c->depth == 0 || !(c->begin_pending || c->nlater))
        return OMS_OK;
    if (!c->handle)
        return oms_err_set(err, OMS_EDB, "the database connection was lost in this transaction");
    int failed, st;
    return flush_later(c, NULL, 0, true, &failed, &st, err);
}

int oms_db_batch_run(oms_dbconn *c, const oms_db_stmt *s, int n, oms_error *err)
{
    for (int i = 0; i < n; i++)
        if (s[i].out)
            *s[i].out = NULL;
    if (c->depth == 0 || !c->db->drv->pipeline) {
        for (int i = 0; i < n; i++) {
            int rc = oms_db_exec(c, s[i].sql, s[i].params, s[i].nparams, s[i].out, err);
            if (rc)
                return rc;
        }
        return OMS_OK;
    }
    if (!c->handle)
        return oms_err_set(err, OMS_EDB, "the database connection was lost in this transaction");
    if (n == 0)
        return OMS_OK;
    /* the held-back statements and the whole batch in one pipeline: each
     * statement runs after the one before it, with its own snapshot */
    int failed, st;
    return flush_later(c, s, n, true, &failed, &st, err);
}

/* PostgreSQL: a change outside a transaction runs as a write transaction
 * of its own (BEGIN, the guard, the statement and COMMIT in one round
 * trip), so that it is guarded, or counted under the lease, like any
 * other. */
static int exec_write_alone(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams,
                            oms_dbres **out, oms_error *err)
{
    int rc = oms_db_begin(c, true, err);
    if (rc)
        return rc;
    if ((rc = oms_db_read_later(c, sql, params, nparams, out, err)) != OMS_OK) {
        oms_db_rollback(c);
        return rc;
    }
    return oms_db_commit(c, err);
}

int oms_db_exec(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams,
                oms_dbres **out, oms_error *err)
{
    if (out)
        *out = NULL;
    int rc;
    if (c->depth > 0 && !c->handle)
        return oms_err_set(err, OMS_EDB, "the database connection was lost in this transaction");
    if (c->depth > 0 && (rc = settle_ahead(c, err)) != OMS_OK)
        return rc;
    if (c->depth > 0 && (c->begin_pending || c->nlater)) {
        oms_db_stmt last = {sql, params, nparams, out};
        int failed, st;
        return flush_later(c, &last, 1, true, &failed, &st, err);
    }
    if (c->depth == 0 && c->db->backend == OMS_DB_PG && may_write(sql))
        return exec_write_alone(c, sql, params, nparams, out, err);
    if (c->depth == 0 && (rc = usable_idle(c, err)) != OMS_OK)
        return rc;
    rc = exec_counted(c, sql, params, nparams, out, err);
    if (rc == OMS_OK)
        return rc;
    int st = after_failure(c);
    /* Outside a transaction, once more on a fresh connection. */
    if (c->depth == 0 && retry_safe(st, read_only(sql))) {
        oms_error rerr;
        if (reopen(c, &rerr) != OMS_OK)
            return rc;
        if ((rc = exec_counted(c, sql, params, nparams, out, err)) != OMS_OK)
            after_failure(c);
    }
    return rc;
}

int oms_db_exec_script(oms_dbconn *c, const char *sql, oms_error *err)
{
    if (!c->handle)
        return oms_err_set(err, OMS_EDB, "the database connection was lost");
    int failed, st, rc;
    if (c->depth > 0 && (rc = settle_ahead(c, err)) != OMS_OK)
        return rc;
    if (c->depth > 0 && (c->begin_pending || c->nlater) && (rc = flush_later(c, NULL, 0, true, &failed, &st, err)))
        return rc;
    count_trip();
    rc = c->db->drv->exec_script(c->handle, sql, err);
    if (rc)
        after_failure(c);
    return rc;
}

int oms_db_begin(oms_dbconn *c, bool write, oms_error *err)
{
    if (c->depth > 0)
        return oms_err_set(err, OMS_EINTERNAL, "a transaction is already open on this connection");
    int rc = usable_idle(c, err);
    if (rc)
        return rc;
    c->ahead_failed = false;
    c->nahead = 0;
    if (c->db->drv->pipeline) {
        if (write && c->db->backend == OMS_DB_PG && (rc = choose_guard(c, err)) != OMS_OK)
            return rc;
        /* sent with the transaction's first statement: one round trip less */
        c->begin_pending = true;
        set_depth(c, 1);
        return OMS_OK;
    }
    int waited = 0;
    if (write && (rc = take_writer(c, &waited, err)) != OMS_OK)
        return rc;
    /* the turn and the file's lock share one busy timeout: the deadline
     * holds for the whole wait (another process may hold the file) */
    bool shortened = waited > 0 && c->db->drv->deadline;
    if (shortened) {
        int busy = c->db->opts.busy_timeout_ms > 0 ? c->db->opts.busy_timeout_ms : 5000;
        c->db->drv->deadline(c->handle, busy - waited > 1 ? busy - waited : 1);
    }
    count_trip();
    rc = c->db->drv->begin(c->handle, write, err);
    if (shortened)
        c->db->drv->deadline(c->handle, c->deadline);
    /* BEGIN changes nothing: a lost connection gets one more try. */
    if (rc && retry_safe(after_failure(c), true)) {
        oms_error rerr;
        if (reopen(c, &rerr) == OMS_OK && (rc = c->db->drv->begin(c->handle, write, err)) != OMS_OK)
            after_failure(c);
    }
    if (rc == OMS_OK)
        set_depth(c, 1);
    else
        end_turn(c);
    return rc;
}

static int commit(oms_dbconn *c, oms_error *err)
{
    set_depth(c, 0);
    if (!c->handle) {
        c->begin_pending = false;
        forget_later(c);
        return oms_err_set(err, OMS_EDB, "the database connection was lost in this transaction: nothing was committed");
    }
    if (c->begin_pending && !c->nlater) { /* nothing was sent: nothing to commit */
        c->begin_pending = false;
        return OMS_OK;
    }
    int rc, st;
    if ((rc = settle_ahead(c, err)) != OMS_OK) { /* doomed: never COMMIT */
        c->begin_pending = false;
        forget_later(c);
        if (c->handle)
            c->db->drv->exec(c->handle, "ROLLBACK", NULL, 0, NULL, NULL);
        return rc;
    }
    if (c->nlater) {
        /* the held-back statements and COMMIT in one round trip, sent
         * twice only when it is the whole transaction and none of it
         * reached the server (flush_later); COMMIT did not run when one
         * before it failed */
        int n = c->nlater, failed;
        oms_db_stmt commit = {"COMMIT", NULL, 0, NULL};
        rc = flush_later(c, &commit, 1, true, &failed, &st, err);
        if (rc == OMS_OK)
            return rc;
        if (failed < n) {
            if (!(st & OMS_DBC_LOST) && c->handle)
                c->db->drv->exec(c->handle, "ROLLBACK", NULL, 0, NULL, NULL);
            return rc;
        }
    } else {
        count_trip();
        rc = c->db->drv->exec(c->handle, "COMMIT", NULL, 0, NULL, err);
        if (rc == OMS_OK)
            return rc;
        st = after_failure(c);
    }
    if ((st & OMS_DBC_LOST) && (st & OMS_DBC_SENT)) { /* never sent again: it may have committed */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        return oms_err_set(err, OMS_EDB, "the database connection was lost during COMMIT: its outcome is unknown (%.180s)",
                           why);
    }
    if (st & OMS_DBC_LOST)
        return oms_err_set(err, OMS_EDB, "the database connection was lost before COMMIT: nothing was committed");
    c->db->drv->exec(c->handle, "ROLLBACK", NULL, 0, NULL, NULL);
    return rc;
}

/* The writer turn (SQLite) ends after COMMIT, not before: the next
 * writer's BEGIN IMMEDIATE would meet the file still locked by this one
 * and sleep in SQLite's busy handler. */
int oms_db_commit(oms_dbconn *c, oms_error *err)
{
    /* the content its commits name first: stored, or nothing is committed */
    if (c->content && c->depth > 0) {
        int rc = oms_db_content_settle(c, err);
        if (rc) {
            oms_db_rollback(c);
            return rc;
        }
    }
    /* Begun under the lease, which has ended since without waiting for it
     * (its session lost): the guard now, before COMMIT, so that this commit
     * never lands under another holder's lease. A lease given back in
     * order still holds the lock until this transaction ends: the guard
     * would wait for that end, for ever. */
    if (c->unguarded && c->depth > 0 && atomic_load(&c->db->lease_epoch) != c->unguarded_epoch &&
        !atomic_load(&c->db->lease_waits)) {
        int rc = queue_later(c, k_write_guard_pg, NULL, 0, 0, NULL, NULL, err);
        if (rc) {
            oms_db_rollback(c);
            return rc;
        }
    }
    bool sends = c->depth > 0 && (!c->begin_pending || c->nlater);
    int rc = commit(c, err);
    end_turn(c);
    end_unguarded(c);
    /* counted once it ended, whatever its outcome, before anyone hears of
     * it: a read that remembers the count from before its round trip then
     * knows it may be older than this commit (store/freshness.c) */
    if (sends && c->db->backend == OMS_DB_PG)
        atomic_fetch_add(&c->db->local_commits, 1);
    return rc;
}

static void rollback(oms_dbconn *c)
{
    set_depth(c, 0);
    forget_later(c);
    settle_ahead(c, NULL); /* the outcome no longer matters: it is all undone */
    if (c->begin_pending) { /* nothing was sent */
        c->begin_pending = false;
        return;
    }
    if (!c->handle)
        return; /* the server rolled back when the connection went */
    oms_error ignored;
    if (c->db->drv->exec(c->handle, "ROLLBACK", NULL, 0, NULL, &ignored) != OMS_OK)
        after_failure(c);
}

void oms_db_rollback(oms_dbconn *c)
{
    if (c->content && c->content->depth > 0) /* content no commit will name */
        oms_db_rollback(c->content);
    rollback(c);
    end_turn(c);
    end_unguarded(c);
}

/* ---- the member savepoint (txn/group_commit.c) ---- */

int oms_db_savepoint(oms_dbconn *c, oms_error *err)
{
    if (c->depth == 0)
        return oms_err_set(err, OMS_EINTERNAL, "a savepoint needs an open transaction");
    int rc = queue_later(c, "SAVEPOINT oms_member", NULL, 0, 0, NULL, NULL, err);
    /* held back when the driver pipelines: it travels with the member's
     * first statement, and a member that sent nothing rolls back for free */
    c->savepoint_held = rc == OMS_OK && c->nlater > 0;
    return rc;
}

int oms_db_savepoint_release(oms_dbconn *c, oms_error *err)
{
    if (c->savepoint_held && c->nlater == 1) { /* nothing but the savepoint: nothing to send */
        c->savepoint_held = false;
        forget_later(c);
        return OMS_OK;
    }
    return oms_db_exec(c, "RELEASE SAVEPOINT oms_member", NULL, 0, NULL, err);
}

/* What is held back (and the pending BEGIN, with the guard), then `tail`
 * when given, as one segment sent ahead: its results are read by
 * settle_ahead. OMS_DB_NOT_AHEAD (nothing sent) when the driver cannot. */
static int send_ahead(oms_dbconn *c, const char *tail, oms_error *err)
{
    int g = c->begin_pending && c->guard_pending; /* the guard first, right after BEGIN */
    int n = g + c->nlater + (tail != NULL);
    oms_db_stmt stack[16], *s = n <= 16 ? stack : oms_xcalloc((size_t)n, sizeof *s);
    if (g)
        s[0] = (oms_db_stmt){k_write_guard_pg, NULL, 0, NULL};
    for (int i = 0; i < c->nlater; i++)
        s[g + i] = (oms_db_stmt){c->later[i].sql, c->later[i].params, c->later[i].nparams, c->later[i].out};
    if (tail)
        s[g + c->nlater] = (oms_db_stmt){tail, NULL, 0, NULL};
    int rc = c->db->drv->pipeline_send(c->handle, c->begin_pending, s, n, err);
    if (s != stack)
        free(s);
    if (rc == OMS_DB_NOT_AHEAD)
        return rc;
    count_trip();
    c->begin_pending = false;
    c->guard_pending = false;
    c->savepoint_held = false;
    forget_later(c);
    if (rc == OMS_OK)
        c->nahead++;
    else
        after_failure(c);
    return rc;
}

static void content_send(oms_dbconn *c);

int oms_db_savepoint_release_ahead(oms_dbconn *c, oms_error *err)
{
    if (!c->db->drv->pipeline_send || c->depth == 0 || !c->handle || c->ahead_failed)
        return oms_db_savepoint_release(c, err);
    if (c->savepoint_held && c->nlater == 1) { /* nothing but the savepoint: nothing to send */
        c->savepoint_held = false;
        forget_later(c);
        return OMS_OK;
    }
    content_send(c); /* the member's content first: the two servers work side by side */
    int rc = send_ahead(c, "RELEASE SAVEPOINT oms_member", err);
    return rc == OMS_DB_NOT_AHEAD ? oms_db_savepoint_release(c, err) : rc;
}

int oms_db_ahead_failure(const oms_dbconn *c) { return c->ahead_failed ? c->ahead_rc : OMS_OK; }

int oms_db_savepoint_rollback(oms_dbconn *c, oms_error *err)
{
    bool held = c->savepoint_held;
    c->savepoint_held = false;
    forget_later(c);
    if (held && !c->ahead_failed)
        return OMS_OK; /* never sent: nothing of the member reached the server */
    if (!c->handle)
        return oms_err_set(err, OMS_EDB, "the database connection was lost in this transaction");
    int rc = settle_ahead(c, err);
    if (rc)
        return rc;
    if (held)
        return OMS_OK;
    rc = c->db->drv->exec(c->handle, "ROLLBACK TO SAVEPOINT oms_member", NULL, 0, NULL, err);
    if (rc == OMS_OK)
        rc = c->db->drv->exec(c->handle, "RELEASE SAVEPOINT oms_member", NULL, 0, NULL, err);
    if (rc)
        after_failure(c);
    return rc;
}

bool oms_db_in_tx(const oms_dbconn *c) { return c->depth > 0; }

/* ---- the content connection (group commit; db.h) ---- */

bool oms_db_content_attach(oms_dbconn *c, oms_dbconn *side)
{
    if (!side || side == c || side->db != c->db || c->content || c->db->backend != OMS_DB_PG ||
        !c->db->drv->pipeline_send || side->depth > 0 || !side->handle || side->nlater || side->nahead)
        return false;
    c->content = side;
    c->content_used = c->content_failed = false;
    return true;
}

/* Its first failure is kept; what it held is gone with its transaction. */
static void content_fail(oms_dbconn *c, int rc, const oms_error *why)
{
    if (!c->content_failed) {
        c->content_failed = true;
        c->content_rc = rc ? rc : OMS_EDB;
        c->content_err = *why;
        if (!c->content_err.msg[0])
            oms_err_set(&c->content_err, c->content_rc, "the content connection failed");
    }
    if (c->content->depth > 0)
        oms_db_rollback(c->content);
}

/* Off the leader's path: anything the content connection cannot take now
 * fails it, and the batch runs again without it. A transaction begun
 * under the sole-writer lease keeps its content on its own connection once
 * the lease changed: a new content transaction would take the guard, whose
 * lock the lease's holder keeps until this transaction ends. */
static bool content_usable(oms_dbconn *c)
{
    return c->content && !c->content_failed && c->depth > 0 &&
           (!c->unguarded ||
            (atomic_load(&c->db->lease_on) && atomic_load(&c->db->lease_epoch) == c->unguarded_epoch));
}

/* Its commit record precedes the batch's in the log, which the batch's
 * COMMIT flushes: a flush of its own would only add one. Its lock waits
 * are short: they are on another transaction storing the same content,
 * and a wait that closes a cycle through a leader (which PostgreSQL's
 * deadlock detector cannot see) ends there, the batch then run without
 * it. */
#define CONTENT_LOCK_TIMEOUT_MS 1000
static int content_begin(oms_dbconn *s, oms_error *err)
{
    int configured = s->db->opts.lock_timeout_ms;
    char ms[24];
    snprintf(ms, sizeof ms, "%d",
             configured > 0 && configured < CONTENT_LOCK_TIMEOUT_MS ? configured : CONTENT_LOCK_TIMEOUT_MS);
    oms_dbparam p[] = {{.type = OMS_DBP_TEXT, .s = ms}};
    int rc = oms_db_begin(s, true, err);
    return rc ? rc
              : queue_later(s, "SELECT set_config('synchronous_commit', 'off', true), set_config('lock_timeout', $1, true)",
                            p, 1, 0, NULL, NULL, err);
}

int oms_db_exec_content(oms_dbconn *c, const char *sql, const oms_dbparam *params, int nparams, oms_error *err)
{
    if (!content_usable(c))
        return oms_db_exec_later(c, sql, params, nparams, err);
    oms_dbconn *s = c->content;
    oms_error e = {0};
    int rc = OMS_OK;
    if (s->depth == 0) {
        rc = content_begin(s, &e);
        c->content_used = true;
    }
    if (rc == OMS_OK)
        rc = queue_later(s, sql, params, nparams, 0, NULL, NULL, &e);
    if (rc == OMS_OK)
        return OMS_OK;
    content_fail(c, rc, &e);
    return oms_db_exec_later(c, sql, params, nparams, err);
}

/* The content held back goes out ahead, its results read at the next
 * settle (or by the next statement on that connection). */
static void content_send(oms_dbconn *c)
{
    if (!content_usable(c) || c->content->depth == 0 || !(c->content->nlater || c->content->begin_pending))
        return;
    oms_dbconn *s = c->content;
    oms_error e = {0};
    int rc = s->ahead_failed ? s->ahead_rc : send_ahead(s, NULL, &e);
    if (rc == OMS_DB_NOT_AHEAD) /* not prepared there yet, or too much unread: sent the ordinary way */
        rc = oms_db_flush(s, &e);
    if (rc)
        content_fail(c, rc, &e);
}

int oms_db_content_settle(oms_dbconn *c, oms_error *err)
{
    if (!c->content)
        return OMS_OK;
    if (!c->content_failed && c->content->depth > 0) {
        oms_error e = {0};
        int rc = oms_db_commit(c->content, &e);
        if (rc)
            content_fail(c, rc, &e);
    }
    if (!c->content_failed)
        return OMS_OK;
    if (err)
        *err = c->content_err;
    return c->content_rc;
}

bool oms_db_content_failed(const oms_dbconn *c) { return c->content && c->content_failed; }
bool oms_db_content_used(const oms_dbconn *c) { return c->content && c->content_used; }

void oms_db_content_detach(oms_dbconn *c)
{
    if (!c->content)
        return;
    if (c->content->depth > 0)
        oms_db_rollback(c->content);
    c->content = NULL;
    c->content_used = c->content_failed = false;
}

bool oms_db_change_token(oms_dbconn *c, unsigned char out[OMS_DB_CHANGE_TOKEN])
{
    return c->handle && c->db->drv->change_token && c->db->drv->change_token(c->handle, out);
}
oms_db_backend oms_db_backend_of_conn(const oms_dbconn *c) { return c->db->backend; }
const oms_db *oms_db_of_conn(const oms_dbconn *c) { return c->db; }

oms_dbres *oms_dbres_new(size_t nrows, size_t ncols)
{
    oms_dbres *r = oms_xcalloc(1, sizeof *r);
    r->nrows = nrows;
    r->ncols = ncols;
    if (nrows && ncols) {
        r->cells = oms_xcalloc(nrows * ncols, sizeof *r->cells);
    }
    return r;
}

void oms_dbres_free(oms_dbres *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    free(r);
}

const char *oms_dbres_get(const oms_dbres *r, size_t row, size_t col)
{
    if (!r || row >= r->nrows || col >= r->ncols)
        return NULL;
    return r->cells[row * r->ncols + col];
}

int64_t oms_dbres_int(const oms_dbres *r, size_t row, size_t col)
{
    const char *s = oms_dbres_get(r, row, col);
    return s ? strtoll(s, NULL, 10) : 0;
}
