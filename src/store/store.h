/* The one storage interface the rest of OMS uses. Domain operations live in
 * the files of their concern (audit/, vcs/, locks/) and speak SQL through
 * store/db.h; this file owns opening, migrating and health. */
#ifndef OMS_STORE_H
#define OMS_STORE_H

#include "store/db.h"
#include "util/error.h"

typedef struct oms_store {
    oms_db *db;
} oms_store;

int oms_store_open(oms_store **out, const char *url, int busy_timeout_ms, oms_error *err);
/* The same with every deadline given (oms serve: from the configuration). */
int oms_store_open_opts(oms_store **out, const char *url, const oms_db_opts *opts, oms_error *err);
void oms_store_close(oms_store *s);

/* Newest schema version this binary knows for the store's backend. */
int oms_store_latest_version(const oms_store *s);
/* Current version (0 for an empty database). */
int oms_store_schema_version(oms_store *s, int *out, oms_error *err);
/* Applies pending migrations under the migration lock (a transaction-scoped
 * advisory lock on PostgreSQL, the write lock on SQLite), so concurrent starts
 * migrate once. Refuses (OMS_ECONFIG) a database newer than the binary. A
 * migration with a data step in C (14: the tree conversion) runs it in
 * batches of transactions and is recorded by the last one: interrupted,
 * the next call resumes it. */
int oms_store_migrate(oms_store *s, int *applied, oms_error *err);
/* The same, stopping at version `target` (current <= target <= latest):
 * `oms migrate --to N`, which builds earlier schemas for upgrade tests. */
int oms_store_migrate_to(oms_store *s, int target, int *applied, oms_error *err);
/* The same inside the caller's open write transaction on `c` (restore:
 * a schema rebuilt and filled in one transaction; data steps run inline). */
int oms_store_migrate_in_tx(oms_store *s, oms_dbconn *c, int target, int *applied, oms_error *err);
/* Ready for traffic? Within `timeout_ms` on the calling thread's
 * connection: room on the database's disk (SQLite: at least
 * `min_free_bytes` free on its filesystem), reachable, fully migrated, and
 * able to write (PostgreSQL: commits a transaction that has a transaction
 * id; SQLite: takes the write lock). Fails with a reason: OMS_EFULL "disk
 * full", OMS_ETIMEOUT "database busy", OMS_EUNAVAIL "migrations pending",
 * OMS_EDB "database unreachable". */
int oms_store_probe(oms_store *s, int timeout_ms, int64_t min_free_bytes, oms_error *err);
/* oms_store_probe with a 1 s deadline and no free-space floor. */
int oms_store_ready(oms_store *s, oms_error *err);

#endif
