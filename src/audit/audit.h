/* Audit events (SPEC §9). A change appends its event inside the change's own
 * transaction (oms_audit_append); an event with no transaction of its own
 * (authentication failure, denial) is made durable by oms_audit_record before
 * the response is sent. Events never carry tokens, secrets or passwords. */
#ifndef OMS_AUDIT_H
#define OMS_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/context.h"
#include "store/store.h"

typedef struct {
    const char *actor_sub;
    const char *actor_roles; /* JSON array text */
    const char *client_addr;
    const char *user_agent;
    const char *action;      /* auth.failed, authz.denied, object_type.update, ... */
    const char *outcome;     /* success | denied | failure */
    int http_status;
    const char *request_id;
    const char *method;
    const char *route;       /* the route pattern, or the raw path when none matched */
    const char *resource_kind;
    const char *resource_branch;
    const char *resource_id;
    const char *issue_keys;   /* JSON array text */
    const char *override_id;
    const char *commit_id;
    const char *before_hash;
    const char *after_hash;
    const char *changed_paths; /* JSON array text */
    const char *detail;        /* JSON object text */
    int64_t time_ms;           /* 0: when it is appended */
} oms_audit_event;

/* Fills the actor and request fields of `ev` from the request context; the
 * roles JSON text is arena-allocated. */
void oms_audit_from_ctx(oms_audit_event *ev, const oms_ctx *ctx);

/* Appends inside the caller's open write transaction: the event takes the
 * next seq of the table's sequence and is queued for the chainer, which
 * links it into the hash chain after it commits (docs/audit.md "Chain").
 * It locks nothing shared, so concurrent changes commit independently. */
int oms_audit_append(oms_dbconn *c, const oms_audit_event *ev, oms_error *err);
/* The row oms_audit_append inserts, as statement parameters
 * (OMS_AUDIT_EVENT_NPARAMS of them, store/audit_sql.h), with a new event id
 * in `id`, which the parameters point into, as do they into `ev`: for a
 * change that writes its event within its own statement (one round trip,
 * txn/change.c). The statement must queue the chainer's row as the append
 * does. */
void oms_audit_event_params(const oms_audit_event *ev, char id[40], oms_dbparam *p);
/* Appends in a transaction of its own; durable when it returns OMS_OK.
 * While the group-commit writer runs (oms_audit_start), the event joins the
 * next batch (one transaction, one fsync, for many events) and the caller
 * waits, at most OMS_AUDIT_WAIT_MS unless its batch is already committing,
 * for that batch to commit. On failure the event is not written, now or
 * later: the caller fails closed with a 503, OMS_EDB (database_unavailable)
 * when the database is unreachable, else OMS_EAUDIT (audit_unavailable),
 * and records that 503 with oms_audit_record_unrecorded. Never call it
 * inside an open transaction. */
int oms_audit_record(oms_store *s, const oms_audit_event *ev, oms_error *err);
/* Queues an event about a response already decided (or sent) for the
 * writer, without waiting: written with the next batch that commits, kept
 * and retried while the store cannot write (bounded; what does not fit is
 * counted into one `audit.dropped` event). Without a writer: one attempt
 * now. time_ms 0 is taken as now. */
void oms_audit_record_later(oms_store *s, const oms_audit_event *ev);
/* `ev` could not be recorded (oms_audit_record failed) and the client gets
 * `status` (a 503) with problem `code` instead: records, late, what it got:
 * `ev` with outcome failure, that status, and detail {reason: code, late:
 * true, intended: {outcome, status, detail}}; `ev` itself when its status
 * already is the one answered. */
void oms_audit_record_unrecorded(oms_store *s, const oms_audit_event *ev, int status, const char *code);

/* The schema version the audit code writes to (migration 8: events are
 * chained after commit); `oms migrate --to` an earlier version records no
 * event. */
#define OMS_AUDIT_SCHEMA_VERSION 8

/* ---- lifecycle ---- */

typedef struct oms_config oms_config;

/* Loads OMS_AUDIT_KEY(_FILE). Unset: refused on PostgreSQL (OMS_ECONFIG);
 * on SQLite the key is read from the 0600 file `audit.key` beside the
 * database. `sign` is for the commands that sign checkpoints (serve, audit
 * seal, audit archive): they may generate that file (with a warning) only
 * while the database holds no checkpoint, and they refuse (OMS_ECONFIG) a
 * key that did not sign the newest checkpoint (unless it signed the oldest:
 * then the newest was tampered with, which verification reports). Without
 * `sign` (verify, report) an existing key is only read. The key is never
 * logged. */
int oms_audit_load_key(const oms_config *cfg, oms_store *s, bool sign, oms_error *err);
/* The key without a database (backup verification, restore before the
 * target is touched): OMS_AUDIT_KEY(_FILE), else on SQLite the audit.key
 * beside DATABASE_URL's database; OMS_ENOTFOUND when there is none. Only
 * verifies: signing still needs oms_audit_load_key. */
int oms_audit_load_key_offline(const oms_config *cfg, oms_error *err);
/* After migrations: records schema.migrate (version from -> to) when any
 * were applied. */
int oms_audit_after_migrate(oms_store *s, int from_version, int applied, oms_error *err);
/* Starts / stops the group-commit writer; stop flushes it and seals. */
void oms_audit_start(oms_store *s, const oms_config *cfg);
void oms_audit_stop(oms_store *s);

/* ---- sealing and verification ---- */

/* One sealing round: chains the events committed since the last round and
 * seals the chain's new tip into a signed checkpoint (on PostgreSQL only
 * the instance holding the sealer's advisory lock does). *sealed_upto (may
 * be NULL) gets the sealed chain position, 0 when nothing was sealed. */
int oms_audit_seal(oms_store *s, int64_t *sealed_upto, oms_error *err);
/* The background task's round (the task table: src/app/tasks.c). */
void oms_audit_seal_run(oms_store *s);

/* Positions are chain positions (the chainer's order); seqs name events. */
typedef struct {
    bool ok;
    int64_t events;          /* chain positions checked */
    int64_t checkpoints;     /* checkpoints checked */
    int64_t first_seq, last_seq; /* lowest and highest event seq checked */
    int64_t last_pos;        /* the chain's last position */
    int64_t sealed_upto;     /* newest sealed position */
    int64_t archived_upto;   /* positions up to here were archived */
    int64_t unsealed;        /* positions after sealed_upto */
    int64_t pending;         /* committed events the chainer has not reached yet */
    int64_t overdue;         /* ... of which queued longer than the grace period */
    int64_t first_bad_seq;   /* 0: none */
    int64_t bad_checkpoint;  /* 0: none */
    char reason[256];
} oms_audit_verify_result;

/* Recomputes the chain and checks every checkpoint and every event the
 * chain does not hold. OMS_OK with out->ok false means tampering was
 * found; an error means it could not check. Pending events are not
 * tampering. */
int oms_audit_verify(oms_store *s, oms_audit_verify_result *out, oms_error *err);
json_t *oms_audit_verify_json(const oms_audit_verify_result *v);

/* `oms audit verify|export|archive ...`; returns the exit code. */
int oms_audit_cli(oms_config *cfg, int argc, char **argv);

#endif
