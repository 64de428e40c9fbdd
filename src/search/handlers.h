/* Search routes (SPEC §5, §8): GET /api/v1/search/{branch},
 * POST /api/v1/branches/{branch}/index/rebuild, GET /api/v1/index-jobs/{id}. */
#ifndef OMS_SEARCH_HANDLERS_H
#define OMS_SEARCH_HANDLERS_H

#include "http/request.h"

int oms_h_search(oms_request *req);
int oms_h_index_rebuild(oms_request *req);
int oms_h_index_job_get(oms_request *req);

/* `oms index rebuild --branch B [--wait] [--json]`: the client command
 * (OMS_URL, OMS_TOKEN or OMS_TOKEN_FILE); returns the exit code. */
int oms_index_cli(int argc, char **argv);

#endif
