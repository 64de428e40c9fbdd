/* ACL policies as a resource: list, create, get, replace, delete (SPEC §6.2).
 *
 * Every change is one change transaction (oms_change_run, run by
 * src/api/acl.c): the policy row and the bump of acl_version (which makes
 * every instance recompile before its next decision) are this module's
 * step (oms_acl_change_write); the helper writes the change's audit event;
 * after it, in the same transaction, an `alert.raised` event and the stored
 * alert itself (oms_acl_change_alert; rule acl_change: SPEC §10 asks an
 * alert for every ACL change). Replace and delete compare-and-swap on the
 * policy's ETag. */
#include "auth/acl_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/acl.h"
#include "auth/acl_store.h"
#include "auth/principal.h"
#include "audit/alerts.h"
#include "store/acl_sql.h"
#include "store/store.h"
#include "util/canonical.h"
#include "util/time.h"

/* The stored part of a checked document: the five policy fields, with the
 * description defaulted; issue references are not part of a policy. */
static json_t *stored_doc(const json_t *body)
{
    json_t *d = json_object_get(body, "description");
    return json_pack("{s:O,s:O,s:O,s:O,s:s}", "subject", json_object_get(body, "subject"), "effect",
                     json_object_get(body, "effect"), "permissions", json_object_get(body, "permissions"),
                     "branches", json_object_get(body, "branches"), "description",
                     d ? json_string_value(d) : "");
}

/* SHA-256 of the canonical {id, revision, policy}: changes with every write,
 * even one that restores earlier content. */
static int policy_etag(const char *id, int64_t revision, const json_t *doc, char out[65])
{
    json_t *o = json_deep_copy(doc);
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "revision", json_integer(revision));
    int rc = oms_canonical_hash(o, out, NULL);
    json_decref(o);
    return rc;
}

static json_t *policy_out(const char *id, const json_t *doc, int64_t revision, int64_t created_at,
                          const char *created_by, int64_t updated_at, const char *updated_by)
{
    char c[40], u[40];
    oms_time_rfc3339_ms(c, sizeof c, created_at);
    oms_time_rfc3339_ms(u, sizeof u, updated_at);
    json_t *o = json_deep_copy(doc);
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "revision", json_integer(revision));
    json_object_set_new(o, "created_at", json_string(c));
    json_object_set_new(o, "created_by", json_string(created_by ? created_by : ""));
    json_object_set_new(o, "updated_at", json_string(u));
    json_object_set_new(o, "updated_by", json_string(updated_by ? updated_by : ""));
    return o;
}

static json_t *row_doc(const oms_dbres *r, size_t i)
{
    json_t *perms = json_loads(oms_dbres_get(r, i, OMS_ACL_COL_PERMISSIONS), 0, NULL);
    json_t *branches = json_loads(oms_dbres_get(r, i, OMS_ACL_COL_BRANCHES), 0, NULL);
    return json_pack("{s:s,s:s,s:o,s:o,s:s}", "subject", oms_dbres_get(r, i, OMS_ACL_COL_SUBJECT), "effect",
                     oms_dbres_get(r, i, OMS_ACL_COL_EFFECT), "permissions", perms ? perms : json_array(),
                     "branches", branches ? branches : json_array(), "description",
                     oms_dbres_get(r, i, OMS_ACL_COL_DESCRIPTION));
}

static json_t *row_json(const oms_dbres *r, size_t i)
{
    json_t *doc = row_doc(r, i);
    json_t *o = policy_out(oms_dbres_get(r, i, OMS_ACL_COL_ID), doc, oms_dbres_int(r, i, OMS_ACL_COL_REVISION),
                           oms_dbres_int(r, i, OMS_ACL_COL_CREATED_AT), oms_dbres_get(r, i, OMS_ACL_COL_CREATED_BY),
                           oms_dbres_int(r, i, OMS_ACL_COL_UPDATED_AT), oms_dbres_get(r, i, OMS_ACL_COL_UPDATED_BY));
    json_decref(doc);
    return o;
}

static int load_policy(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    if (!oms_acl_id_valid(id))
        return oms_err_set(err, OMS_ENOTFOUND, "no ACL policy %.64s", id);
    int rc = oms_store_acl_get(c, id, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no ACL policy %s", id);
    }
    return rc;
}

static int read_failed(oms_ctx *ctx, int rc)
{
    if (rc == OMS_EDB)
        oms_db_conn_reset(ctx->store->db);
    return rc;
}

/* ---- reads ---- */

int oms_acl_policy_list(oms_ctx *ctx, const char *subject, const char *cursor, size_t limit, json_t **items,
                        const char **next, oms_error *err)
{
    *items = NULL;
    *next = NULL;
    /* The cursor is "created_at:id" of the last item returned. */
    long long after_ms = -1;
    char after_id[OMS_ACL_ID_LEN + 1] = "";
    if (cursor && (sscanf(cursor, "%lld:%36s", &after_ms, after_id) != 2 || !oms_acl_id_valid(after_id)))
        return oms_err_set(err, OMS_EINVAL, "cursor is not valid");
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_acl_list(c, subject, after_ms, after_id, (int64_t)limit + 1, &r, err);
    if (rc)
        return read_failed(ctx, rc);
    json_t *a = json_array();
    size_t n = r->nrows < limit ? r->nrows : limit;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, row_json(r, i));
    if (r->nrows > limit)
        *next = oms_arena_printf(ctx->arena, "%lld:%s", (long long)oms_dbres_int(r, limit - 1, OMS_ACL_COL_CREATED_AT),
                                 oms_dbres_get(r, limit - 1, OMS_ACL_COL_ID));
    oms_dbres_free(r);
    *items = a;
    return OMS_OK;
}

int oms_acl_policy_get(oms_ctx *ctx, const char *id, oms_acl_policy_out *out, oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = load_policy(c, id, &r, err);
    if (rc)
        return read_failed(ctx, rc);
    snprintf(out->id, sizeof out->id, "%s", oms_dbres_get(r, 0, OMS_ACL_COL_ID));
    snprintf(out->etag, sizeof out->etag, "%s", oms_dbres_get(r, 0, OMS_ACL_COL_ETAG));
    out->policy = row_json(r, 0);
    oms_dbres_free(r);
    return OMS_OK;
}

/* ---- changes ---- */

/* The checked body as a stored document. */
static int checked_doc(const json_t *body, json_t **out, oms_error *err)
{
    oms_error e;
    if (oms_acl_policy_check(body, &e) != OMS_OK)
        return oms_err_set(err, OMS_EINVAL, "%s", e.msg);
    *out = stored_doc(body);
    return OMS_OK;
}

static int arrays_text(oms_acl_change *ch, oms_error *err)
{
    ch->perms = json_dumps(json_object_get(ch->doc, "permissions"), JSON_COMPACT);
    ch->branches = json_dumps(json_object_get(ch->doc, "branches"), JSON_COMPACT);
    return ch->perms && ch->branches ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

int oms_acl_change_create(oms_acl_change *ch, const json_t *body, oms_error *err)
{
    memset(ch, 0, sizeof *ch);
    ch->action = "acl.create";
    int rc = checked_doc(body, &ch->doc, err);
    if (rc)
        return rc;
    oms_acl_new_id(ch->new_id);
    ch->id = ch->new_id;
    if (policy_etag(ch->id, 1, ch->doc, ch->etag))
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    return arrays_text(ch, err);
}

int oms_acl_change_replace(oms_acl_change *ch, const char *id, const char *if_match, const json_t *body,
                           oms_error *err)
{
    memset(ch, 0, sizeof *ch);
    ch->action = "acl.update";
    ch->id = id;
    ch->if_match = if_match;
    int rc = checked_doc(body, &ch->doc, err);
    return rc ? rc : arrays_text(ch, err);
}

void oms_acl_change_delete(oms_acl_change *ch, const char *id, const char *if_match)
{
    memset(ch, 0, sizeof *ch);
    ch->action = "acl.delete";
    ch->id = id;
    ch->if_match = if_match;
}

void oms_acl_change_free(oms_acl_change *ch)
{
    json_decref(ch->doc);
    json_decref(ch->before);
    json_decref(ch->after);
    free(ch->perms);
    free(ch->branches);
    memset(ch, 0, sizeof *ch);
}

static int bump(oms_dbconn *c, oms_error *err)
{
    int64_t n = 0;
    int rc = oms_store_acl_bump(c, &n, err);
    if (rc == OMS_OK && n != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    return rc;
}

static oms_store_acl_row row_of(const oms_acl_change *ch, const char *by, int64_t revision, int64_t at)
{
    return (oms_store_acl_row){.id = ch->id,
                               .subject = json_string_value(json_object_get(ch->doc, "subject")),
                               .effect = json_string_value(json_object_get(ch->doc, "effect")),
                               .permissions = ch->perms,
                               .branches = ch->branches,
                               .description = json_string_value(json_object_get(ch->doc, "description")),
                               .etag = ch->etag,
                               .by = by,
                               .revision = revision,
                               .at = at};
}

/* The policy row for a change (the write transaction is open): 404, or
 * 412 when If-Match names another version. */
static int row_for_change(oms_dbconn *c, oms_ctx *ctx, oms_acl_change *ch, oms_dbres **out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = load_policy(c, ch->id, &r, err);
    if (rc)
        return rc;
    const char *etag = oms_dbres_get(r, 0, OMS_ACL_COL_ETAG);
    if (strcmp(ch->if_match, "*") != 0 && strcmp(ch->if_match, etag) != 0) {
        oms_ctx_problem_extra(ctx, json_pack("{s:s}", "current_etag", etag));
        oms_dbres_free(r);
        return oms_err_set(err, OMS_EPRECOND, "the policy has changed since that ETag");
    }
    snprintf(ch->old_etag, sizeof ch->old_etag, "%s", etag);
    json_decref(ch->before);
    ch->before = row_json(r, 0);
    *out = r;
    return OMS_OK;
}

static int write_create(oms_dbconn *c, oms_ctx *ctx, oms_acl_change *ch, oms_error *err)
{
    int64_t now = oms_now_ms();
    const char *sub = ctx->sub ? ctx->sub : "";
    json_decref(ch->after);
    ch->after = policy_out(ch->id, ch->doc, 1, now, sub, now, sub);
    oms_store_acl_row row = row_of(ch, sub, 1, now);
    ch->status = 201;
    return oms_store_acl_insert(c, &row, err);
}

static int write_replace(oms_dbconn *c, oms_ctx *ctx, oms_acl_change *ch, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = row_for_change(c, ctx, ch, &r, err);
    if (rc)
        return rc;
    int64_t revision = oms_dbres_int(r, 0, OMS_ACL_COL_REVISION) + 1, now = oms_now_ms();
    const char *sub = ctx->sub ? ctx->sub : "";
    if (policy_etag(ch->id, revision, ch->doc, ch->etag)) {
        oms_dbres_free(r);
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    json_decref(ch->after);
    ch->after = policy_out(ch->id, ch->doc, revision, oms_dbres_int(r, 0, OMS_ACL_COL_CREATED_AT),
                           oms_dbres_get(r, 0, OMS_ACL_COL_CREATED_BY), now, sub);
    oms_dbres_free(r);
    oms_store_acl_row row = row_of(ch, sub, revision, now);
    int64_t n = 0;
    rc = oms_store_acl_update(c, &row, ch->old_etag, &n, err);
    if (rc == OMS_OK && n != 1)
        rc = oms_err_set(err, OMS_EPRECOND, "the policy changed concurrently");
    ch->status = 200;
    return rc;
}

static int write_delete(oms_dbconn *c, oms_ctx *ctx, oms_acl_change *ch, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = row_for_change(c, ctx, ch, &r, err);
    if (rc)
        return rc;
    oms_dbres_free(r);
    int64_t n = 0;
    rc = oms_store_acl_delete(c, ch->id, ch->old_etag, &n, err);
    if (rc == OMS_OK && n != 1)
        rc = oms_err_set(err, OMS_EPRECOND, "the policy changed concurrently");
    ch->status = 204;
    return rc;
}

int oms_acl_change_write(oms_dbconn *c, oms_ctx *ctx, oms_acl_change *ch, oms_error *err)
{
    int rc = strcmp(ch->action, "acl.create") == 0   ? write_create(c, ctx, ch, err)
             : strcmp(ch->action, "acl.update") == 0 ? write_replace(c, ctx, ch, err)
                                                     : write_delete(c, ctx, ch, err);
    return rc ? rc : bump(c, err);
}

json_t *oms_acl_change_detail(const oms_acl_change *ch)
{
    json_t *d = json_object();
    if (ch->before)
        json_object_set(d, "before", ch->before);
    if (ch->after)
        json_object_set(d, "after", ch->after);
    return d;
}

int oms_acl_change_alert(oms_dbconn *c, oms_ctx *ctx, const oms_acl_change *ch, oms_error *err)
{
    const json_t *doc = ch->after ? ch->after : ch->before;
    json_t *alert = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "rule", "acl_change", "action", ch->action, "policy_id",
                              ch->id, "actor", ctx->sub ? ctx->sub : "", "subject", json_object_get(doc, "subject"),
                              "effect", json_object_get(doc, "effect"));
    char *alert_txt = json_dumps(alert, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *none = json_array();
    char *keys = json_dumps(ctx->issue_keys ? ctx->issue_keys : none, JSON_COMPACT);
    json_decref(none);
    json_decref(alert);
    oms_audit_event al = {.action = "alert.raised", .outcome = "success", .http_status = ch->status,
                          .resource_kind = "acl-policies", .resource_id = ch->id, .issue_keys = keys,
                          .detail = alert_txt};
    oms_audit_from_ctx(&al, ctx);
    int rc = oms_audit_append(c, &al, err);
    if (rc == OMS_OK)
        rc = oms_alert_raise(c, ctx, "acl_change", "warning", alert_txt, err);
    free(alert_txt);
    free(keys);
    return rc ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}
