/* Every route OMS serves, with the permission it needs (SPEC §5). Adding a
 * route is adding a line here; the table is checked at start-up and by
 * tests/unit/test_routes.c. */
#include "auth/handlers.h"
#include "http/routes.h"
#include "ops/handlers.h"
#include "ops/metrics.h"
#include "ontology/handlers.h"
#include "vcs/handlers.h"

const oms_route oms_app_routes[] = {
    /* method, pattern, handler, permission, audit action, change */
    {"GET", "/health", oms_h_health, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/ready", oms_h_ready, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/metrics", oms_h_metrics, OMS_PERM_METRICS_READ, NULL, false},
    {"GET", "/api/v1/me", oms_h_me, OMS_PERM_AUTHENTICATED, NULL, false},

    /* schemas (SPEC §3, §4) */
    {"GET", "/api/v1/schemas/{branch}", oms_h_schema_export, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/schemas/{branch}/{kind}", oms_h_resource_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/schemas/{branch}/{kind}", oms_h_resource_create, OMS_PERM_SCHEMA_WRITE, "resource.create", true},
    {"GET", "/api/v1/schemas/{branch}/{kind}/{api_name}", oms_h_resource_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"PUT", "/api/v1/schemas/{branch}/{kind}/{api_name}", oms_h_resource_replace, OMS_PERM_SCHEMA_WRITE,
     "resource.update", true},
    {"DELETE", "/api/v1/schemas/{branch}/{kind}/{api_name}", oms_h_resource_delete, OMS_PERM_SCHEMA_WRITE,
     "resource.delete", true},
    {"POST", "/api/v1/schemas/{branch}/changes", oms_h_schema_changes, OMS_PERM_SCHEMA_WRITE, "schema.changes", true},
    {"POST", "/api/v1/schemas/{branch}/validate", oms_h_schema_validate, OMS_PERM_SCHEMA_READ, NULL, false},

    /* branches, history, commits, diff */
    {"GET", "/api/v1/branches", oms_h_branch_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/branches", oms_h_branch_create, OMS_PERM_BRANCH_CREATE, "branch.create", false},
    {"GET", "/api/v1/branches/{branch}", oms_h_branch_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"DELETE", "/api/v1/branches/{branch}", oms_h_branch_delete, OMS_PERM_BRANCH_DELETE, "branch.delete", true},
    {"GET", "/api/v1/branches/{branch}/commits", oms_h_branch_history, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/commits/{id}", oms_h_commit_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/diff", oms_h_diff, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/issues/{key}/commits", oms_h_issue_commits, OMS_PERM_SCHEMA_READ, NULL, false},
};
const size_t oms_app_routes_count = sizeof oms_app_routes / sizeof oms_app_routes[0];
