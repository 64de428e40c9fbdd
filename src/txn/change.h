/* The one change transaction (ENGINEERING.md habit 17, docs/architecture.md).
 *
 * Every change route runs its change through oms_change_run, which owns the
 * sequence around it:
 *
 *   connection -> BEGIN -> change step (the module's own work: rows, commit
 *   row, head compare-and-swap) -> lock check of what the step touched ->
 *   override use (when the change relied on one) -> audit event -> outbox
 *   hook -> COMMIT, or ROLLBACK on any failure -> run again (twice at most)
 *   when the database rolled it back for another (a serialization failure
 *   or a deadlock) -> reset a broken connection.
 *
 * A step never opens or ends a transaction, never writes the audit event
 * and never renders a response: it returns OMS_OK or an error (with
 * ctx->problem_extra for the problem document's members) and describes what
 * it did in `out`. */
#ifndef OMS_TXN_CHANGE_H
#define OMS_TXN_CHANGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/context.h"
#include "events/events.h"
#include "store/db.h"

#define OMS_CHANGE_MAX_TOUCHED 64
#define OMS_CHANGE_CARRY_MAX 320

/* What the step reports: the audit event's resource and hashes, and the
 * resources whose locks the change must respect. */
typedef struct {
    const char *resource_kind, *resource_id;
    const char *branch;          /* the branch changed (default: the spec's) */
    const char *commit_id;
    const char *before_hash, *after_hash;
    const char *changed_paths;   /* JSON array text */
    json_t *detail;              /* the audit detail object (owned, freed by oms_change_run) */
    int status;                  /* the HTTP status the client will get (recorded with the event) */
    bool no_op;                  /* nothing changed: roll back, record nothing */
    bool whole_branch;           /* the change touches the whole branch (deleting it) */
    const char *touched[OMS_CHANGE_MAX_TOUCHED]; /* "KIND/API_NAME" keys */
    size_t ntouched;
    bool locks_checked;          /* the step ran oms_lock_check_write itself (it needed its own order) */
    const char *override_id;     /* the override the event is about (default: the one the change used) */
    bool unaudited;              /* liveness only (a lock heartbeat): commit, record no event */
    /* Group commit (txn/group_commit.h): what the change written just
     * before this one, in the same transaction and by the same step, left
     * for it (NULL when alone, first in a batch, or after a change that was
     * rolled back), and what this one leaves for the next (its step's own
     * format, opaque to this layer; ncarry 0: nothing). */
    const void *carry_in;
    bool carry_used; /* the step relied on carry_in (counted in /metrics) */
    unsigned char carry[OMS_CHANGE_CARRY_MAX];
    size_t ncarry;
} oms_change_out;

typedef int (*oms_change_fn)(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err);

/* A change in one round trip (PostgreSQL; docs/storage.md "Round trips"):
 * a step that can make its whole change in one statement, conditioned on
 * every check it would make, offers it with these. BEGIN, that statement
 * (which also writes the change's audit event, its chainer queue row and
 * its outbox row, only when it makes the change) and COMMIT then travel
 * together. When the statement made nothing (a condition did not hold) or
 * failed, nothing of it was kept and the change runs the usual way, where
 * the step decides and explains. */
typedef struct {
    int64_t acl_version;      /* write only at this ACL version: the deferred checks (-1: none) */
    const oms_dbparam *audit; /* the audit event's row (oms_audit_event_params) */
    const oms_dbparam *event; /* the outbox row (oms_event_row_params); NULL: the change has none */
} oms_change_tail;

typedef struct {
    /* Fills `out` as the step would when it succeeds, from memory only
     * (out->detail owned by `out`); false when the change cannot go in one
     * statement, or the spec's after_event would do something for it. */
    bool (*predict)(oms_ctx *ctx, void *arg, oms_change_out *out);
    /* Queues the statement (oms_db_read_later) into *rows. */
    int (*send)(oms_dbconn *c, oms_ctx *ctx, void *arg, const oms_change_tail *tail, oms_dbres **rows,
                oms_error *err);
    /* After COMMIT: whether `rows` say the change was made; if so, it
     * records the outcome where the step would. */
    bool (*made)(oms_ctx *ctx, void *arg, const oms_dbres *rows);
} oms_change_one_shot;

typedef struct {
    const char *action;   /* audit action; NULL: ctx->audit_action, then the route's */
    const char *branch;   /* the branch the change applies to, NULL when none (ACL, alerts) */
    bool check_locks;     /* the change writes a branch: other holders' locks refuse it */
    oms_change_fn step;
    void *arg;
    /* Optional: runs after the change's audit event, in the same
     * transaction, for what must follow the event in the chain (the alert
     * an ACL change raises, SPEC §10: its alert.raised event and the stored
     * alert). A failure rolls the change back. */
    oms_change_fn after_event;
    /* The change may share a transaction with other changes of its branch
     * (group commit, txn/group_commit.h): its step reads the branch row
     * inside the transaction and moves the head by compare-and-swap, so it
     * builds on whatever the change before it in the group committed; or,
     * on a backend with one writer, it reads everything it decides on
     * inside the transaction (a lock change), where the group is one for
     * all changes and needs no branch. */
    bool groupable;
    /* Optional: the change in one round trip (oms_change_one_shot). */
    const oms_change_one_shot *one_shot;
} oms_change_spec;

/* The outbox hook: runs inside the transaction after the audit event, for
 * the events capability (transactional outbox). NULL until it is set. */
typedef int (*oms_change_outbox_fn)(oms_dbconn *c, const oms_ctx *ctx, const char *action, const oms_change_out *out,
                                    oms_error *err);
void oms_change_set_outbox(oms_change_outbox_fn fn);
/* The same hook's event rendered without writing it (for a change in one
 * statement): *none when the change has no event; an error when it cannot
 * be rendered from memory (the change then runs the usual way). A change
 * is offered in one statement only when both hooks are set, or neither. */
typedef int (*oms_change_outbox_render_fn)(const oms_ctx *ctx, const char *action, const oms_change_out *out,
                                           oms_event_row *row, bool *none, oms_error *err);
void oms_change_set_outbox_render(oms_change_outbox_render_fn fn);

/* Runs the change. On success ctx->audited is true and `out` describes the
 * change; on failure nothing was written and the caller renders the error
 * (the pipeline records the failure's event). */
int oms_change_run(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_error *err);
/* Group commit on or off (OMS_GROUP_COMMIT; on by default). */
void oms_change_group_commit(bool on);

#endif
