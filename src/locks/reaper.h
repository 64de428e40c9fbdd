/* The lock reaper (SPEC §7): a background task that turns locks past their
 * deadline into `expired` rows and audits `lock.expired` once per lock. */
#ifndef OMS_LOCK_REAPER_H
#define OMS_LOCK_REAPER_H

struct oms_store;

void oms_lock_reap(struct oms_store *store);

#endif
