/* The override API (SPEC §6.4): parse the request, call governance
 * (src/governance/overrides.c), render. */
#include "api/overrides.h"

#include <stdio.h>
#include <string.h>

#include "auth/acl_store.h"
#include "governance/overrides.h"
#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "ontology/ontology.h"
#include "store/overrides_sql.h"
#include "txn/change.h"

/* ---- the change step: one override operation in oms_change_run's transaction ---- */

typedef struct {
    bool create;
    const oms_override_request *req;
    const char *id;
    oms_override_decision d;
} override_op;

static int override_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    const override_op *op = arg;
    oms_override_change chg = {0};
    int rc = op->create ? oms_override_create_tx(c, ctx, op->req, op->id, &chg, err)
                        : oms_override_decide_tx(c, ctx, op->id, op->d, &chg, err);
    if (rc) {
        json_decref(chg.detail);
        return rc;
    }
    out->resource_kind = "overrides";
    out->resource_id = op->id;
    out->override_id = op->id;
    out->branch = chg.branch;
    out->status = 200;
    out->detail = chg.detail;
    return OMS_OK;
}

static int run(oms_request *req, const override_op *op, const char *action, const char *branch, oms_error *err)
{
    oms_change_spec spec = {.action = action, .branch = branch, .step = override_step, .arg = (void *)op};
    oms_change_out out;
    return oms_change_run(oms_req_ctx(req), &spec, &out, err);
}

static const char *const k_kinds[] = {"issue_requirement", "protected_branch", "lock", "breaking_change", NULL};
static const char *const k_fields[] = {"kind", "branch", "resource", "justification", "incident", "ttl_seconds", NULL};

/* override:approve on the override's branch (RBAC refined by ACL policies);
 * nobody when the policies cannot be read (fail closed). */
static bool sees_private_fields(oms_ctx *ctx, void *arg, const char *requester, const char *branch)
{
    (void)ctx, (void)requester;
    oms_acl_verdict v;
    oms_error err;
    return oms_acl_check(arg, OMS_PERM_OVERRIDE_APPROVE, branch, &v, &err) == OMS_OK && v.allowed;
}

typedef struct {
    oms_request *req;
    oms_dbconn *c;
    int64_t now;
} list_ctx;

static json_t *list_row(const oms_dbres *r, size_t i, void *arg)
{
    list_ctx *lc = arg;
    return oms_override_row_json(oms_req_ctx(lc->req), lc->c, r, i, lc->now, sees_private_fields, lc->req);
}

int oms_h_override_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    oms_ctx *ctx = oms_req_ctx(req);
    const char *state = oms_req_query(req, "state");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_store_overrides_list(c, cursor, state, (int64_t)limit + 1, &r, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    list_ctx lc = {req, c, oms_override_clock(c)};
    oms_resp_page(req, r, limit, OMS_OVR_COL_ID, list_row, &lc, NULL);
    oms_dbres_free(r);
    return OMS_OK;
}

static int respond_one(oms_request *req, const char *id, int status)
{
    oms_error err;
    json_t *o = NULL;
    int rc = oms_override_get(oms_req_ctx(req), id, sees_private_fields, req, &o, &err);
    return rc ? oms_resp_error(req, rc, &err) : oms_resp_json(req, status, o);
}

int oms_h_override_get(oms_request *req) { return respond_one(req, req->params[0], 200); }

static const char *validate_request(const json_t *b)
{
    const char *kind = json_string_value(json_object_get(b, "kind"));
    bool kind_ok = false;
    for (size_t i = 0; kind && k_kinds[i]; i++)
        kind_ok = kind_ok || strcmp(kind, k_kinds[i]) == 0;
    if (!kind_ok)
        return "kind must be issue_requirement, protected_branch, lock or breaking_change";
    const char *branch = json_string_value(json_object_get(b, "branch"));
    if (!branch || !oms_valid_branch_name(branch))
        return "branch must be a branch name";
    const json_t *res = json_object_get(b, "resource");
    if (res && !json_is_null(res)) {
        const char *s = json_string_value(res);
        const char *slash = s ? strchr(s, '/') : NULL;
        char seg[32];
        oms_kind k;
        if (!slash || (size_t)(slash - s) >= sizeof seg)
            return "resource must be KIND/API_NAME";
        snprintf(seg, sizeof seg, "%.*s", (int)(slash - s), s);
        if (oms_kind_parse(&k, seg) || !oms_valid_api_name(slash + 1))
            return "resource must be KIND/API_NAME";
    }
    const json_t *just = json_object_get(b, "justification");
    const char *why = json_is_string(just) ? oms_override_justification_problem(json_string_value(just),
                                                                                 json_string_length(just))
                                           : oms_override_justification_problem(NULL, 0);
    if (why)
        return why;
    const json_t *incident = json_object_get(b, "incident");
    if (!json_is_string(incident) || json_string_length(incident) > 200 ||
        strlen(json_string_value(incident)) != json_string_length(incident) ||
        !oms_override_text_visible(json_string_value(incident)))
        return "incident must name the incident (1-200 characters, not only whitespace)";
    const json_t *ttl = json_object_get(b, "ttl_seconds");
    if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 || json_integer_value(ttl) > OMS_OVERRIDE_MAX_TTL)
        return "ttl_seconds must be an integer from 1 to 14400 (4 h)";
    return NULL;
}

int oms_h_override_create(oms_request *req)
{
    const json_t *b = req->json;
    if (json_is_object(b) && !oms_body_fields_ok(req, b, k_fields))
        return OMS_OK;
    const char *why = json_is_object(b) ? validate_request(b) : "the body must be an override request";
    if (why)
        return oms_resp_problem(req, OMS_EINVAL, why, NULL);
    oms_override_request q = {.kind = json_string_value(json_object_get(b, "kind")),
                              .branch = json_string_value(json_object_get(b, "branch")),
                              .resource = json_string_value(json_object_get(b, "resource")),
                              .justification = json_string_value(json_object_get(b, "justification")),
                              .incident = json_string_value(json_object_get(b, "incident")),
                              .ttl_seconds = json_integer_value(json_object_get(b, "ttl_seconds"))};
    /* override:request is decided on the branch the override is for */
    if (!oms_authorize_on(req, OMS_PERM_OVERRIDE_REQUEST, q.branch))
        return OMS_OK;
    char id[OMS_OVERRIDE_ID_MAX];
    oms_error err;
    oms_override_new_id(id);
    override_op op = {.create = true, .req = &q, .id = id};
    int rc = run(req, &op, "override.request", q.branch, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/overrides/%s", id));
    return respond_one(req, id, 201);
}

static int decide(oms_request *req, oms_override_decision d)
{
    oms_ctx *ctx = oms_req_ctx(req);
    const char *id = req->params[0];
    char branch[OMS_OVERRIDE_BRANCH_MAX];
    oms_error err;
    /* The route's permission, decided on the override's branch, before
     * the transaction (a refusal is audited by the group-commit writer). */
    int rc = oms_override_branch(ctx, id, branch, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    if (!oms_authorize_on(req, req->route->perm, branch))
        return OMS_OK;
    static const char *const actions[] = {"override.approve", "override.reject", "override.cancel"};
    override_op op = {.id = id, .d = d};
    if ((rc = run(req, &op, actions[d], NULL, &err)))
        return oms_resp_error(req, rc, &err);
    return respond_one(req, id, 200);
}

int oms_h_override_approve(oms_request *req) { return decide(req, OMS_OVERRIDE_APPROVE); }
int oms_h_override_reject(oms_request *req) { return decide(req, OMS_OVERRIDE_REJECT); }
int oms_h_override_cancel(oms_request *req) { return decide(req, OMS_OVERRIDE_CANCEL); }
