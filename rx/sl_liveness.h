/* Liveness from data: do verified tag blocks keep up with what beacons
 * announce? (issue 13, docs/mirror.md §1.2)
 *
 * Beacons alone cannot prove the mirror is fed: a link that delivers
 * beacons but loses (or is made to lose) every tag block would keep frozen
 * values Good. Each beacon carries highest_block, the tag-channel block
 * sequence TX has fully handed to the link, plus one. This tracker keeps
 * the beacon samples (RX time, highest_block) of the current TX session and
 * the highest tag block_seq verified in it, and applies one rule:
 *
 *   at time t, take H from the newest sample at least stale_ms old; data is
 *   live when H == 0 (a TX with no tag blocks never lags), or when the
 *   blocks verified reach H - SL_LIVENESS_SLACK_BLOCKS, i.e.
 *   highest verified block_seq + 1 + SLACK >= H.
 *
 * So data is stale only when a block announced at least stale_ms ago is
 * still missing together with every block after it but SLACK: one lost
 * block between keyframes never trips it; a link that delivers beacons and
 * nothing else trips it stale_ms after the second unanswered block.
 *
 * Pure: no clock, no I/O, no allocation; times are the caller's monotonic
 * milliseconds. The samples are thinned to one per stale_ms / 32, so memory
 * is fixed (SL_LIVENESS_SAMPLES) whatever beacon_ms is; thinning makes the
 * rule at most 1/32 of stale_ms more lenient. */
#ifndef SL_LIVENESS_H
#define SL_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

#define SL_LIVENESS_SAMPLES     64u
#define SL_LIVENESS_SLACK_BLOCKS 1u

/* Bits returned by sl_liveness_tick(). */
#define SL_LIVENESS_STALE_START 0x01u   /* data started lagging beacons by stale_ms */
#define SL_LIVENESS_STALE_END   0x02u   /* data caught up again */

struct sl_liveness_sample {
    uint64_t ms;               /* RX monotonic ms of the beacon */
    uint64_t highest;          /* its highest_block */
};

struct sl_liveness {
    uint32_t stale_ms;
    bool have_session;
    uint64_t session, epoch;   /* the TX run the samples and data belong to */
    struct sl_liveness_sample ring[SL_LIVENESS_SAMPLES];
    unsigned head, n;          /* oldest sample, samples held */
    bool have_data;
    uint64_t data_high;        /* highest verified tag block_seq of the session */
    /* Outcome of the last tick. */
    bool stale;
    uint64_t lag_since_ms;     /* while stale: RX time of the oldest sample held
                                  that announces more than was verified */
    uint64_t lag_announced;    /* while stale: H of the sample the rule used */
    uint64_t episodes;         /* stale episodes since init */
};

/* Starts empty: nothing announced, so live. stale_ms 0 means 1. */
void sl_liveness_init(struct sl_liveness *l, uint32_t stale_ms);

/* Records a verified beacon of (session, epoch) received at now_ms. A
 * session or epoch other than the current one starts over (samples and
 * data belong to one TX run). O(1). */
void sl_liveness_beacon(struct sl_liveness *l, uint64_t now_ms, uint64_t session, uint64_t epoch,
                        uint64_t highest_block);

/* Records a verified block of the tag channel. A block of another session
 * or epoch starts over too: a restarted TX's blocks may arrive before its
 * first beacon, and must not be judged against the old run's samples.
 * O(1). */
void sl_liveness_block(struct sl_liveness *l, uint64_t session, uint64_t epoch, uint64_t block_seq);

/* Applies the rule at now_ms, drops samples no longer needed and returns
 * SL_LIVENESS_* bits for a transition (0 when unchanged). O(samples). */
unsigned sl_liveness_tick(struct sl_liveness *l, uint64_t now_ms);

/* True while data lags (after the last tick). */
bool sl_liveness_stale(const struct sl_liveness *l);

/* The "last known live" time to age the mirror with (sl_mirror_tick): the
 * last beacon's time, or, while data lags, the time the lag began if that
 * is earlier. A mirror ticked with it goes stale exactly as for a cut
 * link. */
uint64_t sl_liveness_live_ms(const struct sl_liveness *l, uint64_t last_beacon_ms);

#endif
