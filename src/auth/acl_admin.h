/* ACL policies as a resource (SPEC §5, §6.2): list, get, create, replace,
 * delete. Transport-free: the handlers are in src/api/acl.c. */
#ifndef OMS_ACL_ADMIN_H
#define OMS_ACL_ADMIN_H

#include <jansson.h>
#include <stddef.h>

#include "auth/acl.h"
#include "core/context.h"
#include "store/db.h"
#include "util/error.h"

/* One policy as served, with its ETag. */
typedef struct {
    json_t *policy; /* owned by the caller */
    char id[OMS_ACL_ID_LEN + 1];
    char etag[65];
} oms_acl_policy_out;

/* A page of policies: `cursor` is the decoded position of the previous
 * page (NULL for the first; OMS_EINVAL "cursor is not valid" when it is
 * not one), `subject` filters (NULL for all). *items gets the policies (owned),
 * *next the position of the next page (in ctx->arena) or NULL. */
int oms_acl_policy_list(oms_ctx *ctx, const char *subject, const char *cursor, size_t limit, json_t **items,
                        const char **next, oms_error *err);
/* One policy; OMS_ENOTFOUND when there is none. */
int oms_acl_policy_get(oms_ctx *ctx, const char *id, oms_acl_policy_out *out, oms_error *err);

/* A change of a policy, run as one change transaction (src/txn/change.h)
 * by the API layer: oms_acl_change_write is its step (the policy row and
 * the bump of acl_version: every instance recompiles before its next
 * decision); oms_acl_change_alert follows the change's audit event (the
 * acl_change alert: its alert.raised event and the stored alert). */
typedef struct {
    const char *action; /* acl.create | acl.update | acl.delete */
    const char *id;
    const char *if_match; /* "*" or an ETag (replace, delete) */
    json_t *doc;          /* the stored document (create, replace) */
    char *perms, *branches;
    char new_id[OMS_ACL_ID_LEN + 1];
    char old_etag[65], etag[65];
    json_t *before, *after; /* the policy as served before and after */
    int status;             /* the status the change answers with */
} oms_acl_change;

/* Prepares a change: `body` is the request document (OMS_EINVAL when it
 * is not a policy). Free with oms_acl_change_free, whatever happened. */
int oms_acl_change_create(oms_acl_change *ch, const json_t *body, oms_error *err);
int oms_acl_change_replace(oms_acl_change *ch, const char *id, const char *if_match, const json_t *body,
                           oms_error *err);
void oms_acl_change_delete(oms_acl_change *ch, const char *id, const char *if_match);
void oms_acl_change_free(oms_acl_change *ch);

/* The step, inside the write transaction: 404; replace and delete
 * compare-and-swap on if_match: OMS_EPRECOND, with `current_etag` in the
 * problem, when it names another version. */
int oms_acl_change_write(oms_dbconn *c, oms_ctx *ctx, oms_acl_change *ch, oms_error *err);
/* The audit detail of the done change: {before?, after?} (owned). */
json_t *oms_acl_change_detail(const oms_acl_change *ch);
/* After the change's audit event: the alert. */
int oms_acl_change_alert(oms_dbconn *c, oms_ctx *ctx, const oms_acl_change *ch, oms_error *err);

#endif
