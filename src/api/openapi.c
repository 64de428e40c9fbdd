/* Builds the OpenAPI 3.1 document from the route table: every route of the
 * live table becomes an operation (its permission as x-oms-permission, its
 * change flag as x-oms-change with the issue and override headers, its path
 * parameters with the grammars routes.c checks), completed by the metadata
 * of openapi_routes.c and the kind schemas generated from the validation
 * tables. Routes with {kind} expand into one path per kind, so each kind's
 * operations carry that kind's own schema. */
#include "api/openapi.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/app.h"
#include "ontology/kind_schema.h"
#include "util/alloc.h"

static const char *const k_kind_names[OMS_KIND__COUNT] = {
    "ObjectType", "LinkType", "ActionType", "FunctionType", "Interface", "SharedProperty",
};

/* Path parameter grammars: the same rules as routes.c's bind_params. */
static json_t *path_param(const char *name)
{
    json_t *s;
    if (strcmp(name, "branch") == 0)
        s = json_pack("{s:s}", "$ref", "#/components/schemas/BranchName");
    else if (strcmp(name, "api_name") == 0)
        s = json_pack("{s:s, s:s}", "type", "string", "pattern", "^[A-Za-z][A-Za-z0-9_]{0,99}$");
    else if (strcmp(name, "id") == 0)
        s = json_pack("{s:s, s:s}", "type", "string", "pattern", "^[A-Za-z0-9_-]{1,128}$");
    else if (strcmp(name, "file") == 0)
        s = json_pack("{s:s, s:s}", "type", "string", "pattern", "^[a-z0-9][a-z0-9._-]{0,63}$");
    else
        s = json_pack("{s:s, s:i, s:i}", "type", "string", "minLength", 1, "maxLength", 128);
    const char *desc = strcmp(name, "branch") == 0 ? "branch name; '/' is written %2F" : "path parameter";
    return json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "in", "path", "required", 1, "description", desc,
                     "schema", s);
}

static json_t *query_param(const char *name)
{
    json_t *s;
    if (strcmp(name, "limit") == 0)
        s = json_pack("{s:s, s:i, s:i, s:i}", "type", "integer", "minimum", 1, "maximum", 1000, "default", 100);
    else if (strcmp(name, "status") == 0)
        s = json_pack("{s:s, s:[s,s,s]}", "type", "string", "enum", "experimental", "active", "deprecated");
    else if (strcmp(name, "outcome") == 0)
        s = json_pack("{s:s, s:[s,s,s]}", "type", "string", "enum", "success", "denied", "failure");
    else
        s = json_pack("{s:s, s:i}", "type", "string", "maxLength", 1024);
    const char *desc = strcmp(name, "at") == 0       ? "a commit id or tag: answer as of that commit"
                       : strcmp(name, "cursor") == 0 ? "opaque cursor from next_cursor"
                                                      : "query parameter";
    return json_pack("{s:s, s:s, s:s, s:o}", "name", name, "in", "query", "description", desc, "schema", s);
}

static json_t *header_param(const char *name, bool required, const char *desc)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name", name, "in", "header", "required", required,
                     "description", desc, "schema", "type", "string");
}

static json_t *parse(const char *text, char *why, size_t cap, const char *what)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        snprintf(why, cap, "%s: bad JSON: %s", what, e.text);
    return j;
}

/* A schema text, "KIND" standing for the kind's component. */
static json_t *schema_text(const char *text, int kind, char *why, size_t cap, const char *what)
{
    if (strcmp(text, "KINDPAGE") == 0) {
        char ref[96];
        snprintf(ref, sizeof ref, "#/components/schemas/%s", kind >= 0 ? k_kind_names[kind] : "AnyResource");
        return json_pack("{s:[{s:s},{s:{s:{s:{s:s}}}}]}", "allOf", "$ref", "#/components/schemas/Page", "properties",
                         "items", "items", "$ref", ref);
    }
    if (strcmp(text, "KIND") == 0) {
        char ref[96];
        snprintf(ref, sizeof ref, "#/components/schemas/%s", kind >= 0 ? k_kind_names[kind] : "AnyResource");
        return json_pack("{s:s}", "$ref", ref);
    }
    return parse(text, why, cap, what);
}

/* A minimal valid document of each kind: the examples of create/replace. */
static const char *const k_kind_examples[OMS_KIND__COUNT] = {
    "{\"api_name\":\"Person\",\"display_name\":\"Person\",\"description\":\"A human being\",\"properties\":["
    "{\"api_name\":\"id\",\"type\":\"string\",\"required\":true},{\"api_name\":\"name\",\"type\":\"string\"}],"
    "\"primary_key\":\"id\",\"title_property\":\"name\"}",
    "{\"api_name\":\"employs\",\"from\":\"Company\",\"to\":\"Person\",\"cardinality\":\"one_to_many\"}",
    "{\"api_name\":\"hire\",\"parameters\":[{\"api_name\":\"who\",\"type\":\"object_reference\",\"object_type\":"
    "\"Person\",\"required\":true}],\"rules\":[{\"type\":\"modify_object\",\"object_type\":\"Person\"}]}",
    "{\"api_name\":\"age\",\"inputs\":[{\"api_name\":\"born\",\"type\":\"date\"}],\"output\":{\"type\":\"integer\"},"
    "\"deterministic\":true}",
    "{\"api_name\":\"Named\",\"properties\":[{\"api_name\":\"name\",\"type\":\"string\"}]}",
    "{\"api_name\":\"email\",\"type\":\"string\",\"display_name\":\"E-mail\"}",
};

const char *oms_openapi_kind_example(int k) { return k_kind_examples[k]; }

static json_t *operation(const oms_route *r, const oms_openapi_route *m, int kind, char *why, size_t cap)
{
    json_t *op = json_object(), *params = json_array();
    char opid[160], tag[64];
    snprintf(opid, sizeof opid, "%s %s%s%s", r->method, r->pattern, kind >= 0 ? " " : "",
             kind >= 0 ? oms_kind_segment((oms_kind)kind) : "");
    json_object_set_new(op, "operationId", json_string(opid));
    json_object_set_new(op, "summary", json_string(m->summary));
    /* The tag is the first segment after /api/v1 (or the only one). */
    const char *p = strncmp(r->pattern, "/api/v1/", 8) == 0 ? r->pattern + 8 : r->pattern + 1;
    size_t tl = strcspn(p, "/");
    snprintf(tag, sizeof tag, "%.*s", (int)(tl ? tl : 4), tl ? p : "root");
    json_object_set_new(op, "tags", json_pack("[s]", tag));
    json_object_set_new(op, "x-oms-route", json_sprintf("%s %s", r->method, r->pattern));
    json_object_set_new(op, "x-oms-permission", json_string(oms_perm_name(r->perm)));
    json_object_set_new(op, "x-oms-change", json_boolean(r->change));
    if (r->audit_action)
        json_object_set_new(op, "x-oms-audit-action", json_string(r->audit_action));
    if (r->perm == OMS_PERM_PUBLIC)
        json_object_set_new(op, "security", json_array());

    /* Path parameters, in pattern order ({kind} is expanded). */
    for (const char *s = strchr(r->pattern, '{'); s; s = strchr(s + 1, '{')) {
        size_t n = strcspn(s + 1, "}");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)n, s + 1);
        if (strcmp(name, "kind") != 0)
            json_array_append_new(params, path_param(name));
    }
    if (m->query) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", m->query);
        char *save = NULL;
        for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
            json_array_append_new(params, query_param(t));
    }
    bool resource = strstr(r->pattern, "{api_name}") != NULL;
    if (resource && (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "DELETE") == 0))
        json_array_append_new(params, header_param("If-Match", true, "the resource's ETag (428 without, 412 stale)"));
    else if (r->change)
        json_array_append_new(params, header_param("If-Match", false, "the branch head's ETag"));
    if (r->change) {
        json_array_append_new(params, header_param("X-Issue-ID", false, "an issue key (SPEC §6.3)"));
        json_array_append_new(params, header_param("X-Issue-IDs", false, "comma-separated issue keys"));
        json_array_append_new(params, header_param("X-Commit-Message", false, "percent-encoded commit message"));
        json_array_append_new(params, header_param("X-Override-ID", false, "an approved emergency override"));
    }
    json_object_set_new(op, "parameters", params);

    if (m->body) {
        json_t *schema = schema_text(m->body, kind, why, cap, opid);
        const char *ex_text = strcmp(m->body, "KIND") == 0 ? k_kind_examples[kind] : m->example;
        json_t *ex = ex_text ? parse(ex_text, why, cap, opid) : NULL;
        if (!schema || !ex) {
            if (!ex && schema && !why[0])
                snprintf(why, cap, "%s: a request body without an example", opid);
            json_decref(schema);
            json_decref(ex);
            json_decref(op);
            return NULL;
        }
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:o, s:{s:{s:o}}}}}", "required", 1, "content",
                                      "application/json", "schema", schema, "examples", "example", "value", ex));
    }

    json_t *responses = json_object();
    char status[8];
    snprintf(status, sizeof status, "%d", m->status);
    json_t *ok = json_pack("{s:s}", "description", m->summary);
    if (m->response) {
        json_t *schema = schema_text(m->response, kind, why, cap, opid);
        if (!schema) {
            json_decref(ok);
            json_decref(responses);
            json_decref(op);
            return NULL;
        }
        json_object_set_new(ok, "content", json_pack("{s:{s:o}}", m->media ? m->media : "application/json",
                                                     "schema", schema));
    }
    /* /ready answers 503 with the same shape and a reason (SPEC §5). */
    if (strcmp(r->pattern, "/ready") == 0)
        json_object_set_new(responses, "503",
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "not ready, with a reason", "content",
                                      "application/json", "schema", "$ref", "#/components/schemas/Status"));
    if (m->status == 308)
        json_object_set_new(ok, "headers", json_pack("{s:{s:{s:s}}}", "Location", "schema", "type", "string"));
    json_object_set_new(responses, status, ok);
    if (r->perm != OMS_PERM_PUBLIC) {
        json_object_set_new(responses, "401", json_pack("{s:s}", "$ref", "#/components/responses/Problem"));
        if (r->perm != OMS_PERM_AUTHENTICATED)
            json_object_set_new(responses, "403", json_pack("{s:s}", "$ref", "#/components/responses/Problem"));
    }
    json_object_set_new(responses, "default", json_pack("{s:s}", "$ref", "#/components/responses/Problem"));
    json_object_set_new(op, "responses", responses);
    return op;
}

/* Reusable schemas: the problem document, the list page, and loose shapes
 * of the main answers (members the server always sends are required). */
static const char k_components[] =
    "{"
    "\"Problem\":{\"type\":\"object\",\"required\":[\"type\",\"title\",\"status\",\"code\"],\"properties\":{"
    "\"type\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},\"status\":{\"type\":\"integer\",\"minimum\":"
    "400,\"maximum\":599},\"detail\":{\"type\":\"string\"},\"code\":{\"type\":\"string\"},\"request_id\":{\"type\":"
    "\"string\"}}},"
    "\"Page\":{\"type\":\"object\",\"required\":[\"items\"],\"properties\":{\"items\":{\"type\":\"array\"},"
    "\"next_cursor\":{\"type\":[\"string\",\"null\"]}}},"
    "\"Status\":{\"type\":\"object\",\"required\":[\"status\"],\"properties\":{\"status\":{\"type\":\"string\"},"
    "\"reason\":{\"type\":\"string\"}}},"
    "\"Me\":{\"type\":\"object\",\"required\":[\"subject\",\"roles\",\"permissions\"],\"properties\":{\"subject\":{\"type\":"
    "\"string\"},\"roles\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"permissions\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\"}}}},"
    "\"BranchName\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9][a-z0-9._/-]{0,99}$\"},"
    "\"Time\":{\"type\":\"string\",\"pattern\":\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]+)?Z$\"},"
    "\"CommitId\":{\"type\":\"string\",\"pattern\":\"^[0-9a-f]{64}$\"},"
    "\"Branch\":{\"type\":\"object\",\"required\":[\"name\",\"head\",\"protected\",\"required_approvals\","
    "\"breaking_change_approvals\",\"created_at\",\"created_by\"],\"properties\":{\"name\":{\"$ref\":"
    "\"#/components/schemas/BranchName\"},\"head\":{\"$ref\":\"#/components/schemas/CommitId\"},\"protected\":{"
    "\"type\":\"boolean\"},\"required_approvals\":{\"type\":\"integer\"},\"breaking_change_approvals\":{\"type\":"
    "\"integer\"},\"issue_required\":{\"type\":[\"boolean\",\"null\"]},\"compatibility\":{\"enum\":[\"warn\","
    "\"block\",\"none\"]},\"transitive\":{\"type\":\"boolean\"},\"created_at\":{\"$ref\":"
    "\"#/components/schemas/Time\"},\"updated_at\":{\"$ref\":\"#/components/schemas/Time\"}}},"
    "\"Change\":{\"type\":\"object\",\"required\":[\"resource\",\"change\",\"breaking\"],\"properties\":{"
    "\"resource\":{\"type\":\"string\",\"pattern\":\"^[a-z-]+/[A-Za-z][A-Za-z0-9_]*$\"},\"change\":{\"enum\":["
    "\"added\",\"removed\",\"modified\"]},\"breaking\":{\"type\":\"boolean\"},\"fields\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"required\":[\"path\",\"op\"],\"properties\":{\"path\":{\"type\":"
    "\"string\"},\"op\":{\"enum\":[\"add\",\"remove\",\"replace\"]},\"breaking\":{\"type\":\"boolean\"},\"rule\":{\"type\":\"string\"},\"reason\":{\"type\":\"string\"}}}}}},"
    "\"Changes\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Change\"}},"
    "\"Commit\":{\"type\":\"object\",\"required\":[\"id\",\"parents\",\"author\",\"message\",\"time\","
    "\"issue_keys\"],\"properties\":{\"id\":{\"$ref\":\"#/components/schemas/CommitId\"},\"parents\":{\"type\":"
    "\"array\",\"items\":{\"$ref\":\"#/components/schemas/CommitId\"}},\"author\":{\"type\":\"string\"},"
    "\"message\":{\"type\":\"string\"},\"time\":{\"$ref\":\"#/components/schemas/Time\"},\"issue_keys\":{"
    "\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"changes\":{\"$ref\":\"#/components/schemas/Changes\"}}},"
    "\"Tag\":{\"type\":\"object\",\"required\":[\"name\",\"commit\",\"created_at\",\"created_by\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"commit\":{\"$ref\":\"#/components/schemas/CommitId\"},"
    "\"message\":{\"type\":\"string\"},\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"created_by\":{\"type\":\"string\"}}},"
    "\"Export\":{\"type\":\"object\",\"required\":[\"branch\",\"commit\",\"object-types\",\"link-types\","
    "\"action-types\",\"function-types\",\"interfaces\",\"shared-properties\"],\"properties\":{"
    "\"object-types\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/ObjectType\"}},"
    "\"link-types\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/LinkType\"}},"
    "\"action-types\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/ActionType\"}},"
    "\"function-types\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/FunctionType\"}},"
    "\"interfaces\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Interface\"}},"
    "\"shared-properties\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/SharedProperty\"}}}},"
    "\"Diff\":{\"type\":\"object\",\"required\":[\"from\",\"to\",\"breaking\",\"changes\"],\"properties\":{"
    "\"breaking\":{\"type\":\"boolean\"},\"changes\":{\"$ref\":\"#/components/schemas/Changes\"}}},"
    "\"Validation\":{\"type\":\"object\",\"required\":[\"valid\",\"errors\",\"breaking\",\"changes\"],"
    "\"properties\":{\"valid\":{\"type\":\"boolean\"},\"breaking\":{\"type\":\"boolean\"},\"errors\":{\"type\":"
    "\"array\",\"items\":{\"type\":\"object\",\"required\":[\"message\"]}},\"changes\":{\"$ref\":"
    "\"#/components/schemas/Changes\"}}},"
    "\"Proposal\":{\"type\":\"object\",\"required\":[\"id\",\"source\",\"target\",\"title\",\"author\",\"state\"],"
    "\"properties\":{\"state\":{\"enum\":[\"draft\",\"open\",\"approved\",\"merged\",\"closed\"]},\"changes\":{"
    "\"$ref\":\"#/components/schemas/Changes\"},\"conflicts\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
    "\"required\":[\"resource\",\"type\"]}},\"approvals\":{\"type\":\"array\"},\"required_approvals\":{\"type\":"
    "\"integer\"},\"changes_requested\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":["
    "\"reviewer\",\"source_head\",\"at\"]}},\"requested_reviewers\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"string\"}},\"issue_keys\":{\"type\":\"array\"},\"own_issue_keys\":{\"type\":\"array\"},"
    "\"compatibility\":{\"enum\":[\"warn\",\"block\",\"none\"]},\"blocked_by_policy\":{\"type\":\"boolean\"},"
    "\"breaking_changes\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"resource\","
    "\"path\",\"rule\",\"reason\"]}}}},"
    "\"Lock\":{\"type\":\"object\",\"required\":[\"id\",\"branch\",\"scope\",\"kind\",\"holder\",\"acquired_at\","
    "\"expires_at\"],\"properties\":{\"scope\":{\"enum\":[\"resource\",\"resource_type\",\"branch\"]},\"kind\":{"
    "\"type\":\"string\"},\"fencing_token\":{\"type\":[\"integer\",\"string\"]},\"progress\":{\"type\":["
    "\"object\",\"null\"]},\"acquired_at\":{\"$ref\":\"#/components/schemas/Time\"},\"expires_at\":{\"$ref\":"
    "\"#/components/schemas/Time\"}}},"
    "\"Merge\":{\"type\":\"object\",\"required\":[\"status\",\"commit\",\"breaking\",\"changes\"],\"properties\":{"
    "\"status\":{\"enum\":[\"merged\",\"fast_forward\",\"up_to_date\"]},\"changes\":{\"$ref\":"
    "\"#/components/schemas/Changes\"}}},"
    "\"Review\":{\"type\":\"object\",\"properties\":{\"comment\":{\"type\":\"string\"}}},"
    "\"AclPolicy\":{\"type\":\"object\",\"required\":[\"subject\",\"effect\",\"permissions\"],\"properties\":{"
    "\"subject\":{\"type\":\"string\"},\"effect\":{\"enum\":[\"allow\",\"deny\"]},\"permissions\":{\"type\":"
    "\"array\",\"items\":{\"type\":\"string\"}},\"branches\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"description\":{\"type\":\"string\"}}},"
    "\"Batch\":{\"type\":\"object\",\"required\":[\"operations\"],\"additionalProperties\":false,\"properties\":{"
    "\"message\":{\"type\":\"string\"},\"issue_id\":{\"type\":\"string\"},\"issue_ids\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\"}},\"operations\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
    "\"required\":[\"op\",\"kind\"],\"additionalProperties\":false,\"properties\":{\"op\":{\"enum\":[\"create\","
    "\"replace\",\"delete\"]},\"kind\":{\"enum\":[\"object-types\",\"link-types\",\"action-types\","
    "\"function-types\",\"interfaces\",\"shared-properties\"]},\"api_name\":{\"type\":\"string\"},\"document\":{"
    "\"type\":\"object\"},\"if_match\":{\"type\":\"string\"}}}}}}"
    "}";

json_t *oms_openapi_build(const oms_route *const *routes, size_t n, char *why, size_t cap)
{
    why[0] = '\0';
    json_t *schemas = parse(k_components, why, cap, "components");
    if (!schemas)
        return NULL;
    const char *const parts[][2] = {{oms_openapi_gov_schemas, "governance components"},
                                    {oms_openapi_ops_schemas, "operations components"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        json_t *more = parse(parts[i][0], why, cap, parts[i][1]);
        if (!more) {
            json_decref(schemas);
            return NULL;
        }
        json_object_update(schemas, more);
        json_decref(more);
    }
    json_t *any = json_array();
    for (int k = 0; k < OMS_KIND__COUNT; k++) {
        json_t *s = oms_kind_json_schema((oms_kind)k);
        json_object_set_new(s, "title", json_string(k_kind_names[k]));
        json_object_set_new(s, "examples", json_pack("[o]", json_loads(k_kind_examples[k], 0, NULL)));
        json_object_set_new(schemas, k_kind_names[k], s);
        json_array_append_new(any, json_sprintf("#/components/schemas/%s", k_kind_names[k]));
    }
    json_t *anyof = json_array();
    for (size_t i = 0; i < json_array_size(any); i++)
        json_array_append_new(anyof, json_pack("{s:O}", "$ref", json_array_get(any, i)));
    json_decref(any);
    json_object_set_new(schemas, "AnyResource", json_pack("{s:o}", "anyOf", anyof));

    json_t *paths = json_object();
    for (size_t i = 0; i < n; i++) {
        const oms_route *r = routes[i];
        const oms_openapi_route *m = oms_openapi_find(r->method, r->pattern);
        if (!m) {
            snprintf(why, cap, "route %s %s has no OpenAPI metadata (src/api/openapi_routes.c)", r->method,
                     r->pattern);
            goto fail;
        }
        bool kinds = strstr(r->pattern, "{kind}") != NULL;
        for (int k = kinds ? 0 : -1; k < (kinds ? OMS_KIND__COUNT : 0); k++) {
            char path[256];
            const char *at = strstr(r->pattern, "{kind}");
            if (k >= 0)
                snprintf(path, sizeof path, "%.*s%s%s", (int)(at - r->pattern), r->pattern,
                         oms_kind_segment((oms_kind)k), at + 6);
            else
                snprintf(path, sizeof path, "%s", r->pattern);
            json_t *op = operation(r, m, k, why, cap);
            if (!op)
                goto fail;
            json_t *item = json_object_get(paths, path);
            if (!item) {
                item = json_object();
                json_object_set_new(paths, path, item);
            }
            char lower[8];
            size_t ml = strlen(r->method);
            for (size_t c = 0; c <= ml && c < sizeof lower; c++)
                lower[c] = (char)(r->method[c] >= 'A' && r->method[c] <= 'Z' ? r->method[c] + 32 : r->method[c]);
            json_object_set_new(item, lower, op);
        }
    }
    return json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s}, s:o, s:{s:o, s:{s:{s:s, s:{s:{s:{s:s}}}}}, s:{s:{s:s, s:s, s:s}}}, s:[{s:[]}]}",
        "openapi", "3.1.0", "jsonSchemaDialect", "https://json-schema.org/draft/2020-12/schema", "info", "title",
        "OMS: Ontology Management Service", "version", "1", "description",
        "Generated from the route table at start-up (src/api/openapi.c). x-oms-permission is the permission the "
        "route needs; x-oms-change marks changes that need an issue reference.",
        "paths", paths, "components", "schemas", schemas, "responses", "Problem", "description",
        "RFC 9457 problem document", "content", "application/problem+json", "schema", "$ref",
        "#/components/schemas/Problem", "securitySchemes", "bearer", "type", "http", "scheme", "bearer",
        "bearerFormat", "JWT", "security", "bearer");
fail:
    json_decref(paths);
    json_decref(schemas);
    return NULL;
}

/* The document is the same for the process's life: built and serialised
 * once; every request sends the same bytes (no shared jansson value is
 * touched by concurrent requests). */
static char *g_text;
static size_t g_len;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const oms_route_table *g_table;

static void build_once(void)
{
    size_t n = oms_routes_count(g_table);
    const oms_route **rs = oms_xcalloc(n ? n : 1, sizeof *rs);
    for (size_t i = 0; i < n; i++)
        rs[i] = oms_routes_at(g_table, i);
    char why[256];
    json_t *doc = oms_openapi_build(rs, n, why, sizeof why);
    free(rs);
    if (doc) {
        g_text = json_dumps(doc, JSON_COMPACT);
        g_len = g_text ? strlen(g_text) : 0;
        json_decref(doc);
    }
}

int oms_h_openapi(oms_request *req)
{
    if (req->raw_query)
        return oms_resp_problem(req, OMS_EINVAL, "this route takes no query parameters", NULL);
    g_table = req->app->routes;
    pthread_once(&g_once, build_once);
    if (!g_text)
        return oms_resp_problem(req, OMS_EINTERNAL, "the OpenAPI document could not be built", NULL);
    return oms_resp_text(req, 200, "application/json", g_text, g_len);
}
