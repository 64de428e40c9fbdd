/* Slow clients (SPEC §6.5; docs/security.md "Slow clients"). Connection
 * accounting beside libmicrohttpd's event loops: a limit per client address
 * (an IPv6 /64 counts as one), a total cap at which a new connection evicts
 * the oldest one that is idle or still sending its headers, and the
 * deadlines libmicrohttpd 0.9.75 does not have — the header block, a
 * minimum body and response data rate, a request deadline, and idle
 * kept-alive connections closed sooner near the cap.
 *
 * The event loops report each connection's phase here (a few lock-protected
 * list moves per request); a sweep thread closes what is overdue by shutting
 * its socket down, which the connection's own event loop then notices and
 * closes. Nothing here ever runs on a handler thread: a refused or cut
 * connection costs no worker. */
#ifndef OMS_CONN_GUARD_H
#define OMS_CONN_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/error.h"

typedef struct {
    unsigned max_connections; /* the cap: more evict or are refused */
    unsigned per_client;      /* per address (IPv6: per /64); 0: no limit */
    int64_t header_ns;        /* a new connection's header block; a kept-alive one's after its request line */
    int64_t keepalive_ns;     /* a kept-alive connection's wait for its next request */
    int64_t request_ns;       /* a request, first byte to last byte of its answer */
    uint64_t min_rate;        /* bytes per second, body in and answer out; 0: none */
    int64_t rate_grace_ns;    /* before the minimum rate applies */
} oms_conn_guard_config;

/* Near the cap (this fraction of it in use), idle kept-alive connections
 * are closed after NEAR_CAP_KEEPALIVE_NS instead of keepalive_ns. */
#define OMS_CONN_NEAR_CAP_NUM 3
#define OMS_CONN_NEAR_CAP_DEN 4
#define OMS_CONN_NEAR_CAP_KEEPALIVE_NS 1000000000LL

typedef struct oms_conn_guard oms_conn_guard;
typedef struct oms_conn oms_conn;

/* Why the guard closed or refused a connection (metrics, logs). */
typedef enum {
    OMS_CUT_NONE,
    OMS_CUT_HEADER_TIMEOUT,   /* the header block did not complete in time */
    OMS_CUT_BODY_RATE,        /* the body arrived slower than the minimum rate */
    OMS_CUT_RESPONSE_RATE,    /* the answer was read slower than the minimum rate */
    OMS_CUT_REQUEST_TIMEOUT,  /* the request passed its deadline */
    OMS_CUT_IDLE,             /* a kept-alive connection waited too long (near the cap: 1 s) */
    OMS_CUT_EVICTED,          /* at the cap, the oldest waiting connection made room */
    OMS_CUT_PER_CLIENT,       /* refused: its address holds its limit */
    OMS_CUT_CAP,              /* refused: at the cap with nothing to evict */
    OMS_CUT__COUNT
} oms_cut_reason;

const char *oms_cut_reason_name(oms_cut_reason r);

/* Starts the sweep thread. */
int oms_conn_guard_new(oms_conn_guard **out, const oms_conn_guard_config *cfg, oms_error *err);
/* Stops the sweep thread and frees; only once libmicrohttpd has closed
 * every connection (MHD_stop_daemon). */
void oms_conn_guard_free(oms_conn_guard *g);

/* libmicrohttpd's accept policy (MHD_AcceptPolicyCallback): refuses a
 * connection from an address that holds its limit, before anything is
 * allocated for it. */
enum MHD_Result oms_conn_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION: a connection's record is made and counted
 * at STARTED, dropped at CLOSED. */
void oms_conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode code);

/* The connection's record (NULL when it could not be made: that connection
 * is then only bounded by libmicrohttpd's own idle timeout). */
oms_conn *oms_conn_of(struct MHD_Connection *conn);

/* Phases, reported by the event loops (each takes NULL). */
void oms_conn_request_line(oms_conn *c);  /* the request line is in */
void oms_conn_head_done(oms_conn *c);     /* the header block is in */
/* The request goes to a handler thread: never cut there. False when the
 * connection was cut already (it must not be handed over). */
bool oms_conn_away(oms_conn *c);
void oms_conn_body(oms_conn *c, int64_t length); /* the body is read now; length -1 when chunked */
void oms_conn_body_bytes(oms_conn *c, size_t n);  /* lock-free */
void oms_conn_sending(oms_conn *c);               /* the answer is queued */
/* The request is over; the connection waits for the next one. Returns why
 * the guard cut it, OMS_CUT_NONE when it did not. */
oms_cut_reason oms_conn_request_done(oms_conn *c);

/* Raises the soft descriptor limit to the hard one, then fits `cap`
 * connections (with libmicrohttpd's headroom, see oms_conn_guard_mhd_limit)
 * and `reserve` other descriptors under it: returns the cap that fits,
 * `cap` itself when it does, and sets *limit to the soft limit in force. */
unsigned oms_conn_guard_fit_fd_limit(unsigned cap, unsigned reserve, unsigned long *limit);
/* The connection limit given to libmicrohttpd: the cap plus room for the
 * connections accepted while evicted ones are still closing. */
unsigned oms_conn_guard_mhd_limit(unsigned cap);

/* For /metrics and the logs. */
typedef struct {
    long open, cap;
    unsigned long cut[OMS_CUT__COUNT];
} oms_conn_guard_stats;
/* The guard of the running server (NULL when none). */
bool oms_conn_guard_stats_get(oms_conn_guard_stats *out);

#endif
