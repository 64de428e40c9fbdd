#include "store/ops_sql.h"

#include "store/dialect.h"

/* Shared state lives in the database: every instance reports the same live
 * locks. The clock is read once (clock_timestamp() moves within a
 * statement). */
#define LIVE_LOCKS_SQL(NOW)                                                                                   \
    "WITH n AS MATERIALIZED (SELECT " NOW " AS t) SELECT l.kind, count(*) FROM n CROSS JOIN locks l"           \
    " WHERE l.state = 'active' AND l.deadline_at > n.t GROUP BY l.kind"

int oms_store_live_locks_by_kind(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_WITH_NOW(LIVE_LOCKS_SQL);
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_running_index_jobs(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT branch, id, phase, percent, done, total FROM index_jobs"
                                          " WHERE state = 'running' ORDER BY branch");
    return oms_db_run(c, &q, NULL, 0, out, err);
}
