/* The OpenAPI document cannot drift from the route table: every route has
 * its metadata entry (and every entry a route), the document builds, and
 * every route appears in it as an operation (x-oms-route) with its
 * permission. */
#include "api/openapi.h"
#include "ontology/kind_schema.h"
#include "t.h"

static void every_route_has_metadata(void)
{
    for (size_t i = 0; i < oms_app_routes_count; i++) {
        const oms_route *r = &oms_app_routes[i];
        if (!oms_openapi_find(r->method, r->pattern)) {
            fprintf(stderr, "  route %s %s has no entry in src/api/openapi_routes.c\n", r->method, r->pattern);
            CHECK(0);
        }
    }
}

static void every_entry_has_a_route(void)
{
    for (size_t i = 0; i < oms_openapi_routes_count; i++) {
        const oms_openapi_route *m = &oms_openapi_routes[i];
        bool found = false;
        for (size_t j = 0; j < oms_app_routes_count; j++)
            found = found || (strcmp(oms_app_routes[j].method, m->method) == 0 &&
                              strcmp(oms_app_routes[j].pattern, m->pattern) == 0);
        if (!found) {
            fprintf(stderr, "  openapi entry %s %s names no route\n", m->method, m->pattern);
            CHECK(0);
        }
        CHECK(m->summary && m->status >= 200 && m->status < 400);
        if (m->body)
            CHECK(strcmp(m->body, "KIND") == 0 || m->example != NULL);
    }
}

/* Every JSON answer has its own schema: a bare object or an untyped page
 * tells a client nothing (tests/api/check_responses.py validates the
 * recorded answers against these). The document itself is the exception. */
static void every_json_answer_is_typed(void)
{
    for (size_t i = 0; i < oms_openapi_routes_count; i++) {
        const oms_openapi_route *m = &oms_openapi_routes[i];
        if (!m->response || m->media || strcmp(m->pattern, "/api/v1/openapi.json") == 0)
            continue;
        json_t *s = json_loads(m->response, JSON_DECODE_ANY, NULL);
        const char *type = json_string_value(json_object_get(s, "type"));
        const char *ref = json_string_value(json_object_get(s, "$ref"));
        bool bare = json_object_size(s) == 1 && ((type && strcmp(type, "object") == 0) ||
                                                 (ref && strcmp(ref, "#/components/schemas/Page") == 0));
        if (bare) {
            fprintf(stderr, "  %s %s answers an untyped %s\n", m->method, m->pattern, m->response);
            CHECK(0);
        }
        json_decref(s);
    }
}

static json_t *build(void)
{
    const oms_route *rs[256];
    CHECK(oms_app_routes_count <= 256);
    for (size_t i = 0; i < oms_app_routes_count; i++)
        rs[i] = &oms_app_routes[i];
    char why[256];
    json_t *doc = oms_openapi_build(rs, oms_app_routes_count, why, sizeof why);
    if (!doc)
        fprintf(stderr, "  %s\n", why);
    return doc;
}

static void every_route_appears_with_its_permission(void)
{
    json_t *doc = build();
    CHECK(doc != NULL);
    if (!doc)
        return;
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < oms_app_routes_count; i++) {
        const oms_route *r = &oms_app_routes[i];
        char want[300];
        snprintf(want, sizeof want, "%s %s", r->method, r->pattern);
        int found = 0;
        const char *path;
        json_t *item;
        json_object_foreach(paths, path, item) {
            const char *m;
            json_t *op;
            json_object_foreach(item, m, op) {
                const char *route = json_string_value(json_object_get(op, "x-oms-route"));
                if (route && strcmp(route, want) == 0) {
                    found++;
                    CHECK_EQ_STR(json_string_value(json_object_get(op, "x-oms-permission")), oms_perm_name(r->perm));
                    CHECK(json_is_true(json_object_get(op, "x-oms-change")) == r->change);
                }
            }
        }
        /* {kind} routes appear once per kind */
        CHECK_EQ_INT(found, strstr(r->pattern, "{kind}") ? OMS_KIND__COUNT : 1);
    }
    json_decref(doc);
}

static void a_route_without_metadata_fails_the_build(void)
{
    static const oms_route extra = {"GET", "/api/v1/not-described", NULL, OMS_PERM_SCHEMA_READ, NULL, false, OMS_TOUCH_UNSET,
                                     NULL, NULL, NULL, false};
    const oms_route *rs[] = {&oms_app_routes[0], &extra};
    char why[256];
    json_t *doc = oms_openapi_build(rs, 2, why, sizeof why);
    CHECK(doc == NULL);
    CHECK(strstr(why, "/api/v1/not-described") != NULL);
}

static void kind_examples_pass_the_server_validation(void)
{
    for (int k = 0; k < OMS_KIND__COUNT; k++) {
        json_t *doc = json_loads(oms_openapi_kind_example(k), 0, NULL);
        json_t *errors = json_array();
        CHECK(doc != NULL);
        CHECK_EQ_INT(oms_validate_document((oms_kind)k, doc, NULL, errors), 0);
        if (json_array_size(errors)) {
            char *s = json_dumps(errors, 0);
            fprintf(stderr, "  %s: %s\n", oms_kind_segment((oms_kind)k), s);
            free(s);
        }
        json_decref(doc);
        json_decref(errors);
        json_t *s = oms_kind_json_schema((oms_kind)k);
        CHECK(json_is_false(json_object_get(s, "additionalProperties")));
        json_decref(s);
    }
}

int main(void)
{
    static const t_case cases[] = {T(every_route_has_metadata), T(every_entry_has_a_route),
                                   T(every_route_appears_with_its_permission), T(every_json_answer_is_typed),
                                   T(a_route_without_metadata_fails_the_build),
                                   T(kind_examples_pass_the_server_validation)};
    return T_RUN("openapi", cases);
}
