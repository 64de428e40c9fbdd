/* The SQL of src/ops (docs/storage.md): what /metrics reads of the shared
 * state, one operation each, both dialects side by side. */
#ifndef OMS_STORE_OPS_SQL_H
#define OMS_STORE_OPS_SQL_H

#include "store/db.h"
#include "util/error.h"

/* Live locks by kind, judged by the database clock: rows (kind, count). */
int oms_store_live_locks_by_kind(oms_dbconn *c, oms_dbres **out, oms_error *err);

/* Running index rebuilds by branch: rows (branch, id, phase, percent, done,
 * total). */
int oms_store_running_index_jobs(oms_dbconn *c, oms_dbres **out, oms_error *err);

#endif
