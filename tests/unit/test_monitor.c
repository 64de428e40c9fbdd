/* The security monitor's window counters (src/audit/monitor.c): one alert
 * per key and window, the sliding count, eviction of the key seen longest
 * ago in a full bucket, and one alert under concurrent hits. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "audit/monitor.h"
#include "t.h"

static void one_alert_per_window(void)
{
    oms_mon_table *t = oms_mon_table_new(64, 3, 1000);
    int64_t c = 0;
    CHECK(!oms_mon_table_hit(t, "address:10.0.0.1", 0, &c));
    CHECK(!oms_mon_table_hit(t, "address:10.0.0.1", 1, &c));
    CHECK(oms_mon_table_hit(t, "address:10.0.0.1", 2, &c));
    CHECK_EQ_INT(c, 3);
    int raised = 0;
    for (int64_t now = 3; now < 1002; now++) /* a storm: no second alert within the window */
        raised += oms_mon_table_hit(t, "address:10.0.0.1", now, NULL);
    CHECK_EQ_INT(raised, 0);
    /* a window after the alert, the storm still on: one more */
    CHECK(oms_mon_table_hit(t, "address:10.0.0.1", 1002, &c));
    CHECK(!oms_mon_table_hit(t, "address:10.0.0.1", 1003, &c));
    oms_mon_table_free(t);
}

static void below_threshold_and_old_events(void)
{
    oms_mon_table *t = oms_mon_table_new(64, 3, 1000);
    CHECK(!oms_mon_table_hit(t, "k", 0, NULL));
    CHECK(!oms_mon_table_hit(t, "k", 10, NULL));
    /* two windows later the old events no longer count */
    int64_t c = 0;
    CHECK(!oms_mon_table_hit(t, "k", 5000, &c));
    CHECK_EQ_INT(c, 1);
    CHECK(!oms_mon_table_hit(t, "k", 5001, &c));
    CHECK_EQ_INT(c, 2);
    /* keys count apart */
    CHECK(!oms_mon_table_hit(t, "other", 5002, &c));
    CHECK_EQ_INT(c, 1);
    oms_mon_table_free(t);
}

static void sliding_count(void)
{
    oms_mon_table *t = oms_mon_table_new(64, 3, 1000);
    int64_t c = 0;
    oms_mon_table_hit(t, "k", 0, NULL);
    oms_mon_table_hit(t, "k", 0, NULL);
    /* at 1200 the sliding window [200, 1200] holds 80% of the first
     * window's two events (1.6, counted as 1) and this one */
    CHECK(!oms_mon_table_hit(t, "k", 1200, &c));
    CHECK_EQ_INT(c, 2);
    CHECK(oms_mon_table_hit(t, "k", 1200, &c));
    CHECK_EQ_INT(c, 3);
    oms_mon_table_free(t);
}

static void full_bucket_evicts_the_oldest(void)
{
    /* one bucket of 8: the ninth key evicts the key seen longest ago */
    oms_mon_table *t = oms_mon_table_new(8, 3, 100000);
    char k[32];
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof k, "k%d", i);
        oms_mon_table_hit(t, k, i, NULL);
        oms_mon_table_hit(t, k, i, NULL);
    }
    CHECK_EQ_INT(oms_mon_table_evictions(t), 0);
    int64_t c = 0;
    CHECK(!oms_mon_table_hit(t, "k8", 100, &c)); /* evicts k0 */
    CHECK_EQ_INT(oms_mon_table_evictions(t), 1);
    CHECK(!oms_mon_table_hit(t, "k0", 101, &c)); /* k0 starts over, and evicts k1 */
    CHECK_EQ_INT(c, 1);
    CHECK_EQ_INT(oms_mon_table_evictions(t), 2);
    CHECK(oms_mon_table_hit(t, "k7", 102, &c)); /* k7 was kept: its third event */
    CHECK_EQ_INT(c, 3);
    CHECK_EQ_INT(oms_mon_table_evictions(t), 2);
    oms_mon_table_free(t);
}

static void long_keys_are_cut(void)
{
    oms_mon_table *t = oms_mon_table_new(64, 2, 1000);
    char a[400], b[400];
    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[300] = 'b'; /* differs past the cut: the same key */
    CHECK(!oms_mon_table_hit(t, a, 0, NULL));
    CHECK(oms_mon_table_hit(t, b, 1, NULL));
    oms_mon_table_free(t);
}

typedef struct {
    oms_mon_table *t;
    int raised;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < 20000; i++)
        w->raised += oms_mon_table_hit(w->t, i % 2 ? "principal:x" : "address:192.0.2.1", 10 + i / 1000, NULL);
    return NULL;
}

static void concurrent_hits_raise_once(void)
{
    oms_mon_table *t = oms_mon_table_new(64, 1000, 60000);
    worker_arg w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_arg){t, 0};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    int raised = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        raised += w[i].raised;
    }
    CHECK_EQ_INT(raised, 2); /* one per key */
    oms_mon_table_free(t);
}

int main(void)
{
    static const t_case cases[] = {T(one_alert_per_window), T(below_threshold_and_old_events), T(sliding_count),
                                   T(full_bucket_evicts_the_oldest), T(long_keys_are_cut),
                                   T(concurrent_hits_raise_once)};
    return T_RUN("monitor", cases);
}
