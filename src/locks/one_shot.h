/* A holder's acquisition and release in one statement with their audit
 * event and outbox row (PostgreSQL; txn/change.h oms_change_one_shot,
 * docs/locks.md "One round trip"). Each has three parts: predict (what
 * the usual step would report, from memory), send (queue the statement)
 * and made (read its answer). Whatever the statement does not make, the
 * usual step (lifecycle.h) decides and explains. */
#ifndef OMS_LOCKS_ONE_SHOT_H
#define OMS_LOCKS_ONE_SHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "locks/lifecycle.h"
#include "store/db.h"

/* Stands for the fencing token in the predicted events until the
 * statement writes the real one: no token is negative. */
#define OMS_LOCK_TOKEN_PENDING (-4242424242424242LL)

/* The acquisition of out->lock (oms_lock_prepare'd) with a TTL of `ttl_s`:
 * out->detail with the pending token, status 201. */
void oms_lock_acquire_predict(int64_t ttl_s, oms_lock_change *out);
int oms_lock_acquire_send(oms_dbconn *c, const oms_lock_change *chg, int64_t ttl_s, int64_t acl_version,
                          const oms_dbparam *audit, const oms_dbparam *event, oms_dbres **rows, oms_error *err);
/* true when the lock was granted: its times and token into out->lock. */
bool oms_lock_acquire_made(const oms_dbres *rows, int64_t ttl_s, oms_lock_change *out);

/* The release of lock `id` by its holder ctx->sub, when this process
 * granted it (locks/granted.h): out->lock as remembered, out->detail,
 * status 200. false otherwise (someone else's lock, or not remembered). */
bool oms_lock_release_predict(oms_ctx *ctx, const char *id, const char *reason, oms_lock_change *out);
int oms_lock_release_send(oms_dbconn *c, const oms_lock_change *chg, int64_t acl_version, const oms_dbparam *audit,
                          const oms_dbparam *event, oms_dbres **rows, oms_error *err);
/* true when the lock was released: out->lock and out->now from the row. */
bool oms_lock_release_made(oms_ctx *ctx, const oms_dbres *rows, oms_lock_change *out);

#endif
