/* JSON Web Key Sets (RFC 7517) from a file, a URL, or an OpenID Connect
 * issuer's discovery document (SPEC §6.1).
 *
 * A key set is immutable once parsed and is read by every worker thread
 * through a hazard-pointer swap (swap.h): a refresh builds a new set and
 * swaps it in; requests in flight finish with the set they started with.
 *
 * Each usable key verifies exactly one algorithm, derived from its type:
 * RSA -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA. A key whose `alg`,
 * `use` or `key_ops` disagree, of another type or curve, an RSA modulus
 * under 2048 bits, or an algorithm JWT_ALGORITHM does not accept, is left
 * out of the set (and reported). A set holding private key material is
 * refused whole. A token's `jku`, `x5u`, `jwk` and `x5c` header parameters
 * are never looked at: keys come from the configured source only. */
#ifndef OMS_JWKS_H
#define OMS_JWKS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth/jwt.h"
#include "util/error.h"

#define OMS_JWKS_MAX_BYTES (1 << 20) /* a key set or discovery document */
#define OMS_JWKS_MAX_KID 256

typedef struct {
    char *kid;       /* NULL when the JWK has none */
    oms_jwt_alg alg; /* the one algorithm this key verifies */
    EVP_PKEY *pkey;
    char fp[24];   /* oms_jws_fingerprint */
    char desc[32]; /* "RSA 2048" */
} oms_jwk;

typedef struct {
    oms_jwk *keys;
    size_t n;
    json_t *skipped; /* [{index, kid?, reason}] keys left out */
} oms_keyset;

/* Parses a JWKS document, keeping the keys usable for `algs` (a mask of
 * OMS_JWT_ALG_BIT). Refused (OMS_EINVAL): not a JSON object with a `keys`
 * array, private key material, no usable key. */
int oms_keyset_parse(oms_keyset **out, const char *json, size_t len, unsigned algs, oms_error *err);
void oms_keyset_free(oms_keyset *ks);

typedef enum {
    OMS_JWKS_VALID = 0,
    OMS_JWKS_NO_KEYS,      /* no key set was ever loaded: fail closed */
    OMS_JWKS_UNKNOWN_KID,  /* no key with this kid (without kid: none for the alg) */
    OMS_JWKS_KEY_MISMATCH, /* the kid names a key for another algorithm */
    OMS_JWKS_AMBIGUOUS,    /* no kid, and more than one key for the alg */
    OMS_JWKS_BAD_SIGNATURE,
} oms_jwks_result;

/* Chooses the key by `kid` (NULL: absent) and `alg`, then verifies. */
oms_jwks_result oms_keyset_verify(const oms_keyset *ks, oms_jwt_alg alg, const char *kid, size_t kidlen,
                                  const char *msg, size_t len, const unsigned char *sig, size_t siglen);

/* ---- the source ---- */

typedef struct {
    const char *file;        /* JWT_JWKS_FILE */
    const char *url;         /* JWT_JWKS_URL */
    const char *oidc_issuer; /* JWT_OIDC_ISSUER: the JWKS URL comes from discovery */
    unsigned algs;           /* accepted algorithms (JWT_ALGORITHM) */
    int refetch_interval_s;  /* unknown-kid fetches at most once per interval; shortest cache time */
    int cache_s;             /* cache time without a max-age */
    int timeout_ms;          /* per HTTP request; connecting gets at most half */
} oms_jwks_config;

typedef struct oms_jwks oms_jwks;

/* The outcome of one load (a file read or a fetch), for audit and alerts. */
typedef struct {
    bool ok;
    bool changed;        /* ok: the keys differ from the previous set */
    bool had_keys;       /* a set was loaded before this attempt */
    int failures;        /* consecutive failures, this one included; 0 when ok */
    int recovered_after; /* ok after this many failures */
    const char *trigger; /* start, schedule, unknown_kid, sighup, file_change */
    const char *error;   /* !ok: why (no secrets; URLs are not secret) */
    const json_t *detail; /* {source, keys:[{kid, alg, key, sha256}], added, removed, skipped} */
} oms_jwks_report;
typedef void (*oms_jwks_report_fn)(void *ctx, const oms_jwks_report *r);

/* No I/O yet. Refused: not exactly one of file/url/oidc_issuer, a URL that
 * is not https (or http to a loopback address). */
int oms_jwks_new(oms_jwks **out, const oms_jwks_config *cfg, oms_error *err);
void oms_jwks_free(oms_jwks *j); /* stops the refresher first */
void oms_jwks_set_reporter(oms_jwks *j, oms_jwks_report_fn fn, void *ctx);
bool oms_jwks_is_remote(const oms_jwks *j);
const char *oms_jwks_location(const oms_jwks *j); /* the file, URL or issuer */

/* Loads now, on the calling thread (the file, or discovery + fetch), and
 * reports. On failure the current set, if any, stays. */
int oms_jwks_load(oms_jwks *j, const char *trigger, oms_error *err);

/* Remote sources: a thread refreshes the set when its max-age runs out,
 * retries failures with back-off, and serves fetch requests. It is created
 * with every signal blocked. */
int oms_jwks_start(oms_jwks *j, oms_error *err);
void oms_jwks_stop(oms_jwks *j);
/* Asks the thread for a fetch now (SIGHUP) and returns at once. */
void oms_jwks_refresh(oms_jwks *j, const char *trigger);

/* The hot path: verifies with the current set. */
oms_jwks_result oms_jwks_verify(oms_jwks *j, oms_jwt_alg alg, const char *kid, size_t kidlen, const char *msg,
                                size_t len, const unsigned char *sig, size_t siglen);
/* After OMS_JWKS_UNKNOWN_KID or OMS_JWKS_NO_KEYS from a remote source: at
 * most one caller per JWT_JWKS_REFETCH_SECONDS gets a fetch, and waits for
 * it (bounded by the timeouts); everyone else returns false at once. True
 * when a fetch completed, so the caller may look once more. Never call it
 * while holding a swap slot. */
bool oms_jwks_refetch_unknown(oms_jwks *j);
/* Whether this thread may wait for a refetch (default: yes). The event
 * loop says no while it tries to answer a request itself: an unknown key
 * then fails that attempt without claiming the interval, and the handler
 * the request goes to fetches. */
void oms_jwks_thread_may_fetch(bool may);

/* The current keys as [{kid, alg, key, sha256}] (a new reference), or NULL
 * when no set is loaded. */
json_t *oms_jwks_describe(oms_jwks *j);

/* https://..., or http:// to a loopback address (tests, a local sidecar);
 * never with user:password. `name` is the setting, for the message. */
int oms_jwks_url_check(const char *name, const char *url, oms_error *err);

#endif
