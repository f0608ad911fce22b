#include "sl_buf.h"

#include <string.h>

/* Bounds are checked as `n > len - off` (off <= len is an invariant), which
 * cannot wrap, never as `p + n > end`. */
static int have(const struct sl_buf *b, size_t n) { return n <= b->len - b->off; }
static int room(const struct sl_wbuf *w, size_t n) { return n <= w->cap - w->off; }

sl_err sl_buf_get_u8(struct sl_buf *b, uint8_t *out)
{
    if (!have(b, 1)) {
        *out = 0;
        return SL_ERR_TRUNCATED;
    }
    *out = b->p[b->off++];
    return SL_OK;
}

sl_err sl_buf_get_u16be(struct sl_buf *b, uint16_t *out)
{
    if (!have(b, 2)) {
        *out = 0;
        return SL_ERR_TRUNCATED;
    }
    *out = sl_be16_get(b->p + b->off);
    b->off += 2;
    return SL_OK;
}

sl_err sl_buf_get_u32be(struct sl_buf *b, uint32_t *out)
{
    if (!have(b, 4)) {
        *out = 0;
        return SL_ERR_TRUNCATED;
    }
    *out = sl_be32_get(b->p + b->off);
    b->off += 4;
    return SL_OK;
}

sl_err sl_buf_get_u64be(struct sl_buf *b, uint64_t *out)
{
    if (!have(b, 8)) {
        *out = 0;
        return SL_ERR_TRUNCATED;
    }
    *out = sl_be64_get(b->p + b->off);
    b->off += 8;
    return SL_OK;
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
    if (!room(w, 1))
        return SL_ERR_OVERFLOW;
    w->p[w->off++] = v;
    return SL_OK;
}

sl_err sl_wbuf_put_u16be(struct sl_wbuf *w, uint16_t v)
{
    if (!room(w, 2))
        return SL_ERR_OVERFLOW;
    sl_be16_put(w->p + w->off, v);
    w->off += 2;
    return SL_OK;
}

sl_err sl_wbuf_put_u32be(struct sl_wbuf *w, uint32_t v)
{
    if (!room(w, 4))
        return SL_ERR_OVERFLOW;
    sl_be32_put(w->p + w->off, v);
    w->off += 4;
    return SL_OK;
}

sl_err sl_wbuf_put_u64be(struct sl_wbuf *w, uint64_t v)
{
    if (!room(w, 8))
        return SL_ERR_OVERFLOW;
    sl_be64_put(w->p + w->off, v);
    w->off += 8;
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
