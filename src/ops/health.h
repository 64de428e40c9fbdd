/* The readiness prober behind GET /ready (src/ops/health.c). */
#ifndef OMS_OPS_HEALTH_H
#define OMS_OPS_HEALTH_H

typedef struct oms_app oms_app;

/* Starts / stops the thread that runs readiness checks (with
 * oms_background_start / _stop). Without it, /ready checks inline. */
void oms_health_start(oms_app *app);
void oms_health_stop(void);

#endif
