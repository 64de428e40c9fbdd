/* One request as it travels the pipeline (ENGINEERING.md "The shape of the
 * system"). Everything hangs off the per-request arena. */
#ifndef OMS_REQUEST_H
#define OMS_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/principal.h"
#include "core/context.h"
#include "http/path.h"
#include "util/arena.h"
#include "util/error.h"

struct MHD_Connection;
typedef struct oms_app oms_app;
typedef struct oms_route oms_route;

#define OMS_MAX_BODY (1024 * 1024)
#define OMS_MAX_HEADERS (16 * 1024)
/* a body up to this size is read with its head (src/http/server.c) */
#define OMS_SMALL_BODY 4096
#define OMS_MAX_JSON_DEPTH 64
#define OMS_MAX_RESP_HEADERS 16

typedef struct {
    const char *name, *value;
} oms_header;

typedef struct oms_request {
    /* What domain code sees of this request (src/core/context.h): the
     * mutable parts (override state, audit action, branch head) live only
     * there; oms_req_ctx refreshes the rest. */
    oms_ctx ctx;
    oms_arena *arena;
    oms_app *app;
    struct MHD_Connection *conn;
    int64_t start_ns;
    int64_t handler_cpu_ns;    /* CPU its handler-thread jobs used (not an inline answer's) */

    /* What arrived. */
    const char *method;
    char *raw_target;          /* as received, query included */
    const char *raw_path;      /* raw_target up to '?' */
    size_t raw_path_len;
    const char *raw_query;     /* after '?', or NULL */
    char request_id[65];
    char client_addr[64];      /* the client (src/http/client_addr.c), as text */
    int client_family;         /* ... binary: 4 or 6, 0 when unknown */
    unsigned char client_ip[16];
    const char *user_agent;
    oms_path path;
    /* The request head where libmicrohttpd parsed it, in place, in its
     * connection buffer (valid in the head phase only): framing.c walks it.
     * target_len is the target's length when it arrived, before the library
     * cut the query off. */
    struct {
        const char *method, *target, *url, *version;
        size_t target_len;
    } wire;

    /* Routing. */
    const oms_route *route;
    const char *params[OMS_MAX_SEGMENTS]; /* decoded path parameters, in pattern order */
    size_t nparams;

    /* Identity. */
    bool authenticated;
    oms_principal principal;

    /* Body. */
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    json_t *json;              /* parsed body, or NULL */

    /* Pipeline state. */
    bool started, responded;

    /* Response. */
    int status;
    const char *problem_code; /* set with a problem document */
    char *resp_body;
    size_t resp_len;
    char *resp_owned; /* malloc'd body handed to the HTTP library without a copy */
    const char *resp_type;
    oms_header resp_headers[OMS_MAX_RESP_HEADERS];
    size_t nresp_headers;
    /* A streamed body (oms_resp_stream), owned until the HTTP library takes it. */
    long (*stream_fn)(void *ctx, char *buf, size_t max);
    void *stream_ctx;
    void (*stream_free)(void *ctx);
} oms_request;

/* The request's context for domain calls, its borrowed values refreshed
 * from the request (src/http/request.c). */
oms_ctx *oms_req_ctx(oms_request *r);

/* Request accessors (implemented over libmicrohttpd in request.c). */
const char *oms_req_header(oms_request *r, const char *name);
/* The query argument, percent-decoded once (NULL when absent or malformed). */
const char *oms_req_query(oms_request *r, const char *name);

/* The request's issue references (SPEC §6.3): X-Issue-ID, X-Issue-IDs,
 * the body's issue_id / issue_ids, and keys in `message`, unique, in order
 * of appearance; invalid explicit ones are appended to `invalid` when it is
 * non-NULL (src/http/governance.c over oms_issue_refs_from). On change
 * routes the pipeline has already put them in ctx->issue_keys. */
json_t *oms_issue_refs_collect(oms_request *req, const json_t *body, const char *message, json_t *invalid);

/* Responses. Each replaces any earlier one. */
void oms_resp_header(oms_request *r, const char *name, const char *value);
/* Serialises `body` (stolen) with status. */
int oms_resp_json(oms_request *r, int status, json_t *body);
int oms_resp_text(oms_request *r, int status, const char *content_type, const char *text, size_t len);
/* Like oms_resp_text for a large malloc'd body, which it takes over. */
int oms_resp_take(oms_request *r, int status, const char *content_type, char *body, size_t len);
/* A body produced while it is sent (chunked): `fn` fills buf with up to max
 * bytes and returns the count, 0 at the end, or -1 on an error (the stream
 * is then cut, which the client sees as a truncated chunked body).
 * `free_fn(ctx)` runs once, when the response is done or replaced. */
int oms_resp_stream(oms_request *r, int status, const char *content_type, long (*fn)(void *ctx, char *buf, size_t max),
                    void *ctx, void (*free_fn)(void *ctx));
/* Seconds a 503 problem asks the client to wait (Retry-After), unless the
 * handler set its own. */
#define OMS_RETRY_AFTER_UNAVAILABLE "5"
/* RFC 9457 problem document for `code`, with `detail`; `extra` (stolen, may be
 * NULL) adds members such as the missing permission. A 503 carries
 * Retry-After. */
int oms_resp_problem(oms_request *r, oms_err code, const char *detail, json_t *extra);
/* The same with a more precise problem `code` than the error's own
 * (e.g. OMS_ECONFLICT as "integrity_violation"); `problem_code` is static. */
int oms_resp_problem_as(oms_request *r, oms_err code, const char *problem_code, const char *detail,
                        json_t *extra);
/* The one renderer of a domain failure: `rc` (or err->code when set), the
 * error's precise problem code and message, and the members the context
 * collected (ctx.problem_extra, taken). Returns the error code. */
int oms_resp_error(oms_request *r, int rc, const oms_error *err);

#endif
