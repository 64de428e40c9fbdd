/* Request conveniences shared by handlers: entity tags, paging, cursors. */
#ifndef OMS_PARAMS_H
#define OMS_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"
#include "store/db.h"

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

/* Rejects (400, queued) a body object with a member outside `allowed`
 * (NULL-terminated): unknown fields never pass silently. */
bool oms_body_fields_ok(oms_request *r, const json_t *body, const char *const *allowed);

/* A page of a list: {"items": [row(r, i) for the first `limit` rows],
 * "next_cursor": ...}. The query fetched limit + 1 rows; when it got them
 * all, the cursor encodes column `cursor_col` of the last row shown. */
typedef json_t *(*oms_row_fn)(const oms_dbres *res, size_t i, void *ctx);
/* `extra` (stolen, may be NULL) adds members to the page object. */
int oms_resp_page(oms_request *r, const oms_dbres *res, size_t limit, size_t cursor_col, oms_row_fn row, void *ctx,
                  json_t *extra);

#endif
