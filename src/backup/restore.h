/* The two passes of a restore (restore.c), used by the commands (cli.c). */
#ifndef OMS_BACKUP_RESTORE_H
#define OMS_BACKUP_RESTORE_H

#include <stdbool.h>

#include "backup/check.h"
#include "backup/format.h"
#include "store/store.h"

/* Pass 1, also `oms backup --verify`: the file alone. */
int oms_restore_verify_file(const char *path, bool have_key, bool quiet, oms_bk_summary *sum,
                            oms_bk_check_counts *counts, oms_error *err);
/* Pass 2: into the target, in one transaction, committed only when the
 * loaded rows verify. `verified` is pass 1's summary. */
int oms_restore_run(oms_store *s, const char *path, bool force, bool quiet, const oms_bk_summary *verified,
                    oms_error *err);

#endif
