/* Handlers of the operational routes. */
#ifndef OMS_OPS_HANDLERS_H
#define OMS_OPS_HANDLERS_H

#include "http/request.h"

int oms_h_health(oms_request *req);
int oms_h_ready(oms_request *req);

#endif
