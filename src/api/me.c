/* GET /api/v1/me: who the token says you are, where your roles came from,
 * and what that lets you do. */
#include "api/me.h"

#include "http/app.h"

static json_t *strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

int oms_h_me(oms_request *req)
{
    const oms_principal *p = &req->principal;
    json_t *perms = json_array();
    for (int i = OMS_PERM_SCHEMA_READ; i < OMS_PERM__COUNT; i++)
        if (oms_rbac_allows(p->perms, (oms_perm)i))
            json_array_append_new(perms, json_string(oms_perm_name((oms_perm)i)));
    /* With OMS_ROLE_MAP: the map entries the token's groups matched (a
     * group missing here granted nothing); without: null, the claim's
     * values are the roles. */
    json_t *mapping = json_null();
    if (p->mapped) {
        mapping = json_array();
        for (size_t i = 0; i < p->ngrants; i++)
            json_array_append_new(mapping, json_pack("{s:s,s:o}", "group", p->grants[i]->group, "roles",
                                                     strings(p->grants[i]->roles, p->grants[i]->nroles)));
    }
    const char *claim = oms_config_str(req->app->cfg, "JWT_ROLES_CLAIM");
    return oms_resp_json(req, 200,
                         json_pack("{s:s,s:o,s:o,s:s,s:o,s:o}", "subject", p->sub, "roles",
                                   strings(p->roles, p->nroles), "permissions", perms, "roles_claim",
                                   claim ? claim : "roles", "groups", strings(p->groups, p->ngroups),
                                   "role_mapping", mapping));
}
