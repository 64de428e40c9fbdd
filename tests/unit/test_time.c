/* util/time.c: the RFC 3339 formatter against the C library's calendar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t.h"
#include "util/time.h"

/* What the formatter printed before it had its own calendar. */
static void reference(char *out, size_t cap, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int same_as_reference(int64_t ms)
{
    char a[80], b[80];
    memset(a, 'x', sizeof a);
    oms_time_rfc3339_ms(a, sizeof a, ms);
    reference(b, sizeof b, ms);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "  %lld: %s, expected %s\n", (long long)ms, a, b);
        return 0;
    }
    return 1;
}

static void known_instants(void)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, 0);
    CHECK_EQ_STR(t, "1970-01-01T00:00:00.000Z");
    oms_time_rfc3339_ms(t, sizeof t, 1769817600123LL);
    CHECK_EQ_STR(t, "2026-01-31T00:00:00.123Z");
    oms_time_rfc3339_ms(t, sizeof t, 951782400000LL); /* a leap day of a year divisible by 400 */
    CHECK_EQ_STR(t, "2000-02-29T00:00:00.000Z");
    oms_time_rfc3339_ms(t, sizeof t, 4107542399999LL); /* 2100 is not a leap year */
    CHECK_EQ_STR(t, "2100-02-28T23:59:59.999Z");
    oms_time_rfc3339_ms(t, sizeof t, 4107542400000LL);
    CHECK_EQ_STR(t, "2100-03-01T00:00:00.000Z");
    oms_time_rfc3339_ms(t, sizeof t, 253402300799999LL);
    CHECK_EQ_STR(t, "9999-12-31T23:59:59.999Z");
}

/* Every day boundary of 1970-2400 and random instants up to 9999 print
 * as the C library's calendar does. */
static void agrees_with_the_library(void)
{
    int bad = 0;
    for (int64_t day = 0; day < 157000 && bad < 5; day++) {
        bad += !same_as_reference(day * 86400000LL);
        bad += !same_as_reference(day * 86400000LL - 1 + (day == 0));
    }
    srand(21);
    for (int i = 0; i < 200000 && bad < 5; i++) {
        int64_t ms = ((int64_t)rand() << 31 | rand()) % 253402300800000LL;
        bad += !same_as_reference(ms);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Outside the fast path's range, and with a short buffer, the library's
 * path answers exactly as before. */
static void outside_the_fast_path(void)
{
    CHECK(same_as_reference(-1));
    CHECK(same_as_reference(-86400001LL));
    CHECK(same_as_reference(253402300800000LL));
    char t[10];
    oms_time_rfc3339_ms(t, sizeof t, 1769817600123LL);
    CHECK_EQ_STR(t, "2026-01-3");
}

int main(void)
{
    static const t_case cases[] = {
        T(known_instants),
        T(agrees_with_the_library),
        T(outside_the_fast_path),
    };
    return T_RUN("time", cases);
}
