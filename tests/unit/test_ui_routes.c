/* The console's registration exception (docs/security.md): exactly GET /ui
 * and GET /ui/{file} may be public besides /health and /ready, nothing by
 * prefix; file names are flat; "/ui/" is the one path with a trailing slash. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "http/routes.h"
#include "t.h"

static int h_dummy(oms_request *req) { return OMS_OK; }

static int try_one(oms_route r)
{
    oms_route_table *t = NULL;
    oms_error err;
    int rc = oms_routes_new(&t, &r, 1, &err);
    oms_routes_free(t);
    return rc;
}

static void only_the_exact_console_patterns_may_be_public(void)
{
    CHECK_EQ_INT(try_one((oms_route){"GET", "/ui", h_dummy, OMS_PERM_PUBLIC}), OMS_OK);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/ui/{file}", h_dummy, OMS_PERM_PUBLIC}), OMS_OK);
    CHECK_EQ_INT(try_one((oms_route){"POST", "/ui/{file}", h_dummy, OMS_PERM_PUBLIC}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/ui/{id}", h_dummy, OMS_PERM_PUBLIC}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/ui/x", h_dummy, OMS_PERM_PUBLIC}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/ui/{file}/{file}", h_dummy, OMS_PERM_PUBLIC}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/api/v1/ui", h_dummy, OMS_PERM_PUBLIC}), OMS_ECONFIG);
    CHECK_EQ_INT(try_one((oms_route){"GET", "/uix", h_dummy, OMS_PERM_PUBLIC}), OMS_ECONFIG);
}

static int match(oms_route_table *t, oms_request *req, const char *raw, oms_error *err)
{
    char allow[64];
    if (oms_path_parse(&req->path, raw, strlen(raw), req->arena, err) != OMS_OK)
        return -1;
    req->method = "GET";
    return (int)oms_routes_match(t, req, allow, sizeof allow, err);
}

static void file_names_are_flat(void)
{
    oms_route_table *t = NULL;
    oms_error err;
    oms_route rs[] = {{"GET", "/ui", h_dummy, OMS_PERM_PUBLIC}, {"GET", "/ui/{file}", h_dummy, OMS_PERM_PUBLIC}};
    CHECK_EQ_INT(oms_routes_new(&t, rs, 2, &err), OMS_OK);
    oms_request req = {.arena = oms_arena_new(4096)};
    CHECK_EQ_INT(match(t, &req, "/ui/", &err), OMS_ROUTE_FOUND);
    CHECK(req.route == &rs[0]);
    CHECK_EQ_INT(match(t, &req, "/ui", &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(match(t, &req, "/ui/app.js", &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(err.code, OMS_OK);
    CHECK_EQ_STR(req.params[0], "app.js");
    /* an encoded slash, a dot-dot, upper case: the grammar refuses them */
    CHECK_EQ_INT(match(t, &req, "/ui/a%2Fb.js", &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(err.code, OMS_EINVAL);
    CHECK_EQ_INT(match(t, &req, "/ui/a..js", &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(err.code, OMS_EINVAL);
    CHECK_EQ_INT(match(t, &req, "/ui/.env", &err), OMS_ROUTE_FOUND);
    CHECK_EQ_INT(err.code, OMS_EINVAL);
    /* other trailing slashes stay refused by the path check */
    CHECK_EQ_INT(match(t, &req, "/ui/app.js/", &err), -1);
    CHECK_EQ_INT(match(t, &req, "/api/v1/", &err), -1);
    CHECK_EQ_INT(match(t, &req, "/ui//", &err), -1);
    oms_arena_free(req.arena);
    oms_routes_free(t);
}

int main(void)
{
    static const t_case cases[] = {T(only_the_exact_console_patterns_may_be_public), T(file_names_are_flat)};
    return T_RUN("ui_routes", cases);
}
