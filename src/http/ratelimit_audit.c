/* The record of refusals (SPEC §6.5, §9, §10; docs/security.md "Abuse
 * protection", "What a refusal leaves in the audit log").
 *
 * Every 429 is counted for its key, class and window (a window opens with
 * the key's first refusal and lasts OMS_RATE_LIMIT_AUDIT_WINDOW seconds).
 * The first OMS_RATE_LIMIT_AUDIT_SAMPLE refusals of a window are recorded
 * one by one by the pipeline, durably, before their answer; the rest become
 * one `ratelimit.refused_aggregate` event with their exact count, written
 * when the window has ended: by the next refusal of the same key and class
 * (which opens a new window), or by the background task (src/app/tasks.c),
 * which also writes every open window when the server drains.
 *
 * Memory is fixed: 64 shards of 64 records, each under its own mutex (the
 * refusal path only; admitted requests never come here). When a shard's
 * records are all in use, a refusal is counted in the shard's overflow
 * record for its class (key "*"): counts stay exact, only the key is lost.
 *
 * Alerts (SPEC §10) are raised by the task, once per key and window:
 * `rate_limit_storm` when a key's refusals in a window reach
 * OMS_RATE_LIMIT_STORM_KEY (or all keys' reach OMS_RATE_LIMIT_STORM_TOTAL).
 * Each alert is stored with an `alert.raised` audit event in one
 * transaction, like the other alert rules. (Bursts of authentication
 * failures are the security monitor's rule, src/audit/monitor.c: counted
 * whether or not rate limiting is on, and at any pace.) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "http/app.h"
#include "http/ratelimit.h"
#include "audit/alerts.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "util/time.h"
#include "util/alloc.h"

#define AGG_SHARDS 64
#define AGG_SLOTS 64

typedef struct {
    bool used, by_address;
    oms_rl_class cls;
    uint64_t hash;
    char key[160];
    char client_addr[64];
    int64_t start_ms, deadline_ns; /* window: wall-clock start, monotonic end */
    int64_t first_ms, last_ms;     /* of the aggregated refusals */
    int64_t individual, aggregated;
    bool storm_pending, storm_raised;
} agg_rec;

typedef struct {
    pthread_mutex_t mu;
    agg_rec rec[AGG_SLOTS];
    agg_rec overflow[OMS_RL__COUNT];
} agg_shard;

static struct {
    agg_shard *shards;
    int64_t window_ms;
    int sample;
    int64_t storm_key, storm_total;
    /* all keys' refusals in the current window (lock-free: the refusal path
     * only adds; the task turns the window) */
    atomic_llong total;
    atomic_bool total_pending;
    int64_t total_start_ms, total_deadline_ns;
    bool total_raised;
} g = {.window_ms = 60000, .sample = 5, .storm_key = 1000, .storm_total = 10000};

void oms_ratelimit_audit_configure(int64_t window_ms, int sample, int64_t storm_key, int64_t storm_total)
{
    g.window_ms = window_ms;
    g.sample = sample;
    g.storm_key = storm_key;
    g.storm_total = storm_total;
    if (!g.shards) {
        g.shards = oms_xcalloc(AGG_SHARDS, sizeof *g.shards);
        for (int i = 0; i < AGG_SHARDS; i++)
            pthread_mutex_init(&g.shards[i].mu, NULL);
    }
    g.total_start_ms = oms_now_ms();
    g.total_deadline_ns = oms_mono_ns() + window_ms * 1000000;
}

/* A pending alert outlives its window: the task raises it on its next round. */
static void open_window(agg_rec *r, int64_t now_ms, int64_t now_ns)
{
    r->start_ms = now_ms;
    r->deadline_ns = now_ns + g.window_ms * 1000000;
    r->first_ms = r->last_ms = 0;
    r->individual = r->aggregated = 0;
    r->storm_raised = false;
}

/* The record of the request's key and class, with its window current. A
 * window that has ended is copied to *ended (its aggregated event is the
 * caller's to write, after the lock) and a new one opens. Shard locked. */
static agg_rec *record_for(agg_shard *s, oms_request *req, const oms_rl_decision *d, int64_t now_ms, int64_t now_ns,
                           agg_rec *ended)
{
    ended->used = false;
    agg_rec *free_slot = NULL, *r = NULL;
    for (int i = 0; i < AGG_SLOTS; i++) {
        agg_rec *x = &s->rec[i];
        if (x->used && x->hash == d->key.hash && x->cls == d->cls) {
            r = x;
            break;
        }
        if (!x->used && !free_slot)
            free_slot = x;
    }
    if (!r && free_slot) {
        r = free_slot;
        memset(r, 0, sizeof *r);
        r->used = true;
        r->hash = d->key.hash;
        r->cls = d->cls;
        r->by_address = d->by_address;
        oms_ratelimit_key_text(r->key, sizeof r->key, req, d);
        open_window(r, now_ms, now_ns);
    } else if (!r) {
        r = &s->overflow[d->cls];
        if (!r->used) {
            memset(r, 0, sizeof *r);
            r->used = true;
            r->cls = d->cls;
            snprintf(r->key, sizeof r->key, "*");
            open_window(r, now_ms, now_ns);
        }
    }
    if (now_ns >= r->deadline_ns) {
        *ended = *r;
        open_window(r, now_ms, now_ns);
        ended->storm_pending = false; /* still pending in r */
    }
    snprintf(r->client_addr, sizeof r->client_addr, "%s", req->client_addr);
    return r;
}

static void rfc3339(char *out, size_t cap, int64_t ms) { oms_time_rfc3339_ms(out, cap, ms); }

/* The aggregated event of an ended window (when it counted any). */
static void write_aggregate(oms_store *store, const agg_rec *r, int64_t end_ms)
{
    if (!r->used || r->aggregated == 0)
        return;
    char ws[40], we[40], first[40], last[40];
    rfc3339(ws, sizeof ws, r->start_ms);
    rfc3339(we, sizeof we, end_ms);
    rfc3339(first, sizeof first, r->first_ms);
    rfc3339(last, sizeof last, r->last_ms);
    json_t *dj = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "key", r->key, "class", oms_rl_class_name(r->cls),
                           "count", (json_int_t)r->aggregated, "recorded_individually", (json_int_t)r->individual,
                           "window_start", ws, "window_end", we, "first_refused", first, "last_refused", last);
    char *detail = dj ? json_dumps(dj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(dj);
    const char *sub = !r->by_address && strncmp(r->key, "principal:", 10) == 0 ? r->key + 10 : NULL;
    oms_audit_event ev = {.actor_sub = sub,
                          .client_addr = r->client_addr[0] ? r->client_addr : NULL,
                          .action = "ratelimit.refused_aggregate",
                          .outcome = "denied",
                          .http_status = 429,
                          .detail = detail};
    oms_error err;
    if (!detail || oms_audit_record(store, &ev, &err) != OMS_OK)
        oms_log_write(OMS_LOG_ERROR, NULL, NULL,
                      "audit write failed for %lld aggregated refusals of %s (%s) from %s to %s: %s",
                      (long long)r->aggregated, r->key, oms_rl_class_name(r->cls), ws, we,
                      detail ? err.msg : "out of memory");
    free(detail);
}

bool oms_ratelimit_refusal(oms_request *req, const oms_rl_decision *d)
{
    if (!g.shards) {
        oms_log_write(OMS_LOG_ERROR, req->request_id, NULL, "rate-limit refusal not counted: no memory for records");
        return true;
    }
    int64_t now_ms = oms_now_ms(), now_ns = oms_mono_ns();
    long long total = atomic_fetch_add_explicit(&g.total, 1, memory_order_relaxed) + 1;
    if (total == g.storm_total)
        atomic_store(&g.total_pending, true);
    agg_shard *s = &g.shards[d->key.hash % AGG_SHARDS];
    agg_rec ended;
    pthread_mutex_lock(&s->mu);
    agg_rec *r = record_for(s, req, d, now_ms, now_ns, &ended);
    bool individual = r->individual < g.sample;
    if (individual) {
        r->individual++;
    } else {
        if (r->aggregated++ == 0)
            r->first_ms = now_ms;
        r->last_ms = now_ms;
    }
    if (r->individual + r->aggregated >= g.storm_key && !r->storm_raised) {
        r->storm_pending = true;
        r->storm_raised = true;
    }
    pthread_mutex_unlock(&s->mu);
    if (ended.used)
        write_aggregate(req->app->store, &ended, ended.start_ms + g.window_ms);
    return individual;
}

/* ---- the background task ---- */

typedef struct {
    const char *rule;
    agg_rec r;
    int64_t count, threshold;
    bool all_classes;
} pending_alert;

/* One alert and its audit event, in one transaction (like the other alert
 * rules: src/auth/acl_handlers.c). */
static void raise_alert(oms_app *app, const pending_alert *a)
{
    char ws[40];
    rfc3339(ws, sizeof ws, a->r.start_ms);
    json_t *dj = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "rule", a->rule, "key", a->r.key, "class",
                           a->all_classes ? "*" : oms_rl_class_name(a->r.cls), "count", (json_int_t)a->count, "threshold",
                           (json_int_t)a->threshold, "window_start", ws);
    if (dj && a->r.client_addr[0])
        json_object_set_new(dj, "client_addr", json_string(a->r.client_addr));
    char *detail = dj ? json_dumps(dj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(dj);
    oms_error err;
    oms_err_clear(&err);
    oms_dbconn *c = NULL;
    int rc = detail ? oms_db_conn(app->store->db, &c, &err) : OMS_ENOMEM;
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc == OMS_OK) {
        oms_audit_event ev = {.actor_sub = "oms",
                              .client_addr = a->r.client_addr[0] ? a->r.client_addr : NULL,
                              .action = "alert.raised",
                              .outcome = "success",
                              .resource_kind = "ratelimit",
                              .resource_id = a->r.key,
                              .detail = detail};
        rc = oms_audit_append(c, &ev, &err);
        if (rc == OMS_OK)
            rc = oms_alert_raise(c, NULL, a->rule, "warning", detail, &err);
        if (rc == OMS_OK)
            rc = oms_db_commit(c, &err);
        else
            oms_db_rollback(c);
    }
    if (rc != OMS_OK) {
        if (err.code == OMS_EDB)
            oms_db_conn_reset(app->store->db);
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "cannot store the %s alert for %s: %s", a->rule, a->r.key,
                      detail ? err.msg : "out of memory");
    }
    free(detail);
}

typedef struct {
    agg_rec *ended;
    size_t nended, cap_ended;
    pending_alert *alerts;
    size_t nalerts, cap_alerts;
} tick_work;

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    *arr = oms_xrealloc(*arr, nc * size);
    *cap = nc;
    return true;
}

static void add_alert(tick_work *w, const char *rule, const agg_rec *r, int64_t count, int64_t threshold)
{
    if (!grow((void **)&w->alerts, &w->cap_alerts, w->nalerts, sizeof *w->alerts))
        return;
    w->alerts[w->nalerts++] = (pending_alert){.rule = rule, .r = *r, .count = count, .threshold = threshold};
}

static void scan(tick_work *w, agg_rec *r, int64_t now_ns, bool all)
{
    if (!r->used)
        return;
    if (r->storm_pending) {
        add_alert(w, "rate_limit_storm", r, r->individual + r->aggregated, g.storm_key);
        r->storm_pending = false;
    }
    if (all || now_ns >= r->deadline_ns) {
        if (r->aggregated && grow((void **)&w->ended, &w->cap_ended, w->nended, sizeof *w->ended))
            w->ended[w->nended++] = *r;
        else if (r->aggregated)
            return; /* no memory to carry it out: keep it for the next round */
        r->used = false;
    }
}

void oms_ratelimit_task(oms_app *app)
{
    if (!g.shards)
        return;
    bool all = atomic_load(&app->draining);
    int64_t now_ns = oms_mono_ns(), now_ms = oms_now_ms();
    tick_work w = {0};
    for (int i = 0; i < AGG_SHARDS; i++) {
        agg_shard *s = &g.shards[i];
        pthread_mutex_lock(&s->mu);
        for (int j = 0; j < AGG_SLOTS; j++)
            scan(&w, &s->rec[j], now_ns, all);
        for (int c = 0; c < OMS_RL__COUNT; c++)
            scan(&w, &s->overflow[c], now_ns, all);
        pthread_mutex_unlock(&s->mu);
    }
    /* all keys together */
    if (atomic_exchange(&g.total_pending, false) && !g.total_raised) {
        agg_rec all_keys = {.used = true, .cls = OMS_RL_READ, .start_ms = g.total_start_ms};
        snprintf(all_keys.key, sizeof all_keys.key, "*");
        size_t before = w.nalerts;
        add_alert(&w, "rate_limit_storm", &all_keys, atomic_load(&g.total), g.storm_total);
        if (w.nalerts > before)
            w.alerts[before].all_classes = true;
        g.total_raised = true;
    }
    if (now_ns >= g.total_deadline_ns) {
        atomic_store(&g.total, 0);
        g.total_raised = false;
        g.total_start_ms = now_ms;
        g.total_deadline_ns = now_ns + g.window_ms * 1000000;
    }
    for (size_t i = 0; i < w.nalerts; i++)
        raise_alert(app, &w.alerts[i]);
    for (size_t i = 0; i < w.nended; i++) {
        int64_t end = w.ended[i].start_ms + g.window_ms;
        write_aggregate(app->store, &w.ended[i], end < now_ms ? end : now_ms);
    }
    free(w.alerts);
    free(w.ended);
}
