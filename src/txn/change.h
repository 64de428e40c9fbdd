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
} oms_change_spec;

/* The outbox hook: runs inside the transaction after the audit event, for
 * the events capability (transactional outbox). NULL until it is set. */
typedef int (*oms_change_outbox_fn)(oms_dbconn *c, const oms_ctx *ctx, const char *action, const oms_change_out *out,
                                    oms_error *err);
void oms_change_set_outbox(oms_change_outbox_fn fn);

/* Runs the change. On success ctx->audited is true and `out` describes the
 * change; on failure nothing was written and the caller renders the error
 * (the pipeline records the failure's event). */
int oms_change_run(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_error *err);
/* Group commit on or off (OMS_GROUP_COMMIT; on by default). */
void oms_change_group_commit(bool on);

#endif
