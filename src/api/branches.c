/* The branch routes (SPEC §4): request -> vcs/branches.h -> response. */
#include "api/branches.h"

#include <string.h>

#include "api/common.h"
#include "api/read_access.h"
#include "http/app.h"
#include "http/params.h"
#include "http/path.h"
#include "http/pipeline.h"
#include "vcs/branches.h"
#include "vcs/commit.h"
#include "vcs/snapshot.h"

/* Lists omit what the caller may not read (SPEC §6.2). */
static json_t *branch_row(const oms_dbres *r, size_t i, void *ctx)
{
    if (!oms_branch_readable(ctx, oms_dbres_get(r, i, 0)))
        return NULL;
    return oms_vcs_branch_json(r, i);
}

static void dbres_cb(void *p) { oms_dbres_free(p); }

int oms_h_branch_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_error err = {0};
    oms_dbres *r = NULL;
    int rc = oms_vcs_branch_page(oms_req_ctx(req), cursor, limit, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (oms_arena_on_cleanup(req->arena, dbres_cb, r)) {
        oms_dbres_free(r);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    return oms_resp_page(req, r, limit, 0, branch_row, req, NULL);
}

int oms_h_branch_get(oms_request *req)
{
    oms_error err = {0};
    json_t *b = NULL;
    char head[65];
    int rc = oms_vcs_branch_get(oms_req_ctx(req), req->params[0], &b, head, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (oms_not_modified(req, head)) {
        json_decref(b);
        return OMS_OK;
    }
    oms_resp_etag(req, head);
    return oms_resp_json(req, 200, b);
}

static const char *const k_create_fields[] = {"name", "from", NULL};

int oms_h_branch_create(oms_request *req)
{
    json_t *b = req->json;
    if (!json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be {\"name\", \"from\"}", NULL);
    if (!oms_body_fields_ok(req, b, k_create_fields))
        return OMS_OK;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *from = json_string_value(json_object_get(b, "from"));
    if (!name || !oms_valid_branch_name(name))
        return oms_resp_problem(req, OMS_EINVAL,
                                "name must match ^[a-z0-9][a-z0-9._/-]{0,99}$ without '..', '//', a trailing '/' or '.lock'",
                                NULL);
    if (!from)
        from = "main";
    /* branch:create is decided for the new name; the copy reads `from`. */
    if (!oms_authorize_on(req, OMS_PERM_BRANCH_CREATE, name))
        return OMS_OK;
    oms_error err = {0};
    oms_dbconn *c;
    char head[65];
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, from, head, &err);
    if (rc == OMS_OK)
        rc = oms_vcs_branch_create(oms_req_ctx(req), name, from, head, &err);
    if (rc)
        return req->responded ? OMS_OK : oms_resp_error(req, rc, &err);
    json_t *out = NULL;
    char now_head[65];
    if ((rc = oms_vcs_branch_get(oms_req_ctx(req), name, &out, now_head, &err)))
        return oms_resp_error(req, rc, &err);
    /* one path segment: '/' in a branch name is %2F (SPEC §5) */
    const char *enc = oms_pct_encode_segment(req->arena, name);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/branches/%s", enc ? enc : name));
    oms_resp_etag(req, head);
    oms_resp_header(req, "X-Commit", head);
    return oms_resp_json(req, 201, out);
}

int oms_h_branch_delete(oms_request *req)
{
    oms_api_issue_keys(req, req->json, NULL);
    oms_error err = {0};
    int rc = oms_vcs_branch_delete(oms_req_ctx(req), req->params[0], oms_req_etag(req, "If-Match"), &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_resp_text(req, 204, "application/json", "", 0);
}

static const char *const k_settings_fields[] = {"protected", "required_approvals", "breaking_change_approvals",
                                                "issue_required", "compatibility", "transitive", NULL};

int oms_h_branch_settings(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b) || !oms_body_fields_ok(req, b, k_settings_fields))
        return req->responded ? OMS_OK : oms_resp_problem(req, OMS_EINVAL, "the body must be a settings object", NULL);
    oms_branch_settings s = {json_object_get(b, "protected"), json_object_get(b, "required_approvals"),
                             json_object_get(b, "breaking_change_approvals"), json_object_get(b, "issue_required"),
                             json_object_get(b, "compatibility"), json_object_get(b, "transitive")};
    const char *pol = json_string_value(s.compatibility);
    if ((s.compatibility && (!pol || (strcmp(pol, "warn") && strcmp(pol, "block") && strcmp(pol, "none")))) ||
        (s.transitive && !json_is_boolean(s.transitive)))
        return oms_resp_problem(req, OMS_EINVAL, "compatibility: \"warn\", \"block\" or \"none\"; transitive: boolean",
                                NULL);
    const json_t *ra = s.required_approvals, *bra = s.breaking_change_approvals, *ir = s.issue_required;
    if ((s.protect && !json_is_boolean(s.protect)) ||
        (ra && (!json_is_integer(ra) || json_integer_value(ra) < 0 || json_integer_value(ra) > 10)) ||
        (bra && (!json_is_integer(bra) || json_integer_value(bra) < 0 || json_integer_value(bra) > 10)) ||
        (ir && !json_is_boolean(ir) && !json_is_null(ir)))
        return oms_resp_problem(req, OMS_EINVAL,
                                "protected: boolean; required_approvals, breaking_change_approvals: 0-10; issue_required: boolean or null",
                                NULL);
    oms_error err = {0};
    int rc = oms_vcs_branch_settings(oms_req_ctx(req), req->params[0], &s, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_h_branch_get(req);
}
