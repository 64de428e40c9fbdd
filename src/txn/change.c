#include "txn/change.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/acl_store.h"
#include "governance/overrides.h"
#include "infra/metrics.h"
#include "locks/lock_check.h"
#include "store/audit_sql.h"
#include "store/store.h"
#include "txn/group_commit.h"

/* A transaction PostgreSQL rolled back so that another could go on (a
 * serialization failure, 40001, or a deadlock, 40P01: OMS_EUNAVAIL with
 * that message, store/db_errors.c) is run again this many times more
 * before it is answered. */
#define MAX_RETRIES 2

static _Atomic(oms_change_outbox_fn) g_outbox;
static _Atomic(oms_change_outbox_render_fn) g_outbox_render;

void oms_change_set_outbox(oms_change_outbox_fn fn) { atomic_store(&g_outbox, fn); }
void oms_change_set_outbox_render(oms_change_outbox_render_fn fn) { atomic_store(&g_outbox_render, fn); }

static const char *action_of(const oms_ctx *ctx, const oms_change_spec *spec)
{
    return spec->action ? spec->action : ctx->audit_action ? ctx->audit_action : ctx->route_action;
}

/* The route's key spec (docs/architecture.md, "The route table and key specs") as a lock key
 * on the change's branch: set before the step, so every lock check of this
 * attempt (the step's own, or the one below) unions it with what the step
 * reports. */
static void declare_key(oms_ctx *ctx, const oms_change_spec *spec)
{
    ctx->touch_key = NULL;
    ctx->touch_branch = spec->check_locks ? spec->branch : NULL;
    ctx->touch_checked = false;
    if (!ctx->touch_branch)
        return;
    if (ctx->touches == OMS_TOUCH_BRANCH)
        ctx->touch_key = OMS_LOCK_WHOLE_BRANCH;
    else if (ctx->touches == OMS_TOUCH_RESOURCE && ctx->kind_segment && ctx->api_name)
        ctx->touch_key = oms_arena_printf(ctx->arena, "%s/%s", ctx->kind_segment, ctx->api_name);
}

static int check_locks(oms_dbconn *c, oms_ctx *ctx, const oms_change_spec *spec, const oms_change_out *out,
                       oms_error *err)
{
    const char *branch = out->branch ? out->branch : spec->branch;
    if (!spec->check_locks || !branch)
        return OMS_OK;
    static const char *const whole[] = {OMS_LOCK_WHOLE_BRANCH};
    int rc = OMS_OK;
    if (!out->locks_checked) /* else the step checked in its own order */
        rc = out->whole_branch ? oms_lock_check_write(c, ctx, branch, whole, 1, err)
                               : oms_lock_check_write(c, ctx, branch, out->touched, out->ntouched, err);
    /* the declared key is checked even when no check above included it
     * (a step that checked another branch, or reported another one) */
    if (rc == OMS_OK && ctx->touch_key && !ctx->touch_checked)
        rc = oms_lock_check_write(c, ctx, ctx->touch_branch, NULL, 0, err);
    return rc;
}

/* The change's audit event; *keys and *detail (malloc'd, may be NULL) are
 * the texts it points to, the caller frees them. */
static void event_of(oms_ctx *ctx, const char *action, const oms_change_out *out, oms_audit_event *ev, char **keys,
                     char **detail)
{
    *ev = (oms_audit_event){.action = action,
                            .outcome = "success",
                            .http_status = out->status ? out->status : 200,
                            .resource_kind = out->resource_kind,
                            .resource_branch = out->branch,
                            .resource_id = out->resource_id,
                            .commit_id = out->commit_id,
                            .before_hash = out->before_hash,
                            .after_hash = out->after_hash,
                            .changed_paths = out->changed_paths};
    oms_audit_from_ctx(ev, ctx);
    *keys = ctx->issue_keys && json_array_size(ctx->issue_keys) ? json_dumps(ctx->issue_keys, JSON_COMPACT) : NULL;
    *detail = out->detail ? json_dumps(out->detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    ev->issue_keys = *keys;
    ev->detail = *detail;
    ev->override_id = out->override_id ? out->override_id : ctx->override.used ? ctx->override.id : NULL;
}

static int append_event(oms_dbconn *c, oms_ctx *ctx, const char *action, const oms_change_out *out, oms_error *err)
{
    oms_audit_event ev;
    char *keys, *detail;
    event_of(ctx, action, out, &ev, &keys, &detail);
    int rc = oms_audit_append(c, &ev, err);
    free(keys);
    free(detail);
    return rc ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}

/* Nothing of it was kept, and running it again is what the database asks
 * for: the lock orders (docs/locks.md) leave no deadlock among the
 * server's own transactions, but another client of the database, or a
 * path not foreseen, can still close a cycle, and the victim's request
 * then waits for its turn instead of failing with 503. */
static bool rolled_back_for_another(int rc, const oms_error *err)
{
    return rc == OMS_EUNAVAIL &&
           (strstr(err->msg, "serialization failure") != NULL || strstr(err->msg, "deadlock detected") != NULL);
}

/* The deferred checks decided after the step, whatever it answered: a
 * refusal replaces the step's answer (the request learns nothing the
 * refused permission guards). When the policies cannot be read nothing is
 * decided: the step's own server error stands (a retry, or the pipeline
 * before it answers, settles again), any other answer becomes that 503. */
static int settle(oms_dbconn *c, oms_ctx *ctx, oms_dbres **rows, int step_rc, oms_error *err)
{
    oms_error e;
    int rc = oms_acl_settle(c, ctx, rows, &e);
    if (rc == OMS_OK)
        return step_rc;
    if (rc != OMS_EFORBIDDEN && step_rc != OMS_OK && oms_err_http_status((oms_err)step_rc) >= 500) {
        ctx->acl_deferred.unreadable = false; /* the answer is the step's; the checks stay undecided */
        return step_rc;
    }
    if (rc != OMS_EFORBIDDEN)
        oms_ctx_problem_extra(ctx, NULL);
    *err = e;
    return rc;
}

/* The change's work inside an open transaction: the step, then the lock
 * check of what it touched, override use, audit event, after-event hook and
 * outbox. Alone it is wrapped by BEGIN and COMMIT (run_once); in a group
 * commit, by the member's savepoint (group_commit.c). */
static int change_body(oms_dbconn *c, oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out,
                       oms_error *err)
{
    declare_key(ctx, spec);
    oms_change_outbox_fn outbox = atomic_load(&g_outbox);
    /* Checks the request left to this transaction (auth/acl_store.h): the
     * version read travels with the step's first statement. */
    oms_dbres *acl_rows = NULL;
    bool held = oms_acl_deferring(ctx);
    int rc = held ? oms_acl_version_later(c, &acl_rows, err) : OMS_OK;
    if (rc == OMS_OK)
        rc = spec->step(c, ctx, spec->arg, out, err);
    if (oms_acl_deferring(ctx))
        rc = settle(c, ctx, held ? &acl_rows : NULL, rc, err);
    oms_dbres_free(acl_rows);
    if (rc != OMS_OK || out->no_op)
        return rc;
    /* after the step, which may have named a more precise action */
    const char *action = action_of(ctx, spec);
    if (!out->branch)
        out->branch = spec->branch;
    if ((rc = check_locks(c, ctx, spec, out, err)) == OMS_OK && (rc = oms_governance_in_tx(c, ctx, err)) == OMS_OK &&
        (out->unaudited || (rc = append_event(c, ctx, action, out, err)) == OMS_OK) &&
        (!spec->after_event || (rc = spec->after_event(c, ctx, spec->arg, out, err)) == OMS_OK))
        rc = outbox ? outbox(c, ctx, action, out, err) : OMS_OK;
    return rc;
}

static int run_once(oms_dbconn *c, oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_error *err)
{
    int rc = oms_db_begin(c, true, err);
    if (rc)
        return rc;
    rc = change_body(c, ctx, spec, out, err);
    if (rc == OMS_OK && !out->no_op) {
        if ((rc = oms_db_commit(c, err)) == OMS_OK)
            ctx->audited = true;
        return rc;
    }
    oms_db_rollback(c);
    return rc;
}

/* The change in a transaction of its own, run again when the database
 * rolled it back for another (rolled_back_for_another). */
static int run_alone(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc)
        return rc;
    for (int attempt = 0;; attempt++) {
        json_decref(out->detail);
        memset(out, 0, sizeof *out);
        ctx->override.used = false;
        rc = run_once(c, ctx, spec, out, err);
        if (rc == OMS_OK || !rolled_back_for_another(rc, err) || attempt == MAX_RETRIES)
            break;
        oms_ctx_problem_extra(ctx, NULL);
    }
    if (rc == OMS_EDB)
        oms_db_conn_reset(ctx->store->db);
    return rc;
}

void oms_change_group_commit(bool on) { oms_group_commit_enable(on); }

/* The statement's answer when it could not be sent whole or its outcome is
 * not known: the usual way would meet the same (a lost connection, a
 * deadline passed), or must not run again (a COMMIT whose outcome is
 * unknown). Any other failure rolled the transaction back: the usual way
 * runs and reports it precisely. */
static bool final_failure(int rc) { return rc == OMS_EDB || rc == OMS_ETIMEOUT; }

/* The change in one round trip, when its step offers it
 * (oms_change_one_shot): *made when the statement made it (committed,
 * audited); otherwise nothing was kept, and the caller runs it the usual
 * way unless the answer is final (final_failure). */
static int run_one_shot(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, bool *made, oms_error *err)
{
    const oms_change_one_shot *os = spec->one_shot;
    *made = false;
    oms_change_outbox_fn outbox = atomic_load(&g_outbox);
    oms_change_outbox_render_fn render = atomic_load(&g_outbox_render);
    /* round trips to save, nothing checked after the step but what the
     * statement checks (locks of what it touched, an override's use) */
    if (!os || oms_db_reads_in_process(ctx->store->db) || spec->check_locks || ctx->override.needed ||
        (outbox && !render))
        return OMS_OK;
    int64_t acl_version = -1;
    if (!os->predict(ctx, spec->arg, out) ||
        (oms_acl_deferring(ctx) && !oms_acl_pinned_version(ctx, &acl_version)))
        return OMS_OK;
    const char *action = action_of(ctx, spec);
    if (!out->branch)
        out->branch = spec->branch;
    oms_event_row row = {0};
    bool none = true;
    oms_error ignored;
    if (render && render(ctx, action, out, &row, &none, &ignored) != OMS_OK)
        return OMS_OK;
    oms_audit_event ev;
    char *keys, *detail, event_id[40];
    event_of(ctx, action, out, &ev, &keys, &detail);
    oms_dbparam audit[OMS_AUDIT_EVENT_NPARAMS], event[OMS_EVENT_ROW_NPARAMS];
    oms_audit_event_params(&ev, event_id, audit);
    if (!none)
        oms_event_row_params(&row, event);
    oms_change_tail tail = {.acl_version = acl_version, .audit = audit, .event = none ? NULL : event};
    oms_dbconn *c;
    oms_dbres *rows = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK && (rc = oms_db_begin(c, true, err)) == OMS_OK) {
        if ((rc = os->send(c, ctx, spec->arg, &tail, &rows, err)) == OMS_OK)
            rc = oms_db_commit(c, err);
        else
            oms_db_rollback(c);
    }
    free(keys);
    free(detail);
    oms_event_row_free(&row);
    if (rc == OMS_OK && (*made = os->made(ctx, spec->arg, rows))) {
        ctx->audited = true;
        if (acl_version >= 0)
            oms_acl_settled_pinned(ctx);
    }
    oms_dbres_free(rows);
    if (rc == OMS_EDB)
        oms_db_conn_reset(ctx->store->db);
    oms_metrics_one_shot(*made);
    return rc != OMS_OK && final_failure(rc) ? rc : OMS_OK;
}

int oms_change_run(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    int rc;
    bool made = false;
    if (spec->one_shot && ((rc = run_one_shot(ctx, spec, out, &made, err)) != OMS_OK || made))
        goto done;
    /* A group's members share statements: deferred checks are decided
     * before a groupable change joins one. */
    oms_dbconn *c;
    if (spec->groupable && oms_acl_deferring(ctx) &&
        ((rc = oms_db_conn(ctx->store->db, &c, err)) || (rc = settle(c, ctx, NULL, OMS_OK, err)))) {
        if (rc == OMS_EDB)
            oms_db_conn_reset(ctx->store->db);
        return rc;
    }
    bool alone = false;
    bool grouped =
        spec->groupable && oms_group_commit_run(ctx, spec, out, change_body, run_alone, &rc, &alone, err);
    if (!grouped) {
        rc = run_alone(ctx, spec, out, err);
    } else if (!alone && rolled_back_for_another(rc, err)) {
        /* the group's transaction lost a race: alone, once more (a change
         * the group ran alone has had its own retries) */
        oms_ctx_problem_extra(ctx, NULL);
        rc = run_alone(ctx, spec, out, err);
    }
done:
    json_decref(out->detail);
    out->detail = NULL;
    ctx->touch_key = ctx->touch_branch = NULL; /* this change's only */
    return rc;
}
