/* Rate limits (SPEC §6.5), by GCRA, per instance. docs/security.md "Abuse
 * protection (SPEC §6.5)" has the rules; this header has the pieces.
 *
 * Core (any number of instances, no globals: tests and bench/ratelimit_bench.c
 * use it directly): a table of keys, each a 64-bit keyed hash of a
 * principal's `sub` or a client address, with one theoretical arrival time
 * (TAT) per class. 64 shards, each a fixed set of 8-way buckets under its
 * own short spin lock: memory is fixed at start-up whatever the traffic.
 *
 * Server (one instance, configured at start-up): the pipeline's steps, the
 * RateLimit-Policy / RateLimit / Retry-After fields, and the bounded record
 * of refusals (ratelimit_audit.c). */
#ifndef OMS_RATELIMIT_H
#define OMS_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

struct oms_config;

typedef enum { OMS_RL_READ, OMS_RL_WRITE, OMS_RL_AUTH_FAILURE, OMS_RL__COUNT } oms_rl_class;

/* "read", "write", "auth_failure": the policy names in the fields too. */
const char *oms_rl_class_name(oms_rl_class c);

/* One class's limit: `rate` requests per `unit` seconds, `burst` at once. */
typedef struct {
    int64_t rate, burst;
    int unit_s;              /* 1, 60 or 3600 */
    int64_t interval_ns;     /* T = unit / rate: the time one request uses up */
    int64_t tolerance_ns;    /* tau = burst * T */
    char field[80];          /* its RateLimit-Policy item: "read";q=200;w=2 */
} oms_rl_policy;

/* "100/s:200" (RATE/UNIT:BURST, UNIT s, m or h; spaces allowed around the
 * separators). Bounds: rate and burst 1 .. 1e9, T at least 1 ns, tau at
 * most 30 days. */
int oms_rl_policy_parse(oms_rl_policy *out, oms_rl_class c, const char *text, oms_error *err);

/* Per-principal read and write limits for service accounts. */
typedef struct {
    uint64_t hash;         /* the principal's key hash, for the lookup */
    char *sub;
    bool has[2];           /* read, write */
    oms_rl_policy policy[2];
} oms_rl_override;

typedef struct {
    oms_rl_policy policy[OMS_RL__COUNT];
    size_t capacity;            /* keys held at once */
    const char *overrides;      /* OMS_RATE_LIMIT_OVERRIDES text, may be NULL */
} oms_rl_config;

typedef struct oms_rl oms_rl;

/* Validates the overrides too (OMS_ECONFIG with the reason). */
int oms_rl_new(oms_rl **out, const oms_rl_config *cfg, oms_error *err);
void oms_rl_free(oms_rl *rl);
size_t oms_rl_capacity(const oms_rl *rl);

/* A key: built once per request (hash, and the override lookup). */
typedef struct {
    uint64_t hash;
    const oms_rl_override *override; /* NULL: the class defaults */
} oms_rl_key;

/* A principal: by the token's `sub`. */
void oms_rl_key_principal(const oms_rl *rl, oms_rl_key *out, const char *sub);
/* A client address: IPv4 by the address, IPv6 by its /64 (one subscriber's
 * network: rotating addresses inside it gains nothing). */
void oms_rl_key_address(const oms_rl *rl, oms_rl_key *out, int family, const unsigned char *ip);

/* The policy in force for a key and class. */
const oms_rl_policy *oms_rl_policy_for(const oms_rl *rl, const oms_rl_key *k, oms_rl_class c);

typedef struct {
    bool allowed;
    int64_t remaining;     /* requests that may follow at once */
    int64_t reset_s;       /* seconds until one more is available (0: the burst is whole) */
    int64_t retry_after_s; /* refused: seconds until this request would pass (>= 1) */
    const oms_rl_policy *policy;
} oms_rl_result;

/* One request of class `c` at `now_ns` (monotonic): admitted (the key's TAT
 * moves on by T) or refused (nothing changes). */
void oms_rl_take(oms_rl *rl, const oms_rl_key *k, oms_rl_class c, int64_t now_ns, oms_rl_result *out);
/* Would one more request of class `c` be refused now? Changes nothing; a
 * key the table does not hold is not exhausted. */
bool oms_rl_exhausted(oms_rl *rl, const oms_rl_key *k, oms_rl_class c, int64_t now_ns, oms_rl_result *out);
/* Keys dropped while their limits still mattered (the table was full). */
uint64_t oms_rl_evictions(const oms_rl *rl);

/* ---- the server ---- */

/* Reads the OMS_RATE_LIMIT_* settings and builds the instance (start-up;
 * a bad value refuses to start). */
int oms_ratelimit_configure(const struct oms_config *cfg, oms_error *err);
bool oms_ratelimit_on(void);
oms_rl *oms_ratelimit_instance(void);

/* The request's decision, for the pipeline (pipeline.c decides what to
 * answer and records the refusals). */
typedef struct {
    bool decided;          /* a class was consulted */
    oms_rl_class cls;
    oms_rl_key key;
    bool by_address;
    oms_rl_result res;
    bool have_addr;        /* the address's key, computed once */
    oms_rl_key addr;
} oms_rl_decision;

/* Step 0: is the address's authentication-failure class exhausted? Then
 * every request from it is refused (true). */
bool oms_ratelimit_address_throttled(oms_request *req, oms_rl_decision *d);
/* An anonymous refusal (401, or a request refused before authentication):
 * one unit of the address's authentication-failure class. False when the
 * class refused it: the request is then answered 429 instead. */
bool oms_ratelimit_anonymous_failure(oms_request *req, oms_rl_decision *d);
/* After authentication: the principal's (or, on a public route, the
 * address's) read or write class. False when refused. */
bool oms_ratelimit_admit(oms_request *req, oms_rl_decision *d);
/* The HTTP library refused a request itself (a header block past its
 * buffer): only the peer is known. Sets the request's client address; a
 * peer that is not a trusted proxy pays one unit of its authentication-
 * failure class. False when that refusal belongs to a throttled address's
 * aggregated event instead of an event of its own. */
bool oms_ratelimit_library_refusal(oms_request *req);
/* RateLimit-Policy and RateLimit for the decision (draft-ietf-httpapi-
 * ratelimit-headers-10), and Retry-After when it refused. */
void oms_ratelimit_fields(oms_request *req, const oms_rl_decision *d);
/* "principal:alice", "address:192.0.2.7", "address:2001:db8:1:2::/64". */
void oms_ratelimit_key_text(char *out, size_t cap, const oms_request *req, const oms_rl_decision *d);

/* ---- the record of refusals (ratelimit_audit.c) ---- */

/* A 429: counted for its key, class and window. True when it is one of
 * the first OMS_RATE_LIMIT_AUDIT_SAMPLE of the window and must be
 * recorded on its own; false when the window's aggregated event will
 * count it. */
bool oms_ratelimit_refusal(oms_request *req, const oms_rl_decision *d);
/* The background task: writes the aggregated events of the windows that
 * ended (every window while the server drains) and raises pending alerts. */
struct oms_app;
void oms_ratelimit_task(struct oms_app *app);
/* Settings of the record, for ratelimit.c's configure step. */
void oms_ratelimit_audit_configure(int64_t window_ms, int sample, int64_t storm_key, int64_t storm_total);

#endif
