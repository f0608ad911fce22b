/* The TX wire path: payload -> signed block -> Reed-Solomon symbols ->
 * interleaved DATA frames -> paced link. Also sends signed beacons.
 *
 * One sender per TX process and per link; single-threaded. Everything is
 * allocated by sl_sender_create: a pool of block buffers (2 * interleave + 1,
 * each (k + m) * S bytes), the encoder tables, the interleaver, and one
 * batch of datagram buffers. Nothing is allocated per block or per frame.
 *
 * Usage: sl_sender_block() hands out the payload area of the next block of
 * a channel (its capacity is what fits in k symbols after the block
 * overhead); the caller writes messages there and calls sl_sender_commit()
 * with the length used. Commit signs, encodes and queues the block; frames
 * go out (paced, so this may sleep) whenever an interleave group is sealed.
 * sl_sender_flush() seals and sends a partial group (latency timer, exit). */
#ifndef SL_SENDER_H
#define SL_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "sl_datagram.h"
#include "sl_err.h"
#include "sl_key.h"
#include "sl_wire.h"

struct sl_hw;

struct sl_sender_config {
    unsigned k;                 /* data symbols per full block (1..254) */
    unsigned m;                 /* repair symbols per full block (k + m <= 255) */
    unsigned interleave;        /* depth D (1..64) */
    uint16_t symbol_size;       /* S, bytes (SL_SYMBOL_MIN..SL_SYMBOL_MAX) */
    double rate_mbps;           /* wire rate incl. Ethernet overhead; 0 = unpaced */
    uint64_t max_delay_us;      /* a partial interleave group waits at most this */
    uint64_t session;           /* random per TX start */
    uint64_t epoch;             /* persisted, strictly increasing */
    const struct sl_signer *signer;    /* borrowed; must outlive the sender */
    struct sl_hw *hw;           /* borrowed transport, opened for TX */
};

struct sl_sender_stats {
    uint64_t blocks_sent[SL_CHANNEL_COUNT];
    uint64_t next_seq[SL_CHANNEL_COUNT];   /* next block_seq per channel */
    uint64_t emitted[SL_CHANNEL_COUNT];    /* blocks whose every frame went to the link */
    uint64_t frames_sent;
    uint64_t frames_unsent;                /* transport refused (counted, lost) */
    uint64_t beacons_sent;
    uint64_t bytes_sent;                   /* datagram bytes handed to the link */
};

struct sl_sender;

/* Validates cfg and allocates everything. SL_ERR_RANGE for bad parameters,
 * SL_ERR_NOMEM. *out owns the memory until sl_sender_destroy. */
__attribute__((warn_unused_result))
sl_err sl_sender_create(struct sl_sender **out, const struct sl_sender_config *cfg);

/* Flushes nothing; frees everything (call sl_sender_flush first). */
void sl_sender_destroy(struct sl_sender *s);

/* Largest payload one block can carry: k * S - SL_BLOCK_OVERHEAD. */
size_t sl_sender_payload_cap(const struct sl_sender *s);

/* Hands out the payload area of a new block for channel: *payload points
 * at *cap writable bytes, valid until sl_sender_commit. Sends queued frames
 * first if every block buffer is in flight (may sleep for pacing).
 * SL_ERR_STATE if a block is already open, SL_ERR_RANGE for a bad channel. */
__attribute__((warn_unused_result))
sl_err sl_sender_block(struct sl_sender *s, uint8_t **payload, size_t *cap, uint16_t channel);

/* Closes the open block with len payload bytes (1..cap; 0 abandons it):
 * signs it with tx_time_us, encodes k' = ceil((len + 108) / S) data and
 * m' repair symbols, queues it for interleaving, and sends any sealed
 * group. now_us drives the interleave latency timer. Cost: one signature,
 * one RS encode, and (when a group is sealed) its frames on the link. */
__attribute__((warn_unused_result))
sl_err sl_sender_commit(struct sl_sender *s, size_t len, uint64_t tx_time_us, uint64_t now_us);

/* sl_sender_commit for a block whose payload ends with data the caller has
 * already hashed: the block is sealed with SL_BLOCK_FLAG_SPLIT at split
 * (1 <= split < len), and leaf must be SHA-256(payload[split, len)), so
 * those bytes are not hashed again (sl_block.h). A wrong leaf yields a
 * block no receiver accepts. SL_ERR_RANGE (block abandoned) for a split
 * outside 1..min(len - 1, 65535) or no leaf; otherwise as sl_sender_commit,
 * minus one SHA-256 pass over the data. */
__attribute__((warn_unused_result))
sl_err sl_sender_commit_split(struct sl_sender *s, size_t len, size_t split,
                              const uint8_t leaf[SL_BLOCK_DIGEST_BYTES], uint64_t tx_time_us, uint64_t now_us);

/* Sends every queued block now, sealing a partial interleave group. */
__attribute__((warn_unused_result))
sl_err sl_sender_flush(struct sl_sender *s);

/* Seals the open interleave group if it has waited its latency budget
 * (max_delay_us after its first block) and sends it. For the daemon's
 * timer; cheap when nothing is due. */
__attribute__((warn_unused_result))
sl_err sl_sender_tick(struct sl_sender *s, uint64_t now_us);

/* When the open interleave group falls due (for the daemon's poll timeout);
 * SL_ERR_NOT_FOUND when nothing waits. */
__attribute__((warn_unused_result))
sl_err sl_sender_deadline(const struct sl_sender *s, uint64_t *out_us);

/* Signs and sends one beacon now. b's session, epoch, S, k, m, interleave,
 * highest_block, blocks_sent and frames_sent are filled in by the sender;
 * the caller sets beacon_seq, tx_time_us, rate and health fields and the
 * fingerprints. Not paced (a beacon is 200 bytes every beacon_ms). */
__attribute__((warn_unused_result))
sl_err sl_sender_beacon(struct sl_sender *s, struct sl_beacon *b);

void sl_sender_stats(const struct sl_sender *s, struct sl_sender_stats *out);

#endif
