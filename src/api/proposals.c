/* The proposal routes (SPEC §4): request -> vcs/proposals.h -> response.
 * Who may see a proposal is decided here: both of its branches readable
 * (its view carries their content), and the route's permission on the
 * target (the branch the operation changes, SPEC §6.2). */
#include "api/proposals.h"

#include <string.h>

#include "api/common.h"
#include "api/read_access.h"
#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "http/routes.h"
#include "vcs/proposals.h"

static int respond_view(oms_request *req, const char *id, int status)
{
    oms_error err = {0};
    oms_proposal p;
    int rc = oms_proposal_load(oms_req_ctx(req), id, &p, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_proposal_view v;
    oms_proposal_view_of(oms_req_ctx(req), &p, &v, &err);
    oms_proposal_free(&p);
    json_t *doc = v.doc;
    v.doc = NULL;
    oms_proposal_view_clear(&v);
    return oms_resp_json(req, status, doc);
}

/* A proposal shows both branches' content: it is listed only to callers
 * who may read both (SPEC §6.2). */
static json_t *summary_row(const oms_dbres *r, size_t i, void *ctx)
{
    if (!oms_branch_readable(ctx, oms_dbres_get(r, i, 1)) || !oms_branch_readable(ctx, oms_dbres_get(r, i, 2)))
        return NULL;
    return oms_proposal_summary_json(r, i);
}

static void dbres_cb(void *p) { oms_dbres_free(p); }

int oms_h_proposal_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *state = oms_req_query(req, "state"), *target = oms_req_query(req, "target");
    oms_error err = {0};
    oms_dbres *r = NULL;
    int rc = oms_proposal_page(oms_req_ctx(req), cursor, state, target, limit, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (oms_arena_on_cleanup(req->arena, dbres_cb, r)) {
        oms_dbres_free(r);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    return oms_resp_page(req, r, limit, 0, summary_row, req, NULL);
}

static const char *const k_create_fields[] = {"source", "target", "title", "description", "draft", "issue_id",
                                              "issue_ids", NULL};

int oms_h_proposal_create(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be {\"source\", \"target\", \"title\", ...}", NULL);
    if (!oms_body_fields_ok(req, b, k_create_fields))
        return OMS_OK;
    const char *source = json_string_value(json_object_get(b, "source"));
    const char *target = json_string_value(json_object_get(b, "target"));
    const char *title = json_string_value(json_object_get(b, "title"));
    const json_t *desc = json_object_get(b, "description"), *draft = json_object_get(b, "draft");
    if (!source || !oms_valid_branch_name(source) || !target || !oms_valid_branch_name(target) ||
        strcmp(source, target) == 0)
        return oms_resp_problem(req, OMS_EINVAL, "source and target must be two different branch names", NULL);
    if (!title || !*title || strlen(title) > 200)
        return oms_resp_problem(req, OMS_EINVAL, "title must be 1-200 characters", NULL);
    if ((desc && (!json_is_string(desc) || json_string_length(desc) > 10000)) || (draft && !json_is_boolean(draft)))
        return oms_resp_problem(req, OMS_EINVAL, "description: string up to 10000; draft: boolean", NULL);
    if (!oms_authorize_on(req, OMS_PERM_PROPOSAL_CREATE, target) ||
        !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, source) || !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, target))
        return OMS_OK;
    oms_api_issue_keys(req, b, NULL);
    oms_proposal_new n = {.source = source, .target = target, .title = title,
                          .description = desc ? json_string_value(desc) : NULL, .draft = json_is_true(draft)};
    oms_error err = {0};
    char id[40];
    int rc = oms_proposal_create(oms_req_ctx(req), &n, id, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/proposals/%s", id));
    return respond_view(req, id, 201);
}

/* False when refused (answered and audited). */
static bool proposal_access(oms_request *req, const oms_proposal *p, oms_perm perm)
{
    return (perm == OMS_PERM_UNSET || oms_authorize_on(req, perm, p->target)) &&
           oms_authorize_on(req, OMS_PERM_SCHEMA_READ, p->source) &&
           oms_authorize_on(req, OMS_PERM_SCHEMA_READ, p->target);
}

/* Loads the proposal and decides access; false when answered. */
static bool load_allowed(oms_request *req, oms_perm perm, oms_proposal *p)
{
    oms_error err = {0};
    int rc = oms_proposal_load(oms_req_ctx(req), req->params[0], p, &err);
    if (rc) {
        oms_resp_error(req, rc, &err);
        return false;
    }
    if (!proposal_access(req, p, perm)) {
        oms_proposal_free(p);
        return false;
    }
    return true;
}

int oms_h_proposal_get(oms_request *req)
{
    oms_proposal p;
    if (!load_allowed(req, OMS_PERM_UNSET, &p))
        return OMS_OK;
    oms_proposal_free(&p);
    return respond_view(req, req->params[0], 200);
}

/* ---- transitions ---- */

/* Access first, outside the transaction: a refusal is audited by the
 * group-commit writer, which must not wait behind the change's transaction.
 * A proposal's branches never change, so the answer stays true. */
static int transition(oms_request *req, const oms_proposal_transition *t)
{
    oms_proposal p;
    if (!load_allowed(req, req->route->perm, &p))
        return OMS_OK;
    oms_proposal_free(&p);
    oms_error err = {0};
    int rc = oms_proposal_transition_run(oms_req_ctx(req), req->params[0], t, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return respond_view(req, req->params[0], 200);
}

static const char *const k_from_draft[] = {"draft", NULL};
static const char *const k_from_open[] = {"open", NULL};
static const char *const k_from_live[] = {"draft", "open", NULL};

int oms_h_proposal_open(oms_request *req)
{
    static const oms_proposal_transition t = {k_from_draft, "open", "proposal.open", OMS_PROPOSAL_BY_AUTHOR, NULL, NULL};
    return transition(req, &t);
}

int oms_h_proposal_approve(oms_request *req)
{
    static const oms_proposal_transition t = {k_from_open, NULL, "proposal.approve", OMS_PROPOSAL_BY_REVIEWER,
                                              "approved", NULL};
    return transition(req, &t);
}

/* A rejection is a review verdict that closes the proposal: its author opens
 * a new one after reworking the change. */
int oms_h_proposal_reject(oms_request *req)
{
    static const oms_proposal_transition t = {k_from_open, "closed", "proposal.reject", OMS_PROPOSAL_BY_REVIEWER,
                                              "rejected", "rejected"};
    return transition(req, &t);
}

int oms_h_proposal_close(oms_request *req)
{
    static const oms_proposal_transition t = {k_from_live, "closed", "proposal.close",
                                              OMS_PROPOSAL_BY_AUTHOR_OR_REVIEWER, NULL, "closed"};
    return transition(req, &t);
}

/* ---- merge ---- */

/* The branch a proposal merge changes: its target (issue rules, overrides). */
const char *oms_proposal_target_branch(oms_request *req)
{
    return oms_proposal_target(oms_req_ctx(req), req->params[0]);
}

static const char *const k_merge_fields[] = {"message", "issue_id", "issue_ids", NULL};

int oms_h_proposal_merge(oms_request *req)
{
    const json_t *b = req->json;
    if (b && !json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be an object", NULL);
    if (b && !oms_body_fields_ok(req, b, k_merge_fields))
        return OMS_OK;
    oms_proposal p;
    if (!load_allowed(req, OMS_PERM_PROPOSAL_MERGE, &p))
        return OMS_OK;
    const char *message = json_string_value(json_object_get(b, "message"));
    oms_api_issue_keys(req, b, message);
    oms_error err = {0};
    char commit[65];
    int rc = oms_proposal_merge(oms_req_ctx(req), &p, message, commit, &err);
    oms_proposal_free(&p);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_resp_header(req, "X-Commit", commit);
    return respond_view(req, req->params[0], 200);
}
