#include "vcs/merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/vcs_sql.h"
#include "vcs/commit_graph.h"
#include "vcs/commit_pair_memo.h"
#include "util/alloc.h"

/* ---- merge base ---- */

int oms_merge_base(oms_dbconn *c, const char *a, const char *b, char out[65], oms_error *err)
{
    char *known = oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, a, b);
    if (known) {
        snprintf(out, 65, "%s", known);
        free(known);
        return OMS_OK;
    }
    bool found = false;
    int rc = oms_commit_graph_merge_base(c, a, b, out, &found, err);
    if (rc == OMS_OK && !found)
        rc = oms_err_set(err, OMS_ECONFLICT, "the two histories share no commit");
    if (rc == OMS_OK)
        oms_commit_pair_memo_put(OMS_MEMO_MERGE_BASE, a, b, out);
    return rc;
}

/* ---- documents ---- */

static bool same(const json_t *x, const json_t *y)
{
    if (!x || !y)
        return x == y;
    return json_equal(x, y);
}

static json_t *copy_or_null(const json_t *v) { return v ? json_deep_copy(v) : json_null(); }

static void conflict(json_t *conflicts, const char *path, const json_t *b, const json_t *s, const json_t *t)
{
    json_array_append_new(conflicts, json_pack("{s:s,s:o,s:o,s:o}", "path", path, "base", copy_or_null(b),
                                               "source", copy_or_null(s), "target", copy_or_null(t)));
}

/* An array whose items are objects with distinct api_name strings. */
static bool named_array(const json_t *a)
{
    if (!json_is_array(a))
        return false;
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(a, i, v) {
        if (!json_is_string(json_object_get(v, "api_name")))
            return false;
        json_array_foreach(a, j, w) {
            if (j < i && json_equal(json_object_get(v, "api_name"), json_object_get(w, "api_name")))
                return false;
        }
    }
    return true;
}

static json_t *find_named(const json_t *a, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "api_name")), name) == 0)
            return v;
    }
    return NULL;
}

/* How conflicting fields are settled: `fields` maps JSON pointers to
 * "source" or "target"; `side` ("source", "target" or NULL) settles every
 * conflicting field the map does not name. A pointer names an item of a
 * named array by its api_name (as conflicts report it) or by its index in
 * the source, target or base document. */
typedef struct {
    const json_t *fields;
    const char *side;
    json_t *conflicts;
} merge_rules;

/* The paths of one point: [0] by api_name, [1..3] by index in s, t, b. */
typedef struct {
    char *p[4];
} mpath;

static json_t *merge_at(const json_t *b, const json_t *s, const json_t *t, const mpath *path, merge_rules *r);

static char *child_path(const char *path, const char *token)
{
    /* RFC 6901 escaping of the token */
    size_t n = strlen(path), k = 0;
    char *out = oms_xmalloc(n + 2 * strlen(token) + 2);
    memcpy(out, path, n);
    k = n;
    out[k++] = '/';
    for (const char *p = token; *p; p++) {
        if (*p == '~') {
            out[k++] = '~';
            out[k++] = '0';
        } else if (*p == '/') {
            out[k++] = '~';
            out[k++] = '1';
        } else {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
    return out;
}

static void mpath_child(mpath *out, const mpath *in, const char *const tokens[4])
{
    for (int i = 0; i < 4; i++)
        out->p[i] = child_path(in->p[i], tokens[i]);
}

static void mpath_free(mpath *m)
{
    for (int i = 0; i < 4; i++)
        free(m->p[i]);
}

static int index_of(const json_t *a, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "api_name")), name) == 0)
            return (int)i;
    }
    return -1;
}

static json_t *merge_objects(const json_t *b, const json_t *s, const json_t *t, const mpath *path, merge_rules *r)
{
    json_t *out = json_object();
    json_t *keys = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)t, k, v) json_object_set_new(keys, k, json_true());
    json_object_foreach((json_t *)s, k, v) json_object_set_new(keys, k, json_true());
    json_object_foreach((json_t *)b, k, v) json_object_set_new(keys, k, json_true());
    json_object_foreach(keys, k, v) {
        const char *tokens[4] = {k, k, k, k};
        mpath cp;
        mpath_child(&cp, path, tokens);
        json_t *m = merge_at(json_object_get(b, k), json_object_get(s, k), json_object_get(t, k), &cp, r);
        mpath_free(&cp);
        if (m)
            json_object_set_new(out, k, m);
    }
    json_decref(keys);
    return out;
}

/* Named items keep the target's order; items only the source added follow
 * in the source's order. */
static json_t *merge_named(const json_t *b, const json_t *s, const json_t *t, const mpath *path, merge_rules *r)
{
    json_t *out = json_array();
    json_t *seen = json_object();
    const json_t *lists[3] = {t, s, b};
    for (int l = 0; l < 3; l++) {
        size_t i;
        json_t *v;
        json_array_foreach(lists[l], i, v) {
            const char *name = json_string_value(json_object_get(v, "api_name"));
            if (json_object_get(seen, name))
                continue;
            json_object_set_new(seen, name, json_true());
            char idx[3][24];
            const json_t *sides[3] = {s, t, b};
            for (int x = 0; x < 3; x++) {
                int at = index_of(sides[x], name);
                if (at >= 0)
                    snprintf(idx[x], sizeof idx[x], "%d", at);
                else
                    snprintf(idx[x], sizeof idx[x], "-"); /* matches no resolution */
            }
            const char *tokens[4] = {name, idx[0], idx[1], idx[2]};
            mpath cp;
            mpath_child(&cp, path, tokens);
            json_t *m = merge_at(find_named(b, name), find_named(s, name), find_named(t, name), &cp, r);
            mpath_free(&cp);
            if (m)
                json_array_append_new(out, m);
        }
    }
    json_decref(seen);
    return out;
}

/* The side a conflict at `path` is settled by, or NULL. */
static const char *settled_by(const mpath *path, const merge_rules *r)
{
    for (int i = 0; i < 4; i++) {
        const char *v = json_string_value(json_object_get(r->fields, path->p[i]));
        if (v)
            return v;
    }
    return r->side;
}

static json_t *merge_at(const json_t *b, const json_t *s, const json_t *t, const mpath *path, merge_rules *r)
{
    if (same(s, t))
        return s ? json_deep_copy(s) : NULL;
    if (same(b, s))
        return t ? json_deep_copy(t) : NULL;
    if (same(b, t))
        return s ? json_deep_copy(s) : NULL;
    if (json_is_object(b) && json_is_object(s) && json_is_object(t))
        return merge_objects(b, s, t, path, r);
    if (named_array(b) && named_array(s) && named_array(t))
        return merge_named(b, s, t, path, r);
    const char *side = settled_by(path, r);
    if (side && strcmp(side, "source") == 0)
        return s ? json_deep_copy(s) : NULL;
    if (!side || strcmp(side, "target") != 0)
        conflict(r->conflicts, path->p[0], b, s, t);
    return t ? json_deep_copy(t) : NULL;
}

static json_t *merge_resolved(const json_t *base, const json_t *source, const json_t *target, const json_t *fields,
                              const char *side, json_t *conflicts)
{
    merge_rules r = {.fields = fields, .side = side, .conflicts = conflicts};
    mpath root = {{oms_xstrdup(""), oms_xstrdup(""), oms_xstrdup(""), oms_xstrdup("")}};
    json_t *out = merge_at(base, source, target, &root, &r);
    mpath_free(&root);
    return out;
}

json_t *oms_merge_documents(const json_t *base, const json_t *source, const json_t *target, json_t *conflicts)
{
    return merge_resolved(base, source, target, NULL, NULL, conflicts);
}

bool oms_merge_is_field_resolution(const json_t *res)
{
    if (!json_is_object(res) || json_object_size(res) == 0)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)res, k, v) {
        if (k[0] != '/')
            return false;
    }
    return true;
}

/* ---- snapshots ---- */

static json_t *parse(const oms_entry *e) { return e ? json_loadb(e->text, e->len, 0, NULL) : NULL; }

static const char *hash_of(const oms_entry *e) { return e ? e->hash : NULL; }

static bool same_hash(const oms_entry *x, const oms_entry *y)
{
    if (!x || !y)
        return x == y;
    return strcmp(x->hash, y->hash) == 0;
}

static void merge_key(const char *key, const oms_snapshot *bs, const oms_snapshot *ss, const oms_snapshot *ts,
                      const json_t *resolutions, oms_merge_outcome *out)
{
    const oms_entry *b = oms_snapshot_get_key(bs, key), *s = oms_snapshot_get_key(ss, key),
                    *t = oms_snapshot_get_key(ts, key);
    if (same_hash(s, t) || same_hash(b, s))
        return; /* target already has the result */
    if (same_hash(b, t)) {
        json_object_set_new(out->result, key, s ? parse(s) : json_null());
        return;
    }
    /* Resolutions (docs/merge.md): a document replaces the resource; a side
     * ("source" or "target") or a map of field pointers to sides settles
     * only the conflicting fields, so the other side's clean changes stay.
     * Where no field merge applies (add/add, delete/modify) a side takes
     * that side's whole resource. */
    const json_t *res = json_object_get(resolutions, key);
    const char *side = json_string_value(res);
    bool field_map = oms_merge_is_field_resolution(res);
    if (json_is_object(res) && !field_map) {
        json_object_set_new(out->result, key, json_deep_copy(res));
        return;
    }
    if (side && (!b || !s || !t)) {
        if (strcmp(side, "source") == 0)
            json_object_set_new(out->result, key, s ? parse(s) : json_null());
        return; /* "target": the target already has it */
    }
    json_t *jb = parse(b), *js = parse(s), *jt = parse(t);
    const char *type = !b ? "add/add" : (!s || !t) ? "delete/modify" : "modify/modify";
    json_t *fields = json_array();
    json_t *merged = NULL;
    if (b && s && t)
        merged = merge_resolved(jb, js, jt, field_map ? res : NULL, side, fields);
    if (b && s && t && json_array_size(fields) == 0) {
        if (json_equal(merged, jt))
            json_decref(merged); /* the target already has the result */
        else
            json_object_set_new(out->result, key, merged);
        merged = NULL;
    } else {
        json_array_append_new(out->conflicts,
                              json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:o,s:o,s:o,s:o}", "resource", key, "type", type,
                                        "base_hash", hash_of(b), "source_hash", hash_of(s), "target_hash",
                                        hash_of(t), "base", jb ? json_incref(jb) : json_null(), "source",
                                        js ? json_incref(js) : json_null(), "target",
                                        jt ? json_incref(jt) : json_null(), "fields", json_incref(fields)));
    }
    json_decref(merged);
    json_decref(fields);
    json_decref(jb);
    json_decref(js);
    json_decref(jt);
}

static void add_bucket_keys(json_t *keys, const oms_bucket *bk)
{
    for (size_t i = 0; bk && i < bk->n; i++)
        json_object_set_new(keys, bk->e[i]->key, json_true());
}

int oms_merge_snapshots(const oms_snapshot *base, const oms_snapshot *source, const oms_snapshot *target,
                        const json_t *resolutions, oms_merge_outcome *out)
{
    out->result = json_object();
    out->conflicts = json_array();
    for (int i = 0; i < OMS_BUCKETS; i++) {
        const oms_bucket *bb = base->b[i], *sb = source->b[i], *tb = target->b[i];
        /* Nothing changed on the source side of this bucket: the target wins. */
        if ((!bb && !sb) || (bb && sb && bb->hash[0] && strcmp(bb->hash, sb->hash) == 0))
            continue;
        json_t *keys = json_object();
        add_bucket_keys(keys, bb);
        add_bucket_keys(keys, sb);
        add_bucket_keys(keys, tb);
        const char *k;
        json_t *v;
        json_object_foreach(keys, k, v) merge_key(k, base, source, target, resolutions, out);
        json_decref(keys);
    }
    return OMS_OK;
}

void oms_merge_outcome_clear(oms_merge_outcome *o)
{
    json_decref(o->result);
    json_decref(o->conflicts);
    o->result = o->conflicts = NULL;
}
