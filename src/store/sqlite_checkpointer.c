/* Background checkpoints of SQLite's write-ahead log (see the header).
 *
 * Why: with SQLite's own automatic checkpoints, the commit that takes the
 * log past the threshold copies it into the database and syncs the file
 * before it returns, so about one request in a hundred and fifty waited
 * several milliseconds longer (the p99 of lock pairs: 5.6-6.0 ms with them,
 * 3.3-4.5 ms without any checkpoint). Without checkpoints the log only grows,
 * and every commit's sync then also writes the file's new size (p50 up by
 * 15-35 %); a log checkpointed in the background is rewound and rewritten in
 * place like before, off the requests' path.
 *
 * The log starts over (is rewound) only at a write that finds it wholly
 * copied. With writes arriving all the time, a checkpoint on another thread
 * rarely ends in such a gap: the log grew to four times the threshold in a
 * benchmark. So the committer that finds the thread's last checkpoint
 * within TAIL_FRAMES of the log's end copies that tail itself (a few pages
 * and one sync), and the next write rewinds the log.
 *
 * A committer that finds the log four times past the threshold (the thread
 * falls behind, or readers keep it from finishing) checkpoints itself, as
 * SQLite would: the log's growth stays bounded. */
#include "store/sqlite_checkpointer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "infra/metrics.h"
#include "util/alloc.h"
#include "util/thread.h"

#define BEHIND_FACTOR 4
#define TAIL_FRAMES 64

struct oms_sqlite_ckpt {
    struct oms_sqlite_ckpt *next;
    char *path;
    int pages;
    int refs; /* guarded by g_mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool pending, stop; /* guarded by mu */
    atomic_int backfilled; /* frames of the log the thread's last checkpoint copied (0: none since it started over) */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static oms_sqlite_ckpt *g_list;

static void *run(void *p)
{
    oms_thread_name("oms-checkpoint");
    oms_sqlite_ckpt *k = p;
    sqlite3 *db = NULL;
    /* its own handle: a checkpoint never waits for a connection's owner */
    if (sqlite3_open_v2(k->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        db = NULL;
    } else {
        sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        sqlite3_wal_autocheckpoint(db, 0);
    }
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->pending && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        k->pending = false;
        pthread_mutex_unlock(&k->mu);
        /* PASSIVE: copies what no reader still needs, never waits; a busy
         * checkpointer lock (another checkpoint running) skips this one */
        int log = 0, copied = 0;
        if (db && sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) == SQLITE_OK) {
            atomic_store(&k->backfilled, copied);
            oms_metrics_sqlite_checkpoint(true);
        }
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    sqlite3_close(db);
    return NULL;
}

/* After each commit, on the committing connection, with the log's length. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    oms_sqlite_ckpt *k = arg;
    if (frames < k->pages) {
        if (atomic_load_explicit(&k->backfilled, memory_order_relaxed))
            atomic_store(&k->backfilled, 0); /* the log started over */
        return SQLITE_OK;
    }
    int copied = atomic_load(&k->backfilled);
    if (frames >= k->pages * BEHIND_FACTOR || (copied > 0 && frames - copied <= TAIL_FRAMES)) {
        if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK)
            oms_metrics_sqlite_checkpoint(false);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&k->mu);
    k->pending = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return SQLITE_OK;
}

oms_sqlite_ckpt *oms_sqlite_ckpt_attach(sqlite3 *db, const char *path, int pages)
{
    pthread_mutex_lock(&g_mu);
    oms_sqlite_ckpt *k = g_list;
    while (k && strcmp(k->path, path) != 0)
        k = k->next;
    if (!k) {
        k = oms_xcalloc(1, sizeof *k);
        k->path = oms_xstrdup(path);
        k->pages = pages;
        pthread_mutex_init(&k->mu, NULL);
        pthread_cond_init(&k->cv, NULL);
        if (pthread_create(&k->thread, NULL, run, k) != 0) {
            pthread_mutex_unlock(&g_mu);
            pthread_cond_destroy(&k->cv);
            pthread_mutex_destroy(&k->mu);
            free(k->path);
            free(k);
            return NULL;
        }
        k->next = g_list;
        g_list = k;
    }
    k->refs++;
    pthread_mutex_unlock(&g_mu);
    sqlite3_wal_hook(db, wal_hook, k);
    return k;
}

void oms_sqlite_ckpt_detach(oms_sqlite_ckpt *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&g_mu);
    bool last = --k->refs == 0;
    if (last) {
        oms_sqlite_ckpt **pp = &g_list;
        while (*pp != k)
            pp = &(*pp)->next;
        *pp = k->next;
    }
    pthread_mutex_unlock(&g_mu);
    if (!last)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k->path);
    free(k);
}
