#include "locks/lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/metrics.h"
#include "locks/granted.h"
#include "store/locks_sql.h"
#include "store/store.h"
#include "util/time.h"

static int64_t deadline_of(int64_t expires_at, int64_t heartbeat_seconds, int64_t last_heartbeat_at)
{
    if (heartbeat_seconds <= 0)
        return expires_at;
    int64_t hb = last_heartbeat_at + OMS_LOCK_MISSED_HEARTBEATS * heartbeat_seconds * 1000;
    return hb < expires_at ? hb : expires_at;
}

/* The target of a lock, for audit details. */
static json_t *lock_detail(const oms_lock *l)
{
    return json_pack("{s:s,s:s?,s:s?,s:s,s:s,s:I}", "scope", l->scope, "resource_type", l->resource_type,
                     "resource_id", l->resource_id, "kind", l->kind, "holder", l->holder, "fencing_token",
                     (json_int_t)l->fencing_token);
}

static void lock_event(oms_lock_change *out, int status, json_t *detail)
{
    out->status = status;
    out->detail = detail;
}

/* ---- acquire ---- */

/* Inserts tried again after a conflict that ended meanwhile (each retry
 * needs another release or expiry to land between two statements). */
#define ACQUIRE_RETRIES 3

/* Why the guarded insert inserted nothing: OMS_ENOTFOUND or OMS_ECONFLICT;
 * OMS_OK when the C rule finds no conflict now. The scan is a statement of
 * its own: on PostgreSQL a release or an expiry (which take no advisory
 * lock) may have ended the conflicting lock since the insert looked, and
 * the insert is then tried again (oms_lock_acquire_tx). */
static int explain_refusal(oms_dbconn *c, oms_ctx *ctx, const oms_lock *l, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_lock_acquire_scan(c, l->branch, &r, err);
    if (rc)
        return rc;
    int64_t now = oms_dbres_int(r, 0, 0);
    json_t *conflicts = json_array();
    bool missing = oms_dbres_int(r, 0, 1) == 0;
    for (size_t i = 0; i < r->nrows && !missing; i++) {
        if (!oms_dbres_get(r, i, 2))
            continue;
        oms_lock other;
        oms_lock_from_row(&other, r, i, 2, ctx->arena);
        if (oms_locks_conflict(l, &other))
            json_array_append_new(conflicts, oms_lock_json(&other, now));
    }
    oms_dbres_free(r);
    if (missing) {
        json_decref(conflicts);
        return oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", l->branch);
    }
    if (json_array_size(conflicts) == 0) {
        json_decref(conflicts);
        return OMS_OK;
    }
    oms_metrics_lock_wait(OMS_LOCKWAIT_ACQUIRE);
    oms_ctx_problem_extra(ctx, json_pack("{s:o}", "conflicts", conflicts));
    return oms_err_set_as(err, OMS_ECONFLICT, "lock_conflict", "the lock conflicts with locks already held");
}

void oms_lock_acquire_row(const oms_lock *l, int64_t ttl_s, oms_lock_row_new *row)
{
    int64_t ttl_ms = ttl_s * 1000;
    int64_t hb_ms = OMS_LOCK_MISSED_HEARTBEATS * l->heartbeat_seconds * 1000;
    *row = (oms_lock_row_new){.id = l->id,
                              .branch = l->branch,
                              .scope = l->scope,
                              .resource_type = l->resource_type,
                              .resource_id = l->resource_id,
                              .kind = l->kind,
                              .holder = l->holder,
                              .reason = l->reason,
                              .ttl_ms = ttl_ms,
                              .heartbeat_seconds = l->heartbeat_seconds,
                              .deadline_ms = l->heartbeat_seconds > 0 && hb_ms < ttl_ms ? hb_ms : ttl_ms};
}

void oms_lock_granted(oms_lock *l, int64_t now, int64_t token, int64_t ttl_s)
{
    oms_lock_row_new row;
    oms_lock_acquire_row(l, ttl_s, &row);
    l->fencing_token = token;
    l->acquired_at = l->last_heartbeat_at = now;
    l->expires_at = now + row.ttl_ms;
    l->deadline_at = now + row.deadline_ms;
    oms_locks_granted_remember(l);
}

json_t *oms_lock_acquire_detail(const oms_lock *l, int64_t ttl_s)
{
    json_t *d = lock_detail(l);
    json_object_set_new(d, "ttl_seconds", json_integer(ttl_s));
    json_object_set_new(d, "heartbeat_seconds", json_integer(l->heartbeat_seconds));
    return d;
}

json_t *oms_lock_release_detail(const oms_lock *l, const char *reason)
{
    json_t *d = lock_detail(l);
    if (reason)
        json_object_set_new(d, "reason", json_string(reason));
    return d;
}

int oms_lock_acquire_tx(oms_dbconn *c, oms_ctx *ctx, int64_t ttl_s, oms_lock_admin_fn admin, void *arg,
                        oms_lock_change *out, oms_error *err)
{
    oms_lock *l = &out->lock;
    /* Conflict check and insert under one transaction-scoped lock per
     * branch: concurrent acquisitions on a branch, through any instance,
     * are serialised; the lock is released by COMMIT or ROLLBACK, never left
     * in a session. The check is a new statement after the lock is granted,
     * so it sees every acquisition committed before (docs/locks.md). */
    int rc = oms_store_lock_branch_xact(c, l->branch, false, err);
    if (rc)
        return rc;
    /* Protected branches (SPEC §4) change only through approved proposals
     * and overrides; a lock that covers the whole branch or a whole kind of
     * it would let whoever holds lock:write hold those merges off for up to
     * OMS_LOCK_TTL_MAX_S. So there the scopes `branch` and `resource_type`
     * need lock:admin; a `resource` lock needs lock:write as anywhere
     * (docs/locks.md). The flag is read inside the acquiring transaction. */
    /* The flag is read in the insert's round trip (after the advisory
     * lock, before the insert) and judged before the insert's outcome: an
     * insert that a refusal here follows is rolled back with it. */
    oms_dbres *prot = NULL;
    if (strcmp(l->scope, "resource") != 0 && (rc = oms_store_branch_protected_later(c, l->branch, &prot, err)))
        return rc;
    oms_lock_row_new row;
    oms_lock_acquire_row(l, ttl_s, &row);
    bool inserted = false;
    int64_t now = 0, token = 0;
    rc = oms_store_lock_insert(c, &row, &inserted, &now, &token, err);
    bool protected_branch = rc == OMS_OK && prot && prot->nrows == 1 && oms_dbres_int(prot, 0, 0) != 0;
    oms_dbres_free(prot);
    if (rc)
        return rc;
    if (protected_branch &&
        (rc = admin(ctx, arg, l->branch, json_pack("{s:s,s:b}", "scope", l->scope, "branch_protected", 1), err)))
        return rc;
    /* A refusal the scan cannot explain means the conflict ended between
     * the two statements: the insert is tried again, still under the
     * branch's lock. One that stays unexplained is a bug in one of the two
     * rules: refused rather than guessed. */
    for (int attempt = 0; !inserted; attempt++) {
        if ((rc = explain_refusal(c, ctx, l, err)) != OMS_OK)
            return rc;
        if (attempt == ACQUIRE_RETRIES)
            return oms_err_set(err, OMS_EINTERNAL, "lock conflict rules disagree");
        if ((rc = oms_store_lock_insert(c, &row, &inserted, &now, &token, err)) != OMS_OK)
            return rc;
    }
    oms_lock_granted(l, now, token, ttl_s);
    out->now = now;
    lock_event(out, 201, oms_lock_acquire_detail(l, ttl_s));
    return OMS_OK;
}

void oms_lock_prepare(oms_ctx *ctx, oms_lock *l)
{
    char *id = oms_arena_alloc(ctx->arena, OMS_LOCK_ID_LEN + 1);
    oms_lock_new_id(id);
    l->id = id;
    l->holder = ctx->sub;
    l->state = "active";
}

/* ---- reading ---- */

/* Loads the lock `id` (OMS_ENOTFOUND when none) with the database clock;
 * `for_update` row-locks it where the backend locks rows. */
static int load_lock(oms_dbconn *c, oms_ctx *ctx, const char *id, bool for_update, oms_lock *l, int64_t *now,
                     oms_error *err)
{
    if (!oms_lock_id_valid(id))
        return oms_err_set(err, OMS_ENOTFOUND, "no lock %.64s", id);
    oms_dbres *r = NULL;
    int rc = oms_store_lock_load(c, id, for_update, false, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no lock %s", id);
    if (rc == OMS_OK) {
        *now = oms_dbres_int(r, 0, 0);
        oms_lock_from_row(l, r, 0, 1, ctx->arena);
    }
    oms_dbres_free(r);
    return rc;
}

int oms_lock_get(oms_ctx *ctx, const char *id, oms_lock *l, int64_t *now, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = load_lock(c, ctx, id, false, l, now, err);
    if (rc == OMS_EDB)
        oms_db_conn_reset(ctx->store->db);
    return rc;
}

/* ---- changing a held lock ---- */

static int not_holder(oms_ctx *ctx, const oms_lock *l, oms_error *err)
{
    oms_ctx_problem_extra(ctx, json_pack("{s:s}", "holder", l->holder));
    return oms_err_set(err, OMS_ELOCKNOTHOLDER, "only the lock's holder may do this");
}

static int not_active(oms_ctx *ctx, const oms_lock *l, int64_t now, oms_error *err)
{
    oms_ctx_problem_extra(ctx, json_pack("{s:o}", "lock", oms_lock_json(l, now)));
    return oms_err_set_as(err, OMS_ECONFLICT, "lock_not_active", "the lock is %s", oms_lock_effective_state(l, now));
}

/* Refuses members outside `allowed` (typos never pass silently). */
static int only_fields(const json_t *o, const char *const *allowed, oms_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            known = known || strcmp(key, allowed[i]) == 0;
        if (!known)
            return oms_err_set(err, OMS_EINVAL, "unknown field %.64s", key);
    }
    return OMS_OK;
}

/* An optional string member of 1..max bytes (absent or null: NULL). */
static int opt_str(const json_t *o, const char *name, size_t max, const char **out, oms_error *err)
{
    const json_t *v = json_object_get(o, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return OMS_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return oms_err_set(err, OMS_EINVAL, "%s must be a string of 1 to %zu bytes", name, max);
    *out = json_string_value(v);
    return OMS_OK;
}

static const char *const k_heartbeat_fields[] = {"progress", NULL};
static const char *const k_progress_fields[] = {"percent", "phase", "message", NULL};

/* Applies the heartbeat body's progress to *l (OMS_EINVAL when the body is
 * not a heartbeat). */
static int apply_progress(const json_t *b, oms_lock *l, int64_t now, oms_error *err)
{
    if (!b)
        return OMS_OK;
    if (!json_is_object(b))
        return oms_err_set(err, OMS_EINVAL, "the body must be {\"progress\": {\"percent\", \"phase\", \"message\"}}");
    int rc = only_fields(b, k_heartbeat_fields, err);
    if (rc)
        return rc;
    const json_t *p = json_object_get(b, "progress");
    if (!p || json_is_null(p))
        return OMS_OK;
    if (!json_is_object(p))
        return oms_err_set(err, OMS_EINVAL, "progress must be an object");
    if ((rc = only_fields(p, k_progress_fields, err)))
        return rc;
    const json_t *pct = json_object_get(p, "percent");
    if (pct && !json_is_null(pct)) {
        if (!json_is_number(pct) || json_number_value(pct) < 0 || json_number_value(pct) > 100)
            return oms_err_set(err, OMS_EINVAL, "progress.percent must be a number from 0 to 100");
        l->has_percent = true;
        l->percent = json_number_value(pct);
    }
    const char *phase, *message;
    if ((rc = opt_str(p, "phase", OMS_LOCK_PHASE_MAX, &phase, err)) ||
        (rc = opt_str(p, "message", OMS_LOCK_MESSAGE_MAX, &message, err)))
        return rc;
    if (phase)
        l->phase = phase;
    if (message)
        l->message = message;
    l->progress_updated_at = now;
    return OMS_OK;
}

/* Heartbeat and extend: the holder proves it is alive (and may report
 * progress, or lengthen the TTL). */
int oms_lock_touch_tx(oms_dbconn *c, oms_ctx *ctx, const char *id, bool extend, int64_t ttl_s, const json_t *body,
                      oms_lock_change *out, oms_error *err)
{
    oms_lock *l = &out->lock;
    int64_t now = 0, ttl = ttl_s;
    int rc = load_lock(c, ctx, id, true, l, &now, err);
    if (rc)
        return rc;
    out->now = now;
    if (strcmp(l->holder, ctx->sub ? ctx->sub : "") != 0)
        return not_holder(ctx, l, err);
    if (!oms_lock_live(l, now))
        return not_active(ctx, l, now, err);
    int64_t previous_expiry = l->expires_at;
    if (!extend && (rc = apply_progress(body, l, now, err)))
        return rc;
    if (extend) {
        if (ttl < 0)
            ttl = oms_lock_default_ttl(l->kind);
        /* extend never shortens a lock */
        if (now + ttl * 1000 > l->expires_at)
            l->expires_at = now + ttl * 1000;
    }
    l->last_heartbeat_at = now;
    l->deadline_at = deadline_of(l->expires_at, l->heartbeat_seconds, now);
    if ((rc = oms_store_lock_liveness(c, l->id, l->expires_at, l->last_heartbeat_at, l->deadline_at, l->has_percent,
                                      l->percent, l->phase, l->message, l->progress_updated_at, err)))
        return rc;
    if (!extend) {
        out->unaudited = true; /* heartbeats are liveness, audited only on failure */
        return OMS_OK;
    }
    json_t *d = lock_detail(l);
    char prev[40], next[40];
    oms_time_rfc3339_ms(prev, sizeof prev, previous_expiry);
    oms_time_rfc3339_ms(next, sizeof next, l->expires_at);
    json_object_set_new(d, "previous_expires_at", json_string(prev));
    json_object_set_new(d, "expires_at", json_string(next));
    lock_event(out, 200, d);
    return OMS_OK;
}

/* ---- release ---- */

static int issue_required(oms_ctx *ctx, const json_t *invalid, oms_error *err)
{
    json_t *examples = json_pack("[s,s,s,s]", "X-Issue-ID: OPS-123", "X-Issue-IDs: OPS-123,GH-42",
                                 "{\"issue_id\": \"OPS-123\"}", "{\"issue_ids\": [\"#123\"]}");
    json_t *inv = invalid ? json_deep_copy(invalid) : json_array();
    oms_ctx_problem_extra(ctx, json_pack("{s:o,s:o}", "invalid", inv, "examples", examples));
    return oms_err_set_as(err, OMS_EUNPROCESSABLE, "issue_required",
                          "releasing another holder's lock needs an issue reference");
}

/* The holder releases its lock; anyone else needs lock:admin, an issue
 * reference, and raises a security alert (SPEC §7, §10). */
int oms_lock_release_tx(oms_dbconn *c, oms_ctx *ctx, const char *id, const char *reason, json_t *issue_keys,
                        const json_t *invalid, oms_lock_admin_fn admin, void *arg, oms_lock_change *out,
                        oms_error *err)
{
    oms_lock *l = &out->lock;
    const char *sub = ctx->sub ? ctx->sub : "";
    int64_t now = 0;
    bool done = false;
    int rc = OMS_OK;
    /* The common case in one statement: the holder releases its live lock.
     * Otherwise (someone else's, ended, unknown) the slow path explains. */
    if (oms_lock_id_valid(id)) {
        oms_dbres *r = NULL;
        rc = oms_store_lock_release_own(c, id, sub, &r, err);
        if (rc == OMS_OK && r->nrows == 1) {
            now = oms_dbres_int(r, 0, 0);
            oms_lock_from_row(l, r, 0, 1, ctx->arena);
            done = true;
        }
        oms_dbres_free(r);
        if (rc)
            return rc;
    }
    if (!done && (rc = load_lock(c, ctx, id, true, l, &now, err)))
        return rc;
    out->now = now;
    bool forced = !done && strcmp(l->holder, sub) != 0;
    if (forced) {
        ctx->audit_action = "lock.force_release";
        if ((rc = admin(ctx, arg, l->branch, json_pack("{s:s}", "holder", l->holder), err)))
            return rc;
        if (json_array_size(issue_keys) == 0 || json_array_size(invalid) > 0)
            return issue_required(ctx, invalid, err);
        ctx->issue_keys = issue_keys;
    }
    if (!done && !oms_lock_live(l, now))
        return not_active(ctx, l, now, err);
    if (!done) {
        l->state = forced ? "force_released" : "released";
        l->ended_at = now;
        l->ended_by = sub;
        if ((rc = oms_store_lock_end(c, l->id, l->state, now, sub, err)))
            return rc;
    }
    oms_locks_granted_forget(l->id);
    lock_event(out, 200, oms_lock_release_detail(l, reason));
    if (forced) {
        out->alert_rule = "forced_lock_release";
        out->alert_severity = "warning";
        out->alert_detail = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s?}", "rule", "forced_lock_release",
                                      "severity", "warning", "lock_id", l->id, "branch", l->branch, "holder",
                                      l->holder, "released_by", sub, "kind", l->kind, "reason", reason);
    }
    return OMS_OK;
}
