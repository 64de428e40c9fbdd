/* Prometheus metrics: lock-free counters every layer updates, rendered on
 * GET /metrics (src/api/metrics.c) in the text exposition format 0.0.4. Per
 * instance (SPEC §11); the list is in docs/operations.md, "Metrics". */
#ifndef OMS_METRICS_H
#define OMS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

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

/* Called once per finished request (access-log time): `route_slot` is the
 * matched route's index in the route table, -1 when no route matched (the
 * request then counts by `method`); `status` 0 when no answer was sent. */
void oms_metrics_request(long route_slot, const char *method, int status, double seconds, double handler_cpu_seconds);
void oms_metrics_auth_failure(oms_authfail reason);
void oms_metrics_denial(void);
/* A request answered on the event loop (http/pipeline.h oms_pipeline_try_inline). */
void oms_metrics_inline_answer(void);
/* One durable audit write outside a change transaction and its latency. */
void oms_metrics_audit_write(double seconds, int ok);
/* The write phase of a commit (after validation and the lock check) ended
 * with `rc`: OMS_OK, a conflict (the head moved: OMS_EPRECOND or
 * OMS_ECONFLICT) or another error. */
void oms_metrics_commit(oms_commit_kind kind, int rc);
void oms_metrics_lock_wait(oms_lockwait what);
/* Snapshot cache lookups by the path that asked (src/vcs/snapshot_cache.c):
 * `commit` the write path reading its branch's head, `read` a read of a
 * branch's head, `commit_id` a snapshot of a named commit. A miss loads the
 * snapshot from the database. */
typedef enum { OMS_SNAP_COMMIT, OMS_SNAP_READ, OMS_SNAP_COMMIT_ID, OMS_SNAP__COUNT } oms_snap_path;
void oms_metrics_snapshot_lookup(oms_snap_path path, int hit);
/* The bytes the snapshot cache holds (a gauge). */
void oms_metrics_snapshot_cache_bytes(size_t bytes);
/* Its bound in bytes (OMS_SNAPSHOT_CACHE_MB, set at start). */
void oms_metrics_snapshot_cache_limit(size_t bytes);
/* The bytes of diff text the diff cache holds (a gauge). */
void oms_metrics_diff_cache_bytes(size_t bytes);
/* A group commit's transaction ran `changes` changes, `carried` of them on
 * what the write before them read, `locks` of them lock changes
 * (txn/group_commit.c). */
void oms_metrics_group_commit(unsigned changes, unsigned carried, unsigned locks);
/* A group transaction whose statements sent ahead failed, run again. */
void oms_metrics_group_commit_rerun(void);
/* A group transaction passed its branch's queue on before its COMMIT. */
void oms_metrics_group_commit_handoff(void);
/* Writes taken into a group transaction after it began (they queued while
 * it ran). */
void oms_metrics_group_commit_joined(unsigned writes);
/* Writes entering (+1) or leaving (-n) a group's queue. */
void oms_metrics_group_commit_queued(int delta);
/* A batch's content connection (store/db.h): its rows committed beside
 * the batch, or lost with it (the batch then ran again without it). */
void oms_metrics_group_commit_content(bool lost);
/* A change offered in one statement (txn/change.c): `made` when the
 * statement made it, else it ran the usual way. */
void oms_metrics_one_shot(bool made);
/* SQLite: the write-ahead log reset by the wal-reset task (store/db.c). */
void oms_metrics_wal_reset(void);
/* SQLite: a checkpoint of the write-ahead log, by the background thread or
 * by a committer (store/sqlite_checkpointer.c). */
void oms_metrics_sqlite_checkpoint(bool background);
/* PostgreSQL: a round of the event sequencer (webhooks/sender.c) that gave
 * `positioned` events (at least one) their positions in one transaction. */
void oms_metrics_event_sequencer_batch(uint64_t positioned);
/* A request refused with 429, by rate-limit class (0 read, 1 write,
 * 2 auth_failure: oms_rl_class of src/http/ratelimit.h). */
#define OMS_METRICS_RL_CLASSES 3
void oms_metrics_ratelimited(int cls);
/* A security alert stored (SPEC §10), by rule: the known rules have their
 * own series, any other counts under rule="other" (a bounded label set). */
void oms_metrics_alert(const char *rule);
/* Database connections: `opened` (+1 connect, -1 close) and `in_use` (+1
 * when a connection starts a transaction or a statement outside one, -1
 * when it ends) are deltas. Per-thread shards: no shared cache line. */
void oms_metrics_db_conn(int opened, int in_use);

/* One search answered (GET /api/v1/search/{branch}) and its latency. */
void oms_metrics_search(double seconds);

/* ---- rendering (the text exposition format) ---- */

/* The exposition text is built in the one growable buffer (util/buf.h);
 * running out of memory aborts under the one policy (docs/memory.md). */
typedef oms_buf oms_mtext;

void oms_mtext_emit(oms_mtext *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A label value: backslash, double quote and line feed escaped. */
void oms_mtext_value(oms_mtext *b, const char *s);
/* The # HELP and # TYPE lines of a family. */
void oms_mtext_family(oms_mtext *b, const char *name, const char *type, const char *help);

/* The labels of route slot i (the route table's entry i). */
typedef struct {
    const char *method, *pattern;
} oms_metrics_route;

/* The families of the counters above, one function per group in the order
 * /metrics shows them. */
void oms_metrics_text_requests(oms_mtext *b, const oms_metrics_route *routes, size_t nroutes);
void oms_metrics_text_auth_audit(oms_mtext *b);
void oms_metrics_text_commits(oms_mtext *b);
void oms_metrics_text_lock_waits(oms_mtext *b);
void oms_metrics_text_search(oms_mtext *b);
void oms_metrics_text_pool(oms_mtext *b);
void oms_metrics_text_ratelimited(oms_mtext *b, const char *const class_names[OMS_METRICS_RL_CLASSES]);
void oms_metrics_text_alerts(oms_mtext *b);

#endif
