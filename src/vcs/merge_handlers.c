/* POST /branches/{b}/merge, POST /branches/{b}/revert and
 * PUT /branches/{b}/settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "governance/issue_refs.h"
#include "http/app.h"
#include "http/params.h"
#include "util/time.h"
#include "http/pipeline.h"
#include "vcs/read_access.h"
#include "vcs/commit.h"
#include "vcs/handlers.h"
#include "vcs/merging.h"
#include "vcs/refs.h"
#include "vcs/snapshot.h"
#include "vcs/write.h"

static const char *const k_merge_fields[] = {"source", "message", "resolutions", "issue_id", "issue_ids", NULL};

/* Resolutions must name resources and say "source", "target" or give a
 * document (validated with the rest of the merge result). */
static bool valid_resolutions(oms_request *req, const json_t *res)
{
    if (!res)
        return true;
    if (!json_is_object(res)) {
        oms_resp_problem(req, OMS_EINVAL, "resolutions must be an object keyed by KIND/API_NAME", NULL);
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)res, key, v) {
        char seg[32];
        oms_kind k;
        const char *slash = strchr(key, '/');
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(key, "/"), key);
        bool ok = slash && oms_kind_parse(&k, seg) == 0 && oms_valid_api_name(slash + 1) &&
                  (json_is_object(v) ||
                   (json_is_string(v) && (!strcmp(json_string_value(v), "source") || !strcmp(json_string_value(v), "target"))));
        if (!ok) {
            oms_resp_problem(req, OMS_EINVAL,
                             oms_arena_printf(req->arena, "resolution for %.120s must be \"source\", \"target\" or a document", key),
                             NULL);
            return false;
        }
    }
    return true;
}

int oms_h_branch_merge(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b) || !oms_body_fields_ok(req, b, k_merge_fields))
        return req->responded ? OMS_OK : oms_resp_problem(req, OMS_EINVAL, "the body must be {\"source\", ...}", NULL);
    const char *source = json_string_value(json_object_get(b, "source"));
    if (!source || (!oms_valid_branch_name(source) && !oms_is_commit_id(source)))
        return oms_resp_problem(req, OMS_EINVAL, "source must be a branch name or a commit id", NULL);
    const json_t *resolutions = json_object_get(b, "resolutions");
    if (!valid_resolutions(req, resolutions))
        return OMS_OK;
    {   /* merging reads the source: its branch's read rule applies */
        oms_error rerr;
        oms_dbconn *rc_conn;
        char ignored[65];
        int rrc = oms_db_conn(req->app->store->db, &rc_conn, &rerr);
        if (rrc == OMS_OK)
            rrc = oms_read_ref(req, rc_conn, source, ignored, &rerr);
        if (rrc && rrc != OMS_ENOTFOUND)
            return req->responded ? OMS_OK : oms_resp_problem(req, (oms_err)rrc, rerr.msg, NULL);
    }
    const char *message = json_string_value(json_object_get(b, "message"));
    json_t *issues = oms_issue_refs_collect(req, b, message, NULL);
    oms_merge_request m = {.target = req->params[0], .source = source, .resolutions = resolutions,
                           .message = message, .issue_keys = issues, .audit_action = "branch.merge"};
    oms_merge_result out;
    oms_error err;
    int rc = oms_vcs_merge(req, &m, &out, &err);
    json_decref(issues);
    if (rc) {
        json_t *extra = out.problem_extra;
        out.problem_extra = NULL;
        oms_resp_problem_as(req, (oms_err)rc, out.problem_code, err.msg, extra);
    } else {
        oms_resp_header(req, "X-Commit", out.commit);
        oms_resp_etag(req, out.commit);
        oms_resp_json(req, 200, json_pack("{s:s,s:s,s:s,s:s,s:b,s:O}", "status", out.status, "commit", out.commit,
                                          "merge_base", out.base, "source_head", out.source_head, "breaking",
                                          out.breaking, "changes", out.changes ? out.changes : json_null()));
    }
    oms_merge_result_clear(&out);
    return OMS_OK;
}

/* ---- revert ---- */

static void decref_cb(void *p) { json_decref(p); }

static const char *const k_revert_fields[] = {"commit", "message", "issue_id", "issue_ids", NULL};

int oms_h_branch_revert(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b) || !oms_body_fields_ok(req, b, k_revert_fields))
        return req->responded ? OMS_OK : oms_resp_problem(req, OMS_EINVAL, "the body must be {\"commit\"}", NULL);
    const char *commit = json_string_value(json_object_get(b, "commit"));
    if (!commit || !oms_is_commit_id(commit))
        return oms_resp_problem(req, OMS_EINVAL, "commit must be a full commit id", NULL);
    const char *branch = req->params[0];
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_snapshot *head = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    bool readable = false; /* a revert shows the commit's documents */
    if (rc == OMS_OK && (rc = oms_commit_readable(req, c, commit, &readable, &err)) == OMS_OK && !readable) {
        oms_refuse_unreadable(req, "the commit is on no branch you may read (schema:read)");
        return OMS_OK;
    }
    oms_dbparam p[] = {DBP_TEXT(commit)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c, "SELECT resource, old_hash, new_hash FROM commit_changes WHERE commit_id = $1 ORDER BY resource",
                         p, 1, &r, &err);
    if (rc == OMS_OK)
        rc = oms_snapshot_for_branch(c, branch, &head, &err);
    if (rc) {
        oms_dbres_free(r);
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    }
    json_t *exists = NULL;
    if (oms_commit_load_json(c, commit, &exists, &err)) {
        oms_dbres_free(r);
        oms_snapshot_unref(head);
        return oms_resp_problem(req, OMS_ENOTFOUND, "no such commit", NULL);
    }
    json_decref(exists);
    /* Each change must still be in place on the branch to be undone. */
    json_t *conflicts = json_array();
    oms_write_op *ops = oms_arena_alloc(req->arena, (r->nrows + 1) * sizeof *ops);
    size_t n = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const char *key = oms_dbres_get(r, i, 0), *old_hash = oms_dbres_get(r, i, 1), *new_hash = oms_dbres_get(r, i, 2);
        const oms_entry *cur = oms_snapshot_get_key(head, key);
        bool in_place = new_hash ? (cur && strcmp(cur->hash, new_hash) == 0) : cur == NULL;
        if (!in_place) {
            json_array_append_new(conflicts, json_pack("{s:s,s:s?,s:s?}", "resource", key, "expected_hash", new_hash,
                                                       "current_hash", cur ? cur->hash : NULL));
            continue;
        }
        oms_write_op *op = &ops[n];
        char seg[32];
        snprintf(seg, sizeof seg, "%.*s", (int)strcspn(key, "/"), key);
        if (oms_kind_parse(&op->kind, seg))
            continue;
        op->api_name = oms_arena_strdup(req->arena, strchr(key, '/') + 1);
        if (!old_hash) {
            op->op = OMS_OP_DELETE;
        } else {
            oms_dbres *o = NULL;
            oms_dbparam q[] = {DBP_TEXT(old_hash)};
            if (oms_db_exec(c, "SELECT content FROM objects WHERE hash = $1", q, 1, &o, &err) || o->nrows == 0) {
                oms_dbres_free(o);
                continue;
            }
            op->doc = json_loads(oms_dbres_get(o, 0, 0), 0, NULL);
            oms_dbres_free(o);
            if (!op->doc)
                continue;
            oms_arena_on_cleanup(req->arena, decref_cb, op->doc);
            op->op = cur ? OMS_OP_REPLACE : OMS_OP_CREATE;
        }
        n++;
    }
    oms_dbres_free(r);
    char head_id[65];
    snprintf(head_id, sizeof head_id, "%s", head->commit);
    oms_snapshot_unref(head);
    if (json_array_size(conflicts)) {
        return oms_resp_problem_as(req, OMS_ECONFLICT, "revert_conflict",
                                   "the commit no longer applies cleanly: later changes touched the same resources",
                                   json_pack("{s:o}", "conflicts", conflicts));
    }
    json_decref(conflicts);
    if (n == 0)
        return oms_resp_problem_as(req, OMS_ECONFLICT, "revert_conflict", "the commit changed nothing to revert", NULL);
    const char *message = json_string_value(json_object_get(b, "message"));
    char *default_msg = oms_arena_printf(req->arena, "Revert %.12s", commit);
    json_t *issues = oms_issue_refs_collect(req, b, message, NULL);
    char *detail = oms_arena_printf(req->arena, "{\"reverted\":\"%s\"}", commit);
    oms_write w = {.branch = branch, .if_match_head = head_id, .ops = ops, .nops = n,
                   .message = message ? message : default_msg, .issue_keys = issues, .audit_action = "branch.revert",
                   .audit_resource_kind = "branches", .audit_resource_id = branch, .audit_detail = detail,
                   .success_status = 201};
    oms_write_result res;
    rc = oms_vcs_write(req, &w, &res, &err);
    json_decref(issues);
    if (rc) {
        json_t *extra = res.problem_extra;
        res.problem_extra = NULL;
        oms_resp_problem_as(req, (oms_err)rc, res.problem_code, err.msg, extra);
    } else {
        oms_resp_header(req, "X-Commit", res.commit);
        oms_resp_etag(req, res.commit);
        oms_resp_json(req, 201, json_pack("{s:s,s:s,s:O}", "commit", res.commit, "reverted", commit, "changes", res.changes));
    }
    oms_write_result_clear(&res);
    return OMS_OK;
}

/* ---- settings ---- */

static const char *const k_settings_fields[] = {"protected", "required_approvals", "breaking_change_approvals",
                                                "issue_required", NULL};

int oms_h_branch_settings(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b) || !oms_body_fields_ok(req, b, k_settings_fields))
        return req->responded ? OMS_OK : oms_resp_problem(req, OMS_EINVAL, "the body must be a settings object", NULL);
    const json_t *prot = json_object_get(b, "protected"), *ra = json_object_get(b, "required_approvals"),
                 *bra = json_object_get(b, "breaking_change_approvals"), *ir = json_object_get(b, "issue_required");
    if ((prot && !json_is_boolean(prot)) || (ra && (!json_is_integer(ra) || json_integer_value(ra) < 0 || json_integer_value(ra) > 10)) ||
        (bra && (!json_is_integer(bra) || json_integer_value(bra) < 0 || json_integer_value(bra) > 10)) ||
        (ir && !json_is_boolean(ir) && !json_is_null(ir)))
        return oms_resp_problem(req, OMS_EINVAL,
                                "protected: boolean; required_approvals, breaking_change_approvals: 0-10; issue_required: boolean or null",
                                NULL);
    const char *branch = req->params[0];
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    /* Read-modify-write of the row: locked on PostgreSQL (SQLite's write
     * transaction excludes other writers), so a concurrent change of the
     * settings or deletion of the branch is seen, never overwritten. */
    static const char *const sql[2] = {
        "SELECT protected, required_approvals, breaking_change_approvals, issue_required FROM branches WHERE name = $1",
        "SELECT protected, required_approvals, breaking_change_approvals, issue_required FROM branches WHERE name = $1"
        " FOR UPDATE"};
    oms_dbparam p[] = {DBP_TEXT(branch)};
    rc = oms_db_exec(c, sql[oms_db_backend_of(req->app->store->db) == OMS_DB_PG], p, 1, &r, &err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(&err, OMS_ENOTFOUND, "no branch named %s", branch);
    if (rc) {
        oms_dbres_free(r);
        oms_db_rollback(c);
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    }
    int64_t np = prot ? json_is_true(prot) : oms_dbres_int(r, 0, 0);
    int64_t nra = ra ? json_integer_value(ra) : oms_dbres_int(r, 0, 1);
    int64_t nbra = bra ? json_integer_value(bra) : oms_dbres_int(r, 0, 2);
    const char *cur_ir = oms_dbres_get(r, 0, 3);
    oms_dbparam irp = ir ? (json_is_null(ir) ? DBP_NULL : DBP_INT(json_is_true(ir))) : (cur_ir ? DBP_INT(atoi(cur_ir)) : DBP_NULL);
    char *before = oms_arena_printf(req->arena, "{\"protected\":%s,\"required_approvals\":%lld,\"breaking_change_approvals\":%lld}",
                                    oms_dbres_int(r, 0, 0) ? "true" : "false", (long long)oms_dbres_int(r, 0, 1),
                                    (long long)oms_dbres_int(r, 0, 2));
    oms_dbres_free(r);
    oms_dbparam u[] = {DBP_INT(np), DBP_INT(nra), DBP_INT(nbra), irp, DBP_INT(oms_now_ms()), DBP_TEXT(branch)};
    rc = oms_db_exec(c,
                     "UPDATE branches SET protected = $1, required_approvals = $2, breaking_change_approvals = $3,"
                     " issue_required = $4, updated_at = $5 WHERE name = $6",
                     u, 6, NULL, &err);
    char *detail = oms_arena_printf(req->arena, "{\"before\":%s,\"after\":{\"protected\":%s,\"required_approvals\":%lld,\"breaking_change_approvals\":%lld}}",
                                    before, np ? "true" : "false", (long long)nra, (long long)nbra);
    oms_audit_event ev = {.action = "branch.settings", .outcome = "success", .http_status = 200,
                          .resource_kind = "branches", .resource_branch = branch, .resource_id = branch, .detail = detail};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    if (rc == OMS_OK && (rc = oms_audit_append(c, &ev, &err)))
        rc = oms_err_set(&err, OMS_EAUDIT, "the audit store cannot write");
    if (rc == OMS_OK)
        rc = oms_db_commit(c, &err);
    else
        oms_db_rollback(c);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    return oms_h_branch_get(req);
}
