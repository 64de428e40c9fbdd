/* GET /health and GET /ready (src/api/health.c). */
#ifndef OMS_API_HEALTH_H
#define OMS_API_HEALTH_H

#include "http/request.h"

int oms_h_health(oms_request *req);
int oms_h_ready(oms_request *req);

#endif
