/* The snapshot cache's bound, set by the start-up code (src/app/main.c)
 * from OMS_SNAPSHOT_CACHE_MB in the configuration table, where a bad value
 * refuses the start. The rest of the cache's interface is in snapshot.h. */
#ifndef OMS_VCS_SNAPSHOT_CACHE_H
#define OMS_VCS_SNAPSHOT_CACHE_H

#include <stddef.h>

/* The default bound, in MiB: the table's default for OMS_SNAPSHOT_CACHE_MB. */
#define OMS_SNAPSHOT_CACHE_DEFAULT_MB 256

/* Bounds the cache to `mb` MiB (1..65536, checked by the configuration);
 * a smaller bound evicts at the next insertion. */
void oms_snapshot_cache_set_limit_mb(size_t mb);

#endif
