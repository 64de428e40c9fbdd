/* GCRA rate limits (SPEC §6.5; docs/security.md "Abuse protection").
 *
 * GCRA keeps one number per key and class, the theoretical arrival time
 * (TAT): a request at `now` is admitted when max(TAT, now) + T - now <= tau
 * (T = unit / rate, tau = burst * T), and then TAT becomes max(TAT, now) + T.
 * A refused request changes nothing. A key whose every TAT has passed
 * behaves exactly like a key never seen, so such a slot is free to reuse:
 * forgetting it loses nothing.
 *
 * The table: 64 shards, picked by the key's hash, each an array of 8-way
 * buckets (32 bytes a slot) under a test-and-test-and-set spin lock held
 * for a few dozen instructions, never across a call that can block. A key
 * that is not there takes a free or expired slot of its bucket, else the
 * slot whose limits expire first (counted as an eviction: that key gets a
 * fresh burst if it comes back). Memory is fixed when the server starts.
 * Keys are SipHash-1-3 of the principal's `sub` or the client address under
 * a random per-process key, so nobody can aim keys at one bucket; two keys
 * whose 64-bit hashes are equal would share limits (odds ~ n^2 / 2^65). */
#include "util/ids.h"
#include "http/ratelimit.h"

#include <ctype.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/app.h"
#include "http/client_addr.h"
#include "infra/config.h"
#include "infra/metrics.h"
#include "util/alloc.h"

#define NSHARDS 64
#define WAYS 8
#define NS_PER_S 1000000000LL
#define MAX_TOLERANCE_NS (30LL * 86400 * NS_PER_S)
#define MAX_OVERRIDES 1024
#define MAX_SUB_LEN 256

static const char *const k_class_names[OMS_RL__COUNT] = {"read", "write", "auth_failure"};

const char *oms_rl_class_name(oms_rl_class c) { return k_class_names[c]; }

/* ---- SipHash-1-3 (Aumasson, Bernstein) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                   \
    do {                                                                                                           \
        v0 += v1;                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                         \
        v1 ^= v0;                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                         \
        v2 += v3;                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                         \
        v3 ^= v2;                                                                                                  \
        v0 += v3;                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                         \
        v3 ^= v0;                                                                                                  \
        v2 += v1;                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                         \
        v1 ^= v2;                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                         \
    } while (0)

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const unsigned char *end = in + len - (len % 8);
    for (; in != end; in += 8) {
        uint64_t m = load_le64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- policies ---- */

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

static bool read_int(const char **p, int64_t *out)
{
    skip_ws(p);
    if (!isdigit((unsigned char)**p))
        return false;
    int64_t v = 0;
    while (isdigit((unsigned char)**p)) {
        if (v > 1000000000)
            return false; /* past every bound: refused below */
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static void policy_field(oms_rl_policy *p, oms_rl_class c)
{
    int64_t w = (p->tolerance_ns + NS_PER_S - 1) / NS_PER_S;
    snprintf(p->field, sizeof p->field, "\"%s\";q=%lld;w=%lld", k_class_names[c], (long long)p->burst,
             (long long)(w < 1 ? 1 : w));
}

static int policy_parse_n(oms_rl_policy *out, oms_rl_class c, const char *text, size_t len, const char *what,
                          oms_error *err)
{
    char buf[64];
    if (len >= sizeof buf)
        goto bad;
    memcpy(buf, text, len);
    buf[len] = '\0';
    const char *p = buf;
    int64_t rate, burst;
    if (!read_int(&p, &rate))
        goto bad;
    skip_ws(&p);
    if (*p++ != '/')
        goto bad;
    skip_ws(&p);
    int unit;
    switch (*p++) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    default: goto bad;
    }
    skip_ws(&p);
    if (*p++ != ':' || !read_int(&p, &burst))
        goto bad;
    skip_ws(&p);
    if (*p)
        goto bad;
    if (rate < 1 || rate > 1000000000 || burst < 1 || burst > 1000000000)
        return oms_err_set(err, OMS_ECONFIG, "%s: rate and burst must be between 1 and 1000000000", what);
    int64_t T = (int64_t)unit * NS_PER_S / rate;
    if (T < 1 || burst > MAX_TOLERANCE_NS / T)
        return oms_err_set(err, OMS_ECONFIG, "%s: a burst longer than 30 days at that rate is not a limit", what);
    *out = (oms_rl_policy){.rate = rate, .burst = burst, .unit_s = unit, .interval_ns = T, .tolerance_ns = burst * T};
    policy_field(out, c);
    return OMS_OK;
bad:
    return oms_err_set(err, OMS_ECONFIG, "%s must read RATE/UNIT:BURST (UNIT s, m or h), e.g. 100/s:200", what);
}

int oms_rl_policy_parse(oms_rl_policy *out, oms_rl_class c, const char *text, oms_error *err)
{
    char what[48];
    snprintf(what, sizeof what, "the %s limit", k_class_names[c]);
    return policy_parse_n(out, c, text ? text : "", text ? strlen(text) : 0, what, err);
}

/* ---- the table ---- */

/* Written only under the shard's lock; read without it by the address
 * check (oms_rl_exhausted), hence atomics (plain moves on x86-64). */
typedef struct {
    _Atomic uint64_t tag; /* the key's hash; 0: free */
    _Atomic int64_t tat[OMS_RL__COUNT];
} rl_slot;

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

typedef struct {
    _Alignas(64) atomic_int lock;
    uint32_t mask; /* buckets - 1 */
    rl_slot *slots;
    _Atomic uint64_t evictions;
} rl_shard;

struct oms_rl {
    rl_shard shard[NSHARDS];
    oms_rl_policy policy[OMS_RL__COUNT];
    uint64_t k0, k1;
    oms_rl_override *ov; /* sorted by hash */
    size_t nov;
    size_t capacity;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline void shard_lock(rl_shard *s)
{
    int spins = 0;
    for (;;) {
        if (!atomic_exchange_explicit(&s->lock, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&s->lock, memory_order_relaxed)) {
            if (++spins < 64) {
                cpu_relax();
            } else { /* the holder was preempted: let it run */
                sched_yield();
                spins = 0;
            }
        }
    }
}

static inline void shard_unlock(rl_shard *s) { atomic_store_explicit(&s->lock, 0, memory_order_release); }

static uint64_t principal_hash(const oms_rl *rl, const char *sub)
{
    uint64_t h = siphash13(rl->k0, rl->k1, (const unsigned char *)sub, strlen(sub));
    return h ? h : 1;
}

static int override_cmp(const void *a, const void *b)
{
    uint64_t x = ((const oms_rl_override *)a)->hash, y = ((const oms_rl_override *)b)->hash;
    return x < y ? -1 : x > y;
}

/* SUB=CLASS:RATE/UNIT:BURST[,CLASS:RATE/UNIT:BURST] entries separated by
 * ';'. The subject is everything before the entry's last '=' (so a subject
 * may itself hold '=', as LDAP names do), surrounding spaces trimmed. */
static int parse_overrides(oms_rl *rl, const char *text, oms_error *err)
{
    if (!text)
        return OMS_OK;
    const char *p = text;
    while (*p) {
        size_t elen = strcspn(p, ";");
        const char *e = p, *eend = p + elen;
        p = *eend ? eend + 1 : eend;
        while (e < eend && isspace((unsigned char)*e))
            e++;
        if (e == eend)
            continue; /* empty entry: "a=...;" */
        const char *eq = NULL;
        for (const char *q = e; q < eend; q++)
            if (*q == '=')
                eq = q;
        const char *send = eq ? eq : e;
        while (send > e && isspace((unsigned char)send[-1]))
            send--;
        if (!eq || send == e)
            return oms_err_set(err, OMS_ECONFIG,
                               "OMS_RATE_LIMIT_OVERRIDES: each entry reads SUB=CLASS:RATE/UNIT:BURST[,...] "
                               "(entries separated by ';'), e.g. svc-indexer=read:1000/s:2000,write:200/s:400");
        size_t slen = (size_t)(send - e);
        if (slen > MAX_SUB_LEN)
            return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: a subject is longer than %d bytes",
                               MAX_SUB_LEN);
        for (size_t i = 0; i < slen; i++)
            if ((unsigned char)e[i] < 0x20 || e[i] == 0x7f)
                return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: a subject holds a control character");
        if (rl->nov == MAX_OVERRIDES)
            return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: more than %d subjects", MAX_OVERRIDES);
        oms_rl_override *o = &rl->ov[rl->nov];
        memset(o, 0, sizeof *o);
        o->sub = oms_xstrndup(e, slen);
        rl->nov++;
        o->hash = principal_hash(rl, o->sub);
        /* the classes */
        const char *c = eq + 1;
        bool any = false;
        for (bool more = true; more;) {
            size_t clen = strcspn(c, ",;");
            if (c + clen > eend)
                clen = (size_t)(eend - c);
            const char *cs = c, *ce = c + clen;
            more = ce < eend;
            c = ce + 1;
            while (cs < ce && isspace((unsigned char)*cs))
                cs++;
            if (cs == ce)
                return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: an empty class for %.64s", o->sub);
            const char *colon = memchr(cs, ':', (size_t)(ce - cs));
            size_t nlen = colon ? (size_t)(colon - cs) : 0;
            while (nlen && isspace((unsigned char)cs[nlen - 1]))
                nlen--;
            int k = !colon                                        ? -1
                    : nlen == 4 && strncmp(cs, "read", 4) == 0    ? OMS_RL_READ
                    : nlen == 5 && strncmp(cs, "write", 5) == 0   ? OMS_RL_WRITE
                                                                  : -1;
            if (k < 0)
                return oms_err_set(err, OMS_ECONFIG,
                                   "OMS_RATE_LIMIT_OVERRIDES: for %.64s, a class is read or write, written "
                                   "CLASS:RATE/UNIT:BURST",
                                   o->sub);
            if (o->has[k])
                return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: %.64s names the %s class twice",
                                   o->sub, k_class_names[k]);
            char what[128];
            snprintf(what, sizeof what, "OMS_RATE_LIMIT_OVERRIDES: %.64s's %s limit", o->sub, k_class_names[k]);
            int rc = policy_parse_n(&o->policy[k], (oms_rl_class)k, colon + 1, (size_t)(ce - colon - 1), what, err);
            if (rc)
                return rc;
            o->has[k] = true;
            any = true;
        }
        if (!any)
            return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: %.64s names no class", o->sub);
        for (size_t i = 0; i + 1 < rl->nov; i++)
            if (strcmp(rl->ov[i].sub, o->sub) == 0)
                return oms_err_set(err, OMS_ECONFIG, "OMS_RATE_LIMIT_OVERRIDES: %.64s is listed twice", o->sub);
    }
    qsort(rl->ov, rl->nov, sizeof *rl->ov, override_cmp);
    return OMS_OK;
}

int oms_rl_new(oms_rl **out, const oms_rl_config *cfg, oms_error *err)
{
    *out = NULL;
    oms_rl *rl = oms_xcalloc(1, sizeof *rl);
    memcpy(rl->policy, cfg->policy, sizeof rl->policy);
    unsigned char seed[16];
    oms_random_bytes(seed, sizeof seed);
    rl->k0 = load_le64(seed);
    rl->k1 = load_le64(seed + 8);
    /* buckets per shard: a power of two, at least one */
    size_t per_shard = cfg->capacity / (NSHARDS * WAYS);
    size_t buckets = 1;
    while (buckets < per_shard)
        buckets <<= 1;
    rl->capacity = buckets * WAYS * NSHARDS;
    int rc = OMS_OK;
    for (int i = 0; i < NSHARDS; i++) {
        rl->shard[i].mask = (uint32_t)(buckets - 1);
        rl->shard[i].slots = oms_xcalloc(buckets * WAYS, sizeof(rl_slot));
    }
    rl->ov = oms_xcalloc(MAX_OVERRIDES, sizeof *rl->ov);
    if ((rc = parse_overrides(rl, cfg->overrides, err)) != OMS_OK)
        goto fail;
    *out = rl;
    return OMS_OK;
fail:
    oms_rl_free(rl);
    return rc;
}

void oms_rl_free(oms_rl *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < NSHARDS; i++)
        free(rl->shard[i].slots);
    for (size_t i = 0; i < rl->nov; i++)
        free(rl->ov[i].sub);
    free(rl->ov);
    free(rl);
}

size_t oms_rl_capacity(const oms_rl *rl) { return rl->capacity; }

uint64_t oms_rl_evictions(const oms_rl *rl)
{
    uint64_t n = 0;
    for (int i = 0; i < NSHARDS; i++)
        n += atomic_load_explicit(&rl->shard[i].evictions, memory_order_relaxed);
    return n;
}

void oms_rl_key_principal(const oms_rl *rl, oms_rl_key *out, const char *sub)
{
    out->hash = principal_hash(rl, sub ? sub : "");
    out->override = NULL;
    size_t lo = 0, hi = rl->nov;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rl->ov[mid].hash < out->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < rl->nov && rl->ov[lo].hash == out->hash; lo++)
        if (strcmp(rl->ov[lo].sub, sub ? sub : "") == 0) {
            out->override = &rl->ov[lo];
            break;
        }
}

void oms_rl_key_address(const oms_rl *rl, oms_rl_key *out, int family, const unsigned char *ip)
{
    /* a different key for addresses, so no principal can name one */
    unsigned char b[9] = {(unsigned char)family};
    size_t n = family == 4 ? 4 : family == 6 ? 8 : 0;
    memcpy(b + 1, ip, n);
    uint64_t h = siphash13(rl->k0 ^ 0x61646472ULL, rl->k1, b, n + 1);
    out->hash = h ? h : 1;
    out->override = NULL;
}

const oms_rl_policy *oms_rl_policy_for(const oms_rl *rl, const oms_rl_key *k, oms_rl_class c)
{
    if (k->override && c < OMS_RL_AUTH_FAILURE && k->override->has[c])
        return &k->override->policy[c];
    return &rl->policy[c];
}

static inline int64_t ceil_s(int64_t ns) { return (ns + NS_PER_S - 1) / NS_PER_S; }

static inline int64_t max_tat(const rl_slot *s)
{
    int64_t m = LD(s->tat[0]);
    for (int c = 1; c < OMS_RL__COUNT; c++)
        if (LD(s->tat[c]) > m)
            m = LD(s->tat[c]);
    return m;
}

/* The slot of `tag` in its bucket, or NULL. */
static inline rl_slot *find(rl_slot *b, uint64_t tag)
{
    for (int i = 0; i < WAYS; i++)
        if (LD(b[i].tag) == tag)
            return &b[i];
    return NULL;
}

/* A slot for a new key: a free or expired one, else the one whose limits
 * run out first. */
static rl_slot *claim(rl_shard *s, rl_slot *b, uint64_t tag, int64_t now)
{
    rl_slot *victim = &b[0];
    int64_t oldest = INT64_MAX;
    for (int i = 0; i < WAYS; i++) {
        int64_t m = LD(b[i].tag) ? max_tat(&b[i]) : INT64_MIN;
        if (m <= now) {
            victim = &b[i];
            oldest = m;
            break;
        }
        if (m < oldest) {
            oldest = m;
            victim = &b[i];
        }
    }
    if (oldest > now)
        atomic_fetch_add_explicit(&s->evictions, 1, memory_order_relaxed);
    /* a reader seeing the new tag must see the new TATs: the tag goes to 0
     * first, the TATs are reset, then the tag is published */
    ST(victim->tag, 0);
    atomic_thread_fence(memory_order_release);
    for (int c = 0; c < OMS_RL__COUNT; c++)
        ST(victim->tat[c], 0);
    atomic_store_explicit(&victim->tag, tag, memory_order_release);
    return victim;
}

static void result(oms_rl_result *out, const oms_rl_policy *p, bool allowed, int64_t d)
{
    /* d: how far the key's TAT (after an admission; or the TAT this
     * request would need) lies ahead of now */
    out->policy = p;
    out->allowed = allowed;
    if (!allowed) {
        out->remaining = 0;
        out->retry_after_s = ceil_s(d - p->tolerance_ns);
        if (out->retry_after_s < 1)
            out->retry_after_s = 1;
        out->reset_s = out->retry_after_s;
        return;
    }
    out->retry_after_s = 0;
    out->remaining = (p->tolerance_ns - d) / p->interval_ns;
    if (d <= 0) {
        out->remaining = p->burst;
        out->reset_s = 0;
        return;
    }
    /* one more unit comes back when the TAT has moved down to
     * tau - (remaining + 1) * T */
    int64_t next = d - (p->tolerance_ns - (out->remaining + 1) * p->interval_ns);
    out->reset_s = ceil_s(next > 0 ? next : 1);
}

void oms_rl_take(oms_rl *rl, const oms_rl_key *k, oms_rl_class c, int64_t now, oms_rl_result *out)
{
    const oms_rl_policy *p = oms_rl_policy_for(rl, k, c);
    rl_shard *s = &rl->shard[k->hash & (NSHARDS - 1)];
    rl_slot *b = s->slots + (size_t)((k->hash >> 6) & s->mask) * WAYS;
    shard_lock(s);
    rl_slot *e = find(b, k->hash);
    if (!e)
        e = claim(s, b, k->hash, now);
    int64_t tat = LD(e->tat[c]);
    if (tat < now)
        tat = now;
    int64_t d = tat + p->interval_ns - now;
    bool allowed = d <= p->tolerance_ns;
    if (allowed)
        ST(e->tat[c], tat + p->interval_ns);
    shard_unlock(s);
    result(out, p, allowed, d);
}

bool oms_rl_exhausted(oms_rl *rl, const oms_rl_key *k, oms_rl_class c, int64_t now, oms_rl_result *out)
{
    const oms_rl_policy *p = oms_rl_policy_for(rl, k, c);
    const rl_shard *s = &rl->shard[k->hash & (NSHARDS - 1)];
    rl_slot *b = s->slots + (size_t)((k->hash >> 6) & s->mask) * WAYS;
    /* Without the lock: most requests come from addresses that never
     * failed, and this check must not make every worker write the shard's
     * lock line. The tag is read around the TAT (seqlock style); a slot
     * reused meanwhile for another key reads as "not held". */
    int64_t tat = 0;
    for (int i = 0; i < WAYS; i++) {
        if (atomic_load_explicit(&b[i].tag, memory_order_acquire) != k->hash)
            continue;
        int64_t t = LD(b[i].tat[c]);
        atomic_thread_fence(memory_order_acquire);
        if (LD(b[i].tag) == k->hash)
            tat = t;
        break;
    }
    if (tat < now)
        tat = now;
    int64_t d = tat + p->interval_ns - now;
    bool exhausted = d > p->tolerance_ns;
    if (exhausted)
        result(out, p, false, d);
    else
        result(out, p, true, tat - now);
    return exhausted;
}

/* ---- the server's instance ---- */

static struct {
    oms_rl *rl;
    bool on;
} g;

int oms_ratelimit_configure(const oms_config *cfg, oms_error *err)
{
    static const char *const names[OMS_RL__COUNT] = {"OMS_RATE_LIMIT_READ", "OMS_RATE_LIMIT_WRITE",
                                                     "OMS_RATE_LIMIT_AUTH_FAILURE"};
    oms_rl_config rc = {.capacity = (size_t)oms_config_int(cfg, "OMS_RATE_LIMIT_KEYS"),
                        .overrides = oms_config_str(cfg, "OMS_RATE_LIMIT_OVERRIDES")};
    for (int c = 0; c < OMS_RL__COUNT; c++) {
        const char *v = oms_config_str(cfg, names[c]);
        int r = policy_parse_n(&rc.policy[c], (oms_rl_class)c, v ? v : "", v ? strlen(v) : 0, names[c], err);
        if (r)
            return r;
    }
    oms_rl *rl;
    int r = oms_rl_new(&rl, &rc, err);
    if (r)
        return r;
    oms_rl_free(g.rl);
    g.rl = rl;
    g.on = oms_config_int(cfg, "OMS_RATE_LIMIT_ENABLED") != 0;
    oms_ratelimit_audit_configure(oms_config_int(cfg, "OMS_RATE_LIMIT_AUDIT_WINDOW") * 1000,
                                  (int)oms_config_int(cfg, "OMS_RATE_LIMIT_AUDIT_SAMPLE"),
                                  oms_config_int(cfg, "OMS_RATE_LIMIT_STORM_KEY"),
                                  oms_config_int(cfg, "OMS_RATE_LIMIT_STORM_TOTAL"));
    return OMS_OK;
}

bool oms_ratelimit_on(void) { return g.on && g.rl; }
oms_rl *oms_ratelimit_instance(void) { return g.rl; }

static const oms_rl_key *address_key(oms_request *req, oms_rl_decision *d)
{
    if (!d->have_addr) {
        oms_rl_key_address(g.rl, &d->addr, req->client_family, req->client_ip);
        d->have_addr = true;
    }
    return &d->addr;
}

bool oms_ratelimit_address_throttled(oms_request *req, oms_rl_decision *d)
{
    if (!oms_ratelimit_on())
        return false;
    const oms_rl_key *k = address_key(req, d);
    oms_rl_result res;
    if (!oms_rl_exhausted(g.rl, k, OMS_RL_AUTH_FAILURE, req->start_ns, &res))
        return false;
    d->decided = true;
    d->cls = OMS_RL_AUTH_FAILURE;
    d->by_address = true;
    d->key = *k;
    d->res = res;
    return true;
}

bool oms_ratelimit_anonymous_failure(oms_request *req, oms_rl_decision *d)
{
    if (!oms_ratelimit_on())
        return true;
    d->key = *address_key(req, d);
    d->decided = true;
    d->cls = OMS_RL_AUTH_FAILURE;
    d->by_address = true;
    oms_rl_take(g.rl, &d->key, OMS_RL_AUTH_FAILURE, req->start_ns, &d->res);
    return d->res.allowed;
}

bool oms_ratelimit_library_refusal(oms_request *req)
{
    bool trusted = oms_client_addr_peer_trusted(req);
    if (!oms_ratelimit_on() || trusted) /* a proxy speaks for many clients: never throttle it blindly */
        return true;
    oms_rl_decision d = {.decided = false};
    if (oms_ratelimit_anonymous_failure(req, &d))
        return true;
    return oms_ratelimit_refusal(req, &d);
}

static bool is_read(const char *m)
{
    return m && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0);
}

bool oms_ratelimit_admit(oms_request *req, oms_rl_decision *d)
{
    if (!oms_ratelimit_on())
        return true;
    d->cls = is_read(req->method) ? OMS_RL_READ : OMS_RL_WRITE;
    if (req->authenticated) {
        oms_rl_key_principal(g.rl, &d->key, req->principal.sub);
        d->by_address = false;
    } else {
        d->key = *address_key(req, d);
        d->by_address = true;
    }
    d->decided = true;
    oms_rl_take(g.rl, &d->key, d->cls, req->start_ns, &d->res);
    return d->res.allowed;
}

/* Decimal digits of a non-negative value, without printf's machinery: this
 * runs on every response. */
static char *put_int(char *p, int64_t v)
{
    char tmp[24];
    int n = 0;
    if (v < 0)
        v = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

void oms_ratelimit_fields(oms_request *req, const oms_rl_decision *d)
{
    if (!d->decided)
        return;
    const oms_rl_result *r = &d->res;
    char v[96], *p = v;
    const char *name = k_class_names[d->cls];
    size_t n = strlen(name);
    *p++ = '"';
    memcpy(p, name, n);
    p += n;
    memcpy(p, "\";r=", 4);
    p = put_int(p + 4, r->remaining);
    memcpy(p, ";t=", 3);
    p = put_int(p + 3, r->reset_s);
    *p = '\0';
    oms_resp_header(req, "RateLimit-Policy", r->policy->field);
    oms_resp_header(req, "RateLimit", v);
    if (!r->allowed) {
        p = put_int(v, r->retry_after_s);
        *p = '\0';
        oms_resp_header(req, "Retry-After", v);
    }
}

void oms_ratelimit_key_text(char *out, size_t cap, const oms_request *req, const oms_rl_decision *d)
{
    if (!d->by_address) {
        /* cut at a character boundary: the text goes into JSON */
        const char *sub = req->principal.sub ? req->principal.sub : "";
        size_t n = strlen(sub);
        if (n > 128) {
            n = 128;
            while (n && ((unsigned char)sub[n] & 0xc0) == 0x80)
                n--;
        }
        snprintf(out, cap, "principal:%.*s", (int)n, sub);
    } else if (req->client_family == 6) {
        oms_ip net = {.family = 6};
        memcpy(net.addr, req->client_ip, 8);
        char a[64];
        oms_ip_format(a, sizeof a, &net);
        snprintf(out, cap, "address:%s/64", a);
    } else {
        snprintf(out, cap, "address:%s", req->client_addr);
    }
}
