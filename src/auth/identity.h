/* Identity at run time (SPEC §6.1): the token verifier built from the
 * configuration, the JWKS source and its refresher, and rotation without a
 * restart. docs/identity.md has the operator's view.
 *
 * Rotation: SIGHUP, or a change of a watched file (JWT_SECRET_FILE,
 * JWT_PREVIOUS_SECRET_FILE, JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE; polled every
 * OMS_SECRET_FILE_POLL_SECONDS, acted on once the file has stayed the same
 * for one poll), re-reads the secrets and keys, validates them like
 * start-up does, and swaps them in for the next request (requests in
 * flight finish with what they started with). A bad new file changes
 * nothing: an error is logged, an alert raised, and the `config.reload`
 * audit event records the failure. A remote key set is refetched. Other
 * `_FILE` settings (DATABASE_URL, OMS_AUDIT_KEY, ...) take effect at the
 * next restart; the reload event names them. */
#ifndef OMS_IDENTITY_H
#define OMS_IDENTITY_H

#include <stdio.h>

#include "auth/jwt.h"
#include "store/store.h"

typedef struct oms_config oms_config;

/* Builds the verifier (and the JWKS source) from a validated
 * configuration. A JWKS file is read now; nothing is fetched yet. */
int oms_identity_init(oms_jwt_verifier **out, const oms_config *cfg, oms_error *err);
/* Before serving: a remote key set is fetched once (a failure is logged,
 * audited and alerted, not fatal: every token is refused until a set
 * loads) and refreshed from then on; file watching begins. */
int oms_identity_start(oms_store *store, oms_jwt_verifier *jwt, oms_error *err);
/* After serving: stops the refresher. */
void oms_identity_stop(void);
/* Frees what oms_identity_init built. */
void oms_identity_free(oms_jwt_verifier *v);

/* SIGHUP (trigger "sighup"). Serialised with the file watcher. */
void oms_identity_reload(const char *trigger);
/* The background task that watches files. */
void oms_identity_poll_task(void);

/* `oms config check`: fingerprints of the key files (never the keys). */
void oms_identity_describe(const oms_config *cfg, FILE *f);

#endif
