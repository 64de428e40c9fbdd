/* Rate limits and client addresses (SPEC §6.5) with a clock the test holds:
 * GCRA admits exactly the burst, then one request per interval; refusals
 * change nothing; the table's memory is fixed; the settings' grammar; the
 * trusted-proxy walk over X-Forwarded-For. */
#include <stdint.h>
#include <stdlib.h>

#include "http/client_addr.h"
#include "http/ratelimit.h"
#include "t.h"

#define S 1000000000LL

static oms_rl *make(const char *read, const char *write, const char *authf, size_t cap, const char *ov)
{
    oms_rl_config c = {.capacity = cap, .overrides = ov};
    oms_error err;
    if (oms_rl_policy_parse(&c.policy[OMS_RL_READ], OMS_RL_READ, read, &err) ||
        oms_rl_policy_parse(&c.policy[OMS_RL_WRITE], OMS_RL_WRITE, write, &err) ||
        oms_rl_policy_parse(&c.policy[OMS_RL_AUTH_FAILURE], OMS_RL_AUTH_FAILURE, authf, &err))
        return NULL;
    oms_rl *rl = NULL;
    if (oms_rl_new(&rl, &c, &err)) {
        fprintf(stderr, "  oms_rl_new: %s\n", err.msg);
        return NULL;
    }
    return rl;
}

static void policy_grammar(void)
{
    oms_rl_policy p;
    oms_error err;
    CHECK_EQ_INT(oms_rl_policy_parse(&p, OMS_RL_READ, "100/s:200", &err), OMS_OK);
    CHECK_EQ_INT(p.interval_ns, 10000000);
    CHECK_EQ_INT(p.tolerance_ns, 2 * S);
    CHECK_EQ_STR(p.field, "\"read\";q=200;w=2");
    CHECK_EQ_INT(oms_rl_policy_parse(&p, OMS_RL_AUTH_FAILURE, " 10 / m : 10 ", &err), OMS_OK);
    CHECK_EQ_INT(p.interval_ns, 6 * S);
    CHECK_EQ_STR(p.field, "\"auth_failure\";q=10;w=60");
    CHECK_EQ_INT(oms_rl_policy_parse(&p, OMS_RL_WRITE, "3/h:1", &err), OMS_OK);
    CHECK_EQ_INT(p.interval_ns, 1200 * S);
    CHECK_EQ_INT(oms_rl_policy_parse(&p, OMS_RL_READ, "100/s:10", &err), OMS_OK);
    CHECK_EQ_STR(p.field, "\"read\";q=10;w=1"); /* a window under a second is written as one */
    static const char *const bad[] = {"", "100", "100/s", "100/s:", "100/x:5", "-1/s:5", "0/s:5", "5/s:0",
                                      "1/s:2000000000", "100/s:200x", "a/s:1", "100/s:200,", "1/h:1000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = oms_rl_policy_parse(&p, OMS_RL_READ, bad[i], &err);
        if (rc != OMS_ECONFIG)
            fprintf(stderr, "  accepted %s\n", bad[i]);
        CHECK_EQ_INT(rc, OMS_ECONFIG);
    }
}

/* Burst 5 at 10/s: five at once, the sixth refused with Retry-After 1,
 * one more after T, everything back after tau; refusals move nothing. */
static void gcra_burst_then_rate(void)
{
    oms_rl *rl = make("10/s:5", "1/s:1", "10/m:10", 4096, NULL);
    CHECK(rl != NULL);
    if (!rl)
        return;
    oms_rl_key k;
    oms_rl_key_principal(rl, &k, "alice");
    oms_rl_result r;
    int64_t now = 1000 * S;
    for (int i = 0; i < 5; i++) {
        oms_rl_take(rl, &k, OMS_RL_READ, now, &r);
        CHECK(r.allowed);
        CHECK_EQ_INT(r.remaining, 4 - i);
        CHECK_EQ_INT(r.reset_s, 1);
    }
    for (int i = 0; i < 100; i++) { /* a flood of refusals changes nothing */
        oms_rl_take(rl, &k, OMS_RL_READ, now, &r);
        CHECK(!r.allowed);
    }
    CHECK_EQ_INT(r.remaining, 0);
    CHECK_EQ_INT(r.retry_after_s, 1);
    oms_rl_take(rl, &k, OMS_RL_READ, now + 100000000 - 1, &r); /* T = 100 ms, one ns short */
    CHECK(!r.allowed);
    oms_rl_take(rl, &k, OMS_RL_READ, now + 100000000, &r);
    CHECK(r.allowed);
    CHECK_EQ_INT(r.remaining, 0);
    oms_rl_take(rl, &k, OMS_RL_READ, now + 100000000, &r);
    CHECK(!r.allowed);
    /* classes are separate; so are keys */
    oms_rl_take(rl, &k, OMS_RL_WRITE, now, &r);
    CHECK(r.allowed);
    oms_rl_take(rl, &k, OMS_RL_WRITE, now, &r);
    CHECK(!r.allowed);
    oms_rl_key bob;
    oms_rl_key_principal(rl, &bob, "bob");
    oms_rl_take(rl, &bob, OMS_RL_READ, now, &r);
    CHECK(r.allowed);
    CHECK_EQ_INT(r.remaining, 4);
    /* after tau (500 ms past the last admission) the burst is whole again */
    oms_rl_take(rl, &k, OMS_RL_READ, now + 100000000 + 500000000, &r);
    CHECK(r.allowed);
    CHECK_EQ_INT(r.remaining, 4);
    oms_rl_free(rl);
}

static void exhausted_is_a_peek(void)
{
    oms_rl *rl = make("10/s:5", "1/s:1", "10/m:3", 4096, NULL);
    if (!rl)
        return;
    unsigned char ip[16] = {192, 0, 2, 7};
    oms_rl_key k;
    oms_rl_key_address(rl, &k, 4, ip);
    oms_rl_result r;
    int64_t now = 50 * S;
    CHECK(!oms_rl_exhausted(rl, &k, OMS_RL_AUTH_FAILURE, now, &r)); /* unknown key */
    for (int i = 0; i < 3; i++) {
        CHECK(!oms_rl_exhausted(rl, &k, OMS_RL_AUTH_FAILURE, now, &r));
        oms_rl_take(rl, &k, OMS_RL_AUTH_FAILURE, now, &r);
        CHECK(r.allowed);
    }
    CHECK_EQ_INT(r.remaining, 0);
    for (int i = 0; i < 10; i++)
        CHECK(oms_rl_exhausted(rl, &k, OMS_RL_AUTH_FAILURE, now, &r));
    CHECK_EQ_INT(r.retry_after_s, 6);
    CHECK(oms_rl_exhausted(rl, &k, OMS_RL_AUTH_FAILURE, now + 6 * S - 1, &r));
    CHECK(!oms_rl_exhausted(rl, &k, OMS_RL_AUTH_FAILURE, now + 6 * S, &r));
    /* the same address's /64 rule does not apply to IPv4: a neighbour is another key */
    unsigned char ip2[16] = {192, 0, 2, 8};
    oms_rl_key k2;
    oms_rl_key_address(rl, &k2, 4, ip2);
    CHECK(!oms_rl_exhausted(rl, &k2, OMS_RL_AUTH_FAILURE, now, &r));
    /* IPv6: one /64 is one key */
    unsigned char a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};
    unsigned char b6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xff, 0, 0, 0, 0, 0, 0, 9};
    unsigned char c6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1};
    oms_rl_key ka, kb, kc;
    oms_rl_key_address(rl, &ka, 6, a6);
    oms_rl_key_address(rl, &kb, 6, b6);
    oms_rl_key_address(rl, &kc, 6, c6);
    CHECK(ka.hash == kb.hash);
    CHECK(ka.hash != kc.hash);
    oms_rl_free(rl);
}

static void overrides(void)
{
    oms_rl *rl = make("10/s:2", "1/s:1", "10/m:10", 4096,
                      " svc-indexer = read:1000/s:2000, write:200/s:400 ; cn=svc,ou=x=read:5/s:7");
    CHECK(rl != NULL);
    if (!rl)
        return;
    oms_rl_key k;
    oms_rl_key_principal(rl, &k, "svc-indexer");
    CHECK(k.override != NULL);
    CHECK_EQ_INT(oms_rl_policy_for(rl, &k, OMS_RL_READ)->burst, 2000);
    CHECK_EQ_INT(oms_rl_policy_for(rl, &k, OMS_RL_WRITE)->burst, 400);
    CHECK_EQ_INT(oms_rl_policy_for(rl, &k, OMS_RL_AUTH_FAILURE)->burst, 10);
    oms_rl_key_principal(rl, &k, "cn=svc,ou=x");
    CHECK(k.override != NULL);
    CHECK_EQ_INT(oms_rl_policy_for(rl, &k, OMS_RL_READ)->burst, 7);
    CHECK_EQ_INT(oms_rl_policy_for(rl, &k, OMS_RL_WRITE)->burst, 1); /* not named: the default */
    oms_rl_key_principal(rl, &k, "svc-indexer2");
    CHECK(k.override == NULL);
    oms_rl_free(rl);
    static const char *const bad[] = {
        "svc", "svc=", "=read:1/s:1", "svc=read", "svc=read:1/s", "svc=auth_failure:1/s:1", "svc=reads:1/s:1",
        "svc=read:1/s:1,read:2/s:2", "svc=read:1/s:1;svc=write:1/s:1", "svc=read:1/s:1,", "svc=read:0/s:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oms_rl *x = make("10/s:2", "1/s:1", "10/m:10", 4096, bad[i]);
        if (x)
            fprintf(stderr, "  accepted %s\n", bad[i]);
        CHECK(x == NULL);
        oms_rl_free(x);
    }
}

/* A million distinct addresses pass through a table of 4096 keys: memory
 * never grows, and a key that is still limited survives what it can. */
static void memory_is_fixed(void)
{
    oms_rl *rl = make("10/s:5", "1/s:1", "10/m:1", 4096, NULL);
    if (!rl)
        return;
    CHECK_EQ_INT(oms_rl_capacity(rl), 4096);
    oms_rl_result r;
    int64_t now = 10 * S;
    unsigned char ip[16] = {0};
    for (uint32_t i = 0; i < 1000000; i++) {
        ip[0] = (unsigned char)(i >> 24);
        ip[1] = (unsigned char)(i >> 16);
        ip[2] = (unsigned char)(i >> 8);
        ip[3] = (unsigned char)i;
        oms_rl_key k;
        oms_rl_key_address(rl, &k, 4, ip);
        oms_rl_take(rl, &k, OMS_RL_AUTH_FAILURE, now, &r);
        CHECK(r.allowed);
    }
    CHECK(oms_rl_evictions(rl) > 0);
    /* once their limits have passed, their slots are taken without
     * evictions (500 keys: far from filling any 8-way bucket) */
    uint64_t ev = oms_rl_evictions(rl);
    for (uint32_t i = 0; i < 500; i++) {
        ip[0] = 10;
        ip[3] = (unsigned char)i;
        ip[2] = (unsigned char)(i >> 8);
        ip[1] = (unsigned char)(i >> 16);
        oms_rl_key k;
        oms_rl_key_address(rl, &k, 4, ip);
        oms_rl_take(rl, &k, OMS_RL_READ, now + 3600 * S + i, &r);
    }
    CHECK_EQ_INT(oms_rl_evictions(rl) - ev, 0);
    oms_rl_free(rl);
}

/* ---- client addresses ---- */

static oms_ip ip_of(const char *s)
{
    oms_ip ip;
    if (!oms_ip_parse(&ip, s, strlen(s)))
        memset(&ip, 0, sizeof ip);
    return ip;
}

static const char *fmt(const oms_ip *ip)
{
    static char buf[64];
    oms_ip_format(buf, sizeof buf, ip);
    return buf;
}

static void ip_forms(void)
{
    oms_ip ip;
    CHECK(oms_ip_parse(&ip, " 192.0.2.1 ", 11) && ip.family == 4);
    CHECK_EQ_STR(fmt(&ip), "192.0.2.1");
    CHECK(oms_ip_parse(&ip, "192.0.2.1:8080", 14));
    CHECK_EQ_STR(fmt(&ip), "192.0.2.1");
    CHECK(oms_ip_parse(&ip, "[2001:db8::1]:443", 17) && ip.family == 6);
    CHECK_EQ_STR(fmt(&ip), "2001:db8::1");
    CHECK(oms_ip_parse(&ip, "2001:db8::1", 11));
    CHECK(oms_ip_parse(&ip, "::ffff:198.51.100.2", 19) && ip.family == 4);
    CHECK_EQ_STR(fmt(&ip), "198.51.100.2");
    static const char *const bad[] = {"unknown", "_hidden", "192.0.2.1:", "192.0.2.1:x", "[2001:db8::1", "[::1]x",
                                      "fe80::1%eth0", "1.2.3", "", "999.1.1.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!oms_ip_parse(&ip, bad[i], strlen(bad[i])));
}

static void cidr_lists(void)
{
    oms_cidr *l;
    size_t n;
    oms_error err;
    CHECK_EQ_INT(oms_cidr_list_parse(&l, &n, "10.0.0.0/8, 192.0.2.7 fd00::/8,::ffff:172.16.0.0/108", &err), OMS_OK);
    CHECK_EQ_INT(n, 4);
    oms_ip a = ip_of("10.1.2.3"), b = ip_of("11.0.0.1"), c = ip_of("192.0.2.7"), d = ip_of("192.0.2.8"),
           e = ip_of("fd12::1"), f = ip_of("fe80::1"), g6 = ip_of("172.16.200.1"), h = ip_of("::ffff:10.9.9.9");
    CHECK(oms_cidr_list_contains(l, n, &a));
    CHECK(!oms_cidr_list_contains(l, n, &b));
    CHECK(oms_cidr_list_contains(l, n, &c));
    CHECK(!oms_cidr_list_contains(l, n, &d));
    CHECK(oms_cidr_list_contains(l, n, &e));
    CHECK(!oms_cidr_list_contains(l, n, &f));
    CHECK(oms_cidr_list_contains(l, n, &g6));
    CHECK(oms_cidr_list_contains(l, n, &h)); /* mapped peer = IPv4 */
    free(l);
    CHECK_EQ_INT(oms_cidr_list_parse(&l, &n, "", &err), OMS_OK);
    CHECK_EQ_INT(n, 0);
    static const char *const bad[] = {"10.0.0.0/33", "10.1.0.0/8", "example.com", "10.0.0.0/", "10.0.0.0/x",
                                      "fd00::/129", "[::1]", "::ffff:1.2.3.4/64", "1.2.3.4:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = oms_cidr_list_parse(&l, &n, bad[i], &err);
        if (rc != OMS_ECONFIG)
            fprintf(stderr, "  accepted %s\n", bad[i]);
        CHECK_EQ_INT(rc, OMS_ECONFIG);
    }
}

static const char *client(const char *trusted, const char *peer, const char *const *xff, size_t n)
{
    oms_cidr *l;
    size_t nl;
    oms_error err;
    if (oms_cidr_list_parse(&l, &nl, trusted, &err))
        return "(bad list)";
    oms_ip p = ip_of(peer), out;
    oms_xff_client(&out, l, nl, &p, xff, n);
    free(l);
    return fmt(&out);
}

static void xff_walk(void)
{
    const char *one[] = {"203.0.113.9, 198.51.100.4, 10.0.0.2"};
    /* untrusted peer: the header is ignored */
    CHECK_EQ_STR(client("", "10.0.0.1", one, 1), "10.0.0.1");
    CHECK_EQ_STR(client("10.0.0.0/8", "192.0.2.1", one, 1), "192.0.2.1");
    /* trusted peer: the rightmost hop that is not trusted */
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", one, 1), "198.51.100.4");
    CHECK_EQ_STR(client("10.0.0.0/8, 198.51.100.0/24", "10.0.0.1", one, 1), "203.0.113.9");
    /* several fields are one list, in order */
    const char *two[] = {"203.0.113.9", "198.51.100.4,10.0.0.2"};
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", two, 2), "198.51.100.4");
    /* a spoofed left part is never reached */
    const char *spoof[] = {"1.1.1.1, 203.0.113.50"};
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", spoof, 1), "203.0.113.50");
    /* garbage ends the walk at the proxy that wrote it */
    const char *junk[] = {"203.0.113.9, unknown, 10.0.0.2"};
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", junk, 1), "10.0.0.2");
    /* every hop trusted: the leftmost */
    const char *inner[] = {"10.0.0.5, 10.0.0.2"};
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", inner, 1), "10.0.0.5");
    /* no header, empty elements, ports, IPv6 */
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", NULL, 0), "10.0.0.1");
    const char *empty[] = {" , 203.0.113.9:5555 ,, "};
    CHECK_EQ_STR(client("10.0.0.0/8", "10.0.0.1", empty, 1), "203.0.113.9");
    const char *v6[] = {"[2001:db8::7]:1234, fd00::2"};
    CHECK_EQ_STR(client("fd00::/8", "fd00::1", v6, 1), "2001:db8::7");
    CHECK_EQ_STR(client("127.0.0.1", "::ffff:127.0.0.1", v6, 1), "fd00::2");
}

int main(void)
{
    static const t_case cases[] = {T(policy_grammar), T(gcra_burst_then_rate), T(exhausted_is_a_peek),
                                   T(overrides),      T(memory_is_fixed),      T(ip_forms),
                                   T(cidr_lists),     T(xff_walk)};
    return T_RUN("ratelimit", cases);
}
