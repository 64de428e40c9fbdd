/* Bearer-token authentication (SPEC §6.1): the verification decision. The
 * token is read from the request by the transport (src/http/authenticate.c). */
#ifndef OMS_AUTHENTICATE_H
#define OMS_AUTHENTICATE_H

#include <stddef.h>

#include "auth/jwt.h"
#include "auth/principal.h"
#include "util/arena.h"
#include "util/error.h"

/* Verifies the token `tok` (`len` bytes, surrounding spaces removed) with
 * `v` and fills *out; strings live in `arena`. Returns OMS_OK, OMS_ETOKEN
 * or OMS_EEXPIRED. */
int oms_auth_verify_token(const oms_jwt_verifier *v, const char *tok, size_t len, oms_arena *arena,
                          oms_principal *out, oms_error *err);

#endif
