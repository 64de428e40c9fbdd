/* Who is asking: the verified token's subject and roles, with the effective
 * permission set computed once per request. */
#ifndef OMS_PRINCIPAL_H
#define OMS_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/rbac.h"
#include "auth/role_map.h"

typedef struct oms_principal {
    const char *sub;
    const char **roles; /* effective OMS roles */
    size_t nroles;
    oms_permset perms;
    /* Where the roles came from (GET /api/v1/me): the roles claim's values
     * as sent and, with OMS_ROLE_MAP, the map entries that applied. */
    const char **groups;
    size_t ngroups;
    const oms_role_grant **grants;
    size_t ngrants;
    bool mapped;
} oms_principal;

/* Identity has two questions, answered on their safe sides
 * (docs/security.md, "Hardening"):
 *  - "is this the same principal?" for a right that belongs to one subject
 *    (use or cancel one's override, write under or heartbeat one's lock, act
 *    as a proposal's author): the subject exactly as the issuer wrote it,
 *    strcmp; a case-variant is somebody else and gains nothing;
 *  - "could this be the same person?" for separation of duties (no
 *    self-approval of a proposal or an override, one approver counted
 *    once): subjects equal ignoring ASCII case are the same person, so
 *    "Alice" cannot approve what "alice" wrote, whatever the issuer does
 *    with case. Bytes outside ASCII are compared exactly. */
static inline bool oms_sub_same_person(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x | 0x20);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y | 0x20);
        if (x != y)
            return false;
        if (!x)
            return true;
    }
}

#endif
