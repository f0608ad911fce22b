#include "sl_clock.h"

#include <time.h>

static uint64_t read_ns(clockid_t c)
{
    struct timespec ts;
    /* Cannot fail for these two clocks with a valid pointer (clock_gettime(2)). */
    (void)clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sl_clock_mono_ns(void) { return read_ns(CLOCK_MONOTONIC); }
uint64_t sl_clock_mono_us(void) { return read_ns(CLOCK_MONOTONIC) / 1000u; }
uint64_t sl_clock_mono_ms(void) { return read_ns(CLOCK_MONOTONIC) / 1000000u; }
uint64_t sl_clock_wall_us(void) { return read_ns(CLOCK_REALTIME) / 1000u; }
uint64_t sl_clock_wall_ms(void) { return read_ns(CLOCK_REALTIME) / 1000000u; }

bool sl_clock_due(uint64_t *next, uint64_t now, uint64_t period)
{
    if (now < *next)
        return false;
    *next = now + period;
    return true;
}
