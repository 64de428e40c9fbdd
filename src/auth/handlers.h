/* Handlers of the identity routes. */
#ifndef OMS_AUTH_HANDLERS_H
#define OMS_AUTH_HANDLERS_H

#include "http/request.h"

int oms_h_me(oms_request *req);

#endif
