/* The client address (SPEC §6.5): X-Forwarded-For is believed only from a
 * peer in OMS_TRUSTED_PROXIES, and then only as far as the chain of trusted
 * proxies reaches: each proxy appends the address it received the request
 * from, so the rightmost hop that is not one of ours is the client; whatever
 * stands left of it was written by that client and proves nothing. */
#include "http/client_addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "infra/config.h"
#include "util/alloc.h"

#define MAX_PROXIES 256
#define MAX_HOPS 64
#define MAX_XFF_FIELDS 8

static const unsigned char k_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* IPv4-mapped IPv6 (::ffff:a.b.c.d, a dual-stack socket's IPv4 peer) is
 * the IPv4 address: one client, one key, one spelling in the audit. */
static void unmap(oms_ip *ip)
{
    if (ip->family == 6 && memcmp(ip->addr, k_v4mapped, 12) == 0) {
        memmove(ip->addr, ip->addr + 12, 4);
        memset(ip->addr + 4, 0, 12);
        ip->family = 4;
    }
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

bool oms_ip_parse(oms_ip *out, const char *text, size_t len)
{
    memset(out, 0, sizeof *out);
    trim(&text, &len);
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *a = buf;
    if (buf[0] == '[') { /* [v6] or [v6]:port */
        char *close = strchr(buf, ']');
        if (!close || (close[1] && (close[1] != ':' || !close[2] || strspn(close + 2, "0123456789") != strlen(close + 2))))
            return false;
        *close = '\0';
        a = buf + 1;
    } else {
        char *colon = strchr(buf, ':');
        if (colon && !strchr(colon + 1, ':')) { /* exactly one colon: v4:port */
            if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
                return false;
            *colon = '\0';
        }
    }
    if (inet_pton(AF_INET, a, out->addr) == 1) {
        out->family = 4;
        return true;
    }
    if (strchr(a, '%')) /* a zone id names an interface of the sender, not a client */
        return false;
    if (inet_pton(AF_INET6, a, out->addr) == 1) {
        out->family = 6;
        unmap(out);
        return true;
    }
    return false;
}

void oms_ip_format(char *out, size_t cap, const oms_ip *ip)
{
    if (ip->family == 4 && cap >= INET_ADDRSTRLEN)
        inet_ntop(AF_INET, ip->addr, out, (socklen_t)cap);
    else if (ip->family == 6 && cap >= INET6_ADDRSTRLEN)
        inet_ntop(AF_INET6, ip->addr, out, (socklen_t)cap);
    else
        snprintf(out, cap, "unknown");
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool oms_cidr_list_contains(const oms_cidr *list, size_t n, const oms_ip *ip)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].family == ip->family && prefix_match(list[i].addr, ip->addr, list[i].prefix))
            return true;
    return false;
}

static int parse_cidr(oms_cidr *out, const char *item, size_t len, oms_error *err)
{
    const char *slash = memchr(item, '/', len);
    size_t alen = slash ? (size_t)(slash - item) : len;
    oms_ip ip;
    char a[INET6_ADDRSTRLEN + 1];
    if (alen == 0 || alen >= sizeof a)
        goto bad;
    memcpy(a, item, alen);
    a[alen] = '\0';
    /* the network is written plainly: no brackets, no port */
    if (inet_pton(AF_INET, a, ip.addr) == 1)
        ip.family = 4;
    else if (inet_pton(AF_INET6, a, ip.addr) == 1)
        ip.family = 6;
    else
        goto bad;
    int max = ip.family == 4 ? 32 : 128, prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t plen = len - alen - 1;
        if (plen == 0 || plen > 3 || strspn(p, "0123456789") < plen)
            goto bad;
        prefix = 0;
        for (size_t i = 0; i < plen; i++)
            prefix = prefix * 10 + (p[i] - '0');
        if (prefix > max)
            goto bad;
    }
    if (ip.family == 6 && memcmp(ip.addr, k_v4mapped, 12) == 0) {
        if (prefix < 96)
            goto bad;
        unmap(&ip);
        prefix -= 96;
    }
    out->family = ip.family;
    memcpy(out->addr, ip.addr, sizeof out->addr);
    out->prefix = prefix;
    /* host bits below the prefix must be zero */
    for (int b = prefix; b < (ip.family == 4 ? 32 : 128); b++)
        if (out->addr[b / 8] & (0x80 >> (b % 8)))
            return oms_err_set(err, OMS_ECONFIG,
                               "OMS_TRUSTED_PROXIES: %.*s has bits set below its prefix length (did you mean the network?)",
                               (int)(len > 60 ? 60 : len), item);
    return OMS_OK;
bad:
    return oms_err_set(err, OMS_ECONFIG,
                       "OMS_TRUSTED_PROXIES: %.*s is not an IPv4 or IPv6 address or network (ADDRESS[/PREFIX])",
                       (int)(len > 60 ? 60 : len), item);
}

int oms_cidr_list_parse(oms_cidr **out, size_t *n, const char *text, oms_error *err)
{
    *out = NULL;
    *n = 0;
    if (!text)
        return OMS_OK;
    oms_cidr *list = NULL;
    size_t count = 0;
    const char *p = text;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ", \t\r\n");
        if (count == MAX_PROXIES) {
            free(list);
            return oms_err_set(err, OMS_ECONFIG, "OMS_TRUSTED_PROXIES: more than %d networks", MAX_PROXIES);
        }
        if (!list)
            list = oms_xcalloc(MAX_PROXIES, sizeof *list);
        int rc = parse_cidr(&list[count], p, len, err);
        if (rc) {
            free(list);
            return rc;
        }
        count++;
        p += len;
    }
    *out = list;
    *n = count;
    return OMS_OK;
}

/* Walks the hops right to left (module comment). */
void oms_xff_client(oms_ip *out, const oms_cidr *trusted, size_t ntrusted, const oms_ip *peer,
                    const char *const *xff, size_t nxff)
{
    *out = *peer;
    if (!oms_cidr_list_contains(trusted, ntrusted, peer))
        return;
    int hops = 0;
    for (size_t f = nxff; f-- > 0;) {
        const char *v = xff[f];
        size_t end = strlen(v);
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            const char *item = v + start;
            size_t len = end - start;
            end = start ? start - 1 : 0;
            trim(&item, &len);
            if (len == 0) { /* "a, , b": an empty element is no hop (RFC 9110 §5.6.1) */
                if (start == 0)
                    break;
                continue;
            }
            if (++hops > MAX_HOPS)
                return;
            oms_ip hop;
            if (!oms_ip_parse(&hop, item, len))
                return; /* the proxy that wrote it stays the client */
            *out = hop;
            if (!oms_cidr_list_contains(trusted, ntrusted, &hop))
                return;
            if (start == 0)
                break;
        }
    }
}

/* ---- the server's list ---- */

static oms_cidr *g_trusted;
static size_t g_ntrusted;

int oms_client_addr_configure(const oms_config *cfg, oms_error *err)
{
    oms_cidr *list;
    size_t n;
    int rc = oms_cidr_list_parse(&list, &n, oms_config_str(cfg, "OMS_TRUSTED_PROXIES"), err);
    if (rc)
        return rc;
    free(g_trusted);
    g_trusted = list;
    g_ntrusted = n;
    return OMS_OK;
}

static void peer_of(oms_request *req, oms_ip *out)
{
    memset(out, 0, sizeof *out);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        out->family = 4;
        memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        out->family = 6;
        memcpy(out->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        unmap(out);
    }
}

typedef struct {
    const char *v[MAX_XFF_FIELDS];
    size_t n;
} xff_fields;

static enum MHD_Result collect_xff(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    xff_fields *f = cls;
    if (key && value && strcasecmp(key, "X-Forwarded-For") == 0 && f->n < MAX_XFF_FIELDS)
        f->v[f->n++] = value;
    return MHD_YES;
}

static void set_client(oms_request *req, const oms_ip *ip)
{
    req->client_family = ip->family;
    memcpy(req->client_ip, ip->addr, sizeof req->client_ip);
    oms_ip_format(req->client_addr, sizeof req->client_addr, ip);
}

void oms_client_addr_resolve(oms_request *req)
{
    oms_ip peer, client;
    peer_of(req, &peer);
    if (g_ntrusted == 0 || !oms_cidr_list_contains(g_trusted, g_ntrusted, &peer)) {
        set_client(req, &peer);
        return;
    }
    xff_fields f = {.n = 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_xff, &f);
    oms_xff_client(&client, g_trusted, g_ntrusted, &peer, f.v, f.n);
    set_client(req, &client);
}

bool oms_client_addr_peer_trusted(oms_request *req)
{
    oms_ip peer;
    peer_of(req, &peer);
    set_client(req, &peer);
    return g_ntrusted && oms_cidr_list_contains(g_trusted, g_ntrusted, &peer);
}
