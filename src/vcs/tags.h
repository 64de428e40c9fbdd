/* Tags (SPEC §4): a name for one commit, forever; how consumers pin a
 * release. Created once (tag.create, audited with the commit), never moved
 * (re-creating a name is 409), deleted only with branch:admin and an issue
 * (tag.delete). A tag name follows the SPEC's name grammar (that of
 * branches) and is never a full commit id, so `?at=` is unambiguous. */
#ifndef OMS_VCS_TAGS_H
#define OMS_VCS_TAGS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
#include "store/db.h"

bool oms_valid_tag_name(const char *s);

/* A tag row (store/tags_sql.h columns) as the API shows it. */
json_t *oms_vcs_tag_json(const oms_dbres *r, size_t i);

/* Creates tag `name` for `commit` (an existing commit id). */
int oms_vcs_tag_create(oms_ctx *ctx, const char *name, const char *commit, const char *message, oms_error *err);
/* The tag (owned JSON) and its commit; OMS_ENOTFOUND without it. */
int oms_vcs_tag_get(oms_ctx *ctx, const char *name, json_t **out, char commit[65], oms_error *err);
/* limit + 1 tag rows after `after`, by name. */
int oms_vcs_tag_page(oms_ctx *ctx, const char *after, size_t limit, oms_dbres **out, oms_error *err);
/* Deletes the tag (OMS_ENOTFOUND without it). */
int oms_vcs_tag_delete(oms_ctx *ctx, const char *name, oms_error *err);

/* `at` (a full commit id or a tag name) to a commit id: OMS_EINVAL when it
 * is neither, OMS_ENOTFOUND when no such commit or tag exists. */
int oms_vcs_resolve_at(oms_dbconn *c, const char *at, char out[65], oms_error *err);

#endif
