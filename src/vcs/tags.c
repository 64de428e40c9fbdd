#include "vcs/tags.h"

#include <stdio.h>
#include <string.h>

#include "ontology/names.h"
#include "store/store.h"
#include "store/tags_sql.h"
#include "store/vcs_sql.h"
#include "txn/change.h"
#include "util/time.h"
#include "vcs/commit.h"

bool oms_valid_tag_name(const char *s)
{
    return s && oms_valid_branch_name(s) && !oms_is_commit_id(s);
}

json_t *oms_vcs_tag_json(const oms_dbres *r, size_t i)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_dbres_int(r, i, OMS_TAG_CREATED_AT));
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", oms_dbres_get(r, i, OMS_TAG_NAME), "commit",
                     oms_dbres_get(r, i, OMS_TAG_COMMIT), "message", oms_dbres_get(r, i, OMS_TAG_MESSAGE) ?: "",
                     "created_at", t, "created_by", oms_dbres_get(r, i, OMS_TAG_CREATED_BY) ?: "");
}

/* ---- create ---- */

typedef struct {
    const char *name, *commit, *message;
} create_run;

static int create_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    create_run *s = arg;
    bool found = false;
    int rc = oms_store_commit_exists(c, s->commit, &found, err);
    if (rc == OMS_OK && !found)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no commit %s", s->commit);
    if (rc == OMS_OK)
        rc = oms_store_tag_insert(c, s->name, s->commit, s->message, oms_now_ms(), ctx->sub, err);
    if (rc == OMS_ECONFLICT)
        return oms_err_set_as(err, OMS_ECONFLICT, "tag_exists", "a tag named %s already exists; a tag never moves",
                              s->name);
    if (rc)
        return rc;
    out->resource_kind = "tags";
    out->resource_id = s->name;
    out->commit_id = s->commit;
    out->detail = json_pack("{s:s,s:s}", "tag", s->name, "commit", s->commit);
    out->status = 201;
    return OMS_OK;
}

int oms_vcs_tag_create(oms_ctx *ctx, const char *name, const char *commit, const char *message, oms_error *err)
{
    create_run s = {.name = name, .commit = commit, .message = message};
    oms_change_spec spec = {.action = "tag.create", .step = create_step, .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}

/* ---- reads ---- */

int oms_vcs_tag_get(oms_ctx *ctx, const char *name, json_t **out, char commit[65], oms_error *err)
{
    *out = NULL;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_tag_get(c, name, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no tag named %s", name);
    if (rc == OMS_OK) {
        snprintf(commit, 65, "%s", oms_dbres_get(r, 0, OMS_TAG_COMMIT));
        if (!(*out = oms_vcs_tag_json(r, 0)))
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    oms_dbres_free(r);
    return rc;
}

int oms_vcs_tag_page(oms_ctx *ctx, const char *after, size_t limit, oms_dbres **out, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    return rc ? rc : oms_store_tag_page(c, after, (int64_t)limit + 1, out, err);
}

int oms_vcs_resolve_at(oms_dbconn *c, const char *at, char out[65], oms_error *err)
{
    bool found = false;
    int rc;
    if (oms_is_commit_id(at)) {
        if ((rc = oms_store_commit_exists(c, at, &found, err)) == OMS_OK && found)
            snprintf(out, 65, "%s", at);
    } else {
        if (!oms_valid_tag_name(at))
            return oms_err_set(err, OMS_EINVAL, "at= must be a commit id (64 hex digits) or a tag name");
        oms_dbres *r = NULL;
        if ((rc = oms_store_tag_get(c, at, &r, err)) == OMS_OK && r->nrows > 0) {
            found = true;
            snprintf(out, 65, "%s", oms_dbres_get(r, 0, OMS_TAG_COMMIT));
        }
        oms_dbres_free(r);
    }
    if (rc == OMS_OK && !found)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no commit or tag %.100s", at);
    return rc;
}

/* ---- delete ---- */

typedef struct {
    const char *name;
    char commit[65];
} delete_run;

static int delete_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    delete_run *s = arg;
    oms_dbres *r = NULL;
    int64_t deleted = 0;
    int rc = oms_store_tag_get(c, s->name, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no tag named %s", s->name);
    if (rc == OMS_OK)
        snprintf(s->commit, sizeof s->commit, "%s", oms_dbres_get(r, 0, OMS_TAG_COMMIT));
    oms_dbres_free(r);
    if (rc == OMS_OK)
        rc = oms_store_tag_delete(c, s->name, &deleted, err);
    if (rc == OMS_OK && deleted != 1)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no tag named %s", s->name);
    if (rc)
        return rc;
    out->resource_kind = "tags";
    out->resource_id = s->name;
    out->commit_id = s->commit;
    out->detail = json_pack("{s:s,s:s}", "tag", s->name, "commit", s->commit);
    out->status = 204;
    return OMS_OK;
}

int oms_vcs_tag_delete(oms_ctx *ctx, const char *name, oms_error *err)
{
    delete_run s = {.name = name};
    oms_change_spec spec = {.action = "tag.delete", .step = delete_step, .arg = &s};
    oms_change_out out;
    return oms_change_run(ctx, &spec, &out, err);
}
