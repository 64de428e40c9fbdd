/* Time-ordered ids (src/util/ids.c): 32 lowercase hex digits whose first
 * 12 are the wall clock in milliseconds, so that an id made in a later
 * millisecond sorts after every id made before it, and whose other 20 are
 * random, so that two ids of one millisecond still differ. */
#include <ctype.h>
#include <unistd.h>

#include "t.h"
#include "util/ids.h"
#include "util/time.h"

static void shape_is_32_lowercase_hex(void)
{
    char id[33];
    CHECK(oms_time_ordered_id(id));
    CHECK_EQ_INT(strlen(id), 32);
    for (int i = 0; i < 32; i++)
        CHECK(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]));
}

static void prefix_is_the_clock_in_ms(void)
{
    int64_t before = oms_now_ms();
    char id[33];
    CHECK(oms_time_ordered_id(id));
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
    CHECK(oms_time_ordered_id(prev));
    for (int i = 0; i < 5; i++) {
        usleep(2000); /* a later millisecond */
        CHECK(oms_time_ordered_id(cur));
        CHECK(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof cur);
    }
}

static void ids_of_one_millisecond_differ(void)
{
    enum { N = 2000 };
    static char ids[N][33];
    for (int i = 0; i < N; i++)
        CHECK(oms_time_ordered_id(ids[i]));
    int same_ms = 0;
    for (int i = 1; i < N; i++) {
        same_ms += memcmp(ids[i], ids[i - 1], 12) == 0;
        CHECK(strcmp(ids[i], ids[i - 1]) != 0);
    }
    CHECK(same_ms > 0); /* the loop made several ids within one millisecond */
}

int main(void)
{
    static const t_case cases[] = {
        T(shape_is_32_lowercase_hex),
        T(prefix_is_the_clock_in_ms),
        T(later_ids_sort_after_earlier_ones),
        T(ids_of_one_millisecond_differ),
    };
    return T_RUN("ids", cases);
}
