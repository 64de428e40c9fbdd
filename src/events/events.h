/* Events (SPEC §13, docs/events.md): every change the service makes writes
 * one CloudEvents 1.0 envelope to the outbox (the `events` table) in the
 * change's own transaction, so a rolled-back change has no event and a
 * committed one always has it. Delivery (src/webhooks/) and the pull feed
 * (GET /api/v1/events) read the outbox. */
#ifndef OMS_EVENTS_H
#define OMS_EVENTS_H

#include <jansson.h>

#include "store/db.h"

/* The CloudEvents `source` of every event. */
#define OMS_EVENT_SOURCE "/oms"

/* Writes one event in the caller's transaction. `type`: a name of the
 * stable list (docs/events.md); `subject`: what it is about (a branch, a
 * resource KIND/API_NAME, a lock id; NULL: none); `branch`: the branch it
 * belongs to for subscription filters and read access (NULL: none);
 * `data`: the event data object (stolen; NULL: {}). */
int oms_event_emit(oms_dbconn *c, const char *type, const char *subject, const char *branch, json_t *data,
                   oms_error *err);

#endif
