/* Walks the route table: every route declares a permission, only the exact
 * public list is public, and registration refuses anything else. */
/* Route entries leave their optional trailing fields out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "http/routes.h"
#include "t.h"

static int h_dummy(oms_request *req) { return OMS_OK; }

static void app_table_is_valid(void)
{
    oms_route_table *t = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_routes_new(&t, oms_app_routes, oms_app_routes_count, &err), OMS_OK);
    for (size_t i = 0; i < oms_app_routes_count; i++) {
        const oms_route *r = &oms_app_routes[i];
        CHECK(r->perm != OMS_PERM_UNSET);
        if (r->perm == OMS_PERM_PUBLIC)
            CHECK(strcmp(r->pattern, "/health") == 0 || strcmp(r->pattern, "/ready") == 0 ||
                  strcmp(r->pattern, "/ui") == 0 || strcmp(r->pattern, "/ui/{file}") == 0);
        else
            CHECK(strncmp(r->pattern, "/api/v1/", 8) == 0 || strcmp(r->pattern, "/metrics") == 0);
        if (r->change)
            CHECK(r->audit_action != NULL && strcmp(r->method, "GET") != 0);
        /* every write declares what it touches, even "nothing" */
        if (r->audit_action)
            CHECK(r->touches != OMS_TOUCH_UNSET);
    }
    oms_routes_free(t);
}

static int try_one(oms_route r)
{
    oms_route_table *t = NULL;
    oms_error err;
    int rc = oms_routes_new(&t, &r, 1, &err);
    oms_routes_free(t);
    return rc;
}

static void refuses_route_without_permission(void)
{
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/v1/x", h_dummy, OMS_PERM_UNSET, NULL, false}), OMS_ECONFIG);
}

static void refuses_public_other_than_exact_list(void)
{
    CHECK_EQ_INT(try_one((oms_route){"GET", "/", h_dummy, OMS_PERM_PUBLIC, NULL, false}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/healthz", h_dummy, OMS_PERM_PUBLIC, NULL, false}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/health/x", h_dummy, OMS_PERM_PUBLIC, NULL, false}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/health", h_dummy, OMS_PERM_PUBLIC, NULL, false}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/health", h_dummy, OMS_PERM_PUBLIC, NULL, false}), OMS_OK);
}

static void refuses_change_without_audit_action(void)
{
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x", h_dummy, OMS_PERM_SCHEMA_WRITE, NULL, true}),
                 OMS_ECONFIG);
}

/* The key spec (what a change touches) is part of the entry, as the
 * permission is: a change route without one is refused, and one that
 * declares {kind}/{api_name} must have both in its pattern. */
static void refuses_change_without_key_spec(void)
{
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_WRITE, "x.change", true}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_WRITE, "x.change", true,
                                     OMS_TOUCH_BRANCH}),
                 OMS_OK);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_WRITE, "x.change", true,
                                     OMS_TOUCH_RESOURCE}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x/{branch}/{kind}/{api_name}", h_dummy, OMS_PERM_SCHEMA_WRITE,
                                     "x.change", true, OMS_TOUCH_RESOURCE}),
                 OMS_OK);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_WRITE, "x.change", true,
                                     (oms_touch)99}),
                 OMS_ECONFIG);
}

static bool answer_dummy(oms_request *req, bool (*admit)(oms_request *req))
{
    (void)req;
    (void)admit;
    return false;
}

/* An answer on the event loop only for a branch read with a permission:
 * never a change, an audited or public route, or a route without {branch}. */
static void answers_on_the_loop_only_for_branch_reads(void)
{
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false,
                                     .answer_inline = answer_dummy}),
                 OMS_OK);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_WRITE, "x.change", true,
                                     OMS_TOUCH_BRANCH, .answer_inline = answer_dummy}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/v1/x/{branch}", h_dummy, OMS_PERM_SCHEMA_READ, "x.read", false,
                                     .answer_inline = answer_dummy}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/v1/x", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false,
                                     .answer_inline = answer_dummy}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/v1/x/{branch}", h_dummy, OMS_PERM_AUTHENTICATED, NULL, false,
                                     .answer_inline = answer_dummy}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/health", h_dummy, OMS_PERM_PUBLIC, NULL, false,
                                     .answer_inline = answer_dummy}),
                 OMS_ECONFIG);
}

static void refuses_duplicates_and_bad_patterns(void)
{
    oms_route two[] = {{"GET", "/api/v1/x", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false},
                       {"GET", "/api/v1/x", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false}};
    oms_route_table *t = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_routes_new(&t, two, 2, &err), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/{what}", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false}),
                 OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "api", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api", NULL, OMS_PERM_SCHEMA_READ, NULL, false}), OMS_ECONFIG);
}

static void matching_decodes_parameters_once(void)
{
    oms_route rs[] = {{"GET", "/api/v1/schemas/{branch}/{kind}", h_dummy, OMS_PERM_SCHEMA_READ, NULL, false},
                      {"POST", "/api/v1/schemas/{branch}/{kind}", h_dummy, OMS_PERM_SCHEMA_WRITE, "x.create", true,
                       OMS_TOUCH_BODY}};
    oms_route_table *t = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_routes_new(&t, rs, 2, &err), OMS_OK);
    oms_request req;
    memset(&req, 0, sizeof req);
    req.arena = oms_arena_new(0);
    char allow[64];
    const char *p = "/api/v1/schemas/feature%2Fx/object-types";
    CHECK_EQ_INT(oms_path_parse(&req.path, p, strlen(p), req.arena, &err), OMS_OK);
    req.method = "GET";
    CHECK_EQ_INT(oms_routes_match(t, &req, allow, sizeof allow, &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(err.code, OMS_OK);
    CHECK_EQ_STR(req.params[0], "feature/x");
    CHECK_EQ_STR(req.params[1], "object-types");
    req.method = "DELETE";
    CHECK_EQ_INT(oms_routes_match(t, &req, allow, sizeof allow, &err), OMS_ROUTE_WRONG_METHOD);
    CHECK_EQ_STR(allow, "GET, POST");
    /* an unknown kind is no route at all */
    const char *q = "/api/v1/schemas/main/widgets";
    CHECK_EQ_INT(oms_path_parse(&req.path, q, strlen(q), req.arena, &err), OMS_OK);
    req.method = "GET";
    CHECK_EQ_INT(oms_routes_match(t, &req, allow, sizeof allow, &err), OMS_ROUTE_NONE);
    /* an invalid branch matches the route but fails its grammar */
    const char *r = "/api/v1/schemas/Bad%20Name/object-types";
    CHECK_EQ_INT(oms_path_parse(&req.path, r, strlen(r), req.arena, &err), OMS_OK);
    CHECK_EQ_INT(oms_routes_match(t, &req, allow, sizeof allow, &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(err.code, OMS_EINVAL);
    oms_arena_free(req.arena);
    oms_routes_free(t);
}

int main(void)
{
    static const t_case cases[] = {T(app_table_is_valid), T(refuses_route_without_permission),
                                   T(refuses_public_other_than_exact_list),
                                   T(refuses_change_without_audit_action), T(refuses_change_without_key_spec),
                                   T(answers_on_the_loop_only_for_branch_reads),
        T(refuses_duplicates_and_bad_patterns), T(matching_decodes_parameters_once)};
    return T_RUN("routes", cases);
}
