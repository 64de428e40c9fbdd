/* Branches: named pointers to commits (SPEC §4). Creation, deletion and
 * settings are change transactions (src/txn/change.h). */
#ifndef OMS_VCS_BRANCHES_H
#define OMS_VCS_BRANCHES_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
#include "store/db.h"

/* A branch row (store/vcs_sql.h OMS_STORE_BRANCH_COLS) as the API shows it. */
json_t *oms_vcs_branch_json(const oms_dbres *r, size_t i);
/* The branch as JSON and its head; OMS_ENOTFOUND when absent. */
int oms_vcs_branch_get(oms_ctx *ctx, const char *name, json_t **out, char head[65], oms_error *err);
/* A page of branch rows after `after` (limit + 1 rows fetched). */
int oms_vcs_branch_page(oms_ctx *ctx, const char *after, size_t limit, oms_dbres **out, oms_error *err);

/* Creates branch `name` at `from` (a branch, whose rows and search index
 * are copied as one state, or a commit id). `head` gets its head. */
int oms_vcs_branch_create(oms_ctx *ctx, const char *name, const char *from, char head[65], oms_error *err);
/* Deletes branch `name`: refused when protected (403 protected_branch),
 * when `if_match` (may be NULL) no longer names its head (412) or when any
 * live lock of another holder is on it (423). */
int oms_vcs_branch_delete(oms_ctx *ctx, const char *name, const char *if_match, oms_error *err);

/* New settings: a NULL member keeps the current value; issue_required may
 * be JSON null (the server's default). */
typedef struct {
    const json_t *protect, *required_approvals, *breaking_change_approvals, *issue_required;
    const json_t *compatibility, *transitive; /* "warn"|"block"|"none"; boolean (SPEC §4, vcs/compat.h) */
} oms_branch_settings;
int oms_vcs_branch_settings(oms_ctx *ctx, const char *name, const oms_branch_settings *s, oms_error *err);

#endif
