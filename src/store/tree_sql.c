#include "store/tree_sql.h"

#include <stdlib.h>

#include "store/dialect.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "util/encoding.h"

#define CHUNK 1000

int oms_store_tree_nodes_put(oms_dbconn *c, const json_t *rows, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO tree_nodes (hash, body)"
        " SELECT oms_unhex(json_extract(value, '$[0]')), oms_unhex(json_extract(value, '$[1]'))"
        " FROM json_each($1) WHERE true ON CONFLICT (hash) DO NOTHING",
        "INSERT INTO tree_nodes (hash, body)"
        " SELECT decode(x->>0, 'hex'), decode(x->>1, 'hex') FROM jsonb_array_elements($1::jsonb) AS x"
        " ON CONFLICT (hash) DO NOTHING"};
    size_t total = json_array_size(rows);
    if (oms_db_backend_of_conn(c) == OMS_DB_SQLITE) {
        /* No round trips to save in-process: a statement a node skips
         * printing the JSON array and SQLite's parsing it again (a commit
         * writes about seven nodes; the batch cost 12 % of the server's CPU
         * with 16 writers). */
        static const oms_sql one = {"INSERT INTO tree_nodes (hash, body) VALUES (oms_unhex($1), oms_unhex($2))"
                                    " ON CONFLICT (hash) DO NOTHING",
                                    NULL}; /* SQLite only */
        for (size_t i = 0; i < total; i++) {
            const json_t *row = json_array_get(rows, i);
            oms_dbparam p[] = {DBP_TEXT(json_string_value(json_array_get(row, 0))),
                               DBP_TEXT(json_string_value(json_array_get(row, 1)))};
            int rc = oms_db_run_later(c, &one, p, 2, err);
            if (rc)
                return rc;
        }
        return OMS_OK;
    }
    for (size_t start = 0; start < total; start += CHUNK) {
        json_t *chunk = json_array();
        for (size_t i = start; i < total && i < start + CHUNK; i++)
            json_array_append(chunk, json_array_get(rows, i));
        char *text = json_dumps(chunk, JSON_COMPACT);
        json_decref(chunk);
        if (!text)
            return oms_err_set(err, OMS_ENOMEM, "out of memory");
        oms_dbparam p[] = {DBP_TEXT(text)};
        int rc = oms_db_run_content(c, &q, p, 1, err);
        free(text);
        if (rc)
            return rc;
    }
    return OMS_OK;
}

int oms_store_tree_put(oms_dbconn *c, const char *id, const char *root_hex, oms_error *err)
{
    static const oms_sql q = {
        "INSERT INTO trees (id, root) VALUES ($1, oms_unhex($2)) ON CONFLICT (id) DO NOTHING",
        "INSERT INTO trees (id, root) VALUES ($1, decode($2, 'hex')) ON CONFLICT (id) DO NOTHING"};
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(root_hex)};
    return oms_db_run_content(c, &q, p, 2, err);
}

/* Children of an interior node (second byte 1) sit at byte 3 + 32 i. A
 * tree holds no node twice (every key is in one place), so UNION ALL. */
int oms_store_tree_nodes_all(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {
        "WITH RECURSIVE k(i) AS (VALUES (0), (1), (2), (3)),"
        " n(hash, body, depth) AS ("
        "  SELECT x.hash, x.body, 0 FROM trees t JOIN tree_nodes x ON x.hash = t.root WHERE t.id = $1"
        "  UNION ALL"
        "  SELECT x.hash, x.body, n.depth + 1 FROM n JOIN k ON substr(n.body, 2, 1) = x'01'"
        "   AND 3 + 32 * (k.i + 1) <= length(n.body)"
        "   JOIN tree_nodes x ON x.hash = substr(n.body, 4 + 32 * k.i, 32))"
        " SELECT hex(hash), hex(body), depth FROM n",
        "WITH RECURSIVE n(hash, body, depth) AS ("
        "  SELECT x.hash, x.body, 0 FROM trees t JOIN tree_nodes x ON x.hash = t.root WHERE t.id = $1"
        "  UNION ALL"
        "  SELECT x.hash, x.body, n.depth + 1 FROM n CROSS JOIN generate_series(0, 3) AS k(i)"
        "   JOIN tree_nodes x ON x.hash = substring(n.body from 4 + 32 * k.i for 32)"
        "   WHERE get_byte(n.body, 1) = 1 AND 3 + 32 * (k.i + 1) <= length(n.body))"
        " SELECT encode(hash, 'hex'), encode(body, 'hex'), depth FROM n"};
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run_content_read(c, &q, p, 1, out, err);
}

int oms_store_tree_roots(oms_dbconn *c, const char *ids_json, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {"SELECT id, hex(root) FROM trees WHERE id IN (SELECT value FROM json_each($1))",
                              "SELECT id, encode(root, 'hex') FROM trees WHERE id IN"
                              " (SELECT jsonb_array_elements_text($1::jsonb))"};
    oms_dbparam p[] = {DBP_TEXT(ids_json)};
    return oms_db_run_content_read(c, &q, p, 1, out, err);
}

int oms_store_tree_nodes_in(oms_dbconn *c, const char *hashes_json, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {"SELECT hex(hash), hex(body) FROM tree_nodes WHERE hash IN"
                              " (SELECT oms_unhex(value) FROM json_each($1))",
                              "SELECT encode(hash, 'hex'), encode(body, 'hex') FROM tree_nodes WHERE hash IN"
                              " (SELECT decode(h, 'hex') FROM jsonb_array_elements_text($1::jsonb) AS h)"};
    oms_dbparam p[] = {DBP_TEXT(hashes_json)};
    return oms_db_run_content_read(c, &q, p, 1, out, err);
}

int oms_store_trees_unconverted(oms_dbconn *c, int64_t limit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT DISTINCT c.tree FROM commits c"
                                          " WHERE NOT EXISTS (SELECT 1 FROM trees t WHERE t.id = c.tree) LIMIT $1");
    oms_dbparam p[] = {DBP_INT(limit)};
    return oms_db_run_content_read(c, &q, p, 1, out, err);
}

int oms_store_legacy_trees_delete(oms_dbconn *c, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("DELETE FROM objects WHERE type = 'tree'");
    return oms_db_run(c, &q, NULL, 0, NULL, err);
}

int oms_store_tree_node_collect(void *rows, const unsigned char hash[32], const unsigned char *body, size_t len)
{
    char h[65], *b = oms_xmalloc(2 * len + 1);
    oms_hex(h, hash, 32);
    oms_hex(b, body, len);
    int rc = json_array_append_new(rows, json_pack("[s,s]", h, b));
    free(b);
    return rc;
}

int oms_store_objects_load(oms_dbconn *c, const json_t *hashes, bool parse, json_t *out, oms_error *err)
{
    size_t total = json_array_size(hashes);
    for (size_t start = 0; start < total; start += 1000) {
        json_t *chunk = json_array();
        for (size_t i = start; i < total && i < start + 1000; i++)
            json_array_append(chunk, json_array_get(hashes, i));
        char *param = json_dumps(chunk, JSON_COMPACT);
        json_decref(chunk);
        if (!param)
            return oms_err_set(err, OMS_ENOMEM, "out of memory");
        oms_dbres *r = NULL;
        int rc = oms_store_objects_in(c, param, &r, err);
        free(param);
        if (rc)
            return rc;
        for (size_t i = 0; i < r->nrows; i++) {
            const char *content = oms_dbres_get(r, i, 1);
            json_t *v = parse ? json_loads(content, 0, NULL) : json_string(content);
            if (v)
                json_object_set_new(out, oms_dbres_get(r, i, 0), v);
        }
        oms_dbres_free(r);
    }
    return OMS_OK;
}
