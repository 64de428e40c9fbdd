/* GET /api/v1/me: who the token says you are and what that lets you do. */
#include "auth/handlers.h"

int oms_h_me(oms_request *req)
{
    const oms_principal *p = &req->principal;
    json_t *roles = json_array(), *perms = json_array();
    for (size_t i = 0; i < p->nroles; i++)
        json_array_append_new(roles, json_string(p->roles[i]));
    for (int i = OMS_PERM_SCHEMA_READ; i < OMS_PERM__COUNT; i++)
        if (oms_rbac_allows(p->perms, (oms_perm)i))
            json_array_append_new(perms, json_string(oms_perm_name((oms_perm)i)));
    return oms_resp_json(req, 200,
                         json_pack("{s:s,s:o,s:o}", "subject", p->sub, "roles", roles, "permissions", perms));
}
