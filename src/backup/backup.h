/* Backup and restore (SPEC §10, docs/backup.md): `oms backup -o FILE`
 * writes one consistent snapshot of a live database of either backend,
 * `oms backup --verify FILE` checks a file without a database, and
 * `oms restore FILE` verifies it completely and loads it into an empty
 * database of either backend in one transaction. Commands, not API routes. */
#ifndef OMS_BACKUP_H
#define OMS_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

typedef struct oms_config oms_config;

typedef struct {
    int64_t rows;
    int64_t bytes;
    char sha256[65];
} oms_backup_result;

/* Writes the snapshot to `path` (created 0600; refused when it exists);
 * level 0: plain, 1..19: zstd. */
int oms_backup_write(oms_store *s, const char *path, int level, bool quiet, oms_backup_result *res, oms_error *err);

/* `oms backup ...` and `oms restore ...`; return the exit code. */
int oms_backup_cli(oms_config *cfg, int argc, char **argv);
int oms_restore_cli(oms_config *cfg, int argc, char **argv);

#endif
