/* BLOCK: the FEC-protected, signed unit (sl_wire.h, docs/protocol.md).
 *
 *   block = header (44) | payload (L) | Ed25519 signature (64) | zero padding
 *
 * The signature (block version 2) is Ed25519 over header || SHA-256(payload).
 *
 * TX seals a payload into a block and pads it to k' = ceil(len / S) whole
 * symbols for the FEC encoder; RX opens the k' * S bytes the decoder
 * rebuilt, checks them against the frames that carried them and the
 * trusted keys, and only then exposes the payload. No allocation, no I/O. */
#ifndef SL_BLOCK_H
#define SL_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_key.h"
#include "sl_wire.h"

/* Block header fields that vary (magic and version are fixed; payload_len
 * comes from the payload).
 *
 * split: 0 for the plain digest rule. 1 <= split < payload_len selects
 * SL_BLOCK_FLAG_SPLIT: the signed digest is
 * SHA-256(payload[0, split) || leaf) with leaf = SHA-256(payload[split, L)).
 * Sealing: the caller that sets split also puts that leaf in h->leaf (it
 * has just hashed those bytes for the file's tree digest, so they are not
 * hashed again); a wrong leaf yields a block no receiver accepts.
 * Opening: sl_block_open fills split and, when split != 0, leaf, which
 * the file receiver takes as its chunk's leaf without a second pass. */
struct sl_block_hdr {
    uint16_t channel;
    uint64_t session;
    uint64_t epoch;
    uint64_t block_seq;
    uint64_t tx_time_us;    /* TX wall clock at block close, µs since Unix epoch */
    uint16_t split;         /* 0: plain digest; else SL_BLOCK_FLAG_SPLIT at this offset */
    uint8_t leaf[SL_BLOCK_DIGEST_BYTES];   /* split != 0: SHA-256(payload[split, L)) */
};

/* What RX knows about a block from the DATA frames that carried it. */
struct sl_block_expect {
    uint16_t channel;
    uint16_t symbol_size;               /* S */
    uint64_t session;
    uint64_t epoch;
    uint64_t block_seq;
    uint8_t key_id[SL_KEY_ID_BYTES];
    uint8_t k;                          /* k': data symbols of this block */
};

/* Writes header, payload and signature into out (cap bytes) and sets
 * *out_len = SL_BLOCK_OVERHEAD + payload_len. The payload may already sit
 * at out + SL_BLOCK_HDR_BYTES (TX builds messages in place; then it is not
 * copied). SL_ERR_RANGE for a channel >= SL_CHANNEL_COUNT or payload_len >
 * SL_BLOCK_PAYLOAD_MAX, SL_ERR_OVERFLOW if cap is too small; the signer's
 * error when it cannot sign (SL_ERR_IO: the signer process is gone), with
 * *out_len 0 and no signature written.
 * Cost: one SHA-256 pass over the payload (with split: over its first
 * split bytes and the leaf only) and one Ed25519 signature of 76 bytes
 * (plus a round trip to the signer process in sluice-tx). */
__attribute__((warn_unused_result))
sl_err sl_block_seal(uint8_t *out, size_t cap, size_t *out_len, const struct sl_block_hdr *h,
                     const uint8_t *payload, size_t payload_len, const struct sl_signer *signer);

/* The first half of sl_block_seal, for a caller that gathers blocks and
 * signs them together (sl_signer_sign_batch): writes header and payload
 * as sl_block_seal does, the SL_BLOCK_SIGNED_BYTES the signature covers
 * into msg, and *out_len = SL_BLOCK_OVERHEAD + payload_len; the block is
 * whole once its signature is written at out + *out_len - SL_SIG_BYTES.
 * Same checks and errors as sl_block_seal. Cost: one SHA-256 pass. */
__attribute__((warn_unused_result))
sl_err sl_block_prepare(uint8_t *out, size_t cap, size_t *out_len, const struct sl_block_hdr *h,
                        const uint8_t *payload, size_t payload_len, uint8_t msg[SL_BLOCK_SIGNED_BYTES]);

/* k' = ceil(len / S), the data symbols a block of len bytes needs; 0 if S
 * is outside SL_SYMBOL_MIN..SL_SYMBOL_MAX or len is 0. */
size_t sl_block_symbols(size_t len, uint16_t symbol_size);

/* Zero-fills buf from len up to k' * S (k' = sl_block_symbols) and sets
 * *padded_len to that. SL_ERR_RANGE if S is out of range, len is 0 or k'
 * exceeds SL_FEC_MAX_SYMBOLS - 1; SL_ERR_OVERFLOW if cap < k' * S. */
__attribute__((warn_unused_result))
sl_err sl_block_pad(size_t *padded_len, uint8_t *buf, size_t cap, size_t len, uint16_t symbol_size);

/* Checks a decoded block of blk_len bytes and, only if everything holds
 * including the signature, points *payload / *payload_len at the payload
 * inside blk (borrowed) and fills *hdr. Checks, in order:
 *   S in range, k' >= 1, blk_len == k' * S      SL_ERR_LENGTH
 *   blk_len >= SL_BLOCK_OVERHEAD                SL_ERR_TRUNCATED
 *   magic "SB" / version                        SL_ERR_MAGIC / SL_ERR_VERSION
 *   flags 0 with split field 0, or flags
 *   SL_BLOCK_FLAG_SPLIT with 1 <= split < L      SL_ERR_HEADER
 *   channel, session, epoch, block_seq equal x  SL_ERR_MISMATCH
 *   44 + L + 64 <= blk_len, padding < S         SL_ERR_LENGTH
 *   padding bytes all zero                      SL_ERR_TRAILING
 *   key id x->key_id in trusted                 SL_ERR_UNKNOWN_KEY
 *   Ed25519 over header || payload digest       SL_ERR_SIGNATURE
 *     (SHA-256(payload), or with split the digest above)
 * On failure the outputs are NULL / zero. Replay is the caller's next step
 * (sl_replay_accept). Cost: one pass over the padding, one SHA-256 pass
 * over the payload, one verification of 76 bytes. */
__attribute__((warn_unused_result))
sl_err sl_block_open(const uint8_t **payload, size_t *payload_len, struct sl_block_hdr *hdr,
                     const uint8_t *blk, size_t blk_len, const struct sl_block_expect *x,
                     const struct sl_key_set *trusted);

/* Every check of sl_block_open but the Ed25519 verification, in the same
 * order, ending with a canonical s (sl_key_sig_canonical, else
 * SL_ERR_SIGNATURE): SL_OK means only the expensive step is left. RX runs
 * it before spending its failed-verification budget, so malformed forgeries
 * cost ~1 µs and no budget. Cost: the header parse and a pass over the
 * padding; no hashing. */
__attribute__((warn_unused_result))
sl_err sl_block_check(const uint8_t *blk, size_t blk_len, const struct sl_block_expect *x,
                      const struct sl_key_set *trusted);

#endif
