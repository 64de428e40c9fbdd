/* What /metrics reports of the shared state in the database (the same on
 * every instance): live locks and running index rebuilds. The instance's
 * own counters are in src/infra/metrics.h; the handler that puts them
 * together is src/api/metrics.c. */
#ifndef OMS_OPS_METRICS_H
#define OMS_OPS_METRICS_H

#include "infra/metrics.h"
#include "core/context.h"

/* oms_locks_active: live locks by kind. */
void oms_ops_metrics_live_locks(oms_ctx *ctx, oms_mtext *b);
/* oms_index_rebuild_progress_percent and oms_index_rebuild_resources. */
void oms_ops_metrics_index_jobs(oms_ctx *ctx, oms_mtext *b);
/* oms_db_roundtrips_total: what this instance sent to the database. */
void oms_ops_metrics_db(oms_mtext *b);

#endif
