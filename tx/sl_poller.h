/* One poller per [device]: owns its libmodbus connection (through
 * sl_modbus.h), its poll plan and one value slot per tag, and tells the
 * truth about what it could read: every tag of a failed read becomes
 * BadCommunicationError (0x80050000) stamped with the time of the failure;
 * a good read stamps Good with the time its answer arrived.
 *
 * Blocking: sl_poller_poll() does the I/O itself and can take up to
 * (reads + 1) x timeout_ms, so the daemon runs each poller in its own thread
 * (or accepts that devices delay one another). Memory is allocated once at
 * sl_poller_create(); polling allocates nothing. Not thread-safe: one
 * caller at a time. Clocks are injected for tests. */
#ifndef SL_POLLER_H
#define SL_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_poll_plan.h"
#include "sl_txconf.h"

#define SL_POLLER_BACKOFF_MAX_MS  10000u   /* cap of the reconnect backoff */
#define SL_POLLER_WHY_BYTES       160u

/* Time sources. NULL members (or a NULL clock) mean the system clocks:
 * CLOCK_REALTIME in µs (source timestamps) and CLOCK_MONOTONIC in ms
 * (scheduling and backoff). */
struct sl_poller_clock {
    uint64_t (*realtime_us)(void *ctx);
    uint64_t (*monotonic_ms)(void *ctx);
    void *ctx;
};

/* One tag's latest result. Before the first poll: quality
 * BadWaitingForInitialData (0x80320000), time 0. */
struct sl_tagval {
    uint64_t raw;             /* bit pattern per sl_wire.h; kept from the last good read when Bad */
    uint32_t quality;         /* SL_Q_GOOD or SL_Q_BAD_COMM_ERROR */
    uint64_t time_us;         /* source time: answer received, or the failure */
};

enum sl_poller_state {
    SL_POLLER_UNKNOWN = 0,    /* not polled yet */
    SL_POLLER_UP,             /* connected and at least one read answered */
    SL_POLLER_DOWN,           /* cannot connect, connection lost, or every read failed */
};

/* What one sl_poller_poll() call did. */
struct sl_poller_report {
    bool polled;              /* false: still waiting out the reconnect backoff */
    uint8_t event;            /* 0, SL_EVENT_DEVICE_UP or SL_EVENT_DEVICE_DOWN (a transition) */
    uint64_t time_us;         /* when the poll finished (realtime) */
    uint32_t reads_ok;
    uint32_t reads_failed;
    char why[SL_POLLER_WHY_BYTES];   /* first failure of this poll, "" if none */
};

struct sl_poller;

/* Creates the poller for dev (which must outlive it: tags are read from
 * dev->tagmap) and builds its plan with dev->max_gap. clock may be NULL. Does not connect. SL_ERR_NOMEM,
 * SL_ERR_CONFIG (libmodbus refused the parameters). */
__attribute__((warn_unused_result))
sl_err sl_poller_create(struct sl_poller **out, const struct sl_txconf_device *dev,
                        const struct sl_poller_clock *clock);

/* Runs one poll cycle now: connects if needed (unless the backoff says not
 * yet: then nothing happens, rep->polled is false and SL_ERR_AGAIN is
 * returned), executes every read of the plan, updates the values and the
 * device state, and reports a transition in rep->event. A connect failure
 * starts an exponential backoff (poll_ms, doubling, capped at
 * SL_POLLER_BACKOFF_MAX_MS); success resets it. Returns SL_OK when every
 * read succeeded, SL_ERR_IO when the device is down, SL_ERR_EXCEPTION when
 * some reads failed but the device answered. */
__attribute__((warn_unused_result))
sl_err sl_poller_poll(struct sl_poller *p, struct sl_poller_report *rep);

/* Monotonic ms at which the next sl_poller_poll() is due: the last start
 * plus poll_ms (ticks missed by a slow device are skipped, not queued), or
 * the end of the reconnect backoff if later. 0 before the first poll. */
uint64_t sl_poller_due_ms(const struct sl_poller *p);

/* The values, one per tag in dev->tagmap order (*n of them); owned by p,
 * updated in place by each poll. */
const struct sl_tagval *sl_poller_values(const struct sl_poller *p, size_t *n);

enum sl_poller_state sl_poller_state(const struct sl_poller *p);
const struct sl_poll_plan *sl_poller_plan(const struct sl_poller *p);
const struct sl_txconf_device *sl_poller_device(const struct sl_poller *p);

/* Disconnects and frees; NULL is a no-op. */
void sl_poller_destroy(struct sl_poller *p);

#endif
