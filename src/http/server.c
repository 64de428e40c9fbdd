/* libmicrohttpd glue: one epoll loop per worker thread (a pool sized to the
 * cores), the raw request target captured before MHD parses anything, and
 * no percent-decoding by MHD (our path check sees the raw bytes). */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit/audit.h"
#include "auth/identity.h"
#include "http/app.h"
#include "http/pipeline.h"
#include "ops/background.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "util/encoding.h"
#include "util/time.h"

const char *oms_req_header(oms_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *oms_req_query(oms_request *r, const char *name)
{
    if (!r->raw_query)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = r->raw_query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == nlen && strncmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = eq ? len - klen - 1 : 0;
            /* '+' means space in query strings */
            char *tmp = oms_arena_strndup(r->arena, v, vlen);
            for (char *q = tmp; *q; q++)
                if (*q == '+')
                    *q = ' ';
            oms_error err;
            return oms_pct_decode(tmp, vlen, r->arena, NULL, &err);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}

static void make_request_id(char out[65])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        memset(b, 0, sizeof b);
    oms_hex(out, b, sizeof b);
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

/* MHD calls this first, with the request target exactly as received. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    oms_app *app = cls;
    oms_arena *a = oms_arena_new(8192);
    if (!a)
        return NULL;
    oms_request *req = oms_arena_alloc(a, sizeof *req);
    req->arena = a;
    req->app = app;
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
    atomic_fetch_add(&app->inflight, 1);
    return req;
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
        stream_reader *s = malloc(sizeof *s);
        resp = s ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_done) : NULL;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    oms_request *req = *con_cls;
    if (!req)
        return MHD_NO; /* out of memory when the request began */
    if (!req->started) {
        req->started = true;
        req->method = oms_arena_strdup(req->arena, method);
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
        if (oms_pipeline_head(req))
            return queue(req);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->responded)
            oms_pipeline_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->responded)
        return MHD_YES; /* answered in the head phase; MHD is discarding the body */
    oms_pipeline_finish(req);
    return queue(req);
}

/* The HTTP library answered the request itself (a header block past the
 * connection buffer, a malformed request line): our pipeline never saw its
 * headers, so the event has the raw path and the client, not a request id
 * of the client's. */
static void record_library_refusal(oms_request *req)
{
    char route[260];
    snprintf(route, sizeof route, "%.*s", (int)(req->raw_path_len > 256 ? 256 : req->raw_path_len), req->raw_path);
    if (!oms_utf8_valid(route, strlen(route)))
        snprintf(route, sizeof route, "(invalid utf-8)");
    client_address(req);
    make_request_id(req->request_id);
    oms_audit_event ev = {.action = "request.rejected", .outcome = "denied", .client_addr = req->client_addr,
                          .request_id = req->request_id, .route = route,
                          .detail = "{\"reason\":\"refused_by_http_layer\"}"};
    oms_error err;
    if (oms_audit_record(req->app->store, &ev, &err) != OMS_OK)
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit write failed: %s", err.msg);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    oms_app *app = cls;
    oms_request *req = *con_cls;
    if (!req)
        return;
    double ms = (double)(oms_mono_ns() - req->start_ns) / 1e6;
    if (req->started)
        oms_metrics_request(req, ms / 1e3);
    else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR)
        record_library_refusal(req);
    if (req->started && OMS_LOG_INFO >= oms_log_min) {
        json_t *f = json_pack("{s:s,s:s,s:i}", "method", req->method ? req->method : "", "route",
                              req->route ? req->route->pattern : "(none)", "status", req->status);
        if (req->authenticated)
            json_object_set_new(f, "subject", json_string(req->principal.sub));
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            json_object_set_new(f, "terminated", json_integer(toe));
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
    if (req->stream_fn && req->stream_free) /* a stream never handed to the library */
        req->stream_free(req->stream_ctx);
    /* A large request (a batch, an export) leaves much freed memory behind:
     * give it back rather than let the resident size ratchet up. */
    bool large = req->body_len > (256 << 10) || req->resp_len > (1 << 20);
    free(req->resp_owned);
    oms_arena_free(req->arena);
    *con_cls = NULL;
    if (large)
        malloc_trim(0);
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

struct oms_server {
    struct MHD_Daemon *daemon;
    oms_app *app;
    unsigned port;
};

static void record_lifecycle(oms_app *app, const char *action, const char *detail)
{
    oms_audit_event ev = {.actor_sub = "oms", .action = action, .outcome = "success", .detail = detail};
    oms_error err;
    if (oms_audit_record(app->store, &ev, &err) != OMS_OK)
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit write failed: %s", err.msg);
}

/* Starts listening and serving on worker threads; returns at once. */
int oms_server_start(oms_app *app, oms_server **out, oms_error *err)
{
    struct sockaddr_storage ss;
    const char *listen = oms_config_str(app->cfg, "OMS_LISTEN");
    int rc = parse_listen(&ss, listen, err);
    if (rc)
        return rc;
    long workers = oms_config_int(app->cfg, "OMS_WORKERS");
    if (workers <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 2;
        /* A worker blocks while its database answers: against PostgreSQL
         * (another process) four per core keep the cores busy; SQLite works
         * in-process and has one writer, so one per core. */
        workers = oms_db_backend_of(app->store->db) == OMS_DB_PG ? 4 * cores : cores;
    }

    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, app,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(workers > 1 ? workers : 0), /* 1: the polling thread serves */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)oms_config_int(app->cfg, "OMS_MAX_CONNECTIONS"),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)oms_config_int(app->cfg, "OMS_CONNECTION_TIMEOUT"),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)OMS_CONN_MEMORY,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, app,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_END);
    if (!d)
        return oms_err_set(err, OMS_ECONFIG, "cannot listen on %s: %s", listen, strerror(errno));

    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char detail[160];
    snprintf(detail, sizeof detail, "{\"listen\":\"%s\",\"port\":%u,\"workers\":%ld,\"backend\":\"%s\"}",
             listen, di ? di->port : 0, workers, oms_db_backend_name(app->store->db));
    oms_audit_start(app); /* group commit for events outside a change transaction */
    record_lifecycle(app, "server.start", detail);
    oms_background_start(app);
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "oms serving on %s (port %u, %ld workers, %s)", listen,
                  di ? di->port : 0, workers, oms_db_backend_name(app->store->db));
    oms_server *srv = calloc(1, sizeof *srv);
    srv->daemon = d;
    srv->app = app;
    srv->port = di ? di->port : 0;
    *out = srv;
    return OMS_OK;
}

unsigned oms_server_port(const oms_server *srv) { return srv->port; }

/* Drain: /ready answers 503, no new connections, in-flight requests finish
 * (bounded), then the shutdown is audited. */
void oms_server_stop(oms_server *srv)
{
    oms_app *app = srv->app;
    struct MHD_Daemon *d = srv->daemon;
    atomic_store(&app->draining, true);
    MHD_quiesce_daemon(d);
    for (int i = 0; i < 100 && atomic_load(&app->inflight) > 0; i++)
        usleep(100 * 1000);
    MHD_stop_daemon(d);
    oms_background_stop(app);
    record_lifecycle(app, "server.stop", "{}");
    oms_audit_stop(app); /* flushes the writer and seals the tail */
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "stopped");
    free(srv);
}

int oms_server_run(oms_app *app, oms_error *err)
{
    /* Signals are taken synchronously by this thread; workers, started
     * after the mask is set, never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    oms_server *srv;
    int rc = oms_server_start(app, &srv, err);
    if (rc)
        return rc;
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
        oms_identity_reload(app, "sighup"); /* re-reads secrets and keys (src/auth/identity.h) */
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "draining after signal %d", sig);
    oms_server_stop(srv);
    return OMS_OK;
}
