/* Group commit for events with no transaction of their own (refusals,
 * failures, lifecycle, audit reads). A caller copies its event into the
 * queue and waits; one writer thread takes everything queued, appends it in
 * one transaction and commits: one fsync for the whole batch. The caller
 * returns only once its batch is durable, so a response is never sent for
 * an event that a crash could lose. A failed batch fails every caller in it
 * (OMS_EAUDIT: they answer 503). The wait is bounded. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/internal.h"
#include "http/app.h"
#include "ops/log.h"
#include "util/time.h"

#define MAX_BATCH 1024
#define WAIT_LIMIT_MS 10000

typedef struct gc_entry {
    oms_audit_event ev; /* strings point into blob */
    char *blob;
    int rc;
    oms_error err;
    bool done, abandoned;
    struct gc_entry *next;
} gc_entry;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    gc_entry *head, *tail;
    bool running, stop;
    pthread_t thread;
    oms_store *store;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* One allocation holding every string of the event. */
static gc_entry *entry_copy(const oms_audit_event *ev)
{
    const char *const *src[] = {&ev->actor_sub, &ev->actor_roles, &ev->client_addr, &ev->user_agent,
                                &ev->action, &ev->outcome, &ev->request_id, &ev->method, &ev->route,
                                &ev->resource_kind, &ev->resource_branch, &ev->resource_id, &ev->issue_keys,
                                &ev->override_id, &ev->commit_id, &ev->before_hash, &ev->after_hash,
                                &ev->changed_paths, &ev->detail};
    enum { N = sizeof src / sizeof src[0] };
    size_t total = 0;
    for (size_t i = 0; i < N; i++)
        total += *src[i] ? strlen(*src[i]) + 1 : 0;
    gc_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->blob = malloc(total ? total : 1);
    if (!e->blob) {
        free(e);
        return NULL;
    }
    e->ev.http_status = ev->http_status;
    const char **dst[] = {&e->ev.actor_sub, &e->ev.actor_roles, &e->ev.client_addr, &e->ev.user_agent,
                          &e->ev.action, &e->ev.outcome, &e->ev.request_id, &e->ev.method, &e->ev.route,
                          &e->ev.resource_kind, &e->ev.resource_branch, &e->ev.resource_id, &e->ev.issue_keys,
                          &e->ev.override_id, &e->ev.commit_id, &e->ev.before_hash, &e->ev.after_hash,
                          &e->ev.changed_paths, &e->ev.detail};
    char *p = e->blob;
    for (size_t i = 0; i < N; i++) {
        if (!*src[i])
            continue;
        size_t n = strlen(*src[i]) + 1;
        memcpy(p, *src[i], n);
        *dst[i] = p;
        p += n;
    }
    return e;
}

static void entry_free(gc_entry *e)
{
    free(e->blob);
    free(e);
}

static int write_sync(oms_store *s, const oms_audit_event *const *evs, size_t n, oms_error *err)
{
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc == OMS_OK && (rc = oms_db_begin(c, true, err)) == OMS_OK) {
        if ((rc = oms_audit_append_many(c, evs, n, err)) == OMS_OK)
            rc = oms_db_commit(c, err);
        else
            oms_db_rollback(c);
    }
    if (rc == OMS_EDB)
        oms_db_conn_reset(s->db);
    return rc;
}

static void *writer(void *arg)
{
    (void)arg;
    const oms_audit_event **evs = malloc(MAX_BATCH * sizeof *evs);
    gc_entry **batch = malloc(MAX_BATCH * sizeof *batch);
    pthread_mutex_lock(&g.mu);
    for (;;) {
        while (!g.head && !g.stop)
            pthread_cond_wait(&g.work, &g.mu);
        if (!g.head && g.stop)
            break;
        size_t n = 0;
        while (g.head && n < MAX_BATCH) {
            batch[n] = g.head;
            evs[n] = &g.head->ev;
            n++;
            g.head = g.head->next;
        }
        if (!g.head)
            g.tail = NULL;
        pthread_mutex_unlock(&g.mu);

        oms_error err;
        int rc = write_sync(g.store, evs, n, &err);
        if (rc == OMS_EDB || rc == OMS_EUNAVAIL) /* a dropped connection or a busy database: once more */
            rc = write_sync(g.store, evs, n, &err);
        if (rc)
            oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit batch of %zu events failed: %s", n, err.msg);

        pthread_mutex_lock(&g.mu);
        for (size_t i = 0; i < n; i++) {
            gc_entry *e = batch[i];
            if (e->abandoned) {
                entry_free(e);
                continue;
            }
            e->rc = rc;
            if (rc)
                e->err = err;
            e->done = true;
        }
        pthread_cond_broadcast(&g.done);
    }
    pthread_mutex_unlock(&g.mu);
    free(evs);
    free(batch);
    return NULL;
}

static int fail_closed(oms_error *err, const char *why)
{
    return oms_err_set(err, OMS_EAUDIT, "audit store cannot write: %s", why);
}

static bool writer_takes(oms_store *s)
{
    return g.running && !g.stop && g.store == s;
}

int oms_audit_record(oms_store *s, const oms_audit_event *ev, oms_error *err)
{
    pthread_mutex_lock(&g.mu);
    bool queued = writer_takes(s);
    pthread_mutex_unlock(&g.mu);
    gc_entry *e = queued ? entry_copy(ev) : NULL;
    if (queued && !e)
        return fail_closed(err, "out of memory");
    pthread_mutex_lock(&g.mu);
    if (e && !writer_takes(s)) { /* stopped meanwhile */
        entry_free(e);
        e = NULL;
    }
    if (!e) {
        pthread_mutex_unlock(&g.mu);
        const oms_audit_event *one[1] = {ev};
        oms_error werr;
        if (write_sync(s, one, 1, &werr) != OMS_OK)
            return fail_closed(err, werr.msg);
        return OMS_OK;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_LIMIT_MS / 1000;

    if (g.tail)
        g.tail->next = e;
    else
        g.head = e;
    g.tail = e;
    pthread_cond_signal(&g.work);
    int wrc = 0;
    while (!e->done && wrc == 0)
        wrc = pthread_cond_timedwait(&g.done, &g.mu, &deadline);
    if (!e->done) {
        e->abandoned = true; /* the writer frees it */
        pthread_mutex_unlock(&g.mu);
        return fail_closed(err, "timed out waiting for the audit batch");
    }
    pthread_mutex_unlock(&g.mu);
    int rc = e->rc;
    if (rc)
        fail_closed(err, e->err.msg);
    entry_free(e);
    return rc ? OMS_EAUDIT : OMS_OK;
}

void oms_audit_start(oms_app *app)
{
    pthread_mutex_lock(&g.mu);
    if (g.running) {
        pthread_mutex_unlock(&g.mu);
        return;
    }
    g.store = app->store;
    g.stop = false;
    g.running = pthread_create(&g.thread, NULL, writer, NULL) == 0;
    pthread_mutex_unlock(&g.mu);
}

void oms_audit_stop(oms_app *app)
{
    pthread_mutex_lock(&g.mu);
    bool was = g.running;
    g.stop = true;
    pthread_cond_signal(&g.work);
    pthread_mutex_unlock(&g.mu);
    if (was)
        pthread_join(g.thread, NULL); /* drains the queue first */
    pthread_mutex_lock(&g.mu);
    g.running = false;
    g.store = NULL;
    pthread_mutex_unlock(&g.mu);
    /* Seal what the last requests and the shutdown event left behind. */
    oms_error err;
    if (app && oms_audit_have_key() && oms_audit_seal(app->store, NULL, &err) != OMS_OK)
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "final audit seal failed: %s", err.msg);
}
