#include "api/common.h"

#include "governance/issue_refs.h"

static void decref_cb(void *p) { json_decref(p); }

json_t *oms_api_keep(oms_request *req, json_t *j)
{
    if (j && oms_arena_on_cleanup(req->arena, decref_cb, j)) {
        json_decref(j); /* no room to keep it: the caller sees none */
        return NULL;
    }
    return j;
}

json_t *oms_api_issue_keys(oms_request *req, const json_t *body, const char *message)
{
    oms_ctx *ctx = oms_req_ctx(req);
    if (!ctx->issue_keys)
        ctx->issue_keys = oms_api_keep(req, oms_issue_refs_collect(req, body, message, NULL));
    return ctx->issue_keys;
}
