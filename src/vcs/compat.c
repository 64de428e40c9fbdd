#include "vcs/compat.h"

#include <string.h>

#include "governance/overrides.h"
#include "store/vcs_sql.h"

static void add_entries(json_t *out, const json_t *changes, const json_t *only, const char *against)
{
    size_t i, j;
    json_t *ch, *f;
    json_array_foreach(changes, i, ch) {
        const char *res = json_string_value(json_object_get(ch, "resource"));
        if (!res || (only && !json_object_get(only, res)))
            continue;
        json_array_foreach(json_object_get(ch, "fields"), j, f) {
            if (!json_is_true(json_object_get(f, "breaking")))
                continue;
            json_t *e = json_pack("{s:s,s:O,s:O,s:O}", "resource", res, "path", json_object_get(f, "path"), "rule",
                                  json_object_get(f, "rule") ? json_object_get(f, "rule") : json_null(), "reason",
                                  json_object_get(f, "reason") ? json_object_get(f, "reason") : json_null());
            if (e && against)
                json_object_set_new(e, "against", json_string(against));
            if (e)
                json_array_append_new(out, e);
        }
    }
}

json_t *oms_vcs_breaking_entries(const json_t *changes)
{
    json_t *out = json_array();
    if (out)
        add_entries(out, changes, NULL, NULL);
    return out;
}

int oms_vcs_compat_check(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *head,
                         const oms_snapshot *after, const json_t *changes, oms_error *err)
{
    char policy[16];
    bool transitive = false, found = false;
    int rc = oms_store_branch_compat(c, branch, policy, &transitive, &found, err);
    if (rc || !found || strcmp(policy, "block") != 0)
        return rc;
    json_t *breaking = oms_vcs_breaking_entries(changes);
    if (!breaking)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (transitive && after) {
        /* against the older release: only the resources this change
         * touches, so an old breaking change does not block every write */
        char ref[65];
        bool has_ref = false;
        json_t *touched = json_object();
        size_t i;
        json_t *ch;
        json_array_foreach(changes, i, ch) {
            const char *res = json_string_value(json_object_get(ch, "resource"));
            if (res)
                json_object_set_new(touched, res, json_true());
        }
        if ((rc = oms_store_branch_compat_reference(c, branch, head, ref, &has_ref, err)) == OMS_OK && has_ref &&
            strcmp(ref, head) != 0) {
            oms_snapshot *rs = NULL;
            if ((rc = oms_snapshot_for_commit(c, ref, &rs, err)) == OMS_OK) {
                bool b = false;
                json_t *d = oms_snapshot_diff(rs, after, &b);
                if (b)
                    add_entries(breaking, d, touched, ref);
                json_decref(d);
            }
            oms_snapshot_unref(rs);
        }
        json_decref(touched);
        if (rc) {
            json_decref(breaking);
            return rc;
        }
    }
    if (json_array_size(breaking) == 0 || oms_override_permits(ctx, "breaking_change", branch, NULL, 0)) {
        json_decref(breaking);
        return OMS_OK;
    }
    size_t n = json_array_size(breaking);
    const char *first = json_string_value(json_object_get(json_array_get(breaking, 0), "reason"));
    oms_ctx_problem_extra(ctx, json_pack("{s:o,s:s}", "breaking", breaking, "compatibility", "block"));
    return oms_err_set_as(err, OMS_EUNPROCESSABLE, "breaking_change_blocked",
                          "%s has compatibility policy block and this change is breaking (%zu rule%s: %s)", branch,
                          n, n == 1 ? "" : "s", first ? first : "see breaking");
}
