/* Provider groups to OMS roles (OMS_ROLE_MAP, SPEC §6.1):
 *
 *     ontology-admins=admin;ontology-devs=developer,reviewer
 *
 * When a map is configured, the values of the roles claim are groups and
 * only mapped groups grant roles: a group that happens to be called
 * "admin" grants nothing unless the map says so. Every role on the right is
 * checked against the role table at start-up. Group names are compared
 * exactly (case matters). */
#ifndef OMS_ROLE_MAP_H
#define OMS_ROLE_MAP_H

#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"

#define OMS_ROLE_MAP_MAX_ENTRIES 256
#define OMS_ROLE_MAP_MAX_GROUP 256

typedef struct {
    const char *group;
    const char *const *roles; /* names of the role table (static storage) */
    size_t nroles;
} oms_role_grant;

typedef struct oms_role_map oms_role_map;

/* Parses and validates a map. The error names the entry and never echoes
 * bytes that are not printable ASCII. */
int oms_role_map_parse(oms_role_map **out, const char *spec, oms_error *err);
void oms_role_map_free(oms_role_map *m);

/* The grant of `group`, or NULL when the map does not name it. */
const oms_role_grant *oms_role_map_find(const oms_role_map *m, const char *group);

/* The role table's name for `role` (static storage), or NULL. */
const char *oms_role_canonical(const char *role);

/* Effective roles of `groups` (deduplicated, in table order of first grant)
 * and the grants that applied, in `a`. Grants point into the map, which
 * must outlive them. */
int oms_role_map_apply(const oms_role_map *m, const char *const *groups, size_t ngroups, oms_arena *a,
                       const char ***roles, size_t *nroles, const oms_role_grant ***grants, size_t *ngrants,
                       oms_error *err);

#endif
