/* Search routes (SPEC §5, §8): GET /api/v1/search/{branch},
 * POST /api/v1/branches/{branch}/index/rebuild, GET /api/v1/index-jobs/{id}. */
#ifndef OMS_API_SEARCH_H
#define OMS_API_SEARCH_H

#include "http/request.h"

int oms_h_search(oms_request *req);
int oms_h_index_rebuild(oms_request *req);
int oms_h_index_job_get(oms_request *req);

#endif
