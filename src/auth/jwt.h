/* JWT verification (SPEC §6.1) and minting for `oms token`.
 * Exactly one algorithm is accepted: the configured one. HMAC and public-key
 * algorithms are never enabled together, so key confusion cannot happen. */
#ifndef OMS_JWT_H
#define OMS_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/error.h"

#define OMS_JWT_MAX_TOKEN 8192 /* larger tokens are refused before parsing */
#define OMS_JWT_LEEWAY 60

typedef enum { OMS_JWT_HS256, OMS_JWT_HS384, OMS_JWT_HS512, OMS_JWT_RS256, OMS_JWT_ES256 } oms_jwt_alg;

typedef struct {
    oms_jwt_alg alg;
    const unsigned char *secret; /* HS*: required, >= 32 bytes (checked by config) */
    size_t secret_len;
    const unsigned char *previous_secret; /* HS*: optional, accepted during rotation */
    size_t previous_secret_len;
    const char *public_key_file; /* RS256/ES256: PEM public key (SubjectPublicKeyInfo) */
    const char *issuer;          /* checked when non-NULL */
    const char *audience;        /* checked when non-NULL; `aud` may be string or array */
    int leeway;                  /* seconds; OMS_JWT_LEEWAY */
} oms_jwt_config;

typedef struct oms_jwt_verifier oms_jwt_verifier;

typedef struct {
    const char *sub;     /* arena-owned */
    const char **roles;  /* arena-owned, nroles entries */
    size_t nroles;
    int64_t exp, iat, nbf; /* 0 when absent (exp is never absent after success) */
} oms_jwt_claims;

int oms_jwt_alg_parse(oms_jwt_alg *out, const char *name);
const char *oms_jwt_alg_name(oms_jwt_alg alg);

/* Copies what it needs from cfg (keys are loaded now). */
int oms_jwt_verifier_new(oms_jwt_verifier **out, const oms_jwt_config *cfg, oms_error *err);
void oms_jwt_verifier_free(oms_jwt_verifier *v);

/* Verifies a compact JWS. Returns OMS_OK and fills `out` (strings in `a`), or
 * OMS_ETOKEN for anything malformed, forged, wrong-algorithm, not yet valid or
 * missing a claim, or OMS_EEXPIRED when `exp` + leeway has passed. err->msg
 * holds a short internal reason for logs; clients only see the code. */
int oms_jwt_verify(const oms_jwt_verifier *v, const char *token, size_t len, int64_t now,
                   oms_jwt_claims *out, oms_arena *a, oms_error *err);

/* Mints an HMAC token (HS* only): header {"alg","typ":"JWT"}, claims
 * {sub, roles, iat, nbf, exp = now + ttl, iss/aud when given}. Returns a
 * malloc'd string in *out. */
int oms_jwt_sign_hmac(char **out, oms_jwt_alg alg, const unsigned char *secret, size_t secret_len,
                      const char *sub, const char *const *roles, size_t nroles, int64_t now,
                      int64_t ttl, const char *issuer, const char *audience, oms_error *err);

#endif
