/* GET /metrics: the instance's counters (src/infra/metrics.c), the shared
 * state in the database (src/ops/metrics.c) and the HTTP server's own state
 * (rate limiter, connection guard, requests in flight), in the text
 * exposition format 0.0.4. */
#include "api/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "http/app.h"
#include "http/conn_guard.h"
#include "http/ratelimit.h"
#include "http/routes.h"
#include "infra/metrics.h"
#include "ops/metrics.h"
#include "webhooks/sender.h"

#define emit oms_mtext_emit
#define emit_family oms_mtext_family

#define MAX_ROUTE_LABELS 128

static void emit_requests(oms_mtext *b)
{
    static oms_metrics_route labels[MAX_ROUTE_LABELS];
    size_t n = oms_app_routes_count < MAX_ROUTE_LABELS ? oms_app_routes_count : MAX_ROUTE_LABELS;
    for (size_t i = 0; i < n; i++)
        labels[i] = (oms_metrics_route){oms_app_routes[i].method, oms_app_routes[i].pattern};
    oms_metrics_text_requests(b, labels, n);
}

/* Refusals by class, and the keys the table had to drop while their limits
 * still mattered (it was full: raise OMS_RATE_LIMIT_KEYS). */
static void emit_ratelimit(oms_mtext *b)
{
    _Static_assert(OMS_RL__COUNT == OMS_METRICS_RL_CLASSES, "rate-limit classes");
    const char *names[OMS_METRICS_RL_CLASSES];
    for (int c = 0; c < OMS_RL__COUNT; c++)
        names[c] = oms_rl_class_name((oms_rl_class)c);
    oms_metrics_text_ratelimited(b, names);
    const oms_rl *rl = oms_ratelimit_instance();
    emit_family(b, "oms_ratelimit_evictions_total", "counter",
                "Rate-limit keys dropped from the full table before their limits had expired.");
    emit(b, "oms_ratelimit_evictions_total %lu\n", rl ? (unsigned long)oms_rl_evictions(rl) : 0UL);
}

/* Connection accounting of the slow-client guard (src/http/conn_guard.c). */
static void emit_connections(oms_mtext *b)
{
    oms_conn_guard_stats st;
    if (!oms_conn_guard_stats_get(&st))
        return;
    emit_family(b, "oms_http_connections_open", "gauge", "Client connections open.");
    emit(b, "oms_http_connections_open %ld\n", st.open);
    emit_family(b, "oms_http_connections_max", "gauge",
                "The connection cap in force: OMS_MAX_CONNECTIONS, or less when the descriptor limit is lower.");
    emit(b, "oms_http_connections_max %ld\n", st.cap);
    emit_family(b, "oms_http_connections_closed_total", "counter",
                "Connections the server refused or closed itself, by reason: per_client and cap (refused), "
                "header_timeout, body_rate, response_rate, request_timeout, idle, evicted (closed).");
    for (int r = OMS_CUT_NONE + 1; r < OMS_CUT__COUNT; r++)
        emit(b, "oms_http_connections_closed_total{reason=\"%s\"} %lu\n", oms_cut_reason_name((oms_cut_reason)r),
             st.cut[r]);
}

int oms_h_metrics(oms_request *req)
{
    oms_ctx *ctx = oms_req_ctx(req);
    oms_mtext b = OMS_BUF_INIT;
    oms_buf_reserve(&b, 16384);
    emit_requests(&b);
    oms_metrics_text_auth_audit(&b);
    oms_metrics_text_commits(&b);
    oms_metrics_text_lock_waits(&b);
    oms_ops_metrics_live_locks(ctx, &b);
    oms_metrics_text_search(&b);
    oms_ops_metrics_index_jobs(ctx, &b);
    oms_webhook_metrics_text(ctx, &b);
    oms_metrics_text_pool(&b);
    oms_ops_metrics_db(&b);
    emit_ratelimit(&b);
    oms_metrics_text_alerts(&b);
    emit_connections(&b);
    emit_family(&b, "oms_inflight_requests", "gauge", "Requests being served.");
    emit(&b, "oms_inflight_requests %ld\n", atomic_load(&req->app->inflight));
    int rc = oms_resp_text(req, 200, "text/plain; version=0.0.4", oms_buf_str(&b), b.len);
    oms_buf_free(&b);
    return rc;
}
