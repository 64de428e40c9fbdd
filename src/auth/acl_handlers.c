/* /api/v1/acl/policies: list, create, get, replace, delete (SPEC §6.2).
 *
 * Every change is one write transaction: the policy row, the bump of
 * acl_version (which makes every instance recompile before its next
 * decision), the change's audit event, an `alert.raised` event and the
 * stored alert itself (rule acl_change: SPEC §10 asks an alert for every
 * ACL change). Replace and delete need If-Match with the
 * policy's ETag (428 without, 412 when stale) and compare-and-swap on it. */
#include "auth/acl_handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/acl.h"
#include "auth/acl_store.h"
#include "governance/issue_refs.h"
#include "http/app.h"
#include "http/params.h"
#include "audit/alerts.h"
#include "util/canonical.h"
#include "util/time.h"

#define ACL_COLS                                                                                          \
    "id, subject, effect, permissions, branches, description, revision, etag, created_at, created_by,"   \
    " updated_at, updated_by"

static int db_problem(oms_request *req, int rc, const oms_error *err)
{
    if (rc == OMS_EDB)
        oms_db_conn_reset(req->app->store->db);
    return oms_resp_problem(req, (oms_err)rc, err->msg, NULL);
}

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
    json_t *perms = json_loads(oms_dbres_get(r, i, 3), 0, NULL);
    json_t *branches = json_loads(oms_dbres_get(r, i, 4), 0, NULL);
    return json_pack("{s:s,s:s,s:o,s:o,s:s}", "subject", oms_dbres_get(r, i, 1), "effect", oms_dbres_get(r, i, 2),
                     "permissions", perms ? perms : json_array(), "branches", branches ? branches : json_array(),
                     "description", oms_dbres_get(r, i, 5));
}

static json_t *row_json(const oms_dbres *r, size_t i)
{
    json_t *doc = row_doc(r, i);
    json_t *o = policy_out(oms_dbres_get(r, i, 0), doc, oms_dbres_int(r, i, 6), oms_dbres_int(r, i, 8),
                           oms_dbres_get(r, i, 9), oms_dbres_int(r, i, 10), oms_dbres_get(r, i, 11));
    json_decref(doc);
    return o;
}

static int load_policy(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    if (!oms_acl_id_valid(id))
        return oms_err_set(err, OMS_ENOTFOUND, "no ACL policy %.64s", id);
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_exec(c, "SELECT " ACL_COLS " FROM acl_policies WHERE id = $1", p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no ACL policy %s", id);
    }
    return rc;
}

/* ---- reads ---- */

int oms_h_acl_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    /* The cursor is "created_at:id" of the last item returned. */
    long long after_ms = -1;
    char after_id[OMS_ACL_ID_LEN + 1] = "";
    if (cursor && (sscanf(cursor, "%lld:%36s", &after_ms, after_id) != 2 || !oms_acl_id_valid(after_id)))
        return oms_resp_problem(req, OMS_EINVAL, "cursor is not valid", NULL);
    const char *subject = oms_req_query(req, "subject");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    oms_dbparam p[] = {DBP_TEXT(subject ? subject : ""), DBP_INT(after_ms), DBP_TEXT(after_id),
                       DBP_INT((int64_t)limit + 1)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "SELECT " ACL_COLS " FROM acl_policies WHERE ($1 = '' OR subject = $1)"
                         " AND (created_at > $2 OR (created_at = $2 AND id > $3))"
                         " ORDER BY created_at, id LIMIT $4",
                         p, 4, &r, &err);
    if (rc)
        return db_problem(req, rc, &err);
    json_t *items = json_array();
    size_t n = r->nrows < limit ? r->nrows : limit;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, row_json(r, i));
    json_t *next = json_null();
    if (r->nrows > limit) {
        char *pos = oms_arena_printf(req->arena, "%lld:%s", (long long)oms_dbres_int(r, limit - 1, 8),
                                     oms_dbres_get(r, limit - 1, 0));
        next = json_string(oms_cursor_encode(req, pos));
    }
    oms_dbres_free(r);
    return oms_resp_json(req, 200, json_pack("{s:o,s:o}", "items", items, "next_cursor", next));
}

int oms_h_acl_get(oms_request *req)
{
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = load_policy(c, req->params[0], &r, &err);
    if (rc)
        return db_problem(req, rc, &err);
    const char *etag = oms_arena_strdup(req->arena, oms_dbres_get(r, 0, 7));
    json_t *o = row_json(r, 0);
    oms_dbres_free(r);
    if (oms_not_modified(req, etag)) {
        json_decref(o);
        return OMS_OK;
    }
    oms_resp_etag(req, etag);
    return oms_resp_json(req, 200, o);
}

/* ---- changes ---- */

typedef struct {
    const char *action; /* acl.create | acl.update | acl.delete */
    const char *id;
    int status;
    const char *before_hash, *after_hash;
    const json_t *before, *after; /* policy documents as served */
    const json_t *issues;
} acl_change;

/* Inside the change's transaction, right before the commit: the version
 * bump, the change's audit event and the alert event. */
static int record_change(oms_dbconn *c, oms_request *req, const acl_change *ch, oms_error *err)
{
    int rc = oms_acl_db_bump(c, err);
    if (rc)
        return rc;
    const json_t *doc = ch->after ? ch->after : ch->before;
    json_t *detail = json_object();
    if (ch->before)
        json_object_set(detail, "before", (json_t *)ch->before);
    if (ch->after)
        json_object_set(detail, "after", (json_t *)ch->after);
    json_t *alert = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "rule", "acl_change", "action", ch->action, "policy_id",
                              ch->id, "actor", req->principal.sub ? req->principal.sub : "", "subject",
                              json_object_get(doc, "subject"), "effect", json_object_get(doc, "effect"));
    char *detail_txt = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    char *alert_txt = json_dumps(alert, JSON_COMPACT | JSON_SORT_KEYS);
    char *keys = json_dumps(ch->issues, JSON_COMPACT);
    json_decref(detail);
    json_decref(alert);
    oms_audit_event ev = {.action = ch->action, .outcome = "success", .http_status = ch->status,
                          .resource_kind = "acl-policies", .resource_id = ch->id, .issue_keys = keys,
                          .before_hash = ch->before_hash, .after_hash = ch->after_hash, .detail = detail_txt};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    rc = oms_audit_append(c, &ev, err);
    if (rc == OMS_OK) {
        oms_audit_event al = {.action = "alert.raised", .outcome = "success", .http_status = ch->status,
                              .resource_kind = "acl-policies", .resource_id = ch->id, .issue_keys = keys,
                              .detail = alert_txt};
        oms_audit_from_ctx(&al, oms_req_ctx(req));
        rc = oms_audit_append(c, &al, err);
    }
    if (rc == OMS_OK)
        rc = oms_alert_raise(c, oms_req_ctx(req), "acl_change", "warning", alert_txt, err);
    free(detail_txt);
    free(alert_txt);
    free(keys);
    return rc ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}

/* The checked body, or NULL with a 400 queued. */
static json_t *checked_doc(oms_request *req)
{
    oms_error err;
    if (oms_acl_policy_check(req->json, &err) != OMS_OK) {
        oms_resp_problem(req, OMS_EINVAL, err.msg, NULL);
        return NULL;
    }
    return stored_doc(req->json);
}

static int arrays_text(const json_t *doc, char **perms, char **branches)
{
    *perms = json_dumps(json_object_get(doc, "permissions"), JSON_COMPACT);
    *branches = json_dumps(json_object_get(doc, "branches"), JSON_COMPACT);
    return *perms && *branches ? OMS_OK : OMS_ENOMEM;
}

int oms_h_acl_create(oms_request *req)
{
    json_t *doc = NULL, *out = NULL, *issues = NULL;
    char *perms = NULL, *branches = NULL;
    oms_error err;
    oms_dbconn *c = NULL;
    int rc = OMS_OK;
    if (!(doc = checked_doc(req)))
        goto cleanup;
    char id[OMS_ACL_ID_LEN + 1], etag[65];
    oms_acl_new_id(id);
    int64_t now = oms_now_ms();
    const char *sub = req->principal.sub ? req->principal.sub : "";
    if ((rc = policy_etag(id, 1, doc, etag)) || (rc = arrays_text(doc, &perms, &branches))) {
        rc = oms_err_set(&err, OMS_ENOMEM, "out of memory");
        goto fail;
    }
    out = policy_out(id, doc, 1, now, sub, now, sub);
    issues = oms_issue_refs_collect(req, req->json, NULL, NULL);
    if ((rc = oms_db_conn(req->app->store->db, &c, &err)) || (rc = oms_db_begin(c, true, &err))) {
        c = NULL;
        goto fail;
    }
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(json_string_value(json_object_get(doc, "subject"))),
                       DBP_TEXT(json_string_value(json_object_get(doc, "effect"))), DBP_TEXT(perms),
                       DBP_TEXT(branches), DBP_TEXT(json_string_value(json_object_get(doc, "description"))),
                       DBP_TEXT(etag), DBP_INT(now), DBP_TEXT(sub)};
    rc = oms_db_exec(c,
                     "INSERT INTO acl_policies (id, subject, effect, permissions, branches, description, revision,"
                     " etag, created_at, created_by, updated_at, updated_by)"
                     " VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $8, $9)",
                     p, 9, NULL, &err);
    acl_change ch = {.action = "acl.create", .id = id, .status = 201, .after_hash = etag, .after = out,
                     .issues = issues};
    if (rc || (rc = record_change(c, req, &ch, &err)) || (rc = oms_db_commit(c, &err)))
        goto fail;
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/acl/policies/%s", id));
    oms_resp_etag(req, etag);
    oms_resp_json(req, 201, out);
    out = NULL;
    goto cleanup;
fail:
    if (c)
        oms_db_rollback(c);
    db_problem(req, rc, &err);
cleanup:
    json_decref(doc);
    json_decref(out);
    json_decref(issues);
    free(perms);
    free(branches);
    return OMS_OK;
}

/* The policy row locked for a change (the write transaction is open), or an
 * error response queued: 404, or 412 when If-Match names another version. */
static oms_dbres *row_for_change(oms_request *req, oms_dbconn *c, const char *if_match, int *rc, oms_error *err)
{
    oms_dbres *r = NULL;
    if ((*rc = load_policy(c, req->params[0], &r, err)))
        return NULL;
    const char *etag = oms_dbres_get(r, 0, 7);
    if (strcmp(if_match, "*") != 0 && strcmp(if_match, etag) != 0) {
        *rc = oms_err_set(err, OMS_EPRECOND, "the policy has changed since that ETag");
        oms_resp_problem(req, OMS_EPRECOND, err->msg, json_pack("{s:s}", "current_etag", etag));
        oms_dbres_free(r);
        return NULL;
    }
    return r;
}

int oms_h_acl_replace(oms_request *req)
{
    json_t *doc = NULL, *out = NULL, *before = NULL, *issues = NULL;
    char *perms = NULL, *branches = NULL;
    oms_dbres *r = NULL;
    oms_error err;
    oms_dbconn *c = NULL;
    int rc = OMS_OK;
    const char *id = req->params[0];
    const char *if_match = oms_req_etag(req, "If-Match");
    if (!if_match) {
        oms_resp_problem(req, OMS_EPRECONDREQ, "this request needs If-Match with the policy's ETag", NULL);
        goto cleanup;
    }
    if (!(doc = checked_doc(req)))
        goto cleanup;
    if (arrays_text(doc, &perms, &branches)) {
        rc = oms_err_set(&err, OMS_ENOMEM, "out of memory");
        goto fail;
    }
    issues = oms_issue_refs_collect(req, req->json, NULL, NULL);
    if ((rc = oms_db_conn(req->app->store->db, &c, &err)) || (rc = oms_db_begin(c, true, &err))) {
        c = NULL;
        goto fail;
    }
    if (!(r = row_for_change(req, c, if_match, &rc, &err)))
        goto fail;
    char old_etag[65], etag[65];
    snprintf(old_etag, sizeof old_etag, "%s", oms_dbres_get(r, 0, 7));
    int64_t revision = oms_dbres_int(r, 0, 6) + 1, now = oms_now_ms();
    const char *sub = req->principal.sub ? req->principal.sub : "";
    before = row_json(r, 0);
    if (policy_etag(id, revision, doc, etag)) {
        rc = oms_err_set(&err, OMS_ENOMEM, "out of memory");
        goto fail;
    }
    out = policy_out(id, doc, revision, oms_dbres_int(r, 0, 8), oms_dbres_get(r, 0, 9), now, sub);
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(json_string_value(json_object_get(doc, "subject"))),
                       DBP_TEXT(json_string_value(json_object_get(doc, "effect"))), DBP_TEXT(perms),
                       DBP_TEXT(branches), DBP_TEXT(json_string_value(json_object_get(doc, "description"))),
                       DBP_INT(revision), DBP_TEXT(etag), DBP_INT(now), DBP_TEXT(sub), DBP_TEXT(old_etag)};
    oms_dbres *u = NULL;
    rc = oms_db_exec(c,
                     "UPDATE acl_policies SET subject = $2, effect = $3, permissions = $4, branches = $5,"
                     " description = $6, revision = $7, etag = $8, updated_at = $9, updated_by = $10"
                     " WHERE id = $1 AND etag = $11",
                     p, 11, &u, &err);
    if (rc == OMS_OK && u->changes != 1)
        rc = oms_err_set(&err, OMS_EPRECOND, "the policy changed concurrently");
    oms_dbres_free(u);
    acl_change ch = {.action = "acl.update", .id = id, .status = 200, .before_hash = old_etag, .after_hash = etag,
                     .before = before, .after = out, .issues = issues};
    if (rc || (rc = record_change(c, req, &ch, &err)) || (rc = oms_db_commit(c, &err)))
        goto fail;
    oms_resp_etag(req, etag);
    oms_resp_json(req, 200, out);
    out = NULL;
    goto cleanup;
fail:
    if (c)
        oms_db_rollback(c);
    if (!req->responded)
        db_problem(req, rc, &err);
cleanup:
    oms_dbres_free(r);
    json_decref(doc);
    json_decref(out);
    json_decref(before);
    json_decref(issues);
    free(perms);
    free(branches);
    return OMS_OK;
}

int oms_h_acl_delete(oms_request *req)
{
    json_t *before = NULL, *issues = NULL;
    oms_dbres *r = NULL;
    oms_error err;
    oms_dbconn *c = NULL;
    int rc = OMS_OK;
    const char *id = req->params[0];
    const char *if_match = oms_req_etag(req, "If-Match");
    if (!if_match) {
        oms_resp_problem(req, OMS_EPRECONDREQ, "this request needs If-Match with the policy's ETag", NULL);
        goto cleanup;
    }
    issues = oms_issue_refs_collect(req, req->json, NULL, NULL);
    if ((rc = oms_db_conn(req->app->store->db, &c, &err)) || (rc = oms_db_begin(c, true, &err))) {
        c = NULL;
        goto fail;
    }
    if (!(r = row_for_change(req, c, if_match, &rc, &err)))
        goto fail;
    char old_etag[65];
    snprintf(old_etag, sizeof old_etag, "%s", oms_dbres_get(r, 0, 7));
    before = row_json(r, 0);
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(old_etag)};
    oms_dbres *d = NULL;
    rc = oms_db_exec(c, "DELETE FROM acl_policies WHERE id = $1 AND etag = $2", p, 2, &d, &err);
    if (rc == OMS_OK && d->changes != 1)
        rc = oms_err_set(&err, OMS_EPRECOND, "the policy changed concurrently");
    oms_dbres_free(d);
    acl_change ch = {.action = "acl.delete", .id = id, .status = 204, .before_hash = old_etag, .before = before,
                     .issues = issues};
    if (rc || (rc = record_change(c, req, &ch, &err)) || (rc = oms_db_commit(c, &err)))
        goto fail;
    oms_resp_text(req, 204, "application/json", "", 0);
    goto cleanup;
fail:
    if (c)
        oms_db_rollback(c);
    if (!req->responded)
        db_problem(req, rc, &err);
cleanup:
    oms_dbres_free(r);
    json_decref(before);
    json_decref(issues);
    return OMS_OK;
}
