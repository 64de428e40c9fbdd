/* Group commit for events with no transaction of their own (refusals,
 * failures, lifecycle, audit reads). A caller copies its event into the
 * queue and waits; one writer thread takes everything queued, appends it in
 * one transaction and commits: one fsync for the whole batch. The caller
 * returns only once its batch is durable, so a response is never sent for
 * an event that a crash could lose.
 *
 * The recorded event always says what the client got (docs/audit.md
 * "Durability"). The wait is bounded (OMS_AUDIT_WAIT_MS); a caller that
 * gives up answers 503, so its event must never be written as it stands:
 * - an entry the writer has not taken yet is unlinked from the queue;
 * - an entry the writer has taken but not begun to commit is withdrawn: the
 *   writer checks, under the queue's lock, right before COMMIT, and when a
 *   caller has gone it rolls the batch back and writes it again without
 *   that entry;
 * - once the writer has begun to commit a batch (it marked it so under the
 *   same lock), its callers wait for the outcome, whatever the limit: the
 *   truth is a moment away.
 * A failed batch fails every caller in it. Each caller that answers 503 then
 * hands the event of that 503 to oms_audit_record_later: a late entry, owned
 * by the writer, written after the next callers' batch that commits, in a
 * transaction of its own; while the store cannot write, late entries are
 * kept (up to LATE_MAX; beyond, counted into one audit.dropped event) and
 * tried again every RETRY_MS. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/internal.h"
#include "infra/config.h"
#include "infra/log.h"
#include "util/alloc.h"
#include "util/time.h"
#include "util/thread.h"

#define MAX_BATCH 1024
#define DEFAULT_WAIT_MS 10000
#define LATE_MAX 10000 /* late entries kept while the store cannot write */
#define RETRY_MS 1000  /* between attempts at late entries after a failure */

typedef enum {
    E_QUEUED,     /* in the queue; the caller may unlink it */
    E_TAKEN,      /* in the writer's batch; the caller may withdraw it */
    E_COMMITTING, /* the writer is committing it: the caller waits for the outcome */
    E_DONE,       /* rc and err hold the outcome */
} entry_state;

typedef struct gc_entry {
    oms_audit_event ev; /* strings point into blob */
    char *blob;
    int rc;
    oms_error err;
    entry_state state;
    bool late;      /* no caller waits: the writer owns and frees it */
    bool withdrawn; /* the caller gave up while the writer held it: never commit it */
    bool written, poison; /* late entries: committed; or dropped, never writable */
    struct gc_entry *next;
} gc_entry;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done; /* on CLOCK_MONOTONIC */
    gc_entry *head, *tail;     /* callers' entries, in arrival order */
    gc_entry *late_head, *late_tail;
    size_t nlate;
    int64_t dropped, dropped_first_ms, dropped_last_ms; /* late entries lost to LATE_MAX */
    int64_t retry_at_ns;       /* no attempt at late entries alone before this */
    int64_t wait_ms;
    bool running, stop;
    pthread_t thread;
    oms_store *store;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .wait_ms = DEFAULT_WAIT_MS};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_conds(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g.work, &a);
    pthread_cond_init(&g.done, &a);
    pthread_condattr_destroy(&a);
}

static struct timespec mono_at(int64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
}

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
    gc_entry *e = oms_xcalloc(1, sizeof *e);
    e->blob = oms_xmalloc(total ? total : 1);
    e->ev.http_status = ev->http_status;
    e->ev.time_ms = ev->time_ms;
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
    if (!e)
        return;
    free(e->blob);
    free(e);
}

/* What a caller answers when its event could not be written: the database
 * is unreachable (OMS_EDB: database_unavailable) or the audit store cannot
 * write for another reason (OMS_EAUDIT: audit_unavailable). */
static int fail_closed(oms_error *err, int cause, const char *why)
{
    return oms_err_set(err, cause == OMS_EDB ? OMS_EDB : OMS_EAUDIT, "audit store cannot write: %s", why);
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

/* ---- the writer ---- */

static bool counts(const gc_entry *e) { return e->late || !e->withdrawn; }

/* Writes the batch's entries that still count, in one transaction. Right
 * before COMMIT it checks, under the lock, that no caller withdrew an entry
 * meanwhile, and marks the callers' entries committing; if one did, the
 * transaction is rolled back and written again without it. A batch failing
 * for a dropped connection or a busy database is tried once more. */
static int write_batch(gc_entry **batch, size_t n, const oms_audit_event **evs, oms_error *err)
{
    int failures = 0;
    for (;;) {
        size_t m = 0;
        pthread_mutex_lock(&g.mu);
        for (size_t i = 0; i < n; i++)
            if (counts(batch[i]))
                evs[m++] = &batch[i]->ev;
        pthread_mutex_unlock(&g.mu);
        if (m == 0)
            return OMS_OK;

        oms_dbconn *c = NULL;
        int rc = oms_db_conn(g.store->db, &c, err);
        /* the inserts must have run (or be stuck) before the withdrawal
         * check below: flushed, not left to travel with COMMIT */
        if (rc == OMS_OK && (rc = oms_db_begin(c, true, err)) == OMS_OK &&
            ((rc = oms_audit_append_many(c, evs, m, err)) != OMS_OK || (rc = oms_db_flush(c, err)) != OMS_OK))
            oms_db_rollback(c);
        if (rc == OMS_OK) {
            bool gone = false;
            pthread_mutex_lock(&g.mu);
            for (size_t i = 0, k = 0; i < n; i++) {
                if (k < m && evs[k] == &batch[i]->ev) {
                    k++;
                    gone |= !counts(batch[i]);
                }
            }
            if (!gone)
                for (size_t i = 0; i < n; i++)
                    if (!batch[i]->late && !batch[i]->withdrawn)
                        batch[i]->state = E_COMMITTING;
            pthread_mutex_unlock(&g.mu);
            if (gone) {
                oms_db_rollback(c);
                continue; /* without the withdrawn entries */
            }
            rc = oms_db_commit(c, err);
        }
        if (rc == OMS_EDB)
            oms_db_conn_reset(g.store->db);
        if (rc == OMS_OK)
            return OMS_OK;
        pthread_mutex_lock(&g.mu); /* the callers may withdraw again */
        for (size_t i = 0; i < n; i++)
            if (batch[i]->state == E_COMMITTING)
                batch[i]->state = E_TAKEN;
        pthread_mutex_unlock(&g.mu);
        if ((rc != OMS_EDB && rc != OMS_EUNAVAIL) || ++failures > 1)
            return rc;
    }
}

static void late_push(gc_entry *e)
{
    e->next = NULL;
    if (g.late_tail)
        g.late_tail->next = e;
    else
        g.late_head = e;
    g.late_tail = e;
    g.nlate++;
}

/* Puts entries that failed back in front of the late queue, in order. */
static void late_requeue(gc_entry *first, gc_entry *last, size_t n)
{
    if (!first)
        return;
    last->next = g.late_head;
    g.late_head = first;
    if (!g.late_tail)
        g.late_tail = last;
    g.nlate += n;
}

static gc_entry *late_pop(void)
{
    gc_entry *e = g.late_head;
    if (e) {
        g.late_head = e->next;
        if (!g.late_head)
            g.late_tail = NULL;
        g.nlate--;
        e->next = NULL;
    }
    return e;
}

/* The event that says late entries were lost (LATE_MAX reached), taken
 * into the next batch. Called with the lock held. */
static gc_entry *dropped_entry(void)
{
    json_t *d = json_pack("{s:s,s:I,s:I,s:I}", "reason", "late_queue_full", "count", (json_int_t)g.dropped,
                          "first_ms", (json_int_t)g.dropped_first_ms, "last_ms", (json_int_t)g.dropped_last_ms);
    char *ds = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    oms_audit_event ev = {.actor_sub = "oms", .action = "audit.dropped", .outcome = "failure", .detail = ds};
    gc_entry *e = ds ? entry_copy(&ev) : NULL;
    free(ds);
    if (e) {
        e->late = true;
        g.dropped = 0;
    }
    return e;
}

static bool transient(int rc) { return rc == OMS_EDB || rc == OMS_EUNAVAIL; }

/* Late entries are written in a transaction of their own, after the
 * callers' batch: one that can never be written must not fail the callers.
 * When a late batch fails for a reason other than an unreachable or busy
 * database, its first ISOLATE entries are tried one at a time: one that
 * fails alone while another is written is dropped (logged), since the store
 * does write; when all fail, the store cannot write and all are kept. */
#define ISOLATE 16

static int write_late(gc_entry **late, size_t n, const oms_audit_event **evs, oms_error *err)
{
    int rc = write_batch(late, n, evs, err);
    if (rc == OMS_OK || transient(rc)) {
        for (size_t i = 0; rc == OMS_OK && i < n; i++)
            late[i]->written = true;
        return rc;
    }
    size_t tried = n < ISOLATE ? n : ISOLATE, ok = 0;
    oms_error one;
    for (size_t i = 0; i < tried; i++)
        if (write_batch(&late[i], 1, evs, &one) == OMS_OK) {
            late[i]->written = true;
            ok++;
        }
    for (size_t i = 0; ok && i < tried; i++)
        if (!late[i]->written) {
            late[i]->poison = true;
            oms_log_write(OMS_LOG_ERROR, late[i]->ev.request_id, NULL,
                          "audit: late event %s cannot be written (%s) while others can: dropped",
                          late[i]->ev.action ? late[i]->ev.action : "?", err->msg);
        }
    return rc;
}

static void *writer(void *arg)
{
    oms_thread_name("oms-audit");
    (void)arg;
    oms_db_count_as_background(); /* not a request's round trips (/metrics) */
    const oms_audit_event **evs = oms_xmalloc(MAX_BATCH * sizeof *evs);
    gc_entry **batch = oms_xmalloc(MAX_BATCH * sizeof *batch);
    gc_entry **late = oms_xmalloc((MAX_BATCH + 1) * sizeof *late);
    bool failed_stopping = false; /* a write failed after stop was asked */
    pthread_mutex_lock(&g.mu);
    for (;;) {
        for (;;) {
            if (g.head || g.stop)
                break;
            if (g.late_head || g.dropped) {
                if (oms_mono_ns() >= g.retry_at_ns)
                    break;
                struct timespec at = mono_at(g.retry_at_ns);
                pthread_cond_timedwait(&g.work, &g.mu, &at);
            } else {
                pthread_cond_wait(&g.work, &g.mu);
            }
        }
        /* Stopping: the callers' entries are drained; late ones are tried
         * until an attempt fails. */
        if (g.stop && !g.head && ((!g.late_head && !g.dropped) || failed_stopping))
            break;
        size_t n = 0, nl = 0;
        while (g.head && n < MAX_BATCH) {
            gc_entry *e = g.head;
            g.head = e->next;
            e->next = NULL;
            e->state = E_TAKEN;
            batch[n++] = e;
        }
        if (!g.head)
            g.tail = NULL;
        while (g.late_head && nl < MAX_BATCH)
            late[nl++] = late_pop();
        if (g.dropped) {
            gc_entry *e = dropped_entry();
            if (e)
                late[nl++] = e;
        }
        pthread_mutex_unlock(&g.mu);

        oms_error err, lerr;
        oms_err_clear(&err);
        oms_err_clear(&lerr);
        int rc = n ? write_batch(batch, n, evs, &err) : OMS_OK;
        if (rc)
            oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit batch of %zu events failed: %s", n, err.msg);
        int lrc = rc; /* the store cannot write: the late entries wait */
        if (nl && rc == OMS_OK && (lrc = write_late(late, nl, evs, &lerr)) != OMS_OK)
            oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit: %zu late events wait for the store: %s", nl,
                          lerr.msg);

        pthread_mutex_lock(&g.mu);
        for (size_t i = 0; i < n; i++) {
            gc_entry *e = batch[i];
            if (e->withdrawn) {
                entry_free(e); /* its caller has gone */
            } else {
                e->rc = rc;
                if (rc)
                    e->err = err;
                e->state = E_DONE;
            }
        }
        gc_entry *again = NULL, *again_last = NULL;
        size_t nagain = 0;
        for (size_t i = 0; i < nl; i++) {
            gc_entry *e = late[i];
            if (e->written || e->poison) {
                entry_free(e);
                continue;
            }
            e->next = NULL; /* tried again when the store can write */
            if (again_last)
                again_last->next = e;
            else
                again = e;
            again_last = e;
            nagain++;
        }
        late_requeue(again, again_last, nagain);
        if (rc || nagain)
            g.retry_at_ns = oms_mono_ns() + (int64_t)RETRY_MS * 1000000;
        failed_stopping = (rc || nagain) && g.stop;
        pthread_cond_broadcast(&g.done);
    }
    size_t lost = 0;
    for (gc_entry *e; (e = late_pop()) != NULL; lost++)
        entry_free(e);
    pthread_mutex_unlock(&g.mu);
    if (lost)
        oms_log_write(OMS_LOG_ERROR, NULL, NULL,
                      "audit: %zu late events (responses already answered with 503) could not be written before"
                      " shutdown and are lost",
                      lost);
    free(evs);
    free(batch);
    free(late);
    return NULL;
}

static bool writer_takes(oms_store *s)
{
    return g.running && !g.stop && g.store == s;
}

/* Unlinks a caller's entry from the queue (it is still E_QUEUED). */
static void unlink_queued(gc_entry *e)
{
    gc_entry *prev = NULL;
    for (gc_entry *p = g.head; p; prev = p, p = p->next) {
        if (p != e)
            continue;
        if (prev)
            prev->next = p->next;
        else
            g.head = p->next;
        if (g.tail == p)
            g.tail = prev;
        return;
    }
}

int oms_audit_record(oms_store *s, const oms_audit_event *ev, oms_error *err)
{
    pthread_once(&g_once, init_conds);
    pthread_mutex_lock(&g.mu);
    bool queued = writer_takes(s);
    pthread_mutex_unlock(&g.mu);
    gc_entry *e = queued ? entry_copy(ev) : NULL;
    if (queued && !e)
        return fail_closed(err, OMS_ENOMEM, "out of memory");
    pthread_mutex_lock(&g.mu);
    if (e && !writer_takes(s)) { /* stopped meanwhile */
        entry_free(e);
        e = NULL;
    }
    if (!e) {
        pthread_mutex_unlock(&g.mu);
        const oms_audit_event *one[1] = {ev};
        oms_error werr;
        int rc = write_sync(s, one, 1, &werr);
        return rc == OMS_OK ? OMS_OK : fail_closed(err, rc, werr.msg);
    }
    int64_t deadline_ns = oms_mono_ns() + g.wait_ms * 1000000;
    struct timespec deadline = mono_at(deadline_ns);
    e->state = E_QUEUED;
    if (g.tail)
        g.tail->next = e;
    else
        g.head = e;
    g.tail = e;
    pthread_cond_signal(&g.work);
    while (e->state != E_DONE) {
        if (pthread_cond_timedwait(&g.done, &g.mu, &deadline) != ETIMEDOUT || e->state == E_DONE)
            continue;
        if (e->state == E_QUEUED) { /* the writer never saw it */
            unlink_queued(e);
            pthread_mutex_unlock(&g.mu);
            entry_free(e);
            return fail_closed(err, OMS_EAUDIT, "timed out waiting for the audit batch (withdrawn from the queue)");
        }
        if (e->state == E_TAKEN) { /* the writer will leave it out, and free it */
            e->withdrawn = true;
            pthread_mutex_unlock(&g.mu);
            return fail_closed(err, OMS_EAUDIT, "timed out waiting for the audit batch (withdrawn from the writer's"
                                                " batch before its commit)");
        }
        while (e->state != E_DONE) /* being committed: the outcome decides */
            pthread_cond_wait(&g.done, &g.mu);
    }
    pthread_mutex_unlock(&g.mu);
    int rc = e->rc ? fail_closed(err, e->rc, e->err.msg) : OMS_OK;
    entry_free(e);
    return rc;
}

void oms_audit_record_later(oms_store *s, const oms_audit_event *ev)
{
    pthread_once(&g_once, init_conds);
    oms_audit_event copy = *ev;
    if (!copy.time_ms)
        copy.time_ms = oms_now_ms();
    pthread_mutex_lock(&g.mu);
    bool queued = writer_takes(s);
    pthread_mutex_unlock(&g.mu);
    gc_entry *e = queued ? entry_copy(&copy) : NULL;
    if (e) {
        e->late = true;
        pthread_mutex_lock(&g.mu);
        if (writer_takes(s)) {
            if (g.nlate < LATE_MAX) {
                late_push(e);
                e = NULL;
            } else { /* counted, and said in one event once the store writes */
                if (g.dropped++ == 0) {
                    g.dropped_first_ms = copy.time_ms;
                    oms_log_write(OMS_LOG_ERROR, NULL, NULL,
                                  "audit: %d late events are waiting for the store; further ones are counted,"
                                  " not kept, until it can write",
                                  LATE_MAX);
                }
                g.dropped_last_ms = copy.time_ms;
            }
            pthread_cond_signal(&g.work);
            pthread_mutex_unlock(&g.mu);
            entry_free(e);
            return;
        }
        pthread_mutex_unlock(&g.mu);
        entry_free(e);
    }
    /* No writer (CLI, start-up, shutdown) or no memory: one attempt now. */
    const oms_audit_event *one[1] = {&copy};
    oms_error werr;
    if (write_sync(s, one, 1, &werr) != OMS_OK)
        oms_log_write(OMS_LOG_ERROR, copy.request_id, NULL, "audit: late event %s lost: %s", copy.action,
                      werr.msg);
}

void oms_audit_record_unrecorded(oms_store *s, const oms_audit_event *ev, int status, const char *code)
{
    if (ev->http_status == status) { /* what was meant is what the client got */
        oms_audit_record_later(s, ev);
        return;
    }
    json_t *intended = json_pack("{s:s?,s:i}", "outcome", ev->outcome, "status", ev->http_status);
    json_t *orig = ev->detail ? json_loads(ev->detail, 0, NULL) : NULL;
    if (orig)
        json_object_set_new(intended, "detail", orig);
    json_t *d = json_pack("{s:s,s:b,s:o}", "reason", code, "late", true, "intended", intended);
    char *ds = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    oms_audit_event late = *ev;
    late.outcome = "failure";
    late.http_status = status;
    late.detail = ds;
    oms_audit_record_later(s, &late);
    free(ds);
}

void oms_audit_start(oms_store *s, const oms_config *cfg)
{
    pthread_once(&g_once, init_conds);
    pthread_mutex_lock(&g.mu);
    if (g.running) {
        pthread_mutex_unlock(&g.mu);
        return;
    }
    long wait = cfg ? oms_config_int(cfg, "OMS_AUDIT_WAIT_MS") : 0;
    g.wait_ms = wait > 0 ? wait : DEFAULT_WAIT_MS;
    g.store = s;
    g.stop = false;
    g.retry_at_ns = 0;
    g.running = pthread_create(&g.thread, NULL, writer, NULL) == 0;
    pthread_mutex_unlock(&g.mu);
}

void oms_audit_stop(oms_store *s)
{
    pthread_once(&g_once, init_conds);
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
    if (s && oms_audit_may_sign() && oms_audit_seal(s, NULL, &err) != OMS_OK)
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "final audit seal failed: %s", err.msg);
}
