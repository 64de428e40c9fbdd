#include "util/time.h"

#include <stdio.h>
#include <time.h>

int64_t oms_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t oms_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Civil date of a day count since 1970-01-01, for counts >= 0: the
 * proleptic Gregorian calendar in integer arithmetic (eras of 400 years,
 * years starting in March so the leap day comes last). */
static void civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468; /* days since 0000-03-01 */
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11], March = 0 */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

static char *digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

#define RFC3339_MS_LEN 24              /* 2026-11-27T19:23:44.123Z */
#define YEAR_10000_MS 253402300800000LL /* past it the year has five digits */

/* Formatted without gmtime_r and snprintf: every GET of a resource prints
 * one, and gmtime_r takes the C library's time zone lock. Times before
 * 1970 or after 9999 (never stored) take the library's path. */
void oms_time_rfc3339_ms(char *out, size_t cap, int64_t ms)
{
    if (ms < 0 || ms >= YEAR_10000_MS || cap <= RFC3339_MS_LEN) {
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        return;
    }
    int64_t secs = ms / 1000, of_day = secs % 86400;
    int year, month, day;
    civil_from_days(secs / 86400, &year, &month, &day);
    char *p = digits(out, year, 4);
    *p++ = '-';
    p = digits(p, month, 2);
    *p++ = '-';
    p = digits(p, day, 2);
    *p++ = 'T';
    p = digits(p, (int)(of_day / 3600), 2);
    *p++ = ':';
    p = digits(p, (int)(of_day / 60 % 60), 2);
    *p++ = ':';
    p = digits(p, (int)(of_day % 60), 2);
    *p++ = '.';
    p = digits(p, (int)(ms % 1000), 3);
    *p++ = 'Z';
    *p = '\0';
}
