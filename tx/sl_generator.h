/* The synthetic tag source: a stand-in for a device's poller that changes
 * N tags at R updates per second, for benchmarks (`[device NAME]
 * protocol = generator`, docs/tx.md). Its values go through the same
 * snapshot engine, deltas, keyframes and wire path as polled ones.
 *
 * Pure: no I/O, no clock reads; the daemon passes the time. Updates are
 * spread evenly in time: by now_us, R * (now_us - start) / 10^6 updates are
 * due. Update number u changes tag first_tag_id + (u mod N) (round robin),
 * so every tag changes every N / R seconds. Each value is int64 and equals
 * its own source time (CLOCK_REALTIME µs): a reader of the mirror (Modbus,
 * HTTP, SQLite) can tell how old a value is from the value alone, and every
 * mirrored tag must hold raw == source_time_us. */
#ifndef SL_GENERATOR_H
#define SL_GENERATOR_H

#include <stdint.h>

#include "sl_err.h"
#include "sl_snapshot.h"
#include "sl_tagmap.h"

#define SL_GENERATOR_MAX_TAGS   1000000u     /* tags = 1..this */
#define SL_GENERATOR_MAX_RATE   100000000u   /* rate = 0..this updates/s */
#define SL_GENERATOR_DEFAULT_RATE 1000u
#define SL_GENERATOR_TICK_US    1000u        /* the daemon wakes at most this often for it */
#define SL_GENERATOR_MAX_LAG_US 1000000u     /* further behind than this: skip ahead, counted */

struct sl_generator {
    uint32_t first_tag_id;      /* tag id of the device's first tag */
    uint32_t ntags;             /* >= 1 */
    uint32_t rate;              /* updates per second; 0 = never */
    uint32_t next;              /* index (0..ntags) of the tag the next update changes */
    uint64_t start_us;          /* monotonic µs of update 0's schedule */
    uint64_t produced;          /* updates handed out by sl_generator_next */
    uint64_t skipped;           /* updates dropped from the schedule because the caller fell behind */
};

/* Synthesises the tag map of a generator device named device: ntags
 * (1..SL_GENERATOR_MAX_TAGS) tags "t0" .. "t<ntags-1>", path
 * "bench/generator/<device>/tags", int64 holding registers at address
 * (4 * i) mod 65536 (the mirror serves them; beyond 16384 tags addresses
 * repeat and Modbus shows one of the tags sharing them), deadband 0.
 * SL_ERR_RANGE for a bad count or a name that does not fit a path,
 * SL_ERR_NOMEM. Free with sl_tagmap_free. O(ntags). */
__attribute__((warn_unused_result))
sl_err sl_generator_tagmap(struct sl_tagmap *out, const char *device, uint32_t ntags);

/* Starts the schedule at now_us (monotonic µs). ntags >= 1. */
void sl_generator_init(struct sl_generator *g, uint32_t first_tag_id, uint32_t ntags,
                       uint32_t rate, uint64_t now_us);

/* Updates due by now_us and not yet handed out. When the caller is more
 * than SL_GENERATOR_MAX_LAG_US behind, the oldest are dropped from the
 * schedule (added to skipped, tags advanced as if produced) so a stalled
 * daemon never bursts. O(1). */
uint64_t sl_generator_due(struct sl_generator *g, uint64_t now_us);

/* Tag id changed by the next update; counts it as produced. O(1). */
static inline uint32_t sl_generator_next(struct sl_generator *g)
{
    uint32_t id = g->first_tag_id + g->next;
    if (++g->next == g->ntags)
        g->next = 0;
    g->produced++;
    return id;
}

/* Hands the next n updates to snap, all Good with value = source time =
 * wall (the batch's one clock reading), as n sl_generator_next +
 * sl_snapshot_update calls would, but in runs of consecutive tags
 * (sl_snapshot_update_range: the journal's lock once per run). A batch of
 * more than ntags updates writes every tag the same wall value at least
 * twice; only the last ntags are applied (the earlier ones would change
 * nothing the later ones do not overwrite) and all n count as produced.
 * Returns the updates the snapshot refused (0 unless the tags are not the
 * snapshot's). O(min(n, ntags)). */
uint64_t sl_generator_apply(struct sl_generator *g, struct sl_snapshot *snap, uint64_t n, uint64_t wall,
                            uint64_t now_us);

/* When the daemon should next wake for this generator: when one more update
 * is due, but no sooner than SL_GENERATOR_TICK_US after now_us (updates are
 * taken in batches). UINT64_MAX when rate is 0. O(1). */
uint64_t sl_generator_wake_us(const struct sl_generator *g, uint64_t now_us);

#endif
