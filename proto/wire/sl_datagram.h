/* Datagram codecs: DATA frames (one FEC symbol each) and BEACONs, exactly
 * as laid out in sl_wire.h and docs/protocol.md.
 *
 * (Named sl_datagram rather than sl_frame: hw/sl_frame.h is the link
 * layer's Ethernet/IPv4/UDP framing, and one include path must reach both.)
 *
 * Parsers take untrusted bytes and either fill their output completely and
 * return SL_OK, or zero it and return the error class of the first check
 * that failed; RX counts drops by that class. No allocation, no I/O. */
#ifndef SL_DATAGRAM_H
#define SL_DATAGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_key.h"
#include "sl_wire.h"

/* DATA frame fields. On parse, symbol points into the datagram (zero-copy;
 * valid as long as the datagram buffer). */
struct sl_data_frame {
    uint16_t channel;
    uint16_t symbol_size;              /* S */
    uint64_t session;
    uint64_t epoch;
    uint64_t block_seq;
    uint8_t key_id[SL_KEY_ID_BYTES];
    uint8_t k;                         /* data symbols in this block */
    uint8_t m;                         /* repair symbols in this block */
    uint8_t index;                     /* 0..k-1 data, k..k+m-1 repair */
    const uint8_t *symbol;             /* S bytes */
};

/* BEACON fields (channel, reserved and flags are fixed at 0 in v1). */
struct sl_beacon {
    uint64_t session;
    uint64_t epoch;
    uint8_t key_id[SL_KEY_ID_BYTES];   /* set by encode from the signing key */
    uint64_t beacon_seq;
    uint64_t tx_time_us;
    uint64_t highest_block;            /* highest tag block_seq sent + 1; 0 = none */
    uint16_t symbol_size;
    uint8_t k;
    uint8_t m;
    uint8_t interleave;
    uint32_t rate_kbps;
    uint8_t config_fp[SL_FP_BYTES];
    uint8_t schema_fp[SL_FP_BYTES];
    uint64_t poll_errors;
    uint64_t queue_drops;
    uint64_t blocks_sent;
    uint64_t frames_sent;
};

/* Cheap dispatch: checks length >= 4 (SL_ERR_TRUNCATED), magic
 * (SL_ERR_MAGIC), version (SL_ERR_VERSION) and that the type is DATA or
 * BEACON (SL_ERR_TYPE), and sets *type (0 on failure). Reads 4 bytes. */
__attribute__((warn_unused_result))
sl_err sl_datagram_peek(uint8_t *type, const uint8_t *dg, size_t len);

/* Writes a DATA frame into out (cap bytes): header, the S symbol bytes at
 * f->symbol, CRC32C. *out_len = SL_FRAME_OVERHEAD + S. The symbol may
 * already sit at out + SL_FRAME_HDR_BYTES (then it is not copied). Fields
 * are checked as the parser checks them (SL_ERR_RANGE), so TX cannot emit
 * what RX rejects; SL_ERR_OVERFLOW if cap is too small. Cost: one copy and
 * one CRC pass over the symbol. */
__attribute__((warn_unused_result))
sl_err sl_datagram_data_encode(uint8_t *out, size_t cap, size_t *out_len, const struct sl_data_frame *f);

/* Parses and checks a DATA frame, in this order:
 *   len >= SL_FRAME_MIN_BYTES                 SL_ERR_TRUNCATED
 *   magic / version / type                    SL_ERR_MAGIC / _VERSION / _TYPE
 *   channel < SL_CHANNEL_COUNT, S within
 *     SL_SYMBOL_MIN..SL_SYMBOL_MAX            SL_ERR_HEADER
 *   len == SL_FRAME_OVERHEAD + S              SL_ERR_LENGTH
 *   k >= 1, m >= 1, k + m <= 255, index < k + m, flags == 0
 *                                             SL_ERR_HEADER
 *   CRC32C                                    SL_ERR_CRC
 * The CRC only guards against corruption; authenticity comes from the
 * block signature after FEC decoding. Cost: one CRC pass, no copy. */
__attribute__((warn_unused_result))
sl_err sl_datagram_data_parse(struct sl_data_frame *out, const uint8_t *dg, size_t len);

/* Writes a signed BEACON (exactly SL_BEACON_BYTES) into out (cap bytes);
 * the key id comes from the signer, b->key_id is ignored. Range-checks S,
 * k, m, interleave like the parser (SL_ERR_RANGE); SL_ERR_OVERFLOW if cap
 * is too small; the signer's error when it cannot sign (then out holds no
 * valid beacon: the signature is zero, the CRC not written). Cost: one
 * Ed25519 signature. */
__attribute__((warn_unused_result))
sl_err sl_datagram_beacon_encode(uint8_t *out, size_t cap, const struct sl_beacon *b,
                                 const struct sl_signer *signer);

/* Parses and authenticates a BEACON, in this order:
 *   len == SL_BEACON_BYTES                    SL_ERR_TRUNCATED if shorter,
 *                                             SL_ERR_LENGTH if longer
 *   magic / version / type                    SL_ERR_MAGIC / _VERSION / _TYPE
 *   CRC32C                                    SL_ERR_CRC
 *   channel, reserved, flags == 0; S, k, m, interleave in range
 *                                             SL_ERR_HEADER
 *   key id in trusted                         SL_ERR_UNKNOWN_KEY
 *   Ed25519 signature over bytes [0, 132)     SL_ERR_SIGNATURE
 * *out is filled only on SL_OK (zeroed otherwise). Replay of old beacons
 * is the caller's check (sl_replay with SL_REPLAY_CHANNEL_BEACON).
 * Cost: one CRC pass and one signature verification (~45 µs). */
__attribute__((warn_unused_result))
sl_err sl_datagram_beacon_open(struct sl_beacon *out, const uint8_t *dg, size_t len,
                               const struct sl_key_set *trusted);

/* Every check of sl_datagram_beacon_open but the Ed25519 verification,
 * ending with a canonical s (else SL_ERR_SIGNATURE), and the fields parsed
 * into *out, UNAUTHENTICATED: for a caller that must decide (replay window,
 * failed-verification budget) before paying for the verification. Cost: one
 * CRC pass, no hashing. */
__attribute__((warn_unused_result))
sl_err sl_datagram_beacon_check(struct sl_beacon *out, const uint8_t *dg, size_t len,
                                const struct sl_key_set *trusted);

#endif
