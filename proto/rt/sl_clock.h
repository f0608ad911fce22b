#ifndef SL_CLOCK_H
#define SL_CLOCK_H

/* The clocks every program reads: one place instead of a helper per file.
 * Monotonic for durations, deadlines and rate limits (never jumps); wall
 * (CLOCK_REALTIME) only for timestamps that leave the process: source times
 * of values, file and log times, the beacon's clock offset. */

#include <stdbool.h>
#include <stdint.h>

uint64_t sl_clock_mono_ns(void);
uint64_t sl_clock_mono_us(void);
uint64_t sl_clock_mono_ms(void);
uint64_t sl_clock_wall_us(void);
uint64_t sl_clock_wall_ms(void);

/* The gate of periodic work and rate-limited log lines: true, and *next
 * moved to now + period, when now has reached *next (any one clock, any
 * unit, as long as the three agree); false otherwise. */
bool sl_clock_due(uint64_t *next, uint64_t now, uint64_t period);

#endif
