/* Answer schemas of the governance, audit and review routes (SPEC §4, §6.2,
 * §6.4, §9), written from what the handlers build: overrides
 * (src/governance/overrides.c, oms_override_row_json), ACL policies
 * (src/auth/acl_admin.c, policy_out), audit events (src/audit/query.c,
 * oms_audit_row_json), alerts (src/api/alerts.c) and proposal comments
 * (src/vcs/proposals.c, oms_proposal_comment_json). Members the server
 * always sends are required; members it sends as null are typed so (an
 * audit event's hashes are null until the chainer seals it).
 * tests/api/check_responses.py validates every answer of the API suite
 * against them. */
#include "api/openapi.h"

const char oms_openapi_gov_schemas[] =
    "{\"Override\":{\"type\":\"object\",\"required\":[\"id\",\"kind\",\"branch\",\"resource\",\"requester\","
    "\"state\",\"ttl_seconds\",\"approvals_required\",\"created_at\",\"expires_at\",\"approvals\"],\"properties\":{"
    "\"id\":{\"type\":\"string\"},\"kind\":{\"enum\":[\"issue_requirement\",\"protected_branch\",\"lock\","
    "\"breaking_change\"]},\"branch\":{\"type\":\"string\"},\"resource\":{\"type\":[\"string\",\"null\"]},"
    "\"justification\":{\"type\":\"string\"},\"incident\":{\"type\":\"string\"},\"requester\":{\"type\":\"string\"},"
    "\"state\":{\"enum\":[\"pending\",\"approved\",\"rejected\",\"cancelled\",\"expired\",\"used\"]},"
    "\"ttl_seconds\":{\"type\":\"integer\",\"minimum\":1},\"approvals_required\":{\"type\":\"integer\","
    "\"minimum\":0},\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},\"expires_at\":{\"$ref\":\"#/components/schemas/Time\"},"
    "\"decided_by\":{\"type\":\"string\"},\"used_at\":{\"$ref\":\"#/components/schemas/Time\"},\"used_request_id\":{"
    "\"type\":\"string\"},\"approvals\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":["
    "\"approver\",\"at\"],\"properties\":{\"approver\":{\"type\":\"string\"},\"at\":{\"$ref\":\"#/components/schemas/Time\"}},"
    "\"additionalProperties\":false}}},\"additionalProperties\":false},\"AclPolicyRecord\":{\"type\":\"object\","
    "\"required\":[\"id\",\"revision\",\"subject\",\"effect\",\"permissions\",\"branches\",\"description\","
    "\"created_at\",\"created_by\",\"updated_at\",\"updated_by\"],\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"revision\":{\"type\":\"integer\",\"minimum\":1},\"subject\":{\"type\":\"string\"},\"effect\":{"
    "\"enum\":[\"allow\",\"deny\"]},\"permissions\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"branches\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"description\":{\"type\":\"string\"},"
    "\"created_at\":{\"$ref\":\"#/components/schemas/Time\"},\"created_by\":{\"type\":\"string\"},\"updated_at\":{"
    "\"$ref\":\"#/components/schemas/Time\"},\"updated_by\":{\"type\":\"string\"}},\"additionalProperties\":false},"
    "\"AuditEvent\":{\"type\":\"object\",\"required\":[\"id\",\"seq\",\"time\",\"time_ms\",\"actor\","
    "\"action\",\"resource\",\"outcome\",\"status\",\"request_id\",\"method\",\"route\",\"issue_keys\","
    "\"override_id\",\"commit_id\",\"before_hash\",\"after_hash\",\"changed_paths\",\"detail\",\"prev_hash\","
    "\"hash\"],\"properties\":{\"id\":{\"type\":\"string\"},\"seq\":{\"type\":\"integer\",\"minimum\":1},"
    "\"time\":{\"$ref\":\"#/components/schemas/Time\"},\"time_ms\":{\"type\":\"integer\"},\"actor\":{"
    "\"type\":\"object\",\"required\":[\"sub\",\"roles\",\"client_addr\",\"user_agent\"],\"properties\":{"
    "\"sub\":{\"type\":[\"string\",\"null\"]},\"roles\":{\"type\":[\"array\",\"null\"],\"items\":{\"type\":\"string\"}},"
    "\"client_addr\":{\"type\":[\"string\",\"null\"]},\"user_agent\":{\"type\":[\"string\",\"null\"]}},"
    "\"additionalProperties\":false},\"action\":{\"type\":\"string\"},\"resource\":{\"type\":\"object\","
    "\"required\":[\"kind\",\"branch\",\"id\"],\"properties\":{\"kind\":{\"type\":[\"string\",\"null\"]},"
    "\"branch\":{\"type\":[\"string\",\"null\"]},\"id\":{\"type\":[\"string\",\"null\"]}},\"additionalProperties\":false},"
    "\"outcome\":{\"enum\":[\"success\",\"failure\",\"denied\"]},\"status\":{\"type\":[\"integer\",\"null\"]},"
    "\"request_id\":{\"type\":[\"string\",\"null\"]},\"method\":{\"type\":[\"string\",\"null\"]},\"route\":{"
    "\"type\":[\"string\",\"null\"]},\"issue_keys\":{\"type\":[\"array\",\"null\"],\"items\":{\"type\":\"string\"}},"
    "\"override_id\":{\"type\":[\"string\",\"null\"]},\"commit_id\":{\"type\":[\"string\",\"null\"]},"
    "\"before_hash\":{\"type\":[\"string\",\"null\"]},\"after_hash\":{\"type\":[\"string\",\"null\"]},"
    "\"changed_paths\":{\"type\":[\"array\",\"null\"],\"items\":{\"type\":\"string\"}},\"detail\":{\"type\":["
    "\"object\",\"null\"]},\"prev_hash\":{\"type\":[\"string\",\"null\"]},\"hash\":{\"type\":[\"string\","
    "\"null\"]}},\"additionalProperties\":false},\"ProposalComment\":{\"type\":\"object\",\"required\":["
    "\"seq\",\"id\",\"author\",\"body\",\"resource\",\"pointer\",\"verdict\",\"source_head\",\"created_at\"],"
    "\"properties\":{\"seq\":{\"type\":\"integer\",\"minimum\":1},\"id\":{\"type\":\"string\"},\"author\":{"
    "\"type\":\"string\"},\"body\":{\"type\":\"string\"},\"resource\":{\"type\":[\"string\",\"null\"]},"
    "\"pointer\":{\"type\":[\"string\",\"null\"]},\"verdict\":{\"enum\":[\"approved\",\"rejected\",\"changes_requested\","
    "\"dismissed\",null]},\"source_head\":{\"type\":\"string\"},\"created_at\":{\"$ref\":\"#/components/schemas/Time\"}},"
    "\"additionalProperties\":false},\"Alert\":{\"type\":\"object\",\"required\":[\"id\",\"time\",\"rule\","
    "\"severity\",\"subject\",\"client_addr\",\"request_id\",\"detail\"],\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"time\":{\"$ref\":\"#/components/schemas/Time\"},\"rule\":{\"type\":\"string\"},\"severity\":{\"enum\":["
    "\"info\",\"warning\",\"critical\"]},\"subject\":{\"type\":[\"string\",\"null\"]},\"client_addr\":{"
    "\"type\":[\"string\",\"null\"]},\"request_id\":{\"type\":[\"string\",\"null\"]},\"detail\":{\"type\":\"object\"}},"
    "\"additionalProperties\":false}}"
;
