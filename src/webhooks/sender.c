#include "util/ids.h"
#include "webhooks/sender.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events/events.h"
#include "infra/config.h"
#include "infra/metrics.h"
#include "infra/log.h"
#include "store/dialect.h"
#include "store/events_sql.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/time.h"
#include "webhooks/webhooks.h"
#include "util/thread.h"

#define MAX_WORKERS 16
#define RETRY_WINDOW_MS (24LL * 3600 * 1000)
#define MAX_DELAY_MS (3600LL * 1000)
#define BATCH_BUDGET_MS 2000
#define PAGE 200

static struct {
    struct oms_store *store;
    int timeout_ms, poll_ms, nworkers;
    int64_t backoff_ms;
    char owner[64];
    atomic_bool stop;
    pthread_t th[MAX_WORKERS + 1]; /* the sequencer, then the workers */
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static atomic_ulong g_delivered, g_failed, g_dead;

/* ---- signing ---- */

void oms_webhook_sign(char *out, const char *secret, const char *id, long long ts, const char *body, size_t len)
{
    unsigned char key[256];
    int keylen = -1;
    size_t sl = strlen(secret);
    if (strncmp(secret, "whsec_", 6) == 0 && sl - 6 <= 340) {
        keylen = EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)(sl - 6));
        /* EVP_DecodeBlock counts the padding's zero bytes: drop them */
        for (const char *p = secret + sl; keylen > 0 && p > secret + 6 && p[-1] == '='; p--)
            keylen--;
    }
    const unsigned char *k = keylen >= 0 ? key : (const unsigned char *)secret;
    int kl = keylen >= 0 ? keylen : (int)sl;
    char head[128];
    int hl = snprintf(head, sizeof head, "%s.%lld.", id, ts);
    unsigned char *msg = oms_xmalloc((size_t)hl + len + 1);
    memcpy(msg, head, (size_t)hl);
    memcpy(msg + hl, body, len);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (HMAC(EVP_sha256(), k, kl, msg, (size_t)hl + len, md, &mdlen) && mdlen == 32) {
        memcpy(out, "v1,", 3);
        EVP_EncodeBlock((unsigned char *)out + 3, md, 32);
    } else {
        strcpy(out, "v1,");
    }
    free(msg);
}

/* ---- one HTTP attempt ---- */

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* A stopping instance does not wait for a slow receiver's timeout. */
static int abort_on_stop(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)u, (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&g.stop) ? 1 : 0;
}

/* 0 with *status on an answer; -1 with `errbuf` when none came. */
static int post(const char *url, const char *secret, const char *id, const char *body, long *status, char *errbuf,
                size_t errcap)
{
    *status = 0;
    errbuf[0] = 0;
    if (oms_webhook_check_url(url, &(oms_error){0}) != OMS_OK) {
        snprintf(errbuf, errcap, "url refused (http or https only, no credentials)");
        return -1;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(errbuf, errcap, "out of memory");
        return -1;
    }
    long long ts = (long long)(oms_now_ms() / 1000);
    char sig[128], hid[160], hts[64], hsig[160];
    oms_webhook_sign(sig, secret, id, ts, body, strlen(body));
    snprintf(hid, sizeof hid, "webhook-id: %s", id);
    snprintf(hts, sizeof hts, "webhook-timestamp: %lld", ts);
    snprintf(hsig, sizeof hsig, "webhook-signature: %s", sig);
    struct curl_slist *hd = NULL;
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, hid);
    hd = curl_slist_append(hd, hts);
    hd = curl_slist_append(hd, hsig);
    hd = curl_slist_append(hd, "Expect:");
    char cerr[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, never followed */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)g.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(g.timeout_ms < 5000 ? g.timeout_ms : 5000));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "oms-webhooks/1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode cc = curl_easy_perform(h);
    int rc = 0;
    if (cc != CURLE_OK) {
        snprintf(errbuf, errcap, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
        rc = -1;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        if (*status >= 300 && *status < 400)
            snprintf(errbuf, errcap, "redirect (HTTP %ld) refused: redirects are not followed", *status);
        else if (*status < 200 || *status >= 300)
            snprintf(errbuf, errcap, "HTTP %ld", *status);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- one subscription ---- */

typedef struct {
    const char *id, *url, *secret, *types, *branches;
    int64_t cursor;
} sub;

static bool json_globs_match(const char *text, const char *name, bool empty_matches)
{
    json_t *a = json_loads(text, 0, NULL);
    bool ok = empty_matches && (!a || json_array_size(a) == 0);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (name && oms_glob_match(json_string_value(v), name)) {
            ok = true;
            break;
        }
    }
    json_decref(a);
    return ok;
}

static bool matches(const sub *s, const char *type, const char *branch)
{
    /* an empty branch list takes every event; a list takes events on a
     * matching branch only */
    return json_globs_match(s->types, type, false) && json_globs_match(s->branches, branch, true);
}

static int64_t backoff(int attempts)
{
    int64_t d = g.backoff_ms;
    for (int i = 1; i < attempts && d < MAX_DELAY_MS; i++)
        d *= 2;
    if (d > MAX_DELAY_MS)
        d = MAX_DELAY_MS;
    unsigned int r;
    oms_random_bytes(&r, sizeof r);
    return d / 2 + (int64_t)((double)d * (r / 4294967296.0)); /* jitter: [d/2, 3d/2) */
}

/* Sends delivery row `i` of `r`; records the outcome. */
static int attempt(oms_dbconn *c, const sub *s, const oms_dbres *r, oms_error *err)
{
    const char *did = oms_dbres_get(r, 0, OMS_DLV_COL_ID);
    const char *event_id = oms_dbres_get(r, 0, OMS_DLV_COL_EVENT_ID);
    int attempts = (int)oms_dbres_int(r, 0, OMS_DLV_COL_ATTEMPTS) + 1;
    int64_t created = oms_dbres_int(r, 0, OMS_DLV_COL_CREATED_AT);
    oms_dbres *ev = NULL;
    int rc = oms_store_event_body(c, event_id, &ev, err);
    if (rc)
        return rc;
    if (ev->nrows == 0) {
        oms_dbres_free(ev);
        atomic_fetch_add(&g_dead, 1);
        return oms_store_delivery_attempted(c, did, "dead", 0, 0, "the event is no longer kept (retention)",
                                            oms_now_ms(), err);
    }
    json_t *body = json_loads(oms_dbres_get(ev, 0, 1), 0, NULL);
    char seq[24];
    snprintf(seq, sizeof seq, "%s", oms_dbres_get(ev, 0, 0) ? oms_dbres_get(ev, 0, 0) : "0");
    oms_dbres_free(ev);
    if (body)
        json_object_set_new(body, "sequence", json_string(seq));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    long status = 0;
    char e[256];
    post(s->url, s->secret, event_id, text, &status, e, sizeof e);
    free(text);
    int64_t now = oms_now_ms();
    if (!e[0]) {
        atomic_fetch_add(&g_delivered, 1);
        return oms_store_delivery_attempted(c, did, "delivered", now, (int)status, NULL, now, err);
    }
    int64_t next = now + backoff(attempts);
    if (next - created > RETRY_WINDOW_MS) {
        atomic_fetch_add(&g_dead, 1);
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "webhook %s: delivery %s dead after %d attempts: %s", s->id, did,
                      attempts, e);
        return oms_store_delivery_attempted(c, did, "dead", now, (int)status, e, now, err);
    }
    atomic_fetch_add(&g_failed, 1);
    return oms_store_delivery_attempted(c, did, "retrying", next, (int)status, e, now, err);
}

/* Queues the next matching event after the cursor as a delivery. *queued
 * false when there is none yet. */
static int queue_next(oms_dbconn *c, sub *s, bool *queued, oms_error *err)
{
    *queued = false;
    oms_dbres *r = NULL;
    int rc = oms_store_events_page(c, s->cursor, PAGE, &r, err);
    if (rc)
        return rc;
    int64_t pos = s->cursor;
    for (size_t i = 0; i < r->nrows && rc == OMS_OK; i++) {
        pos = oms_dbres_int(r, i, OMS_EVENT_COL_POS);
        if (!matches(s, oms_dbres_get(r, i, OMS_EVENT_COL_TYPE), oms_dbres_get(r, i, OMS_EVENT_COL_BRANCH)))
            continue;
        char id[48] = {0};
        oms_webhook_new_id(id, "dlv_");
        if ((rc = oms_db_begin(c, true, err)))
            break;
        if ((rc = oms_store_delivery_insert(c, id, s->id, oms_dbres_get(r, i, OMS_EVENT_COL_ID), pos, oms_now_ms(),
                                            err)) == OMS_OK &&
            (rc = oms_store_webhook_set_cursor(c, s->id, pos, err)) == OMS_OK)
            rc = oms_db_commit(c, err);
        else
            oms_db_rollback(c);
        if (rc == OMS_OK) {
            s->cursor = pos;
            *queued = true;
        }
        break;
    }
    if (rc == OMS_OK && !*queued && pos > s->cursor && (rc = oms_store_webhook_set_cursor(c, s->id, pos, err)) == OMS_OK)
        s->cursor = pos;
    oms_dbres_free(r);
    return rc;
}

/* Works on one claimed subscription for a bounded time; returns when it
 * should next be looked at. */
static int64_t work(oms_dbconn *c, sub *s)
{
    int64_t start = oms_now_ms();
    oms_error err;
    for (;;) {
        if (atomic_load(&g.stop))
            return 0;
        int64_t now = oms_now_ms();
        if (now - start > BATCH_BUDGET_MS)
            return now; /* give the others a turn; due again at once */
        oms_dbres *d = NULL;
        if (oms_store_delivery_next(c, s->id, &d, &err)) {
            oms_dbres_free(d);
            return now + g.poll_ms;
        }
        if (d->nrows) {
            int64_t next_at = oms_dbres_int(d, 0, OMS_DLV_COL_NEXT_AT);
            if (next_at > now) { /* the head of the queue waits: so do the events behind it */
                oms_dbres_free(d);
                return next_at < now + g.poll_ms ? next_at : now + g.poll_ms;
            }
            int rc = attempt(c, s, d, &err);
            oms_dbres_free(d);
            if (rc)
                return now + g.poll_ms;
            continue;
        }
        oms_dbres_free(d);
        bool queued = false;
        if (queue_next(c, s, &queued, &err) || !queued)
            return now + g.poll_ms;
    }
}

static void rest(int ms)
{
    pthread_mutex_lock(&g.mu);
    if (!atomic_load(&g.stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&g.cv, &g.mu, &ts);
    }
    pthread_mutex_unlock(&g.mu);
}

/* Events ordered in one sequencer transaction at most. */
#define SEQUENCER_BATCH 10000

/* One sequencer round: positions for up to a batch of committed events. */
static int order_events(oms_dbconn *c, int64_t *n, oms_error *err)
{
    int rc = oms_store_events_order(c, SEQUENCER_BATCH, n, err);
    if (rc == OMS_OK && *n > 0)
        oms_metrics_event_sequencer_batch((uint64_t)*n);
    return rc;
}

/* PostgreSQL: gives positions to committed events (docs/events.md "Order").
 * A thread of its own, so a worker held by a hanging receiver never holds
 * the feed and the other subscriptions back. */
static void *sequencer(void *arg)
{
    oms_thread_name("oms-webhook-seq");
    (void)arg;
    oms_db_count_as_background(); /* not a request's round trips (/metrics) */
    oms_error err;
    while (!atomic_load(&g.stop)) {
        oms_dbconn *c;
        int64_t n = 0;
        if (oms_db_conn(g.store->db, &c, &err) == OMS_OK) {
            if (oms_db_single_writer_conn(c))
                return NULL; /* SQLite: positions are given at insert */
            if (order_events(c, &n, &err) != OMS_OK)
                oms_db_conn_reset(g.store->db);
        }
        /* Only a full batch means more are waiting now. Going round again
         * after a partial one kept it running back to back under steady
         * writes: a durable commit every few changes (every change, with
         * one fast client), for events the next round would have taken
         * together. */
        if (n < SEQUENCER_BATCH)
            rest(g.poll_ms < 50 ? g.poll_ms : 50);
    }
    /* Requests have drained when the sender stops: a stopping instance
     * gives positions to what it committed in its last 50 ms, so its
     * events do not wait for another instance's sequencer or a restart. */
    oms_dbconn *c;
    int64_t n = 1;
    for (int pass = 0; n > 0 && pass < 8 && oms_db_conn(g.store->db, &c, &err) == OMS_OK; pass++)
        if (order_events(c, &n, &err) != OMS_OK)
            break;
    return NULL;
}

static void *worker(void *arg)
{
    oms_thread_name("oms-webhook");
    (void)arg;
    oms_db_count_as_background(); /* not a request's round trips (/metrics) */
    oms_error err;
    while (!atomic_load(&g.stop)) {
        oms_dbconn *c;
        bool busy = false;
        if (oms_db_conn(g.store->db, &c, &err) == OMS_OK) {
            int64_t now = oms_now_ms();
            oms_dbres *r = NULL;
            if (oms_store_webhook_claim(c, g.owner, now, now + 2LL * g.timeout_ms + 5000, &r, &err) == OMS_OK &&
                r->nrows) {
                sub s = {.id = oms_dbres_get(r, 0, OMS_WH_COL_ID),
                         .url = oms_dbres_get(r, 0, OMS_WH_COL_URL),
                         .secret = oms_dbres_get(r, 0, OMS_WH_COL_SECRET) ?: "",
                         .types = oms_dbres_get(r, 0, OMS_WH_COL_TYPES),
                         .branches = oms_dbres_get(r, 0, OMS_WH_COL_BRANCHES),
                         .cursor = oms_dbres_int(r, 0, OMS_WH_COL_CURSOR)};
                int64_t next = work(c, &s);
                if (oms_store_webhook_release(c, s.id, g.owner, next, &err))
                    oms_db_conn_reset(g.store->db);
                busy = true; /* look for another subscription at once */
            } else if (oms_db_in_tx(c)) {
                oms_db_rollback(c);
            }
            oms_dbres_free(r);
        }
        if (!busy)
            rest(g.poll_ms);
    }
    return NULL;
}

int oms_webhook_sender_start(struct oms_store *store, const struct oms_config *cfg, oms_error *err)
{
    g.store = store;
    g.timeout_ms = (int)oms_config_int(cfg, "OMS_WEBHOOK_TIMEOUT_MS");
    g.poll_ms = (int)oms_config_int(cfg, "OMS_WEBHOOK_POLL_MS");
    g.backoff_ms = oms_config_int(cfg, "OMS_WEBHOOK_BACKOFF_MS");
    g.nworkers = (int)oms_config_int(cfg, "OMS_WEBHOOK_WORKERS");
    if (g.nworkers > MAX_WORKERS)
        g.nworkers = MAX_WORKERS;
    char host[32] = {0};
    gethostname(host, sizeof host - 1);
    unsigned int r;
    oms_random_bytes(&r, sizeof r);
    snprintf(g.owner, sizeof g.owner, "%s:%d:%08x", host, (int)getpid(), r);
    oms_dbconn *c;
    int rc = oms_db_conn(store->db, &c, err);
    if (rc == OMS_OK && oms_db_single_writer_conn(c))
        rc = oms_store_webhook_release_all(c, err); /* one process owns the file: leases of a dead one are void */
    const char *url = oms_config_str(cfg, "OMS_ALERT_WEBHOOK_URL");
    if (rc == OMS_OK && url && oms_webhook_check_url(url, err) != OMS_OK)
        return oms_err_set(err, OMS_ECONFIG, "OMS_ALERT_WEBHOOK_URL: %s", err->msg);
    if (rc == OMS_OK)
        rc = oms_webhook_sync_builtin(c, url, oms_config_str(cfg, "OMS_ALERT_WEBHOOK_SECRET"), err);
    if (rc)
        return rc;
    atomic_store(&g.stop, false);
    /* the workers take no signal: SIGTERM and SIGHUP are the server's
     * signal thread's (src/http/server.c), which blocks them only later */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (g.started = 0; g.started <= g.nworkers; g.started++)
        if (pthread_create(&g.th[g.started], NULL, g.started ? worker : sequencer, NULL))
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return OMS_OK;
}

void oms_webhook_sender_stop(void)
{
    pthread_mutex_lock(&g.mu);
    atomic_store(&g.stop, true);
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < g.started; i++)
        pthread_join(g.th[i], NULL);
    g.started = 0;
}

/* ---- retention and metrics ---- */

void oms_events_retention_task(struct oms_store *store, const struct oms_config *cfg)
{
    oms_error err;
    oms_dbconn *c;
    int64_t n = 0;
    int64_t before = oms_now_ms() - oms_config_int(cfg, "OMS_EVENTS_RETENTION_HOURS") * 3600LL * 1000;
    if (oms_db_conn(store->db, &c, &err) == OMS_OK && oms_store_events_expire(c, before, &n, &err) == OMS_OK && n)
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "events retention: %lld delivered event(s) dropped", (long long)n);
}

void oms_webhook_metrics_text(oms_ctx *ctx, oms_mtext *b)
{
    oms_error err;
    oms_dbconn *c;
    int64_t depth = 0;
    if (oms_db_conn(ctx->store->db, &c, &err) == OMS_OK && oms_store_events_depth(c, &depth, &err) == OMS_OK) {
        oms_mtext_family(b, "oms_events_outbox_depth", "gauge",
                         "Events and deliveries not yet delivered or dead (all instances).");
        oms_mtext_emit(b, "oms_events_outbox_depth %lld\n", (long long)depth);
    }
    oms_mtext_family(b, "oms_webhook_deliveries_total", "counter",
                     "Webhook delivery attempts of this instance by outcome: delivered, failed (retried later), dead.");
    oms_mtext_emit(b, "oms_webhook_deliveries_total{outcome=\"delivered\"} %lu\n", atomic_load(&g_delivered));
    oms_mtext_emit(b, "oms_webhook_deliveries_total{outcome=\"failed\"} %lu\n", atomic_load(&g_failed));
    oms_mtext_emit(b, "oms_webhook_deliveries_total{outcome=\"dead\"} %lu\n", atomic_load(&g_dead));
}
