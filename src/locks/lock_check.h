/* The lock check of the write path (SPEC §7). Every change calls it inside
 * its own database transaction, after the branch head is read and before
 * anything is written, with every resource the change touches. */
#ifndef OMS_LOCK_CHECK_H
#define OMS_LOCK_CHECK_H

#include <stddef.h>

#include "core/context.h"
#include "store/db.h"

/* Pass as the only resource for a change to the whole branch (deleting
 * it): then every live lock on the branch blocks. */
#define OMS_LOCK_WHOLE_BRANCH "*"

/* OMS_OK when no other holder's active lock covers the branch or any of the
 * resources ("KIND/API_NAME") or the route's declared key (ctx->touch_key,
 * when `branch` is ctx->touch_branch: the key spec, docs/architecture.md); otherwise OMS_ELOCKED with the problem
 * members (and retry_after_seconds, which the renderer turns into
 * Retry-After) in ctx->problem_extra. An X-Lock-ID naming another principal's lock is
 * OMS_ELOCKNOTHOLDER (403), one naming the caller's own ended lock or no
 * lock at all OMS_ELOCKLOST (409, fencing). */
int oms_lock_check_write(oms_dbconn *c, oms_ctx *ctx, const char *branch, const char *const *resources,
                         size_t n, oms_error *err);

/* The check's reads made ahead (docs/storage.md "Round trips"): queued
 * right after the statement that locks the branch row, they travel with it
 * (one round trip for both) and the check later only judges them. The same
 * reads as the check's own, in the same order (the shared advisory lock,
 * the X-Lock-ID rows share-locked, the live locks), so the protocol of
 * docs/locks.md is unchanged. */
#define OMS_LOCK_READS_MAX_OWN 16
typedef struct {
    const char *branch; /* NULL: nothing was read ahead (a read route, a malformed X-Lock-ID) */
    size_t nown;
    oms_dbres *own_rows[OMS_LOCK_READS_MAX_OWN];
    oms_dbres *live;
    bool none_live; /* not read: this transaction already found no live lock on the branch */
} oms_lock_reads;

/* Queues the reads (oms_db_read_later); the caller sends them (its next
 * statement, or oms_db_flush) and frees them with oms_lock_reads_free. */
int oms_lock_check_read_ahead(oms_dbconn *c, oms_ctx *ctx, const char *branch, oms_lock_reads *r, oms_error *err);
void oms_lock_reads_free(oms_lock_reads *r);
/* Instead of the reads, inside a transaction that already holds the
 * branch's shared advisory lock and whose reads found no live lock on the
 * branch (a group commit's earlier change, txn/group_commit.h): no lock can
 * have been granted since, so there is nothing to read. True when that
 * verdict applies to this request (it names no X-Lock-ID, whose fencing
 * needs its rows); false leaves *r empty and the caller reads. */
bool oms_lock_reads_assume_none(const oms_ctx *ctx, const char *branch, oms_lock_reads *r);
/* The reads found no live lock on their branch. */
bool oms_lock_reads_found_none(const oms_lock_reads *r);
/* oms_lock_check_write judging the reads made ahead when they are for
 * `branch` (`ahead` may be NULL: it reads them itself). */
int oms_lock_check_write_with(oms_dbconn *c, oms_ctx *ctx, oms_lock_reads *ahead, const char *branch,
                              const char *const *resources, size_t n, oms_error *err);

#endif
