/* Storage of the audit log (docs/audit.md): every statement of src/audit/,
 * one operation each, both dialects side by side where they differ (the
 * event insert with its chainer queue row, the chain rows, the sealer's
 * advisory lock). Row sets come back in the column orders named below. */
#ifndef OMS_STORE_AUDIT_SQL_H
#define OMS_STORE_AUDIT_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "store/db.h"

/* An event's columns in hashing order (seq .. detail), from audit_events
 * aliased `e`. */
#define OMS_AUDIT_EVENT_COLS "e.seq, " OMS_AUDIT_EVENT_COLS_AFTER_SEQ
/* The same without the first (audit filters read seq from the arm's driving table). */
#define OMS_AUDIT_EVENT_COLS_AFTER_SEQ                                                                    \
    "e.event_id, e.time_ms, e.actor_sub, e.actor_roles, e.client_addr, e.user_agent, e.action,"          \
    " e.outcome, e.http_status, e.request_id, e.method, e.route, e.resource_kind, e.resource_branch,"    \
    " e.resource_id, e.issue_keys, e.override_id, e.commit_id, e.before_hash, e.after_hash,"             \
    " e.changed_paths, e.detail"
/* An event with its chain link (NULL until the chainer reaches it): every
 * read that feeds the JSON/CSV renderers returns exactly these, in this
 * order (src/audit/internal.h names them AC_SEQ .. AC_HASH). The event
 * row's own prev_hash/hash columns are no longer written (version 8): the
 * link lives in audit_chain. */
#define OMS_AUDIT_COLS OMS_AUDIT_EVENT_COLS ", c.prev_hash, c.hash"
#define OMS_AUDIT_FROM "audit_events e LEFT JOIN audit_chain c ON c.event_seq = e.seq"
/* The columns of audit_facets (migration 0021): an event's seq and the
 * columns filtered reads find events by, copied when it is chained. */
#define OMS_AUDIT_FACET_COLS "seq, time_ms, actor_sub, action, resource_branch, request_id"

/* The columns of a checkpoint row, in the order the reads return them.
 * from_seq and upto_seq are chain positions (their names predate version 8,
 * when position and seq were the same number). */
#define OMS_AUDIT_CHECKPOINT_COLS \
    "id, kind, from_seq, upto_seq, chain_hash, event_count, time_ms, sealed_by, detail, prev_hmac, hmac"
enum {
    OMS_AUDIT_CP_COL_ID,
    OMS_AUDIT_CP_COL_KIND,
    OMS_AUDIT_CP_COL_FROM,
    OMS_AUDIT_CP_COL_UPTO,
    OMS_AUDIT_CP_COL_CHAIN_HASH,
    OMS_AUDIT_CP_COL_COUNT,
    OMS_AUDIT_CP_COL_TIME,
    OMS_AUDIT_CP_COL_SEALED_BY,
    OMS_AUDIT_CP_COL_DETAIL,
    OMS_AUDIT_CP_COL_PREV_HMAC,
    OMS_AUDIT_CP_COL_HMAC,
};

/* Key of the transaction-scoped advisory lock held by the instance that
 * chains and seals, or archives ("OMS-SEAL" in ASCII). */
#define OMS_AUDIT_SEAL_LOCK_KEY INT64_C(5714731494797968716)

/* The event's columns from event_id to detail, as $1 .. $22 (see
 * audit_events); time_ms NULL means the database clock. */
#define OMS_AUDIT_EVENT_NPARAMS 22

/* Inserts one event and its audit_unchained queue row in the caller's
 * transaction (one round trip on PostgreSQL). */
int oms_store_audit_event_insert(oms_dbconn *c, const oms_dbparam *p, oms_error *err);

/* One chain row. */
typedef struct {
    int64_t pos, event_seq;
    const char *prev_hash, *hash;
} oms_store_audit_link;

/* Inserts `n` chain rows in one statement, and the facets of their events
 * (nothing when n is 0). */
int oms_store_audit_chain_insert(oms_dbconn *c, const oms_store_audit_link *rows, size_t n, oms_error *err);

/* ---- the chain (src/audit/chain.c, chainer.c) ---- */

/* legacy_upto of the version-4 head row (0 without one). */
int oms_store_audit_legacy_upto(oms_dbconn *c, int64_t *out, oms_error *err);
/* Rows the chain walker reads per page. */
#define OMS_AUDIT_WALK_PAGE 2000
/* A page of the chain after position `after` up to `upto`, by position:
 * rows (position, event seq, OMS_AUDIT_COLS). `legacy`: events before
 * version 4, whose position is their seq and which have no link (NULL,
 * NULL); else chain rows joined with their events (the event's columns
 * NULL when it is gone). At most OMS_AUDIT_WALK_PAGE rows. */
int oms_store_audit_walk_page(oms_dbconn *c, bool legacy, int64_t after, int64_t upto, oms_dbres **out,
                              oms_error *err);
/* Up to `limit` queued events that have committed and are not chained, by
 * seq: rows (OMS_AUDIT_EVENT_COLS). */
int oms_store_audit_unchained_page(oms_dbconn *c, int64_t limit, oms_dbres **out, oms_error *err);
/* Removes the queue rows of chained events. */
int oms_store_audit_unchained_prune(oms_dbconn *c, oms_error *err);
/* Verification of the queue (one snapshot each): `forged` the lowest seq
 * after `legacy_upto` neither chained nor queued (0: none), `pending` the
 * queued events not chained, `overdue` those older than `older_than_ms`. */
int oms_store_audit_unchained_check(oms_dbconn *c, int64_t legacy_upto, int64_t older_than_ms, int64_t *forged,
                                    int64_t *pending, int64_t *overdue, oms_error *err);
/* The lowest queued seq whose event is gone and not chained (0: none). */
int oms_store_audit_unchained_gone(oms_dbconn *c, int64_t *seq, oms_error *err);
/* Verification of audit_facets (one snapshot): `differs` the lowest seq of
 * an event chained (or legacy, seq <= legacy_upto) whose facets row is
 * missing or holds other values; `orphan` the lowest seq of a facets row
 * whose event is gone or not chained (0: none). */
int oms_store_audit_facets_check(oms_dbconn *c, int64_t legacy_upto, int64_t *differs, int64_t *orphan,
                                 oms_error *err);
/* Every facets row written again from the events, by migration 0021's
 * rule (each event before the chain or chained gets its own, nothing
 * else), in the caller's transaction: a restore, whose file holds no
 * facets, and `oms audit rebuild-facets` after verification found rows
 * missing, edited or added. `rows` (may be NULL): the rows written. */
int oms_store_audit_facets_rebuild(oms_dbconn *c, int64_t *rows, oms_error *err);
/* What a sealing round would find: a queued event that exists, the last
 * chain position, legacy_upto, and the furthest sealed position. */
int oms_store_audit_seal_state(oms_dbconn *c, bool *queued, int64_t *chain_end, int64_t *legacy_upto,
                               int64_t *sealed, oms_error *err);

/* ---- checkpoints (src/audit/seal.c, verify.c, key.c, archive.c) ---- */

typedef struct {
    int64_t id;
    const char *kind; /* seal | archive */
    int64_t from_pos, upto_pos, event_count, time_ms;
    const char *chain_hash, *sealed_by, *detail, *prev_hmac, *hmac;
} oms_store_audit_checkpoint_row;

int oms_store_audit_checkpoint_insert(oms_dbconn *c, const oms_store_audit_checkpoint_row *cp, oms_error *err);
/* The newest checkpoint: rows (id, hmac), none when there is none. */
int oms_store_audit_checkpoint_last(oms_dbconn *c, oms_dbres **out, oms_error *err);
/* The checkpoint that reaches furthest (seal or archive): *found, *upto
 * and its chain hash (65 bytes). */
int oms_store_audit_checkpoint_frontier(oms_dbconn *c, bool *found, int64_t *upto, char hash[65], oms_error *err);
/* Every checkpoint by id (OMS_AUDIT_CHECKPOINT_COLS). */
int oms_store_audit_checkpoints_all(oms_dbconn *c, oms_dbres **out, oms_error *err);
int oms_store_audit_checkpoint_count(oms_dbconn *c, int64_t *out, oms_error *err);
/* The newest (or the oldest) checkpoint (OMS_AUDIT_CHECKPOINT_COLS), no
 * row when there is none. */
int oms_store_audit_checkpoint_edge(oms_dbconn *c, bool newest, oms_dbres **out, oms_error *err);

/* ---- archiving (src/audit/archive.c) ---- */

/* The chain hash of the newest archive record ending at `upto`: *found. */
int oms_store_audit_archive_start_hash(oms_dbconn *c, int64_t upto, bool *found, char hash[65], oms_error *err);
/* The last chain position in (after, upto] whose event is older than
 * before_ms (0: none). */
int oms_store_audit_archive_chain_end(oms_dbconn *c, int64_t before_ms, int64_t after, int64_t upto, int64_t *out,
                                      oms_error *err);
/* The same among legacy positions (event seqs). */
int oms_store_audit_archive_legacy_end(oms_dbconn *c, int64_t before_ms, int64_t after, int64_t upto, int64_t *out,
                                       oms_error *err);
/* Deletes the events, their facets and chain rows up to position `upto`
 * (legacy events up to min(upto, legacy_upto)). */
int oms_store_audit_archive_delete(oms_dbconn *c, int64_t upto, int64_t legacy_upto, oms_error *err);
/* The archive records of exactly (from, upto], by id
 * (OMS_AUDIT_CHECKPOINT_COLS). */
int oms_store_audit_archive_records(oms_dbconn *c, int64_t from, int64_t upto, oms_dbres **out, oms_error *err);

/* ---- reads (src/audit/reads.c, export.c) ---- */

/* What a read of the log selects; values are borrowed. */
typedef struct {
    const char *actor, *action, *resource_kind, *resource_id, *branch, *outcome, *request_id, *commit_id;
    bool action_prefix; /* action ended in ".*" */
    bool has_from, has_to;
    int64_t from_ms, to_ms;
    bool asc;
    bool has_cursor;
    int64_t cursor_seq;
    int64_t upto_seq; /* > 0: only seq <= this (export snapshots) */
    char kind_buf[128]; /* the KIND of a KIND/NAME resource filter */
} oms_store_audit_filter;

/* A filter's statement: every value a parameter, never SQL text. */
typedef struct {
    char sql[4096];
    oms_dbparam p[24];
    int n;
} oms_store_audit_query;

/* The events a filter selects, OMS_AUDIT_COLS in seq order, at most n: the
 * chained ones found through audit_facets, then merged with the queued ones
 * (`pg`: the PostgreSQL text). */
void oms_store_audit_filter_sql(oms_store_audit_query *q, const oms_store_audit_filter *f, int64_t limit, bool pg);
/* Up to `limit` events the filter selects (OMS_AUDIT_COLS). */
int oms_store_audit_events_page(oms_dbconn *c, const oms_store_audit_filter *f, int64_t limit, oms_dbres **out,
                                oms_error *err);
/* One event by its id (OMS_AUDIT_COLS), no row when there is none. */
int oms_store_audit_event_by_id(oms_dbconn *c, const char *event_id, oms_dbres **out, oms_error *err);
/* The newest seq (0: an empty log). */
int oms_store_audit_max_seq(oms_dbconn *c, int64_t *out, oms_error *err);

/* ---- the compliance report (src/audit/report.c) ---- */

/* The report's reads of the events of a period [from_ms, to_ms). Rows: */
typedef enum {
    OMS_AUDIT_REPORT_TOTALS,          /* action, outcome, count */
    OMS_AUDIT_REPORT_CHANGE_COUNT,    /* count of successful changes */
    OMS_AUDIT_REPORT_NO_ISSUE,        /* event_id, seq, time_ms, actor_sub, action, resource_branch,
                                         resource_kind, resource_id, commit_id: changes without issue keys */
    OMS_AUDIT_REPORT_OVERRIDES,       /* override id, action, actor_sub, time_ms, resource_branch, detail,
                                         commit_id */
    OMS_AUDIT_REPORT_MERGES,          /* event_id, seq, time_ms, actor_sub, action, resource_branch, commit_id,
                                         detail, issue_keys, override_id */
    OMS_AUDIT_REPORT_FORCED_RELEASES, /* event_id, seq, time_ms, actor_sub, resource_branch, resource_id, detail,
                                         issue_keys */
    OMS_AUDIT_REPORT_ACTORS,          /* actor_sub, outcome, count */
    OMS_AUDIT_REPORT_DENIALS,         /* actor_sub, count */
    OMS_AUDIT_REPORT_AUTH_FAILURES,   /* client_addr, count */
} oms_store_audit_report_read;
int oms_store_audit_report(oms_dbconn *c, oms_store_audit_report_read which, int64_t from_ms, int64_t to_ms,
                           oms_dbres **out, oms_error *err);
/* Every branch: rows (name, issue_required, protected). */
int oms_store_audit_branch_rules(oms_dbconn *c, oms_dbres **out, oms_error *err);
/* The approvers of a proposal until `until_ms`: rows (actor_sub). */
int oms_store_audit_approvers(oms_dbconn *c, const char *proposal, int64_t until_ms, oms_dbres **out,
                              oms_error *err);

/* Waits for the sealer's lock (archiving). Nothing on SQLite, whose
 * writers are already serialised. */
int oms_store_audit_seal_lock(oms_dbconn *c, oms_error *err);
/* Takes the sealer's lock if free: *got false when another instance holds
 * it (always true on SQLite). */
int oms_store_audit_seal_try_lock(oms_dbconn *c, bool *got, oms_error *err);

/* May several instances share this database (PostgreSQL)? Then the audit
 * key must come from the configuration, never from a file beside the
 * database. */
bool oms_store_audit_shared(const oms_db *db);

#endif
