/* Security monitoring over the stream of answers (SPEC §10; docs/security.md
 * "Security monitoring"): burst rules with sliding-window counters, and the
 * writer that stores their alerts off the request path.
 *
 * Burst rules: `auth_failure_burst` (COUNT 401s from one client address
 * within SECONDS, OMS_ALERT_AUTH_FAILURES) and `denial_burst` (COUNT 403s
 * of one principal, OMS_ALERT_DENIALS). A key raises one alert per window.
 * The other rules raise their alert where the event happens, in its own
 * transaction (override_used, forced_lock_release, acl_change,
 * rate_limit_storm) or with oms_monitor_raise_now
 * (audit_verification_failed). */
#ifndef OMS_MONITOR_H
#define OMS_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "infra/config.h"
#include "store/store.h"

/* ---- the window counters (no globals: the unit test drives them) ---- */

/* A fixed table of keys (a string of at most OMS_MON_KEY_MAX - 1 bytes; a
 * longer one is cut), each with a sliding-window count of its events:
 * sharded, each shard under its own mutex, memory fixed at creation. When
 * a key's bucket is full, the key seen longest ago is evicted. */
#define OMS_MON_KEY_MAX 160
typedef struct oms_mon_table oms_mon_table;

/* `capacity` keys (rounded up to whole 8-way buckets); an alert when
 * `threshold` events fall within `window_ms`. */
oms_mon_table *oms_mon_table_new(size_t capacity, int64_t threshold, int64_t window_ms);
void oms_mon_table_free(oms_mon_table *t);

/* Counts one event of `key` at `now_ms` (a monotonic clock). True when it
 * brings the key's count within the window to the threshold and the key
 * raised no alert within the last window: the caller raises one. *count:
 * the count (the weighted sum of this window and the previous one). */
bool oms_mon_table_hit(oms_mon_table *t, const char *key, int64_t now_ms, int64_t *count);
/* Keys evicted to make room for others. */
uint64_t oms_mon_table_evictions(const oms_mon_table *t);

/* ---- the server's rules ---- */

/* Reads OMS_ALERT_AUTH_FAILURES and OMS_ALERT_DENIALS (a bad value:
 * OMS_ECONFIG, the server refuses to start) and builds the tables. */
int oms_monitor_configure(const oms_config *cfg, oms_error *err);

/* One answer, when it was sent: `addr_key` names the client address
 * ("address:192.0.2.7"), `principal` the authenticated subject or NULL.
 * Counts only; an alert is queued for oms_monitor_task (never written here:
 * the request is not slowed, and cannot fail, because of it). */
void oms_monitor_answer(int status, const char *addr_key, const char *client_addr, const char *principal);

/* The background task: stores the queued alerts, each with its
 * `alert.raised` audit event in a transaction of its own. A database error
 * is logged, never propagated. */
void oms_monitor_task(oms_store *s);

/* An alert raised now, in a transaction of its own with its `alert.raised`
 * audit event (`ctx` may be NULL). `detail` is borrowed. A failure is
 * logged and returned; callers do not fail their request because of it. */
int oms_monitor_raise_now(oms_store *s, const oms_ctx *ctx, const char *rule, const char *severity,
                          const json_t *detail);

#endif
