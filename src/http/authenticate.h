/* Reading the bearer token of a request (SPEC §6.1); the verification is
 * auth's (src/auth/authenticate.h). */
#ifndef OMS_HTTP_AUTHENTICATE_H
#define OMS_HTTP_AUTHENTICATE_H

#include "http/request.h"

/* Verifies `Authorization: Bearer <JWT>` and fills req->principal.
 * Returns OMS_ENOAUTH (no credentials), OMS_ETOKEN or OMS_EEXPIRED. */
int oms_authenticate(oms_request *req, oms_error *err);

#endif
