/* The route table is data (ENGINEERING.md habit 1): method, pattern, handler,
 * the permission it needs, its audit action, whether it is a change that
 * needs an issue reference, and its key spec (what the change touches, for
 * the lock check). Registration refuses an entry without a permission, a
 * change without a key spec, and only the exact paths /health and /ready
 * may be public. */
#ifndef OMS_ROUTES_H
#define OMS_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/rbac.h"
#include "http/request.h"

typedef int (*oms_handler)(oms_request *req);

/* Pattern segments: a literal, "{name}" for a parameter checked by the
 * handler's grammar, "{branch}" (branch-name grammar, 400 when invalid),
 * "{api_name}", "{id}" (opaque id), or "{kind}" (one of the resource kind
 * segments: anything else does not match the route). */
struct oms_route {
    const char *method;
    const char *pattern;
    oms_handler handler;
    oms_perm perm;
    const char *audit_action; /* NULL for reads */
    bool change;              /* a change: needs an issue reference (SPEC §6.3) */
    /* The key spec: what the change touches (core/context.h). Required on
     * a change route; OMS_TOUCH_RESOURCE needs {kind} and {api_name}. */
    oms_touch touches;
    /* The branch a change applies to, when not the {branch} parameter
     * (a proposal's target, a lock's branch); NULL for the default. */
    const char *(*change_branch)(oms_request *req);
    /* Issue keys the change inherits (a proposal merge: the proposal's and
     * its source commits', SPEC §4); a new reference or NULL. */
    json_t *(*inherited_issue_keys)(oms_request *req);
    /* A read the event loop may answer itself (docs/architecture.md
     * "Answers on the event loop"): after the pipeline's checks passed
     * without waiting, it looks for the answer in memory and, when it has
     * one, calls admit(req) (the rate limit, the one step with an effect)
     * and answers only if that returns true. It returns false, having
     * answered nothing, whenever it cannot: the request then goes to a
     * handler and the pipeline starts again there. Only on a GET route of
     * a branch, never on a change or a public route. NULL: never. */
    bool (*answer_inline)(oms_request *req, bool (*admit)(oms_request *req));
    /* The route's check (and its handler's own) may be decided in its
     * change transaction, with the ACL version read by the transaction's
     * first statement (auth/acl_store.h oms_acl_settle): one round trip
     * fewer. Registration refuses it on a route that is not a change; the
     * handler must run the change through oms_change_run and answer its
     * failure with oms_resp_change_failure (a success left undecided is
     * answered 500 by the pipeline, any other answer is decided first). */
    bool authorize_in_change;
};

typedef struct oms_route_table oms_route_table;

/* Builds the lookup structure; refuses (OMS_ECONFIG, with the offending
 * entry in err) a route without a permission, a change route without a key
 * spec (or declaring its {kind}/{api_name} without both parameters), a public
 * route other than /health and /ready, an unknown pattern parameter, or a
 * duplicate. */
int oms_routes_new(oms_route_table **out, const oms_route *routes, size_t n, oms_error *err);
void oms_routes_free(oms_route_table *t);
size_t oms_routes_count(const oms_route_table *t);
const oms_route *oms_routes_at(const oms_route_table *t, size_t i);

typedef enum { OMS_ROUTE_FOUND, OMS_ROUTE_WRONG_METHOD, OMS_ROUTE_NONE } oms_route_match;

/* Matches raw segments. On FOUND, fills req->route and req->params (decoded
 * once; an invalid parameter yields OMS_EBADPATH / OMS_EINVAL in err and
 * FOUND). On WRONG_METHOD, `allow` gets "GET, POST" style text. */
oms_route_match oms_routes_match(const oms_route_table *t, oms_request *req, char *allow,
                                 size_t allow_cap, oms_error *err);

/* The application's full table (app_routes.c). */
extern const oms_route oms_app_routes[];
extern const size_t oms_app_routes_count;

/* Resource kind URL segments (SPEC §3). */
extern const char *const oms_kind_segments[];
extern const size_t oms_kind_segments_count;

#endif
