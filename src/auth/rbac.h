/* Role-based access (SPEC §6.2). Permissions are bits; a principal's
 * effective set is the OR of its roles' sets, computed once per request, so a
 * decision is one AND. Unknown roles grant nothing; deny by default. */
#ifndef OMS_RBAC_H
#define OMS_RBAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    OMS_PERM_UNSET = 0,        /* a route with this cannot be registered */
    OMS_PERM_PUBLIC,           /* route marker: no authentication (exact list) */
    OMS_PERM_AUTHENTICATED,    /* route marker: any valid token */
    OMS_PERM_SCHEMA_READ,
    OMS_PERM_SCHEMA_WRITE,
    OMS_PERM_BRANCH_CREATE,
    OMS_PERM_BRANCH_DELETE,
    OMS_PERM_BRANCH_ADMIN,
    OMS_PERM_PROPOSAL_CREATE,
    OMS_PERM_PROPOSAL_REVIEW,
    OMS_PERM_PROPOSAL_MERGE,
    OMS_PERM_ACL_READ,
    OMS_PERM_ACL_WRITE,
    OMS_PERM_LOCK_READ,
    OMS_PERM_LOCK_WRITE,
    OMS_PERM_LOCK_ADMIN,
    OMS_PERM_INDEX_REBUILD,
    OMS_PERM_OVERRIDE_REQUEST,
    OMS_PERM_OVERRIDE_APPROVE,
    OMS_PERM_AUDIT_READ,
    OMS_PERM_COMPLIANCE_READ,
    OMS_PERM_ALERT_READ,
    OMS_PERM_METRICS_READ,
    OMS_PERM_TAG_WRITE,
    OMS_PERM_WEBHOOK_ADMIN,
    OMS_PERM__COUNT
} oms_perm;

typedef uint64_t oms_permset;

#define OMS_PERMSET(p) ((oms_permset)1 << (p))

const char *oms_perm_name(oms_perm p);       /* "schema:read"; markers: "public", "authenticated" */
int oms_perm_parse(oms_perm *out, const char *name); /* real permissions only */
bool oms_perm_is_real(oms_perm p);
/* Whether the server ever decides `p` for a branch (SPEC §6.2): on routes
 * with {branch}, or on the branch a route's operation changes or reads (a
 * proposal's target, a lock's branch, a diff's ends). The others (acl:*,
 * audit:read, compliance:read, alert:read, metrics:read, lock:read) are
 * decided without a branch, so a policy naming branches for them could
 * never match. */
bool oms_perm_branch_scoped(oms_perm p);

/* Effective permissions of a role list. */
oms_permset oms_rbac_permissions(const char *const *roles, size_t nroles);
static inline bool oms_rbac_allows(oms_permset set, oms_perm p)
{
    return p > OMS_PERM_AUTHENTICATED && p < OMS_PERM__COUNT && (set & OMS_PERMSET(p)) != 0;
}

/* The role table, for /api/v1/me and docs. */
typedef struct {
    const char *role;
    oms_permset perms;
} oms_role_def;
extern const oms_role_def oms_roles[];
extern const size_t oms_roles_count;

#endif
