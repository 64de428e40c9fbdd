#include "search/search.h"

#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "search/index.h"
#include "store/store.h"

/* Every search is recorded in the audit log (who searched which branch for
 * what; the query text cut to 256 bytes). Searches are reads, not among the
 * actions SPEC §9 makes durable before the answer, and they must stay
 * fast: the event is queued for the audit writer's next batch without
 * waiting for it (docs/search.md "Audit"). */
static void record_search(oms_ctx *ctx, const char *branch, const char *q, const char *kinds, size_t shown,
                          int64_t total, int64_t gen)
{
    json_t *d = json_pack("{s:s%,s:s,s:I,s:I,s:I}", "q", q, strlen(q) > 256 ? (size_t)256 : strlen(q), "kinds",
                          kinds, "results", (json_int_t)shown, "total", (json_int_t)total, "generation",
                          (json_int_t)gen);
    char *dt = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    oms_audit_event ev = {.action = "search.query", .outcome = "success", .http_status = 200,
                          .resource_kind = "search", .resource_branch = branch, .detail = dt};
    oms_audit_from_ctx(&ev, ctx);
    oms_audit_record_later(ctx->store, &ev);
    free(dt);
    ctx->audited = true;
}

int oms_search_branch(oms_ctx *ctx, const char *branch, const char *text, const oms_search_request *rq,
                      oms_search_answer *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    oms_dbconn *c;
    int rc = oms_db_conn(ctx->store->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_search_active(c, branch, &out->generation, out->commit, err);
    /* a branch indexed by no generation yet (created before search
     * existed): its first search builds one from the head */
    if (rc == OMS_OK && out->generation == 0 && (rc = oms_search_bootstrap(c, branch, &out->generation, err)) == OMS_OK)
        rc = oms_search_active(c, branch, &out->generation, out->commit, err);
    if (rc == OMS_OK)
        rc = oms_search_run(c, out->generation, rq, &out->res, err);
    if (rc) {
        if (rc == OMS_EDB)
            oms_db_conn_reset(ctx->store->db);
        return rc;
    }
    record_search(ctx, branch, text, rq->kinds, json_array_size(out->res.items), out->res.total, out->generation);
    return OMS_OK;
}
