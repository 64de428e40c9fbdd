/* GET /api/v1/events (SPEC §13): the events of the outbox, pulled in order
 * after a position, filtered by what the caller may read. */
#ifndef OMS_API_EVENTS_H
#define OMS_API_EVENTS_H

#include "http/request.h"

int oms_h_event_list(oms_request *req);

#endif
