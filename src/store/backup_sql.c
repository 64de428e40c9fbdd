/* Backup and restore SQL (docs/backup.md). Every table a backup holds is a
 * row of oms_backup_sections: its columns by name and its key. Plain
 * tables are read with one generated statement per page (keyset paging on
 * the key, the same on both backends); the few places where the dialects
 * differ (the snapshot, the lock fencing counter, sequences, dropping a
 * schema) sit side by side below. */
#include "store/backup_sql.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/audit_sql.h"
#include "store/events_sql.h"
#include "store/tree_convert.h"
#include "util/alloc.h"

#define COLS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* audit_events' columns: the 23 the chain hashes, in hashing order, then
 * the version 1-7 link the row itself may still carry. */
#define EVENT_COLS                                                                                           \
    "seq", "event_id", "time_ms", "actor_sub", "actor_roles", "client_addr", "user_agent", "action", "outcome", \
        "http_status", "request_id", "method", "route", "resource_kind", "resource_branch", "resource_id",      \
        "issue_keys", "override_id", "commit_id", "before_hash", "after_hash", "changed_paths", "detail",      \
        "prev_hash", "hash"
#define EVENT_NCOLS 25
#define EVENT_SELECT                                                                                           \
    "e.seq, e.event_id, e.time_ms, e.actor_sub, e.actor_roles, e.client_addr, e.user_agent, e.action,"        \
    " e.outcome, e.http_status, e.request_id, e.method, e.route, e.resource_kind, e.resource_branch,"         \
    " e.resource_id, e.issue_keys, e.override_id, e.commit_id, e.before_hash, e.after_hash, e.changed_paths," \
    " e.detail, e.prev_hash, e.hash"

const oms_backup_section oms_backup_sections[] = {
    {"objects", COLS("hash", "type", "content"), 1, 0, 0},
    /* The stored trees (docs/storage.md "Tree storage"): binary columns as
     * lower-case hex. */
    {"tree_nodes", COLS("hash", "body"), 1, 0, 14},
    {"trees", COLS("id", "root"), 1, 0, 14},
    {"commits",
     COLS("id", "tree", "first_parent", "parents", "author", "message", "time_ms", "issue_keys", "override_id",
          "generation"),
     1, 0, 0},
    {"commit_parents", COLS("commit_id", "idx", "parent_id"), 2, 2, 0},
    {"commit_changes", COLS("commit_id", "resource", "change", "old_hash", "new_hash"), 2, 0, 0},
    {"commit_issues", COLS("issue_key", "commit_id"), 2, 0, 0},
    {"branches",
     COLS("name", "head", "protected", "required_approvals", "breaking_change_approvals", "issue_required",
          "created_at", "created_by", "updated_at", "compatibility", "transitive"),
     1, 0, 0},
    {"branch_resources", COLS("branch", "resource", "hash", "commit_id", "author", "time_ms"), 2, 0, 0},
    /* copy-on-write branches (docs/storage.md "Forks share their base's
     * rows"); a file of an earlier version has none: each branch its rows */
    {"branch_forks", COLS("branch", "base"), 1, 0, 19},
    {"tags", COLS("name", "commit_id", "message", "created_at", "created_by"), 1, 0, 0},
    {"proposals",
     COLS("id", "source", "target", "title", "description", "state", "author", "issue_keys", "created_at",
          "updated_at", "merged_commit", "closed_reason"),
     1, 0, 0},
    {"proposal_reviews", COLS("proposal_id", "reviewer", "source_head", "verdict", "created_at", "comment"), 3, 0, 0},
    {"proposal_comments",
     COLS("proposal_id", "seq", "id", "author", "body", "resource", "pointer", "verdict", "source_head", "created_at"),
     2, 2, 0},
    {"proposal_reviewers", COLS("proposal_id", "reviewer", "requested_by", "created_at"), 2, 0, 0},
    {"overrides",
     COLS("id", "kind", "branch", "resource", "justification", "incident", "requester", "state", "ttl_seconds",
          "approvals_required", "created_at", "expires_at", "decided_at", "decided_by", "used_at", "used_request_id"),
     1, 0, 0},
    {"override_approvals", COLS("override_id", "approver", "created_at"), 2, 0, 0},
    {"acl_policies",
     COLS("id", "subject", "effect", "permissions", "branches", "description", "revision", "etag", "created_at",
          "created_by", "updated_at", "updated_by"),
     1, 0, 0},
    {"acl_version", COLS("id", "version"), 1, 1, 0},
    {"alerts", COLS("id", "time_ms", "rule", "severity", "subject", "client_addr", "request_id", "detail", "delivered"),
     1, 0, 0},
    /* Events (the outbox), webhook subscriptions with their secrets (the
     * sender signs with them) and deliveries (SPEC §10, §13); a sender's
     * lease is not state worth keeping. */
    {"events", COLS("seq", "pos", "id", "type", "branch", "time_ms", "body"), 1, 1, 0},
    {"webhooks",
     COLS("id", "url", "secret", "types", "branches", "description", "enabled", "builtin", "cursor_pos", "created_at",
          "created_by", "updated_at"),
     1, 0, 0},
    {"webhook_deliveries",
     COLS("id", "webhook_id", "event_id", "event_pos", "status", "attempts", "next_at", "last_status", "last_error",
          "created_at", "updated_at"),
     1, 0, 0},
    /* Live locks are not backed up (SPEC §10); ended ones are history. */
    {"locks",
     COLS("id", "branch", "scope", "resource_type", "resource_id", "kind", "holder", "reason", "acquired_at",
          "expires_at", "heartbeat_seconds", "last_heartbeat_at", "deadline_at", "progress_percent",
          "progress_phase", "progress_message", "progress_updated_at", "fencing_token", "state", "ended_at",
          "ended_by"),
     1, 0, 0},
    {"counters", COLS("name", "value"), 1, 0, 0},
    {"audit_chain_head", COLS("id", "seq", "hash", "legacy_upto"), 1, 1, 0},
    {"audit_checkpoints",
     COLS("id", "kind", "from_seq", "upto_seq", "chain_hash", "event_count", "time_ms", "sealed_by", "detail",
          "prev_hmac", "hmac"),
     1, 1, 0},
    /* The chain in position order, each position with its event: the
     * legacy prefix (positions up to legacy_upto are event seqs, no link),
     * then audit_chain joined with audit_events. */
    {"audit_log", COLS("pos", "event_seq", "link_prev_hash", "link_hash", EVENT_COLS), 1, 1, 0},
    /* Events the chain does not hold yet (queued for the chainer). */
    {"audit_events_other", COLS(EVENT_COLS), 1, 1, 0},
    {"audit_unchained", COLS("seq"), 1, 1, 0},
    {NULL, NULL, 0, 0, 0},
};

const oms_backup_section *oms_backup_section_find(const char *name)
{
    for (const oms_backup_section *s = oms_backup_sections; s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

size_t oms_backup_section_ncols(const oms_backup_section *s)
{
    size_t n = 0;
    while (s->columns[n])
        n++;
    return n;
}

static bool is_pg(oms_dbconn *c) { return oms_db_backend_of_conn(c) == OMS_DB_PG; }
static bool is(const oms_backup_section *s, const char *name) { return strcmp(s->name, name) == 0; }

/* ---- reading ---- */

int oms_backup_sql_begin_snapshot(oms_dbconn *c, oms_error *err)
{
    oms_db_deadline(c, 0);
    int rc = oms_db_begin(c, false, err);
    if (rc)
        return rc;
    if (is_pg(c))
        rc = oms_db_exec(c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, 0, NULL, err);
    if (rc == OMS_OK && is_pg(c))
        rc = oms_db_exec(c,
                         "SELECT set_config('statement_timeout', '0', true),"
                         " set_config('idle_in_transaction_session_timeout', '0', true)",
                         NULL, 0, NULL, err);
    /* SQLite: the snapshot is taken by the first read and kept to the end
     * of the transaction (WAL mode); read something now. */
    if (rc == OMS_OK && !is_pg(c))
        rc = oms_db_exec(c, "SELECT count(*) FROM sqlite_master", NULL, 0, NULL, err);
    if (rc)
        oms_db_rollback(c);
    return rc;
}

static int legacy_upto(oms_dbconn *c, int64_t *out, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT legacy_upto FROM audit_chain_head WHERE id = 1", NULL, 0, &r, err);
    if (rc == OMS_OK)
        *out = r->nrows ? oms_dbres_int(r, 0, 0) : 0;
    oms_dbres_free(r);
    return rc;
}

static const char k_fencing_pg[] = "SELECT 'lock_fencing', CASE WHEN is_called THEN last_value ELSE 0 END"
                                   " FROM lock_fencing_seq";
static const char k_fencing_sqlite[] = "SELECT 'lock_fencing', value FROM lock_fencing WHERE id = 1";
static const char k_events_other[] = "SELECT " EVENT_SELECT " FROM audit_events e WHERE e.seq > $1 AND e.seq > $2"
                                     " AND NOT EXISTS (SELECT 1 FROM audit_chain x WHERE x.event_seq = e.seq)"
                                     " ORDER BY e.seq LIMIT $3";
static const char k_log_legacy[] = "SELECT e.seq, e.seq, NULL, NULL, " EVENT_SELECT " FROM audit_events e"
                                   " WHERE e.seq > $1 AND e.seq <= $2 ORDER BY e.seq LIMIT $3";
static const char k_log_chain[] = "SELECT c.pos, c.event_seq, c.prev_hash, c.hash, " EVENT_SELECT
                                  " FROM audit_chain c LEFT JOIN audit_events e ON e.seq = c.event_seq"
                                  " WHERE c.pos > $1 ORDER BY c.pos LIMIT $2";

/* Binary columns travel as lower-case hex text. Hex order is byte order,
 * so keyset paging on a binary key works on its hex. */
static bool is_binary(const char *table, const char *col)
{
    return (strcmp(table, "tree_nodes") == 0 && (strcmp(col, "hash") == 0 || strcmp(col, "body") == 0)) ||
           (strcmp(table, "trees") == 0 && strcmp(col, "root") == 0);
}

/* PostgreSQL's events waiting for their position are in a queue of their
 * own (migration 0018): the section holds them too, without a position,
 * and a restore's sequencer gives them one. */
static const char k_events_pg[] = "(SELECT seq, pos, id, type, branch, time_ms, body FROM events UNION ALL"
                                  " SELECT seq, NULL, id, type, branch, time_ms, body FROM events_pending) events";

/* Where a section's rows are read from on PostgreSQL. */
static const char *pg_source(const oms_backup_section *s) { return is(s, "events") ? k_events_pg : s->name; }

/* SELECT cols FROM table [WHERE filter AND (keys) > ($1..)] ORDER BY keys LIMIT $n */
static int plain_sql(char *sql, size_t cap, const oms_backup_section *s, bool after, bool pg)
{
    size_t len = 0;
    int n = snprintf(sql, cap, "SELECT ");
    len = (size_t)n;
    for (size_t i = 0; s->columns[i]; i++) {
        const char *col = s->columns[i];
        if (is_binary(s->name, col))
            len += (size_t)snprintf(sql + len, cap - len, pg ? "%sencode(%s, 'hex')" : "%slower(hex(%s))",
                                    i ? ", " : "", col);
        else
            len += (size_t)snprintf(sql + len, cap - len, "%s%s", i ? ", " : "", col);
    }
    len += (size_t)snprintf(sql + len, cap - len, " FROM %s WHERE %s", pg ? pg_source(s) : s->name,
                            is(s, "locks") ? "state <> 'active'" : "1 = 1");
    if (after) {
        len += (size_t)snprintf(sql + len, cap - len, " AND (");
        for (int k = 0; k < s->nkeys; k++)
            len += (size_t)snprintf(sql + len, cap - len, "%s%s", k ? ", " : "", s->columns[k]);
        len += (size_t)snprintf(sql + len, cap - len, ") > (");
        for (int k = 0; k < s->nkeys; k++)
            len += (size_t)snprintf(sql + len, cap - len,
                                    !is_binary(s->name, s->columns[k]) ? "%s$%d"
                                    : pg                               ? "%sdecode($%d, 'hex')"
                                                                       : "%soms_unhex($%d)",
                                    k ? ", " : "", k + 1);
        len += (size_t)snprintf(sql + len, cap - len, ")");
    }
    len += (size_t)snprintf(sql + len, cap - len, " ORDER BY ");
    for (int k = 0; k < s->nkeys; k++)
        len += (size_t)snprintf(sql + len, cap - len, "%s%s", k ? ", " : "", s->columns[k]);
    len += (size_t)snprintf(sql + len, cap - len, " LIMIT $%d", after ? s->nkeys + 1 : 1);
    return len < cap ? OMS_OK : OMS_EINTERNAL;
}

int oms_backup_sql_count(oms_dbconn *c, const oms_backup_section *s, int64_t *out, oms_error *err)
{
    char sql[512];
    if (is(s, "counters")) {
        *out = 1;
        return OMS_OK;
    }
    if (is(s, "audit_log"))
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM audit_chain) + (SELECT count(*) FROM audit_events"
                 " WHERE seq <= (SELECT legacy_upto FROM audit_chain_head WHERE id = 1))");
    else if (is(s, "audit_events_other"))
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_chain x"
                 " WHERE x.event_seq = e.seq)");
    else
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s", is_pg(c) ? pg_source(s) : s->name,
                 is(s, "locks") ? " WHERE state <> 'active'" : "");
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, sql, NULL, 0, &r, err);
    if (rc == OMS_OK)
        *out = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_backup_sql_page(oms_dbconn *c, const oms_backup_section *s, const char *const *after, int limit,
                        oms_dbres **out, oms_error *err)
{
    *out = NULL;
    if (is(s, "counters")) {
        if (after)
            return oms_db_exec(c, "SELECT 'x', 0 WHERE 1 = 0", NULL, 0, out, err);
        return oms_db_exec(c, is_pg(c) ? k_fencing_pg : k_fencing_sqlite, NULL, 0, out, err);
    }
    int64_t from = after ? strtoll(after[0], NULL, 10) : 0;
    if (is(s, "audit_log") || is(s, "audit_events_other")) {
        int64_t lu = 0;
        int rc = legacy_upto(c, &lu, err);
        if (rc)
            return rc;
        if (is(s, "audit_events_other")) {
            oms_dbparam p[] = {DBP_INT(from), DBP_INT(lu), DBP_INT(limit)};
            return oms_db_exec(c, k_events_other, p, 3, out, err);
        }
        if (from < lu) {
            oms_dbparam p[] = {DBP_INT(from), DBP_INT(lu), DBP_INT(limit)};
            if ((rc = oms_db_exec(c, k_log_legacy, p, 3, out, err)) || (*out)->nrows > 0)
                return rc;
            oms_dbres_free(*out);
            *out = NULL;
        }
        oms_dbparam p[] = {DBP_INT(from > lu ? from : lu), DBP_INT(limit)};
        return oms_db_exec(c, k_log_chain, p, 2, out, err);
    }
    char sql[1024];
    if (plain_sql(sql, sizeof sql, s, after != NULL, is_pg(c)))
        return oms_err_set(err, OMS_EINTERNAL, "backup: statement too long for %s", s->name);
    oms_dbparam p[8];
    int n = 0;
    if (after)
        for (int k = 0; k < s->nkeys; k++)
            p[n++] = (s->int_keys >> k) & 1 ? DBP_INT(strtoll(after[k], NULL, 10)) : DBP_TEXT(after[k]);
    p[n++] = DBP_INT(limit);
    return oms_db_exec(c, sql, p, n, out, err);
}

/* ---- restore ---- */

int oms_backup_sql_begin_restore(oms_dbconn *c, oms_error *err)
{
    oms_db_deadline(c, 0);
    int rc = oms_db_begin(c, true, err);
    if (rc == OMS_OK && is_pg(c))
        rc = oms_db_exec(c,
                         "SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true),"
                         " set_config('idle_in_transaction_session_timeout', '0', true)",
                         NULL, 0, NULL, err);
    if (rc && oms_db_in_tx(c))
        oms_db_rollback(c);
    return rc;
}

int oms_backup_sql_target_content(oms_dbconn *c, int version, int64_t *rows, char *what, size_t cap,
                                  oms_error *err)
{
    *rows = 0;
    what[0] = '\0';
    if (version == 0)
        return OMS_OK;
    if (version < 9) {
        *rows = 1;
        snprintf(what, cap, "a database at schema version %d", version);
        return OMS_OK;
    }
    /* A freshly migrated database holds the root commit, main and the
     * migrations' own audit events: that is empty. */
    static const char q[] =
        "SELECT (SELECT count(*) FROM commits) - 1, (SELECT count(*) FROM branches) - 1,"
        " (SELECT count(*) FROM proposals), (SELECT count(*) FROM acl_policies),"
        " (SELECT count(*) FROM overrides), (SELECT count(*) FROM locks),"
        " (SELECT count(*) FROM audit_events WHERE action <> 'schema.migrate')";
    static const char *const names[] = {"commits", "branches", "proposals", "ACL policies", "overrides", "locks",
                                        "audit events"};
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, q, NULL, 0, &r, err);
    if (rc)
        return rc;
    size_t len = 0;
    for (size_t i = 0; i < 7; i++) {
        int64_t v = oms_dbres_int(r, 0, i);
        if (v <= 0)
            continue;
        *rows += v;
        if (len < cap)
            len += (size_t)snprintf(what + len, cap - len, "%s%lld %s", len ? ", " : "", (long long)v, names[i]);
    }
    oms_dbres_free(r);
    return OMS_OK;
}

/* Everything of the schema goes: restore replaces a database whole. */
static int drop_all(oms_dbconn *c, oms_error *err)
{
    static const char k_tables_sqlite[] =
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT IN (SELECT name || '_data' FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%')"
        " AND name NOT IN (SELECT name || '_idx' FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%')"
        " AND name NOT IN (SELECT name || '_content' FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%')"
        " AND name NOT IN (SELECT name || '_docsize' FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%')"
        " AND name NOT IN (SELECT name || '_config' FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%')"
        " ORDER BY (sql LIKE 'CREATE VIRTUAL%') DESC, name";
    static const char k_tables_pg[] = "SELECT 'TABLE', tablename FROM pg_tables WHERE schemaname = current_schema()"
                                      " UNION ALL SELECT 'SEQUENCE', sequencename FROM pg_sequences"
                                      " WHERE schemaname = current_schema()"
                                      " UNION ALL SELECT 'FUNCTION', p.proname || '()' FROM pg_proc p"
                                      " JOIN pg_namespace n ON n.oid = p.pronamespace"
                                      " WHERE n.nspname = current_schema() AND p.proname LIKE 'oms\\_%'";
    oms_dbres *r = NULL;
    bool pg = is_pg(c);
    int rc = oms_db_exec(c, pg ? k_tables_pg : k_tables_sqlite, NULL, 0, &r, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->nrows && rc == OMS_OK; i++) {
        char sql[512];
        if (pg)
            snprintf(sql, sizeof sql, "DROP %s IF EXISTS \"%s\" CASCADE", oms_dbres_get(r, i, 0),
                     oms_dbres_get(r, i, 1));
        else
            snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", oms_dbres_get(r, i, 0));
        /* A function name is name(): quote only the name. */
        char *paren = pg ? strstr(sql, "()\"") : NULL;
        if (paren)
            memcpy(paren, "\"()", 3);
        rc = oms_db_exec(c, sql, NULL, 0, NULL, err);
    }
    oms_dbres_free(r);
    return rc;
}

int oms_backup_sql_reset(oms_store *s, oms_dbconn *c, int version, oms_error *err)
{
    /* A database that never saw an OMS migration holds nothing of ours:
     * nothing is dropped there (a schema OMS shares is left alone). */
    int rc = version > 0 ? drop_all(c, err) : OMS_OK;
    if (rc == OMS_OK)
        rc = oms_store_migrate_in_tx(s, c, oms_store_latest_version(s), NULL, err);
    static const char *const seeds[] = {"DELETE FROM branches", "DELETE FROM commits", "DELETE FROM objects",
                                        "DELETE FROM trees", "DELETE FROM tree_nodes",
                                        "DELETE FROM acl_version", "DELETE FROM audit_chain_head"};
    for (size_t i = 0; rc == OMS_OK && i < sizeof seeds / sizeof *seeds; i++)
        rc = oms_db_exec(c, seeds[i], NULL, 0, NULL, err);
    if (rc == OMS_OK && !is_pg(c))
        rc = oms_db_exec(c, "DELETE FROM lock_fencing", NULL, 0, NULL, err);
    return rc;
}

/* Rows go in as one JSON array of objects keyed by column name, one
 * statement per batch: json_populate_recordset converts each text to its
 * column's type on PostgreSQL; json_each + json_extract on SQLite, where
 * the column's affinity does. One round trip per batch instead of one per
 * row, and no bound on parameters. */
static char *insert_sql(oms_dbconn *c, const char *table, const char *const *cols, size_t from, size_t n)
{
    size_t cap = 256 + n * 128;
    char *sql = oms_xmalloc(cap);
    bool binary = false;
    size_t len = (size_t)snprintf(sql, cap, "INSERT INTO %s (", table);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(sql + len, cap - len, "%s%s", i ? ", " : "", cols[from + i]);
        binary = binary || is_binary(table, cols[from + i]);
    }
    len += (size_t)snprintf(sql + len, cap - len, ") SELECT ");
    for (size_t i = 0; i < n; i++) {
        const char *col = cols[from + i];
        if (is_pg(c))
            len += (size_t)snprintf(sql + len, cap - len, is_binary(table, col) ? "%sdecode(%s, 'hex')" : "%s%s",
                                    i ? ", " : "", col);
        else
            len += (size_t)snprintf(sql + len, cap - len,
                                    is_binary(table, col) ? "%soms_unhex(json_extract(value, '$.%s'))"
                                                          : "%sjson_extract(value, '$.%s')",
                                    i ? ", " : "", col);
    }
    if (is_pg(c) && binary) {
        /* the hex texts as text columns, decoded above */
        len += (size_t)snprintf(sql + len, cap - len, " FROM json_to_recordset($1::json) AS x(");
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(sql + len, cap - len, "%s%s text", i ? ", " : "", cols[from + i]);
        snprintf(sql + len, cap - len, ")");
    } else if (is_pg(c)) {
        snprintf(sql + len, cap - len, " FROM json_populate_recordset(NULL::%s, $1::json)", table);
    } else {
        snprintf(sql + len, cap - len, " FROM json_each($1)");
    }
    return sql;
}

/* Inserts rows [0, n) (stride `stride` cells) of columns [from, from+ncols)
 * into `table`, skipping rows whose cell `need` (-1: none) is NULL. */
static int insert_rows(oms_dbconn *c, const char *table, const char *const *names, const char *const *cells,
                       size_t n, size_t stride, size_t from, size_t ncols, int need, oms_error *err)
{
    json_t *arr = json_array();
    char *sql = NULL, *text = NULL;
    int rc = OMS_OK;
    if (!arr)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == OMS_OK; i++) {
        const char *const *row = cells + i * stride;
        if (need >= 0 && !row[need])
            continue;
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o)) {
            rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < ncols; k++) {
            const char *v = row[from + k];
            if (json_object_set_new(o, names[from + k], v ? json_string(v) : json_null())) {
                rc = oms_err_set(err, OMS_EINVAL, "%s.%s: a value is not valid UTF-8", table, names[from + k]);
                break;
            }
        }
    }
    if (rc || json_array_size(arr) == 0)
        goto cleanup;
    if (!(sql = insert_sql(c, table, names, from, ncols)) || !(text = json_dumps(arr, JSON_COMPACT))) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    oms_dbparam p[] = {DBP_TEXT(text)};
    rc = oms_db_exec(c, sql, p, 1, NULL, err);
cleanup:
    free(sql);
    free(text);
    json_decref(arr);
    return rc;
}

int oms_backup_sql_insert(oms_dbconn *c, const oms_backup_section *s, const char *const *cells, size_t n,
                          oms_error *err)
{
    size_t ncols = oms_backup_section_ncols(s);
    if (is(s, "counters")) {
        int rc = OMS_OK;
        for (size_t i = 0; i < n && rc == OMS_OK; i++) {
            const char *const *row = cells + i * ncols;
            if (!row[0] || strcmp(row[0], "lock_fencing") != 0 || !row[1])
                continue;
            oms_dbparam p[] = {DBP_INT(strtoll(row[1], NULL, 10))};
            rc = oms_db_exec(c,
                             is_pg(c) ? "SELECT setval('lock_fencing_seq', GREATEST($1::bigint, 1), $1::bigint > 0)"
                                      : "INSERT INTO lock_fencing (id, value) VALUES (1, $1)",
                             p, 1, NULL, err);
        }
        return rc;
    }
    if (is(s, "audit_log")) {
        /* the event (when the position has one), then the chain row (when
         * the position is not a legacy one) */
        int rc = insert_rows(c, "audit_events", s->columns, cells, n, ncols, 4, EVENT_NCOLS, 4, err);
        if (rc)
            return rc;
        static const char *const chain_cols[] = {"pos", "event_seq", "prev_hash", "hash"};
        return insert_rows(c, "audit_chain", chain_cols, cells, n, ncols, 0, 4, 3, err);
    }
    if (is(s, "audit_events_other"))
        return insert_rows(c, "audit_events", s->columns, cells, n, ncols, 0, ncols, -1, err);
    return insert_rows(c, s->name, s->columns, cells, n, ncols, 0, ncols, -1, err);
}

int oms_backup_sql_convert_trees(oms_dbconn *c, oms_error *err) { return oms_tree_conv_all(c, err); }

int oms_backup_sql_finish(oms_dbconn *c, oms_error *err)
{
    /* the audit log's facets are derived, not backed up (migration 0021) */
    int frc = oms_store_audit_facets_rebuild(c, NULL, err);
    if (frc)
        return frc;
    if (!is_pg(c)) {
        /* AUTOINCREMENT already continues after the largest seq inserted;
         * a backup without the counter still gets one */
        int rc = oms_db_exec(c, "INSERT INTO lock_fencing (id, value) SELECT 1, COALESCE((SELECT MAX(fencing_token)"
                                " FROM locks), 0) WHERE NOT EXISTS (SELECT 1 FROM lock_fencing)",
                             NULL, 0, NULL, err);
        /* events of a PostgreSQL backup that were waiting for their
         * position: SQLite has no sequencer, they get theirs now */
        int64_t placed = 0;
        return rc ? rc : oms_store_events_place(c, INT64_MAX, &placed, err);
    }
    int rc = oms_db_exec(c,
                         "SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), GREATEST(MAX(seq), 1),"
                         " MAX(seq) IS NOT NULL) FROM audit_events",
                         NULL, 0, NULL, err);
    return rc ? rc
              : oms_db_exec(c,
                            "SELECT setval(pg_get_serial_sequence('events', 'seq'), GREATEST(MAX(seq), 1),"
                            " MAX(seq) IS NOT NULL) FROM events",
                            NULL, 0, NULL, err);
}

int oms_backup_sql_check_refs(oms_dbconn *c, bool *ok, char *what, size_t cap, oms_error *err)
{
    /* Every commit's tree resolves: it has a root, and every node's
     * children are stored (node hashes are checked as the file is read;
     * the tree id against its content when a snapshot loads). */
    static const char k_children_sqlite[] =
        "WITH k(i) AS (VALUES (0), (1), (2), (3)) SELECT lower(hex(n.hash)) FROM tree_nodes n JOIN k"
        " ON substr(n.body, 2, 1) = x'01' AND 3 + 32 * (k.i + 1) <= length(n.body)"
        " WHERE NOT EXISTS (SELECT 1 FROM tree_nodes x WHERE x.hash = substr(n.body, 4 + 32 * k.i, 32)) LIMIT 1";
    static const char k_children_pg[] =
        "SELECT encode(n.hash, 'hex') FROM tree_nodes n CROSS JOIN generate_series(0, 3) AS k(i)"
        " WHERE get_byte(n.body, 1) = 1 AND 3 + 32 * (k.i + 1) <= length(n.body)"
        " AND NOT EXISTS (SELECT 1 FROM tree_nodes x WHERE x.hash = substring(n.body from 4 + 32 * k.i for 32)) LIMIT 1";
    static const struct {
        const char *sql, *what;
    } checks[] = {
        {"SELECT c.id FROM commits c WHERE NOT EXISTS (SELECT 1 FROM trees t WHERE t.id = c.tree) LIMIT 1",
         "commit %s: its tree is missing"},
        {"SELECT t.id FROM trees t WHERE NOT EXISTS (SELECT 1 FROM tree_nodes n WHERE n.hash = t.root) LIMIT 1",
         "tree %s: its root node is missing"},
        {NULL, "tree node %s: a child node is missing"},
        {"SELECT p.commit_id FROM commit_parents p WHERE NOT EXISTS (SELECT 1 FROM commits c WHERE c.id = p.parent_id)"
         " LIMIT 1",
         "commit %s: a parent commit is missing"},
        {"SELECT p.commit_id FROM commit_parents p WHERE NOT EXISTS (SELECT 1 FROM commits c WHERE c.id = p.commit_id)"
         " LIMIT 1",
         "commit %s: parent edges of a commit that is missing"},
        {"SELECT c.id FROM commits c WHERE c.first_parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM commit_parents p"
         " WHERE p.commit_id = c.id AND p.idx = 0 AND p.parent_id = c.first_parent) LIMIT 1",
         "commit %s: its parent edges do not match its first parent"},
        {"SELECT b.name FROM branches b WHERE NOT EXISTS (SELECT 1 FROM commits c WHERE c.id = b.head) LIMIT 1",
         "branch %s: its head commit is missing"},
        {"SELECT r.branch || ' ' || r.resource FROM branch_resources r WHERE r.hash <> '' AND NOT EXISTS"
         " (SELECT 1 FROM objects o WHERE o.hash = r.hash AND o.type = 'resource') LIMIT 1",
         "branch resource %s: its document is missing"},
        {"SELECT r.branch || ' ' || r.resource FROM branch_resources r WHERE NOT EXISTS (SELECT 1 FROM branches b"
         " WHERE b.name = r.branch) LIMIT 1",
         "branch resource %s: its branch is missing"},
        {"SELECT f.branch FROM branch_forks f WHERE NOT EXISTS (SELECT 1 FROM branches b WHERE b.name = f.branch)"
         " OR NOT EXISTS (SELECT 1 FROM branches b WHERE b.name = f.base)"
         " OR EXISTS (SELECT 1 FROM branch_forks g WHERE g.branch = f.base) LIMIT 1",
         "fork %s: it, its base, or its base as a base is missing"},
        {"SELECT x.commit_id FROM commit_changes x WHERE x.new_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM objects o"
         " WHERE o.hash = x.new_hash) LIMIT 1",
         "commit %s: a changed resource's document is missing"},
        {"SELECT p.id FROM proposals p WHERE p.merged_commit IS NOT NULL AND NOT EXISTS (SELECT 1 FROM commits c"
         " WHERE c.id = p.merged_commit) LIMIT 1",
         "proposal %s: its merge commit is missing"},
    };
    *ok = true;
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        oms_dbres *r = NULL;
        const char *sql = checks[i].sql ? checks[i].sql : is_pg(c) ? k_children_pg : k_children_sqlite;
        int rc = oms_db_exec(c, sql, NULL, 0, &r, err);
        if (rc)
            return rc;
        if (r->nrows) {
            *ok = false;
            snprintf(what, cap, checks[i].what, oms_dbres_get(r, 0, 0));
        }
        oms_dbres_free(r);
        if (!*ok)
            return OMS_OK;
    }
    return OMS_OK;
}
