/* Handlers of the branch, history, commit and diff routes. */
#ifndef OMS_VCS_HANDLERS_H
#define OMS_VCS_HANDLERS_H

#include "http/request.h"

int oms_h_branch_list(oms_request *req);
int oms_h_branch_create(oms_request *req);
int oms_h_branch_get(oms_request *req);
int oms_h_branch_delete(oms_request *req);
int oms_h_branch_history(oms_request *req);
int oms_h_commit_get(oms_request *req);
int oms_h_diff(oms_request *req);
int oms_h_issue_commits(oms_request *req);
int oms_h_branch_merge(oms_request *req);
int oms_h_branch_revert(oms_request *req);
int oms_h_branch_settings(oms_request *req);

#endif
