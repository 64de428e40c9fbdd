/* Token verification cost (SPEC §12: HS256 verification <= 5 us), and,
 * for reference, RS256, ES256 and EdDSA with keys from a JWKS.
 *
 *   jwt_bench            (bench/jwt_bench.sh builds and runs it)
 *
 * Each figure is per verification, in thread CPU time (less disturbed by
 * other load on a shared machine), the best of 7 batches. The HS256 token
 * is the one tests/unit/test_jwt.c times: ~320 bytes, three roles, iss and
 * aud checked. Built with -DJWT_BENCH_HS_ONLY it uses only the API that
 * predates key sets, so the same file times an older library.
 * JWT_BENCH_ITERATIONS (default 20000) sets the HS256 batch size, e.g.
 * small for a run under callgrind, which counts instructions exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt.h"

#ifndef JWT_BENCH_HS_ONLY
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "auth/jwks.h"
#include "util/encoding.h"
#endif

#define NOW 1700000000LL
#define BATCHES 7

static const char SECRET[] = "0123456789abcdef0123456789abcdef-current";

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef int (*verify_fn)(const oms_jwt_verifier *, const char *, size_t, int64_t, oms_jwt_claims *, oms_arena *,
                         oms_error *);

/* The verification itself (oms_jwt_verify_full) unless `fn` says otherwise. */
static double best_of_with(verify_fn fn, const oms_jwt_verifier *v, const char *tok, int iters)
{
    size_t len = strlen(tok);
    double best = 1e18;
    for (int b = 0; b < BATCHES; b++) {
        oms_arena *a = oms_arena_new(64 * 1024);
        int bad = 0;
        double t0 = cpu_ns();
        for (int i = 0; i < iters; i++) {
            oms_jwt_claims c;
            oms_error err;
            bad += fn(v, tok, len, NOW, &c, a, &err) != OMS_OK;
        }
        double dt = (cpu_ns() - t0) / iters;
        oms_arena_free(a);
        if (bad) {
            fprintf(stderr, "verification failed\n");
            exit(1);
        }
        best = dt < best ? dt : best;
    }
    return best;
}

static double best_of(const oms_jwt_verifier *v, const char *tok, int iters)
{
    return best_of_with(oms_jwt_verify_full, v, tok, iters);
}

static void hs256(void)
{
    oms_jwt_config cfg = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET, .secret_len = strlen(SECRET),
                          .issuer = "https://idp.example.com", .audience = "oms-api", .leeway = OMS_JWT_LEEWAY};
    oms_jwt_verifier *v = NULL;
    oms_error err;
    const char *roles[] = {"reader", "writer", "ontology-admin"};
    char *tok = NULL;
    if (oms_jwt_verifier_new(&v, &cfg, &err) ||
        oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, (const unsigned char *)SECRET, strlen(SECRET),
                          "user-1234567890@example.com", roles, 3, NOW, 3600, "https://idp.example.com", "oms-api",
                          &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        exit(1);
    }
    int iters = getenv("JWT_BENCH_ITERATIONS") ? atoi(getenv("JWT_BENCH_ITERATIONS")) : 20000;
    best_of(v, tok, iters); /* warm */
    printf("%-44s %8.0f ns\n", "HS256 verify (320-byte token)", best_of(v, tok, iters));
    /* what a request pays when its thread verified the same token before */
    best_of_with(oms_jwt_verify, v, tok, iters);
    printf("%-44s %8.0f ns\n", "HS256 repeat, from the verified-token memo", best_of_with(oms_jwt_verify, v, tok, iters));
    free(tok);
    oms_jwt_verifier_free(v);
}

#ifndef JWT_BENCH_HS_ONLY
static char *b64(const void *p, size_t n)
{
    char *s = malloc(((n + 2) / 3) * 4 + 1);
    oms_b64url_encode(s, p, n);
    return s;
}

static char *bn64(EVP_PKEY *k, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[512];
    EVP_PKEY_get_bn_param(k, name, &bn);
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64(buf, (size_t)n);
}

static char *sign(EVP_PKEY *k, const char *alg, const char *kid)
{
    char hdr[128], payload[512];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
    snprintf(payload, sizeof payload,
             "{\"sub\":\"user-1234567890@example.com\",\"roles\":[\"reader\",\"writer\"],\"iss\":\"https://idp\","
             "\"aud\":\"oms-api\",\"iat\":%lld,\"exp\":%lld}",
             NOW, NOW + 3600);
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
    char *in = malloc(strlen(h) + strlen(p) + 2);
    sprintf(in, "%s.%s", h, p);
    unsigned char sig[1024], raw[64];
    size_t n = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256(), NULL, k);
    EVP_DigestSign(md, sig, &n, (unsigned char *)in, strlen(in));
    EVP_MD_CTX_free(md);
    const unsigned char *out = sig;
    if (EVP_PKEY_is_a(k, "EC")) {
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)n);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, raw, 32);
        BN_bn2binpad(s, raw + 32, 32);
        ECDSA_SIG_free(es);
        out = raw;
        n = 64;
    }
    char *sb = b64(out, n);
    char *tok = malloc(strlen(in) + strlen(sb) + 2);
    sprintf(tok, "%s.%s", in, sb);
    free(h);
    free(p);
    free(in);
    free(sb);
    return tok;
}

static void public_keys(void)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char *n = bn64(rsa, OSSL_PKEY_PARAM_RSA_N, 0), *e = bn64(rsa, OSSL_PKEY_PARAM_RSA_E, 0);
    char *x = bn64(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32), *y = bn64(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    unsigned char raw[32];
    size_t rl = sizeof raw;
    EVP_PKEY_get_raw_public_key(ed, raw, &rl);
    char *ox = b64(raw, rl);
    char set[4096];
    snprintf(set, sizeof set,
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"OKP\",\"kid\":\"o\",\"crv\":\"Ed25519\",\"x\":\"%s\"}]}",
             n, e, x, y, ox);
    char path[] = "/tmp/oms_jwt_bench_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, set, strlen(set)) != (ssize_t)strlen(set)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    close(fd);
    oms_jwks *j = NULL;
    oms_jwt_verifier *v = NULL;
    oms_error err;
    oms_jwks_config kc = {.file = path, .algs = OMS_JWT_PUBLIC_ALGS};
    oms_jwt_config cfg = {.alg = OMS_JWT_RS256, .algs = OMS_JWT_PUBLIC_ALGS, .issuer = "https://idp",
                          .audience = "oms-api", .leeway = OMS_JWT_LEEWAY};
    if (oms_jwks_new(&j, &kc, &err) || oms_jwks_load(j, "bench", &err) || !(cfg.jwks = j) ||
        oms_jwt_verifier_new(&v, &cfg, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        exit(1);
    }
    struct {
        const char *name;
        EVP_PKEY *k;
        const char *alg, *kid;
    } cases[] = {{"RS256 verify, JWKS key by kid (RSA 2048)", rsa, "RS256", "r"},
                 {"ES256 verify, JWKS key by kid (P-256)", ec, "ES256", "e"},
                 {"EdDSA verify, JWKS key by kid (Ed25519)", ed, "EdDSA", "o"}};
    for (size_t i = 0; i < 3; i++) {
        char *tok = sign(cases[i].k, cases[i].alg, cases[i].kid);
        printf("%-44s %8.0f ns\n", cases[i].name, best_of(v, tok, 2000));
        free(tok);
    }
    oms_jwt_verifier_free(v);
    oms_jwks_free(j);
    unlink(path);
    free(n);
    free(e);
    free(x);
    free(y);
    free(ox);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}
#endif

int main(void)
{
    hs256();
#ifndef JWT_BENCH_HS_ONLY
    public_keys();
#endif
    return 0;
}
