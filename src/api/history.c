/* History (first-parent), commit detail, diff between refs, and the commits
 * linked to an issue: request -> vcs/history.h -> response. */
#include "api/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/read_access.h"
#include "governance/issue_refs.h"
#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "vcs/commit.h"
#include "ontology/ontology.h"
#include "util/alloc.h"
#include "vcs/history.h"

/* RFC 3339 (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)) to epoch ms. */
static bool parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &n) != 6 || n != 19)
        return false;
    const char *p = s + n;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (!digits)
            return false;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
            return false;
        off = (*p == '+' ? 1 : -1) * (hh * 60 + mm);
        p += 6;
    } else {
        return false;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *out = ((int64_t)t - (int64_t)off * 60) * 1000 + ms;
    return true;
}

int oms_h_branch_history(oms_request *req)
{
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *resource = oms_req_query(req, "resource"), *author = oms_req_query(req, "author");
    const char *since = oms_req_query(req, "since"), *until = oms_req_query(req, "until");
    oms_history_filter f = {resource, author, INT64_MIN, INT64_MAX};
    if (resource) {
        const char *slash = strchr(resource, '/');
        oms_kind k;
        char seg[32];
        if (!slash || (size_t)(slash - resource) >= sizeof seg || !slash[1])
            return oms_resp_problem(req, OMS_EINVAL, "resource must be KIND/API_NAME", NULL);
        snprintf(seg, sizeof seg, "%.*s", (int)(slash - resource), resource);
        if (oms_kind_parse(&k, seg))
            return oms_resp_problem(req, OMS_EINVAL, "resource must be KIND/API_NAME (an unknown kind)", NULL);
    }
    if ((since && !parse_rfc3339(since, &f.since_ms)) || (until && !parse_rfc3339(until, &f.until_ms)))
        return oms_resp_problem(req, OMS_EINVAL, "since and until are RFC 3339 times (2026-01-31T12:00:00Z)", NULL);
    bool filtered = resource || author || since || until;
    oms_error err = {0};
    json_t *items = NULL;
    const char *next = NULL;
    int rc = oms_vcs_history_filtered(oms_req_ctx(req), req->params[0], cursor, limit, filtered ? &f : NULL, &items,
                                      &next, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_resp_json(req, 200, json_pack("{s:o,s:o}", "items", items, "next_cursor",
                                             next ? json_string(oms_cursor_encode(req, next)) : json_null()));
}

int oms_h_commit_get(oms_request *req)
{
    const char *id = req->params[0];
    if (!oms_is_commit_id(id))
        return oms_resp_problem(req, OMS_EINVAL, "a commit id is 64 lowercase hex digits", NULL);
    oms_error err = {0};
    oms_dbconn *c;
    json_t *commit = NULL;
    bool readable = false;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK && (rc = oms_commit_readable(req, c, id, &readable, &err)) == OMS_OK && !readable) {
        oms_refuse_unreadable(req, "the commit is on no branch you may read (schema:read)");
        return OMS_OK;
    }
    if (rc == OMS_OK)
        rc = oms_vcs_commit_detail(oms_req_ctx(req), id, &commit, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    oms_resp_etag(req, id);
    return oms_resp_json(req, 200, commit);
}

int oms_h_diff(oms_request *req)
{
    const char *from = oms_req_query(req, "from"), *to = oms_req_query(req, "to");
    if (!from || !to || !*from || !*to)
        return oms_resp_problem(req, OMS_EINVAL, "diff needs from= and to= (branch names or commit ids)", NULL);
    oms_error err = {0};
    oms_dbconn *c;
    char a[65], b[65];
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, from, a, &err);
    if (rc == OMS_OK)
        rc = oms_read_ref(req, c, to, b, &err);
    if (rc && req->responded)
        return OMS_OK;
    bool breaking = false;
    char *changes = NULL;
    size_t len = 0;
    if (rc == OMS_OK)
        rc = oms_vcs_diff(oms_req_ctx(req), a, b, &changes, &len, &breaking, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    /* The changes' text spliced in as the diff cache holds it; a and b are
     * commit ids (64 hex digits): nothing to escape. */
    static const char k_head[] = "{\"from\":\"%s\",\"to\":\"%s\",\"breaking\":%s,\"changes\":";
    size_t cap = sizeof k_head + 64 + 64 + 5 + len + 2;
    char *body = oms_xmalloc(cap);
    int n = snprintf(body, cap, k_head, a, b, breaking ? "true" : "false");
    memcpy(body + n, changes, len);
    body[n + len] = '}';
    body[n + len + 1] = '\0';
    free(changes);
    return oms_resp_take(req, 200, "application/json", body, (size_t)n + len + 1);
}

static int fetch_issue_commits(oms_ctx *ctx, void *key, const char *cursor, size_t limit, oms_dbres **out,
                               oms_error *err)
{
    return oms_vcs_issue_commits(ctx, key, cursor, limit, out, err);
}

/* Issue links list only commits the caller may read (SPEC §6.2). */
int oms_h_issue_commits(oms_request *req)
{
    const char *key = req->params[0];
    if (!oms_issue_key_valid(key))
        return oms_resp_problem(req, OMS_EINVAL, "not an issue key (ABC-123, GH-123 or #123)", NULL);
    return oms_resp_readable_page(req, fetch_issue_commits, (void *)key, 0, oms_vcs_commit_row_json,
                                  json_pack("{s:s}", "issue", key));
}
