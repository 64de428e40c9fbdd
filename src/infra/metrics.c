/* The instance's counters and histograms (every layer increments them) and
 * their rendering in the text exposition format. What /metrics adds from
 * the database and the HTTP server's state is rendered by src/api/metrics.c
 * with the helpers below. */
#include "infra/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* ---- histograms ---- */

#define NBUCKETS 14
static const double k_bounds[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
static const char *const k_le[NBUCKETS] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                           "0.1",    "0.25",  "0.5",    "1.0",   "2.5",  "5.0",  "10.0"};

/* n[k]: observations in (bounds[k-1], bounds[k]]; n[NBUCKETS]: above the
 * last bound. Rendering sums them, so the buckets are cumulative and +Inf
 * equals _count by construction, whatever runs concurrently. */
typedef struct {
    atomic_ulong n[NBUCKETS + 1];
    atomic_ullong sum_ns;
} histogram;

static void observe(histogram *h, double seconds)
{
    if (!(seconds >= 0)) /* negative or NaN */
        seconds = 0;
    if (seconds > 1e6)
        seconds = 1e6;
    int b = 0;
    while (b < NBUCKETS && seconds > k_bounds[b])
        b++;
    atomic_fetch_add_explicit(&h->n[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (unsigned long long)(seconds * 1e9), memory_order_relaxed);
}

static unsigned long histogram_count(const histogram *h)
{
    unsigned long c = 0;
    for (int k = 0; k <= NBUCKETS; k++)
        c += atomic_load_explicit(&h->n[k], memory_order_relaxed);
    return c;
}

/* ---- state ---- */

#define MAX_ROUTES 128

typedef struct {
    atomic_ulong by_class[6]; /* index status/100; 0: no status (the client went away first) */
    histogram latency;
    atomic_ullong handler_cpu_ns; /* thread CPU of its handler-thread jobs */
} route_stats;

/* Requests no route matched, by method: a fixed set, so a client cannot
 * grow the label space with made-up methods (they count as OTHER). */
static const char *const k_methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                                        "CONNECT", "OTHER"};
#define NMETHODS (sizeof k_methods / sizeof *k_methods)

/* Slot i is the route table's entry i (oms_app_routes). */
static route_stats g_routes[MAX_ROUTES];
static route_stats g_unmatched[NMETHODS];
static atomic_ulong g_authfail[OMS_AUTHFAIL__COUNT];
static atomic_ulong g_denials;
static atomic_ulong g_inline_answers;
static atomic_ulong g_audit_writes, g_audit_failures;
static histogram g_audit_latency;

enum { OUTCOME_OK, OUTCOME_CONFLICT, OUTCOME_ERROR, OUTCOME__COUNT };
static atomic_ulong g_commits[OMS_COMMIT__COUNT][OUTCOME__COUNT];
static atomic_ulong g_lock_waits[OMS_LOCKWAIT__COUNT];
static atomic_ulong g_snap_lookups[OMS_SNAP__COUNT][2];
static atomic_size_t g_snap_bytes;
static atomic_size_t g_snap_limit; /* set at start (src/app/main.c) */
static atomic_size_t g_diff_bytes; /* the diff cache (src/vcs/diff_cache.c) */
static _Atomic uint64_t g_wal_resets; /* src/store/db.c */
static _Atomic uint64_t g_seq_batches, g_seq_events; /* src/webhooks/sender.c */
static _Atomic uint64_t g_checkpoints[2]; /* src/store/sqlite_checkpointer.c: by a committer, in the background */
static _Atomic uint64_t g_group_batches, g_group_changes, g_group_carried, g_group_locks, g_group_reruns, g_group_handoffs, g_group_joined, g_group_content_beside, g_group_content_lost; /* src/txn/group_commit.c */
static _Atomic int64_t g_group_queued; /* writes waiting in group commit queues now (a gauge) */
static atomic_ulong g_ratelimited[OMS_METRICS_RL_CLASSES];
static histogram g_search_latency;

/* Database pool gauges, sharded by thread: every statement moves `in_use`
 * twice, so the worker threads must not share a cache line. A connection
 * closed by another thread leaves one shard negative; the sum is right. */
#define NSHARDS 16
typedef struct {
    _Alignas(64) atomic_long open;
    atomic_long in_use;
} pool_shard;
static pool_shard g_pool[NSHARDS];
static atomic_uint g_next_shard;
static _Thread_local int t_shard = -1;

static route_stats *stats_for(long route_slot, const char *method)
{
    if (route_slot >= 0 && route_slot < MAX_ROUTES)
        return &g_routes[route_slot];
    size_t m = 0;
    while (m < NMETHODS - 1 && !(method && strcmp(method, k_methods[m]) == 0))
        m++;
    return &g_unmatched[m];
}

void oms_metrics_request(long route_slot, const char *method, int status, double seconds, double handler_cpu_seconds)
{
    route_stats *s = stats_for(route_slot, method);
    int cls = status >= 100 && status <= 599 ? status / 100 : 0;
    atomic_fetch_add_explicit(&s->by_class[cls], 1, memory_order_relaxed);
    observe(&s->latency, seconds);
    if (handler_cpu_seconds > 0)
        atomic_fetch_add_explicit(&s->handler_cpu_ns, (unsigned long long)(handler_cpu_seconds * 1e9),
                                  memory_order_relaxed);
}

void oms_metrics_auth_failure(oms_authfail reason)
{
    atomic_fetch_add_explicit(&g_authfail[reason], 1, memory_order_relaxed);
}

void oms_metrics_denial(void) { atomic_fetch_add_explicit(&g_denials, 1, memory_order_relaxed); }
void oms_metrics_inline_answer(void) { atomic_fetch_add_explicit(&g_inline_answers, 1, memory_order_relaxed); }

void oms_metrics_audit_write(double seconds, int ok)
{
    atomic_fetch_add_explicit(ok ? &g_audit_writes : &g_audit_failures, 1, memory_order_relaxed);
    observe(&g_audit_latency, seconds);
}

void oms_metrics_commit(oms_commit_kind kind, int rc)
{
    int outcome = rc == OMS_OK                                 ? OUTCOME_OK
                  : rc == OMS_EPRECOND || rc == OMS_ECONFLICT ? OUTCOME_CONFLICT
                                                               : OUTCOME_ERROR;
    atomic_fetch_add_explicit(&g_commits[kind][outcome], 1, memory_order_relaxed);
}

void oms_metrics_lock_wait(oms_lockwait what)
{
    atomic_fetch_add_explicit(&g_lock_waits[what], 1, memory_order_relaxed);
}

/* The rules of docs/security.md "Security monitoring"; "other" last. */
static const char *const alert_rules[] = {"auth_failure_burst", "denial_burst", "rate_limit_storm", "override_used",
                                          "forced_lock_release", "acl_change", "audit_verification_failed",
                                          "other"};
#define ALERT_RULES (sizeof alert_rules / sizeof alert_rules[0])
static atomic_ulong g_alerts[ALERT_RULES];

void oms_metrics_alert(const char *rule)
{
    size_t i = 0;
    while (i < ALERT_RULES - 1 && (!rule || strcmp(rule, alert_rules[i]) != 0))
        i++;
    atomic_fetch_add_explicit(&g_alerts[i], 1, memory_order_relaxed);
}

void oms_metrics_ratelimited(int cls)
{
    if (cls >= 0 && cls < OMS_METRICS_RL_CLASSES)
        atomic_fetch_add_explicit(&g_ratelimited[cls], 1, memory_order_relaxed);
}

void oms_metrics_search(double seconds) { observe(&g_search_latency, seconds); }

void oms_metrics_db_conn(int opened, int in_use)
{
    if (t_shard < 0)
        t_shard = (int)(atomic_fetch_add_explicit(&g_next_shard, 1, memory_order_relaxed) % NSHARDS);
    pool_shard *s = &g_pool[t_shard];
    if (opened)
        atomic_fetch_add_explicit(&s->open, opened, memory_order_relaxed);
    if (in_use)
        atomic_fetch_add_explicit(&s->in_use, in_use, memory_order_relaxed);
}

/* ---- rendering ---- */

void oms_mtext_emit(oms_mtext *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    oms_buf_vprintf(b, fmt, ap);
    va_end(ap);
}
#define emit oms_mtext_emit

/* A label value: backslash, double quote and line feed escaped. */
void oms_mtext_value(oms_mtext *b, const char *s)
{
    for (;;) {
        size_t run = strcspn(s, "\\\"\n");
        emit(b, "%.*s", (int)run, s);
        s += run;
        if (!*s)
            return;
        emit(b, "%s", *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
        s++;
    }
}

void oms_mtext_family(oms_mtext *b, const char *name, const char *type, const char *help)
{
    emit(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
#define emit_value oms_mtext_value
#define emit_family oms_mtext_family

/* `labels` is rendered label text (escaped), possibly empty. */
static void emit_histogram(oms_mtext *b, const char *name, const char *labels, const histogram *h)
{
    unsigned long cum = 0;
    const char *sep = *labels ? "," : "";
    for (int k = 0; k <= NBUCKETS; k++) {
        cum += atomic_load_explicit(&h->n[k], memory_order_relaxed);
        emit(b, "%s_bucket{%s%sle=\"%s\"} %lu\n", name, labels, sep, k < NBUCKETS ? k_le[k] : "+Inf", cum);
    }
    unsigned long long ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    emit(b, "%s_sum%s%s%s %llu.%09llu\n", name, open, labels, close, ns / 1000000000ULL, ns % 1000000000ULL);
    emit(b, "%s_count%s%s%s %lu\n", name, open, labels, close, cum);
}

typedef struct {
    const route_stats *s;
    const char *method, *route;
} route_series;

static size_t route_series_list(route_series *out, const oms_metrics_route *routes, size_t nroutes)
{
    size_t n = 0, nr = nroutes < MAX_ROUTES ? nroutes : MAX_ROUTES;
    for (size_t i = 0; i < nr; i++)
        out[n++] = (route_series){&g_routes[i], routes[i].method, routes[i].pattern};
    for (size_t m = 0; m < NMETHODS; m++)
        out[n++] = (route_series){&g_unmatched[m], k_methods[m], "(none)"};
    return n;
}

static void route_labels(oms_mtext *l, const route_series *rs)
{
    oms_buf_reset(l);
    emit(l, "method=\"");
    emit_value(l, rs->method);
    emit(l, "\",route=\"");
    emit_value(l, rs->route);
    emit(l, "\"");
}

void oms_metrics_text_requests(oms_mtext *b, const oms_metrics_route *routes, size_t nroutes)
{
    static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    route_series rs[MAX_ROUTES + NMETHODS];
    size_t n = route_series_list(rs, routes, nroutes);
    oms_mtext l = OMS_BUF_INIT;
    emit_family(b, "oms_http_requests_total", "counter",
                "HTTP requests by method, route pattern and status class; route=\"(none)\" when no route matched.");
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 6; c++) {
            unsigned long v = atomic_load_explicit(&rs[i].s->by_class[c], memory_order_relaxed);
            if (!v)
                continue;
            route_labels(&l, &rs[i]);
            emit(b, "oms_http_requests_total{%.*s,status=\"%s\"} %lu\n", (int)l.len, oms_buf_str(&l), classes[c], v);
        }
    emit_family(b, "oms_http_request_duration_seconds", "histogram",
                "Request latency by method and route pattern, from the first byte read to the response sent.");
    for (size_t i = 0; i < n; i++) {
        if (!histogram_count(&rs[i].s->latency))
            continue;
        route_labels(&l, &rs[i]); /* NUL-terminated by vsnprintf */
        emit_histogram(b, "oms_http_request_duration_seconds", oms_buf_str(&l), &rs[i].s->latency);
    }
    emit_family(b, "oms_http_handler_cpu_seconds_total", "counter",
                "CPU time handler threads spent on requests, by method and route pattern (reads answered inline on "
                "the event loop are not counted: timing them would cost the cheapest requests two system calls).");
    for (size_t i = 0; i < n; i++) {
        unsigned long long ns = atomic_load_explicit(&rs[i].s->handler_cpu_ns, memory_order_relaxed);
        if (!ns)
            continue;
        route_labels(&l, &rs[i]);
        emit(b, "oms_http_handler_cpu_seconds_total{%.*s} %.6f\n", (int)l.len, oms_buf_str(&l), (double)ns / 1e9);
    }
    oms_buf_free(&l);
}

void oms_metrics_text_auth_audit(oms_mtext *b)
{
    static const char *const reasons[] = {"token_missing", "token_invalid", "token_expired"};
    emit_family(b, "oms_auth_failures_total", "counter", "Authentication failures by reason.");
    for (int r = 0; r < OMS_AUTHFAIL__COUNT; r++)
        emit(b, "oms_auth_failures_total{reason=\"%s\"} %lu\n", reasons[r],
             atomic_load_explicit(&g_authfail[r], memory_order_relaxed));
    emit_family(b, "oms_authz_denials_total", "counter", "Authorization denials.");
    emit(b, "oms_authz_denials_total %lu\n", atomic_load_explicit(&g_denials, memory_order_relaxed));
    emit_family(b, "oms_http_inline_answers_total", "counter",
                "Requests answered on the event loop, without a handler thread.");
    emit(b, "oms_http_inline_answers_total %lu\n", atomic_load_explicit(&g_inline_answers, memory_order_relaxed));
    emit_family(b, "oms_audit_writes_total", "counter",
                "Durable audit writes outside a change transaction (refusals), by outcome.");
    emit(b, "oms_audit_writes_total{outcome=\"ok\"} %lu\noms_audit_writes_total{outcome=\"failed\"} %lu\n",
         atomic_load_explicit(&g_audit_writes, memory_order_relaxed),
         atomic_load_explicit(&g_audit_failures, memory_order_relaxed));
    emit_family(b, "oms_audit_write_duration_seconds", "histogram",
                "Latency of those writes until durable (group commit included).");
    emit_histogram(b, "oms_audit_write_duration_seconds", "", &g_audit_latency);
}

static void text_snapshots(oms_mtext *b);

void oms_metrics_text_commits(oms_mtext *b)
{
    static const char *const kinds[OMS_COMMIT__COUNT] = {"change", "merge", "revert", "fast_forward"};
    static const char *const outcomes[OUTCOME__COUNT] = {"ok", "conflict", "error"};
    emit_family(b, "oms_commits_total", "counter",
                "Commit writes by kind (change, merge, revert, fast_forward) and outcome: ok, conflict (the "
                "branch head moved), error (database or audit failure).");
    for (int k = 0; k < OMS_COMMIT__COUNT; k++)
        for (int o = 0; o < OUTCOME__COUNT; o++)
            emit(b, "oms_commits_total{kind=\"%s\",outcome=\"%s\"} %lu\n", kinds[k], outcomes[o],
                 atomic_load_explicit(&g_commits[k][o], memory_order_relaxed));
    text_snapshots(b);
}

void oms_metrics_snapshot_lookup(oms_snap_path path, int hit)
{
    atomic_fetch_add_explicit(&g_snap_lookups[path][hit ? 1 : 0], 1, memory_order_relaxed);
}

void oms_metrics_snapshot_cache_bytes(size_t bytes) { atomic_store_explicit(&g_snap_bytes, bytes, memory_order_relaxed); }
void oms_metrics_snapshot_cache_limit(size_t bytes) { atomic_store_explicit(&g_snap_limit, bytes, memory_order_relaxed); }
void oms_metrics_diff_cache_bytes(size_t bytes) { atomic_store_explicit(&g_diff_bytes, bytes, memory_order_relaxed); }
void oms_metrics_group_commit(unsigned changes, unsigned carried, unsigned locks)
{
    atomic_fetch_add_explicit(&g_group_batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_group_changes, changes, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_group_carried, carried, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_group_locks, locks, memory_order_relaxed);
}

void oms_metrics_group_commit_rerun(void) { atomic_fetch_add_explicit(&g_group_reruns, 1, memory_order_relaxed); }
void oms_metrics_group_commit_handoff(void) { atomic_fetch_add_explicit(&g_group_handoffs, 1, memory_order_relaxed); }
void oms_metrics_group_commit_queued(int delta)
{
    atomic_fetch_add_explicit(&g_group_queued, delta, memory_order_relaxed);
}

void oms_metrics_group_commit_joined(unsigned writes)
{
    atomic_fetch_add_explicit(&g_group_joined, writes, memory_order_relaxed);
}
void oms_metrics_group_commit_content(bool lost)
{
    atomic_fetch_add_explicit(lost ? &g_group_content_lost : &g_group_content_beside, 1, memory_order_relaxed);
}
static _Atomic uint64_t g_one_shot_made, g_one_shot_fallback; /* src/txn/change.c */
void oms_metrics_one_shot(bool made)
{
    atomic_fetch_add_explicit(made ? &g_one_shot_made : &g_one_shot_fallback, 1, memory_order_relaxed);
}

void oms_metrics_wal_reset(void) { atomic_fetch_add_explicit(&g_wal_resets, 1, memory_order_relaxed); }

void oms_metrics_event_sequencer_batch(uint64_t positioned)
{
    atomic_fetch_add_explicit(&g_seq_batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_seq_events, positioned, memory_order_relaxed);
}

void oms_metrics_sqlite_checkpoint(bool background)
{
    atomic_fetch_add_explicit(&g_checkpoints[background ? 1 : 0], 1, memory_order_relaxed);
}

static void text_snapshots(oms_mtext *b)
{
    static const char *const paths[OMS_SNAP__COUNT] = {"commit", "read", "commit_id"};
    emit_family(b, "oms_snapshot_cache_misses_total", "counter",
                "Snapshot cache misses by path (commit: a write reading its branch head; read: a read of a branch "
                "head; commit_id: a named commit): each one loaded the snapshot from the database.");
    for (int p = 0; p < OMS_SNAP__COUNT; p++)
        emit(b, "oms_snapshot_cache_misses_total{path=\"%s\"} %lu\n", paths[p],
             atomic_load_explicit(&g_snap_lookups[p][0], memory_order_relaxed));
    emit_family(b, "oms_snapshot_cache_hits_total", "counter", "Snapshot cache hits by path.");
    for (int p = 0; p < OMS_SNAP__COUNT; p++)
        emit(b, "oms_snapshot_cache_hits_total{path=\"%s\"} %lu\n", paths[p],
             atomic_load_explicit(&g_snap_lookups[p][1], memory_order_relaxed));
    emit_family(b, "oms_snapshot_cache_bytes", "gauge",
                "Bytes held by the snapshot cache (bounded by OMS_SNAPSHOT_CACHE_MB).");
    emit(b, "oms_snapshot_cache_bytes %zu\n", atomic_load_explicit(&g_snap_bytes, memory_order_relaxed));
    emit_family(b, "oms_snapshot_cache_limit_bytes", "gauge", "The snapshot cache's bound (OMS_SNAPSHOT_CACHE_MB).");
    emit(b, "oms_snapshot_cache_limit_bytes %zu\n", atomic_load_explicit(&g_snap_limit, memory_order_relaxed));
    emit_family(b, "oms_diff_cache_bytes", "gauge", "Bytes of diff text held by the diff cache (bounded by OMS_DIFF_CACHE_MB).");
    emit(b, "oms_diff_cache_bytes %zu\n", atomic_load_explicit(&g_diff_bytes, memory_order_relaxed));
    emit_family(b, "oms_group_commits_total", "counter",
                "Transactions that committed several changes together (group commit): writes of one branch; on "
                "SQLite, whose file has one writer, any writes and lock changes.");
    emit(b, "oms_group_commits_total %lu\n", atomic_load_explicit(&g_group_batches, memory_order_relaxed));
    emit_family(b, "oms_group_commit_writes_total", "counter", "Changes run inside those transactions.");
    emit(b, "oms_group_commit_writes_total %lu\n", atomic_load_explicit(&g_group_changes, memory_order_relaxed));
    emit_family(b, "oms_group_commit_lock_changes_total", "counter",
                "Lock changes (acquire, heartbeat, extend, release) among them. SQLite only: on PostgreSQL a lock "
                "change commits in a transaction of its own.");
    emit(b, "oms_group_commit_lock_changes_total %lu\n", atomic_load_explicit(&g_group_locks, memory_order_relaxed));
    emit_family(b, "oms_group_commit_carried_total", "counter",
                "Writes of those transactions that followed a write of their branch and reused what it read (the "
                "branch row, no live lock): one round trip fewer each.");
    emit(b, "oms_group_commit_carried_total %lu\n", atomic_load_explicit(&g_group_carried, memory_order_relaxed));
    emit_family(b, "oms_group_commit_reruns_total", "counter",
                "PostgreSQL: group transactions lost to a statement that failed after it was sent ahead, or to their "
                "content connection, and run once more with each write's statements awaited.");
    emit(b, "oms_group_commit_reruns_total %lu\n", atomic_load_explicit(&g_group_reruns, memory_order_relaxed));
    emit_family(b, "oms_group_commit_handoffs_total", "counter",
                "PostgreSQL: group transactions of more than one change that passed their branch's queue to the "
                "next leader before their COMMIT, whose first statement then waits for the branch row inside the "
                "database.");
    emit(b, "oms_group_commit_handoffs_total %lu\n", atomic_load_explicit(&g_group_handoffs, memory_order_relaxed));
    emit_family(b, "oms_group_commit_joined_total", "counter",
                "Writes that joined a group transaction already running: they queued while it ran and were taken "
                "after its last write instead of waiting for the next transaction.");
    emit(b, "oms_group_commit_joined_total %lu\n", atomic_load_explicit(&g_group_joined, memory_order_relaxed));
    emit_family(b, "oms_group_commit_queued", "gauge",
                "Writes waiting now in group-commit queues for a transaction of their branch to take them.");
    emit(b, "oms_group_commit_queued %lld\n", (long long)atomic_load_explicit(&g_group_queued, memory_order_relaxed));
    emit_family(b, "oms_group_commit_content_total", "counter",
                "PostgreSQL: group transactions whose content rows (objects, trees, tree nodes) went on a waiting "
                "member's connection beside them: committed (outcome=\"beside\"), or lost with that connection, "
                "the batch then run once more without it unless its own connection failed too (outcome=\"lost\").");
    emit(b, "oms_group_commit_content_total{outcome=\"beside\"} %lu\n",
         atomic_load_explicit(&g_group_content_beside, memory_order_relaxed));
    emit(b, "oms_group_commit_content_total{outcome=\"lost\"} %lu\n",
         atomic_load_explicit(&g_group_content_lost, memory_order_relaxed));
    emit_family(b, "oms_one_statement_changes_total", "counter",
                "PostgreSQL: lock acquisitions and releases offered as one statement with their audit event and "
                "outbox row, sent with BEGIN and COMMIT in one round trip: made, or run the usual way (a condition "
                "did not hold: a conflict, a protected branch, a newer ACL version).");
    emit(b, "oms_one_statement_changes_total{outcome=\"made\"} %lu\n",
         atomic_load_explicit(&g_one_shot_made, memory_order_relaxed));
    emit(b, "oms_one_statement_changes_total{outcome=\"usual_way\"} %lu\n",
         atomic_load_explicit(&g_one_shot_fallback, memory_order_relaxed));
    emit_family(b, "oms_event_sequencer_batches_total", "counter",
                "PostgreSQL: transactions of the event sequencer that gave committed events their positions (one "
                "per round that found any, at most every 50 ms while fewer than a full batch wait). Zero on SQLite.");
    emit(b, "oms_event_sequencer_batches_total %lu\n", atomic_load_explicit(&g_seq_batches, memory_order_relaxed));
    emit_family(b, "oms_events_positioned_total", "counter",
                "PostgreSQL: events given their positions by those transactions. Zero on SQLite, where an event has "
                "its position at insert.");
    emit(b, "oms_events_positioned_total %lu\n", atomic_load_explicit(&g_seq_events, memory_order_relaxed));
    emit_family(b, "oms_sqlite_wal_resets_total", "counter",
                "SQLite: times the write-ahead log, grown past OMS_SQLITE_WAL_RESET_MB, was copied into the database "
                "and truncated. Zero on PostgreSQL.");
    emit(b, "oms_sqlite_wal_resets_total %lu\n", atomic_load_explicit(&g_wal_resets, memory_order_relaxed));
    emit_family(b, "oms_sqlite_checkpoints_total", "counter",
                "SQLite: checkpoints of the write-ahead log past OMS_SQLITE_CHECKPOINT_PAGES, by the background "
                "checkpointer or by a committer that found the log four times past it. Zero on PostgreSQL.");
    emit(b, "oms_sqlite_checkpoints_total{by=\"background\"} %lu\n",
         atomic_load_explicit(&g_checkpoints[1], memory_order_relaxed));
    emit(b, "oms_sqlite_checkpoints_total{by=\"commit\"} %lu\n",
         atomic_load_explicit(&g_checkpoints[0], memory_order_relaxed));
}

void oms_metrics_text_lock_waits(oms_mtext *b)
{
    emit_family(b, "oms_lock_waits_total", "counter",
                "Lock waits: writes refused with 423 under another holder's lock (operation=write) and "
                "acquisitions refused with 409 lock_conflict (operation=acquire).");
    emit(b, "oms_lock_waits_total{operation=\"write\"} %lu\noms_lock_waits_total{operation=\"acquire\"} %lu\n",
         atomic_load_explicit(&g_lock_waits[OMS_LOCKWAIT_WRITE], memory_order_relaxed),
         atomic_load_explicit(&g_lock_waits[OMS_LOCKWAIT_ACQUIRE], memory_order_relaxed));
}

void oms_metrics_text_search(oms_mtext *b)
{
    emit_family(b, "oms_search_duration_seconds", "histogram",
                "Search latency (GET /api/v1/search/{branch}) in the handler, audit record included.");
    emit_histogram(b, "oms_search_duration_seconds", "", &g_search_latency);
}

void oms_metrics_text_pool(oms_mtext *b)
{
    long open = 0, in_use = 0;
    for (int i = 0; i < NSHARDS; i++) {
        open += atomic_load_explicit(&g_pool[i].open, memory_order_relaxed);
        in_use += atomic_load_explicit(&g_pool[i].in_use, memory_order_relaxed);
    }
    /* shards are read one after the other: never show a transient skew */
    if (in_use < 0)
        in_use = 0;
    if (in_use > open)
        in_use = open;
    emit_family(b, "oms_db_pool_connections_open", "gauge",
                "Database connections this instance holds open (one per thread that used the database).");
    emit(b, "oms_db_pool_connections_open %ld\n", open);
    emit_family(b, "oms_db_pool_connections_in_use", "gauge",
                "Database connections in a transaction or running a statement.");
    emit(b, "oms_db_pool_connections_in_use %ld\n", in_use);
}

void oms_metrics_text_ratelimited(oms_mtext *b, const char *const class_names[OMS_METRICS_RL_CLASSES])
{
    emit_family(b, "oms_ratelimited_total", "counter", "Requests refused with 429 by a rate limit, by class.");
    for (int c = 0; c < OMS_METRICS_RL_CLASSES; c++)
        emit(b, "oms_ratelimited_total{class=\"%s\"} %lu\n", class_names[c],
             atomic_load_explicit(&g_ratelimited[c], memory_order_relaxed));
}

void oms_metrics_text_alerts(oms_mtext *b)
{
    emit_family(b, "oms_alerts_total", "counter", "Security alerts stored, by rule.");
    for (size_t i = 0; i < ALERT_RULES; i++)
        emit(b, "oms_alerts_total{rule=\"%s\"} %lu\n", alert_rules[i],
             atomic_load_explicit(&g_alerts[i], memory_order_relaxed));
}
