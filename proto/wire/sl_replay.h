/* Replay protection for a link with no back-channel (after WireGuard's
 * counter window, drivers/net/wireguard/receive.c).
 *
 * One entry per (key id, channel): the highest epoch accepted and, for that
 * epoch, the highest block sequence accepted plus a bitmap of the
 * SL_REPLAY_WINDOW sequences at or below it. A sequence is acceptable if
 * the epoch is newer (the window restarts), or the epoch is the same and
 * the sequence is above the highest, or within the window and not yet seen.
 * Older epoch: SL_ERR_EPOCH. Seen, or too far below the highest:
 * SL_ERR_REPLAY.
 *
 * Jump bounds (SL_ERR_RANGE, never recorded, so never persisted): a signed
 * value far above what is held would otherwise lock the genuine sender out
 * (an epoch near UINT64_MAX bricks the key for good). Refused: an epoch at
 * or above SL_REPLAY_EPOCH_MAX (also the bound for a key's first epoch), an
 * epoch more than SL_REPLAY_EPOCH_JUMP_MAX above the held one, a sequence
 * more than SL_REPLAY_SEQ_JUMP_MAX above the held one, or a first sequence
 * of a new epoch or pair above SL_REPLAY_SEQ_JUMP_MAX (TX numbers every
 * epoch from 0). Why these numbers: TX adds 1 to its persisted epoch per
 * start, so 2^32 is 13 years of a restart every 100 ms that RX never saw,
 * and 2^48 is out of reach; sequences grow by at most ~15k blocks/s
 * (bulk files at 11 Gbit/s), so 2^44 is 37 years of it unseen, and beacons
 * (5/s) are far below. A compromised key can still walk the values up in
 * many signed steps; each step is bounded and counted, and recovery is the
 * documented one (new key, or move replay.state aside).
 *
 * Beacons use the same table under the pseudo-channel
 * SL_REPLAY_CHANNEL_BEACON with beacon_seq as the sequence.
 *
 * The table is a fixed array (no allocation): SL_REPLAY_ENTRIES entries,
 * SL_ERR_TABLE_FULL beyond that. Not thread-safe. */
#ifndef SL_REPLAY_H
#define SL_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_key.h"
#include "sl_wire.h"

#define SL_REPLAY_BITMAP_BITS    8192u
/* One 64-bit word of the ring is always being recycled, so the guaranteed
 * window is the bitmap minus one word: sequences more than this far below
 * the highest accepted are refused as too old. */
#define SL_REPLAY_WINDOW         (SL_REPLAY_BITMAP_BITS - 64u)   /* 8128 */
#define SL_REPLAY_ENTRIES        64u   /* >= SL_KEY_SET_MAX * (channels + beacons) */
#define SL_REPLAY_CHANNEL_BEACON 0xFFFFu

#define SL_REPLAY_EPOCH_MAX      ((uint64_t)1 << 48)   /* epochs at or above: refused */
#define SL_REPLAY_EPOCH_JUMP_MAX ((uint64_t)1 << 32)   /* above the held epoch */
#define SL_REPLAY_SEQ_JUMP_MAX   ((uint64_t)1 << 44)   /* above the held (or 0) sequence */

/* State file (see docs/protocol.md, "Replay state file"). */
#define SL_REPLAY_FILE_MAGIC     0x534C5250u   /* "SLRP" */
#define SL_REPLAY_FILE_VERSION   1u
#define SL_REPLAY_FILE_HDR_BYTES 12u
#define SL_REPLAY_FILE_ENTRY_BYTES (SL_KEY_ID_BYTES + 2u + 2u + 4u + 8u + 8u + SL_REPLAY_BITMAP_BITS / 8u)
#define SL_REPLAY_FILE_MAX_BYTES \
    (SL_REPLAY_FILE_HDR_BYTES + SL_REPLAY_ENTRIES * SL_REPLAY_FILE_ENTRY_BYTES + SL_CRC_BYTES)

struct sl_replay_entry {
    uint8_t key_id[SL_KEY_ID_BYTES];
    uint16_t channel;
    uint64_t epoch;        /* highest epoch accepted */
    uint64_t highest;      /* highest sequence accepted in that epoch */
    uint64_t bitmap[SL_REPLAY_BITMAP_BITS / 64u];   /* bit (seq % BITS) */
};

struct sl_replay {
    struct sl_replay_entry entry[SL_REPLAY_ENTRIES];
    size_t count;          /* entries in use, packed at the front */
};

/* Empties the table. Cost: clears ~67 KiB. */
void sl_replay_init(struct sl_replay *r);

/* Would (epoch, seq) be accepted for (key_id, channel)? Changes nothing;
 * RX calls it before the signature check to drop replays cheaply.
 * SL_OK, SL_ERR_EPOCH, SL_ERR_REPLAY, SL_ERR_RANGE (a jump beyond the
 * bounds above), or SL_ERR_TABLE_FULL if the pair is new and the table is
 * full. Cost: a lookup and a bit test. */
__attribute__((warn_unused_result))
sl_err sl_replay_check(const struct sl_replay *r, const uint8_t key_id[SL_KEY_ID_BYTES], uint16_t channel,
                       uint64_t epoch, uint64_t seq);

/* The same decision as sl_replay_check and, on SL_OK, records (epoch, seq)
 * as accepted. Call only after the block's signature verified, so forged
 * frames can never move the window. Cost: a lookup, a bit set, at most a
 * 1 KiB clear when the window advances or the epoch changes. */
__attribute__((warn_unused_result))
sl_err sl_replay_accept(struct sl_replay *r, const uint8_t key_id[SL_KEY_ID_BYTES], uint16_t channel,
                        uint64_t epoch, uint64_t seq);

/* The highest epoch and sequence accepted for (key_id, channel), or
 * SL_ERR_NOT_FOUND. */
__attribute__((warn_unused_result))
sl_err sl_replay_position(uint64_t *epoch, uint64_t *seq, const struct sl_replay *r,
                          const uint8_t key_id[SL_KEY_ID_BYTES], uint16_t channel);

/* Bytes of the state file image of r (header, r->count entries, CRC). */
size_t sl_replay_encoded_bytes(const struct sl_replay *r);

/* Encodes the whole table as a state file image (see docs/protocol.md,
 * "Replay state file") into out (cap bytes) and sets *len. SL_ERR_OVERFLOW if
 * cap is below sl_replay_encoded_bytes(r). No I/O: proto/rt/sl_replayfile.h
 * writes it. Cost: ~1 KiB per entry. */
__attribute__((warn_unused_result))
sl_err sl_replay_encode(uint8_t *out, size_t cap, size_t *len, const struct sl_replay *r);

/* Replaces *r with the table in a state file image of len bytes. *r is
 * unchanged on failure: SL_ERR_LENGTH (size not that of a header, n entries
 * and a CRC; also any image above SL_REPLAY_FILE_MAX_BYTES whose header is
 * otherwise sound), SL_ERR_TRUNCATED (shorter than a header and a CRC),
 * SL_ERR_MAGIC, SL_ERR_VERSION, SL_ERR_CRC, SL_ERR_TABLE_FULL (more entries
 * than SL_REPLAY_ENTRIES), SL_ERR_HEADER (reserved bits set, bad channel),
 * SL_ERR_DUPLICATE (a (key id, channel) pair twice), SL_ERR_RANGE (an epoch
 * at or above SL_REPLAY_EPOCH_MAX: a bricked entry from before the bounds
 * existed). Only the first SL_REPLAY_FILE_MAX_BYTES bytes are ever read.
 * Allocates one table copy (start-up only). */
__attribute__((warn_unused_result))
sl_err sl_replay_load_mem(struct sl_replay *r, const uint8_t *p, size_t len);

#endif
