/* Issue references of a change (SPEC §6.3): X-Issue-ID, X-Issue-IDs
 * (comma-separated), body issue_id / issue_ids, and keys found in the commit
 * message. Key forms are configurable; by default ABC-123 (Jira style,
 * GH-123 included) and #123. */
#ifndef OMS_ISSUE_REFS_H
#define OMS_ISSUE_REFS_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

/* Compiles the key forms (OMS_ISSUE_KEY_PATTERNS; NULL or "" for the
 * default). Until called, the default applies. */
int oms_issue_patterns_configure(const char *spec, oms_error *err);
/* Is `s` a well-formed issue key? */
bool oms_issue_key_valid(const char *s);
/* Appends every key found in free text (a commit message) to `out` (set
 * semantics: no duplicates). */
void oms_issue_keys_scan(const char *text, json_t *out);
/* All references of a change, unique, in order of appearance: `issue_id`
 * (X-Issue-ID), `issue_ids` (X-Issue-IDs, comma-separated), the body's
 * issue_id / issue_ids, keys in `message`; any of them may be NULL. Invalid
 * explicit references are appended to `invalid` when it is non-NULL. The
 * transport reads the headers (oms_issue_refs_collect, src/http/issues.c). */
json_t *oms_issue_refs_from(const char *issue_id, const char *issue_ids, const json_t *body, const char *message,
                            json_t *invalid);

#endif
