/* The SQL of ACL policies (src/auth): one operation per statement, both
 * dialects side by side (the same text on both today). docs/storage.md. */
#ifndef OMS_STORE_ACL_SQL_H
#define OMS_STORE_ACL_SQL_H

#include <stdint.h>

#include "store/db.h"
#include "util/error.h"

/* The columns of a policy row, in the order the reads return them. */
enum {
    OMS_ACL_COL_ID,
    OMS_ACL_COL_SUBJECT,
    OMS_ACL_COL_EFFECT,
    OMS_ACL_COL_PERMISSIONS, /* JSON array text */
    OMS_ACL_COL_BRANCHES,    /* JSON array text */
    OMS_ACL_COL_DESCRIPTION,
    OMS_ACL_COL_REVISION,
    OMS_ACL_COL_ETAG,
    OMS_ACL_COL_CREATED_AT,
    OMS_ACL_COL_CREATED_BY,
    OMS_ACL_COL_UPDATED_AT,
    OMS_ACL_COL_UPDATED_BY,
};

/* A policy as written. */
typedef struct {
    const char *id, *subject, *effect, *permissions, *branches, *description, *etag, *by;
    int64_t revision, at;
} oms_store_acl_row;

/* The ACL version (its one row missing: OMS_EINTERNAL). */
int oms_store_acl_version(oms_dbconn *c, int64_t *out, oms_error *err);
/* The same read held back (oms_db_read_later) to travel with a change
 * transaction's first statement: one row, the version. */
int oms_store_acl_version_later(oms_dbconn *c, oms_dbres **rows, oms_error *err);
/* Bumps it; `*changed` is the number of rows updated (1). */
int oms_store_acl_bump(oms_dbconn *c, int64_t *changed, oms_error *err);
/* The version and every policy in one statement (one snapshot): rows
 * (version, id, subject, effect, permissions, branches), one row with a NULL
 * id when there is no policy. */
int oms_store_acl_load_all(oms_dbconn *c, oms_dbres **out, oms_error *err);
/* The version and the head of `branch` in one round trip: rows (version,
 * head or NULL). */
int oms_store_acl_version_and_head(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);

/* One policy (OMS_ACL_COL_* columns), zero rows when there is none. */
int oms_store_acl_get(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* A page of policies after (after_ms, after_id) in (created_at, id) order,
 * optionally of one subject ("" for all), at most `limit` rows. */
int oms_store_acl_list(oms_dbconn *c, const char *subject, int64_t after_ms, const char *after_id, int64_t limit,
                       oms_dbres **out, oms_error *err);
/* Inserts a new policy (revision 1, created = updated). */
int oms_store_acl_insert(oms_dbconn *c, const oms_store_acl_row *row, oms_error *err);
/* Replaces the policy whose ETag is still `old_etag`; `*changed` is 0 when
 * it changed concurrently. */
int oms_store_acl_update(oms_dbconn *c, const oms_store_acl_row *row, const char *old_etag, int64_t *changed,
                         oms_error *err);
/* Deletes the policy whose ETag is still `old_etag`; `*changed` as above. */
int oms_store_acl_delete(oms_dbconn *c, const char *id, const char *old_etag, int64_t *changed, oms_error *err);

#endif
