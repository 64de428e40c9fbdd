/* Handlers of the branch routes: list, create, get, delete, settings. */
#ifndef OMS_API_BRANCHES_H
#define OMS_API_BRANCHES_H

#include "http/request.h"

int oms_h_branch_list(oms_request *req);
int oms_h_branch_create(oms_request *req);
int oms_h_branch_get(oms_request *req);
int oms_h_branch_delete(oms_request *req);
int oms_h_branch_settings(oms_request *req);

#endif
