/* Webhook subscriptions (SPEC §13, docs/events.md): {url, secret, types,
 * branches}. The secret is made here and shown once, in the answer to the
 * creation; it is stored so the sender can sign (and is in backups). A
 * subscription is created, changed and deleted in a change transaction
 * (audited, with its own event). */
#ifndef OMS_WEBHOOKS_H
#define OMS_WEBHOOKS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
#include "store/db.h"

/* The built-in subscription to alert.* that OMS_ALERT_WEBHOOK_URL makes. */
#define OMS_WEBHOOK_BUILTIN_ALERTS "wh_builtin_alerts"

typedef struct {
    const char *url;
    const json_t *types;    /* array of type globs ("commit.*"); NULL: ["*"] */
    const json_t *branches; /* array of branch globs; NULL or []: every event */
    const char *description;
    bool enabled;
} oms_webhook_input;

/* Outbound URLs: http or https, a host, no user or password in it, no
 * fragment, at most 2048 bytes. OMS_EINVAL with the reason otherwise. */
int oms_webhook_check_url(const char *url, oms_error *err);
/* Checks the input (url, globs) and, on success, fills the JSON texts of
 * its types and branches (caller frees). */
int oms_webhook_check_input(const oms_webhook_input *in, char **types, char **branches, oms_error *err);

/* The subscription as shown (never its secret). */
json_t *oms_webhook_json(const oms_dbres *r, size_t i);
json_t *oms_delivery_json(const oms_dbres *r, size_t i);

/* *out: the subscription with its secret, shown this once. */
int oms_webhook_create(oms_ctx *ctx, const oms_webhook_input *in, json_t **out, oms_error *err);
int oms_webhook_update(oms_ctx *ctx, const char *id, const oms_webhook_input *in, json_t **out, oms_error *err);
int oms_webhook_delete(oms_ctx *ctx, const char *id, oms_error *err);
int oms_webhook_get(oms_ctx *ctx, const char *id, json_t **out, oms_error *err);
/* Queues the event of delivery `delivery_id` again for subscription `id`
 * (a new delivery, sent in order with the others). */
int oms_webhook_redeliver(oms_ctx *ctx, const char *id, const char *delivery_id, json_t **out, oms_error *err);

/* Makes the built-in alert subscription match the configuration: created
 * or updated when `url` is set, disabled when it is not. */
int oms_webhook_sync_builtin(oms_dbconn *c, const char *url, const char *secret, oms_error *err);

/* A new random id with `prefix` ("wh_", "dlv_"). */
void oms_webhook_new_id(char out[48], const char *prefix);

#endif
