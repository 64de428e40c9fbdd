#include "store/tree_convert.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/tree_sql.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "util/canonical.h"
#include "util/encoding.h"
#include "util/trie.h"

struct oms_tree_conv {
    json_t *buckets; /* legacy bucket hash -> [subtree hex, bucket index] (stored) */
    unsigned char prev[OMS_TRIE_TOP_NODES][32];
    bool have_prev;
};

oms_tree_conv *oms_tree_conv_new(void)
{
    oms_tree_conv *cv = oms_xcalloc(1, sizeof *cv);
    cv->buckets = json_object();
    return cv;
}

void oms_tree_conv_free(oms_tree_conv *cv)
{
    if (!cv)
        return;
    json_decref(cv->buckets);
    free(cv);
}

/* The JSON object's canonical hash must be `name`: the mapping is what the
 * tree id was computed from. */
static bool hashes_to(const json_t *o, const char *name)
{
    char h[65];
    return json_is_object(o) && oms_canonical_hash(o, h, NULL) == 0 && strcmp(h, name) == 0;
}

static int cmp_item(const void *a, const void *b)
{
    const oms_trie_item *x = a, *y = b;
    return strcmp(x->key, y->key);
}

/* A legacy bucket's trie subtree, its nodes added to `rows`. */
static int convert_bucket(oms_tree_conv *cv, const char *name, const json_t *bucket, json_t *rows, oms_error *err)
{
    if (!hashes_to(bucket, name))
        return oms_err_set(err, OMS_EINTERNAL, "tree bucket %.12s does not hash to its name", name);
    size_t n = json_object_size(bucket), k = 0;
    oms_trie_item *items = oms_xcalloc(n ? n : 1, sizeof *items);
    const char *key;
    json_t *v;
    int idx = -1, rc = OMS_OK;
    json_object_foreach((json_t *)bucket, key, v) {
        if (oms_trie_item_set(&items[k], key, strlen(key), json_string_value(v)) ||
            (idx >= 0 && items[k].khash[0] != idx)) {
            rc = oms_err_set(err, OMS_EINTERNAL, "tree bucket %.12s: entry %.100s is malformed", name, key);
            break;
        }
        idx = items[k++].khash[0];
    }
    unsigned char sub[32];
    if (rc == OMS_OK && n > 0) {
        qsort(items, n, sizeof *items, cmp_item);
        if (oms_trie_subtree(items, n, OMS_TRIE_TOP_DEPTH, sub, oms_store_tree_node_collect, rows))
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    free(items);
    if (rc == OMS_OK && n == 0)
        rc = oms_err_set(err, OMS_EINTERNAL, "tree bucket %.12s is empty", name);
    if (rc == OMS_OK) {
        char h[65];
        oms_hex(h, sub, 32);
        json_object_set_new(cv->buckets, name, json_pack("[s,i]", h, idx));
    }
    return rc;
}

/* Tree `id` from its legacy root (buckets converted): its top nodes and its
 * trees row. */
static int convert_tree(oms_tree_conv *cv, oms_dbconn *c, const char *id, const json_t *root, json_t *rows,
                        oms_error *err)
{
    unsigned char sub[256][32];
    memset(sub, 0, sizeof sub);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)root, name, v) {
        json_t *conv = json_object_get(cv->buckets, json_string_value(v));
        char *end = NULL;
        long idx = strtol(name, &end, 16);
        if (!conv || strlen(name) != 2 || *end || idx != json_integer_value(json_array_get(conv, 1)) ||
            oms_trie_unhex(sub[idx], json_string_value(json_array_get(conv, 0)), 32))
            return oms_err_set(err, OMS_EINTERNAL, "tree %.12s: bucket %.3s is missing or misplaced", id, name);
    }
    unsigned char top[OMS_TRIE_TOP_NODES][32];
    if (oms_trie_top((const unsigned char(*)[32])sub, top, cv->have_prev ? (const unsigned char(*)[32])cv->prev : NULL, NULL,
                     oms_store_tree_node_collect, rows))
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    memcpy(cv->prev, top, sizeof top);
    cv->have_prev = true;
    char root_hex[65];
    oms_hex(root_hex, top[0], 32);
    return oms_store_tree_put(c, id, root_hex, err);
}

int oms_tree_conv_batch(oms_tree_conv *cv, oms_dbconn *c, int64_t limit, int64_t *n, oms_error *err)
{
    *n = 0;
    oms_dbres *ids = NULL;
    int rc = oms_store_trees_unconverted(c, limit, &ids, err);
    if (rc || ids->nrows == 0) {
        oms_dbres_free(ids);
        return rc;
    }
    json_t *want = json_array(), *roots = json_object(), *buckets = json_object(), *rows = json_array();
    for (size_t i = 0; i < ids->nrows; i++)
        json_array_append_new(want, json_string(oms_dbres_get(ids, i, 0)));
    if ((rc = oms_store_objects_load(c, want, true, roots, err)))
        goto done;
    json_array_clear(want);
    for (size_t i = 0; i < ids->nrows; i++) {
        const char *id = oms_dbres_get(ids, i, 0);
        json_t *root = json_object_get(roots, id);
        if (!hashes_to(root, id)) {
            rc = oms_err_set(err, OMS_EINTERNAL, "tree %.12s: %s", id,
                             root ? "its legacy root does not hash to its id" : "stored in no form");
            goto done;
        }
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) {
            if (!json_is_string(v)) {
                rc = oms_err_set(err, OMS_EINTERNAL, "tree %.12s: bucket %.3s is malformed", id, k);
                goto done;
            }
            if (!json_object_get(cv->buckets, json_string_value(v)))
                json_array_append(want, v);
        }
    }
    if ((rc = oms_store_objects_load(c, want, true, buckets, err)))
        goto done;
    size_t i;
    json_t *bh;
    json_array_foreach(want, i, bh) {
        const char *name = json_string_value(bh);
        if (json_object_get(cv->buckets, name))
            continue; /* named twice */
        json_t *b = json_object_get(buckets, name);
        if (!b) {
            rc = oms_err_set(err, OMS_EINTERNAL, "tree bucket %.12s is missing", name);
            goto done;
        }
        if ((rc = convert_bucket(cv, name, b, rows, err)))
            goto done;
    }
    for (i = 0; i < ids->nrows && rc == OMS_OK; i++)
        rc = convert_tree(cv, c, oms_dbres_get(ids, i, 0), json_object_get(roots, oms_dbres_get(ids, i, 0)), rows,
                          err);
    if (rc == OMS_OK)
        rc = oms_store_tree_nodes_put(c, rows, err);
    if (rc == OMS_OK)
        *n = (int64_t)ids->nrows;
done:
    json_decref(want);
    json_decref(roots);
    json_decref(buckets);
    json_decref(rows);
    oms_dbres_free(ids);
    return rc;
}

int oms_tree_conv_all(oms_dbconn *c, oms_error *err)
{
    oms_tree_conv *cv = oms_tree_conv_new();
    int64_t n = 0;
    int rc;
    do
        rc = oms_tree_conv_batch(cv, c, 500, &n, err);
    while (rc == OMS_OK && n > 0);
    oms_tree_conv_free(cv);
    return rc ? rc : oms_store_legacy_trees_delete(c, err);
}
