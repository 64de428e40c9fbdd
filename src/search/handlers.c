#include "search/handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "http/app.h"
#include "http/params.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "search/index.h"
#include "search/query.h"
#include "search/rebuild.h"
#include "util/time.h"

/* Unknown query parameters are refused (SPEC §5), as unknown body fields
 * are; so is a parameter given twice (which one would count?). `?at=` is
 * named: time travel (tags, reads as of a commit) is not available yet,
 * and answering from the head instead would be a silent lie. */
static bool query_params_ok(oms_request *req, const char *const *allowed, bool reads_content)
{
    const char *p = req->raw_query;
    char seen[16][16];
    size_t nseen = 0;
    while (p && *p) {
        size_t len = strcspn(p, "&");
        size_t klen = strcspn(p, "=&");
        char key[16];
        bool known = false;
        if (klen && klen < sizeof key) {
            memcpy(key, p, klen);
            key[klen] = '\0';
            for (size_t i = 0; allowed[i] && !known; i++)
                known = strcmp(key, allowed[i]) == 0;
        }
        if (reads_content && klen == 2 && strncmp(p, "at", 2) == 0) {
            oms_resp_problem_as(req, OMS_EINVAL, "time_travel_unavailable",
                                "time travel is not available yet: ?at= (a commit or a tag) cannot be answered, and"
                                " this service never answers from the head instead; search the branch without at",
                                json_pack("{s:s}", "parameter", "at"));
            return false;
        }
        if (!known && klen) {
            oms_resp_problem(req, OMS_EINVAL,
                             oms_arena_printf(req->arena, "unknown query parameter %.*s", (int)(klen > 64 ? 64 : klen),
                                              p),
                             json_pack("{s:s%}", "parameter", p, klen > 64 ? (size_t)64 : klen));
            return false;
        }
        if (known) {
            for (size_t i = 0; i < nseen; i++)
                if (strcmp(seen[i], key) == 0) {
                    oms_resp_problem(req, OMS_EINVAL,
                                     oms_arena_printf(req->arena, "query parameter %s is given more than once", key),
                                     NULL);
                    return false;
                }
            if (nseen < 16)
                snprintf(seen[nseen++], sizeof seen[0], "%s", key);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return true;
}

static const char *const k_search_params[] = {"q", "kinds", "limit", "cursor", NULL};

/* kinds=object-types,link-types -> ",object-types,link-types," (unknown
 * kinds refused); NULL with a 400 queued. */
static const char *parse_kinds(oms_request *req)
{
    const char *k = oms_req_query(req, "kinds");
    if (!k)
        return "";
    char *copy = oms_arena_strdup(req->arena, k), *out = oms_arena_strdup(req->arena, ",");
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        oms_kind kind;
        if (oms_kind_parse(&kind, t)) {
            oms_resp_problem(req, OMS_EINVAL,
                             "kinds must be a comma-separated list of object-types, link-types, action-types,"
                             " function-types, interfaces, shared-properties",
                             NULL);
            return NULL;
        }
        out = oms_arena_printf(req->arena, "%s%s,", out, t);
    }
    if (strcmp(out, ",") == 0) {
        oms_resp_problem(req, OMS_EINVAL, "kinds must name at least one kind", NULL);
        return NULL;
    }
    return out;
}

static void query_free_cb(void *p) { oms_search_query_free(p); }

/* Every search is recorded in the audit log (who searched which branch for
 * what; the query text cut to 256 bytes). Searches are reads, not among the
 * actions SPEC §9 makes durable before the answer, and they must stay
 * fast: the event is queued for the audit writer's next batch without
 * waiting for it (docs/search.md "Audit"). */
static void record_search(oms_request *req, const char *branch, const char *q, const char *kinds, size_t shown,
                          int64_t total, int64_t gen)
{
    json_t *d = json_pack("{s:s%,s:s,s:I,s:I,s:I}", "q", q, strlen(q) > 256 ? (size_t)256 : strlen(q), "kinds",
                          kinds, "results", (json_int_t)shown, "total", (json_int_t)total, "generation",
                          (json_int_t)gen);
    char *dt = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    oms_audit_event ev = {.action = "search.query", .outcome = "success", .http_status = 200,
                          .resource_kind = "search", .resource_branch = branch, .detail = dt};
    oms_audit_from_ctx(&ev, oms_req_ctx(req));
    oms_audit_record_later(req->app->store, &ev);
    free(dt);
    req->ctx.audited = true;
}

int oms_h_search(oms_request *req)
{
    int64_t t0 = oms_mono_ns();
    const char *branch = req->params[0];
    if (!query_params_ok(req, k_search_params, true))
        return OMS_OK;
    const char *q = oms_req_query(req, "q");
    if (!q || !*q)
        return oms_resp_problem(req, OMS_EINVAL, "q is required: the words to search for", NULL);
    if (strlen(q) > OMS_SEARCH_MAX_QUERY)
        return oms_resp_problem(req, OMS_EINVAL, "q must be at most 256 bytes", NULL);
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *kinds = parse_kinds(req);
    if (!kinds)
        return OMS_OK;
    oms_search_query *query = oms_arena_alloc(req->arena, sizeof *query);
    size_t nterms = oms_search_query_parse(query, q);
    oms_arena_on_cleanup(req->arena, query_free_cb, query);
    if (nterms == 0)
        return oms_resp_problem(req, OMS_EINVAL, "q must contain a letter or a digit", NULL);

    oms_error err;
    oms_dbconn *c;
    int64_t gen = 0;
    char commit[65];
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_search_active(c, branch, &gen, commit, &err);
    /* a branch indexed by no generation yet (created before search
     * existed): its first search builds one from the head */
    if (rc == OMS_OK && gen == 0 && (rc = oms_search_bootstrap(c, branch, &gen, &err)) == OMS_OK)
        rc = oms_search_active(c, branch, &gen, commit, &err);
    oms_search_request rq = {.q = query, .kinds = kinds, .limit = limit, .after = cursor};
    oms_search_result res = {0};
    if (rc == OMS_OK)
        rc = oms_search_run(c, gen, &rq, &res, &err);
    if (rc) {
        if (rc == OMS_EDB)
            oms_db_conn_reset(req->app->store->db);
        return oms_resp_problem(req, (oms_err)rc, err.msg, NULL);
    }
    record_search(req, branch, q, kinds, json_array_size(res.items), res.total, gen);
    json_t *terms = json_array();
    for (size_t i = 0; i < query->nterms; i++)
        json_array_append_new(terms, json_string(query->terms[i]));
    json_t *page = json_pack("{s:o,s:o,s:s,s:s,s:I,s:o,s:o,s:b}", "items", res.items, "next_cursor",
                             res.next_cursor ? json_string(oms_cursor_encode(req, res.next_cursor)) : json_null(),
                             "branch", branch, "commit", commit, "generation", (json_int_t)gen, "total",
                             res.total >= 0 ? json_integer(res.total) : json_null(), "terms", terms,
                             "terms_truncated", query->truncated);
    res.items = NULL;
    oms_search_result_clear(&res);
    oms_resp_header(req, "X-Commit", commit);
    rc = oms_resp_json(req, 200, page);
    oms_metrics_search((double)(oms_mono_ns() - t0) / 1e9);
    return rc;
}

static const char *const k_no_params[] = {NULL};

int oms_h_index_rebuild(oms_request *req)
{
    if (!query_params_ok(req, k_no_params, false))
        return OMS_OK;
    return oms_index_rebuild_start(req, req->params[0]);
}

static bool job_id_valid(const char *s)
{
    if (!s || strlen(s) != OMS_INDEX_JOB_ID_LEN || strncmp(s, "idx_", 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int oms_h_index_job_get(oms_request *req)
{
    if (!query_params_ok(req, k_no_params, false))
        return OMS_OK;
    if (!job_id_valid(req->params[0]))
        return oms_resp_problem(req, OMS_ENOTFOUND, "no index job with that id", NULL);
    return oms_index_job_get(req, req->params[0]);
}
