/* Who is asking: the verified token's subject and roles, with the effective
 * permission set computed once per request. */
#ifndef OMS_PRINCIPAL_H
#define OMS_PRINCIPAL_H

#include <stddef.h>

#include "auth/rbac.h"

typedef struct {
    const char *sub;
    const char **roles;
    size_t nroles;
    oms_permset perms;
} oms_principal;

#endif
