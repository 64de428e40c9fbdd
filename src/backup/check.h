/* What a backup's records must satisfy, checked from the file alone (no
 * database): every object's content hashes to its name, every commit id
 * is the hash of its content, the audit chain recomputes position by
 * position and meets every checkpoint, and the checkpoints' HMACs verify
 * with the audit key and link to each other. */
#ifndef OMS_BACKUP_CHECK_H
#define OMS_BACKUP_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "backup/format.h"

typedef struct oms_bk_check oms_bk_check;

typedef struct {
    int64_t objects, commits, branches, events, chain_positions, checkpoints;
    bool signatures_checked; /* false without an audit key */
} oms_bk_check_counts;

/* have_key: an audit key is loaded (oms_audit_load_key_offline);
 * without one the checkpoints' HMACs are not checked. */
oms_bk_check *oms_bk_check_new(bool have_key);
void oms_bk_check_free(oms_bk_check *c);
/* The sink to hand to oms_bk_read with the checker as its context. */
extern const oms_bk_sink oms_bk_check_sink;
void oms_bk_check_counts_get(const oms_bk_check *c, oms_bk_check_counts *out);

#endif
