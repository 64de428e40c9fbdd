#include "vcs/tree_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/tree_sql.h"
#include "store/vcs_sql.h"
#include "util/encoding.h"
#include "util/trie.h"
#include "vcs/snapshot.h"

/* A place in both tries: the node of each side there (has[s]: side s has
 * one; a side without one contributes nothing below that place). */
typedef struct {
    unsigned char h[2][32];
    bool has[2];
} place;

typedef struct {
    place *v;
    size_t n, cap;
} places;

static int push(places *p, const unsigned char *a, const unsigned char *b)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        place *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    place *x = &p->v[p->n++];
    memset(x, 0, sizeof *x);
    if (a) {
        memcpy(x->h[0], a, 32);
        x->has[0] = true;
    }
    if (b) {
        memcpy(x->h[1], b, 32);
        x->has[1] = true;
    }
    return 0;
}

/* The bodies of every node named at this level, by lower-case hex hash
 * (json strings of hex bodies), read in statements of up to 1,000. */
static int fetch_level(oms_dbconn *c, const places *lv, json_t *bodies, oms_error *err)
{
    json_t *want = json_array();
    int rc = want ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
    for (size_t i = 0; rc == OMS_OK && i < lv->n; i++)
        for (int s = 0; s < 2; s++)
            if (lv->v[i].has[s]) {
                char hex[65];
                oms_hex(hex, lv->v[i].h[s], 32);
                if (!json_object_get(bodies, hex) && json_object_set_new(bodies, hex, json_null()) == 0)
                    json_array_append_new(want, json_string(hex));
            }
    size_t total = json_array_size(want);
    for (size_t start = 0; rc == OMS_OK && start < total; start += 1000) {
        json_t *chunk = json_array();
        for (size_t i = start; chunk && i < total && i < start + 1000; i++)
            json_array_append(chunk, json_array_get(want, i));
        char *param = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
        json_decref(chunk);
        oms_dbres *r = NULL;
        rc = param ? oms_store_tree_nodes_in(c, param, &r, err) : oms_err_set(err, OMS_ENOMEM, "out of memory");
        free(param);
        for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++) {
            unsigned char h[32];
            char hex[65];
            if (oms_trie_unhex(h, oms_dbres_get(r, i, 0), 32) != 0)
                continue;
            oms_hex(hex, h, 32); /* SQLite's hex() is upper case */
            json_object_set_new(bodies, hex, json_string(oms_dbres_get(r, i, 1)));
        }
        oms_dbres_free(r);
    }
    json_decref(want);
    return rc;
}

/* Side s's node at place x, checked against its hash. The caller frees
 * *body. */
static int node_at(const json_t *bodies, const place *x, int s, unsigned char **body, oms_trie_node *n, oms_error *err)
{
    char hex[65];
    oms_hex(hex, x->h[s], 32);
    const char *text = json_string_value(json_object_get(bodies, hex));
    size_t len = 0;
    *body = text ? oms_trie_unhex_alloc(text, &len) : NULL;
    if (!*body)
        return oms_err_set(err, OMS_EINTERNAL, "tree node %.12s missing or unreadable", hex);
    unsigned char got[32];
    oms_sha256(got, *body, len);
    if (memcmp(got, x->h[s], 32) != 0 || oms_trie_parse(*body, len, n) != 0)
        return oms_err_set(err, OMS_EINTERNAL, "tree node %.12s does not match its content", hex);
    return OMS_OK;
}

/* Every entry of a leaf into keys (key -> resource hash, hex). */
static int collect_leaf(oms_trie_node *n, json_t *keys, const unsigned char *hash, oms_error *err)
{
    const char *key;
    size_t klen;
    const unsigned char *value;
    int more;
    while ((more = oms_trie_leaf_next(n, &key, &klen, &value)) == 1) {
        char hex[65];
        oms_hex(hex, value, 32);
        if (json_object_setn_new(keys, key, klen, json_string(hex)) != 0)
            return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    if (more < 0) {
        char h[65];
        oms_hex(h, hash, 32);
        return oms_err_set(err, OMS_EINTERNAL, "tree node %.12s is malformed", h);
    }
    return OMS_OK;
}

/* One place: where both sides have interior nodes, the children that
 * differ go one level down; anything else is read whole on each side
 * (interior nodes' children go down alone, leaves are collected). */
static int visit(const json_t *bodies, const place *x, places *next, json_t *keys[2], oms_error *err)
{
    unsigned char *body[2] = {NULL, NULL};
    oms_trie_node n[2];
    int rc = OMS_OK;
    for (int s = 0; s < 2 && rc == OMS_OK; s++)
        if (x->has[s])
            rc = node_at(bodies, x, s, &body[s], &n[s], err);
    if (rc == OMS_OK && x->has[0] && x->has[1] && n[0].type == OMS_TRIE_INTERIOR && n[1].type == OMS_TRIE_INTERIOR) {
        for (int d = 0; d < 4 && rc == OMS_OK; d++) {
            const unsigned char *ca = n[0].child[d], *cb = n[1].child[d];
            if ((!ca && !cb) || (ca && cb && memcmp(ca, cb, 32) == 0))
                continue;
            if (push(next, ca, cb) != 0)
                rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        }
    } else {
        for (int s = 0; s < 2 && rc == OMS_OK; s++) {
            if (!x->has[s])
                continue;
            if (n[s].type == OMS_TRIE_LEAF) {
                rc = collect_leaf(&n[s], keys[s], x->h[s], err);
                continue;
            }
            for (int d = 0; d < 4 && rc == OMS_OK; d++)
                if (n[s].child[d] && push(next, s == 0 ? n[s].child[d] : NULL, s == 1 ? n[s].child[d] : NULL) != 0)
                    rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        }
    }
    free(body[0]);
    free(body[1]);
    return rc;
}

/* The (key, resource hash) pairs of both tries below the places where
 * they differ: every key that differs is in one map or both with another
 * hash; keys equal on both sides may be there too (a subtree read whole). */
static int walk(oms_dbconn *c, const unsigned char ra[32], const unsigned char rb[32], json_t *keys[2], oms_error *err)
{
    places cur = {0}, next = {0};
    json_t *bodies = json_object();
    int rc = bodies && push(&cur, ra, rb) == 0 ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
    for (int depth = 0; rc == OMS_OK && cur.n > 0; depth++) {
        if (depth > OMS_TRIE_MAX_DEPTH) {
            rc = oms_err_set(err, OMS_EINTERNAL, "a tree is deeper than %d levels", OMS_TRIE_MAX_DEPTH);
            break;
        }
        json_object_clear(bodies);
        rc = fetch_level(c, &cur, bodies, err);
        next.n = 0;
        for (size_t i = 0; rc == OMS_OK && i < cur.n; i++)
            rc = visit(bodies, &cur.v[i], &next, keys, err);
        places t = cur;
        cur = next;
        next = t;
    }
    free(cur.v);
    free(next.v);
    json_decref(bodies);
    return rc;
}

/* Commit -> (tree, author, time) row; ENOTFOUND when there is none. */
static int commit_row(oms_dbconn *c, const char *commit, oms_dbres **r, oms_error *err)
{
    int rc = oms_store_commit_tree(c, commit, r, err);
    if (rc == OMS_OK && (*r)->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no commit %.64s", commit);
    return rc;
}

/* The roots of both trees; *found false when either is not a stored trie. */
static int roots(oms_dbconn *c, const char *ta, const char *tb, unsigned char out[2][32], bool *found,
                 oms_error *err)
{
    json_t *ids = json_pack("[s,s]", ta, tb);
    char *param = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
    json_decref(ids);
    if (!param)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    oms_dbres *r = NULL;
    int rc = oms_store_tree_roots(c, param, &r, err);
    free(param);
    bool got[2] = {false, false};
    for (size_t i = 0; rc == OMS_OK && i < r->nrows; i++)
        for (int s = 0; s < 2; s++)
            if (strcmp(oms_dbres_get(r, i, 0), s == 0 ? ta : tb) == 0)
                got[s] = oms_trie_unhex(out[s], oms_dbres_get(r, i, 1), 32) == 0;
    oms_dbres_free(r);
    *found = got[0] && got[1];
    return rc;
}

/* Drops the keys with the same resource hash on both sides. */
static void drop_equal(json_t *keys[2])
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(keys[0], tmp, k, v) {
        json_t *w = json_object_get(keys[1], k);
        if (w && strcmp(json_string_value(v), json_string_value(w)) == 0) {
            json_object_del(keys[1], k);
            json_object_del(keys[0], k);
        }
    }
}

/* A snapshot holding only `keys` (unsealed: oms_snapshot_diff compares
 * its entries one by one), with their documents from `docs`. */
static int partial_snapshot(const json_t *keys, const json_t *docs, const char *commit, const oms_dbres *row,
                            oms_snapshot **out, oms_error *err)
{
    oms_snapshot *s = oms_snapshot_new_empty();
    const char *k;
    json_t *v;
    int rc = OMS_OK;
    json_object_foreach((json_t *)keys, k, v) {
        oms_kind kind;
        const char *name;
        const char *hash = json_string_value(v);
        json_t *text = json_object_get(docs, hash);
        if (oms_snapshot_key_split(k, &kind, &name)) {
            rc = oms_err_set(err, OMS_EINTERNAL, "commit %.12s: its tree names %.100s", commit, k);
            break;
        }
        if (!text) {
            rc = oms_err_set(err, OMS_EINTERNAL, "object %.12s missing or unreadable", hash);
            break;
        }
        oms_snapshot_put(s, oms_entry_new(kind, name, hash, json_string_value(text), json_string_length(text), commit,
                                          oms_dbres_get(row, 0, 1), oms_dbres_int(row, 0, 2)));
    }
    if (rc)
        oms_snapshot_unref(s);
    else
        *out = s;
    return rc;
}

int oms_tree_diff(oms_dbconn *c, const char *a, const char *b, json_t **changes, bool *breaking, bool *walked,
                  oms_error *err)
{
    *walked = false;
    oms_dbres *row[2] = {NULL, NULL};
    unsigned char root[2][32];
    bool found = false;
    json_t *keys[2] = {json_object(), json_object()}, *want = json_array(), *docs = json_object();
    oms_snapshot *part[2] = {NULL, NULL};
    int rc = keys[0] && keys[1] && want && docs ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (rc == OMS_OK)
        rc = commit_row(c, a, &row[0], err);
    if (rc == OMS_OK)
        rc = commit_row(c, b, &row[1], err);
    if (rc == OMS_OK)
        rc = roots(c, oms_dbres_get(row[0], 0, 0), oms_dbres_get(row[1], 0, 0), root, &found, err);
    if (rc || !found)
        goto done;
    *walked = true;
    if (memcmp(root[0], root[1], 32) != 0 && (rc = walk(c, root[0], root[1], keys, err)) != OMS_OK)
        goto done;
    drop_equal(keys);
    for (int s = 0; s < 2; s++) {
        const char *k;
        json_t *v;
        json_object_foreach(keys[s], k, v) json_array_append(want, v);
    }
    if (json_array_size(want) && (rc = oms_store_objects_load(c, want, false, docs, err)) != OMS_OK)
        goto done;
    for (int s = 0; s < 2 && rc == OMS_OK; s++)
        rc = partial_snapshot(keys[s], docs, s == 0 ? a : b, row[s], &part[s], err);
    if (rc == OMS_OK && !(*changes = oms_snapshot_diff(part[0], part[1], breaking)))
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
done:
    for (int s = 0; s < 2; s++) {
        oms_snapshot_unref(part[s]);
        oms_dbres_free(row[s]);
        json_decref(keys[s]);
    }
    json_decref(want);
    json_decref(docs);
    return rc;
}
