#include "vcs/merging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "governance/overrides.h"
#include "locks/lock_check.h"
#include "infra/metrics.h"
#include "store/bulk_sql.h"
#include "store/store.h"
#include "store/vcs_sql.h"
#include "txn/change.h"
#include "util/time.h"
#include "vcs/commit.h"
#include "vcs/compat.h"
#include "vcs/merge.h"
#include "vcs/refs.h"
#include "vcs/snapshot.h"
#include "vcs/write.h"

void oms_merge_result_clear(oms_merge_result *r)
{
    json_decref(r->changes);
    json_decref(r->conflicts);
    memset(r, 0, sizeof *r);
}

static const char *const *changed_keys(oms_ctx *ctx, const json_t *changes, size_t *n)
{
    *n = json_array_size(changes);
    const char **keys = oms_arena_alloc(ctx->arena, (*n + 1) * sizeof *keys);
    if (!keys)
        return NULL;
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) keys[i] = json_string_value(json_object_get(ch, "resource"));
    return keys;
}

typedef struct {
    const oms_merge_request *m;
    oms_merge_result *out;
    bool writing; /* past the checks: the outcome counts in /metrics */
} ff_run;

typedef struct {
    const oms_snapshot *other;
    json_t *rows, *keys;
} adopt_ctx;

/* Source entries the target lacks or holds otherwise (content or provenance). */
static void adopt_changed(void *p, const oms_entry *e)
{
    adopt_ctx *a = p;
    const oms_entry *t = oms_snapshot_get_key(a->other, e->key);
    if (t && strcmp(t->hash, e->hash) == 0 && strcmp(t->commit, e->commit) == 0 && t->time_ms == e->time_ms &&
        strcmp(t->author ? t->author : "", e->author ? e->author : "") == 0)
        return;
    json_array_append_new(a->rows, json_pack("[s,s,s,s,I]", e->key, e->hash, e->commit, e->author ? e->author : "",
                                             (json_int_t)e->time_ms));
    json_array_append_new(a->keys, json_string(e->key));
}

/* Target entries the source does not have. */
static void adopt_removed(void *p, const oms_entry *e)
{
    adopt_ctx *a = p;
    if (!oms_snapshot_get_key(a->other, e->key))
        json_array_append_new(a->keys, json_string(e->key));
}

/* The state the target takes: the source branch's, with its provenance
 * (the target's first-parent line becomes the source's), while its head is
 * still `source_head`; else the commit's (provenance: the commit). */
static int source_state(oms_dbconn *c, const char *source, const char *source_head, oms_snapshot **out,
                        oms_error *err)
{
    if (!oms_is_commit_id(source) && oms_snapshot_for_branch_head(c, source, source_head, out, err) == OMS_OK) {
        if (strcmp((*out)->commit, source_head) == 0)
            return OMS_OK;
        oms_snapshot_unref(*out);
    }
    *out = NULL;
    return oms_snapshot_for_commit(c, source_head, out, err);
}

/* The target's rows become the source's state, with its provenance: only
 * the rows that differ are written (before, every row was deleted and
 * inserted again), its forks given theirs first. */
static int adopt_rows(oms_dbconn *c, const char *target, const char *head, const char *source,
                      const char *source_head, oms_error *err)
{
    oms_snapshot *before = NULL, *after = NULL;
    int rc = oms_snapshot_for_branch_head(c, target, head, &before, err);
    if (rc == OMS_OK)
        rc = source_state(c, source, source_head, &after, err);
    adopt_ctx changed = {before, json_array(), json_array()}, removed = {after, NULL, json_array()};
    if (rc == OMS_OK && (!changed.rows || !changed.keys || !removed.keys))
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (rc == OMS_OK) {
        oms_snapshot_each(after, adopt_changed, &changed);
        oms_snapshot_each(before, adopt_removed, &removed);
        json_t *all = json_copy(changed.keys);
        if (!all || json_array_extend(all, removed.keys))
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        bool has_forks = false;
        if (rc == OMS_OK)
            rc = oms_store_branch_has_forks(c, target, &has_forks, err);
        if (rc == OMS_OK && (!has_forks || (rc = oms_bulk_branch_push(c, target, all, err)) == OMS_OK) &&
            (rc = oms_bulk_branch_upsert_rows(c, target, changed.rows, err)) == OMS_OK)
            rc = oms_bulk_branch_delete(c, target, removed.keys, err);
        json_decref(all);
    }
    json_decref(changed.rows);
    json_decref(changed.keys);
    json_decref(removed.keys);
    oms_snapshot_unref(before);
    oms_snapshot_unref(after);
    return rc;
}

/* The fast-forward step: the target moves to the source's commit (no new
 * commit), its resource rows become the source commit's and the commit
 * hook (search index) follows. */
static int fast_forward_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *co, oms_error *err)
{
    ff_run *s = arg;
    const oms_merge_request *m = s->m;
    oms_merge_result *out = s->out;
    s->writing = false;
    char head[65];
    bool protect = false;
    int rc = oms_store_branch_head(c, m->target, true, head, &protect, err);
    if (rc)
        return rc;
    if (strcmp(head, out->target_head) != 0)
        return oms_err_set(err, OMS_EPRECOND, "the target moved during the merge; retry");
    if (protect && !m->bypass_protection && !oms_override_permits(ctx, "protected_branch", m->target, NULL, 0))
        return oms_err_set_as(err, OMS_EFORBIDDEN, "protected_branch", "%s is protected: merge through an approved proposal",
                              m->target);
    size_t n;
    const char *const *keys = changed_keys(ctx, out->changes, &n);
    if (!keys)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (!oms_override_in_scope(ctx, keys, n))
        return oms_err_set_as(err, OMS_EFORBIDDEN, "override_out_of_scope", "the override covers only %s",
                              ctx->override.resource);
    if ((rc = oms_lock_check_write(c, ctx, m->target, keys, n, err)))
        return rc;
    co->locks_checked = true;
    {
        /* the target's compatibility policy (SPEC §4), as for any write */
        oms_snapshot *after = NULL;
        if ((rc = oms_snapshot_for_commit(c, out->source_head, &after, err)) == OMS_OK)
            rc = oms_vcs_compat_check(c, ctx, m->target, head, after, out->changes, err);
        oms_snapshot_unref(after);
        if (rc)
            return rc;
    }
    s->writing = true;
    /* The rows before the head: the target's state is read (a cold load
     * reads the head with the rows, and caches the result under it) while
     * both are still the old ones. */
    if ((rc = adopt_rows(c, m->target, head, m->source, out->source_head, err)))
        return rc;
    bool moved = false;
    if ((rc = oms_store_branch_move_head(c, m->target, head, out->source_head, oms_now_ms(), &moved, err)))
        return rc;
    if (!moved)
        return oms_err_set(err, OMS_EPRECOND, "the target moved during the merge; retry");
    {
        /* the target's search index moves with its head: the resources the
         * fast-forward changes, as they are at the source's commit */
        oms_snapshot *ss = NULL;
        if ((rc = oms_snapshot_for_commit(c, out->source_head, &ss, err)) == OMS_OK)
            rc = oms_vcs_run_commit_hook(c, m->target, ss, out->changes, out->source_head, err);
        oms_snapshot_unref(ss);
        if (rc)
            return rc;
    }
    if (m->in_tx && (rc = m->in_tx(c, m->in_tx_ctx, out->source_head, err)))
        return rc;
    co->resource_kind = "branches";
    co->resource_id = m->target;
    co->branch = m->target;
    co->commit_id = out->source_head;
    co->before_hash = oms_arena_strdup(ctx->arena, head);
    co->after_hash = out->source_head;
    co->status = 200;
    co->detail = m->audit_detail ? json_deep_copy(m->audit_detail) : json_pack("{s:b}", "fast_forward", 1);
    if (!co->detail || !co->before_hash)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    return OMS_OK;
}

static int fast_forward(oms_ctx *ctx, const oms_merge_request *m, oms_merge_result *out, oms_error *err)
{
    ff_run s = {.m = m, .out = out};
    oms_change_spec spec = {.action = m->audit_action, .branch = m->target, .check_locks = true,
                            .step = fast_forward_step, .arg = &s};
    oms_change_out co;
    int rc = oms_change_run(ctx, &spec, &co, err);
    if (s.writing)
        oms_metrics_commit(OMS_COMMIT_FAST_FORWARD, rc);
    if (rc)
        return rc;
    snprintf(out->commit, sizeof out->commit, "%s", out->source_head);
    out->status = "fast_forward";
    return OMS_OK;
}

static oms_write_op *ops_from_result(oms_ctx *ctx, const oms_snapshot *target, const json_t *result, size_t *n,
                                     json_t *errors)
{
    *n = 0;
    oms_write_op *ops = oms_arena_alloc(ctx->arena, (json_object_size(result) + 1) * sizeof *ops);
    if (!ops)
        return NULL;
    const char *key;
    json_t *doc;
    json_object_foreach((json_t *)result, key, doc) {
        oms_write_op *op = &ops[*n];
        char seg[32];
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(key, "/"), key);
        if (oms_kind_parse(&op->kind, seg))
            continue;
        op->api_name = oms_arena_strdup(ctx->arena, strchr(key, '/') + 1);
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

static int three_way(oms_ctx *ctx, const oms_merge_request *m, oms_snapshot *bs, oms_snapshot *ss,
                     oms_snapshot *ts, oms_merge_result *out, oms_error *err)
{
    oms_merge_outcome mo = {0};
    oms_merge_snapshots(bs, ss, ts, m->resolutions, &mo);
    int rc = OMS_OK;
    if (json_array_size(mo.conflicts)) {
        out->conflicts = json_incref(mo.conflicts);
        oms_ctx_problem_extra(ctx, json_pack("{s:O,s:s,s:s,s:s}", "conflicts", mo.conflicts, "merge_base", out->base,
                                             "source_head", out->source_head, "target_head", out->target_head));
        rc = oms_err_set_as(err, OMS_ECONFLICT, "merge_conflict", "%zu conflicting resource(s): resolve each with \"source\", \"target\", a document"
                                                         " or {\"/field/pointer\": \"source\" | \"target\"}",
                         json_array_size(mo.conflicts));
        goto done;
    }
    json_t *errors = json_array();
    size_t n;
    oms_write_op *ops = ops_from_result(ctx, ts, mo.result, &n, errors);
    if (!ops || !errors) {
        json_decref(errors);
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto done;
    }
    if (json_array_size(errors)) {
        oms_ctx_problem_extra(ctx, json_pack("{s:o}", "errors", errors));
        rc = oms_err_set_as(err, OMS_EINVAL, "invalid_document", "a merged or resolved document is not valid");
        goto done;
    }
    json_decref(errors);
    char *message = m->message ? NULL : oms_arena_printf(ctx->arena, "Merge %s into %s", m->source, m->target);
    oms_write w = {.branch = m->target, .if_match_head = out->target_head, .ops = ops, .nops = n,
                   .message = m->message ? m->message : message, .dry_run = m->dry_run, .audit_action = m->audit_action,
                   .merge_parent = out->source_head, .bypass_protection = m->bypass_protection,
                   .audit_resource_kind = "branches", .audit_resource_id = m->target,
                   .audit_detail = m->audit_detail, .success_status = 200, .allow_empty = true,
                   .in_tx = m->in_tx, .in_tx_ctx = m->in_tx_ctx};
    oms_write_result wr;
    rc = oms_vcs_write(ctx, &w, &wr, err);
    if (rc == OMS_OK) {
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

int oms_vcs_merge(oms_ctx *ctx, const oms_merge_request *m, oms_merge_result *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    oms_snapshot *bs = NULL, *ss = NULL, *ts = NULL;
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    /* The target may move between reading it and writing: retry a few times. */
    for (int attempt = 0; rc == OMS_OK && attempt < 3; attempt++) {
        if ((rc = oms_resolve_ref(c, m->source, out->source_head, err)) ||
            (rc = oms_store_branch_head(c, m->target, false, out->target_head, NULL, err)) ||
            (rc = oms_merge_base(c, out->source_head, out->target_head, out->base, err)))
            break;
        if ((rc = oms_snapshot_for_commit(c, out->source_head, &ss, err)) ||
            (rc = oms_snapshot_for_commit(c, out->target_head, &ts, err)))
            break;
        json_decref(out->changes);
        out->changes = NULL;
        out->breaking = false;
        if (strcmp(out->base, out->source_head) == 0) {
            out->changes = json_array();
            out->status = "up_to_date";
            snprintf(out->commit, sizeof out->commit, "%s", out->target_head);
            break;
        }
        if (strcmp(out->base, out->target_head) == 0) {
            out->changes = oms_snapshot_diff(ts, ss, &out->breaking); /* what the target's head moves over */
            if (m->dry_run) {
                out->status = "fast_forward";
                snprintf(out->commit, sizeof out->commit, "%s", out->source_head);
                break;
            }
            rc = fast_forward(ctx, m, out, err);
        } else if ((rc = oms_snapshot_for_commit(c, out->base, &bs, err)) == OMS_OK) {
            rc = three_way(ctx, m, bs, ss, ts, out, err);
            /* A merge commit reports its own changes; one that could not be
             * made reports how the two heads differ (a conflict's view).
             * Only then: the difference of the heads grows with everything
             * the target gained since the source forked. */
            if (rc != OMS_OK && rc != OMS_EPRECOND && !out->changes)
                out->changes = oms_snapshot_diff(ts, ss, &out->breaking);
        }
        oms_snapshot_unref(bs);
        oms_snapshot_unref(ss);
        oms_snapshot_unref(ts);
        bs = ss = ts = NULL;
        if (rc != OMS_EPRECOND)
            break;
        /* the target moved: merge again against its new head */
        oms_ctx_problem_extra(ctx, NULL);
        rc = OMS_OK;
        if (attempt == 2)
            rc = oms_err_set(err, OMS_ECONFLICT, "the target kept moving; retry the merge");
    }
    oms_snapshot_unref(bs);
    oms_snapshot_unref(ss);
    oms_snapshot_unref(ts);
    return rc;
}
