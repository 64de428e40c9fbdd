#include "http/audit_backlog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/app.h"
#include "ops/log.h"

/* Written per round: enough to empty a burst quickly, small enough that
 * one transaction stays short. */
#define BATCH 256

typedef struct entry {
    oms_audit_event ev; /* strings point into blob */
    char *blob;
    struct entry *next;
} entry;

static struct {
    pthread_mutex_t mu;
    entry *head, *tail;
    size_t n;
    unsigned long lost;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Every string member of an event, by offset. */
static const size_t k_fields[] = {
    offsetof(oms_audit_event, actor_sub),      offsetof(oms_audit_event, actor_roles),
    offsetof(oms_audit_event, client_addr),    offsetof(oms_audit_event, user_agent),
    offsetof(oms_audit_event, action),         offsetof(oms_audit_event, outcome),
    offsetof(oms_audit_event, request_id),     offsetof(oms_audit_event, method),
    offsetof(oms_audit_event, route),          offsetof(oms_audit_event, resource_kind),
    offsetof(oms_audit_event, resource_branch), offsetof(oms_audit_event, resource_id),
    offsetof(oms_audit_event, issue_keys),     offsetof(oms_audit_event, override_id),
    offsetof(oms_audit_event, commit_id),      offsetof(oms_audit_event, before_hash),
    offsetof(oms_audit_event, after_hash),     offsetof(oms_audit_event, changed_paths),
    offsetof(oms_audit_event, detail),
};
#define NFIELDS (sizeof k_fields / sizeof k_fields[0])

static const char **field(oms_audit_event *ev, size_t i) { return (const char **)((char *)ev + k_fields[i]); }

static entry *entry_copy(const oms_audit_event *src)
{
    oms_audit_event tmp = *src;
    size_t total = 1;
    for (size_t i = 0; i < NFIELDS; i++)
        if (*field(&tmp, i))
            total += strlen(*field(&tmp, i)) + 1;
    entry *e = calloc(1, sizeof *e);
    char *p = e ? malloc(total) : NULL;
    if (!p) {
        free(e);
        return NULL;
    }
    e->ev = tmp;
    e->blob = p;
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *s = *field(&tmp, i);
        if (!s)
            continue;
        size_t n = strlen(s) + 1;
        memcpy(p, s, n);
        *field(&e->ev, i) = p;
        p += n;
    }
    return e;
}

static void entry_free(entry *e)
{
    free(e->blob);
    free(e);
}

bool oms_audit_backlog_add(const oms_audit_event *ev)
{
    pthread_mutex_lock(&g.mu);
    bool full = g.n >= OMS_AUDIT_BACKLOG_MAX;
    if (full)
        g.lost++;
    pthread_mutex_unlock(&g.mu);
    entry *e = full ? NULL : entry_copy(ev);
    if (!e) {
        oms_log_write(OMS_LOG_ERROR, ev->request_id, NULL, "audit backlog full: the event of a failed %s is lost",
                      ev->action ? ev->action : "request");
        return false;
    }
    pthread_mutex_lock(&g.mu);
    if (g.tail)
        g.tail->next = e;
    else
        g.head = e;
    g.tail = e;
    g.n++;
    pthread_mutex_unlock(&g.mu);
    return true;
}

size_t oms_audit_backlog_pending(void)
{
    pthread_mutex_lock(&g.mu);
    size_t n = g.n;
    pthread_mutex_unlock(&g.mu);
    return n;
}

void oms_audit_backlog_task(oms_app *app)
{
    pthread_mutex_lock(&g.mu);
    entry *batch = g.head, *last = NULL;
    size_t n = 0;
    for (entry *e = batch; e && n < BATCH; e = e->next, n++)
        last = e;
    pthread_mutex_unlock(&g.mu);
    if (!n)
        return;
    /* Only this task removes entries: the first n stay put meanwhile. */
    oms_dbconn *c;
    oms_error err;
    int rc = oms_db_conn(app->store->db, &c, &err);
    if (rc == OMS_OK && (rc = oms_db_begin(c, true, &err)) == OMS_OK) {
        size_t i = 0;
        for (entry *e = batch; rc == OMS_OK && i < n; e = e->next, i++)
            rc = oms_audit_append(c, &e->ev, &err);
        if (rc == OMS_OK)
            rc = oms_db_commit(c, &err);
        else
            oms_db_rollback(c);
    }
    if (rc) {
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "%zu audit events still wait for the database: %s", n, err.msg);
        return;
    }
    pthread_mutex_lock(&g.mu);
    g.head = last->next;
    if (!g.head)
        g.tail = NULL;
    g.n -= n;
    pthread_mutex_unlock(&g.mu);
    entry *e = batch;
    for (size_t i = 0; i < n; i++) {
        entry *next = e->next;
        entry_free(e);
        e = next;
    }
    oms_log_write(OMS_LOG_INFO, NULL, NULL, "%zu audit events written once the database took writes again", n);
}
