/* The lock API (SPEC §7, docs/locks.md): parse the request, call the lock
 * domain (src/locks/lifecycle.c), render the lock. */
#include "api/locks.h"

#include <stdlib.h>
#include <string.h>

#include "audit/alerts.h"
#include "auth/acl_store.h"
#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "http/path.h"
#include "locks/lifecycle.h"
#include "locks/one_shot.h"
#include "ontology/ontology.h"
#include "store/locks_sql.h"
#include "store/store.h"
#include "txn/change.h"

static int bad(oms_request *req, const char *detail) { return oms_resp_problem(req, OMS_EINVAL, detail, NULL); }

static int fail(oms_request *req, int rc, const oms_error *err)
{
    if (rc == OMS_EDB)
        oms_db_conn_reset(req->app->store->db);
    return oms_resp_error(req, rc, err);
}

/* ACL policies refine permissions per branch (SPEC §6.2). The route's own
 * check had no branch context: a lock's branch is in the body or the row. */
static int acl_decide(oms_request *req, oms_perm perm, const char *branch, json_t *extra, oms_error *err)
{
    oms_acl_verdict v;
    oms_error e;
    if (oms_acl_check(oms_req_ctx(req), perm, branch, &v, &e) != OMS_OK) {
        json_decref(extra);
        return oms_err_set(err, OMS_EUNAVAIL, "the ACL policies cannot be read");
    }
    if (v.allowed) {
        json_decref(extra);
        return OMS_OK;
    }
    return oms_acl_refusal(oms_req_ctx(req), perm, branch, &v, extra, err);
}

static int lock_admin(oms_ctx *ctx, void *arg, const char *branch, json_t *extra, oms_error *err)
{
    (void)ctx;
    return acl_decide(arg, OMS_PERM_LOCK_ADMIN, branch, extra, err);
}

/* ---- the change step: one lock operation in oms_change_run's transaction ---- */

typedef enum { OP_ACQUIRE, OP_HEARTBEAT, OP_EXTEND, OP_RELEASE } lock_op_kind;

typedef struct {
    lock_op_kind kind;
    oms_request *req;
    const char *id, *reason;
    int64_t ttl_s;
    const json_t *body;
    json_t *keys;
    const json_t *invalid;
    oms_lock_change chg;
} lock_op;

/* What the step reports once the operation in `chg` is made (its detail
 * handed over). */
static void report(lock_op *op, oms_change_out *out)
{
    oms_lock_change *chg = &op->chg;
    out->resource_kind = "locks";
    out->branch = chg->lock.branch;
    out->resource_id = chg->lock.id;
    out->status = chg->status;
    out->detail = chg->detail;
    out->unaudited = chg->unaudited;
    chg->detail = NULL;
}

static int lock_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    lock_op *op = arg;
    oms_lock_change *chg = &op->chg;
    oms_lock parsed = chg->lock; /* a retry starts from what was asked */
    json_decref(chg->alert_detail);
    memset(chg, 0, sizeof *chg);
    chg->lock = parsed;
    int rc;
    switch (op->kind) {
    case OP_ACQUIRE:
        rc = oms_lock_acquire_tx(c, ctx, op->ttl_s, lock_admin, op->req, chg, err);
        break;
    case OP_HEARTBEAT:
    case OP_EXTEND:
        rc = oms_lock_touch_tx(c, ctx, op->id, op->kind == OP_EXTEND, op->ttl_s, op->body, chg, err);
        break;
    default:
        rc = oms_lock_release_tx(c, ctx, op->id, op->reason, op->keys, op->invalid, lock_admin, op->req, chg, err);
        break;
    }
    if (rc) {
        json_decref(chg->detail);
        json_decref(chg->alert_detail);
        chg->detail = chg->alert_detail = NULL;
        return rc;
    }
    report(op, out);
    return OMS_OK;
}

/* ---- the same in one round trip (PostgreSQL, locks/one_shot.h) ---- */

static bool one_shot_predict(oms_ctx *ctx, void *arg, oms_change_out *out)
{
    lock_op *op = arg;
    if (op->kind == OP_ACQUIRE)
        oms_lock_acquire_predict(op->ttl_s, &op->chg);
    else if (op->kind != OP_RELEASE || !oms_lock_release_predict(ctx, op->id, op->reason, &op->chg))
        return false;
    report(op, out);
    return true;
}

static int one_shot_send(oms_dbconn *c, oms_ctx *ctx, void *arg, const oms_change_tail *tail, oms_dbres **rows,
                         oms_error *err)
{
    (void)ctx;
    lock_op *op = arg;
    return op->kind == OP_ACQUIRE
               ? oms_lock_acquire_send(c, &op->chg, op->ttl_s, tail->acl_version, tail->audit, tail->event, rows, err)
               : oms_lock_release_send(c, &op->chg, tail->acl_version, tail->audit, tail->event, rows, err);
}

static bool one_shot_made(oms_ctx *ctx, void *arg, const oms_dbres *rows)
{
    lock_op *op = arg;
    return op->kind == OP_ACQUIRE ? oms_lock_acquire_made(rows, op->ttl_s, &op->chg)
                                  : oms_lock_release_made(ctx, rows, &op->chg);
}

static const oms_change_one_shot k_one_shot = {one_shot_predict, one_shot_send, one_shot_made};

/* After the change's event: the security alert the change raised (a forced
 * release), stored with its alert.raised event on the same resource. */
static int lock_alert(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    lock_op *op = arg;
    if (!op->chg.alert_rule)
        return OMS_OK;
    oms_audit_event like = {.outcome = "success",
                            .http_status = out->status ? out->status : 200,
                            .resource_kind = out->resource_kind,
                            .resource_branch = out->branch,
                            .resource_id = out->resource_id};
    oms_audit_from_ctx(&like, ctx);
    char *keys = ctx->issue_keys && json_array_size(ctx->issue_keys) ? json_dumps(ctx->issue_keys, JSON_COMPACT)
                                                                      : NULL;
    like.issue_keys = keys;
    int rc = oms_alert_raise_audited(c, ctx, op->chg.alert_rule, op->chg.alert_severity, op->chg.alert_detail, &like,
                                     err);
    free(keys);
    return rc;
}

/* Runs the operation; `action` NULL: the route's (or the one the step names). */
static int run(oms_request *req, lock_op *op, const char *action)
{
    op->req = req;
    /* One writer for the whole file (SQLite): a lock change waits for the
     * writer's turn anyway, so it queues in the writes' group and shares
     * the next COMMIT (txn/group_commit.h) instead of a turn and a log
     * flush of its own. On PostgreSQL it commits in a transaction of its
     * own, in parallel with the branch's writes, as before. */
    oms_change_spec spec = {.action = action, .step = lock_step, .arg = op, .after_event = lock_alert,
                            .groupable = oms_db_single_writer(oms_req_ctx(req)->store->db),
                            .one_shot = op->kind == OP_ACQUIRE || op->kind == OP_RELEASE ? &k_one_shot : NULL};
    oms_change_out out;
    oms_error err;
    int rc = oms_change_run(oms_req_ctx(req), &spec, &out, &err);
    json_decref(op->chg.alert_detail);
    op->chg.alert_detail = NULL;
    if (rc)
        return oms_resp_change_failure(req, rc, &err);
    if (op->kind == OP_ACQUIRE)
        oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/locks/%s", op->chg.lock.id));
    return oms_resp_json(req, op->kind == OP_ACQUIRE ? 201 : 200, oms_lock_json(&op->chg.lock, op->chg.now));
}

/* Refuses members outside `allowed` (typos never pass silently). */
static bool only_fields(oms_request *req, const json_t *o, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            known = known || strcmp(key, allowed[i]) == 0;
        if (!known) {
            bad(req, oms_arena_printf(req->arena, "unknown field %.64s", key));
            return false;
        }
    }
    return true;
}

/* An optional integer member within [lo, hi]; false (400 queued) when the
 * member is present but not such an integer. */
static bool opt_int(oms_request *req, const json_t *o, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        bad(req, oms_arena_printf(req->arena, "%s must be an integer from %lld to %lld", name, (long long)lo,
                                  (long long)hi));
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* An optional string member of 1..max bytes (absent or null: NULL). */
static bool opt_str(oms_request *req, const json_t *o, const char *name, size_t max, const char **out)
{
    const json_t *v = json_object_get(o, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        bad(req, oms_arena_printf(req->arena, "%s must be a string of 1 to %zu bytes", name, max));
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* ---- acquire ---- */

static const char *const k_acquire_fields[] = {"branch", "scope", "resource_type", "resource_id", "kind",
                                               "reason", "ttl_seconds", "heartbeat_seconds", NULL};

/* Validates the acquire body into *l (id, holder and times still unset). */
static bool parse_acquire(oms_request *req, oms_lock *l, int64_t *ttl)
{
    const json_t *b = req->json;
    memset(l, 0, sizeof *l);
    if (!json_is_object(b)) {
        bad(req, "the body must be {\"branch\", \"scope\", \"resource_type\", \"resource_id\", \"kind\", \"reason\","
                 " \"ttl_seconds\", \"heartbeat_seconds\"}");
        return false;
    }
    if (!only_fields(req, b, k_acquire_fields))
        return false;
    const char *scope, *rtype, *rid, *kind;
    if (!opt_str(req, b, "branch", 100, &l->branch) || !opt_str(req, b, "scope", 32, &scope) ||
        !opt_str(req, b, "resource_type", 64, &rtype) || !opt_str(req, b, "resource_id", 100, &rid) ||
        !opt_str(req, b, "kind", 32, &kind) || !opt_str(req, b, "reason", OMS_LOCK_REASON_MAX, &l->reason))
        return false;
    if (!l->branch || !oms_valid_branch_name(l->branch)) {
        bad(req, "branch is required and must be a valid branch name");
        return false;
    }
    l->scope = scope ? scope : "resource";
    if (!oms_lock_scope_valid(l->scope)) {
        bad(req, "scope must be resource, resource_type or branch");
        return false;
    }
    oms_kind k;
    bool is_branch = !strcmp(l->scope, "branch"), is_type = !strcmp(l->scope, "resource_type");
    if (is_branch && (rtype || rid)) {
        bad(req, "a branch lock takes no resource_type or resource_id");
        return false;
    }
    if (!is_branch && (!rtype || oms_kind_parse(&k, rtype))) {
        bad(req, "resource_type is required and must be a kind segment such as object-types");
        return false;
    }
    if (is_type && rid) {
        bad(req, "a resource_type lock takes no resource_id");
        return false;
    }
    if (!is_branch && !is_type && (!rid || !oms_valid_api_name(rid))) {
        bad(req, "resource_id is required and must match ^[A-Za-z][A-Za-z0-9_]{0,99}$");
        return false;
    }
    l->resource_type = rtype;
    l->resource_id = rid;
    l->kind = kind ? kind : "manual";
    int64_t def = oms_lock_default_ttl(l->kind);
    if (def < 0) {
        bad(req, "kind must be indexing, migration, backup, maintenance or manual");
        return false;
    }
    if (!l->reason) {
        bad(req, "reason is required: say why the lock is taken");
        return false;
    }
    *ttl = def;
    l->heartbeat_seconds = 0;
    return opt_int(req, b, "ttl_seconds", OMS_LOCK_TTL_MIN_S, OMS_LOCK_TTL_MAX_S, ttl) &&
           opt_int(req, b, "heartbeat_seconds", 0, OMS_LOCK_HEARTBEAT_MAX_S, &l->heartbeat_seconds);
}

int oms_h_lock_acquire(oms_request *req)
{
    lock_op op = {.kind = OP_ACQUIRE};
    if (!parse_acquire(req, &op.chg.lock, &op.ttl_s))
        return OMS_OK;
    oms_error err;
    int rc = acl_decide(req, OMS_PERM_LOCK_WRITE, op.chg.lock.branch, NULL, &err);
    if (rc)
        return fail(req, rc, &err);
    oms_lock_prepare(oms_req_ctx(req), &op.chg.lock);
    return run(req, &op, "lock.acquire");
}

/* ---- reading ---- */

int oms_h_lock_get(oms_request *req)
{
    oms_error err;
    oms_lock l;
    int64_t now = 0;
    int rc = oms_lock_get(oms_req_ctx(req), req->params[0], &l, &now, &err);
    return rc ? oms_resp_error(req, rc, &err) : oms_resp_json(req, 200, oms_lock_json(&l, now));
}

int oms_h_lock_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *branch = oms_req_query(req, "branch"), *holder = oms_req_query(req, "holder");
    const char *state = oms_req_query(req, "state");
    if (branch && !oms_valid_branch_name(branch))
        return bad(req, "branch must be a valid branch name");
    if (holder && (!*holder || strlen(holder) > 256))
        return bad(req, "holder must be 1 to 256 bytes");
    int filter = oms_store_lock_state_filter(state ? state : "active");
    if (filter < 0)
        return bad(req, "state must be active, expired, released, force_released or all");
    int64_t after = 0;
    if (cursor) {
        char *end;
        long long v = strtoll(cursor, &end, 10);
        if (*end || v < 0)
            return bad(req, "cursor is not valid");
        after = v;
    }
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc || (rc = oms_store_locks_list(c, after, branch, holder, filter, (int64_t)limit + 1, &r, &err)))
        return fail(req, rc, &err);
    json_t *items = json_array();
    size_t n = r->nrows < limit ? r->nrows : limit;
    oms_lock l = {0};
    for (size_t i = 0; i < n; i++) {
        oms_lock_from_row(&l, r, i, 1, req->arena);
        json_array_append_new(items, oms_lock_json(&l, oms_dbres_int(r, i, 0)));
    }
    json_t *next = json_null();
    if (r->nrows > limit)
        next = json_string(oms_cursor_encode(req, oms_arena_printf(req->arena, "%lld", (long long)l.fencing_token)));
    oms_dbres_free(r);
    return oms_resp_json(req, 200, json_pack("{s:o,s:o}", "items", items, "next_cursor", next));
}

/* ---- changing a held lock ---- */

int oms_h_lock_heartbeat(oms_request *req)
{
    lock_op op = {.kind = OP_HEARTBEAT, .id = req->params[0], .ttl_s = -1, .body = req->json};
    return run(req, &op, "lock.heartbeat");
}

int oms_h_lock_extend(oms_request *req)
{
    int64_t ttl = -1;
    if (req->json && !json_is_object(req->json))
        return bad(req, "the body must be {\"ttl_seconds\"}");
    static const char *const fields[] = {"ttl_seconds", NULL};
    if (req->json && (!only_fields(req, req->json, fields) ||
                      !opt_int(req, req->json, "ttl_seconds", OMS_LOCK_TTL_MIN_S, OMS_LOCK_TTL_MAX_S, &ttl)))
        return OMS_OK;
    lock_op op = {.kind = OP_EXTEND, .id = req->params[0], .ttl_s = ttl};
    return run(req, &op, "lock.extend");
}

/* ---- release ---- */

static const char *const k_release_fields[] = {"issue_id", "issue_ids", "reason", NULL};

static void json_free_cb(void *p) { json_decref(p); }

int oms_h_lock_release(oms_request *req)
{
    const json_t *b = req->json;
    if (b && !json_is_object(b))
        return bad(req, "the body must be {\"issue_id\", \"issue_ids\", \"reason\"}");
    const char *why = NULL;
    if (b && (!only_fields(req, b, k_release_fields) || !opt_str(req, b, "reason", OMS_LOCK_REASON_MAX, &why)))
        return OMS_OK;
    /* The issue references a forced release needs (read whether or not it
     * is one: the domain decides). */
    json_t *invalid = json_array();
    json_t *keys = oms_issue_refs_collect(req, b, NULL, invalid);
    oms_arena_on_cleanup(req->arena, json_free_cb, keys);
    oms_arena_on_cleanup(req->arena, json_free_cb, invalid);
    lock_op op = {.kind = OP_RELEASE, .id = req->params[0], .reason = why, .keys = keys, .invalid = invalid};
    /* the action: lock.release, or lock.force_release named by the domain */
    return run(req, &op, NULL);
}
