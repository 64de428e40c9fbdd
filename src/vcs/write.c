#include "vcs/write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include "governance/overrides.h"
#include "locks/lock_check.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "store/store.h"
#include "store/tree_sql.h"
#include "store/vcs_sql.h"
#include "txn/change.h"
#include "util/alloc.h"
#include "util/canonical.h"
#include "util/encoding.h"
#include "util/pair_memo.h"
#include "util/time.h"
#include "store/bulk_sql.h"
#include "vcs/commit.h"
#include "vcs/compat.h"

void oms_write_result_clear(oms_write_result *res)
{
    json_decref(res->changes);
    oms_snapshot_unref(res->snap);
    memset(res, 0, sizeof *res);
}

/* ---- hooks ---- */

static _Atomic(oms_vcs_commit_hook) g_on_commit;
static _Atomic(oms_vcs_branch_create_hook) g_on_branch_create;
static _Atomic(oms_vcs_branch_delete_hook) g_on_branch_delete;

void oms_vcs_set_commit_hook(oms_vcs_commit_hook on_commit, oms_vcs_branch_create_hook on_branch_create,
                             oms_vcs_branch_delete_hook on_branch_delete)
{
    atomic_store(&g_on_commit, on_commit);
    atomic_store(&g_on_branch_create, on_branch_create);
    atomic_store(&g_on_branch_delete, on_branch_delete);
}

int oms_vcs_run_commit_hook(oms_dbconn *c, const char *branch, const oms_snapshot *state, const json_t *changes,
                            const char *commit, oms_error *err)
{
    oms_vcs_commit_hook fn = atomic_load(&g_on_commit);
    return fn ? fn(c, branch, state, changes, commit, err) : OMS_OK;
}

int oms_vcs_run_branch_create_hook(oms_dbconn *c, const char *branch, const char *from, const char *commit,
                                   oms_error *err)
{
    oms_vcs_branch_create_hook fn = atomic_load(&g_on_branch_create);
    return fn ? fn(c, branch, from, commit, err) : OMS_OK;
}

int oms_vcs_run_branch_delete_hook(oms_dbconn *c, const char *branch, oms_error *err)
{
    oms_vcs_branch_delete_hook fn = atomic_load(&g_on_branch_delete);
    return fn ? fn(c, branch, err) : OMS_OK;
}

/* Field-level diffs remembered by the two versions' content hashes (and the
 * kind, whose rules the diff follows, and the texts' lengths): a pair of
 * versions always has the same diff. A diff between commits walks every
 * changed resource and parsed both versions of each (4.5 % of the soak
 * server's CPU, docs/BENCHMARKS.md round 24); diffs of nearby commits, and
 * a diff after the write that made the change, meet the same pairs. The
 * value is '0' or '1' (breaking) and the diff's compact JSON; larger diffs
 * (a whole document added or removed) are not kept. At most 2,048 pairs,
 * 8 MiB. */
#define FIELD_DIFF_MAX 4096
static oms_pair_memo_slot g_field_diff_slots[2048];
static oms_pair_memo g_field_diffs = OMS_PAIR_MEMO_INIT(g_field_diff_slots, FIELD_DIFF_MAX + 1);

static uint64_t field_diff_tag(oms_kind kind, const oms_entry *o, const oms_entry *n)
{
    return (uint64_t)kind << 56 ^ (uint64_t)(o ? o->len : 0) << 28 ^ (uint64_t)(n ? n->len : 0);
}

/* Only entries named by a real content hash (unit-test stand-ins are not). */
static bool memo_name(const oms_entry *e, const char **name)
{
    *name = e ? e->hash : "";
    return !e || e->raw_ok;
}

json_t *oms_entry_diff(const oms_entry *old_e, const oms_entry *new_e, bool *breaking)
{
    oms_kind kind = new_e ? new_e->kind : old_e->kind;
    const char *oh, *nh;
    bool old_named = memo_name(old_e, &oh), new_named = memo_name(new_e, &nh);
    bool keyed = old_named && new_named;
    uint64_t tag = field_diff_tag(kind, old_e, new_e);
    bool br = false;
    if (keyed) {
        size_t len = 0;
        char *known = oms_pair_memo_get(&g_field_diffs, tag, oh, nh, &len);
        json_t *d = known && len > 1 ? json_loadb(known + 1, len - 1, 0, NULL) : NULL;
        br = known && known[0] == '1';
        free(known);
        if (d) {
            if (breaking)
                *breaking = br;
            return d;
        }
    }
    json_t *o = old_e ? json_loadb(old_e->text, old_e->len, 0, NULL) : NULL;
    json_t *n = new_e ? json_loadb(new_e->text, new_e->len, 0, NULL) : NULL;
    /* a document that did not parse gives no diff worth remembering */
    bool parsed = (!old_e || o) && (!new_e || n);
    json_t *d = oms_diff_documents(kind, o, n, &br);
    json_decref(o);
    json_decref(n);
    if (breaking)
        *breaking = br;
    if (keyed && parsed && d) {
        char buf[FIELD_DIFF_MAX + 2];
        buf[0] = br ? '1' : '0';
        size_t len = json_dumpb(d, buf + 1, sizeof buf - 1, JSON_COMPACT);
        if (len > 0 && len <= FIELD_DIFF_MAX) /* the flag byte and the JSON */
            oms_pair_memo_put(&g_field_diffs, tag, oh, nh, buf, len + 1);
    }
    return d;
}

void oms_entry_diff_memo_counts(unsigned long *hits, unsigned long *misses)
{
    oms_pair_memo_counts(&g_field_diffs, hits, misses);
}

/* ---- integrity over the new state ---- */

typedef struct {
    const oms_snapshot *snap;
    json_t *parsed; /* key -> parsed document, filled on demand */
} lookup_ctx;

static const json_t *lookup_doc(void *p, oms_kind kind, const char *api_name)
{
    lookup_ctx *ctx = p;
    const oms_entry *e = oms_snapshot_get(ctx->snap, kind, api_name);
    if (!e)
        return NULL;
    json_t *doc = json_object_get(ctx->parsed, e->key);
    if (!doc) {
        doc = json_loadb(e->text, e->len, 0, NULL);
        if (!doc)
            return NULL;
        json_object_set_new(ctx->parsed, e->key, doc);
    }
    return doc;
}

static void add_resource_errors(json_t *all, const char *key, json_t *errs)
{
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        json_object_set_new(e, "resource", json_string(key));
        json_array_append(all, e);
    }
}

typedef struct {
    json_t *targets;    /* set: keys whose dependents we look for */
    json_t *deleted;    /* set: keys removed by this change */
    json_t *dependents; /* key -> [dependent keys] of deleted targets */
    json_t *recheck;    /* set: dependents to re-validate */
} dep_scan;

static void note_ref(dep_scan *d, const oms_entry *e, const char *target)
{
    if (json_object_get(d->deleted, target)) {
        json_t *list = json_object_get(d->dependents, target);
        if (!list)
            json_object_set_new(d->dependents, target, list = json_array());
        json_array_append_new(list, json_string(e->key));
    } else {
        json_object_set_new(d->recheck, e->key, json_true());
    }
}

static void scan_entry(void *p, const oms_entry *e)
{
    dep_scan *d = p;
    const oms_refs *refs = oms_entry_refs(e);
    for (size_t i = 0; i < refs->n; i++)
        if (json_object_get(d->targets, refs->v[i]))
            note_ref(d, e, refs->v[i]);
}

/* One reference to a target, found through the reverse index. */
typedef struct {
    const oms_entry *e;
    const char *target;
    int bucket;
    size_t pos; /* the target's place among e's references */
} found_ref;

typedef struct {
    found_ref *v;
    size_t n, cap;
    const char *target;
} found_refs;

static void collect_referrer(void *p, const oms_entry *e)
{
    found_refs *f = p;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = oms_xrealloc(f->v, f->cap * sizeof *f->v);
    }
    const oms_refs *refs = oms_entry_refs(e);
    size_t pos = 0;
    while (pos < refs->n && strcmp(refs->v[pos], f->target) != 0)
        pos++;
    f->v[f->n++] = (found_ref){e, f->target, e->khash[0], pos};
}

static int found_cmp(const void *a, const void *b)
{
    const found_ref *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    int c = strcmp(x->e->key, y->e->key);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Every reference to d->targets, in the order a scan of the whole snapshot
 * would meet them (entry order, then the entry's reference order), so the
 * problem documents list what they listed before the index existed. */
static void scan(const oms_snapshot *snap, dep_scan *d)
{
    found_refs f = {0};
    const char *key;
    json_t *v;
    bool indexed = true;
    json_object_foreach(d->targets, key, v) {
        f.target = key;
        if (!(indexed = oms_snapshot_referrers(snap, key, collect_referrer, &f)))
            break;
    }
    if (!indexed) { /* no index: the whole snapshot */
        free(f.v);
        oms_snapshot_each(snap, scan_entry, d);
        return;
    }
    if (f.n > 1)
        qsort(f.v, f.n, sizeof *f.v, found_cmp);
    for (size_t i = 0; i < f.n; i++)
        note_ref(d, f.v[i].e, f.v[i].target);
    free(f.v);
}

/* Refuses deletes of referenced resources (409 has_dependents) and checks
 * the integrity of every changed resource and of every resource whose
 * integrity depends on a changed one (transitively through interfaces). */
static int check_integrity(oms_ctx *ctx, const oms_snapshot *snap, json_t *touched, json_t *deleted, oms_error *err)
{
    lookup_ctx lc = {snap, json_object()};
    json_t *errors = json_array();
    dep_scan d = {json_deep_copy(touched), deleted, json_object(), json_object()};
    int rc = OMS_OK;
    if (!lc.parsed || !errors || !d.targets || !d.dependents || !d.recheck) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }

    scan(snap, &d);
    if (json_object_size(d.dependents)) {
        json_t *list = json_array();
        const char *key;
        json_t *deps;
        json_object_foreach(d.dependents, key, deps) {
            json_array_append_new(list, json_pack("{s:s,s:O}", "resource", key, "dependents", deps));
        }
        oms_ctx_problem_extra(ctx, json_pack("{s:o}", "dependents", list));
        rc = oms_err_set_as(err, OMS_ECONFLICT, "has_dependents", "a deleted resource is still referenced");
        goto cleanup;
    }
    /* Dependents of changed interfaces propagate: rescan until stable. */
    json_t *scanned = json_deep_copy(touched);
    for (int round = 0; round < 16; round++) {
        json_t *next = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(d.recheck, key, v) {
            if (!json_object_get(scanned, key) && strncmp(key, "interfaces/", 11) == 0)
                json_object_set_new(next, key, json_true());
        }
        if (json_object_size(next) == 0) {
            json_decref(next);
            break;
        }
        json_object_update(scanned, next);
        json_decref(d.targets);
        d.targets = next;
        scan(snap, &d);
    }
    json_decref(scanned);
    json_t *to_check = json_deep_copy(touched);
    json_object_update(to_check, d.recheck);
    const char *key;
    json_t *v;
    json_object_foreach(to_check, key, v) {
        if (json_object_get(deleted, key))
            continue;
        const oms_entry *e = oms_snapshot_get_key(snap, key);
        if (!e)
            continue;
        json_t *errs = json_array();
        if (oms_check_integrity(e->kind, lookup_doc(&lc, e->kind, e->api_name), lookup_doc, &lc, errs) > 0)
            add_resource_errors(errors, key, errs);
        json_decref(errs);
    }
    json_decref(to_check);
    if (json_array_size(errors)) {
        oms_ctx_problem_extra(ctx, json_pack("{s:O}", "errors", errors));
        rc = oms_err_set_as(err, OMS_ECONFLICT, "integrity_violation", "the change breaks the ontology's integrity");
    }
cleanup:
    json_decref(errors);
    json_decref(d.targets);
    json_decref(d.dependents);
    json_decref(d.recheck);
    json_decref(lc.parsed);
    return rc;
}

/* ---- applying operations ---- */

static int apply_ops(oms_ctx *ctx, oms_snapshot *fork, oms_write *w, json_t *touched, json_t *deleted,
                     oms_error *err)
{
    for (size_t i = 0; i < w->nops; i++) {
        oms_write_op *op = &w->ops[i];
        char key[160];
        snprintf(key, sizeof key, "%s/%s", oms_kind_segment(op->kind), op->api_name);
        const oms_entry *cur = oms_snapshot_get_key(fork, key);
        op->old_hash[0] = op->new_hash[0] = '\0';
        if (cur)
            snprintf(op->old_hash, sizeof op->old_hash, "%s", cur->hash);
        if (op->op == OMS_OP_CREATE && cur) {
            oms_ctx_problem_extra(ctx, json_pack("{s:s,s:i}", "resource", key, "operation", (int)i));
            return oms_err_set_as(err, OMS_ECONFLICT, "already_exists", "%s already exists", key);
        }
        if (op->op != OMS_OP_CREATE && !cur) {
            oms_ctx_problem_extra(ctx, json_pack("{s:s,s:i}", "resource", key, "operation", (int)i));
            return oms_err_set(err, OMS_ENOTFOUND, "%s does not exist", key);
        }
        if (op->if_match && cur && strcmp(op->if_match, "*") != 0 && strcmp(op->if_match, cur->hash) != 0) {
            oms_ctx_problem_extra(ctx, json_pack("{s:s,s:s,s:i}", "resource", key, "current_etag", cur->hash,
                                                 "operation", (int)i));
            return oms_err_set(err, OMS_EPRECOND, "%s has changed since %.12s", key, op->if_match);
        }
        json_object_set_new(touched, key, json_true());
        if (op->op == OMS_OP_DELETE) {
            oms_snapshot_remove(fork, key);
            json_object_set_new(deleted, key, json_true());
            continue;
        }
        json_object_del(deleted, key);
        char *text = NULL;
        if (oms_canonical_hash(op->doc, op->new_hash, &text))
            return oms_err_set(err, OMS_ENOMEM, "out of memory");
        oms_entry *e = oms_entry_new(op->kind, op->api_name, op->new_hash, text, strlen(text), "", "", 0);
        free(text);
        oms_entry_refs_from_doc(e, op->doc);
        oms_snapshot_put(fork, e);
    }
    return OMS_OK;
}

/* [{resource, change, old_hash, new_hash, breaking, fields}] for touched keys
 * whose content differs between base and the new state. */
static json_t *describe_changes(const oms_snapshot *base, const oms_snapshot *fork, json_t *touched, bool *breaking)
{
    json_t *out = json_array();
    const char *key;
    json_t *v;
    *breaking = false;
    json_object_foreach(touched, key, v) {
        const oms_entry *o = oms_snapshot_get_key(base, key), *n = oms_snapshot_get_key(fork, key);
        if ((!o && !n) || (o && n && strcmp(o->hash, n->hash) == 0))
            continue;
        bool b = false;
        json_t *fields = oms_entry_diff(o, n, &b);
        *breaking = *breaking || b;
        json_array_append_new(out, json_pack("{s:s,s:s,s:s?,s:s?,s:b,s:o}", "resource", key, "change",
                                             !o ? "added" : !n ? "removed" : "modified", "old_hash",
                                             o ? o->hash : NULL, "new_hash", n ? n->hash : NULL, "breaking",
                                             b, "fields", fields ? fields : json_array()));
    }
    return out;
}

/* ---- storing ---- */

static char *changed_paths_text(json_t *changes)
{
    json_t *paths = json_array();
    size_t i, k;
    json_t *ch, *f;
    json_array_foreach(changes, i, ch) {
        const char *res = json_string_value(json_object_get(ch, "resource"));
        json_array_foreach(json_object_get(ch, "fields"), k, f) {
            json_array_append_new(paths, json_sprintf("%s#%s", res, json_string_value(json_object_get(f, "path"))));
        }
    }
    char *s = json_dumps(paths, JSON_COMPACT);
    json_decref(paths);
    return s;
}

static char *default_message(const oms_write *w)
{
    if (w->nops == 1) {
        static const char *const verbs[] = {"Create", "Update", "Delete"};
        char buf[200];
        snprintf(buf, sizeof buf, "%s %s/%s", verbs[w->ops[0].op], oms_kind_segment(w->ops[0].kind),
                 w->ops[0].api_name);
        return oms_xstrdup(buf);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "Apply %zu changes", w->nops);
    return oms_xstrdup(buf);
}

/* The branch's forks keep what they share of it (oms_bulk_branch_push):
 * the keys of its upserts ([key, hash] rows) and removals. */
static int push_to_forks(oms_dbconn *c, const char *branch, const json_t *upserts, const json_t *removed,
                         oms_error *err)
{
    json_t *keys = json_copy((json_t *)removed);
    size_t i;
    json_t *row;
    json_array_foreach(upserts, i, row) {
        if (keys && json_array_append(keys, json_array_get(row, 0)))
            break;
    }
    int rc = keys && json_array_size(keys) == json_array_size(removed) + json_array_size(upserts)
                 ? oms_bulk_branch_push(c, branch, keys, err)
                 : oms_err_set(err, OMS_ENOMEM, "out of memory");
    json_decref(keys);
    return rc;
}

/* Stores the new state: objects, the commit, its change rows, the branch's
 * resource rows, the commit hook (search index), then moves the head by
 * compare-and-swap and runs the caller's in-transaction callback. */
static int persist(oms_dbconn *c, oms_ctx *ctx, oms_write *w, const char *head, int64_t now_ms, oms_snapshot *fork,
                   json_t *changes, bool has_forks, char id[65], oms_error *err)
{
    /* An override the change relies on is used in this transaction; the
     * commit names it (the helper's own call is then a no-op). */
    int rc = oms_governance_in_tx(c, ctx, err);
    if (rc)
        return rc;
    const char *override_id = ctx->override.used ? ctx->override.id : NULL;
    json_t *objects = json_array(), *change_rows = json_array(), *upserts = json_array(), *removed = json_array();
    json_t *nodes = json_array();
    char *message = NULL;
    if (!objects || !change_rows || !upserts || !removed || !nodes) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto done;
    }
    rc = oms_snapshot_seal(fork, oms_store_tree_node_collect, nodes);
    if (rc) {
        rc = oms_err_set(err, OMS_ENOMEM, "cannot build the tree");
        goto done;
    }
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        const char *key = json_string_value(json_object_get(ch, "resource"));
        const oms_entry *e = oms_snapshot_get_key(fork, key);
        json_array_append_new(change_rows, json_pack("[s,s,s?,s?]", key, json_string_value(json_object_get(ch, "change")),
                                                     json_string_value(json_object_get(ch, "old_hash")),
                                                     json_string_value(json_object_get(ch, "new_hash"))));
        if (e) {
            json_array_append_new(objects, json_pack("[s,s,s]", e->hash, "resource", e->text));
            json_array_append_new(upserts, json_pack("[s,s]", key, e->hash));
        } else {
            json_array_append_new(removed, json_string(key));
        }
    }
    message = w->message ? oms_xstrdup(w->message) : default_message(w);
    const char *author = ctx->sub ? ctx->sub : "oms";
    const json_t *issue_keys = ctx->issue_keys && json_array_size(ctx->issue_keys) ? ctx->issue_keys : NULL;
    oms_commit_info ci = {.tree = fork->tree, .parents = {head, w->merge_parent}, .nparents = w->merge_parent ? 2 : 1,
                          .author = author, .message = message, .time_ms = now_ms,
                          .issue_keys = issue_keys, .override_id = override_id};
    oms_commit_id(&ci, id, NULL);
    /* Objects and the tree first: a commit row never names a tree that is
     * not stored. */
    char root[65];
    oms_hex(root, fork->top[0], 32);
    if ((rc = oms_bulk_objects(c, objects, err)) == OMS_OK && (rc = oms_store_tree_nodes_put(c, nodes, err)) == OMS_OK &&
        (rc = oms_store_tree_put(c, fork->tree, root, err)) == OMS_OK && (rc = oms_commit_store(c, &ci, id, err)) == OMS_OK &&
        (rc = oms_bulk_changes(c, id, change_rows, err)) == OMS_OK &&
        (!has_forks || (rc = push_to_forks(c, w->branch, upserts, removed, err)) == OMS_OK) &&
        (rc = oms_bulk_branch_upsert(c, w->branch, id, author, ci.time_ms, upserts, err)) == OMS_OK &&
        (rc = oms_bulk_branch_delete(c, w->branch, removed, err)) == OMS_OK)
        rc = oms_vcs_run_commit_hook(c, w->branch, fork, changes, id, err); /* the index moves with the commit */
    /* New entries are private to this fork until it is published. */
    json_array_foreach(upserts, i, ch) {
        oms_entry *e = (oms_entry *)oms_snapshot_get_key(fork, json_string_value(json_array_get(ch, 0)));
        snprintf(e->commit, sizeof e->commit, "%s", id);
        free(e->author);
        e->author = oms_xstrdup(author);
        e->time_ms = ci.time_ms;
    }
    if (rc)
        goto done;
    /* The head moves by compare-and-swap, sent with COMMIT (or the next
     * statement): under the branch row's lock it cannot fail but for a bug,
     * and if it does, it fails the transaction. */
    rc = oms_store_branch_move_head_later(c, w->branch, head, id, ci.time_ms, err);
    if (rc == OMS_OK && w->in_tx)
        rc = w->in_tx(c, w->in_tx_ctx, id, err);
done:
    free(message);
    json_decref(nodes);
    json_decref(objects);
    json_decref(change_rows);
    json_decref(upserts);
    json_decref(removed);
    return rc;
}

/* ---- the transaction ---- */

/* What /metrics counts the commit as. */
static oms_commit_kind commit_kind(const oms_write *w)
{
    if (w->merge_parent)
        return OMS_COMMIT_MERGE;
    return w->audit_action && strcmp(w->audit_action, "branch.revert") == 0 ? OMS_COMMIT_REVERT : OMS_COMMIT_CHANGE;
}

/* What a write leaves for the next write of a group commit's batch
 * (oms_change_out.carry), so that one skips the round trip that reads the
 * branch row and the lock check's state. In the same transaction, right
 * after a written change of the same branch, those reads would return:
 * - the branch row as this change left it: the transaction holds its row
 *   lock (FOR UPDATE, kept when the member's savepoint was released), so
 *   only this change moved the head, and protection and the policy are
 *   unchanged;
 * - no live lock, when this transaction's reads found none: it holds the
 *   branch's shared advisory lock, which every acquisition needs
 *   exclusively (docs/locks.md), so none was granted since;
 * - the database clock, as read once, advanced by the monotonic clock. */
typedef struct {
    char branch[104]; /* names are at most 100 bytes (oms_valid_branch_name) */
    oms_store_write_branch b; /* head: the commit this change made; now_ms: at read_ns */
    int64_t read_ns;
    bool no_live_locks;
} write_carry;
_Static_assert(sizeof(write_carry) <= OMS_CHANGE_CARRY_MAX, "the carry fits oms_change_out");

typedef struct {
    oms_write *w;
    oms_write_result *res;
    oms_snapshot *base, *fork; /* of the last attempt */
    bool writing;              /* past the checks: the outcome counts in /metrics */
    bool pending;              /* fork published to the cache before COMMIT */
} write_run;

static void write_run_reset(write_run *s)
{
    if (s->pending)
        oms_snapshot_cache_drop_pending(s->fork);
    s->pending = false;
    oms_snapshot_unref(s->base);
    oms_snapshot_unref(s->fork);
    s->base = s->fork = NULL;
    json_decref(s->res->changes);
    s->res->changes = NULL;
    s->res->breaking = false;
    s->writing = false;
}

/* The audit record of a write: one operation names its resource and
 * hashes, anything else the caller's resource (or none). */
static int describe_event(oms_ctx *ctx, const oms_write *w, const json_t *changes, bool breaking,
                          oms_change_out *out, oms_error *err)
{
    if (w->nops == 1 && !w->audit_resource_kind) {
        out->resource_kind = oms_kind_segment(w->ops[0].kind);
        out->resource_id = w->ops[0].api_name;
        out->before_hash = w->ops[0].old_hash[0] ? w->ops[0].old_hash : NULL;
        out->after_hash = w->ops[0].new_hash[0] ? w->ops[0].new_hash : NULL;
    } else {
        out->resource_kind = w->audit_resource_kind;
        out->resource_id = w->audit_resource_id;
    }
    out->status = w->success_status                                    ? w->success_status
                  : w->nops == 1 && w->ops[0].op == OMS_OP_CREATE ? 201
                  : w->nops == 1 && w->ops[0].op == OMS_OP_DELETE ? 204
                                                                  : 200;
    char *paths = changed_paths_text((json_t *)changes);
    if (!paths)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    out->changed_paths = oms_arena_strdup(ctx->arena, paths);
    free(paths);
    out->detail = w->audit_detail ? json_deep_copy(w->audit_detail)
                                  : json_pack("{s:I,s:b}", "operations", (json_int_t)w->nops, "breaking", breaking);
    if (!out->detail || !out->changed_paths)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    return OMS_OK;
}

/* The change step: the branch row (head, protection, compatibility policy,
 * the database clock) and the lock check's reads in one round trip,
 * protection and If-Match, the operations on the head's snapshot,
 * integrity, override scope and locks (checked here, before anything is
 * written, in the order the SPEC gives their refusals), then the commit. */
static int write_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    write_run *s = arg;
    oms_write *w = s->w;
    oms_write_result *res = s->res;
    write_run_reset(s);
    json_t *touched = json_object(), *deleted = json_object();
    oms_dbres *brow = NULL, *bforks = NULL;
    oms_lock_reads locks = {0};
    oms_store_write_branch b;
    int rc;
    if (!touched || !deleted) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto done;
    }
    const write_carry *in = out->carry_in;
    write_carry next = {0};
    if (in && strcmp(in->branch, w->branch) == 0 && in->no_live_locks &&
        oms_lock_reads_assume_none(ctx, w->branch, &locks)) {
        /* Right after a write of this branch in this transaction: its row
         * and the branch's shared advisory lock are held since, so the
         * round trip would read what the change before left (see
         * write_carry). */
        out->carry_used = true;
        b = in->b;
        b.now_ms = in->b.now_ms + (oms_mono_ns() - in->read_ns) / 1000000;
        next.read_ns = in->read_ns;
        next.b.now_ms = in->b.now_ms;
    } else {
        /* The row lock first, then the lock check's reads (docs/locks.md: a
         * writer holds the branch row when it takes the shared advisory lock). */
        if ((rc = oms_store_branch_for_write_later(c, w->branch, &brow, &bforks, err)) ||
            (rc = oms_lock_check_read_ahead(c, ctx, w->branch, &locks, err)) || (rc = oms_db_flush(c, err)) ||
            (rc = oms_store_branch_for_write_row(brow, bforks, w->branch, &b, err)))
            goto done;
        next.read_ns = oms_mono_ns();
        next.b.now_ms = b.now_ms;
    }
    const char *head = b.head;
    bool protect = b.protect;
    int64_t now_ms = b.now_ms;
    if (protect && !w->dry_run && !w->bypass_protection &&
        !oms_override_permits(ctx, "protected_branch", w->branch, NULL, 0)) {
        rc = oms_err_set_as(err, OMS_EFORBIDDEN, "protected_branch",
                            "%s is protected: changes arrive by merging an approved proposal", w->branch);
        goto done;
    }
    if (w->if_match_head && strcmp(w->if_match_head, head) != 0 && strcmp(w->if_match_head, "*") != 0) {
        oms_ctx_problem_extra(ctx, json_pack("{s:s}", "current_etag", head));
        rc = oms_err_set(err, OMS_EPRECOND, "the branch head is no longer %.12s", w->if_match_head);
        goto done;
    }
    if ((rc = oms_snapshot_for_branch_write(c, w->branch, head, &s->base, err)))
        goto done;
    oms_snapshot_revidx_ensure(s->base); /* once per cached state; forks keep theirs */
    if (!(s->fork = oms_snapshot_fork(s->base))) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = apply_ops(ctx, s->fork, w, touched, deleted, err)))
        goto done;
    if ((rc = check_integrity(ctx, s->fork, touched, deleted, err)))
        goto done;
    {
        const char **keys = oms_arena_alloc(ctx->arena, (json_object_size(touched) + 1) * sizeof *keys);
        if (!keys) {
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
            goto done;
        }
        size_t n = 0;
        const char *key;
        json_t *v;
        json_object_foreach(touched, key, v) keys[n++] = key;
        if (!oms_override_in_scope(ctx, keys, n)) {
            rc = oms_err_set_as(err, OMS_EFORBIDDEN, protect ? "protected_branch" : "override_out_of_scope",
                                "the override covers only %s", ctx->override.resource);
            goto done;
        }
        if ((rc = oms_lock_check_write_with(c, ctx, &locks, w->branch, keys, n, err)))
            goto done;
        out->locks_checked = true;
    }
    if (!(res->changes = describe_changes(s->base, s->fork, touched, &res->breaking))) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto done;
    }
    /* the branch's compatibility policy (SPEC §4): block refuses a
     * breaking change; a dry run reports the changes and their rules */
    if (!w->dry_run && json_array_size(res->changes) > 0 &&
        (rc = oms_vcs_compat_check_policy(c, ctx, w->branch, b.compat, b.transitive, head, s->fork, res->changes,
                                          err)))
        goto done;
    if (w->dry_run || (json_array_size(res->changes) == 0 && !w->allow_empty)) {
        snprintf(res->commit, sizeof res->commit, "%s", head);
        out->no_op = true;
        goto done;
    }
    s->writing = true;
    char id[65];
    if ((rc = persist(c, ctx, w, head, now_ms, s->fork, res->changes, b.has_forks, id, err)))
        goto done;
    snprintf(res->commit, sizeof res->commit, "%s", id);
    snprintf(s->fork->commit, sizeof s->fork->commit, "%s", id);
    if (oms_lock_reads_found_none(&locks) && strlen(w->branch) < sizeof next.branch) {
        snprintf(next.branch, sizeof next.branch, "%s", w->branch);
        memcpy(next.b.head, id, sizeof next.b.head);
        next.b.protect = b.protect;
        memcpy(next.b.compat, b.compat, sizeof next.b.compat);
        next.b.transitive = b.transitive;
        next.b.has_forks = b.has_forks; /* a fork needs a share lock on this row, held since */
        next.no_live_locks = true;
        memcpy(out->carry, &next, sizeof next);
        out->ncarry = sizeof next;
    }
    /* Published before COMMIT: the next writer on this branch waits for the
     * row lock, then reads this id as the head and must find its state
     * here rather than reload the branch while holding the lock. */
    oms_snapshot_cache_put_pending(s->fork);
    s->pending = true;
    out->branch = w->branch;
    out->commit_id = oms_arena_strdup(ctx->arena, id);
    rc = describe_event(ctx, w, res->changes, res->breaking, out, err);
done:
    oms_lock_reads_free(&locks);
    oms_dbres_free(brow);
    oms_dbres_free(bforks);
    json_decref(touched);
    json_decref(deleted);
    return rc;
}

/* A dry run: the same step in a read transaction, rolled back. */
static int dry_run(oms_ctx *ctx, write_run *s, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc || (rc = oms_db_begin(c, false, err)))
        return rc;
    oms_change_out out = {0};
    rc = write_step(c, ctx, s, &out, err);
    json_decref(out.detail);
    oms_db_rollback(c);
    if (rc == OMS_EDB)
        oms_db_conn_reset(ctx->store->db);
    return rc;
}

int oms_vcs_write(oms_ctx *ctx, oms_write *w, oms_write_result *res, oms_error *err)
{
    memset(res, 0, sizeof *res);
    write_run s = {.w = w, .res = res};
    int rc;
    if (w->dry_run) {
        rc = dry_run(ctx, &s, err);
    } else {
        oms_change_spec spec = {.action = w->audit_action, .branch = w->branch, .check_locks = true,
                                .step = write_step, .arg = &s, .groupable = true};
        oms_change_out out;
        rc = oms_change_run(ctx, &spec, &out, err);
        if (s.writing)
            oms_metrics_commit(commit_kind(w), rc);
        if (rc == OMS_OK && !out.no_op) {
            res->changed = true;
            oms_snapshot_cache_put(s.fork); /* confirms the pending state */
        } else if (s.pending) {
            oms_snapshot_cache_drop_pending(s.fork);
        }
    }
    if (rc == OMS_OK) {
        res->snap = w->dry_run || res->changed ? s.fork : s.base;
        oms_snapshot_ref(res->snap);
    }
    oms_snapshot_unref(s.base);
    oms_snapshot_unref(s.fork);
    return rc;
}
