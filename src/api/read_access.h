/* Read access to ontology content named without a {branch} path parameter
 * (SPEC §6.2): a read denial on a branch covers every way its content can
 * leave, so diffs, commit detail, branch creation from a ref, merge
 * sources, proposals and issue links all come through here rather than
 * each handler deciding for itself.
 *
 * A ref that is a branch name is readable when schema:read is allowed on
 * that branch. A commit id is readable when it is in the history of some
 * branch the caller may read; the history walk happens only for callers
 * that have a deny policy limited to branches (everyone else may read
 * every branch, so every commit). */
#ifndef OMS_API_READ_ACCESS_H
#define OMS_API_READ_ACCESS_H

#include <stdbool.h>

#include "http/request.h"
#include "store/db.h"

/* Resolves `ref` (branch name or commit id) to a commit id the caller may
 * read. On a denial the audited 403 is already answered and OMS_EFORBIDDEN
 * returned; other errors are returned for the caller to answer. */
int oms_read_ref(oms_request *req, oms_dbconn *c, const char *ref, char out[65], oms_error *err);

/* `?at=` (a commit id or a tag, SPEC §4) to a commit id the caller may
 * read; answered like oms_read_ref on a denial. */
int oms_read_at(oms_request *req, oms_dbconn *c, const char *at, char out[65], oms_error *err);

/* Whether the caller may read `commit` (see above), without answering. */
int oms_commit_readable(oms_request *req, oms_dbconn *c, const char *commit, bool *out, oms_error *err);

/* Whether the caller may read branch `name` (schema:read there); false
 * also when the policies cannot be read (lists fail closed by omission). */
bool oms_branch_readable(oms_request *req, const char *name);

#endif
