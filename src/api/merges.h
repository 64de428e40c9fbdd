/* Handlers of POST /branches/{b}/merge and POST /branches/{b}/revert. */
#ifndef OMS_API_MERGES_H
#define OMS_API_MERGES_H

#include "http/request.h"

int oms_h_branch_merge(oms_request *req);
int oms_h_branch_revert(oms_request *req);

#endif
