/* A thread's memo of the bearer tokens it verified (docs/security.md,
 * "Verified-token memo"). A client sends the same token with every request
 * until it expires; verifying it again (base64, a MAC or a public-key
 * signature, the claims' JSON) is the largest part of authenticating it.
 *
 * An entry is the whole token, compared byte for byte in constant time,
 * with the claims its verification produced. It answers only while:
 *  - the verifier is the one that verified it (a verifier's id, never
 *    reused), and
 *  - no key material changed since the verification began (the swap
 *    generation, oms_swap_generation: every reload of the secrets or the
 *    PEM key and every new JWKS key set bumps it), and
 *  - the token's time claims still admit it at the request's `now`
 *    (exp + leeway not passed, nbf - leeway reached).
 * Otherwise the caller verifies in full, which gives the refusal its
 * reason. Only successes are remembered: a refused token is verified (and
 * refused) every time. */
#ifndef OMS_TOKEN_MEMO_H
#define OMS_TOKEN_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "util/arena.h"

/* The claims remembered for `token` by verifier `verifier_id`, copied into
 * `a`; false when there is no such entry or it no longer answers. */
bool oms_token_memo_get(uint64_t verifier_id, const char *token, size_t len, int64_t now, int64_t leeway,
                        oms_jwt_claims *out, oms_arena *a);

/* Remembers a successful verification that began at swap generation
 * `generation`. */
void oms_token_memo_put(uint64_t verifier_id, uint64_t generation, const char *token, size_t len,
                        const oms_jwt_claims *c);

/* Answers the calling thread's memo gave (tests, benchmarks). */
uint64_t oms_token_memo_hits(void);

#endif
