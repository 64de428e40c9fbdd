#include "store/overrides_sql.h"

#include "store/dialect.h"

#define OVR_COLS                                                                                                    \
    "id, kind, branch, resource, justification, incident, requester, state, ttl_seconds, approvals_required,"       \
    " created_at, expires_at, decided_at, decided_by, used_at, used_request_id"

int oms_store_override_load(oms_dbconn *c, const char *id, bool for_update, oms_dbres **out, oms_error *err)
{
    static const oms_sql plain = OMS_SQL_BOTH("SELECT " OVR_COLS " FROM overrides WHERE id = $1");
    static const oms_sql locking = {"SELECT " OVR_COLS " FROM overrides WHERE id = $1",
                                    "SELECT " OVR_COLS " FROM overrides WHERE id = $1 FOR UPDATE"};
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_run(c, for_update ? &locking : &plain, p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no such override");
    }
    return rc;
}

int oms_store_overrides_list(oms_dbconn *c, const char *after, const char *state, int64_t limit, oms_dbres **out,
                             oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT " OVR_COLS " FROM overrides WHERE id > $1"
                                          " AND (CAST($2 AS TEXT) IS NULL OR state = $2) ORDER BY id LIMIT $3");
    oms_dbparam p[] = {DBP_TEXT(after ? after : ""), DBP_TEXT(state), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 3, out, err);
}

int oms_store_override_approvals(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT approver, created_at FROM override_approvals WHERE override_id = $1 ORDER BY created_at");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_override_insert(oms_dbconn *c, const oms_override_new *o, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO overrides (id, kind, branch, resource, justification, incident, requester, state,"
        " ttl_seconds, approvals_required, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11)");
    oms_dbparam p[] = {DBP_TEXT(o->id),         DBP_TEXT(o->kind),          DBP_TEXT(o->branch),
                       DBP_TEXT(o->resource),   DBP_TEXT(o->justification), DBP_TEXT(o->incident),
                       DBP_TEXT(o->requester),  DBP_INT(o->ttl_seconds),    DBP_INT(o->approvals_required),
                       DBP_INT(o->created_at),  DBP_INT(o->expires_at)};
    return oms_db_run(c, &q, p, 11, NULL, err);
}

int oms_store_override_approve(oms_dbconn *c, const char *id, const char *approver, int64_t now, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO override_approvals (override_id, approver, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(approver), DBP_INT(now)};
    return oms_db_run(c, &q, p, 3, NULL, err);
}

int oms_store_override_set_state(oms_dbconn *c, const char *id, const char *state, int64_t now, const char *by,
                                 oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("UPDATE overrides SET state = $1, decided_at = $2, decided_by = $3 WHERE id = $4");
    oms_dbparam p[] = {DBP_TEXT(state), DBP_INT(now), DBP_TEXT(by), DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 4, NULL, err);
}

#define USE(NOW)                                                                                                    \
    "UPDATE overrides SET state = 'used', used_at = $1, used_request_id = $2"                                      \
    " WHERE id = $3 AND requester = $4 AND state = 'approved' AND expires_at > " NOW

int oms_store_override_use(oms_dbconn *c, const char *id, const char *requester, int64_t now, const char *request_id,
                           bool *used, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(USE);
    oms_dbparam p[] = {DBP_INT(now), DBP_TEXT(request_id), DBP_TEXT(id), DBP_TEXT(requester)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 4, &r, err);
    *used = rc == OMS_OK && r->changes == 1;
    oms_dbres_free(r);
    return rc;
}

#define EXPIRE(NOW)                                                                                                 \
    "UPDATE overrides SET state = 'expired' WHERE state IN ('pending', 'approved') AND expires_at <= " NOW         \
    " RETURNING id, branch"

int oms_store_overrides_expire(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(EXPIRE);
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_branch_issue_setting(oms_dbconn *c, const char *branch, int *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT issue_required FROM branches WHERE name = $1");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    oms_dbres *r = NULL;
    *out = -1;
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK && r->nrows && oms_dbres_get(r, 0, 0))
        *out = (int)oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}
