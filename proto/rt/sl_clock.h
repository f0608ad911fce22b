#ifndef SL_CLOCK_H
#define SL_CLOCK_H

/* The clocks every program reads: one place instead of a helper per file.
 * Monotonic for durations, deadlines and rate limits (never jumps); wall
 * (CLOCK_REALTIME) only for timestamps that leave the process: source times
 * of values, file and log times, the beacon's clock offset. */

#include <stdint.h>

uint64_t sl_clock_mono_ns(void);
uint64_t sl_clock_mono_us(void);
uint64_t sl_clock_mono_ms(void);
uint64_t sl_clock_wall_us(void);
uint64_t sl_clock_wall_ms(void);

#endif
