/* The pull feed. An event on a branch is shown to callers with schema:read
 * there (SPEC §6.2: a read denial covers events); an event on no branch is
 * shown by what it is about: alerts to alert:read, ACL changes to acl:read,
 * webhook administration to webhook:admin, the rest to schema:read. */
#include "api/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl_store.h"
#include "http/app.h"
#include "http/params.h"
#include "http/pipeline.h"
#include "store/events_sql.h"
#include "util/glob.h"

/* Rows read per round, and at most this many per request whatever is
 * filtered out (the cursor then moves past them). */
#define BATCH 500
#define SCAN_MAX 5000

static bool allowed(oms_request *req, oms_perm perm, const char *branch)
{
    oms_acl_verdict v;
    oms_error err;
    return oms_acl_check(oms_req_ctx(req), perm, branch, &v, &err) == OMS_OK && v.allowed;
}

static bool readable(oms_request *req, const char *type, const char *branch)
{
    if (branch)
        return allowed(req, OMS_PERM_SCHEMA_READ, branch);
    if (strncmp(type, "alert.", 6) == 0)
        return allowed(req, OMS_PERM_ALERT_READ, NULL);
    if (strncmp(type, "acl.", 4) == 0)
        return allowed(req, OMS_PERM_ACL_READ, NULL);
    if (strncmp(type, "webhook.", 8) == 0)
        return allowed(req, OMS_PERM_WEBHOOK_ADMIN, NULL);
    return allowed(req, OMS_PERM_SCHEMA_READ, NULL);
}

static bool parse_pos(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < 0 || s[0] == '-' || s[0] == '+')
        return false;
    *out = v;
    return true;
}

int oms_h_event_list(oms_request *req)
{
    size_t limit = 100;
    const char *lim = oms_req_query(req, "limit");
    if (lim) {
        int64_t l;
        if (!parse_pos(lim, &l) || l < 1 || l > 1000)
            return oms_resp_problem(req, OMS_EINVAL, "limit must be an integer from 1 to 1000", NULL);
        limit = (size_t)l;
    }
    int64_t after = 0;
    const char *a = oms_req_query(req, "after");
    if (a && !parse_pos(a, &after))
        return oms_resp_problem(req, OMS_EINVAL, "after must be an event position (a non-negative integer)", NULL);
    const char *types = oms_req_query(req, "types");
    const char *branch = oms_req_query(req, "branch");
    if ((types && !*types) || (branch && !*branch))
        return oms_resp_problem(req, OMS_EINVAL, "types and branch, when given, must not be empty", NULL);
    oms_error err = {0};
    oms_dbconn *c;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    json_t *items = json_array();
    int64_t last = -1;
    size_t scanned = 0;
    bool more = true;
    while (more && json_array_size(items) < limit && scanned < SCAN_MAX) {
        oms_dbres *r = NULL;
        if ((rc = oms_store_events_page(c, last >= 0 ? last : after, BATCH, &r, &err))) {
            json_decref(items);
            return oms_resp_error(req, rc, &err);
        }
        more = r->nrows == BATCH;
        for (size_t i = 0; i < r->nrows && json_array_size(items) < limit; i++) {
            last = oms_dbres_int(r, i, OMS_EVENT_COL_POS);
            scanned++;
            const char *t = oms_dbres_get(r, i, OMS_EVENT_COL_TYPE);
            const char *b = oms_dbres_get(r, i, OMS_EVENT_COL_BRANCH);
            if (types && !oms_glob_list_match(types, t))
                continue;
            if (branch && (!b || !oms_glob_list_match(branch, b)))
                continue;
            if (!readable(req, t, b))
                continue;
            json_t *ev = json_loads(oms_dbres_get(r, i, OMS_EVENT_COL_BODY), 0, NULL);
            if (!ev)
                continue;
            /* a proposal is read through both its branches */
            const char *src = json_string_value(json_object_get(json_object_get(ev, "data"), "source"));
            if (src && strncmp(t, "proposal.", 9) == 0 && !allowed(req, OMS_PERM_SCHEMA_READ, src)) {
                json_decref(ev);
                continue;
            }
            char seq[24];
            snprintf(seq, sizeof seq, "%lld", (long long)last);
            json_object_set_new(ev, "sequence", json_string(seq));
            json_array_append_new(items, ev);
        }
        if (r->nrows == 0)
            more = false;
        oms_dbres_free(r);
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)last);
    return oms_resp_json(req, 200,
                         json_pack("{s:o, s:o}", "items", items, "next_cursor", last >= 0 ? json_string(cur) : json_null()));
}
