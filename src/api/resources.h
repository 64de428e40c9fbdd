/* Handlers of the schema routes: resources per kind, batch, validate, export. */
#ifndef OMS_API_RESOURCES_H
#define OMS_API_RESOURCES_H

#include "http/request.h"

int oms_h_schema_export(oms_request *req);
int oms_h_resource_list(oms_request *req);
int oms_h_resource_create(oms_request *req);
int oms_h_resource_get(oms_request *req);
int oms_h_resource_replace(oms_request *req);
int oms_h_resource_delete(oms_request *req);
int oms_h_schema_changes(oms_request *req);
int oms_h_schema_validate(oms_request *req);

#endif
