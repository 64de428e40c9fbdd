/* The webhook sender (SPEC §13, docs/events.md "Delivery"): worker threads
 * of a serving instance, off the request path. Each worker takes one
 * subscription at a time under a lease in the database (PostgreSQL: FOR
 * UPDATE SKIP LOCKED, so instances never send for the same subscription at
 * once), sends its next event, and gives it back. A subscription's events
 * go out in order: the next is not sent before the previous one is
 * delivered or dead. A receiver that hangs holds one worker for at most
 * the timeout; the others carry on with the other subscriptions. */
#ifndef OMS_WEBHOOKS_SENDER_H
#define OMS_WEBHOOKS_SENDER_H

#include "core/context.h"
#include "infra/metrics.h"

struct oms_store;
struct oms_config;

/* Syncs the built-in alert subscription, then starts the workers. */
int oms_webhook_sender_start(struct oms_store *store, const struct oms_config *cfg, oms_error *err);
void oms_webhook_sender_stop(void);

/* The Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of
 * "<id>.<timestamp>.<body>" with `secret` (whsec_<base64>: its decoded
 * bytes; any other text: its bytes). `out` holds at least 64 bytes. */
void oms_webhook_sign(char *out, const char *secret, const char *id, long long ts, const char *body, size_t len);

/* Retention (a background task): drops delivered events older than
 * OMS_EVENTS_RETENTION_HOURS. */
void oms_events_retention_task(struct oms_store *store, const struct oms_config *cfg);

/* /metrics: the outbox depth (all instances) and this instance's delivery
 * outcomes. */
void oms_webhook_metrics_text(oms_ctx *ctx, oms_mtext *b);

#endif
