#include "auth/authenticate.h"

#include "util/time.h"

int oms_auth_verify_token(const oms_jwt_verifier *v, const char *tok, size_t len, oms_arena *arena,
                          oms_principal *out, oms_error *err)
{
    oms_jwt_claims claims;
    int rc = oms_jwt_verify(v, tok, len, oms_now_ms() / 1000, &claims, arena, err);
    if (rc != OMS_OK)
        return rc == OMS_EEXPIRED ? OMS_EEXPIRED : OMS_ETOKEN;
    out->sub = claims.sub;
    out->roles = claims.roles;
    out->nroles = claims.nroles;
    out->perms = oms_rbac_permissions(claims.roles, claims.nroles);
    out->groups = claims.groups;
    out->ngroups = claims.ngroups;
    out->grants = claims.grants;
    out->ngrants = claims.ngrants;
    out->mapped = claims.mapped;
    return OMS_OK;
}
