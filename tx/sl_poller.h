/* One poller per [device]: owns its libmodbus connection (through
 * sl_modbus.h), its poll plan and one value slot per tag, and tells the
 * truth about what it could read: every tag of a failed read becomes
 * BadCommunicationError (0x80050000) stamped with the time of the failure;
 * a good read stamps Good with the time its answer arrived.
 *
 * Blocking: sl_poller_poll() does the I/O itself and can take up to
 * (reads + 1) x timeout_ms, so the daemon runs each TCP poller in its own
 * thread and the pollers of one serial bus one after another in the bus's
 * thread (sl_bus.h). Memory is allocated once at
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

/* Per-device counters since creation (TX logs them and sums the failed
 * reads into beacons' poll_errors). */
struct sl_poller_counters {
    uint64_t polls;           /* poll cycles run (connect attempts included) */
    uint64_t reads_ok;
    uint64_t reads_failed;    /* every failed read, whatever the reason */
    uint64_t timeouts;        /* no answer within timeout_ms (a silent unit) */
    uint64_t crc_errors;      /* RTU answers with a bad CRC16 */
    uint64_t exceptions;      /* Modbus exception answers */
    uint64_t malformed;       /* answers of the wrong unit, function, length or count */
    uint64_t port_errors;     /* connect/open failures and broken connections */
    uint64_t missed;          /* poll periods skipped because the poll came a period or more late */
};

struct sl_mb;
struct sl_poller;

/* Creates the poller for dev (which must outlive it: tags are read from
 * dev->tagmap) and builds its plan with dev->max_gap. clock may be NULL. Does not connect. SL_ERR_NOMEM,
 * SL_ERR_CONFIG (libmodbus refused the parameters). */
__attribute__((warn_unused_result))
sl_err sl_poller_create(struct sl_poller **out, const struct sl_txconf_device *dev,
                        const struct sl_poller_clock *clock);

/* As sl_poller_create, but the poller uses line, an RTU context shared
 * with the other devices of dev's serial bus (owned by the caller, which
 * frees it after every poller on it; see sl_bus.h). Each poll selects dev's
 * unit and timeout on line first. */
__attribute__((warn_unused_result))
sl_err sl_poller_create_on(struct sl_poller **out, const struct sl_txconf_device *dev,
                           const struct sl_poller_clock *clock, struct sl_mb *line);

/* Runs one poll cycle now: connects if needed (unless the backoff says not
 * yet: then nothing happens, rep->polled is false and SL_ERR_AGAIN is
 * returned), executes every read of the plan, updates the values and the
 * device state, and reports a transition in rep->event. A connect failure
 * starts an exponential backoff (poll_ms, doubling, capped at
 * SL_POLLER_BACKOFF_MAX_MS); success resets it. A read that times out
 * ends the cycle (its tags and those of the reads after it go Bad: a silent
 * unit costs one timeout_ms per cycle and is not retried in it); an
 * exception, a bad CRC or a malformed answer costs only that read's tags
 * while the connection stays usable. Returns SL_OK when every read
 * succeeded, SL_ERR_IO when the device is down, SL_ERR_EXCEPTION when some
 * reads failed but the device answered. */
__attribute__((warn_unused_result))
sl_err sl_poller_poll(struct sl_poller *p, struct sl_poller_report *rep);

/* Monotonic ms at which the next sl_poller_poll() is due: the last start
 * plus poll_ms (ticks missed by a slow device are skipped, not queued), or
 * the end of the reconnect backoff if later. 0 before the first poll. */
uint64_t sl_poller_due_ms(const struct sl_poller *p);

/* The values, one per tag in dev->tagmap order (*n of them); owned by p,
 * updated in place by each poll. */
const struct sl_tagval *sl_poller_values(const struct sl_poller *p, size_t *n);

/* Moves the poller's values to vals (as many entries as it has tags, not
 * the array it uses now): copies them there, and from now on every poll
 * writes there and only there. The array it used before is left alone, so
 * a caller can hand a poll's array to another thread and give the poller
 * another (sl_source.c: three arrays, one copy per poll, no lock). vals
 * must outlive the poller or the next move. O(tags). */
void sl_poller_move_values(struct sl_poller *p, struct sl_tagval *vals);

/* Copies the counters into *out. */
void sl_poller_counters(const struct sl_poller *p, struct sl_poller_counters *out);

enum sl_poller_state sl_poller_state(const struct sl_poller *p);
const struct sl_txconf_device *sl_poller_device(const struct sl_poller *p);

/* Disconnects (an owned connection) and frees; NULL is a no-op. */
void sl_poller_destroy(struct sl_poller *p);

#endif
