#include "store/acl_sql.h"

#include "store/dialect.h"

#define ACL_COLS                                                                                          \
    "id, subject, effect, permissions, branches, description, revision, etag, created_at, created_by,"   \
    " updated_at, updated_by"

static int changes_of(int rc, oms_dbres *r, int64_t *changed)
{
    if (changed)
        *changed = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_acl_version(oms_dbconn *c, int64_t *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT version FROM acl_version WHERE id = 1");
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    if (rc == OMS_OK && r->nrows != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the acl_version row is missing");
    if (rc == OMS_OK)
        *out = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_store_acl_version_later(oms_dbconn *c, oms_dbres **rows, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT version FROM acl_version WHERE id = 1");
    return oms_db_run_read_later(c, &q, NULL, 0, rows, err);
}

int oms_store_acl_bump(oms_dbconn *c, int64_t *changed, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE acl_version SET version = version + 1 WHERE id = 1");
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    return changes_of(rc, r, changed);
}

int oms_store_acl_load_all(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT v.version, p.id, p.subject, p.effect, p.permissions, p.branches"
                                          " FROM acl_version v LEFT JOIN acl_policies p ON 1 = 1"
                                          " WHERE v.id = 1 ORDER BY p.created_at, p.id");
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_acl_version_and_head(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT v.version, b.head, b.issue_required FROM acl_version v"
                                          " LEFT JOIN branches b ON b.name = $1 WHERE v.id = 1");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_acl_get(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " ACL_COLS " FROM acl_policies WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_acl_list(oms_dbconn *c, const char *subject, int64_t after_ms, const char *after_id, int64_t limit,
                       oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " ACL_COLS " FROM acl_policies WHERE ($1 = '' OR subject = $1)"
                                          " AND (created_at > $2 OR (created_at = $2 AND id > $3))"
                                          " ORDER BY created_at, id LIMIT $4");
    oms_dbparam p[] = {DBP_TEXT(subject ? subject : ""), DBP_INT(after_ms), DBP_TEXT(after_id), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 4, out, err);
}

int oms_store_acl_insert(oms_dbconn *c, const oms_store_acl_row *row, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("INSERT INTO acl_policies (id, subject, effect, permissions, branches, description, revision,"
                     " etag, created_at, created_by, updated_at, updated_by)"
                     " VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $8, $9)");
    oms_dbparam p[] = {DBP_TEXT(row->id),          DBP_TEXT(row->subject),     DBP_TEXT(row->effect),
                       DBP_TEXT(row->permissions), DBP_TEXT(row->branches),    DBP_TEXT(row->description),
                       DBP_TEXT(row->etag),        DBP_INT(row->at),           DBP_TEXT(row->by)};
    return oms_db_run(c, &q, p, 9, NULL, err);
}

int oms_store_acl_update(oms_dbconn *c, const oms_store_acl_row *row, const char *old_etag, int64_t *changed,
                         oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("UPDATE acl_policies SET subject = $2, effect = $3, permissions = $4, branches = $5,"
                     " description = $6, revision = $7, etag = $8, updated_at = $9, updated_by = $10"
                     " WHERE id = $1 AND etag = $11");
    oms_dbparam p[] = {DBP_TEXT(row->id),       DBP_TEXT(row->subject),  DBP_TEXT(row->effect),
                       DBP_TEXT(row->permissions), DBP_TEXT(row->branches), DBP_TEXT(row->description),
                       DBP_INT(row->revision), DBP_TEXT(row->etag),     DBP_INT(row->at),
                       DBP_TEXT(row->by),      DBP_TEXT(old_etag)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 11, &r, err);
    return changes_of(rc, r, changed);
}

int oms_store_acl_delete(oms_dbconn *c, const char *id, const char *old_etag, int64_t *changed, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("DELETE FROM acl_policies WHERE id = $1 AND etag = $2");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(old_etag)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 2, &r, err);
    return changes_of(rc, r, changed);
}
