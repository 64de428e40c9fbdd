#include "auth/jws.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "util/encoding.h"

#define ES256_SIG_LEN 64
#define ED25519_SIG_LEN 64

int oms_jws_key_check(const EVP_PKEY *pkey, oms_jwt_alg alg, oms_error *err)
{
    switch (alg) {
    case OMS_JWT_RS256:
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return oms_err_set(err, OMS_ECONFIG, "RS256 requires an RSA public key");
        if (EVP_PKEY_get_bits(pkey) < OMS_JWS_MIN_RSA_BITS)
            return oms_err_set(err, OMS_ECONFIG, "RSA key shorter than %d bits", OMS_JWS_MIN_RSA_BITS);
        return OMS_OK;
    case OMS_JWT_ES256: {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_is_a(pkey, "EC") || !EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) ||
            strcmp(group, SN_X9_62_prime256v1) != 0) {
            ERR_clear_error();
            return oms_err_set(err, OMS_ECONFIG, "ES256 requires an EC P-256 public key");
        }
        return OMS_OK;
    }
    case OMS_JWT_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519"))
            return oms_err_set(err, OMS_ECONFIG, "EdDSA requires an Ed25519 public key");
        return OMS_OK;
    default:
        return oms_err_set(err, OMS_ECONFIG, "not a public-key algorithm");
    }
}

/* JWS carries ECDSA signatures as raw r||s (RFC 7518 §3.4); OpenSSL wants
 * DER. r and s are taken as unsigned big-endian integers whatever their
 * value; OpenSSL's verification then refuses r or s outside [1, n-1]. */
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

/* `md` NULL for EdDSA, which hashes internally (one-shot only). */
static bool digest_verify(EVP_PKEY *pkey, const EVP_MD *md, const char *msg, size_t len, const unsigned char *sig,
                          size_t siglen)
{
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1)
        ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error(); /* a failed verify leaves errors on this thread's queue */
    return ok;
}

bool oms_jws_verify(EVP_PKEY *pkey, oms_jwt_alg alg, const char *msg, size_t len, const unsigned char *sig,
                    size_t siglen)
{
    switch (alg) {
    case OMS_JWT_RS256:
        /* JWS requires the full modulus length; OpenSSL would accept shorter. */
        if (!EVP_PKEY_is_a(pkey, "RSA") || siglen != (size_t)EVP_PKEY_get_size(pkey))
            return false;
        return digest_verify(pkey, EVP_sha256(), msg, len, sig, siglen);
    case OMS_JWT_ES256: {
        unsigned char der[80];
        if (!EVP_PKEY_is_a(pkey, "EC") || siglen != ES256_SIG_LEN)
            return false;
        long dlen = es256_raw_to_der(der, sizeof der, sig);
        return dlen > 0 && digest_verify(pkey, EVP_sha256(), msg, len, der, (size_t)dlen);
    }
    case OMS_JWT_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519") || siglen != ED25519_SIG_LEN)
            return false;
        return digest_verify(pkey, NULL, msg, len, sig, siglen);
    default:
        return false;
    }
}

bool oms_jws_fingerprint(const EVP_PKEY *pkey, char out[24])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0) {
        ERR_clear_error();
        snprintf(out, 24, "sha256:?");
        return false;
    }
    oms_jws_secret_fingerprint(der, (size_t)n, out);
    OPENSSL_free(der);
    return true;
}

void oms_jws_secret_fingerprint(const void *secret, size_t len, char out[24])
{
    unsigned char h[32];
    char hex[65];
    oms_sha256(h, secret, len);
    oms_hex(hex, h, sizeof h);
    snprintf(out, 24, "sha256:%.*s", OMS_JWS_FP_HEX, hex);
}

void oms_jws_key_describe(const EVP_PKEY *pkey, char *out, size_t cap)
{
    char group[64];
    size_t glen = 0;
    if (EVP_PKEY_is_a(pkey, "RSA"))
        snprintf(out, cap, "RSA %d", EVP_PKEY_get_bits(pkey));
    else if (EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen))
        snprintf(out, cap, "EC %s", strcmp(group, SN_X9_62_prime256v1) == 0 ? "P-256" : group);
    else if (EVP_PKEY_is_a(pkey, "ED25519"))
        snprintf(out, cap, "Ed25519");
    else
        snprintf(out, cap, "%s", EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown");
    ERR_clear_error();
}
