#include "store/audit_sql.h"

#include "store/dialect.h"

#define INSERT_EVENT(NOW)                                                                                     \
    "INSERT INTO audit_events (event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent, action,"  \
    " outcome, http_status, request_id, method, route, resource_kind, resource_branch, resource_id,"         \
    " issue_keys, override_id, commit_id, before_hash, after_hash, changed_paths, detail) VALUES ($1,"       \
    " COALESCE($2, " NOW "), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,"  \
    " $20, $21, $22)"

int oms_store_audit_event_insert(oms_dbconn *c, const oms_dbparam *p, oms_error *err)
{
    /* PostgreSQL: one round trip for the event and its queue row. SQLite
     * has no data-modifying WITH, and a second statement costs no round
     * trip there. */
    static const oms_sql q = {INSERT_EVENT(OMS_DB_NOW_SQLITE),
                              "WITH ev AS (" INSERT_EVENT(OMS_DB_NOW_PG) " RETURNING seq)"
                              " INSERT INTO audit_unchained (seq) SELECT seq FROM ev"};
    int rc = oms_db_run(c, &q, p, OMS_AUDIT_EVENT_NPARAMS, NULL, err);
    if (rc == OMS_OK && oms_db_backend_of_conn(c) != OMS_DB_PG)
        rc = oms_db_exec(c, "INSERT INTO audit_unchained (seq) VALUES (last_insert_rowid())", NULL, 0, NULL, err);
    return rc;
}

int oms_store_audit_chain_insert(oms_dbconn *c, const char *rows_json, oms_error *err)
{
    static const oms_sql q = {"INSERT INTO audit_chain (pos, event_seq, prev_hash, hash) SELECT"
                              " json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
                              " json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each($1)",
                              "INSERT INTO audit_chain (pos, event_seq, prev_hash, hash) SELECT (x->>0)::bigint,"
                              " (x->>1)::bigint, x->>2, x->>3 FROM json_array_elements($1::json) AS x"};
    oms_dbparam p[] = {DBP_TEXT(rows_json)};
    return oms_db_run(c, &q, p, 1, NULL, err);
}

int oms_store_audit_seal_lock(oms_dbconn *c, oms_error *err)
{
    return oms_db_xact_lock(c, OMS_AUDIT_SEAL_LOCK_KEY, false, err);
}

int oms_store_audit_seal_try_lock(oms_dbconn *c, bool *got, oms_error *err)
{
    *got = true;
    if (oms_db_backend_of_conn(c) != OMS_DB_PG)
        return OMS_OK;
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_INT(OMS_AUDIT_SEAL_LOCK_KEY)};
    int rc = oms_db_exec(c, "SELECT pg_try_advisory_xact_lock($1)", p, 1, &r, err);
    *got = rc == OMS_OK && oms_dbres_get(r, 0, 0) && oms_dbres_get(r, 0, 0)[0] == 't';
    oms_dbres_free(r);
    return rc;
}

bool oms_store_audit_shared(const oms_db *db) { return oms_db_backend_of(db) == OMS_DB_PG; }
