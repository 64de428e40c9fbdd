/* libFuzzer target for the abuse-protection parsers (SPEC §6.5): the input's
 * first line is OMS_TRUSTED_PROXIES, the second an X-Forwarded-For value
 * (the peer is the first trusted network's address), the third
 * OMS_RATE_LIMIT_OVERRIDES, the fourth a class limit. Nothing may crash or
 * read out of bounds; what is accepted must hold together: without trusted
 * proxies the client is the peer, an accepted limit admits exactly its
 * burst at once and then refuses with a Retry-After. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/client_addr.h"
#include "http/ratelimit.h"

static char *line(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = nl ? nl : end;
    char *s = strndup(*p, (size_t)(e - *p));
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *proxies = line(&p, end), *xff = line(&p, end), *ov = line(&p, end), *lim = line(&p, end);
    oms_error err;
    oms_cidr *list = NULL;
    size_t n = 0;
    if (oms_cidr_list_parse(&list, &n, proxies, &err) == OMS_OK) {
        oms_ip peer = {.family = n ? list[0].family : 4};
        if (n)
            memcpy(peer.addr, list[0].addr, sizeof peer.addr);
        const char *fields[1] = {xff};
        oms_ip client;
        oms_xff_client(&client, list, n, &peer, fields, 1);
        if (client.family != 4 && client.family != 6)
            abort();
        if (n == 0 && memcmp(&client, &peer, sizeof client) != 0)
            abort(); /* no trusted proxy: the header is never read */
    }
    free(list);
    oms_rl_config c = {.capacity = 512, .overrides = ov};
    oms_rl_policy_parse(&c.policy[OMS_RL_READ], OMS_RL_READ, "100/s:200", &err);
    oms_rl_policy_parse(&c.policy[OMS_RL_WRITE], OMS_RL_WRITE, "20/s:40", &err);
    int lrc = oms_rl_policy_parse(&c.policy[OMS_RL_AUTH_FAILURE], OMS_RL_AUTH_FAILURE, lim, &err);
    if (lrc != OMS_OK)
        oms_rl_policy_parse(&c.policy[OMS_RL_AUTH_FAILURE], OMS_RL_AUTH_FAILURE, "10/m:10", &err);
    oms_rl *rl = NULL;
    if (oms_rl_new(&rl, &c, &err) == OMS_OK) {
        oms_rl_key k;
        unsigned char ip[16] = {192, 0, 2, 1};
        oms_rl_key_address(rl, &k, 4, ip);
        const oms_rl_policy *pol = oms_rl_policy_for(rl, &k, OMS_RL_AUTH_FAILURE);
        if (lrc == OMS_OK && pol->burst <= 1000) {
            oms_rl_result r;
            for (int64_t i = 0; i < pol->burst; i++) {
                oms_rl_take(rl, &k, OMS_RL_AUTH_FAILURE, 1000, &r);
                if (!r.allowed)
                    abort();
            }
            oms_rl_take(rl, &k, OMS_RL_AUTH_FAILURE, 1000, &r);
            if (r.allowed || r.retry_after_s < 1)
                abort();
        }
        oms_rl_free(rl);
    }
    free(proxies);
    free(xff);
    free(ov);
    free(lim);
    return 0;
}
