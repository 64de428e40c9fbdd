/* Emergency overrides (SPEC §6.4): a request that another person approves,
 * used once, before it expires, within its scope, by its requester, with
 * X-Override-ID. The X-Emergency-Override header grants nothing. */
#ifndef OMS_OVERRIDES_H
#define OMS_OVERRIDES_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"
#include "store/db.h"

#define OMS_OVERRIDE_MAX_TTL (4 * 3600)

/* Why a justification is not acceptable (SPEC §6.4: at least 50
 * meaningful characters; docs/security.md), or NULL when it is. `len` is
 * the string's length in bytes (an embedded NUL is refused). */
const char *oms_override_justification_problem(const char *s, size_t len);

/* Pipeline: loads the override named by X-Override-ID, if any, and checks
 * that this principal may use it now. Returns false with a 403 queued when
 * it may not. */
bool oms_override_attach(oms_request *req);

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
struct oms_app;
void oms_override_expiry_task(struct oms_app *app);

int oms_h_override_list(oms_request *req);
int oms_h_override_create(oms_request *req);
int oms_h_override_get(oms_request *req);
int oms_h_override_approve(oms_request *req);
int oms_h_override_reject(oms_request *req);
int oms_h_override_cancel(oms_request *req);

#endif
