/* JWT (compact JWS) verification and HMAC minting, SPEC §6.1.
 *
 * Verification order: size cap, split into three parts, header (alg/crit/typ,
 * kid), signature, and only then the payload, so the claims parser never
 * sees unauthenticated bytes. `exp` is checked last so that OMS_EEXPIRED is
 * only reported for tokens that are otherwise entirely valid.
 *
 * The verifier is a handle shared by every worker thread. What a reload may
 * replace (secrets, the PEM key, issuer, audience) lives in an immutable
 * `jwt_state` reached through a hazard-pointer swap (swap.h): a
 * verification takes the current state without a lock, and a reload swaps
 * in a new one and frees the old one when no verification holds it. What
 * never changes (algorithms, the JWKS source, the roles claim, the role
 * map) lives in the handle. All mutable crypto state is created per call. */
#include "auth/jwt.h"

#include <errno.h>
#include <stdatomic.h>
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

#include "auth/jwks.h"
#include "auth/jws.h"
#include "auth/swap.h"
#include "auth/token_memo.h"
#include "util/alloc.h"
#include "util/encoding.h"

#define MIN_HMAC_SECRET 32
#define MAX_SUB_LEN 255
/* Limits of the roles claim: values are roles, or, with a role map, groups
 * (an enterprise user belongs to many, with longer names). */
#define MAX_ROLE_LEN 64
#define MAX_ROLES 64
#define MAX_GROUP_LEN OMS_ROLE_MAP_MAX_GROUP
#define MAX_GROUPS 256
#define MAX_CLAIM_PARTS 8
#define MAX_LEEWAY 86400
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

/* What a reload replaces; immutable once published. */
typedef struct {
    hmac_key key[2]; /* HS*: current and (optional) previous secret */
    EVP_PKEY *pkey;  /* a PEM key (one public-key algorithm) */
    char *issuer;
    char *audience;
    char fp_secret[24], fp_previous[24], fp_pkey[24]; /* "" when absent */
} jwt_state;

struct oms_jwt_verifier {
    oms_swap_ptr cur; /* jwt_state * */
    oms_jwt_alg alg;  /* HMAC: the algorithm; a PEM key: its algorithm */
    unsigned algs;    /* every accepted algorithm */
    oms_jwks *jwks;   /* borrowed */
    int64_t leeway;
    bool fast_header; /* one algorithm, no kid needed: the standard headers shortcut */
    char std_header[N_STD_HEADERS][48];
    char *roles_claim;
    const char *claim_part[MAX_CLAIM_PARTS]; /* into claim_buf */
    size_t nparts;
    char *claim_buf;
    size_t max_roles, max_role_len;
    oms_role_map *role_map;
    uint64_t id; /* never reused: the token memo's key (token_memo.h) */
};

static _Atomic uint64_t g_verifier_ids;

static const struct {
    const char *name;
    oms_jwt_alg alg;
} k_algs[] = {
    {"HS256", OMS_JWT_HS256}, {"HS384", OMS_JWT_HS384}, {"HS512", OMS_JWT_HS512},
    {"RS256", OMS_JWT_RS256}, {"ES256", OMS_JWT_ES256}, {"EdDSA", OMS_JWT_EDDSA},
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

bool oms_jwt_alg_is_hmac(oms_jwt_alg alg)
{
    return hmac_digest(alg) != NULL;
}

int oms_jwt_alg_list_parse(unsigned *mask, oms_jwt_alg *first, const char *list)
{
    *mask = 0;
    if (!list || !*list || strlen(list) > 64)
        return OMS_ECONFIG;
    char buf[72];
    snprintf(buf, sizeof buf, "%s", list);
    bool hmac = false;
    int n = 0;
    for (char *p = buf, *comma; p; p = comma ? comma + 1 : NULL) {
        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        while (*p == ' ')
            p++;
        size_t l = strlen(p);
        while (l && p[l - 1] == ' ')
            p[--l] = '\0';
        oms_jwt_alg a;
        if (oms_jwt_alg_parse(&a, p) != OMS_OK)
            return OMS_ECONFIG;
        if (n++ == 0)
            *first = a;
        hmac |= oms_jwt_alg_is_hmac(a);
        *mask |= OMS_JWT_ALG_BIT(a);
    }
    /* An HMAC algorithm only alone: never beside another one, of any kind. */
    if (hmac && n != 1) {
        *mask = 0;
        return OMS_ECONFIG;
    }
    return OMS_OK;
}

int oms_jwt_roles_claim_check(const char *claim, oms_error *err)
{
    size_t n = claim ? strlen(claim) : 0, parts = 1;
    if (n == 0 || n > 255)
        return oms_err_set(err, OMS_ECONFIG, "JWT_ROLES_CLAIM must be a claim name or a dotted path of 1..255 bytes");
    for (size_t i = 0; i < n; i++) {
        if (claim[i] != '.')
            continue;
        parts++;
        if (i == 0 || i + 1 == n || claim[i + 1] == '.')
            return oms_err_set(err, OMS_ECONFIG, "JWT_ROLES_CLAIM has an empty name in its dotted path");
    }
    if (parts > MAX_CLAIM_PARTS)
        return oms_err_set(err, OMS_ECONFIG, "JWT_ROLES_CLAIM is deeper than %d names", MAX_CLAIM_PARTS);
    return OMS_OK;
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
    if ((rc = oms_jws_key_check(pkey, alg, err)) != OMS_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = oms_err_set(err, OMS_ECONFIG, "jwt: %s: %s", path, why);
    }
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

/* ---- verifier construction --------------------------------------------- */

static unsigned accepted_algs(const oms_jwt_config *cfg)
{
    return cfg->algs ? cfg->algs : OMS_JWT_ALG_BIT(cfg->alg);
}

static int check_config(const oms_jwt_config *cfg, oms_error *err)
{
    if (!oms_jwt_alg_name(cfg->alg))
        return oms_err_set(err, OMS_ECONFIG, "jwt: unknown algorithm");
    if (cfg->leeway < 0 || cfg->leeway > MAX_LEEWAY)
        return oms_err_set(err, OMS_ECONFIG, "jwt: leeway out of range");
    bool have_secret = cfg->secret || cfg->secret_len || cfg->previous_secret ||
                       cfg->previous_secret_len;
    unsigned algs = accepted_algs(cfg);
    /* Key-confusion guard: exactly one kind of key material. */
    if (hmac_digest(cfg->alg)) {
        if (algs != OMS_JWT_ALG_BIT(cfg->alg))
            return oms_err_set(err, OMS_ECONFIG, "jwt: an HMAC algorithm is accepted alone");
        if (cfg->public_key_file || cfg->jwks)
            return oms_err_set(err, OMS_ECONFIG, "jwt: HMAC algorithm with a public key");
        if (!cfg->secret || cfg->secret_len < MIN_HMAC_SECRET)
            return oms_err_set(err, OMS_ECONFIG, "jwt: HMAC secret missing or shorter than %d bytes",
                               MIN_HMAC_SECRET);
        if ((cfg->previous_secret || cfg->previous_secret_len) &&
            (!cfg->previous_secret || cfg->previous_secret_len < MIN_HMAC_SECRET))
            return oms_err_set(err, OMS_ECONFIG, "jwt: previous secret shorter than %d bytes",
                               MIN_HMAC_SECRET);
        return OMS_OK;
    }
    if ((algs & ~OMS_JWT_PUBLIC_ALGS) || !(algs & OMS_JWT_ALG_BIT(cfg->alg)))
        return oms_err_set(err, OMS_ECONFIG, "jwt: public-key and HMAC algorithms together");
    if (have_secret)
        return oms_err_set(err, OMS_ECONFIG, "jwt: public-key algorithm with an HMAC secret");
    bool file = cfg->public_key_file && *cfg->public_key_file;
    if (file == !!cfg->jwks)
        return oms_err_set(err, OMS_ECONFIG, "jwt: a public key file or a JWKS is required (one of them)");
    if (file && algs != OMS_JWT_ALG_BIT(cfg->alg))
        return oms_err_set(err, OMS_ECONFIG, "jwt: a public key file serves exactly one algorithm");
    if (cfg->jwks && (!cfg->issuer || !cfg->audience))
        return oms_err_set(err, OMS_ECONFIG, "jwt: a JWKS needs an issuer and an audience");
    return OMS_OK;
}

static void state_free(jwt_state *st)
{
    if (!st)
        return;
    hmac_key_free(&st->key[0]);
    hmac_key_free(&st->key[1]);
    EVP_PKEY_free(st->pkey);
    free(st->issuer);
    free(st->audience);
    free(st);
}

/* The replaceable part of `cfg`, for the algorithm `alg` of the handle. */
static int state_new(jwt_state **out, oms_jwt_alg alg, const oms_jwt_config *cfg, oms_error *err)
{
    *out = NULL;
    jwt_state *st = oms_xcalloc(1, sizeof *st);
    int rc = OMS_OK;
    if (hmac_digest(alg)) {
        if (!hmac_key_init(&st->key[0], alg, cfg->secret, cfg->secret_len) ||
            (cfg->previous_secret &&
             !hmac_key_init(&st->key[1], alg, cfg->previous_secret, cfg->previous_secret_len))) {
            rc = oms_err_set(err, OMS_ECONFIG, "jwt: cannot initialise HMAC");
            goto cleanup;
        }
        oms_jws_secret_fingerprint(cfg->secret, cfg->secret_len, st->fp_secret);
        if (cfg->previous_secret)
            oms_jws_secret_fingerprint(cfg->previous_secret, cfg->previous_secret_len, st->fp_previous);
    } else if (cfg->public_key_file && *cfg->public_key_file) {
        if ((rc = load_public_key(&st->pkey, cfg->public_key_file, alg, err)) != OMS_OK)
            goto cleanup;
        oms_jws_fingerprint(st->pkey, st->fp_pkey);
    }
    st->issuer = cfg->issuer ? oms_xstrdup(cfg->issuer) : NULL;
    st->audience = cfg->audience ? oms_xstrdup(cfg->audience) : NULL;
    *out = st;
    st = NULL;
cleanup:
    state_free(st);
    return rc;
}

static void setup_std_headers(oms_jwt_verifier *v)
{
    const char *name = oms_jwt_alg_name(v->alg);
    for (int i = 0; i < N_STD_HEADERS; i++) {
        char json[32];
        int n = snprintf(json, sizeof json, k_std_headers[i], name);
        oms_b64url_encode(v->std_header[i], (const unsigned char *)json, (size_t)n);
    }
}

static int setup_roles(oms_jwt_verifier *v, const oms_jwt_config *cfg, oms_error *err)
{
    const char *claim = cfg->roles_claim ? cfg->roles_claim : OMS_JWT_DEFAULT_ROLES_CLAIM;
    int rc = oms_jwt_roles_claim_check(claim, err);
    if (rc)
        return rc;
    v->roles_claim = oms_xstrdup(claim);
    v->claim_buf = oms_xstrdup(claim);
    for (char *save = NULL, *t = strtok_r(v->claim_buf, ".", &save); t; t = strtok_r(NULL, ".", &save))
        v->claim_part[v->nparts++] = t;
    if (cfg->role_map && (rc = oms_role_map_parse(&v->role_map, cfg->role_map, err)) != OMS_OK)
        return rc;
    v->max_roles = v->role_map ? MAX_GROUPS : MAX_ROLES;
    v->max_role_len = v->role_map ? MAX_GROUP_LEN : MAX_ROLE_LEN;
    return OMS_OK;
}

int oms_jwt_verifier_new(oms_jwt_verifier **out, const oms_jwt_config *cfg, oms_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc != OMS_OK)
        return rc;
    oms_jwt_verifier *v = oms_xcalloc(1, sizeof *v);
    v->alg = cfg->alg;
    v->algs = accepted_algs(cfg);
    v->jwks = cfg->jwks;
    v->leeway = cfg->leeway;
    v->id = atomic_fetch_add(&g_verifier_ids, 1) + 1;
    v->fast_header = !cfg->jwks && v->algs == OMS_JWT_ALG_BIT(v->alg);
    setup_std_headers(v);
    jwt_state *st = NULL;
    if ((rc = setup_roles(v, cfg, err)) != OMS_OK || (rc = state_new(&st, v->alg, cfg, err)) != OMS_OK)
        goto cleanup;
    atomic_store(&v->cur, st);
    *out = v;
    return OMS_OK;
cleanup:
    oms_jwt_verifier_free(v);
    return rc;
}

int oms_jwt_verifier_reload(oms_jwt_verifier *v, const oms_jwt_config *cfg, oms_error *err)
{
    /* The fixed parts are the handle's, whatever cfg says. */
    oms_jwt_config c = *cfg;
    c.alg = v->alg;
    c.algs = v->algs;
    c.jwks = v->jwks;
    int rc = check_config(&c, err);
    jwt_state *st = NULL;
    if (rc == OMS_OK)
        rc = state_new(&st, v->alg, &c, err);
    if (rc != OMS_OK)
        return rc;
    state_free(oms_swap_replace(&v->cur, st));
    return OMS_OK;
}

void oms_jwt_verifier_free(oms_jwt_verifier *v)
{
    if (!v)
        return;
    state_free(oms_swap_replace(&v->cur, NULL));
    free(v->roles_claim);
    free(v->claim_buf);
    oms_role_map_free(v->role_map);
    free(v);
}

json_t *oms_jwt_verifier_fingerprints(oms_jwt_verifier *v)
{
    json_t *o = json_object();
    const jwt_state *st = oms_swap_acquire(&v->cur, OMS_SWAP_SLOT_VERIFIER);
    if (st && *st->fp_secret)
        json_object_set_new(o, "JWT_SECRET", json_string(st->fp_secret));
    if (st && *st->fp_previous)
        json_object_set_new(o, "JWT_PREVIOUS_SECRET", json_string(st->fp_previous));
    if (st && *st->fp_pkey)
        json_object_set_new(o, "JWT_PUBLIC_KEY_FILE", json_string(st->fp_pkey));
    oms_swap_release(OMS_SWAP_SLOT_VERIFIER);
    return o;
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

/* What the header says, once checked. */
typedef struct {
    oms_jwt_alg alg;
    bool has_kid;
    size_t kidlen;
    char kid[OMS_JWKS_MAX_KID + 1];
} jose_header;

/* The header's `alg` when it names an accepted algorithm. */
static bool accepted_alg(const oms_jwt_verifier *v, const json_t *alg, oms_jwt_alg *out)
{
    for (size_t i = 0; i < sizeof k_algs / sizeof k_algs[0]; i++)
        if ((v->algs & OMS_JWT_ALG_BIT(k_algs[i].alg)) && json_str_eq(alg, k_algs[i].name)) {
            *out = k_algs[i].alg;
            return true;
        }
    return false;
}

/* `buf` is scratch space for the decoded header. The key-locating header
 * parameters `jku`, `x5u`, `jwk` and `x5c` are ignored: keys only ever come
 * from the configuration (RFC 8725 §3.10). */
static int check_header(const oms_jwt_verifier *v, span h, unsigned char *buf, jose_header *out,
                        oms_error *err)
{
    out->alg = v->alg;
    out->has_kid = false;
    if (v->fast_header && is_std_header(v, h))
        return OMS_OK;
    long len = decode_part(buf, h);
    if (len < 0)
        return oms_err_set(err, OMS_ETOKEN, "bad base64url");
    json_t *hdr = load_object(buf, (size_t)len);
    if (!hdr)
        return oms_err_set(err, OMS_ETOKEN, "bad header json");
    int rc = OMS_OK;
    /* `kid` only means something with a key set; a single secret or key
     * ignores it, as it always did. */
    const json_t *typ = json_object_get(hdr, "typ"), *kid = v->jwks ? json_object_get(hdr, "kid") : NULL;
    if (!accepted_alg(v, json_object_get(hdr, "alg"), &out->alg))
        rc = oms_err_set(err, OMS_ETOKEN, "alg mismatch");
    /* We implement no extensions, so any critical one must be refused (RFC 7515 §4.1.11). */
    else if (json_object_get(hdr, "crit"))
        rc = oms_err_set(err, OMS_ETOKEN, "crit header");
    else if (typ && !json_str_ieq(typ, "JWT") && !json_str_ieq(typ, "at+jwt"))
        rc = oms_err_set(err, OMS_ETOKEN, "bad typ");
    else if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                     json_string_length(kid) > OMS_JWKS_MAX_KID))
        rc = oms_err_set(err, OMS_ETOKEN, "bad kid");
    else if (kid) {
        out->has_kid = true;
        out->kidlen = json_string_length(kid);
        memcpy(out->kid, json_string_value(kid), out->kidlen);
        out->kid[out->kidlen] = '\0';
    }
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

/* The roles claim: a top-level member of exactly that name (names with dots
 * exist, e.g. namespaced claims), else the dotted path. */
static const json_t *roles_claim(const oms_jwt_verifier *v, const json_t *c)
{
    const json_t *j = json_object_get(c, v->roles_claim);
    if (j || v->nparts == 1)
        return j;
    for (size_t i = 0; i < v->nparts && c; i++)
        c = json_object_get(c, v->claim_part[i]); /* NULL for a non-object */
    return c;
}

static int copy_roles(const oms_jwt_verifier *v, const json_t *roles, oms_jwt_claims *out, oms_arena *a,
                      oms_error *err)
{
    if (!roles)
        return OMS_OK; /* absent: no roles */
    if (!json_is_array(roles) || json_array_size(roles) > v->max_roles)
        return oms_err_set(err, OMS_ETOKEN, "bad roles");
    size_t n = json_array_size(roles);
    if (n == 0)
        return OMS_OK;
    const char **list = oms_arena_alloc(a, n * sizeof *list);
    if (!list)
        return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(roles, i);
        if (!json_is_string(r) || json_string_length(r) > v->max_role_len)
            return oms_err_set(err, OMS_ETOKEN, "bad roles");
        list[i] = oms_arena_strndup(a, json_string_value(r), json_string_length(r));
        if (!list[i])
            return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");
    }
    out->groups = list;
    out->ngroups = n;
    return OMS_OK;
}

static int apply_roles(const oms_jwt_verifier *v, const json_t *c, oms_jwt_claims *out, oms_arena *a,
                       oms_error *err)
{
    int rc = copy_roles(v, roles_claim(v, c), out, a, err);
    if (rc != OMS_OK)
        return rc;
    if (!v->role_map) {
        out->roles = out->groups;
        out->nroles = out->ngroups;
        return OMS_OK;
    }
    out->mapped = true;
    return oms_role_map_apply(v->role_map, out->groups, out->ngroups, a, &out->roles, &out->nroles,
                              &out->grants, &out->ngrants, err);
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

static int check_claims(const oms_jwt_verifier *v, const jwt_state *st, const json_t *c, int64_t now,
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
    if (st->issuer && !json_str_eq(json_object_get(c, "iss"), st->issuer))
        return oms_err_set(err, OMS_ETOKEN, "issuer mismatch");
    if (st->audience && !audience_ok(json_object_get(c, "aud"), st->audience))
        return oms_err_set(err, OMS_ETOKEN, "audience mismatch");

    rc = apply_roles(v, c, out, a, err);
    if (rc != OMS_OK)
        return rc;
    if (!(out->sub = oms_arena_strndup(a, json_string_value(sub), sublen)))
        return oms_err_set(err, OMS_ENOMEM, "jwt: out of memory");

    /* Last, so EEXPIRED always means "valid but expired". */
    if (now > out->exp + v->leeway)
        return oms_err_set(err, OMS_EEXPIRED, "expired");
    return OMS_OK;
}

/* The signature, by the configured kind of key. *refetch is set when the
 * key set did not know the key (a remote set may be refetched). */
static int check_signature(const oms_jwt_verifier *v, const jwt_state *st, const jose_header *h, const char *msg,
                           size_t len, const unsigned char *sig, size_t siglen, bool *refetch, oms_error *err)
{
    if (hmac_digest(h->alg)) {
        if (hmac_matches(&st->key[0], msg, len, sig, siglen) ||
            (st->key[1].inner && hmac_matches(&st->key[1], msg, len, sig, siglen)))
            return OMS_OK;
        return oms_err_set(err, OMS_ETOKEN, "bad signature");
    }
    if (!v->jwks)
        return oms_jws_verify(st->pkey, h->alg, msg, len, sig, siglen)
                   ? OMS_OK
                   : oms_err_set(err, OMS_ETOKEN, "bad signature");
    switch (oms_jwks_verify(v->jwks, h->alg, h->has_kid ? h->kid : NULL, h->kidlen, msg, len, sig, siglen)) {
    case OMS_JWKS_VALID:
        return OMS_OK;
    case OMS_JWKS_NO_KEYS:
        *refetch = true;
        return oms_err_set(err, OMS_ETOKEN, "no key set loaded");
    case OMS_JWKS_UNKNOWN_KID:
        *refetch = true;
        return oms_err_set(err, OMS_ETOKEN, "unknown kid");
    case OMS_JWKS_KEY_MISMATCH:
        return oms_err_set(err, OMS_ETOKEN, "kid names a key for another algorithm");
    case OMS_JWKS_AMBIGUOUS:
        return oms_err_set(err, OMS_ETOKEN, "no kid and several keys");
    default:
        return oms_err_set(err, OMS_ETOKEN, "bad signature");
    }
}

/* Inlined into its one caller: HS256 verification is ~3.5 us and a
 * separate frame for this measured ~40 instructions a token (callgrind). */
static inline __attribute__((always_inline)) int verify_with(const oms_jwt_verifier *v, const jwt_state *st,
                                                             const char *token, const span part[3], int64_t now,
                                                             oms_jwt_claims *out, oms_arena *a, bool *refetch,
                                                             oms_error *err)
{
    /* Scratch for one decoded part at a time; (len*3)/4 + 1 always fits. */
    unsigned char buf[OMS_JWT_MAX_TOKEN];
    jose_header h;
    int rc = check_header(v, part[0], buf, &h, err);
    if (rc != OMS_OK)
        return rc;

    long n = decode_part(buf, part[2]);
    if (n < 0)
        return oms_err_set(err, OMS_ETOKEN, "bad base64url");
    /* The signing input is "header.payload", i.e. the token up to the second dot. */
    size_t signed_len = (size_t)(part[2].p - token) - 1;
    if ((rc = check_signature(v, st, &h, token, signed_len, buf, (size_t)n, refetch, err)) != OMS_OK)
        return rc;

    n = decode_part(buf, part[1]);
    if (n < 0)
        return oms_err_set(err, OMS_ETOKEN, "bad base64url");
    json_t *claims = load_object(buf, (size_t)n);
    if (!claims)
        return oms_err_set(err, OMS_ETOKEN, "bad payload json");
    rc = check_claims(v, st, claims, now, out, a, err);
    json_decref(claims);
    return rc;
}

int oms_jwt_verify_full(const oms_jwt_verifier *cv, const char *token, size_t len, int64_t now,
                        oms_jwt_claims *out, oms_arena *a, oms_error *err)
{
    /* Only the swap slot is written through the handle, never the handle. */
    oms_jwt_verifier *v = (oms_jwt_verifier *)cv;
    memset(out, 0, sizeof *out);
    if (!token || len == 0)
        return oms_err_set(err, OMS_ETOKEN, "empty token");
    if (len > OMS_JWT_MAX_TOKEN)
        return oms_err_set(err, OMS_ETOKEN, "token too large");
    span part[3];
    if (!split_token(token, len, part))
        return oms_err_set(err, OMS_ETOKEN, "malformed token");
    for (int attempt = 0;; attempt++) {
        bool refetch = false;
        /* `err` is written only for the final refusal: a success after a
         * refetch leaves the caller's error as it was. */
        oms_error e;
        const jwt_state *st = oms_swap_acquire(&v->cur, OMS_SWAP_SLOT_VERIFIER);
        int rc = verify_with(v, st, token, part, now, out, a, &refetch, &e);
        oms_swap_release(OMS_SWAP_SLOT_VERIFIER);
        if (rc == OMS_OK)
            return OMS_OK;
        memset(out, 0, sizeof *out); /* never hand out claims of a refused token */
        /* An unknown key: one look after a refetch (rate-limited, with no
         * slot held, since the refetch swaps the key set). */
        if (!refetch || attempt > 0 || !oms_jwks_refetch_unknown(v->jwks)) {
            *err = e;
            return rc;
        }
    }
}

int oms_jwt_verify(const oms_jwt_verifier *v, const char *token, size_t len, int64_t now, oms_jwt_claims *out,
                   oms_arena *a, oms_error *err)
{
    if (token && len > 0 && len <= OMS_JWT_MAX_TOKEN &&
        oms_token_memo_get(v->id, token, len, clamp_time(now), v->leeway, out, a))
        return OMS_OK;
    uint64_t generation = oms_swap_generation(); /* before the keys are taken */
    int rc = oms_jwt_verify_full(v, token, len, now, out, a, err);
    if (rc == OMS_OK)
        oms_token_memo_put(v->id, generation, token, len, out);
    return rc;
}

/* ---- minting ----------------------------------------------------------- */

static int validate_sign_args(const oms_jwt_mint_args *m, oms_error *err)
{
    if (!m->sub || !*m->sub || strlen(m->sub) > MAX_SUB_LEN)
        return oms_err_set(err, OMS_EINVAL, "jwt: sub must be 1..%d bytes", MAX_SUB_LEN);
    if (m->nroles > MAX_ROLES || (m->nroles && !m->roles))
        return oms_err_set(err, OMS_EINVAL, "jwt: at most %d roles", MAX_ROLES);
    for (size_t i = 0; i < m->nroles; i++)
        if (!m->roles[i] || strlen(m->roles[i]) > MAX_ROLE_LEN)
            return oms_err_set(err, OMS_EINVAL, "jwt: role must be at most %d bytes",
                               MAX_ROLE_LEN);
    if (m->roles_claim && oms_jwt_roles_claim_check(m->roles_claim, err) != OMS_OK)
        return oms_err_set(err, OMS_EINVAL, "jwt: bad roles claim");
    int64_t exp;
    if (__builtin_add_overflow(m->now, m->ttl, &exp))
        return oms_err_set(err, OMS_EINVAL, "jwt: ttl out of range");
    return OMS_OK;
}

/* Adds `val` under `key`, consuming it; false if either failed. */
static bool put(json_t *obj, const char *key, json_t *val)
{
    return val && json_object_set_new(obj, key, val) == 0;
}

/* Places `roles` at the dotted path `claim` inside `c`. */
static bool put_roles(json_t *c, const char *claim, json_t *roles)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", claim);
    json_t *obj = c;
    char *save = NULL, *part = strtok_r(buf, ".", &save);
    for (char *next; part && (next = strtok_r(NULL, ".", &save)); part = next) {
        json_t *child = json_object_get(obj, part);
        if (!json_is_object(child)) {
            child = json_object();
            if (!put(obj, part, child))
                return false;
        }
        obj = child;
    }
    return part && put(obj, part, json_incref(roles));
}

static char *claims_json(const oms_jwt_mint_args *m)
{
    char *out = NULL;
    json_t *c = json_object(), *r = json_array();
    if (!c || !r)
        goto cleanup;
    for (size_t i = 0; i < m->nroles; i++)
        if (json_array_append_new(r, json_string(m->roles[i])) != 0)
            goto cleanup;
    bool ok = put(c, "sub", json_string(m->sub)) &&
              put_roles(c, m->roles_claim ? m->roles_claim : OMS_JWT_DEFAULT_ROLES_CLAIM, r) &&
              put(c, "iat", json_integer(m->now)) && put(c, "nbf", json_integer(m->now)) &&
              put(c, "exp", json_integer(m->now + m->ttl)) &&
              (!m->issuer || put(c, "iss", json_string(m->issuer))) &&
              (!m->audience || put(c, "aud", json_string(m->audience)));
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

int oms_jwt_mint(char **out, const oms_jwt_mint_args *m, oms_error *err)
{
    *out = NULL;
    if (!hmac_digest(m->alg))
        return oms_err_set(err, OMS_ECONFIG, "jwt: can only mint HMAC tokens");
    if (!m->secret || m->secret_len < MIN_HMAC_SECRET)
        return oms_err_set(err, OMS_ECONFIG, "jwt: HMAC secret shorter than %d bytes",
                           MIN_HMAC_SECRET);
    int rc = validate_sign_args(m, err);
    if (rc != OMS_OK)
        return rc;

    char header[64];
    int hn = snprintf(header, sizeof header, k_std_headers[0], oms_jwt_alg_name(m->alg));
    char *tok = NULL;
    hmac_key key = {0};
    char *payload = claims_json(m);
    if (!payload) {
        /* json_string() refuses invalid UTF-8, the likeliest cause */
        rc = oms_err_set(err, OMS_EINVAL, "jwt: cannot encode claims");
        goto cleanup;
    }
    if (!hmac_key_init(&key, m->alg, m->secret, m->secret_len)) {
        rc = oms_err_set(err, OMS_EINTERNAL, "jwt: cannot initialise HMAC");
        goto cleanup;
    }
    size_t plen = strlen(payload);
    tok = oms_xmalloc(b64_cap((size_t)hn) + b64_cap(plen) + b64_cap(MAX_MAC_LEN) + 2);
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

int oms_jwt_sign_hmac(char **out, oms_jwt_alg alg, const unsigned char *secret, size_t secret_len,
                      const char *sub, const char *const *roles, size_t nroles, int64_t now,
                      int64_t ttl, const char *issuer, const char *audience, oms_error *err)
{
    oms_jwt_mint_args m = {.alg = alg, .secret = secret, .secret_len = secret_len, .sub = sub, .roles = roles,
                           .nroles = nroles, .now = now, .ttl = ttl, .issuer = issuer, .audience = audience};
    return oms_jwt_mint(out, &m, err);
}
