/* GET /health (liveness) and GET /ready (readiness: not draining, and the
 * database reachable, migrated, writable and not out of disk).
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
#include "ops/handlers.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/app.h"
#include "ops/health.h"
#include "util/time.h"

/* A result this young is answered as is. */
#define FRESH_MS 100

static struct {
    pthread_mutex_t mu;
    pthread_cond_t kick, done;
    pthread_t thread;
    bool running, stop, requested;
    oms_app *app;
    int64_t started_ns;  /* the running check's start, 0 when none runs */
    int64_t finished_ns; /* when the last result came, 0 before the first */
    unsigned long gen;   /* results so far */
    int rc;
    char reason[256];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .kick = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static int ready_timeout_ms(const oms_app *app) { return (int)oms_config_int(app->cfg, "OMS_READY_TIMEOUT_MS"); }

static int64_t min_free_bytes(const oms_app *app)
{
    return (int64_t)oms_config_int(app->cfg, "OMS_READY_MIN_FREE_MB") * 1024 * 1024;
}

static void *prober(void *arg)
{
    oms_app *app = arg;
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
        int rc = oms_store_probe(app->store, ready_timeout_ms(app), min_free_bytes(app), &err);
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

void oms_health_start(oms_app *app)
{
    pthread_mutex_lock(&g.mu);
    if (!g.running) {
        g.app = app;
        g.stop = g.requested = false;
        g.finished_ns = g.started_ns = 0;
        g.running = pthread_create(&g.thread, NULL, prober, app) == 0;
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
    g.app = NULL;
    pthread_mutex_unlock(&g.mu);
}

/* The verdict, within the deadline: OMS_OK or a failure with `reason`. */
static int check(oms_app *app, char *reason, size_t cap)
{
    int timeout = ready_timeout_ms(app);
    pthread_mutex_lock(&g.mu);
    if (!g.running || g.app != app) {
        pthread_mutex_unlock(&g.mu);
        oms_error err;
        oms_err_clear(&err);
        int rc = oms_store_probe(app->store, timeout, min_free_bytes(app), &err);
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

int oms_h_health(oms_request *req)
{
    return oms_resp_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

int oms_h_ready(oms_request *req)
{
    if (atomic_load(&req->app->draining))
        return oms_resp_json(req, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", "draining"));
    char reason[256];
    if (check(req->app, reason, sizeof reason) != OMS_OK)
        return oms_resp_json(req, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", reason));
    return oms_resp_json(req, 200, json_pack("{s:s}", "status", "ready"));
}
