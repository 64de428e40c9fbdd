/* The event model (SPEC §9): what an event holds and how a request fills
 * it. Appending is in chain.c, durable recording in group_commit.c. */
#include "audit/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/log.h"

/* Fills resource kind, branch and id from what the route names where the
 * caller left them empty, so that refusals and failures name what they
 * were about: {kind}, {branch}, then {api_name} or {id} (for /locks/{id},
 * the collection's name is the kind). */
static void resource_from_route(oms_audit_event *ev, const oms_ctx *ctx)
{
    if (!ev->resource_branch)
        ev->resource_branch = ctx->branch;
    if (!ev->resource_kind)
        ev->resource_kind = ctx->kind_segment;
    if (!ev->resource_id) {
        ev->resource_id = ctx->api_name ? ctx->api_name : ctx->id;
        if (!ev->resource_kind && ctx->id && ctx->route) {
            /* the literal before {id} */
            const char *at = strstr(ctx->route, "/{id}");
            if (!at)
                at = strstr(ctx->route, "/{key}");
            if (at) {
                const char *start = at;
                while (start > ctx->route && start[-1] != '/')
                    start--;
                ev->resource_kind = oms_arena_strndup(ctx->arena, start, (size_t)(at - start));
            }
        }
    }
}

void oms_audit_from_ctx(oms_audit_event *ev, const oms_ctx *ctx)
{
    if (ctx->sub) {
        json_t *a = json_array();
        for (size_t i = 0; i < ctx->nroles; i++)
            json_array_append_new(a, json_string(ctx->roles[i]));
        char *s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        ev->actor_roles = s ? oms_arena_strdup(ctx->arena, s) : NULL;
        free(s);
        ev->actor_sub = ctx->sub;
    }
    ev->client_addr = ctx->client_addr;
    ev->user_agent = ctx->user_agent;
    ev->request_id = ctx->request_id;
    ev->method = ctx->method;
    if (ctx->route) {
        ev->route = ctx->route;
        resource_from_route(ev, ctx);
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
    json_t *d = json_pack("{s:i,s:i,s:i}", "from_version", from_version, "to_version", to, "applied", applied);
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!detail)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    oms_audit_event ev = {.actor_sub = "oms", .action = "schema.migrate", .outcome = "success",
                          .resource_kind = "schema", .detail = detail};
    rc = oms_audit_record(s, &ev, err);
    free(detail);
    return rc;
}
