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

#endif
