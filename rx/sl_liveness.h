/* Liveness from data: is the mirror really fed by the tag blocks TX sends?
 * (docs/mirror.md §1.2)
 *
 * Beacons alone cannot prove the mirror is fed: a link that delivers
 * beacons but loses (or is made to lose) tag blocks would keep frozen
 * values Good. Each beacon carries highest_block, the tag-channel block
 * sequence TX has fully handed to the link, plus one; a verified tag block
 * b proves as much (b + 1 was handed to the link by the time it arrived).
 * The tracker keeps these announcements as samples (RX time, highest) of
 * the current TX run, a bitmap of the tag block_seqs verified in it, and
 * applies two rules, H(x) being the highest announced by the newest sample
 * at least x old:
 *
 *   lagging:    H(stale_ms) > 1 and highest verified + 1 + SLACK < H(stale_ms)
 *               (a block announced stale_ms ago is missing, and every
 *               block after it but SLACK);
 *   incomplete: among the blocks of [H((1 + WINDOW_PERIODS) * stale_ms),
 *               H(stale_ms)), counted from the run's first beacon or
 *               block, more than max(MISSING_MIN, MISSING_PCT %) were
 *               never verified, not counting the longest run of
 *               consecutive missing blocks (one outage: a burst of loss, or
 *               a lag or cut the other rules judge); it clears when at
 *               most max(MISSING_MIN, RECOVER_PCT %) are.
 *
 * The second rule is what selective loss cannot dodge: delivering one
 * small block now and then satisfies the first rule, not the second.
 * After a silence of stale_ms (a cut link, already shown stale) counting
 * starts afresh, as at RX start, so a cut's losses do not keep the mirror
 * stale once the link is back.
 *
 * Link activity for the mirror (sl_liveness_live_ms) is the later of the
 * last verified beacon and the last verified tag block, so a flood that
 * starves genuine beacons cannot take down a link whose data still flows;
 * the rules above keep working from the blocks' own announcements.
 *
 * Pure: no clock, no I/O, no allocation; times are the caller's monotonic
 * milliseconds. The samples are thinned to one per stale_ms / 32, so memory
 * is fixed (SL_LIVENESS_SAMPLES, SL_LIVENESS_BITS) whatever the beacon and
 * block rates are; thinning makes the rules at most 1/32 of stale_ms more
 * lenient. */
#ifndef SL_LIVENESS_H
#define SL_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

#define SL_LIVENESS_SAMPLES      256u   /* > 32 * (1 + WINDOW_PERIODS) + 2 */
#define SL_LIVENESS_SLACK_BLOCKS 1u
#define SL_LIVENESS_BITS         8192u  /* verified block_seqs remembered (1 KiB) */
#define SL_LIVENESS_WINDOW_PERIODS 4u   /* completeness window, in stale_ms */
#define SL_LIVENESS_MISSING_MIN  2u     /* never stale for this many missing */
#define SL_LIVENESS_MISSING_PCT  10u    /* incomplete above this share missing */
#define SL_LIVENESS_RECOVER_PCT  5u     /* complete again at or below this share */

/* Bits returned by sl_liveness_tick(). */
#define SL_LIVENESS_STALE_START 0x01u   /* data started lagging or went incomplete */
#define SL_LIVENESS_STALE_END   0x02u   /* data caught up and is complete again */

/* Why the data is stale (sl_liveness.reason). */
enum sl_liveness_reason {
    SL_LIVENESS_FRESH = 0,
    SL_LIVENESS_LAGGING,        /* highest verified block lags the announcements */
    SL_LIVENESS_INCOMPLETE,     /* too many announced blocks never verified */
};

struct sl_liveness_sample {
    uint64_t ms;               /* RX monotonic ms of the beacon or block */
    uint64_t highest;          /* highest announced by then (blocks < it were sent) */
};

struct sl_liveness {
    uint32_t stale_ms;
    bool have_session;
    uint64_t session, epoch;   /* the TX run the samples and data belong to */
    struct sl_liveness_sample ring[SL_LIVENESS_SAMPLES];
    unsigned head, n;          /* oldest sample, samples held */
    unsigned nold;             /* samples (from head) at least stale_ms old */
    uint64_t open_ms;          /* first event merged into the newest sample */
    uint64_t announced;        /* highest announced in this run (monotonic) */
    bool have_data;
    uint64_t data_high;        /* highest verified tag block_seq of the run */
    /* Link activity: any verified tag block, whatever the run. */
    bool have_block_ms;
    uint64_t last_block_ms;
    /* Completeness: blocks below `floor` were announced before this RX
     * knew the run (RX or TX restart) and are never counted. */
    bool floor_beacon, floor_block; /* floor raised by the first beacon / block of the
                                       run, or since the link came back from a cut */
    uint64_t floor;
    bool bm_started;
    uint64_t bm_lo;            /* bits[] covers block_seqs [bm_lo, bm_lo + BITS) */
    uint64_t bits[SL_LIVENESS_BITS / 64u];
    uint64_t next_eval_ms;     /* completeness is judged once per stale_ms / 32 */
    bool incomplete;
    uint64_t win_lo, win_hi;   /* last window judged: block_seqs [lo, hi) */
    uint64_t win_missing;      /* of them never verified */
    uint64_t win_run;          /* the longest run of those, forgiven as one outage */
    uint64_t win_since_ms;     /* RX time of the sample that announced win_hi */
    /* Outcome of the last tick. */
    bool stale;
    enum sl_liveness_reason reason;
    uint64_t lag_since_ms;     /* while stale: RX time of the sample the rule used */
    uint64_t lag_announced;    /* while lagging: H of that sample */
    uint64_t episodes;         /* stale episodes since init (either rule) */
    uint64_t incomplete_episodes; /* episodes that began by the completeness rule */
};

/* Starts empty: nothing announced, so live. stale_ms 0 means 1. */
void sl_liveness_init(struct sl_liveness *l, uint32_t stale_ms);

/* Records a verified beacon of (session, epoch) received at now_ms. A
 * session or epoch other than the current one starts over (samples and
 * data belong to one TX run). O(1), except O(BITS / 64) on a new run. */
void sl_liveness_beacon(struct sl_liveness *l, uint64_t now_ms, uint64_t session, uint64_t epoch,
                        uint64_t highest_block);

/* Records a verified block of the tag channel received at now_ms: link
 * activity, a verified bit, and an announcement of block_seq + 1. A block
 * of another session or epoch starts over too: a restarted TX's blocks may
 * arrive before its first beacon, and must not be judged against the old
 * run's samples. O(1) amortised (bits leaving the bitmap are cleared). */
void sl_liveness_block(struct sl_liveness *l, uint64_t now_ms, uint64_t session, uint64_t epoch,
                       uint64_t block_seq);

/* Applies the rules at now_ms, drops samples no longer needed and returns
 * SL_LIVENESS_* bits for a transition (0 when unchanged). O(1) amortised;
 * the completeness count (O(BITS / 64)) runs once per stale_ms / 32. */
unsigned sl_liveness_tick(struct sl_liveness *l, uint64_t now_ms);

/* True while data lags or is incomplete (after the last tick). */
bool sl_liveness_stale(const struct sl_liveness *l);

/* The "last known live" time to age the mirror with (sl_mirror_tick): the
 * later of the last beacon (last_beacon_ms, the caller's) and the last
 * verified tag block; while data is stale, the time the rule's sample was
 * taken if that is earlier. A mirror ticked with it goes stale exactly as
 * for a cut link, and a cut link (no beacon and no verified block for
 * stale_ms) is still stale within stale_ms. */
uint64_t sl_liveness_live_ms(const struct sl_liveness *l, uint64_t last_beacon_ms);

/* ---- One tracker per trusted key ---------------------------------------------
 *
 * Several trusted keys may be live at once (a key rotation's overlap, a
 * standby TX). Their runs are independent: one key's beacons and blocks
 * must not restart another's tracker, or neither rule ever fires (each
 * event of one run would wipe the other's history). The set holds one
 * tracker per key slot (the key's index in the receiver's sl_key_set),
 * fixed memory, no allocation.
 *
 * The data is stale while any active key's tracker is stale. A key is
 * active from its first verified beacon or block until it has sent neither
 * for SL_LIVENESS_RETIRE_PERIODS * stale_ms: then its tracker is dropped
 * (a finished rotation, a standby switched off) and no longer counts. A
 * key whose frames are all lost is dropped the same way; while the other
 * keys' data flows, the link is live for the mirror (the mirror ages by
 * link, not by key). */
#define SL_LIVENESS_KEYS           16u  /* == SL_KEY_SET_MAX (checked by the daemon) */
#define SL_LIVENESS_RETIRE_PERIODS 5u   /* silent this many stale_ms: tracker dropped */

struct sl_liveness_set {
    uint32_t stale_ms;
    struct sl_liveness key[SL_LIVENESS_KEYS];
    bool used[SL_LIVENESS_KEYS];
    uint64_t last_ms[SL_LIVENESS_KEYS];   /* last beacon or block of the key */
    bool have_block_ms;
    uint64_t last_block_ms;               /* any key's last verified tag block */
    /* Outcome of the last tick. */
    bool stale;
    unsigned culprit;          /* while stale: slot of the (first) stale tracker */
    uint64_t episodes;         /* stale episodes of the set (any key) */
    uint64_t incomplete_episodes; /* of them, begun by the completeness rule */
    uint64_t win_missing;      /* sum over active keys of their win_missing */
    uint64_t retired;          /* trackers dropped after RETIRE_PERIODS of silence */
};

/* Starts empty (no key active, so live). stale_ms 0 means 1. */
void sl_liveness_set_init(struct sl_liveness_set *s, uint32_t stale_ms);

/* As sl_liveness_beacon / sl_liveness_block, for the key in slot
 * (< SL_LIVENESS_KEYS; others are ignored). */
void sl_liveness_set_beacon(struct sl_liveness_set *s, unsigned slot, uint64_t now_ms, uint64_t session,
                            uint64_t epoch, uint64_t highest_block);
void sl_liveness_set_block(struct sl_liveness_set *s, unsigned slot, uint64_t now_ms, uint64_t session,
                           uint64_t epoch, uint64_t block_seq);

/* Drops the trackers of keys silent for RETIRE_PERIODS * stale_ms, ticks
 * the others and returns SL_LIVENESS_* bits for a transition of the set
 * (stale = any active key stale). */
unsigned sl_liveness_set_tick(struct sl_liveness_set *s, uint64_t now_ms);

bool sl_liveness_set_stale(const struct sl_liveness_set *s);

/* The tracker that made the set stale (s->culprit), or NULL when fresh. */
const struct sl_liveness *sl_liveness_set_culprit(const struct sl_liveness_set *s);

/* As sl_liveness_live_ms over the set: the later of last_beacon_ms and any
 * key's last verified block; while stale, the earliest rule sample of the
 * stale trackers if that is earlier. */
uint64_t sl_liveness_set_live_ms(const struct sl_liveness_set *s, uint64_t last_beacon_ms);

#endif
