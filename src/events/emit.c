#include "events/events.h"

#include <stdlib.h>

#include "store/events_sql.h"
#include "util/ids.h"
#include "util/time.h"

int oms_event_emit(oms_dbconn *c, const char *type, const char *subject, const char *branch, json_t *data,
                   oms_error *err)
{
    char id[40] = "evt_";
    /* time-ordered (util/ids.h): the unique index on events.id grows at its right edge */
    oms_time_ordered_id(id + 4);
    int64_t now = oms_now_ms();
    char when[40];
    oms_time_rfc3339_ms(when, sizeof when, now);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id, "source",
                           OMS_EVENT_SOURCE, "type", type, "time", when, "datacontenttype", "application/json",
                           "data", data ? data : json_object());
    if (!ev)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (subject)
        json_object_set_new(ev, "subject", json_string(subject));
    if (branch)
        json_object_set_new(ev, "branch", json_string(branch));
    char *body = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (!body)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = oms_store_event_insert(c, id, type, branch, now, body, err);
    free(body);
    return rc;
}
