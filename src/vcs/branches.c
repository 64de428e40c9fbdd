#include "vcs/branches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "locks/lock_check.h"
#include "store/bulk_sql.h"
#include "store/store.h"
#include "store/vcs_sql.h"
#include "txn/change.h"
#include "util/time.h"
#include "ontology/names.h"
#include "vcs/commit.h"
#include "vcs/refs.h"
#include "vcs/snapshot.h"
#include "vcs/write.h"

json_t *oms_vcs_branch_json(const oms_dbres *r, size_t i)
{
    char created[40], updated[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_dbres_int(r, i, OMS_BR_CREATED_AT));
    oms_time_rfc3339_ms(updated, sizeof updated, oms_dbres_int(r, i, OMS_BR_UPDATED_AT));
    const char *ir = oms_dbres_get(r, i, OMS_BR_ISSUE_REQUIRED);
    const char *compat = oms_dbres_get(r, i, OMS_BR_COMPATIBILITY);
    return json_pack("{s:s,s:s,s:b,s:I,s:I,s:o,s:s,s:s,s:s,s:s,s:b}", "name", oms_dbres_get(r, i, OMS_BR_NAME), "head",
                     oms_dbres_get(r, i, OMS_BR_HEAD), "protected", oms_dbres_int(r, i, OMS_BR_PROTECTED) != 0,
                     "required_approvals", (json_int_t)oms_dbres_int(r, i, OMS_BR_REQUIRED),
                     "breaking_change_approvals", (json_int_t)oms_dbres_int(r, i, OMS_BR_BREAKING_REQUIRED),
                     "issue_required", ir ? json_boolean(strcmp(ir, "0") != 0) : json_null(), "created_at", created,
                     "created_by", oms_dbres_get(r, i, OMS_BR_CREATED_BY), "updated_at", updated, "compatibility",
                     compat ? compat : "warn", "transitive", oms_dbres_int(r, i, OMS_BR_TRANSITIVE) != 0);
}

int oms_vcs_branch_get(oms_ctx *ctx, const char *name, json_t **out, char head[65], oms_error *err)
{
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_branch_load(c, name, false, &r, err);
    if (rc)
        return rc;
    snprintf(head, 65, "%s", oms_dbres_get(r, 0, OMS_BR_HEAD));
    *out = oms_vcs_branch_json(r, 0);
    oms_dbres_free(r);
    return *out ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

int oms_vcs_branch_page(oms_ctx *ctx, const char *after, size_t limit, oms_dbres **out, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : oms_store_branch_page(c, after, (int64_t)limit + 1, out, err);
}

int oms_resolve_ref(oms_dbconn *c, const char *ref, char out[65], oms_error *err)
{
    bool found = false;
    int rc;
    if (oms_is_commit_id(ref)) {
        if ((rc = oms_store_commit_exists(c, ref, &found, err)) == OMS_OK && found)
            snprintf(out, 65, "%s", ref);
    } else {
        if (!oms_valid_branch_name(ref))
            return oms_err_set(err, OMS_EINVAL, "not a branch name or commit id");
        rc = oms_store_branch_head_of(c, ref, out, &found, err);
    }
    if (rc == OMS_OK && !found)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch or commit %.100s", ref);
    return rc;
}

/* [resource, hash, commit, author, time_ms] of every entry. */
static void materialize_entry(void *p, const oms_entry *e)
{
    json_t *rows = p;
    json_array_append_new(rows, json_pack("[s,s,s,s,I]", e->key, e->hash, e->commit, e->author ? e->author : "",
                                          (json_int_t)e->time_ms));
}

int oms_materialize_commit(oms_dbconn *c, const char *branch, const char *commit, oms_error *err)
{
    oms_snapshot *s = NULL;
    int rc = oms_snapshot_for_commit(c, commit, &s, err);
    if (rc)
        return rc;
    json_t *rows = json_array();
    if (rows)
        oms_snapshot_each(s, materialize_entry, rows);
    oms_snapshot_unref(s);
    /* one statement per thousand rows, not one per row */
    rc = rows ? oms_bulk_branch_upsert_rows(c, branch, rows, err) : oms_err_set(err, OMS_ENOMEM, "out of memory");
    json_decref(rows);
    return rc;
}

/* ---- create ---- */

typedef struct {
    const char *name, *from;
    char *head;
} create_run;

static int create_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    create_run *s = arg;
    bool from_branch = !oms_is_commit_id(s->from);
    int rc;
    /* Copy-on-write (docs/storage.md "Forks share their base's rows"): made
     * from a branch, the new branch is a fork of the source's base (the
     * source itself when it is a base), with a copy of the source's own
     * rows when the source is a fork. */
    char base[256] = "";
    bool fork = false;
    if (from_branch) {
        if (!oms_valid_branch_name(s->from))
            return oms_err_set(err, OMS_EINVAL, "not a branch name or commit id");
        /* Share-locked until this branch exists, waiting for a write or a
         * delete in flight and holding off the next ones: the source's row
         * (its head and the rows shared are one state) and, when it is a
         * fork, its base's first (a write of the base gives its old rows
         * only to the forks it sees), in the order a base's deletion locks
         * them. Read again under the locks: a fork becomes a base when its
         * base is deleted (then the lock taken is merely idle), and a
         * source deleted and made again as another base's fork in between
         * starts over. */
        char base_head[65], locked[256];
        rc = oms_store_branch_base_of(c, s->from, base, &fork, err);
        for (int attempt = 0; rc == OMS_OK; attempt++) {
            snprintf(locked, sizeof locked, "%s", fork ? base : "");
            if (fork && (rc = oms_store_branch_head_shared(c, base, base_head, err)) == OMS_ENOTFOUND)
                rc = OMS_OK; /* deleted meanwhile: the source is a base now */
            if (rc == OMS_OK)
                rc = oms_store_branch_head_shared(c, s->from, s->head, err);
            if (rc == OMS_OK)
                rc = oms_store_branch_base_of(c, s->from, base, &fork, err);
            if (rc || !fork || strcmp(base, locked) == 0)
                break;
            if (attempt == 2)
                rc = oms_err_set(err, OMS_EUNAVAIL, "branch %s keeps changing; retry", s->from);
        }
    } else {
        rc = oms_resolve_ref(c, s->from, s->head, err);
    }
    if (rc)
        return rc;
    rc = oms_store_branch_insert(c, s->name, s->head, oms_now_ms(), ctx->sub, err);
    if (rc == OMS_ECONFLICT)
        return oms_err_set(err, OMS_ECONFLICT, "a branch named %s already exists", s->name);
    if (rc)
        return rc;
    if (from_branch)
        rc = oms_store_branch_fork(c, s->name, fork ? base : s->from, fork ? s->from : NULL, err);
    else
        rc = oms_materialize_commit(c, s->name, s->head, err);
    if (rc == OMS_OK) /* its search index: the source's, or the commit's */
        rc = oms_vcs_run_branch_create_hook(c, s->name, from_branch ? s->from : NULL, s->head, err);
    if (rc)
        return rc;
    out->resource_kind = "branches";
    out->resource_id = s->name;
    out->branch = s->name;
    out->commit_id = s->head;
    out->status = 201;
    return OMS_OK;
}

int oms_vcs_branch_create(oms_ctx *ctx, const char *name, const char *from, char head[65], oms_error *err)
{
    create_run s = {.name = name, .from = from, .head = head};
    oms_change_spec spec = {.action = "branch.create", .branch = name, .step = create_step, .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}

/* ---- delete ---- */

typedef struct {
    const char *name, *if_match;
    char head[65];
} delete_run;

static int delete_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    delete_run *s = arg;
    oms_dbres *r = NULL;
    /* The row first, locked: a write in flight commits before this reads
     * the head (If-Match is judged on the head the delete removes) and its
     * rows are then seen by the DELETE below; a write that comes later
     * waits and finds no branch (404). SPEC §4, docs/storage.md. */
    int rc = oms_store_branch_load(c, s->name, true, &r, err);
    if (rc)
        return rc;
    bool protect = oms_dbres_int(r, 0, OMS_BR_PROTECTED) != 0;
    snprintf(s->head, sizeof s->head, "%s", oms_dbres_get(r, 0, OMS_BR_HEAD));
    oms_dbres_free(r);
    if (protect)
        return oms_err_set_as(err, OMS_EFORBIDDEN, "protected_branch", "protected branches cannot be deleted");
    if (s->if_match && strcmp(s->if_match, s->head) != 0 && strcmp(s->if_match, "*") != 0) {
        oms_ctx_problem_extra(ctx, json_pack("{s:s}", "current_etag", s->head));
        return oms_err_set(err, OMS_EPRECOND, "the branch head has moved");
    }
    /* Deleting a branch touches everything on it: any live lock blocks
     * (checked before anything is deleted). */
    static const char *const whole[] = {OMS_LOCK_WHOLE_BRANCH};
    if ((rc = oms_lock_check_write(c, ctx, s->name, whole, 1, err)))
        return rc;
    out->locks_checked = true;
    int64_t deleted = 0;
    if ((rc = oms_store_branch_delete_rows(c, s->name, err)) ||
        (rc = oms_store_branch_delete(c, s->name, &deleted, err)))
        return rc;
    if (deleted != 1)
        return oms_err_set(err, OMS_EINTERNAL, "branch %s vanished under its row lock", s->name);
    if ((rc = oms_vcs_run_branch_delete_hook(c, s->name, err)))
        return rc;
    out->resource_kind = "branches";
    out->resource_id = s->name;
    out->branch = s->name;
    out->commit_id = s->head;
    out->status = 204;
    out->whole_branch = true;
    return OMS_OK;
}

int oms_vcs_branch_delete(oms_ctx *ctx, const char *name, const char *if_match, oms_error *err)
{
    delete_run s = {.name = name, .if_match = if_match};
    oms_change_spec spec = {.action = "branch.delete", .branch = name, .check_locks = true, .step = delete_step,
                            .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}

/* ---- settings ---- */

typedef struct {
    const char *name;
    const oms_branch_settings *set;
} settings_run;

static int settings_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    settings_run *s = arg;
    const oms_branch_settings *set = s->set;
    oms_dbres *r = NULL;
    /* Read-modify-write of the row, locked: a concurrent change of the
     * settings or deletion of the branch is seen, never overwritten. */
    int rc = oms_store_branch_settings_for_update(c, s->name, &r, err);
    if (rc)
        return rc;
    int64_t op = oms_dbres_int(r, 0, 0), ora = oms_dbres_int(r, 0, 1), obra = oms_dbres_int(r, 0, 2);
    int64_t np = set->protect ? json_is_true(set->protect) : op;
    int64_t nra = set->required_approvals ? json_integer_value(set->required_approvals) : ora;
    int64_t nbra = set->breaking_change_approvals ? json_integer_value(set->breaking_change_approvals) : obra;
    const char *cur_ir = oms_dbres_get(r, 0, 3);
    const json_t *ir = set->issue_required;
    int64_t irv = ir ? json_is_true(ir) : cur_ir ? atoi(cur_ir) : 0;
    bool ir_null = ir ? json_is_null(ir) : cur_ir == NULL;
    oms_dbres_free(r);
    if ((rc = oms_store_branch_settings_update(c, s->name, np, nra, nbra, ir_null ? NULL : &irv, oms_now_ms(), err)))
        return rc;
    char oldpol[16];
    bool oldtr = false, found = false;
    if ((rc = oms_store_branch_compat(c, s->name, oldpol, &oldtr, &found, err)))
        return rc;
    const char *newpol = set->compatibility ? json_string_value(set->compatibility) : oldpol;
    bool newtr = set->transitive ? json_is_true(set->transitive) : oldtr;
    if ((set->compatibility || set->transitive) &&
        (rc = oms_store_branch_compat_update(c, s->name, newpol, newtr, err)))
        return rc;
    out->resource_kind = "branches";
    out->resource_id = s->name;
    out->branch = s->name;
    out->status = 200;
    out->detail = json_pack("{s:{s:b,s:I,s:I},s:{s:b,s:I,s:I}}", "before", "protected", op != 0, "required_approvals",
                            (json_int_t)ora, "breaking_change_approvals", (json_int_t)obra, "after", "protected",
                            np != 0, "required_approvals", (json_int_t)nra, "breaking_change_approvals",
                            (json_int_t)nbra);
    if (out->detail) {
        json_object_set_new(json_object_get(out->detail, "before"), "compatibility", json_string(oldpol));
        json_object_set_new(json_object_get(out->detail, "before"), "transitive", json_boolean(oldtr));
        json_object_set_new(json_object_get(out->detail, "after"), "compatibility", json_string(newpol));
        json_object_set_new(json_object_get(out->detail, "after"), "transitive", json_boolean(newtr));
    }
    return out->detail ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

int oms_vcs_branch_settings(oms_ctx *ctx, const char *name, const oms_branch_settings *set, oms_error *err)
{
    settings_run s = {.name = name, .set = set};
    oms_change_spec spec = {.action = "branch.settings", .branch = name, .step = settings_step, .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}
