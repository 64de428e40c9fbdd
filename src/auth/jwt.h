/* JWT verification (SPEC §6.1) and minting for `oms token`.
 *
 * The configuration bounds what is accepted: one HMAC algorithm with its
 * secret (and the previous secret during a rotation), or one or more
 * public-key algorithms (RS256, ES256, EdDSA) with a PEM key or a JWKS.
 * HMAC and public-key algorithms are never enabled together, so key
 * confusion cannot happen; a token's `alg` only selects among the
 * configured algorithms, and with a JWKS the key it names must be a key for
 * that algorithm.
 *
 * A verifier is shared by every worker thread. Its key material can be
 * replaced while it serves (oms_jwt_verifier_reload): each verification
 * uses one whole version, old or new (src/auth/swap.h). */
#ifndef OMS_JWT_H
#define OMS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/role_map.h"
#include "util/arena.h"
#include "util/error.h"

#define OMS_JWT_MAX_TOKEN 8192 /* larger tokens are refused before parsing */
#define OMS_JWT_LEEWAY 60
#define OMS_JWT_DEFAULT_ROLES_CLAIM "roles"

typedef enum {
    OMS_JWT_HS256,
    OMS_JWT_HS384,
    OMS_JWT_HS512,
    OMS_JWT_RS256,
    OMS_JWT_ES256,
    OMS_JWT_EDDSA, /* Ed25519 (RFC 8037) */
} oms_jwt_alg;

#define OMS_JWT_ALG_BIT(a) (1u << (a))
#define OMS_JWT_PUBLIC_ALGS                                                                        \
    (OMS_JWT_ALG_BIT(OMS_JWT_RS256) | OMS_JWT_ALG_BIT(OMS_JWT_ES256) | OMS_JWT_ALG_BIT(OMS_JWT_EDDSA))

typedef struct oms_jwks oms_jwks;

typedef struct {
    oms_jwt_alg alg; /* HMAC: the algorithm; public-key: the one accepted when `algs` is 0 */
    unsigned algs;   /* public-key: the accepted set (OMS_JWT_ALG_BIT); 0: just `alg` */
    const unsigned char *secret; /* HS*: required, >= 32 bytes (checked by config) */
    size_t secret_len;
    const unsigned char *previous_secret; /* HS*: optional, accepted during rotation */
    size_t previous_secret_len;
    const char *public_key_file; /* public-key: a PEM public key (SubjectPublicKeyInfo), one algorithm */
    oms_jwks *jwks;              /* public-key: or a key set (borrowed; outlives the verifier) */
    const char *issuer;          /* checked when non-NULL; required with a JWKS */
    const char *audience;        /* checked when non-NULL; `aud` may be string or array; required with a JWKS */
    const char *roles_claim;     /* a claim name or dotted path; NULL: "roles" */
    const char *role_map;        /* OMS_ROLE_MAP text, or NULL */
    int leeway;                  /* seconds; OMS_JWT_LEEWAY */
} oms_jwt_config;

typedef struct oms_jwt_verifier oms_jwt_verifier;

typedef struct {
    const char *sub;      /* arena-owned */
    const char **roles;   /* effective OMS roles: the claim's values, or what the role map grants them */
    size_t nroles;
    const char **groups;  /* the roles claim's values as sent (arena-owned) */
    size_t ngroups;
    const oms_role_grant **grants; /* with a role map: its entries that applied */
    size_t ngrants;
    bool mapped; /* a role map is configured */
    int64_t exp, iat, nbf; /* 0 when absent (exp is never absent after success) */
} oms_jwt_claims;

int oms_jwt_alg_parse(oms_jwt_alg *out, const char *name);
const char *oms_jwt_alg_name(oms_jwt_alg alg);
bool oms_jwt_alg_is_hmac(oms_jwt_alg alg);
/* JWT_ALGORITHM: one HMAC algorithm, or a comma-separated list of public-key
 * ones ("RS256,ES256"). *mask gets the set, *first the first named. */
int oms_jwt_alg_list_parse(unsigned *mask, oms_jwt_alg *first, const char *list);
/* JWT_ROLES_CLAIM: a name, or a dotted path of at most 8 non-empty names. */
int oms_jwt_roles_claim_check(const char *claim, oms_error *err);

/* Copies what it needs from cfg (keys are loaded now). */
int oms_jwt_verifier_new(oms_jwt_verifier **out, const oms_jwt_config *cfg, oms_error *err);
/* Replaces the secrets, the PEM key, the issuer and the audience with
 * those of `cfg`, atomically for requests in flight. The algorithms, the
 * JWKS, the roles claim and the role map stay those given at creation.
 * On failure nothing changes. Callers serialise reloads. */
int oms_jwt_verifier_reload(oms_jwt_verifier *v, const oms_jwt_config *cfg, oms_error *err);
void oms_jwt_verifier_free(oms_jwt_verifier *v);
/* Fingerprints of the current key material (never the material):
 * {"JWT_SECRET": "sha256:...", "JWT_PREVIOUS_SECRET": ..., "JWT_PUBLIC_KEY_FILE": ...},
 * members present when configured. New reference. */
json_t *oms_jwt_verifier_fingerprints(oms_jwt_verifier *v);

/* Verifies a compact JWS. Returns OMS_OK and fills `out` (strings in `a`), or
 * OMS_ETOKEN for anything malformed, forged, wrong-algorithm, not yet valid or
 * missing a claim, or OMS_EEXPIRED when `exp` + leeway has passed. err->msg
 * holds a short internal reason for logs; clients only see the code.
 * With a remote JWKS, a token naming an unknown `kid` may wait for one
 * rate-limited refetch of the set (jwks.h). */
int oms_jwt_verify(const oms_jwt_verifier *v, const char *token, size_t len, int64_t now,
                   oms_jwt_claims *out, oms_arena *a, oms_error *err);
/* The same without the calling thread's memo of verified tokens
 * (auth/token_memo.h), which oms_jwt_verify asks first and fills on
 * success: every call decodes, checks the signature and parses the claims
 * (benchmarks of the verification itself). */
int oms_jwt_verify_full(const oms_jwt_verifier *v, const char *token, size_t len, int64_t now,
                        oms_jwt_claims *out, oms_arena *a, oms_error *err);

/* Mints an HMAC token (HS* only): header {"alg","typ":"JWT"}, claims
 * {sub, roles (at roles_claim, NULL: "roles"), iat, nbf, exp = now + ttl,
 * iss/aud when given}. Returns a malloc'd string in *out. */
typedef struct {
    oms_jwt_alg alg;
    const unsigned char *secret;
    size_t secret_len;
    const char *sub;
    const char *const *roles;
    size_t nroles;
    const char *roles_claim;
    int64_t now, ttl;
    const char *issuer, *audience;
} oms_jwt_mint_args;
int oms_jwt_mint(char **out, const oms_jwt_mint_args *args, oms_error *err);
int oms_jwt_sign_hmac(char **out, oms_jwt_alg alg, const unsigned char *secret, size_t secret_len,
                      const char *sub, const char *const *roles, size_t nroles, int64_t now,
                      int64_t ttl, const char *issuer, const char *audience, oms_error *err);

#endif
