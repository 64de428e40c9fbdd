/* ACL policies in the database and the compiled set a server decides with.
 *
 * Freshness across instances (SPEC §11): `acl_version` is a one-row table
 * whose counter every ACL change bumps in its own transaction. Each
 * authorization reads that counter once (one indexed single-row SELECT on
 * the thread's connection) and compares it with the version of the set the
 * worker thread holds; only when the database is ahead is the whole policy
 * table reloaded and recompiled, once per process, and published to the
 * other threads. A change acknowledged by any instance is therefore seen by
 * every request that starts after the acknowledgement. docs/security.md
 * ("ACL policies") has the details and the measured cost. */
#ifndef OMS_ACL_STORE_H
#define OMS_ACL_STORE_H

#include <stdint.h>

#include "auth/acl.h"
#include "core/context.h"
#include "store/db.h"
#include "store/freshness.h"

/* The database's ACL version. */
int oms_acl_db_version(oms_dbconn *c, int64_t *out, oms_error *err);
/* Bumps it; call inside the write transaction of every ACL change. */
int oms_acl_db_bump(oms_dbconn *c, oms_error *err);
/* Reads the version and every policy in one statement (one snapshot on both
 * backends) and compiles them; `owner` tags the set (the db handle). */
int oms_acl_db_load(oms_dbconn *c, const void *owner, oms_acl **out, oms_error *err);

/* The route's decision for the request: RBAC refined by the current ACL
 * policies, for the route's permission `perm`, with the {branch} path
 * parameter (ctx->branch) as the branch context (NULL on routes without
 * one). out->denied_by, when set, is in the request arena. Fails (OMS_EDB,
 * OMS_EINTERNAL, ...) when the policies cannot be read: the caller refuses
 * the request (fail closed). With a branch, ctx->branch_head gets its head
 * from the same round trip. */
int oms_acl_authorize(oms_ctx *ctx, oms_perm perm, oms_acl_verdict *out, oms_error *err);

/* The same decision for another permission and branch, for a handler's own
 * check beyond the route's (lock:admin for a forced release, a reviewer's
 * rights on a proposal's target): reuses the request's version check. */
int oms_acl_check(oms_ctx *ctx, oms_perm perm, const char *branch, oms_acl_verdict *out, oms_error *err);

/* oms_acl_check for the route's own check (http/pipeline.c): a refusal
 * that its change transaction's settle makes is rendered as the route's
 * (authz.denied). */
int oms_acl_check_route(oms_ctx *ctx, oms_perm perm, const char *branch, oms_acl_verdict *out, oms_error *err);

/* Decided in the change's transaction (docs/security.md). On a route that
 * allows it (ctx->acl_deferred.on, set by the pipeline from the route
 * table), a check that the thread's set allows, made before the request
 * read the version, is recorded instead of reading it: the change
 * transaction holds back the version read to travel with its first
 * statement (oms_acl_version_later) and, once the step has run and before
 * anything it did counts, decides every recorded check again at that
 * version (oms_acl_settle). A check the thread's set refuses is decided at
 * once, as without deferral. The guarantee is unchanged: the version is
 * read after the request arrived, and no outcome of the request is used or
 * kept before the decision at that version. */
bool oms_acl_deferring(const oms_ctx *ctx);
int oms_acl_version_later(oms_dbconn *c, oms_dbres **rows, oms_error *err);
/* `rows`: the held-back read (flushed when it has not travelled yet), or
 * NULL to read now. OMS_OK when every recorded check allows. OMS_EFORBIDDEN
 * when one refuses: ctx->acl_deferred.denied names it, `err` and the problem
 * extra are oms_acl_refusal's. OMS_EDB or OMS_EUNAVAIL ("the ACL policies
 * cannot be read", ctx->acl_deferred.unreadable) when the version or the
 * policies cannot be read: nothing is decided, the checks stay recorded
 * (oms_acl_deferring) and the next settle decides them. When the set must
 * be reloaded, what the transaction held back is sent first; its failure is
 * returned as it is. */
int oms_acl_settle(oms_dbconn *c, oms_ctx *ctx, oms_dbres **rows, oms_error *err);
/* For a change in one statement (txn/change.h, oms_change_one_shot): the
 * version of the thread's set when it allows every recorded check, read
 * from nothing; false when the thread has no set of this database or the
 * set refuses one (the change then settles as usual). The statement writes
 * only while the database's version is still that one, which decides the
 * checks as oms_acl_settle would at it; once it wrote,
 * oms_acl_settled_pinned. */
bool oms_acl_pinned_version(oms_ctx *ctx, int64_t *version);
void oms_acl_settled_pinned(oms_ctx *ctx);

/* A handler's refusal of `perm` (on `branch`, or without a branch): 403
 * with the missing permission and the deny policy in the problem extra
 * (`extra`, stolen, may be NULL, gets those members). */
int oms_acl_refusal(oms_ctx *ctx, oms_perm perm, const char *branch, const oms_acl_verdict *v, json_t *extra,
                    oms_error *err);

/* The same decision on `branch` made without waiting, for a request the
 * event loop may answer itself: the freshness read as oms_acl_check's
 * (on this thread's connection), then the thread's set, or the process's
 * when it is new enough and not being replaced. False, having decided
 * nothing, when that is not possible (the read failed, the sets are
 * behind or busy): the request then goes to a handler. */
bool oms_acl_check_now(oms_ctx *ctx, oms_perm perm, const char *branch, oms_acl_verdict *out);
/* The same, with the freshness read a parked request was answered with
 * (store/freshness.h oms_store_fresh_park): it started after the request
 * arrived. Sets the context's head and issue setting from it. */
bool oms_acl_check_read(oms_ctx *ctx, oms_perm perm, const char *branch, const oms_fresh_parked *read,
                        oms_acl_verdict *out);

/* Whether a deny policy limited to branches applies to the caller for
 * `perm` (oms_acl_denies_on_some_branch on the current set). */
int oms_acl_branch_denies(oms_ctx *ctx, oms_perm perm, bool *out, oms_error *err);

#endif
