/* Every route OMS serves, with the permission it needs (SPEC §5). Adding a
 * route is adding a line here; the table is checked at start-up and by
 * tests/unit/test_routes.c. */
/* Route entries leave their optional trailing fields out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "api/acl.h"
#include "api/alerts.h"
#include "api/events.h"
#include "api/webhooks.h"
#include "api/audit.h"
#include "api/health.h"
#include "api/locks.h"
#include "api/me.h"
#include "api/metrics.h"
#include "api/overrides.h"
#include "api/search.h"
#include "audit/alerts.h"
#include "governance/overrides.h"
#include "http/routes.h"
#include "api/branches.h"
#include "api/history.h"
#include "api/merges.h"
#include "api/openapi.h"
#include "api/proposals.h"
#include "api/resources.h"
#include "api/tags.h"
#include "api/ui.h"
#include "audit/alerts.h"
#include "ops/metrics.h"
#include "vcs/proposals.h"
#include "governance/overrides.h"

const oms_route oms_app_routes[] = {
    /* method, pattern, handler, permission, audit action, change, key spec (what
     * the write touches: core/context.h; reads leave it out) */
    {"GET", "/health", oms_h_health, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/ready", oms_h_ready, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/metrics", oms_h_metrics, OMS_PERM_METRICS_READ, NULL, false},
    {"GET", "/api/v1/me", oms_h_me, OMS_PERM_AUTHENTICATED, NULL, false},
    /* people and programs (SPEC §14): the OpenAPI document; the console's
     * static files, public by exact pattern (routes.c, docs/security.md) */
    {"GET", "/api/v1/openapi.json", oms_h_openapi, OMS_PERM_AUTHENTICATED, NULL, false},
    {"GET", "/ui", oms_h_ui_index, OMS_PERM_PUBLIC, NULL, false},
    {"GET", "/ui/{file}", oms_h_ui_file, OMS_PERM_PUBLIC, NULL, false},

    /* schemas (SPEC §3, §4) */
    {"GET", "/api/v1/schemas/{branch}", oms_h_schema_export, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/schemas/{branch}/{kind}", oms_h_resource_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/schemas/{branch}/{kind}", oms_h_resource_create, OMS_PERM_SCHEMA_WRITE, "resource.create", true,
     OMS_TOUCH_BODY},
    {"GET", "/api/v1/schemas/{branch}/{kind}/{api_name}", oms_h_resource_get, OMS_PERM_SCHEMA_READ, NULL, false,
     .answer_inline = oms_h_resource_get_inline},
    {"PUT", "/api/v1/schemas/{branch}/{kind}/{api_name}", oms_h_resource_replace, OMS_PERM_SCHEMA_WRITE,
     "resource.update", true, OMS_TOUCH_RESOURCE},
    {"DELETE", "/api/v1/schemas/{branch}/{kind}/{api_name}", oms_h_resource_delete, OMS_PERM_SCHEMA_WRITE,
     "resource.delete", true, OMS_TOUCH_RESOURCE},
    {"POST", "/api/v1/schemas/{branch}/changes", oms_h_schema_changes, OMS_PERM_SCHEMA_WRITE, "schema.changes", true,
     OMS_TOUCH_BODY},
    {"POST", "/api/v1/schemas/{branch}/validate", oms_h_schema_validate, OMS_PERM_SCHEMA_READ, NULL, false},

    /* branches, history, commits, diff */
    {"GET", "/api/v1/branches", oms_h_branch_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/branches", oms_h_branch_create, OMS_PERM_BRANCH_CREATE, "branch.create", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/branches/{branch}", oms_h_branch_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"DELETE", "/api/v1/branches/{branch}", oms_h_branch_delete, OMS_PERM_BRANCH_DELETE, "branch.delete", true,
     OMS_TOUCH_BRANCH},
    {"GET", "/api/v1/branches/{branch}/commits", oms_h_branch_history, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/commits/{id}", oms_h_commit_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/diff", oms_h_diff, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/issues/{key}/commits", oms_h_issue_commits, OMS_PERM_SCHEMA_READ, NULL, false},

    /* tags (SPEC §4): a name for a commit, forever; deleting one needs
     * branch:admin and an issue reference */
    {"GET", "/api/v1/tags", oms_h_tag_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/tags", oms_h_tag_create, OMS_PERM_TAG_WRITE, "tag.create", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/tags/{name}", oms_h_tag_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"DELETE", "/api/v1/tags/{name}", oms_h_tag_delete, OMS_PERM_BRANCH_ADMIN, "tag.delete", true, OMS_TOUCH_NONE},

    /* merges, reverts, settings, proposals (SPEC §4) */
    {"POST", "/api/v1/branches/{branch}/merge", oms_h_branch_merge, OMS_PERM_SCHEMA_WRITE, "branch.merge", true,
     OMS_TOUCH_BODY},
    {"POST", "/api/v1/branches/{branch}/revert", oms_h_branch_revert, OMS_PERM_SCHEMA_WRITE, "branch.revert", true,
     OMS_TOUCH_BODY},
    {"PUT", "/api/v1/branches/{branch}/settings", oms_h_branch_settings, OMS_PERM_BRANCH_ADMIN,
     "branch.settings", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/proposals", oms_h_proposal_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/proposals", oms_h_proposal_create, OMS_PERM_PROPOSAL_CREATE, "proposal.create", false,
     OMS_TOUCH_NONE},
    {"GET", "/api/v1/proposals/{id}", oms_h_proposal_get, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/proposals/{id}/open", oms_h_proposal_open, OMS_PERM_PROPOSAL_CREATE, "proposal.open", false,
     OMS_TOUCH_NONE},
    {"POST", "/api/v1/proposals/{id}/approve", oms_h_proposal_approve, OMS_PERM_PROPOSAL_REVIEW,
     "proposal.approve", false, OMS_TOUCH_NONE},
    {"POST", "/api/v1/proposals/{id}/reject", oms_h_proposal_reject, OMS_PERM_PROPOSAL_REVIEW, "proposal.reject", false,
     OMS_TOUCH_NONE},
    {"POST", "/api/v1/proposals/{id}/close", oms_h_proposal_close, OMS_PERM_PROPOSAL_CREATE, "proposal.close", false,
     OMS_TOUCH_NONE},
    {"POST", "/api/v1/proposals/{id}/merge", oms_h_proposal_merge, OMS_PERM_PROPOSAL_MERGE, "proposal.merge", true,
     OMS_TOUCH_BODY,
     oms_proposal_target_branch, oms_proposal_inherited_issue_keys},
    {"POST", "/api/v1/proposals/{id}/request-changes", oms_h_proposal_request_changes, OMS_PERM_PROPOSAL_REVIEW,
     "proposal.request_changes", false, OMS_TOUCH_NONE},
    {"POST", "/api/v1/proposals/{id}/dismiss", oms_h_proposal_dismiss, OMS_PERM_PROPOSAL_REVIEW,
     "proposal.dismiss", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/proposals/{id}/comments", oms_h_proposal_comment_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/proposals/{id}/comments", oms_h_proposal_comment_add, OMS_PERM_SCHEMA_READ,
     "proposal.comment", false, OMS_TOUCH_NONE},
    {"POST", "/api/v1/proposals/{id}/reviewers", oms_h_proposal_reviewers_add, OMS_PERM_PROPOSAL_CREATE,
     "proposal.reviewers", false, OMS_TOUCH_NONE},

    /* emergency overrides (SPEC §6.4) and alerts (SPEC §10) */
    {"GET", "/api/v1/overrides", oms_h_override_list, OMS_PERM_OVERRIDE_REQUEST, NULL, false},
    {"POST", "/api/v1/overrides", oms_h_override_create, OMS_PERM_OVERRIDE_REQUEST, "override.request", false,
     OMS_TOUCH_NONE},
    {"GET", "/api/v1/overrides/{id}", oms_h_override_get, OMS_PERM_OVERRIDE_REQUEST, NULL, false},
    {"POST", "/api/v1/overrides/{id}/approve", oms_h_override_approve, OMS_PERM_OVERRIDE_APPROVE,
     "override.approve", false, OMS_TOUCH_NONE},
    {"POST", "/api/v1/overrides/{id}/reject", oms_h_override_reject, OMS_PERM_OVERRIDE_APPROVE,
     "override.reject", false, OMS_TOUCH_NONE},
    {"POST", "/api/v1/overrides/{id}/cancel", oms_h_override_cancel, OMS_PERM_OVERRIDE_REQUEST,
     "override.cancel", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/alerts", oms_h_alert_list, OMS_PERM_ALERT_READ, NULL, false},

    /* events and webhooks (SPEC §13) */
    {"GET", "/api/v1/events", oms_h_event_list, OMS_PERM_SCHEMA_READ, NULL, false},
    {"GET", "/api/v1/webhooks", oms_h_webhook_list, OMS_PERM_WEBHOOK_ADMIN, NULL, false},
    {"POST", "/api/v1/webhooks", oms_h_webhook_create, OMS_PERM_WEBHOOK_ADMIN, "webhook.create", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/webhooks/{id}", oms_h_webhook_get, OMS_PERM_WEBHOOK_ADMIN, NULL, false},
    {"PUT", "/api/v1/webhooks/{id}", oms_h_webhook_update, OMS_PERM_WEBHOOK_ADMIN, "webhook.update", false,
     OMS_TOUCH_NONE},
    {"DELETE", "/api/v1/webhooks/{id}", oms_h_webhook_delete, OMS_PERM_WEBHOOK_ADMIN, "webhook.delete", false,
     OMS_TOUCH_NONE},
    {"GET", "/api/v1/webhooks/{id}/deliveries", oms_h_webhook_deliveries, OMS_PERM_WEBHOOK_ADMIN, NULL, false},
    {"POST", "/api/v1/webhooks/{id}/deliveries/{key}/redeliver", oms_h_webhook_redeliver, OMS_PERM_WEBHOOK_ADMIN,
     "webhook.redeliver", false, OMS_TOUCH_NONE},
    /* ACL policies (SPEC §6.2): every change bumps acl_version, is audited
     * and raises an alert in its own transaction (src/auth/acl_handlers.c) */
    {"GET", "/api/v1/acl/policies", oms_h_acl_list, OMS_PERM_ACL_READ, NULL, false},
    {"POST", "/api/v1/acl/policies", oms_h_acl_create, OMS_PERM_ACL_WRITE, "acl.create", true, OMS_TOUCH_NONE},
    {"GET", "/api/v1/acl/policies/{id}", oms_h_acl_get, OMS_PERM_ACL_READ, NULL, false},
    {"PUT", "/api/v1/acl/policies/{id}", oms_h_acl_replace, OMS_PERM_ACL_WRITE, "acl.update", true, OMS_TOUCH_NONE},
    {"DELETE", "/api/v1/acl/policies/{id}", oms_h_acl_delete, OMS_PERM_ACL_WRITE, "acl.delete", true, OMS_TOUCH_NONE},
    /* locks (SPEC §7): release by a non-holder also needs lock:admin and an
     * issue reference (checked by the handler, which audits it as
     * lock.force_release); heartbeats are liveness, audited only on failure;
     * the changes decide their checks in their transaction (one round trip) */
    {"GET", "/api/v1/locks", oms_h_lock_list, OMS_PERM_LOCK_READ, NULL, false},
    {"POST", "/api/v1/locks", oms_h_lock_acquire, OMS_PERM_LOCK_WRITE, "lock.acquire", false, OMS_TOUCH_NONE,
     .authorize_in_change = true},
    {"GET", "/api/v1/locks/{id}", oms_h_lock_get, OMS_PERM_LOCK_READ, NULL, false},
    {"DELETE", "/api/v1/locks/{id}", oms_h_lock_release, OMS_PERM_LOCK_WRITE, "lock.release", false, OMS_TOUCH_NONE,
     .authorize_in_change = true},
    {"POST", "/api/v1/locks/{id}/heartbeat", oms_h_lock_heartbeat, OMS_PERM_LOCK_WRITE, "lock.heartbeat", false,
     OMS_TOUCH_NONE, .authorize_in_change = true},
    {"POST", "/api/v1/locks/{id}/extend", oms_h_lock_extend, OMS_PERM_LOCK_WRITE, "lock.extend", false, OMS_TOUCH_NONE,
     .authorize_in_change = true},

    /* search and index rebuilds (SPEC §8): a search needs read access to its
     * branch (the route's {branch}); a job is read with its branch's read
     * access applied by the handler; a rebuild audits its own start, finish
     * and failure (index.rebuild) */
    {"GET", "/api/v1/search/{branch}", oms_h_search, OMS_PERM_SCHEMA_READ, NULL, false},
    {"POST", "/api/v1/branches/{branch}/index/rebuild", oms_h_index_rebuild, OMS_PERM_INDEX_REBUILD,
     "index.rebuild", false, OMS_TOUCH_NONE},
    {"GET", "/api/v1/index-jobs/{id}", oms_h_index_job_get, OMS_PERM_SCHEMA_READ, NULL, false},

    /* audit and compliance (SPEC §9): the literal routes come before
     * /audit/{id}, which would match them too (first match wins); each read
     * records its own audit.read / audit.export / audit.verify event */
    {"GET", "/api/v1/audit", oms_h_audit_list, OMS_PERM_AUDIT_READ, NULL, false},
    {"GET", "/api/v1/audit/verify", oms_h_audit_verify, OMS_PERM_AUDIT_READ, NULL, false},
    {"GET", "/api/v1/audit/export", oms_h_audit_export, OMS_PERM_AUDIT_READ, NULL, false},
    {"GET", "/api/v1/audit/{id}", oms_h_audit_get, OMS_PERM_AUDIT_READ, NULL, false},
    {"GET", "/api/v1/compliance/report", oms_h_compliance_report, OMS_PERM_COMPLIANCE_READ, NULL, false},
};
const size_t oms_app_routes_count = sizeof oms_app_routes / sizeof oms_app_routes[0];
