/* Search routes: request -> src/search -> response. */
#include "api/search.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "infra/metrics.h"
#include "locks/locks.h"
#include "search/query.h"
#include "search/rebuild.h"
#include "search/search.h"
#include "txn/change.h"
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
    oms_err_clear(&err);
    oms_search_request rq = {.q = query, .kinds = kinds, .limit = limit, .after = cursor};
    oms_search_answer ans;
    int rc = oms_search_branch(oms_req_ctx(req), branch, q, &rq, &ans, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_search_result res = ans.res;
    int64_t gen = ans.generation;
    const char *commit = ans.commit;
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
static const char *const k_rebuild_fields[] = {"reason", NULL};

/* The rebuild's change step: src/search/rebuild.c's writes, described for
 * the index.rebuild (start) event. */
static int rebuild_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    oms_index_rebuild *st = arg;
    int rc = oms_index_rebuild_write(c, ctx, st, err);
    if (rc)
        return rc;
    out->resource_kind = "index-jobs";
    out->branch = st->branch;
    out->resource_id = st->job;
    out->commit_id = st->head;
    out->status = 202;
    out->detail = oms_index_rebuild_detail(st);
    return OMS_OK;
}

static int rebuild_lock_event(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    return oms_index_rebuild_lock_event(c, ctx, arg, err);
}

int oms_h_index_rebuild(oms_request *req)
{
    if (!query_params_ok(req, k_no_params, false))
        return OMS_OK;
    const json_t *body = req->json;
    if (body && !json_is_object(body))
        return oms_resp_problem(req, OMS_EINVAL, "the body must be empty or {\"reason\"}", NULL);
    if (body && !oms_body_fields_ok(req, body, k_rebuild_fields))
        return OMS_OK;
    const char *why = body ? json_string_value(json_object_get(body, "reason")) : NULL;
    if (body && json_object_get(body, "reason") && (!why || !*why || strlen(why) > OMS_LOCK_REASON_MAX))
        return oms_resp_problem(req, OMS_EINVAL, "reason must be a string of 1 to 1000 bytes", NULL);
    oms_error err;
    oms_err_clear(&err);
    oms_ctx *ctx = oms_req_ctx(req);
    oms_index_rebuild st;
    json_t *job = NULL;
    int rc = oms_index_rebuild_prepare(ctx, &st, req->params[0], why, atomic_load(&req->app->draining), &err);
    if (rc == OMS_OK) {
        oms_change_spec spec = {.action = "index.rebuild", .branch = st.branch, .step = rebuild_step, .arg = &st,
                                .after_event = rebuild_lock_event};
        oms_change_out out;
        rc = oms_change_run(ctx, &spec, &out, &err);
    }
    if (rc == OMS_OK)
        rc = oms_index_rebuild_launch(ctx, &st, &job, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_resp_header(req, "Location", oms_arena_printf(req->arena, "/api/v1/index-jobs/%s", st.job));
    return oms_resp_json(req, 202, job);
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
    oms_error err;
    oms_err_clear(&err);
    json_t *job = NULL;
    const char *branch = NULL;
    int rc = oms_index_job_get(oms_req_ctx(req), req->params[0], &job, &branch, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    /* a job's progress names its branch's commit and size: read access to
     * the branch (SPEC §6.2) */
    if (!oms_authorize_on(req, OMS_PERM_SCHEMA_READ, branch)) {
        json_decref(job);
        return OMS_OK;
    }
    return oms_resp_json(req, 200, job);
}
