/* Webhook subscriptions and their deliveries (SPEC §13, webhook:admin). */
#ifndef OMS_API_WEBHOOKS_H
#define OMS_API_WEBHOOKS_H

#include "http/request.h"

int oms_h_webhook_list(oms_request *req);
int oms_h_webhook_create(oms_request *req);
int oms_h_webhook_get(oms_request *req);
int oms_h_webhook_update(oms_request *req);
int oms_h_webhook_delete(oms_request *req);
int oms_h_webhook_deliveries(oms_request *req);
int oms_h_webhook_redeliver(oms_request *req);

#endif
