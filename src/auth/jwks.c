/* JWKS parsing, key choice, loading and refreshing; see jwks.h. */
#include "auth/jwks.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "auth/jws.h"
#include "auth/swap.h"
#include "infra/log.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/thread.h"

#define MAX_KEYS 64
#define MAX_RSA_BITS 16384
#define MAX_CACHE_S 86400
#define MAX_BACKOFF_MS 60000
#define NEVER INT64_MIN

/* ---- parsing ----------------------------------------------------------- */

/* Decodes a base64url member into a malloc'd buffer; -1 when absent or bad. */
static long member_bytes(const json_t *jwk, const char *name, unsigned char **out)
{
    *out = NULL;
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 8192)
        return -1;
    size_t n = json_string_length(v);
    unsigned char *buf = oms_xmalloc(n * 3 / 4 + 1);
    long len = oms_b64url_decode(buf, json_string_value(v), n);
    if (len <= 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return len;
}

static EVP_PKEY *from_params(const char *type, const OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY,
                                                                      (OSSL_PARAM *)params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static const char *rsa_key(const json_t *jwk, EVP_PKEY **out)
{
    unsigned char *nb = NULL, *eb = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    const char *why = NULL;
    long nlen = member_bytes(jwk, "n", &nb), elen = member_bytes(jwk, "e", &eb);
    if (nlen < 0 || elen < 0) {
        why = "RSA key without a valid n and e";
        goto cleanup;
    }
    n = BN_bin2bn(nb, (int)nlen, NULL);
    e = BN_bin2bn(eb, (int)elen, NULL);
    if (!n || !e) {
        why = "out of memory";
        goto cleanup;
    }
    if (BN_num_bits(n) < OMS_JWS_MIN_RSA_BITS) {
        why = "RSA modulus shorter than 2048 bits";
        goto cleanup;
    }
    if (BN_num_bits(n) > MAX_RSA_BITS) {
        why = "RSA modulus longer than 16384 bits";
        goto cleanup;
    }
    /* An even or tiny exponent is not an RSA public key; a huge one is a
     * denial of service on every verification. */
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 33) {
        why = "RSA public exponent out of range";
        goto cleanup;
    }
    if (!(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) || !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(*out = from_params("RSA", params)))
        why = "RSA key refused by OpenSSL";
cleanup:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return why;
}

static const char *ec_key(const json_t *jwk, EVP_PKEY **out)
{
    if (!json_is_string(json_object_get(jwk, "crv")) || strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256"))
        return "EC key not on P-256";
    unsigned char *x = NULL, *y = NULL;
    const char *why = NULL;
    /* RFC 7518 §6.2.1.2: coordinates are full length, 32 bytes on P-256. */
    if (member_bytes(jwk, "x", &x) != 32 || member_bytes(jwk, "y", &y) != 32) {
        why = "EC key without 32-byte x and y";
        goto cleanup;
    }
    unsigned char pub[65];
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                           OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub),
                           OSSL_PARAM_construct_end()};
    EVP_PKEY *pkey = from_params("EC", params);
    EVP_PKEY_CTX *chk = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (!pkey || !chk || EVP_PKEY_public_check(chk) != 1) {
        why = "EC point not on P-256";
        EVP_PKEY_free(pkey);
    } else {
        *out = pkey;
    }
    EVP_PKEY_CTX_free(chk);
cleanup:
    free(x);
    free(y);
    return why;
}

static const char *okp_key(const json_t *jwk, EVP_PKEY **out)
{
    if (!json_is_string(json_object_get(jwk, "crv")) ||
        strcmp(json_string_value(json_object_get(jwk, "crv")), "Ed25519"))
        return "OKP key not on Ed25519";
    unsigned char *x = NULL;
    const char *why = NULL;
    if (member_bytes(jwk, "x", &x) != 32)
        why = "Ed25519 key without a 32-byte x";
    else if (!(*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32)))
        why = "Ed25519 key refused by OpenSSL";
    free(x);
    return why;
}

static bool is_private(const json_t *jwk)
{
    static const char *const members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (json_object_get(jwk, members[i]))
            return true;
    return false;
}

static bool has_verify_op(const json_t *ops)
{
    size_t i;
    const json_t *op;
    json_array_foreach(ops, i, op) {
        if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
            return true;
    }
    return false;
}

/* One JWK: a reason when it is left out, NULL when `k` was filled. */
static const char *parse_jwk(const json_t *jwk, unsigned algs, oms_jwk *k)
{
    memset(k, 0, sizeof *k);
    if (!json_is_object(jwk))
        return "not a JSON object";
    const json_t *kty = json_object_get(jwk, "kty"), *use = json_object_get(jwk, "use"),
                 *ops = json_object_get(jwk, "key_ops"), *alg = json_object_get(jwk, "alg"),
                 *kid = json_object_get(jwk, "kid");
    if (!json_is_string(kty))
        return "no kty";
    if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) > OMS_JWKS_MAX_KID ||
                strlen(json_string_value(kid)) != json_string_length(kid)))
        return "kid is not a string of 1..256 bytes";
    if (use && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
        return "use is not sig";
    if (ops && !(json_is_array(ops) && has_verify_op(ops)))
        return "key_ops without verify";
    const char *t = json_string_value(kty);
    if (strcmp(t, "RSA") == 0)
        k->alg = OMS_JWT_RS256;
    else if (strcmp(t, "EC") == 0)
        k->alg = OMS_JWT_ES256;
    else if (strcmp(t, "OKP") == 0)
        k->alg = OMS_JWT_EDDSA;
    else
        return "unsupported kty";
    if (alg && !(json_is_string(alg) && strcmp(json_string_value(alg), oms_jwt_alg_name(k->alg)) == 0))
        return "alg does not match the key type (or is not supported)";
    if (!(algs & OMS_JWT_ALG_BIT(k->alg)))
        return "algorithm not accepted by JWT_ALGORITHM";
    const char *why = k->alg == OMS_JWT_RS256   ? rsa_key(jwk, &k->pkey)
                      : k->alg == OMS_JWT_ES256 ? ec_key(jwk, &k->pkey)
                                                : okp_key(jwk, &k->pkey);
    ERR_clear_error();
    if (why)
        return why;
    oms_error err;
    if (oms_jws_key_check(k->pkey, k->alg, &err) != OMS_OK) { /* the same rules as a PEM key */
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
        return "key refused";
    }
    oms_jws_fingerprint(k->pkey, k->fp);
    oms_jws_key_describe(k->pkey, k->desc, sizeof k->desc);
    if (kid)
        k->kid = oms_xstrdup(json_string_value(kid));
    return NULL;
}

void oms_keyset_free(oms_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->keys[i].kid);
        EVP_PKEY_free(ks->keys[i].pkey);
    }
    free(ks->keys);
    json_decref(ks->skipped);
    free(ks);
}

int oms_keyset_parse(oms_keyset **out, const char *json, size_t len, unsigned algs, oms_error *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *keys = json_object_get(doc, "keys");
    oms_keyset *ks = NULL;
    int rc = OMS_OK;
    if (!json_is_object(doc) || !json_is_array(keys)) {
        rc = oms_err_set(err, OMS_EINVAL, "not a JWKS: a JSON object with a \"keys\" array is expected");
        goto cleanup;
    }
    if (json_array_size(keys) > MAX_KEYS) {
        rc = oms_err_set(err, OMS_EINVAL, "more than %d keys", MAX_KEYS);
        goto cleanup;
    }
    size_t i;
    const json_t *jwk;
    json_array_foreach(keys, i, jwk) {
        if (json_is_object(jwk) && is_private(jwk)) {
            rc = oms_err_set(err, OMS_EINVAL, "key %zu holds private key material: a JWKS for verification "
                             "must only hold public keys", i);
            goto cleanup;
        }
    }
    ks = oms_xcalloc(1, sizeof *ks);
    ks->keys = oms_xcalloc(json_array_size(keys) + 1, sizeof *ks->keys);
    if (!(ks->skipped = json_array())) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    json_array_foreach(keys, i, jwk) {
        const char *why = parse_jwk(jwk, algs, &ks->keys[ks->n]);
        if (!why) {
            ks->n++;
            continue;
        }
        const json_t *kid = json_object_get(jwk, "kid");
        json_array_append_new(ks->skipped, json_pack("{s:I,s:O?,s:s}", "index", (json_int_t)i, "kid",
                                                     json_is_string(kid) ? kid : NULL, "reason", why));
    }
    if (ks->n == 0) {
        rc = oms_err_set(err, OMS_EINVAL, "no usable key (%zu left out; JWT_ALGORITHM decides which fit)",
                         json_array_size(keys));
        goto cleanup;
    }
    *out = ks;
    ks = NULL;
cleanup:
    oms_keyset_free(ks);
    json_decref(doc);
    return rc;
}

static bool kid_eq(const oms_jwk *k, const char *kid, size_t kidlen)
{
    return k->kid && strlen(k->kid) == kidlen && memcmp(k->kid, kid, kidlen) == 0;
}

oms_jwks_result oms_keyset_verify(const oms_keyset *ks, oms_jwt_alg alg, const char *kid, size_t kidlen,
                                  const char *msg, size_t len, const unsigned char *sig, size_t siglen)
{
    if (!ks)
        return OMS_JWKS_NO_KEYS;
    const oms_jwk *use = NULL;
    if (kid) {
        bool named = false;
        for (size_t i = 0; i < ks->n && !use; i++) {
            if (!kid_eq(&ks->keys[i], kid, kidlen))
                continue;
            named = true;
            if (ks->keys[i].alg == alg)
                use = &ks->keys[i];
        }
        if (!use)
            return named ? OMS_JWKS_KEY_MISMATCH : OMS_JWKS_UNKNOWN_KID;
    } else {
        /* Without a kid, only an unambiguous set will do. */
        for (size_t i = 0; i < ks->n; i++) {
            if (ks->keys[i].alg != alg)
                continue;
            if (use)
                return OMS_JWKS_AMBIGUOUS;
            use = &ks->keys[i];
        }
        if (!use)
            return OMS_JWKS_UNKNOWN_KID;
    }
    return oms_jws_verify(use->pkey, alg, msg, len, sig, siglen) ? OMS_JWKS_VALID : OMS_JWKS_BAD_SIGNATURE;
}

/* ---- URLs -------------------------------------------------------------- */

static bool loopback_host(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    char buf[64];
    size_t n = strlen(host);
    if (n > 2 && n < sizeof buf && host[0] == '[' && host[n - 1] == ']') {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    struct in6_addr a6;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Whether `url` may be fetched; *http_ok when it is plain http (loopback). */
static int url_policy(const char *name, const char *url, bool *http_ok, oms_error *err)
{
    int rc = OMS_OK;
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    CURLU *u = curl_url();
    *http_ok = false;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = oms_err_set(err, OMS_ECONFIG, "%s is not a URL", name);
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        rc = oms_err_set(err, OMS_ECONFIG, "%s must not hold a user name or password", name);
        goto cleanup;
    }
    if (strcasecmp(scheme, "https") == 0)
        goto cleanup;
    if (strcasecmp(scheme, "http") == 0 && loopback_host(host)) {
        *http_ok = true;
        goto cleanup;
    }
    rc = oms_err_set(err, OMS_ECONFIG, "%s must be an https URL (http only to a loopback address)", name);
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}

int oms_jwks_url_check(const char *name, const char *url, oms_error *err)
{
    bool http_ok;
    return url_policy(name, url, &http_ok, err);
}

/* ---- the source -------------------------------------------------------- */

struct oms_jwks {
    char *file, *url, *issuer;
    unsigned algs;
    int64_t refetch_ms, cache_ms;
    long timeout_ms;

    oms_swap_ptr set; /* oms_keyset *, NULL until the first load */

    oms_jwks_report_fn report;
    void *report_ctx;

    pthread_mutex_t load_mu; /* one load at a time; the fields below it */
    char *jwks_uri;          /* discovered (OIDC) */
    int failures;
    atomic_llong next_due_ms; /* monotonic: the next scheduled fetch */

    /* the refresher */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t thread;
    bool running, stop, fetching;
    const char *pending; /* trigger of a requested fetch */
    uint64_t done_gen;   /* fetches completed */
    atomic_llong last_unknown_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int oms_jwks_new(oms_jwks **out, const oms_jwks_config *cfg, oms_error *err)
{
    *out = NULL;
    int sources = !!cfg->file + !!cfg->url + !!cfg->oidc_issuer;
    if (sources != 1)
        return oms_err_set(err, OMS_ECONFIG, "set one of JWT_JWKS_FILE, JWT_JWKS_URL, JWT_OIDC_ISSUER");
    int rc;
    if (cfg->url && (rc = oms_jwks_url_check("JWT_JWKS_URL", cfg->url, err)) != OMS_OK)
        return rc;
    if (cfg->oidc_issuer && (rc = oms_jwks_url_check("JWT_OIDC_ISSUER", cfg->oidc_issuer, err)) != OMS_OK)
        return rc;
    oms_jwks *j = oms_xcalloc(1, sizeof *j);
    j->algs = cfg->algs;
    j->refetch_ms = (int64_t)(cfg->refetch_interval_s > 0 ? cfg->refetch_interval_s : 30) * 1000;
    j->cache_ms = (int64_t)(cfg->cache_s > 0 ? cfg->cache_s : 300) * 1000;
    j->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    atomic_init(&j->last_unknown_ms, NEVER);
    atomic_init(&j->next_due_ms, 0);
    pthread_mutex_init(&j->load_mu, NULL);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &ca);
    pthread_cond_init(&j->done, &ca);
    pthread_condattr_destroy(&ca);
    j->file = cfg->file ? oms_xstrdup(cfg->file) : NULL;
    j->url = cfg->url ? oms_xstrdup(cfg->url) : NULL;
    j->issuer = cfg->oidc_issuer ? oms_xstrdup(cfg->oidc_issuer) : NULL;
    if (j->url || j->issuer)
        curl_global_init(CURL_GLOBAL_DEFAULT); /* start-up, before any thread */
    *out = j;
    return OMS_OK;
}

void oms_jwks_free(oms_jwks *j)
{
    if (!j)
        return;
    oms_jwks_stop(j);
    oms_keyset_free(oms_swap_replace(&j->set, NULL));
    pthread_mutex_destroy(&j->load_mu);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->done);
    free(j->file);
    free(j->url);
    free(j->issuer);
    free(j->jwks_uri);
    free(j);
}

void oms_jwks_set_reporter(oms_jwks *j, oms_jwks_report_fn fn, void *ctx)
{
    j->report = fn;
    j->report_ctx = ctx;
}

bool oms_jwks_is_remote(const oms_jwks *j) { return !j->file; }

const char *oms_jwks_location(const oms_jwks *j) { return j->file ? j->file : j->url ? j->url : j->issuer; }

/* ---- fetching ---- */

typedef struct {
    char *buf;
    size_t len;
    bool too_big;
    long max_age; /* -1: none given */
} http_result;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    http_result *r = ctx;
    size_t add = size * n;
    if (r->len + add > OMS_JWKS_MAX_BYTES) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    char *nb = oms_xrealloc(r->buf, r->len + add + 1);
    memcpy(nb + r->len, p, add);
    r->buf = nb;
    r->len += add;
    r->buf[r->len] = '\0';
    return add;
}

/* Cache-Control: max-age=N (no-store / no-cache: 0). */
static void parse_cache_control(const char *v, size_t n, long *max_age)
{
    char buf[512];
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        if (strncasecmp(t, "max-age=", 8) == 0) {
            char *end;
            long x = strtol(t + 8, &end, 10);
            if (end != t + 8 && x >= 0)
                *max_age = x;
        } else if (strncasecmp(t, "no-store", 8) == 0 || strncasecmp(t, "no-cache", 8) == 0) {
            *max_age = 0;
        }
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    http_result *r = ctx;
    size_t len = size * n;
    static const char name[] = "cache-control:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0)
        parse_cache_control(p + sizeof name - 1, len - (sizeof name - 1), &r->max_age);
    return len;
}

static int http_get(const oms_jwks *j, const char *name, const char *url, http_result *res, oms_error *err)
{
    memset(res, 0, sizeof *res);
    res->max_age = -1;
    bool http_ok;
    int rc = url_policy(name, url, &http_ok, err);
    if (rc)
        return rc;
    CURL *h = curl_easy_init();
    if (!h)
        return oms_err_set(err, OMS_EUNAVAIL, "cannot start an HTTP request");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, j->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, j->timeout_ms / 2 > 0 ? j->timeout_ms / 2 : 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, http_ok ? "http,https" : "https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "oms");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (res->too_big)
        rc = oms_err_set(err, OMS_EUNAVAIL, "GET %s: larger than %d bytes", url, OMS_JWKS_MAX_BYTES);
    else if (cc != CURLE_OK)
        rc = oms_err_set(err, OMS_EUNAVAIL, "GET %s: %s", url, curl_easy_strerror(cc));
    else if (status != 200)
        rc = oms_err_set(err, OMS_EUNAVAIL, "GET %s: HTTP %ld", url, status);
    else if (!res->buf)
        rc = oms_err_set(err, OMS_EUNAVAIL, "GET %s: empty body", url);
    if (rc) {
        free(res->buf);
        res->buf = NULL;
    }
    return rc;
}

/* OpenID Connect Discovery 1.0 §4: the document's issuer must be exactly
 * the configured one (§4.3), and its jwks_uri obeys the URL rules. */
static int discover(oms_jwks *j, oms_error *err)
{
    size_t n = strlen(j->issuer);
    while (n && j->issuer[n - 1] == '/')
        n--;
    char url[2048];
    if (snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration", (int)n, j->issuer) >= (int)sizeof url)
        return oms_err_set(err, OMS_ECONFIG, "JWT_OIDC_ISSUER is too long");
    http_result res;
    int rc = http_get(j, "JWT_OIDC_ISSUER", url, &res, err);
    if (rc)
        return rc;
    json_t *doc = json_loadb(res.buf, res.len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *iss = json_object_get(doc, "issuer"), *uri = json_object_get(doc, "jwks_uri");
    if (!json_is_object(doc))
        rc = oms_err_set(err, OMS_EUNAVAIL, "%s: not a JSON object", url);
    else if (!json_is_string(iss) || json_string_length(iss) != strlen(j->issuer) ||
             memcmp(json_string_value(iss), j->issuer, json_string_length(iss)) != 0)
        rc = oms_err_set(err, OMS_EUNAVAIL, "%s: its issuer is not JWT_OIDC_ISSUER", url);
    else if (!json_is_string(uri))
        rc = oms_err_set(err, OMS_EUNAVAIL, "%s: no jwks_uri", url);
    else if ((rc = oms_jwks_url_check("jwks_uri", json_string_value(uri), err)) != OMS_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = oms_err_set(err, OMS_EUNAVAIL, "%s: %s", url, why);
    }
    else
        j->jwks_uri = oms_xstrdup(json_string_value(uri));
    json_decref(doc);
    free(res.buf);
    return rc;
}

static int read_file(const char *path, char **out, size_t *len, oms_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return oms_err_set(err, OMS_ECONFIG, "cannot read %s: %s", path, strerror(errno));
    char *buf = oms_xmalloc(OMS_JWKS_MAX_BYTES + 1);
    size_t n = fread(buf, 1, OMS_JWKS_MAX_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > OMS_JWKS_MAX_BYTES) {
        free(buf);
        return oms_err_set(err, OMS_ECONFIG, "%s: %s", path, bad ? "read error" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return OMS_OK;
}

/* The new set's text, and its max-age (-1 when none). */
static int obtain(oms_jwks *j, char **text, size_t *len, long *max_age, oms_error *err)
{
    *max_age = -1;
    if (j->file)
        return read_file(j->file, text, len, err);
    if (j->issuer && !j->jwks_uri) {
        int rc = discover(j, err);
        if (rc)
            return rc;
    }
    http_result res;
    int rc = http_get(j, j->issuer ? "jwks_uri" : "JWT_JWKS_URL", j->issuer ? j->jwks_uri : j->url, &res, err);
    if (rc) {
        /* the provider may have moved its keys: ask discovery again next time */
        free(j->jwks_uri);
        j->jwks_uri = NULL;
        return rc;
    }
    *text = res.buf;
    *len = res.len;
    *max_age = res.max_age;
    return OMS_OK;
}

static json_t *key_json(const oms_jwk *k)
{
    return json_pack("{s:s?,s:s,s:s,s:s}", "kid", k->kid, "alg", oms_jwt_alg_name(k->alg), "key", k->desc, "sha256",
                     k->fp + 7);
}

static bool same_key(const oms_jwk *a, const oms_jwk *b)
{
    return a->alg == b->alg && strcmp(a->fp, b->fp) == 0 &&
           ((!a->kid && !b->kid) || (a->kid && b->kid && strcmp(a->kid, b->kid) == 0));
}

static bool in_set(const oms_keyset *ks, const oms_jwk *k)
{
    for (size_t i = 0; ks && i < ks->n; i++)
        if (same_key(&ks->keys[i], k))
            return true;
    return false;
}

/* {source, keys, added, removed, skipped}; *changed when the sets differ. */
static json_t *describe_change(const oms_jwks *j, const oms_keyset *old, const oms_keyset *nw, bool *changed)
{
    json_t *keys = json_array(), *added = json_array(), *removed = json_array();
    for (size_t i = 0; i < nw->n; i++) {
        json_array_append_new(keys, key_json(&nw->keys[i]));
        if (!in_set(old, &nw->keys[i]))
            json_array_append_new(added, key_json(&nw->keys[i]));
    }
    for (size_t i = 0; old && i < old->n; i++)
        if (!in_set(nw, &old->keys[i]))
            json_array_append_new(removed, key_json(&old->keys[i]));
    *changed = json_array_size(added) || json_array_size(removed);
    return json_pack("{s:s,s:o,s:o,s:o,s:O}", "source", oms_jwks_location(j), "keys", keys, "added", added,
                     "removed", removed, "skipped", nw->skipped);
}

static void log_skipped(const oms_jwks *j, const json_t *skipped)
{
    size_t i;
    const json_t *sk;
    json_array_foreach(skipped, i, sk) {
        const char *kid = json_string_value(json_object_get(sk, "kid"));
        oms_log(OMS_LOG_WARN, "JWKS %s: key %lld%s%.64s%s left out: %s", oms_jwks_location(j),
                (long long)json_integer_value(json_object_get(sk, "index")), kid ? " (kid " : "", kid ? kid : "",
                kid ? ")" : "", json_string_value(json_object_get(sk, "reason")));
    }
}

static void schedule(oms_jwks *j, bool ok, long max_age)
{
    int64_t delay;
    if (ok) {
        delay = max_age < 0 ? j->cache_ms : (int64_t)max_age * 1000;
        if (delay < j->refetch_ms)
            delay = j->refetch_ms;
        if (delay > (int64_t)MAX_CACHE_S * 1000)
            delay = (int64_t)MAX_CACHE_S * 1000;
    } else {
        int shift = j->failures > 7 ? 6 : j->failures - 1;
        delay = (int64_t)1000 << (shift < 0 ? 0 : shift);
        if (delay > MAX_BACKOFF_MS)
            delay = MAX_BACKOFF_MS;
    }
    atomic_store(&j->next_due_ms, mono_ms() + delay);
}

int oms_jwks_load(oms_jwks *j, const char *trigger, oms_error *err)
{
    pthread_mutex_lock(&j->load_mu);
    char *text = NULL;
    size_t len = 0;
    long max_age = -1;
    oms_keyset *nw = NULL;
    json_t *detail = NULL;
    oms_keyset *cur = atomic_load(&j->set); /* only loaders replace it, and we hold load_mu */
    oms_jwks_report rep = {.trigger = trigger, .had_keys = cur != NULL};
    int rc = obtain(j, &text, &len, &max_age, err);
    if (rc == OMS_OK && (rc = oms_keyset_parse(&nw, text, len, j->algs, err)) != OMS_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = oms_err_set(err, rc == OMS_ENOMEM ? OMS_ENOMEM : OMS_EUNAVAIL, "%s: %s", oms_jwks_location(j), why);
    }
    if (rc == OMS_OK) {
        bool changed;
        detail = describe_change(j, cur, nw, &changed);
        rep.ok = true;
        rep.changed = changed || !cur;
        rep.recovered_after = j->failures;
        j->failures = 0;
        if (rep.changed) {
            oms_keyset_free(oms_swap_replace(&j->set, nw));
            nw = NULL;
        }
        log_skipped(j, json_object_get(detail, "skipped"));
    } else {
        rep.failures = ++j->failures;
        rep.error = err->msg;
        detail = json_pack("{s:s}", "source", oms_jwks_location(j));
    }
    schedule(j, rc == OMS_OK, max_age);
    rep.detail = detail;
    if (j->report)
        j->report(j->report_ctx, &rep);
    pthread_mutex_unlock(&j->load_mu);
    oms_keyset_free(nw);
    json_decref(detail);
    free(text);
    return rc;
}

/* ---- the refresher ---- */

static void deadline_ts(struct timespec *ts, int64_t at_ms)
{
    ts->tv_sec = (time_t)(at_ms / 1000);
    ts->tv_nsec = (long)(at_ms % 1000) * 1000000;
}

static void *refresher(void *p)
{
    oms_thread_name("oms-jwks");
    oms_jwks *j = p;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        int64_t due = atomic_load(&j->next_due_ms);
        if (j->pending || mono_ms() >= due) {
            const char *trigger = j->pending ? j->pending : "schedule";
            j->pending = NULL;
            j->fetching = true;
            pthread_mutex_unlock(&j->mu);
            oms_error err;
            oms_jwks_load(j, trigger, &err);
            pthread_mutex_lock(&j->mu);
            j->fetching = false;
            j->done_gen++;
            pthread_cond_broadcast(&j->done);
            continue;
        }
        struct timespec ts;
        deadline_ts(&ts, due);
        pthread_cond_timedwait(&j->wake, &j->mu, &ts);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int oms_jwks_start(oms_jwks *j, oms_error *err)
{
    if (!oms_jwks_is_remote(j) || j->running)
        return OMS_OK;
    /* The thread must never take a signal: the server waits for them on
     * its main thread (SIGTERM drains, SIGHUP reloads). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    j->stop = false;
    int rc = pthread_create(&j->thread, NULL, refresher, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return oms_err_set(err, OMS_EINTERNAL, "cannot start the JWKS refresher: %s", strerror(rc));
    j->running = true;
    return OMS_OK;
}

void oms_jwks_stop(oms_jwks *j)
{
    if (!j->running)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_broadcast(&j->wake);
    pthread_cond_broadcast(&j->done);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    j->running = false;
}

void oms_jwks_refresh(oms_jwks *j, const char *trigger)
{
    if (!j->running)
        return;
    pthread_mutex_lock(&j->mu);
    j->pending = trigger;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
}

static _Thread_local bool tl_may_not_fetch;

void oms_jwks_thread_may_fetch(bool may) { tl_may_not_fetch = !may; }

bool oms_jwks_refetch_unknown(oms_jwks *j)
{
    if (tl_may_not_fetch || !j->running) /* before the interval is claimed: the handler may still fetch */
        return false;
    int64_t now = mono_ms();
    long long last = atomic_load(&j->last_unknown_ms);
    if (last != NEVER && now - last < j->refetch_ms)
        return false;
    if (!atomic_compare_exchange_strong(&j->last_unknown_ms, &last, now))
        return false; /* another request won this interval */
    pthread_mutex_lock(&j->mu);
    /* A fetch already under way may have started before the new key was
     * published: wait for the one after it. */
    uint64_t target = j->done_gen + (j->fetching ? 2 : 1);
    if (!j->pending)
        j->pending = "unknown_kid";
    pthread_cond_signal(&j->wake);
    struct timespec ts;
    deadline_ts(&ts, now + 4 * j->timeout_ms + 200); /* discovery + fetch, twice at worst */
    while (j->done_gen < target && !j->stop)
        if (pthread_cond_timedwait(&j->done, &j->mu, &ts) == ETIMEDOUT)
            break;
    bool done = j->done_gen >= target;
    pthread_mutex_unlock(&j->mu);
    return done;
}

oms_jwks_result oms_jwks_verify(oms_jwks *j, oms_jwt_alg alg, const char *kid, size_t kidlen, const char *msg,
                                size_t len, const unsigned char *sig, size_t siglen)
{
    const oms_keyset *ks = oms_swap_acquire(&j->set, OMS_SWAP_SLOT_KEYSET);
    oms_jwks_result r = oms_keyset_verify(ks, alg, kid, kidlen, msg, len, sig, siglen);
    oms_swap_release(OMS_SWAP_SLOT_KEYSET);
    return r;
}

json_t *oms_jwks_describe(oms_jwks *j)
{
    const oms_keyset *ks = oms_swap_acquire(&j->set, OMS_SWAP_SLOT_KEYSET);
    json_t *out = NULL;
    if (ks) {
        out = json_array();
        for (size_t i = 0; i < ks->n; i++)
            json_array_append_new(out, key_json(&ks->keys[i]));
    }
    oms_swap_release(OMS_SWAP_SLOT_KEYSET);
    return out;
}
