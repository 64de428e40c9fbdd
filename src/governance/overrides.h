/* Emergency overrides (SPEC §6.4): a request that another person approves,
 * used once, before it expires, within its scope, by its requester, with
 * X-Override-ID. The X-Emergency-Override header grants nothing.
 *
 * Domain code: takes the request context, returns OMS_OK or an error with
 * its precise problem code. The API (src/api/overrides.c) parses and
 * renders; the pipeline (src/http/governance.c) reads X-Override-ID. */
#ifndef OMS_OVERRIDES_H
#define OMS_OVERRIDES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "store/db.h"

#define OMS_OVERRIDE_MAX_TTL (4 * 3600)
#define OMS_OVERRIDE_ID_MAX 40
#define OMS_OVERRIDE_BRANCH_MAX 104

struct oms_store;

/* Why a justification is not acceptable (SPEC §6.4: at least 50
 * meaningful characters; docs/security.md), or NULL when it is. `len` is
 * the string's length in bytes (an embedded NUL is refused). */
const char *oms_override_justification_problem(const char *s, size_t len);
/* Does `s` hold a visible code point (not only blanks and invisibles)? */
bool oms_override_text_visible(const char *s);

/* Pipeline: loads the override named `id` (X-Override-ID, already checked
 * to be an id) and checks that this principal may use it now; fills
 * ctx->override. OMS_EFORBIDDEN "override_invalid" when it may not. */
int oms_override_attach(oms_ctx *ctx, const char *id, oms_error *err);

/* Does the attached override permit `kind` on `branch`? When the override
 * names a resource, every resource in `resources` must be that one. Marks
 * the override as needed by this change. */
bool oms_override_permits(oms_ctx *ctx, const char *kind, const char *branch, const char *const *resources,
                          size_t n);

/* When the change relies on an override that names one resource, is every
 * touched resource that one? (true when no override is relied on) */
bool oms_override_in_scope(const oms_ctx *ctx, const char *const *resources, size_t n);

/* Inside the change's transaction: when the change needed the override,
 * marks it used (once: a concurrent second use fails) and raises the
 * override_used alert. A no-op otherwise. */
int oms_governance_in_tx(oms_dbconn *c, oms_ctx *ctx, oms_error *err);

/* Background: pending and approved overrides past their expiry become
 * expired, each transition audited once (whichever instance does it). */
void oms_override_expire(struct oms_store *store);

/* A validated override request (src/api/overrides.c checks the body). */
typedef struct {
    const char *kind, *branch, *resource, *justification, *incident;
    int64_t ttl_seconds;
} oms_override_request;

/* What an override change did, for its audit event (resource: the
 * override; the API's change step hands it to oms_change_run, which opens
 * and ends the transaction the *_tx operations run in). */
typedef struct {
    const char *action; /* override.request / approve / reject / cancel */
    const char *branch; /* the override's branch */
    json_t *detail;     /* owned */
} oms_override_change;

/* A new override id ("ovr_" + 32 hex digits). */
void oms_override_new_id(char id[OMS_OVERRIDE_ID_MAX]);
/* Stores a pending override `id` requested by ctx->sub: event override.request. */
int oms_override_create_tx(oms_dbconn *c, oms_ctx *ctx, const oms_override_request *req, const char *id,
                           oms_override_change *out, oms_error *err);

typedef enum { OMS_OVERRIDE_APPROVE, OMS_OVERRIDE_REJECT, OMS_OVERRIDE_CANCEL } oms_override_decision;
/* Approves, rejects or cancels (events override.approve / reject /
 * cancel, detail from, to, requester); OMS_EFORBIDDEN "not_requester" /
 * "self_approval", OMS_ECONFLICT "invalid_state" when the decision is not
 * allowed. */
int oms_override_decide_tx(oms_dbconn *c, oms_ctx *ctx, const char *id, oms_override_decision d,
                           oms_override_change *out, oms_error *err);

/* The branch an override is for (OMS_ENOTFOUND when there is none): the
 * API decides the route's permission on it. */
int oms_override_branch(oms_ctx *ctx, const char *id, char branch[OMS_OVERRIDE_BRANCH_MAX], oms_error *err);

/* May the caller, who is not the requester, see an override's
 * justification and incident? (The API answers: override:approve on the
 * branch, RBAC refined by ACL policies, failing closed.) */
typedef bool (*oms_override_sees_fn)(oms_ctx *ctx, void *arg, const char *requester, const char *branch);

/* The override document of row `i` of an override row set
 * (src/store/overrides_sql.h), judged at `now`. */
json_t *oms_override_row_json(oms_ctx *ctx, oms_dbconn *c, const oms_dbres *r, size_t i, int64_t now,
                              oms_override_sees_fn sees, void *arg);
/* One override's document (OMS_ENOTFOUND when there is none). */
int oms_override_get(oms_ctx *ctx, const char *id, oms_override_sees_fn sees, void *arg, json_t **out,
                     oms_error *err);
/* The clock expiry is judged by. */
int64_t oms_override_clock(oms_dbconn *c);

#endif
