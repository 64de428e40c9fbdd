/* The proposal routes (SPEC §4): request -> vcs/proposals.h -> response.
 * Who may see a proposal is decided here: both of its branches readable
 * (its view carries their content), and the route's permission on the
 * target (the branch the operation changes, SPEC §6.2). */
#include "api/proposals.h"

#include <stdlib.h>
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
    /* needs_review=true: open proposals that request the caller's review
     * and have no verdict of theirs on the current source head */
    const char *nr = oms_req_query(req, "needs_review");
    if (nr && strcmp(nr, "true") != 0 && strcmp(nr, "false") != 0)
        return oms_resp_problem(req, OMS_EINVAL, "needs_review must be true or false", NULL);
    const char *me = nr && strcmp(nr, "true") == 0 ? (oms_req_ctx(req)->sub ? oms_req_ctx(req)->sub : "") : NULL;
    oms_error err = {0};
    oms_dbres *r = NULL;
    int rc = oms_proposal_page(oms_req_ctx(req), cursor, state, target, me, limit, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (oms_arena_on_cleanup(req->arena, dbres_cb, r)) {
        oms_dbres_free(r);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    return oms_resp_page(req, r, limit, 0, summary_row, req, NULL);
}

static const char *const k_create_fields[] = {"source", "target", "title", "description", "draft", "issue_id",
                                              "issue_ids", "reviewers", NULL};

/* Requested reviewers: an array of 1-50 subjects (strings of 1-256 bytes). */
static bool reviewers_ok(const json_t *r)
{
    if (!json_is_array(r) || json_array_size(r) > 50)
        return false;
    size_t i;
    json_t *x;
    json_array_foreach(r, i, x) if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 256)
        return false;
    return true;
}

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
    const json_t *reviewers = json_object_get(b, "reviewers");
    if (reviewers && !reviewers_ok(reviewers))
        return oms_resp_problem(req, OMS_EINVAL, "reviewers: an array of up to 50 subjects", NULL);
    if (!oms_authorize_on(req, OMS_PERM_PROPOSAL_CREATE, target) ||
        !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, source) || !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, target))
        return OMS_OK;
    oms_api_issue_keys(req, b, NULL);
    oms_proposal_new n = {.source = source, .target = target, .title = title,
                          .description = desc ? json_string_value(desc) : NULL, .draft = json_is_true(draft), .reviewers = reviewers};
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
static const char *const k_verdict_fields[] = {"comment", NULL};

static int transition(oms_request *req, const oms_proposal_transition *t)
{
    /* a verdict may carry a comment (SPEC §4); other transitions no body */
    const json_t *b = req->json;
    const char *comment = NULL;
    if (b && !json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be an object", NULL);
    if (b && t->verdict) {
        if (!oms_body_fields_ok(req, b, k_verdict_fields))
            return OMS_OK;
        const json_t *cj = json_object_get(b, "comment");
        if (cj && (!json_is_string(cj) || json_string_length(cj) == 0 || json_string_length(cj) > 10000))
            return oms_resp_problem(req, OMS_EINVAL, "comment: a string of 1-10000 characters", NULL);
        comment = json_string_value(cj);
    } else if (b && json_object_size(b) > 0) {
        static const char *const none[] = {NULL};
        if (!oms_body_fields_ok(req, b, none))
            return OMS_OK;
    }
    oms_proposal p;
    if (!load_allowed(req, req->route->perm, &p))
        return OMS_OK;
    oms_proposal_free(&p);
    oms_error err = {0};
    int rc = oms_proposal_transition_run(oms_req_ctx(req), req->params[0], t, comment, &err);
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

/* Asks for changes: blocks merging until the same reviewer approves or
 * withdraws (SPEC §4). */
int oms_h_proposal_request_changes(oms_request *req)
{
    static const oms_proposal_transition t = {k_from_open, NULL, "proposal.request_changes", OMS_PROPOSAL_BY_REVIEWER,
                                              "changes_requested", NULL};
    return transition(req, &t);
}

/* A reviewer withdraws their review (a change request among it). */
int oms_h_proposal_dismiss(oms_request *req)
{
    static const oms_proposal_transition t = {k_from_open, NULL, "proposal.dismiss", OMS_PROPOSAL_BY_REVIEWER,
                                              "dismissed", NULL};
    return transition(req, &t);
}

/* ---- comments and requested reviewers ---- */

static const char *const k_comment_fields[] = {"body", "resource", "field", NULL};

/* KIND/API_NAME with a known kind segment. */
static bool resource_key_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || strlen(s) > 300)
        return false;
    char kind[64];
    size_t n = (size_t)(slash - s);
    if (n >= sizeof kind)
        return false;
    memcpy(kind, s, n);
    kind[n] = 0;
    bool known = false;
    for (size_t i = 0; i < oms_kind_segments_count; i++)
        known = known || strcmp(oms_kind_segments[i], kind) == 0;
    return known && oms_valid_api_name(slash + 1);
}

int oms_h_proposal_comment_add(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be {\"body\", \"resource\", \"field\"}", NULL);
    if (!oms_body_fields_ok(req, b, k_comment_fields))
        return OMS_OK;
    const json_t *body = json_object_get(b, "body"), *res = json_object_get(b, "resource"),
                 *field = json_object_get(b, "field");
    if (!json_is_string(body) || json_string_length(body) == 0 || json_string_length(body) > 10000)
        return oms_resp_problem(req, OMS_EINVAL, "body: a string of 1-10000 characters", NULL);
    if (res && (!json_is_string(res) || !resource_key_ok(json_string_value(res))))
        return oms_resp_problem(req, OMS_EINVAL, "resource: KIND/API_NAME", NULL);
    if (field && (!json_is_string(field) || json_string_value(field)[0] != '/' || json_string_length(field) > 1000))
        return oms_resp_problem(req, OMS_EINVAL, "field: a JSON pointer (\"/properties/0/type\")", NULL);
    if (field && !res)
        return oms_resp_problem(req, OMS_EINVAL, "field: a pointer within a resource: name the resource too", NULL);
    oms_proposal p;
    if (!load_allowed(req, OMS_PERM_UNSET, &p))
        return OMS_OK;
    oms_proposal_free(&p);
    oms_proposal_comment cm = {.body = json_string_value(body), .resource = json_string_value(res),
                               .pointer = json_string_value(field)};
    oms_error err = {0};
    json_t *out = NULL;
    int rc = oms_proposal_comment_add(oms_req_ctx(req), req->params[0], &cm, &out, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_resp_json(req, 201, out);
}

static json_t *comment_row(const oms_dbres *r, size_t i, void *ctx) { return oms_proposal_comment_json(r, i); }

int oms_h_proposal_comment_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    int64_t after = 0;
    if (cursor) {
        char *end;
        long long v = strtoll(cursor, &end, 10);
        if (*end || v < 0)
            return oms_resp_problem(req, OMS_EINVAL, "cursor is not valid", NULL);
        after = v;
    }
    oms_proposal p;
    if (!load_allowed(req, OMS_PERM_UNSET, &p))
        return OMS_OK;
    oms_proposal_free(&p);
    oms_error err = {0};
    oms_dbres *r = NULL;
    int rc = oms_proposal_comment_page(oms_req_ctx(req), req->params[0], after, limit, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (oms_arena_on_cleanup(req->arena, dbres_cb, r)) {
        oms_dbres_free(r);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    return oms_resp_page(req, r, limit, 0, comment_row, req, NULL);
}

static const char *const k_reviewers_fields[] = {"reviewers", NULL};

int oms_h_proposal_reviewers_add(oms_request *req)
{
    const json_t *b = req->json;
    if (!json_is_object(b) || !oms_body_fields_ok(req, b, k_reviewers_fields))
        return json_is_object(b) ? OMS_OK : oms_resp_problem(req, OMS_EINVAL, "the body must be {\"reviewers\"}", NULL);
    const json_t *reviewers = json_object_get(b, "reviewers");
    if (!reviewers_ok(reviewers) || json_array_size(reviewers) == 0)
        return oms_resp_problem(req, OMS_EINVAL, "reviewers: an array of 1-50 subjects", NULL);
    oms_proposal p;
    if (!load_allowed(req, OMS_PERM_UNSET, &p))
        return OMS_OK;
    oms_proposal_free(&p);
    oms_error err = {0};
    int rc = oms_proposal_reviewers_add(oms_req_ctx(req), req->params[0], reviewers, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return respond_view(req, req->params[0], 200);
}

/* The issue keys a proposal merge inherits (SPEC §4): the proposal's and
 * its source commits'. */
json_t *oms_proposal_inherited_issue_keys(oms_request *req)
{
    return oms_proposal_issue_keys(oms_req_ctx(req), req->params[0]);
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
