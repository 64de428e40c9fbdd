/* Naming commits: refs are branch names or full commit ids. */
#ifndef OMS_REFS_H
#define OMS_REFS_H

#include "store/db.h"

/* Resolves `ref` (a branch name or a full commit id) to a commit id. */
int oms_resolve_ref(oms_dbconn *c, const char *ref, char out[65], oms_error *err);
/* Rewrites branch_resources of `branch` as the state of `commit` (the
 * branch's rows must be empty). */
int oms_materialize_commit(oms_dbconn *c, const char *branch, const char *commit, oms_error *err);

#endif
