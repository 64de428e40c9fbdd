/* Handlers of the lock routes (SPEC §5, §7). */
#ifndef OMS_API_LOCKS_H
#define OMS_API_LOCKS_H

#include "http/request.h"

int oms_h_lock_list(oms_request *req);
int oms_h_lock_acquire(oms_request *req);
int oms_h_lock_get(oms_request *req);
int oms_h_lock_release(oms_request *req);
int oms_h_lock_heartbeat(oms_request *req);
int oms_h_lock_extend(oms_request *req);

#endif
