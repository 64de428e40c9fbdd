/* The readiness check behind GET /ready (src/ops/health.c). */
#ifndef OMS_OPS_HEALTH_H
#define OMS_OPS_HEALTH_H

#include <stddef.h>

#include "core/context.h"
#include "infra/config.h"
#include "store/store.h"

/* Starts / stops the thread that runs readiness checks (the server starts
 * it with the background tasks). Without it, checks run inline. */
void oms_health_start(oms_store *store, const oms_config *cfg);
void oms_health_stop(void);

/* The verdict within OMS_READY_TIMEOUT_MS: OMS_OK, or a failure with
 * `reason` (text for the client). */
int oms_health_check(oms_ctx *ctx, char *reason, size_t cap);

#endif
