/* Request conveniences shared by handlers: entity tags, paging, cursors. */
#ifndef OMS_PARAMS_H
#define OMS_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

/* The tag of an If-Match / If-None-Match header without quotes or W/, or
 * NULL when absent. "*" is returned as is. */
const char *oms_req_etag(oms_request *r, const char *header);
/* Sets ETag: "tag". */
void oms_resp_etag(oms_request *r, const char *tag);
/* True (and a 304 response queued) when If-None-Match matches `tag`. */
bool oms_not_modified(oms_request *r, const char *tag);

/* `limit` (default 100, 1..1000) and `cursor` (opaque base64url of a
 * position string). Refuses malformed values with a 400 already queued. */
bool oms_paging(oms_request *r, size_t *limit, const char **cursor);
char *oms_cursor_encode(oms_request *r, const char *position);

#endif
