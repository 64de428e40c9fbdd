/* Set-based writes of a commit (storage operations of src/vcs, both
 * dialects side by side): many rows in one statement each (the rows
 * travel as one JSON array parameter), so a commit of a thousand resources
 * costs a handful of round trips, not thousands. */
#ifndef OMS_STORE_BULK_SQL_H
#define OMS_STORE_BULK_SQL_H

#include <jansson.h>
#include <stdint.h>

#include "store/db.h"

/* rows: [[hash, type, content], ...]; existing objects are kept. */
int oms_bulk_objects(oms_dbconn *c, const json_t *rows, oms_error *err);
/* rows: [[resource, change, old_hash, new_hash], ...] */
int oms_bulk_changes(oms_dbconn *c, const char *commit, const json_t *rows, oms_error *err);
/* rows: [[resource, hash], ...]: upserted with the commit's provenance. */
int oms_bulk_branch_upsert(oms_dbconn *c, const char *branch, const char *commit, const char *author,
                           int64_t time_ms, const json_t *rows, oms_error *err);
/* rows: [[resource, hash, commit, author, time_ms], ...]: upserted, each
 * with its own provenance. */
int oms_bulk_branch_upsert_rows(oms_dbconn *c, const char *branch, const json_t *rows, oms_error *err);
/* resources: [resource, ...] about to change or go on a base branch: its
 * forks that share them get the rows as they are (call it first). */
int oms_bulk_branch_push(oms_dbconn *c, const char *branch, const json_t *resources, oms_error *err);
/* resources: [resource, ...] removed from the branch (a tombstone on a fork). */
int oms_bulk_branch_delete(oms_dbconn *c, const char *branch, const json_t *resources, oms_error *err);

#endif
