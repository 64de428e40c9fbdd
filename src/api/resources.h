/* Handlers of the schema routes: resources per kind, batch, validate, export. */
#ifndef OMS_API_RESOURCES_H
#define OMS_API_RESOURCES_H

#include <stdbool.h>

#include "http/request.h"

int oms_h_schema_export(oms_request *req);
int oms_h_resource_list(oms_request *req);
int oms_h_resource_create(oms_request *req);
int oms_h_resource_get(oms_request *req);
/* The same read answered on the event loop when the branch head's state
 * is in the snapshot cache (http/routes.h answer_inline). */
bool oms_h_resource_get_inline(oms_request *req, bool (*admit)(oms_request *req));
int oms_h_resource_replace(oms_request *req);
int oms_h_resource_delete(oms_request *req);
int oms_h_schema_changes(oms_request *req);
int oms_h_schema_validate(oms_request *req);

#endif
