/* GET /metrics (src/api/metrics.c). */
#ifndef OMS_API_METRICS_H
#define OMS_API_METRICS_H

#include "http/request.h"

int oms_h_metrics(oms_request *req);

#endif
