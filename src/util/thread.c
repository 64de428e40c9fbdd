#include "util/thread.h"

#include <pthread.h>
#include <time.h>

void oms_thread_name(const char *name)
{
    char n[16];
    int i = 0;
    for (; name[i] && i < 15; i++)
        n[i] = name[i];
    n[i] = '\0';
    pthread_setname_np(pthread_self(), n); /* only cosmetic: a failure changes nothing */
}

int64_t oms_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
