/* The readiness check behind GET /ready (src/api/health.c): the database
 * reachable, migrated, writable and not out of disk.
 *
 * /ready answers from checks run by a thread of its own, the prober, on its
 * own database connection with its own deadline (OMS_READY_TIMEOUT_MS). A
 * /ready that finds no result younger than FRESH_MS asks for a new check and
 * waits for it, at most the deadline; concurrent /ready share one check. A
 * check still running at its deadline is itself the answer (503 "database
 * check did not finish"): a stalled database never holds /ready longer than
 * the deadline, however long the check itself stays stuck (a connect to an
 * unreachable host, a stopped server). Chosen over checking on the worker's
 * own connection, whose reconnect alone may take the connect timeout. */
#include "ops/health.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "infra/config.h"
#include "store/store.h"
#include "util/time.h"
#include "util/thread.h"

/* A result this young is answered as is. */
#define FRESH_MS 100

static struct {
    pthread_mutex_t mu;
    pthread_cond_t kick, done;
    pthread_t thread;
    bool running, stop, requested;
    oms_store *store;
    const oms_config *cfg;
    int64_t started_ns;  /* the running check's start, 0 when none runs */
    int64_t finished_ns; /* when the last result came, 0 before the first */
    unsigned long gen;   /* results so far */
    int rc;
    char reason[256];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .kick = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static int ready_timeout_ms(const oms_config *cfg) { return (int)oms_config_int(cfg, "OMS_READY_TIMEOUT_MS"); }

static int64_t min_free_bytes(const oms_config *cfg)
{
    return (int64_t)oms_config_int(cfg, "OMS_READY_MIN_FREE_MB") * 1024 * 1024;
}

static void *prober(void *arg)
{
    oms_thread_name("oms-health");
    (void)arg;
    oms_db_count_as_background(); /* not a request's round trips (/metrics) */
    oms_store *store = g.store;
    const oms_config *cfg = g.cfg;
    pthread_mutex_lock(&g.mu);
    for (;;) {
        while (!g.requested && !g.stop)
            pthread_cond_wait(&g.kick, &g.mu);
        if (g.stop)
            break;
        g.requested = false;
        g.started_ns = oms_mono_ns();
        pthread_mutex_unlock(&g.mu);
        oms_error err;
        oms_err_clear(&err);
        int rc = oms_store_probe(store, ready_timeout_ms(cfg), min_free_bytes(cfg), &err);
        pthread_mutex_lock(&g.mu);
        g.rc = rc;
        snprintf(g.reason, sizeof g.reason, "%s", err.msg);
        g.finished_ns = oms_mono_ns();
        g.started_ns = 0;
        g.gen++;
        pthread_cond_broadcast(&g.done);
    }
    pthread_mutex_unlock(&g.mu);
    return NULL; /* the thread's database connection closes with the thread */
}

void oms_health_start(oms_store *store, const oms_config *cfg)
{
    pthread_mutex_lock(&g.mu);
    if (!g.running) {
        g.store = store;
        g.cfg = cfg;
        g.stop = g.requested = false;
        g.finished_ns = g.started_ns = 0;
        g.running = pthread_create(&g.thread, NULL, prober, NULL) == 0;
    }
    pthread_mutex_unlock(&g.mu);
}

void oms_health_stop(void)
{
    pthread_mutex_lock(&g.mu);
    bool was = g.running;
    g.stop = true;
    pthread_cond_signal(&g.kick);
    pthread_mutex_unlock(&g.mu);
    if (was)
        pthread_join(g.thread, NULL); /* a check in progress ends within its deadline */
    pthread_mutex_lock(&g.mu);
    g.running = false;
    g.store = NULL;
    g.cfg = NULL;
    pthread_mutex_unlock(&g.mu);
}

int oms_health_check(oms_ctx *ctx, char *reason, size_t cap)
{
    int timeout = ready_timeout_ms(ctx->cfg);
    pthread_mutex_lock(&g.mu);
    if (!g.running || g.store != ctx->store) {
        pthread_mutex_unlock(&g.mu);
        oms_error err;
        oms_err_clear(&err);
        int rc = oms_store_probe(ctx->store, timeout, min_free_bytes(ctx->cfg), &err);
        snprintf(reason, cap, "%s", err.msg);
        return rc;
    }
    int64_t now = oms_mono_ns(), limit = now + (int64_t)timeout * 1000000;
    if (g.started_ns) {
        /* a check is under way: its result, by its own deadline */
        limit = g.started_ns + (int64_t)timeout * 1000000;
    } else if (g.finished_ns && now - g.finished_ns <= (int64_t)FRESH_MS * 1000000) {
        int rc = g.rc;
        snprintf(reason, cap, "%s", g.reason);
        pthread_mutex_unlock(&g.mu);
        return rc;
    } else {
        g.requested = true;
        pthread_cond_signal(&g.kick);
    }
    unsigned long want = g.gen + 1;
    while (g.gen < want) {
        int64_t left = limit - oms_mono_ns();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000000000;
        ts.tv_nsec += left % 1000000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g.done, &g.mu, &ts);
    }
    int rc = OMS_ETIMEOUT;
    if (g.gen >= want) {
        rc = g.rc;
        snprintf(reason, cap, "%s", g.reason);
    } else {
        snprintf(reason, cap, "database busy: the database check did not finish within %d ms", timeout);
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}
