#include "governance/issue_check.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "governance/issue_refs.h"
#include "governance/overrides.h"
#include "infra/config.h"
#include "store/overrides_sql.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/hash.h"
#include "util/time.h"

static struct {
    char *exempt;      /* comma-separated globs */
    char *tracker_url; /* with {key}, or NULL */
    long timeout_ms;
    int64_t cache_ms;
} g_cfg;

/* ---- tracker cache: key -> (exists, valid until) ---- */

#define CACHE_SLOTS 512

typedef struct {
    char key[72];
    bool exists;
    int64_t until;
} cache_entry;

static cache_entry g_cache[CACHE_SLOTS];
static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const char *key)
{
    return (size_t)(oms_fnv1a_str(key) % CACHE_SLOTS);
}

static int cache_lookup(const char *key, bool *exists)
{
    int found = 0;
    pthread_mutex_lock(&g_cache_mu);
    cache_entry *e = &g_cache[slot_of(key)];
    if (strcmp(e->key, key) == 0 && e->until > oms_now_ms()) {
        *exists = e->exists;
        found = 1;
    }
    pthread_mutex_unlock(&g_cache_mu);
    return found;
}

static void cache_store(const char *key, bool exists)
{
    pthread_mutex_lock(&g_cache_mu);
    cache_entry *e = &g_cache[slot_of(key)];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->exists = exists;
    /* A missing key is remembered briefly: it may be created any moment. */
    e->until = oms_now_ms() + (exists ? g_cfg.cache_ms : g_cfg.cache_ms / 10);
    pthread_mutex_unlock(&g_cache_mu);
}

int oms_issue_check_configure(const struct oms_config *cfg, oms_error *err)
{
    int rc = oms_issue_patterns_configure(oms_config_str(cfg, "OMS_ISSUE_KEY_PATTERNS"), err);
    if (rc)
        return rc;
    free(g_cfg.exempt);
    free(g_cfg.tracker_url);
    const char *ex = oms_config_str(cfg, "OMS_ISSUE_EXEMPT_BRANCHES");
    const char *url = oms_config_str(cfg, "OMS_ISSUE_TRACKER_URL");
    g_cfg.exempt = oms_xstrdup(ex ? ex : "");
    g_cfg.tracker_url = url && *url ? oms_xstrdup(url) : NULL;
    if (g_cfg.tracker_url && !strstr(g_cfg.tracker_url, "{key}"))
        return oms_err_set(err, OMS_ECONFIG, "OMS_ISSUE_TRACKER_URL must contain {key}");
    if (g_cfg.tracker_url && strncmp(g_cfg.tracker_url, "http://", 7) && strncmp(g_cfg.tracker_url, "https://", 8))
        return oms_err_set(err, OMS_ECONFIG, "OMS_ISSUE_TRACKER_URL must be an http(s) URL");
    g_cfg.timeout_ms = oms_config_int(cfg, "OMS_ISSUE_TRACKER_TIMEOUT_MS");
    g_cfg.cache_ms = (int64_t)oms_config_int(cfg, "OMS_ISSUE_TRACKER_CACHE_SECONDS") * 1000;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return OMS_OK;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

int oms_issue_tracker_check(const char *key, oms_error *err)
{
    if (!g_cfg.tracker_url)
        return OMS_OK;
    bool exists;
    if (cache_lookup(key, &exists))
        return exists ? OMS_OK : oms_err_set(err, OMS_ENOTFOUND, "issue %s does not exist in the tracker", key);
    CURL *h = curl_easy_init();
    if (!h)
        return oms_err_set(err, OMS_EUNAVAIL, "cannot reach the issue tracker");
    char *esc = curl_easy_escape(h, key, 0);
    const char *at = strstr(g_cfg.tracker_url, "{key}");
    char url[2048];
    snprintf(url, sizeof url, "%.*s%s%s", (int)(at - g_cfg.tracker_url), g_cfg.tracker_url, esc ? esc : "", at + 5);
    curl_free(esc);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, g_cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, g_cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status == 0 || status >= 500 || (status >= 300 && status < 400) ||
        status == 401 || status == 403 || status == 429)
        return oms_err_set(err, OMS_EUNAVAIL, "the issue tracker did not answer for %s", key);
    exists = status >= 200 && status < 300;
    cache_store(key, exists);
    return exists ? OMS_OK : oms_err_set(err, OMS_ENOTFOUND, "issue %s does not exist in the tracker", key);
}

/* ---- the check ---- */

/* The forms this change accepts: a change whose body is a resource
 * document takes no body fields (SPEC §5), only headers and the commit
 * message header. */
static json_t *accepted_forms(const oms_ctx *ctx)
{
    if (ctx->body_is_document)
        return json_pack("{s:[s,s,s],s:s,s:s,s:s}", "key_forms", "ABC-123", "GH-123", "#123", "header",
                         "X-Issue-ID: OMS-123", "headers", "X-Issue-IDs: OMS-123,GH-45", "message",
                         "a key in the commit message header, e.g. X-Commit-Message: Fix OMS-123");
    return json_pack("{s:[s,s,s],s:s,s:s,s:s,s:s,s:s}", "key_forms", "ABC-123", "GH-123", "#123", "header",
                     "X-Issue-ID: OMS-123", "headers", "X-Issue-IDs: OMS-123,GH-45", "body", "\"issue_id\": \"OMS-123\"",
                     "body_list", "\"issue_ids\": [\"OMS-123\", \"#45\"]", "message",
                     "a key in the commit message (\"message\" in the body or X-Commit-Message), e.g. \"Fix OMS-123\"");
}

static int refuse(oms_ctx *ctx, oms_error *err, const char *detail, const json_t *invalid)
{
    json_t *extra = json_pack("{s:o}", "accepted_forms", accepted_forms(ctx));
    if (invalid)
        json_object_set(extra, "invalid", (json_t *)invalid);
    oms_ctx_problem_extra(ctx, extra);
    return oms_err_set_as(err, OMS_EUNPROCESSABLE, "issue_required", "%s", detail);
}

static void keys_free(void *p) { json_decref(p); }

int oms_issue_check(oms_ctx *ctx, const char *branch, json_t *keys, const json_t *invalid, oms_error *err)
{
    if (ctx->issue_keys != keys) {
        ctx->issue_keys = keys;
        if (keys)
            oms_arena_on_cleanup(ctx->arena, keys_free, keys);
    }
    if (json_array_size(invalid))
        return refuse(ctx, err, "some issue references are not valid keys", invalid);
    /* Whether the branch requires a reference matters only to a change that
     * names none: a change with keys skips the read (a round trip). */
    bool required = true;
    if (branch && json_array_size(keys) == 0) {
        int setting;
        oms_dbconn *c;
        oms_error e;
        if (ctx->issue_setting_branch && strcmp(ctx->issue_setting_branch, branch) == 0)
            setting = ctx->issue_setting; /* read with the ACL version, for this request */
        else if (oms_db_conn(ctx->store->db, &c, &e) != OMS_OK ||
                 oms_store_branch_issue_setting(c, branch, &setting, &e) != OMS_OK)
            return oms_err_set(err, OMS_EDB, "cannot read the branch settings");
        required = setting >= 0 ? setting == 1 : !oms_glob_list_match(g_cfg.exempt, branch);
    }
    if (required && json_array_size(keys) == 0) {
        if (oms_override_permits(ctx, "issue_requirement", branch, NULL, 0))
            return OMS_OK; /* used inside the change's transaction */
        return refuse(ctx, err, "this change needs at least one issue reference", NULL);
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        oms_error e;
        int rc = oms_issue_tracker_check(json_string_value(k), &e);
        if (rc == OMS_ENOTFOUND)
            return refuse(ctx, err, e.msg, NULL);
        if (rc) /* fail closed: an unverifiable key does not pass */
            return oms_err_set_as(err, OMS_EUNAVAIL, "issue_tracker_unavailable", "%s", e.msg);
    }
    return OMS_OK;
}
