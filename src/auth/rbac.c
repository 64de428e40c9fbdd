#include "auth/rbac.h"

#include <string.h>

static const char *const k_perm_names[OMS_PERM__COUNT] = {
    [OMS_PERM_UNSET] = "unset",
    [OMS_PERM_PUBLIC] = "public",
    [OMS_PERM_AUTHENTICATED] = "authenticated",
    [OMS_PERM_SCHEMA_READ] = "schema:read",
    [OMS_PERM_SCHEMA_WRITE] = "schema:write",
    [OMS_PERM_BRANCH_CREATE] = "branch:create",
    [OMS_PERM_BRANCH_DELETE] = "branch:delete",
    [OMS_PERM_BRANCH_ADMIN] = "branch:admin",
    [OMS_PERM_PROPOSAL_CREATE] = "proposal:create",
    [OMS_PERM_PROPOSAL_REVIEW] = "proposal:review",
    [OMS_PERM_PROPOSAL_MERGE] = "proposal:merge",
    [OMS_PERM_ACL_READ] = "acl:read",
    [OMS_PERM_ACL_WRITE] = "acl:write",
    [OMS_PERM_LOCK_READ] = "lock:read",
    [OMS_PERM_LOCK_WRITE] = "lock:write",
    [OMS_PERM_LOCK_ADMIN] = "lock:admin",
    [OMS_PERM_INDEX_REBUILD] = "index:rebuild",
    [OMS_PERM_OVERRIDE_REQUEST] = "override:request",
    [OMS_PERM_OVERRIDE_APPROVE] = "override:approve",
    [OMS_PERM_AUDIT_READ] = "audit:read",
    [OMS_PERM_COMPLIANCE_READ] = "compliance:read",
    [OMS_PERM_ALERT_READ] = "alert:read",
    [OMS_PERM_METRICS_READ] = "metrics:read",
    [OMS_PERM_TAG_WRITE] = "tag:write",
    [OMS_PERM_WEBHOOK_ADMIN] = "webhook:admin",
};

#define P(x) OMS_PERMSET(OMS_PERM_##x)
#define VIEWER (P(SCHEMA_READ) | P(LOCK_READ))
/* Every real permission: bits from SCHEMA_READ up to the last one. */
#define ALL_PERMS ((OMS_PERMSET(OMS_PERM__COUNT) - 1) & ~(P(UNSET) | P(PUBLIC) | P(AUTHENTICATED)))

/* SPEC §6.2, as data. */
const oms_role_def oms_roles[] = {
    {"viewer", VIEWER},
    {"developer", VIEWER | P(SCHEMA_WRITE) | P(BRANCH_CREATE) | P(BRANCH_DELETE) | P(PROPOSAL_CREATE) |
                      P(LOCK_WRITE) | P(OVERRIDE_REQUEST) | P(TAG_WRITE)},
    {"reviewer", VIEWER | P(PROPOSAL_REVIEW) | P(PROPOSAL_MERGE) | P(OVERRIDE_REQUEST) | P(TAG_WRITE)},
    {"admin", ALL_PERMS},
    {"auditor", P(SCHEMA_READ) | P(LOCK_READ) | P(ACL_READ) | P(AUDIT_READ) | P(COMPLIANCE_READ) |
                    P(ALERT_READ)},
    {"security_officer", P(SCHEMA_READ) | P(LOCK_READ) | P(ACL_READ) | P(AUDIT_READ) | P(ALERT_READ) |
                             P(OVERRIDE_APPROVE)},
    {"service_account", P(SCHEMA_READ) | P(LOCK_READ) | P(LOCK_WRITE) | P(INDEX_REBUILD) | P(METRICS_READ)},
};
const size_t oms_roles_count = sizeof oms_roles / sizeof oms_roles[0];

const char *oms_perm_name(oms_perm p)
{
    return (p >= 0 && p < OMS_PERM__COUNT) ? k_perm_names[p] : "unknown";
}

bool oms_perm_is_real(oms_perm p) { return p > OMS_PERM_AUTHENTICATED && p < OMS_PERM__COUNT; }

bool oms_perm_branch_scoped(oms_perm p)
{
    switch (p) {
    case OMS_PERM_SCHEMA_READ:
    case OMS_PERM_SCHEMA_WRITE:
    case OMS_PERM_BRANCH_CREATE:
    case OMS_PERM_BRANCH_DELETE:
    case OMS_PERM_BRANCH_ADMIN:
    case OMS_PERM_PROPOSAL_CREATE:
    case OMS_PERM_PROPOSAL_REVIEW:
    case OMS_PERM_PROPOSAL_MERGE:
    case OMS_PERM_LOCK_WRITE:
    case OMS_PERM_LOCK_ADMIN:
    case OMS_PERM_INDEX_REBUILD:
    case OMS_PERM_OVERRIDE_REQUEST:
    case OMS_PERM_OVERRIDE_APPROVE:
        return true;
    default:
        return false;
    }
}

int oms_perm_parse(oms_perm *out, const char *name)
{
    for (int p = OMS_PERM_SCHEMA_READ; p < OMS_PERM__COUNT; p++)
        if (strcmp(k_perm_names[p], name) == 0) {
            *out = (oms_perm)p;
            return 0;
        }
    return -1;
}

oms_permset oms_rbac_permissions(const char *const *roles, size_t nroles)
{
    oms_permset set = 0;
    for (size_t i = 0; i < nroles; i++)
        for (size_t r = 0; r < oms_roles_count; r++)
            if (strcmp(roles[i], oms_roles[r].role) == 0)
                set |= oms_roles[r].perms;
    return set;
}
