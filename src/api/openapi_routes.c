/* Per-route OpenAPI metadata, keyed by method + pattern: what the route
 * table does not say (summary, query parameters, request body schema and
 * example, success status and body). tests/unit/test_openapi.c fails when a
 * route of the table has no entry here, or an entry no route. */
#include "api/openapi.h"

#include <string.h>

#define OBJ "{\"type\":\"object\"}"
#define REF(n) "{\"$ref\":\"#/components/schemas/" n "\"}"
/* A page whose items are of component n. */
#define PAGE_OF(n)                                                                                               \
    "{\"allOf\":[{\"$ref\":\"#/components/schemas/Page\"},{\"properties\":{\"items\":{\"items\":{\"$ref\":"       \
    "\"#/components/schemas/" n "\"}}}}]}"
#define VERDICT \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"comment\":{\"type\":\"string\"}}}", \
    "{\"comment\":\"Looks right\"}"
/* The body of a webhook's create and replace (api/webhooks.c, parse_input). */
#define WEBHOOK_IN                                                                                              \
    "{\"type\":\"object\",\"required\":[\"url\"],\"additionalProperties\":false,\"properties\":{"               \
    "\"url\":{\"type\":\"string\"},\"types\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"             \
    "\"branches\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"description\":{\"type\":\"string\"},"  \
    "\"enabled\":{\"type\":\"boolean\"}}}"
#define ISSUES "\"issue_id\":{\"type\":\"string\"},\"issue_ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"

const oms_openapi_route oms_openapi_routes[] = {
    {"GET", "/health", "Liveness", NULL, NULL, NULL, 200, REF("Status"), NULL},
    {"GET", "/ready", "Readiness (503 with a reason while not ready)", NULL, NULL, NULL, 200, REF("Status"), NULL},
    {"GET", "/metrics", "Prometheus metrics", NULL, NULL, NULL, 200, "{\"type\":\"string\"}", "text/plain"},
    {"GET", "/api/v1/me", "The caller: subject, roles, effective permissions", NULL, NULL, NULL, 200, REF("Me"), NULL},
    {"GET", "/api/v1/openapi.json", "This document", NULL, NULL, NULL, 200, OBJ, NULL},
    {"GET", "/ui", "The web console (redirects to /ui/)", "code state error error_description iss session_state", NULL, NULL, 308, NULL, NULL},
    {"GET", "/ui/{file}", "A static file of the web console", NULL, NULL, NULL, 200, "{\"type\":\"string\"}",
     "text/html"},

    {"GET", "/api/v1/schemas/{branch}", "The whole ontology at the head (export)", "at", NULL, NULL, 200,
     REF("Export"), NULL},
    {"GET", "/api/v1/schemas/{branch}/{kind}", "List resources of a kind", "q status at limit cursor", NULL, NULL,
     200, "KINDPAGE", NULL},
    {"POST", "/api/v1/schemas/{branch}/{kind}", "Create a resource", NULL, "KIND", NULL, 201, "KIND", NULL},
    {"GET", "/api/v1/schemas/{branch}/{kind}/{api_name}", "Read a resource", "at", NULL, NULL, 200, "KIND", NULL},
    {"PUT", "/api/v1/schemas/{branch}/{kind}/{api_name}", "Replace a resource (If-Match required)", NULL, "KIND",
     NULL, 200, "KIND", NULL},
    {"DELETE", "/api/v1/schemas/{branch}/{kind}/{api_name}", "Delete a resource (If-Match required)", NULL, NULL,
     NULL, 204, NULL, NULL},
    {"POST", "/api/v1/schemas/{branch}/changes", "Batch: many operations, one commit", NULL, REF("Batch"),
     "{\"message\":\"Add Person PROJ-1\",\"issue_ids\":[\"PROJ-1\"],\"operations\":[{\"op\":\"create\","
     "\"kind\":\"shared-properties\",\"api_name\":\"email\",\"document\":{\"api_name\":\"email\",\"type\":\"string\"}}]}",
     200, REF("WriteResult"), NULL},
    {"POST", "/api/v1/schemas/{branch}/validate", "Dry run of a change set: errors and breaking changes", NULL,
     REF("Batch"),
     "{\"operations\":[{\"op\":\"create\",\"kind\":\"shared-properties\",\"api_name\":\"email\","
     "\"document\":{\"api_name\":\"email\",\"type\":\"string\"}}]}",
     200, REF("Validation"), NULL},

    {"GET", "/api/v1/branches", "List branches", "limit cursor", NULL, NULL, 200, PAGE_OF("Branch"), NULL},
    {"POST", "/api/v1/branches", "Create a branch", NULL,
     "{\"type\":\"object\",\"required\":[\"name\"],\"additionalProperties\":false,\"properties\":{"
     "\"name\":{\"$ref\":\"#/components/schemas/BranchName\"},\"from\":{\"type\":\"string\"}}}",
     "{\"name\":\"feature/x\",\"from\":\"main\"}", 201, REF("Branch"), NULL},
    {"GET", "/api/v1/branches/{branch}", "Read a branch", NULL, NULL, NULL, 200, REF("Branch"), NULL},
    {"DELETE", "/api/v1/branches/{branch}", "Delete a branch", NULL, NULL, NULL, 204, NULL, NULL},
    {"GET", "/api/v1/branches/{branch}/commits", "First-parent history", "resource author since until limit cursor",
     NULL, NULL, 200, PAGE_OF("Commit"), NULL},
    {"GET", "/api/v1/commits/{id}", "A commit with its changes", NULL, NULL, NULL, 200, REF("Commit"), NULL},
    {"GET", "/api/v1/diff", "Diff between two refs or commits", "from to", NULL, NULL, 200, REF("Diff"), NULL},
    {"GET", "/api/v1/issues/{key}/commits", "Commits linked to an issue", "limit cursor", NULL, NULL, 200,
     PAGE_OF("Commit"), NULL},

    {"GET", "/api/v1/tags", "List tags", "limit cursor", NULL, NULL, 200, PAGE_OF("Tag"), NULL},
    {"POST", "/api/v1/tags", "Create a tag (immutable; re-creating a name is 409)", NULL,
     "{\"type\":\"object\",\"required\":[\"name\",\"commit\"],\"additionalProperties\":false,\"properties\":{"
     "\"name\":{\"type\":\"string\"},\"commit\":{\"type\":\"string\",\"description\":\"a commit id, or a branch"
     " (its head)\"},\"message\":{\"type\":\"string\"}}}",
     "{\"name\":\"v12\",\"commit\":\"main\",\"message\":\"Release 12\"}", 201, REF("Tag"), NULL},
    {"GET", "/api/v1/tags/{name}", "Read a tag", NULL, NULL, NULL, 200, REF("Tag"), NULL},
    {"DELETE", "/api/v1/tags/{name}", "Delete a tag (branch:admin and an issue reference)", NULL, NULL, NULL, 204,
     NULL, NULL},

    {"POST", "/api/v1/branches/{branch}/merge", "Three-way merge from a source", NULL,
     "{\"type\":\"object\",\"required\":[\"source\"],\"additionalProperties\":false,\"properties\":{"
     "\"source\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},\"resolutions\":{\"type\":\"object\","
     "\"additionalProperties\":{\"anyOf\":[{\"enum\":[\"source\",\"target\"]},{\"type\":\"object\"}]}}," ISSUES "}}",
     "{\"source\":\"feature/x\",\"message\":\"Merge feature/x PROJ-1\",\"resolutions\":{\"object-types/Person\":"
     "{\"/properties/2/type\":\"source\"},\"object-types/Team\":\"target\"}}",
     200, REF("Merge"), NULL},
    {"POST", "/api/v1/branches/{branch}/revert", "Revert a commit as a new commit", NULL,
     "{\"type\":\"object\",\"required\":[\"commit\"],\"additionalProperties\":false,\"properties\":{"
     "\"commit\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"}," ISSUES "}}",
     "{\"commit\":\"6f1c0e7d\",\"message\":\"Revert PROJ-2\"}", 201, REF("Revert"), NULL},
    {"PUT", "/api/v1/branches/{branch}/settings", "Branch settings", NULL,
     "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"protected\":{\"type\":\"boolean\"},"
     "\"required_approvals\":{\"type\":\"integer\",\"minimum\":0},\"breaking_change_approvals\":{\"type\":\"integer\","
     "\"minimum\":0},\"issue_required\":{\"type\":[\"boolean\",\"null\"]},\"compatibility\":{\"enum\":[\"warn\","
     "\"block\",\"none\"]},\"transitive\":{\"type\":\"boolean\"}}}",
     "{\"protected\":true,\"required_approvals\":1}", 200, REF("Branch"), NULL},
    {"GET", "/api/v1/proposals", "List proposals (needs_review=true: those awaiting the caller's review)",
     "state target needs_review limit cursor", NULL, NULL, 200, PAGE_OF("Proposal"),
     NULL},
    {"POST", "/api/v1/proposals", "Create a proposal", NULL,
     "{\"type\":\"object\",\"required\":[\"source\",\"target\",\"title\"],\"properties\":{\"source\":{\"type\":"
     "\"string\"},\"target\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},\"description\":{\"type\":"
     "\"string\"},\"draft\":{\"type\":\"boolean\"},\"reviewers\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"string\"}}," ISSUES "}}",
     "{\"source\":\"feature/x\",\"target\":\"main\",\"title\":\"Add Person\",\"description\":\"PROJ-1\"}", 201,
     REF("Proposal"), NULL},
    {"GET", "/api/v1/proposals/{id}", "A proposal with its diff, conflicts and reviews", NULL, NULL, NULL, 200,
     REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/open", "Open a draft", NULL, NULL, NULL, 200, REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/approve", "Approve the current source head, with an optional comment", NULL,
     VERDICT, 200, REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/reject", "Reject (closes the proposal), with an optional comment", NULL,
     VERDICT, 200, REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/request-changes",
     "Request changes: blocks merging until the same reviewer approves or dismisses", NULL, VERDICT, 200,
     REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/dismiss", "Withdraw one's own review (a change request among it)", NULL,
     VERDICT, 200, REF("Proposal"), NULL},
    {"GET", "/api/v1/proposals/{id}/comments", "Comments in the order they were made", "limit cursor", NULL, NULL,
     200, PAGE_OF("ProposalComment"), NULL},
    {"POST", "/api/v1/proposals/{id}/comments", "Comment on the proposal, a resource or a field (JSON pointer)", NULL,
     "{\"type\":\"object\",\"required\":[\"body\"],\"additionalProperties\":false,\"properties\":{\"body\":{"
     "\"type\":\"string\"},\"resource\":{\"type\":\"string\"},\"field\":{\"type\":\"string\"}}}",
     "{\"body\":\"Why long?\",\"resource\":\"object-types/Person\",\"field\":\"/properties/age/type\"}", 201,
     REF("ProposalComment"), NULL},
    {"POST", "/api/v1/proposals/{id}/reviewers", "Request reviewers", NULL,
     "{\"type\":\"object\",\"required\":[\"reviewers\"],\"additionalProperties\":false,\"properties\":{"
     "\"reviewers\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}",
     "{\"reviewers\":[\"alice\"]}", 200, REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/close", "Close", NULL, NULL, NULL, 200, REF("Proposal"), NULL},
    {"POST", "/api/v1/proposals/{id}/merge", "Merge the approved source commit", NULL,
     "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"message\":{\"type\":\"string\"}," ISSUES
     "}}",
     "{\"message\":\"Merge PROJ-1\"}", 200, REF("Proposal"), NULL},

    {"GET", "/api/v1/overrides", "List overrides", "state limit cursor", NULL, NULL, 200, PAGE_OF("Override"), NULL},
    {"POST", "/api/v1/overrides", "Request an emergency override", NULL,
     "{\"type\":\"object\",\"required\":[\"kind\",\"branch\",\"justification\",\"incident\"],\"additionalProperties\":"
     "false,\"properties\":{\"kind\":{\"enum\":[\"issue_requirement\",\"protected_branch\",\"lock\","
     "\"breaking_change\"]},\"branch\":{\"type\":\"string\"},\"resource\":{\"type\":\"string\"},\"justification\":{"
     "\"type\":\"string\",\"minLength\":50},\"incident\":{\"type\":\"string\"},\"ttl_seconds\":{\"type\":\"integer\","
     "\"minimum\":1,\"maximum\":14400}}}",
     "{\"kind\":\"protected_branch\",\"branch\":\"main\",\"justification\":\"Production outage: the Person type "
     "blocks ingestion and must be fixed now\",\"incident\":\"INC-42\",\"ttl_seconds\":3600}",
     201, REF("Override"), NULL},
    {"GET", "/api/v1/overrides/{id}", "Read an override", NULL, NULL, NULL, 200, REF("Override"), NULL},
    {"POST", "/api/v1/overrides/{id}/approve", "Approve an override", NULL, NULL, NULL, 200, REF("Override"), NULL},
    {"POST", "/api/v1/overrides/{id}/reject", "Reject an override", NULL, NULL, NULL, 200, REF("Override"), NULL},
    {"POST", "/api/v1/overrides/{id}/cancel", "Cancel an override", NULL, NULL, NULL, 200, REF("Override"), NULL},
    {"GET", "/api/v1/alerts", "Security alerts", "rule limit cursor", NULL, NULL, 200, PAGE_OF("Alert"), NULL},

    {"GET", "/api/v1/events", "Events in order after a position (CloudEvents), filtered by what the caller may read",
     "after types branch limit", NULL, NULL, 200, REF("EventPage"), NULL},
    {"GET", "/api/v1/webhooks", "List webhook subscriptions (secrets are never shown)", "limit cursor", NULL, NULL, 200,
     PAGE_OF("Webhook"), NULL},
    {"POST", "/api/v1/webhooks", "Create a webhook subscription (its secret is shown in this answer only)", NULL,
     WEBHOOK_IN,
     "{\"url\":\"https://hooks.example.com/oms\",\"types\":[\"commit.*\"],\"branches\":[\"main\"]}", 201,
     REF("WebhookCreated"), NULL},
    {"GET", "/api/v1/webhooks/{id}", "Read a webhook subscription", NULL, NULL, NULL, 200, REF("Webhook"), NULL},
    {"PUT", "/api/v1/webhooks/{id}", "Replace a webhook subscription's settings (the secret is kept)", NULL, WEBHOOK_IN,
     "{\"url\":\"https://hooks.example.com/oms\",\"types\":[\"*\"],\"branches\":[],\"enabled\":true}", 200,
     REF("Webhook"), NULL},
    {"DELETE", "/api/v1/webhooks/{id}", "Delete a webhook subscription", NULL, NULL, NULL, 204, NULL, NULL},
    {"GET", "/api/v1/webhooks/{id}/deliveries", "Deliveries of a subscription, newest first", "status limit cursor",
     NULL, NULL, 200, PAGE_OF("WebhookDelivery"), NULL},
    {"POST", "/api/v1/webhooks/{id}/deliveries/{key}/redeliver", "Send a delivery's event again", NULL, NULL, NULL, 202,
     REF("WebhookDelivery"), NULL},

    {"GET", "/api/v1/acl/policies", "List ACL policies", "subject limit cursor", NULL, NULL, 200,
     PAGE_OF("AclPolicyRecord"), NULL},
    {"POST", "/api/v1/acl/policies", "Create an ACL policy", NULL, REF("AclPolicy"),
     "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":"
     "[\"team-a/**\"],\"description\":\"PROJ-7\"}",
     201, REF("AclPolicyRecord"), NULL},
    {"GET", "/api/v1/acl/policies/{id}", "Read an ACL policy", NULL, NULL, NULL, 200, REF("AclPolicyRecord"), NULL},
    {"PUT", "/api/v1/acl/policies/{id}", "Replace an ACL policy", NULL, REF("AclPolicy"),
     "{\"subject\":\"user:alice\",\"effect\":\"allow\",\"permissions\":[\"schema:write\"],\"branches\":[\"main\"]}",
     200, REF("AclPolicyRecord"), NULL},
    {"DELETE", "/api/v1/acl/policies/{id}", "Delete an ACL policy", NULL, NULL, NULL, 204, NULL, NULL},

    {"GET", "/api/v1/locks", "List locks", "branch holder state limit cursor", NULL, NULL, 200, PAGE_OF("Lock"),
     NULL},
    {"POST", "/api/v1/locks", "Acquire a lock", NULL,
     "{\"type\":\"object\",\"required\":[\"branch\"],\"additionalProperties\":false,\"properties\":{\"branch\":{"
     "\"type\":\"string\"},\"scope\":{\"enum\":[\"resource\",\"resource_type\",\"branch\"]},\"resource_type\":{"
     "\"type\":\"string\"},\"resource_id\":{\"type\":\"string\"},\"kind\":{\"enum\":[\"indexing\",\"migration\","
     "\"backup\",\"maintenance\",\"manual\"]},\"reason\":{\"type\":\"string\"},\"ttl_seconds\":{\"type\":\"integer\"},"
     "\"heartbeat_seconds\":{\"type\":\"integer\"},\"wait_seconds\":{\"type\":\"number\"}}}",
     "{\"branch\":\"main\",\"scope\":\"resource\",\"resource_type\":\"object-types\",\"resource_id\":\"Person\","
     "\"kind\":\"maintenance\",\"reason\":\"re-keying\",\"ttl_seconds\":600,\"heartbeat_seconds\":30}",
     201, REF("Lock"), NULL},
    {"GET", "/api/v1/locks/{id}", "Read a lock", NULL, NULL, NULL, 200, REF("Lock"), NULL},
    {"DELETE", "/api/v1/locks/{id}", "Release a lock (a forced release needs lock:admin and an issue)", NULL, NULL,
     NULL, 200, REF("Lock"), NULL},
    {"POST", "/api/v1/locks/{id}/heartbeat", "Heartbeat with progress", NULL,
     "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"progress\":{\"type\":\"object\","
     "\"additionalProperties\":false,\"properties\":{\"percent\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
     "\"phase\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"}}}}}",
     "{\"progress\":{\"percent\":40,\"phase\":\"build\",\"message\":\"4,000 of 10,000\"}}", 200, REF("Lock"), NULL},
    {"POST", "/api/v1/locks/{id}/extend", "Extend a lock", NULL,
     "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"ttl_seconds\":{\"type\":\"integer\","
     "\"minimum\":1}}}",
     "{\"ttl_seconds\":600}", 200, REF("Lock"), NULL},

    {"GET", "/api/v1/search/{branch}", "Search the ontology", "q kinds at limit cursor", NULL, NULL, 200,
     REF("SearchPage"), NULL},
    {"POST", "/api/v1/branches/{branch}/index/rebuild", "Rebuild the search index in the shadow", NULL,
     "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"reason\":{\"type\":\"string\"}}}",
     "{\"reason\":\"nightly\"}", 202, REF("IndexJob"), NULL},
    {"GET", "/api/v1/index-jobs/{id}", "An index job with its progress", NULL, NULL, NULL, 200, REF("IndexJob"), NULL},

    {"GET", "/api/v1/audit", "Audit events",
     "actor action resource branch outcome from to request_id commit order limit cursor", NULL, NULL,
     200, PAGE_OF("AuditEvent"), NULL},
    {"GET", "/api/v1/audit/verify", "Verify the audit chain and checkpoints", NULL, NULL, NULL, 200,
     REF("AuditVerification"), NULL},
    {"GET", "/api/v1/audit/export", "Export audit events (JSONL or CSV)",
     "format actor action resource branch outcome from to request_id commit order", NULL, NULL,
     200, "{\"type\":\"string\"}", "application/x-ndjson"},
    {"GET", "/api/v1/audit/{id}", "One audit event", NULL, NULL, NULL, 200, REF("AuditEvent"), NULL},
    {"GET", "/api/v1/compliance/report", "Compliance report (JSON, CSV or HTML)", "from to format", NULL, NULL, 200,
     REF("ComplianceReport"), NULL},
};
const size_t oms_openapi_routes_count = sizeof oms_openapi_routes / sizeof oms_openapi_routes[0];

const oms_openapi_route *oms_openapi_find(const char *method, const char *pattern)
{
    for (size_t i = 0; i < oms_openapi_routes_count; i++)
        if (strcmp(oms_openapi_routes[i].method, method) == 0 && strcmp(oms_openapi_routes[i].pattern, pattern) == 0)
            return &oms_openapi_routes[i];
    return NULL;
}
