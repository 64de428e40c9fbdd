/* Storage of the audit log where the backends differ (docs/audit.md): the
 * event insert with its chainer queue row, the chain rows, and the
 * sealer's advisory lock. The rest of the audit SQL is the same text on
 * both backends and stays with its module (src/audit/). */
#ifndef OMS_STORE_AUDIT_SQL_H
#define OMS_STORE_AUDIT_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* Key of the transaction-scoped advisory lock held by the instance that
 * chains and seals, or archives ("OMS-SEAL" in ASCII). */
#define OMS_AUDIT_SEAL_LOCK_KEY INT64_C(5714731494797968716)

/* The event's columns from event_id to detail, as $1 .. $22 (see
 * audit_events); time_ms NULL means the database clock. */
#define OMS_AUDIT_EVENT_NPARAMS 22

/* Inserts one event and its audit_unchained queue row in the caller's
 * transaction (one round trip on PostgreSQL). */
int oms_store_audit_event_insert(oms_dbconn *c, const oms_dbparam *p, oms_error *err);

/* Inserts chain rows given as a JSON array of [pos, event_seq, prev_hash,
 * hash] arrays. */
int oms_store_audit_chain_insert(oms_dbconn *c, const char *rows_json, oms_error *err);

/* Waits for the sealer's lock (archiving). Nothing on SQLite, whose
 * writers are already serialised. */
int oms_store_audit_seal_lock(oms_dbconn *c, oms_error *err);
/* Takes the sealer's lock if free: *got false when another instance holds
 * it (always true on SQLite). */
int oms_store_audit_seal_try_lock(oms_dbconn *c, bool *got, oms_error *err);

/* May several instances share this database (PostgreSQL)? Then the audit
 * key must come from the configuration, never from a file beside the
 * database. */
bool oms_store_audit_shared(const oms_db *db);

#endif
