/* Handlers of the emergency override routes (SPEC §6.4). */
#ifndef OMS_API_OVERRIDES_H
#define OMS_API_OVERRIDES_H

#include "http/request.h"

int oms_h_override_list(oms_request *req);
int oms_h_override_create(oms_request *req);
int oms_h_override_get(oms_request *req);
int oms_h_override_approve(oms_request *req);
int oms_h_override_reject(oms_request *req);
int oms_h_override_cancel(oms_request *req);

#endif
