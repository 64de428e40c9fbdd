/* Security monitoring (SPEC §10): see monitor.h, and docs/security.md
 * "Security monitoring" for why a burst alert is written by a background
 * task rather than by the request that completes the burst. */
#include "util/ids.h"
#include "audit/monitor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/alerts.h"
#include "audit/audit.h"
#include "infra/log.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/time.h"

/* ---- the window counters ---- */

#define MON_WAYS 8
#define MON_SHARDS 16

/* Sliding window by two fixed windows (the current one and the previous
 * one, weighted by how much of it still falls inside the sliding window):
 * two counters per key instead of a timestamp per event. */
typedef struct {
    bool used, alerted;
    uint64_t hash;
    int64_t last_ms;     /* last event: the oldest in a full bucket goes */
    int64_t start_ms;    /* the current fixed window's start */
    int64_t cur, prev;   /* events in the current and the previous window */
    int64_t quiet_until; /* no second alert before (one per window) */
    char key[OMS_MON_KEY_MAX];
} mon_slot;

typedef struct {
    pthread_mutex_t mu;
} mon_shard;

struct oms_mon_table {
    mon_shard shards[MON_SHARDS];
    mon_slot *slots; /* nbuckets * MON_WAYS */
    size_t nbuckets;
    int64_t threshold, window_ms;
    uint64_t seed;
    atomic_ullong evictions;
};

oms_mon_table *oms_mon_table_new(size_t capacity, int64_t threshold, int64_t window_ms)
{
    oms_mon_table *t = oms_xcalloc(1, sizeof *t);
    t->nbuckets = (capacity + MON_WAYS - 1) / MON_WAYS;
    if (t->nbuckets == 0)
        t->nbuckets = 1;
    t->slots = oms_xcalloc(t->nbuckets * MON_WAYS, sizeof *t->slots);
    t->threshold = threshold > 0 ? threshold : 1;
    t->window_ms = window_ms > 0 ? window_ms : 1;
    /* a keyed hash: a client cannot choose keys that share one bucket */
    oms_random_bytes(&t->seed, sizeof t->seed);
    for (int i = 0; i < MON_SHARDS; i++)
        pthread_mutex_init(&t->shards[i].mu, NULL);
    return t;
}

void oms_mon_table_free(oms_mon_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < MON_SHARDS; i++)
        pthread_mutex_destroy(&t->shards[i].mu);
    free(t->slots);
    free(t);
}

uint64_t oms_mon_table_evictions(const oms_mon_table *t) { return t ? atomic_load(&t->evictions) : 0; }

/* FNV-1a over the seed and the key, then a final mix. */
static uint64_t key_hash(uint64_t seed, const char *k, size_t n)
{
    uint64_t h = oms_fnv1a_bytes_from(OMS_FNV1A_BASIS ^ seed, k, n);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static mon_slot *find_slot(oms_mon_table *t, mon_slot *bucket, uint64_t h, const char *key, size_t n)
{
    mon_slot *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < MON_WAYS; i++) {
        mon_slot *s = &bucket[i];
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (s->hash == h && strncmp(s->key, key, n) == 0 && s->key[n] == '\0')
            return s;
        if (!oldest || s->last_ms < oldest->last_ms)
            oldest = s;
    }
    mon_slot *s = free_slot;
    if (!s) {
        s = oldest;
        atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
    }
    memset(s, 0, sizeof *s);
    s->used = true;
    s->hash = h;
    memcpy(s->key, key, n);
    s->key[n] = '\0';
    return s;
}

bool oms_mon_table_hit(oms_mon_table *t, const char *key, int64_t now_ms, int64_t *count)
{
    size_t n = strlen(key);
    if (n >= OMS_MON_KEY_MAX)
        n = OMS_MON_KEY_MAX - 1;
    uint64_t h = key_hash(t->seed, key, n);
    size_t b = (size_t)(h % t->nbuckets);
    mon_shard *sh = &t->shards[b % MON_SHARDS];
    pthread_mutex_lock(&sh->mu);
    mon_slot *s = find_slot(t, &t->slots[b * MON_WAYS], h, key, n);
    int64_t w = t->window_ms;
    if (s->cur == 0 && s->prev == 0) {
        s->start_ms = now_ms;
    } else if (now_ms >= s->start_ms + w) {
        /* the previous window counts only when it is the one just ended */
        s->prev = now_ms < s->start_ms + 2 * w ? s->cur : 0;
        s->cur = 0;
        s->start_ms += (now_ms - s->start_ms) / w * w;
    }
    s->cur++;
    s->last_ms = now_ms;
    int64_t into = now_ms - s->start_ms;
    int64_t c = s->cur + (s->prev * (w - into)) / w;
    bool raise = c >= t->threshold && (!s->alerted || now_ms >= s->quiet_until);
    if (raise) {
        s->alerted = true;
        s->quiet_until = now_ms + w;
    }
    pthread_mutex_unlock(&sh->mu);
    if (count)
        *count = c;
    return raise;
}

/* ---- the queue of burst alerts ---- */

/* Bounded: a flood of distinct keys queues at most this many alerts
 * between two runs of the task; the rest are counted and logged. */
#define MON_QUEUE 256

typedef struct {
    const char *rule;
    char key[OMS_MON_KEY_MAX];
    char client_addr[64];
    char principal[OMS_MON_KEY_MAX];
    int64_t count, threshold, window_s, time_ms;
} mon_alert;

typedef struct {
    oms_mon_table *table;
    int64_t threshold, window_s;
} mon_rule;

static struct {
    mon_rule auth, denial;
    pthread_mutex_t mu;
    mon_alert queue[MON_QUEUE];
    size_t head, len;
    uint64_t dropped;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Keys held per rule: fixed memory (about 220 bytes a key). */
#define MON_KEYS 4096

int oms_monitor_configure(const oms_config *cfg, oms_error *err)
{
    int64_t an, aw, dn, dw;
    if (oms_config_count_window(cfg, "OMS_ALERT_AUTH_FAILURES", &an, &aw, err) ||
        oms_config_count_window(cfg, "OMS_ALERT_DENIALS", &dn, &dw, err))
        return OMS_ECONFIG;
    oms_mon_table_free(g.auth.table);
    oms_mon_table_free(g.denial.table);
    g.auth = (mon_rule){oms_mon_table_new(MON_KEYS, an, aw * 1000), an, aw};
    g.denial = (mon_rule){oms_mon_table_new(MON_KEYS, dn, dw * 1000), dn, dw};
    return OMS_OK;
}

static void enqueue(const char *rule, const mon_rule *r, const char *key, const char *client_addr,
                    const char *principal, int64_t count)
{
    pthread_mutex_lock(&g.mu);
    if (g.len == MON_QUEUE) {
        g.dropped++;
        pthread_mutex_unlock(&g.mu);
        return;
    }
    mon_alert *a = &g.queue[(g.head + g.len++) % MON_QUEUE];
    *a = (mon_alert){.rule = rule, .count = count, .threshold = r->threshold, .window_s = r->window_s,
                     .time_ms = oms_now_ms()};
    snprintf(a->key, sizeof a->key, "%s", key);
    snprintf(a->client_addr, sizeof a->client_addr, "%s", client_addr ? client_addr : "");
    snprintf(a->principal, sizeof a->principal, "%s", principal ? principal : "");
    pthread_mutex_unlock(&g.mu);
}

void oms_monitor_answer(int status, const char *addr_key, const char *client_addr, const char *principal)
{
    int64_t now = oms_mono_ns() / 1000000, count;
    if (status == 401 && g.auth.table && addr_key && oms_mon_table_hit(g.auth.table, addr_key, now, &count))
        enqueue("auth_failure_burst", &g.auth, addr_key, client_addr, NULL, count);
    if (status == 403 && g.denial.table && principal && *principal) {
        char key[OMS_MON_KEY_MAX];
        snprintf(key, sizeof key, "principal:%s", principal);
        if (oms_mon_table_hit(g.denial.table, key, now, &count))
            enqueue("denial_burst", &g.denial, key, client_addr, principal, count);
    }
}

int oms_monitor_raise_now(oms_store *s, const oms_ctx *ctx, const char *rule, const char *severity,
                          const json_t *detail)
{
    char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    oms_error err;
    oms_err_clear(&err);
    oms_dbconn *c = NULL;
    int rc = detail && !text ? oms_err_set(&err, OMS_ENOMEM, "out of memory") : oms_db_conn(s->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc == OMS_OK) {
        /* the service raises it; the alert row names who it is about */
        oms_audit_event ev = {.actor_sub = "oms",
                              .client_addr = ctx ? ctx->client_addr : NULL,
                              .request_id = ctx ? ctx->request_id : NULL,
                              .action = "alert.raised",
                              .outcome = "success",
                              .detail = text};
        rc = oms_audit_append(c, &ev, &err);
        if (rc == OMS_OK)
            rc = oms_alert_raise(c, ctx, rule, severity, text, &err);
        if (rc == OMS_OK)
            rc = oms_db_commit(c, &err);
        else
            oms_db_rollback(c);
    }
    if (rc != OMS_OK) {
        if (err.code == OMS_EDB)
            oms_db_conn_reset(s->db);
        oms_log_write(OMS_LOG_ERROR, ctx ? ctx->request_id : NULL, NULL, "cannot store the %s alert: %s", rule,
                      err.msg);
    }
    free(text);
    return rc;
}

static void store_alert(oms_store *s, const mon_alert *a)
{
    char ws[40];
    oms_time_rfc3339_ms(ws, sizeof ws, a->time_ms);
    json_t *d = json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", "rule", a->rule, "key", a->key, "count",
                          (json_int_t)a->count, "threshold", (json_int_t)a->threshold, "window_seconds",
                          (json_int_t)a->window_s, "raised_at", ws);
    if (d && a->client_addr[0])
        json_object_set_new(d, "client_addr", json_string(a->client_addr));
    if (d && a->principal[0])
        json_object_set_new(d, "principal", json_string(a->principal));
    /* the alert row names the address and, for a denial burst, the principal */
    oms_ctx ctx = {0};
    ctx.sub = a->principal[0] ? a->principal : NULL;
    ctx.client_addr = a->client_addr[0] ? a->client_addr : NULL;
    if (!d)
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "cannot store the %s alert for %s: out of memory", a->rule, a->key);
    else
        oms_monitor_raise_now(s, &ctx, a->rule, "warning", d);
    json_decref(d);
}

void oms_monitor_task(oms_store *s)
{
    mon_alert batch[16];
    for (;;) {
        size_t n = 0;
        uint64_t dropped;
        pthread_mutex_lock(&g.mu);
        while (n < sizeof batch / sizeof batch[0] && g.len) {
            batch[n++] = g.queue[g.head];
            g.head = (g.head + 1) % MON_QUEUE;
            g.len--;
        }
        dropped = g.dropped;
        g.dropped = 0;
        pthread_mutex_unlock(&g.mu);
        if (dropped)
            oms_log_write(OMS_LOG_ERROR, NULL, NULL, "%llu burst alerts dropped: more keys crossed a threshold"
                          " than the queue holds between two runs", (unsigned long long)dropped);
        for (size_t i = 0; i < n; i++)
            store_alert(s, &batch[i]);
        if (n < sizeof batch / sizeof batch[0])
            return;
    }
}
