/* GET /api/v1/me (src/api/me.c). */
#ifndef OMS_API_ME_H
#define OMS_API_ME_H

#include "http/request.h"

int oms_h_me(oms_request *req);

#endif
