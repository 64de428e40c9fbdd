/* The lock API (SPEC §7, docs/locks.md): acquire, list, get, heartbeat,
 * extend and release. Each change is one database transaction that reads
 * the clock from the database, changes the lock row and appends its audit
 * event; the lock rows are the only state, so any instance serves any lock. */
#include "locks/handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/acl_store.h"
#include "governance/issue_refs.h"
#include "http/app.h"
#include "http/params.h"
#include "http/path.h"
#include "locks/locks.h"
#include "ontology/ontology.h"
#include "ops/alerts.h"
#include "infra/metrics.h"
#include "util/time.h"

#define NOW_PG OMS_LOCK_NOW_PG
#define NOW_LITE OMS_LOCK_NOW_SQLITE

static oms_db_backend backend(oms_request *req) { return oms_db_backend_of(req->app->store->db); }

static int db_problem(oms_request *req, int rc, const oms_error *err)
{
    if (rc == OMS_EDB)
        oms_db_conn_reset(req->app->store->db);
    return oms_resp_problem(req, (oms_err)rc, err->msg, NULL);
}

static int bad(oms_request *req, const char *detail) { return oms_resp_problem(req, OMS_EINVAL, detail, NULL); }

/* ACL policies refine permissions per branch (SPEC §6.2). The route's own
 * check had no branch context: a lock's branch is in the body or the row.
 * False with a 403 (or 503, failing closed) queued. */
static bool acl_allows(oms_request *req, oms_perm perm, const char *branch, json_t *extra)
{
    oms_acl_verdict v;
    oms_error err;
    if (oms_acl_check(oms_req_ctx(req), perm, branch, &v, &err) != OMS_OK) {
        json_decref(extra);
        oms_resp_problem(req, OMS_EUNAVAIL, "the ACL policies cannot be read", NULL);
        return false;
    }
    if (v.allowed) {
        json_decref(extra);
        return true;
    }
    if (!extra)
        extra = json_object();
    json_object_set_new(extra, "missing_permission", json_string(oms_perm_name(perm)));
    if (v.denied_by)
        json_object_set_new(extra, "denied_by", json_string(v.denied_by));
    oms_resp_problem(req, OMS_EFORBIDDEN,
                     oms_arena_printf(req->arena, "this needs the permission %s on branch %s", oms_perm_name(perm),
                                      branch),
                     extra);
    return false;
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

static void audit_lock(oms_request *req, const oms_lock *l, const char *action, int status, const char *issues,
                       json_t *detail, oms_audit_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->action = action;
    ev->outcome = "success";
    ev->http_status = status;
    ev->resource_kind = "locks";
    ev->resource_branch = l->branch;
    ev->resource_id = l->id;
    ev->issue_keys = issues;
    oms_audit_from_ctx(ev, oms_req_ctx(req));
    char *d = json_dumps(detail, JSON_COMPACT);
    json_decref(detail);
    ev->detail = d ? oms_arena_strdup(req->arena, d) : NULL;
    free(d);
}

/* The target of a lock, for audit details. */
static json_t *lock_detail(const oms_lock *l)
{
    return json_pack("{s:s,s:s?,s:s?,s:s,s:s,s:I}", "scope", l->scope, "resource_type", l->resource_type,
                     "resource_id", l->resource_id, "kind", l->kind, "holder", l->holder, "fencing_token",
                     (json_int_t)l->fencing_token);
}

static int append(oms_dbconn *c, const oms_audit_event *ev, oms_error *err)
{
    int rc = oms_audit_append(c, ev, err);
    return rc ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}

static int64_t deadline_of(int64_t expires_at, int64_t heartbeat_seconds, int64_t last_heartbeat_at)
{
    if (heartbeat_seconds <= 0)
        return expires_at;
    int64_t hb = last_heartbeat_at + OMS_LOCK_MISSED_HEARTBEATS * heartbeat_seconds * 1000;
    return hb < expires_at ? hb : expires_at;
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

/* Branch existence, the database clock and every live lock of the branch,
 * in one statement (row 0 exists even when there is no lock). */
#define ACQUIRE_SCAN(NOW)                                                                                   \
    OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, (SELECT count(*) FROM branches WHERE name = $1), " OMS_LOCK_COLS  \
                           " FROM n LEFT JOIN locks l ON l.branch = $1 AND l.state = 'active'"            \
                           " AND l.deadline_at > n.t ORDER BY l.fencing_token"

/* The common case in one statement: insert unless the branch is missing or
 * a live lock conflicts (the SQL form of oms_locks_conflict). When it
 * inserts nothing, the scan above finds out why and reports it; the scan's
 * verdict (in C) is the one that counts. $9: TTL in ms, $11: the deadline's
 * offset from now in ms, $12: the fencing token (SQLite only). */
#define ACQUIRE_INSERT(NOW, TOKEN)                                                                          \
    OMS_LOCK_WITH_NOW(NOW)                                                                                  \
    "INSERT INTO locks (id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at,"   \
    " expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, fencing_token, state)"                 \
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, n.t, n.t + $9, $10, n.t, n.t + $11, " TOKEN ", 'active' FROM n" \
    " WHERE EXISTS (SELECT 1 FROM branches WHERE name = $2) AND NOT EXISTS (SELECT 1 FROM locks o"          \
    " WHERE o.branch = $2 AND o.state = 'active' AND o.deadline_at > n.t AND (o.scope = 'branch'"           \
    " OR $3 = 'branch' OR (o.resource_type = $4 AND (o.scope = 'resource_type' OR $3 = 'resource_type'"      \
    " OR o.resource_id = $5))))"                                                                           \
    " RETURNING acquired_at, fencing_token"

/* Why the guarded insert inserted nothing: 404 or 409 (queued, returns
 * true); false when the C rule finds no conflict after all. */
static bool explain_refusal(oms_dbconn *c, oms_request *req, oms_db_backend be, const oms_lock *l, int *rc,
                            oms_error *err)
{
    static const char *const scan_sql[2] = {ACQUIRE_SCAN(NOW_LITE), ACQUIRE_SCAN(NOW_PG)};
    oms_dbres *r = NULL;
    oms_dbparam bp[] = {DBP_TEXT(l->branch)};
    if ((*rc = oms_db_exec(c, scan_sql[be == OMS_DB_PG], bp, 1, &r, err)))
        return false;
    int64_t now = oms_dbres_int(r, 0, 0);
    json_t *conflicts = json_array();
    bool missing = oms_dbres_int(r, 0, 1) == 0;
    for (size_t i = 0; i < r->nrows && !missing; i++) {
        if (!oms_dbres_get(r, i, 2))
            continue;
        oms_lock other;
        oms_lock_from_row(&other, r, i, 2, req->arena);
        if (oms_locks_conflict(l, &other))
            json_array_append_new(conflicts, oms_lock_json(&other, now));
    }
    oms_dbres_free(r);
    if (missing) {
        json_decref(conflicts);
        *rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", l->branch);
        return false;
    }
    if (json_array_size(conflicts) == 0) {
        json_decref(conflicts);
        return false;
    }
    oms_metrics_lock_wait(OMS_LOCKWAIT_ACQUIRE);
    oms_resp_problem_as(req, OMS_ECONFLICT, "lock_conflict", "the lock conflicts with locks already held",
                        json_pack("{s:o}", "conflicts", conflicts));
    return true;
}

/* Protected branches (SPEC §4) change only through approved proposals and
 * overrides; a lock that covers the whole branch or a whole kind of it
 * would let whoever holds lock:write (every developer) hold those merges
 * off for up to OMS_LOCK_TTL_MAX_S. So on a protected branch the scopes
 * `branch` and `resource_type` need lock:admin (RBAC refined by ACL
 * policies for the branch); a `resource` lock, which blocks one resource,
 * needs lock:write as anywhere (docs/locks.md). The flag is read inside the
 * acquiring transaction: on SQLite it is serialised with settings changes,
 * on PostgreSQL a concurrent change orders after this acquisition. *out
 * stays false when the branch does not exist (the insert then says 404). */
static int branch_protected(oms_dbconn *c, const char *branch, bool *out, oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_exec(c, "SELECT protected FROM branches WHERE name = $1", p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 1)
        *out = oms_dbres_int(r, 0, 0) != 0;
    oms_dbres_free(r);
    return rc;
}

int oms_h_lock_acquire(oms_request *req)
{
    oms_lock l;
    int64_t ttl = 0;
    if (!parse_acquire(req, &l, &ttl) || !acl_allows(req, OMS_PERM_LOCK_WRITE, l.branch, NULL))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_db_backend be = backend(req);
    char id[OMS_LOCK_ID_LEN + 1];
    oms_lock_new_id(id);
    l.id = id;
    l.holder = req->principal.sub;
    l.state = "active";
    int64_t token = 0, ttl_ms = ttl * 1000;
    int64_t deadline_ms = l.heartbeat_seconds > 0 && OMS_LOCK_MISSED_HEARTBEATS * l.heartbeat_seconds * 1000 < ttl_ms
                              ? OMS_LOCK_MISSED_HEARTBEATS * l.heartbeat_seconds * 1000
                              : ttl_ms;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc || (rc = oms_db_begin(c, true, &err)))
        return db_problem(req, rc, &err);
    /* Conflict check and insert under one transaction-scoped advisory lock
     * per branch: concurrent acquisitions on a branch, through any instance,
     * are serialised; the lock is released by COMMIT or ROLLBACK, never left
     * in a session. The check is a new statement after the lock is granted,
     * so it sees every acquisition committed before (docs/locks.md). */
    if (be == OMS_DB_PG) {
        oms_dbparam k[] = {DBP_INT(oms_lock_branch_key(l.branch))};
        if ((rc = oms_db_exec(c, "SELECT pg_advisory_xact_lock($1)", k, 1, NULL, &err)))
            goto fail;
    } else {
        /* The fencing token: one sequence for every lock, so it only
         * increases (SQLite: a counter row, rolled back with a refusal). */
        if ((rc = oms_db_exec(c, "UPDATE lock_fencing SET value = value + 1 WHERE id = 1 RETURNING value", NULL, 0,
                              &r, &err)))
            goto fail;
        token = oms_dbres_int(r, 0, 0);
        oms_dbres_free(r);
        r = NULL;
    }
    if (strcmp(l.scope, "resource") != 0) {
        bool protected_branch = false;
        if ((rc = branch_protected(c, l.branch, &protected_branch, &err)))
            goto fail;
        if (protected_branch &&
            !acl_allows(req, OMS_PERM_LOCK_ADMIN, l.branch,
                        json_pack("{s:s,s:b}", "scope", l.scope, "branch_protected", 1))) {
            oms_db_rollback(c);
            return OMS_OK;
        }
    }
    static const char *const insert_sql[2] = {ACQUIRE_INSERT(NOW_LITE, "$12"),
                                              ACQUIRE_INSERT(NOW_PG, "nextval('lock_fencing_seq')")};
    oms_dbparam p[] = {DBP_TEXT(l.id), DBP_TEXT(l.branch), DBP_TEXT(l.scope), DBP_TEXT(l.resource_type),
                       DBP_TEXT(l.resource_id), DBP_TEXT(l.kind), DBP_TEXT(l.holder), DBP_TEXT(l.reason),
                       DBP_INT(ttl_ms), DBP_INT(l.heartbeat_seconds), DBP_INT(deadline_ms), DBP_INT(token)};
    if ((rc = oms_db_exec(c, insert_sql[be == OMS_DB_PG], p, be == OMS_DB_PG ? 11 : 12, &r, &err)))
        goto fail;
    if (r->nrows != 1) {
        oms_dbres_free(r);
        r = NULL;
        if (explain_refusal(c, req, be, &l, &rc, &err) || rc) {
            oms_db_rollback(c);
            return rc ? db_problem(req, rc, &err) : OMS_OK;
        }
        /* the SQL guard refused what the C rule allows: a bug in one of
         * them; refuse rather than guess */
        rc = oms_err_set(&err, OMS_EINTERNAL, "lock conflict rules disagree");
        goto fail;
    }
    int64_t now = oms_dbres_int(r, 0, 0);
    l.fencing_token = oms_dbres_int(r, 0, 1);
    oms_dbres_free(r);
    r = NULL;
    l.acquired_at = l.last_heartbeat_at = now;
    l.expires_at = now + ttl_ms;
    l.deadline_at = now + deadline_ms;
    oms_audit_event ev;
    json_t *d = lock_detail(&l);
    json_object_set_new(d, "ttl_seconds", json_integer(ttl));
    json_object_set_new(d, "heartbeat_seconds", json_integer(l.heartbeat_seconds));
    audit_lock(req, &l, "lock.acquire", 201, NULL, d, &ev);
    if ((rc = append(c, &ev, &err)) || (rc = oms_db_commit(c, &err)))
        goto fail;
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/locks/%s", l.id));
    return oms_resp_json(req, 201, oms_lock_json(&l, now));
fail:
    oms_dbres_free(r);
    oms_db_rollback(c);
    return db_problem(req, rc, &err);
}

/* ---- reading ---- */

#define ONE_LOCK(NOW, LOCKING)                                                                              \
    OMS_LOCK_WITH_NOW(NOW) "SELECT n.t, " OMS_LOCK_COLS " FROM n CROSS JOIN locks l WHERE l.id = $1" LOCKING

/* Loads the lock named by the path (404 when none), with the database
 * clock; `for_update` row-locks it on PostgreSQL (SQLite's write
 * transaction already excludes every other writer). */
static int load_lock(oms_dbconn *c, oms_request *req, bool for_update, oms_lock *l, int64_t *now, oms_error *err)
{
    static const char *const sql[2][2] = {{ONE_LOCK(NOW_LITE, ""), ONE_LOCK(NOW_LITE, "")},
                                          {ONE_LOCK(NOW_PG, ""), ONE_LOCK(NOW_PG, " FOR UPDATE OF l")}};
    const char *id = req->params[0];
    if (!oms_lock_id_valid(id))
        return oms_err_set(err, OMS_ENOTFOUND, "no lock %.64s", id);
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_exec(c, sql[backend(req) == OMS_DB_PG][for_update], p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no lock %s", id);
    if (rc == OMS_OK) {
        *now = oms_dbres_int(r, 0, 0);
        oms_lock_from_row(l, r, 0, 1, req->arena);
    }
    oms_dbres_free(r);
    return rc;
}

int oms_h_lock_get(oms_request *req)
{
    oms_error err;
    oms_dbconn *c;
    oms_lock l;
    int64_t now = 0;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc || (rc = load_lock(c, req, false, &l, &now, &err)))
        return db_problem(req, rc, &err);
    return oms_resp_json(req, 200, oms_lock_json(&l, now));
}

/* State filters of the list: fixed SQL fragments (never client text). */
static const struct {
    const char *name, *cond;
} k_state_filters[] = {
    {"active", "l.state = 'active' AND l.deadline_at > n.t"},
    {"expired", "(l.state = 'expired' OR (l.state = 'active' AND l.deadline_at <= n.t))"},
    {"released", "l.state = 'released'"},
    {"force_released", "l.state = 'force_released'"},
    {"all", "1 = 1"},
};

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
    const char *cond = NULL;
    for (size_t i = 0; i < sizeof k_state_filters / sizeof k_state_filters[0]; i++)
        if (!strcmp(state ? state : "active", k_state_filters[i].name))
            cond = k_state_filters[i].cond;
    if (!cond)
        return bad(req, "state must be active, expired, released, force_released or all");
    int64_t after = 0;
    if (cursor) {
        char *end;
        long long v = strtoll(cursor, &end, 10);
        if (*end || v < 0)
            return bad(req, "cursor is not valid");
        after = v;
    }
    const char *sql = oms_arena_printf(
        req->arena,
        OMS_LOCK_WITH_NOW("%s") "SELECT n.t, " OMS_LOCK_COLS " FROM n CROSS JOIN locks l WHERE l.fencing_token > $1"
                                " AND ($2 = '' OR l.branch = $2) AND ($3 = '' OR l.holder = $3) AND %s"
                                " ORDER BY l.fencing_token LIMIT $4",
        backend(req) == OMS_DB_PG ? NOW_PG : NOW_LITE, cond);
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(after), DBP_TEXT(branch ? branch : ""), DBP_TEXT(holder ? holder : ""),
                       DBP_INT((int64_t)limit + 1)};
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc || (rc = oms_db_exec(c, sql, p, 4, &r, &err)))
        return db_problem(req, rc, &err);
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

static int not_holder(oms_request *req, const oms_lock *l)
{
    return oms_resp_problem(req, OMS_ELOCKNOTHOLDER, "only the lock's holder may do this",
                            json_pack("{s:s}", "holder", l->holder));
}

static int not_active(oms_request *req, const oms_lock *l, int64_t now)
{
    return oms_resp_problem_as(req, OMS_ECONFLICT, "lock_not_active",
                               oms_arena_printf(req->arena, "the lock is %s", oms_lock_effective_state(l, now)),
                               json_pack("{s:o}", "lock", oms_lock_json(l, now)));
}

static const char *const k_heartbeat_fields[] = {"progress", NULL};
static const char *const k_progress_fields[] = {"percent", "phase", "message", NULL};

/* Applies the heartbeat body's progress to *l; false with a 400 queued. */
static bool parse_progress(oms_request *req, oms_lock *l, int64_t now)
{
    const json_t *b = req->json;
    if (!b)
        return true;
    if (!json_is_object(b)) {
        bad(req, "the body must be {\"progress\": {\"percent\", \"phase\", \"message\"}}");
        return false;
    }
    if (!only_fields(req, b, k_heartbeat_fields))
        return false;
    const json_t *p = json_object_get(b, "progress");
    if (!p || json_is_null(p))
        return true;
    if (!json_is_object(p)) {
        bad(req, "progress must be an object");
        return false;
    }
    if (!only_fields(req, p, k_progress_fields))
        return false;
    const json_t *pct = json_object_get(p, "percent");
    if (pct && !json_is_null(pct)) {
        if (!json_is_number(pct) || json_number_value(pct) < 0 || json_number_value(pct) > 100) {
            bad(req, "progress.percent must be a number from 0 to 100");
            return false;
        }
        l->has_percent = true;
        l->percent = json_number_value(pct);
    }
    const char *phase, *message;
    if (!opt_str(req, p, "phase", OMS_LOCK_PHASE_MAX, &phase) || !opt_str(req, p, "message", OMS_LOCK_MESSAGE_MAX, &message))
        return false;
    if (phase)
        l->phase = phase;
    if (message)
        l->message = message;
    l->progress_updated_at = now;
    return true;
}

static int store_liveness(oms_dbconn *c, const oms_lock *l, oms_error *err)
{
    char pct[40];
    snprintf(pct, sizeof pct, "%.17g", l->percent);
    oms_dbparam p[] = {DBP_TEXT(l->id),
                       DBP_INT(l->expires_at),
                       DBP_INT(l->last_heartbeat_at),
                       DBP_INT(l->deadline_at),
                       l->has_percent ? DBP_TEXT(pct) : DBP_NULL,
                       DBP_TEXT(l->phase),
                       DBP_TEXT(l->message),
                       l->progress_updated_at ? DBP_INT(l->progress_updated_at) : DBP_NULL};
    return oms_db_exec(c,
                       "UPDATE locks SET expires_at = $2, last_heartbeat_at = $3, deadline_at = $4,"
                       " progress_percent = $5, progress_phase = $6, progress_message = $7,"
                       " progress_updated_at = $8 WHERE id = $1 AND state = 'active'",
                       p, 8, NULL, err);
}

/* Heartbeat and extend: the holder proves it is alive (and may report
 * progress, or lengthen the TTL). A lapsed lock cannot be revived: that is
 * what makes its fencing meaningful. */
static int touch(oms_request *req, bool extend)
{
    oms_error err;
    oms_dbconn *c;
    oms_lock l;
    int64_t now = 0, ttl = -1;
    if (extend) {
        if (req->json && !json_is_object(req->json))
            return bad(req, "the body must be {\"ttl_seconds\"}");
        static const char *const fields[] = {"ttl_seconds", NULL};
        if (req->json && (!only_fields(req, req->json, fields) ||
                          !opt_int(req, req->json, "ttl_seconds", OMS_LOCK_TTL_MIN_S, OMS_LOCK_TTL_MAX_S, &ttl)))
            return OMS_OK;
    }
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc || (rc = oms_db_begin(c, true, &err)))
        return db_problem(req, rc, &err);
    if ((rc = load_lock(c, req, true, &l, &now, &err)))
        goto fail;
    if (strcmp(l.holder, req->principal.sub ? req->principal.sub : "") != 0) {
        oms_db_rollback(c);
        return not_holder(req, &l);
    }
    if (!oms_lock_live(&l, now)) {
        oms_db_rollback(c);
        return not_active(req, &l, now);
    }
    int64_t previous_expiry = l.expires_at;
    if (!extend && !parse_progress(req, &l, now)) {
        oms_db_rollback(c);
        return OMS_OK;
    }
    if (extend) {
        if (ttl < 0)
            ttl = oms_lock_default_ttl(l.kind);
        /* extend never shortens a lock */
        if (now + ttl * 1000 > l.expires_at)
            l.expires_at = now + ttl * 1000;
    }
    l.last_heartbeat_at = now;
    l.deadline_at = deadline_of(l.expires_at, l.heartbeat_seconds, now);
    if ((rc = store_liveness(c, &l, &err)))
        goto fail;
    if (extend) {
        oms_audit_event ev;
        json_t *d = lock_detail(&l);
        char prev[40], next[40];
        oms_time_rfc3339_ms(prev, sizeof prev, previous_expiry);
        oms_time_rfc3339_ms(next, sizeof next, l.expires_at);
        json_object_set_new(d, "previous_expires_at", json_string(prev));
        json_object_set_new(d, "expires_at", json_string(next));
        audit_lock(req, &l, "lock.extend", 200, NULL, d, &ev);
        if ((rc = append(c, &ev, &err)))
            goto fail;
    }
    if ((rc = oms_db_commit(c, &err)))
        goto fail;
    return oms_resp_json(req, 200, oms_lock_json(&l, now));
fail:
    oms_db_rollback(c);
    return db_problem(req, rc, &err);
}

int oms_h_lock_heartbeat(oms_request *req) { return touch(req, false); }
int oms_h_lock_extend(oms_request *req) { return touch(req, true); }

/* ---- release ---- */

static const char *const k_release_fields[] = {"issue_id", "issue_ids", "reason", NULL};

static int issue_required(oms_request *req, json_t *invalid)
{
    json_t *examples = json_pack("[s,s,s,s]", "X-Issue-ID: OPS-123", "X-Issue-IDs: OPS-123,GH-42",
                                 "{\"issue_id\": \"OPS-123\"}", "{\"issue_ids\": [\"#123\"]}");
    return oms_resp_problem_as(req, OMS_EUNPROCESSABLE, "issue_required",
                               "releasing another holder's lock needs an issue reference",
                               json_pack("{s:o,s:o}", "invalid", invalid, "examples", examples));
}

/* The common case in one statement: the holder releases its live lock.
 * *done stays false when the row is not that (someone else's, ended,
 * unknown), and the caller takes the slow path that explains why. */
#define RELEASE_OWN_SQLITE                                                                                  \
    "UPDATE locks SET state = 'released', ended_at = " NOW_LITE ", ended_by = $2 WHERE id = $1"              \
    " AND holder = $2 AND state = 'active' AND deadline_at > " NOW_LITE " RETURNING ended_at, "               \
    OMS_LOCK_COLS_BARE
#define RELEASE_OWN_PG                                                                                      \
    OMS_LOCK_WITH_NOW(NOW_PG) "UPDATE locks SET state = 'released', ended_at = n.t, ended_by = $2 FROM n"     \
                              " WHERE id = $1 AND holder = $2 AND state = 'active' AND deadline_at > n.t"    \
                              " RETURNING ended_at, " OMS_LOCK_COLS_BARE

static int release_own(oms_dbconn *c, oms_request *req, const char *sub, oms_lock *l, int64_t *now, bool *done,
                       oms_error *err)
{
    *done = false;
    if (!oms_lock_id_valid(req->params[0]))
        return OMS_OK;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(req->params[0]), DBP_TEXT(sub)};
    int rc = oms_db_exec(c, backend(req) == OMS_DB_PG ? RELEASE_OWN_PG : RELEASE_OWN_SQLITE, p, 2, &r, err);
    if (rc == OMS_OK && r->nrows == 1) {
        *now = oms_dbres_int(r, 0, 0);
        oms_lock_from_row(l, r, 0, 1, req->arena);
        *done = true;
    }
    oms_dbres_free(r);
    return rc;
}

/* The holder releases its lock; anyone else needs lock:admin, an issue
 * reference, and raises a security alert (SPEC §7, §10): a stored alert
 * (rule forced_lock_release) and its `alert.raised` audit event, in the
 * release's own transaction. */
int oms_h_lock_release(oms_request *req)
{
    const json_t *b = req->json;
    if (b && !json_is_object(b))
        return bad(req, "the body must be {\"issue_id\", \"issue_ids\", \"reason\"}");
    const char *why = NULL;
    if (b && (!only_fields(req, b, k_release_fields) || !opt_str(req, b, "reason", OMS_LOCK_REASON_MAX, &why)))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    oms_lock l;
    int64_t now = 0;
    json_t *issues = NULL;
    char *issue_text = NULL;
    const char *sub = req->principal.sub ? req->principal.sub : "";
    bool forced = false, done = false;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc || (rc = oms_db_begin(c, true, &err)))
        return db_problem(req, rc, &err);
    if ((rc = release_own(c, req, sub, &l, &now, &done, &err)))
        goto fail;
    if (!done && (rc = load_lock(c, req, true, &l, &now, &err)))
        goto fail;
    forced = !done && strcmp(l.holder, sub) != 0;
    if (forced) {
        req->ctx.audit_action = "lock.force_release";
        if (!acl_allows(req, OMS_PERM_LOCK_ADMIN, l.branch, json_pack("{s:s}", "holder", l.holder))) {
            oms_db_rollback(c);
            return OMS_OK;
        }
        json_t *invalid = json_array();
        issues = oms_issue_refs_collect(req, b, NULL, invalid);
        if (json_array_size(issues) == 0 || json_array_size(invalid) > 0) {
            json_decref(issues);
            oms_db_rollback(c);
            return issue_required(req, invalid);
        }
        json_decref(invalid);
        char *t = json_dumps(issues, JSON_COMPACT);
        issue_text = oms_arena_strdup(req->arena, t);
        free(t);
        json_decref(issues);
    }
    if (!done && !oms_lock_live(&l, now)) {
        oms_db_rollback(c);
        return not_active(req, &l, now);
    }
    if (!done) {
        l.state = forced ? "force_released" : "released";
        l.ended_at = now;
        l.ended_by = sub;
        oms_dbparam p[] = {DBP_TEXT(l.id), DBP_TEXT(l.state), DBP_INT(now), DBP_TEXT(sub)};
        if ((rc = oms_db_exec(c, "UPDATE locks SET state = $2, ended_at = $3, ended_by = $4 WHERE id = $1 AND state = 'active'",
                              p, 4, NULL, &err)))
            goto fail;
    }
    oms_audit_event ev;
    json_t *d = lock_detail(&l);
    if (why)
        json_object_set_new(d, "reason", json_string(why));
    audit_lock(req, &l, forced ? "lock.force_release" : "lock.release", 200, issue_text, d, &ev);
    if ((rc = append(c, &ev, &err)))
        goto fail;
    if (forced) {
        json_t *ad = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s?}", "rule", "forced_lock_release", "severity",
                               "warning", "lock_id", l.id, "branch", l.branch, "holder", l.holder, "released_by", sub,
                               "kind", l.kind, "reason", why);
        char *adt = json_dumps(ad, JSON_COMPACT);
        rc = adt ? oms_alert_raise(c, oms_req_ctx(req), "forced_lock_release", "warning", adt, &err)
                 : oms_err_set(&err, OMS_ENOMEM, "out of memory");
        free(adt);
        audit_lock(req, &l, "alert.raised", 200, issue_text, ad, &ev);
        if (rc || (rc = append(c, &ev, &err)))
            goto fail;
    }
    if ((rc = oms_db_commit(c, &err)))
        goto fail;
    return oms_resp_json(req, 200, oms_lock_json(&l, now));
fail:
    oms_db_rollback(c);
    return db_problem(req, rc, &err);
}
