/* A poll line: the pollers that must take turns on one connection. A
 * Modbus RTU serial port with several units (an RS-485 bus) is one line
 * owning one libmodbus context; each Modbus TCP device is a line of its
 * own. Grouping comes from the configuration (sl_txconf_device.bus: same
 * port by realpath, same line settings, checked at load).
 *
 * Scheduling: sl_bus_next() names the poller due first (earliest due time,
 * ties to the first in file order). Each unit keeps its own poll_ms; a
 * silent unit costs one timeout_ms per attempt and goes back in the queue
 * behind the others. When the line cannot carry every unit's period, polls
 * start late, whole periods are skipped (counted per device as `missed` and
 * summed per line): the line is over-subscribed.
 *
 * One thread drives a line; nothing here locks. Allocates at creation only. */
#ifndef SL_BUS_H
#define SL_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_poller.h"
#include "sl_txconf.h"

struct sl_bus;

/* Line totals since creation. */
struct sl_bus_stats {
    uint64_t polls;           /* poll cycles over all units */
    uint64_t reads;           /* Modbus transactions (ok + failed) */
    uint64_t missed;          /* poll periods skipped over all units (over-subscription) */
    uint64_t busy_ms;         /* time spent inside polls (the line carrying traffic or waiting) */
};

/* Builds the line for devs[0..n) (n >= 1, all with the same bus; devs and
 * their tag maps must outlive it). n > 1 needs RTU devices: they share one
 * context opened with devs[0]'s line settings. clock may be NULL.
 * SL_ERR_NOMEM, SL_ERR_CONFIG, SL_ERR_RANGE (a generator device). */
__attribute__((warn_unused_result))
sl_err sl_bus_create(struct sl_bus **out, const struct sl_txconf_device *const *devs, size_t n,
                     const struct sl_poller_clock *clock);

/* Number of pollers, and poller i (in the order given to create). */
size_t sl_bus_count(const struct sl_bus *b);
struct sl_poller *sl_bus_poller(const struct sl_bus *b, size_t i);

/* Index of the poller due first; *due_ms its monotonic due time (0 = now). */
size_t sl_bus_next(const struct sl_bus *b, uint64_t *due_ms);

/* Polls poller i now (sl_poller_poll) and accounts for it in the line's
 * statistics. Returns what sl_poller_poll returned. */
__attribute__((warn_unused_result))
sl_err sl_bus_poll(struct sl_bus *b, size_t i, struct sl_poller_report *rep);

/* The line's name for logs: the serial port, or the TCP device's address. */
const char *sl_bus_name(const struct sl_bus *b);

void sl_bus_stats(const struct sl_bus *b, struct sl_bus_stats *out);

/* Frees the pollers, then the shared context; NULL is a no-op. */
void sl_bus_destroy(struct sl_bus *b);

#endif
