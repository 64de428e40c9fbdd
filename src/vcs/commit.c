#include "vcs/commit.h"

#include <stdlib.h>
#include <string.h>

#include "store/vcs_sql.h"
#include "vcs/commit_graph.h"
#include "util/alloc.h"
#include "util/canonical.h"
#include "util/time.h"

static json_t *commit_json(const oms_commit_info *ci)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, ci->time_ms);
    json_t *parents = json_array();
    for (size_t i = 0; i < ci->nparents; i++)
        json_array_append_new(parents, json_string(ci->parents[i]));
    json_t *keys = ci->issue_keys ? json_deep_copy(ci->issue_keys) : json_array();
    return json_pack("{s:s,s:o,s:s,s:o?,s:o,s:s,s:s}", "author", ci->author, "issue_keys", keys, "message",
                     ci->message, "override_id", ci->override_id ? json_string(ci->override_id) : NULL,
                     "parents", parents, "time", t, "tree", ci->tree);
}

int oms_commit_id(const oms_commit_info *ci, char out[65], char **canonical)
{
    json_t *j = commit_json(ci);
    if (!j)
        return -1;
    int rc = oms_canonical_hash(j, out, canonical);
    json_decref(j);
    return rc;
}

int oms_commit_store(oms_dbconn *c, const oms_commit_info *ci, const char *id, oms_error *err)
{
    json_t *parents = json_array();
    for (size_t i = 0; parents && i < ci->nparents; i++)
        json_array_append_new(parents, json_string(ci->parents[i]));
    char *parents_text = parents ? json_dumps(parents, JSON_COMPACT) : NULL;
    json_decref(parents);
    char *keys_text = ci->issue_keys ? json_dumps(ci->issue_keys, JSON_COMPACT) : oms_xstrdup("[]");
    int rc = !parents_text || !keys_text
                 ? oms_err_set(err, OMS_ENOMEM, "out of memory")
                 : oms_store_commit_insert(c, id, ci->tree, ci->nparents ? ci->parents[0] : NULL,
                                           ci->nparents > 1 ? ci->parents[1] : NULL, parents_text, ci->author,
                                           ci->message, ci->time_ms, keys_text, ci->override_id, err);
    free(parents_text);
    if (rc == OMS_OK) /* the newest commits are the ones walks start from */
        oms_commit_graph_note(id, (const char *const *)ci->parents, ci->nparents, keys_text);
    free(keys_text);
    for (size_t i = 0; rc == OMS_OK && i < ci->nparents; i++)
        rc = oms_store_commit_parent_insert(c, id, (int64_t)i, ci->parents[i], err);
    size_t i;
    json_t *k;
    json_array_foreach(ci->issue_keys, i, k) {
        if (rc)
            break;
        rc = oms_store_commit_issue_insert(c, json_string_value(k), id, err);
    }
    return rc;
}

int oms_is_commit_id(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int oms_commit_load_json(oms_dbconn *c, const char *id, json_t **out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_store_commit_load(c, id, &r, err);
    if (rc)
        return rc;
    if (r->nrows == 0) {
        oms_dbres_free(r);
        *out = NULL;
        return oms_err_set(err, OMS_ENOTFOUND, "no such commit");
    }
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, 0, 5));
    json_t *parents = json_loads(oms_dbres_get(r, 0, 2), 0, NULL);
    json_t *keys = json_loads(oms_dbres_get(r, 0, 6), 0, NULL);
    const char *ov = oms_dbres_get(r, 0, 7);
    *out = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:o,s:o}", "id", oms_dbres_get(r, 0, 0), "tree",
                     oms_dbres_get(r, 0, 1), "parents", parents ? parents : json_array(), "author",
                     oms_dbres_get(r, 0, 3), "message", oms_dbres_get(r, 0, 4), "time", t, "issue_keys",
                     keys ? keys : json_array(), "override_id", ov ? json_string(ov) : json_null());
    json_object_set_new(*out, "generation", json_integer(oms_dbres_int(r, 0, 8)));
    oms_dbres_free(r);
    return OMS_OK;
}
