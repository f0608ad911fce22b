/* Bounds-checked cursors. Every byte of untrusted input is read through an
 * sl_buf; every byte we emit is written through an sl_wbuf. Getters fail with
 * SL_ERR_TRUNCATED instead of over-reading and zero their output on failure;
 * putters fail with SL_ERR_OVERFLOW and write nothing. All integers on the
 * wire are big-endian; the little-endian getters are for foreign formats we
 * read (pcap file and record headers). A parse ends with sl_buf_end()
 * (exactly consumed). */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

struct sl_buf {
    const uint8_t *p;   /* first byte, not owned */
    size_t len;         /* total bytes */
    size_t off;         /* read position, always <= len */
};

struct sl_wbuf {
    uint8_t *p;         /* first byte, not owned */
    size_t cap;         /* capacity in bytes */
    size_t off;         /* bytes written, always <= cap */
};

static inline struct sl_buf sl_buf_make(const void *p, size_t len)
{
    struct sl_buf b = { (const uint8_t *)p, len, 0 };
    return b;
}

static inline struct sl_wbuf sl_wbuf_make(void *p, size_t cap)
{
    struct sl_wbuf w = { (uint8_t *)p, cap, 0 };
    return w;
}

static inline size_t sl_buf_left(const struct sl_buf *b) { return b->len - b->off; }
static inline size_t sl_wbuf_left(const struct sl_wbuf *w) { return w->cap - w->off; }

__attribute__((warn_unused_result)) sl_err sl_buf_get_u8(struct sl_buf *b, uint8_t *out);
__attribute__((warn_unused_result)) sl_err sl_buf_get_u16be(struct sl_buf *b, uint16_t *out);
__attribute__((warn_unused_result)) sl_err sl_buf_get_u32be(struct sl_buf *b, uint32_t *out);
__attribute__((warn_unused_result)) sl_err sl_buf_get_u64be(struct sl_buf *b, uint64_t *out);
__attribute__((warn_unused_result)) sl_err sl_buf_get_u16le(struct sl_buf *b, uint16_t *out);
__attribute__((warn_unused_result)) sl_err sl_buf_get_u32le(struct sl_buf *b, uint32_t *out);
__attribute__((warn_unused_result)) sl_err sl_buf_get_u64le(struct sl_buf *b, uint64_t *out);
/* Copies n bytes into out (n bytes of room). */
__attribute__((warn_unused_result)) sl_err sl_buf_get_bytes(struct sl_buf *b, void *out, size_t n);
/* Points *out at the next n bytes without copying; they stay owned by b. */
__attribute__((warn_unused_result)) sl_err sl_buf_get_ptr(struct sl_buf *b, const uint8_t **out, size_t n);
__attribute__((warn_unused_result)) sl_err sl_buf_skip(struct sl_buf *b, size_t n);
/* SL_OK only when every byte has been consumed, else SL_ERR_TRAILING. */
__attribute__((warn_unused_result)) sl_err sl_buf_end(const struct sl_buf *b);
/* A sub-cursor over the next n bytes; b advances past them. */
__attribute__((warn_unused_result)) sl_err sl_buf_sub(struct sl_buf *b, struct sl_buf *sub, size_t n);

__attribute__((warn_unused_result)) sl_err sl_wbuf_put_u8(struct sl_wbuf *w, uint8_t v);
__attribute__((warn_unused_result)) sl_err sl_wbuf_put_u16be(struct sl_wbuf *w, uint16_t v);
__attribute__((warn_unused_result)) sl_err sl_wbuf_put_u32be(struct sl_wbuf *w, uint32_t v);
__attribute__((warn_unused_result)) sl_err sl_wbuf_put_u64be(struct sl_wbuf *w, uint64_t v);
__attribute__((warn_unused_result)) sl_err sl_wbuf_put_bytes(struct sl_wbuf *w, const void *src, size_t n);
__attribute__((warn_unused_result)) sl_err sl_wbuf_put_zeros(struct sl_wbuf *w, size_t n);

/* Plain big-endian helpers for fixed offsets already bounds-checked. */
static inline void sl_be16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void sl_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void sl_be64_put(uint8_t *p, uint64_t v)
{
    sl_be32_put(p, (uint32_t)(v >> 32));
    sl_be32_put(p + 4, (uint32_t)v);
}
static inline uint16_t sl_be16_get(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t sl_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t sl_be64_get(const uint8_t *p)
{
    return ((uint64_t)sl_be32_get(p) << 32) | sl_be32_get(p + 4);
}
/* Plain little-endian readers for fixed offsets already bounds-checked. */
static inline uint16_t sl_le16_get(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t sl_le32_get(const uint8_t *p)
{
    return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t sl_le64_get(const uint8_t *p)
{
    return sl_le32_get(p) | ((uint64_t)sl_le32_get(p + 4) << 32);
}
/* Plain little-endian writers for fixed offsets of a buffer the caller sized
 * (the pcap file and record headers we write). */
static inline void sl_le16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void sl_le32_put(uint8_t *p, uint32_t v)
{
    sl_le16_put(p, (uint16_t)v);
    sl_le16_put(p + 2, (uint16_t)(v >> 16));
}
static inline void sl_le64_put(uint8_t *p, uint64_t v)
{
    sl_le32_put(p, (uint32_t)v);
    sl_le32_put(p + 4, (uint32_t)(v >> 32));
}

/* LEB128 varints (protobuf's encoding, the TX journal's records): 7 bits a
 * byte, least significant first, the top bit set on all but the last; at
 * most SL_VARINT_MAX bytes for 64 bits. */
#define SL_VARINT_MAX 10u
/* Writes v at p, which has room for SL_VARINT_MAX bytes (for encoders that
 * checked their room once); returns the bytes written. */
static inline size_t sl_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}
/* Reads a varint: SL_ERR_TRUNCATED when the input ends inside it,
 * SL_ERR_LENGTH when it encodes more than 64 bits (a tenth byte above 1,
 * or an eleventh); on failure *out is 0 and the cursor unmoved. Longer
 * encodings of a small value (0x80 0x00) are accepted, as protobuf does. */
__attribute__((warn_unused_result)) sl_err sl_buf_get_varint(struct sl_buf *b, uint64_t *out);

#endif
