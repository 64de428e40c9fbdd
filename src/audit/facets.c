/* `oms audit rebuild-facets` (docs/audit.md "Queries").
 *
 * audit_facets is derived: the queried columns of every event before the
 * chain or chained, written by the chainer as it links them (migration
 * 0021). It is not evidence — the chain is — but a row removed, edited or
 * added behind the service's back hides or misplaces an event in every
 * filtered read, the compliance report and the approvers of a proposal,
 * and verification's step 5 reports it from then on. The chainer never
 * rewrites a row it finds, so that state would stay; this writes the
 * whole table again from the events.
 *
 * One transaction under the sealer's lock, so no chainer round runs in the
 * middle: what step 5 found before, every row again, and the command's own
 * audit event. A reader sees the old table or the new one. */
#include <stdlib.h>

#include "audit/internal.h"
#include "store/audit_sql.h"

int oms_audit_facets_rebuild(oms_store *s, const char *os_user, json_t **summary, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc)
        return rc;
    int64_t legacy_upto = 0, differs = 0, orphan = 0, rows = 0;
    if ((rc = oms_db_begin(c, true, err)))
        return rc;
    if ((rc = oms_store_audit_seal_lock(c, err)) || (rc = oms_audit_legacy_upto(c, &legacy_upto, err)) ||
        (rc = oms_store_audit_facets_check(c, legacy_upto, &differs, &orphan, err)) ||
        (rc = oms_store_audit_facets_rebuild(c, &rows, err))) {
        oms_db_rollback(c);
        return rc;
    }
    json_t *detail = json_pack("{s:I,s:I,s:I,s:s}", "rows", (json_int_t)rows, "first_differing_seq",
                               (json_int_t)differs, "first_orphan_seq", (json_int_t)orphan, "os_user", os_user);
    char *dtext = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    oms_audit_event ev = {.actor_sub = "oms-cli", .action = "audit.facets_rebuild", .outcome = "success",
                          .resource_kind = "audit", .client_addr = "local", .user_agent = "oms audit rebuild-facets",
                          .detail = dtext};
    if ((rc = oms_audit_append(c, &ev, err)) || (rc = oms_db_commit(c, err)))
        oms_db_rollback(c);
    free(dtext);
    if (rc) {
        json_decref(detail);
        return rc;
    }
    *summary = detail;
    return OMS_OK;
}
