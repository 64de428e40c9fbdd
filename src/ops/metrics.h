/* Prometheus metrics: lock-free counters updated on the request path and
 * rendered on GET /metrics. Per instance (SPEC §11). */
#ifndef OMS_METRICS_H
#define OMS_METRICS_H

#include <stdint.h>

#include "http/request.h"

typedef enum { OMS_AUTHFAIL_MISSING, OMS_AUTHFAIL_INVALID, OMS_AUTHFAIL_EXPIRED, OMS_AUTHFAIL__COUNT } oms_authfail;

/* Called once per finished request (access-log time). */
void oms_metrics_request(const oms_request *req, double seconds);
void oms_metrics_auth_failure(oms_authfail reason);
void oms_metrics_denial(void);
void oms_metrics_audit_write(double seconds, int ok);

int oms_h_metrics(oms_request *req);

#endif
