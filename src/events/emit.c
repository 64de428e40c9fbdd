#include "events/events.h"

#include <stdlib.h>
#include <string.h>

#include "store/events_sql.h"
#include "util/ids.h"
#include "util/time.h"

int oms_event_render(const char *type, const char *subject, const char *branch, json_t *data, oms_event_row *row,
                     oms_error *err)
{
    memcpy(row->id, "evt_", 4);
    /* time-ordered (util/ids.h): the unique index on events.id grows at its right edge */
    oms_time_ordered_id(row->id + 4);
    row->type = type;
    row->branch = branch;
    row->time_ms = oms_now_ms();
    row->body = NULL;
    char when[40];
    oms_time_rfc3339_ms(when, sizeof when, row->time_ms);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", row->id, "source",
                           OMS_EVENT_SOURCE, "type", type, "time", when, "datacontenttype", "application/json",
                           "data", data ? data : json_object());
    if (!ev)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (subject)
        json_object_set_new(ev, "subject", json_string(subject));
    if (branch)
        json_object_set_new(ev, "branch", json_string(branch));
    row->body = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return row->body ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
}

void oms_event_row_params(const oms_event_row *row, oms_dbparam *p)
{
    p[0] = DBP_TEXT(row->id);
    p[1] = DBP_TEXT(row->type);
    p[2] = DBP_TEXT(row->branch);
    p[3] = DBP_INT(row->time_ms);
    p[4] = DBP_TEXT(row->body);
}

void oms_event_row_free(oms_event_row *row)
{
    free(row->body);
    row->body = NULL;
}

int oms_event_emit(oms_dbconn *c, const char *type, const char *subject, const char *branch, json_t *data,
                   oms_error *err)
{
    oms_event_row row;
    int rc = oms_event_render(type, subject, branch, data, &row, err);
    if (rc == OMS_OK)
        rc = oms_store_event_insert(c, row.id, row.type, row.branch, row.time_ms, row.body, err);
    oms_event_row_free(&row);
    return rc;
}
