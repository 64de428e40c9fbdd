/* A lock change in one statement (PostgreSQL): the lock row, its audit
 * event with the chainer's queue row, and its outbox row, written together
 * only when every condition of the change holds (docs/locks.md "One round
 * trip"). The event's and the outbox row's values come from the audit and
 * events modules as parameters; the statement adds only what the database
 * decides (the fencing token, the clock). */
#include "store/locks_sql.h"

#include "store/audit_sql.h"
#include "store/dialect.h"
#include "store/events_sql.h"

/* The audit event and the outbox row of the change, from the CTE `SRC`
 * (one row when the change was made, none otherwise). Parameters: the
 * event's OMS_AUDIT_EVENT_NPARAMS columns from A1, then the outbox row's
 * id, type, branch, time_ms and body (its id NULL: the change has none). */
#define AUDIT_COLS                                                                                         \
    "event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent, action, outcome, http_status,"    \
    " request_id, method, route, resource_kind, resource_branch, resource_id, issue_keys, override_id,"    \
    " commit_id, before_hash, after_hash, changed_paths, detail"

#define ACQUIRE_ONE_SHOT                                                                                      \
    OMS_LOCK_WITH_NOW(OMS_LOCK_NOW_PG)                                                                        \
    ", ins AS (INSERT INTO locks (id, branch, scope, resource_type, resource_id, kind, holder, reason,"        \
    " acquired_at, expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, fencing_token, state)"      \
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, n.t, n.t + $9, $10, n.t, n.t + $11,"                             \
    " nextval('lock_fencing_seq'), 'active' FROM n"                                                           \
    " WHERE EXISTS (SELECT 1 FROM branches WHERE name = $2 AND (protected = 0 OR $3 = 'resource'))"           \
    " AND ($12::bigint < 0 OR (SELECT version FROM acl_version WHERE id = 1) = $12::bigint)"                  \
    " AND NOT EXISTS (SELECT 1 FROM locks o WHERE o.branch = $2 AND o.state = 'active' AND o.deadline_at > n.t" \
    " AND (o.scope = 'branch' OR $3 = 'branch' OR (o.resource_type = $4 AND (o.scope = 'resource_type'"       \
    " OR $3 = 'resource_type' OR o.resource_id = $5))))"                                                      \
    " RETURNING acquired_at, fencing_token),"                                                                 \
    " ev AS (INSERT INTO audit_events (" AUDIT_COLS ") SELECT $14::text, COALESCE($15::bigint, n.t),"         \
    " $16::text, $17::text, $18::text, $19::text, $20::text, $21::text, $22::integer, $23::text, $24::text,"  \
    " $25::text, $26::text, $27::text, $28::text, $29::text, $30::text, $31::text, $32::text, $33::text,"     \
    " $34::text, replace($35::text, $13::text, '\"fencing_token\":' || ins.fencing_token)"                    \
    " FROM ins, n RETURNING seq),"                                                                            \
    " q AS (INSERT INTO audit_unchained (seq) SELECT seq FROM ev),"                                           \
    " ob AS (INSERT INTO events_pending (id, type, branch, time_ms, body) SELECT $36::text, $37::text,"        \
    " $38::text, $39::bigint, replace($40::text, $13::text, '\"fencing_token\":' || ins.fencing_token)"       \
    " FROM ins WHERE $36::text IS NOT NULL)"                                                                  \
    " SELECT acquired_at, fencing_token FROM ins"

int oms_store_lock_acquire_one_shot(oms_dbconn *c, const oms_lock_row_new *l, int64_t acl_version,
                                    const char *token_text, const oms_dbparam *audit, const oms_dbparam *event,
                                    oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {NULL, ACQUIRE_ONE_SHOT};
    if (oms_db_backend_of_conn(c) != OMS_DB_PG)
        return oms_err_set(err, OMS_EINTERNAL, "one-statement lock changes are PostgreSQL's");
    oms_dbparam p[13 + OMS_AUDIT_EVENT_NPARAMS + OMS_STORE_EVENT_NPARAMS] = {
        DBP_TEXT(l->id),       DBP_TEXT(l->branch),        DBP_TEXT(l->scope), DBP_TEXT(l->resource_type),
        DBP_TEXT(l->resource_id), DBP_TEXT(l->kind),       DBP_TEXT(l->holder), DBP_TEXT(l->reason),
        DBP_INT(l->ttl_ms),    DBP_INT(l->heartbeat_seconds), DBP_INT(l->deadline_ms), DBP_INT(acl_version),
        DBP_TEXT(token_text)};
    for (int i = 0; i < OMS_AUDIT_EVENT_NPARAMS; i++)
        p[13 + i] = audit[i];
    for (int i = 0; i < OMS_STORE_EVENT_NPARAMS; i++)
        p[13 + OMS_AUDIT_EVENT_NPARAMS + i] = event ? event[i] : DBP_NULL;
    return oms_db_run_read_later(c, &q, p, (int)(sizeof p / sizeof p[0]), out, err);
}

#define RELEASE_ONE_SHOT                                                                                      \
    OMS_LOCK_WITH_NOW(OMS_LOCK_NOW_PG)                                                                        \
    ", up AS (UPDATE locks SET state = 'released', ended_at = n.t, ended_by = $2 FROM n WHERE id = $1"        \
    " AND holder = $2 AND branch = $3 AND fencing_token = $4::bigint AND state = 'active'"                    \
    " AND deadline_at > n.t"                                                                                  \
    " AND ($5::bigint < 0 OR (SELECT version FROM acl_version WHERE id = 1) = $5::bigint)"                    \
    " RETURNING ended_at, " OMS_LOCK_COLS_BARE "),"                                                           \
    " ev AS (INSERT INTO audit_events (" AUDIT_COLS ") SELECT $6::text, COALESCE($7::bigint, n.t), $8::text,"  \
    " $9::text, $10::text, $11::text, $12::text, $13::text, $14::integer, $15::text, $16::text, $17::text,"   \
    " $18::text, $19::text, $20::text, $21::text, $22::text, $23::text, $24::text, $25::text, $26::text,"     \
    " $27::text FROM up, n RETURNING seq),"                                                                   \
    " q AS (INSERT INTO audit_unchained (seq) SELECT seq FROM ev),"                                           \
    " ob AS (INSERT INTO events_pending (id, type, branch, time_ms, body) SELECT $28::text, $29::text,"        \
    " $30::text, $31::bigint, $32::text FROM up WHERE $28::text IS NOT NULL)"                                 \
    " SELECT * FROM up"

int oms_store_lock_release_one_shot(oms_dbconn *c, const char *id, const char *holder, const char *branch,
                                    int64_t token, int64_t acl_version, const oms_dbparam *audit,
                                    const oms_dbparam *event, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {NULL, RELEASE_ONE_SHOT};
    if (oms_db_backend_of_conn(c) != OMS_DB_PG)
        return oms_err_set(err, OMS_EINTERNAL, "one-statement lock changes are PostgreSQL's");
    oms_dbparam p[5 + OMS_AUDIT_EVENT_NPARAMS + OMS_STORE_EVENT_NPARAMS] = {
        DBP_TEXT(id), DBP_TEXT(holder), DBP_TEXT(branch), DBP_INT(token), DBP_INT(acl_version)};
    for (int i = 0; i < OMS_AUDIT_EVENT_NPARAMS; i++)
        p[5 + i] = audit[i];
    for (int i = 0; i < OMS_STORE_EVENT_NPARAMS; i++)
        p[5 + OMS_AUDIT_EVENT_NPARAMS + i] = event ? event[i] : DBP_NULL;
    return oms_db_run_read_later(c, &q, p, (int)(sizeof p / sizeof p[0]), out, err);
}
