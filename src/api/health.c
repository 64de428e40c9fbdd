/* GET /health (liveness) and GET /ready (readiness: not draining, and the
 * database check of src/ops/health.c). */
#include "api/health.h"

#include <stdatomic.h>

#include "http/app.h"
#include "ops/health.h"

int oms_h_health(oms_request *req)
{
    return oms_resp_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

int oms_h_ready(oms_request *req)
{
    if (atomic_load(&req->app->draining))
        return oms_resp_json(req, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", "draining"));
    char reason[256];
    if (oms_health_check(oms_req_ctx(req), reason, sizeof reason) != OMS_OK)
        return oms_resp_json(req, 503, json_pack("{s:s,s:s}", "status", "unavailable", "reason", reason));
    return oms_resp_json(req, 200, json_pack("{s:s}", "status", "ready"));
}
