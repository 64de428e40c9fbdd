/* Every route OMS serves, with the permission it needs (SPEC §5). Adding a
 * route is adding a line here; the table is checked at start-up and by
 * tests/unit/test_routes.c. */
#include "auth/handlers.h"
#include "http/routes.h"
#include "ops/handlers.h"
#include "ops/metrics.h"

const oms_route oms_app_routes[] = {
    /* method, pattern, handler, permission, audit action, change */
    {"GET", "/health", oms_h_health, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/ready", oms_h_ready, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/metrics", oms_h_metrics, OMS_PERM_METRICS_READ, NULL, false},
    {"GET", "/api/v1/me", oms_h_me, OMS_PERM_AUTHENTICATED, NULL, false},
};
const size_t oms_app_routes_count = sizeof oms_app_routes / sizeof oms_app_routes[0];
