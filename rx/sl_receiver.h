/* The RX wire path: link -> DATA frames -> FEC decoder -> block signature
 * check -> replay window -> payload to the caller; BEACONs verified and
 * handed over separately. Every datagram that does not make it is counted
 * under the stage and sl_err that stopped it.
 *
 * Unsigned frames must never make RX refuse a genuine block, nor buy
 * unbounded signature checks:
 *  - frames of an untrusted key id are dropped at once (frame/unknown_key);
 *  - the last verified beacon of each trusted key (session, epoch, S, k, m)
 *    announces what its frames look like. A frame that disagrees (older
 *    epoch; same epoch with another session, another S, k' > k or m' not
 *    the repair count of k') is refused before it takes a decoder entry
 *    (announce/epoch, announce/mismatch). A frame that matches and whose
 *    block_seq lies in the window (frontier - SL_REPLAY_WINDOW, frontier +
 *    SL_RX_AHEAD_BLOCKS] goes to the decoder's announced part, ranked by
 *    its distance from the frontier (the highest block_seq verified in its
 *    (key, channel, epoch), or for the tag channel the beacon's
 *    highest_block if ahead): a full part evicts the farthest block, or
 *    refuses the new one if it is the farthest. At most one announced
 *    identity per block id (a second goes unannounced). Frames outside the
 *    window (counted outside_window), of a newer epoch (TX restarted, its
 *    first beacon not here yet) or of a key with no verified beacon yet go
 *    to the small unannounced part. The parts never evict each other;
 *  - a decoded block is remembered as done only once it verified and passed
 *    the replay window (sl_fec_decoder_done);
 *  - beacons: a beacon_seq beyond what TX can have reached since the key's
 *    last verified beacon (learned beacon spacing, see beacon_plausible in
 *    the .c) is refused unverified (beacon/range);
 *  - failed signature checks are rationed by token buckets refilled from
 *    now_us: per trusted key one for blocks of its announced session and
 *    one for its beacons, and one shared by all unannounced blocks. The
 *    per-key rates are totals split over the trusted keys. A failure costs
 *    one token plus one per SL_RX_VERIFY_BYTES_PER_TOKEN signed bytes.
 *    Cheap checks (the whole block or beacon layout, trusted key, canonical
 *    s, the replay window) come first and cost no token; a verification
 *    that succeeds costs none. An empty bucket drops its candidates
 *    unverified (block/budget, beacon/budget) until it refills. Under a
 *    forged-signature flood that copies a pool's genuine session and key,
 *    that pool's genuine blocks are verified only at about budget/flood
 *    rate (telling them apart cheaply needs a per-frame authenticator, a
 *    protocol change); other keys and pools are unaffected, and the mirror
 *    goes stale rather than frozen-Good.
 *
 * One receiver per RX process; single-threaded. All memory (datagram slots,
 * the decoder's bounded table) is allocated by sl_receiver_create; nothing
 * per datagram. The replay table is the caller's (it persists it). */
#ifndef SL_RECEIVER_H
#define SL_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#include "sl_block.h"
#include "sl_datagram.h"
#include "sl_err.h"
#include "sl_fec.h"
#include "sl_key.h"
#include "sl_replay.h"

struct sl_hw;

/* A verified, fresh block's payload (borrowed for the call). */
typedef void (*sl_receiver_payload_fn)(void *ctx, const struct sl_block_hdr *h,
                                       const uint8_t key_id[SL_KEY_ID_BYTES],
                                       const uint8_t *payload, size_t len, uint64_t now_us);
/* A verified, fresh beacon. */
typedef void (*sl_receiver_beacon_fn)(void *ctx, const struct sl_beacon *b, uint64_t now_us);

struct sl_receiver_config {
    struct sl_hw *hw;                   /* borrowed, opened for RX */
    const struct sl_key_set *trusted;   /* borrowed */
    struct sl_replay *replay;           /* borrowed; updated on every accepted block */
    struct sl_fec_decoder_config fec;
    size_t batch;                       /* datagrams per receive call (1..1024) */
    size_t datagram_max;                /* largest datagram accepted, bytes */
    /* Failed signature checks allowed per second (bucket depth: one
     * second's worth); 0 = the default. A failed check of a small block or
     * a beacon costs ~55 µs here (Ed25519 verify, libsodium), so the
     * defaults (1000 + 250 + 100 = 1350/s) spend at most ~7.5 % of a core on
     * failures, whatever the number of trusted keys. */
    unsigned fail_per_s;                /* announced blocks, split over the keys (1000) */
    unsigned fail_unannounced_per_s;    /* shared by unannounced blocks (250) */
    unsigned fail_beacon_per_s;         /* beacons, split over the keys (100) */
    sl_receiver_payload_fn on_payload;
    sl_receiver_beacon_fn on_beacon;
    void *ctx;
};

/* Drop stages. Each has one counter per sl_err reason. */
enum sl_rx_stage {
    SL_RX_DATAGRAM = 0,     /* not even a Sluice datagram (magic, version, type) */
    SL_RX_FRAME,            /* DATA frame header, length or CRC */
    SL_RX_BEACON,           /* beacon length, CRC, key, signature, replay */
    SL_RX_FEC,              /* decoder: duplicate/late, mismatch, range */
    SL_RX_BLOCK,            /* decoded block: header, key, signature */
    SL_RX_REPLAY,           /* old epoch or sequence (before or after decoding) */
    SL_RX_ANNOUNCE,         /* frame disagrees with its key's last verified beacon */
    SL_RX_STAGES
};

struct sl_receiver_stats {
    uint64_t datagrams;         /* handed over by the link */
    uint64_t frames;            /* valid DATA frames */
    uint64_t beacons;           /* accepted beacons */
    uint64_t blocks;            /* verified, fresh blocks delivered */
    uint64_t blocks_recovered;  /* of which needed repair symbols */
    uint64_t verifies;          /* Ed25519 verifications run (blocks and beacons) */
    uint64_t verify_failures;   /* of which failed (each took a budget token) */
    uint64_t outside_window;    /* matched their beacon, block_seq outside the
                                   announced window: sent to the unannounced part */
    uint64_t drops[SL_RX_STAGES][SL_ERR__COUNT];
    uint64_t drops_unclassified; /* dropped with a code outside sl_err (a bug):
                                    counted apart, never filed under a real reason */
    struct sl_fec_counters fec; /* includes unrecoverable and evicted blocks */
};

struct sl_receiver;

#define SL_RX_FAIL_PER_S_DEFAULT             1000u
#define SL_RX_FAIL_UNANNOUNCED_PER_S_DEFAULT 250u
#define SL_RX_FAIL_BEACON_PER_S_DEFAULT      100u
#define SL_RX_FAIL_PER_S_MAX                 1000000u
/* Signed bytes hashed (SHA-512) per extra token charged for a failed check:
 * ~24 KiB costs about what the curve arithmetic does. */
#define SL_RX_VERIFY_BYTES_PER_TOKEN         24576u

/* Announced window above the frontier, blocks. Genuine blocks ahead of the
 * highest verified one are the interleave group(s) in flight (at most 2 x
 * interleave <= 128) and whatever follows a run of lost blocks; 1024 is
 * ~70 ms of the fastest file stream (~15k blocks/s) and 2 s of tag blocks
 * at 500/s. Genuine blocks beyond it still decode, unannounced, and once
 * one verifies the frontier catches up. */
#define SL_RX_AHEAD_BLOCKS                   1024u

/* Largest highest_block a verified beacon may carry (2^48: ~17,800 years
 * of blocks at 500/s); above it the beacon is dropped (beacon/range), so
 * window sums on the frontier cannot wrap. */
#define SL_RX_HIGHEST_BLOCK_MAX              ((uint64_t)1 << 48)

/* Beacon plausibility: a beacon_seq may lead the last verified one by
 * SLACK plus two per learned beacon interval elapsed. MIN_INTERVAL is TX's
 * smallest beacon_ms (the generous default before the spacing is learned,
 * after a TX restart, and after RELEARN without a verified beacon). */
#define SL_RX_BEACON_SLACK                   16u
#define SL_RX_BEACON_MIN_INTERVAL_US         10000u
#define SL_RX_BEACON_RELEARN_US              5000000u

/* SL_ERR_RANGE for a bad config, SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_receiver_create(struct sl_receiver **out, const struct sl_receiver_config *cfg);
void sl_receiver_destroy(struct sl_receiver *r);

/* Receives one batch (waiting up to timeout_ms) and processes it; callbacks
 * run inside. Returns SL_OK when datagrams were processed, SL_ERR_AGAIN on
 * timeout, SL_ERR_EOF at the end of a replayed capture, SL_ERR_IO from the
 * link. now_us (CLOCK_REALTIME µs) stamps the batch and ages the decoder's
 * partial blocks. Cost per datagram: one CRC pass and one S-byte copy; per
 * block: one signature verification (and an RS decode if frames were lost). */
__attribute__((warn_unused_result))
sl_err sl_receiver_poll(struct sl_receiver *r, int timeout_ms, uint64_t now_us);

/* Processes one datagram already in memory (tests, fuzzing, replays).
 * now_us also refills the verification budgets. */
void sl_receiver_input(struct sl_receiver *r, const uint8_t *dg, size_t len, uint64_t now_us);

/* Ages out partial blocks (counted unrecoverable). Called by poll too. */
void sl_receiver_tick(struct sl_receiver *r, uint64_t now_us);

void sl_receiver_stats(const struct sl_receiver *r, struct sl_receiver_stats *out);

/* Name of a drop stage for logs and metrics labels ("frame", "block" ...). */
const char *sl_receiver_stage_name(enum sl_rx_stage s);

#endif
