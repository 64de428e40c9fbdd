/* Appending events (docs/audit.md "Durability" and "Chain").
 *
 * An event is inserted inside the caller's transaction with the next seq
 * of the table's own sequence (BIGSERIAL / AUTOINCREMENT) and a row in the
 * chainer's queue, audit_unchained, in the same transaction. Nothing shared
 * is read or locked: concurrent change transactions insert their events
 * and commit independently, and the chainer (chainer.c) links them after
 * they commit. The queue row is what tells a genuine event waiting for the
 * chainer from a row written behind the service's back: both commit or
 * neither does. */
#include <stdio.h>
#include <string.h>

#include "audit/internal.h"
#include "store/audit_sql.h"
#include "util/encoding.h"
#include "util/ids.h"
#include "util/time.h"

/* Time-ordered (util/ids.h): the unique index on event_id grows at its
 * right edge, as seq's does. */
static void new_event_id(char out[40])
{
    memcpy(out, "evt_", 4);
    oms_time_ordered_id(out + 4);
}

void oms_audit_event_params(const oms_audit_event *ev, char id[40], oms_dbparam *p)
{
    new_event_id(id);
    const oms_dbparam row[OMS_AUDIT_EVENT_NPARAMS] = {
        DBP_TEXT(id), ev->time_ms ? DBP_INT(ev->time_ms) : DBP_NULL, DBP_TEXT(ev->actor_sub), DBP_TEXT(ev->actor_roles),
        DBP_TEXT(ev->client_addr), DBP_TEXT(ev->user_agent), DBP_TEXT(ev->action), DBP_TEXT(ev->outcome),
        ev->http_status ? DBP_INT(ev->http_status) : DBP_NULL, DBP_TEXT(ev->request_id), DBP_TEXT(ev->method),
        DBP_TEXT(ev->route), DBP_TEXT(ev->resource_kind), DBP_TEXT(ev->resource_branch),
        DBP_TEXT(ev->resource_id), DBP_TEXT(ev->issue_keys), DBP_TEXT(ev->override_id), DBP_TEXT(ev->commit_id),
        DBP_TEXT(ev->before_hash), DBP_TEXT(ev->after_hash), DBP_TEXT(ev->changed_paths), DBP_TEXT(ev->detail),
    };
    memcpy(p, row, sizeof row);
}

static int insert_one(oms_dbconn *c, const oms_audit_event *ev, oms_error *err)
{
    char id[40];
    oms_dbparam p[OMS_AUDIT_EVENT_NPARAMS];
    oms_audit_event_params(ev, id, p);
    return oms_store_audit_event_insert(c, p, err);
}

int oms_audit_append_many(oms_dbconn *c, const oms_audit_event *const *evs, size_t n, oms_error *err)
{
    int rc = OMS_OK;
    for (size_t i = 0; rc == OMS_OK && i < n; i++)
        rc = insert_one(c, evs[i], err);
    return rc;
}

int oms_audit_append(oms_dbconn *c, const oms_audit_event *ev, oms_error *err)
{
    return insert_one(c, ev, err);
}
