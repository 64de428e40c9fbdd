/* Time-ordered ids (src/util/ids.c): 32 lowercase hex digits whose first
 * 12 are the wall clock in milliseconds, so that an id made in a later
 * millisecond sorts after every id made before it, and whose other 20 are
 * random, so that two ids of one millisecond still differ. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "t.h"
#include "util/ids.h"
#include "util/time.h"

static void shape_is_32_lowercase_hex(void)
{
    char id[33];
    oms_time_ordered_id(id);
    CHECK_EQ_INT(strlen(id), 32);
    for (int i = 0; i < 32; i++)
        CHECK(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]));
}

static void prefix_is_the_clock_in_ms(void)
{
    int64_t before = oms_now_ms();
    char id[33];
    oms_time_ordered_id(id);
    int64_t after = oms_now_ms();
    char prefix[13];
    memcpy(prefix, id, 12);
    prefix[12] = '\0';
    long long ms = strtoll(prefix, NULL, 16);
    CHECK(ms >= before && ms <= after);
}

static void later_ids_sort_after_earlier_ones(void)
{
    char prev[33], cur[33];
    oms_time_ordered_id(prev);
    for (int i = 0; i < 5; i++) {
        usleep(2000); /* a later millisecond */
        oms_time_ordered_id(cur);
        CHECK(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof cur);
    }
}

static void ids_of_one_millisecond_differ(void)
{
    enum { N = 2000 };
    static char ids[N][33];
    for (int i = 0; i < N; i++)
        oms_time_ordered_id(ids[i]);
    int same_ms = 0;
    for (int i = 1; i < N; i++) {
        same_ms += memcmp(ids[i], ids[i - 1], 12) == 0;
        CHECK(strcmp(ids[i], ids[i - 1]) != 0);
    }
    CHECK(same_ms > 0); /* the loop made several ids within one millisecond */
}

static void random_ids_carry_the_prefix_and_32_hex_digits(void)
{
    char a[40], b[40];
    CHECK(oms_random_available());
    oms_random_id(a, "acl_");
    oms_random_id(b, "acl_");
    CHECK_EQ_INT(strlen(a), 36);
    CHECK(strncmp(a, "acl_", 4) == 0);
    for (int i = 4; i < 36; i++)
        CHECK(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
    CHECK(strcmp(a, b) != 0);
}

static void random_bytes_fill_the_whole_buffer(void)
{
    /* 256 bytes, the largest request: a buffer left zero anywhere would show
     * as a run of zero bytes no generator gives in three tries */
    unsigned char buf[256];
    int full = 0;
    for (int round = 0; round < 3; round++) {
        memset(buf, 0, sizeof buf);
        oms_random_bytes(buf, sizeof buf);
        int zero_run = 0, longest = 0;
        for (size_t i = 0; i < sizeof buf; i++) {
            zero_run = buf[i] ? 0 : zero_run + 1;
            longest = zero_run > longest ? zero_run : longest;
        }
        full += longest < 4;
    }
    CHECK(full == 3);
}

/* Ids take their random bytes from a per-thread pool refilled every
 * couple of hundred bytes: across many refills and threads no two ids
 * repeat, and none carries a zeroed stretch (a byte served twice, or a
 * pool used before it was filled, would show as either). */
enum { THREADS = 4, PER_THREAD = 5000 };
static char g_many[THREADS * PER_THREAD][37];

static void *make_ids(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 2)
            oms_random_id(g_many[t * PER_THREAD + i], "acl_");
        else {
            memcpy(g_many[t * PER_THREAD + i], "acl_", 4);
            oms_time_ordered_id(g_many[t * PER_THREAD + i] + 4);
        }
    }
    return NULL;
}

static int by_text(const void *a, const void *b) { return strcmp(a, b); }

static void ids_from_the_pool_never_repeat(void)
{
    pthread_t th[THREADS];
    int started = 0;
    for (int t = 0; t < THREADS; t++)
        started += pthread_create(&th[t], NULL, make_ids, (void *)(intptr_t)t) == 0;
    CHECK_EQ_INT(started, THREADS);
    if (started != THREADS)
        return;
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    int zeroed = 0;
    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        /* the random part: 32 hex digits, or the last 20 of a time-ordered id */
        const char *r = g_many[i] + ((i % PER_THREAD) % 2 ? 4 : 16);
        zeroed += strstr(r, "0000000000000000") != NULL; /* 8 zero bytes: never by chance */
    }
    CHECK_EQ_INT(zeroed, 0);
    qsort(g_many, THREADS * PER_THREAD, sizeof g_many[0], by_text);
    int repeats = 0;
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        repeats += strcmp(g_many[i], g_many[i - 1]) == 0;
    CHECK_EQ_INT(repeats, 0);
}

int main(void)
{
    static const t_case cases[] = {
        T(shape_is_32_lowercase_hex),
        T(prefix_is_the_clock_in_ms),
        T(later_ids_sort_after_earlier_ones),
        T(ids_of_one_millisecond_differ),
        T(random_ids_carry_the_prefix_and_32_hex_digits),
        T(random_bytes_fill_the_whole_buffer),
        T(ids_from_the_pool_never_repeat),
    };
    return T_RUN("ids", cases);
}
