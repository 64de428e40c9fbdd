/* Unit tests for key sets (src/auth/jwks.c), public-key signatures
 * (src/auth/jws.c), the role map, replaceable verifier state and the
 * identity settings (SPEC §6.1).
 *
 * The signature cases follow the Wycheproof style: for each algorithm, a
 * valid signature beside its edge cases (wrong lengths, r/s = 0, r/s >= n,
 * S >= L, high-S, DER instead of JWS's raw r||s, trailing bytes, a modulus
 * under 2048 bits), each built here from a real signature so that only the
 * property under test is wrong. Every key reaches the verifier through a
 * JWKS, the way an identity provider's keys do. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/jwks.h"
#include "auth/jws.h"
#include "auth/jwt.h"
#include "auth/role_map.h"
#include "auth/config_rules.h"
#include "infra/config.h"
#include "t.h"
#include "util/encoding.h"

#define NOW 1700000000LL
#define ISS "https://idp.example.com/realms/oms"
#define AUD "oms-api"

static const char P256_ORDER[] = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
/* L = 2^252 + 27742317777372353535851937790883648493, little-endian */
static const unsigned char ED25519_L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                            0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                                            0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

/* ---- keys and JWKs ------------------------------------------------------ */

static EVP_PKEY *g_rsa, *g_rsa2, *g_ec, *g_ec2, *g_ed, *g_rsa1024, *g_ec384, *g_ed448;

static char *b64(const void *data, size_t len)
{
    char *s = malloc(((len + 2) / 3) * 4 + 1);
    oms_b64url_encode(s, data, len);
    return s;
}

static char *bn_b64(const BIGNUM *bn, int pad)
{
    unsigned char buf[2048];
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    return b64(buf, (size_t)n);
}

/* The public JWK of `k` with `extra` members ("" or ",\"use\":\"sig\""). */
static char *jwk(EVP_PKEY *k, const char *kid, const char *extra)
{
    char *out = malloc(8192), *a = NULL, *b = NULL;
    char kidm[300] = "";
    if (kid)
        snprintf(kidm, sizeof kidm, ",\"kid\":\"%s\"", kid);
    if (EVP_PKEY_is_a(k, "RSA")) {
        BIGNUM *n = NULL, *e = NULL;
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
        a = bn_b64(n, 0);
        b = bn_b64(e, 0);
        snprintf(out, 8192, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s%s}", a, b, kidm, extra);
        BN_free(n);
        BN_free(e);
    } else if (EVP_PKEY_is_a(k, "EC")) {
        BIGNUM *x = NULL, *y = NULL;
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
        int len = EVP_PKEY_get_bits(k) > 256 ? 48 : 32;
        a = bn_b64(x, len);
        b = bn_b64(y, len);
        snprintf(out, 8192, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s%s}",
                 len == 32 ? "P-256" : "P-384", a, b, kidm, extra);
        BN_free(x);
        BN_free(y);
    } else {
        unsigned char raw[64];
        size_t rl = sizeof raw;
        EVP_PKEY_get_raw_public_key(k, raw, &rl);
        a = b64(raw, rl);
        snprintf(out, 8192, "{\"kty\":\"OKP\",\"crv\":\"%s\",\"x\":\"%s\"%s%s}",
                 EVP_PKEY_is_a(k, "ED25519") ? "Ed25519" : "Ed448", a, kidm, extra);
    }
    free(a);
    free(b);
    return out;
}

/* {"keys":[a, b, ...]} from JWK strings (freed). */
static char *jwks_of(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    char *out = malloc(65536);
    size_t off = (size_t)snprintf(out, 65536, "{\"keys\":[");
    for (int i = 0; i < n; i++) {
        char *k = va_arg(ap, char *);
        off += (size_t)snprintf(out + off, 65536 - off, "%s%s", i ? "," : "", k);
        free(k);
    }
    snprintf(out + off, 65536 - off, "]}");
    va_end(ap);
    return out;
}

/* ---- a verifier reading a JWKS file ------------------------------------- */

typedef struct {
    char path[64];
    oms_jwks *jwks;
    oms_jwt_verifier *v;
} fixture;

static void write_file(const char *path, const char *text)
{
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    rename(tmp, path); /* atomic, as the docs ask of operators */
}

/* 0 when the set loaded and a verifier was made; else the error code. */
static int fixture_open(fixture *fx, const char *jwks_text, unsigned algs, const char *role_map,
                        const char *roles_claim)
{
    memset(fx, 0, sizeof *fx);
    strcpy(fx->path, "/tmp/oms_test_jwks_XXXXXX");
    close(mkstemp(fx->path));
    write_file(fx->path, jwks_text);
    oms_error err = {0};
    oms_jwks_config kc = {.file = fx->path, .algs = algs};
    int rc = oms_jwks_new(&fx->jwks, &kc, &err);
    if (rc == OMS_OK)
        rc = oms_jwks_load(fx->jwks, "start", &err);
    if (rc != OMS_OK)
        return rc;
    oms_jwt_config cfg = {.alg = OMS_JWT_RS256, .algs = algs, .jwks = fx->jwks, .issuer = ISS, .audience = AUD,
                          .role_map = role_map, .roles_claim = roles_claim, .leeway = OMS_JWT_LEEWAY};
    for (int a = OMS_JWT_RS256; a <= OMS_JWT_EDDSA; a++)
        if (algs & OMS_JWT_ALG_BIT(a)) {
            cfg.alg = (oms_jwt_alg)a;
            break;
        }
    rc = oms_jwt_verifier_new(&fx->v, &cfg, &err);
    if (rc != OMS_OK)
        fprintf(stderr, "  verifier: %s\n", err.msg);
    return rc;
}

static void fixture_close(fixture *fx)
{
    oms_jwt_verifier_free(fx->v);
    oms_jwks_free(fx->jwks);
    unlink(fx->path);
}

static const unsigned ALL = OMS_JWT_PUBLIC_ALGS;

/* ---- signing ------------------------------------------------------------ */

static char *signing_input(const char *header, const char *payload)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
    char *s = malloc(strlen(h) + strlen(p) + 2);
    sprintf(s, "%s.%s", h, p);
    free(h);
    free(p);
    return s;
}

/* The JWS signature bytes of `input` (ES256: raw r||s), into sig. */
static size_t sign_raw(EVP_PKEY *k, const char *input, unsigned char *sig, size_t cap)
{
    unsigned char der[1024];
    size_t len = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const EVP_MD *h = EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448") ? NULL : EVP_sha256();
    CHECK(EVP_DigestSignInit(md, NULL, h, NULL, k) == 1);
    CHECK(EVP_DigestSign(md, der, &len, (const unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(md);
    if (!EVP_PKEY_is_a(k, "EC")) {
        memcpy(sig, der, len);
        return len;
    }
    const unsigned char *q = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)len);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    CHECK(cap >= 64);
    BN_bn2binpad(r, sig, 32);
    BN_bn2binpad(s, sig + 32, 32);
    ECDSA_SIG_free(es);
    return 64;
}

static char *assemble(const char *input, const unsigned char *sig, size_t siglen)
{
    char *s = b64(sig, siglen);
    char *tok = malloc(strlen(input) + strlen(s) + 2);
    sprintf(tok, "%s.%s", input, s);
    free(s);
    return tok;
}

static char g_payload[16384];

static const char *payload(const char *extra)
{
    snprintf(g_payload, sizeof g_payload, "{\"sub\":\"alice\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld%s%s}", ISS,
             AUD, NOW + 600, *extra ? "," : "", extra);
    return g_payload;
}

static char *token(EVP_PKEY *k, const char *header, const char *pl)
{
    char *in = signing_input(header, pl);
    unsigned char sig[1024];
    size_t n = sign_raw(k, in, sig, sizeof sig);
    char *tok = assemble(in, sig, n);
    free(in);
    return tok;
}

static int verify(const oms_jwt_verifier *v, const char *tok, oms_error *err)
{
    oms_arena *a = oms_arena_new(4096);
    oms_jwt_claims c;
    oms_error tmp;
    int rc = oms_jwt_verify(v, tok, strlen(tok), NOW, &c, a, err ? err : &tmp);
    oms_arena_free(a);
    return rc;
}

/* Verifies "input.b64(sig)" built from raw signature bytes. */
static int verify_sig(const oms_jwt_verifier *v, const char *input, const unsigned char *sig, size_t n,
                      oms_error *err)
{
    char *tok = assemble(input, sig, n);
    int rc = verify(v, tok, err);
    free(tok);
    return rc;
}

/* ---- key sets ----------------------------------------------------------- */

/* Tokens from three keys of three algorithms, each chosen by its kid. */
static void three_algorithms_by_kid(void)
{
    fixture fx;
    char *set = jwks_of(3, jwk(g_rsa, "r1", ""), jwk(g_ec, "e1", ",\"use\":\"sig\",\"alg\":\"ES256\""),
                        jwk(g_ed, "o1", ",\"key_ops\":[\"verify\"]"));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, NULL, NULL), OMS_OK);
    oms_error err = {0};
    struct {
        EVP_PKEY *k;
        const char *hdr;
    } ok[] = {{g_rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}"},
              {g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}"},
              {g_ed, "{\"alg\":\"EdDSA\",\"kid\":\"o1\"}"}};
    for (size_t i = 0; i < 3; i++) {
        for (int rep = 0; rep < 4; rep++) { /* ECDSA: r or s with leading zero bytes happen */
            char *t = token(ok[i].k, ok[i].hdr, payload("\"roles\":[\"developer\"]"));
            oms_arena *a = oms_arena_new(1024);
            oms_jwt_claims c;
            CHECK_EQ_INT(oms_jwt_verify(fx.v, t, strlen(t), NOW, &c, a, &err), OMS_OK);
            if (c.sub) {
                CHECK_EQ_STR(c.sub, "alice");
                CHECK_EQ_INT(c.nroles, 1);
            }
            oms_arena_free(a);
            free(t);
        }
    }
    /* Issuer and audience are always checked with a key set. */
    char pl[512];
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"iss\":\"https://evil\",\"aud\":\"%s\",\"exp\":%lld}", AUD, NOW + 60);
    char *t = token(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pl);
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "issuer mismatch");
    free(t);
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"iss\":\"%s\",\"aud\":\"other-app\",\"exp\":%lld}", ISS, NOW + 60);
    t = token(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pl);
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "audience mismatch");
    free(t);
    /* The same key from a PEM and from a JWK has the same fingerprint. */
    json_t *keys = oms_jwks_describe(fx.jwks);
    char fp[24];
    oms_jws_fingerprint(g_rsa, fp);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(keys, 0), "sha256")), fp + 7);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(keys, 0), "key")), "RSA 2048");
    json_decref(keys);
    free(set);
    fixture_close(&fx);
}

/* A kid that names a key of another type, an unknown kid, no kid. */
static void kid_and_algorithm_must_agree(void)
{
    fixture fx;
    char *set = jwks_of(3, jwk(g_rsa, "r1", ""), jwk(g_ec, "e1", ""), jwk(g_ed, "o1", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, NULL, NULL), OMS_OK);
    oms_error err = {0};
    /* RS256 header naming the EC key (signed by RSA, and by EC). */
    char *t = token(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"e1\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "kid names a key for another algorithm");
    free(t);
    t = token(g_ec, "{\"alg\":\"RS256\",\"kid\":\"e1\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    free(t);
    /* ES256 header naming the RSA key, EdDSA header naming the EC key. */
    t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"r1\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    free(t);
    t = token(g_ed, "{\"alg\":\"EdDSA\",\"kid\":\"e1\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    free(t);
    /* Unknown kid; a key set from a file is not refetched. */
    t = token(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"nope\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "unknown kid");
    free(t);
    /* No kid: the one key for the algorithm. */
    t = token(g_ec, "{\"alg\":\"ES256\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_OK);
    free(t);
    /* A kid that is not a string. */
    t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":7}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad kid");
    free(t);
    free(set);
    fixture_close(&fx);

    /* Two RSA keys: a token without kid is ambiguous, with kid fine. */
    set = jwks_of(2, jwk(g_rsa, "r1", ""), jwk(g_rsa2, "r2", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, NULL, NULL), OMS_OK);
    t = token(g_rsa2, "{\"alg\":\"RS256\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "no kid and several keys");
    free(t);
    t = token(g_rsa2, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_OK);
    free(t);
    /* r2's signature under r1's kid */
    t = token(g_rsa2, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    free(t);
    free(set);
    fixture_close(&fx);
}

/* JWT_ALGORITHM bounds what is accepted: the token's alg never chooses a
 * verifier outside it. */
static void configured_algorithms_bound_the_token(void)
{
    fixture fx;
    char *set = jwks_of(2, jwk(g_rsa, "r1", ""), jwk(g_ec, "e1", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, OMS_JWT_ALG_BIT(OMS_JWT_RS256), NULL, NULL), OMS_OK);
    oms_error err = {0};
    char *t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "alg mismatch");
    free(t);
    /* The EC key was left out of the set, with the reason. */
    json_t *keys = oms_jwks_describe(fx.jwks);
    CHECK_EQ_INT(json_array_size(keys), 1);
    json_decref(keys);
    /* HS256 "signed" with the RSA key's public bytes: the classic confusion. */
    unsigned char *der = NULL;
    int dlen = i2d_PUBKEY(g_rsa, &der);
    const char *hdrs[] = {"{\"alg\":\"HS256\",\"kid\":\"r1\"}", "{\"alg\":\"HS256\"}"};
    for (size_t i = 0; i < 2; i++) {
        char *in = signing_input(hdrs[i], payload(""));
        unsigned char mac[32];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), der, dlen, (const unsigned char *)in, strlen(in), mac, &ml);
        CHECK_EQ_INT(verify_sig(fx.v, in, mac, ml, &err), OMS_ETOKEN);
        CHECK_EQ_STR(err.msg, "alg mismatch");
        free(in);
    }
    OPENSSL_free(der);
    /* alg none, and case variants of RS256 */
    const char *bad[] = {"{\"alg\":\"none\",\"kid\":\"r1\"}", "{\"alg\":\"rs256\",\"kid\":\"r1\"}",
                         "{\"kid\":\"r1\"}", "{\"alg\":[\"RS256\"],\"kid\":\"r1\"}"};
    for (size_t i = 0; i < 4; i++) {
        char *in = signing_input(bad[i], payload(""));
        unsigned char sig[512];
        size_t n = sign_raw(g_rsa, in, sig, sizeof sig);
        CHECK_EQ_INT(verify_sig(fx.v, in, sig, n, &err), OMS_ETOKEN);
        CHECK_EQ_STR(err.msg, "alg mismatch");
        CHECK_EQ_INT(verify_sig(fx.v, in, sig, 0, &err), OMS_ETOKEN); /* "h.p." */
        free(in);
    }
    free(set);
    fixture_close(&fx);
}

/* jku, x5u, jwk and x5c never supply a key: an attacker's key embedded in
 * the header verifies nothing, and the legitimate key still decides. */
static void key_locating_headers_are_ignored(void)
{
    fixture fx;
    char *set = jwks_of(1, jwk(g_rsa, "r1", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, NULL, NULL), OMS_OK);
    oms_error err = {0};
    char *attacker = jwk(g_rsa2, "r1", "");
    char hdr[8192];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"jwk\":%s}", attacker);
    char *t = token(g_rsa2, hdr, payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    free(t);
    snprintf(hdr, sizeof hdr,
             "{\"alg\":\"RS256\",\"kid\":\"evil\",\"jku\":\"http://127.0.0.1:1/jwks\",\"x5u\":\"http://127.0.0.1:1/c\"}");
    t = token(g_rsa2, hdr, payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "unknown kid");
    free(t);
    /* Signed by the real key, with the headers present: they change nothing. */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"jwk\":%s,\"jku\":\"https://x/\",\"x5c\":[\"AA\"]}",
             attacker);
    t = token(g_rsa, hdr, payload(""));
    CHECK_EQ_INT(verify(fx.v, t, &err), OMS_OK);
    free(t);
    free(attacker);
    free(set);
    fixture_close(&fx);
}

static const char *skipped_reason(const oms_keyset *ks, size_t i)
{
    return json_string_value(json_object_get(json_array_get(ks->skipped, i), "reason"));
}

/* Which JWKs are usable, which are left out and why, which sets are refused. */
static void jwk_members_are_checked(void)
{
    oms_keyset *ks = NULL;
    oms_error err = {0};
    char *set = jwks_of(12, jwk(g_rsa, "ok", ""), jwk(g_rsa2, "enc", ",\"use\":\"enc\""),
                        jwk(g_rsa2, "ops", ",\"key_ops\":[\"encrypt\"]"), jwk(g_rsa2, "a384", ",\"alg\":\"RS384\""),
                        jwk(g_rsa2, "aES", ",\"alg\":\"ES256\""), jwk(g_ec384, "p384", ""),
                        jwk(g_ed448, "ed448", ""), jwk(g_rsa1024, "small", ""),
                        strdup("{\"kty\":\"oct\",\"kid\":\"sym\"}"),
                        strdup("{\"kty\":\"RSA\",\"kid\":\"even\",\"n\":\"AQAB\",\"e\":\"AAI\"}"),
                        strdup("{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"off\","
                               "\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                               "\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}"),
                        strdup("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"short\",\"x\":\"AAAA\"}"));
    CHECK_EQ_INT(oms_keyset_parse(&ks, set, strlen(set), ALL, &err), OMS_OK);
    if (ks) {
        CHECK_EQ_INT(ks->n, 1);
        CHECK_EQ_STR(ks->keys[0].kid, "ok");
        CHECK_EQ_INT(json_array_size(ks->skipped), 11);
        CHECK_EQ_STR(skipped_reason(ks, 0), "use is not sig");
        CHECK_EQ_STR(skipped_reason(ks, 1), "key_ops without verify");
        CHECK_EQ_STR(skipped_reason(ks, 2), "alg does not match the key type (or is not supported)");
        CHECK_EQ_STR(skipped_reason(ks, 3), "alg does not match the key type (or is not supported)");
        CHECK_EQ_STR(skipped_reason(ks, 4), "EC key not on P-256");
        CHECK_EQ_STR(skipped_reason(ks, 5), "OKP key not on Ed25519");
        CHECK_EQ_STR(skipped_reason(ks, 6), "RSA modulus shorter than 2048 bits");
        CHECK_EQ_STR(skipped_reason(ks, 7), "unsupported kty");
        CHECK_EQ_STR(skipped_reason(ks, 8), "RSA modulus shorter than 2048 bits");
        CHECK_EQ_STR(skipped_reason(ks, 9), "EC point not on P-256");
        CHECK_EQ_STR(skipped_reason(ks, 10), "Ed25519 key without a 32-byte x");
    }
    oms_keyset_free(ks);
    free(set);

    /* An exponent that is even, or 1. */
    BIGNUM *n = NULL;
    EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_N, &n);
    char *nb = bn_b64(n, 0);
    BN_free(n);
    const char *exps[] = {"AAI", "AQ", "AQAAAAAAAAAB"}; /* 2, 1, 2^64+1 */
    for (size_t i = 0; i < 3; i++) {
        char k[4096];
        snprintf(k, sizeof k, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}]}", nb, exps[i]);
        ks = NULL;
        CHECK_EQ_INT(oms_keyset_parse(&ks, k, strlen(k), ALL, &err), OMS_EINVAL);
        CHECK(ks == NULL);
    }
    free(nb);

    /* Refused whole: private key material, not a JWKS, nothing usable. */
    char *priv = jwks_of(2, jwk(g_rsa, "ok", ""), jwk(g_ec, "p", ",\"d\":\"AAAA\""));
    CHECK_EQ_INT(oms_keyset_parse(&ks, priv, strlen(priv), ALL, &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "private key material") != NULL);
    free(priv);
    const char *bad[] = {"", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[]}", "{\"keys\":[1,\"a\",null]}",
                         "{\"keys\":[{\"kty\":\"RSA\"}]}", "{\"keys\":[],\"keys\":[]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ks = NULL;
        CHECK_EQ_INT(oms_keyset_parse(&ks, bad[i], strlen(bad[i]), ALL, &err), OMS_EINVAL);
        CHECK(ks == NULL);
    }
    /* Only keys for the configured algorithms count. */
    set = jwks_of(1, jwk(g_ec, "e1", ""));
    CHECK_EQ_INT(oms_keyset_parse(&ks, set, strlen(set), OMS_JWT_ALG_BIT(OMS_JWT_RS256), &err), OMS_EINVAL);
    CHECK(strstr(err.msg, "no usable key") != NULL);
    free(set);
}

/* ---- Wycheproof-style signature cases ------------------------------------ */

static oms_jwt_verifier *single_key(fixture *fx, EVP_PKEY *k, const char *kid)
{
    char *set = jwks_of(1, jwk(k, kid, ""));
    int rc = fixture_open(fx, set, ALL, NULL, NULL);
    free(set);
    CHECK_EQ_INT(rc, OMS_OK);
    return fx->v;
}

static void rs256_signature_cases(void)
{
    fixture fx;
    oms_jwt_verifier *v = single_key(&fx, g_rsa, "r1");
    oms_error err = {0};
    char *in = signing_input("{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload(""));
    unsigned char sig[600], bad[600];
    size_t n = sign_raw(g_rsa, in, sig, sizeof sig);
    CHECK_EQ_INT(n, 256);
    CHECK_EQ_INT(verify_sig(v, in, sig, n, &err), OMS_OK);

    /* wrong lengths: one short (leading byte dropped), one long (zero in front,
     * the same integer), trailing garbage, empty */
    CHECK_EQ_INT(verify_sig(v, in, sig + 1, n - 1, &err), OMS_ETOKEN);
    bad[0] = 0;
    memcpy(bad + 1, sig, n);
    CHECK_EQ_INT(verify_sig(v, in, bad, n + 1, &err), OMS_ETOKEN);
    memcpy(bad, sig, n);
    bad[n] = 0;
    CHECK_EQ_INT(verify_sig(v, in, bad, n + 1, &err), OMS_ETOKEN);
    /* zero, one, n, n + 1, all ones: values outside [1, n-1] or no valid padding */
    BIGNUM *mod = NULL;
    EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_N, &mod);
    memset(bad, 0, n);
    CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
    bad[n - 1] = 1;
    CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
    BN_bn2binpad(mod, bad, (int)n);
    CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
    BN_add_word(mod, 1);
    BN_bn2binpad(mod, bad, (int)n);
    CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
    memset(bad, 0xff, n);
    CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
    BN_free(mod);
    /* every bit of the first and last byte flipped, one at a time */
    for (int bit = 0; bit < 8; bit++) {
        memcpy(bad, sig, n);
        bad[0] ^= (unsigned char)(1 << bit);
        CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
        memcpy(bad, sig, n);
        bad[n - 1] ^= (unsigned char)(1 << bit);
        CHECK_EQ_INT(verify_sig(v, in, bad, n, &err), OMS_ETOKEN);
    }
    /* the right key, but PKCS#1 v1.5 over SHA-1 / SHA-512, and PSS over SHA-256 */
    const EVP_MD *mds[] = {EVP_sha1(), EVP_sha512()};
    for (int i = 0; i < 3; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        size_t len = sizeof bad;
        CHECK(EVP_DigestSignInit(md, &pctx, i < 2 ? mds[i] : EVP_sha256(), NULL, g_rsa) == 1);
        if (i == 2)
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        CHECK(EVP_DigestSign(md, bad, &len, (const unsigned char *)in, strlen(in)) == 1);
        EVP_MD_CTX_free(md);
        CHECK_EQ_INT(verify_sig(v, in, bad, len, &err), OMS_ETOKEN);
    }
    /* a signature over other bytes */
    char *other = signing_input("{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload("\"roles\":[\"admin\"]"));
    CHECK_EQ_INT(verify_sig(v, other, sig, n, &err), OMS_ETOKEN);
    free(other);
    free(in);
    fixture_close(&fx);

    /* A modulus under 2048 bits is refused, from a JWKS or a PEM file. */
    char *set = jwks_of(1, jwk(g_rsa1024, "small", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, NULL, NULL), OMS_EUNAVAIL);
    free(set);
    fixture_close(&fx);
    CHECK_EQ_INT(oms_jws_key_check(g_rsa1024, OMS_JWT_RS256, &err), OMS_ECONFIG);
    CHECK_EQ_INT(oms_jws_key_check(g_rsa, OMS_JWT_RS256, &err), OMS_OK);
}

/* r||s helpers: the signature's halves as numbers. */
static void put_half(unsigned char *dst, const BIGNUM *v)
{
    BN_bn2binpad(v, dst, 32);
}

static void es256_signature_cases(void)
{
    fixture fx;
    oms_jwt_verifier *v = single_key(&fx, g_ec, "e1");
    oms_error err = {0};
    char *in = signing_input("{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload(""));
    unsigned char sig[64], bad[128];
    CHECK_EQ_INT(sign_raw(g_ec, in, sig, sizeof sig), 64);
    CHECK_EQ_INT(verify_sig(v, in, sig, 64, &err), OMS_OK);
    BIGNUM *order = NULL, *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL), *t = BN_new();
    BN_hex2bn(&order, P256_ORDER);

    /* High-S: (r, n - s) is the other valid signature of the same message.
     * ECDSA accepts both and so do we (docs/identity.md "Signatures"). */
    BN_sub(t, order, s);
    memcpy(bad, sig, 32);
    put_half(bad + 32, t);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_OK);
    /* ... and it is really the other form: exactly one of s and n - s is low. */
    BIGNUM *half = BN_new();
    BN_rshift1(half, order);
    CHECK((BN_cmp(s, half) > 0) != (BN_cmp(t, half) > 0));
    BN_free(half);

    /* r = 0, s = 0, both 0 */
    memset(bad, 0, 64);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    memset(bad, 0, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    memset(bad + 32, 0, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    /* r = n, s = n, r + n and s + n do not fit 32 bytes; r = n + r mod 2^256
     * is not possible either, so also r = 2^256 - 1 and s = 2^256 - 1 */
    memcpy(bad, sig, 64);
    put_half(bad, order);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    put_half(bad + 32, order);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    memset(bad, 0xff, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    memset(bad + 32, 0xff, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    /* r and s with n added where it still fits: r' = r + n when r < 2^256 - n */
    BN_add(t, r, order);
    if (BN_num_bytes(t) <= 32) {
        memcpy(bad, sig, 64);
        put_half(bad, t);
        CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    }
    BN_add(t, s, order);
    if (BN_num_bytes(t) <= 32) {
        memcpy(bad, sig, 64);
        put_half(bad + 32, t);
        CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    }
    /* r and s swapped */
    memcpy(bad, sig + 32, 32);
    memcpy(bad + 32, sig, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);

    /* lengths: 63, 65 (trailing byte), 96, 0 */
    CHECK_EQ_INT(verify_sig(v, in, sig, 63, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    bad[64] = 0;
    CHECK_EQ_INT(verify_sig(v, in, bad, 65, &err), OMS_ETOKEN);
    memset(bad + 64, 0, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 96, &err), OMS_ETOKEN);

    /* DER, as OpenSSL emits it: not a JWS signature */
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_dup(r), BN_dup(s));
    unsigned char *der = NULL;
    int dlen = i2d_ECDSA_SIG(es, &der);
    CHECK(dlen > 64);
    CHECK_EQ_INT(verify_sig(v, in, der, (size_t)dlen, &err), OMS_ETOKEN);
    /* ... nor the DER bytes cut or padded to 64 */
    unsigned char d64[64] = {0};
    memcpy(d64, der, dlen < 64 ? (size_t)dlen : 64);
    CHECK_EQ_INT(verify_sig(v, in, d64, 64, &err), OMS_ETOKEN);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);

    /* the other EC key's valid signature under this kid */
    unsigned char other[64];
    sign_raw(g_ec2, in, other, sizeof other);
    CHECK_EQ_INT(verify_sig(v, in, other, 64, &err), OMS_ETOKEN);
    BN_free(order);
    BN_free(r);
    BN_free(s);
    BN_free(t);
    free(in);
    fixture_close(&fx);
}

/* a += b over 32-byte little-endian numbers (no overflow for S + L). */
static void le_add(unsigned char *a, const unsigned char *b)
{
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned x = (unsigned)a[i] + b[i] + carry;
        a[i] = (unsigned char)x;
        carry = x >> 8;
    }
}

static void eddsa_signature_cases(void)
{
    fixture fx;
    oms_jwt_verifier *v = single_key(&fx, g_ed, "o1");
    oms_error err = {0};
    char *in = signing_input("{\"alg\":\"EdDSA\",\"kid\":\"o1\"}", payload(""));
    unsigned char sig[64], bad[128];
    CHECK_EQ_INT(sign_raw(g_ed, in, sig, sizeof sig), 64);
    CHECK_EQ_INT(verify_sig(v, in, sig, 64, &err), OMS_OK);
    /* S + L: the same S modulo L, but not canonical (RFC 8032 §5.1.7 requires S < L) */
    memcpy(bad, sig, 64);
    le_add(bad + 32, ED25519_L);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    /* S = L, S = 2^256 - 1, R = 0 and S = 0 */
    memcpy(bad, sig, 32);
    memcpy(bad + 32, ED25519_L, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memset(bad + 32, 0xff, 32);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memset(bad, 0, 64);
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    /* lengths and trailing bytes */
    CHECK_EQ_INT(verify_sig(v, in, sig, 63, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    bad[64] = 0;
    CHECK_EQ_INT(verify_sig(v, in, bad, 65, &err), OMS_ETOKEN);
    CHECK_EQ_INT(verify_sig(v, in, sig, 32, &err), OMS_ETOKEN);
    /* each half tampered */
    memcpy(bad, sig, 64);
    bad[5] ^= 1;
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    memcpy(bad, sig, 64);
    bad[40] ^= 1;
    CHECK_EQ_INT(verify_sig(v, in, bad, 64, &err), OMS_ETOKEN);
    free(in);
    fixture_close(&fx);
}

/* ---- sharing and swapping under load ------------------------------------- */

typedef struct {
    const oms_jwt_verifier *v;
    const char *tok[2];
    atomic_bool *stop;
    long failures, done;
} load_arg;

static void *verify_loop(void *p)
{
    load_arg *a = p;
    oms_arena *ar = oms_arena_new(4096);
    while (!atomic_load(a->stop) || a->done < 200) {
        const char *t = a->tok[a->done & 1];
        oms_jwt_claims c;
        oms_error err;
        if (oms_jwt_verify(a->v, t, strlen(t), NOW, &c, ar, &err) != OMS_OK)
            a->failures++;
        a->done++;
        if ((a->done & 63) == 0) {
            oms_arena_free(ar);
            ar = oms_arena_new(4096);
        }
    }
    oms_arena_free(ar);
    return NULL;
}

/* Key sets swapped under readers: tokens of a key present in every
 * version never fail, and (under ASan) no set is freed while in use. */
static void keyset_swap_under_load(void)
{
    fixture fx;
    char *a = jwks_of(2, jwk(g_rsa, "r1", ""), jwk(g_ec, "e1", ""));
    char *b = jwks_of(3, jwk(g_ec, "e1", ""), jwk(g_ed, "o1", ""), jwk(g_rsa, "r1", ""));
    CHECK_EQ_INT(fixture_open(&fx, a, ALL, NULL, NULL), OMS_OK);
    char *t1 = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload(""));
    char *t2 = token(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload(""));
    atomic_bool stop = false;
    load_arg args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (load_arg){fx.v, {t1, t2}, &stop, 0, 0};
        pthread_create(&th[i], NULL, verify_loop, &args[i]);
    }
    oms_error err;
    for (int i = 0; i < 200; i++) {
        write_file(fx.path, (i & 1) ? a : b);
        CHECK_EQ_INT(oms_jwks_load(fx.jwks, "test", &err), OMS_OK);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
        CHECK(args[i].done >= 200);
    }
    /* a bad file keeps the last good set */
    write_file(fx.path, "{\"keys\":");
    CHECK_EQ_INT(oms_jwks_load(fx.jwks, "test", &err), OMS_EUNAVAIL);
    CHECK_EQ_INT(verify(fx.v, t1, &err), OMS_OK);
    free(t1);
    free(t2);
    free(a);
    free(b);
    fixture_close(&fx);
}

static const char SECRET_A[] = "a-first-secret-0123456789-abcdefghij";
static const char SECRET_B[] = "b-second-secret-9876543210-qrstuvwxyz";

static char *mint(const char *secret)
{
    char *t = NULL;
    oms_error err;
    oms_jwt_sign_hmac(&t, OMS_JWT_HS256, (const unsigned char *)secret, strlen(secret), "alice", NULL, 0, NOW, 600,
                      NULL, NULL, &err);
    return t;
}

/* The HMAC rotation, in-process: secret A, then B with A as the previous
 * one (swapped repeatedly under readers: A's tokens never fail), then B
 * alone (A's tokens fail, B's pass). A failed reload changes nothing. */
static void hmac_reload_under_load(void)
{
    oms_jwt_config cfg = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET_A,
                          .secret_len = strlen(SECRET_A), .leeway = 60};
    oms_jwt_verifier *v = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_jwt_verifier_new(&v, &cfg, &err), OMS_OK);
    char *ta = mint(SECRET_A), *tb = mint(SECRET_B);
    json_t *fp0 = oms_jwt_verifier_fingerprints(v);
    atomic_bool stop = false;
    load_arg args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (load_arg){v, {ta, ta}, &stop, 0, 0};
        pthread_create(&th[i], NULL, verify_loop, &args[i]);
    }
    oms_jwt_config next = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET_B,
                           .secret_len = strlen(SECRET_B), .previous_secret = (const unsigned char *)SECRET_A,
                           .previous_secret_len = strlen(SECRET_A), .leeway = 60};
    for (int i = 0; i < 300; i++)
        CHECK_EQ_INT(oms_jwt_verifier_reload(v, (i & 1) ? &cfg : &next, &err), OMS_OK);
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
    }
    CHECK_EQ_INT(oms_jwt_verifier_reload(v, &next, &err), OMS_OK);
    CHECK_EQ_INT(verify(v, tb, &err), OMS_OK);
    json_t *fp1 = oms_jwt_verifier_fingerprints(v);
    CHECK(!json_equal(json_object_get(fp0, "JWT_SECRET"), json_object_get(fp1, "JWT_SECRET")));
    CHECK(json_equal(json_object_get(fp0, "JWT_SECRET"), json_object_get(fp1, "JWT_PREVIOUS_SECRET")));
    /* a bad reload (short secret) keeps B + A */
    oms_jwt_config bad = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)"short", .secret_len = 5,
                          .leeway = 60};
    CHECK_EQ_INT(oms_jwt_verifier_reload(v, &bad, &err), OMS_ECONFIG);
    CHECK_EQ_INT(verify(v, ta, &err), OMS_OK);
    /* the algorithm cannot be changed by a reload */
    oms_jwt_config other = next;
    other.alg = OMS_JWT_RS256;
    CHECK_EQ_INT(oms_jwt_verifier_reload(v, &other, &err), OMS_OK);
    CHECK_EQ_INT(verify(v, ta, &err), OMS_OK);
    /* B alone: A's tokens end */
    oms_jwt_config alone = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET_B,
                            .secret_len = strlen(SECRET_B), .leeway = 60};
    CHECK_EQ_INT(oms_jwt_verifier_reload(v, &alone, &err), OMS_OK);
    CHECK_EQ_INT(verify(v, ta, &err), OMS_ETOKEN);
    CHECK_EQ_INT(verify(v, tb, &err), OMS_OK);
    /* fingerprints never contain the secret */
    json_t *fp2 = oms_jwt_verifier_fingerprints(v);
    char *txt = json_dumps(fp2, 0);
    CHECK(strstr(txt, SECRET_B) == NULL && strstr(txt, "sha256:") != NULL);
    free(txt);
    json_decref(fp0);
    json_decref(fp1);
    json_decref(fp2);
    free(ta);
    free(tb);
    oms_jwt_verifier_free(v);
}

/* ---- roles claim and role map --------------------------------------------- */

static void role_map_parsing(void)
{
    oms_role_map *m = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_role_map_parse(&m, " ontology-admins = admin ; ontology-devs=developer, reviewer;"
                                        "/Team A/ops=viewer,viewer;", &err), OMS_OK);
    const oms_role_grant *g = oms_role_map_find(m, "ontology-devs");
    CHECK(g && g->nroles == 2 && !strcmp(g->roles[0], "developer") && !strcmp(g->roles[1], "reviewer"));
    g = oms_role_map_find(m, "/Team A/ops");
    CHECK(g && g->nroles == 1);
    CHECK(oms_role_map_find(m, "Ontology-Admins") == NULL); /* exact, case matters */
    oms_role_map_free(m);
    struct {
        const char *spec, *msg;
    } bad[] = {
        {"ontology-admins=superuser", "OMS_ROLE_MAP entry 1 (group \"ontology-admins\"): unknown role \"superuser\""},
        {"a=admin;b", "OMS_ROLE_MAP entry 2: expected group=role[,role...]"},
        {"=admin", "OMS_ROLE_MAP entry 1: empty group name"},
        {"a=", "OMS_ROLE_MAP entry 1 (group \"a\"): no role after '='"},
        {"a=admin;a=viewer", "OMS_ROLE_MAP entry 2 (group \"a\"): group named twice"},
        {" ; ", "OMS_ROLE_MAP is set but maps no group"},
        {"a=Admin", "OMS_ROLE_MAP entry 1 (group \"a\"): unknown role \"Admin\""},
        {"a=admin\001", "OMS_ROLE_MAP entry 1 (group \"a\"): unknown role"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = NULL;
        CHECK_EQ_INT(oms_role_map_parse(&m, bad[i].spec, &err), OMS_ECONFIG);
        CHECK(m == NULL);
        if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
            fprintf(stderr, "  %s -> %s\n", bad[i].spec, err.msg), t_failed_current = 1;
        CHECK(strchr(err.msg, '\001') == NULL);
    }
}

static void roles_claim_and_mapping(void)
{
    fixture fx;
    char *set = jwks_of(1, jwk(g_ec, "e1", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, "ontology-devs=developer,reviewer;ontology-admins=admin",
                              "realm_access.roles"), OMS_OK);
    char *t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
                    payload("\"roles\":[\"admin\"],\"realm_access\":{\"roles\":[\"admin\",\"ontology-devs\",\"x\","
                            "\"ontology-devs\"]}"));
    oms_arena *a = oms_arena_new(4096);
    oms_jwt_claims c;
    oms_error err;
    CHECK_EQ_INT(oms_jwt_verify(fx.v, t, strlen(t), NOW, &c, a, &err), OMS_OK);
    /* the top-level "roles" is not the configured claim, and the group
     * called "admin" is not in the map: neither grants anything */
    CHECK_EQ_INT(c.ngroups, 4);
    CHECK_EQ_INT(c.nroles, 2);
    if (c.nroles == 2) {
        CHECK_EQ_STR(c.roles[0], "developer");
        CHECK_EQ_STR(c.roles[1], "reviewer");
    }
    CHECK(c.mapped);
    CHECK_EQ_INT(c.ngrants, 1);
    if (c.ngrants == 1)
        CHECK_EQ_STR(c.grants[0]->group, "ontology-devs");
    free(t);
    /* a path through a non-object, or absent: no roles */
    t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload("\"realm_access\":[\"ontology-devs\"]"));
    CHECK_EQ_INT(oms_jwt_verify(fx.v, t, strlen(t), NOW, &c, a, &err), OMS_OK);
    CHECK_EQ_INT(c.nroles, 0);
    free(t);
    /* with a map, group names may be more (up to 256) and longer (up to 256
     * bytes) than roles (64 of 64 bytes): 70 groups of 68 bytes */
    char big[8192];
    size_t off = (size_t)snprintf(big, sizeof big, "\"realm_access\":{\"roles\":[");
    for (int i = 0; i < 70; i++)
        off += (size_t)snprintf(big + off, sizeof big - off, "%s\"g-%066d\"", i ? "," : "", i);
    snprintf(big + off, sizeof big - off, ",\"ontology-admins\"]}");
    t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload(big));
    CHECK_EQ_INT(oms_jwt_verify(fx.v, t, strlen(t), NOW, &c, a, &err), OMS_OK);
    CHECK_EQ_INT(c.nroles, 1);
    free(t);
    oms_arena_free(a);
    free(set);
    fixture_close(&fx);

    /* A claim name with dots (a namespaced claim) is taken whole first. */
    set = jwks_of(1, jwk(g_ec, "e1", ""));
    CHECK_EQ_INT(fixture_open(&fx, set, ALL, NULL, "https://oms.example.com/roles"), OMS_OK);
    t = token(g_ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload("\"https://oms.example.com/roles\":[\"viewer\"]"));
    a = oms_arena_new(1024);
    CHECK_EQ_INT(oms_jwt_verify(fx.v, t, strlen(t), NOW, &c, a, &err), OMS_OK);
    CHECK_EQ_INT(c.nroles, 1);
    CHECK(!c.mapped);
    oms_arena_free(a);
    free(t);
    free(set);
    fixture_close(&fx);

    CHECK_EQ_INT(oms_jwt_roles_claim_check("a..b", &err), OMS_ECONFIG);
    CHECK_EQ_INT(oms_jwt_roles_claim_check(".a", &err), OMS_ECONFIG);
    CHECK_EQ_INT(oms_jwt_roles_claim_check("a.b.c.d.e.f.g.h.i", &err), OMS_ECONFIG);
    CHECK_EQ_INT(oms_jwt_roles_claim_check("", &err), OMS_ECONFIG);
    CHECK_EQ_INT(oms_jwt_roles_claim_check("resource_access.oms.roles", &err), OMS_OK);
}

/* ---- settings --------------------------------------------------------------- */

static int validate(const char *const *env_in, oms_error *err)
{
    char *env[16];
    size_t n = 0;
    for (; env_in[n]; n++)
        env[n] = (char *)env_in[n];
    env[n] = NULL;
    char *argv[] = {"oms", NULL};
    int argc = 1;
    oms_config *c = NULL;
    int rc = oms_config_load(&c, &argc, argv, env, err);
    if (rc == OMS_OK)
        rc = oms_config_validate_serve(c, err);
    oms_config_free(c);
    return rc;
}

static void identity_settings(void)
{
    oms_error err;
    struct {
        const char *env[8];
        int rc;
        const char *msg; /* prefix of the refusal */
    } cases[] = {
        {{"JWT_ALGORITHM=RS256,ES256,EdDSA", "JWT_JWKS_URL=https://idp.example.com/jwks", "JWT_ISSUER=i",
          "JWT_AUDIENCE=a", NULL}, OMS_OK, NULL},
        {{"JWT_ALGORITHM=RS256", "JWT_OIDC_ISSUER=http://127.0.0.1:8081/realms/x", "JWT_ISSUER=i", "JWT_AUDIENCE=a",
          NULL}, OMS_OK, NULL},
        {{"JWT_ALGORITHM=RS256", "JWT_JWKS_FILE=/x.json", "JWT_AUDIENCE=a", NULL}, OMS_ECONFIG,
         "JWT_JWKS_FILE needs JWT_ISSUER"},
        {{"JWT_ALGORITHM=RS256", "JWT_JWKS_URL=https://idp/jwks", "JWT_ISSUER=i", NULL}, OMS_ECONFIG,
         "JWT_JWKS_URL needs JWT_AUDIENCE"},
        {{"JWT_ALGORITHM=RS256", "JWT_OIDC_ISSUER=https://idp", NULL}, OMS_ECONFIG, "JWT_OIDC_ISSUER needs JWT_ISSUER"},
        {{"JWT_ALGORITHM=RS256", "JWT_JWKS_URL=http://idp.example.com/jwks", "JWT_ISSUER=i", "JWT_AUDIENCE=a", NULL},
         OMS_ECONFIG, "JWT_JWKS_URL must be an https URL"},
        {{"JWT_ALGORITHM=RS256", "JWT_JWKS_URL=https://u:p@idp/jwks", "JWT_ISSUER=i", "JWT_AUDIENCE=a", NULL},
         OMS_ECONFIG, "JWT_JWKS_URL must not hold a user name or password"},
        {{"JWT_ALGORITHM=RS256", "JWT_JWKS_FILE=/x.json", "JWT_JWKS_URL=https://idp/jwks", "JWT_ISSUER=i",
          "JWT_AUDIENCE=a", NULL}, OMS_ECONFIG, "JWT_JWKS_FILE and JWT_JWKS_URL are both set"},
        {{"JWT_ALGORITHM=RS256,ES256", "JWT_PUBLIC_KEY_FILE=/k.pem", NULL}, OMS_ECONFIG,
         "JWT_PUBLIC_KEY_FILE holds one key"},
        {{"JWT_ALGORITHM=RS256", NULL}, OMS_ECONFIG, "JWT_ALGORITHM=RS256 needs JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE"},
        {{"JWT_SECRET=Jq7vN2xL9pR4tW8zK3mB6cF1hD5gS0yA", "JWT_JWKS_URL=https://idp/jwks", NULL}, OMS_ECONFIG,
         "JWT_JWKS_URL is set but JWT_ALGORITHM=HS256 is an HMAC algorithm"},
        {{"JWT_ALGORITHM=HS256,RS256", NULL}, OMS_ECONFIG, "JWT_ALGORITHM=HS256,RS256 is refused"},
        {{"JWT_ALGORITHM=RS256,none", NULL}, OMS_ECONFIG, "JWT_ALGORITHM=RS256,none is refused"},
        {{"JWT_SECRET=Jq7vN2xL9pR4tW8zK3mB6cF1hD5gS0yA", "OMS_ROLE_MAP=devs=developer;ops=root", NULL}, OMS_ECONFIG,
         "OMS_ROLE_MAP entry 2 (group \"ops\"): unknown role \"root\""},
        {{"JWT_SECRET=Jq7vN2xL9pR4tW8zK3mB6cF1hD5gS0yA", "JWT_ROLES_CLAIM=realm_access..roles", NULL}, OMS_ECONFIG,
         "JWT_ROLES_CLAIM has an empty name"},
        {{"JWT_SECRET=Jq7vN2xL9pR4tW8zK3mB6cF1hD5gS0yA", "OMS_ROLE_MAP=devs=developer",
          "JWT_ROLES_CLAIM=realm_access.roles", NULL}, OMS_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = validate(cases[i].env, &err);
        if (rc != cases[i].rc || (cases[i].msg && strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)) {
            fprintf(stderr, "  case %zu: rc %d, %s\n", i, rc, rc ? err.msg : "");
            t_failed_current = 1;
        }
    }
}

/* A previous-secret file may be missing or empty; re-reading sees changes. */
static void previous_secret_file_is_optional(void)
{
    char path[] = "/tmp/oms_test_prev_XXXXXX";
    close(mkstemp(path));
    unlink(path);
    char e1[128], e2[] = "JWT_SECRET=Jq7vN2xL9pR4tW8zK3mB6cF1hD5gS0yA";
    snprintf(e1, sizeof e1, "JWT_PREVIOUS_SECRET_FILE=%s", path);
    char *env[] = {e1, e2, NULL};
    char *argv[] = {"oms", NULL};
    int argc = 1;
    oms_config *c = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_config_load(&c, &argc, argv, env, &err), OMS_OK);
    CHECK(oms_config_str(c, "JWT_PREVIOUS_SECRET") == NULL);
    CHECK_EQ_STR(oms_config_file_path(c, "JWT_PREVIOUS_SECRET"), path);
    CHECK_EQ_INT(oms_config_validate_serve(c, &err), OMS_OK);
    char *v = NULL;
    CHECK_EQ_INT(oms_config_reread(c, "JWT_PREVIOUS_SECRET", &v, &err), OMS_OK);
    CHECK(v == NULL);
    write_file(path, "Zx8vN2xL9pR4tW8zK3mB6cF1hD5gS0yQ\n");
    CHECK_EQ_INT(oms_config_reread(c, "JWT_PREVIOUS_SECRET", &v, &err), OMS_OK);
    CHECK_EQ_STR(v, "Zx8vN2xL9pR4tW8zK3mB6cF1hD5gS0yQ");
    free(v);
    write_file(path, "");
    CHECK_EQ_INT(oms_config_reread(c, "JWT_PREVIOUS_SECRET", &v, &err), OMS_OK);
    CHECK(v == NULL);
    CHECK_EQ_INT(oms_config_reread(c, "JWT_SECRET", &v, &err), OMS_ECONFIG); /* not from a file */
    oms_config_free(c);
    unlink(path);
    /* the current secret's file is not optional */
    snprintf(e1, sizeof e1, "JWT_SECRET_FILE=%s", path);
    char *env2[] = {e1, NULL};
    argc = 1;
    CHECK_EQ_INT(oms_config_load(&c, &argc, argv, env2, &err), OMS_ECONFIG);
}

static const t_case cases[] = {
    T(three_algorithms_by_kid),
    T(kid_and_algorithm_must_agree),
    T(configured_algorithms_bound_the_token),
    T(key_locating_headers_are_ignored),
    T(jwk_members_are_checked),
    T(rs256_signature_cases),
    T(es256_signature_cases),
    T(eddsa_signature_cases),
    T(keyset_swap_under_load),
    T(hmac_reload_under_load),
    T(role_map_parsing),
    T(roles_claim_and_mapping),
    T(identity_settings),
    T(previous_secret_file_is_optional),
};

int main(void)
{
    g_rsa = EVP_RSA_gen(2048);
    g_rsa2 = EVP_RSA_gen(2048);
    g_rsa1024 = EVP_RSA_gen(1024);
    g_ec = EVP_EC_gen("P-256");
    g_ec2 = EVP_EC_gen("P-256");
    g_ec384 = EVP_EC_gen("P-384");
    g_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    g_ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    int rc = T_RUN("jwks", cases);
    EVP_PKEY *all[] = {g_rsa, g_rsa2, g_rsa1024, g_ec, g_ec2, g_ec384, g_ed, g_ed448};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        EVP_PKEY_free(all[i]);
    return rc;
}
