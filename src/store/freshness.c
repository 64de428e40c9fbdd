#include "store/freshness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/acl_sql.h"
#include "util/alloc.h"
#include "util/flight.h"
#include "util/hash.h"
#include "util/thread.h"

/* One flight per (database, branch) the process serves, up to
 * MAX_FLIGHTS. Past that, a new branch takes the flight of one not served
 * lately (a clock over the table of flights: one found since the hand last
 * passed is skipped once), so a long-lived process keeps shared reads,
 * parking and the lease's memo for the branches it serves now rather than
 * for the first MAX_FLIGHTS it ever saw (a process whose proposals make a
 * branch each passes 4,096 within hours). A flight is taken only when idle:
 * nobody holds it (find() counts a holder under its slot's lock, release()
 * gives it back), nothing is parked on it and it is not on the reader's
 * queue. A flight is never freed; when none is idle, a request reads for
 * itself. */
#define SLOTS 256
#define MAX_FLIGHTS 4096
#define CLOCK_STEPS 256 /* flights looked at for an idle one, per new branch */

/* PostgreSQL under the sole-writer lease (store/sole_writer.h): the last
 * read of the branch, with the lease's epoch and the process's commit
 * count taken before it started, under a sequence count (odd while being
 * written; writers take `writing` first). */
#define MEMO_WORDS (2 + OMS_FLIGHT_WORDS)
typedef struct {
    atomic_flag writing;
    _Atomic uint64_t seq;
    _Atomic uint64_t w[MEMO_WORDS]; /* epoch, commits, the read's value */
} lease_memo;

typedef struct flight {
    struct flight *next; /* the slot's chain, under its lock */
    /* db, branch and slot are set by the thread that made or took the
     * flight (holding it: never idle meanwhile) before it is linked into
     * its slot's chain; a holder reads them freely */
    const oms_db *db;
    char *branch;
    _Atomic unsigned slot;
    atomic_int users;   /* holders: added under the slot's lock */
    atomic_bool recent; /* found since the clock's hand last passed */
    oms_flight share;   /* src/util/flight.h */
    /* On the reader's queue (or being taken from it): parked requests
     * there wait for the reader (queue_parked). */
    atomic_bool queued;
    struct flight *queue_next; /* under g_reader_mu */
    lease_memo memo;
} flight;

static pthread_mutex_t g_slot_mu[SLOTS];
static flight *g_slots[SLOTS];
static _Atomic(flight *) g_table[MAX_FLIGHTS]; /* every flight, in the order made */
static atomic_int g_nflights;                  /* entries of g_table taken */
static atomic_int g_limit = MAX_FLIGHTS;       /* flights made at most (tests lower it) */
static pthread_mutex_t g_clock_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_hand; /* the clock's next entry, under g_clock_mu */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t g_reads, g_requests, g_recycled;

static void init_slots(void)
{
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&g_slot_mu[i], NULL);
}

static uint64_t hash(const char *s, const void *db)
{
    return oms_fnv1a_str_from(OMS_FNV1A_BASIS ^ (uint64_t)(uintptr_t)db, s);
}

/* The memo answers nothing until the next read under the lease: epoch 0
 * is never a lease's (memo_lookup). */
static void memo_forget(lease_memo *m)
{
    while (atomic_flag_test_and_set_explicit(&m->writing, memory_order_acquire))
        ;
    uint64_t s = atomic_load_explicit(&m->seq, memory_order_relaxed);
    atomic_store_explicit(&m->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&m->w[0], 0, memory_order_relaxed);
    atomic_store_explicit(&m->w[1], 0, memory_order_relaxed);
    atomic_store_explicit(&m->seq, s + 2, memory_order_release);
    atomic_flag_clear_explicit(&m->writing, memory_order_release);
}

/* A new flight, while fewer than the limit were made. */
static flight *make_flight(void)
{
    int n = atomic_load(&g_nflights);
    int limit = atomic_load(&g_limit);
    while (n < limit && !atomic_compare_exchange_weak(&g_nflights, &n, n + 1))
        ;
    if (n >= limit)
        return NULL;
    flight *f = oms_xcalloc(1, sizeof *f);
    atomic_flag_clear(&f->memo.writing);
    atomic_store(&f->users, 1); /* the maker's: never idle to the clock before it has a branch */
    atomic_store(&g_table[n], f);
    return f;
}

/* An idle flight, taken out of its slot's chain, for a new branch (the
 * caller holds `slot`'s lock); NULL when the clock finds none in its steps.
 * Other slots' locks are only tried: the caller holds one already. */
static flight *recycle(unsigned slot)
{
    flight *got = NULL;
    pthread_mutex_lock(&g_clock_mu);
    int n = atomic_load(&g_nflights);
    for (int step = 0; step < CLOCK_STEPS && n > 0 && !got; step++) {
        if (g_hand >= n)
            g_hand = 0;
        flight *f = atomic_load(&g_table[g_hand++]);
        if (!f || atomic_exchange(&f->recent, false))
            continue;
        unsigned fs = atomic_load(&f->slot);
        if (fs != slot && pthread_mutex_trylock(&g_slot_mu[fs]) != 0)
            continue;
        /* Holders are added under the slot's lock, so none can appear now.
         * The slot is read again once the flight is seen idle: a slot read
         * before its last holder let go may be an older one (the lock held
         * would then not be the flight's). A request parked or queued
         * before its holder let go is seen here too. */
        if (atomic_load(&f->users) == 0 && atomic_load(&f->slot) == fs && !atomic_load(&f->queued) &&
            !oms_flight_has_parked(&f->share)) {
            for (flight **p = &g_slots[fs]; *p; p = &(*p)->next)
                if (*p == f) {
                    *p = f->next;
                    break;
                }
            atomic_store(&f->users, 1); /* the taker's, before the clock moves on */
            got = f;
        }
        if (fs != slot)
            pthread_mutex_unlock(&g_slot_mu[fs]);
    }
    pthread_mutex_unlock(&g_clock_mu);
    if (got) {
        free(got->branch);
        got->branch = NULL;
        memo_forget(&got->memo); /* another branch's answer: never this one's */
        atomic_fetch_add_explicit(&g_recycled, 1, memory_order_relaxed);
    }
    return got;
}

/* The branch's flight, held by the caller until release(); NULL when none
 * can be had (the caller reads for itself). */
static flight *find(const oms_db *db, const char *branch)
{
    pthread_once(&g_once, init_slots);
    unsigned slot = (unsigned)(hash(branch, db) % SLOTS);
    pthread_mutex_lock(&g_slot_mu[slot]);
    flight *f = g_slots[slot];
    while (f && !(f->db == db && strcmp(f->branch, branch) == 0))
        f = f->next;
    if (f) {
        atomic_fetch_add(&f->users, 1);
    } else if ((f = make_flight()) != NULL || (f = recycle(slot)) != NULL) {
        /* made or taken, held already: this branch's from now on */
        f->db = db;
        f->branch = oms_xstrdup(branch);
        f->slot = slot;
        f->next = g_slots[slot];
        g_slots[slot] = f;
    }
    if (f)
        atomic_store_explicit(&f->recent, true, memory_order_relaxed);
    pthread_mutex_unlock(&g_slot_mu[slot]);
    return f;
}

static void release(flight *f)
{
    if (f)
        atomic_fetch_sub(&f->users, 1);
}

/* The reader's hold on a flight it took off its queue (not idle while
 * queued, so its slot is its own until this returns). */
static void hold(flight *f)
{
    unsigned slot = atomic_load(&f->slot);
    pthread_mutex_lock(&g_slot_mu[slot]);
    atomic_fetch_add(&f->users, 1);
    pthread_mutex_unlock(&g_slot_mu[slot]);
}

/* The read itself, on the caller's connection. */
static int read_now(oms_dbconn *c, const char *branch, int64_t *version, char head[65], int *issue_setting,
                    oms_error *err)
{
    atomic_fetch_add_explicit(&g_reads, 1, memory_order_relaxed);
    oms_dbres *r = NULL;
    int rc = oms_store_acl_version_and_head(c, branch, &r, err);
    if (rc == OMS_OK && r->nrows != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    if (rc == OMS_OK) {
        *version = oms_dbres_int(r, 0, 0);
        const char *h = oms_dbres_get(r, 0, 1);
        snprintf(head, 65, "%s", h ? h : "");
        *issue_setting = oms_dbres_get(r, 0, 2) ? (int)oms_dbres_int(r, 0, 2) : -1;
    }
    oms_dbres_free(r);
    return rc;
}

/* SQLite: the last read of each of a few branches, per thread, with the
 * database's change token taken before it (oms_db_change_token). A
 * request whose token, taken after its arrival, equals the remembered one
 * is answered by that read: nothing was committed since it started, by any
 * connection of any process, so it is what a read now would return. */
#define MEMO_SLOTS 16

typedef struct {
    const oms_db *db;
    char branch[128]; /* branch names are at most 100 bytes */
    unsigned char token[OMS_DB_CHANGE_TOKEN];
    int64_t version;
    char head[65];
    int issue_setting;
} memo;

static _Thread_local memo tl_memo[MEMO_SLOTS];

static int read_remembered(oms_dbconn *c, const char *branch, int64_t *version, char head[65], int *issue_setting,
                           oms_error *err)
{
    unsigned char token[OMS_DB_CHANGE_TOKEN];
    const oms_db *db = oms_db_of_conn(c);
    size_t len = strlen(branch);
    memo *m = &tl_memo[hash(branch, db) % MEMO_SLOTS];
    if (len >= sizeof m->branch || !oms_db_change_token(c, token))
        return read_now(c, branch, version, head, issue_setting, err);
    if (m->db == db && strcmp(m->branch, branch) == 0 && memcmp(m->token, token, sizeof token) == 0) {
        *version = m->version;
        memcpy(head, m->head, 65);
        *issue_setting = m->issue_setting;
        return OMS_OK;
    }
    int rc = read_now(c, branch, version, head, issue_setting, err);
    if (rc == OMS_OK) {
        m->db = db;
        memcpy(m->branch, branch, len + 1);
        memcpy(m->token, token, sizeof token);
        m->version = *version;
        memcpy(m->head, head, 65);
        m->issue_setting = *issue_setting;
    }
    return rc;
}

/* PostgreSQL: one read shared by the requests of a branch that arrive
 * before it starts (src/util/flight.h). */
typedef struct {
    int64_t version;
    int issue_setting;
    char head[65];
} fresh_value;
_Static_assert(sizeof(fresh_value) <= sizeof(oms_flight_value), "a freshness read fits a flight's value");

typedef struct {
    oms_dbconn *c;
    const char *branch;
    oms_error *err;
    flight *f;
} shared_read;

/* ---- answers under the sole-writer lease (PostgreSQL) ----
 *
 * While this process holds the lease no other process commits, so a read
 * of a branch stays the answer for as long as this process's own commit
 * count (oms_db_local_commits: counted before any commit is acknowledged)
 * and the lease's epoch are those taken before that read started. A
 * request that finds them unchanged on arrival is answered from it: every
 * commit acknowledged before it arrived, by anyone, is in it. */
static void memo_store(flight *f, uint64_t epoch, uint64_t commits, const oms_flight_value *v)
{
    lease_memo *m = &f->memo;
    while (atomic_flag_test_and_set_explicit(&m->writing, memory_order_acquire))
        ;
    /* a later read's answer is never replaced by an earlier one's */
    uint64_t had_epoch = atomic_load_explicit(&m->w[0], memory_order_relaxed);
    uint64_t had_commits = atomic_load_explicit(&m->w[1], memory_order_relaxed);
    if (had_epoch != epoch || commits >= had_commits) {
        uint64_t s = atomic_load_explicit(&m->seq, memory_order_relaxed);
        atomic_store_explicit(&m->seq, s + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&m->w[0], epoch, memory_order_relaxed);
        atomic_store_explicit(&m->w[1], commits, memory_order_relaxed);
        for (int i = 0; i < OMS_FLIGHT_WORDS; i++)
            atomic_store_explicit(&m->w[2 + i], v->w[i], memory_order_relaxed);
        atomic_store_explicit(&m->seq, s + 2, memory_order_release);
    }
    atomic_flag_clear_explicit(&m->writing, memory_order_release);
}

static bool memo_lookup(flight *f, oms_db *db, oms_flight_value *out)
{
    uint64_t epoch;
    if (!f || !oms_db_lease_current(db, &epoch))
        return false;
    uint64_t commits = oms_db_local_commits(db);
    lease_memo *m = &f->memo;
    for (int tries = 0; tries < 64; tries++) {
        uint64_t s1 = atomic_load_explicit(&m->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        uint64_t e = atomic_load_explicit(&m->w[0], memory_order_relaxed);
        uint64_t n = atomic_load_explicit(&m->w[1], memory_order_relaxed);
        for (int i = 0; i < OMS_FLIGHT_WORDS; i++)
            out->w[i] = atomic_load_explicit(&m->w[2 + i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&m->seq, memory_order_relaxed) != s1)
            continue;
        /* epoch 0 is never a lease's: an empty memo never matches */
        return e == epoch && e != 0 && n == commits;
    }
    return false;
}

static void parked_done(oms_flight_parked *base, int rc, const oms_flight_value *v)
{
    oms_fresh_parked *p = (oms_fresh_parked *)base;
    p->rc = rc;
    if (rc == OMS_OK) {
        fresh_value fv;
        memcpy(&fv, v, sizeof fv);
        p->version = fv.version;
        p->issue_setting = fv.issue_setting;
        memcpy(p->head, fv.head, sizeof p->head);
    }
    p->answered(p);
}

static int read_shared(void *arg, oms_flight_value *out)
{
    shared_read *sr = arg;
    fresh_value fv = {0};
    oms_db *db = (oms_db *)oms_db_of_conn(sr->c);
    uint64_t epoch = 0, commits = oms_db_local_commits(db); /* before the read: see memo_store */
    bool lease = sr->f && oms_db_lease_current(db, &epoch);
    int rc = read_now(sr->c, sr->branch, &fv.version, fv.head, &fv.issue_setting, sr->err);
    memset(out, 0, sizeof *out);
    memcpy(out, &fv, sizeof fv);
    if (rc == OMS_OK && lease)
        memo_store(sr->f, epoch, commits, out);
    return rc;
}

static void value_out(const oms_flight_value *v, int64_t *version, char head[65], int *issue_setting)
{
    fresh_value fv;
    memcpy(&fv, v, sizeof fv);
    *version = fv.version;
    *issue_setting = fv.issue_setting;
    memcpy(head, fv.head, 65);
}

/* ---- parked requests (PostgreSQL): the reader ----
 *
 * An event loop cannot wait for a round trip, so a read it would answer
 * from memory parks on the branch's flight (oms_store_fresh_park) and is
 * answered by the next read of that branch, led by a handler thread's
 * request or, when none is under way, by this thread. One thread for the
 * process: a read is one short statement, and reads of a branch answer
 * every request parked on it.
 *
 * The reader takes flights from a queue of those with parked requests, not
 * from the list of every flight: a process keeps a flight for every branch
 * it has served (up to MAX_FLIGHTS), and a walk over all of them at every
 * wake-up cost more the longer the process ran (round 29 of
 * docs/BENCHMARKS.md: 27 → 105 ms of CPU a second over a 20-minute soak
 * whose proposals made a branch each). */
static pthread_mutex_t g_reader_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_reader_cv = PTHREAD_COND_INITIALIZER;
static bool g_reader_running, g_reader_work, g_reader_stop;
static atomic_bool g_parking_closed;
static pthread_t g_reader;
static flight *g_queue; /* flights with parked requests, under g_reader_mu */
static _Atomic uint64_t g_reader_visits; /* flights the reader took off the queue */

/* After a request parked on f (or a read left some parked): f on the
 * reader's queue, unless it is there already. A flight is taken off the
 * queue before its parked requests are looked at (read_queued): with the
 * fences, either the reader sees a request parked before this call, or
 * this call sees the flag cleared and queues the flight again. */
static void queue_parked(flight *f)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_exchange(&f->queued, true))
        return;
    pthread_mutex_lock(&g_reader_mu);
    f->queue_next = g_queue;
    g_queue = f;
    g_reader_work = true;
    pthread_cond_signal(&g_reader_cv);
    pthread_mutex_unlock(&g_reader_mu);
}

/* One read of each queued flight that has parked requests; true when the
 * queue held any. */
static bool read_queued(void)
{
    pthread_mutex_lock(&g_reader_mu);
    flight *f = g_queue;
    g_queue = NULL;
    pthread_mutex_unlock(&g_reader_mu);
    if (!f)
        return false;
    while (f) {
        flight *next = f->queue_next;
        atomic_fetch_add_explicit(&g_reader_visits, 1, memory_order_relaxed);
        hold(f); /* before it leaves the queue: it stays this branch's */
        atomic_store(&f->queued, false);
        atomic_thread_fence(memory_order_seq_cst);
        if (oms_flight_has_parked(&f->share)) {
            oms_dbconn *c;
            oms_error err;
            oms_flight_value v;
            if (oms_db_conn((oms_db *)f->db, &c, &err) == OMS_OK) {
                shared_read sr = {.c = c, .branch = f->branch, .err = &err, .f = f};
                oms_flight_share(&f->share, read_shared, &sr, &v, NULL);
            } else {
                /* no connection: a read that fails answers them (each goes
                 * to a handler thread, which reports the database's state) */
                oms_flight_fail_parked(&f->share, OMS_EDB);
            }
            /* those that parked while the read ran wait for the next */
            if (oms_flight_has_parked(&f->share))
                queue_parked(f);
        }
        release(f);
        f = next;
    }
    return true;
}

static void *reader_main(void *arg)
{
    oms_thread_name("oms-freshness");
    (void)arg;
    pthread_mutex_lock(&g_reader_mu);
    while (!g_reader_stop) {
        if (!g_reader_work) {
            pthread_cond_wait(&g_reader_cv, &g_reader_mu);
            continue;
        }
        g_reader_work = false;
        pthread_mutex_unlock(&g_reader_mu);
        while (read_queued())
            ;
        pthread_mutex_lock(&g_reader_mu);
    }
    pthread_mutex_unlock(&g_reader_mu);
    return NULL;
}

/* Every parked request answered with an error (each then goes to a
 * handler, or closes when the handlers have stopped). Only once nothing
 * else can lead a read: a leader puts back what its read did not answer. */
static void fail_all_parked(void)
{
    int n = atomic_load(&g_nflights);
    for (int i = 0; i < n; i++) {
        flight *f = atomic_load(&g_table[i]);
        if (f)
            oms_flight_fail_parked(&f->share, OMS_EDB);
    }
}

bool oms_store_fresh_remembered(oms_db *db, const char *branch, oms_fresh_parked *p)
{
    if (oms_db_backend_of(db) != OMS_DB_PG)
        return false;
    oms_flight_value v;
    flight *f = find(db, branch);
    bool hit = memo_lookup(f, db, &v);
    release(f);
    if (!hit)
        return false;
    atomic_fetch_add_explicit(&g_requests, 1, memory_order_relaxed);
    p->rc = OMS_OK;
    value_out(&v, &p->version, p->head, &p->issue_setting);
    return true;
}

bool oms_store_fresh_park(oms_db *db, const char *branch, oms_fresh_parked *p)
{
    if (oms_db_backend_of(db) != OMS_DB_PG || atomic_load(&g_parking_closed))
        return false;
    flight *f = find(db, branch);
    if (!f)
        return false;
    pthread_mutex_lock(&g_reader_mu);
    bool ok = g_reader_running || (g_reader_stop = false, pthread_create(&g_reader, NULL, reader_main, NULL) == 0);
    g_reader_running = ok;
    pthread_mutex_unlock(&g_reader_mu);
    if (ok) {
        atomic_fetch_add_explicit(&g_requests, 1, memory_order_relaxed);
        p->base.done = parked_done;
        oms_flight_park(&f->share, &p->base);
        queue_parked(f); /* before the hold ends: the flight stays this branch's */
    }
    release(f);
    return ok;
}

void oms_store_fresh_release_parked(void)
{
    atomic_store(&g_parking_closed, true);
    int n = atomic_load(&g_nflights);
    for (int i = 0; i < n; i++) {
        flight *f = atomic_load(&g_table[i]);
        if (f)
            oms_flight_close(&f->share, OMS_EDB);
    }
}

void oms_store_fresh_stop_reader(void)
{
    pthread_mutex_lock(&g_reader_mu);
    bool running = g_reader_running;
    g_reader_stop = true;
    pthread_cond_signal(&g_reader_cv);
    pthread_mutex_unlock(&g_reader_mu);
    if (running)
        pthread_join(g_reader, NULL);
    pthread_mutex_lock(&g_reader_mu);
    g_reader_running = false;
    /* the queue emptied, so a reader started again is handed what parks
     * from now on (a flag left set would keep a flight off the queue) */
    for (flight *f = g_queue; f; f = f->queue_next)
        atomic_store(&f->queued, false);
    g_queue = NULL;
    pthread_mutex_unlock(&g_reader_mu);
    fail_all_parked();
}

int oms_store_fresh_version_and_head(oms_dbconn *c, const char *branch, int64_t *version, char head[65],
                                     int *issue_setting, oms_error *err)
{
    atomic_fetch_add_explicit(&g_requests, 1, memory_order_relaxed);
    if (oms_db_backend_of_conn(c) == OMS_DB_SQLITE && !oms_db_in_tx(c))
        return read_remembered(c, branch, version, head, issue_setting, err);
    flight *f = oms_db_backend_of_conn(c) == OMS_DB_PG && !oms_db_in_tx(c) ? find(oms_db_of_conn(c), branch) : NULL;
    if (!f)
        return read_now(c, branch, version, head, issue_setting, err);
    oms_flight_value v;
    int rc = OMS_OK;
    if (!memo_lookup(f, (oms_db *)oms_db_of_conn(c), &v)) {
        shared_read sr = {.c = c, .branch = branch, .err = err, .f = f};
        rc = oms_flight_share(&f->share, read_shared, &sr, &v, NULL);
        if (oms_flight_has_parked(&f->share))
            queue_parked(f); /* parked while this read ran: the reader reads for them */
    }
    release(f);
    if (rc == OMS_OK)
        value_out(&v, version, head, issue_setting);
    return rc;
}

void oms_store_fresh_counts(uint64_t *reads, uint64_t *requests)
{
    *reads = atomic_load(&g_reads);
    *requests = atomic_load(&g_requests);
}

uint64_t oms_store_fresh_reader_visits(void) { return atomic_load(&g_reader_visits); }

uint64_t oms_store_fresh_recycled(void) { return atomic_load(&g_recycled); }

void oms_store_fresh_limit_flights(int n)
{
    atomic_store(&g_limit, n < 0 ? 0 : n > MAX_FLIGHTS ? MAX_FLIGHTS : n);
}

/* The version alone (a route without {branch}): on SQLite from the same
 * memo, under a name no branch can have; elsewhere the plain read. */
int oms_store_fresh_acl_version(oms_dbconn *c, int64_t *version, oms_error *err)
{
    char head[65];
    int setting;
    if (oms_db_backend_of_conn(c) != OMS_DB_SQLITE || oms_db_in_tx(c))
        return oms_store_acl_version(c, version, err);
    atomic_fetch_add_explicit(&g_requests, 1, memory_order_relaxed);
    return read_remembered(c, "", version, head, &setting, err);
}
