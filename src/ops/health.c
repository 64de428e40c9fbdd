/* GET /health (liveness) and GET /ready (database reachable, migrations
 * applied, not draining). */
#include "ops/handlers.h"

#include "http/app.h"

int oms_h_health(oms_request *req)
{
    return oms_resp_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

int oms_h_ready(oms_request *req)
{
    if (atomic_load(&req->app->draining))
        return oms_resp_json(req, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", "draining"));
    oms_error err;
    if (oms_store_ready(req->app->store, &err) != OMS_OK)
        return oms_resp_json(req, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", err.msg));
    return oms_resp_json(req, 200, json_pack("{s:s}", "status", "ready"));
}
