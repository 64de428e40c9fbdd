/* Public-key JWS signatures (RFC 7515/7518/8037) for RS256, ES256 and
 * EdDSA (Ed25519), shared by a PEM key (jwt.c) and JWKS keys (jwks.c).
 * Every function here takes the algorithm from the configuration or the
 * key, never from a token on its own. */
#ifndef OMS_JWS_H
#define OMS_JWS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "auth/jwt.h"
#include "util/error.h"

#define OMS_JWS_MIN_RSA_BITS 2048
#define OMS_JWS_FP_HEX 16 /* fingerprint: first 16 hex digits of a SHA-256 */

/* Whether `pkey` is the kind of key `alg` verifies with: RS256 an RSA key of
 * at least 2048 bits, ES256 an EC key on P-256, EdDSA an Ed25519 key.
 * Errors are OMS_ECONFIG with a reason. */
int oms_jws_key_check(const EVP_PKEY *pkey, oms_jwt_alg alg, oms_error *err);

/* Verifies `sig` over `msg` with `pkey` for `alg` (a public-key algorithm):
 * RS256 needs a signature of exactly the modulus length, ES256 the raw
 * 64-byte r||s of JWS (a DER signature is refused), EdDSA 64 bytes. Both
 * the low-S and the high-S form of an ES256 signature verify, as ECDSA
 * defines (docs/identity.md "Signatures"). */
bool oms_jws_verify(EVP_PKEY *pkey, oms_jwt_alg alg, const char *msg, size_t len, const unsigned char *sig,
                    size_t siglen);

/* "sha256:" + the first 16 hex digits of the SHA-256 of the key's DER
 * SubjectPublicKeyInfo: the same key has the same fingerprint whether it
 * came from a PEM file or a JWK. `out` holds 24 bytes. */
bool oms_jws_fingerprint(const EVP_PKEY *pkey, char out[24]);
/* The same for secret bytes (an HMAC secret). */
void oms_jws_secret_fingerprint(const void *secret, size_t len, char out[24]);

/* "RSA 2048", "EC P-256", "Ed25519" */
void oms_jws_key_describe(const EVP_PKEY *pkey, char *out, size_t cap);

#endif
