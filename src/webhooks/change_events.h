/* The change transaction's outbox hook (oms_change_set_outbox): turns each
 * committed change into its event, named by the stable type list of
 * docs/events.md. Registered by `oms serve` (src/app/main.c). */
#ifndef OMS_WEBHOOKS_CHANGE_EVENTS_H
#define OMS_WEBHOOKS_CHANGE_EVENTS_H

#include "events/events.h"
#include "txn/change.h"

/* The event type of an audit action (NULL: the change has no event). */
const char *oms_event_type_of(const char *action);

int oms_change_events_outbox(oms_dbconn *c, const oms_ctx *ctx, const char *action, const oms_change_out *out,
                             oms_error *err);
/* The same event rendered, not written (oms_change_set_outbox_render):
 * *none when the change has none; OMS_ENOTIMPL when it needs the database
 * to render. */
int oms_change_events_render(const oms_ctx *ctx, const char *action, const oms_change_out *out, oms_event_row *row,
                             bool *none, oms_error *err);

#endif
