#include "ops/background.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "store/db.h"
#include "util/alloc.h"
#include "util/time.h"
#include "util/thread.h"

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, stop;
} g_bg = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *loop(void *p)
{
    oms_thread_name("oms-tasks");
    oms_db_count_as_background(); /* /metrics oms_db_roundtrips_total{source="background"} */
    oms_app *app = p;
    int64_t *next = oms_xcalloc((size_t)oms_tasks_count + 1, sizeof *next);
    pthread_mutex_lock(&g_bg.mu);
    while (!g_bg.stop) {
        int64_t now = oms_mono_ns() / 1000000, wake = now + 1000;
        for (int i = 0; i < oms_tasks_count; i++) {
            if (now >= next[i]) {
                pthread_mutex_unlock(&g_bg.mu);
                oms_tasks[i].run(app);
                pthread_mutex_lock(&g_bg.mu);
                next[i] = now + oms_tasks[i].interval_ms;
            }
            if (next[i] < wake)
                wake = next[i];
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait_ms = wake - oms_mono_ns() / 1000000;
        if (wait_ms < 1)
            wait_ms = 1;
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!g_bg.stop)
            pthread_cond_timedwait(&g_bg.cv, &g_bg.mu, &ts);
    }
    pthread_mutex_unlock(&g_bg.mu);
    /* A last run flushes what is pending (e.g. an unsealed audit tail). */
    for (int i = 0; i < oms_tasks_count; i++)
        oms_tasks[i].run(app);
    free(next);
    /* the thread's database connection closes with its thread-local key */
    return NULL;
}

void oms_background_start(oms_app *app)
{
    if (oms_tasks_count == 0 || g_bg.running)
        return;
    g_bg.stop = false;
    if (pthread_create(&g_bg.thread, NULL, loop, app) == 0)
        g_bg.running = true;
}

void oms_background_stop(oms_app *app)
{
    (void)app;
    if (!g_bg.running)
        return;
    pthread_mutex_lock(&g_bg.mu);
    g_bg.stop = true;
    pthread_cond_signal(&g_bg.cv);
    pthread_mutex_unlock(&g_bg.mu);
    pthread_join(g_bg.thread, NULL);
    g_bg.running = false;
}
