/* Small helpers the handlers of src/api share. */
#ifndef OMS_API_COMMON_H
#define OMS_API_COMMON_H

#include <jansson.h>

#include "http/request.h"

/* Sets the change's issue references (ctx->issue_keys) from the request's
 * headers, `body` (may be NULL) and commit `message` (may be NULL), unless
 * the pipeline set them already; owned by the request's arena. Returns
 * them (borrowed). */
json_t *oms_api_issue_keys(oms_request *req, const json_t *body, const char *message);

/* Hands `j` (may be NULL) to the request's arena; returns it. */
json_t *oms_api_keep(oms_request *req, json_t *j);

#endif
