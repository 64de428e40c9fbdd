#include "vcs/merging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "http/app.h"
#include "governance/overrides.h"
#include "locks/lock_check.h"
#include "infra/metrics.h"
#include "search/index.h"
#include "util/time.h"
#include "vcs/commit.h"
#include "vcs/merge.h"
#include "vcs/refs.h"
#include "vcs/snapshot.h"
#include "vcs/write.h"

void oms_merge_result_clear(oms_merge_result *r)
{
    json_decref(r->changes);
    json_decref(r->conflicts);
    json_decref(r->problem_extra);
    memset(r, 0, sizeof *r);
}

static int read_head(oms_dbconn *c, const char *branch, char head[65], bool *protect, bool for_update, bool pg,
                     oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_exec(c,
                         for_update && pg ? "SELECT head, protected FROM branches WHERE name = $1 FOR UPDATE"
                                          : "SELECT head, protected FROM branches WHERE name = $1",
                         p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
    if (rc == OMS_OK) {
        snprintf(head, 65, "%s", oms_dbres_get(r, 0, 0));
        if (protect)
            *protect = oms_dbres_int(r, 0, 1) != 0;
    }
    oms_dbres_free(r);
    return rc;
}

static const char *const *changed_keys(oms_request *req, const json_t *changes, size_t *n)
{
    *n = json_array_size(changes);
    const char **keys = oms_arena_alloc(req->arena, (*n + 1) * sizeof *keys);
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) keys[i] = oms_arena_strdup(req->arena, json_string_value(json_object_get(ch, "resource")));
    return keys;
}

/* The target moves to the source's commit: no new commit. */
static int fast_forward(oms_request *req, const oms_merge_request *m, oms_merge_result *out, oms_error *err)
{
    bool pg = oms_db_backend_of(req->app->store->db) == OMS_DB_PG;
    oms_dbconn *c;
    int rc = oms_db_conn(req->app->store->db, &c, err);
    if (rc || (rc = oms_db_begin(c, true, err)))
        return rc;
    char head[65];
    bool protect = false, writing = false; /* past the checks: the outcome counts in /metrics */
    if ((rc = read_head(c, m->target, head, &protect, true, pg, err)))
        goto fail;
    if (strcmp(head, out->target_head) != 0) {
        rc = oms_err_set(err, OMS_EPRECOND, "the target moved during the merge; retry");
        goto fail;
    }
    if (protect && !m->bypass_protection && !oms_override_permits(oms_req_ctx(req), "protected_branch", m->target, NULL, 0)) {
        out->problem_code = "protected_branch";
        rc = oms_err_set(err, OMS_EFORBIDDEN, "%s is protected: merge through an approved proposal", m->target);
        goto fail;
    }
    size_t n;
    const char *const *keys = changed_keys(req, out->changes, &n);
    if (!oms_override_in_scope(oms_req_ctx(req), keys, n)) {
        out->problem_code = "override_out_of_scope";
        rc = oms_err_set(err, OMS_EFORBIDDEN, "the override covers only %s", req->ctx.override.resource);
        goto fail;
    }
    if ((rc = oms_lock_check_write(c, oms_req_ctx(req), m->target, keys, n, err))) {
        out->problem_extra = oms_ctx_take_problem_extra(&req->ctx);
        goto fail;
    }
    writing = true;
    oms_dbparam p[] = {DBP_TEXT(out->source_head), DBP_INT(oms_now_ms()), DBP_TEXT(m->target), DBP_TEXT(head)};
    oms_dbres *r = NULL;
    rc = oms_db_exec(c, "UPDATE branches SET head = $1, updated_at = $2 WHERE name = $3 AND head = $4", p, 4, &r, err);
    if (rc == OMS_OK && r->changes != 1)
        rc = oms_err_set(err, OMS_EPRECOND, "the target moved during the merge; retry");
    oms_dbres_free(r);
    if (rc)
        goto fail;
    oms_dbparam q[] = {DBP_TEXT(m->target)};
    if ((rc = oms_db_exec(c, "DELETE FROM branch_resources WHERE branch = $1", q, 1, NULL, err)) ||
        (rc = oms_materialize_commit(c, m->target, out->source_head, err)))
        goto fail;
    {
        /* the target's search index moves with its head: the resources the
         * fast-forward changes, as they are at the source's commit */
        oms_snapshot *ss = NULL;
        if ((rc = oms_snapshot_for_commit(c, out->source_head, &ss, err)) == OMS_OK)
            rc = oms_search_on_commit(c, m->target, ss, out->changes, out->source_head, err);
        oms_snapshot_unref(ss);
        if (rc)
            goto fail;
    }
    if ((rc = oms_governance_in_tx(c, oms_req_ctx(req), err)))
        goto fail;
    char *issue_keys = m->issue_keys ? json_dumps(m->issue_keys, JSON_COMPACT) : NULL;
    oms_audit_event ev = {.action = m->audit_action, .outcome = "success", .http_status = 200,
                          .resource_kind = "branches", .resource_branch = m->target, .resource_id = m->target,
                          .commit_id = out->source_head, .before_hash = head, .after_hash = out->source_head,
                          .issue_keys = issue_keys, .override_id = req->ctx.override.used ? req->ctx.override.id : m->override_id,
                          .detail = m->audit_detail ? m->audit_detail : "{\"fast_forward\":true}"};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    rc = oms_audit_append(c, &ev, err);
    free(issue_keys);
    if (rc) {
        rc = oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
        goto fail;
    }
    if (m->in_tx && (rc = m->in_tx(c, m->in_tx_ctx, out->source_head, err)))
        goto fail;
    rc = oms_db_commit(c, err);
    oms_metrics_commit(OMS_COMMIT_FAST_FORWARD, rc);
    if (rc)
        return rc;
    snprintf(out->commit, sizeof out->commit, "%s", out->source_head);
    out->status = "fast_forward";
    return OMS_OK;
fail:
    if (writing)
        oms_metrics_commit(OMS_COMMIT_FAST_FORWARD, rc);
    oms_db_rollback(c);
    return rc;
}

static oms_write_op *ops_from_result(oms_request *req, const oms_snapshot *target, const json_t *result, size_t *n,
                                     json_t *errors)
{
    *n = 0;
    oms_write_op *ops = oms_arena_alloc(req->arena, (json_object_size(result) + 1) * sizeof *ops);
    const char *key;
    json_t *doc;
    json_object_foreach((json_t *)result, key, doc) {
        oms_write_op *op = &ops[*n];
        char seg[32];
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(key, "/"), key);
        if (oms_kind_parse(&op->kind, seg))
            continue;
        op->api_name = oms_arena_strdup(req->arena, strchr(key, '/') + 1);
        bool exists = oms_snapshot_get_key(target, key) != NULL;
        if (json_is_null(doc)) {
            if (!exists)
                continue;
            op->op = OMS_OP_DELETE;
        } else {
            op->op = exists ? OMS_OP_REPLACE : OMS_OP_CREATE;
            json_t *errs = json_array();
            if (oms_validate_document(op->kind, doc, op->api_name, errs) > 0) {
                size_t i;
                json_t *e;
                json_array_foreach(errs, i, e) json_object_set_new(e, "resource", json_string(key));
                json_array_extend(errors, errs);
            }
            json_decref(errs);
            op->doc = doc;
        }
        (*n)++;
    }
    return ops;
}

static int three_way(oms_request *req, const oms_merge_request *m, oms_snapshot *bs, oms_snapshot *ss,
                     oms_snapshot *ts, oms_merge_result *out, oms_error *err)
{
    oms_merge_outcome mo = {0};
    oms_merge_snapshots(bs, ss, ts, m->resolutions, &mo);
    int rc = OMS_OK;
    if (json_array_size(mo.conflicts)) {
        out->conflicts = json_incref(mo.conflicts);
        out->problem_code = "merge_conflict";
        out->problem_extra = json_pack("{s:O,s:s,s:s,s:s}", "conflicts", mo.conflicts, "merge_base", out->base,
                                       "source_head", out->source_head, "target_head", out->target_head);
        rc = oms_err_set(err, OMS_ECONFLICT, "%zu conflicting resource(s): resolve each with \"source\", \"target\" or a document",
                         json_array_size(mo.conflicts));
        goto done;
    }
    json_t *errors = json_array();
    size_t n;
    oms_write_op *ops = ops_from_result(req, ts, mo.result, &n, errors);
    if (json_array_size(errors)) {
        out->problem_code = "invalid_document";
        out->problem_extra = json_pack("{s:o}", "errors", errors);
        rc = oms_err_set(err, OMS_EINVAL, "a merged or resolved document is not valid");
        goto done;
    }
    json_decref(errors);
    char *message = m->message ? NULL : oms_arena_printf(req->arena, "Merge %s into %s", m->source, m->target);
    oms_write w = {.branch = m->target, .if_match_head = out->target_head, .ops = ops, .nops = n,
                   .message = m->message ? m->message : message, .issue_keys = m->issue_keys,
                   .override_id = m->override_id, .dry_run = m->dry_run, .audit_action = m->audit_action,
                   .merge_parent = out->source_head, .bypass_protection = m->bypass_protection,
                   .audit_resource_kind = "branches", .audit_resource_id = m->target,
                   .audit_detail = m->audit_detail, .success_status = 200, .allow_empty = true,
                   .in_tx = m->in_tx, .in_tx_ctx = m->in_tx_ctx};
    oms_write_result wr;
    rc = oms_vcs_write(req, &w, &wr, err);
    if (rc) {
        out->problem_code = wr.problem_code;
        out->problem_extra = wr.problem_extra;
        wr.problem_extra = NULL;
    } else {
        snprintf(out->commit, sizeof out->commit, "%s", wr.commit);
        json_decref(out->changes);
        out->changes = json_incref(wr.changes);
        out->breaking = wr.breaking;
        out->status = "merged";
    }
    oms_write_result_clear(&wr);
done:
    oms_merge_outcome_clear(&mo);
    return rc;
}

int oms_vcs_merge(oms_request *req, const oms_merge_request *m, oms_merge_result *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    bool pg = oms_db_backend_of(req->app->store->db) == OMS_DB_PG;
    oms_snapshot *bs = NULL, *ss = NULL, *ts = NULL;
    oms_dbconn *c;
    int rc = oms_db_conn(req->app->store->db, &c, err);
    /* The target may move between reading it and writing: retry a few times. */
    for (int attempt = 0; rc == OMS_OK && attempt < 3; attempt++) {
        if ((rc = oms_resolve_ref(c, m->source, out->source_head, err)) ||
            (rc = read_head(c, m->target, out->target_head, NULL, false, pg, err)) ||
            (rc = oms_merge_base(c, out->source_head, out->target_head, out->base, err)))
            break;
        if ((rc = oms_snapshot_for_commit(c, out->source_head, &ss, err)) ||
            (rc = oms_snapshot_for_commit(c, out->target_head, &ts, err)))
            break;
        json_decref(out->changes);
        out->changes = oms_snapshot_diff(ts, ss, &out->breaking);
        if (strcmp(out->base, out->source_head) == 0) {
            json_decref(out->changes);
            out->changes = json_array();
            out->breaking = false;
            out->status = "up_to_date";
            snprintf(out->commit, sizeof out->commit, "%s", out->target_head);
            break;
        }
        if (strcmp(out->base, out->target_head) == 0) {
            if (m->dry_run) {
                out->status = "fast_forward";
                snprintf(out->commit, sizeof out->commit, "%s", out->source_head);
                break;
            }
            rc = fast_forward(req, m, out, err);
        } else if ((rc = oms_snapshot_for_commit(c, out->base, &bs, err)) == OMS_OK) {
            rc = three_way(req, m, bs, ss, ts, out, err);
        }
        oms_snapshot_unref(bs);
        oms_snapshot_unref(ss);
        oms_snapshot_unref(ts);
        bs = ss = ts = NULL;
        if (rc != OMS_EPRECOND)
            break;
        /* the target moved: merge again against its new head */
        json_decref(out->problem_extra);
        out->problem_extra = NULL;
        out->problem_code = NULL;
        rc = OMS_OK;
        if (attempt == 2)
            rc = oms_err_set(err, OMS_ECONFLICT, "the target kept moving; retry the merge");
    }
    oms_snapshot_unref(bs);
    oms_snapshot_unref(ss);
    oms_snapshot_unref(ts);
    return rc;
}
