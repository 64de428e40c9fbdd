/* The life of a lock (SPEC §7, docs/locks.md): acquire, read, heartbeat,
 * extend and release. Each change runs in one transaction (the API's step
 * for oms_change_run, src/txn/change.h) that reads the clock from the
 * database, changes the lock row and appends its audit event. The lock rows are the only state,
 * so any instance serves any lock. The API (src/api/locks.c) parses the
 * request and renders `*l` judged at `*now`. */
#ifndef OMS_LOCK_LIFECYCLE_H
#define OMS_LOCK_LIFECYCLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/context.h"
#include "locks/locks.h"
#include "store/db.h"

/* The ACL decision the API supplies: OMS_OK when the caller holds
 * lock:admin on `branch` (RBAC refined by ACL policies); otherwise
 * OMS_EFORBIDDEN with missing_permission, denied_by and `extra`'s members
 * in ctx->problem_extra, or OMS_EUNAVAIL when the policies cannot be read
 * (fail closed). `extra` is stolen (may be NULL). */
typedef int (*oms_lock_admin_fn)(oms_ctx *ctx, void *arg, const char *branch, json_t *extra, oms_error *err);

/* What a lock change did, for its audit event: the API's change step
 * (src/api/locks.c) hands it to oms_change_run (src/txn/change.h), which
 * opens and ends the transaction each *_tx operation runs in. The lock is
 * judged at `now`. */
typedef struct {
    oms_lock lock;
    int64_t now;
    int status;             /* the HTTP status the event records */
    json_t *detail;         /* the event's detail (owned) */
    bool unaudited;         /* liveness only: no event */
    const char *alert_rule, *alert_severity;
    json_t *alert_detail;   /* owned */
} oms_lock_change;

/* A new lock's id, holder (ctx->sub) and state, before oms_lock_acquire_tx. */
void oms_lock_prepare(oms_ctx *ctx, oms_lock *l);

/* Acquires out->lock (branch, scope, resource, kind, reason,
 * heartbeat_seconds: validated; oms_lock_prepare'd) with a TTL of `ttl_s`
 * seconds: event lock.acquire (201). A `branch` or `resource_type` lock on
 * a protected branch needs lock:admin (`admin`). OMS_ENOTFOUND without the
 * branch, OMS_ECONFLICT "lock_conflict" with the conflicting locks. Fills
 * times and the fencing token. */
int oms_lock_acquire_tx(oms_dbconn *c, oms_ctx *ctx, int64_t ttl_s, oms_lock_admin_fn admin, void *arg,
                        oms_lock_change *out, oms_error *err);

/* The pieces of an acquisition that a change in one statement shares
 * (locks/one_shot.c): the new row of a lock with a TTL of `ttl_s`; the
 * times and token of a granted lock (and the process remembers it,
 * locks/granted.h); the events' details of an acquisition and a release. */
void oms_lock_acquire_row(const oms_lock *l, int64_t ttl_s, oms_lock_row_new *row);
void oms_lock_granted(oms_lock *l, int64_t now, int64_t token, int64_t ttl_s);
json_t *oms_lock_acquire_detail(const oms_lock *l, int64_t ttl_s);
json_t *oms_lock_release_detail(const oms_lock *l, const char *reason);

/* One lock (OMS_ENOTFOUND when there is none). */
int oms_lock_get(oms_ctx *ctx, const char *id, oms_lock *l, int64_t *now, oms_error *err);

/* Heartbeat (`extend` false): the holder proves it is alive, with the
 * progress of `body` (NULL or {"progress": {"percent", "phase",
 * "message"}}; OMS_EINVAL when it is not that); unaudited. Extend: the
 * same lengthening the TTL to `ttl_s` from now (-1: the kind's default;
 * never shortening), event lock.extend. A lapsed lock cannot be revived:
 * that is what makes its fencing meaningful (OMS_ECONFLICT
 * "lock_not_active"); OMS_ELOCKNOTHOLDER for anyone but the holder. */
int oms_lock_touch_tx(oms_dbconn *c, oms_ctx *ctx, const char *id, bool extend, int64_t ttl_s, const json_t *body,
                      oms_lock_change *out, oms_error *err);

/* Releases the lock. The holder's release is event lock.release; anyone
 * else needs lock:admin (`admin`) and an issue reference: `issue_keys`
 * (borrowed, arena-owned; it becomes ctx->issue_keys) must hold a key and
 * `invalid` none (else OMS_EUNPROCESSABLE "issue_required" with examples);
 * the release is then lock.force_release (ctx->audit_action), state
 * force_released, and raises the forced_lock_release security alert.
 * `reason` (may be NULL) goes to the detail. */
int oms_lock_release_tx(oms_dbconn *c, oms_ctx *ctx, const char *id, const char *reason, json_t *issue_keys,
                        const json_t *invalid, oms_lock_admin_fn admin, void *arg, oms_lock_change *out,
                        oms_error *err);

#endif
