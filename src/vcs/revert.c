#include "vcs/revert.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/vcs_sql.h"
#include "vcs/commit.h"
#include "vcs/snapshot.h"

static void decref_cb(void *p) { json_decref(p); }
static void dbres_cb(void *p) { oms_dbres_free(p); }
static void snapshot_cb(void *p) { oms_snapshot_unref(p); }

/* The document `hash` as it was stored, parsed (owned by the arena). A
 * document that is gone or unreadable fails the revert: undoing only part
 * of a commit would be a different change than the one asked for. */
static int load_document(oms_ctx *ctx, oms_dbconn *c, const char *key, const char *hash, json_t **out,
                         oms_error *err)
{
    oms_dbres *o = NULL;
    int rc = oms_store_object_content(c, hash, &o, err);
    if (rc)
        return rc;
    *out = o ? json_loads(oms_dbres_get(o, 0, 0), 0, NULL) : NULL;
    oms_dbres_free(o);
    if (!*out)
        return oms_err_set(err, OMS_EINTERNAL, "the revert cannot load the earlier version of %.120s (object %.12s):"
                           " nothing was reverted", key, hash);
    if (oms_arena_on_cleanup(ctx->arena, decref_cb, *out)) {
        json_decref(*out);
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    return OMS_OK;
}

int oms_vcs_revert(oms_ctx *ctx, const char *branch, const char *commit, const char *message, oms_write_result *res,
                   oms_error *err)
{
    memset(res, 0, sizeof *res);
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_snapshot *head = NULL;
    json_t *exists = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK && (rc = oms_store_commit_changes(c, commit, &r, err)) == OMS_OK &&
        oms_arena_on_cleanup(ctx->arena, dbres_cb, r)) {
        oms_dbres_free(r);
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    if (rc == OMS_OK && (rc = oms_snapshot_for_branch(c, branch, &head, err)) == OMS_OK &&
        oms_arena_on_cleanup(ctx->arena, snapshot_cb, head)) {
        oms_snapshot_unref(head);
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    if (rc)
        return rc;
    if (oms_commit_load_json(c, commit, &exists, err))
        return oms_err_set(err, OMS_ENOTFOUND, "no such commit");
    json_decref(exists);
    /* Each change must still be in place on the branch to be undone. */
    json_t *conflicts = json_array();
    oms_write_op *ops = oms_arena_alloc(ctx->arena, (r->nrows + 1) * sizeof *ops);
    if (!conflicts || !ops) {
        json_decref(conflicts);
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const char *key = oms_dbres_get(r, i, 0), *old_hash = oms_dbres_get(r, i, 2), *new_hash = oms_dbres_get(r, i, 3);
        const oms_entry *cur = oms_snapshot_get_key(head, key);
        bool in_place = new_hash ? (cur && strcmp(cur->hash, new_hash) == 0) : cur == NULL;
        if (!in_place) {
            json_array_append_new(conflicts, json_pack("{s:s,s:s?,s:s?}", "resource", key, "expected_hash", new_hash,
                                                       "current_hash", cur ? cur->hash : NULL));
            continue;
        }
        oms_write_op *op = &ops[n];
        char seg[32];
        const char *slash = strchr(key, '/');
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(key, "/"), key);
        if (!slash || oms_kind_parse(&op->kind, seg)) {
            json_decref(conflicts);
            return oms_err_set(err, OMS_EINTERNAL, "the commit names %.120s, which is no resource: nothing was reverted",
                               key);
        }
        op->api_name = slash + 1;
        if (!old_hash) {
            op->op = OMS_OP_DELETE;
        } else {
            if ((rc = load_document(ctx, c, key, old_hash, &op->doc, err))) {
                json_decref(conflicts);
                return rc;
            }
            op->op = cur ? OMS_OP_REPLACE : OMS_OP_CREATE;
        }
        n++;
    }
    if (json_array_size(conflicts)) {
        oms_ctx_problem_extra(ctx, json_pack("{s:o}", "conflicts", conflicts));
        return oms_err_set_as(err, OMS_ECONFLICT, "revert_conflict",
                              "the commit no longer applies cleanly: later changes touched the same resources");
    }
    json_decref(conflicts);
    if (n == 0)
        return oms_err_set_as(err, OMS_ECONFLICT, "revert_conflict", "the commit changed nothing to revert");
    json_t *detail = json_pack("{s:s}", "reverted", commit);
    if (!detail)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    oms_write w = {.branch = branch, .if_match_head = head->commit, .ops = ops, .nops = n,
                   .message = message ? message : oms_arena_printf(ctx->arena, "Revert %.12s", commit),
                   .audit_action = "branch.revert", .audit_resource_kind = "branches", .audit_resource_id = branch,
                   .audit_detail = detail, .success_status = 201};
    rc = oms_vcs_write(ctx, &w, res, err);
    json_decref(detail);
    return rc;
}
