/* Audit events (SPEC §9). A change appends its event inside the change's own
 * transaction (oms_audit_append); an event with no transaction of its own
 * (authentication failure, denial) is made durable by oms_audit_record before
 * the response is sent. Events never carry tokens, secrets or passwords. */
#ifndef OMS_AUDIT_H
#define OMS_AUDIT_H

#include "store/store.h"

typedef struct {
    const char *actor_sub;
    const char *actor_roles; /* JSON array text */
    const char *client_addr;
    const char *user_agent;
    const char *action;      /* auth.failed, authz.denied, object_type.update, ... */
    const char *outcome;     /* success | denied | failure */
    int http_status;
    const char *request_id;
    const char *method;
    const char *route;       /* the route pattern, or the raw path when none matched */
    const char *resource_kind;
    const char *resource_branch;
    const char *resource_id;
    const char *issue_keys;   /* JSON array text */
    const char *override_id;
    const char *commit_id;
    const char *before_hash;
    const char *after_hash;
    const char *changed_paths; /* JSON array text */
    const char *detail;        /* JSON object text */
} oms_audit_event;

/* Fills the actor and request fields of `ev` from the request; the roles
 * JSON text is arena-allocated. */
struct oms_request;
void oms_audit_from_request(oms_audit_event *ev, struct oms_request *req);

/* Appends inside the caller's open transaction. */
int oms_audit_append(oms_dbconn *c, const oms_audit_event *ev, oms_error *err);
/* Appends in a transaction of its own; durable when it returns OMS_OK.
 * Failure is OMS_EAUDIT: callers fail closed. */
int oms_audit_record(oms_store *s, const oms_audit_event *ev, oms_error *err);

#endif
