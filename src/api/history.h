/* Handlers of the history, commit, diff and issue-link routes. */
#ifndef OMS_API_HISTORY_H
#define OMS_API_HISTORY_H

#include "http/request.h"

int oms_h_branch_history(oms_request *req);
int oms_h_commit_get(oms_request *req);
int oms_h_diff(oms_request *req);
int oms_h_issue_commits(oms_request *req);

#endif
