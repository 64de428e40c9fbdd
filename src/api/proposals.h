/* Handlers of the proposal routes (SPEC §4). */
#ifndef OMS_API_PROPOSALS_H
#define OMS_API_PROPOSALS_H

#include "http/request.h"

int oms_h_proposal_list(oms_request *req);
int oms_h_proposal_create(oms_request *req);
int oms_h_proposal_get(oms_request *req);
int oms_h_proposal_open(oms_request *req);
int oms_h_proposal_approve(oms_request *req);
int oms_h_proposal_reject(oms_request *req);
int oms_h_proposal_close(oms_request *req);
int oms_h_proposal_merge(oms_request *req);
const char *oms_proposal_target_branch(oms_request *req);

#endif
