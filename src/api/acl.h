/* HTTP handlers of /api/v1/acl/policies (SPEC §5, §6.2): src/api/acl.c. */
#ifndef OMS_API_ACL_H
#define OMS_API_ACL_H

#include "http/request.h"

int oms_h_acl_list(oms_request *req);
int oms_h_acl_create(oms_request *req);
int oms_h_acl_get(oms_request *req);
int oms_h_acl_replace(oms_request *req);
int oms_h_acl_delete(oms_request *req);

#endif
