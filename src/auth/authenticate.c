#include "auth/authenticate.h"

#include <string.h>
#include <strings.h>

#include "auth/jwt.h"
#include "http/app.h"
#include "util/time.h"

int oms_authenticate(oms_request *req, oms_error *err)
{
    const char *h = oms_req_header(req, "Authorization");
    if (!h || !*h)
        return oms_err_set(err, OMS_ENOAUTH, "no credentials");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return oms_err_set(err, OMS_ETOKEN, "not a bearer token");
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    while (len && tok[len - 1] == ' ')
        len--;
    if (len == 0)
        return oms_err_set(err, OMS_ENOAUTH, "empty bearer token");
    oms_jwt_claims claims;
    int rc = oms_jwt_verify(req->app->jwt, tok, len, oms_now_ms() / 1000, &claims, req->arena, err);
    if (rc != OMS_OK)
        return rc == OMS_EEXPIRED ? OMS_EEXPIRED : OMS_ETOKEN;
    req->authenticated = true;
    req->principal.sub = claims.sub;
    req->principal.roles = claims.roles;
    req->principal.nroles = claims.nroles;
    req->principal.perms = oms_rbac_permissions(claims.roles, claims.nroles);
    req->principal.groups = claims.groups;
    req->principal.ngroups = claims.ngroups;
    req->principal.grants = claims.grants;
    req->principal.ngrants = claims.ngrants;
    req->principal.mapped = claims.mapped;
    return OMS_OK;
}
