/* The backfill carousel: re-sends the TX journal to an RX that may have
 * missed part of it, with no return channel to ask what was missed. HISTORY
 * payloads (proto/wire/sl_hmsg.h) go on SL_CHANNEL_HISTORY, each carrying
 * the journal's status (id, oldest seq, next seq), at most the [backfill]
 * share of the link, and only when the tag channel has nothing due.
 *
 * Schedule: levels j = 0..L-1, each re-sending the last W_j seconds of the
 * journal over and over in passes, W_j = min(window_s, W0 * 2^j), W0 =
 * SL_CAROUSEL_W0_S; a pass starts at "now", reads the journal's segments
 * newest first, and ends when the window is exhausted. Level 0 (the last two
 * minutes: short cuts, RX restarts, bursts lost beyond FEC) gets half the
 * carousel's bytes, the highest level (the whole window) a quarter, the
 * levels between them the last quarter equally, so a gap heals within about
 * two passes of the smallest level whose window reaches back to it, and
 * every record within a bounded time. Levels whose window already reaches past the journal's
 * oldest record are skipped (they would re-send the same records). Bytes are
 * shared by start-time fair queueing over the levels that have work: a
 * level that had nothing to send gets no credit for it. A level starts a new
 * pass at most once a second, and when no level has anything to send a
 * status-only payload goes about once a second, so RX always learns the
 * journal's head. Math and healing times: docs/history.md.
 *
 * Threads: the producer (sl_carousel_start's thread, or the caller of
 * sl_carousel_produce in tests) reads the journal through its own
 * iterators, batches up to batch_records records, sorts them by tag (so
 * HISTORY's per-tag runs are long) and encodes them into a ring of
 * SL_CAROUSEL_RING ready payloads. The consumer (the send loop:
 * sl_carousel_run, or sl_carousel_peek + _pop) takes a ready payload when
 * the share's token bucket allows; it never waits on the producer, which
 * waits for a free slot. The slots cross between the two through two
 * atomic counters (single producer, single consumer).
 *
 * Memory: the ring (SL_CAROUSEL_RING * payload_cap), the batch
 * (batch_records * 48 bytes) and one journal iterator per level (64 KiB
 * each), all at create. Nothing per block. */
#ifndef SL_CAROUSEL_H
#define SL_CAROUSEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_CAROUSEL_W0_S 120u              /* level 0's window, seconds */
#define SL_CAROUSEL_LEVELS_MAX 24u         /* W0 * 2^23 s: beyond any window_s */
#define SL_CAROUSEL_RING 3u                /* ready payloads */
#define SL_CAROUSEL_BATCH_DEFAULT 65536u   /* records sorted by tag at a time */
#define SL_CAROUSEL_IDLE_US 1000000u       /* status-only payload period; min pass interval */

struct sl_journal;
struct sl_sender;

struct sl_carousel_config {
    struct sl_journal *journal;  /* open, borrowed; must outlive the carousel */
    uint64_t window_s;           /* [backfill] window_s (>= 1) */
    double rate_mbps;            /* share * rate_mbps: wire bits incl. FEC and framing */
    unsigned k, m;               /* [fec] k m: the repair count per block */
    unsigned symbol_bytes;       /* S: every datagram is SL_FRAME_OVERHEAD + S */
    size_t payload_cap;          /* sl_sender_payload_cap: largest payload */
    uint64_t base_window_s;      /* 0: SL_CAROUSEL_W0_S (tests use less) */
    size_t batch_records;        /* 0: SL_CAROUSEL_BATCH_DEFAULT */
    int wake_fd;                 /* an eventfd written when a payload becomes ready; -1: none */
};

/* One level's state, for metrics and tests. */
struct sl_carousel_level {
    uint64_t window_s;           /* W_j */
    uint64_t passes;             /* completed */
    uint64_t pass_start_us;      /* wall time the current (or last) pass started at */
    uint64_t last_pass_us;       /* how long the last completed pass took (monotonic) */
    uint64_t records;            /* records encoded by this level */
    uint64_t bytes;              /* payload bytes encoded by this level */
    bool active;                 /* a pass is in progress */
    bool skipped;                /* its window reaches past the journal's oldest record */
};

struct sl_carousel_stats {
    uint64_t blocks;             /* history blocks committed */
    uint64_t records;            /* records in them (values and gaps) */
    uint64_t payload_bytes;      /* their payload bytes */
    uint64_t wire_bytes;         /* what they cost on the link: frames incl. repair, Ethernet */
    uint64_t status_only;        /* status-only payloads produced (idle journal) */
    uint64_t refused;            /* journal records the codec refused (not sent) */
    uint64_t read_errors;        /* iterator failures other than the end */
    uint64_t deferred;           /* turns a ready payload waited for the tag channel */
    unsigned levels;             /* L */
    unsigned behind;             /* level 0's last pass took longer than its window */
    struct sl_carousel_level level[SL_CAROUSEL_LEVELS_MAX];
};

struct sl_carousel;

/* Number of levels for window_s and W0: the smallest L with
 * W0 * 2^(L-1) >= window_s (1 when window_s <= W0). Pure. */
unsigned sl_carousel_level_count(uint64_t window_s, uint64_t base_window_s);

/* Wire bytes one block of len payload bytes costs: its k' data and m'
 * repair frames, each SL_FRAME_OVERHEAD + S plus IP/UDP/Ethernet. Pure. */
uint64_t sl_carousel_wire_bytes(unsigned k, unsigned m, unsigned symbol_bytes, size_t len);

/* Validates cfg and allocates everything (ring, batch, iterators).
 * SL_ERR_RANGE for a bad config, SL_ERR_NOMEM. No thread yet. */
__attribute__((warn_unused_result))
sl_err sl_carousel_create(struct sl_carousel **out, const struct sl_carousel_config *cfg);

/* Starts the producer thread (it reads the clocks itself).
 * SL_ERR_IO (errno) when the thread cannot start. */
__attribute__((warn_unused_result))
sl_err sl_carousel_start(struct sl_carousel *c);

/* Stops and joins the producer thread, frees everything. NULL: no-op. */
void sl_carousel_destroy(struct sl_carousel *c);

/* One producer step at wall time wall_us (only for the levels' windows of
 * source time) and monotonic time mono_us (the schedule: passes, the
 * status period): fills ring slots from one batch of the level whose turn
 * it is (or one status-only payload when idle). Returns false when it did
 * nothing (ring full, or nothing due before monotonic *next_us, which is
 * then set). The thread loops on it; tests call it with simulated clocks.
 * A wall-clock step moves the windows, never the schedule. */
bool sl_carousel_produce(struct sl_carousel *c, uint64_t wall_us, uint64_t mono_us, uint64_t *next_us);

/* Consumer: the next ready payload if the share allows one at monotonic
 * now_us (NULL otherwise), *len its length. Valid until sl_carousel_pop. */
const uint8_t *sl_carousel_peek(struct sl_carousel *c, uint64_t now_us, size_t *len);

/* Consumer: releases the peeked payload; sent: it went to the link (its
 * wire bytes are charged to the share and counted), else it is dropped
 * uncharged (the sender failed). */
void sl_carousel_pop(struct sl_carousel *c, bool sent, uint64_t now_us);

/* The send loop's turn, after the tag channel: when tags_due is false and
 * the share allows, one ready payload becomes one block of
 * SL_CHANNEL_HISTORY. Returns the sender's result (SL_OK when nothing
 * went). */
sl_err sl_carousel_run(struct sl_carousel *c, struct sl_sender *snd, bool tags_due, uint64_t now_us);

/* When the consumer may next send (monotonic us): the share's next slot if
 * a payload is ready, UINT64_MAX when none is (the producer writes wake_fd
 * when one becomes ready). */
uint64_t sl_carousel_deadline(const struct sl_carousel *c);

/* A copy of the counters. Any thread. */
void sl_carousel_stats(struct sl_carousel *c, struct sl_carousel_stats *out);

/* One info line with the totals (at stop and in the -v status). */
void sl_carousel_log_counters(struct sl_carousel *c);

#endif
