/* Handlers of the proposal routes (SPEC §4). */
#ifndef OMS_API_PROPOSALS_H
#define OMS_API_PROPOSALS_H

#include <jansson.h>

#include "http/request.h"

int oms_h_proposal_list(oms_request *req);
int oms_h_proposal_create(oms_request *req);
int oms_h_proposal_get(oms_request *req);
int oms_h_proposal_open(oms_request *req);
int oms_h_proposal_approve(oms_request *req);
int oms_h_proposal_reject(oms_request *req);
int oms_h_proposal_close(oms_request *req);
int oms_h_proposal_merge(oms_request *req);
int oms_h_proposal_request_changes(oms_request *req);
int oms_h_proposal_dismiss(oms_request *req);
int oms_h_proposal_comment_add(oms_request *req);
int oms_h_proposal_comment_list(oms_request *req);
int oms_h_proposal_reviewers_add(oms_request *req);
/* The issue keys a proposal merge inherits (new reference, may be NULL). */
json_t *oms_proposal_inherited_issue_keys(oms_request *req);
const char *oms_proposal_target_branch(oms_request *req);

#endif
