#include "locks/lock_check.h"

/* No lock can exist yet: the lock manager (SPEC §7) fills this hook with the
 * covered-resource query, checked in the caller's transaction (fencing). */
int oms_lock_check_write(oms_dbconn *c, oms_request *req, const char *branch, const char *const *resources,
                         size_t n, json_t **extra, oms_error *err)
{
    (void)c, (void)req, (void)branch, (void)resources, (void)n, (void)err;
    *extra = NULL;
    return OMS_OK;
}
