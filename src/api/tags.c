/* Tags (SPEC §4): create {name, commit, message}, list, get, delete. A tag
 * is shown only to callers who may read its commit (in the history of a
 * branch they may read, api/read_access.h). */
#include "api/tags.h"

#include <string.h>

#include "api/common.h"
#include "api/read_access.h"
#include "http/app.h"
#include "http/params.h"
#include "http/path.h"
#include "http/pipeline.h"
#include "vcs/tags.h"

static int fetch_tags(oms_ctx *ctx, void *arg, const char *cursor, size_t limit, oms_dbres **out, oms_error *err)
{
    return oms_vcs_tag_page(ctx, cursor, limit, out, err);
}

/* Only the tags whose commit the caller may read (SPEC §6.2). */
int oms_h_tag_list(oms_request *req)
{
    return oms_resp_readable_page(req, fetch_tags, NULL, 1 /* commit_id */, oms_vcs_tag_json, NULL);
}

static const char k_name_rule[] =
    "a tag name must match ^[a-z0-9][a-z0-9._/-]{0,99}$ without '..', '//', a trailing '/' or '.lock', and must not "
    "be a commit id";

/* The tag, answered 403 when its commit is on no branch the caller may
 * read; on failure the problem is answered and false returned. */
static bool load_readable(oms_request *req, const char *name, json_t **out, char commit[65])
{
    oms_error err = {0};
    oms_dbconn *c;
    bool ok = false;
    int rc = oms_vcs_tag_get(oms_req_ctx(req), name, out, commit, &err);
    if (rc == OMS_OK && (rc = oms_db_conn(req->app->store->db, &c, &err)) == OMS_OK)
        rc = oms_commit_readable(req, c, commit, &ok, &err);
    if (rc) {
        json_decref(*out);
        *out = NULL;
        oms_resp_error(req, rc, &err);
        return false;
    }
    if (!ok) {
        json_decref(*out);
        *out = NULL;
        oms_refuse_unreadable(req, "the tag's commit is on no branch you may read (schema:read)");
        return false;
    }
    return true;
}

int oms_h_tag_get(oms_request *req)
{
    const char *name = req->params[0];
    if (!oms_valid_tag_name(name))
        return oms_resp_problem(req, OMS_EINVAL, k_name_rule, NULL);
    json_t *t = NULL;
    char commit[65];
    if (!load_readable(req, name, &t, commit))
        return OMS_OK;
    oms_resp_etag(req, commit);
    return oms_resp_json(req, 200, t);
}

static const char *const k_create_fields[] = {"name", "commit", "message", NULL};

int oms_h_tag_create(oms_request *req)
{
    json_t *b = req->json;
    if (!json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be {\"name\", \"commit\", \"message\"}", NULL);
    if (!oms_body_fields_ok(req, b, k_create_fields))
        return OMS_OK;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *ref = json_string_value(json_object_get(b, "commit"));
    const json_t *msg = json_object_get(b, "message");
    if (!name || !oms_valid_tag_name(name))
        return oms_resp_problem(req, OMS_EINVAL, k_name_rule, NULL);
    if (!ref || !*ref)
        return oms_resp_problem(req, OMS_EINVAL, "commit is required: a commit id or a branch (its head)", NULL);
    if (msg && !json_is_string(msg))
        return oms_resp_problem(req, OMS_EINVAL, "message must be a string", NULL);
    oms_error err = {0};
    oms_dbconn *c;
    char commit[65];
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, ref, commit, &err);
    if (rc == OMS_OK)
        rc = oms_vcs_tag_create(oms_req_ctx(req), name, commit, json_string_value(msg), &err);
    if (rc)
        return req->responded ? OMS_OK : oms_resp_error(req, rc, &err);
    json_t *t = NULL;
    char now[65];
    if ((rc = oms_vcs_tag_get(oms_req_ctx(req), name, &t, now, &err)))
        return oms_resp_error(req, rc, &err);
    char *enc = oms_pct_encode_segment(req->arena, name);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/tags/%s", enc ? enc : name));
    oms_resp_etag(req, commit);
    oms_resp_header(req, "X-Commit", commit);
    return oms_resp_json(req, 201, t);
}

int oms_h_tag_delete(oms_request *req)
{
    const char *name = req->params[0];
    if (!oms_valid_tag_name(name))
        return oms_resp_problem(req, OMS_EINVAL, k_name_rule, NULL);
    oms_api_issue_keys(req, req->json, NULL);
    json_t *t = NULL;
    char commit[65];
    if (!load_readable(req, name, &t, commit))
        return OMS_OK;
    json_decref(t);
    oms_error err = {0};
    int rc = oms_vcs_tag_delete(oms_req_ctx(req), name, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_resp_text(req, 204, "application/json", "", 0);
}
