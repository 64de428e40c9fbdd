/* /api/v1/acl/policies: request -> src/auth/acl_admin.c -> response.
 * Replace and delete need If-Match with the policy's ETag (428 without). */
#include "api/acl.h"

#include "auth/acl_admin.h"
#include "governance/issue_refs.h"
#include "http/params.h"
#include "txn/change.h"

int oms_h_acl_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_error err;
    oms_err_clear(&err);
    json_t *items = NULL;
    const char *next = NULL;
    int rc = oms_acl_policy_list(oms_req_ctx(req), oms_req_query(req, "subject"), cursor, limit, &items, &next, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_resp_json(req, 200,
                         json_pack("{s:o,s:o}", "items", items, "next_cursor",
                                   next ? json_string(oms_cursor_encode(req, next)) : json_null()));
}

int oms_h_acl_get(oms_request *req)
{
    oms_error err;
    oms_err_clear(&err);
    oms_acl_policy_out p;
    int rc = oms_acl_policy_get(oms_req_ctx(req), req->params[0], &p, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (oms_not_modified(req, p.etag)) {
        json_decref(p.policy);
        return OMS_OK;
    }
    oms_resp_etag(req, oms_arena_strdup(req->arena, p.etag));
    return oms_resp_json(req, 200, p.policy);
}

/* The change's issue references, when the pipeline did not collect them:
 * set for the change and dropped after it. */
static json_t *issue_keys(oms_request *req, oms_ctx *ctx)
{
    if (ctx->issue_keys)
        return NULL;
    ctx->issue_keys = oms_issue_refs_collect(req, req->json, NULL, NULL);
    return ctx->issue_keys;
}

static int acl_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    oms_acl_change *ch = arg;
    int rc = oms_acl_change_write(c, ctx, ch, err);
    if (rc)
        return rc;
    out->resource_kind = "acl-policies";
    out->resource_id = ch->id;
    out->status = ch->status;
    out->before_hash = ch->before ? ch->old_etag : NULL;
    out->after_hash = ch->after ? ch->etag : NULL;
    out->detail = oms_acl_change_detail(ch);
    return OMS_OK;
}

static int acl_alert(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    return oms_acl_change_alert(c, ctx, arg, err);
}

/* Runs a prepared change (rc: the preparation's result) as one change
 * transaction; renders the failure. Returns OMS_OK when the caller answers. */
static int run(oms_request *req, oms_acl_change *ch, int rc, oms_error *err)
{
    oms_ctx *ctx = oms_req_ctx(req);
    json_t *mine = rc ? NULL : issue_keys(req, ctx);
    if (rc == OMS_OK) {
        oms_change_spec spec = {.action = ch->action, .step = acl_step, .arg = ch, .after_event = acl_alert};
        oms_change_out out;
        rc = oms_change_run(ctx, &spec, &out, err);
    }
    if (mine) {
        ctx->issue_keys = NULL;
        json_decref(mine);
    }
    return rc;
}

/* Answers a create (201 with Location) or a replace (200): the policy and
 * its ETag, or the failure; frees the change. */
static int answer_policy(oms_request *req, oms_acl_change *ch, int rc, oms_error *err, int status)
{
    if (rc == OMS_OK) {
        if (status == 201)
            oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/acl/policies/%s", ch->id));
        oms_resp_etag(req, oms_arena_strdup(req->arena, ch->etag));
        oms_resp_json(req, status, ch->after);
        ch->after = NULL;
    } else {
        oms_resp_error(req, rc, err);
    }
    oms_acl_change_free(ch);
    return OMS_OK;
}

int oms_h_acl_create(oms_request *req)
{
    oms_error err;
    oms_err_clear(&err);
    oms_acl_change ch;
    int rc = run(req, &ch, oms_acl_change_create(&ch, req->json, &err), &err);
    return answer_policy(req, &ch, rc, &err, 201);
}

/* Replace and delete without If-Match. */
static int no_if_match(oms_request *req)
{
    return oms_resp_problem(req, OMS_EPRECONDREQ, "this request needs If-Match with the policy's ETag", NULL);
}

int oms_h_acl_replace(oms_request *req)
{
    const char *if_match = oms_req_etag(req, "If-Match");
    if (!if_match)
        return no_if_match(req);
    oms_error err;
    oms_err_clear(&err);
    oms_acl_change ch;
    int rc = run(req, &ch, oms_acl_change_replace(&ch, req->params[0], if_match, req->json, &err), &err);
    return answer_policy(req, &ch, rc, &err, 200);
}

int oms_h_acl_delete(oms_request *req)
{
    const char *if_match = oms_req_etag(req, "If-Match");
    if (!if_match)
        return no_if_match(req);
    oms_error err;
    oms_err_clear(&err);
    oms_acl_change ch;
    oms_acl_change_delete(&ch, req->params[0], if_match);
    int rc = run(req, &ch, OMS_OK, &err);
    if (rc == OMS_OK)
        oms_resp_text(req, 204, "application/json", "", 0);
    else
        oms_resp_error(req, rc, &err);
    oms_acl_change_free(&ch);
    return OMS_OK;
}
