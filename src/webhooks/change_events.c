#include "webhooks/change_events.h"

#include <stdio.h>
#include <string.h>

#include "events/events.h"
#include "store/proposals_sql.h"

/* The stable list (docs/events.md "Types"): an audit action that is not
 * named here keeps its own name as its type. */
static const char *const k_types[][2] = {
    {"resource.create", "commit.created"},
    {"resource.update", "commit.created"},
    {"resource.delete", "commit.created"},
    {"schema.changes", "commit.created"},
    {"branch.create", "branch.created"},
    {"branch.delete", "branch.deleted"},
    {"branch.settings", "branch.settings_changed"},
    {"branch.merge", "branch.merged"},
    {"branch.revert", "branch.reverted"},
    {"tag.create", "tag.created"},
    {"tag.delete", "tag.deleted"},
    {"proposal.create", "proposal.created"},
    {"proposal.open", "proposal.opened"},
    {"proposal.approve", "proposal.approved"},
    {"proposal.reject", "proposal.rejected"},
    {"proposal.close", "proposal.closed"},
    {"proposal.merge", "proposal.merged"},
    {"proposal.request_changes", "proposal.changes_requested"},
    {"proposal.reviewers", "proposal.reviewers_changed"},
    {"proposal.comment", "proposal.commented"},
    {"lock.acquire", "lock.acquired"},
    {"lock.release", "lock.released"},
    {"lock.force_release", "lock.force_released"},
    {"lock.extend", "lock.extended"},
    {"override.request", "override.requested"},
    {"override.approve", "override.approved"},
    {"override.reject", "override.rejected"},
    {"override.cancel", "override.cancelled"},
    {"acl.create", "acl.policy_created"},
    {"acl.update", "acl.policy_updated"},
    {"acl.delete", "acl.policy_deleted"},
    {"index.rebuild", "index.rebuild_started"},
    {"webhook.create", "webhook.created"},
    {"webhook.update", "webhook.updated"},
    {"webhook.delete", "webhook.deleted"},
};

const char *oms_event_type_of(const char *action)
{
    if (!action)
        return NULL;
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (strcmp(k_types[i][0], action) == 0)
            return k_types[i][1];
    return action;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

/* The event of a change: its type (NULL: none) and data object. `c`
 * NULL: nothing may be read, and a change whose event needs the database
 * (a proposal's source and target) gets OMS_ENOTIMPL. */
static int build(oms_dbconn *c, const oms_ctx *ctx, const char *action, const oms_change_out *out,
                 const char **type_out, json_t **data, oms_error *err)
{
    *type_out = NULL;
    *data = NULL;
    if (out->unaudited) /* a heartbeat: liveness, not a change */
        return OMS_OK;
    const char *type = oms_event_type_of(action);
    if (!type)
        return OMS_OK;
    /* a schema write names its action by its kind (object_type.create,
     * shared_property.delete, ...): every one is a commit */
    if (type == action && out->commit_id)
        type = "commit.created";
    bool proposal = out->resource_kind && strcmp(out->resource_kind, "proposals") == 0 && out->resource_id;
    if (proposal && !c)
        return oms_err_set(err, OMS_ENOTIMPL, "a proposal's event reads the proposal");
    json_t *d = json_object();
    if (!d)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    set_str(d, "action", action);
    set_str(d, "actor", ctx->sub);
    set_str(d, "request_id", ctx->request_id);
    set_str(d, "branch", out->branch);
    set_str(d, "commit_id", out->commit_id);
    set_str(d, "resource_kind", out->resource_kind);
    set_str(d, "resource_id", out->resource_id);
    set_str(d, "before_hash", out->before_hash);
    set_str(d, "after_hash", out->after_hash);
    if (out->changed_paths) {
        json_t *ch = json_loads(out->changed_paths, 0, NULL);
        if (ch)
            json_object_set_new(d, "changed", ch);
    }
    if (ctx->issue_keys && json_array_size(ctx->issue_keys))
        json_object_set(d, "issue_keys", ctx->issue_keys);
    if (out->detail)
        json_object_set(d, "detail", out->detail);
    /* a proposal's event carries its source: a reader of the target who may
     * not read the source must not see it (SPEC §6.2, api/events.c) */
    if (proposal) {
        oms_dbres *r = NULL;
        if (oms_store_proposal_load(c, out->resource_id, false, &r, err) == OMS_OK && r->nrows) {
            set_str(d, "source", oms_dbres_get(r, 0, OMS_PR_SOURCE));
            set_str(d, "target", oms_dbres_get(r, 0, OMS_PR_TARGET));
        }
        oms_dbres_free(r);
    }
    const char *override_id = out->override_id ? out->override_id : ctx->override.used ? ctx->override.id : NULL;
    set_str(d, "override_id", override_id);
    *type_out = type;
    *data = d;
    return OMS_OK;
}

/* What the event is about: KIND/ID, or the id, or the branch. */
static const char *subject_of(const oms_change_out *out, char *buf, size_t cap)
{
    if (out->resource_kind && out->resource_id) {
        snprintf(buf, cap, "%s/%s", out->resource_kind, out->resource_id);
        return buf;
    }
    return out->resource_id ? out->resource_id : out->branch;
}

int oms_change_events_outbox(oms_dbconn *c, const oms_ctx *ctx, const char *action, const oms_change_out *out,
                             oms_error *err)
{
    const char *type;
    json_t *d;
    int rc = build(c, ctx, action, out, &type, &d, err);
    if (rc || !type)
        return rc;
    char subject[256];
    return oms_event_emit(c, type, subject_of(out, subject, sizeof subject), out->branch, d, err);
}

int oms_change_events_render(const oms_ctx *ctx, const char *action, const oms_change_out *out, oms_event_row *row,
                             bool *none, oms_error *err)
{
    const char *type;
    json_t *d;
    *none = false;
    int rc = build(NULL, ctx, action, out, &type, &d, err);
    if (rc || (*none = !type))
        return rc;
    char subject[256];
    return oms_event_render(type, subject_of(out, subject, sizeof subject), out->branch, d, row, err);
}
