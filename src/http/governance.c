/* The pipeline's governance step for change routes (SPEC §6.3, §6.4): it
 * reads what the request says (X-Override-ID, X-Issue-ID, X-Issue-IDs,
 * X-Commit-Message, the body's issue_id / issue_ids / message), hands the
 * decision to governance (src/governance/) through the request context,
 * and renders a refusal. Domain code never reads these headers again:
 * the keys are in ctx->issue_keys, the message in ctx->commit_message. */
#include <string.h>

#include "governance/issue_check.h"
#include "governance/issue_refs.h"
#include "governance/overrides.h"
#include "http/path.h"
#include "http/pipeline.h"
#include "http/routes.h"
#include "util/encoding.h"

json_t *oms_issue_refs_collect(oms_request *req, const json_t *body, const char *message, json_t *invalid)
{
    return oms_issue_refs_from(oms_req_header(req, "X-Issue-ID"), oms_req_header(req, "X-Issue-IDs"), body, message,
                               invalid);
}

static bool attach_override(oms_request *req)
{
    const char *id = oms_req_header(req, "X-Override-ID");
    if (!id)
        return true;
    if (!oms_valid_opaque_id(id)) {
        oms_resp_problem_as(req, OMS_EFORBIDDEN, "override_invalid", "X-Override-ID is not an override id", NULL);
        return false;
    }
    oms_error err;
    if (oms_override_attach(oms_req_ctx(req), id, &err) != OMS_OK) {
        oms_resp_error(req, err.code, &err);
        return false;
    }
    return true;
}

static const char *change_branch(oms_request *req)
{
    if (req->route->change_branch)
        return req->route->change_branch(req);
    /* By default the {branch} parameter, which routes put first. */
    return strstr(req->route->pattern, "{branch}") && req->nparams ? req->params[0] : NULL;
}

static bool check_issues(oms_request *req)
{
    oms_ctx *ctx = oms_req_ctx(req);
    /* Single-resource writes take the resource document as the body and
     * their message in X-Commit-Message (SPEC §5): their references come
     * from the headers and that message, never from document fields. */
    ctx->body_is_document = strstr(req->route->pattern, "{kind}") != NULL;
    const json_t *body = ctx->body_is_document ? NULL : req->json;
    const char *message = json_string_value(json_object_get(body, "message"));
    if (!message) {
        const char *h = oms_req_header(req, "X-Commit-Message");
        oms_error e;
        message = h ? oms_pct_decode(h, strlen(h), req->arena, NULL, &e) : NULL;
    }
    ctx->commit_message = message;
    json_t *invalid = json_array();
    json_t *keys = oms_issue_refs_collect(req, json_is_object(body) ? body : NULL, message, invalid);
    if (keys && req->route->inherited_issue_keys) {
        json_t *more = req->route->inherited_issue_keys(req);
        size_t i;
        json_t *k;
        json_array_foreach(more, i, k) {
            bool dup = false;
            size_t j;
            json_t *x;
            json_array_foreach(keys, j, x) dup = dup || json_equal(x, k);
            if (!dup)
                json_array_append(keys, k);
        }
        json_decref(more);
    }
    oms_error err;
    int rc = oms_issue_check(ctx, change_branch(req), keys, invalid, &err);
    json_decref(invalid);
    if (rc) {
        oms_resp_error(req, rc, &err);
        return false;
    }
    return true;
}

bool oms_pipeline_governance(oms_request *req)
{
    /* An override named by X-Override-ID is checked first (the issue rule
     * may rely on it), then issue references. */
    return attach_override(req) && check_issues(req);
}
