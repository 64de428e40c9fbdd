#include "http/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "auth/acl_store.h"
#include "auth/authenticate.h"
#include "auth/jwks.h"
#include "governance/issue_check.h"
#include "http/authenticate.h"
#include "governance/overrides.h"
#include "http/app.h"
#include "http/client_addr.h"
#include "http/framing.h"
#include "http/ratelimit.h"
#include "ontology/ontology.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "util/encoding.h"
#include "util/time.h"

/* Durably records the request's refusal or failure, answered with `status`.
 * The route is the pattern when one matched, else the raw path cut to 256
 * bytes (never the query: it may hold secrets). `dj`, the detail, is
 * stolen. When the event cannot be recorded the client must not get
 * `status`: it gets a 503 (fail closed), the error returned here (OMS_EDB
 * when the database is unreachable, else OMS_EAUDIT) unless `status` is
 * itself a 503, and that 503 is what is recorded, late, once the store can
 * write again. Without `wait` the event is queued for the writer. */
static int audit_refusal_json_as(oms_request *req, const char *action, const char *outcome, int status, json_t *dj,
                                 bool wait)
{
    char route[260];
    if (req->route)
        snprintf(route, sizeof route, "%s", req->route->pattern);
    else
        snprintf(route, sizeof route, "%.*s", (int)(req->raw_path_len > 256 ? 256 : req->raw_path_len),
                 req->raw_path ? req->raw_path : "");
    if (!oms_utf8_valid(route, strlen(route)))
        snprintf(route, sizeof route, "(invalid utf-8)");
    char *detail = json_dumps(dj, JSON_COMPACT);
    json_decref(dj);
    oms_audit_event ev = {.action = action, .outcome = outcome, .http_status = status, .detail = detail};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    ev.route = route;
    if (!wait) { /* queued for the writer, not awaited */
        oms_audit_record_later(req->app->store, &ev);
        req->ctx.audited = true;
        free(detail);
        return OMS_OK;
    }
    oms_error err;
    int64_t t0 = oms_mono_ns();
    int rc = oms_audit_record(req->app->store, &ev, &err);
    oms_metrics_audit_write((double)(oms_mono_ns() - t0) / 1e9, rc == OMS_OK);
    req->ctx.audited = rc == OMS_OK;
    if (rc) {
        oms_log_write(OMS_LOG_ERROR, req->request_id, NULL, "audit write failed: %s", err.msg);
        oms_audit_record_unrecorded(req->app->store, &ev, oms_err_http_status((oms_err)rc),
                                    oms_err_problem_code((oms_err)rc));
        req->ctx.audited = true; /* the answer's event is queued: nothing more to record */
    }
    free(detail);
    return rc;
}

static int audit_refusal(oms_request *req, const char *action, const char *outcome, int status,
                         const char *reason)
{
    return audit_refusal_json_as(req, action, outcome, status, json_pack("{s:s}", "reason", reason), true);
}

static int audit_refusal_json(oms_request *req, const char *action, const char *outcome, int status, json_t *dj)
{
    return audit_refusal_json_as(req, action, outcome, status, dj, true);
}

static int audit_refusal_as(oms_request *req, const char *action, const char *outcome, int status,
                            const char *reason, bool wait)
{
    return audit_refusal_json_as(req, action, outcome, status, json_pack("{s:s}", "reason", reason), wait);
}

static const char *unrecorded_detail(int rc)
{
    return rc == OMS_EDB ? "the database is unavailable: this request cannot be recorded"
                         : "the audit store cannot record this request";
}

/* Refuses the request: audit first, then the problem document. When the
 * refusal cannot be recorded the answer is a 503 naming the cause: the
 * refusal itself when it already is a 503 (the database could not be read),
 * else the reason the audit store cannot write. */
static bool settle_late(oms_request *req);

static void refuse(oms_request *req, oms_err code, const char *detail, const char *action, json_t *extra)
{
    if (settle_late(req)) { /* a deferred check refused first */
        json_decref(extra);
        return;
    }
    int status = oms_err_http_status(code);
    int rc = action ? audit_refusal(req, action, "denied", status, oms_err_problem_code(code)) : OMS_OK;
    if (rc != OMS_OK && status != oms_err_http_status((oms_err)rc)) {
        json_decref(extra);
        oms_resp_problem(req, (oms_err)rc, unrecorded_detail(rc), NULL);
        return;
    }
    oms_resp_problem(req, code, detail, extra);
}

/* 429 (SPEC §6.5): the RateLimit fields with Retry-After, and a problem
 * document naming the class. The first refusals of a key's window are
 * recorded one by one, durably, like every refusal; the rest are counted
 * into the window's aggregated event (src/http/ratelimit_audit.c). An
 * address whose failures are used up also loses its connection: each
 * further attempt costs it a new one. */
static void refuse_throttled(oms_request *req, const oms_rl_decision *d)
{
    const char *cls = oms_rl_class_name(d->cls);
    json_int_t retry = (json_int_t)d->res.retry_after_s;
    char detail[160], key[200];
    if (d->cls == OMS_RL_AUTH_FAILURE)
        snprintf(detail, sizeof detail, "too many failed requests from this address: retry after %lld s",
                 (long long)retry);
    else
        snprintf(detail, sizeof detail, "too many %s requests: retry after %lld s", cls, (long long)retry);
    oms_metrics_ratelimited((int)d->cls);
    oms_ratelimit_fields(req, d);
    if (d->cls == OMS_RL_AUTH_FAILURE)
        oms_resp_header(req, "Connection", "close");
    if (oms_ratelimit_refusal(req, d)) {
        oms_ratelimit_key_text(key, sizeof key, req, d);
        json_t *dj = json_pack("{s:s,s:s,s:s}", "reason", "rate_limited", "class", cls, "key", key);
        if (audit_refusal_json(req, "ratelimit.refused", "denied", 429, dj) != OMS_OK) {
            oms_resp_problem(req, OMS_EAUDIT, "the audit store cannot record this request", NULL);
            return;
        }
    }
    oms_resp_problem(req, OMS_ERATE, detail,
                     json_pack("{s:s,s:I,s:[s]}", "class", cls, "retry_after", retry, "violated-policies", cls));
}

/* A refusal of anonymous traffic (a 401, or a request refused before
 * authentication) is paid for with one unit of the address's
 * authentication-failure class, so that it cannot grow the audit log
 * without bound (SPEC §6.5): within the class it is recorded as usual;
 * once the class is used up it is a 429 like any other. */
static void refuse_anonymous(oms_request *req, oms_rl_decision *d, oms_err code, const char *detail,
                             const char *action)
{
    if (!oms_ratelimit_anonymous_failure(req, d)) {
        refuse_throttled(req, d);
        return;
    }
    oms_ratelimit_fields(req, d);
    refuse(req, code, detail, action, NULL);
}

/* A request refused before authentication (a limit, the raw path) is
 * anonymous unless it carries a valid token: then its principal pays, in
 * its read or write class, and the event names it. */
static void refuse_early(oms_request *req, oms_rl_decision *d, oms_err code, const char *detail)
{
    oms_error err;
    if (oms_req_header(req, "Authorization") && oms_authenticate(req, &err) == OMS_OK) {
        if (!oms_ratelimit_admit(req, d)) {
            refuse_throttled(req, d);
            return;
        }
        oms_ratelimit_fields(req, d);
        refuse(req, code, detail, "request.rejected", NULL);
        return;
    }
    refuse_anonymous(req, d, code, detail, "request.rejected");
}

static bool header_sizes_ok(oms_request *req);

static bool has_body(oms_request *req)
{
    const char *cl = oms_req_header(req, "Content-Length");
    const char *te = oms_req_header(req, "Transfer-Encoding");
    return (cl && strtoull(cl, NULL, 10) > 0) || te;
}

static bool json_content_type(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* RBAC refined by ACL policies (src/auth/acl_store.c): a matching deny
 * policy wins, an allow policy may grant what the roles lack. When the
 * policies cannot be read the request is refused (fail closed). One
 * decision for the route's permission on its {branch}, and the same for a
 * handler deciding on a branch the route does not name (a proposal's
 * target, a diff's ends). */
/* The route-style 403 for `perm` on `branch` refused by `denied_by` (or by
 * the roles alone), audited as authz.denied. */
static void refuse_denied(oms_request *req, oms_perm perm, const char *branch, const char *denied_by)
{
    oms_metrics_denial();
    char detail[320];
    if (denied_by && branch)
        snprintf(detail, sizeof detail, "the ACL policy %s denies the permission %s on branch %.100s", denied_by,
                 oms_perm_name(perm), branch);
    else if (denied_by)
        snprintf(detail, sizeof detail, "the ACL policy %s denies the permission %s here", denied_by,
                 oms_perm_name(perm));
    else
        snprintf(detail, sizeof detail, "this request needs the permission %s", oms_perm_name(perm));
    json_t *extra = json_pack("{s:s}", "missing_permission", oms_perm_name(perm));
    if (denied_by)
        json_object_set_new(extra, "denied_by", json_string(denied_by));
    refuse(req, OMS_EFORBIDDEN, detail, "authz.denied", extra);
}

bool oms_authorize_on(oms_request *req, oms_perm perm, const char *branch)
{
    oms_acl_verdict v;
    oms_error err;
    if (oms_acl_check_route(oms_req_ctx(req), perm, branch, &v, &err) != OMS_OK) {
        if (err.code == OMS_EDB)
            oms_db_conn_reset(req->app->store->db);
        /* the database's own unavailability, when that is the cause */
        refuse(req, err.code == OMS_EDB ? OMS_EDB : OMS_EUNAVAIL, "the ACL policies cannot be read",
               "authz.unavailable", NULL);
        return false;
    }
    if (v.allowed)
        return true;
    refuse_denied(req, perm, branch, v.denied_by);
    return false;
}

/* The answer of a settle that did not allow (auth/acl_store.h): a refusal
 * as the check that was deferred makes it without deferral (the route's:
 * authz.denied; a handler's: its 403, which the pipeline audits under the
 * route's action), or the 503 of unreadable policies (authz.unavailable).
 * False when the failure is not the settle's. */
static bool answer_settle(oms_request *req, int rc, const oms_error *err)
{
    oms_ctx *ctx = oms_req_ctx(req);
    int denied = ctx->acl_deferred.denied;
    if (rc == OMS_EFORBIDDEN && denied > 0) {
        if (!ctx->acl_deferred.pending[denied - 1].route_style) {
            oms_resp_error(req, rc, err);
            return true;
        }
        oms_ctx_problem_extra(ctx, NULL);
        refuse_denied(req, (oms_perm)ctx->acl_deferred.pending[denied - 1].perm,
                      ctx->acl_deferred.pending[denied - 1].branch, ctx->acl_deferred.denied_by);
        return true;
    }
    if (!ctx->acl_deferred.unreadable)
        return false;
    if (rc == OMS_EDB)
        oms_db_conn_reset(req->app->store->db);
    oms_ctx_problem_extra(ctx, NULL);
    refuse(req, rc == OMS_EDB ? OMS_EDB : OMS_EUNAVAIL, "the ACL policies cannot be read", "authz.unavailable", NULL);
    return true;
}

/* Checks a route left to its change transaction that are still undecided
 * when the request is answered another way (a refusal before the handler,
 * a bad body, a change that failed before it could decide them): decided
 * now, at a version read now, so that their refusal comes first, as it
 * does without deferral. True when that answered the request. A settle
 * that already failed to read the policies is not tried again here (its
 * answer is on its way). */
static bool settle_late(oms_request *req)
{
    oms_ctx *ctx = oms_req_ctx(req);
    if (!oms_acl_deferring(ctx) || ctx->acl_deferred.unreadable)
        return false;
    oms_dbconn *c;
    oms_error err;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_acl_settle(c, ctx, NULL, &err);
    else
        ctx->acl_deferred.unreadable = true;
    return rc != OMS_OK && answer_settle(req, rc, &err);
}

int oms_resp_change_failure(oms_request *req, int rc, const oms_error *err)
{
    if (answer_settle(req, rc, err))
        return OMS_OK;
    if (rc == OMS_EDB)
        oms_db_conn_reset(req->app->store->db);
    return oms_resp_error(req, rc, err);
}

void oms_refuse_unreadable(oms_request *req, const char *detail)
{
    oms_metrics_denial();
    refuse(req, OMS_EFORBIDDEN, detail, "authz.denied",
           json_pack("{s:s}", "missing_permission", oms_perm_name(OMS_PERM_SCHEMA_READ)));
}

/* SPEC §5: unknown query parameters are refused, as unknown body fields
 * are; the route's declared names are its OpenAPI metadata. On a refusal
 * *bad gets the first undeclared name (raw, cut to 64 bytes). */
static bool query_declared(const char *q, const char *allowed, char bad[65])
{
    while (q && *q) {
        size_t len = strcspn(q, "&"), klen = strcspn(q, "=&");
        bool ok = klen == 0;
        for (const char *a = allowed; !ok && a && *a;) {
            size_t n = strcspn(a, " ");
            ok = n == klen && strncmp(a, q, n) == 0;
            a += n;
            a += strspn(a, " ");
        }
        if (!ok) {
            size_t n = klen > 64 ? 64 : klen;
            for (size_t i = 0; i < n; i++)
                bad[i] = q[i] >= 0x20 && q[i] < 0x7f ? q[i] : '?';
            bad[n] = '\0';
            return false;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return true;
}

static void authorize(oms_request *req)
{
    const oms_route *r = req->route;
    if (r->perm == OMS_PERM_AUTHENTICATED)
        return;
    oms_req_ctx(req)->acl_deferred.on = r->authorize_in_change;
    oms_authorize_on(req, r->perm, oms_req_ctx(req)->branch);
}

bool oms_pipeline_head(oms_request *req)
{
    oms_error err;
    oms_err_clear(&err);
    oms_rl_decision rl = {.decided = false};

    /* Who is asking: the peer, or the client a trusted proxy names. */
    oms_client_addr_resolve(req);

    /* 0. Framing: one reading of the request's extent and head, or the
     * connection is closed (what follows may be a smuggled request). Its
     * headers are not believed, its token not read: the address pays. */
    if (oms_framing_check(req, &err) != OMS_OK) {
        oms_resp_header(req, "Connection", "close");
        refuse_anonymous(req, &rl, err.code, err.msg, "request.rejected");
        return true;
    }

    /* An address whose authentication failures are used up is refused
     * whatever it sends, a valid token included, until it recovers. */
    if (oms_ratelimit_address_throttled(req, &rl)) {
        refuse_throttled(req, &rl);
        return true;
    }

    /* 1. Input limits that need no routing. */
    if (strlen(req->raw_target) > OMS_MAX_URI) {
        refuse_early(req, &rl, OMS_EURI, "the request target is longer than 8 KiB");
        return true;
    }
    if (!header_sizes_ok(req)) {
        refuse_early(req, &rl, OMS_EHEADERS, "the request headers are larger than 16 KiB");
        return true;
    }
    const char *cl = oms_req_header(req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > OMS_MAX_BODY) {
        refuse_early(req, &rl, OMS_ETOOBIG, "the request body is larger than 1 MiB");
        return true;
    }

    /* 2. The raw path, before routing and authentication. */
    if (oms_path_parse(&req->path, req->raw_path, req->raw_path_len, req->arena, &err) != OMS_OK) {
        refuse_early(req, &rl, OMS_EBADPATH, err.msg);
        return true;
    }

    /* 3. Route lookup on raw segments. */
    char allow[128];
    oms_route_match m = oms_routes_match(req->app->routes, req, allow, sizeof allow, &err);
    bool is_public = m == OMS_ROUTE_FOUND && req->route->perm == OMS_PERM_PUBLIC;
    if (m == OMS_ROUTE_WRONG_METHOD && req->path.nseg == 1 &&
        (strcmp(req->path.seg[0], "health") == 0 || strcmp(req->path.seg[0], "ready") == 0))
        is_public = true;

    /* 4. Authentication, for everything but the exact public paths. */
    if (!is_public) {
        int rc = oms_authenticate(req, &err);
        if (rc != OMS_OK) {
            oms_metrics_auth_failure(rc == OMS_ENOAUTH    ? OMS_AUTHFAIL_MISSING
                                     : rc == OMS_EEXPIRED ? OMS_AUTHFAIL_EXPIRED
                                                          : OMS_AUTHFAIL_INVALID);
            refuse_anonymous(req, &rl, (oms_err)rc, oms_err_title((oms_err)rc), "auth.failed");
            return true;
        }
    }

    /* 4b. Rate limit (SPEC §6.5): the principal's read or write class (on
     * a public route, the address's), before anything costs more. */
    if (!oms_ratelimit_admit(req, &rl)) {
        refuse_throttled(req, &rl);
        return true;
    }
    oms_ratelimit_fields(req, &rl);
    if (m == OMS_ROUTE_NONE) {
        refuse(req, OMS_ENOTFOUND, "no such route", "request.rejected", NULL);
        return true;
    }
    if (m == OMS_ROUTE_WRONG_METHOD) {
        oms_resp_header(req, "Allow", allow);
        refuse(req, OMS_EMETHOD, "this route does not accept that method", "request.rejected", NULL);
        return true;
    }
    if (err.code != OMS_OK) { /* a path parameter failed its grammar */
        refuse(req, (oms_err)err.code, err.msg, "request.rejected", NULL);
        return true;
    }

    /* 5. Authorization: the route's permission. */
    if (!is_public) {
        authorize(req);
        if (req->responded)
            return true;
    }

    /* 5b. Every query parameter must be one the route declares. */
    if (req->raw_query && req->app->route_query) {
        char bad[65];
        if (!query_declared(req->raw_query, req->app->route_query(req->route->method, req->route->pattern), bad)) {
            refuse(req, OMS_EINVAL, oms_arena_printf(req->arena, "unknown query parameter %s", bad),
                   "request.rejected", json_pack("{s:s}", "parameter", bad));
            return true;
        }
    }

    /* 6. A body must be JSON. */
    if (has_body(req) && !json_content_type(oms_req_header(req, "Content-Type"))) {
        refuse(req, OMS_EMEDIA, "request bodies must be application/json", "request.rejected", NULL);
        return true;
    }
    return false;
}

/* What an attempt on the event loop may have set, cleared when it gives
 * up, so the handler's pipeline starts from what the request carried. */
static bool not_inline(oms_request *req)
{
    req->authenticated = false;
    memset(&req->principal, 0, sizeof req->principal);
    req->route = NULL;
    req->ctx.branch_head[0] = '\0';
    req->ctx.issue_setting_branch = NULL;
    oms_jwks_thread_may_fetch(true);
    return false;
}

static bool admit_inline(oms_request *req)
{
    oms_rl_decision rl = {.decided = false};
    if (!oms_ratelimit_admit(req, &rl))
        return false; /* a refusal takes nothing: the handler decides again, and records it */
    oms_ratelimit_fields(req, &rl);
    return true;
}

/* Steps 0-4 of oms_pipeline_head for a read the loop may answer, where any
 * refusal gives up: false having recorded nothing. */
static bool inline_prelude(oms_request *req)
{
    if (strcmp(req->method, "GET") != 0 || has_body(req) || req->raw_query)
        return false;
    oms_error err;
    oms_err_clear(&err);
    oms_rl_decision rl = {.decided = false};
    oms_client_addr_resolve(req);
    if (oms_framing_check(req, &err) != OMS_OK || oms_ratelimit_address_throttled(req, &rl) ||
        strlen(req->raw_target) > OMS_MAX_URI || !header_sizes_ok(req) ||
        oms_path_parse(&req->path, req->raw_path, req->raw_path_len, req->arena, &err) != OMS_OK)
        return not_inline(req);
    char allow[128];
    if (oms_routes_match(req->app->routes, req, allow, sizeof allow, &err) != OMS_ROUTE_FOUND ||
        err.code != OMS_OK || !req->route->answer_inline)
        return not_inline(req);
    /* Step 4: a token this thread verified before costs a lookup; an
     * unknown key set's refetch is left to the handler. */
    oms_jwks_thread_may_fetch(false);
    if (oms_authenticate(req, &err) != OMS_OK)
        return not_inline(req);
    oms_jwks_thread_may_fetch(true);
    return true;
}

/* Step 5's decision made, the handler's part; the rate limit is taken once
 * it has its answer. */
static bool inline_answer(oms_request *req, bool decided, const oms_acl_verdict *v)
{
    if (!decided || !v->allowed || !req->route->answer_inline(req, admit_inline))
        return not_inline(req);
    oms_metrics_inline_answer();
    return true;
}

bool oms_pipeline_try_inline(oms_request *req)
{
    if (!oms_db_reads_in_process(req->app->store->db) || !inline_prelude(req))
        return false;
    /* Step 5 without waiting: the freshness read on this thread's
     * connection, bounded so a locked database never holds the loop. */
    oms_ctx *ctx = oms_req_ctx(req);
    oms_dbconn *c;
    oms_error err;
    oms_acl_verdict v;
    if (oms_db_conn(req->app->store->db, &c, &err) != OMS_OK)
        return not_inline(req);
    oms_db_deadline(c, 1);
    bool decided = oms_acl_check_now(ctx, req->route->perm, ctx->branch, &v);
    return inline_answer(req, decided, &v);
}

const char *oms_pipeline_may_park(oms_request *req)
{
    if (oms_db_reads_in_process(req->app->store->db) || !inline_prelude(req))
        return NULL;
    const char *branch = oms_req_ctx(req)->branch;
    if (!branch) {
        not_inline(req);
        return NULL;
    }
    return branch;
}

bool oms_pipeline_answer_parked(oms_request *req, const oms_fresh_parked *read)
{
    oms_ctx *ctx = oms_req_ctx(req);
    oms_acl_verdict v;
    bool decided = oms_acl_check_read(ctx, req->route->perm, ctx->branch, read, &v);
    return inline_answer(req, decided, &v);
}

void oms_pipeline_unpark(oms_request *req) { not_inline(req); }

void oms_pipeline_body(oms_request *req, const char *data, size_t len)
{
    if (req->body_too_large)
        return;
    if (req->body_len + len > OMS_MAX_BODY) {
        req->body_too_large = true;
        return;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *nb = oms_arena_alloc(req->arena, cap);
        if (req->body_len)
            memcpy(nb, req->body, req->body_len);
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
}

/* Nesting depth outside strings; jansson's own limit is far higher. */
static bool json_depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > OMS_MAX_JSON_DEPTH)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

static void json_decref_cb(void *p) { json_decref(p); }

static void run_body_and_handler(oms_request *req);

/* Resource routes audit under the kind's own name (object_type.create), even
 * when the pipeline refuses the change before the handler runs. */
static void derive_audit_action(oms_request *req)
{
    const char *a = req->route ? req->route->audit_action : NULL;
    oms_kind k;
    if (a && strncmp(a, "resource.", 9) == 0 && req->nparams >= 2 && oms_kind_parse(&k, req->params[1]) == 0)
        req->ctx.audit_action = oms_arena_printf(req->arena, "%s.%s", oms_kind_noun(k), a + 9);
}

/* A change route's failure is audited too (SPEC §9: every change, success
 * or failure); successes are audited inside the change's own transaction. */
void oms_pipeline_finish(oms_request *req)
{
    derive_audit_action(req);
    run_body_and_handler(req);
    if (oms_acl_deferring(&req->ctx) && req->status < 400) {
        /* a success whose checks were never decided: a handler bug, and
         * an answer that must not stand (nothing was committed: a change
         * transaction settles before it commits) */
        oms_log_write(OMS_LOG_ERROR, req->request_id, NULL, "the route's checks were left undecided");
        oms_resp_problem(req, OMS_EINTERNAL, "the request's authorization was not decided", NULL);
    } else {
        settle_late(req); /* a failure that left them undecided: a refusal of theirs comes first */
    }
    const char *action = req->ctx.audit_action ? req->ctx.audit_action : req->route ? req->route->audit_action : NULL;
    if (action && req->status >= 400 && !req->ctx.audited) {
        /* A change that failed because the database cannot take writes
         * now would fail the same way recording its event: with one write
         * lock for the whole database (SQLite) and a timeout waiting for
         * it, or a full disk. The event is queued without waiting (written
         * as soon as the database takes writes) and the client keeps the
         * answer that names the cause. */
        const char *pc = req->problem_code ? req->problem_code : "";
        bool lock_wait = (strcmp(pc, "database_timeout") == 0 && oms_db_single_writer(req->app->store->db)) ||
                         strcmp(pc, "storage_full") == 0;
        /* a refusal (401, 403) is recorded as denied, anything else as a
         * failure, with the status the client received */
        const char *outcome = req->status == 401 || req->status == 403 ? "denied" : "failure";
        int rc = audit_refusal_as(req, action, outcome, req->status,
                                  req->problem_code ? req->problem_code : "error", !lock_wait);
        if (rc != OMS_OK && req->status != oms_err_http_status((oms_err)rc))
            oms_resp_problem(req, (oms_err)rc, unrecorded_detail(rc), NULL); /* fail closed */
    }
}

/* A request the server cannot take now (it waited for a handler thread past
 * its deadline, the queue was full, or the server is draining): 503 with
 * Retry-After, recorded like every refusal. A change whose route is known
 * (the head phase ran) is recorded under its own action as a failure. */
void oms_pipeline_refuse_unavailable(oms_request *req, const char *problem_code, const char *detail,
                                     const char *retry_after)
{
    const char *action = "request.rejected", *outcome = "denied";
    if (req->route && req->route->audit_action) {
        derive_audit_action(req);
        action = req->ctx.audit_action ? req->ctx.audit_action : req->route->audit_action;
        outcome = "failure";
    }
    if (audit_refusal(req, action, outcome, 503, problem_code) != OMS_OK)
        oms_resp_problem(req, OMS_EAUDIT, "the audit store cannot record this request", NULL);
    else
        oms_resp_problem_as(req, OMS_EUNAVAIL, problem_code, detail, NULL);
    oms_resp_header(req, "Retry-After", retry_after);
}

static void run_body_and_handler(oms_request *req)
{
    if (req->body_too_large) {
        refuse(req, OMS_ETOOBIG, "the request body is larger than 1 MiB", "request.rejected", NULL);
        return;
    }
    if (req->body_len) {
        if (!oms_utf8_valid(req->body, req->body_len)) {
            refuse(req, OMS_EINVAL, "the request body is not valid UTF-8", NULL, NULL);
            return;
        }
        if (!json_depth_ok(req->body, req->body_len)) {
            refuse(req, OMS_EINVAL, "JSON nesting deeper than 64", NULL, NULL);
            return;
        }
        json_error_t jerr;
        req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!req->json) {
            char detail[256];
            snprintf(detail, sizeof detail, "invalid JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
            refuse(req, OMS_EINVAL, detail, NULL, NULL);
            return;
        }
        oms_arena_on_cleanup(req->arena, json_decref_cb, req->json);
    }
    /* Governance of changes (src/http/governance.c). */
    if (req->route->change && !oms_pipeline_governance(req))
        return;
    int rc = req->route->handler(req);
    if (!req->responded)
        oms_resp_problem(req, rc ? (oms_err)rc : OMS_EINTERNAL, NULL, NULL);
    if (req->ctx.override.needed && !req->ctx.override.used && req->status < 300)
        oms_log_write(OMS_LOG_ERROR, req->request_id, NULL, "a change relied on override %s without using it",
                      req->ctx.override.id);
}

/* Sum of header names and values; MHD's own buffer limit stops anything far
 * larger before we are called. */
typedef struct {
    size_t total;
} header_sum;

#include <microhttpd.h>

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    header_sum *s = cls;
    s->total += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static bool header_sizes_ok(oms_request *req)
{
    header_sum s = {0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, sum_header, &s);
    return s.total <= OMS_MAX_HEADERS;
}
