/* The bounded queue from the intake thread to the channel worker: verified
 * payloads of the channels other than tags (files; later syslog) are copied
 * in by intake and handled on the worker's thread, so disk writes, renames
 * and fsync never hold the link up.
 *
 * One producer (intake), one consumer (the worker): a ring of `slots`
 * entries of `max_bytes` each, allocated at create, indices moved with
 * acquire/release atomics. A push into a full ring (or a payload above
 * max_bytes) is dropped and counted (sluice_rx_chan_queue_dropped_total):
 * intake never waits; the TX's keyframes and file resends repair what is
 * lost. Every push writes the wake eventfd the worker polls.
 *
 * Why a copy: the payload lives in the receiver's block buffer, which the
 * next block reuses as soon as the payload callback returns. Handing that
 * buffer to the worker instead would make intake wait for the disk (or need
 * a second pool of block buffers, which is this ring). One memcpy per
 * payload, at memory speed, is a few per cent of the page-cache write the
 * worker then does with the same bytes. */
#ifndef SL_CHANQ_H
#define SL_CHANQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_wire.h"

#define SL_CHANQ_SLOTS_DEFAULT 64u
#define SL_CHANQ_SYSLOG_SHARE  16u    /* syslog's cap when files share the ring */
/* The file and syslog ring's size in bytes of slots at the receiver's
 * largest block (at least SL_CHANQ_SLOTS_DEFAULT slots, at most 4096): at
 * the defaults (max_k 128, mtu 1500) 276 slots, ~100 ms of a 2 Gbit/s file
 * transfer in k = 64 blocks. The worker's page-cache writes stall for tens
 * of ms when the kernel throttles dirty pages or commits the journal; 64
 * slots (~23 ms) dropped file blocks then, and a file missing a block is
 * lost. Memory is taken as slots are first used: a block's own size. */
#define SL_CHANQ_FILES_BYTES   (48u << 20)
#define SL_CHANQ_SLOTS_MAX     4096u

/* One queued payload, as the worker sees it. */
struct sl_chanq_item {
    uint16_t channel;
    uint64_t session;
    uint64_t now_us;          /* wall clock at receipt */
    size_t len;
    const uint8_t *payload;   /* len bytes, valid until sl_chanq_pop_done */
    uint16_t split;           /* the block's split (sl_block_hdr); 0: none */
    const uint8_t *leaf;      /* split != 0: SL_BLOCK_DIGEST_BYTES, SHA-256(payload[split, len)) */
};

struct sl_chanq_stats {
    uint64_t pushed, dropped, popped;             /* dropped: every channel's */
    uint64_t dropped_channel[SL_CHANNEL_COUNT];   /* dropped, by channel id */
};

struct sl_chanq;

/* slots (> 0) entries of up to max_bytes (> 0); wake_fd: an eventfd
 * (EFD_NONBLOCK) written on every push, or -1. SL_ERR_NOMEM/SL_ERR_RANGE. */
__attribute__((warn_unused_result))
sl_err sl_chanq_create(struct sl_chanq **out, uint32_t slots, size_t max_bytes, int wake_fd);
void sl_chanq_destroy(struct sl_chanq *q);

/* The slot count for a ring of SL_CHANQ_FILES_BYTES at max_bytes a slot:
 * SL_CHANQ_FILES_BYTES / max_bytes, at least SL_CHANQ_SLOTS_DEFAULT, at
 * most SL_CHANQ_SLOTS_MAX (max_bytes 0: SL_CHANQ_SLOTS_DEFAULT). */
uint32_t sl_chanq_slots_for(size_t max_bytes);

/* Before the threads start: channel (< SL_CHANNEL_COUNT) may hold at most
 * max (1..slots) entries at once; without a call it may fill the ring.
 * SL_ERR_RANGE otherwise. */
__attribute__((warn_unused_result))
sl_err sl_chanq_share(struct sl_chanq *q, uint16_t channel, uint32_t max);

/* Producer: copies the payload in; SL_ERR_CAPACITY (counted as dropped)
 * when the ring is full or the channel holds its share, SL_ERR_LENGTH
 * (dropped too) above max_bytes, SL_ERR_RANGE (dropped) for a channel id
 * >= SL_CHANNEL_COUNT. O(len), never blocks. */
sl_err sl_chanq_push(struct sl_chanq *q, uint16_t channel, uint64_t session, const uint8_t *payload, size_t len,
                     uint64_t now_us);

/* The same with the block's split and leaf (leaf read only when split !=
 * 0), handed to the consumer so it need not hash payload[split, len) again. */
sl_err sl_chanq_push_split(struct sl_chanq *q, uint16_t channel, uint64_t session, const uint8_t *payload,
                           size_t len, uint16_t split, const uint8_t *leaf, uint64_t now_us);

/* Consumer: the oldest entry into *it, false when empty; the entry stays
 * until sl_chanq_pop_done. */
bool sl_chanq_peek(struct sl_chanq *q, struct sl_chanq_item *it);
void sl_chanq_pop_done(struct sl_chanq *q);

/* Consumer: entries queued now (the peeked one included). */
uint32_t sl_chanq_depth(const struct sl_chanq *q);
/* The ring's size in entries. */
uint32_t sl_chanq_slots(const struct sl_chanq *q);

/* Any thread: the counters (relaxed atomics). */
void sl_chanq_stats(const struct sl_chanq *q, struct sl_chanq_stats *out);

#endif
