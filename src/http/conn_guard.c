/* Connection accounting and the slow-client deadlines (conn_guard.h).
 *
 * Records are sharded by the event loop that accepted them (a thread-local
 * shard, taken on a loop's first connection), so the loops never contend
 * with each other; the sweep thread and an eviction take one shard lock at
 * a time, never two. In each shard a record sits in the list of its phase;
 * the lists swept by deadline (waiting for headers, idle) are in the order
 * of their phase's start, so a sweep stops at the first that is not due.
 *
 * Closing: the sweep shuts the socket down, with SO_LINGER 0 first when an
 * answer is being sent or still waits in the kernel (a slow reader's unread
 * answer is dropped with a reset, not left to the kernel to deliver at its
 * pace); the connection's event loop sees the hang-up and closes it as it
 * would a client's. The descriptor stays valid while
 * its record is listed: libmicrohttpd reports CLOSED, which unlists it
 * under the same lock, before it closes the socket. */
#include "http/conn_guard.h"

#include <linux/sockios.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>

#include "infra/log.h"
#include "util/alloc.h"
#include "util/time.h"
#include "util/thread.h"

#define NSHARDS 8
#define SWEEP_NS 100000000LL       /* the sweep's period */
#define SUMMARY_NS 10000000000LL   /* a log line with what was closed, at most this often */
#define ADDR_BUCKETS 4096

/* HEAD: waiting for a request's header block (from accept, or from the
 * request line on a kept-alive connection); IDLE: kept alive between
 * requests; DRAIN: idle, but the client has not taken the last answer from
 * the kernel yet; BODY: reading a body; SEND: the library is writing an
 * answer; OTHER: on a handler thread, between phases, or cut. */
typedef enum { L_HEAD, L_IDLE, L_DRAIN, L_BODY, L_SEND, L_OTHER, L__COUNT } list_id;

typedef struct {
    uint8_t len; /* 4: IPv4; 8: an IPv6 /64; 0: not counted (another family) */
    uint8_t b[8];
} addr_key;

typedef struct conn_shard conn_shard;

struct oms_conn {
    oms_conn *prev, *next;
    conn_shard *shard;
    oms_conn_guard *g;
    int fd;
    list_id list;
    bool kept;         /* a request completed on it: the next one waits as idle */
    bool addr_counted; /* holds one of its address's slots */
    bool rate_seen;    /* the sweep took the answer's starting point */
    bool idle_checked; /* the sweep looked whether the last answer was taken */
    bool drained;      /* ... and it was, in the end */
    atomic_int cut;    /* oms_cut_reason once the guard closed it */
    int64_t phase_ns;   /* when its phase (list) began */
    int64_t request_ns; /* when its current request began (accept, then the request line) */
    int64_t body_len;   /* announced, or -1 */
    atomic_ullong body_bytes;
    uint64_t acked0;    /* the answer: bytes the client had acknowledged at rate_ns; */
    int64_t rate_ns;    /* in DRAIN, the bytes still queued then */
    addr_key key;
};

typedef struct {
    oms_conn *head, *tail;
} conn_list;

struct conn_shard {
    pthread_mutex_t mu;
    conn_list l[L__COUNT];
};

typedef struct addr_ent {
    struct addr_ent *next;
    addr_key k;
    unsigned n;
} addr_ent;

struct oms_conn_guard {
    oms_conn_guard_config cfg;
    conn_shard shards[NSHARDS];
    atomic_uint next_shard;
    atomic_long open;    /* connections with a record */
    atomic_long closing; /* of those, cut and not closed yet */
    atomic_ulong cut[OMS_CUT__COUNT];
    pthread_mutex_t addr_mu;
    addr_ent *addrs[ADDR_BUCKETS];
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
    pthread_t sweeper;
};

static oms_conn_guard *g_current; /* for /metrics */
static _Thread_local int t_shard = -1;

static const char *const k_reason[OMS_CUT__COUNT] = {
    "none", "header_timeout", "body_rate", "response_rate", "request_timeout", "idle", "evicted", "per_client", "cap",
};

const char *oms_cut_reason_name(oms_cut_reason r) { return r < OMS_CUT__COUNT ? k_reason[r] : "unknown"; }

/* ---- lists (under the shard's lock) ---- */

static void unlist(oms_conn *c)
{
    conn_list *l = &c->shard->l[c->list];
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void enlist(oms_conn *c, list_id id, int64_t now)
{
    conn_list *l = &c->shard->l[id];
    c->list = id;
    c->phase_ns = now;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void move(oms_conn *c, list_id id, int64_t now)
{
    unlist(c);
    enlist(c, id, now);
}

/* Bytes of answers the client has not acknowledged yet (the kernel's
 * send queue), or -1. */
static long queued_out(int fd)
{
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

/* Shuts the connection down; its event loop closes it. An answer the
 * client has not taken is dropped with a reset rather than left to the
 * kernel to deliver at the client's pace. */
static void cut_locked(oms_conn *c, oms_cut_reason why)
{
    if (atomic_load_explicit(&c->cut, memory_order_relaxed) != OMS_CUT_NONE)
        return;
    atomic_store_explicit(&c->cut, (int)why, memory_order_relaxed);
    if (c->list == L_SEND || c->list == L_DRAIN || queued_out(c->fd) > 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    move(c, L_OTHER, c->phase_ns);
    shutdown(c->fd, SHUT_RDWR);
    atomic_fetch_add_explicit(&c->g->closing, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->g->cut[why], 1, memory_order_relaxed);
}

static bool is_cut(const oms_conn *c) { return atomic_load_explicit(&c->cut, memory_order_relaxed) != OMS_CUT_NONE; }

/* ---- addresses ---- */

static bool key_of(const struct sockaddr *sa, socklen_t len, addr_key *k)
{
    memset(k, 0, sizeof *k);
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        k->len = 4;
        memcpy(k->b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) { /* ::ffff:a.b.c.d is an IPv4 client */
            k->len = 4;
            memcpy(k->b, a->s6_addr + 12, 4);
        } else { /* one subscriber usually holds a whole /64 */
            k->len = 8;
            memcpy(k->b, a->s6_addr, 8);
        }
        return true;
    }
    return false;
}

static unsigned key_hash(const addr_key *k)
{
    uint32_t h = 2166136261u;
    for (unsigned i = 0; i < k->len; i++)
        h = (h ^ k->b[i]) * 16777619u;
    return h & (ADDR_BUCKETS - 1);
}

static addr_ent **addr_find(oms_conn_guard *g, const addr_key *k)
{
    addr_ent **p = &g->addrs[key_hash(k)];
    while (*p && !((*p)->k.len == k->len && memcmp((*p)->k.b, k->b, k->len) == 0))
        p = &(*p)->next;
    return p;
}

/* Takes one of the address's slots; false when all are taken. */
static bool addr_take(oms_conn_guard *g, const addr_key *k)
{
    bool taken = true;
    pthread_mutex_lock(&g->addr_mu);
    addr_ent **p = addr_find(g, k);
    if (*p && (*p)->n >= g->cfg.per_client) {
        taken = false;
    } else if (*p) {
        (*p)->n++;
    } else {
        *p = oms_xcalloc(1, sizeof **p);
        (*p)->k = *k;
        (*p)->n = 1;
    }
    pthread_mutex_unlock(&g->addr_mu);
    return taken;
}

static void addr_give(oms_conn_guard *g, const addr_key *k)
{
    pthread_mutex_lock(&g->addr_mu);
    addr_ent **p = addr_find(g, k);
    if (*p && --(*p)->n == 0) {
        addr_ent *e = *p;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&g->addr_mu);
}

enum MHD_Result oms_conn_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    oms_conn_guard *g = cls;
    addr_key k;
    if (!g->cfg.per_client || !key_of(addr, addrlen, &k))
        return MHD_YES;
    pthread_mutex_lock(&g->addr_mu);
    addr_ent **p = addr_find(g, &k);
    bool full = *p && (*p)->n >= g->cfg.per_client;
    pthread_mutex_unlock(&g->addr_mu);
    if (!full)
        return MHD_YES;
    atomic_fetch_add_explicit(&g->cut[OMS_CUT_PER_CLIENT], 1, memory_order_relaxed);
    return MHD_NO;
}

/* ---- the cap ---- */

/* The oldest connection waiting for a request (its headers, or idle kept
 * alive) in the shard, other than `except`. */
static oms_conn *oldest_waiting(conn_shard *s, const oms_conn *except)
{
    oms_conn *best = NULL;
    for (list_id id = L_HEAD; id <= L_DRAIN; id++) {
        oms_conn *c = s->l[id].head;
        if (c == except)
            c = c->next;
        if (c && (!best || c->phase_ns < best->phase_ns))
            best = c;
    }
    return best;
}

/* Makes room for `c` by cutting the oldest waiting connection of all the
 * shards, one shard lock at a time. False when none is waiting. */
static bool evict_for(oms_conn_guard *g, const oms_conn *c)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        conn_shard *bs = NULL;
        int64_t best = INT64_MAX;
        for (int i = 0; i < NSHARDS; i++) {
            conn_shard *s = &g->shards[i];
            pthread_mutex_lock(&s->mu);
            oms_conn *o = oldest_waiting(s, c);
            if (o && o->phase_ns < best) {
                best = o->phase_ns;
                bs = s;
            }
            pthread_mutex_unlock(&s->mu);
        }
        if (!bs)
            return false;
        pthread_mutex_lock(&bs->mu);
        oms_conn *o = oldest_waiting(bs, c);
        if (o)
            cut_locked(o, OMS_CUT_EVICTED);
        pthread_mutex_unlock(&bs->mu);
        if (o)
            return true;
    }
    return false;
}

/* ---- connection lifecycle (event loops) ---- */

static conn_shard *my_shard(oms_conn_guard *g)
{
    if (t_shard < 0)
        t_shard = (int)(atomic_fetch_add_explicit(&g->next_shard, 1, memory_order_relaxed) % NSHARDS);
    return &g->shards[t_shard];
}

static void conn_started(oms_conn_guard *g, struct MHD_Connection *mc, void **ctx)
{
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    oms_conn *c = fi ? oms_xcalloc(1, sizeof *c) : NULL;
    if (!c)
        return;
    int64_t now = oms_mono_ns();
    c->g = g;
    c->fd = fi->connect_fd;
    c->shard = my_shard(g);
    c->request_ns = now;
    c->body_len = -1;
    oms_cut_reason refuse = OMS_CUT_NONE;
    if (g->cfg.per_client && ai && key_of(ai->client_addr,
                                          ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                                 : sizeof(struct sockaddr_in),
                                          &c->key)) {
        /* the accept policy looked already; two loops may both have let
         * the last slot's connection through */
        c->addr_counted = addr_take(g, &c->key);
        if (!c->addr_counted)
            refuse = OMS_CUT_PER_CLIENT;
    }
    long open = atomic_fetch_add_explicit(&g->open, 1, memory_order_relaxed) + 1;
    pthread_mutex_lock(&c->shard->mu);
    enlist(c, L_HEAD, now);
    pthread_mutex_unlock(&c->shard->mu);
    *ctx = c;
    long live = open - atomic_load_explicit(&g->closing, memory_order_relaxed);
    if (refuse == OMS_CUT_NONE && live > (long)g->cfg.max_connections && !evict_for(g, c))
        refuse = OMS_CUT_CAP;
    if (refuse != OMS_CUT_NONE) {
        pthread_mutex_lock(&c->shard->mu);
        cut_locked(c, refuse);
        pthread_mutex_unlock(&c->shard->mu);
    }
}

static void conn_closed(oms_conn_guard *g, void **ctx)
{
    oms_conn *c = *ctx;
    if (!c)
        return;
    pthread_mutex_lock(&c->shard->mu);
    unlist(c);
    pthread_mutex_unlock(&c->shard->mu);
    if (is_cut(c))
        atomic_fetch_sub_explicit(&g->closing, 1, memory_order_relaxed);
    if (c->addr_counted)
        addr_give(g, &c->key);
    atomic_fetch_sub_explicit(&g->open, 1, memory_order_relaxed);
    free(c);
    *ctx = NULL;
}

void oms_conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(cls, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        conn_closed(cls, socket_context);
}

oms_conn *oms_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Moves c to list `id` unless it was cut (a cut connection stays put until
 * it closes). Locks the shard and returns with it locked. */
static void phase_locked(oms_conn *c, list_id id, bool new_request)
{
    int64_t now = oms_mono_ns();
    pthread_mutex_lock(&c->shard->mu);
    if (!is_cut(c)) {
        if (new_request)
            c->request_ns = now;
        move(c, id, now);
    }
}

static void phase(oms_conn *c, list_id id, bool new_request)
{
    if (!c)
        return;
    phase_locked(c, id, new_request);
    pthread_mutex_unlock(&c->shard->mu);
}

void oms_conn_request_line(oms_conn *c)
{
    /* A new connection's first request keeps the clock it started at
     * accept; a kept-alive one starts a new request now. */
    if (c && c->kept)
        phase(c, L_HEAD, true);
}

void oms_conn_head_done(oms_conn *c) { phase(c, L_OTHER, false); }

bool oms_conn_away(oms_conn *c)
{
    if (!c)
        return true;
    bool ok;
    pthread_mutex_lock(&c->shard->mu);
    ok = !is_cut(c);
    if (ok)
        move(c, L_OTHER, oms_mono_ns());
    pthread_mutex_unlock(&c->shard->mu);
    return ok;
}

void oms_conn_body(oms_conn *c, int64_t length)
{
    if (!c)
        return;
    phase_locked(c, L_BODY, false);
    c->body_len = length;
    atomic_store_explicit(&c->body_bytes, 0, memory_order_relaxed);
    pthread_mutex_unlock(&c->shard->mu);
}

void oms_conn_body_bytes(oms_conn *c, size_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->body_bytes, n, memory_order_relaxed);
}

void oms_conn_sending(oms_conn *c)
{
    if (!c)
        return;
    phase_locked(c, L_SEND, false);
    c->rate_seen = false;
    pthread_mutex_unlock(&c->shard->mu);
}

oms_cut_reason oms_conn_request_done(oms_conn *c)
{
    if (!c)
        return OMS_CUT_NONE;
    c->kept = true; /* only the connection's own loop reads it */
    phase_locked(c, L_IDLE, false);
    c->idle_checked = c->drained = false;
    pthread_mutex_unlock(&c->shard->mu);
    return (oms_cut_reason)atomic_load_explicit(&c->cut, memory_order_relaxed);
}

/* ---- the sweep ---- */

static uint64_t bytes_acked(int fd, bool *ok)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    *ok = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
          len >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked;
    return ti.tcpi_bytes_acked;
}

/* Bytes a transfer running for `ns` must have moved at the minimum rate. */
static uint64_t owed(const oms_conn_guard *g, int64_t ns)
{
    return (uint64_t)((double)g->cfg.min_rate * ((double)ns / 1e9));
}

static void sweep_shard(oms_conn_guard *g, conn_shard *s, int64_t now, int64_t keepalive_ns)
{
    const oms_conn_guard_config *cfg = &g->cfg;
    pthread_mutex_lock(&s->mu);
    /* ordered by the start of their wait: stop at the first not due */
    while (s->l[L_HEAD].head && now - s->l[L_HEAD].head->phase_ns >= cfg->header_ns)
        cut_locked(s->l[L_HEAD].head, OMS_CUT_HEADER_TIMEOUT);
    /* Idle: closed at the keep-alive deadline. One look, once the grace has
     * passed, at whether the client took its last answer from the kernel
     * (on loopback the kernel takes megabytes for a client that reads
     * nothing); if not, it goes to DRAIN, where its reading pace counts. */
    int64_t look = cfg->min_rate && cfg->rate_grace_ns < keepalive_ns ? cfg->rate_grace_ns : keepalive_ns;
    for (oms_conn *c = s->l[L_IDLE].head, *next; c && now - c->phase_ns >= look; c = next) {
        next = c->next;
        if (now - c->phase_ns >= keepalive_ns) {
            cut_locked(c, OMS_CUT_IDLE);
        } else if (!c->idle_checked) {
            c->idle_checked = true;
            long q = queued_out(c->fd);
            if (q > 0) {
                int64_t since = c->phase_ns;
                move(c, L_DRAIN, since); /* keeps its idle start: DRAIN is walked whole */
                c->acked0 = (uint64_t)q;
                c->rate_ns = now;
            }
        }
    }
    for (oms_conn *c = s->l[L_DRAIN].head, *next; c; c = next) {
        next = c->next;
        if (now - c->phase_ns >= keepalive_ns) {
            cut_locked(c, OMS_CUT_IDLE);
        } else if (!c->drained && now - c->rate_ns >= 1000000000LL) {
            long q = queued_out(c->fd);
            if (q == 0)
                c->drained = true;
            else if (q > 0 && c->acked0 - (uint64_t)q < owed(g, now - c->rate_ns))
                cut_locked(c, OMS_CUT_RESPONSE_RATE);
        }
    }
    for (oms_conn *c = s->l[L_BODY].head, *next; c; c = next) {
        next = c->next;
        int64_t ran = now - c->phase_ns;
        if (now - c->request_ns >= cfg->request_ns) {
            cut_locked(c, OMS_CUT_REQUEST_TIMEOUT);
        } else if (cfg->min_rate && ran >= cfg->rate_grace_ns) {
            uint64_t want = owed(g, ran);
            if (c->body_len >= 0 && want > (uint64_t)c->body_len)
                want = (uint64_t)c->body_len; /* a short body must simply be in by now */
            if (atomic_load_explicit(&c->body_bytes, memory_order_relaxed) < want)
                cut_locked(c, OMS_CUT_BODY_RATE);
        }
    }
    for (oms_conn *c = s->l[L_SEND].head, *next; c; c = next) {
        next = c->next;
        int64_t ran = now - c->phase_ns;
        /* an answer whose handler ran past the deadline still gets the
         * grace to be read: a committed change keeps its answer */
        int64_t deadline = c->request_ns + cfg->request_ns;
        if (deadline < c->phase_ns + cfg->rate_grace_ns)
            deadline = c->phase_ns + cfg->rate_grace_ns;
        if (now >= deadline) {
            cut_locked(c, OMS_CUT_REQUEST_TIMEOUT);
            continue;
        }
        if (!cfg->min_rate)
            continue;
        bool ok;
        if (!c->rate_seen) { /* the starting point, within a sweep of the answer's start */
            c->acked0 = bytes_acked(c->fd, &ok);
            c->rate_ns = now;
            c->rate_seen = ok;
        } else if (ran >= cfg->rate_grace_ns) {
            uint64_t acked = bytes_acked(c->fd, &ok);
            if (ok && acked - c->acked0 < owed(g, now - c->rate_ns))
                cut_locked(c, OMS_CUT_RESPONSE_RATE);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void log_summary(oms_conn_guard *g, unsigned long *last)
{
    unsigned long now[OMS_CUT__COUNT], total = 0;
    char parts[400];
    size_t n = 0;
    parts[0] = '\0';
    for (int r = 1; r < OMS_CUT__COUNT; r++) {
        now[r] = atomic_load_explicit(&g->cut[r], memory_order_relaxed);
        unsigned long d = now[r] - last[r];
        if (d && n < sizeof parts) {
            int w = snprintf(parts + n, sizeof parts - n, ",\"%s\":%lu", k_reason[r], d);
            n += w > 0 ? (size_t)w : 0;
        }
        total += d;
        last[r] = now[r];
    }
    if (!total)
        return;
    char fields[512];
    snprintf(fields, sizeof fields, ",\"closed\":{%s},\"open\":%ld,\"cap\":%u", parts[0] ? parts + 1 : "",
             atomic_load_explicit(&g->open, memory_order_relaxed), g->cfg.max_connections);
    oms_log_write(OMS_LOG_INFO, NULL, fields, "slow or surplus connections refused or closed: %lu", total);
}

static void *sweep_main(void *p)
{
    oms_thread_name("oms-sweeper");
    oms_conn_guard *g = p;
    unsigned long last[OMS_CUT__COUNT] = {0};
    int64_t next_summary = oms_mono_ns() + SUMMARY_NS;
    pthread_mutex_lock(&g->stop_mu);
    while (!g->stopping) {
        int64_t wake = oms_mono_ns() + SWEEP_NS;
        struct timespec ts = {(time_t)(wake / 1000000000), (long)(wake % 1000000000)};
        pthread_cond_timedwait(&g->stop_cv, &g->stop_mu, &ts);
        if (g->stopping)
            break;
        pthread_mutex_unlock(&g->stop_mu);
        int64_t now = oms_mono_ns();
        long live = atomic_load_explicit(&g->open, memory_order_relaxed) -
                    atomic_load_explicit(&g->closing, memory_order_relaxed);
        bool near_cap = live * OMS_CONN_NEAR_CAP_DEN >= (long)g->cfg.max_connections * OMS_CONN_NEAR_CAP_NUM;
        int64_t keepalive = g->cfg.keepalive_ns;
        if (near_cap && keepalive > OMS_CONN_NEAR_CAP_KEEPALIVE_NS)
            keepalive = OMS_CONN_NEAR_CAP_KEEPALIVE_NS;
        for (int i = 0; i < NSHARDS; i++)
            sweep_shard(g, &g->shards[i], now, keepalive);
        if (now >= next_summary) {
            log_summary(g, last);
            next_summary = now + SUMMARY_NS;
        }
        pthread_mutex_lock(&g->stop_mu);
    }
    pthread_mutex_unlock(&g->stop_mu);
    return NULL;
}

int oms_conn_guard_new(oms_conn_guard **out, const oms_conn_guard_config *cfg, oms_error *err)
{
    oms_conn_guard *g = oms_xcalloc(1, sizeof *g);
    g->cfg = *cfg;
    for (int i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&g->shards[i].mu, NULL);
    pthread_mutex_init(&g->addr_mu, NULL);
    pthread_mutex_init(&g->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&g->sweeper, NULL, sweep_main, g);
    if (e) {
        free(g);
        return oms_err_set(err, OMS_ENOMEM, "cannot start the connection sweep: %s", strerror(e));
    }
    g_current = g;
    *out = g;
    return OMS_OK;
}

void oms_conn_guard_free(oms_conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->stop_mu);
    g->stopping = true;
    pthread_cond_signal(&g->stop_cv);
    pthread_mutex_unlock(&g->stop_mu);
    pthread_join(g->sweeper, NULL);
    if (g_current == g)
        g_current = NULL;
    for (int i = 0; i < ADDR_BUCKETS; i++)
        for (addr_ent *e = g->addrs[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    for (int i = 0; i < NSHARDS; i++)
        pthread_mutex_destroy(&g->shards[i].mu);
    pthread_mutex_destroy(&g->addr_mu);
    pthread_mutex_destroy(&g->stop_mu);
    pthread_cond_destroy(&g->stop_cv);
    free(g);
}

bool oms_conn_guard_stats_get(oms_conn_guard_stats *out)
{
    oms_conn_guard *g = g_current;
    memset(out, 0, sizeof *out);
    if (!g)
        return false;
    out->open = atomic_load_explicit(&g->open, memory_order_relaxed);
    out->cap = g->cfg.max_connections;
    for (int r = 0; r < OMS_CUT__COUNT; r++)
        out->cut[r] = atomic_load_explicit(&g->cut[r], memory_order_relaxed);
    return true;
}

/* ---- descriptors ---- */

unsigned oms_conn_guard_mhd_limit(unsigned cap) { return cap + cap / 8 + 16; }

unsigned oms_conn_guard_fit_fd_limit(unsigned cap, unsigned reserve, unsigned long *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *limit = 0;
        return cap;
    }
    rlim_t need = (rlim_t)oms_conn_guard_mhd_limit(cap) + reserve;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit up = rl;
        /* the hard limit when it is finite; else what is needed */
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    *limit = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_cur;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return cap;
    /* the largest cap whose libmicrohttpd limit and reserve still fit */
    unsigned fit = cap;
    while (fit > 1 && (rlim_t)oms_conn_guard_mhd_limit(fit) + reserve > rl.rlim_cur)
        fit = fit > 64 ? fit - fit / 16 : fit - 1;
    return fit;
}
