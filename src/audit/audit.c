/* The event model (SPEC §9): what an event holds and how a request fills
 * it. Appending is in chain.c, durable recording in group_commit.c. */
#include "audit/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/request.h"
#include "http/routes.h"
#include "ops/log.h"

/* Fills resource kind, branch and id from the matched route's parameters
 * ({kind}, {branch}, then {api_name}, {id} or {key}) where the caller left
 * them empty, so that refusals and failures name what they were about. */
static void resource_from_route(oms_audit_event *ev, const oms_request *req)
{
    const char *p = req->route->pattern;
    size_t k = 0;
    const char *last_literal = NULL;
    size_t last_len = 0;
    while (*p && k <= req->nparams) {
        if (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        if (p[0] != '{') {
            last_literal = p;
            last_len = len;
        } else if (k < req->nparams) {
            const char *v = req->params[k++];
            if (len == 8 && strncmp(p, "{branch}", 8) == 0) {
                if (!ev->resource_branch)
                    ev->resource_branch = v;
            } else if (len == 6 && strncmp(p, "{kind}", 6) == 0) {
                if (!ev->resource_kind)
                    ev->resource_kind = v;
            } else if (!ev->resource_id) {
                ev->resource_id = v;
                /* /api/v1/locks/{id}: the kind is the collection's name */
                if (!ev->resource_kind && last_literal)
                    ev->resource_kind = oms_arena_strndup(req->arena, last_literal, last_len);
            }
        }
        p += len;
    }
}

void oms_audit_from_request(oms_audit_event *ev, oms_request *req)
{
    if (req->authenticated) {
        json_t *a = json_array();
        for (size_t i = 0; i < req->principal.nroles; i++)
            json_array_append_new(a, json_string(req->principal.roles[i]));
        char *s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        ev->actor_roles = s ? oms_arena_strdup(req->arena, s) : NULL;
        free(s);
        ev->actor_sub = req->principal.sub;
    }
    ev->client_addr = req->client_addr;
    ev->user_agent = req->user_agent;
    ev->request_id = req->request_id;
    ev->method = req->method;
    if (req->route) {
        ev->route = req->route->pattern;
        resource_from_route(ev, req);
    }
}

int oms_audit_after_migrate(oms_store *s, int from_version, int applied, oms_error *err)
{
    if (applied <= 0)
        return OMS_OK;
    int to = 0;
    int rc = oms_store_schema_version(s, &to, err);
    if (rc)
        return rc;
    char detail[96];
    snprintf(detail, sizeof detail, "{\"from_version\":%d,\"to_version\":%d,\"applied\":%d}", from_version, to,
             applied);
    oms_audit_event ev = {.actor_sub = "oms", .action = "schema.migrate", .outcome = "success",
                          .resource_kind = "schema", .detail = detail};
    return oms_audit_record(s, &ev, err);
}
