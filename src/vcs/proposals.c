#include "vcs/proposals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "audit/audit.h"
#include "governance/issue_refs.h"
#include "governance/overrides.h"
#include "http/app.h"
#include "http/params.h"
#include "util/encoding.h"
#include "util/time.h"
#include "http/pipeline.h"
#include "vcs/merging.h"
#include "vcs/read_access.h"

#define PROPOSAL_COLS                                                                                          \
    "id, source, target, title, description, state, author, issue_keys, created_at, updated_at, merged_commit," \
    " closed_reason"

typedef struct {
    char id[64], source[128], target[128], state[16], author[256];
    oms_dbres *row;
} proposal;

static void proposal_free(proposal *p) { oms_dbres_free(p->row); }

static int load(oms_dbconn *c, const char *id, bool for_update, bool pg, proposal *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_exec(c,
                         for_update && pg ? "SELECT " PROPOSAL_COLS " FROM proposals WHERE id = $1 FOR UPDATE"
                                          : "SELECT " PROPOSAL_COLS " FROM proposals WHERE id = $1",
                         p, 1, &out->row, err);
    if (rc == OMS_OK && out->row->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no such proposal");
    if (rc) {
        proposal_free(out);
        return rc;
    }
    snprintf(out->id, sizeof out->id, "%s", oms_dbres_get(out->row, 0, 0));
    snprintf(out->source, sizeof out->source, "%s", oms_dbres_get(out->row, 0, 1));
    snprintf(out->target, sizeof out->target, "%s", oms_dbres_get(out->row, 0, 2));
    snprintf(out->state, sizeof out->state, "%s", oms_dbres_get(out->row, 0, 5));
    snprintf(out->author, sizeof out->author, "%s", oms_dbres_get(out->row, 0, 6));
    return OMS_OK;
}

static bool is_pg(oms_request *req) { return oms_db_backend_of(req->app->store->db) == OMS_DB_PG; }

/* Approvals that still count: approving the source's current head, by
 * someone other than the author, one per person (case-variants of a
 * subject are one person: oms_sub_same_person). A new commit on the source
 * resets them. */
static json_t *valid_approvals(oms_dbconn *c, const proposal *p, const char *source_head, oms_error *err)
{
    json_t *out = json_array();
    oms_dbres *r = NULL;
    oms_dbparam q[] = {DBP_TEXT(p->id), DBP_TEXT(source_head)};
    if (oms_db_exec(c,
                    "SELECT reviewer, created_at FROM proposal_reviews WHERE proposal_id = $1 AND source_head = $2"
                    " AND verdict = 'approved' ORDER BY created_at, reviewer",
                    q, 2, &r, err) == OMS_OK) {
        for (size_t i = 0; i < r->nrows; i++) {
            const char *who = oms_dbres_get(r, i, 0);
            bool counted = oms_sub_same_person(who, p->author);
            for (size_t j = 0; j < i && !counted; j++)
                counted = oms_sub_same_person(who, oms_dbres_get(r, j, 0));
            if (counted)
                continue;
            char t[40];
            oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 1));
            json_array_append_new(out, json_pack("{s:s,s:s}", "reviewer", oms_dbres_get(r, i, 0), "at", t));
        }
    }
    oms_dbres_free(r);
    return out;
}

static int branch_rules(oms_dbconn *c, const char *branch, int64_t *required, int64_t *breaking_required,
                        oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam q[] = {DBP_TEXT(branch)};
    int rc = oms_db_exec(c, "SELECT required_approvals, breaking_change_approvals FROM branches WHERE name = $1", q, 1,
                         &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "the target branch %s no longer exists", branch);
    if (rc == OMS_OK) {
        *required = oms_dbres_int(r, 0, 0);
        *breaking_required = oms_dbres_int(r, 0, 1);
    }
    oms_dbres_free(r);
    return rc;
}

/* The view: stored fields plus everything computed against current heads:
 * merge preview (diff, conflicts, breaking), approvals that count, and the
 * approvals the merge needs. */
typedef struct {
    json_t *doc;
    bool mergeable;
    int64_t approvals, required, required_if_not_breaking;
    bool breaking;
    json_t *conflicts;
    char source_head[65]; /* the source commit the approvals were counted for */
} proposal_view;

static int view(oms_request *req, oms_dbconn *c, const proposal *p, proposal_view *v, oms_error *err)
{
    memset(v, 0, sizeof *v);
    const oms_dbres *r = p->row;
    char created[40], updated[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_dbres_int(r, 0, 8));
    oms_time_rfc3339_ms(updated, sizeof updated, oms_dbres_int(r, 0, 9));
    json_t *keys = json_loads(oms_dbres_get(r, 0, 7), 0, NULL);
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s?,s:s?}", "id", p->id, "source", p->source,
                            "target", p->target, "title", oms_dbres_get(r, 0, 3), "description",
                            oms_dbres_get(r, 0, 4), "author", p->author, "issue_keys", keys ? keys : json_array(),
                            "created_at", created, "updated_at", updated, "merged_commit", oms_dbres_get(r, 0, 10),
                            "closed_reason", oms_dbres_get(r, 0, 11));
    const char *state = p->state;
    if (strcmp(p->state, "draft") == 0 || strcmp(p->state, "open") == 0) {
        oms_merge_request m = {.target = p->target, .source = p->source, .dry_run = true, .audit_action = "proposal.merge"};
        oms_merge_result mr;
        oms_error merr;
        int rc = oms_vcs_merge(req, &m, &mr, &merr);
        int64_t required = 1, breaking_required = 2;
        branch_rules(c, p->target, &required, &breaking_required, err);
        if (rc == OMS_OK || rc == OMS_ECONFLICT) {
            bool breaking = mr.breaking;
            v->required = breaking ? breaking_required : required;
            v->required_if_not_breaking = required;
            v->breaking = breaking;
            json_t *approvals = valid_approvals(c, p, mr.source_head, err);
            v->approvals = (int64_t)json_array_size(approvals);
            snprintf(v->source_head, sizeof v->source_head, "%s", mr.source_head);
            json_object_set_new(doc, "source_head", json_string(mr.source_head));
            json_object_set_new(doc, "target_head", json_string(mr.target_head));
            json_object_set_new(doc, "merge_base", json_string(mr.base));
            json_object_set_new(doc, "breaking", json_boolean(breaking));
            json_object_set_new(doc, "changes", mr.changes ? json_incref(mr.changes) : json_array());
            v->conflicts = mr.conflicts ? json_incref(mr.conflicts) : json_array();
            json_object_set_new(doc, "conflicts", json_incref(v->conflicts));
            json_object_set_new(doc, "approvals", approvals);
            json_object_set_new(doc, "required_approvals", json_integer(v->required));
            json_object_set_new(doc, "up_to_date", json_boolean(mr.status && strcmp(mr.status, "up_to_date") == 0));
            v->mergeable = rc == OMS_OK && strcmp(p->state, "open") == 0 && v->approvals >= v->required;
            if (strcmp(p->state, "open") == 0 && v->approvals >= v->required)
                state = "approved";
        } else {
            json_object_set_new(doc, "preview_error", json_string(merr.msg));
        }
        oms_merge_result_clear(&mr);
    }
    json_object_set_new(doc, "state", json_string(state));
    json_object_set_new(doc, "mergeable", json_boolean(v->mergeable));
    v->doc = doc;
    return OMS_OK;
}

static int respond_view(oms_request *req, oms_dbconn *c, const char *id, int status)
{
    oms_error err;
    proposal p;
    int rc = load(c, id, false, false, &p, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    proposal_view v;
    view(req, c, &p, &v, &err);
    proposal_free(&p);
    json_decref(v.conflicts);
    return oms_resp_json(req, status, v.doc);
}

static int conn(oms_request *req, oms_dbconn **c)
{
    oms_error err;
    int rc = oms_db_conn(req->app->store->db, c, &err);
    if (rc)
        oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    return rc;
}

static int audit_transition(oms_dbconn *c, oms_request *req, const char *action, const proposal *p,
                            const char *commit, const char *detail, const json_t *issues, oms_error *err)
{
    char *keys = issues ? json_dumps(issues, JSON_COMPACT) : NULL;
    oms_audit_event ev = {.action = action, .outcome = "success", .http_status = 200, .resource_kind = "proposals",
                          .resource_branch = p->target, .resource_id = p->id, .commit_id = commit,
                          .detail = detail, .issue_keys = keys};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    int rc = oms_audit_append(c, &ev, err);
    free(keys);
    return rc ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}

/* ---- list and create ---- */

/* A proposal shows both branches' content: it is listed only to callers
 * who may read both (SPEC §6.2). */
static json_t *summary_row(const oms_dbres *r, size_t i, void *ctx)
{
    if (!oms_branch_readable(ctx, oms_dbres_get(r, i, 1)) || !oms_branch_readable(ctx, oms_dbres_get(r, i, 2)))
        return NULL;
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 6));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", oms_dbres_get(r, i, 0), "source", oms_dbres_get(r, i, 1),
                     "target", oms_dbres_get(r, i, 2), "title", oms_dbres_get(r, i, 3), "state", oms_dbres_get(r, i, 4),
                     "author", oms_dbres_get(r, i, 5), "created_at", t);
}

int oms_h_proposal_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *state = oms_req_query(req, "state"), *target = oms_req_query(req, "target");
    oms_dbconn *c;
    if (conn(req, &c))
        return OMS_OK;
    oms_error err;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(cursor ? cursor : ""), DBP_TEXT(state), DBP_TEXT(target), DBP_INT((int64_t)limit + 1)};
    int rc = oms_db_exec(c,
                         "SELECT id, source, target, title, state, author, created_at FROM proposals"
                         " WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR state = $2) AND (CAST($3 AS TEXT) IS NULL OR target = $3)"
                         " ORDER BY id LIMIT $4",
                         p, 4, &r, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    oms_resp_page(req, r, limit, 0, summary_row, req, NULL);
    oms_dbres_free(r);
    return OMS_OK;
}

static const char *const k_create_fields[] = {"source", "target", "title", "description", "draft", "issue_id",
                                              "issue_ids", NULL};

static bool branch_exists(oms_dbconn *c, const char *name)
{
    oms_dbres *r = NULL;
    oms_error err;
    oms_dbparam p[] = {DBP_TEXT(name)};
    bool ok = oms_db_exec(c, "SELECT 1 FROM branches WHERE name = $1", p, 1, &r, &err) == OMS_OK && r->nrows == 1;
    oms_dbres_free(r);
    return ok;
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
    if (!oms_authorize_on(req, OMS_PERM_PROPOSAL_CREATE, target) ||
        !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, source) || !oms_authorize_on(req, OMS_PERM_SCHEMA_READ, target))
        return OMS_OK;
    oms_dbconn *c;
    if (conn(req, &c))
        return OMS_OK;
    if (!branch_exists(c, source) || !branch_exists(c, target))
        return oms_resp_problem(req, OMS_ENOTFOUND, "source or target branch does not exist", NULL);
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return oms_resp_problem(req, OMS_EINTERNAL, "no randomness", NULL);
    char id[40] = "prp_";
    oms_hex(id + 4, rnd, sizeof rnd);
    json_t *issues = oms_issue_refs_collect(req, b, NULL, NULL);
    char *keys = json_dumps(issues, JSON_COMPACT);
    int64_t now = oms_now_ms();
    const char *state = json_is_true(draft) ? "draft" : "open";
    oms_error err;
    int rc = oms_db_begin(c, true, &err);
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(source), DBP_TEXT(target), DBP_TEXT(title),
                       DBP_TEXT(desc ? json_string_value(desc) : ""), DBP_TEXT(state), DBP_TEXT(req->principal.sub),
                       DBP_TEXT(keys), DBP_INT(now)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "INSERT INTO proposals (id, source, target, title, description, state, author, issue_keys,"
                         " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                         p, 9, NULL, &err);
    free(keys);
    proposal pr = {0};
    snprintf(pr.id, sizeof pr.id, "%s", id);
    snprintf(pr.target, sizeof pr.target, "%s", target);
    if (rc == OMS_OK)
        rc = audit_transition(c, req, "proposal.create", &pr, NULL, NULL, issues, &err);
    json_decref(issues);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, &err);
    else
        oms_db_rollback(c);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/proposals/%s", id));
    return respond_view(req, c, id, 201);
}

/* The proposal's branches decide who may see it: both must be readable
 * (its view carries their content), and `perm`, when given, is decided on
 * the target (the branch the operation changes, SPEC §6.2). False when
 * refused (answered and audited). */
static bool proposal_access(oms_request *req, const proposal *p, oms_perm perm)
{
    return (perm == OMS_PERM_UNSET || oms_authorize_on(req, perm, p->target)) &&
           oms_authorize_on(req, OMS_PERM_SCHEMA_READ, p->source) &&
           oms_authorize_on(req, OMS_PERM_SCHEMA_READ, p->target);
}

int oms_h_proposal_get(oms_request *req)
{
    oms_dbconn *c;
    if (conn(req, &c))
        return OMS_OK;
    oms_error err;
    proposal p;
    int rc = load(c, req->params[0], false, false, &p, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    bool ok = proposal_access(req, &p, OMS_PERM_UNSET);
    proposal_free(&p);
    return ok ? respond_view(req, c, req->params[0], 200) : OMS_OK;
}

/* ---- transitions ---- */

typedef enum { BY_AUTHOR, BY_REVIEWER, BY_AUTHOR_OR_REVIEWER } who;

/* Moves the proposal from one of `from` states to `to` in one transaction
 * with its audit event; `review` records a review verdict first. */
static int transition(oms_request *req, const char *const *from, const char *to, const char *action, who by,
                      const char *verdict, const char *closed_reason)
{
    oms_dbconn *c;
    if (conn(req, &c))
        return OMS_OK;
    oms_error err;
    proposal p;
    /* Access first, outside the transaction: a refusal is audited by the
     * group-commit writer, which must not wait behind this transaction. A
     * proposal's branches never change, so the answer stays true. */
    int rc = load(c, req->params[0], false, false, &p, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    bool ok = proposal_access(req, &p, req->route->perm);
    proposal_free(&p);
    if (!ok)
        return OMS_OK;
    rc = oms_db_begin(c, true, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    if ((rc = load(c, req->params[0], true, is_pg(req), &p, &err))) {
        oms_db_rollback(c);
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    }
    bool allowed_state = false;
    for (size_t i = 0; from[i]; i++)
        allowed_state = allowed_state || strcmp(p.state, from[i]) == 0;
    bool is_author = strcmp(p.author, req->principal.sub) == 0;
    /* self-review: case-variants of the author are the author (auth/principal.h) */
    bool author_as_reviewer = oms_sub_same_person(p.author, req->principal.sub);
    bool is_reviewer = oms_rbac_allows(req->principal.perms, OMS_PERM_PROPOSAL_REVIEW);
    const char *refusal = NULL, *code = NULL;
    oms_err ecode = OMS_ECONFLICT;
    if (!allowed_state) {
        refusal = oms_arena_printf(req->arena, "a proposal in state %s cannot do that", p.state);
        code = "invalid_state";
    } else if (by == BY_AUTHOR && !is_author) {
        refusal = "only the proposal's author can do that", code = "not_author", ecode = OMS_EFORBIDDEN;
    } else if (by == BY_REVIEWER && author_as_reviewer) {
        refusal = "authors cannot review their own proposals", code = "self_approval", ecode = OMS_EFORBIDDEN;
    } else if (by == BY_AUTHOR_OR_REVIEWER && !is_author && !is_reviewer) {
        refusal = "only the author or a reviewer can do that", code = "forbidden", ecode = OMS_EFORBIDDEN;
    }
    if (refusal) {
        oms_db_rollback(c);
        proposal_free(&p);
        return oms_resp_problem_as(req, ecode, code, refusal, NULL);
    }
    int64_t now = oms_now_ms();
    char head[65] = "";
    if (verdict) {
        oms_dbres *r = NULL;
        oms_dbparam q[] = {DBP_TEXT(p.source)};
        rc = oms_db_exec(c, "SELECT head FROM branches WHERE name = $1", q, 1, &r, &err);
        if (rc == OMS_OK && r->nrows == 0)
            rc = oms_err_set(&err, OMS_ECONFLICT, "the source branch no longer exists");
        if (rc == OMS_OK)
            snprintf(head, sizeof head, "%s", oms_dbres_get(r, 0, 0));
        oms_dbres_free(r);
        oms_dbparam w[] = {DBP_TEXT(p.id), DBP_TEXT(req->principal.sub), DBP_TEXT(verdict), DBP_TEXT(head), DBP_INT(now)};
        if (rc == OMS_OK)
            rc = oms_db_exec(c,
                             "INSERT INTO proposal_reviews (proposal_id, reviewer, verdict, source_head, created_at)"
                             " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (proposal_id, reviewer, source_head)"
                             " DO UPDATE SET verdict = excluded.verdict, created_at = excluded.created_at",
                             w, 5, NULL, &err);
    }
    if (rc == OMS_OK && to) {
        oms_dbparam u[] = {DBP_TEXT(to), DBP_INT(now), DBP_TEXT(closed_reason), DBP_TEXT(p.id)};
        rc = oms_db_exec(c, "UPDATE proposals SET state = $1, updated_at = $2, closed_reason = $3 WHERE id = $4", u, 4,
                         NULL, &err);
    }
    char *detail = oms_arena_printf(req->arena, "{\"from\":\"%s\",\"to\":\"%s\"%s%s%s}", p.state, to ? to : p.state,
                                    head[0] ? ",\"source_head\":\"" : "", head, head[0] ? "\"" : "");
    if (rc == OMS_OK)
        rc = audit_transition(c, req, action, &p, NULL, detail, NULL, &err);
    proposal_free(&p);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, &err);
    else
        oms_db_rollback(c);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    return respond_view(req, c, req->params[0], 200);
}

static const char *const k_from_draft[] = {"draft", NULL};
static const char *const k_from_open[] = {"open", NULL};
static const char *const k_from_live[] = {"draft", "open", NULL};

int oms_h_proposal_open(oms_request *req)
{
    return transition(req, k_from_draft, "open", "proposal.open", BY_AUTHOR, NULL, NULL);
}

int oms_h_proposal_approve(oms_request *req)
{
    return transition(req, k_from_open, NULL, "proposal.approve", BY_REVIEWER, "approved", NULL);
}

/* A rejection is a review verdict that closes the proposal: its author opens
 * a new one after reworking the change. */
int oms_h_proposal_reject(oms_request *req)
{
    return transition(req, k_from_open, "closed", "proposal.reject", BY_REVIEWER, "rejected", "rejected");
}

int oms_h_proposal_close(oms_request *req)
{
    return transition(req, k_from_live, "closed", "proposal.close", BY_AUTHOR_OR_REVIEWER, NULL, "closed");
}

/* ---- merge ---- */

/* The branch a proposal merge changes: its target (issue rules, overrides). */
const char *oms_proposal_target_branch(oms_request *req)
{
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(req->params[0])};
    const char *target = NULL;
    if (oms_db_conn(req->app->store->db, &c, &err) == OMS_OK &&
        oms_db_exec(c, "SELECT target FROM proposals WHERE id = $1", p, 1, &r, &err) == OMS_OK && r->nrows)
        target = oms_arena_strdup(req->arena, oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    return target;
}

static const char *const k_merge_fields[] = {"message", "issue_id", "issue_ids", NULL};

/* What a proposal merge must still find true inside its own transaction
 * (SPEC §4): the source branch still points at the commit the approvals
 * were given for (that exact commit is what is merged), enough approvals
 * of it count, and the proposal is still open. Checked after the head
 * moved and before the commit, so nothing can land between check and act. */
typedef struct {
    const proposal *p;
    const char *approved_head;
    bool breaking, override_ok;
    const char *problem_code; /* set when the guard refuses */
    json_t *problem_extra;
} merge_guard;

static int guard_refuse(merge_guard *g, oms_error *err, const char *code, const char *msg)
{
    g->problem_code = code;
    return oms_err_set(err, OMS_ECONFLICT, "%s", msg);
}

static int merge_guard_check(oms_dbconn *c, merge_guard *g, oms_error *err)
{
    const proposal *p = g->p;
    oms_dbres *r = NULL;
    oms_dbparam s[] = {DBP_TEXT(p->source)};
    int rc = oms_db_exec(c, "SELECT head FROM branches WHERE name = $1", s, 1, &r, err);
    if (rc == OMS_OK && (r->nrows == 0 || strcmp(oms_dbres_get(r, 0, 0), g->approved_head) != 0)) {
        g->problem_extra = json_pack("{s:s,s:s?}", "approved_head", g->approved_head, "source_head",
                                     r->nrows ? oms_dbres_get(r, 0, 0) : NULL);
        rc = guard_refuse(g, err, "source_moved",
                          "the source branch moved after the approvals: review the new commits, then merge");
    }
    oms_dbres_free(r);
    r = NULL;
    if (rc)
        return rc;
    int64_t required = 1, breaking_required = 2;
    if ((rc = branch_rules(c, p->target, &required, &breaking_required, err)))
        return rc;
    json_t *valid = valid_approvals(c, p, g->approved_head, err);
    int64_t approvals = (int64_t)json_array_size(valid);
    json_decref(valid);
    int64_t need = g->breaking ? breaking_required : required;
    /* an approved breaking_change override stands in for the extra
     * approvals of a breaking change, never for the ordinary ones */
    bool enough = approvals >= need || (g->breaking && g->override_ok && approvals >= required);
    if (!enough) {
        g->problem_extra = json_pack("{s:I,s:I}", "approvals", (json_int_t)approvals, "required_approvals",
                                     (json_int_t)need);
        return guard_refuse(g, err, "approvals_required", "the proposal no longer has the approvals it needs");
    }
    return OMS_OK;
}

/* The proposal becomes merged in the merge's own transaction, after the
 * guard held. */
static int mark_merged(oms_dbconn *c, void *ctx, const char *commit, oms_error *err)
{
    merge_guard *g = ctx;
    int rc = merge_guard_check(c, g, err);
    if (rc)
        return rc;
    oms_dbparam u[] = {DBP_TEXT(commit), DBP_INT(oms_now_ms()), DBP_TEXT(g->p->id)};
    oms_dbres *r = NULL;
    rc = oms_db_exec(c,
                     "UPDATE proposals SET state = 'merged', merged_commit = $1, updated_at = $2"
                     " WHERE id = $3 AND state = 'open'",
                     u, 3, &r, err);
    if (rc == OMS_OK && r->changes != 1)
        rc = guard_refuse(g, err, "invalid_state", "only an open proposal can be merged (it changed state)");
    oms_dbres_free(r);
    return rc;
}

int oms_h_proposal_merge(oms_request *req)
{
    const json_t *b = req->json;
    if (b && !json_is_object(b))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be an object", NULL);
    if (b && !oms_body_fields_ok(req, b, k_merge_fields))
        return OMS_OK;
    oms_dbconn *c;
    if (conn(req, &c))
        return OMS_OK;
    oms_error err;
    proposal p;
    int rc = load(c, req->params[0], false, false, &p, &err);
    if (rc)
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    if (!proposal_access(req, &p, OMS_PERM_PROPOSAL_MERGE)) {
        proposal_free(&p);
        return OMS_OK;
    }
    if (strcmp(p.state, "open") != 0) {
        proposal_free(&p);
        return oms_resp_problem_as(req, OMS_ECONFLICT, "invalid_state", "only an open proposal can be merged", NULL);
    }
    proposal_view v;
    view(req, c, &p, &v, &err);
    if (!v.source_head[0]) {
        json_decref(v.conflicts);
        json_decref(v.doc);
        proposal_free(&p);
        return oms_resp_problem_as(req, OMS_ECONFLICT, "merge_conflict", "the proposal cannot be merged as it stands",
                                   NULL);
    }
    bool has_conflicts = json_array_size(v.conflicts) > 0;
    json_t *extra = json_pack("{s:I,s:I}", "approvals", (json_int_t)v.approvals, "required_approvals", (json_int_t)v.required);
    json_decref(v.conflicts);
    json_decref(v.doc);
    if (has_conflicts) {
        proposal_free(&p);
        return oms_resp_problem_as(req, OMS_ECONFLICT, "merge_conflict",
                                   "the proposal conflicts with its target: merge the target into the source first", extra);
    }
    /* An approved breaking_change override stands in for the extra
     * approvals a breaking change needs, never for the ordinary ones. */
    bool override_ok = v.breaking && v.approvals >= v.required_if_not_breaking &&
                       oms_override_permits(oms_req_ctx(req), "breaking_change", p.target, NULL, 0);
    if (v.approvals < v.required && !override_ok) {
        proposal_free(&p);
        return oms_resp_problem_as(req, OMS_ECONFLICT, "approvals_required",
                                   oms_arena_printf(req->arena, "the proposal has %lld of the %lld approvals it needs",
                                                    (long long)v.approvals, (long long)v.required),
                                   extra);
    }
    json_decref(extra);
    const char *message = json_string_value(json_object_get(b, "message"));
    json_t *issues = oms_issue_refs_collect(req, b, message, NULL);
    json_t *stored = json_loads(oms_dbres_get(p.row, 0, 7), 0, NULL);
    size_t i;
    json_t *k;
    json_array_foreach(stored, i, k) {
        bool dup = false;
        size_t j;
        json_t *x;
        json_array_foreach(issues, j, x) dup = dup || json_equal(x, k);
        if (!dup)
            json_array_append(issues, k);
    }
    json_decref(stored);
    char *detail = oms_arena_printf(req->arena, "{\"proposal\":\"%s\",\"approvals\":%lld,\"required\":%lld}", p.id,
                                    (long long)v.approvals, (long long)v.required);
    char *msg = message ? (char *)message
                        : oms_arena_printf(req->arena, "Merge proposal %s: %s", p.id, oms_dbres_get(p.row, 0, 3));
    /* The merge takes the approved commit itself, not the branch name: a
     * commit landing on the source meanwhile is never merged unreviewed. */
    merge_guard guard = {.p = &p, .approved_head = v.source_head, .breaking = v.breaking, .override_ok = override_ok};
    oms_merge_request m = {.target = p.target, .source = v.source_head, .message = msg, .issue_keys = issues,
                           .bypass_protection = true, .audit_action = "proposal.merge", .audit_detail = detail,
                           .in_tx = mark_merged, .in_tx_ctx = &guard};
    oms_merge_result out;
    rc = oms_vcs_merge(req, &m, &out, &err);
    if (rc == OMS_OK && strcmp(out.status, "up_to_date") == 0) {
        /* Nothing left to merge: the proposal is merged at the target's head. */
        if ((rc = oms_db_begin(c, true, &err)) == OMS_OK) {
            if ((rc = mark_merged(c, &guard, out.commit, &err)) == OMS_OK)
                rc = audit_transition(c, req, "proposal.merge", &p, out.commit, detail, issues, &err);
            rc = rc ? (oms_db_rollback(c), rc) : oms_db_commit(c, &err);
        }
    }
    json_decref(issues);
    proposal_free(&p);
    if (rc) {
        json_t *pe = guard.problem_code ? guard.problem_extra : out.problem_extra;
        if (guard.problem_code)
            json_decref(out.problem_extra);
        out.problem_extra = NULL;
        oms_resp_problem_as(req, (oms_err)rc, guard.problem_code ? guard.problem_code : out.problem_code, err.msg, pe);
        oms_merge_result_clear(&out);
        return OMS_OK;
    }
    json_decref(guard.problem_extra);
    oms_resp_header(req, "X-Commit", out.commit);
    oms_merge_result_clear(&out);
    return respond_view(req, c, req->params[0], 200);
}
