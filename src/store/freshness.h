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
#include "util/flight.h"

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

/* A read the event loop would answer from memory, on PostgreSQL: instead of
 * waiting for the freshness read it parks, and the first read of the branch
 * to start after it parked answers it (whoever leads that read: a handler
 * thread's request or the store's reader thread). `answered` runs on the
 * reading thread with rc (OMS_OK and the values, or the read's error) set,
 * and must not block; p stays untouched by the store after it returns. */
typedef struct oms_fresh_parked {
    oms_flight_parked base; /* first */
    void (*answered)(struct oms_fresh_parked *p);
    int rc;
    int64_t version;
    char head[65];
    int issue_setting;
} oms_fresh_parked;

/* PostgreSQL, under the sole-writer lease (store/sole_writer.h): fills p
 * (rc OMS_OK and the values) from the branch's last read when nothing was
 * committed since it started, and returns true; false otherwise (park or
 * read as before). Never blocks. */
bool oms_store_fresh_remembered(oms_db *db, const char *branch, oms_fresh_parked *p);

/* Parks p (p->answered set): false when this backend has no round trip to
 * save (SQLite), or the branch has no flight (past MAX_FLIGHTS, none idle
 * to take over): read as before. */
bool oms_store_fresh_park(oms_db *db, const char *branch, oms_fresh_parked *p);
/* The server's stop, once no handler thread runs: every request parked
 * now is answered with an error at once (it then closes: the handlers have
 * stopped), and none parks any more (oms_store_fresh_park is false), even
 * one a read still in flight would have kept waiting. Does not wait for
 * that read. */
void oms_store_fresh_release_parked(void);
/* Stops the reader thread, waiting for a read it has in flight
 * (oms_store_close, before the connections close). */
void oms_store_fresh_stop_reader(void);

/* Reads made and requests answered since start (tests, benchmarks). */
void oms_store_fresh_counts(uint64_t *reads, uint64_t *requests);
/* Flights (one per branch) the parked reader has looked at since start:
 * one for each time it found parked requests there, never the whole list
 * (tests). */
uint64_t oms_store_fresh_reader_visits(void);
/* Flights given to a new branch after their own was not served lately
 * (past MAX_FLIGHTS), since start (tests, /metrics). */
uint64_t oms_store_fresh_recycled(void);
/* Tests: at most n flights made from now on (never more than MAX_FLIGHTS);
 * past that, new branches take idle ones. */
void oms_store_fresh_limit_flights(int n);

#endif
