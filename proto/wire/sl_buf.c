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

sl_err sl_buf_get_u8(struct sl_buf *b, uint8_t *out)
{
    const uint8_t *p = take(b, 1);
    *out = p ? p[0] : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

sl_err sl_buf_get_u16be(struct sl_buf *b, uint16_t *out)
{
    const uint8_t *p = take(b, 2);
    *out = p ? sl_be16_get(p) : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

sl_err sl_buf_get_u32be(struct sl_buf *b, uint32_t *out)
{
    const uint8_t *p = take(b, 4);
    *out = p ? sl_be32_get(p) : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

sl_err sl_buf_get_u64be(struct sl_buf *b, uint64_t *out)
{
    const uint8_t *p = take(b, 8);
    *out = p ? sl_be64_get(p) : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

sl_err sl_buf_get_u16le(struct sl_buf *b, uint16_t *out)
{
    const uint8_t *p = take(b, 2);
    *out = p ? sl_le16_get(p) : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

sl_err sl_buf_get_u32le(struct sl_buf *b, uint32_t *out)
{
    const uint8_t *p = take(b, 4);
    *out = p ? sl_le32_get(p) : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

sl_err sl_buf_get_u64le(struct sl_buf *b, uint64_t *out)
{
    const uint8_t *p = take(b, 8);
    *out = p ? sl_le64_get(p) : 0;
    return p ? SL_OK : SL_ERR_TRUNCATED;
}

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

sl_err sl_wbuf_put_u8(struct sl_wbuf *w, uint8_t v)
{
    uint8_t *p = claim(w, 1);
    if (!p)
        return SL_ERR_OVERFLOW;
    p[0] = v;
    return SL_OK;
}

sl_err sl_wbuf_put_u16be(struct sl_wbuf *w, uint16_t v)
{
    uint8_t *p = claim(w, 2);
    if (!p)
        return SL_ERR_OVERFLOW;
    sl_be16_put(p, v);
    return SL_OK;
}

sl_err sl_wbuf_put_u32be(struct sl_wbuf *w, uint32_t v)
{
    uint8_t *p = claim(w, 4);
    if (!p)
        return SL_ERR_OVERFLOW;
    sl_be32_put(p, v);
    return SL_OK;
}

sl_err sl_wbuf_put_u64be(struct sl_wbuf *w, uint64_t v)
{
    uint8_t *p = claim(w, 8);
    if (!p)
        return SL_ERR_OVERFLOW;
    sl_be64_put(p, v);
    return SL_OK;
}

sl_err sl_wbuf_put_bytes(struct sl_wbuf *w, const void *src, size_t n)
{
    if (!room(w, n))
        return SL_ERR_OVERFLOW;
    if (n)
        memcpy(w->p + w->off, src, n);
    w->off += n;
    return SL_OK;
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
