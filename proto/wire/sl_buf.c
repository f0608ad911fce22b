#include "sl_buf.h"

#include <string.h>

/* Bounds are checked as `n > len - off` (off <= len is an invariant), which
 * cannot wrap, never as `p + n > end`. */
static int have(const struct sl_buf *b, size_t n) { return n <= b->len - b->off; }
static int room(const struct sl_wbuf *w, size_t n) { return n <= w->cap - w->off; }

/* The next n bytes of b, consumed, or NULL (b unchanged) if fewer are left:
 * the one bounds check behind every fixed-size getter. */
static const uint8_t *take(struct sl_buf *b, size_t n)
{
    if (!have(b, n))
        return NULL;
    const uint8_t *p = b->p + b->off;
    b->off += n;
    return p;
}

/* The next n bytes of w to fill, claimed, or NULL (w unchanged). */
static uint8_t *claim(struct sl_wbuf *w, size_t n)
{
    if (!room(w, n))
        return NULL;
    uint8_t *p = w->p + w->off;
    w->off += n;
    return p;
}

/* The fixed-size getters differ only in width and byte order: each takes
 * n bytes or fails (output zeroed, cursor unmoved), then decodes them. */
#define GETTER(name, type, n, decode)                  \
    sl_err name(struct sl_buf *b, type *out)           \
    {                                                  \
        const uint8_t *p = take(b, n);                 \
        *out = p ? decode(p) : 0;                      \
        return p ? SL_OK : SL_ERR_TRUNCATED;           \
    }

static inline uint8_t u8_get(const uint8_t *p) { return p[0]; }

GETTER(sl_buf_get_u8, uint8_t, 1, u8_get)
GETTER(sl_buf_get_u16be, uint16_t, 2, sl_be16_get)
GETTER(sl_buf_get_u32be, uint32_t, 4, sl_be32_get)
GETTER(sl_buf_get_u64be, uint64_t, 8, sl_be64_get)
GETTER(sl_buf_get_u16le, uint16_t, 2, sl_le16_get)
GETTER(sl_buf_get_u32le, uint32_t, 4, sl_le32_get)
GETTER(sl_buf_get_u64le, uint64_t, 8, sl_le64_get)

sl_err sl_buf_get_bytes(struct sl_buf *b, void *out, size_t n)
{
    if (!have(b, n)) {
        if (n)
            memset(out, 0, n);
        return SL_ERR_TRUNCATED;
    }
    if (n)
        memcpy(out, b->p + b->off, n);
    b->off += n;
    return SL_OK;
}

sl_err sl_buf_get_ptr(struct sl_buf *b, const uint8_t **out, size_t n)
{
    if (!have(b, n)) {
        *out = NULL;
        return SL_ERR_TRUNCATED;
    }
    *out = b->p + b->off;
    b->off += n;
    return SL_OK;
}

sl_err sl_buf_skip(struct sl_buf *b, size_t n)
{
    if (!have(b, n))
        return SL_ERR_TRUNCATED;
    b->off += n;
    return SL_OK;
}

sl_err sl_buf_end(const struct sl_buf *b)
{
    return b->off == b->len ? SL_OK : SL_ERR_TRAILING;
}

sl_err sl_buf_sub(struct sl_buf *b, struct sl_buf *sub, size_t n)
{
    if (!have(b, n)) {
        *sub = sl_buf_make(NULL, 0);
        return SL_ERR_TRUNCATED;
    }
    *sub = sl_buf_make(b->p + b->off, n);
    b->off += n;
    return SL_OK;
}

/* The fixed-size putters: claim n bytes or fail (nothing written), then
 * encode into them. */
#define PUTTER(name, type, n, encode)                  \
    sl_err name(struct sl_wbuf *w, type v)             \
    {                                                  \
        uint8_t *p = claim(w, n);                      \
        if (!p)                                        \
            return SL_ERR_OVERFLOW;                    \
        encode(p, v);                                  \
        return SL_OK;                                  \
    }

static inline void u8_put(uint8_t *p, uint8_t v) { p[0] = v; }

PUTTER(sl_wbuf_put_u8, uint8_t, 1, u8_put)
PUTTER(sl_wbuf_put_u16be, uint16_t, 2, sl_be16_put)
PUTTER(sl_wbuf_put_u32be, uint32_t, 4, sl_be32_put)
PUTTER(sl_wbuf_put_u64be, uint64_t, 8, sl_be64_put)

sl_err sl_wbuf_put_bytes(struct sl_wbuf *w, const void *src, size_t n)
{
    if (!room(w, n))
        return SL_ERR_OVERFLOW;
    if (n)
        memcpy(w->p + w->off, src, n);
    w->off += n;
    return SL_OK;
}

sl_err sl_buf_get_varint(struct sl_buf *b, uint64_t *out)
{
    uint64_t v = 0;
    *out = 0;
    for (size_t i = 0; i < SL_VARINT_MAX; i++) {
        if (!have(b, i + 1))
            return SL_ERR_TRUNCATED;
        uint8_t c = b->p[b->off + i];
        if (i == SL_VARINT_MAX - 1 && c > 1)
            return SL_ERR_LENGTH;
        v |= (uint64_t)(c & 0x7F) << (7 * i);
        if (!(c & 0x80)) {
            b->off += i + 1;
            *out = v;
            return SL_OK;
        }
    }
    return SL_ERR_LENGTH;
}

sl_err sl_wbuf_put_zeros(struct sl_wbuf *w, size_t n)
{
    if (!room(w, n))
        return SL_ERR_OVERFLOW;
    if (n)
        memset(w->p + w->off, 0, n);
    w->off += n;
    return SL_OK;
}
