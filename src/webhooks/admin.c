#include "util/ids.h"
#include "webhooks/webhooks.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/events_sql.h"
#include "store/store.h"
#include "txn/change.h"
#include "util/encoding.h"
#include "util/time.h"

#define MAX_GLOBS 32

void oms_webhook_new_id(char out[48], const char *prefix)
{
    unsigned char rnd[12];
    oms_random_bytes(rnd, sizeof rnd);
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    oms_hex(out + n, rnd, sizeof rnd);
}

int oms_webhook_check_url(const char *url, oms_error *err)
{
    if (!url || !*url || strlen(url) > 2048)
        return oms_err_set(err, OMS_EINVAL, "url is required: an http or https URL of at most 2048 bytes");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return oms_err_set(err, OMS_EINVAL, "url must not contain spaces or control characters");
    CURLU *u = curl_url();
    if (!u)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = OMS_OK;
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL, *frag = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rc = oms_err_set(err, OMS_EINVAL, "url is not a valid absolute URL");
        goto done;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        rc = oms_err_set(err, OMS_EINVAL, "url must be http:// or https://");
    else if (user || pass || strchr(url, '@'))
        rc = oms_err_set(err, OMS_EINVAL, "url must not carry credentials (user:password@); the secret signs instead");
    else if (!host || !*host)
        rc = oms_err_set(err, OMS_EINVAL, "url must name a host");
    else if (frag)
        rc = oms_err_set(err, OMS_EINVAL, "url must not have a fragment");
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

static int check_globs(const json_t *a, const char *what, char **out, oms_error *err)
{
    json_t *copy;
    if (!a) {
        copy = strcmp(what, "types") == 0 ? json_pack("[s]", "*") : json_array();
    } else {
        if (!json_is_array(a) || json_array_size(a) > MAX_GLOBS)
            return oms_err_set(err, OMS_EINVAL, "%s must be an array of at most %d glob strings", what, MAX_GLOBS);
        size_t i;
        const json_t *v;
        json_array_foreach(a, i, v)
        {
            const char *s = json_string_value(v);
            if (!s || !*s || strlen(s) > 200 || strchr(s, ','))
                return oms_err_set(err, OMS_EINVAL,
                                   "%s must hold non-empty glob strings of at most 200 bytes without ','", what);
        }
        if (strcmp(what, "types") == 0 && json_array_size(a) == 0)
            return oms_err_set(err, OMS_EINVAL, "types must name at least one type glob (\"*\": every type)");
        copy = json_deep_copy(a);
    }
    *out = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return *out ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

int oms_webhook_check_input(const oms_webhook_input *in, char **types, char **branches, oms_error *err)
{
    *types = *branches = NULL;
    int rc = oms_webhook_check_url(in->url, err);
    if (rc == OMS_OK && in->description && strlen(in->description) > 1000)
        rc = oms_err_set(err, OMS_EINVAL, "description must be at most 1000 bytes");
    if (rc == OMS_OK && (rc = check_globs(in->types, "types", types, err)) == OMS_OK)
        rc = check_globs(in->branches, "branches", branches, err);
    if (rc) {
        free(*types);
        free(*branches);
        *types = *branches = NULL;
    }
    return rc;
}

static void time_member(json_t *o, const char *k, int64_t ms)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, ms);
    json_object_set_new(o, k, json_string(t));
}

json_t *oms_webhook_json(const oms_dbres *r, size_t i)
{
    json_t *types = json_loads(oms_dbres_get(r, i, OMS_WH_COL_TYPES), 0, NULL);
    json_t *branches = json_loads(oms_dbres_get(r, i, OMS_WH_COL_BRANCHES), 0, NULL);
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s, s:b, s:b, s:s}", "id", oms_dbres_get(r, i, OMS_WH_COL_ID), "url",
                          oms_dbres_get(r, i, OMS_WH_COL_URL), "types", types ? types : json_array(), "branches",
                          branches ? branches : json_array(), "description",
                          oms_dbres_get(r, i, OMS_WH_COL_DESCRIPTION) ?: "", "enabled",
                          oms_dbres_int(r, i, OMS_WH_COL_ENABLED) != 0, "builtin",
                          oms_dbres_int(r, i, OMS_WH_COL_BUILTIN) != 0, "created_by",
                          oms_dbres_get(r, i, OMS_WH_COL_CREATED_BY) ?: "");
    if (o) {
        time_member(o, "created_at", oms_dbres_int(r, i, OMS_WH_COL_CREATED_AT));
        time_member(o, "updated_at", oms_dbres_int(r, i, OMS_WH_COL_UPDATED_AT));
    }
    return o;
}

json_t *oms_delivery_json(const oms_dbres *r, size_t i)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", oms_dbres_get(r, i, OMS_DLV_COL_ID), "webhook_id",
                          oms_dbres_get(r, i, OMS_DLV_COL_WEBHOOK), "event_id",
                          oms_dbres_get(r, i, OMS_DLV_COL_EVENT_ID), "status", oms_dbres_get(r, i, OMS_DLV_COL_STATUS),
                          "attempts", (json_int_t)oms_dbres_int(r, i, OMS_DLV_COL_ATTEMPTS));
    if (!o)
        return NULL;
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long)oms_dbres_int(r, i, OMS_DLV_COL_EVENT_POS));
    json_object_set_new(o, "event_sequence", json_string(seq));
    const char *ls = oms_dbres_get(r, i, OMS_DLV_COL_LAST_STATUS);
    json_object_set_new(o, "last_status", ls ? json_integer(strtoll(ls, NULL, 10)) : json_null());
    const char *le = oms_dbres_get(r, i, OMS_DLV_COL_LAST_ERROR);
    json_object_set_new(o, "last_error", le ? json_string(le) : json_null());
    time_member(o, "created_at", oms_dbres_int(r, i, OMS_DLV_COL_CREATED_AT));
    time_member(o, "updated_at", oms_dbres_int(r, i, OMS_DLV_COL_UPDATED_AT));
    const char *st = oms_dbres_get(r, i, OMS_DLV_COL_STATUS);
    if (strcmp(st, "pending") == 0 || strcmp(st, "retrying") == 0)
        time_member(o, "next_attempt_at", oms_dbres_int(r, i, OMS_DLV_COL_NEXT_AT));
    return o;
}

/* ---- the changes ---- */

typedef struct {
    const char *id, *delivery_id;
    const oms_webhook_input *in;
    char *types, *branches;
    char secret[64];
    json_t *result;
} wh_run;

static int load(oms_dbconn *c, const char *id, oms_dbres **r, oms_error *err)
{
    int rc = oms_store_webhook_get(c, id, r, err);
    if (rc == OMS_OK && (*r)->nrows == 0) {
        oms_dbres_free(*r);
        *r = NULL;
        return oms_err_set(err, OMS_ENOTFOUND, "no webhook %s", id);
    }
    return rc;
}

static int reload_result(oms_dbconn *c, wh_run *s, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = load(c, s->id, &r, err);
    if (rc)
        return rc;
    json_decref(s->result);
    s->result = oms_webhook_json(r, 0);
    oms_dbres_free(r);
    return s->result ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

static void describe(oms_change_out *out, const wh_run *s, int status)
{
    out->resource_kind = "webhooks";
    out->resource_id = s->id;
    out->status = status;
    /* the url without its query (receivers put tokens there), never the
     * secret; types and branches as JSON */
    char url[2100] = "";
    if (s->in && s->in->url) {
        snprintf(url, sizeof url, "%s", s->in->url);
        url[strcspn(url, "?")] = 0;
    }
    json_t *types = s->types ? json_loads(s->types, 0, NULL) : NULL;
    json_t *branches = s->branches ? json_loads(s->branches, 0, NULL) : NULL;
    out->detail = json_pack("{s:s?, s:o?, s:o?}", "url", url[0] ? url : NULL, "types", types, "branches", branches);
}

static int create_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    wh_run *s = arg;
    oms_webhook_row w = {.id = s->id,
                         .url = s->in->url,
                         .secret = s->secret,
                         .types = s->types,
                         .branches = s->branches,
                         .description = s->in->description,
                         .enabled = s->in->enabled,
                         .created_by = ctx->sub ? ctx->sub : "",
                         .now_ms = oms_now_ms()};
    int rc = oms_store_webhook_insert(c, &w, err);
    if (rc == OMS_OK)
        rc = reload_result(c, s, err);
    if (rc == OMS_OK)
        describe(out, s, 201);
    return rc;
}

int oms_webhook_create(oms_ctx *ctx, const oms_webhook_input *in, json_t **out, oms_error *err)
{
    *out = NULL;
    char id[48] = {0};
    oms_webhook_new_id(id, "wh_");
    wh_run s = {.id = id, .in = in};
    int rc = oms_webhook_check_input(in, &s.types, &s.branches, err);
    if (rc)
        return rc;
    unsigned char key[24];
    oms_random_bytes(key, sizeof key);
    memcpy(s.secret, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)s.secret + 6, key, sizeof key);
    oms_change_spec spec = {.action = "webhook.create", .step = create_step, .arg = &s};
    oms_change_out co;
    rc = oms_change_run(ctx, &spec, &co, err);
    free(s.types);
    free(s.branches);
    if (rc == OMS_OK) {
        json_object_set_new(s.result, "secret", json_string(s.secret));
        *out = s.result;
    } else {
        json_decref(s.result);
    }
    return rc;
}

/* Update and delete both start here: the row must exist, and the built-in
 * subscription follows the configuration, not the API. */
static int load_editable(oms_dbconn *c, const char *id, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = load(c, id, &r, err);
    if (rc == OMS_OK && oms_dbres_int(r, 0, OMS_WH_COL_BUILTIN))
        rc = oms_err_set_as(err, OMS_ECONFLICT, "webhook_builtin",
                            "the built-in alert subscription follows OMS_ALERT_WEBHOOK_URL; change the configuration");
    oms_dbres_free(r);
    return rc;
}

static int update_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    wh_run *s = arg;
    int rc = load_editable(c, s->id, err);
    if (rc)
        return rc;
    bool found = false;
    oms_webhook_row w = {.id = s->id,
                         .url = s->in->url,
                         .types = s->types,
                         .branches = s->branches,
                         .description = s->in->description,
                         .enabled = s->in->enabled,
                         .now_ms = oms_now_ms()};
    if ((rc = oms_store_webhook_update(c, &w, &found, err)) == OMS_OK)
        rc = reload_result(c, s, err);
    if (rc == OMS_OK)
        describe(out, s, 200);
    return rc;
}

int oms_webhook_update(oms_ctx *ctx, const char *id, const oms_webhook_input *in, json_t **out, oms_error *err)
{
    *out = NULL;
    wh_run s = {.id = id, .in = in};
    int rc = oms_webhook_check_input(in, &s.types, &s.branches, err);
    if (rc)
        return rc;
    oms_change_spec spec = {.action = "webhook.update", .step = update_step, .arg = &s};
    oms_change_out co;
    rc = oms_change_run(ctx, &spec, &co, err);
    free(s.types);
    free(s.branches);
    if (rc == OMS_OK)
        *out = s.result;
    else
        json_decref(s.result);
    return rc;
}

static int delete_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    wh_run *s = arg;
    int rc = load_editable(c, s->id, err);
    bool found;
    if (rc == OMS_OK)
        rc = oms_store_webhook_delete(c, s->id, &found, err);
    if (rc == OMS_OK)
        describe(out, s, 204);
    return rc;
}

int oms_webhook_delete(oms_ctx *ctx, const char *id, oms_error *err)
{
    wh_run s = {.id = id};
    oms_change_spec spec = {.action = "webhook.delete", .step = delete_step, .arg = &s};
    oms_change_out co;
    return oms_change_run(ctx, &spec, &co, err);
}

int oms_webhook_get(oms_ctx *ctx, const char *id, json_t **out, oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    *out = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK && (rc = load(c, id, &r, err)) == OMS_OK)
        *out = oms_webhook_json(r, 0);
    oms_dbres_free(r);
    return rc;
}

static int redeliver_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    wh_run *s = arg;
    oms_dbres *r = NULL;
    int rc = load(c, s->id, &r, err);
    oms_dbres_free(r);
    r = NULL;
    if (rc == OMS_OK && (rc = oms_store_delivery_get(c, s->id, s->delivery_id, &r, err)) == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no delivery %s of webhook %s", s->delivery_id, s->id);
    if (rc) {
        oms_dbres_free(r);
        return rc;
    }
    char id[48] = {0};
    oms_webhook_new_id(id, "dlv_");
    const char *event_id = oms_dbres_get(r, 0, OMS_DLV_COL_EVENT_ID);
    oms_dbres *ev = NULL;
    if ((rc = oms_store_event_body(c, event_id, &ev, err)) == OMS_OK && ev->nrows == 0)
        rc = oms_err_set_as(err, OMS_ECONFLICT, "event_expired", "the event %s is no longer kept (retention)",
                            event_id);
    oms_dbres_free(ev);
    if (rc == OMS_OK)
        rc = oms_store_delivery_insert(c, id, s->id, event_id, oms_dbres_int(r, 0, OMS_DLV_COL_EVENT_POS),
                                       oms_now_ms(), err);
    oms_dbres_free(r);
    r = NULL;
    if (rc == OMS_OK && (rc = oms_store_delivery_get(c, s->id, id, &r, err)) == OMS_OK)
        s->result = oms_delivery_json(r, 0);
    oms_dbres_free(r);
    if (rc == OMS_OK) {
        out->resource_kind = "webhooks";
        out->resource_id = s->id;
        out->status = 202;
        out->detail = json_pack("{s:s, s:s}", "delivery", s->delivery_id, "new_delivery", id);
    }
    return rc;
}

int oms_webhook_redeliver(oms_ctx *ctx, const char *id, const char *delivery_id, json_t **out, oms_error *err)
{
    wh_run s = {.id = id, .delivery_id = delivery_id};
    oms_change_spec spec = {.action = "webhook.redeliver", .step = redeliver_step, .arg = &s};
    oms_change_out co;
    *out = NULL;
    int rc = oms_change_run(ctx, &spec, &co, err);
    if (rc == OMS_OK)
        *out = s.result;
    else
        json_decref(s.result);
    return rc;
}

int oms_webhook_sync_builtin(oms_dbconn *c, const char *url, const char *secret, oms_error *err)
{
    int64_t now = oms_now_ms();
    oms_webhook_row w = {.id = OMS_WEBHOOK_BUILTIN_ALERTS,
                         .url = url,
                         .secret = secret ? secret : "",
                         .types = "[\"alert.*\"]",
                         .branches = "[]",
                         .description = "OMS_ALERT_WEBHOOK_URL",
                         .enabled = url != NULL,
                         .builtin = 1,
                         .created_by = "oms",
                         .now_ms = now};
    bool found = false;
    int rc = oms_store_webhook_update(c, &w, &found, err);
    if (rc == OMS_OK && !found && url) {
        rc = oms_store_webhook_insert(c, &w, err);
        if (rc == OMS_ECONFLICT) /* another instance made it meanwhile */
            rc = oms_store_webhook_update(c, &w, &found, err);
    }
    return rc;
}
