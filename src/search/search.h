/* A search of a branch (SPEC §8): the active generation (built from the
 * head on first use), the query, and its audit record. The handler is
 * src/api/search.c. */
#ifndef OMS_SEARCH_SEARCH_H
#define OMS_SEARCH_SEARCH_H

#include <stdint.h>

#include "core/context.h"
#include "search/query.h"

typedef struct {
    oms_search_result res; /* items, next cursor (a sort key), total */
    int64_t generation;
    char commit[65];       /* the commit the generation indexes */
} oms_search_answer;

/* Searches `branch` for `rq` (`text` is the query as sent, for the audit
 * record: who searched which branch for what, cut to 256 bytes). The
 * event is queued for the audit writer (searches are reads, not made
 * durable before the answer: docs/search.md "Audit"); ctx->audited is set.
 * The caller clears out->res. */
int oms_search_branch(oms_ctx *ctx, const char *branch, const char *text, const oms_search_request *rq,
                      oms_search_answer *out, oms_error *err);

#endif
