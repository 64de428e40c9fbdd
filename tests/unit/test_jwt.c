/* Unit tests for src/auth/jwt.c (SPEC §6.1). Tokens are forged here with
 * OpenSSL directly rather than with oms_jwt_sign_hmac wherever the point is
 * to exercise the verifier against hostile or unusual input. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth/jwt.h"
#include "t.h"
#include "util/encoding.h"

#define NOW 1700000000LL

static const char SECRET[] = "0123456789abcdef0123456789abcdef-current";
static const char SECRET_OLD[] = "fedcba9876543210fedcba9876543210-previous";
static const char SECRET_OTHER[] = "an-entirely-different-secret-of-40-bytes";

static oms_arena *g_arena;

/* ---- helpers ------------------------------------------------------------ */

static char *b64(const void *data, size_t len)
{
    char *s = malloc(((len + 2) / 3) * 4 + 1);
    oms_b64url_encode(s, data, len);
    return s;
}

static char *b64s(const char *str)
{
    return b64(str, strlen(str));
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);
    snprintf(s, n, "%s.%s.%s", a, b, c);
    return s;
}

/* "b64(header).b64(payload).b64(HMAC-md(key, signing input))" from raw JSON. */
static char *forge_hmac(const EVP_MD *md, const char *key, const char *header, const char *payload)
{
    char *h = b64s(header), *p = b64s(payload);
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(md, key, (int)strlen(key), (const unsigned char *)input, strlen(input), mac, &maclen);
    char *s = b64(mac, maclen);
    char *tok = cat3(h, p, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

static char *forge(const char *header, const char *payload)
{
    return forge_hmac(EVP_sha256(), SECRET, header, payload);
}

static const char HDR[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A payload with sub/exp valid around NOW plus `extra` members. */
static char *payload_with(const char *extra)
{
    static char buf[16384];
    snprintf(buf, sizeof buf, "{\"sub\":\"alice\",\"exp\":%lld%s%s}", NOW + 3600,
             *extra ? "," : "", extra);
    return buf;
}

static oms_jwt_verifier *hs_verifier_full(oms_jwt_alg alg, const char *secret, const char *prev,
                                          const char *iss, const char *aud)
{
    oms_jwt_config cfg = {
        .alg = alg,
        .secret = (const unsigned char *)secret,
        .secret_len = strlen(secret),
        .previous_secret = (const unsigned char *)prev,
        .previous_secret_len = prev ? strlen(prev) : 0,
        .issuer = iss,
        .audience = aud,
        .leeway = OMS_JWT_LEEWAY,
    };
    oms_jwt_verifier *v = NULL;
    oms_error err = {0};
    int rc = oms_jwt_verifier_new(&v, &cfg, &err);
    if (rc != OMS_OK)
        fprintf(stderr, "  verifier_new: %s\n", err.msg);
    return v;
}

static oms_jwt_verifier *hs_verifier(void)
{
    return hs_verifier_full(OMS_JWT_HS256, SECRET, NULL, NULL, NULL);
}

static int verify_at(const oms_jwt_verifier *v, const char *tok, int64_t now, oms_jwt_claims *c,
                     oms_error *err)
{
    oms_jwt_claims tmp;
    oms_error etmp = {0};
    return oms_jwt_verify(v, tok, strlen(tok), now, c ? c : &tmp, g_arena, err ? err : &etmp);
}

static int verify(const oms_jwt_verifier *v, const char *tok)
{
    return verify_at(v, tok, NOW, NULL, NULL);
}

/* Verifies a token forged from raw header/payload JSON with the HS256 verifier. */
static int verify_json(const char *header, const char *payload, oms_error *err)
{
    oms_jwt_verifier *v = hs_verifier();
    char *tok = forge(header, payload);
    int rc = verify_at(v, tok, NOW, NULL, err);
    free(tok);
    oms_jwt_verifier_free(v);
    return rc;
}

static int verify_payload(const char *payload)
{
    return verify_json(HDR, payload, NULL);
}

static char *mint(const char *secret, const char *const *roles, size_t nroles, int64_t ttl)
{
    char *tok = NULL;
    oms_error err = {0};
    int rc = oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, (const unsigned char *)secret, strlen(secret),
                               "alice", roles, nroles, NOW, ttl, NULL, NULL, &err);
    if (rc != OMS_OK)
        fprintf(stderr, "  sign: %s\n", err.msg);
    return rc == OMS_OK ? tok : NULL;
}

/* ---- algorithm names ----------------------------------------------------- */

static void alg_names(void)
{
    const char *names[] = {"HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"};
    for (size_t i = 0; i < 6; i++) {
        oms_jwt_alg alg;
        CHECK_EQ_INT(oms_jwt_alg_parse(&alg, names[i]), OMS_OK);
        CHECK_EQ_STR(oms_jwt_alg_name(alg), names[i]);
    }
    const char *bad[] = {"hs256", "none", "None", "", "HS256 ", "RS384", "PS256", "eddsa", "Ed25519", "ES256K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oms_jwt_alg alg;
        CHECK_EQ_INT(oms_jwt_alg_parse(&alg, bad[i]), OMS_ECONFIG);
    }
    oms_jwt_alg alg;
    CHECK_EQ_INT(oms_jwt_alg_parse(&alg, NULL), OMS_ECONFIG);
}

/* ---- HMAC round trips ---------------------------------------------------- */

static void sign_verify_roundtrip(void)
{
    const oms_jwt_alg algs[] = {OMS_JWT_HS256, OMS_JWT_HS384, OMS_JWT_HS512};
    const char *roles[] = {"reader", "ontology-admin"};
    for (size_t i = 0; i < 3; i++) {
        char *tok = NULL;
        oms_error err = {0};
        CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, algs[i], (const unsigned char *)SECRET,
                                       strlen(SECRET), "alice@example.com", roles, 2, NOW, 900,
                                       "https://idp.example", "oms", &err),
                     OMS_OK);
        CHECK(tok != NULL);
        if (!tok)
            continue;
        oms_jwt_verifier *v =
            hs_verifier_full(algs[i], SECRET, NULL, "https://idp.example", "oms");
        oms_jwt_claims c;
        CHECK_EQ_INT(verify_at(v, tok, NOW + 10, &c, &err), OMS_OK);
        CHECK_EQ_STR(c.sub, "alice@example.com");
        CHECK_EQ_INT(c.nroles, 2);
        if (c.nroles == 2) {
            CHECK_EQ_STR(c.roles[0], "reader");
            CHECK_EQ_STR(c.roles[1], "ontology-admin");
        }
        CHECK_EQ_INT(c.exp, NOW + 900);
        CHECK_EQ_INT(c.iat, NOW);
        CHECK_EQ_INT(c.nbf, NOW);
        /* The header the minter writes is exactly the documented one. */
        char *h = b64s(algs[i] == OMS_JWT_HS256   ? "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
                       : algs[i] == OMS_JWT_HS384 ? "{\"alg\":\"HS384\",\"typ\":\"JWT\"}"
                                                  : "{\"alg\":\"HS512\",\"typ\":\"JWT\"}");
        CHECK(strncmp(tok, h, strlen(h)) == 0 && tok[strlen(h)] == '.');
        free(h);
        oms_jwt_verifier_free(v);
        free(tok);
    }
}

static void sign_refuses_bad_input(void)
{
    char *tok = (char *)1;
    oms_error err = {0};
    const unsigned char *s = (const unsigned char *)SECRET;
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_RS256, s, strlen(SECRET), "a", NULL, 0, NOW, 60,
                                   NULL, NULL, &err),
                 OMS_ECONFIG);
    CHECK(tok == NULL);
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_ES256, s, strlen(SECRET), "a", NULL, 0, NOW, 60,
                                   NULL, NULL, &err),
                 OMS_ECONFIG);
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, s, 8, "a", NULL, 0, NOW, 60, NULL, NULL,
                                   &err),
                 OMS_ECONFIG);
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, s, strlen(SECRET), "", NULL, 0, NOW, 60,
                                   NULL, NULL, &err),
                 OMS_EINVAL);
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, s, strlen(SECRET), "a\xff", NULL, 0, NOW,
                                   60, NULL, NULL, &err),
                 OMS_EINVAL);
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, s, strlen(SECRET), "a", NULL, 0,
                                   INT64_MAX, 60, NULL, NULL, &err),
                 OMS_EINVAL);
    const char *long_role[] = {"x123456789x123456789x123456789x123456789x123456789x123456789xxxxx"};
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, s, strlen(SECRET), "a", long_role, 1, NOW,
                                   60, NULL, NULL, &err),
                 OMS_EINVAL);
    CHECK(tok == NULL);
}

/* RFC 7515 Appendix A.1: proves our HMAC signing input and comparison are
 * interoperable. The token has no `sub`, so success shows up as the claim
 * check being reached rather than "bad signature". */
static void rfc7515_known_answer(void)
{
    const char *k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAz"
                    "Zr1Z9CAow";
    unsigned char key[64];
    CHECK_EQ_INT(oms_b64url_decode(key, k, strlen(k)), 64);
    oms_jwt_config cfg = {.alg = OMS_JWT_HS256, .secret = key, .secret_len = 64, .leeway = 60};
    oms_jwt_verifier *v = NULL;
    oms_error err = {0};
    CHECK_EQ_INT(oms_jwt_verifier_new(&v, &cfg, &err), OMS_OK);
    const char *tok = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                      ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9"
                      "pc19yb290Ijp0cnVlfQ"
                      ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    CHECK_EQ_INT(verify_at(v, tok, 1300819380 - 100, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "missing sub");
    oms_jwt_verifier_free(v);
}

/* Our precomputed-state HMAC must equal OpenSSL's HMAC() for every key
 * length class: shorter than, equal to and longer than the digest block. */
static void hmac_matches_openssl(void)
{
    const struct {
        oms_jwt_alg alg;
        const char *name;
        const EVP_MD *(*md)(void);
    } algs[] = {{OMS_JWT_HS256, "HS256", EVP_sha256},
                {OMS_JWT_HS384, "HS384", EVP_sha384},
                {OMS_JWT_HS512, "HS512", EVP_sha512}};
    const size_t keylens[] = {32, 63, 64, 65, 127, 128, 129, 300};
    char key[301];
    for (size_t a = 0; a < 3; a++) {
        for (size_t k = 0; k < sizeof keylens / sizeof keylens[0]; k++) {
            size_t kl = keylens[k];
            for (size_t i = 0; i < kl; i++)
                key[i] = (char)('!' + (i * 7 + kl) % 90);
            key[kl] = '\0';
            /* Verify what OpenSSL HMAC() signed. */
            char hdr[64];
            snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\"}", algs[a].name);
            char *tok = forge_hmac(algs[a].md(), key, hdr, payload_with(""));
            oms_jwt_verifier *v = hs_verifier_full(algs[a].alg, key, NULL, NULL, NULL);
            CHECK_EQ_INT(verify(v, tok), OMS_OK);
            free(tok);
            /* And sign, checking the MAC against HMAC() over the signing input. */
            oms_error err = {0};
            CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, algs[a].alg, (const unsigned char *)key, kl,
                                           "bob", NULL, 0, NOW, 60, NULL, NULL, &err),
                         OMS_OK);
            char *dot2 = strrchr(tok, '.');
            unsigned char mac[EVP_MAX_MD_SIZE];
            unsigned int maclen = 0;
            HMAC(algs[a].md(), key, (int)kl, (const unsigned char *)tok, (size_t)(dot2 - tok), mac,
                 &maclen);
            char *want = b64(mac, maclen);
            CHECK_EQ_STR(dot2 + 1, want);
            CHECK_EQ_INT(verify(v, tok), OMS_OK);
            free(want);
            free(tok);
            oms_jwt_verifier_free(v);
        }
    }
}

static void wrong_secret_and_rotation(void)
{
    char *tok_cur = mint(SECRET, NULL, 0, 600);
    char *tok_old = mint(SECRET_OLD, NULL, 0, 600);
    char *tok_other = mint(SECRET_OTHER, NULL, 0, 600);

    oms_jwt_verifier *plain = hs_verifier();
    CHECK_EQ_INT(verify(plain, tok_cur), OMS_OK);
    oms_error err = {0};
    CHECK_EQ_INT(verify_at(plain, tok_old, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");

    oms_jwt_verifier *rot = hs_verifier_full(OMS_JWT_HS256, SECRET, SECRET_OLD, NULL, NULL);
    oms_jwt_claims c;
    CHECK_EQ_INT(verify_at(rot, tok_cur, NOW, &c, NULL), OMS_OK);
    CHECK_EQ_INT(verify_at(rot, tok_old, NOW, &c, NULL), OMS_OK);
    CHECK_EQ_STR(c.sub, "alice");
    CHECK_EQ_INT(verify(rot, tok_other), OMS_ETOKEN);

    oms_jwt_verifier_free(plain);
    oms_jwt_verifier_free(rot);
    free(tok_cur);
    free(tok_old);
    free(tok_other);
}

static void tampered_payload(void)
{
    oms_jwt_verifier *v = hs_verifier();
    char *tok = mint(SECRET, NULL, 0, 600);
    /* Swap in a different payload, keeping header and signature. */
    char *p = b64s("{\"sub\":\"mallory\",\"exp\":9999999999}");
    char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
    *dot1 = '\0';
    char *forged = cat3(tok, p, dot2 + 1);
    *dot1 = '.';
    oms_error err = {0};
    CHECK_EQ_INT(verify_at(v, forged, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    /* Flip one payload character. */
    char *copy = strdup(tok);
    copy[dot1 - tok + 3] ^= 1;
    CHECK_EQ_INT(verify(v, copy), OMS_ETOKEN);
    /* Flip one signature character. */
    strcpy(copy, tok);
    copy[strlen(copy) - 5] = copy[strlen(copy) - 5] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify(v, copy), OMS_ETOKEN);
    /* Truncated signature. */
    strcpy(copy, tok);
    copy[strlen(copy) - 4] = '\0';
    CHECK_EQ_INT(verify(v, copy), OMS_ETOKEN);
    free(copy);
    free(forged);
    free(p);
    free(tok);
    oms_jwt_verifier_free(v);
}

static void alg_confusion_hmac(void)
{
    oms_jwt_verifier *v = hs_verifier();
    oms_error err = {0};
    /* Correctly signed HS512 token presented to an HS256 verifier. */
    char *tok = forge_hmac(EVP_sha512(), SECRET, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
                           payload_with(""));
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "alg mismatch");
    free(tok);
    /* HS512 signature under a header that claims HS256. */
    tok = forge_hmac(EVP_sha512(), SECRET, HDR, payload_with(""));
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    free(tok);
    /* alg none with an empty signature: the part count check already fails. */
    char *h = b64s("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *p = b64s(payload_with(""));
    size_t n = strlen(h) + strlen(p) + 3;
    char *none = malloc(n);
    snprintf(none, n, "%s.%s.", h, p);
    CHECK_EQ_INT(verify(v, none), OMS_ETOKEN);
    free(none);
    free(h);
    free(p);
    /* alg none / None / lower-case variants carrying a valid HS256 MAC. */
    const char *hdrs[] = {
        "{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}",
        "{\"alg\":\"hs256\"}", "{\"alg\":\"HS256 \"}", "{\"alg\":\"RS256\"}",
        "{\"alg\":[\"HS256\"]}", "{\"alg\":null}", "{\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "[\"HS256\"]", "\"HS256\"", "{}",
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        CHECK_EQ_INT(verify_json(hdrs[i], payload_with(""), &err), OMS_ETOKEN);
        if (err.code != OMS_ETOKEN)
            fprintf(stderr, "  header %s accepted\n", hdrs[i]);
    }
    oms_jwt_verifier_free(v);
}

static void header_checks(void)
{
    oms_error err = {0};
    const char *p = payload_with("");
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\"}", p, &err), OMS_OK);
    CHECK_EQ_INT(verify_json("{\"typ\":\"jwt\",\"alg\":\"HS256\"}", p, &err), OMS_OK);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"typ\":\"at+JWT\"}", p, &err), OMS_OK);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", p, &err), OMS_OK);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"kid\":42}", p, &err), OMS_OK);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "crit header");
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"crit\":[]}", p, &err), OMS_ETOKEN);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", p, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad typ");
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"typ\":1}", p, &err), OMS_ETOKEN);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\",\"typ\":\"JWTX\"}", p, &err), OMS_ETOKEN);
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\"", p, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad header json");
    CHECK_EQ_INT(verify_json("{\"alg\":\"HS256\"} x", p, &err), OMS_ETOKEN);
}

/* ---- claims -------------------------------------------------------------- */

static void claim_sub_and_exp(void)
{
    oms_error err = {0};
    CHECK_EQ_INT(verify_json(HDR, "{\"exp\":1800000000}", &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "missing sub");
    CHECK_EQ_INT(verify_payload("{\"sub\":\"\",\"exp\":1800000000}"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":7,\"exp\":1800000000}"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":null,\"exp\":1800000000}"), OMS_ETOKEN);
    char big[600];
    memset(big, 'a', sizeof big);
    for (int len = 255; len <= 256; len++) {
        char pl[700];
        snprintf(pl, sizeof pl, "{\"sub\":\"%.*s\",\"exp\":1800000000}", len, big);
        CHECK_EQ_INT(verify_payload(pl), len == 255 ? OMS_OK : OMS_ETOKEN);
    }
    CHECK_EQ_INT(verify_json(HDR, "{\"sub\":\"a\"}", &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "missing exp");
    CHECK_EQ_INT(verify_json(HDR, "{\"sub\":\"a\",\"exp\":\"1800000000\"}", &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad exp");
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":true}"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":null}"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":[1800000000]}"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":1800000000.25}"), OMS_OK);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":1.8e9}"), OMS_OK);
    /* Extreme values must neither overflow nor be accepted as expired wrongly. */
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":9223372036854775807}"), OMS_OK);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":1e300}"), OMS_OK);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":-9223372036854775807}"), OMS_EEXPIRED);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":-1e300}"), OMS_EEXPIRED);
}

static void claim_expiry(void)
{
    oms_jwt_verifier *v = hs_verifier();
    char *tok = mint(SECRET, NULL, 0, 100); /* exp = NOW + 100 */
    oms_jwt_claims c;
    oms_error err = {0};
    CHECK_EQ_INT(verify_at(v, tok, NOW + 100, &c, &err), OMS_OK);
    CHECK_EQ_INT(verify_at(v, tok, NOW + 100 + OMS_JWT_LEEWAY, &c, &err), OMS_OK);
    CHECK_EQ_INT(verify_at(v, tok, NOW + 101 + OMS_JWT_LEEWAY, &c, &err), OMS_EEXPIRED);
    CHECK_EQ_STR(err.msg, "expired");
    CHECK(c.sub == NULL); /* no claims handed out for a refused token */
    CHECK_EQ_INT(verify_at(v, tok, INT64_MAX, &c, &err), OMS_EEXPIRED);
    /* Expired *and* otherwise invalid is ETOKEN, never EEXPIRED. */
    char *bad = strdup(tok);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify_at(v, bad, NOW + 100000, &c, &err), OMS_ETOKEN);
    free(bad);
    oms_jwt_verifier_free(v);
    v = hs_verifier_full(OMS_JWT_HS256, SECRET, NULL, "https://idp", NULL);
    CHECK_EQ_INT(verify_at(v, tok, NOW + 100000, &c, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "issuer mismatch");
    oms_jwt_verifier_free(v);
    free(tok);
    /* Real exp: 1700000100.5 expires once now > 1700000100 + leeway. */
    v = hs_verifier();
    tok = forge(HDR, "{\"sub\":\"a\",\"exp\":1700000100.5}");
    CHECK_EQ_INT(verify_at(v, tok, NOW + 100 + OMS_JWT_LEEWAY, &c, &err), OMS_OK);
    CHECK_EQ_INT(verify_at(v, tok, NOW + 101 + OMS_JWT_LEEWAY, &c, &err), OMS_EEXPIRED);
    free(tok);
    oms_jwt_verifier_free(v);
}

static void claim_nbf_iat(void)
{
    char pl[256];
    oms_error err = {0};
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", NOW + 3600,
             NOW + OMS_JWT_LEEWAY + 1);
    CHECK_EQ_INT(verify_json(HDR, pl, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "not yet valid");
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", NOW + 3600,
             NOW + OMS_JWT_LEEWAY);
    CHECK_EQ_INT(verify_payload(pl), OMS_OK);
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld.5}", NOW + 3600,
             NOW + OMS_JWT_LEEWAY);
    CHECK_EQ_INT(verify_payload(pl), OMS_ETOKEN);
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", NOW + 3600, NOW - 10);
    CHECK_EQ_INT(verify_payload(pl), OMS_OK);
    CHECK_EQ_INT(verify_json(HDR, payload_with("\"nbf\":\"0\""), &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad nbf");
    CHECK_EQ_INT(verify_payload(payload_with("\"nbf\":9e300")), OMS_ETOKEN);

    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":%lld}", NOW + 3600,
             NOW + OMS_JWT_LEEWAY + 1);
    CHECK_EQ_INT(verify_json(HDR, pl, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "iat in the future");
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":%lld}", NOW + 3600,
             NOW + OMS_JWT_LEEWAY);
    CHECK_EQ_INT(verify_payload(pl), OMS_OK);
    CHECK_EQ_INT(verify_payload(payload_with("\"iat\":1699999999.9")), OMS_OK);
    CHECK_EQ_INT(verify_json(HDR, payload_with("\"iat\":{}"), &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad iat");
}

static void claim_roles(void)
{
    oms_error err = {0};
    oms_jwt_verifier *v = hs_verifier();
    oms_jwt_claims c;
    char *tok = forge(HDR, payload_with(""));
    CHECK_EQ_INT(verify_at(v, tok, NOW, &c, &err), OMS_OK);
    CHECK_EQ_INT(c.nroles, 0);
    free(tok);
    tok = forge(HDR, payload_with("\"roles\":[]"));
    CHECK_EQ_INT(verify_at(v, tok, NOW, &c, &err), OMS_OK);
    CHECK_EQ_INT(c.nroles, 0);
    free(tok);

    CHECK_EQ_INT(verify_json(HDR, payload_with("\"roles\":\"admin\""), &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad roles");
    CHECK_EQ_INT(verify_payload(payload_with("\"roles\":{\"admin\":true}")), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload(payload_with("\"roles\":[\"a\",1]")), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload(payload_with("\"roles\":[[\"admin\"]]")), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload(payload_with("\"roles\":null")), OMS_ETOKEN);

    /* Role length limit: 64 bytes ok, 65 refused. */
    char extra[9000];
    snprintf(extra, sizeof extra, "\"roles\":[\"%064d\"]", 0);
    CHECK_EQ_INT(verify_payload(payload_with(extra)), OMS_OK);
    snprintf(extra, sizeof extra, "\"roles\":[\"%065d\"]", 0);
    CHECK_EQ_INT(verify_payload(payload_with(extra)), OMS_ETOKEN);

    /* Count limit: 64 ok, 65 refused. */
    for (int n = 64; n <= 65; n++) {
        size_t off = (size_t)snprintf(extra, sizeof extra, "\"roles\":[");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(extra + off, sizeof extra - off, "%s\"r%d\"", i ? "," : "", i);
        snprintf(extra + off, sizeof extra - off, "]");
        tok = forge(HDR, payload_with(extra));
        int rc = verify_at(v, tok, NOW, &c, &err);
        CHECK_EQ_INT(rc, n == 64 ? OMS_OK : OMS_ETOKEN);
        if (rc == OMS_OK) {
            CHECK_EQ_INT(c.nroles, 64);
            CHECK_EQ_STR(c.roles[63], "r63");
        }
        free(tok);
    }
    oms_jwt_verifier_free(v);
}

static void claim_iss_aud(void)
{
    oms_jwt_verifier *v = hs_verifier_full(OMS_JWT_HS256, SECRET, NULL, "https://idp", "oms-api");
    oms_error err = {0};
    struct {
        const char *extra;
        int want;
    } cases[] = {
        {"\"iss\":\"https://idp\",\"aud\":\"oms-api\"", OMS_OK},
        {"\"iss\":\"https://idp\",\"aud\":[\"other\",\"oms-api\"]", OMS_OK},
        {"\"aud\":\"oms-api\"", OMS_ETOKEN},
        {"\"iss\":\"https://idp/\",\"aud\":\"oms-api\"", OMS_ETOKEN},
        {"\"iss\":\"HTTPS://IDP\",\"aud\":\"oms-api\"", OMS_ETOKEN},
        {"\"iss\":[\"https://idp\"],\"aud\":\"oms-api\"", OMS_ETOKEN},
        {"\"iss\":\"https://idp\"", OMS_ETOKEN},
        {"\"iss\":\"https://idp\",\"aud\":\"oms\"", OMS_ETOKEN},
        {"\"iss\":\"https://idp\",\"aud\":[\"other\"]", OMS_ETOKEN},
        {"\"iss\":\"https://idp\",\"aud\":[]", OMS_ETOKEN},
        {"\"iss\":\"https://idp\",\"aud\":[[\"oms-api\"]]", OMS_ETOKEN},
        {"\"iss\":\"https://idp\",\"aud\":7", OMS_ETOKEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = forge(HDR, payload_with(cases[i].extra));
        int rc = verify_at(v, tok, NOW, NULL, &err);
        CHECK_EQ_INT(rc, cases[i].want);
        if (rc != cases[i].want)
            fprintf(stderr, "  case %zu: %s\n", i, cases[i].extra);
        free(tok);
    }
    oms_jwt_verifier_free(v);
    /* Unconfigured iss/aud are ignored whatever their shape. */
    CHECK_EQ_INT(verify_payload(payload_with("\"iss\":1,\"aud\":{}")), OMS_OK);
}

static void payload_not_object(void)
{
    oms_error err = {0};
    CHECK_EQ_INT(verify_json(HDR, "[{\"sub\":\"a\",\"exp\":1800000000}]", &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad payload json");
    CHECK_EQ_INT(verify_payload("\"sub\""), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("null"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("42"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":1800000000"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"exp\":1800000000}{}"), OMS_ETOKEN);
    /* Duplicate members are ambiguous: refuse rather than pick one. */
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\",\"sub\":\"admin\",\"exp\":1800000000}"),
                 OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\\u0000b\",\"exp\":1800000000}"), OMS_ETOKEN);
    CHECK_EQ_INT(verify_payload("{\"sub\":\"a\xff\",\"exp\":1800000000}"), OMS_ETOKEN);
}

/* ---- structure ----------------------------------------------------------- */

static void structure_garbage(void)
{
    oms_jwt_verifier *v = hs_verifier();
    oms_error err = {0};
    const char *bad[] = {
        "", ".", "..", "...", "a", "a.b", "a.b.c", "abc.def.ghi", "Bearer x.y.z",
        "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.e30", "eyJhbGciOiJIUzI1NiJ9..AAAA",
        ".e30.AAAA", "eyJhbGciOiJIUzI1NiJ9.e30.", "\x01\x02\x03.\xff\xfe.\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(verify(v, bad[i]), OMS_ETOKEN);
    CHECK_EQ_INT(oms_jwt_verify(v, NULL, 0, NOW, &(oms_jwt_claims){0}, g_arena, &err),
                 OMS_ETOKEN);
    /* An embedded NUL inside `len` is just another invalid byte. */
    char *tok = mint(SECRET, NULL, 0, 600);
    size_t n = strlen(tok);
    tok[n / 2] = '\0';
    CHECK_EQ_INT(oms_jwt_verify(v, tok, n, NOW, &(oms_jwt_claims){0}, g_arena, &err), OMS_ETOKEN);
    free(tok);

    /* 2-part and 4-part versions of a valid token. */
    tok = mint(SECRET, NULL, 0, 600);
    CHECK_EQ_INT(verify(v, tok), OMS_OK);
    char *last = strrchr(tok, '.');
    *last = '\0';
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "malformed token");
    *last = '.';
    size_t m = strlen(tok) + 8;
    char *four = malloc(m);
    snprintf(four, m, "%s.AAAA", tok);
    CHECK_EQ_INT(verify_at(v, four, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "malformed token");
    snprintf(four, m, "%s.", tok);
    CHECK_EQ_INT(verify(v, four), OMS_ETOKEN);
    free(four);
    free(tok);
    oms_jwt_verifier_free(v);
}

static void structure_base64(void)
{
    oms_jwt_verifier *v = hs_verifier();
    oms_error err = {0};
    char *tok = mint(SECRET, NULL, 0, 600);
    CHECK_EQ_INT(verify(v, tok), OMS_OK);
    size_t n = strlen(tok);
    char *buf = malloc(n + 16);
    const char *dot1 = strchr(tok, '.');
    size_t h = (size_t)(dot1 - tok);

    /* '=' padding on each part (header of this token is 36 chars, so pad the
     * payload/signature which have non-multiple-of-4 lengths too). */
    snprintf(buf, n + 16, "%.*s=%s", (int)h, tok, dot1);
    CHECK_EQ_INT(verify_at(v, buf, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad base64url");
    snprintf(buf, n + 16, "%s=", tok);
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    snprintf(buf, n + 16, "%s==", tok);
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    /* Whitespace anywhere. */
    snprintf(buf, n + 16, " %s", tok);
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    snprintf(buf, n + 16, "%s\n", tok);
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    snprintf(buf, n + 16, "%.*s %s", (int)h, tok, dot1);
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    /* Standard-alphabet characters. */
    strcpy(buf, tok);
    buf[2] = '+';
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    buf[2] = '/';
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    /* Non-canonical trailing bits in the 43-char HS256 signature (2 spare bits). */
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    strcpy(buf, tok);
    char *lastc = buf + n - 1;
    int val = (int)(strchr(alpha, *lastc) - alpha);
    CHECK_EQ_INT(val & 3, 0);
    *lastc = alpha[val | 1];
    CHECK_EQ_INT(verify_at(v, buf, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad base64url");
    /* A part whose length is 1 mod 4 cannot be base64. */
    snprintf(buf, n + 16, "%sA", tok);
    CHECK_EQ_INT(verify(v, buf), OMS_ETOKEN);
    free(buf);
    free(tok);
    oms_jwt_verifier_free(v);
}

static void structure_size_limit(void)
{
    oms_jwt_verifier *v = hs_verifier();
    oms_error err = {0};
    /* Find the largest valid token not exceeding the cap, then grow it by one
     * filler byte: the first must verify, the second must be refused on size. */
    char *filler = malloc(OMS_JWT_MAX_TOKEN);
    char *extra = malloc(OMS_JWT_MAX_TOKEN + 64);
    char *ok_tok = NULL;
    for (size_t f = 5000; f < OMS_JWT_MAX_TOKEN; f++) {
        memset(filler, 'x', f);
        filler[f] = '\0';
        snprintf(extra, OMS_JWT_MAX_TOKEN + 64, "\"pad\":\"%s\"", filler);
        char *tok = forge(HDR, payload_with(extra));
        if (strlen(tok) > OMS_JWT_MAX_TOKEN) {
            CHECK(ok_tok != NULL);
            if (ok_tok) {
                CHECK(strlen(ok_tok) >= OMS_JWT_MAX_TOKEN - 3);
                CHECK_EQ_INT(verify(v, ok_tok), OMS_OK);
            }
            CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
            CHECK_EQ_STR(err.msg, "token too large");
            free(tok);
            break;
        }
        free(ok_tok);
        ok_tok = tok;
    }
    free(ok_tok);
    free(filler);
    free(extra);

    /* 100 KiB of plausible-looking token. */
    size_t big = 100 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[1000] = huge[2000] = '.';
    huge[big] = '\0';
    CHECK_EQ_INT(verify_at(v, huge, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "token too large");
    free(huge);
    oms_jwt_verifier_free(v);
}

static void error_messages_are_clean(void)
{
    oms_jwt_verifier *v = hs_verifier();
    char *tok = mint(SECRET_OTHER, NULL, 0, 600);
    oms_error err = {0};
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK(strstr(err.msg, "0123456789abcdef") == NULL);
    CHECK(strstr(err.msg, "eyJ") == NULL);
    CHECK(strlen(err.msg) < 40);
    free(tok);
    oms_jwt_verifier_free(v);
}

/* ---- configuration --------------------------------------------------------- */

static int new_verifier_rc(const oms_jwt_config *cfg)
{
    oms_jwt_verifier *v = NULL;
    oms_error err = {0};
    int rc = oms_jwt_verifier_new(&v, cfg, &err);
    CHECK((rc == OMS_OK) == (v != NULL));
    oms_jwt_verifier_free(v);
    return rc;
}

static void config_hmac(void)
{
    const unsigned char *s = (const unsigned char *)SECRET;
    oms_jwt_config cfg = {.alg = OMS_JWT_HS256, .secret = s, .secret_len = 32, .leeway = 60};
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_OK);
    cfg.secret_len = 31;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.secret = NULL;
    cfg.secret_len = 0;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.secret = s;
    cfg.secret_len = 32;
    cfg.public_key_file = "/dev/null";
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.public_key_file = NULL;
    cfg.previous_secret = s;
    cfg.previous_secret_len = 5;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.previous_secret_len = 32;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_OK);
    cfg.leeway = -1;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.leeway = 0;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_OK);
    cfg.alg = (oms_jwt_alg)99;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
}

/* ---- public-key algorithms ------------------------------------------------ */

typedef struct {
    EVP_PKEY *key;
    char path[64];
    char *pem; /* public key PEM text */
} keyfile;

static void keyfile_make(keyfile *kf, EVP_PKEY *key)
{
    kf->key = key;
    kf->pem = NULL;
    strcpy(kf->path, "/tmp/oms_test_jwt_XXXXXX");
    int fd = mkstemp(kf->path);
    FILE *f = fd >= 0 ? fdopen(fd, "w+") : NULL;
    if (!f || !key || !PEM_write_PUBKEY(f, key)) {
        CHECK(!"cannot write key file");
        if (f)
            fclose(f);
        return;
    }
    long n = ftell(f);
    rewind(f);
    kf->pem = calloc(1, (size_t)n + 1);
    CHECK_EQ_INT(fread(kf->pem, 1, (size_t)n, f), n);
    fclose(f);
}

static void keyfile_free(keyfile *kf)
{
    unlink(kf->path);
    EVP_PKEY_free(kf->key);
    free(kf->pem);
}

static oms_jwt_verifier *pk_verifier(oms_jwt_alg alg, const char *path, int *rc)
{
    oms_jwt_config cfg = {.alg = alg, .public_key_file = path, .leeway = 60};
    oms_jwt_verifier *v = NULL;
    oms_error err = {0};
    *rc = oms_jwt_verifier_new(&v, &cfg, &err);
    return v;
}

/* Signs "h.p" with key. EC signatures are converted from OpenSSL's DER to the
 * JWS raw r||s form unless keep_der is set. */
static char *forge_pk(EVP_PKEY *key, const char *header, const char *payload, bool keep_der)
{
    char *h = b64s(header), *p = b64s(payload);
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", h, p);
    unsigned char sig[1024], raw[64];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
    CHECK(EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(md);
    const unsigned char *out = sig;
    size_t outlen = siglen;
    if (EVP_PKEY_is_a(key, "EC") && !keep_der) {
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, raw, 32);
        BN_bn2binpad(s, raw + 32, 32);
        ECDSA_SIG_free(es);
        out = raw;
        outlen = 64;
    }
    char *sb = b64(out, outlen);
    char *tok = cat3(h, p, sb);
    free(h);
    free(p);
    free(sb);
    free(input);
    return tok;
}

static void rs256(void)
{
    keyfile kf;
    keyfile_make(&kf, EVP_RSA_gen(2048));
    int rc;
    oms_jwt_verifier *v = pk_verifier(OMS_JWT_RS256, kf.path, &rc);
    CHECK_EQ_INT(rc, OMS_OK);
    const char *hdr = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char *tok = forge_pk(kf.key, hdr, payload_with("\"roles\":[\"admin\"]"), false);
    oms_jwt_claims c;
    oms_error err = {0};
    CHECK_EQ_INT(verify_at(v, tok, NOW, &c, &err), OMS_OK);
    CHECK_EQ_STR(c.sub, "alice");
    CHECK_EQ_INT(c.nroles, 1);
    /* Tampered signature. */
    char *bad = strdup(tok);
    size_t n = strlen(bad);
    bad[n - 10] = bad[n - 10] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify_at(v, bad, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    /* The same signature one byte short, validly encoded: JWS wants the full
     * modulus length even where RSA itself would tolerate a missing leading 0. */
    char *dot2 = strrchr(tok, '.');
    unsigned char sig[512];
    long slen = oms_b64url_decode(sig, dot2 + 1, strlen(dot2 + 1));
    CHECK_EQ_INT(slen, 256);
    char *short_sig = b64(sig + 1, (size_t)slen - 1);
    *dot2 = '\0';
    free(bad);
    bad = malloc(strlen(tok) + strlen(short_sig) + 2);
    sprintf(bad, "%s.%s", tok, short_sig);
    *dot2 = '.';
    CHECK_EQ_INT(verify_at(v, bad, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    free(short_sig);
    free(bad);
    free(tok);

    /* Classic key confusion: HS256 token MAC'd with the public key PEM. */
    tok = forge_hmac(EVP_sha256(), kf.pem, HDR, payload_with(""));
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "alg mismatch");
    free(tok);
    tok = forge_hmac(EVP_sha256(), kf.pem, hdr, payload_with(""));
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    free(tok);
    oms_jwt_verifier_free(v);

    /* Configuration: the RSA key may not serve ES256, nor come with a secret. */
    v = pk_verifier(OMS_JWT_ES256, kf.path, &rc);
    CHECK_EQ_INT(rc, OMS_ECONFIG);
    CHECK(v == NULL);
    oms_jwt_config cfg = {.alg = OMS_JWT_RS256,
                          .public_key_file = kf.path,
                          .secret = (const unsigned char *)kf.pem,
                          .secret_len = strlen(kf.pem),
                          .leeway = 60};
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.secret = NULL;
    cfg.secret_len = 0;
    cfg.previous_secret = (const unsigned char *)SECRET;
    cfg.previous_secret_len = strlen(SECRET);
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.previous_secret = NULL;
    cfg.previous_secret_len = 0;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_OK);
    cfg.public_key_file = NULL;
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.public_key_file = "/nonexistent/key.pem";
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    cfg.public_key_file = "/dev/null";
    CHECK_EQ_INT(new_verifier_rc(&cfg), OMS_ECONFIG);
    keyfile_free(&kf);

    /* Undersized RSA keys are refused. */
    keyfile_make(&kf, EVP_RSA_gen(1024));
    v = pk_verifier(OMS_JWT_RS256, kf.path, &rc);
    CHECK_EQ_INT(rc, OMS_ECONFIG);
    CHECK(v == NULL);
    keyfile_free(&kf);
}

static void es256(void)
{
    keyfile kf;
    keyfile_make(&kf, EVP_EC_gen("P-256"));
    int rc;
    oms_jwt_verifier *v = pk_verifier(OMS_JWT_ES256, kf.path, &rc);
    CHECK_EQ_INT(rc, OMS_OK);
    const char *hdr = "{\"alg\":\"ES256\"}";
    oms_error err = {0};
    for (int i = 0; i < 8; i++) { /* several signatures: r/s with leading zeros happen */
        char *tok = forge_pk(kf.key, hdr, payload_with(""), false);
        CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_OK);
        free(tok);
    }
    /* DER signatures (what OpenSSL emits) are not JWS and must be refused. */
    char *tok = forge_pk(kf.key, hdr, payload_with(""), true);
    CHECK_EQ_INT(verify_at(v, tok, NOW, NULL, &err), OMS_ETOKEN);
    CHECK_EQ_STR(err.msg, "bad signature");
    free(tok);
    /* 63/65-byte signatures, zero r and s, tampering. */
    tok = forge_pk(kf.key, hdr, payload_with(""), false);
    char *dot2 = strrchr(tok, '.');
    *dot2 = '\0';
    unsigned char sig[66] = {0};
    for (size_t len = 63; len <= 65; len += 1) {
        char *sb = b64(sig, len);
        char *p = strchr(tok, '.');
        *p = '\0';
        char *t2 = cat3(tok, p + 1, sb);
        *p = '.';
        CHECK_EQ_INT(verify(v, t2), OMS_ETOKEN);
        free(t2);
        free(sb);
    }
    *dot2 = '.';
    char *bad = strdup(tok);
    bad[strlen(bad) - 20] ^= 1;
    CHECK_EQ_INT(verify(v, bad), OMS_ETOKEN);
    free(bad);
    free(tok);
    /* A correctly signed token whose header claims another alg. */
    tok = forge_pk(kf.key, "{\"alg\":\"ES384\"}", payload_with(""), false);
    CHECK_EQ_INT(verify(v, tok), OMS_ETOKEN);
    free(tok);
    /* Key confusion against ES256 too. */
    tok = forge_hmac(EVP_sha256(), kf.pem, HDR, payload_with(""));
    CHECK_EQ_INT(verify(v, tok), OMS_ETOKEN);
    free(tok);
    oms_jwt_verifier_free(v);

    /* An EC key cannot serve RS256. */
    v = pk_verifier(OMS_JWT_RS256, kf.path, &rc);
    CHECK_EQ_INT(rc, OMS_ECONFIG);
    CHECK(v == NULL);
    keyfile_free(&kf);

    /* Only P-256 is ES256. */
    keyfile_make(&kf, EVP_EC_gen("P-384"));
    v = pk_verifier(OMS_JWT_ES256, kf.path, &rc);
    CHECK_EQ_INT(rc, OMS_ECONFIG);
    CHECK(v == NULL);
    keyfile_free(&kf);
}

/* ---- concurrency and speed ----------------------------------------------- */

typedef struct {
    const oms_jwt_verifier *v;
    const char *good, *bad;
    int failures;
} thread_arg;

static void *verify_many(void *p)
{
    thread_arg *t = p;
    for (int i = 0; i < 2000; i++) {
        oms_arena *a = oms_arena_new(1024);
        oms_jwt_claims c;
        oms_error err;
        const char *tok = (i & 1) ? t->bad : t->good;
        int rc = oms_jwt_verify(t->v, tok, strlen(tok), NOW, &c, a, &err);
        if (rc != ((i & 1) ? OMS_ETOKEN : OMS_OK) || (rc == OMS_OK && strcmp(c.sub, "alice")))
            t->failures++;
        oms_arena_free(a);
    }
    return NULL;
}

/* The verifier is shared by all worker threads. */
static void concurrent_verify(void)
{
    oms_jwt_verifier *v = hs_verifier_full(OMS_JWT_HS256, SECRET, SECRET_OLD, NULL, NULL);
    char *good = mint(SECRET_OLD, NULL, 0, 600);
    char *bad = mint(SECRET_OTHER, NULL, 0, 600);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){v, good, bad, 0};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
    }
    free(good);
    free(bad);
    oms_jwt_verifier_free(v);
}

/* Thread CPU time, which is less disturbed by other load on the machine. */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Informational only: prints ns/op (best of 5 batches) for a typical
 * ~300-byte HS256 token. */
static void bench_hs256(void)
{
    oms_jwt_verifier *v =
        hs_verifier_full(OMS_JWT_HS256, SECRET, NULL, "https://idp.example.com", "oms-api");
    const char *roles[] = {"reader", "writer", "ontology-admin"};
    char *tok = NULL;
    oms_error err = {0};
    CHECK_EQ_INT(oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, (const unsigned char *)SECRET,
                                   strlen(SECRET), "user-1234567890@example.com", roles, 3, NOW,
                                   3600, "https://idp.example.com", "oms-api", &err),
                 OMS_OK);
    size_t len = strlen(tok);
    const int iters = 10000;
    int bad = 0;
    double best = 1e18;
    for (int batch = 0; batch < 5; batch++) {
        oms_arena *a = oms_arena_new(64 * 1024);
        double t0 = cpu_ns();
        for (int i = 0; i < iters; i++) {
            oms_jwt_claims c;
            bad += oms_jwt_verify_full(v, tok, len, NOW, &c, a, &err) != OMS_OK;
        }
        double dt = (cpu_ns() - t0) / iters;
        best = dt < best ? dt : best;
        oms_arena_free(a);
    }
    CHECK_EQ_INT(bad, 0);
    printf("  HS256 verify: %zu-byte token, %.0f ns/op\n", len, best);
    free(tok);
    oms_jwt_verifier_free(v);
}

static const t_case cases[] = {
    T(alg_names),
    T(sign_verify_roundtrip),
    T(sign_refuses_bad_input),
    T(rfc7515_known_answer),
    T(hmac_matches_openssl),
    T(wrong_secret_and_rotation),
    T(tampered_payload),
    T(alg_confusion_hmac),
    T(header_checks),
    T(claim_sub_and_exp),
    T(claim_expiry),
    T(claim_nbf_iat),
    T(claim_roles),
    T(claim_iss_aud),
    T(payload_not_object),
    T(structure_garbage),
    T(structure_base64),
    T(structure_size_limit),
    T(error_messages_are_clean),
    T(config_hmac),
    T(rs256),
    T(es256),
    T(concurrent_verify),
    T(bench_hs256),
};

int main(void)
{
    g_arena = oms_arena_new(0);
    int rc = T_RUN("jwt", cases);
    oms_arena_free(g_arena);
    return rc;
}
