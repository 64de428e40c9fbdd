/* ACL policy documents: ids and strict validation. The same checks run when
 * a policy is written and when stored policies are compiled, so a row that
 * somehow does not pass is refused rather than half-applied. */
#include <string.h>

#include "util/ids.h"
#include "auth/acl.h"
#include "auth/acl_internal.h"
#include "util/encoding.h"
#include "util/time.h"

void oms_acl_new_id(char out[OMS_ACL_ID_LEN + 1])
{
    oms_random_id(out, "acl_");
}

bool oms_acl_id_valid(const char *s)
{
    if (!s || strlen(s) != OMS_ACL_ID_LEN || strncmp(s, "acl_", 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* A JSON string without an embedded NUL (which C would cut it at). */
static bool plain_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static bool role_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

/* A user name is whatever a token's `sub` can be, short of spaces and
 * control characters (1..128 bytes); a role name is [A-Za-z0-9._-]{1,64}.
 * Roles unknown to RBAC are allowed: a policy may grant to a custom role. */
int oms_acl_subject_parse(const char *s, bool *is_role, const char **name, oms_error *err)
{
    if (!s)
        return oms_err_set(err, OMS_EINVAL, "subject must be a string \"user:NAME\" or \"role:NAME\"");
    if (strncmp(s, "user:", 5) == 0) {
        size_t n = strlen(s + 5);
        if (n == 0 || n > 128)
            return oms_err_set(err, OMS_EINVAL, "subject user name must be 1 to 128 bytes");
        for (const unsigned char *p = (const unsigned char *)s + 5; *p; p++)
            if (*p <= 0x20 || *p == 0x7f)
                return oms_err_set(err, OMS_EINVAL, "subject user name may not contain spaces or control characters");
        *is_role = false;
        *name = s + 5;
        return OMS_OK;
    }
    if (strncmp(s, "role:", 5) == 0) {
        size_t n = strlen(s + 5);
        if (n == 0 || n > 64)
            return oms_err_set(err, OMS_EINVAL, "subject role name must be 1 to 64 characters");
        for (const char *p = s + 5; *p; p++)
            if (!role_char(*p))
                return oms_err_set(err, OMS_EINVAL, "subject role name must match [A-Za-z0-9._-]{1,64}");
        *is_role = true;
        *name = s + 5;
        return OMS_OK;
    }
    return oms_err_set(err, OMS_EINVAL, "subject must be \"user:NAME\" or \"role:NAME\"");
}

int oms_acl_perms_parse(const json_t *arr, oms_permset *out, oms_error *err)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > OMS_ACL_MAX_ITEMS)
        return oms_err_set(err, OMS_EINVAL, "permissions must be an array of 1 to %d permission names",
                           OMS_ACL_MAX_ITEMS);
    oms_permset set = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        oms_perm p;
        if (!plain_string(v) || oms_perm_parse(&p, json_string_value(v)) != 0)
            return oms_err_set(err, OMS_EINVAL, "permissions[%zu] is not a known permission", i);
        if (set & OMS_PERMSET(p))
            return oms_err_set(err, OMS_EINVAL, "permissions[%zu] repeats %s", i, oms_perm_name(p));
        set |= OMS_PERMSET(p);
    }
    *out = set;
    return OMS_OK;
}

int oms_acl_branches_check(const json_t *arr, oms_error *err)
{
    if (!json_is_array(arr) || json_array_size(arr) > OMS_ACL_MAX_ITEMS)
        return oms_err_set(err, OMS_EINVAL, "branches must be an array of at most %d globs", OMS_ACL_MAX_ITEMS);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!plain_string(v) || !oms_acl_glob_valid(json_string_value(v)))
            return oms_err_set(err, OMS_EINVAL,
                               "branches[%zu] is not a valid glob: branch name characters [a-z0-9._/-],"
                               " '*' within a segment, '**' across segments",
                               i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_array_get(arr, j)), json_string_value(v)) == 0)
                return oms_err_set(err, OMS_EINVAL, "branches[%zu] repeats an earlier glob", i);
    }
    return OMS_OK;
}

static const char *const k_fields[] = {"subject", "effect", "permissions", "branches", "description",
                                       "issue_id", "issue_ids", NULL};

int oms_acl_policy_check(const json_t *doc, oms_error *err)
{
    if (!json_is_object(doc))
        return oms_err_set(err, OMS_EINVAL,
                           "the body must be {\"subject\", \"effect\", \"permissions\", \"branches\", \"description\"}");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v) {
        bool known = false;
        for (size_t i = 0; k_fields[i]; i++)
            known = known || strcmp(key, k_fields[i]) == 0;
        if (!known)
            return oms_err_set(err, OMS_EINVAL, "unknown field %.64s", key);
    }
    bool is_role;
    const char *name;
    const json_t *subject = json_object_get(doc, "subject");
    int rc = oms_acl_subject_parse(plain_string(subject) ? json_string_value(subject) : NULL, &is_role, &name, err);
    if (rc)
        return rc;
    const json_t *ev = json_object_get(doc, "effect");
    const char *effect = plain_string(ev) ? json_string_value(ev) : NULL;
    if (!effect || (strcmp(effect, "allow") != 0 && strcmp(effect, "deny") != 0))
        return oms_err_set(err, OMS_EINVAL, "effect must be \"allow\" or \"deny\"");
    oms_permset perms;
    if ((rc = oms_acl_perms_parse(json_object_get(doc, "permissions"), &perms, err)))
        return rc;
    /* Required even when empty: an omitted list would silently mean "every
     * branch", which for an allow policy is the widest grant there is. */
    if (!json_object_get(doc, "branches"))
        return oms_err_set(err, OMS_EINVAL, "branches is required ([] applies everywhere)");
    if ((rc = oms_acl_branches_check(json_object_get(doc, "branches"), err)))
        return rc;
    /* A policy that can never match is refused (SPEC §6.2): a branch list on
     * a permission the server never decides for a branch would look like a
     * rule and do nothing. Only new documents are checked; a stored set is
     * compiled as it is. */
    if (json_array_size(json_object_get(doc, "branches")) > 0)
        for (int p = OMS_PERM_SCHEMA_READ; p < OMS_PERM__COUNT; p++)
            if ((perms & OMS_PERMSET(p)) && !oms_perm_branch_scoped((oms_perm)p))
                return oms_err_set(err, OMS_EINVAL,
                                   "the permission %s is never decided for a branch: a policy listing branches for"
                                   " it could never match (use \"branches\": [])",
                                   oms_perm_name((oms_perm)p));
    json_t *d = json_object_get(doc, "description");
    if (d && !(plain_string(d) && json_string_length(d) <= OMS_ACL_MAX_DESCRIPTION))
        return oms_err_set(err, OMS_EINVAL, "description must be a string of at most %d bytes",
                           OMS_ACL_MAX_DESCRIPTION);
    return OMS_OK;
}
