/* The freshness read of a branch read (the ACL version and the branch's
 * head, one statement), coalesced on PostgreSQL: single-flight per branch.
 *
 * A GET must never be served a head older than its own arrival (SPEC §11:
 * a commit acknowledged by any instance is seen by every read that starts
 * after the acknowledgement). A read already in flight when a request
 * arrives may have been answered before that acknowledgement, so the
 * request never shares it: it waits for the NEXT read, which starts after
 * its arrival, and every request that arrived before that next read starts
 * shares it. Under load one round trip then answers many requests instead
 * of one each (docs/storage.md "Round trips"). On SQLite the read costs
 * microseconds; a thread answers a repeat read of a branch from its last
 * one when the database's change token (oms_db_change_token: the WAL-index
 * header, which every commit of every process rewrites before it returns)
 * is the one taken before that read: nothing was committed since, so the
 * answer is the one a read now would give. */
#ifndef OMS_STORE_FRESHNESS_H
#define OMS_STORE_FRESHNESS_H

#include <stdint.h>

#include "store/db.h"

/* *version: the ACL version; head: the branch's head ("" when there is no
 * such branch); *issue_setting: its issue_required (1, 0; -1 when NULL or
 * no such branch), for the issue check of a change on it. Errors as
 * oms_db_exec's. */
int oms_store_fresh_version_and_head(oms_dbconn *c, const char *branch, int64_t *version, char head[65],
                                     int *issue_setting, oms_error *err);

/* The ACL version alone, for a request without a branch: on SQLite
 * answered like a branch's read (the thread's last read while the change
 * token is unchanged). */
int oms_store_fresh_acl_version(oms_dbconn *c, int64_t *version, oms_error *err);

/* Reads made and requests answered since start (tests, benchmarks). */
void oms_store_fresh_counts(uint64_t *reads, uint64_t *requests);

#endif
