#include "governance/overrides.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "audit/audit.h"
#include "auth/acl_store.h"
#include "http/app.h"
#include "http/pipeline.h"
#include "http/params.h"
#include "ontology/ontology.h"
#include "ops/alerts.h"
#include "infra/log.h"
#include "util/encoding.h"
#include "util/time.h"

/* Expiry is judged by the database's clock on PostgreSQL (instances may
 * disagree); SQLite lives in this process, so its clock is ours. */
#define PG_NOW "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define SQLITE_NOW "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

static const char *const k_kinds[] = {"issue_requirement", "protected_branch", "lock", "breaking_change", NULL};

#define OVR_COLS                                                                                                    \
    "id, kind, branch, resource, justification, incident, requester, state, ttl_seconds, approvals_required,"       \
    " created_at, expires_at, decided_at, decided_by, used_at, used_request_id"

static bool pg(oms_request *req) { return oms_db_backend_of(req->app->store->db) == OMS_DB_PG; }

/* The justification and the incident say why production needed an
 * exception: often a confidential incident. They are shown to the
 * requester (exact subject), and to whoever may decide the override:
 * override:approve on its branch, RBAC refined by ACL policies (admins hold
 * every permission). Everyone else who may list overrides sees the
 * override without them. When the policies cannot be read, nobody else
 * sees them (fail closed). */
static bool sees_private_fields(oms_request *req, const char *requester, const char *branch)
{
    if (req->principal.sub && strcmp(requester, req->principal.sub) == 0)
        return true;
    oms_acl_verdict v;
    oms_error err;
    return oms_acl_check(oms_req_ctx(req), OMS_PERM_OVERRIDE_APPROVE, branch, &v, &err) == OMS_OK && v.allowed;
}

static json_t *row_json(oms_request *req, oms_dbconn *c, const oms_dbres *r, size_t i, int64_t now)
{
    char created[40], expires[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_dbres_int(r, i, 10));
    oms_time_rfc3339_ms(expires, sizeof expires, oms_dbres_int(r, i, 11));
    const char *state = oms_dbres_get(r, i, 7);
    /* An override past its time is expired even before the task marks it. */
    if ((!strcmp(state, "pending") || !strcmp(state, "approved")) && oms_dbres_int(r, i, 11) <= now)
        state = "expired";
    json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "id", oms_dbres_get(r, i, 0), "kind",
                          oms_dbres_get(r, i, 1), "branch", oms_dbres_get(r, i, 2), "resource", oms_dbres_get(r, i, 3),
                          "justification", oms_dbres_get(r, i, 4), "incident", oms_dbres_get(r, i, 5), "requester",
                          oms_dbres_get(r, i, 6), "state", state, "ttl_seconds", (json_int_t)oms_dbres_int(r, i, 8),
                          "approvals_required", (json_int_t)oms_dbres_int(r, i, 9), "created_at", created,
                          "expires_at", expires);
    if (!sees_private_fields(req, oms_dbres_get(r, i, 6), oms_dbres_get(r, i, 2))) {
        json_object_del(o, "justification");
        json_object_del(o, "incident");
    }
    if (oms_dbres_get(r, i, 13))
        json_object_set_new(o, "decided_by", json_string(oms_dbres_get(r, i, 13)));
    if (oms_dbres_get(r, i, 14)) {
        char used[40];
        oms_time_rfc3339_ms(used, sizeof used, oms_dbres_int(r, i, 14));
        json_object_set_new(o, "used_at", json_string(used));
        json_object_set_new(o, "used_request_id", json_string(oms_dbres_get(r, i, 15) ? oms_dbres_get(r, i, 15) : ""));
    }
    json_t *approvals = json_array();
    oms_dbres *a = NULL;
    oms_error err;
    oms_dbparam p[] = {DBP_TEXT(oms_dbres_get(r, i, 0))};
    if (oms_db_exec(c, "SELECT approver, created_at FROM override_approvals WHERE override_id = $1 ORDER BY created_at",
                    p, 1, &a, &err) == OMS_OK)
        for (size_t k = 0; k < a->nrows; k++) {
            char t[40];
            oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(a, k, 1));
            json_array_append_new(approvals, json_pack("{s:s,s:s}", "approver", oms_dbres_get(a, k, 0), "at", t));
        }
    oms_dbres_free(a);
    json_object_set_new(o, "approvals", approvals);
    return o;
}

static int load(oms_dbconn *c, oms_request *req, const char *id, bool for_update, oms_dbres **out, oms_error *err)
{
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_exec(c,
                         for_update && pg(req) ? "SELECT " OVR_COLS " FROM overrides WHERE id = $1 FOR UPDATE"
                                               : "SELECT " OVR_COLS " FROM overrides WHERE id = $1",
                         p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no such override");
    }
    return rc;
}

static int64_t db_now(oms_dbconn *c, oms_request *req)
{
    if (!pg(req))
        return oms_now_ms();
    oms_dbres *r = NULL;
    oms_error err;
    int64_t now = oms_now_ms();
    if (oms_db_exec(c, "SELECT " PG_NOW, NULL, 0, &r, &err) == OMS_OK)
        now = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return now;
}

static int audit(oms_dbconn *c, oms_request *req, const char *action, const char *id, const char *branch,
                 const char *detail, oms_error *err)
{
    oms_audit_event ev = {.action = action, .outcome = "success", .http_status = 200, .resource_kind = "overrides",
                          .resource_branch = branch, .resource_id = id, .override_id = id, .detail = detail};
    if (req)
        oms_audit_from_ctx(&ev, oms_req_ctx(req));
    else
        ev.actor_sub = "oms";
    return oms_audit_append(c, &ev, err) ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}

static int audit_ctx(oms_dbconn *c, const oms_ctx *ctx, const char *action, const char *id, const char *branch,
                     const char *detail, oms_error *err)
{
    oms_audit_event ev = {.action = action, .outcome = "success", .http_status = 200, .resource_kind = "overrides",
                          .resource_branch = branch, .resource_id = id, .override_id = id, .detail = detail};
    oms_audit_from_ctx(&ev, ctx);
    return oms_audit_append(c, &ev, err) ? oms_err_set(err, OMS_EAUDIT, "the audit store cannot write") : OMS_OK;
}

/* ---- use ---- */

bool oms_override_attach(oms_request *req)
{
    const char *id = oms_req_header(req, "X-Override-ID");
    if (!id)
        return true;
    if (!oms_valid_opaque_id(id)) {
        oms_resp_problem_as(req, OMS_EFORBIDDEN, "override_invalid", "X-Override-ID is not an override id", NULL);
        return false;
    }
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = load(c, req, id, false, &r, &err);
    if (rc) {
        oms_resp_problem_as(req, rc == OMS_ENOTFOUND ? OMS_EFORBIDDEN : (oms_err)rc, "override_invalid",
                            "the override does not exist", NULL);
        return false;
    }
    const char *state = oms_dbres_get(r, 0, 7);
    const char *why = NULL;
    if (strcmp(oms_dbres_get(r, 0, 6), req->principal.sub) != 0)
        why = "only the override's requester can use it";
    else if (strcmp(state, "approved") != 0)
        why = oms_arena_printf(req->arena, "the override is %s, not approved", state);
    else if (oms_dbres_int(r, 0, 11) <= db_now(c, req))
        why = "the override has expired";
    if (why) {
        oms_dbres_free(r);
        oms_resp_problem_as(req, OMS_EFORBIDDEN, "override_invalid", why, NULL);
        return false;
    }
    req->ctx.override.id = oms_arena_strdup(req->arena, id);
    snprintf(req->ctx.override.kind, sizeof req->ctx.override.kind, "%s", oms_dbres_get(r, 0, 1));
    snprintf(req->ctx.override.branch, sizeof req->ctx.override.branch, "%s", oms_dbres_get(r, 0, 2));
    req->ctx.override.resource = oms_arena_strdup(req->arena, oms_dbres_get(r, 0, 3));
    oms_dbres_free(r);
    return true;
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

int oms_governance_in_tx(oms_dbconn *c, oms_ctx *ctx, oms_error *err)
{
    if (!ctx || !ctx->override.needed || ctx->override.used)
        return OMS_OK;
    /* Used once: the state moves from approved to used atomically; a second
     * use, a use after expiry or after a cancel changes no row. */
    oms_dbparam p[] = {DBP_INT(oms_now_ms()), DBP_TEXT(ctx->request_id), DBP_TEXT(ctx->override.id),
                       DBP_TEXT(ctx->principal ? ctx->principal->sub : "")};
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c,
                         oms_db_backend_of_conn(c) == OMS_DB_PG ? "UPDATE overrides SET state = 'used', used_at = $1, used_request_id = $2"
                                   " WHERE id = $3 AND requester = $4 AND state = 'approved' AND expires_at > " PG_NOW
                                 : "UPDATE overrides SET state = 'used', used_at = $1, used_request_id = $2"
                                   " WHERE id = $3 AND requester = $4 AND state = 'approved' AND expires_at > " SQLITE_NOW,
                         p, 4, &r, err);
    if (rc == OMS_OK && r->changes != 1)
        rc = oms_err_set(err, OMS_EFORBIDDEN, "the override was already used, expired or withdrawn");
    oms_dbres_free(r);
    if (rc)
        return rc;
    char *detail = oms_arena_printf(ctx->arena, "{\"override_id\":\"%s\",\"kind\":\"%s\",\"branch\":\"%s\"}",
                                    ctx->override.id, ctx->override.kind, ctx->override.branch);
    if ((rc = audit_ctx(c, ctx, "override.used", ctx->override.id, ctx->override.branch, detail, err)) ||
        (rc = oms_alert_raise(c, ctx, "override_used", "critical", detail, err)))
        return rc;
    ctx->override.used = true;
    return OMS_OK;
}

void oms_override_expiry_task(struct oms_app *app)
{
    oms_error err;
    oms_dbconn *c;
    if (oms_db_conn(app->store->db, &c, &err))
        return;
    bool is_pg = oms_db_backend_of(app->store->db) == OMS_DB_PG;
    if (oms_db_begin(c, true, &err))
        return;
    oms_dbres *r = NULL;
    /* RETURNING names exactly the rows this transaction moved, so each
     * expiry is audited once however many instances run the task. */
    int rc = oms_db_exec(c,
                         is_pg ? "UPDATE overrides SET state = 'expired' WHERE state IN ('pending', 'approved')"
                                 " AND expires_at <= " PG_NOW " RETURNING id, branch"
                               : "UPDATE overrides SET state = 'expired' WHERE state IN ('pending', 'approved')"
                                 " AND expires_at <= " SQLITE_NOW " RETURNING id, branch",
                         NULL, 0, &r, &err);
    for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++)
        rc = audit(c, NULL, "override.expired", oms_dbres_get(r, i, 0), oms_dbres_get(r, i, 1), "{}", &err);
    oms_dbres_free(r);
    if (rc == OMS_OK)
        rc = oms_db_commit(c, &err);
    else
        oms_db_rollback(c);
    if (rc)
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "override expiry: %s", err.msg);
}

/* ---- API ---- */

static int problem(oms_request *req, int rc, const oms_error *err)
{
    return oms_resp_problem(req, (oms_err)rc, err->msg, NULL);
}

typedef struct {
    oms_request *req;
    oms_dbconn *c;
    int64_t now;
} list_ctx;

static json_t *list_row(const oms_dbres *r, size_t i, void *ctx)
{
    list_ctx *lc = ctx;
    return row_json(lc->req, lc->c, r, i, lc->now);
}

int oms_h_override_list(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *state = oms_req_query(req, "state");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    oms_dbparam p[] = {DBP_TEXT(cursor ? cursor : ""), DBP_TEXT(state), DBP_INT((int64_t)limit + 1)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "SELECT " OVR_COLS " FROM overrides WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR state = $2)"
                         " ORDER BY id LIMIT $3",
                         p, 3, &r, &err);
    if (rc)
        return problem(req, rc, &err);
    list_ctx lc = {req, c, db_now(c, req)};
    oms_resp_page(req, r, limit, 0, list_row, &lc, NULL);
    oms_dbres_free(r);
    return OMS_OK;
}

static int respond_one(oms_request *req, oms_dbconn *c, const char *id, int status)
{
    oms_error err;
    oms_dbres *r = NULL;
    int rc = load(c, req, id, false, &r, &err);
    if (rc)
        return problem(req, rc, &err);
    json_t *o = row_json(req, c, r, 0, db_now(c, req));
    oms_dbres_free(r);
    return oms_resp_json(req, status, o);
}

int oms_h_override_get(oms_request *req)
{
    oms_error err;
    oms_dbconn *c;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    return rc ? problem(req, rc, &err) : respond_one(req, c, req->params[0], 200);
}

static const char *const k_fields[] = {"kind", "branch", "resource", "justification", "incident", "ttl_seconds", NULL};

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

static bool has_visible_code_point(const char *s)
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
        !has_visible_code_point(json_string_value(incident)))
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
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return oms_resp_problem(req, OMS_EINTERNAL, "no randomness", NULL);
    char id[40] = "ovr_";
    oms_hex(id + 4, rnd, sizeof rnd);
    /* override:request is decided on the branch the override is for */
    if (!oms_authorize_on(req, OMS_PERM_OVERRIDE_REQUEST, json_string_value(json_object_get(b, "branch"))))
        return OMS_OK;
    oms_error err;
    oms_dbconn *c;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc)
        return problem(req, rc, &err);
    int64_t now = db_now(c, req), ttl = json_integer_value(json_object_get(b, "ttl_seconds"));
    const char *branch = json_string_value(json_object_get(b, "branch"));
    oms_dbparam p[] = {DBP_TEXT(id),
                       DBP_TEXT(json_string_value(json_object_get(b, "kind"))),
                       DBP_TEXT(branch),
                       DBP_TEXT(json_string_value(json_object_get(b, "resource"))),
                       DBP_TEXT(json_string_value(json_object_get(b, "justification"))),
                       DBP_TEXT(json_string_value(json_object_get(b, "incident"))),
                       DBP_TEXT(req->principal.sub),
                       DBP_INT(ttl),
                       DBP_INT(oms_config_int(req->app->cfg, "OMS_OVERRIDE_APPROVALS")),
                       DBP_INT(now),
                       DBP_INT(now + ttl * 1000)};
    rc = oms_db_exec(c,
                     "INSERT INTO overrides (id, kind, branch, resource, justification, incident, requester, state,"
                     " ttl_seconds, approvals_required, created_at, expires_at)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11)",
                     p, 11, NULL, &err);
    json_t *dj = json_pack("{s:O,s:O,s:O,s:O?}", "kind", json_object_get(b, "kind"), "incident",
                           json_object_get(b, "incident"), "ttl_seconds", json_object_get(b, "ttl_seconds"),
                           "resource", json_object_get(b, "resource"));
    char *detail = json_dumps(dj, JSON_COMPACT);
    json_decref(dj);
    if (rc == OMS_OK)
        rc = audit(c, req, "override.request", id, branch, detail, &err);
    free(detail);
    rc = rc ? (oms_db_rollback(c), rc) : oms_db_commit(c, &err);
    if (rc)
        return problem(req, rc, &err);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/overrides/%s", id));
    return respond_one(req, c, id, 201);
}

typedef enum { DECIDE_APPROVE, DECIDE_REJECT, DECIDE_CANCEL } decision;

/* The approvals an override has, one per person: subjects that differ only
 * in ASCII case are one approver (auth/principal.h), so one person under
 * two spellings never makes two approvals. *counted: `sub` (or a spelling
 * of it) has approved already. */
static int count_approvers(oms_dbconn *c, const char *id, const char *sub, int64_t *out, bool *counted,
                           oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam q[] = {DBP_TEXT(id)};
    int rc = oms_db_exec(c, "SELECT approver FROM override_approvals WHERE override_id = $1", q, 1, &r, err);
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

static int decide(oms_request *req, decision d)
{
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    /* The route's permission, decided on the override's branch, before
     * the transaction (a refusal is audited by the group-commit writer). */
    if (rc == OMS_OK && (rc = load(c, req, req->params[0], false, &r, &err)) == OMS_OK) {
        bool ok = oms_authorize_on(req, req->route->perm, oms_dbres_get(r, 0, 2));
        oms_dbres_free(r);
        r = NULL;
        if (!ok)
            return OMS_OK;
    }
    if (rc == OMS_OK)
        rc = oms_db_begin(c, true, &err);
    if (rc)
        return problem(req, rc, &err);
    if ((rc = load(c, req, req->params[0], true, &r, &err))) {
        oms_db_rollback(c);
        return problem(req, rc, &err);
    }
    const char *id = req->params[0];
    char state[16], branch[104], requester[256];
    snprintf(state, sizeof state, "%s", oms_dbres_get(r, 0, 7));
    snprintf(branch, sizeof branch, "%s", oms_dbres_get(r, 0, 2));
    snprintf(requester, sizeof requester, "%s", oms_dbres_get(r, 0, 6));
    int64_t required = oms_dbres_int(r, 0, 9), expires = oms_dbres_int(r, 0, 11), now = db_now(c, req);
    oms_dbres_free(r);
    /* Cancelling is the requester's own right: exact subject. Deciding is
     * separation of duties: any case-variant of the requester is the
     * requester (auth/principal.h). */
    bool mine = strcmp(requester, req->principal.sub) == 0;
    bool requester_deciding = oms_sub_same_person(requester, req->principal.sub);
    const char *why = NULL, *code = "invalid_state";
    oms_err ecode = OMS_ECONFLICT;
    bool live = (!strcmp(state, "pending") || !strcmp(state, "approved")) && expires > now;
    if (d == DECIDE_CANCEL && !mine)
        why = "only the requester can cancel an override", code = "not_requester", ecode = OMS_EFORBIDDEN;
    else if (d != DECIDE_CANCEL && requester_deciding)
        why = "an override is approved or rejected by someone other than its requester", code = "self_approval",
        ecode = OMS_EFORBIDDEN;
    else if (!live)
        why = oms_arena_printf(req->arena, "the override is %s", expires <= now && strcmp(state, "used") &&
                                   strcmp(state, "rejected") && strcmp(state, "cancelled") ? "expired" : state);
    else if (d != DECIDE_CANCEL && strcmp(state, "pending") != 0)
        why = "the override was already decided";
    if (why) {
        oms_db_rollback(c);
        return oms_resp_problem_as(req, ecode, code, why, NULL);
    }
    const char *action = "override.cancel", *to = "cancelled";
    if (d == DECIDE_APPROVE) {
        action = "override.approve";
        int64_t approvers = 0;
        bool counted = false;
        if ((rc = count_approvers(c, id, req->principal.sub, &approvers, &counted, &err)) == OMS_OK && !counted) {
            oms_dbparam a[] = {DBP_TEXT(id), DBP_TEXT(req->principal.sub), DBP_INT(now)};
            rc = oms_db_exec(c,
                             "INSERT INTO override_approvals (override_id, approver, created_at) VALUES ($1, $2, $3)"
                             " ON CONFLICT DO NOTHING",
                             a, 3, NULL, &err);
            approvers++;
        }
        to = rc == OMS_OK && approvers >= required ? "approved" : "pending";
    } else if (d == DECIDE_REJECT) {
        action = "override.reject";
        to = "rejected";
    }
    oms_dbparam u[] = {DBP_TEXT(to), DBP_INT(now), DBP_TEXT(req->principal.sub), DBP_TEXT(id)};
    if (rc == OMS_OK)
        rc = oms_db_exec(c, "UPDATE overrides SET state = $1, decided_at = $2, decided_by = $3 WHERE id = $4", u, 4,
                         NULL, &err);
    char *detail = oms_arena_printf(req->arena, "{\"from\":\"%s\",\"to\":\"%s\",\"requester\":\"%s\"}", state, to,
                                    requester);
    if (rc == OMS_OK)
        rc = audit(c, req, action, id, branch, detail, &err);
    rc = rc ? (oms_db_rollback(c), rc) : oms_db_commit(c, &err);
    if (rc)
        return problem(req, rc, &err);
    return respond_one(req, c, id, 200);
}

int oms_h_override_approve(oms_request *req) { return decide(req, DECIDE_APPROVE); }
int oms_h_override_reject(oms_request *req) { return decide(req, DECIDE_REJECT); }
int oms_h_override_cancel(oms_request *req) { return decide(req, DECIDE_CANCEL); }
