/* Handler of GET /api/v1/alerts (SPEC §10). */
#ifndef OMS_API_ALERTS_H
#define OMS_API_ALERTS_H

#include "http/request.h"

int oms_h_alert_list(oms_request *req);

#endif
