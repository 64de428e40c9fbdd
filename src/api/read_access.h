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

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/context.h"
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

/* A paged list of rows that each name a commit (tags, a key's commits):
 * reads `?limit=&cursor=` (oms_paging), fetches limit + 1 rows after the
 * cursor with `fetch`, and answers the page (cursor: column 0) listing only
 * the rows whose commit (column `commit_col`) the caller may read, each as
 * `row(r, i)`. `extra` (stolen, may be NULL) adds members to the page. */
typedef int (*oms_commit_page_fetch)(oms_ctx *ctx, void *arg, const char *cursor, size_t limit, oms_dbres **out,
                                     oms_error *err);
int oms_resp_readable_page(oms_request *req, oms_commit_page_fetch fetch, void *arg, size_t commit_col,
                           json_t *(*row)(const oms_dbres *r, size_t i), json_t *extra);

#endif
