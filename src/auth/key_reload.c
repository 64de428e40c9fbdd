/* Identity at run time; see identity.h.
 *
 * One reload at a time (g_id.mu): SIGHUP arrives on the server's signal
 * thread, file changes are seen by the background thread. A reload reads
 * and validates everything first and swaps only when all of it is good,
 * so a half-written or wrong file never replaces a working configuration. */
#include "auth/identity.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "auth/jwks.h"
#include "auth/jws.h"
#include "audit/alerts.h"
#include "infra/config.h"
#include "infra/log.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/time.h"

/* ---- watched files ---- */

typedef struct {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_sig;

typedef struct {
    const char *setting; /* JWT_SECRET (its _FILE), JWT_PUBLIC_KEY_FILE, ... */
    char *path;
    bool identity;     /* re-read by a reload; others need a restart */
    file_sig at_start; /* restart-required detection */
    file_sig loaded;   /* as of the last reload (or start) */
    file_sig pending;  /* a change seen once; acted on when seen again */
    bool has_pending;
} watched;

#define MAX_WATCHED 16

static struct {
    pthread_mutex_t mu;
    oms_jwks *jwks;
    const oms_config *cfg;
    oms_store *store;      /* where events and alerts go (oms_identity_start) */
    oms_jwt_verifier *jwt; /* the verifier a reload swaps keys in */
    watched files[MAX_WATCHED];
    size_t nfiles;
    int64_t poll_ms, last_poll_ms;
    bool started;
} g_id = {.mu = PTHREAD_MUTEX_INITIALIZER};

static file_sig stat_sig(const char *path)
{
    file_sig s;
    memset(&s, 0, sizeof s);
    struct stat st;
    if (stat(path, &st) != 0) /* follows symlinks: a Kubernetes secret's ..data swap changes the inode */
        return s;
    s.exists = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime = st.st_mtim;
    s.ctime = st.st_ctim;
    return s;
}

static bool sig_eq(const file_sig *a, const file_sig *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void watch(const char *setting, const char *path, bool identity)
{
    if (!path || g_id.nfiles == MAX_WATCHED)
        return;
    watched *w = &g_id.files[g_id.nfiles];
    memset(w, 0, sizeof *w);
    w->path = oms_xstrdup(path);
    w->setting = setting;
    w->identity = identity;
    w->at_start = w->loaded = stat_sig(path);
    g_id.nfiles++;
}

static void setup_watch(const oms_config *cfg)
{
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        const oms_cfg_def *d = &oms_cfg_table[i];
        if (d->has_file_form)
            watch(d->name, oms_config_file_path(cfg, d->name),
                  !strcmp(d->name, "JWT_SECRET") || !strcmp(d->name, "JWT_PREVIOUS_SECRET"));
    }
    watch("JWT_PUBLIC_KEY_FILE", oms_config_str(cfg, "JWT_PUBLIC_KEY_FILE"), true);
    watch("JWT_JWKS_FILE", oms_config_str(cfg, "JWT_JWKS_FILE"), true);
}

/* ---- building ---- */

/* The verifier's configuration from `cfg`, with the secrets given. */
static int jwt_config(oms_jwt_config *jc, const oms_config *cfg, const char *secret, const char *prev,
                      oms_error *err)
{
    memset(jc, 0, sizeof *jc);
    if (oms_jwt_alg_list_parse(&jc->algs, &jc->alg, oms_config_str(cfg, "JWT_ALGORITHM")) != OMS_OK)
        return oms_err_set(err, OMS_ECONFIG, "JWT_ALGORITHM is refused");
    jc->secret = (const unsigned char *)secret;
    jc->secret_len = secret ? strlen(secret) : 0;
    jc->previous_secret = (const unsigned char *)prev;
    jc->previous_secret_len = prev ? strlen(prev) : 0;
    jc->public_key_file = oms_config_str(cfg, "JWT_PUBLIC_KEY_FILE");
    jc->jwks = g_id.jwks;
    jc->issuer = oms_config_str(cfg, "JWT_ISSUER");
    jc->audience = oms_config_str(cfg, "JWT_AUDIENCE");
    jc->roles_claim = oms_config_str(cfg, "JWT_ROLES_CLAIM");
    jc->role_map = oms_config_str(cfg, "OMS_ROLE_MAP");
    jc->leeway = OMS_JWT_LEEWAY;
    return OMS_OK;
}

int oms_identity_init(oms_jwt_verifier **out, const oms_config *cfg, oms_error *err)
{
    *out = NULL;
    oms_jwt_config jc;
    int rc = jwt_config(&jc, cfg, oms_config_str(cfg, "JWT_SECRET"), oms_config_str(cfg, "JWT_PREVIOUS_SECRET"), err);
    if (rc)
        return rc;
    oms_jwks_config kc = {.file = oms_config_str(cfg, "JWT_JWKS_FILE"),
                          .url = oms_config_str(cfg, "JWT_JWKS_URL"),
                          .oidc_issuer = oms_config_str(cfg, "JWT_OIDC_ISSUER"),
                          .algs = jc.algs,
                          .refetch_interval_s = (int)oms_config_int(cfg, "JWT_JWKS_REFETCH_SECONDS"),
                          .cache_s = (int)oms_config_int(cfg, "JWT_JWKS_CACHE_SECONDS"),
                          .timeout_ms = (int)oms_config_int(cfg, "JWT_JWKS_TIMEOUT_MS")};
    if (kc.file || kc.url || kc.oidc_issuer) {
        if ((rc = oms_jwks_new(&g_id.jwks, &kc, err)) != OMS_OK)
            return rc;
        /* A key file is like a PEM key: unreadable at start-up is refused. */
        if (kc.file && (rc = oms_jwks_load(g_id.jwks, "start", err)) != OMS_OK) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            oms_err_set(err, OMS_ECONFIG, "JWT_JWKS_FILE: %s", why);
            goto fail;
        }
        jc.jwks = g_id.jwks;
    }
    if ((rc = oms_jwt_verifier_new(out, &jc, err)) != OMS_OK)
        goto fail;
    g_id.cfg = cfg;
    setup_watch(cfg);
    return OMS_OK;
fail:
    oms_jwks_free(g_id.jwks);
    g_id.jwks = NULL;
    return OMS_ECONFIG;
}

void oms_identity_free(oms_jwt_verifier *v)
{
    oms_identity_stop();
    oms_jwt_verifier_free(v);
    oms_jwks_free(g_id.jwks);
    g_id.jwks = NULL;
    for (size_t i = 0; i < g_id.nfiles; i++)
        free(g_id.files[i].path);
    g_id.nfiles = 0;
    g_id.cfg = NULL;
}

/* ---- audit and alerts ---- */

/* An event of the service itself; with `rule`, also a stored alert and its
 * alert.raised event, in one transaction (like every other alert). */
static void record(const char *action, const char *outcome, const json_t *detail, const char *rule,
                   const char *severity)
{
    char *txt = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    oms_audit_event ev = {.actor_sub = "oms", .action = action, .outcome = outcome, .detail = txt};
    oms_error err;
    int rc;
    if (!rule) {
        rc = oms_audit_record(g_id.store, &ev, &err);
    } else {
        oms_dbconn *c = NULL;
        rc = oms_db_conn(g_id.store->db, &c, &err);
        if (rc == OMS_OK && (rc = oms_db_begin(c, true, &err)) == OMS_OK) {
            oms_audit_event al = {.actor_sub = "oms", .action = "alert.raised", .outcome = "success", .detail = txt};
            if ((rc = oms_audit_append(c, &ev, &err)) == OMS_OK && (rc = oms_audit_append(c, &al, &err)) == OMS_OK &&
                (rc = oms_alert_raise(c, NULL, rule, severity, txt, &err)) == OMS_OK)
                rc = oms_db_commit(c, &err);
            if (rc != OMS_OK)
                oms_db_rollback(c);
        }
    }
    if (rc != OMS_OK)
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit write failed for %s: %s", action, err.msg);
    free(txt);
}

/* Remote key sets: loads that change something, and failures. */
static void on_jwks_report(void *ctx, const oms_jwks_report *r)
{
    (void)ctx;
    json_t *d = json_deep_copy(r->detail);
    json_object_set_new(d, "trigger", json_string(r->trigger));
    if (r->ok) {
        if (!r->changed && !r->recovered_after) {
            json_decref(d);
            return; /* a routine refresh: the same keys */
        }
        if (r->recovered_after)
            json_object_set_new(d, "recovered_after_failures", json_integer(r->recovered_after));
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "JWKS loaded from %s: %zu key(s), %zu added, %zu removed",
                      json_string_value(json_object_get(d, "source")), json_array_size(json_object_get(d, "keys")),
                      json_array_size(json_object_get(d, "added")), json_array_size(json_object_get(d, "removed")));
        record("jwks.refresh", "success", d, NULL, NULL);
    } else {
        json_object_set_new(d, "error", json_string(r->error));
        json_object_set_new(d, "failures", json_integer(r->failures));
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "JWKS %s failed (%d in a row): %s; %s", r->trigger, r->failures,
                      r->error,
                      r->had_keys ? "the last good key set stays in use" : "no key set: every token is refused");
        /* Once per outage; the log has every retry. */
        if (r->failures == 1)
            record("jwks.refresh", "failure", d, r->had_keys ? "jwks_refresh_failed" : "jwks_unavailable",
                   r->had_keys ? "warning" : "critical");
    }
    json_decref(d);
}

int oms_identity_start(oms_store *store, oms_jwt_verifier *jwt, oms_error *err)
{
    pthread_mutex_lock(&g_id.mu);
    g_id.store = store;
    g_id.jwt = jwt;
    g_id.poll_ms = oms_config_int(g_id.cfg, "OMS_SECRET_FILE_POLL_SECONDS") * 1000;
    g_id.last_poll_ms = oms_mono_ns() / 1000000;
    g_id.started = true;
    pthread_mutex_unlock(&g_id.mu);
    if (!g_id.jwks || !oms_jwks_is_remote(g_id.jwks))
        return OMS_OK;
    oms_jwks_set_reporter(g_id.jwks, on_jwks_report, NULL);
    oms_error e;
    oms_jwks_load(g_id.jwks, "start", &e); /* reported; a failure is retried by the refresher */
    return oms_jwks_start(g_id.jwks, err);
}

void oms_identity_stop(void)
{
    if (g_id.jwks)
        oms_jwks_stop(g_id.jwks);
    pthread_mutex_lock(&g_id.mu);
    g_id.started = false;
    pthread_mutex_unlock(&g_id.mu);
}

/* ---- reload ---- */

/* Names whose fingerprint differs between two {name: fingerprint} objects. */
static void diff_fingerprints(json_t *changed, const json_t *before, const json_t *after)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)after, k, v) {
        if (!json_equal(v, json_object_get(before, k)))
            json_array_append_new(changed, json_string(k));
    }
    json_object_foreach((json_t *)before, k, v) {
        if (!json_object_get(after, k))
            json_array_append_new(changed, json_string(k));
    }
}

/* Re-reads a secret that came from a file; the configured value otherwise. */
static int current_secret(const char *name, char **out, bool *from_file, oms_error *err)
{
    *out = NULL;
    *from_file = oms_config_file_path(g_id.cfg, name) != NULL;
    if (!*from_file) {
        const char *v = oms_config_str(g_id.cfg, name);
        *out = v ? oms_xstrdup(v) : NULL;
        return OMS_OK;
    }
    return oms_config_reread(g_id.cfg, name, out, err);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* The reload proper: validates, then swaps. `d` gets what changed. */
static int reload_keys(const char *trigger, json_t *d, oms_error *err)
{
    int rc = OMS_OK;
    char *secret = NULL, *prev = NULL;
    json_t *changed = json_object_get(d, "changed");
    if (g_id.jwks) {
        if (oms_jwks_is_remote(g_id.jwks)) {
            /* Asynchronous: the refresher reports it as jwks.refresh. */
            oms_jwks_refresh(g_id.jwks, trigger);
            json_object_set_new(d, "jwks_refetch", json_string(oms_jwks_location(g_id.jwks)));
            return OMS_OK;
        }
        json_t *before = oms_jwks_describe(g_id.jwks);
        rc = oms_jwks_load(g_id.jwks, trigger, err);
        json_t *after = oms_jwks_describe(g_id.jwks);
        if (rc == OMS_OK && !json_equal(before, after))
            json_array_append_new(changed, json_string("JWT_JWKS_FILE"));
        json_object_set_new(d, "keys", after ? after : json_null());
        json_decref(before);
        if (rc != OMS_OK) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            oms_err_set(err, rc, "JWT_JWKS_FILE: %s", why);
        }
        return rc;
    }
    bool secret_file, prev_file;
    if ((rc = current_secret("JWT_SECRET", &secret, &secret_file, err)) != OMS_OK ||
        (rc = current_secret("JWT_PREVIOUS_SECRET", &prev, &prev_file, err)) != OMS_OK)
        goto cleanup;
    oms_jwt_config jc;
    if ((rc = jwt_config(&jc, g_id.cfg, secret, prev, err)) != OMS_OK)
        goto cleanup;
    if (oms_jwt_alg_is_hmac(jc.alg)) {
        if (!secret) {
            rc = oms_err_set(err, OMS_ECONFIG, "JWT_SECRET_FILE is missing or empty");
            goto cleanup;
        }
        if ((rc = oms_config_check_secret("JWT_SECRET", secret, err)) != OMS_OK ||
            (prev && (rc = oms_config_check_secret("JWT_PREVIOUS_SECRET", prev, err)) != OMS_OK))
            goto cleanup;
    }
    json_t *before = oms_jwt_verifier_fingerprints(g_id.jwt);
    rc = oms_jwt_verifier_reload(g_id.jwt, &jc, err);
    json_t *after = oms_jwt_verifier_fingerprints(g_id.jwt);
    if (rc == OMS_OK)
        diff_fingerprints(changed, before, after);
    json_object_set_new(d, "fingerprints", after);
    json_decref(before);
cleanup:
    free_secret(secret);
    free_secret(prev);
    return rc;
}

void oms_identity_reload(const char *trigger)
{
    pthread_mutex_lock(&g_id.mu);
    if (!g_id.cfg || !g_id.store) {
        pthread_mutex_unlock(&g_id.mu);
        return;
    }
    json_t *d = json_pack("{s:s,s:[],s:[]}", "trigger", trigger, "changed", "restart_required");
    for (size_t i = 0; i < g_id.nfiles; i++) {
        watched *w = &g_id.files[i];
        w->loaded = stat_sig(w->path);
        w->has_pending = false;
        if (!w->identity && !sig_eq(&w->loaded, &w->at_start))
            json_array_append_new(json_object_get(d, "restart_required"), json_string(w->setting));
    }
    oms_error err;
    int rc = reload_keys(trigger, d, &err);
    if (rc == OMS_OK) {
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "configuration reloaded (%s): %zu setting(s) changed", trigger,
                      json_array_size(json_object_get(d, "changed")));
        if (json_array_size(json_object_get(d, "restart_required")))
            oms_log_write(OMS_LOG_WARN, NULL, NULL, "a changed _FILE setting takes effect at the next restart "
                                                    "(see the config.reload audit event)");
        record("config.reload", "success", d, NULL, NULL);
    } else {
        oms_log_write(OMS_LOG_ERROR, NULL, NULL, "configuration reload refused (%s): %s; the previous one stays",
                      trigger, err.msg);
        json_object_set_new(d, "error", json_string(err.msg));
        record("config.reload", "failure", d, "config_reload_failed", "warning");
    }
    json_decref(d);
    pthread_mutex_unlock(&g_id.mu);
}

void oms_identity_poll_task(void)
{
    pthread_mutex_lock(&g_id.mu);
    int64_t now = oms_mono_ns() / 1000000;
    bool due = g_id.started && g_id.poll_ms > 0 && now - g_id.last_poll_ms >= g_id.poll_ms;
    bool reload = false;
    if (due) {
        g_id.last_poll_ms = now;
        for (size_t i = 0; i < g_id.nfiles; i++) {
            watched *w = &g_id.files[i];
            file_sig s = stat_sig(w->path);
            if (sig_eq(&s, &w->loaded)) {
                w->has_pending = false;
            } else if (w->has_pending && sig_eq(&s, &w->pending)) {
                reload = true; /* changed, and still for one poll: the writer is done */
            } else {
                w->pending = s;
                w->has_pending = true;
            }
        }
    }
    pthread_mutex_unlock(&g_id.mu);
    if (reload)
        oms_identity_reload("file_change");
}

/* ---- config check ---- */

static void describe_pem(const char *path, FILE *f)
{
    FILE *in = fopen(path, "r");
    EVP_PKEY *pkey = in ? PEM_read_PUBKEY(in, NULL, NULL, NULL) : NULL;
    if (in)
        fclose(in);
    if (!pkey) {
        fprintf(f, "#   JWT_PUBLIC_KEY_FILE: cannot read a PEM public key from %s\n", path);
    } else {
        char desc[32], fp[24];
        oms_jws_key_describe(pkey, desc, sizeof desc);
        oms_jws_fingerprint(pkey, fp);
        fprintf(f, "#   JWT_PUBLIC_KEY_FILE: %s %s\n", desc, fp);
    }
    EVP_PKEY_free(pkey);
    ERR_clear_error();
}

static void describe_jwks(const char *path, unsigned algs, FILE *f)
{
    FILE *in = fopen(path, "rb");
    char *buf = oms_xmalloc(OMS_JWKS_MAX_BYTES + 1);
    size_t n = in ? fread(buf, 1, OMS_JWKS_MAX_BYTES, in) : 0;
    if (in)
        fclose(in);
    oms_keyset *ks = NULL;
    oms_error err;
    if (!in) {
        fprintf(f, "#   JWT_JWKS_FILE: cannot read %s\n", path);
    } else if (oms_keyset_parse(&ks, buf, n, algs, &err) != OMS_OK) {
        fprintf(f, "#   JWT_JWKS_FILE: refused: %s\n", err.msg);
    } else {
        for (size_t i = 0; i < ks->n; i++)
            fprintf(f, "#   JWT_JWKS_FILE: kid %s: %s %s %s\n", ks->keys[i].kid ? ks->keys[i].kid : "(none)",
                    ks->keys[i].desc, oms_jwt_alg_name(ks->keys[i].alg), ks->keys[i].fp);
        size_t i;
        const json_t *s;
        json_array_foreach(ks->skipped, i, s) {
            fprintf(f, "#   JWT_JWKS_FILE: key %lld left out: %s\n",
                    (long long)json_integer_value(json_object_get(s, "index")),
                    json_string_value(json_object_get(s, "reason")));
        }
    }
    oms_keyset_free(ks);
    free(buf);
}

void oms_identity_describe(const oms_config *cfg, FILE *f)
{
    unsigned algs = 0;
    oms_jwt_alg first;
    oms_jwt_alg_list_parse(&algs, &first, oms_config_str(cfg, "JWT_ALGORITHM"));
    const char *pem = oms_config_str(cfg, "JWT_PUBLIC_KEY_FILE"), *jwks = oms_config_str(cfg, "JWT_JWKS_FILE"),
               *url = oms_config_str(cfg, "JWT_JWKS_URL"), *iss = oms_config_str(cfg, "JWT_OIDC_ISSUER");
    if (!pem && !jwks && !url && !iss)
        return;
    fputs("# verification keys (fingerprint: sha256 of the DER public key, first 16 hex digits):\n", f);
    if (pem)
        describe_pem(pem, f);
    if (jwks)
        describe_jwks(jwks, algs, f);
    if (url || iss)
        fprintf(f, "#   %s: fetched by `oms serve`, not by `config check`\n", url ? "JWT_JWKS_URL" : "JWT_OIDC_ISSUER");
}
