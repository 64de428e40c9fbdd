/* Storage operations of tags (src/vcs/tags.c, SPEC §4): a tag row is
 * inserted once and only ever deleted. Every operation runs on the
 * caller's connection (inside its transaction for the changes). */
#ifndef OMS_STORE_TAGS_SQL_H
#define OMS_STORE_TAGS_SQL_H

#include <stdint.h>

#include "store/db.h"

/* The columns every tag read returns, in this order. */
#define OMS_STORE_TAG_COLS "name, commit_id, message, created_at, created_by"
enum { OMS_TAG_NAME, OMS_TAG_COMMIT, OMS_TAG_MESSAGE, OMS_TAG_CREATED_AT, OMS_TAG_CREATED_BY };

/* OMS_ECONFLICT when the name is taken (a tag never moves). */
int oms_store_tag_insert(oms_dbconn *c, const char *name, const char *commit, const char *message, int64_t now_ms,
                         const char *by, oms_error *err);
/* One row, or none (out->nrows == 0). */
int oms_store_tag_get(oms_dbconn *c, const char *name, oms_dbres **out, oms_error *err);
/* Tags after `after` (NULL: from the start) by name, at most `limit` rows. */
int oms_store_tag_page(oms_dbconn *c, const char *after, int64_t limit, oms_dbres **out, oms_error *err);
/* Every tag with its commit's tree and generation, oldest commit first:
 * name, commit_id, tree, generation. */
int oms_store_tags_with_trees(oms_dbconn *c, oms_dbres **out, oms_error *err);
/* The names of the tags whose commit is `head` or one of its ancestors of
 * generation `min_generation` or more (the walk over the parents stops
 * there: it costs the history since then). */
int oms_store_tags_reachable(oms_dbconn *c, const char *head, int64_t min_generation, oms_dbres **out,
                             oms_error *err);
/* *deleted: rows removed (0 or 1). */
int oms_store_tag_delete(oms_dbconn *c, const char *name, int64_t *deleted, oms_error *err);

#endif
