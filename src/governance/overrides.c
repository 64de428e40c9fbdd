/* Emergency overrides (SPEC §6.4): the decisions. The API (src/api/overrides.c)
 * parses requests and renders results; the rows are in src/store/overrides_sql.c. */
#include "util/ids.h"
#include "governance/overrides.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/alerts.h"
#include "audit/audit.h"
#include "events/events.h"
#include "auth/principal.h"
#include "infra/config.h"
#include "infra/log.h"
#include "ontology/ontology.h"
#include "store/dialect.h"
#include "store/overrides_sql.h"
#include "store/store.h"
#include "util/encoding.h"
#include "util/time.h"

/* Expiry is judged by the database's clock (instances may disagree on
 * PostgreSQL; SQLite lives in this process). */
static int64_t db_now(oms_dbconn *c)
{
    int64_t now = oms_now_ms();
    oms_error err;
    if (oms_db_now_ms(c, &now, &err) != OMS_OK)
        now = oms_now_ms();
    return now;
}

json_t *oms_override_row_json(oms_ctx *ctx, oms_dbconn *c, const oms_dbres *r, size_t i, int64_t now,
                              oms_override_sees_fn sees, void *arg)
{
    char created[40], expires[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_dbres_int(r, i, OMS_OVR_COL_CREATED_AT));
    oms_time_rfc3339_ms(expires, sizeof expires, oms_dbres_int(r, i, OMS_OVR_COL_EXPIRES_AT));
    const char *state = oms_dbres_get(r, i, OMS_OVR_COL_STATE);
    /* An override past its time is expired even before the task marks it. */
    if ((!strcmp(state, "pending") || !strcmp(state, "approved")) && oms_dbres_int(r, i, OMS_OVR_COL_EXPIRES_AT) <= now)
        state = "expired";
    const char *requester = oms_dbres_get(r, i, OMS_OVR_COL_REQUESTER), *branch = oms_dbres_get(r, i, OMS_OVR_COL_BRANCH);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "id", oms_dbres_get(r, i, OMS_OVR_COL_ID),
                          "kind", oms_dbres_get(r, i, OMS_OVR_COL_KIND), "branch", branch, "resource",
                          oms_dbres_get(r, i, OMS_OVR_COL_RESOURCE), "justification",
                          oms_dbres_get(r, i, OMS_OVR_COL_JUSTIFICATION), "incident",
                          oms_dbres_get(r, i, OMS_OVR_COL_INCIDENT), "requester", requester, "state", state,
                          "ttl_seconds", (json_int_t)oms_dbres_int(r, i, OMS_OVR_COL_TTL), "approvals_required",
                          (json_int_t)oms_dbres_int(r, i, OMS_OVR_COL_APPROVALS_REQUIRED), "created_at", created,
                          "expires_at", expires);
    /* The justification and the incident say why production needed an
     * exception: often a confidential incident. They are shown to the
     * requester (exact subject), and to whoever may decide the override
     * (`sees`: override:approve on its branch, RBAC refined by ACL policies,
     * failing closed). Everyone else sees the override without them. */
    bool mine = ctx->sub && strcmp(requester, ctx->sub) == 0;
    if (!mine && !(sees && sees(ctx, arg, requester, branch))) {
        json_object_del(o, "justification");
        json_object_del(o, "incident");
    }
    if (oms_dbres_get(r, i, OMS_OVR_COL_DECIDED_BY))
        json_object_set_new(o, "decided_by", json_string(oms_dbres_get(r, i, OMS_OVR_COL_DECIDED_BY)));
    if (oms_dbres_get(r, i, OMS_OVR_COL_USED_AT)) {
        char used[40];
        oms_time_rfc3339_ms(used, sizeof used, oms_dbres_int(r, i, OMS_OVR_COL_USED_AT));
        json_object_set_new(o, "used_at", json_string(used));
        const char *rid = oms_dbres_get(r, i, OMS_OVR_COL_USED_REQUEST_ID);
        json_object_set_new(o, "used_request_id", json_string(rid ? rid : ""));
    }
    json_t *approvals = json_array();
    oms_dbres *a = NULL;
    oms_error err;
    if (oms_store_override_approvals(c, oms_dbres_get(r, i, OMS_OVR_COL_ID), &a, &err) == OMS_OK)
        for (size_t k = 0; k < a->nrows; k++) {
            char t[40];
            oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(a, k, 1));
            json_array_append_new(approvals, json_pack("{s:s,s:s}", "approver", oms_dbres_get(a, k, 0), "at", t));
        }
    oms_dbres_free(a);
    json_object_set_new(o, "approvals", approvals);
    return o;
}

int oms_override_get(oms_ctx *ctx, const char *id, oms_override_sees_fn sees, void *arg, json_t **out, oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_override_load(c, id, false, &r, err);
    if (rc)
        return rc;
    *out = oms_override_row_json(ctx, c, r, 0, db_now(c), sees, arg);
    oms_dbres_free(r);
    return OMS_OK;
}

int64_t oms_override_clock(oms_dbconn *c) { return db_now(c); }

int oms_override_branch(oms_ctx *ctx, const char *id, char branch[OMS_OVERRIDE_BRANCH_MAX], oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_override_load(c, id, false, &r, err);
    if (rc == OMS_OK)
        snprintf(branch, OMS_OVERRIDE_BRANCH_MAX, "%s", oms_dbres_get(r, 0, OMS_OVR_COL_BRANCH));
    oms_dbres_free(r);
    return rc;
}

/* ---- use ---- */

int oms_override_attach(oms_ctx *ctx, const char *id, oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_override_load(c, id, false, &r, err);
    if (rc)
        return oms_err_set_as(err, rc == OMS_ENOTFOUND ? OMS_EFORBIDDEN : (oms_err)rc, "override_invalid",
                              "the override does not exist");
    const char *state = oms_dbres_get(r, 0, OMS_OVR_COL_STATE);
    const char *why = NULL;
    if (strcmp(oms_dbres_get(r, 0, OMS_OVR_COL_REQUESTER), ctx->sub ? ctx->sub : "") != 0)
        why = "only the override's requester can use it";
    else if (strcmp(state, "approved") != 0)
        why = oms_arena_printf(ctx->arena, "the override is %s, not approved", state);
    else if (oms_dbres_int(r, 0, OMS_OVR_COL_EXPIRES_AT) <= db_now(c))
        why = "the override has expired";
    if (why) {
        oms_dbres_free(r);
        return oms_err_set_as(err, OMS_EFORBIDDEN, "override_invalid", "%s", why);
    }
    ctx->override.id = oms_arena_strdup(ctx->arena, id);
    snprintf(ctx->override.kind, sizeof ctx->override.kind, "%s", oms_dbres_get(r, 0, OMS_OVR_COL_KIND));
    snprintf(ctx->override.branch, sizeof ctx->override.branch, "%s", oms_dbres_get(r, 0, OMS_OVR_COL_BRANCH));
    ctx->override.resource = oms_arena_strdup(ctx->arena, oms_dbres_get(r, 0, OMS_OVR_COL_RESOURCE));
    oms_dbres_free(r);
    return OMS_OK;
}

bool oms_override_permits(oms_ctx *ctx, const char *kind, const char *branch, const char *const *resources,
                          size_t n)
{
    if (!ctx || !ctx->override.id || strcmp(ctx->override.kind, kind) != 0 || !branch ||
        strcmp(ctx->override.branch, branch) != 0)
        return false;
    for (size_t i = 0; ctx->override.resource && i < n; i++)
        if (strcmp(resources[i], ctx->override.resource) != 0)
            return false;
    ctx->override.needed = true;
    return true;
}

bool oms_override_in_scope(const oms_ctx *ctx, const char *const *resources, size_t n)
{
    if (!ctx || !ctx->override.needed || !ctx->override.resource)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strcmp(resources[i], ctx->override.resource) != 0)
            return false;
    return true;
}

static int append_event(oms_dbconn *c, const oms_ctx *ctx, const char *action, const char *id, const char *branch,
                        const char *detail, oms_error *err)
{
    oms_audit_event ev = {.action = action, .outcome = "success", .http_status = 200, .resource_kind = "overrides",
                          .resource_branch = branch, .resource_id = id, .override_id = id, .detail = detail};
    if (ctx)
        oms_audit_from_ctx(&ev, ctx);
    else
        ev.actor_sub = "oms";
    if (oms_audit_append(c, &ev, err))
        return oms_err_set(err, OMS_EAUDIT, "the audit store cannot write");
    /* its event, in the same transaction (docs/events.md) */
    json_t *d = json_loads(detail ? detail : "{}", 0, NULL);
    json_t *data = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:o}", "action", action, "id", id, "branch", branch, "actor",
                             ev.actor_sub ? ev.actor_sub : "oms", "request_id", ctx ? ctx->request_id : NULL, "detail",
                             d ? d : json_object());
    return oms_event_emit(c, strcmp(action, "override.used") == 0 ? "override.used" : "override.expired", id, branch,
                          data, err);
}

int oms_governance_in_tx(oms_dbconn *c, oms_ctx *ctx, oms_error *err)
{
    if (!ctx || !ctx->override.needed || ctx->override.used)
        return OMS_OK;
    /* Used once: the state moves from approved to used atomically; a second
     * use, a use after expiry or after a cancel changes no row. */
    bool used = false;
    int rc = oms_store_override_use(c, ctx->override.id, ctx->principal ? ctx->sub : "", oms_now_ms(),
                                    ctx->request_id, &used, err);
    if (rc == OMS_OK && !used)
        rc = oms_err_set(err, OMS_EFORBIDDEN, "the override was already used, expired or withdrawn");
    if (rc)
        return rc;
    json_t *d = json_pack("{s:s,s:s,s:s}", "override_id", ctx->override.id, "kind", ctx->override.kind, "branch",
                          ctx->override.branch);
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!detail)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    if ((rc = append_event(c, ctx, "override.used", ctx->override.id, ctx->override.branch, detail, err)) == OMS_OK)
        rc = oms_alert_raise(c, ctx, "override_used", "critical", detail, err);
    free(detail);
    if (rc)
        return rc;
    ctx->override.used = true;
    return OMS_OK;
}

void oms_override_expire(struct oms_store *store)
{
    oms_error err;
    oms_dbconn *c;
    if (oms_db_conn(store->db, &c, &err))
        return;
    if (oms_db_begin(c, true, &err))
        return;
    oms_dbres *r = NULL;
    /* RETURNING names exactly the rows this transaction moved, so each
     * expiry is audited once however many instances run the task. */
    int rc = oms_store_overrides_expire(c, &r, &err);
    for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++)
        rc = append_event(c, NULL, "override.expired", oms_dbres_get(r, i, 0), oms_dbres_get(r, i, 1), "{}", &err);
    oms_dbres_free(r);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, &err);
    else
        oms_db_rollback(c);
    if (rc)
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "override expiry: %s", err.msg);
}

/* ---- requests and decisions ---- */

/* Code points that carry no meaning in a justification: whitespace (ASCII
 * and Unicode), controls, and the invisible ones people pad with
 * (zero-width spaces and joiners, bidi marks, the soft hyphen, fillers,
 * the blank braille pattern, variation selectors, tags). */
static bool blank_code_point(uint32_t cp)
{
    return cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x34f || cp == 0x115f ||
           cp == 0x1160 || cp == 0x1680 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x2800 || cp == 0x3000 ||
           cp == 0x3164 || (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff || cp == 0xffa0 ||
           (cp >= 0xe0000 && cp <= 0xe007f);
}

/* A letter, without Unicode tables: ASCII letters, and any other code point
 * from U+00C0 on outside the punctuation, symbol and emoji blocks (so
 * accented and non-Latin scripts count). */
static bool letter_code_point(uint32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return cp >= 0xc0 && cp != 0xd7 && cp != 0xf7 && !(cp >= 0x2000 && cp <= 0x2bff) &&
           !(cp >= 0x3000 && cp <= 0x303f) && !(cp >= 0xfe10 && cp <= 0xfe6f) && !(cp >= 0xff00 && cp <= 0xff20) &&
           !(cp >= 0x1f000 && cp <= 0x1faff);
}

/* One code point of valid UTF-8 (jansson guarantees it); advances *p. */
static uint32_t next_code_point(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t cp;
    size_t n;
    if (s[0] < 0x80)
        cp = s[0], n = 1;
    else if ((s[0] & 0xe0) == 0xc0)
        cp = s[0] & 0x1fu, n = 2;
    else if ((s[0] & 0xf0) == 0xe0)
        cp = s[0] & 0x0fu, n = 3;
    else
        cp = s[0] & 0x07u, n = 4;
    for (size_t i = 1; i < n && s[i]; i++)
        cp = (cp << 6) | (s[i] & 0x3fu);
    for (size_t i = 0; i < n && **p; i++)
        (*p)++;
    return cp;
}

bool oms_override_text_visible(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p)
        if (!blank_code_point(next_code_point(&p)))
            return true;
    return false;
}

#define JUSTIFICATION_MIN_CHARS 50
#define JUSTIFICATION_MIN_LETTERS 20
#define JUSTIFICATION_MIN_DISTINCT 8
#define JUSTIFICATION_MAX_BYTES 4096

/* SPEC §6.4 asks for a justification of at least 50 characters: characters
 * that say something. Counted after trimming and collapsing every run of
 * blank code points (above) into one space; of those, at least 20 must be
 * letters and at least 8 must differ (case-folded), so neither padding nor
 * "xxxx..." nor a line of punctuation passes. NULL when acceptable. */
const char *oms_override_justification_problem(const char *s, size_t len)
{
    static const char *const why = "justification must explain the override: at least 50 characters once"
                                   " whitespace is trimmed and collapsed, with at least 20 letters and 8 different"
                                   " characters (at most 4096 bytes)";
    if (!s || len > JUSTIFICATION_MAX_BYTES || strlen(s) != len)
        return why;
    size_t chars = 0, letters = 0, distinct = 0;
    bool pending_space = false;
    uint32_t seen[JUSTIFICATION_MIN_DISTINCT];
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp = next_code_point(&p);
        if (blank_code_point(cp)) {
            pending_space = chars > 0;
            continue;
        }
        chars += pending_space ? 2 : 1;
        pending_space = false;
        letters += letter_code_point(cp);
        uint32_t folded = cp < 0x80 && cp >= 'A' && cp <= 'Z' ? cp | 0x20 : cp;
        bool known = false;
        for (size_t i = 0; i < distinct && !known; i++)
            known = seen[i] == folded;
        if (!known && distinct < JUSTIFICATION_MIN_DISTINCT)
            seen[distinct++] = folded;
    }
    if (chars < JUSTIFICATION_MIN_CHARS || letters < JUSTIFICATION_MIN_LETTERS || distinct < JUSTIFICATION_MIN_DISTINCT)
        return why;
    return NULL;
}

void oms_override_new_id(char id[OMS_OVERRIDE_ID_MAX])
{
    oms_random_id(id, "ovr_");
}

int oms_override_create_tx(oms_dbconn *c, oms_ctx *ctx, const oms_override_request *q, const char *id,
                           oms_override_change *out, oms_error *err)
{
    int64_t now = db_now(c);
    oms_override_new o = {.id = id,
                          .kind = q->kind,
                          .branch = q->branch,
                          .resource = q->resource,
                          .justification = q->justification,
                          .incident = q->incident,
                          .requester = ctx->sub,
                          .ttl_seconds = q->ttl_seconds,
                          .approvals_required = ctx->cfg ? oms_config_int(ctx->cfg, "OMS_OVERRIDE_APPROVALS") : 1,
                          .created_at = now,
                          .expires_at = now + q->ttl_seconds * 1000};
    int rc = oms_store_override_insert(c, &o, err);
    if (rc)
        return rc;
    out->action = "override.request";
    out->branch = q->branch;
    out->detail = json_pack("{s:s,s:s,s:I,s:s?}", "kind", q->kind, "incident", q->incident, "ttl_seconds",
                            (json_int_t)q->ttl_seconds, "resource", q->resource);
    return OMS_OK;
}

/* The approvals an override has, one per person: subjects that differ only
 * in ASCII case are one approver (auth/principal.h), so one person under
 * two spellings never makes two approvals. *counted: `sub` (or a spelling
 * of it) has approved already. */
static int count_approvers(oms_dbconn *c, const char *id, const char *sub, int64_t *out, bool *counted,
                           oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_override_approvals(c, id, &r, err);
    *out = 0;
    *counted = false;
    for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++) {
        const char *a = oms_dbres_get(r, i, 0);
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = oms_sub_same_person(a, oms_dbres_get(r, k, 0));
        *out += !seen;
        *counted = *counted || oms_sub_same_person(a, sub);
    }
    oms_dbres_free(r);
    return rc;
}

int oms_override_decide_tx(oms_dbconn *c, oms_ctx *ctx, const char *id, oms_override_decision d,
                           oms_override_change *out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_override_load(c, id, true, &r, err);
    if (rc)
        return rc;
    const char *sub = ctx->sub ? ctx->sub : "";
    const char *state = oms_arena_strdup(ctx->arena, oms_dbres_get(r, 0, OMS_OVR_COL_STATE));
    const char *branch = oms_arena_strdup(ctx->arena, oms_dbres_get(r, 0, OMS_OVR_COL_BRANCH));
    const char *requester = oms_arena_strdup(ctx->arena, oms_dbres_get(r, 0, OMS_OVR_COL_REQUESTER));
    int64_t required = oms_dbres_int(r, 0, OMS_OVR_COL_APPROVALS_REQUIRED);
    int64_t expires = oms_dbres_int(r, 0, OMS_OVR_COL_EXPIRES_AT), now = db_now(c);
    oms_dbres_free(r);
    /* Cancelling is the requester's own right: exact subject. Deciding is
     * separation of duties: any case-variant of the requester is the
     * requester (auth/principal.h). */
    bool mine = strcmp(requester, sub) == 0;
    bool requester_deciding = oms_sub_same_person(requester, sub);
    bool live = (!strcmp(state, "pending") || !strcmp(state, "approved")) && expires > now;
    if (d == OMS_OVERRIDE_CANCEL && !mine)
        return oms_err_set_as(err, OMS_EFORBIDDEN, "not_requester", "only the requester can cancel an override");
    if (d != OMS_OVERRIDE_CANCEL && requester_deciding)
        return oms_err_set_as(err, OMS_EFORBIDDEN, "self_approval",
                              "an override is approved or rejected by someone other than its requester");
    if (!live)
        return oms_err_set_as(err, OMS_ECONFLICT, "invalid_state", "the override is %s",
                              expires <= now && strcmp(state, "used") && strcmp(state, "rejected") &&
                                      strcmp(state, "cancelled")
                                  ? "expired"
                                  : state);
    if (d != OMS_OVERRIDE_CANCEL && strcmp(state, "pending") != 0)
        return oms_err_set_as(err, OMS_ECONFLICT, "invalid_state", "the override was already decided");
    const char *action = "override.cancel", *to = "cancelled";
    if (d == OMS_OVERRIDE_APPROVE) {
        action = "override.approve";
        int64_t approvers = 0;
        bool counted = false;
        if ((rc = count_approvers(c, id, sub, &approvers, &counted, err)) == OMS_OK && !counted) {
            rc = oms_store_override_approve(c, id, sub, now, err);
            approvers++;
        }
        to = rc == OMS_OK && approvers >= required ? "approved" : "pending";
    } else if (d == OMS_OVERRIDE_REJECT) {
        action = "override.reject";
        to = "rejected";
    }
    if (rc == OMS_OK)
        rc = oms_store_override_set_state(c, id, to, now, sub, err);
    if (rc)
        return rc;
    out->action = action;
    out->branch = branch;
    out->detail = json_pack("{s:s,s:s,s:s}", "from", state, "to", to, "requester", requester);
    return OMS_OK;
}
