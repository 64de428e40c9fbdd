#ifndef OMS_TIME_H
#define OMS_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t oms_now_ms(void);   /* wall clock, milliseconds since the epoch */
int64_t oms_mono_ns(void);  /* monotonic clock for durations */
/* 2026-11-27T19:23:44.123Z */
void oms_time_rfc3339_ms(char *out, size_t cap, int64_t ms);

#endif
