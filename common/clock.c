/* clock.c — the monotonic clock every duration and deadline uses. */
#include <time.h>

#include "util.h"

uint64_t sbx__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double sbx__ms_since(uint64_t start_ns)
{
    return (double)(sbx__now_ns() - start_ns) / 1e6;
}
