/* The rules `oms serve` and `oms config check` apply to the identity
 * settings (JWT secret rules of SPEC §2, identity provider rules of §6.1).
 * They live here, not in src/infra/config.c: the configuration table sits
 * below auth and knows nothing of tokens. */
#include "auth/config_rules.h"

#include <stdbool.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/role_map.h"

/* Names the refused value only when it is short printable ASCII (it is not
 * a secret, but it is echoed to a terminal). */
static int algorithm_refused(const char *alg, oms_error *err)
{
    bool printable = alg && *alg && strlen(alg) <= 32;
    for (const char *p = alg; printable && *p; p++)
        printable = *p >= 0x20 && *p <= 0x7e;
    static const char rule[] = "it must be HS256, HS384 or HS512, or RS256, ES256 and EdDSA alone or as a "
                               "comma-separated list";
    if (printable)
        return oms_err_set(err, OMS_ECONFIG, "JWT_ALGORITHM=%s is refused: %s", alg, rule);
    return oms_err_set(err, OMS_ECONFIG, "JWT_ALGORITHM is refused: %s", rule);
}

/* The public-key sources, in the order their names are reported. */
static const char *const k_key_settings[] = {"JWT_PUBLIC_KEY_FILE", "JWT_JWKS_FILE", "JWT_JWKS_URL",
                                             "JWT_OIDC_ISSUER"};
#define N_KEY_SETTINGS (sizeof k_key_settings / sizeof k_key_settings[0])

static int validate_public_key(const oms_config *c, const char *alg, unsigned algs, oms_jwt_alg first,
                               oms_error *err)
{
    const char *set[N_KEY_SETTINGS];
    size_t n = 0;
    for (size_t i = 0; i < N_KEY_SETTINGS; i++)
        if (oms_config_str(c, k_key_settings[i]))
            set[n++] = k_key_settings[i];
    if (n == 0)
        return oms_err_set(err, OMS_ECONFIG,
                           "JWT_ALGORITHM=%s needs JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE, JWT_JWKS_URL or JWT_OIDC_ISSUER",
                           alg);
    if (n > 1)
        return oms_err_set(err, OMS_ECONFIG, "%s and %s are both set: use one source of keys", set[0], set[1]);
    if (strcmp(set[0], "JWT_PUBLIC_KEY_FILE") == 0) {
        if (algs != OMS_JWT_ALG_BIT(first))
            return oms_err_set(err, OMS_ECONFIG,
                               "JWT_PUBLIC_KEY_FILE holds one key: JWT_ALGORITHM must name one algorithm (a JWKS can "
                               "hold several)");
        return OMS_OK;
    }
    /* A provider signs tokens for many applications: without both checks
     * any of its tokens would be accepted here. */
    if (!oms_config_str(c, "JWT_ISSUER"))
        return oms_err_set(err, OMS_ECONFIG, "%s needs JWT_ISSUER (the `iss` of the provider's tokens)", set[0]);
    if (!oms_config_str(c, "JWT_AUDIENCE"))
        return oms_err_set(err, OMS_ECONFIG, "%s needs JWT_AUDIENCE (the `aud` the provider gives tokens for OMS)",
                           set[0]);
    if (strcmp(set[0], "JWT_JWKS_FILE") != 0)
        return oms_jwks_url_check(set[0], oms_config_str(c, set[0]), err);
    return OMS_OK;
}

int oms_config_validate_serve(const oms_config *c, oms_error *err)
{
    const char *alg = oms_config_str(c, "JWT_ALGORITHM");
    /* The algorithm first: every other rule depends on it, and an algorithm
     * that is not on the list ("none" above all) must be refused as itself,
     * not mistaken for a public-key one and blamed on another setting. */
    unsigned algs;
    oms_jwt_alg first;
    if (oms_jwt_alg_list_parse(&algs, &first, alg) != OMS_OK)
        return algorithm_refused(alg, err);
    const char *secret = oms_config_str(c, "JWT_SECRET");
    const char *prev = oms_config_str(c, "JWT_PREVIOUS_SECRET");
    int rc;
    if (oms_jwt_alg_is_hmac(first)) {
        for (size_t i = 0; i < N_KEY_SETTINGS; i++)
            if (oms_config_str(c, k_key_settings[i]))
                return oms_err_set(err, OMS_ECONFIG,
                                   "%s is set but JWT_ALGORITHM=%s is an HMAC algorithm: set JWT_ALGORITHM to RS256, "
                                   "ES256 or EdDSA (or a list of them)",
                                   k_key_settings[i], alg);
        if (!secret)
            return oms_err_set(err, OMS_ECONFIG, "no JWT secret: set JWT_SECRET or JWT_SECRET_FILE");
        if ((rc = oms_config_check_secret("JWT_SECRET", secret, err)) != OMS_OK)
            return rc;
        if (prev && (rc = oms_config_check_secret("JWT_PREVIOUS_SECRET", prev, err)) != OMS_OK)
            return rc;
    } else {
        /* Key confusion guard: a public-key algorithm never sees an HMAC secret. */
        if (secret || prev)
            return oms_err_set(err, OMS_ECONFIG, "JWT_SECRET must not be set with JWT_ALGORITHM=%s", alg);
        if ((rc = validate_public_key(c, alg, algs, first, err)) != OMS_OK)
            return rc;
    }
    if ((rc = oms_jwt_roles_claim_check(oms_config_str(c, "JWT_ROLES_CLAIM"), err)) != OMS_OK)
        return rc;
    const char *map = oms_config_str(c, "OMS_ROLE_MAP");
    if (map) {
        oms_role_map *m = NULL;
        if ((rc = oms_role_map_parse(&m, map, err)) != OMS_OK)
            return rc;
        oms_role_map_free(m);
    }
    return oms_config_validate_common(c, err);
}

