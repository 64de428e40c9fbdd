/* POST /branches/{b}/merge and POST /branches/{b}/revert: request ->
 * vcs/merging.h, vcs/revert.h -> response. */
#include "api/merges.h"

#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/read_access.h"
#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "vcs/commit.h"
#include "vcs/merging.h"
#include "vcs/merge.h"
#include "vcs/revert.h"
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
        bool fields_ok = true;
        if (oms_merge_is_field_resolution(v)) {
            const char *ptr;
            json_t *side;
            json_object_foreach(v, ptr, side) fields_ok =
                fields_ok && json_is_string(side) &&
                (!strcmp(json_string_value(side), "source") || !strcmp(json_string_value(side), "target"));
        }
        bool ok = slash && oms_kind_parse(&k, seg) == 0 && oms_valid_api_name(slash + 1) && fields_ok &&
                  (json_is_object(v) ||
                   (json_is_string(v) && (!strcmp(json_string_value(v), "source") || !strcmp(json_string_value(v), "target"))));
        if (!ok) {
            oms_resp_problem(req, OMS_EINVAL,
                             oms_arena_printf(req->arena, "resolution for %.120s must be \"source\", \"target\", a document"
                                              " or {\"/json/pointer\": \"source\" | \"target\"}", key),
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
    oms_api_issue_keys(req, b, message);
    oms_merge_request m = {.target = req->params[0], .source = source, .resolutions = resolutions,
                           .message = message, .audit_action = "branch.merge"};
    oms_merge_result out;
    oms_error err = {0};
    int rc = oms_vcs_merge(oms_req_ctx(req), &m, &out, &err);
    if (rc) {
        oms_resp_error(req, rc, &err);
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

static const char *const k_revert_fields[] = {"commit", "message", "issue_id", "issue_ids", NULL};

int oms_h_branch_revert(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b) || !oms_body_fields_ok(req, b, k_revert_fields))
        return req->responded ? OMS_OK : oms_resp_problem(req, OMS_EINVAL, "the body must be {\"commit\"}", NULL);
    const char *commit = json_string_value(json_object_get(b, "commit"));
    if (!commit || !oms_is_commit_id(commit))
        return oms_resp_problem(req, OMS_EINVAL, "commit must be a full commit id", NULL);
    oms_error err = {0};
    oms_dbconn *c;
    bool readable = false; /* a revert shows the commit's documents */
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK && (rc = oms_commit_readable(req, c, commit, &readable, &err)) == OMS_OK && !readable) {
        oms_refuse_unreadable(req, "the commit is on no branch you may read (schema:read)");
        return OMS_OK;
    }
    if (rc)
        return oms_resp_error(req, rc, &err);
    const char *message = json_string_value(json_object_get(b, "message"));
    oms_api_issue_keys(req, b, message);
    oms_write_result res;
    rc = oms_vcs_revert(oms_req_ctx(req), req->params[0], commit, message, &res, &err);
    if (rc) {
        oms_resp_error(req, rc, &err);
    } else {
        oms_resp_header(req, "X-Commit", res.commit);
        oms_resp_etag(req, res.commit);
        oms_resp_json(req, 201, json_pack("{s:s,s:s,s:O}", "commit", res.commit, "reverted", commit, "changes", res.changes));
    }
    oms_write_result_clear(&res);
    return OMS_OK;
}
