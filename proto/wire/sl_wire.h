/* Sluice wire format, version 1. This header is the single source of truth
 * for every layout, size and limit that crosses the diode; docs/protocol.md
 * mirrors it field for field. All integers are big-endian (network order).
 *
 * Layers, outermost first:
 *   datagram  = DATA frame (one FEC symbol) | BEACON (small, signed, no FEC)
 *   FEC block = k data symbols of S bytes = BLOCK (header, payload, signature)
 *               followed by zero padding; m repair symbols computed over them
 *   payload   = a sequence of messages (tag channel: SCHEMA, KEYFRAME, DELTA,
 *               EVENT, DELTA_SEQ; file channel: FILE_*; syslog channel:
 *               SYSLOG; history channel: HISTORY), each
 *               [type][flags][len][body]
 */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include <stdbool.h>
#include <stdint.h>

/* ---- common ------------------------------------------------------------- */
#define SL_WIRE_MAGIC        0x534Cu   /* "SL": first two bytes of every datagram */
#define SL_WIRE_VERSION      1u
#define SL_FRAME_DATA        1u        /* frame type: one FEC symbol */
#define SL_FRAME_BEACON      2u        /* frame type: control-plane beacon */
#define SL_DEFAULT_PORT      7400u

#define SL_CHANNEL_TAGS      0u        /* tag snapshot channel */
#define SL_CHANNEL_FILES     1u        /* bulk file channel */
#define SL_CHANNEL_SYSLOG    2u        /* OT syslog messages, batched */
#define SL_CHANNEL_HISTORY   3u        /* backfill carousel: journaled changes re-sent */
/* Receivers reject a DATA frame with channel >= this at decode, before FEC
 * or any state: a channel added later (as SYSLOG was) needs no version bump,
 * since an older receiver drops its frames one by one and counts them. */
#define SL_CHANNEL_COUNT     4u

#define SL_KEY_ID_BYTES      8u        /* first 8 bytes of BLAKE2b-256(public key) */
#define SL_SIG_BYTES         64u       /* Ed25519 detached signature */
#define SL_PK_BYTES          32u
#define SL_CRC_BYTES         4u        /* CRC32C (Castagnoli), see docs */
#define SL_FP_BYTES          16u       /* fingerprints: BLAKE2b-128 */

/* ---- DATA frame: one datagram per FEC symbol ------------------------------
 * off size field
 *   0    2 magic        SL_WIRE_MAGIC
 *   2    1 version      SL_WIRE_VERSION
 *   3    1 type         SL_FRAME_DATA
 *   4    2 channel      SL_CHANNEL_*
 *   6    2 symbol_size  S, constant for a session
 *   8    8 session      random per TX start
 *  16    8 epoch        persisted on TX, strictly increasing across restarts
 *  24    8 block_seq    per channel, starts at 0 for each session
 *  32    8 key_id       signer's key id
 *  40    1 k            data symbols in this block (k' <= configured k)
 *  41    1 m            repair symbols in this block (m' >= 1)
 *  42    1 index        0..k-1 data, k..k+m-1 repair
 *  43    1 flags        0 in v1 (receivers reject non-zero)
 *  44    S symbol
 *  44+S  4 crc32c       over bytes [0, 44+S)
 * Datagram length is exactly SL_FRAME_OVERHEAD + S.
 */
#define SL_FRAME_OFF_MAGIC       0u    /* common to DATA and BEACON: */
#define SL_FRAME_OFF_VERSION     2u    /* the first 4 bytes say what */
#define SL_FRAME_OFF_TYPE        3u    /* the datagram is (sl_datagram_peek) */
#define SL_FRAME_OFF_CHANNEL     4u
#define SL_FRAME_OFF_SYMBOL_SIZE 6u
#define SL_FRAME_OFF_SESSION     8u
#define SL_FRAME_OFF_EPOCH       16u
#define SL_FRAME_OFF_BLOCK_SEQ   24u
#define SL_FRAME_OFF_KEY_ID      32u
#define SL_FRAME_OFF_K           40u
#define SL_FRAME_OFF_M           41u
#define SL_FRAME_OFF_INDEX       42u
#define SL_FRAME_OFF_FLAGS       43u
#define SL_FRAME_PREFIX_BYTES    4u    /* magic, version, type */
#define SL_FRAME_HDR_BYTES   44u
#define SL_FRAME_OVERHEAD    (SL_FRAME_HDR_BYTES + SL_CRC_BYTES)   /* 48 */
#define SL_SYMBOL_MIN        64u
#define SL_SYMBOL_MAX        8900u     /* jumbo frames */
#define SL_FEC_MAX_SYMBOLS   255u      /* k + m <= 255 (GF(2^8)) */
#define SL_IPV4_UDP_BYTES    28u       /* IPv4 (20) + UDP (8) headers */
/* Symbol size that fills an IP MTU: mtu - 28 - 48 (1500 -> 1424). */
#define SL_SYMBOL_FOR_MTU(mtu) ((mtu) - SL_IPV4_UDP_BYTES - SL_FRAME_OVERHEAD)
#define SL_FRAME_MIN_BYTES   (SL_FRAME_OVERHEAD + SL_SYMBOL_MIN)  /* 112 */
#define SL_FRAME_MAX_BYTES   (SL_FRAME_OVERHEAD + SL_SYMBOL_MAX)  /* 8948 */

/* The symbol-size and code-parameter rules every codec applies (DATA
 * frames, beacons, blocks): S within SL_SYMBOL_MIN..SL_SYMBOL_MAX; k >= 1,
 * m >= 1, k + m <= SL_FEC_MAX_SYMBOLS. */
static inline bool sl_wire_symbol_size_ok(unsigned s)
{
    return s >= SL_SYMBOL_MIN && s <= SL_SYMBOL_MAX;
}
static inline bool sl_wire_code_ok(unsigned k, unsigned m)
{
    return k >= 1 && m >= 1 && k + m <= SL_FEC_MAX_SYMBOLS;
}

/* ---- BLOCK: the FEC-protected, signed unit --------------------------------
 * off  size field
 *   0     2 magic        SL_BLOCK_MAGIC ("SB"; differs from datagram magic
 *                        so a block and a beacon can never verify as each other)
 *   2     1 version      SL_BLOCK_VERSION (2: the signature rule below)
 *   3     1 flags        0, or SL_BLOCK_FLAG_SPLIT
 *   4     2 channel      must equal the frames' channel
 *   6     2 split        0 without the flag; with it 1 <= split < L: where
 *                        the payload's digest splits (below)
 *   8     8 session      must equal the frames' session
 *  16     8 epoch        must equal the frames' epoch
 *  24     8 block_seq    must equal the frames' block_seq
 *  32     8 tx_time_us   TX wall clock at block close, µs since Unix epoch
 *  40     4 payload_len  L
 *  44     L payload      messages
 *  44+L  64 signature    Ed25519 over the 76 bytes header [0, 44) followed
 *                        by SHA-256(payload): hash-then-sign, so the costly
 *                        pass over a large block is one SHA-256 (SHA-NI)
 *                        instead of Ed25519's two SHA-512 passes. With
 *                        SL_BLOCK_FLAG_SPLIT the digest is instead
 *                        SHA-256(payload[0, split) || SHA-256(payload[split, L)))
 *                        so a file block's data (put last, at split) is
 *                        hashed once and that hash is also the leaf of the
 *                        file's tree digest (SL_MSG_FILE_END_TREE)
 *  108+L  . padding      zeros up to k*S; fewer than S bytes (k is minimal)
 */
#define SL_BLOCK_MAGIC       0x5342u
#define SL_BLOCK_OFF_MAGIC       0u
#define SL_BLOCK_OFF_VERSION     2u
#define SL_BLOCK_OFF_FLAGS       3u
#define SL_BLOCK_OFF_CHANNEL     4u
#define SL_BLOCK_OFF_RESERVED    6u
#define SL_BLOCK_OFF_SPLIT       6u    /* the reserved field, with SL_BLOCK_FLAG_SPLIT */
#define SL_BLOCK_FLAG_SPLIT      0x01u /* receivers older than the flag refuse such blocks (SL_ERR_HEADER) */
#define SL_BLOCK_OFF_SESSION     8u
#define SL_BLOCK_OFF_EPOCH       16u
#define SL_BLOCK_OFF_BLOCK_SEQ   24u
#define SL_BLOCK_OFF_TX_TIME     32u
#define SL_BLOCK_OFF_PAYLOAD_LEN 40u
/* The block has its own version: version 1 signed header and payload
 * directly (pure Ed25519 over [0, 44+L)); version 2 signs the header and the
 * payload's SHA-256. Datagram framing (SL_WIRE_VERSION) did not change. */
#define SL_BLOCK_VERSION     2u
#define SL_BLOCK_HDR_BYTES   44u
#define SL_BLOCK_DIGEST_BYTES 32u                                     /* SHA-256 */
#define SL_BLOCK_SIGNED_BYTES (SL_BLOCK_HDR_BYTES + SL_BLOCK_DIGEST_BYTES) /* 76 */
#define SL_BLOCK_OVERHEAD    (SL_BLOCK_HDR_BYTES + SL_SIG_BYTES)   /* 108 */
/* Largest block: k' <= 254 data symbols (m' >= 1) of at most SL_SYMBOL_MAX. */
#define SL_BLOCK_MAX_BYTES   ((SL_FEC_MAX_SYMBOLS - 1u) * SL_SYMBOL_MAX)  /* 2260600 */
#define SL_BLOCK_PAYLOAD_MAX (SL_BLOCK_MAX_BYTES - SL_BLOCK_OVERHEAD)

/* ---- BEACON: one small signed datagram every beacon_ms --------------------
 * off size field
 *   0    2 magic          SL_WIRE_MAGIC
 *   2    1 version        SL_WIRE_VERSION
 *   3    1 type           SL_FRAME_BEACON
 *   4    2 channel        0
 *   6    2 reserved       0
 *   8    8 session
 *  16    8 epoch
 *  24    8 key_id
 *  32    8 beacon_seq     increments per beacon within a session
 *  40    8 tx_time_us     TX wall clock, µs since Unix epoch
 *  48    8 highest_block  tag blocks fully sent: highest such block_seq + 1 (0 = none)
 *  56    2 symbol_size    S
 *  58    1 k
 *  59    1 m
 *  60    1 interleave     D
 *  61    1 flags          0 in v1
 *  62    2 reserved       0
 *  64    4 rate_kbps      configured link rate, kbit/s
 *  68   16 config_fp      BLAKE2b-128 of the TX configuration
 *  84   16 schema_fp      BLAKE2b-128 of the tag schema
 * 100    8 poll_errors    TX health counters (monotonic within a session)
 * 108    8 queue_drops
 * 116    8 blocks_sent
 * 124    8 frames_sent
 * 132   64 signature      Ed25519 over bytes [0, 132)
 * 196    4 crc32c         over bytes [0, 196)
 */
#define SL_BEACON_OFF_CHANNEL       4u   /* magic, version, type: SL_FRAME_OFF_* */
#define SL_BEACON_OFF_RESERVED1     6u
#define SL_BEACON_OFF_SESSION       8u
#define SL_BEACON_OFF_EPOCH         16u
#define SL_BEACON_OFF_KEY_ID        24u
#define SL_BEACON_OFF_SEQ           32u
#define SL_BEACON_OFF_TX_TIME       40u
#define SL_BEACON_OFF_HIGHEST_BLOCK 48u
#define SL_BEACON_OFF_SYMBOL_SIZE   56u
#define SL_BEACON_OFF_K             58u
#define SL_BEACON_OFF_M             59u
#define SL_BEACON_OFF_INTERLEAVE    60u
#define SL_BEACON_OFF_FLAGS         61u
#define SL_BEACON_OFF_RESERVED2     62u
#define SL_BEACON_OFF_RATE_KBPS     64u
#define SL_BEACON_OFF_CONFIG_FP     68u
#define SL_BEACON_OFF_SCHEMA_FP     84u
#define SL_BEACON_OFF_POLL_ERRORS   100u
#define SL_BEACON_OFF_QUEUE_DROPS   108u
#define SL_BEACON_OFF_BLOCKS_SENT   116u
#define SL_BEACON_OFF_FRAMES_SENT   124u
#define SL_BEACON_OFF_SIGNATURE     132u
#define SL_BEACON_OFF_CRC           196u
#define SL_BEACON_SIGNED_BYTES 132u
#define SL_BEACON_BYTES        200u

/* ---- messages inside a block payload --------------------------------------
 * Each message: type u8, flags u8 (0), body_len u16, body[body_len].
 * A payload is a sequence of whole messages, exactly consumed. Byte-level
 * tables, chunk rules and the sl_err of each rejection:
 * docs/protocol-messages.md; codec: sl_msg.h.
 */
#define SL_MSG_OFF_TYPE      0u
#define SL_MSG_OFF_FLAGS     1u
#define SL_MSG_OFF_LEN       2u
#define SL_MSG_HDR_BYTES     4u
#define SL_MSG_BODY_MAX      65535u    /* body_len is u16; bigger lists split */
#define SL_MSG_SCHEMA        1u
#define SL_MSG_KEYFRAME      2u
#define SL_MSG_DELTA         3u
#define SL_MSG_EVENT         4u
#define SL_MSG_DELTA_SEQ     5u        /* DELTA whose values carry their change seq */
#define SL_MSG_FILE_BEGIN    16u
#define SL_MSG_FILE_DATA     17u
#define SL_MSG_FILE_END      18u       /* digest: SHA-256 of the whole file */
#define SL_MSG_FILE_END_TREE 19u       /* same body; digest: the file's tree digest (below) */
#define SL_MSG_SYSLOG        32u
#define SL_MSG_HISTORY       48u       /* history channel: journal records (sl_hmsg.h) */

/* Value types (docs/protocol-messages.md §2). Raw value is carried as 64 bits: the value's
 * own bit pattern zero-extended (bool 0/1; int16/uint16 in the low 16 bits;
 * 32-bit types in the low 32; float32 as IEEE-754 bits), independent of the
 * PLC's word order, which the schema carries for the mirror. Zero-extended
 * exactly: int16 -2 is raw 0x000000000000FFFE, never sign-extended; a raw
 * with any bit set above the type's width is rejected (SL_ERR_RANGE). */
#define SL_TYPE_BOOL     1u
#define SL_TYPE_INT16    2u
#define SL_TYPE_UINT16   3u
#define SL_TYPE_INT32    4u
#define SL_TYPE_UINT32   5u
#define SL_TYPE_INT64    6u
#define SL_TYPE_FLOAT32  7u
#define SL_TYPE_FLOAT64  8u

/* Modbus registers a value of type occupies (bool: one bit, counted as 1);
 * 0 for an unknown type. The one width table: the schema check (sl_msg)
 * and the register codec (sl_regs_count) both read it. */
static inline unsigned sl_wire_type_regs(uint8_t type)
{
    switch (type) {
    case SL_TYPE_BOOL:
    case SL_TYPE_INT16:
    case SL_TYPE_UINT16:  return 1;
    case SL_TYPE_INT32:
    case SL_TYPE_UINT32:
    case SL_TYPE_FLOAT32: return 2;
    case SL_TYPE_INT64:
    case SL_TYPE_FLOAT64: return 4;
    default:              return 0;
    }
}

#define SL_REG_HOLDING   1u
#define SL_REG_INPUT     2u
#define SL_REG_COIL      3u
#define SL_REG_DISCRETE  4u

#define SL_WORD_ABCD     0u
#define SL_WORD_CDAB     1u
#define SL_WORD_BADC     2u
#define SL_WORD_DCBA     3u

/* Tag value entry, used by KEYFRAME and DELTA (25 bytes):
 *   0 4 tag_id   4 1 type   5 8 raw   13 4 quality (OPC UA StatusCode)
 *  17 8 source_time_us
 */
#define SL_VALUE_OFF_TAG     0u
#define SL_VALUE_OFF_TYPE    4u
#define SL_VALUE_OFF_RAW     5u
#define SL_VALUE_OFF_QUALITY 13u
#define SL_VALUE_OFF_TIME    17u
#define SL_VALUE_BYTES   25u
/* Most values one message can hold (body_len <= SL_MSG_BODY_MAX). */
#define SL_DELTA_VALUES_MAX    2621u  /* (65535 - 2) / 25 */
#define SL_KEYFRAME_VALUES_MAX 2620u  /* (65535 - 14) / 25 */

/* KEYFRAME and SCHEMA bodies open with the same 14-byte chunk header:
 *   0 4 id (keyframe_id / schema_id)   4 2 chunk   6 2 chunks
 *   8 4 total_tags   12 2 count */
#define SL_CHUNK_OFF_ID       0u
#define SL_CHUNK_OFF_CHUNK    4u
#define SL_CHUNK_OFF_CHUNKS   6u
#define SL_CHUNK_OFF_TOTAL    8u
#define SL_CHUNK_OFF_COUNT    12u
#define SL_CHUNK_HDR_BYTES    14u
/* KEYFRAME body: keyframe_id u32, chunk u16, chunks u16, total_tags u32,
 *                count u16, count * value entry. */
#define SL_KEYFRAME_HDR_BYTES SL_CHUNK_HDR_BYTES
/* DELTA body: count u16, count * value entry. */
#define SL_DELTA_OFF_COUNT    0u
#define SL_DELTA_HDR_BYTES    2u
/* DELTA_SEQ body: journal_id u64 (the TX journal the seqs belong to, random
 * at the journal's creation, never 0), count u16, then count * (value entry,
 * seq u64): seq is the TX change sequence number of that value (>= 1). TX
 * sends DELTA_SEQ instead of DELTA while its journal is on; RX applies both
 * to the mirror alike and hands DELTA_SEQ values to history. */
#define SL_DELTA_SEQ_OFF_JOURNAL 0u
#define SL_DELTA_SEQ_OFF_COUNT   8u
#define SL_DELTA_SEQ_HDR_BYTES   10u
#define SL_VALUE_SEQ_BYTES       (SL_VALUE_BYTES + 8u)   /* 33 */
#define SL_DELTA_SEQ_VALUES_MAX  1985u  /* (65535 - 10) / 33 */
/* SCHEMA body: schema_id u32 (low 32 bits of schema_fp), chunk u16,
 *   chunks u16, total_tags u32, count u16, then count * tag:
 *   tag_id u32, type u8, register u8, word_order u8, mirror_unit u8,
 *   address u16, scale f64 bits u64, offset f64 bits u64,
 *   name_len u8, name, path_len u8, path, units_len u8, units.
 * Strings are UTF-8 without control characters or NUL. */
#define SL_SCHEMA_HDR_BYTES   SL_CHUNK_HDR_BYTES
/* One schema tag: the fixed head, then name_len u8, name, path_len u8,
 * path, units_len u8, units. */
#define SL_TAG_OFF_ID          0u
#define SL_TAG_OFF_TYPE        4u
#define SL_TAG_OFF_REG         5u
#define SL_TAG_OFF_WORD_ORDER  6u
#define SL_TAG_OFF_MIRROR_UNIT 7u
#define SL_TAG_OFF_ADDRESS     8u
#define SL_TAG_OFF_SCALE       10u
#define SL_TAG_OFF_OFFSET      18u
#define SL_SCHEMA_TAG_HEAD    26u   /* 4+1+1+1+1+2+8+8, up to name_len */
#define SL_SCHEMA_TAG_FIXED   (SL_SCHEMA_TAG_HEAD + 3u)   /* 29: + 3 length bytes */
#define SL_NAME_MAX      64u
#define SL_PATH_MAX      128u
#define SL_UNITS_MAX     16u
#define SL_SCHEMA_TAG_MAX_BYTES 237u  /* fixed + longest name, path, units */
/* EVENT body: kind u8, mirror_unit u8, time_us u64, text_len u16, text. */
#define SL_EVENT_OFF_KIND     0u
#define SL_EVENT_OFF_UNIT     1u
#define SL_EVENT_OFF_TIME     2u
#define SL_EVENT_OFF_TEXT_LEN 10u
#define SL_EVENT_HDR_BYTES    12u
#define SL_EVENT_TEXT_MAX     256u
#define SL_EVENT_DEVICE_DOWN  1u
#define SL_EVENT_DEVICE_UP    2u
#define SL_EVENT_CONFIG       3u
#define SL_EVENT_TX_START     4u

/* File channel (SL_CHANNEL_FILES) bodies; codec sl_fmsg.h:
 *   FILE_BEGIN  0 4 file_id   4 8 size     12 1 name_len   13 name
 *   FILE_DATA   0 4 file_id   4 8 offset   12 data (body_len - 12 bytes, >= 1)
 *   FILE_END    0 4 file_id   4 8 size     12 32 sha256    44 1 name_len
 *               45 name
 *   FILE_END_TREE  the FILE_END body; its 32 bytes are the tree digest:
 *     SHA-256("SLUICE-FILE-TREE-1" (18 ASCII bytes) || u64be size ||
 *             for each FILE_DATA chunk in ascending offset:
 *             u64be offset || u32be len || SHA-256(chunk data))
 *     where the chunks cover [0, size) exactly, without gaps or overlaps
 *     (size 0: no chunks). The leaves depend only on the data and the
 *     chunking, not on file_id, so a repeat of the same file with the same
 *     block geometry has the same digest.
 * Names are 1..SL_FILE_NAME_MAX bytes without NUL. */
#define SL_FILE_OFF_ID          0u
#define SL_FILE_OFF_SIZE        4u    /* BEGIN, END */
#define SL_FILE_OFF_OFFSET      4u    /* DATA */
#define SL_FILE_BEGIN_OFF_NAME_LEN 12u
#define SL_FILE_END_OFF_SHA256  12u
#define SL_FILE_END_OFF_NAME_LEN 44u
#define SL_FILE_NAME_MAX        255u
#define SL_FILE_SHA256_BYTES    32u
#define SL_FILE_DATA_HDR        12u   /* file_id + offset */
#define SL_FILE_BEGIN_FIXED     13u   /* file_id + size + name_len */
#define SL_FILE_END_FIXED       45u   /* file_id + size + sha256 + name_len */
#define SL_FTREE_DOMAIN         "SLUICE-FILE-TREE-1"
#define SL_FTREE_DOMAIN_BYTES   18u
#define SL_FTREE_ENTRY_BYTES    44u   /* offset 8 + len 4 + leaf 32 */

/* Syslog channel (SL_CHANNEL_SYSLOG) body, one syslog message per SYSLOG
 * message, many per block (a batch); codec sl_logmsg.h:
 *   0 8 recv_time_us  TX wall clock when the message was taken in, µs
 *   8 16 addr         sender's address: IPv6, IPv4 as ::ffff:a.b.c.d
 *  24 2 port          sender's port
 *  26 1 transport     SL_SYSLOG_UDP | SL_SYSLOG_TCP
 *  27 1 flags         SL_SYSLOG_F_TRUNCATED; other bits 0 (rejected)
 *  28 text            the message as received, without its framing: 1 ..
 *                     SL_SYSLOG_TEXT_MAX bytes (body_len - 28)
 */
#define SL_SYSLOG_OFF_TIME      0u
#define SL_SYSLOG_OFF_ADDR      8u
#define SL_SYSLOG_OFF_PORT      24u
#define SL_SYSLOG_OFF_TRANSPORT 26u
#define SL_SYSLOG_OFF_FLAGS     27u
#define SL_SYSLOG_HDR_BYTES     28u
#define SL_SYSLOG_ADDR_BYTES    16u
#define SL_SYSLOG_TEXT_MAX      16384u   /* TX [syslog] max_message is at most this */
#define SL_SYSLOG_UDP           1u
#define SL_SYSLOG_TCP           2u
#define SL_SYSLOG_F_TRUNCATED   1u       /* longer than TX's max_message: the first part */

/* OPC UA StatusCodes used on the mirror (quality table: docs/mirror.md §1.1). */
#define SL_Q_GOOD                          0x00000000u
#define SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE 0x408F0000u
#define SL_Q_UNCERTAIN_LAST_USABLE         0x40900000u
#define SL_Q_BAD_COMM_ERROR                0x80050000u
#define SL_Q_BAD_NO_COMM                   0x80310000u
#define SL_Q_BAD_WAITING_INITIAL           0x80320000u

/* The offset tables agree with the sizes (each last field ends the layout). */
_Static_assert(SL_FRAME_OFF_FLAGS + 1u == SL_FRAME_HDR_BYTES, "DATA header layout");
_Static_assert(SL_BLOCK_OFF_PAYLOAD_LEN + 4u == SL_BLOCK_HDR_BYTES, "BLOCK header layout");
_Static_assert(SL_BEACON_OFF_FRAMES_SENT + 8u == SL_BEACON_SIGNED_BYTES &&
                   SL_BEACON_OFF_SIGNATURE == SL_BEACON_SIGNED_BYTES &&
                   SL_BEACON_OFF_CRC == SL_BEACON_SIGNED_BYTES + SL_SIG_BYTES &&
                   SL_BEACON_OFF_CRC + SL_CRC_BYTES == SL_BEACON_BYTES,
               "BEACON layout");
_Static_assert(SL_MSG_OFF_LEN + 2u == SL_MSG_HDR_BYTES, "message header layout");
_Static_assert(SL_VALUE_OFF_TIME + 8u == SL_VALUE_BYTES, "value entry layout");
_Static_assert(SL_CHUNK_OFF_COUNT + 2u == SL_CHUNK_HDR_BYTES, "chunk header layout");
_Static_assert(SL_TAG_OFF_OFFSET + 8u == SL_SCHEMA_TAG_HEAD, "schema tag layout");
_Static_assert(SL_SCHEMA_TAG_FIXED + SL_NAME_MAX + SL_PATH_MAX + SL_UNITS_MAX == SL_SCHEMA_TAG_MAX_BYTES,
               "longest schema tag");
_Static_assert(SL_EVENT_OFF_TEXT_LEN + 2u == SL_EVENT_HDR_BYTES, "EVENT layout");
_Static_assert(SL_DELTA_VALUES_MAX == (SL_MSG_BODY_MAX - SL_DELTA_HDR_BYTES) / SL_VALUE_BYTES &&
                   SL_KEYFRAME_VALUES_MAX == (SL_MSG_BODY_MAX - SL_KEYFRAME_HDR_BYTES) / SL_VALUE_BYTES,
               "values per message");
_Static_assert(SL_DELTA_SEQ_VALUES_MAX == (SL_MSG_BODY_MAX - SL_DELTA_SEQ_HDR_BYTES) / SL_VALUE_SEQ_BYTES,
               "values per DELTA_SEQ");
_Static_assert(SL_FILE_OFF_OFFSET + 8u == SL_FILE_DATA_HDR &&
                   SL_FILE_BEGIN_OFF_NAME_LEN + 1u == SL_FILE_BEGIN_FIXED &&
                   SL_FILE_END_OFF_SHA256 + SL_FILE_SHA256_BYTES == SL_FILE_END_OFF_NAME_LEN &&
                   SL_FILE_END_OFF_NAME_LEN + 1u == SL_FILE_END_FIXED,
               "FILE_* layouts");
_Static_assert(SL_SYSLOG_OFF_ADDR + SL_SYSLOG_ADDR_BYTES == SL_SYSLOG_OFF_PORT &&
                   SL_SYSLOG_OFF_FLAGS + 1u == SL_SYSLOG_HDR_BYTES &&
                   SL_SYSLOG_HDR_BYTES + SL_SYSLOG_TEXT_MAX <= SL_MSG_BODY_MAX,
               "SYSLOG layout");

#endif
