#include "auth/role_map.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/rbac.h"
#include "util/alloc.h"

struct oms_role_map {
    oms_role_grant *e;
    size_t n;
    char *buf; /* the groups' bytes */
};

const char *oms_role_canonical(const char *role)
{
    for (size_t i = 0; i < oms_roles_count; i++)
        if (strcmp(oms_roles[i].role, role) == 0)
            return oms_roles[i].role;
    return NULL;
}

void oms_role_map_free(oms_role_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free((void *)m->e[i].roles);
    free(m->e);
    free(m->buf);
    free(m);
}

/* Trims ASCII white space in place; returns the new start. */
static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Whether `s` can be quoted in an error message. */
static bool printable(const char *s)
{
    if (strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

static int entry_error(oms_error *err, size_t idx, const char *group, const char *what)
{
    if (group && printable(group))
        return oms_err_set(err, OMS_ECONFIG, "OMS_ROLE_MAP entry %zu (group \"%s\"): %s", idx, group, what);
    return oms_err_set(err, OMS_ECONFIG, "OMS_ROLE_MAP entry %zu: %s", idx, what);
}

static int parse_roles(oms_role_grant *g, char *list, size_t idx, oms_error *err)
{
    const char **roles = oms_xcalloc(oms_roles_count, sizeof *roles);
    g->roles = roles;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t = trim(t);
        if (!*t)
            continue;
        const char *canon = oms_role_canonical(t);
        if (!canon) {
            char what[256];
            if (printable(t))
                snprintf(what, sizeof what, "unknown role \"%s\" (roles: viewer, developer, reviewer, admin, auditor, "
                         "security_officer, service_account)", t);
            else
                snprintf(what, sizeof what, "unknown role");
            return entry_error(err, idx, g->group, what);
        }
        bool dup = false;
        for (size_t i = 0; i < g->nroles; i++)
            dup |= roles[i] == canon;
        if (!dup)
            roles[g->nroles++] = canon;
    }
    if (g->nroles == 0)
        return entry_error(err, idx, g->group, "no role after '='");
    return OMS_OK;
}

int oms_role_map_parse(oms_role_map **out, const char *spec, oms_error *err)
{
    *out = NULL;
    oms_role_map *m = oms_xcalloc(1, sizeof *m);
    m->buf = oms_xstrdup(spec ? spec : "");
    m->e = oms_xcalloc(OMS_ROLE_MAP_MAX_ENTRIES, sizeof *m->e);
    int rc = OMS_OK;
    size_t idx = 0;
    for (char *save = NULL, *ent = strtok_r(m->buf, ";", &save); ent; ent = strtok_r(NULL, ";", &save)) {
        ent = trim(ent);
        if (!*ent)
            continue; /* "a=admin;" and ";;" are harmless */
        idx++;
        char *eq = strchr(ent, '=');
        if (!eq) {
            rc = entry_error(err, idx, NULL, "expected group=role[,role...]");
            goto cleanup;
        }
        *eq = '\0';
        char *group = trim(ent);
        if (!*group) {
            rc = entry_error(err, idx, NULL, "empty group name");
            goto cleanup;
        }
        if (strlen(group) > OMS_ROLE_MAP_MAX_GROUP) {
            rc = entry_error(err, idx, NULL, "group name longer than 256 bytes");
            goto cleanup;
        }
        if (m->n == OMS_ROLE_MAP_MAX_ENTRIES) {
            rc = oms_err_set(err, OMS_ECONFIG, "OMS_ROLE_MAP has more than %d entries", OMS_ROLE_MAP_MAX_ENTRIES);
            goto cleanup;
        }
        if (oms_role_map_find(m, group)) {
            rc = entry_error(err, idx, group, "group named twice");
            goto cleanup;
        }
        oms_role_grant *g = &m->e[m->n++];
        g->group = group;
        if ((rc = parse_roles(g, eq + 1, idx, err)) != OMS_OK)
            goto cleanup;
    }
    if (m->n == 0) {
        rc = oms_err_set(err, OMS_ECONFIG, "OMS_ROLE_MAP is set but maps no group (expected group=role[,role...];...)");
        goto cleanup;
    }
    *out = m;
    m = NULL;
cleanup:
    oms_role_map_free(m);
    return rc;
}

const oms_role_grant *oms_role_map_find(const oms_role_map *m, const char *group)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (strcmp(m->e[i].group, group) == 0)
            return &m->e[i];
    return NULL;
}

int oms_role_map_apply(const oms_role_map *m, const char *const *groups, size_t ngroups, oms_arena *a,
                       const char ***roles, size_t *nroles, const oms_role_grant ***grants, size_t *ngrants,
                       oms_error *err)
{
    *roles = NULL;
    *grants = NULL;
    *nroles = *ngrants = 0;
    if (ngroups == 0)
        return OMS_OK;
    const char **r = oms_arena_alloc(a, oms_roles_count * sizeof *r);
    const oms_role_grant **g = oms_arena_alloc(a, ngroups * sizeof *g);
    if (!r || !g)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    size_t nr = 0, ng = 0;
    for (size_t i = 0; i < ngroups; i++) {
        const oms_role_grant *grant = oms_role_map_find(m, groups[i]);
        if (!grant)
            continue;
        bool seen = false;
        for (size_t k = 0; k < ng; k++)
            seen |= g[k] == grant;
        if (seen)
            continue; /* the same group listed twice */
        g[ng++] = grant;
        for (size_t j = 0; j < grant->nroles; j++) {
            bool dup = false;
            for (size_t k = 0; k < nr; k++)
                dup |= r[k] == grant->roles[j];
            if (!dup)
                r[nr++] = grant->roles[j];
        }
    }
    *roles = r;
    *nroles = nr;
    *grants = g;
    *ngrants = ng;
    return OMS_OK;
}
