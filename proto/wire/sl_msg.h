/* Tag channel message codecs: SCHEMA, KEYFRAME, DELTA and EVENT inside a
 * block payload (layouts in sl_wire.h, byte by byte in
 * docs/protocol-messages.md).
 *
 * Encoding: a writer over the caller's payload buffer. Every append fits
 * what it can and never exceeds the capacity; when not even one item fits
 * it returns SL_ERR_CAPACITY and leaves the buffer untouched, so the caller
 * closes the block and retries in the next one. Encoders validate their
 * input with the same rules the decoders apply, so TX can never emit a
 * message RX would refuse.
 *
 * Decoding: sl_msg_reader_init() checks a whole payload up front (framing,
 * every length, every value and tag); only then does sl_msg_next() hand out
 * messages, and the value and tag iterators cannot fail midway. A payload
 * that fails the check yields no message at all. Nothing is allocated and
 * nothing is copied per value: iterators read the caller's bytes in place,
 * which must outlive the reader.
 *
 * Pure code: no I/O, no clock, no global state. */
#ifndef SL_MSG_H
#define SL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_wire.h"

/* One tag value, as carried by KEYFRAME and DELTA. */
struct sl_value {
    uint32_t tag_id;
    uint8_t type;              /* SL_TYPE_* */
    uint64_t raw;              /* bit pattern, zero-extended to 64 bits (sl_wire.h) */
    uint32_t quality;          /* OPC UA StatusCode, passed through as-is */
    uint64_t source_time_us;   /* TX poll time, µs since the Unix epoch */
    uint64_t seq;              /* TX change seq (DELTA_SEQ only, >= 1); 0 elsewhere */
};

/* One SCHEMA entry: what RX needs to mirror a tag without a tag map of its
 * own. Strings are NUL-terminated UTF-8 without control characters. */
struct sl_schema_tag {
    uint32_t tag_id;
    uint8_t type;              /* SL_TYPE_* */
    uint8_t reg;               /* SL_REG_*: coil/discrete hold bool and only bool */
    uint8_t word_order;        /* SL_WORD_*: ABCD for one-register and bit types */
    uint8_t mirror_unit;       /* Modbus unit id the mirror serves the tag at */
    uint16_t address;          /* 0-based protocol address of the first register/bit */
    double scale;              /* engineering value = number(raw) * scale + offset */
    double offset;             /* both finite */
    char name[SL_NAME_MAX + 1];     /* 1..SL_NAME_MAX bytes */
    char path[SL_PATH_MAX + 1];     /* 0..SL_PATH_MAX bytes, ISA-95 path */
    char units[SL_UNITS_MAX + 1];   /* 0..SL_UNITS_MAX bytes */
};

/* ---- validation ---------------------------------------------------------- */

/* SL_OK when v can cross the wire: SL_ERR_TYPE for an unknown type,
 * SL_ERR_RANGE when raw has bits above the type's width (bool: only 0 or 1).
 * Floats pass with any bit pattern (NaN included): the mirror must stay
 * bit-identical to the PLC. O(1). */
__attribute__((warn_unused_result))
sl_err sl_msg_value_check(const struct sl_value *v);

/* SL_OK when t can cross the wire: known type (else SL_ERR_TYPE); known
 * register and word order; coil/discrete exactly when the type is bool;
 * word order ABCD unless the type spans several registers; the last
 * register within 0..65535; finite scale and offset; strings within their
 * limits, valid UTF-8 without C0/C1 controls or DEL, name not empty (all
 * SL_ERR_RANGE). O(string length). */
__attribute__((warn_unused_result))
sl_err sl_msg_tag_check(const struct sl_schema_tag *t);

/* ---- sizing -------------------------------------------------------------- */

/* Values one DELTA / KEYFRAME message can carry in cap bytes (header
 * included), at most SL_DELTA_VALUES_MAX / SL_KEYFRAME_VALUES_MAX; 0 when
 * not even one fits. TX uses these to size keyframe chunks per block. */
size_t sl_msg_delta_fit(size_t cap);
size_t sl_msg_keyframe_fit(size_t cap);
/* Values one DELTA_SEQ message can carry in cap bytes (header included), at
 * most SL_DELTA_SEQ_VALUES_MAX; 0 when not even one fits. */
size_t sl_msg_delta_seq_fit(size_t cap);

/* Encoded size of one schema tag (SL_SCHEMA_TAG_FIXED + string lengths),
 * at most SL_SCHEMA_TAG_MAX_BYTES for a valid tag. O(string length). */
size_t sl_msg_tag_bytes(const struct sl_schema_tag *t);

/* Leading tags of tags[0..n) one SCHEMA message can carry in cap bytes
 * (header included); 0 when not even the first fits. Does not validate. */
size_t sl_msg_schema_fit(size_t cap, const struct sl_schema_tag *tags, size_t n);

/* ---- writer -------------------------------------------------------------- */

struct sl_msg_writer {
    uint8_t *p;     /* payload buffer, not owned */
    size_t cap;     /* payload capacity in bytes */
    size_t off;     /* bytes written so far: the payload length */
};

/* Starts an empty payload over buf[0..cap). buf stays owned by the caller. */
void sl_msg_writer_init(struct sl_msg_writer *w, void *buf, size_t cap);

/* Appends one DELTA holding values[0..*taken): as many of the n values as
 * fit in the space left (and in one message). *taken >= 1 on SL_OK.
 * SL_ERR_CAPACITY when not even one fits, SL_ERR_RANGE when n == 0, or the
 * error of the first invalid value among those that would be taken; on any
 * error nothing is written and *taken is 0. O(taken). */
__attribute__((warn_unused_result))
sl_err sl_msg_put_delta(struct sl_msg_writer *w, size_t *taken,
                        const struct sl_value *values, size_t n);

/* Appends one DELTA_SEQ: as sl_msg_put_delta, and each value's seq (>= 1,
 * below SL_HREC_SEQ_LIMIT, else SL_ERR_RANGE) rides with it. journal_id is
 * the TX journal's id (non-zero, else SL_ERR_RANGE). O(taken). */
__attribute__((warn_unused_result))
sl_err sl_msg_put_delta_seq(struct sl_msg_writer *w, size_t *taken, uint64_t journal_id,
                            const struct sl_value *values, size_t n);

/* Appends one KEYFRAME chunk: header (keyframe_id, chunk of chunks,
 * total_tags) and as many of values[0..n) as fit. Arguments must describe
 * a valid chunk (chunks >= 1, chunk < chunks, n <= total_tags, n >= 1
 * unless total_tags == 0, which needs chunks == 1, chunks <= total_tags
 * otherwise), else SL_ERR_RANGE. An empty keyframe (total_tags 0, n 0)
 * writes a header-only chunk. Errors and *taken as for sl_msg_put_delta.
 * O(taken). */
__attribute__((warn_unused_result))
sl_err sl_msg_put_keyframe(struct sl_msg_writer *w, size_t *taken, uint32_t keyframe_id,
                           uint16_t chunk, uint16_t chunks, uint32_t total_tags,
                           const struct sl_value *values, size_t n);

/* Appends one SCHEMA chunk with as many of tags[0..n) as fit; chunk rules
 * and errors as for sl_msg_put_keyframe (tags validated with
 * sl_msg_tag_check). schema_id is the low 32 bits of the schema
 * fingerprint. O(bytes taken). */
__attribute__((warn_unused_result))
sl_err sl_msg_put_schema(struct sl_msg_writer *w, size_t *taken, uint32_t schema_id,
                         uint16_t chunk, uint16_t chunks, uint32_t total_tags,
                         const struct sl_schema_tag *tags, size_t n);

/* Appends one EVENT, all or nothing: kind SL_EVENT_*, the device's
 * mirror_unit (0 when not about a device), time in µs since the Unix epoch
 * and text[0..text_len) (UTF-8, no controls, <= SL_EVENT_TEXT_MAX; text may
 * be NULL when text_len is 0). SL_ERR_RANGE for a bad argument,
 * SL_ERR_CAPACITY when it does not fit; nothing written on error. */
__attribute__((warn_unused_result))
sl_err sl_msg_put_event(struct sl_msg_writer *w, uint8_t kind, uint8_t mirror_unit,
                        uint64_t time_us, const char *text, size_t text_len);

/* ---- decoded views ------------------------------------------------------- */

/* Values of a validated KEYFRAME, DELTA or DELTA_SEQ, read in place. */
struct sl_value_iter {
    const uint8_t *p;   /* first entry, inside the caller's payload */
    uint16_t count;     /* entries in the message */
    uint16_t pos;       /* next entry */
    uint16_t stride;    /* bytes per entry: SL_VALUE_BYTES, or SL_VALUE_SEQ_BYTES
                         * when each entry ends with its seq */
};

/* Tags of a validated SCHEMA, read in place. */
struct sl_tag_iter {
    struct sl_buf b;    /* the tag list, inside the caller's payload */
    uint16_t count;     /* tags in the message */
    uint16_t pos;       /* next tag */
};

/* DELTA and DELTA_SEQ (journal_id 0 for DELTA; the iterator fills seq). */
struct sl_msg_delta {
    uint64_t journal_id;
    struct sl_value_iter values;
};

struct sl_msg_keyframe {
    uint32_t keyframe_id;
    uint16_t chunk, chunks;
    uint32_t total_tags;
    struct sl_value_iter values;
};

struct sl_msg_schema {
    uint32_t schema_id;
    uint16_t chunk, chunks;
    uint32_t total_tags;
    struct sl_tag_iter tags;
};

struct sl_msg_event {
    uint8_t kind;                       /* SL_EVENT_* */
    uint8_t mirror_unit;
    uint64_t time_us;
    uint16_t text_len;
    char text[SL_EVENT_TEXT_MAX + 1];   /* copied, NUL-terminated */
};

/* One decoded message: type selects the member of u. */
struct sl_msg {
    uint8_t type;       /* SL_MSG_SCHEMA .. SL_MSG_DELTA_SEQ; DELTA_SEQ uses u.delta */
    union {
        struct sl_msg_schema schema;
        struct sl_msg_keyframe keyframe;
        struct sl_msg_delta delta;
        struct sl_msg_event event;
    } u;
};

/* Next value / tag into *out; false (and *out zeroed) at the end. Cannot
 * fail on a view produced by a successful decode. O(1) per value, O(string
 * length) per tag. */
bool sl_msg_value_next(struct sl_value_iter *it, struct sl_value *out);
bool sl_msg_tag_next(struct sl_tag_iter *it, struct sl_schema_tag *out);

/* Writes the 4-byte message header (type, flags 0, body_len) at p, which
 * the caller has checked has room for it and the body; body_len is at most
 * SL_MSG_BODY_MAX. The inverse of sl_msg_split; the file channel's encoder
 * (sl_fmsg.h) frames its messages with it too. */
void sl_msg_put_hdr(uint8_t *p, uint8_t type, size_t body_len);

/* ---- decoders ------------------------------------------------------------ */

/* Splits the next message off b: checks the 4-byte header (flags 0, else
 * SL_ERR_HEADER; SL_ERR_TRUNCATED when the header or body_len bytes are not
 * all there) and points *body into b. The type is not judged here, so the
 * file channel can frame its own messages. b does not move on error. */
__attribute__((warn_unused_result))
sl_err sl_msg_split(struct sl_buf *b, uint8_t *type, const uint8_t **body, size_t *body_len);

/* Body decoders (body = the body_len bytes after the message header).
 * Each checks the body completely before returning SL_OK, in this order:
 * SL_ERR_TRUNCATED (shorter than the fixed header), SL_ERR_LENGTH (a count
 * or string length runs past the end), SL_ERR_TRAILING (bytes left after
 * the last item), SL_ERR_HEADER (chunk fields inconsistent: chunks 0,
 * chunk >= chunks, count > total_tags, an empty DELTA...), then each item:
 * SL_ERR_TYPE (unknown value type), SL_ERR_RANGE (raw, register, word
 * order, string, kind out of range). *out is zeroed on error. Views point
 * into body. O(body_len), no allocation. */
__attribute__((warn_unused_result))
sl_err sl_msg_decode_delta(struct sl_msg_delta *out, const uint8_t *body, size_t len);
/* DELTA_SEQ: as DELTA, plus journal_id 0 is SL_ERR_HEADER and a value's
 * seq of 0 or at/above SL_HREC_SEQ_LIMIT is SL_ERR_RANGE. */
__attribute__((warn_unused_result))
sl_err sl_msg_decode_delta_seq(struct sl_msg_delta *out, const uint8_t *body, size_t len);
__attribute__((warn_unused_result))
sl_err sl_msg_decode_keyframe(struct sl_msg_keyframe *out, const uint8_t *body, size_t len);
__attribute__((warn_unused_result))
sl_err sl_msg_decode_schema(struct sl_msg_schema *out, const uint8_t *body, size_t len);
__attribute__((warn_unused_result))
sl_err sl_msg_decode_event(struct sl_msg_event *out, const uint8_t *body, size_t len);

/* ---- payload reader ------------------------------------------------------ */

struct sl_msg_reader {
    struct sl_buf b;    /* the payload; empty after a failed init */
};

/* Checks the whole tag channel payload[0..len) (any type other than
 * SCHEMA/KEYFRAME/DELTA/EVENT/DELTA_SEQ is SL_ERR_TYPE) and readies r to hand out
 * its messages. On error r holds nothing, so no message of a bad payload is
 * ever returned. An empty payload is valid. payload stays owned by the
 * caller and must outlive r and every view. O(len). */
__attribute__((warn_unused_result))
sl_err sl_msg_reader_init(struct sl_msg_reader *r, const void *payload, size_t len);

/* Next message of a checked payload into *out; false (and *out zeroed) at
 * the end. Headers only are parsed again (the body was checked by init), so
 * this is O(1) except an EVENT's text copy. */
bool sl_msg_next(struct sl_msg_reader *r, struct sl_msg *out);

#endif
