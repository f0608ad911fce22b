#include "sl_mbreq.h"

#include <string.h>

#include "sl_buf.h"

sl_err sl_mbreq_frame(size_t *adu_len, const uint8_t *p, size_t len)
{
    *adu_len = 0;
    struct sl_buf b = sl_buf_make(p, len);
    uint16_t tid, pid, mlen;
    /* The first six bytes decide everything: without them, wait. */
    if (sl_buf_get_u16be(&b, &tid) != SL_OK || sl_buf_get_u16be(&b, &pid) != SL_OK ||
        sl_buf_get_u16be(&b, &mlen) != SL_OK)
        return SL_ERR_AGAIN;
    if (pid != 0)
        return SL_ERR_HEADER;
    if (mlen < SL_MB_LEN_MIN || mlen > SL_MB_LEN_MAX)
        return SL_ERR_LENGTH;
    *adu_len = SL_MB_LEN_OFFSET + (size_t)mlen;
    if (mlen > sl_buf_left(&b))
        return SL_ERR_AGAIN;
    return SL_OK;
}

static bool is_write(uint8_t fc)
{
    return fc == SL_MB_FC_WRITE_COIL || fc == SL_MB_FC_WRITE_REGISTER ||
           fc == SL_MB_FC_WRITE_COILS || fc == SL_MB_FC_WRITE_REGISTERS ||
           fc == SL_MB_FC_MASK_WRITE || fc == SL_MB_FC_READ_WRITE;
}

sl_err sl_mbreq_parse(struct sl_mbreq *out, const uint8_t *adu, size_t len)
{
    memset(out, 0, sizeof *out);
    if (len > SL_MB_ADU_MAX)
        return SL_ERR_LENGTH;
    struct sl_buf b = sl_buf_make(adu, len);
    uint16_t pid, mlen;
    if (sl_buf_get_u16be(&b, &out->tid) != SL_OK || sl_buf_get_u16be(&b, &pid) != SL_OK ||
        sl_buf_get_u16be(&b, &mlen) != SL_OK)
        return SL_ERR_TRUNCATED;
    if (pid != 0)
        return SL_ERR_HEADER;
    if (mlen < SL_MB_LEN_MIN || mlen > SL_MB_LEN_MAX || mlen != sl_buf_left(&b))
        return SL_ERR_LENGTH;
    if (sl_buf_get_u8(&b, &out->unit) != SL_OK || sl_buf_get_u8(&b, &out->fc) != SL_OK)
        return SL_ERR_TRUNCATED;

    uint16_t max;
    switch (out->fc) {
    case SL_MB_FC_READ_COILS:
    case SL_MB_FC_READ_DISCRETE:
        max = SL_MB_MAX_BITS;
        break;
    case SL_MB_FC_READ_HOLDING:
    case SL_MB_FC_READ_INPUT:
        max = SL_MB_MAX_REGS;
        break;
    default:
        /* Writes are refused without looking at their data: nothing on the
         * IT side can act on the mirror, so there is nothing to validate. */
        out->write = is_write(out->fc);
        out->exception = SL_MB_EX_ILLEGAL_FUNCTION;
        return SL_OK;
    }
    /* A read PDU is exactly fc, address, count: anything else is malformed
     * data, which Modbus answers with ILLEGAL DATA VALUE. */
    if (sl_buf_left(&b) != 4) {
        out->exception = SL_MB_EX_ILLEGAL_VALUE;
        return SL_OK;
    }
    if (sl_buf_get_u16be(&b, &out->addr) != SL_OK || sl_buf_get_u16be(&b, &out->count) != SL_OK ||
        sl_buf_end(&b) != SL_OK)
        return SL_ERR_TRUNCATED;
    /* Spec order: quantity first (0x03), then the address range (0x02). */
    if (out->count == 0 || out->count > max)
        out->exception = SL_MB_EX_ILLEGAL_VALUE;
    else if ((uint32_t)out->addr + out->count > 0x10000u)
        out->exception = SL_MB_EX_ILLEGAL_ADDRESS;
    return SL_OK;
}

sl_err sl_mbreq_exception(uint8_t *out, size_t cap, size_t *out_len, const struct sl_mbreq *req,
                          uint8_t code)
{
    *out_len = 0;
    struct sl_wbuf w = sl_wbuf_make(out, cap);
    if (cap < SL_MB_EXC_BYTES)
        return SL_ERR_OVERFLOW;
    if (sl_wbuf_put_u16be(&w, req->tid) != SL_OK || sl_wbuf_put_u16be(&w, 0) != SL_OK ||
        sl_wbuf_put_u16be(&w, 3) != SL_OK || sl_wbuf_put_u8(&w, req->unit) != SL_OK ||
        sl_wbuf_put_u8(&w, (uint8_t)(req->fc | 0x80u)) != SL_OK ||
        sl_wbuf_put_u8(&w, code) != SL_OK)
        return SL_ERR_OVERFLOW;
    *out_len = w.off;
    return SL_OK;
}
