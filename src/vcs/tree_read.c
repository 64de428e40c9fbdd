#include "vcs/tree_read.h"

#include <ctype.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/tree_sql.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/trie.h"

typedef struct {
    size_t at;       /* into out */
    const char *key;
    unsigned char khash[32];
    char node[65];   /* the next node, lower-case hex */
    int depth;
    bool live;
} walk;

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* One walker's step through `body`: on to a child, or done. */
static int step(walk *w, const char *body_hex, char (*out)[65])
{
    size_t len = 0;
    unsigned char *body = oms_trie_unhex_alloc(body_hex, &len);
    oms_trie_node n;
    int rc = body ? oms_trie_parse(body, len, &n) : -1;
    if (rc == 0 && n.type == OMS_TRIE_INTERIOR) {
        const unsigned char *child = w->depth < OMS_TRIE_MAX_DEPTH ? n.child[oms_trie_digit(w->khash, w->depth)] : NULL;
        if (child) {
            oms_hex(w->node, child, 32);
            w->depth++;
        } else {
            w->live = false;
        }
    } else if (rc == 0) {
        const char *key;
        size_t klen, want = strlen(w->key);
        const unsigned char *value;
        w->live = false;
        while ((rc = oms_trie_leaf_next(&n, &key, &klen, &value)) == 1)
            if (klen == want && memcmp(key, w->key, klen) == 0) {
                oms_hex(out[w->at], value, 32);
                rc = 0;
                break;
            }
    }
    free(body);
    return rc < 0 ? -1 : 0;
}

int oms_tree_lookup(oms_dbconn *c, const char *const *trees, size_t ntrees, const char *const *keys, size_t nkeys,
                    char (*out)[65], oms_error *err)
{
    size_t n = ntrees * nkeys;
    if (n == 0)
        return OMS_OK;
    walk *w = oms_xcalloc(n, sizeof *w);
    json_t *ids = json_array(), *roots = json_object(), *bodies = json_object();
    oms_dbres *r = NULL;
    char *param = NULL;
    int rc = OMS_OK;
    for (size_t i = 0; i < ntrees; i++)
        json_array_append_new(ids, json_string(trees[i]));
    if (!(param = json_dumps(ids, JSON_COMPACT)) || (rc = oms_store_tree_roots(c, param, &r, err)))
        goto done;
    for (size_t k = 0; k < r->nrows; k++)
        json_object_set_new(roots, oms_dbres_get(r, k, 0), json_string(oms_dbres_get(r, k, 1)));
    for (size_t i = 0; i < ntrees; i++) {
        const char *root = json_string_value(json_object_get(roots, trees[i]));
        if (!root) {
            rc = oms_err_set(err, OMS_EINTERNAL, "tree %.12s is not stored", trees[i]);
            goto done;
        }
        for (size_t j = 0; j < nkeys; j++) {
            walk *x = &w[i * nkeys + j];
            x->at = i * nkeys + j;
            x->key = keys[j];
            oms_sha256(x->khash, keys[j], strlen(keys[j]));
            snprintf(x->node, sizeof x->node, "%s", root);
            lower(x->node);
            x->live = true;
            out[x->at][0] = '\0';
        }
    }
    for (int round = 0; round <= OMS_TRIE_MAX_DEPTH; round++) {
        json_t *want = json_array(), *seen = json_object();
        for (size_t k = 0; k < n; k++)
            if (w[k].live && !json_object_get(bodies, w[k].node) && !json_object_get(seen, w[k].node)) {
                json_object_set_new(seen, w[k].node, json_true());
                json_array_append_new(want, json_string(w[k].node));
            }
        json_decref(seen);
        if (json_array_size(want) > 0) {
            free(param);
            param = json_dumps(want, JSON_COMPACT);
            oms_dbres_free(r);
            r = NULL;
            if (!param || (rc = oms_store_tree_nodes_in(c, param, &r, err))) {
                json_decref(want);
                goto done;
            }
            for (size_t k = 0; k < r->nrows; k++) {
                char h[65];
                snprintf(h, sizeof h, "%s", oms_dbres_get(r, k, 0));
                lower(h);
                json_object_set_new(bodies, h, json_string(oms_dbres_get(r, k, 1)));
            }
        }
        json_decref(want);
        bool any = false;
        for (size_t k = 0; k < n; k++) {
            if (!w[k].live)
                continue;
            const char *body = json_string_value(json_object_get(bodies, w[k].node));
            if (!body || step(&w[k], body, out)) {
                rc = oms_err_set(err, OMS_EINTERNAL, "tree node %.12s is %s", w[k].node, body ? "malformed" : "missing");
                goto done;
            }
            any = any || w[k].live;
        }
        if (!any)
            break;
    }
done:
    if (!param && rc == OMS_OK)
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    free(param);
    oms_dbres_free(r);
    json_decref(ids);
    json_decref(roots);
    json_decref(bodies);
    free(w);
    return rc;
}
