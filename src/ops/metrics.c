#include "ops/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/app.h"
#include "http/routes.h"
#include "locks/locks.h"

#define MAX_ROUTES 128
#define NBUCKETS 12

static const double k_bounds[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

typedef struct {
    atomic_ulong by_class[6];     /* index status/100 (0 unused) */
    atomic_ulong buckets[NBUCKETS]; /* cumulative at render time */
    atomic_ulong count;
    atomic_ullong sum_us;
} route_stats;

/* Slot 0 is "no route matched"; slot i+1 is oms_app_routes[i]. */
static route_stats g_routes[MAX_ROUTES + 1];
static atomic_ulong g_authfail[OMS_AUTHFAIL__COUNT];
static atomic_ulong g_denials;
static atomic_ulong g_audit_writes, g_audit_failures, g_audit_us;

static size_t route_slot(const oms_route *r)
{
    if (!r || r < oms_app_routes || r >= oms_app_routes + oms_app_routes_count)
        return 0;
    size_t i = (size_t)(r - oms_app_routes) + 1;
    return i <= MAX_ROUTES ? i : 0;
}

void oms_metrics_request(const oms_request *req, double seconds)
{
    route_stats *s = &g_routes[route_slot(req->route)];
    int cls = req->status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&s->by_class[cls], 1, memory_order_relaxed);
    for (int b = 0; b < NBUCKETS; b++)
        if (seconds <= k_bounds[b]) {
            atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
            break;
        }
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (unsigned long long)(seconds * 1e6), memory_order_relaxed);
}

void oms_metrics_auth_failure(oms_authfail reason)
{
    atomic_fetch_add_explicit(&g_authfail[reason], 1, memory_order_relaxed);
}

void oms_metrics_denial(void) { atomic_fetch_add_explicit(&g_denials, 1, memory_order_relaxed); }

void oms_metrics_audit_write(double seconds, int ok)
{
    atomic_fetch_add_explicit(ok ? &g_audit_writes : &g_audit_failures, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_audit_us, (unsigned long)(seconds * 1e6), memory_order_relaxed);
}

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void emit(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->buf = realloc(b->buf, b->cap);
    }
}

static const char *slot_route(size_t i) { return i == 0 ? "(none)" : oms_app_routes[i - 1].pattern; }
static const char *slot_method(size_t i) { return i == 0 ? "" : oms_app_routes[i - 1].method; }

int oms_h_metrics(oms_request *req)
{
    sbuf b = {malloc(8192), 0, 8192};
    size_t n = oms_app_routes_count < MAX_ROUTES ? oms_app_routes_count : MAX_ROUTES;
    emit(&b, "# HELP oms_http_requests_total HTTP requests by route and status class.\n"
             "# TYPE oms_http_requests_total counter\n");
    for (size_t i = 0; i <= n; i++)
        for (int c = 1; c <= 5; c++) {
            unsigned long v = atomic_load(&g_routes[i].by_class[c]);
            if (v)
                emit(&b, "oms_http_requests_total{method=\"%s\",route=\"%s\",status=\"%dxx\"} %lu\n",
                     slot_method(i), slot_route(i), c, v);
        }
    emit(&b, "# HELP oms_http_request_duration_seconds Request latency by route.\n"
             "# TYPE oms_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= n; i++) {
        unsigned long count = atomic_load(&g_routes[i].count), cum = 0;
        if (!count)
            continue;
        for (int k = 0; k < NBUCKETS; k++) {
            cum += atomic_load(&g_routes[i].buckets[k]);
            emit(&b, "oms_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %lu\n",
                 slot_method(i), slot_route(i), k_bounds[k], cum);
        }
        emit(&b, "oms_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %lu\n",
             slot_method(i), slot_route(i), count);
        emit(&b, "oms_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n", slot_method(i),
             slot_route(i), (double)atomic_load(&g_routes[i].sum_us) / 1e6);
        emit(&b, "oms_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n", slot_method(i),
             slot_route(i), count);
    }
    static const char *const reasons[] = {"token_missing", "token_invalid", "token_expired"};
    emit(&b, "# HELP oms_auth_failures_total Authentication failures by reason.\n"
             "# TYPE oms_auth_failures_total counter\n");
    for (int r = 0; r < OMS_AUTHFAIL__COUNT; r++)
        emit(&b, "oms_auth_failures_total{reason=\"%s\"} %lu\n", reasons[r], atomic_load(&g_authfail[r]));
    emit(&b, "# HELP oms_authz_denials_total Authorization denials.\n# TYPE oms_authz_denials_total counter\n"
             "oms_authz_denials_total %lu\n", atomic_load(&g_denials));
    emit(&b, "# HELP oms_audit_writes_total Durable audit writes outside a change transaction.\n"
             "# TYPE oms_audit_writes_total counter\noms_audit_writes_total{outcome=\"ok\"} %lu\n"
             "oms_audit_writes_total{outcome=\"failed\"} %lu\n"
             "# HELP oms_audit_write_seconds_total Time spent in those writes.\n"
             "# TYPE oms_audit_write_seconds_total counter\noms_audit_write_seconds_total %.6f\n",
         atomic_load(&g_audit_writes), atomic_load(&g_audit_failures), (double)atomic_load(&g_audit_us) / 1e6);
    emit(&b, "# HELP oms_inflight_requests Requests being served.\n# TYPE oms_inflight_requests gauge\n"
             "oms_inflight_requests %ld\n", atomic_load(&req->app->inflight));
    /* Shared state lives in the database: every instance reports the same
     * live locks (by kind), judged like every lock decision by the
     * database clock. */
#define LIVE_LOCKS_SQL(NOW)                                                                                 \
    OMS_LOCK_WITH_NOW(NOW) "SELECT l.kind, count(*) FROM n CROSS JOIN locks l"                               \
                           " WHERE l.state = 'active' AND l.deadline_at > n.t GROUP BY l.kind"
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    if (oms_db_conn(req->app->store->db, &c, &err) == OMS_OK &&
        oms_db_exec(c,
                    oms_lock_sql(oms_db_backend_of(req->app->store->db), LIVE_LOCKS_SQL(OMS_LOCK_NOW_SQLITE),
                                 LIVE_LOCKS_SQL(OMS_LOCK_NOW_PG)),
                    NULL, 0, &r, &err) == OMS_OK) {
        emit(&b, "# HELP oms_locks_active Live locks by kind (all instances).\n# TYPE oms_locks_active gauge\n");
        for (size_t i = 0; i < r->nrows; i++)
            emit(&b, "oms_locks_active{kind=\"%s\"} %lld\n", oms_dbres_get(r, i, 0), (long long)oms_dbres_int(r, i, 1));
    }
    oms_dbres_free(r);
    int rc = oms_resp_text(req, 200, "text/plain; version=0.0.4", b.buf, b.len);
    free(b.buf);
    return rc;
}
