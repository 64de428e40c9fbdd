#include "vcs/compat.h"

#include <stdio.h>
#include <string.h>

#include "governance/overrides.h"
#include "store/tags_sql.h"
#include "store/tree_sql.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "vcs/tree_read.h"

/* Appends one entry per breaking field of `changes`; with `tag`, the entry
 * names the release it breaks, in `against` and in its reason. */
static void add_entries(json_t *out, const json_t *changes, const char *tag)
{
    size_t i, j;
    json_t *ch, *f;
    json_array_foreach(changes, i, ch) {
        const char *res = json_string_value(json_object_get(ch, "resource"));
        if (!res)
            continue;
        json_array_foreach(json_object_get(ch, "fields"), j, f) {
            if (!json_is_true(json_object_get(f, "breaking")))
                continue;
            json_t *rule = json_object_get(f, "rule"), *reason = json_object_get(f, "reason");
            json_t *e = json_pack("{s:s,s:O,s:O}", "resource", res, "path", json_object_get(f, "path"), "rule",
                                  rule ? rule : json_null());
            if (!e)
                continue;
            if (tag) {
                json_object_set_new(e, "reason", json_sprintf("%s (breaks tag %s)", json_string_value(reason)
                                                                  ? json_string_value(reason) : "breaking change",
                                                              tag));
                json_object_set_new(e, "against", json_string(tag));
            } else {
                json_object_set(e, "reason", reason ? reason : json_null());
            }
            json_array_append_new(out, e);
        }
    }
}

json_t *oms_vcs_breaking_entries(const json_t *changes)
{
    json_t *out = json_array();
    if (out)
        add_entries(out, changes, NULL);
    return out;
}

/* ---- transitive: every tag reachable from the head ---- */

static bool same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* The tag's version of a touched resource (`th`, "" when the tag does not
 * have it) needs its own comparison when it differs both from the head's
 * (the head check already covered that one) and from the new one (no
 * change at all against the tag). A resource the tag does not have cannot
 * be broken against it (adding is never breaking). */
static const char *tag_version(const char *th, const json_t *ch)
{
    if (!th[0] || same(th, json_string_value(json_object_get(ch, "old_hash"))) ||
        same(th, json_string_value(json_object_get(ch, "new_hash"))))
        return NULL;
    return th;
}

/* The breaking fields between the tag's version `text` of `key` and its
 * version in `after` (absent: removed), as entries against `tag`. */
static void diff_against_tag(json_t *breaking, const oms_snapshot *after, const char *key, const char *text,
                             const char *tag)
{
    const char *slash = strchr(key, '/');
    char seg[32];
    oms_kind kind;
    if (!slash || (size_t)(slash - key) >= sizeof seg)
        return;
    memcpy(seg, key, (size_t)(slash - key));
    seg[slash - key] = '\0';
    if (oms_kind_parse(&kind, seg))
        return;
    const oms_entry *n = oms_snapshot_get_key(after, key);
    json_t *o = json_loads(text, 0, NULL);
    json_t *nd = n ? json_loadb(n->text, n->len, 0, NULL) : NULL;
    bool b = false;
    json_t *fields = oms_diff_documents(kind, o, nd, &b);
    if (b && fields) {
        json_t *one = json_pack("[{s:s,s:O}]", "resource", key, "fields", fields);
        add_entries(breaking, one, tag);
        json_decref(one);
    }
    json_decref(fields);
    json_decref(o);
    json_decref(nd);
}

/* Keeps the entries of the tags whose commit is an ancestor of `head` (SPEC
 * §4: a tag on another line of history is no release of this branch).
 * per_tag[i] holds the entries found against tag row i. The walk over the
 * history runs only when some tag would be broken, and only back to the
 * oldest such tag. */
static int keep_reachable(oms_dbconn *c, const char *head, const oms_dbres *tags, json_t *per_tag,
                          json_t *breaking, oms_error *err)
{
    int64_t lowest = -1;
    for (size_t i = 0; i < tags->nrows; i++)
        if (json_array_size(json_array_get(per_tag, i)) > 0 &&
            (lowest < 0 || oms_dbres_int(tags, i, 3) < lowest))
            lowest = oms_dbres_int(tags, i, 3);
    if (lowest < 0)
        return OMS_OK;
    oms_dbres *r = NULL;
    int rc = oms_store_tags_reachable(c, head, lowest, &r, err);
    for (size_t i = 0; rc == OMS_OK && i < tags->nrows; i++) {
        json_t *entries = json_array_get(per_tag, i);
        bool reachable = false;
        for (size_t k = 0; k < r->nrows && !reachable && json_array_size(entries) > 0; k++)
            reachable = strcmp(oms_dbres_get(r, k, 0), oms_dbres_get(tags, i, 0)) == 0;
        if (reachable)
            json_array_extend(breaking, entries);
    }
    oms_dbres_free(r);
    return rc;
}

/* Compares the change with every tag whose commit is an ancestor of `head`
 * (SPEC §4: consumers pin releases by tag), for the resources it touches
 * only. Tags are few: the tags' versions of the touched resources are
 * found by walking only their paths in the tags' trees (one statement per
 * trie level for all tags and resources together, never a whole tree),
 * then their documents in one statement; which tags are ancestors is asked
 * only when one of them would be broken (keep_reachable). */
static int check_tags(oms_dbconn *c, const char *head, const oms_snapshot *after, const json_t *changes,
                      json_t *breaking, oms_error *err)
{
    oms_dbres *tags = NULL;
    int rc = oms_store_tags_with_trees(c, &tags, err);
    if (rc || tags->nrows == 0) {
        oms_dbres_free(tags);
        return rc;
    }
    size_t nt = tags->nrows, nk = json_array_size(changes), i, j, ntrees = 0;
    const char **trees = oms_xcalloc(nt + 1, sizeof *trees), **keys = oms_xcalloc(nk + 1, sizeof *keys);
    size_t *at = oms_xcalloc(nt + 1, sizeof *at); /* tag i's tree among `trees` */
    char(*found)[65] = oms_xcalloc(nt * nk + 1, sizeof *found);
    json_t *want = json_array(), *docs = json_object(), *per_tag = json_array();
    json_t *ch;
    json_array_foreach(changes, j, ch) {
        const char *key = json_string_value(json_object_get(ch, "resource"));
        keys[j] = key ? key : "";
    }
    /* each distinct tree once; a tag on the head was checked already */
    for (i = 0; i < nt; i++) {
        const char *tree = oms_dbres_get(tags, i, 2);
        if (strcmp(oms_dbres_get(tags, i, 1), head) == 0)
            continue;
        for (at[i] = 0; at[i] < ntrees && strcmp(trees[at[i]], tree) != 0; at[i]++)
            ;
        if (at[i] == ntrees)
            trees[ntrees++] = tree;
    }
    if ((rc = oms_tree_lookup(c, (const char *const *)trees, ntrees, (const char *const *)keys, nk, found, err)))
        goto done;
    for (i = 0; i < nt; i++) {
        if (strcmp(oms_dbres_get(tags, i, 1), head) == 0)
            continue;
        json_array_foreach(changes, j, ch) {
            const char *th = keys[j][0] ? tag_version(found[at[i] * nk + j], ch) : NULL;
            if (th)
                json_array_append_new(want, json_string(th));
        }
    }
    if ((rc = oms_store_objects_load(c, want, false, docs, err)))
        goto done;
    for (i = 0; i < nt; i++) {
        json_t *entries = json_array();
        json_array_append_new(per_tag, entries);
        if (strcmp(oms_dbres_get(tags, i, 1), head) == 0)
            continue;
        json_array_foreach(changes, j, ch) {
            const char *th = keys[j][0] ? tag_version(found[at[i] * nk + j], ch) : NULL;
            if (!th)
                continue;
            const char *text = json_string_value(json_object_get(docs, th));
            if (!text) {
                rc = oms_err_set(err, OMS_EINTERNAL, "object %.12s of tag %s is missing", th, oms_dbres_get(tags, i, 0));
                goto done;
            }
            diff_against_tag(entries, after, keys[j], text, oms_dbres_get(tags, i, 0));
        }
    }
    rc = keep_reachable(c, head, tags, per_tag, breaking, err);
done:
    free(trees);
    free(at);
    free(keys);
    free(found);
    json_decref(want);
    json_decref(docs);
    json_decref(per_tag);
    oms_dbres_free(tags);
    return rc;
}

int oms_vcs_compat_tag_breaks(oms_dbconn *c, const char *head, const oms_snapshot *after, const json_t *changes,
                              json_t *breaking, oms_error *err)
{
    return check_tags(c, head, after, changes, breaking, err);
}

int oms_vcs_compat_check(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *head,
                         const oms_snapshot *after, const json_t *changes, oms_error *err)
{
    char policy[16];
    bool transitive = false, found = false;
    int rc = oms_store_branch_compat(c, branch, policy, &transitive, &found, err);
    if (rc || !found)
        return rc;
    return oms_vcs_compat_check_policy(c, ctx, branch, policy, transitive, head, after, changes, err);
}

int oms_vcs_compat_check_policy(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *policy,
                                bool transitive, const char *head, const oms_snapshot *after, const json_t *changes,
                                oms_error *err)
{
    int rc = OMS_OK;
    if (strcmp(policy, "block") != 0)
        return OMS_OK;
    json_t *breaking = oms_vcs_breaking_entries(changes);
    if (!breaking)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (transitive && after && (rc = check_tags(c, head, after, changes, breaking, err))) {
        json_decref(breaking);
        return rc;
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
