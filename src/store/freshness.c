#include "store/freshness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/acl_sql.h"
#include "util/alloc.h"
#include "util/flight.h"

/* One flight per (database, branch), never freed: a process knows few
 * branches; past MAX_FLIGHTS a request reads for itself. */
#define SLOTS 256
#define MAX_FLIGHTS 4096

typedef struct flight {
    struct flight *next;
    const oms_db *db;
    char *branch;
    oms_flight share; /* src/util/flight.h */
} flight;

static pthread_mutex_t g_slot_mu[SLOTS];
static flight *g_slots[SLOTS];
static atomic_int g_nflights;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t g_reads, g_requests;

static void init_slots(void)
{
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&g_slot_mu[i], NULL);
}

static uint64_t hash(const char *s, const void *db)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)db;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static flight *find(const oms_db *db, const char *branch)
{
    pthread_once(&g_once, init_slots);
    unsigned slot = (unsigned)(hash(branch, db) % SLOTS);
    pthread_mutex_lock(&g_slot_mu[slot]);
    flight *f = g_slots[slot];
    while (f && !(f->db == db && strcmp(f->branch, branch) == 0))
        f = f->next;
    if (!f && atomic_fetch_add(&g_nflights, 1) < MAX_FLIGHTS) {
        f = oms_xcalloc(1, sizeof *f);
        f->db = db;
        f->branch = oms_xstrdup(branch);
        f->next = g_slots[slot];
        g_slots[slot] = f;
    }
    pthread_mutex_unlock(&g_slot_mu[slot]);
    return f;
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
} shared_read;

static int read_shared(void *arg, oms_flight_value *out)
{
    shared_read *sr = arg;
    fresh_value fv = {0};
    int rc = read_now(sr->c, sr->branch, &fv.version, fv.head, &fv.issue_setting, sr->err);
    memset(out, 0, sizeof *out);
    memcpy(out, &fv, sizeof fv);
    return rc;
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
    shared_read sr = {.c = c, .branch = branch, .err = err};
    oms_flight_value v;
    int rc = oms_flight_share(&f->share, read_shared, &sr, &v, NULL);
    if (rc == OMS_OK) {
        fresh_value fv;
        memcpy(&fv, &v, sizeof fv);
        *version = fv.version;
        *issue_setting = fv.issue_setting;
        memcpy(head, fv.head, 65);
    }
    return rc;
}

void oms_store_fresh_counts(uint64_t *reads, uint64_t *requests)
{
    *reads = atomic_load(&g_reads);
    *requests = atomic_load(&g_requests);
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
