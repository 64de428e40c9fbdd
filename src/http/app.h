/* The running service: configuration, store, token verifier, route table. */
#ifndef OMS_APP_H
#define OMS_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "auth/jwt.h"
#include "http/routes.h"
#include "infra/config.h"
#include "store/store.h"

struct oms_app {
    oms_config *cfg;
    oms_store *store;
    oms_jwt_verifier *jwt;
    oms_route_table *routes;
    /* The query parameters a route declares (space-separated names, "" for
     * none), from the OpenAPI metadata (src/api/openapi_routes.c); every
     * other parameter is refused (400) by the pipeline. NULL: no check. */
    const char *(*route_query)(const char *method, const char *pattern);
    atomic_bool draining;
    atomic_long inflight;
};

/* Runs `oms serve` until SIGTERM/SIGINT, then drains. */
int oms_server_run(oms_app *app, oms_error *err);

/* The same in pieces, for in-process tests. */
typedef struct oms_server oms_server;
int oms_server_start(oms_app *app, oms_server **out, oms_error *err);
unsigned oms_server_port(const oms_server *srv);
/* Drains and stops; false when a request was still running at the end
 * (nothing was freed then: exit the process). */
bool oms_server_stop(oms_server *srv);

#endif
