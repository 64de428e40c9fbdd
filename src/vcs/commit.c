#include "vcs/commit.h"

#include <stdlib.h>
#include <string.h>

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

int oms_object_store(oms_dbconn *c, const char *hash, const char *type, const char *content, oms_error *err)
{
    oms_dbparam p[] = {DBP_TEXT(hash), DBP_TEXT(type), DBP_TEXT(content)};
    return oms_db_exec(c,
                       "INSERT INTO objects (hash, type, content) VALUES ($1, $2, $3)"
                       " ON CONFLICT (hash) DO NOTHING",
                       p, 3, NULL, err);
}

int oms_commit_store(oms_dbconn *c, const oms_commit_info *ci, const char *id, oms_error *err)
{
    json_t *parents = json_array();
    for (size_t i = 0; i < ci->nparents; i++)
        json_array_append_new(parents, json_string(ci->parents[i]));
    char *parents_text = json_dumps(parents, JSON_COMPACT);
    json_decref(parents);
    char *keys_text = ci->issue_keys ? json_dumps(ci->issue_keys, JSON_COMPACT) : strdup("[]");
    /* generation = 1 + the highest of the parents', computed by the insert
     * itself (one round trip, whatever the number of parents) */
    oms_dbparam p[] = {DBP_TEXT(id),           DBP_TEXT(ci->tree),   DBP_TEXT(ci->nparents ? ci->parents[0] : NULL),
                       DBP_TEXT(parents_text), DBP_TEXT(ci->author), DBP_TEXT(ci->message),
                       DBP_INT(ci->time_ms),   DBP_TEXT(keys_text),  DBP_TEXT(ci->override_id),
                       DBP_TEXT(ci->nparents > 1 ? ci->parents[1] : NULL)};
    int rc = oms_db_exec(c,
                         "INSERT INTO commits (id, tree, first_parent, parents, author, message, time_ms,"
                         " issue_keys, override_id, generation) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,"
                         " 1 + COALESCE((SELECT max(generation) FROM commits WHERE id = $3 OR id = $10), 0)"
                         " WHERE true ON CONFLICT (id) DO NOTHING",
                         p, 10, NULL, err);
    free(parents_text);
    free(keys_text);
    for (size_t i = 0; rc == OMS_OK && i < ci->nparents; i++) {
        oms_dbparam q[] = {DBP_TEXT(id), DBP_INT((int64_t)i), DBP_TEXT(ci->parents[i])};
        rc = oms_db_exec(c,
                         "INSERT INTO commit_parents (commit_id, idx, parent_id) VALUES ($1, $2, $3)"
                         " ON CONFLICT DO NOTHING",
                         q, 3, NULL, err);
    }
    size_t i;
    json_t *k;
    json_array_foreach(ci->issue_keys, i, k) {
        if (rc)
            break;
        oms_dbparam q[] = {DBP_TEXT(json_string_value(k)), DBP_TEXT(id)};
        rc = oms_db_exec(c, "INSERT INTO commit_issues (issue_key, commit_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                         q, 2, NULL, err);
    }
    return rc;
}

int oms_commit_store_change(oms_dbconn *c, const char *commit, const char *resource, const char *change,
                            const char *old_hash, const char *new_hash, oms_error *err)
{
    oms_dbparam p[] = {DBP_TEXT(commit), DBP_TEXT(resource), DBP_TEXT(change), DBP_TEXT(old_hash),
                       DBP_TEXT(new_hash)};
    return oms_db_exec(c,
                       "INSERT INTO commit_changes (commit_id, resource, change, old_hash, new_hash)"
                       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                       p, 5, NULL, err);
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
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_exec(c,
                         "SELECT id, tree, parents, author, message, time_ms, issue_keys, override_id, generation"
                         " FROM commits WHERE id = $1",
                         p, 1, &r, err);
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
