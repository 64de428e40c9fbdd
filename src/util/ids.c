#include "util/ids.h"

#include <stdint.h>
#include <sys/random.h>

#include "util/encoding.h"
#include "util/time.h"

bool oms_time_ordered_id(char out[33])
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)oms_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    if (getrandom(b + 6, sizeof b - 6, 0) != (ssize_t)(sizeof b - 6))
        return false;
    oms_hex(out, b, sizeof b);
    return true;
}
