#include "audit/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http/request.h"
#include "http/routes.h"
#include "util/encoding.h"
#include "util/time.h"

static void new_event_id(char out[40])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        for (size_t i = 0; i < sizeof b; i++) /* never reached on Linux >= 3.17 */
            b[i] = (unsigned char)(oms_mono_ns() >> (i % 8));
    memcpy(out, "evt_", 4);
    oms_hex(out + 4, b, sizeof b);
}

int oms_audit_append(oms_dbconn *c, const oms_audit_event *ev, oms_error *err)
{
    char id[40];
    new_event_id(id);
    oms_dbparam p[] = {
        DBP_TEXT(id),
        DBP_INT(oms_now_ms()),
        DBP_TEXT(ev->actor_sub),
        DBP_TEXT(ev->actor_roles),
        DBP_TEXT(ev->client_addr),
        DBP_TEXT(ev->user_agent),
        DBP_TEXT(ev->action),
        DBP_TEXT(ev->outcome),
        ev->http_status ? DBP_INT(ev->http_status) : DBP_NULL,
        DBP_TEXT(ev->request_id),
        DBP_TEXT(ev->method),
        DBP_TEXT(ev->route),
        DBP_TEXT(ev->resource_kind),
        DBP_TEXT(ev->resource_branch),
        DBP_TEXT(ev->resource_id),
        DBP_TEXT(ev->issue_keys),
        DBP_TEXT(ev->override_id),
        DBP_TEXT(ev->commit_id),
        DBP_TEXT(ev->before_hash),
        DBP_TEXT(ev->after_hash),
        DBP_TEXT(ev->changed_paths),
        DBP_TEXT(ev->detail),
    };
    return oms_db_exec(c,
                       "INSERT INTO audit_events (event_id, time_ms, actor_sub, actor_roles, client_addr,"
                       " user_agent, action, outcome, http_status, request_id, method, route,"
                       " resource_kind, resource_branch, resource_id, issue_keys, override_id,"
                       " commit_id, before_hash, after_hash, changed_paths, detail) VALUES ($1, $2,"
                       " $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
                       " $19, $20, $21, $22)",
                       p, (int)(sizeof p / sizeof p[0]), NULL, err);
}

int oms_audit_record(oms_store *s, const oms_audit_event *ev, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc == OMS_OK && (rc = oms_db_begin(c, true, err)) == OMS_OK) {
        if ((rc = oms_audit_append(c, ev, err)) == OMS_OK)
            rc = oms_db_commit(c, err);
        else
            oms_db_rollback(c);
    }
    if (rc != OMS_OK)
        return oms_err_set(err, OMS_EAUDIT, "audit store cannot write: %s", err->msg);
    return OMS_OK;
}

void oms_audit_from_request(oms_audit_event *ev, oms_request *req)
{
    if (req->authenticated) {
        json_t *a = json_array();
        for (size_t i = 0; i < req->principal.nroles; i++)
            json_array_append_new(a, json_string(req->principal.roles[i]));
        char *s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        ev->actor_roles = s ? oms_arena_strdup(req->arena, s) : NULL;
        free(s);
        ev->actor_sub = req->principal.sub;
    }
    ev->client_addr = req->client_addr;
    ev->user_agent = req->user_agent;
    ev->request_id = req->request_id;
    ev->method = req->method;
    if (req->route)
        ev->route = req->route->pattern;
}
