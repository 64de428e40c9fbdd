/* Who is on the other end (SPEC §6.5): the socket's peer, or, when the peer
 * is one of OMS_TRUSTED_PROXIES, the client named in X-Forwarded-For. The
 * result feeds the rate-limit keys, the audit event's client_addr and the
 * access log (docs/security.md "Client address and trusted proxies"). */
#ifndef OMS_CLIENT_ADDR_H
#define OMS_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

struct oms_config;

/* One network: family 4 or 6, the address (4 or 16 bytes used), prefix
 * length in bits. */
typedef struct {
    int family;
    unsigned char addr[16];
    int prefix;
} oms_cidr;

/* An address, binary. family 0: unknown. */
typedef struct {
    int family;
    unsigned char addr[16];
} oms_ip;

/* "10.0.0.0/8, 192.168.1.7, fd00::/8" (commas or spaces between items; an
 * address without a prefix is a single host). IPv4-mapped IPv6 networks
 * (::ffff:a.b.c.d/N, N >= 96) are read as IPv4. Host bits set below the
 * prefix are refused: "10.1.2.3/8" is more likely a typo than a wish. At
 * most 256 items. `*out` is malloc'd (NULL when the list is empty). */
int oms_cidr_list_parse(oms_cidr **out, size_t *n, const char *text, oms_error *err);
bool oms_cidr_list_contains(const oms_cidr *list, size_t n, const oms_ip *ip);

/* Parses one address as found in X-Forwarded-For: "1.2.3.4", "1.2.3.4:80",
 * "2001:db8::1", "[2001:db8::1]:443"; IPv4-mapped IPv6 becomes IPv4. The
 * text is `len` bytes, surrounding spaces ignored. False when it is not an
 * address (e.g. "unknown", an obfuscated RFC 7239 name). */
bool oms_ip_parse(oms_ip *out, const char *text, size_t len);
void oms_ip_format(char *out, size_t cap, const oms_ip *ip);

/* The client, given the peer and the X-Forwarded-For field values in the
 * order received (several fields are one list, RFC 9110 §5.3): a peer that
 * is not trusted is the client and the header is ignored; from a trusted
 * peer, the hops are walked right to left and the first that is not a
 * trusted proxy is the client. A hop that is not an address ends the walk:
 * the client is then the nearest trusted hop to its right (the proxy that
 * wrote it). When every hop is trusted, the leftmost is the client. At most
 * 64 hops are read. */
void oms_xff_client(oms_ip *out, const oms_cidr *trusted, size_t ntrusted, const oms_ip *peer,
                    const char *const *xff, size_t nxff);

/* Reads OMS_TRUSTED_PROXIES (start-up; a bad list refuses to start). */
int oms_client_addr_configure(const struct oms_config *cfg, oms_error *err);

/* Sets req->client_addr (text) and req->client_ip (binary) for the request:
 * first step of the pipeline. */
void oms_client_addr_resolve(oms_request *req);

/* The peer of a connection alone (no headers: the HTTP library refused the
 * request before they were read), and whether it is a trusted proxy. */
bool oms_client_addr_peer_trusted(oms_request *req);

#endif
