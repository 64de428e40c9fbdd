/* libmicrohttpd glue: a few epoll event loops (one per core) parse
 * requests and send responses; every request that may touch the database
 * is handed to the handler pool (dispatch.c) with its connection
 * suspended, and resumed with its response (docs/architecture.md
 * "Dispatch"). The raw request target is captured before MHD parses
 * anything, and MHD percent-decodes nothing (our path check sees the raw
 * bytes). SIGTERM drains (docs/operations.md "Shutdown and draining"). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/monitor.h"
#include "auth/identity.h"
#include "http/app.h"
#include "http/conn_guard.h"
#include "http/dispatch.h"
#include "http/path.h"
#include "http/pipeline.h"
#include "http/ratelimit.h"
#include "http/routes.h"
#include "ops/background.h"
#include "ops/health.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "util/heap.h"
#include "util/encoding.h"
#include "util/ids.h"
#include "util/time.h"
#include "util/alloc.h"
#include "util/thread.h"

/* Time-ordered (util/ids.h): the audit log's index on request_id grows at
 * its right edge. */
static void make_request_id(char out[65])
{
    oms_time_ordered_id(out);
}

static void client_address(oms_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(req->client_addr, sizeof req->client_addr, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, req->client_addr,
                  sizeof req->client_addr);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->client_addr,
                  sizeof req->client_addr);
}

/* Threads of the refusal lane: enough to answer refusals while another
 * waits for its audit write (group commit batches them). */
#define REFUSAL_THREADS 2

struct oms_server {
    struct MHD_Daemon *daemon;
    oms_app *app;
    oms_dispatch *pool;
    oms_conn_guard *guard; /* connection limits and slow-client deadlines */
    atomic_long active; /* requests past the door and not completed */
    int64_t drain_ns;
    unsigned port;
};

/* Where a request stands between its event loop and the handler pool. */
typedef enum {
    PH_NEW,       /* headers not seen yet */
    PH_AWAY,      /* suspended: its job is queued or running */
    PH_HEAD_DONE, /* the head phase passed on a handler thread; MHD repeats the first call */
    PH_BODY,      /* receiving the body */
    PH_READY,     /* a response is ready: queue it at the next call */
    PH_SENT,      /* queued */
    PH_FRESH,     /* parked for its branch's freshness read, which answered it */
} req_phase;

typedef enum {
    JOB_HEAD,   /* oms_pipeline_head, before a body */
    JOB_WHOLE,  /* head and finish of a request without a body: one hand-off */
    JOB_FINISH, /* oms_pipeline_finish, once the body is in */
    JOB_DRAIN,  /* refused at the door: the server is draining */
} job_kind;

typedef struct http_req {
    oms_request r; /* first: the request the pipeline sees */
    oms_job job;   /* the hand-off; one at a time */
    struct oms_server *srv;
    req_phase phase;
    job_kind kind;
    bool head_done; /* the head phase passed (a request with a body) */
    bool counted;   /* passed the door: counted in srv->active */
    bool queued;    /* a response was handed to the library */
    oms_conn *guard; /* the connection's record in the guard (conn_guard.h) */
    oms_fresh_parked parked; /* a read parked on the loop (PostgreSQL) */
} http_req;

/* MHD calls this first, with the request target exactly as received. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct oms_server *srv = cls;
    oms_arena *a = oms_arena_new(8192);
    if (!a)
        return NULL;
    http_req *h = oms_arena_alloc(a, sizeof *h);
    h->srv = srv;
    oms_request *req = &h->r;
    req->arena = a;
    req->app = srv->app;
    req->conn = conn;
    req->start_ns = oms_mono_ns();
    req->raw_target = oms_arena_strdup(a, uri ? uri : "");
    req->wire.target = uri;
    req->wire.target_len = strlen(req->raw_target);
    const char *q = strchr(req->raw_target, '?');
    req->raw_path = req->raw_target;
    req->raw_path_len = q ? (size_t)(q - req->raw_target) : strlen(req->raw_target);
    req->raw_query = q ? q + 1 : NULL;
    req->status = 500;
    h->guard = oms_conn_of(conn);
    oms_conn_request_line(h->guard);
    atomic_fetch_add(&srv->app->inflight, 1);
    return h;
}

/* Keep MHD from decoding anything: routing works on raw segments. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* A streamed body (oms_resp_stream) as libmicrohttpd's content reader. */
typedef struct {
    long (*fn)(void *ctx, char *buf, size_t max);
    void *ctx;
    void (*free_fn)(void *ctx);
} stream_reader;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_reader *s = cls;
    long n = s->fn(s->ctx, buf, max);
    return n > 0 ? (ssize_t)n : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_done(void *cls)
{
    stream_reader *s = cls;
    if (s->free_fn)
        s->free_fn(s->ctx);
    free(s);
}

/* A HEAD answer never carries a body (SPEC §5). The library leaves out a
 * buffered body on HEAD by itself (and announces its length), but writes a
 * streamed one in full: on a kept-alive connection the client would read it
 * as the start of the next answer. So a stream is never handed over. */
static void drop_stream_for_head(oms_request *req)
{
    if (!req->stream_fn || !req->method || strcmp(req->method, "HEAD") != 0)
        return;
    if (req->stream_free)
        req->stream_free(req->stream_ctx);
    req->stream_fn = NULL;
    req->stream_free = NULL;
    req->stream_ctx = NULL;
}

static enum MHD_Result queue(oms_request *req)
{
    struct MHD_Response *resp;
    drop_stream_for_head(req);
    if (req->stream_fn) {
        stream_reader *s = oms_xmalloc(sizeof *s);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_done);
        if (!resp) {
            free(s);
            return MHD_NO;
        }
        *s = (stream_reader){req->stream_fn, req->stream_ctx, req->stream_free};
        req->stream_fn = NULL; /* the response owns it now */
        req->stream_free = NULL;
    } else if (req->resp_owned) {
        resp = MHD_create_response_from_buffer(req->resp_len, req->resp_owned, MHD_RESPMEM_MUST_FREE);
        if (resp)
            req->resp_owned = NULL;
    } else {
        resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body ? req->resp_body : (char *)"",
                                               MHD_RESPMEM_MUST_COPY);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", req->resp_type ? req->resp_type : "application/json");
    MHD_add_response_header(resp, "X-Request-ID", req->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; i < req->nresp_headers; i++)
        MHD_add_response_header(resp, req->resp_headers[i].name, req->resp_headers[i].value);
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static bool has_body(oms_request *req)
{
    const char *cl = oms_req_header(req, "Content-Length");
    return (cl && strtoull(cl, NULL, 10) > 0) || oms_req_header(req, "Transfer-Encoding");
}

/* The announced body length, -1 when chunked (the guard's minimum rate). */
static int64_t body_length(oms_request *req)
{
    const char *cl = oms_req_header(req, "Content-Length");
    return cl && !oms_req_header(req, "Transfer-Encoding") ? (int64_t)strtoll(cl, NULL, 10) : -1;
}

/* A body small enough to read before the head phase: at most
 * OMS_SMALL_BODY bytes by Content-Length, not chunked, no `Expect:
 * 100-continue` (that client waits to be told to send). Such a body
 * usually arrives with its headers, and reading it costs less than the
 * hand-off its own head phase would (docs/architecture.md). Anything larger
 * keeps the head phase first, so an unauthenticated upload is refused
 * without being read. */
static bool small_body(oms_request *req)
{
    int64_t len = body_length(req);
    return len > 0 && len <= OMS_SMALL_BODY && !oms_req_header(req, "Expect");
}

static bool get_or_head(const oms_request *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* The one request an event loop answers itself: a liveness probe that no
 * pipeline step refuses (no body, no query, a small header block), so it
 * never waits for a handler thread or the database, not even for an audit
 * write. Anything else addressed to /health takes the normal path. */
static bool is_liveness_probe(oms_request *req)
{
    if (!get_or_head(req) || strcmp(req->raw_target, "/health") != 0 || has_body(req))
        return false;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    return ci && ci->header_size <= OMS_MAX_HEADERS / 2;
}

/* While draining, every response closes its connection, so a kept-alive
 * client sends nothing more here. */
static enum MHD_Result respond(http_req *h)
{
    if (atomic_load(&h->srv->app->draining))
        oms_resp_header(&h->r, "Connection", "close");
    oms_conn_sending(h->guard);
    enum MHD_Result rc = queue(&h->r);
    h->queued = rc == MHD_YES;
    return rc;
}

static http_req *job_owner(oms_job *j) { return (http_req *)(void *)((char *)j - offsetof(http_req, job)); }

/* On a refusal thread, or a handler thread that found the job expired. */
static void job_refuse(oms_job *j, oms_refusal why)
{
    http_req *h = job_owner(j);
    oms_request *req = &h->r;
    struct MHD_Connection *conn = req->conn;
    if (why == OMS_REFUSE_DRAINING)
        oms_pipeline_refuse_unavailable(req, "draining", "the server is shutting down: retry", "1");
    else
        oms_pipeline_refuse_unavailable(req, "overloaded",
                                        why == OMS_REFUSE_FULL
                                            ? "too many requests are waiting for a handler: retry later"
                                            : "the request waited for a handler past its deadline: retry later",
                                        "2");
    h->phase = PH_READY;
    MHD_resume_connection(conn);
}

/* On a handler thread. Resuming the connection is the last touch: the
 * event loop may answer, complete and free the request at once. */
static void job_run(oms_job *j)
{
    http_req *h = job_owner(j);
    oms_request *req = &h->r;
    struct MHD_Connection *conn = req->conn;
    int64_t cpu0 = oms_thread_cpu_ns();
    switch (h->kind) {
    case JOB_HEAD:
        h->phase = oms_pipeline_head(req) ? PH_READY : PH_HEAD_DONE;
        break;
    case JOB_WHOLE:
        if (!oms_pipeline_head(req))
            oms_pipeline_finish(req);
        h->phase = PH_READY;
        break;
    case JOB_FINISH:
        oms_pipeline_finish(req);
        h->phase = PH_READY;
        break;
    case JOB_DRAIN: /* only ever sent to the refusal lane */
        job_refuse(j, OMS_REFUSE_DRAINING);
        return;
    }
    req->handler_cpu_ns += oms_thread_cpu_ns() - cpu0; /* the connection is suspended: ours alone */
    MHD_resume_connection(conn);
}

static void suspend_conn(void *conn) { MHD_suspend_connection(conn); }

/* Suspends the connection and hands the request to the pool (or, while
 * draining, to the refusal lane). The phase is set first: once handed
 * over, the job may run and set the next phase before this returns. A
 * stopped pool takes nothing: the connection closes unanswered, the
 * request never executed (only past the drain deadline). */
static enum MHD_Result hand_off(http_req *h, job_kind kind)
{
    if (!oms_conn_away(h->guard)) { /* cut by the guard meanwhile: it closes */
        h->phase = PH_SENT;
        return MHD_NO;
    }
    h->kind = kind;
    h->phase = PH_AWAY;
    h->job.run = job_run;
    h->job.refuse = job_refuse;
    bool taken = kind == JOB_DRAIN
                     ? oms_dispatch_refuse(h->srv->pool, &h->job, OMS_REFUSE_DRAINING, false, suspend_conn, h->r.conn)
                     : oms_dispatch_submit(h->srv->pool, &h->job, suspend_conn, h->r.conn);
    if (taken)
        return MHD_YES;
    h->phase = PH_SENT;
    return MHD_NO;
}

/* On the thread whose freshness read answered a parked request: the
 * loop takes it from there (PH_FRESH). Resuming is the last touch. */
static void parked_answered(oms_fresh_parked *p)
{
    http_req *h = (http_req *)(void *)((char *)p - offsetof(http_req, parked));
    struct MHD_Connection *conn = h->r.conn;
    h->phase = PH_FRESH;
    MHD_resume_connection(conn);
}

/* PostgreSQL: a read the loop could answer from memory but for the
 * freshness read, a round trip. The connection is suspended and parked on
 * its branch's next read (store/freshness.h): no handler thread is woken
 * for it, and the read is shared with every request parked or waiting on
 * the branch. */
static enum MHD_Result park(http_req *h, const char *branch)
{
    if (!oms_conn_away(h->guard)) { /* cut by the guard meanwhile: it closes */
        oms_pipeline_unpark(&h->r);
        h->phase = PH_SENT;
        return MHD_NO;
    }
    h->phase = PH_AWAY;
    h->parked.answered = parked_answered;
    MHD_suspend_connection(h->r.conn);
    if (!oms_store_fresh_park(h->srv->app->store->db, branch, &h->parked)) {
        h->parked.rc = OMS_EDB; /* not parked: the loop hands it over */
        parked_answered(&h->parked);
    }
    return MHD_YES;
}

/* Back on the loop with the read that answered the parked request: answered
 * from memory, or handed over as any request (the pipeline from the start,
 * its own freshness read included). */
static enum MHD_Result after_park(http_req *h)
{
    if (!atomic_load(&h->srv->app->draining) && oms_pipeline_answer_parked(&h->r, &h->parked)) {
        h->phase = PH_SENT;
        return respond(h);
    }
    oms_pipeline_unpark(&h->r);
    return hand_off(h, JOB_WHOLE);
}

/* The first call, once the headers are in: only cheap work here, on the
 * event loop. A request with a body has its head phase (limits, path,
 * authentication, authorization) run before the body is read; one without
 * is handed over whole at the final call. Responses are queued at the
 * final call where possible: libmicrohttpd closes the connection after a
 * response queued at the first call (right for a refusal before a body). */
static enum MHD_Result door(http_req *h, const char *method, const char *url, const char *version)
{
    oms_request *req = &h->r;
    oms_conn_head_done(h->guard);
    req->started = true;
    req->method = oms_arena_strdup(req->arena, method);
    /* where the library parsed them, for the framing check (framing.c) */
    req->wire.method = method;
    req->wire.url = url;
    req->wire.version = version;
    req->user_agent = oms_req_header(req, "User-Agent");
    const char *rid = oms_req_header(req, "X-Request-ID");
    if (rid && oms_valid_request_id(rid))
        snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    else
        make_request_id(req->request_id);
    client_address(req);
    h->counted = true;
    atomic_fetch_add(&h->srv->active, 1);
    /* A request that arrives while draining is refused, never executed;
     * /health and /ready still answer for themselves. */
    if (atomic_load(&h->srv->app->draining) && !is_liveness_probe(req) &&
        !(get_or_head(req) && strcmp(req->raw_target, "/ready") == 0))
        return hand_off(h, JOB_DRAIN);
    if (has_body(req)) {
        if (!small_body(req))
            return hand_off(h, JOB_HEAD);
        /* read with the head: the whole request goes over in one hand-off */
        oms_conn_body(h->guard, body_length(req));
    }
    h->phase = PH_BODY;
    return MHD_YES;
}

/* MHD calls this once the headers are in, once per piece of body, and once
 * at the end; after a resume it repeats the call it was suspended in
 * (libmicrohttpd 0.9.75 keeps the connection's state), which is where a
 * response made on another thread is queued. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_req *h = *con_cls;
    if (!h)
        return MHD_NO; /* out of memory when the request began */
    oms_request *req = &h->r;
    switch (h->phase) {
    case PH_NEW:
        return door(h, method, url, version);
    case PH_READY:
        h->phase = PH_SENT;
        return respond(h);
    case PH_HEAD_DONE:
        h->phase = PH_BODY;
        h->head_done = true;
        oms_conn_body(h->guard, body_length(req));
        if (*upload_data_size == 0)
            return MHD_YES; /* the first call again: the body comes next */
        break;
    case PH_SENT: /* answered before the body: MHD discards it */
        *upload_data_size = 0;
        return MHD_YES;
    case PH_AWAY: /* never called while suspended */
        return MHD_YES;
    case PH_FRESH:
        return after_park(h);
    case PH_BODY:
        break;
    }
    if (*upload_data_size) {
        oms_conn_body_bytes(h->guard, *upload_data_size);
        oms_pipeline_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (h->head_done)
        return hand_off(h, JOB_FINISH);
    if (is_liveness_probe(req)) {
        if (!oms_pipeline_head(req))
            oms_pipeline_finish(req);
        h->phase = PH_SENT;
        return respond(h);
    }
    /* a read the loop can answer from memory: no hand-off, no wake-ups */
    if (!atomic_load(&h->srv->app->draining)) {
        if (oms_pipeline_try_inline(req)) {
            h->phase = PH_SENT;
            return respond(h);
        }
        const char *branch = oms_pipeline_may_park(req);
        /* under the sole-writer lease, a repeat read needs no round trip */
        if (branch && oms_store_fresh_remembered(h->srv->app->store->db, branch, &h->parked))
            return after_park(h);
        if (branch)
            return park(h, branch);
    }
    return hand_off(h, JOB_WHOLE);
}

/* The HTTP library answered the request itself (a header block past the
 * connection buffer, a malformed request line): our pipeline never saw its
 * headers, so the event has the raw path and the client, not a request id
 * of the client's. Recorded on the refusal lane, not on the event loop; a
 * full lane (a flood while the database stalls) or a stopped pool records
 * it here. */
typedef struct {
    oms_job job;
    oms_app *app;
    char route[260];
    char client[64];
    char request_id[65];
} library_refusal;

static void library_refusal_record(library_refusal *l)
{
    oms_audit_event ev = {.action = "request.rejected", .outcome = "denied", .client_addr = l->client,
                          .request_id = l->request_id, .route = l->route,
                          .detail = "{\"reason\":\"refused_by_http_layer\"}"};
    oms_error err;
    if (oms_audit_record(l->app->store, &ev, &err) != OMS_OK) {
        /* the response has gone: it is recorded once the store can write */
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit write failed: %s", err.msg);
        oms_audit_record_later(l->app->store, &ev);
    }
}

static void library_refusal_job(oms_job *j, oms_refusal why)
{
    library_refusal *l = (library_refusal *)(void *)((char *)j - offsetof(library_refusal, job));
    library_refusal_record(l);
    free(l);
}

static void record_library_refusal(struct oms_server *srv, oms_request *req)
{
    library_refusal *l = oms_xcalloc(1, sizeof *l);
    l->app = srv->app;
    snprintf(l->route, sizeof l->route, "%.*s", (int)(req->raw_path_len > 256 ? 256 : req->raw_path_len),
             req->raw_path);
    if (!oms_utf8_valid(l->route, strlen(l->route)))
        snprintf(l->route, sizeof l->route, "(invalid utf-8)");
    client_address(req);
    if (!oms_ratelimit_library_refusal(req)) { /* a throttled address: counted into its window's aggregated event */
        free(l);
        return;
    }
    snprintf(l->client, sizeof l->client, "%s", req->client_addr);
    make_request_id(l->request_id);
    l->job.refuse = library_refusal_job;
    /* the reason is not read: this job only records */
    if (!oms_dispatch_refuse(srv->pool, &l->job, OMS_REFUSE_DRAINING, true, NULL, NULL)) {
        library_refusal_record(l);
        free(l);
    }
}

/* How a request ended, for the access log: NULL when its answer was sent. */
static const char *request_end(enum MHD_RequestTerminationCode toe, oms_cut_reason cut)
{
    if (cut != OMS_CUT_NONE || toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        return "timed_out"; /* the guard's deadline, or the library's idle timeout */
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    default: /* the client closed or reset the connection, or a send failed */
        return "aborted";
    }
}

/* The security monitor's burst rules (src/audit/monitor.c) see each answer
 * once it was sent: counting cannot slow or fail it. The address is keyed
 * as the rate limiter keys it (an IPv6 client by its /64). */
static void monitor_answer(oms_request *req)
{
    if (req->status != 401 && req->status != 403)
        return;
    char key[200];
    oms_rl_decision by_addr = {.by_address = true};
    oms_ratelimit_key_text(key, sizeof key, req, &by_addr);
    oms_monitor_answer(req->status, key, req->client_addr, req->authenticated ? req->principal.sub : NULL);
}

/* A request that ended before any pipeline phase ran (cut or abandoned
 * while its small body, read with its head, or its headers' end arrived)
 * has not been routed: its route is matched here for the metrics and the
 * log, nothing else. A request the pipeline refused before routing keeps
 * no route. */
static void label_route(oms_request *req)
{
    oms_error err;
    oms_err_clear(&err);
    char allow[128];
    if (oms_path_parse(&req->path, req->raw_path, req->raw_path_len, req->arena, &err) != OMS_OK ||
        oms_routes_match(req->app->routes, req, allow, sizeof allow, &err) != OMS_ROUTE_FOUND)
        req->route = NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct oms_server *srv = cls;
    oms_app *app = srv->app;
    http_req *h = *con_cls;
    if (!h)
        return;
    oms_request *req = &h->r;
    double ms = (double)(oms_mono_ns() - req->start_ns) / 1e6;
    oms_cut_reason cut = oms_conn_request_done(h->guard);
    /* No answer was handed over: the client went away, or the guard or the
     * library's idle timeout cut it. Counted with status "none", never as
     * the 500 a request starts with. */
    if (!h->queued)
        req->status = 0;
    const char *end = request_end(toe, cut);
    if (req->started && !req->route && h->phase == PH_BODY) /* no pipeline phase ever ran */
        label_route(req);
    if (req->started) {
        const oms_route *r = req->route;
        long slot = r && r >= oms_app_routes && r < oms_app_routes + oms_app_routes_count ? (long)(r - oms_app_routes)
                                                                                             : -1;
        oms_metrics_request(slot, req->method, req->status, ms / 1e3, (double)req->handler_cpu_ns / 1e9);
        monitor_answer(req);
    }
    else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR && cut == OMS_CUT_NONE)
        record_library_refusal(srv, req);
    if (req->started && OMS_LOG_INFO >= oms_log_min) {
        json_t *f = json_pack("{s:s,s:s,s:i,s:s}", "method", req->method ? req->method : "", "route",
                              req->route ? req->route->pattern : "(none)", "status", req->status, "client_addr",
                              req->client_addr);
        if (req->authenticated)
            json_object_set_new(f, "subject", json_string(req->principal.sub));
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            json_object_set_new(f, "terminated", json_integer(toe));
        if (end)
            json_object_set_new(f, "end", json_string(end));
        if (cut != OMS_CUT_NONE)
            json_object_set_new(f, "cut", json_string(oms_cut_reason_name(cut)));
        char *s = json_dumps(f, JSON_COMPACT);
        json_decref(f);
        /* splice the object's members after the fixed ones: drop its braces */
        char *fields = NULL;
        if (s) {
            s[strlen(s) - 1] = '\0';
            s[0] = ',';
            fields = oms_arena_printf(req->arena, "%s,\"duration_ms\":%.3f", s, ms);
        }
        oms_log_write(OMS_LOG_INFO, req->request_id, fields, "request");
        free(s);
    }
    atomic_fetch_sub(&app->inflight, 1);
    if (h->counted)
        atomic_fetch_sub(&srv->active, 1);
    if (req->stream_fn && req->stream_free) /* a stream never handed to the library */
        req->stream_free(req->stream_ctx);
    /* A large request (a batch, an export) leaves much freed memory behind:
     * give it back rather than let the resident size ratchet up. */
    bool large = req->body_len > (256 << 10) || req->resp_len > (1 << 20);
    free(req->resp_owned);
    oms_arena_free(req->arena);
    *con_cls = NULL;
    if (large)
        oms_heap_release();
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (OMS_LOG_DEBUG < oms_log_min)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    oms_log_write(OMS_LOG_DEBUG, NULL, NULL, "http: %s", msg);
}

static int parse_listen(struct sockaddr_storage *ss, const char *listen, oms_error *err)
{
    memset(ss, 0, sizeof *ss);
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return oms_err_set(err, OMS_ECONFIG, "OMS_LISTEN must be address:port");
    char host[128];
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= sizeof host)
        return oms_err_set(err, OMS_ECONFIG, "OMS_LISTEN address too long");
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return oms_err_set(err, OMS_ECONFIG, "OMS_LISTEN port is invalid");
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return oms_err_set(err, OMS_ECONFIG, "OMS_LISTEN address is invalid");
        return OMS_OK;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return oms_err_set(err, OMS_ECONFIG, "OMS_LISTEN address is invalid");
    return OMS_OK;
}

/* Per-connection buffer of libmicrohttpd: our limits (8 KiB target, 16 KiB
 * of headers) fit with room to spare. The library zeroes the whole buffer
 * between requests, so a larger one costs every request (192 KiB cost a
 * fifth of the CPU of a GET); a header block past it is refused by the
 * library itself and recorded by on_completed. */
#define OMS_CONN_MEMORY (32 * 1024)
#define DEFAULT_WORKERS_MAX 64

static void record_lifecycle(oms_app *app, const char *action, const char *detail)
{
    oms_audit_event ev = {.actor_sub = "oms", .action = action, .outcome = "success", .detail = detail};
    oms_error err;
    if (oms_audit_record(app->store, &ev, &err) != OMS_OK) {
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit write failed: %s", err.msg);
        oms_audit_record_later(app->store, &ev);
    }
}

/* A non-blocking listening socket on `ss` (the event loops share it):
 * SO_REUSEADDR so a restart binds while old connections sit in TIME_WAIT,
 * never SO_REUSEPORT (a second server on a port in use is an error, not a
 * silent split of its traffic); IPv6 only on an IPv6 address. */
static int open_listener(const struct sockaddr_storage *ss, const char *where, oms_error *err)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        oms_err_set(err, OMS_ECONFIG, "cannot listen on %s: %s", where, strerror(errno));
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        oms_err_set(err, OMS_ECONFIG, "cannot listen on %s: %s", where, strerror(e));
        return -1;
    }
    return fd;
}

/* Starts listening and serving on worker threads; returns at once. */
int oms_server_start(oms_app *app, oms_server **out, oms_error *err)
{
    struct sockaddr_storage ss;
    const char *listen = oms_config_str(app->cfg, "OMS_LISTEN");
    int rc = parse_listen(&ss, listen, err);
    if (rc)
        return rc;
    long cores = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 2;
    long workers = oms_config_int(app->cfg, "OMS_WORKERS");
    if (workers <= 0) {
        /* A handler thread blocks while its database answers, and a write
         * waiting for its branch's group commit blocks one too, so the
         * threads bound a batch's size (src/txn/group_commit.c). SQLite
         * with group commit: eight per core (16 writers gained 6-11 % over
         * four: docs/BENCHMARKS.md round 5). PostgreSQL: four per core.
         * Eight per core there grew batches on one branch from 4.2 to 8.1
         * writes and 16 writers' commits by 7-12 %, but the mixed soak ran
         * 5 % slower with them (round 23): more threads run everything
         * else at once too. SQLite without group commit: one per core
         * (more only poll for its lock: p99 of 16 writers 500 ms at 8).
         * At most 64 by default: each thread holds a PostgreSQL connection
         * (docs/operations.md "Connections to PostgreSQL"). */
        bool sqlite = oms_db_single_writer(app->store->db);
        bool group_commit = oms_config_int(app->cfg, "OMS_GROUP_COMMIT") != 0;
        workers = sqlite && !group_commit ? cores : sqlite ? 8 * cores : 4 * cores;
        if (workers > DEFAULT_WORKERS_MAX)
            workers = DEFAULT_WORKERS_MAX;
    }
    /* The event loops only parse, hand over and send: one per core. */
    long loops = cores;

    oms_server *srv = oms_xcalloc(1, sizeof *srv);
    srv->app = app;
    srv->drain_ns = oms_config_int(app->cfg, "OMS_DRAIN_TIMEOUT_MS") * 1000000LL;
    oms_dispatch_config dc = {.handlers = (unsigned)workers,
                              .refusers = REFUSAL_THREADS,
                              .queue_cap = (size_t)oms_config_int(app->cfg, "OMS_REQUEST_QUEUE"),
                              .deadline_ns = oms_config_int(app->cfg, "OMS_REQUEST_DEADLINE_MS") * 1000000LL};
    if (oms_dispatch_new(&srv->pool, &dc) != OMS_OK) {
        free(srv);
        return oms_err_set(err, OMS_ENOMEM, "cannot start %ld handler threads", workers);
    }
    /* Descriptors: one per connection, and for the rest (database
     * connections of every thread, SQLite's journal files, the listener,
     * the loops' epoll and wake-up descriptors, webhooks) a reserve. */
    unsigned cap = (unsigned)oms_config_int(app->cfg, "OMS_MAX_CONNECTIONS");
    unsigned reserve = 64 + 4 * (unsigned)(workers + REFUSAL_THREADS + 2 * loops + 8);
    unsigned long fd_limit = 0;
    unsigned fit = oms_conn_guard_fit_fd_limit(cap, reserve, &fd_limit);
    if (fit < cap)
        oms_log_write(OMS_LOG_WARN, NULL, NULL,
                      "OMS_MAX_CONNECTIONS=%u does not fit the descriptor limit (%lu): serving at most %u connections;"
                      " raise the limit (ulimit -n, LimitNOFILE=) to at least %u",
                      cap, fd_limit, fit, oms_conn_guard_mhd_limit(cap) + reserve);
    oms_conn_guard_config gc = {
        .max_connections = fit,
        .per_client = (unsigned)oms_config_int(app->cfg, "OMS_MAX_CONNECTIONS_PER_CLIENT"),
        .header_ns = oms_config_int(app->cfg, "OMS_HEADER_TIMEOUT_MS") * 1000000LL,
        .keepalive_ns = oms_config_int(app->cfg, "OMS_CONNECTION_TIMEOUT") * 1000000000LL,
        .request_ns = oms_config_int(app->cfg, "OMS_REQUEST_TIMEOUT_MS") * 1000000LL,
        .min_rate = (uint64_t)oms_config_int(app->cfg, "OMS_MIN_DATA_RATE"),
        .rate_grace_ns = oms_config_int(app->cfg, "OMS_DATA_RATE_GRACE_MS") * 1000000LL,
    };
    if ((rc = oms_conn_guard_new(&srv->guard, &gc, err)) != OMS_OK) {
        oms_dispatch_stop(srv->pool, 0);
        oms_dispatch_free(srv->pool);
        free(srv);
        return rc;
    }

    signal(SIGPIPE, SIG_IGN);
    /* The listener is bound here, before the library starts: the port is
     * known (OMS_LISTEN may name port 0), and server.start is in the audit
     * log before the first request can be accepted (connections wait in the
     * backlog meanwhile), so no request's event precedes it and a client
     * that saw an answer cannot stall the database under that write. */
    int lfd = open_listener(&ss, listen, err);
    if (lfd < 0) {
        oms_conn_guard_free(srv->guard);
        oms_dispatch_stop(srv->pool, 0);
        oms_dispatch_free(srv->pool);
        free(srv);
        return err->code;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(lfd, (struct sockaddr *)&bound, &blen) == 0)
        srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    char detail[200];
    snprintf(detail, sizeof detail,
             "{\"listen\":\"%s\",\"port\":%u,\"workers\":%ld,\"event_loops\":%ld,\"backend\":\"%s\"}", listen,
             srv->port, workers, loops, oms_db_backend_name(app->store->db));
    oms_audit_start(app->store, app->cfg); /* group commit for events outside a change transaction */
    record_lifecycle(app, "server.start", detail);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The library's own limit is the guard's cap plus room for connections
     * accepted while evicted ones close; the guard counts, refuses and
     * evicts (conn_guard.h). */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, oms_conn_guard_accept, srv->guard, on_request, srv,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lfd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(loops > 1 ? loops : 0), /* 1: the polling thread serves */
        MHD_OPTION_CONNECTION_LIMIT, oms_conn_guard_mhd_limit(fit),
        MHD_OPTION_NOTIFY_CONNECTION, oms_conn_guard_notify, srv->guard,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)oms_config_int(app->cfg, "OMS_CONNECTION_TIMEOUT"),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)OMS_CONN_MEMORY,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_END);
    if (!d) {
        int e = errno;
        close(lfd);
        oms_conn_guard_free(srv->guard);
        oms_dispatch_stop(srv->pool, 0);
        oms_dispatch_free(srv->pool);
        free(srv);
        oms_audit_stop(app->store);
        return oms_err_set(err, OMS_ECONFIG, "cannot serve on %s: %s", listen, strerror(e));
    }
    srv->daemon = d;
    oms_health_start(app->store, app->cfg); /* readiness checks run on a thread of their own */
    oms_background_start(app);
    oms_log_write(OMS_LOG_INFO, NULL, NULL,
                  "oms serving on %s (port %u, %ld handler threads, %ld event loops, %s; at most %u connections,"
                  " %lu descriptors; %s allocator)",
                  listen, srv->port, workers, loops, oms_db_backend_name(app->store->db), fit, fd_limit,
                  oms_heap_allocator());
    *out = srv;
    return OMS_OK;
}

unsigned oms_server_port(const oms_server *srv) { return srv->port; }

/* After the drain deadline, refusing what is still queued, the final audit
 * flush and the shutdown event get this much more time. */
#define FINAL_GRACE_NS (3 * 1000000000LL)

static void wait_active(oms_server *srv, int64_t until_ns)
{
    while (atomic_load(&srv->active) > 0 && oms_mono_ns() < until_ns)
        usleep(2000);
}

/* Drain (docs/operations.md "Shutdown and draining"): /ready answers 503,
 * the listener closes, every request that arrives on an open connection is
 * refused (503 draining, Connection: close, never executed), requests in
 * flight finish until OMS_DRAIN_TIMEOUT_MS, their responses closing their
 * connections; then the shutdown is audited and the audit writer flushed.
 * Returns false when a handler thread was still stuck at the end: its
 * request, its connection and the store are in use, so nothing may be
 * freed (the caller exits the process instead). */
bool oms_server_stop(oms_server *srv)
{
    oms_app *app = srv->app;
    int64_t t0 = oms_mono_ns();
    int64_t drain_until = t0 + srv->drain_ns, final_until = drain_until + FINAL_GRACE_NS;
    atomic_store(&app->draining, true);
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "draining: %ld request(s) in flight", atomic_load(&srv->active));
    /* No new connections: the listener stops accepting, and shutting it
     * down refuses at once the connections waiting in its backlog and any
     * new one (it may only be closed after MHD_stop_daemon). */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        shutdown(lfd, SHUT_RDWR);
    wait_active(srv, drain_until);
    long cut = atomic_load(&srv->active);
    size_t stuck = oms_dispatch_stop(srv->pool, final_until);
    if (stuck == 0) {
        /* no handler runs: a request still parked for a freshness read is
         * answered with an error and closes (the pool takes nothing) */
        oms_store_fresh_release_parked();
        wait_active(srv, final_until); /* the refusals just made reach their clients */
        cut = atomic_load(&srv->active);
        MHD_stop_daemon(srv->daemon); /* no connection is suspended now */
        oms_conn_guard_free(srv->guard); /* every connection is closed */
        oms_dispatch_free(srv->pool);
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
    }
    double ms = (double)(oms_mono_ns() - t0) / 1e6;
    if (stuck || cut)
        oms_log_write(OMS_LOG_WARN, NULL, NULL,
                      "drain deadline passed: %ld request(s) cut, %zu still on a handler thread", cut, stuck);
    oms_health_stop();
    oms_background_stop(app);
    char detail[160];
    snprintf(detail, sizeof detail, "{\"drained\":%s,\"drain_ms\":%.0f,\"cut\":%ld,\"stuck\":%zu}",
             stuck || cut ? "false" : "true", ms, cut, stuck);
    record_lifecycle(app, "server.stop", detail);
    oms_audit_stop(app->store); /* flushes the writer and seals the tail */
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "stopped");
    if (stuck)
        return false;
    free(srv);
    return true;
}

/* Bounds the whole shutdown: past the drain deadline and the final grace
 * (a database that does not answer the last audit flush), or at a second
 * SIGTERM/SIGINT, the process exits at once. */
typedef struct {
    sigset_t set;
    int64_t until_ns;
} watchdog_arg;

static void *watchdog(void *p)
{
    oms_thread_name("oms-watchdog");
    watchdog_arg *w = p;
    for (;;) {
        int64_t left = w->until_ns - oms_mono_ns();
        if (left <= 0)
            break;
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        int sig = sigtimedwait(&w->set, NULL, &ts);
        if (sig == SIGHUP)
            continue; /* a reload request means nothing while draining */
        if (sig > 0) {
            oms_log_write(OMS_LOG_WARN, NULL, NULL, "signal %d while draining: exiting now", sig);
            _exit(1);
        }
        if (errno != EINTR)
            break;
    }
    oms_log_write(OMS_LOG_ERROR, NULL, NULL, "shutdown overran its bound: exiting now");
    _exit(1);
}

int oms_server_run(oms_app *app, oms_error *err)
{
    /* Signals are taken synchronously by this thread. `oms serve` blocks
     * them before any thread starts (src/app/main.c), so no thread takes
     * one; the mask is set again here because sigwait needs it, whoever
     * calls this. */
    static watchdog_arg w;
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGTERM);
    sigaddset(&w.set, SIGINT);
    sigaddset(&w.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &w.set, NULL);
    oms_server *srv;
    int rc = oms_server_start(app, &srv, err);
    if (rc)
        return rc;
    int sig = 0;
    while (sigwait(&w.set, &sig) == 0 && sig == SIGHUP)
        oms_identity_reload("sighup"); /* re-reads secrets and keys (src/auth/identity.h) */
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "signal %d: shutting down", sig);
    w.until_ns = oms_mono_ns() + srv->drain_ns + FINAL_GRACE_NS + 1000000000LL;
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, &w) == 0)
        pthread_detach(t);
    if (!oms_server_stop(srv)) {
        /* A handler thread is still inside the store: freeing anything
         * would pull it from under it. */
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "exiting with requests still running");
        _exit(1);
    }
    return OMS_OK;
}
