/* Events (SPEC §13, docs/events.md): every change the service makes writes
 * one CloudEvents 1.0 envelope to the outbox (the `events` table) in the
 * change's own transaction, so a rolled-back change has no event and a
 * committed one always has it. Delivery (src/webhooks/) and the pull feed
 * (GET /api/v1/events) read the outbox. */
#ifndef OMS_EVENTS_H
#define OMS_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "store/db.h"
#include "store/events_sql.h"

/* The CloudEvents `source` of every event. */
#define OMS_EVENT_SOURCE "/oms"

/* Writes one event in the caller's transaction. `type`: a name of the
 * stable list (docs/events.md); `subject`: what it is about (a branch, a
 * resource KIND/API_NAME, a lock id; NULL: none); `branch`: the branch it
 * belongs to for subscription filters and read access (NULL: none);
 * `data`: the event data object (stolen; NULL: {}). */
int oms_event_emit(oms_dbconn *c, const char *type, const char *subject, const char *branch, json_t *data,
                   oms_error *err);

/* The row oms_event_emit inserts, for a change that writes its event
 * within its own statement (one round trip, txn/change.c). */
typedef struct {
    char id[40];
    const char *type, *branch; /* as given to oms_event_render */
    int64_t time_ms;
    char *body; /* the envelope's JSON text (malloc'd: oms_event_row_free) */
} oms_event_row;
/* Builds the row of oms_event_emit's arguments without writing it. */
int oms_event_render(const char *type, const char *subject, const char *branch, json_t *data, oms_event_row *row,
                     oms_error *err);
/* The row as statement parameters: id, type, branch, time_ms, body
 * (pointing into `row`). */
#define OMS_EVENT_ROW_NPARAMS OMS_STORE_EVENT_NPARAMS
void oms_event_row_params(const oms_event_row *row, oms_dbparam *p);
void oms_event_row_free(oms_event_row *row);

#endif
