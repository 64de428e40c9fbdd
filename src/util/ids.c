#include "util/ids.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/encoding.h"
#include "util/time.h"

/* One getrandom call, retried when a signal interrupts it (possible only
 * before the kernel's pool is initialized; afterwards requests up to 256
 * bytes are never interrupted nor short). */
static bool fill(unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

bool oms_random_available(void)
{
    unsigned char b[16];
    return fill(b, sizeof b);
}

void oms_random_bytes(void *buf, size_t n)
{
    if (!fill(buf, n)) {
        /* unreachable after main's oms_random_available check on any
         * kernel this server runs on; refusing beats a predictable id */
        fprintf(stderr, "oms: the kernel gave no randomness (%s); stopping\n", strerror(errno));
        abort();
    }
}

/* Ids draw their random bytes from a per-thread pool filled by one
 * getrandom call for about twenty ids: a request makes three or four (its
 * own, its audit event's, its event's, a lock's), and on the virtual
 * machines this runs on a system call costs microseconds. Only ids: keys
 * and secrets take theirs from oms_random_bytes, never kept in memory.
 * The process never forks, so no two processes share a pool. */
#define ID_POOL 256
static _Thread_local unsigned char t_pool[ID_POOL];
static _Thread_local size_t t_pool_used = ID_POOL;

static void id_bytes(unsigned char *b, size_t n)
{
    if (t_pool_used + n > ID_POOL) {
        oms_random_bytes(t_pool, ID_POOL);
        t_pool_used = 0;
    }
    memcpy(b, t_pool + t_pool_used, n);
    memset(t_pool + t_pool_used, 0, n); /* each byte serves one id */
    t_pool_used += n;
}

void oms_random_id(char *out, const char *prefix)
{
    unsigned char b[16];
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    id_bytes(b, sizeof b);
    oms_hex(out + n, b, sizeof b);
}

void oms_time_ordered_id(char out[33])
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)oms_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    id_bytes(b + 6, sizeof b - 6);
    oms_hex(out, b, sizeof b);
}
