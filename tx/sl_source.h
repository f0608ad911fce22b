/* Device sources: where sluice-tx's values come from, behind one interface.
 *
 * Two kinds implement it:
 *   - modbus: the [device] sections polled over Modbus TCP/RTU. One thread
 *     per poll line (sl_bus.h: a serial port with all its units, or one TCP
 *     device) owns its sl_bus and libmodbus context; each poll's values
 *     reach the main thread through a per-device triple buffer published
 *     by one atomic exchange (see sl_source.c): no lock held per tag.
 *   - generator: `protocol = generator` devices (sl_generator.h), run on the
 *     main thread inside collect; no thread, no I/O.
 * sl_sources_open() builds one of each kind that has devices; the daemon
 * only ever calls the sl_sources_* functions, which visit every source.
 *
 * collect() feeds what is due into the snapshot (values, and device up/down
 * as logged EVENTs) and returns when it next wants a turn; it never blocks on
 * a PLC. Line and unit statistics are read through line()/unit() (the
 * Modbus source has lines, the generator none) by the status log and the
 * metrics file. */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_bus.h"
#include "sl_err.h"
#include "sl_poller.h"
#include "sl_snapshot.h"
#include "sl_txconf.h"

#define SL_SOURCE_STOP_JOIN_MS 3000u  /* stop: longest wait for a poller inside libmodbus */
#define SL_SOURCE_GEN_PER_TURN 262144u /* generated updates per device per collect */
#define SL_SOURCE_LINE_LOG_EVERY_US 60000000ull   /* over-subscription line at most once a minute */

/* One poll line's statistics, copied out under its lock. */
struct sl_source_line {
    const char *name;          /* serial port or TCP address (sl_bus_name) */
    size_t units;
    struct sl_bus_stats st;
    uint64_t start_us;         /* monotonic µs the line's thread was started */
};

/* One unit (device) of a line. */
struct sl_source_unit {
    const struct sl_txconf_device *cfg;
    struct sl_poller_counters cnt;
    uint64_t polls_failed;     /* polls whose sl_err was not SL_OK (some or every read failed) */
    enum sl_poller_state state;   /* after the last poll handed over (UNKNOWN before it) */
};

struct sl_source;

struct sl_source_ops {
    const char *kind;                                  /* "modbus", "generator" */
    size_t (*nlines)(const struct sl_source *s);
    sl_err (*start)(struct sl_source *s, uint64_t now_us);
    uint64_t (*collect)(struct sl_source *s, struct sl_snapshot *snap, uint64_t now_us);
    uint64_t (*poll_errors)(const struct sl_source *s);
    void (*check)(struct sl_source *s, uint64_t now_us);               /* may be NULL */
    void (*log_counters)(struct sl_source *s, const struct sl_snapshot *snap, uint64_t now_us,
                         bool final);
    bool (*line)(const struct sl_source *s, size_t i, struct sl_source_line *out);
    bool (*unit)(const struct sl_source *s, size_t line, size_t k, struct sl_source_unit *out);
    bool (*stop)(struct sl_source *s);
    void (*destroy)(struct sl_source *s);
};

/* Every implementation starts with this. */
struct sl_source {
    const struct sl_source_ops *ops;
};

/* The two implementations. Each takes the devices of its kind in cfg (which
 * must outlive it); *out is NULL when cfg has none. wake_fd (an eventfd of
 * the main loop) is written after each poll handed over. SL_ERR_NOMEM,
 * SL_ERR_CONFIG (a poller could not be built: logged). */
__attribute__((warn_unused_result))
sl_err sl_source_modbus_open(struct sl_source **out, const struct sl_txconf *cfg, int wake_fd);
__attribute__((warn_unused_result))
sl_err sl_source_generator_open(struct sl_source **out, const struct sl_txconf *cfg);

/* All the sources of one configuration. */
#define SL_SOURCES_MAX 2u
struct sl_sources {
    struct sl_source *s[SL_SOURCES_MAX];
    size_t n;
};

__attribute__((warn_unused_result))
sl_err sl_sources_open(struct sl_sources *set, const struct sl_txconf *cfg, int wake_fd);
/* Starts threads (the Modbus lines) and schedules (generators) at now_us. */
__attribute__((warn_unused_result))
sl_err sl_sources_start(struct sl_sources *set, uint64_t now_us);
/* Feeds what is due into snap; returns the earliest monotonic µs at which a
 * source wants collect again (UINT64_MAX: only when woken by wake_fd). */
uint64_t sl_sources_collect(struct sl_sources *set, struct sl_snapshot *snap, uint64_t now_us);
/* Failed reads since start, over every device (beacons' poll_errors). */
uint64_t sl_sources_poll_errors(const struct sl_sources *set);
/* Once per beacon: logs what needs saying (over-subscribed lines). */
void sl_sources_check(struct sl_sources *set, uint64_t now_us);
/* Per-line and per-device counters (verbose status; final at stop). */
void sl_sources_log_counters(struct sl_sources *set, const struct sl_snapshot *snap,
                             uint64_t now_us, bool final);
/* Line i over every source (lines numbered across sources), unit k of it. */
bool sl_sources_line(const struct sl_sources *set, size_t i, struct sl_source_line *out);
bool sl_sources_unit(const struct sl_sources *set, size_t i, size_t k, struct sl_source_unit *out);
/* Asks every thread to stop and joins those that finish within
 * SL_SOURCE_STOP_JOIN_MS. false when one is still inside a Modbus request:
 * its memory must then stay allocated until exit (do not call free). */
bool sl_sources_stop(struct sl_sources *set);
void sl_sources_free(struct sl_sources *set);

#endif
