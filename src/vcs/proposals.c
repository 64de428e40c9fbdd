#include "util/ids.h"
#include "vcs/proposals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/principal.h"
#include "auth/rbac.h"
#include "governance/overrides.h"
#include "store/proposals_sql.h"
#include "store/store.h"
#include "store/vcs_sql.h"
#include "txn/change.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/time.h"
#include "vcs/commit_graph.h"
#include "vcs/commit_pair_memo.h"
#include "vcs/compat.h"
#include "vcs/merging.h"

static void decref_cb(void *p) { json_decref(p); }


static int load(oms_dbconn *c, const char *id, bool lock, oms_proposal *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = oms_store_proposal_load(c, id, lock, &out->row, err);
    if (rc == OMS_OK && !out->row)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no such proposal");
    if (rc)
        return rc;
    snprintf(out->id, sizeof out->id, "%s", oms_dbres_get(out->row, 0, OMS_PR_ID));
    snprintf(out->source, sizeof out->source, "%s", oms_dbres_get(out->row, 0, OMS_PR_SOURCE));
    snprintf(out->target, sizeof out->target, "%s", oms_dbres_get(out->row, 0, OMS_PR_TARGET));
    snprintf(out->state, sizeof out->state, "%s", oms_dbres_get(out->row, 0, OMS_PR_STATE));
    snprintf(out->author, sizeof out->author, "%s", oms_dbres_get(out->row, 0, OMS_PR_AUTHOR));
    return OMS_OK;
}

void oms_proposal_free(oms_proposal *p)
{
    oms_dbres_free(p->row);
    p->row = NULL;
}

int oms_proposal_load(oms_ctx *ctx, const char *id, oms_proposal *out, oms_error *err)
{
    oms_dbconn *c;
    memset(out, 0, sizeof *out);
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : load(c, id, false, out, err);
}

const char *oms_proposal_target(oms_ctx *ctx, const char *id)
{
    oms_error err;
    oms_dbconn *c;
    char target[128];
    bool found = false;
    if (oms_db_conn(ctx->store->db, &c, &err) || oms_store_proposal_target(c, id, target, sizeof target, &found, &err) ||
        !found)
        return NULL;
    return oms_arena_strdup(ctx->arena, target);
}

/* Approvals that still count: approving the source's current head, by
 * someone other than the author, one per person (case-variants of a
 * subject are one person: oms_sub_same_person). A new commit on the source
 * resets them. */
static json_t *valid_approvals(oms_dbconn *c, const oms_proposal *p, const char *source_head, oms_error *err)
{
    json_t *out = json_array();
    oms_dbres *r = NULL;
    if (out && oms_store_proposal_approvals(c, p->id, source_head, &r, err) == OMS_OK) {
        for (size_t i = 0; i < r->nrows; i++) {
            const char *who = oms_dbres_get(r, i, 0);
            bool counted = oms_sub_same_person(who, p->author);
            for (size_t j = 0; j < i && !counted; j++)
                counted = oms_sub_same_person(who, oms_dbres_get(r, j, 0));
            if (counted)
                continue;
            char t[40];
            oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 1));
            json_array_append_new(out, json_pack("{s:s,s:s}", "reviewer", who, "at", t));
        }
    }
    oms_dbres_free(r);
    return out;
}

/* Change requests still standing (SPEC §4): reviewers whose latest verdict
 * asks for changes; they block the merge until that reviewer approves or
 * withdraws (dismiss). */
static json_t *changes_requested(oms_dbconn *c, const char *id, oms_error *err)
{
    json_t *out = json_array();
    oms_dbres *r = NULL;
    if (out && oms_store_proposal_changes_requested(c, id, &r, err) == OMS_OK) {
        for (size_t i = 0; i < r->nrows; i++) {
            char t[40];
            oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 2));
            json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s?}", "reviewer", oms_dbres_get(r, i, 0),
                                                 "source_head", oms_dbres_get(r, i, 1), "at", t, "comment",
                                                 oms_dbres_get(r, i, 3)));
        }
    }
    oms_dbres_free(r);
    return out;
}

static json_t *requested_reviewers(oms_dbconn *c, const char *id, oms_error *err)
{
    json_t *out = json_array();
    oms_dbres *r = NULL;
    if (out && oms_store_proposal_reviewers(c, id, &r, err) == OMS_OK)
        for (size_t i = 0; i < r->nrows; i++)
            json_array_append_new(out, json_string(oms_dbres_get(r, i, 0)));
    oms_dbres_free(r);
    return out;
}

static void add_key(void *keys, const char *key)
{
    size_t j;
    json_t *x;
    json_array_foreach((json_t *)keys, j, x) if (strcmp(json_string_value(x), key) == 0) return;
    json_array_append_new(keys, json_string(key));
}

/* Adds the issue keys of the source commits not on the target to `keys`
 * (remembered per pair of heads: src/vcs/commit_pair_memo.h). */
static void add_source_keys(oms_dbconn *c, const char *source_head, const char *target_head, json_t *keys)
{
    if (!keys || !source_head || !target_head || !*source_head)
        return;
    char *known = oms_commit_pair_memo_get(OMS_MEMO_ISSUES_AHEAD, source_head, target_head);
    json_t *ahead = known ? json_loads(known, 0, NULL) : NULL;
    free(known);
    if (!json_is_array(ahead)) {
        json_decref(ahead);
        ahead = json_array();
        oms_error e;
        if (oms_commit_graph_keys_between(c, source_head, target_head, add_key, ahead, &e) == OMS_OK) {
            char *text = json_dumps(ahead, JSON_COMPACT);
            oms_commit_pair_memo_put(OMS_MEMO_ISSUES_AHEAD, source_head, target_head, text);
            free(text);
        } /* else what the failed walk found is added, as before, and not remembered */
    }
    size_t i;
    json_t *k;
    json_array_foreach(ahead, i, k) add_key(keys, json_string_value(k));
    json_decref(ahead);
}

json_t *oms_proposal_issue_keys(oms_ctx *ctx, const char *id)
{
    oms_dbconn *c;
    oms_error err;
    oms_proposal p;
    if (oms_db_conn(ctx->store->db, &c, &err) || load(c, id, false, &p, &err))
        return NULL;
    json_t *keys = json_loads(oms_dbres_get(p.row, 0, OMS_PR_ISSUE_KEYS), 0, NULL);
    if (!json_is_array(keys)) {
        json_decref(keys);
        keys = json_array();
    }
    char sh[65], th[65];
    bool fs = false, ft = false;
    if (oms_store_branch_head_of(c, p.source, sh, &fs, &err) == OMS_OK && fs &&
        oms_store_branch_head_of(c, p.target, th, &ft, &err) == OMS_OK && ft)
        add_source_keys(c, sh, th, keys);
    oms_proposal_free(&p);
    return keys;
}

int oms_proposal_view_of(oms_ctx *ctx, const oms_proposal *p, oms_proposal_view *v, oms_error *err)
{
    memset(v, 0, sizeof *v);
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc)
        return rc;
    const oms_dbres *r = p->row;
    char created[40], updated[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_dbres_int(r, 0, OMS_PR_CREATED_AT));
    oms_time_rfc3339_ms(updated, sizeof updated, oms_dbres_int(r, 0, OMS_PR_UPDATED_AT));
    json_t *keys = json_loads(oms_dbres_get(r, 0, OMS_PR_ISSUE_KEYS), 0, NULL);
    if (!json_is_array(keys)) {
        json_decref(keys);
        keys = json_array();
    }
    json_t *own_keys = json_deep_copy(keys);
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s?,s:s?}", "id", p->id, "source", p->source,
                            "target", p->target, "title", oms_dbres_get(r, 0, OMS_PR_TITLE), "description",
                            oms_dbres_get(r, 0, OMS_PR_DESCRIPTION), "author", p->author, "issue_keys",
                            keys ? keys : json_array(), "created_at", created, "updated_at", updated, "merged_commit",
                            oms_dbres_get(r, 0, OMS_PR_MERGED_COMMIT), "closed_reason",
                            oms_dbres_get(r, 0, OMS_PR_CLOSED_REASON));
    if (!doc) {
        json_decref(own_keys);
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    json_object_set_new(doc, "own_issue_keys", own_keys ? own_keys : json_array());
    json_object_set_new(doc, "requested_reviewers", requested_reviewers(c, p->id, err));
    json_t *cr = changes_requested(c, p->id, err);
    v->changes_requested = (int64_t)json_array_size(cr);
    json_object_set_new(doc, "changes_requested", cr ? cr : json_array());
    const char *state = p->state;
    if (strcmp(p->state, "draft") == 0 || strcmp(p->state, "open") == 0) {
        oms_merge_request m = {.target = p->target, .source = p->source, .dry_run = true, .audit_action = "proposal.merge"};
        oms_merge_result mr;
        oms_error merr = {0};
        rc = oms_vcs_merge(ctx, &m, &mr, &merr);
        oms_ctx_problem_extra(ctx, NULL); /* a preview's refusal is part of the view, not of the answer */
        int64_t required = 1, breaking_required = 2;
        oms_store_branch_rules(c, p->target, &required, &breaking_required, err);
        bool transitive = false, found = false;
        oms_error cerr;
        oms_store_branch_compat(c, p->target, v->compatibility, &transitive, &found, &cerr);
        if (strcmp(v->compatibility, "none") == 0)
            breaking_required = required; /* no breaking-change rule on this target */
        if (rc == OMS_OK || rc == OMS_ECONFLICT) {
            bool breaking = mr.breaking;
            json_object_set_new(doc, "compatibility", json_string(v->compatibility));
            json_t *be = oms_vcs_breaking_entries(mr.changes);
            if (be && rc == OMS_OK && transitive && strcmp(v->compatibility, "block") == 0 &&
                json_array_size(mr.changes) > 0) {
                /* the releases the target has tagged: the source's versions of
                 * the changed resources against each (the merge itself checks
                 * the exact merged state) */
                oms_snapshot *after = NULL;
                oms_error terr = {0};
                size_t own = json_array_size(be);
                if (oms_snapshot_for_commit(c, mr.source_head, &after, &terr) == OMS_OK &&
                    oms_vcs_compat_tag_breaks(c, mr.target_head, after, mr.changes, be, &terr) == OMS_OK &&
                    json_array_size(be) > own)
                    breaking = true;
                oms_snapshot_unref(after);
            }
            /* block: a breaking proposal cannot merge (SPEC §4) */
            bool blocked = breaking && strcmp(v->compatibility, "block") == 0;
            json_object_set_new(doc, "breaking_changes", be ? be : json_array());
            json_object_set_new(doc, "blocked_by_policy", json_boolean(blocked));
            v->required = breaking ? breaking_required : required;
            v->required_if_not_breaking = required;
            v->breaking = breaking;
            json_t *approvals = valid_approvals(c, p, mr.source_head, err);
            v->approvals = (int64_t)json_array_size(approvals);
            snprintf(v->source_head, sizeof v->source_head, "%s", mr.source_head);
            json_object_set_new(doc, "source_head", json_string(mr.source_head));
            json_object_set_new(doc, "target_head", json_string(mr.target_head));
            json_object_set_new(doc, "merge_base", json_string(mr.base));
            add_source_keys(c, mr.source_head, mr.target_head, json_object_get(doc, "issue_keys"));
            json_object_set_new(doc, "breaking", json_boolean(breaking));
            json_object_set_new(doc, "changes", mr.changes ? json_incref(mr.changes) : json_array());
            v->conflicts = mr.conflicts ? json_incref(mr.conflicts) : json_array();
            json_object_set_new(doc, "conflicts", json_incref(v->conflicts));
            json_object_set_new(doc, "approvals", approvals ? approvals : json_array());
            json_object_set_new(doc, "required_approvals", json_integer(v->required));
            json_object_set_new(doc, "up_to_date", json_boolean(mr.status && strcmp(mr.status, "up_to_date") == 0));
            v->mergeable = rc == OMS_OK && strcmp(p->state, "open") == 0 && v->approvals >= v->required &&
                           v->changes_requested == 0 && !blocked;
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

void oms_proposal_view_clear(oms_proposal_view *v)
{
    json_decref(v->doc);
    json_decref(v->conflicts);
    memset(v, 0, sizeof *v);
}

int oms_proposal_page(oms_ctx *ctx, const char *after, const char *state, const char *target,
                      const char *needs_review_by, size_t limit, oms_dbres **out, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : oms_store_proposal_page(c, after, state, target, needs_review_by, (int64_t)limit + 1, out, err);
}

json_t *oms_proposal_summary_json(const oms_dbres *r, size_t i)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 6));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", oms_dbres_get(r, i, 0), "source", oms_dbres_get(r, i, 1),
                     "target", oms_dbres_get(r, i, 2), "title", oms_dbres_get(r, i, 3), "state", oms_dbres_get(r, i, 4),
                     "author", oms_dbres_get(r, i, 5), "created_at", t);
}

/* ---- create ---- */

static bool branch_exists(oms_dbconn *c, const char *name)
{
    char head[65];
    bool found = false;
    oms_error err;
    return oms_store_branch_head_of(c, name, head, &found, &err) == OMS_OK && found;
}

typedef struct {
    const oms_proposal_new *n;
    const char *id;
} create_run;

static int create_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    create_run *s = arg;
    const oms_proposal_new *n = s->n;
    char *keys = ctx->issue_keys ? json_dumps(ctx->issue_keys, JSON_COMPACT) : oms_xstrdup("[]");
    if (!keys)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = oms_store_proposal_insert(c, s->id, n->source, n->target, n->title, n->description ? n->description : "",
                                       n->draft ? "draft" : "open", ctx->sub, keys, oms_now_ms(), err);
    free(keys);
    size_t i;
    json_t *who;
    json_array_foreach(n->reviewers, i, who) {
        if (rc)
            break;
        rc = oms_store_proposal_reviewer_add(c, s->id, json_string_value(who), ctx->sub ? ctx->sub : "", oms_now_ms(),
                                             err);
    }
    if (rc)
        return rc;
    out->resource_kind = "proposals";
    out->resource_id = s->id;
    out->branch = n->target;
    out->status = 201; /* what the client receives (SPEC §9) */
    return OMS_OK;
}

int oms_proposal_create(oms_ctx *ctx, const oms_proposal_new *n, char id[40], oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc)
        return rc;
    if (!branch_exists(c, n->source) || !branch_exists(c, n->target))
        return oms_err_set(err, OMS_ENOTFOUND, "source or target branch does not exist");
    oms_random_id(id, "prp_");
    create_run s = {.n = n, .id = id};
    oms_change_spec spec = {.action = "proposal.create", .branch = n->target, .step = create_step, .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}

/* ---- transitions ---- */

typedef struct {
    const char *id;
    const oms_proposal_transition *t;
    const char *comment;
} transition_run;


static int transition_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    transition_run *s = arg;
    const oms_proposal_transition *t = s->t;
    oms_proposal p;
    int rc = load(c, s->id, true, &p, err);
    if (rc)
        return rc;
    const char *sub = ctx->sub ? ctx->sub : "";
    bool allowed_state = false;
    for (size_t i = 0; t->from[i]; i++)
        allowed_state = allowed_state || strcmp(p.state, t->from[i]) == 0;
    bool is_author = strcmp(p.author, sub) == 0;
    /* self-review: case-variants of the author are the author (auth/principal.h) */
    bool author_as_reviewer = oms_sub_same_person(p.author, sub);
    bool is_reviewer = ctx->principal && oms_rbac_allows(ctx->principal->perms, OMS_PERM_PROPOSAL_REVIEW);
    if (!allowed_state)
        rc = oms_err_set_as(err, OMS_ECONFLICT, "invalid_state", "a proposal in state %s cannot do that", p.state);
    else if (t->by == OMS_PROPOSAL_BY_AUTHOR && !is_author)
        rc = oms_err_set_as(err, OMS_EFORBIDDEN, "not_author", "only the proposal's author can do that");
    else if (t->by == OMS_PROPOSAL_BY_REVIEWER && author_as_reviewer)
        rc = oms_err_set_as(err, OMS_EFORBIDDEN, "self_approval", "authors cannot review their own proposals");
    else if (t->by == OMS_PROPOSAL_BY_AUTHOR_OR_REVIEWER && !is_author && !is_reviewer)
        rc = oms_err_set_as(err, OMS_EFORBIDDEN, "forbidden", "only the author or a reviewer can do that");
    int64_t now = oms_now_ms();
    char head[65] = "";
    if (rc == OMS_OK && t->verdict) {
        bool found = false;
        if ((rc = oms_store_branch_head_of(c, p.source, head, &found, err)) == OMS_OK && !found)
            rc = oms_err_set(err, OMS_ECONFLICT, "the source branch no longer exists");
        if (rc == OMS_OK)
            rc = oms_store_proposal_review(c, p.id, sub, t->verdict, head, s->comment, now, err);
        char cid[40];
        if (rc == OMS_OK && s->comment) {
            oms_random_id(cid, "cmt_");
            rc = oms_store_proposal_comment_insert(c, p.id, cid, sub, s->comment, NULL, NULL, t->verdict, head, now,
                                                   err);
        }
    }
    if (rc == OMS_OK && t->to)
        rc = oms_store_proposal_set_state(c, p.id, t->to, t->closed_reason, now, err);
    if (rc == OMS_OK) {
        out->resource_kind = "proposals";
        out->resource_id = oms_arena_strdup(ctx->arena, p.id);
        out->branch = oms_arena_strdup(ctx->arena, p.target);
        out->status = 200;
        out->detail = json_pack("{s:s,s:s}", "from", p.state, "to", t->to ? t->to : p.state);
        if (out->detail && head[0])
            json_object_set_new(out->detail, "source_head", json_string(head));
        if (out->detail && t->verdict)
            json_object_set_new(out->detail, "verdict", json_string(t->verdict));
        if (!out->detail || !out->resource_id || !out->branch)
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    oms_proposal_free(&p);
    return rc;
}

int oms_proposal_transition_run(oms_ctx *ctx, const char *id, const oms_proposal_transition *t, const char *comment,
                                oms_error *err)
{
    transition_run s = {.id = id, .t = t, .comment = comment};
    oms_change_spec spec = {.action = t->action, .step = transition_step, .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}

/* ---- comments and requested reviewers ---- */

typedef struct {
    const char *id;
    const oms_proposal_comment *cm;
    char cid[40];
} comment_run;

static int comment_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    comment_run *s = arg;
    oms_proposal p;
    int rc = load(c, s->id, true, &p, err);
    if (rc)
        return rc;
    char head[65] = "";
    bool found = false;
    if ((rc = oms_store_branch_head_of(c, p.source, head, &found, err)) == OMS_OK && !found)
        head[0] = 0;
    if (rc == OMS_OK) {
        oms_random_id(s->cid, "cmt_");
        rc = oms_store_proposal_comment_insert(c, p.id, s->cid, ctx->sub ? ctx->sub : "", s->cm->body,
                                               s->cm->resource, s->cm->pointer, NULL, head, oms_now_ms(), err);
    }
    if (rc == OMS_OK) {
        out->resource_kind = "proposals";
        out->resource_id = oms_arena_strdup(ctx->arena, p.id);
        out->branch = oms_arena_strdup(ctx->arena, p.target);
        out->status = 201;
        out->detail = json_pack("{s:s,s:s?,s:s?}", "comment", s->cid, "resource", s->cm->resource, "pointer",
                                s->cm->pointer);
        if (!out->detail || !out->resource_id || !out->branch)
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    oms_proposal_free(&p);
    return rc;
}

json_t *oms_proposal_comment_json(const oms_dbres *r, size_t i)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, 8));
    return json_pack("{s:I,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s,s:s}", "seq", (json_int_t)oms_dbres_int(r, i, 0), "id",
                     oms_dbres_get(r, i, 1), "author", oms_dbres_get(r, i, 2), "body", oms_dbres_get(r, i, 3),
                     "resource", oms_dbres_get(r, i, 4), "pointer", oms_dbres_get(r, i, 5), "verdict",
                     oms_dbres_get(r, i, 6), "source_head", oms_dbres_get(r, i, 7), "created_at", t);
}

int oms_proposal_comment_add(oms_ctx *ctx, const char *id, const oms_proposal_comment *cm, json_t **out,
                             oms_error *err)
{
    comment_run s = {.id = id, .cm = cm};
    oms_change_spec spec = {.action = "proposal.comment", .step = comment_step, .arg = &s};
    oms_change_out co;
    int rc = oms_change_run(ctx, &spec, &co, err);
    if (rc)
        return rc;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    if ((rc = oms_db_conn(ctx->store->db, &c, err)) == OMS_OK &&
        (rc = oms_store_proposal_comment_get(c, s.cid, &r, err)) == OMS_OK)
        *out = r->nrows ? oms_proposal_comment_json(r, 0) : json_pack("{s:s}", "id", s.cid);
    oms_dbres_free(r);
    return rc;
}

int oms_proposal_comment_page(oms_ctx *ctx, const char *id, int64_t after_seq, size_t limit, oms_dbres **out,
                              oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : oms_store_proposal_comments(c, id, after_seq, (int64_t)limit + 1, out, err);
}

typedef struct {
    const char *id;
    const json_t *reviewers;
} reviewers_run;

static int reviewers_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    reviewers_run *s = arg;
    oms_proposal p;
    int rc = load(c, s->id, true, &p, err);
    if (rc)
        return rc;
    const char *sub = ctx->sub ? ctx->sub : "";
    bool is_reviewer = ctx->principal && oms_rbac_allows(ctx->principal->perms, OMS_PERM_PROPOSAL_REVIEW);
    if (strcmp(p.author, sub) != 0 && !is_reviewer)
        rc = oms_err_set_as(err, OMS_EFORBIDDEN, "forbidden", "only the author or a reviewer can request reviewers");
    else if (strcmp(p.state, "draft") != 0 && strcmp(p.state, "open") != 0)
        rc = oms_err_set_as(err, OMS_ECONFLICT, "invalid_state", "a proposal in state %s cannot do that", p.state);
    size_t i;
    json_t *who;
    int64_t now = oms_now_ms();
    json_array_foreach(s->reviewers, i, who) {
        if (rc)
            break;
        rc = oms_store_proposal_reviewer_add(c, p.id, json_string_value(who), sub, now, err);
    }
    if (rc == OMS_OK) {
        out->resource_kind = "proposals";
        out->resource_id = oms_arena_strdup(ctx->arena, p.id);
        out->branch = oms_arena_strdup(ctx->arena, p.target);
        out->status = 200;
        out->detail = json_pack("{s:O}", "reviewers", (json_t *)s->reviewers);
        if (!out->detail || !out->resource_id || !out->branch)
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    oms_proposal_free(&p);
    return rc;
}

int oms_proposal_reviewers_add(oms_ctx *ctx, const char *id, const json_t *reviewers, oms_error *err)
{
    reviewers_run s = {.id = id, .reviewers = reviewers};
    oms_change_spec spec = {.action = "proposal.reviewers", .step = reviewers_step, .arg = &s};
    oms_change_out co;
    return oms_change_run(ctx, &spec, &co, err);
}

/* ---- merge ---- */

/* What a proposal merge must still find true inside its own transaction
 * (SPEC §4): the source branch still points at the commit the approvals
 * were given for (that exact commit is what is merged), enough approvals
 * of it count, and the proposal is still open. Checked after the head
 * moved and before the commit, so nothing can land between check and act. */
typedef struct {
    oms_ctx *ctx;
    const oms_proposal *p;
    const char *approved_head;
    bool breaking, override_ok;
} merge_guard;

static int merge_guard_check(oms_dbconn *c, merge_guard *g, oms_error *err)
{
    const oms_proposal *p = g->p;
    char head[65];
    bool found = false;
    int rc = oms_store_branch_head_of(c, p->source, head, &found, err);
    if (rc)
        return rc;
    if (!found || strcmp(head, g->approved_head) != 0) {
        oms_ctx_problem_extra(g->ctx, json_pack("{s:s,s:s?}", "approved_head", g->approved_head, "source_head",
                                                found ? head : NULL));
        return oms_err_set_as(err, OMS_ECONFLICT, "source_moved",
                              "the source branch moved after the approvals: review the new commits, then merge");
    }
    json_t *cr = changes_requested(c, p->id, err);
    size_t ncr = json_array_size(cr);
    if (ncr) {
        oms_ctx_problem_extra(g->ctx, json_pack("{s:o}", "changes_requested", cr));
        return oms_err_set_as(err, OMS_ECONFLICT, "changes_requested",
                              "a reviewer requested changes: the merge waits until that reviewer approves the"
                              " current head or withdraws the request");
    }
    json_decref(cr);
    int64_t required = 1, breaking_required = 2;
    if ((rc = oms_store_branch_rules(c, p->target, &required, &breaking_required, err)))
        return rc;
    json_t *valid = valid_approvals(c, p, g->approved_head, err);
    int64_t approvals = (int64_t)json_array_size(valid);
    json_decref(valid);
    int64_t need = g->breaking ? breaking_required : required;
    /* an approved breaking_change override stands in for the extra
     * approvals of a breaking change, never for the ordinary ones */
    bool enough = approvals >= need || (g->breaking && g->override_ok && approvals >= required);
    if (!enough) {
        oms_ctx_problem_extra(g->ctx, json_pack("{s:I,s:I}", "approvals", (json_int_t)approvals, "required_approvals",
                                                (json_int_t)need));
        return oms_err_set_as(err, OMS_ECONFLICT, "approvals_required", "the proposal no longer has the approvals it needs");
    }
    return OMS_OK;
}

/* The proposal becomes merged in the merge's own transaction, after the
 * guard held. */
static int mark_merged(oms_dbconn *c, void *arg, const char *commit, oms_error *err)
{
    merge_guard *g = arg;
    int rc = merge_guard_check(c, g, err);
    if (rc)
        return rc;
    bool changed = false;
    if ((rc = oms_store_proposal_mark_merged(c, g->p->id, commit, oms_now_ms(), &changed, err)) == OMS_OK && !changed)
        rc = oms_err_set_as(err, OMS_ECONFLICT, "invalid_state", "only an open proposal can be merged (it changed state)");
    return rc;
}

typedef struct {
    merge_guard *g;
    const char *commit;
    const json_t *detail;
} up_to_date_run;

/* Nothing left to merge: the proposal is merged at the target's head. */
static int up_to_date_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    up_to_date_run *s = arg;
    int rc = mark_merged(c, s->g, s->commit, err);
    if (rc)
        return rc;
    out->resource_kind = "proposals";
    out->resource_id = s->g->p->id;
    out->branch = s->g->p->target;
    out->commit_id = s->commit;
    out->status = 200;
    out->detail = json_deep_copy(s->detail);
    return out->detail ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

/* The change's issue references: the request's, then the proposal's own. */
static int merge_issue_keys(oms_ctx *ctx, const oms_proposal *p, oms_error *err)
{
    if (!ctx->issue_keys) {
        if (!(ctx->issue_keys = json_array()) || oms_arena_on_cleanup(ctx->arena, decref_cb, ctx->issue_keys)) {
            json_decref(ctx->issue_keys);
            ctx->issue_keys = NULL;
            return oms_err_set(err, OMS_ENOMEM, "out of memory");
        }
    }
    json_t *stored = json_loads(oms_dbres_get(p->row, 0, OMS_PR_ISSUE_KEYS), 0, NULL);
    size_t i;
    json_t *k;
    json_array_foreach(stored, i, k) {
        bool dup = false;
        size_t j;
        json_t *x;
        json_array_foreach(ctx->issue_keys, j, x) dup = dup || json_equal(x, k);
        if (!dup)
            json_array_append(ctx->issue_keys, k);
    }
    json_decref(stored);
    oms_dbconn *c;
    oms_error e;
    char sh[65], th[65];
    bool fs = false, ft = false;
    if (oms_db_conn(ctx->store->db, &c, &e) == OMS_OK &&
        oms_store_branch_head_of(c, p->source, sh, &fs, &e) == OMS_OK && fs &&
        oms_store_branch_head_of(c, p->target, th, &ft, &e) == OMS_OK && ft)
        add_source_keys(c, sh, th, ctx->issue_keys);
    return OMS_OK;
}

int oms_proposal_merge(oms_ctx *ctx, const oms_proposal *p, const char *message, char commit[65], oms_error *err)
{
    if (strcmp(p->state, "open") != 0)
        return oms_err_set_as(err, OMS_ECONFLICT, "invalid_state", "only an open proposal can be merged");
    oms_proposal_view v;
    int rc = oms_proposal_view_of(ctx, p, &v, err);
    if (rc)
        return rc;
    if (!v.source_head[0]) {
        oms_proposal_view_clear(&v);
        return oms_err_set_as(err, OMS_ECONFLICT, "merge_conflict", "the proposal cannot be merged as it stands");
    }
    bool has_conflicts = json_array_size(v.conflicts) > 0;
    if (has_conflicts) {
        oms_ctx_problem_extra(ctx, json_pack("{s:I,s:I}", "approvals", (json_int_t)v.approvals, "required_approvals",
                                             (json_int_t)v.required));
        oms_proposal_view_clear(&v);
        return oms_err_set_as(err, OMS_ECONFLICT, "merge_conflict",
                              "the proposal conflicts with its target: merge the target into the source first");
    }
    if (v.changes_requested > 0) {
        oms_ctx_problem_extra(ctx, json_pack("{s:O}", "changes_requested", json_object_get(v.doc, "changes_requested")));
        oms_proposal_view_clear(&v);
        return oms_err_set_as(err, OMS_ECONFLICT, "changes_requested",
                              "a reviewer requested changes: the merge waits until that reviewer approves the"
                              " current head or withdraws the request");
    }
    /* An approved breaking_change override stands in for the extra
     * approvals a breaking change needs, never for the ordinary ones. */
    bool override_ok = v.breaking && v.approvals >= v.required_if_not_breaking &&
                       oms_override_permits(ctx, "breaking_change", p->target, NULL, 0);
    if (v.approvals < v.required && !override_ok) {
        oms_ctx_problem_extra(ctx, json_pack("{s:I,s:I}", "approvals", (json_int_t)v.approvals, "required_approvals",
                                             (json_int_t)v.required));
        rc = oms_err_set_as(err, OMS_ECONFLICT, "approvals_required", "the proposal has %lld of the %lld approvals it needs",
                            (long long)v.approvals, (long long)v.required);
        oms_proposal_view_clear(&v);
        return rc;
    }
    if ((rc = merge_issue_keys(ctx, p, err))) {
        oms_proposal_view_clear(&v);
        return rc;
    }
    json_t *detail = json_pack("{s:s,s:I,s:I}", "proposal", p->id, "approvals", (json_int_t)v.approvals, "required",
                               (json_int_t)v.required);
    const char *msg = message ? message
                              : oms_arena_printf(ctx->arena, "Merge proposal %s: %s", p->id,
                                                 oms_dbres_get(p->row, 0, OMS_PR_TITLE));
    /* The merge takes the approved commit itself, not the branch name: a
     * commit landing on the source meanwhile is never merged unreviewed. */
    merge_guard guard = {.ctx = ctx, .p = p, .approved_head = v.source_head,
                         .breaking = v.breaking && strcmp(v.compatibility, "none") != 0,
                         .override_ok = override_ok};
    oms_merge_request m = {.target = p->target, .source = v.source_head, .message = msg, .bypass_protection = true,
                           .audit_action = "proposal.merge", .audit_detail = detail, .in_tx = mark_merged,
                           .in_tx_ctx = &guard};
    oms_merge_result out;
    if (!detail || !msg) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        memset(&out, 0, sizeof out);
    } else {
        rc = oms_vcs_merge(ctx, &m, &out, err);
    }
    if (rc == OMS_OK && strcmp(out.status, "up_to_date") == 0) {
        up_to_date_run s = {.g = &guard, .commit = out.commit, .detail = detail};
        oms_change_spec spec = {.action = "proposal.merge", .branch = p->target, .step = up_to_date_step, .arg = &s};
        oms_change_out co;
        rc = oms_change_run(ctx, &spec, &co, err);
    }
    if (rc == OMS_OK)
        snprintf(commit, 65, "%s", out.commit);
    json_decref(detail);
    oms_merge_result_clear(&out);
    oms_proposal_view_clear(&v);
    return rc;
}
