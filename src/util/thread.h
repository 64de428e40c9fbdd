#ifndef OMS_THREAD_H
#define OMS_THREAD_H

#include <stdint.h>

/* Names the calling thread (at most 15 bytes show): `top -H`, `perf` and
 * /proc/PID/task/TID/comm then tell the server's threads apart by role
 * (docs/operations.md "Threads"). */
void oms_thread_name(const char *name);

/* CPU time the calling thread has used, in nanoseconds (user + system). */
int64_t oms_thread_cpu_ns(void);

#endif
