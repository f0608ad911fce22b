/* The RX wire path: link -> DATA frames -> FEC decoder -> block signature
 * check -> replay window -> payload to the caller; BEACONs verified and
 * handed over separately. Every datagram that does not make it is counted
 * under the stage and sl_err that stopped it.
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
    SL_RX_STAGES
};

struct sl_receiver_stats {
    uint64_t datagrams;         /* handed over by the link */
    uint64_t frames;            /* valid DATA frames */
    uint64_t beacons;           /* accepted beacons */
    uint64_t blocks;            /* verified, fresh blocks delivered */
    uint64_t blocks_recovered;  /* of which needed repair symbols */
    uint64_t drops[SL_RX_STAGES][SL_ERR__COUNT];
    struct sl_fec_counters fec; /* includes unrecoverable and evicted blocks */
};

struct sl_receiver;

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

/* Processes one datagram already in memory (tests, fuzzing, replays). */
void sl_receiver_input(struct sl_receiver *r, const uint8_t *dg, size_t len, uint64_t now_us);

/* Ages out partial blocks (counted unrecoverable). Called by poll too. */
void sl_receiver_tick(struct sl_receiver *r, uint64_t now_us);

void sl_receiver_stats(const struct sl_receiver *r, struct sl_receiver_stats *out);

/* Name of a drop stage for logs and metrics labels ("frame", "block" ...). */
const char *sl_receiver_stage_name(enum sl_rx_stage s);

#endif
