/* Storage of events (the `events` outbox, SPEC §13) and of webhook
 * subscriptions and deliveries: the operations src/events/ and
 * src/webhooks/ use. */
#ifndef OMS_STORE_EVENTS_SQL_H
#define OMS_STORE_EVENTS_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* ---- events ---- */

/* Inserts one event in the caller's transaction. */
#define OMS_STORE_EVENT_NPARAMS 5 /* its row as parameters: id, type, branch, time_ms, body */
int oms_store_event_insert(oms_dbconn *c, const char *id, const char *type, const char *branch, int64_t time_ms,
                           const char *body, oms_error *err);
/* Gives positions to committed events that have none yet, in seq order,
 * up to `max` (PostgreSQL: those in `events` without one, then those in
 * the queue, moved; nothing to do on SQLite, where the insert gave it).
 * Runs its own transaction. `*n`: how many were ordered. */
int oms_store_events_order(oms_dbconn *c, int64_t max, int64_t *n, oms_error *err);
/* Gives the next positions to events in `events` that have none, up to
 * `max`, in the caller's transaction (a restore's last step; the
 * sequencer's first). `*n`: how many. */
int oms_store_events_place(oms_dbconn *c, int64_t max, int64_t *n, oms_error *err);
/* Events after position `after`, in order. Columns: pos, id, type, branch,
 * body (OMS_EVENT_COL_*). */
int oms_store_events_page(oms_dbconn *c, int64_t after, int64_t limit, oms_dbres **out, oms_error *err);
enum { OMS_EVENT_COL_POS, OMS_EVENT_COL_ID, OMS_EVENT_COL_TYPE, OMS_EVENT_COL_BRANCH, OMS_EVENT_COL_BODY };
/* The last position given (0: none). */
int oms_store_events_last_pos(oms_dbconn *c, int64_t *out, oms_error *err);
/* One event's body by id (NULL row when gone). Columns: pos, body. */
int oms_store_event_body(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* Undelivered work: events no enabled subscription has read yet, plus
 * deliveries not yet delivered or dead. */
int oms_store_events_depth(oms_dbconn *c, int64_t *out, oms_error *err);
/* Deletes events older than `before_ms` that every enabled subscription
 * has passed and no open delivery needs, and finished deliveries older
 * than it. `*n`: events deleted. */
int oms_store_events_expire(oms_dbconn *c, int64_t before_ms, int64_t *n, oms_error *err);

/* ---- webhook subscriptions ---- */

typedef struct {
    const char *id, *url, *secret, *types, *branches, *description, *created_by;
    int enabled, builtin;
    int64_t now_ms;
} oms_webhook_row;

/* Inserts a subscription that starts after the last event now ordered. */
int oms_store_webhook_insert(oms_dbconn *c, const oms_webhook_row *w, oms_error *err);
/* Updates url (NULL: kept), types, branches, description, enabled of `id`;
 * secret NULL: kept. `*found` false when there is no such row. */
int oms_store_webhook_update(oms_dbconn *c, const oms_webhook_row *w, bool *found, oms_error *err);
int oms_store_webhook_delete(oms_dbconn *c, const char *id, bool *found, oms_error *err);
/* Columns (OMS_WH_COL_*): id, url, types, branches, description, enabled,
 * builtin, cursor_pos, created_at, created_by, updated_at, secret. */
int oms_store_webhook_get(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
int oms_store_webhook_page(oms_dbconn *c, const char *after_id, int64_t limit, oms_dbres **out, oms_error *err);
enum {
    OMS_WH_COL_ID,
    OMS_WH_COL_URL,
    OMS_WH_COL_TYPES,
    OMS_WH_COL_BRANCHES,
    OMS_WH_COL_DESCRIPTION,
    OMS_WH_COL_ENABLED,
    OMS_WH_COL_BUILTIN,
    OMS_WH_COL_CURSOR,
    OMS_WH_COL_CREATED_AT,
    OMS_WH_COL_CREATED_BY,
    OMS_WH_COL_UPDATED_AT,
    OMS_WH_COL_SECRET
};

/* The sender's lease: takes one enabled subscription whose lease has
 * lapsed (PostgreSQL: FOR UPDATE SKIP LOCKED, so two instances never take
 * the same one) until `until_ms`. Same columns as oms_store_webhook_get; no
 * row when none is free. */
int oms_store_webhook_claim(oms_dbconn *c, const char *owner, int64_t now_ms, int64_t until_ms, oms_dbres **out,
                            oms_error *err);
/* Gives the lease back; the subscription is taken again from `next_ms`
 * (when its next delivery is due, or the next look for new events). */
int oms_store_webhook_release(oms_dbconn *c, const char *id, const char *owner, int64_t next_ms, oms_error *err);
/* Drops every lease (SQLite at start: one process owns the file). */
int oms_store_webhook_release_all(oms_dbconn *c, oms_error *err);
int oms_store_webhook_set_cursor(oms_dbconn *c, const char *id, int64_t pos, oms_error *err);

/* ---- deliveries ---- */

int oms_store_delivery_insert(oms_dbconn *c, const char *id, const char *webhook_id, const char *event_id,
                              int64_t event_pos, int64_t now_ms, oms_error *err);
/* The oldest open (pending or retrying) delivery of a subscription.
 * Columns (OMS_DLV_COL_*). */
int oms_store_delivery_next(oms_dbconn *c, const char *webhook_id, oms_dbres **out, oms_error *err);
int oms_store_delivery_get(oms_dbconn *c, const char *webhook_id, const char *id, oms_dbres **out, oms_error *err);
/* Newest first, created before (`before_ms`, `before_id`). */
int oms_store_delivery_page(oms_dbconn *c, const char *webhook_id, const char *status, int64_t limit,
                            int64_t before_ms, const char *before_id, oms_dbres **out, oms_error *err);
enum {
    OMS_DLV_COL_ID,
    OMS_DLV_COL_WEBHOOK,
    OMS_DLV_COL_EVENT_ID,
    OMS_DLV_COL_EVENT_POS,
    OMS_DLV_COL_STATUS,
    OMS_DLV_COL_ATTEMPTS,
    OMS_DLV_COL_NEXT_AT,
    OMS_DLV_COL_LAST_STATUS,
    OMS_DLV_COL_LAST_ERROR,
    OMS_DLV_COL_CREATED_AT,
    OMS_DLV_COL_UPDATED_AT
};
/* Records an attempt: new status, attempts + 1, next attempt time. */
int oms_store_delivery_attempted(oms_dbconn *c, const char *id, const char *status, int64_t next_at,
                                 int http_status, const char *error, int64_t now_ms, oms_error *err);

#endif
