/* JWT (compact JWS) verification and HMAC minting, SPEC §6.1.
 *
 * Verification order: size cap, split into three parts, header (alg/crit/typ),
 * signature, and only then the payload, so the claims parser never sees
 * unauthenticated bytes. `exp` is checked last so that OMS_EEXPIRED is only
 * reported for tokens that are otherwise entirely valid.
 *
 * A verifier is immutable after oms_jwt_verifier_new and is shared by every
 * worker thread; all mutable crypto state is created per call. */
#include "auth/jwt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "util/encoding.h"

#define MIN_HMAC_SECRET 32
#define MAX_SUB_LEN 255
#define MAX_ROLE_LEN 64
#define MAX_ROLES 64
#define MAX_LEEWAY 86400
#define MIN_RSA_BITS 2048
#define ES256_SIG_LEN 64
#define MAX_MAC_LEN 64 /* SHA-512 output */
#define MAX_BLOCK 128  /* SHA-384/512 block size */
/* Time claims are clamped to ±2^62 so that adding the leeway cannot overflow. */
#define TIME_LIMIT ((int64_t)1 << 62)

typedef struct {
    EVP_MD_CTX *inner, *outer;
    size_t len; /* MAC length in bytes */
} hmac_key;

/* Headers that almost every issuer emits (the first is the one we mint),
 * compared byte-for-byte in base64url form so the common case skips a JSON
 * parse; anything else is parsed and checked. */
#define N_STD_HEADERS 3
static const char *const k_std_headers[N_STD_HEADERS] = {
    "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
    "{\"typ\":\"JWT\",\"alg\":\"%s\"}",
    "{\"alg\":\"%s\"}",
};

struct oms_jwt_verifier {
    oms_jwt_alg alg;
    const char *alg_name;
    hmac_key key[2]; /* HS*: current and (optional) previous secret */
    EVP_PKEY *pkey;  /* RS256/ES256; only read after construction */
    char *issuer;
    char *audience;
    int64_t leeway;
    char std_header[N_STD_HEADERS][48];
};

static const struct {
    const char *name;
    oms_jwt_alg alg;
} k_algs[] = {
    {"HS256", OMS_JWT_HS256}, {"HS384", OMS_JWT_HS384}, {"HS512", OMS_JWT_HS512},
    {"RS256", OMS_JWT_RS256}, {"ES256", OMS_JWT_ES256},
};

int oms_jwt_alg_parse(oms_jwt_alg *out, const char *name)
{
    if (!name)
        return OMS_ECONFIG;
    for (size_t i = 0; i < sizeof k_algs / sizeof k_algs[0]; i++) {
        if (strcmp(name, k_algs[i].name) == 0) {
            *out = k_algs[i].alg;
            return OMS_OK;
        }
    }
    return OMS_ECONFIG;
}

const char *oms_jwt_alg_name(oms_jwt_alg alg)
{
    for (size_t i = 0; i < sizeof k_algs / sizeof k_algs[0]; i++)
        if (k_algs[i].alg == alg)
            return k_algs[i].name;
    return NULL;
}

/* OpenSSL digest name for an HMAC alg, or NULL for a public-key alg. */
static const char *hmac_digest(oms_jwt_alg alg)
{
    switch (alg) {
    case OMS_JWT_HS256: return "SHA256";
    case OMS_JWT_HS384: return "SHA384";
    case OMS_JWT_HS512: return "SHA512";
    default: return NULL;
    }
}

/* ---- HMAC ------------------------------------------------------------- */

/* HMAC (RFC 2104) with the keyed inner and outer digest states computed once
 * per secret. Per token we copy two states; duplicating an EVP_MAC_CTX copies
 * three and allocates more, which measured about twice as slow. The result is
 * cross-checked against OpenSSL's HMAC() in the unit tests. The templates are
 * only read (copied) after construction, so they may be shared by threads. */

static void hmac_key_free(hmac_key *k)
{
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    k->inner = k->outer = NULL;
}

/* A digest context that has already absorbed the key block XOR `pad`. */
static EVP_MD_CTX *keyed_state(const EVP_MD *md, const unsigned char *block, size_t bs,
                               unsigned char pad)
{
    unsigned char x[MAX_BLOCK];
    for (size_t i = 0; i < bs; i++)
        x[i] = block[i] ^ pad;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && !(EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, x, bs))) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    OPENSSL_cleanse(x, sizeof x);
    return ctx;
}

static bool hmac_key_init(hmac_key *k, oms_jwt_alg alg, const unsigned char *key, size_t keylen)
{
    unsigned char block[MAX_BLOCK] = {0};
    bool ok = false;
    EVP_MD *md = EVP_MD_fetch(NULL, hmac_digest(alg), NULL);
    if (!md)
        goto cleanup;
    size_t bs = (size_t)EVP_MD_get_block_size(md);
    if (bs > MAX_BLOCK)
        goto cleanup;
    /* Keys longer than a block are replaced by their digest. */
    if (keylen > bs) {
        if (!EVP_Digest(key, keylen, block, NULL, md, NULL))
            goto cleanup;
    } else {
        memcpy(block, key, keylen);
    }
    k->inner = keyed_state(md, block, bs, 0x36);
    k->outer = keyed_state(md, block, bs, 0x5c);
    k->len = (size_t)EVP_MD_get_size(md);
    ok = k->inner && k->outer;
cleanup:
    OPENSSL_cleanse(block, sizeof block);
    EVP_MD_free(md); /* the contexts keep their own reference */
    if (!ok) {
        hmac_key_free(k);
        ERR_clear_error();
    }
    return ok;
}

static bool hmac_compute(const hmac_key *k, const void *msg, size_t len,
                         unsigned char out[MAX_MAC_LEN])
{
    unsigned char inner[MAX_MAC_LEN];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_MD_CTX_copy_ex(ctx, k->inner) && EVP_DigestUpdate(ctx, msg, len) &&
              EVP_DigestFinal_ex(ctx, inner, NULL) && EVP_MD_CTX_copy_ex(ctx, k->outer) &&
              EVP_DigestUpdate(ctx, inner, k->len) && EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        ERR_clear_error();
    return ok;
}

static bool hmac_matches(const hmac_key *k, const char *msg, size_t len, const unsigned char *sig,
                         size_t siglen)
{
    unsigned char mac[MAX_MAC_LEN];
    return siglen == k->len && hmac_compute(k, msg, len, mac) && oms_ct_equal(mac, sig, siglen);
}

/* ---- public keys ------------------------------------------------------- */

static int check_key_type(const EVP_PKEY *pkey, oms_jwt_alg alg, oms_error *err)
{
    if (alg == OMS_JWT_RS256) {
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return oms_err_set(err, OMS_ECONFIG, "jwt: RS256 requires an RSA public key");
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
            return oms_err_set(err, OMS_ECONFIG, "jwt: RSA key shorter than %d bits",
                               MIN_RSA_BITS);
        return OMS_OK;
    }
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) ||
        strcmp(group, SN_X9_62_prime256v1) != 0)
        return oms_err_set(err, OMS_ECONFIG, "jwt: ES256 requires an EC P-256 public key");
    return OMS_OK;
}

static int load_public_key(EVP_PKEY **out, const char *path, oms_jwt_alg alg, oms_error *err)
{
    int rc = OMS_OK;
    EVP_PKEY *pkey = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        rc = oms_err_set(err, OMS_ECONFIG, "jwt: cannot open public key %s: %s", path,
                         strerror(errno));
        goto cleanup;
    }
    pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!pkey) {
        rc = oms_err_set(err, OMS_ECONFIG, "jwt: %s is not a PEM public key", path);
        goto cleanup;
    }
    rc = check_key_type(pkey, alg, err);
cleanup:
    if (f)
        fclose(f);
    if (rc != OMS_OK) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ERR_clear_error();
    *out = pkey;
    return rc;
}

/* JWS carries ECDSA signatures as raw r||s (RFC 7518 §3.4); OpenSSL wants DER. */
static long es256_raw_to_der(unsigned char *der, size_t cap, const unsigned char *raw)
{
    long len = -1;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, ES256_SIG_LEN / 2, NULL);
    BIGNUM *s = BN_bin2bn(raw + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s))
        goto cleanup;
    r = s = NULL; /* owned by sig now */
    int n = i2d_ECDSA_SIG(sig, NULL);
    if (n <= 0 || (size_t)n > cap)
        goto cleanup;
    unsigned char *p = der;
    len = i2d_ECDSA_SIG(sig, &p);
cleanup:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return len;
}

static bool pkey_matches(EVP_PKEY *pkey, const char *msg, size_t len, const unsigned char *sig,
                         size_t siglen)
{
    bool ok = false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1)
        ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)msg, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error(); /* a failed verify leaves errors on this thread's queue */
    return ok;
}

static bool signature_ok(const oms_jwt_verifier *v, const char *msg, size_t len,
                         const unsigned char *sig, size_t siglen)
{
    switch (v->alg) {
    case OMS_JWT_RS256:
        /* JWS requires the full modulus length; OpenSSL would accept shorter. */
        if (siglen != (size_t)EVP_PKEY_get_size(v->pkey))
            return false;
        return pkey_matches(v->pkey, msg, len, sig, siglen);
    case OMS_JWT_ES256: {
        unsigned char der[80];
        if (siglen != ES256_SIG_LEN)
            return false;
        long dlen = es256_raw_to_der(der, sizeof der, sig);
        return dlen > 0 && pkey_matches(v->pkey, msg, len, der, (size_t)dlen);
    }
    default:
        if (hmac_matches(&v->key[0], msg, len, sig, siglen))
            return true;
        return v->key[1].inner && hmac_matches(&v->key[1], msg, len, sig, siglen);
    }
}

/* ---- verifier construction --------------------------------------------- */

static int check_config(const oms_jwt_config *cfg, oms_error *err)
{
    if (!oms_jwt_alg_name(cfg->alg))
        return oms_err_set(err, OMS_ECONFIG, "jwt: unknown algorithm");
    if (cfg->leeway < 0 || cfg->leeway > MAX_LEEWAY)
        return oms_err_set(err, OMS_ECONFIG, "jwt: leeway out of range");
    bool have_secret = cfg->secret || cfg->secret_len || cfg->previous_secret ||
                       cfg->previous_secret_len;
    /* Key-confusion guard: exactly one kind of key material. */
    if (hmac_digest(cfg->alg)) {
        if (cfg->public_key_file)
            return oms_err_set(err, OMS_ECONFIG, "jwt: HMAC algorithm with a public key file");
        if (!cfg->secret || cfg->secret_len < MIN_HMAC_SECRET)
            return oms_err_set(err, OMS_ECONFIG, "jwt: HMAC secret missing or shorter than %d bytes",
                               MIN_HMAC_SECRET);
        if ((cfg->previous_secret || cfg->previous_secret_len) &&
            (!cfg->previous_secret || cfg->previous_secret_len < MIN_HMAC_SECRET))
            return oms_err_set(err, OMS_ECONFIG, "jwt: previous secret shorter than %d bytes",
                               MIN_HMAC_SECRET);
    } else {
        if (have_secret)
            return oms_err_set(err, OMS_ECONFIG, "jwt: public-key algorithm with an HMAC secret");
        if (!cfg->public_key_file || !*cfg->public_key_file)
            return oms_err_set(err, OMS_ECONFIG, "jwt: public key file required");
    }
    return OMS_OK;
}

static int setup_hmac(oms_jwt_verifier *v, const oms_jwt_config *cfg, oms_error *err)
{
    if (!hmac_key_init(&v->key[0], cfg->alg, cfg->secret, cfg->secret_len) ||
        (cfg->previous_secret &&
         !hmac_key_init(&v->key[1], cfg->alg, cfg->previous_secret, cfg->previous_secret_len)))
        return oms_err_set(err, OMS_ECONFIG, "jwt: cannot initialise HMAC");
    return OMS_OK;
}

static void setup_std_headers(oms_jwt_verifier *v)
{
    for (int i = 0; i < N_STD_HEADERS; i++) {
        char json[32];
        int n = snprintf(json, sizeof json, k_std_headers[i], v->alg_name);
        oms_b64url_encode(v->std_header[i], (const unsigned char *)json, (size_t)n);
    }
}

int oms_jwt_verifier_new(oms_jwt_verifier **out, const oms_jwt_config *cfg, oms_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc != OMS_OK)
        return rc;
    oms_jwt_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
    v->alg = cfg->alg;
    v->alg_name = oms_jwt_alg_name(cfg->alg);
    v->leeway = cfg->leeway;
    setup_std_headers(v);
    if (hmac_digest(cfg->alg))
        rc = setup_hmac(v, cfg, err);
    else
        rc = load_public_key(&v->pkey, cfg->public_key_file, cfg->alg, err);
    if (rc != OMS_OK)
        goto cleanup;
    if ((cfg->issuer && !(v->issuer = strdup(cfg->issuer))) ||
        (cfg->audience && !(v->audience = strdup(cfg->audience)))) {
        rc = oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
        goto cleanup;
    }
    *out = v;
    return OMS_OK;
cleanup:
    oms_jwt_verifier_free(v);
    return rc;
}

void oms_jwt_verifier_free(oms_jwt_verifier *v)
{
    if (!v)
        return;
    hmac_key_free(&v->key[0]);
    hmac_key_free(&v->key[1]);
    EVP_PKEY_free(v->pkey);
    free(v->issuer);
    free(v->audience);
    free(v);
}

/* ---- parsing helpers --------------------------------------------------- */

typedef struct {
    const char *p;
    size_t n;
} span;

/* Splits "h.p.s" into exactly three non-empty parts. */
static bool split_token(const char *tok, size_t len, span parts[3])
{
    const char *end = tok + len, *cur = tok;
    for (int i = 0; i < 3; i++) {
        const char *dot = i < 2 ? memchr(cur, '.', (size_t)(end - cur)) : end;
        if (!dot || dot == cur)
            return false;
        parts[i].p = cur;
        parts[i].n = (size_t)(dot - cur);
        cur = dot + 1;
    }
    return !memchr(parts[2].p, '.', parts[2].n);
}

/* Decodes one part into buf (which has room for (n*3)/4 + 1 bytes). */
static long decode_part(unsigned char *buf, span s)
{
    long n = oms_b64url_decode(buf, s.p, s.n);
    return n > 0 ? n : -1;
}

/* Parses a JSON object; anything else (arrays, scalars, duplicates) is NULL. */
static json_t *load_object(const unsigned char *buf, size_t len)
{
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Exact, length-aware comparison (a JSON string may contain "\u0000"). */
static bool json_str_eq(const json_t *j, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(j) && json_string_length(j) == n &&
           memcmp(json_string_value(j), want, n) == 0;
}

static bool json_str_ieq(const json_t *j, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(j) && json_string_length(j) == n &&
           strncasecmp(json_string_value(j), want, n) == 0;
}

static bool is_std_header(const oms_jwt_verifier *v, span h)
{
    for (int i = 0; i < N_STD_HEADERS; i++)
        if (strlen(v->std_header[i]) == h.n && memcmp(v->std_header[i], h.p, h.n) == 0)
            return true;
    return false;
}

/* `buf` is scratch space for the decoded header. */
static int check_header(const oms_jwt_verifier *v, span h, unsigned char *buf, oms_error *err)
{
    if (is_std_header(v, h))
        return OMS_OK;
    long len = decode_part(buf, h);
    if (len < 0)
        return oms_err_set(err, OMS_ETOKEN, "bad base64url");
    json_t *hdr = load_object(buf, (size_t)len);
    if (!hdr)
        return oms_err_set(err, OMS_ETOKEN, "bad header json");
    int rc = OMS_OK;
    const json_t *typ = json_object_get(hdr, "typ");
    if (!json_str_eq(json_object_get(hdr, "alg"), v->alg_name))
        rc = oms_err_set(err, OMS_ETOKEN, "alg mismatch");
    /* We implement no extensions, so any critical one must be refused (RFC 7515 §4.1.11). */
    else if (json_object_get(hdr, "crit"))
        rc = oms_err_set(err, OMS_ETOKEN, "crit header");
    else if (typ && !json_str_ieq(typ, "JWT") && !json_str_ieq(typ, "at+jwt"))
        rc = oms_err_set(err, OMS_ETOKEN, "bad typ");
    json_decref(hdr);
    return rc;
}

static int64_t clamp_time(int64_t t)
{
    return t > TIME_LIMIT ? TIME_LIMIT : t < -TIME_LIMIT ? -TIME_LIMIT : t;
}

/* A NumericDate (integer or real) as whole seconds, rounded down for `exp`
 * and up for `nbf`/`iat` so fractional values never widen the window. */
static bool time_claim(const json_t *j, bool round_up, int64_t *out)
{
    if (json_is_integer(j)) {
        *out = clamp_time((int64_t)json_integer_value(j));
        return true;
    }
    if (!json_is_real(j))
        return false;
    double d = json_real_value(j);
    if (d != d) /* NaN; jansson never produces one, but be safe */
        return false;
    if (d >= (double)TIME_LIMIT || d <= -(double)TIME_LIMIT) {
        *out = d > 0 ? TIME_LIMIT : -TIME_LIMIT;
        return true;
    }
    int64_t t = (int64_t)d; /* truncates toward zero */
    if (round_up && (double)t < d)
        t++;
    else if (!round_up && (double)t > d)
        t--;
    *out = t;
    return true;
}

/* Reads an optional time claim (0 when absent); false if present but not a number. */
static bool optional_time(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *j = json_object_get(claims, name);
    *out = 0;
    return !j || time_claim(j, true, out);
}

static bool audience_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return json_str_eq(aud, want);
    if (!json_is_array(aud))
        return false;
    size_t i;
    const json_t *el;
    json_array_foreach(aud, i, el) {
        if (json_str_eq(el, want))
            return true;
    }
    return false;
}

static int copy_roles(const json_t *roles, oms_jwt_claims *out, oms_arena *a, oms_error *err)
{
    if (!roles)
        return OMS_OK; /* absent: no roles */
    if (!json_is_array(roles) || json_array_size(roles) > MAX_ROLES)
        return oms_err_set(err, OMS_ETOKEN, "bad roles");
    size_t n = json_array_size(roles);
    if (n == 0)
        return OMS_OK;
    const char **list = oms_arena_alloc(a, n * sizeof *list);
    if (!list)
        return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(roles, i);
        if (!json_is_string(r) || json_string_length(r) > MAX_ROLE_LEN)
            return oms_err_set(err, OMS_ETOKEN, "bad roles");
        list[i] = oms_arena_strndup(a, json_string_value(r), json_string_length(r));
        if (!list[i])
            return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
    }
    out->roles = list;
    out->nroles = n;
    return OMS_OK;
}

/* Reads exp/nbf/iat into `out` and applies the nbf and iat windows; the
 * expiry decision is left to the caller. `now` is already clamped. */
static int check_times(const oms_jwt_verifier *v, const json_t *c, int64_t now,
                       oms_jwt_claims *out, oms_error *err)
{
    const json_t *exp = json_object_get(c, "exp");
    if (!exp)
        return oms_err_set(err, OMS_ETOKEN, "missing exp");
    if (!time_claim(exp, false, &out->exp))
        return oms_err_set(err, OMS_ETOKEN, "bad exp");
    if (!optional_time(c, "nbf", &out->nbf))
        return oms_err_set(err, OMS_ETOKEN, "bad nbf");
    if (!optional_time(c, "iat", &out->iat))
        return oms_err_set(err, OMS_ETOKEN, "bad iat");
    if (json_object_get(c, "nbf") && now + v->leeway < out->nbf)
        return oms_err_set(err, OMS_ETOKEN, "not yet valid");
    if (json_object_get(c, "iat") && out->iat > now + v->leeway)
        return oms_err_set(err, OMS_ETOKEN, "iat in the future");
    return OMS_OK;
}

static int check_claims(const oms_jwt_verifier *v, const json_t *c, int64_t now,
                        oms_jwt_claims *out, oms_arena *a, oms_error *err)
{
    const json_t *sub = json_object_get(c, "sub");
    if (!sub)
        return oms_err_set(err, OMS_ETOKEN, "missing sub");
    size_t sublen = json_string_length(sub); /* 0 for non-strings */
    if (!json_is_string(sub) || sublen == 0 || sublen > MAX_SUB_LEN)
        return oms_err_set(err, OMS_ETOKEN, "bad sub");

    now = clamp_time(now);
    int rc = check_times(v, c, now, out, err);
    if (rc != OMS_OK)
        return rc;
    if (v->issuer && !json_str_eq(json_object_get(c, "iss"), v->issuer))
        return oms_err_set(err, OMS_ETOKEN, "issuer mismatch");
    if (v->audience && !audience_ok(json_object_get(c, "aud"), v->audience))
        return oms_err_set(err, OMS_ETOKEN, "audience mismatch");

    rc = copy_roles(json_object_get(c, "roles"), out, a, err);
    if (rc != OMS_OK)
        return rc;
    if (!(out->sub = oms_arena_strndup(a, json_string_value(sub), sublen)))
        return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");

    /* Last, so EEXPIRED always means "valid but expired". */
    if (now > out->exp + v->leeway)
        return oms_err_set(err, OMS_EEXPIRED, "expired");
    return OMS_OK;
}

int oms_jwt_verify(const oms_jwt_verifier *v, const char *token, size_t len, int64_t now,
                   oms_jwt_claims *out, oms_arena *a, oms_error *err)
{
    memset(out, 0, sizeof *out);
    if (!token || len == 0)
        return oms_err_set(err, OMS_ETOKEN, "empty token");
    if (len > OMS_JWT_MAX_TOKEN)
        return oms_err_set(err, OMS_ETOKEN, "token too large");
    span part[3];
    if (!split_token(token, len, part))
        return oms_err_set(err, OMS_ETOKEN, "malformed token");

    /* Scratch for one decoded part at a time; (len*3)/4 + 1 always fits. */
    unsigned char buf[OMS_JWT_MAX_TOKEN];
    int rc = check_header(v, part[0], buf, err);
    if (rc != OMS_OK)
        return rc;

    long n = decode_part(buf, part[2]);
    if (n < 0)
        return oms_err_set(err, OMS_ETOKEN, "bad base64url");
    /* The signing input is "header.payload", i.e. the token up to the second dot. */
    size_t signed_len = (size_t)(part[2].p - token) - 1;
    if (!signature_ok(v, token, signed_len, buf, (size_t)n))
        return oms_err_set(err, OMS_ETOKEN, "bad signature");

    n = decode_part(buf, part[1]);
    if (n < 0)
        return oms_err_set(err, OMS_ETOKEN, "bad base64url");
    json_t *claims = load_object(buf, (size_t)n);
    if (!claims)
        return oms_err_set(err, OMS_ETOKEN, "bad payload json");
    rc = check_claims(v, claims, now, out, a, err);
    json_decref(claims);
    if (rc != OMS_OK)
        memset(out, 0, sizeof *out); /* never hand out claims of a refused token */
    return rc;
}

/* ---- minting ----------------------------------------------------------- */

static int validate_sign_args(const char *sub, const char *const *roles, size_t nroles,
                              int64_t now, int64_t ttl, oms_error *err)
{
    if (!sub || !*sub || strlen(sub) > MAX_SUB_LEN)
        return oms_err_set(err, OMS_EINVAL, "jwt: sub must be 1..%d bytes", MAX_SUB_LEN);
    if (nroles > MAX_ROLES || (nroles && !roles))
        return oms_err_set(err, OMS_EINVAL, "jwt: at most %d roles", MAX_ROLES);
    for (size_t i = 0; i < nroles; i++)
        if (!roles[i] || strlen(roles[i]) > MAX_ROLE_LEN)
            return oms_err_set(err, OMS_EINVAL, "jwt: role must be at most %d bytes",
                               MAX_ROLE_LEN);
    int64_t exp;
    if (__builtin_add_overflow(now, ttl, &exp))
        return oms_err_set(err, OMS_EINVAL, "jwt: ttl out of range");
    return OMS_OK;
}

/* Adds `val` under `key`, consuming it; false if either failed. */
static bool put(json_t *obj, const char *key, json_t *val)
{
    return val && json_object_set_new(obj, key, val) == 0;
}

static char *claims_json(const char *sub, const char *const *roles, size_t nroles, int64_t now,
                         int64_t ttl, const char *issuer, const char *audience)
{
    char *out = NULL;
    json_t *c = json_object(), *r = json_array();
    if (!c || !r)
        goto cleanup;
    for (size_t i = 0; i < nroles; i++)
        if (json_array_append_new(r, json_string(roles[i])) != 0)
            goto cleanup;
    bool ok = put(c, "sub", json_string(sub)) && put(c, "roles", json_incref(r)) &&
              put(c, "iat", json_integer(now)) && put(c, "nbf", json_integer(now)) &&
              put(c, "exp", json_integer(now + ttl)) &&
              (!issuer || put(c, "iss", json_string(issuer))) &&
              (!audience || put(c, "aud", json_string(audience)));
    if (ok)
        out = json_dumps(c, JSON_COMPACT);
cleanup:
    json_decref(r);
    json_decref(c);
    return out;
}

static size_t b64_cap(size_t n)
{
    return ((n + 2) / 3) * 4 + 1;
}

int oms_jwt_sign_hmac(char **out, oms_jwt_alg alg, const unsigned char *secret, size_t secret_len,
                      const char *sub, const char *const *roles, size_t nroles, int64_t now,
                      int64_t ttl, const char *issuer, const char *audience, oms_error *err)
{
    *out = NULL;
    if (!hmac_digest(alg))
        return oms_err_set(err, OMS_ECONFIG, "jwt: can only mint HMAC tokens");
    if (!secret || secret_len < MIN_HMAC_SECRET)
        return oms_err_set(err, OMS_ECONFIG, "jwt: HMAC secret shorter than %d bytes",
                           MIN_HMAC_SECRET);
    int rc = validate_sign_args(sub, roles, nroles, now, ttl, err);
    if (rc != OMS_OK)
        return rc;

    char header[64];
    int hn = snprintf(header, sizeof header, k_std_headers[0], oms_jwt_alg_name(alg));
    char *tok = NULL;
    hmac_key key = {0};
    char *payload = claims_json(sub, roles, nroles, now, ttl, issuer, audience);
    if (!payload) {
        /* json_string() refuses invalid UTF-8, the likeliest cause */
        rc = oms_err_set(err, OMS_EINVAL, "jwt: cannot encode claims");
        goto cleanup;
    }
    if (!hmac_key_init(&key, alg, secret, secret_len)) {
        rc = oms_err_set(err, OMS_EINTERNAL, "jwt: cannot initialise HMAC");
        goto cleanup;
    }
    size_t plen = strlen(payload);
    tok = malloc(b64_cap((size_t)hn) + b64_cap(plen) + b64_cap(MAX_MAC_LEN) + 2);
    if (!tok) {
        rc = oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
        goto cleanup;
    }
    size_t n = oms_b64url_encode(tok, (const unsigned char *)header, (size_t)hn);
    tok[n++] = '.';
    n += oms_b64url_encode(tok + n, (const unsigned char *)payload, plen);
    unsigned char sig[MAX_MAC_LEN];
    if (!hmac_compute(&key, tok, n, sig)) {
        rc = oms_err_set(err, OMS_EINTERNAL, "jwt: HMAC failed");
        goto cleanup;
    }
    tok[n++] = '.';
    oms_b64url_encode(tok + n, sig, key.len);
    *out = tok;
    tok = NULL;
cleanup:
    free(tok);
    free(payload);
    hmac_key_free(&key);
    return rc;
}
