/* Bearer-token authentication for a request (SPEC §6.1). */
#ifndef OMS_AUTHENTICATE_H
#define OMS_AUTHENTICATE_H

#include "http/request.h"

/* Verifies `Authorization: Bearer <JWT>` and fills req->principal.
 * Returns OMS_ENOAUTH (no credentials), OMS_ETOKEN or OMS_EEXPIRED. */
int oms_authenticate(oms_request *req, oms_error *err);

#endif
