/* libFuzzer target for the raw-path check and route matching (SPEC §5):
 * any bytes as a request path. Besides not crashing: an accepted path has
 * no empty or dot segment, and every decoded parameter passed its grammar. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"
#include "http/routes.h"

static const oms_route_table *table(void)
{
    static oms_route_table *t;
    oms_error err;
    if (!t && oms_routes_new(&t, oms_app_routes, oms_app_routes_count, &err) != OMS_OK)
        abort();
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 9000)
        return 0;
    char *raw = malloc(size + 1);
    memcpy(raw, data, size);
    raw[size] = '\0';
    oms_request req;
    memset(&req, 0, sizeof req);
    req.arena = oms_arena_new(0);
    oms_error err;
    if (oms_path_parse(&req.path, raw, strlen(raw), req.arena, &err) == OMS_OK) {
        for (size_t i = 0; i < req.path.nseg; i++) {
            const char *s = req.path.seg[i];
            if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
                abort();
        }
        static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
        char allow[128];
        req.method = methods[size % 4];
        if (oms_routes_match(table(), &req, allow, sizeof allow, &err) == OMS_ROUTE_FOUND && err.code == OMS_OK)
            for (size_t i = 0; i < req.nparams; i++)
                if (!req.params[i] || memchr(req.params[i], '\0', 0) || strstr(req.params[i], "\\"))
                    abort();
    }
    oms_arena_free(req.arena);
    free(raw);
    return 0;
}
