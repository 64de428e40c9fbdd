/* Prometheus metrics: lock-free counters updated on the request path and
 * rendered on GET /metrics in the text exposition format 0.0.4. Per
 * instance (SPEC §11); the list is in docs/operations.md, "Metrics". */
#ifndef OMS_METRICS_H
#define OMS_METRICS_H

#include <stdint.h>

#include "http/request.h"

typedef enum { OMS_AUTHFAIL_MISSING, OMS_AUTHFAIL_INVALID, OMS_AUTHFAIL_EXPIRED, OMS_AUTHFAIL__COUNT } oms_authfail;

/* What a commit write does: a change (schema writes), a merge commit, a
 * revert, or a fast-forward (the head moves to an existing commit). */
typedef enum {
    OMS_COMMIT_CHANGE,
    OMS_COMMIT_MERGE,
    OMS_COMMIT_REVERT,
    OMS_COMMIT_FAST_FORWARD,
    OMS_COMMIT__COUNT
} oms_commit_kind;

/* A lock wait: a write refused with 423 because another holder's lock
 * covers it, or an acquisition refused with 409 lock_conflict. */
typedef enum { OMS_LOCKWAIT_WRITE, OMS_LOCKWAIT_ACQUIRE, OMS_LOCKWAIT__COUNT } oms_lockwait;

/* Called once per finished request (access-log time). */
void oms_metrics_request(const oms_request *req, double seconds);
void oms_metrics_auth_failure(oms_authfail reason);
void oms_metrics_denial(void);
/* One durable audit write outside a change transaction and its latency. */
void oms_metrics_audit_write(double seconds, int ok);
/* The write phase of a commit (after validation and the lock check) ended
 * with `rc`: OMS_OK, a conflict (the head moved: OMS_EPRECOND or
 * OMS_ECONFLICT) or another error. */
void oms_metrics_commit(oms_commit_kind kind, int rc);
void oms_metrics_lock_wait(oms_lockwait what);
/* A request refused with 429, by rate-limit class (0 read, 1 write,
 * 2 auth_failure: oms_rl_class of src/http/ratelimit.h). */
void oms_metrics_ratelimited(int cls);
/* Database connections: `opened` (+1 connect, -1 close) and `in_use` (+1
 * when a connection starts a transaction or a statement outside one, -1
 * when it ends) are deltas. Per-thread shards: no shared cache line. */
void oms_metrics_db_conn(int opened, int in_use);

/* One search answered (GET /api/v1/search/{branch}) and its latency. */
void oms_metrics_search(double seconds);

int oms_h_metrics(oms_request *req);

#endif
