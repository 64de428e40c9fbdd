/* Group commit per branch (group_commit.c, docs/storage.md "Group
 * commit"): the changes of one branch that queue behind a transaction of
 * that branch run together in the next one, each in its own savepoint, and
 * are answered after its one COMMIT. */
#ifndef OMS_TXN_GROUP_COMMIT_H
#define OMS_TXN_GROUP_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "txn/change.h"

/* A change's work inside an open transaction (step, lock check, audit
 * event, outbox), without BEGIN or COMMIT. */
typedef int (*oms_group_body_fn)(oms_dbconn *c, oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out,
                                 oms_error *err);
/* A change run alone, in its own transaction. */
typedef int (*oms_group_solo_fn)(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_error *err);

/* Runs the change of spec->branch in the branch's group: alone (solo) when
 * no transaction of the branch is in flight, else with the others that
 * waited (on a backend with one writer: one group for every change, which
 * then needs no branch). True with the outcome in *rc, and *alone when
 * solo ran it (its own retries spent); false when grouping is off, a
 * change without a branch has several writers, or the process has too
 * many branches (the caller runs it alone). */
bool oms_group_commit_run(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_group_body_fn body,
                          oms_group_solo_fn solo, int *rc, bool *alone, oms_error *err);
void oms_group_commit_enable(bool on); /* OMS_GROUP_COMMIT; counted in /metrics */

#endif
