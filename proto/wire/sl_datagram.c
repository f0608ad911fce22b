#include "sl_datagram.h"

#include <string.h>

#include "sl_buf.h"
#include "sl_crc.h"

_Static_assert(SL_FRAME_HDR_BYTES == 44, "DATA header layout");
_Static_assert(SL_BEACON_SIGNED_BYTES + SL_SIG_BYTES + SL_CRC_BYTES == SL_BEACON_BYTES, "BEACON layout");

sl_err sl_datagram_peek(uint8_t *type, const uint8_t *dg, size_t len)
{
    *type = 0;
    if (len < SL_FRAME_PREFIX_BYTES)
        return SL_ERR_TRUNCATED;
    if (sl_be16_get(dg + SL_FRAME_OFF_MAGIC) != SL_WIRE_MAGIC)
        return SL_ERR_MAGIC;
    if (dg[SL_FRAME_OFF_VERSION] != SL_WIRE_VERSION)
        return SL_ERR_VERSION;
    uint8_t t = dg[SL_FRAME_OFF_TYPE];
    if (t != SL_FRAME_DATA && t != SL_FRAME_BEACON)
        return SL_ERR_TYPE;
    *type = t;
    return SL_OK;
}

/* Reads the 4-byte prefix (magic, version, type) through b and checks it
 * against want: SL_ERR_MAGIC / SL_ERR_VERSION / SL_ERR_TYPE, or
 * SL_ERR_TRUNCATED if b is short (callers check the length first). */
static sl_err get_prefix(struct sl_buf *b, uint8_t want)
{
    uint16_t magic;
    uint8_t version, type;
    sl_err e = sl_buf_get_u16be(b, &magic);
    if (e == SL_OK && magic != SL_WIRE_MAGIC)
        return SL_ERR_MAGIC;
    if (e == SL_OK) e = sl_buf_get_u8(b, &version);
    if (e == SL_OK && version != SL_WIRE_VERSION)
        return SL_ERR_VERSION;
    if (e == SL_OK) e = sl_buf_get_u8(b, &type);
    if (e == SL_OK && type != want)
        return SL_ERR_TYPE;
    return e;
}

/* Writes the 4-byte prefix for a datagram of this type. */
static sl_err put_prefix(struct sl_wbuf *w, uint8_t type)
{
    sl_err e = sl_wbuf_put_u16be(w, SL_WIRE_MAGIC);
    if (e == SL_OK) e = sl_wbuf_put_u8(w, SL_WIRE_VERSION);
    if (e == SL_OK) e = sl_wbuf_put_u8(w, type);
    return e;
}

sl_err sl_datagram_data_encode(uint8_t *out, size_t cap, size_t *out_len, const struct sl_data_frame *f)
{
    *out_len = 0;
    if (f->channel >= SL_CHANNEL_COUNT || !sl_wire_symbol_size_ok(f->symbol_size) ||
        !sl_wire_code_ok(f->k, f->m) || (unsigned)f->index >= (unsigned)f->k + f->m)
        return SL_ERR_RANGE;
    size_t total = SL_FRAME_OVERHEAD + (size_t)f->symbol_size;
    if (cap < total)
        return SL_ERR_OVERFLOW;
    struct sl_wbuf w = sl_wbuf_make(out, SL_FRAME_HDR_BYTES);
    sl_err e = put_prefix(&w, SL_FRAME_DATA);
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, f->channel);
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, f->symbol_size);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, f->session);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, f->epoch);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, f->block_seq);
    if (e == SL_OK) e = sl_wbuf_put_bytes(&w, f->key_id, SL_KEY_ID_BYTES);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, f->k);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, f->m);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, f->index);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, 0);   /* flags */
    if (e != SL_OK || w.off != SL_FRAME_HDR_BYTES)
        return SL_ERR_OVERFLOW;   /* unreachable: the header is fixed-size */
    if (f->symbol != out + SL_FRAME_HDR_BYTES)
        memmove(out + SL_FRAME_HDR_BYTES, f->symbol, f->symbol_size);
    size_t covered = SL_FRAME_HDR_BYTES + (size_t)f->symbol_size;
    sl_be32_put(out + covered, sl_crc_compute(out, covered));
    *out_len = total;
    return SL_OK;
}

/* The body of sl_datagram_data_parse; the wrapper zeroes *f on failure. */
static sl_err data_parse(struct sl_data_frame *f, const uint8_t *dg, size_t len)
{
    if (len < SL_FRAME_MIN_BYTES)
        return SL_ERR_TRUNCATED;
    struct sl_buf b = sl_buf_make(dg, len);
    uint8_t flags;
    uint32_t crc;
    /* len >= SL_FRAME_MIN_BYTES covers the 44 header bytes, so the header
     * getters cannot fail; their results are still checked. */
    sl_err e = get_prefix(&b, SL_FRAME_DATA);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &f->channel);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &f->symbol_size);
    if (e != SL_OK)
        return e;
    if (f->channel >= SL_CHANNEL_COUNT || !sl_wire_symbol_size_ok(f->symbol_size))
        return SL_ERR_HEADER;
    if (len != SL_FRAME_OVERHEAD + (size_t)f->symbol_size)
        return SL_ERR_LENGTH;
    e = sl_buf_get_u64be(&b, &f->session);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &f->epoch);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &f->block_seq);
    if (e == SL_OK) e = sl_buf_get_bytes(&b, f->key_id, SL_KEY_ID_BYTES);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &f->k);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &f->m);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &f->index);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &flags);
    if (e != SL_OK)
        return e;
    if (!sl_wire_code_ok(f->k, f->m) || (unsigned)f->index >= (unsigned)f->k + f->m || flags != 0)
        return SL_ERR_HEADER;
    e = sl_buf_get_ptr(&b, &f->symbol, f->symbol_size);
    if (e == SL_OK) e = sl_buf_get_u32be(&b, &crc);
    if (e == SL_OK) e = sl_buf_end(&b);
    if (e != SL_OK)
        return e;
    if (crc != sl_crc_compute(dg, SL_FRAME_HDR_BYTES + (size_t)f->symbol_size))
        return SL_ERR_CRC;
    return SL_OK;
}

sl_err sl_datagram_data_parse(struct sl_data_frame *out, const uint8_t *dg, size_t len)
{
    sl_err e = data_parse(out, dg, len);
    if (e != SL_OK)
        memset(out, 0, sizeof *out);
    return e;
}

static int beacon_params_ok(const struct sl_beacon *b)
{
    return sl_wire_symbol_size_ok(b->symbol_size) && sl_wire_code_ok(b->k, b->m) && b->interleave >= 1;
}

sl_err sl_datagram_beacon_encode(uint8_t *out, size_t cap, const struct sl_beacon *b,
                                 const struct sl_signer *signer)
{
    if (!beacon_params_ok(b))
        return SL_ERR_RANGE;
    if (cap < SL_BEACON_BYTES)
        return SL_ERR_OVERFLOW;
    const struct sl_key_public pub = signer->pub;
    struct sl_wbuf w = sl_wbuf_make(out, SL_BEACON_SIGNED_BYTES);
    sl_err e = put_prefix(&w, SL_FRAME_BEACON);
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, 0);   /* channel */
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, 0);   /* reserved */
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->session);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->epoch);
    if (e == SL_OK) e = sl_wbuf_put_bytes(&w, pub.id, SL_KEY_ID_BYTES);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->beacon_seq);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->tx_time_us);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->highest_block);
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, b->symbol_size);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, b->k);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, b->m);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, b->interleave);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, 0);      /* flags */
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, 0);   /* reserved */
    if (e == SL_OK) e = sl_wbuf_put_u32be(&w, b->rate_kbps);
    if (e == SL_OK) e = sl_wbuf_put_bytes(&w, b->config_fp, SL_FP_BYTES);
    if (e == SL_OK) e = sl_wbuf_put_bytes(&w, b->schema_fp, SL_FP_BYTES);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->poll_errors);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->queue_drops);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->blocks_sent);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, b->frames_sent);
    if (e != SL_OK || w.off != SL_BEACON_SIGNED_BYTES)
        return SL_ERR_OVERFLOW;   /* unreachable: the layout is fixed-size */
    e = sl_signer_sign(signer, out + SL_BEACON_SIGNED_BYTES, out, SL_BEACON_SIGNED_BYTES);
    if (e != SL_OK)
        return e;
    size_t covered = SL_BEACON_SIGNED_BYTES + SL_SIG_BYTES;
    sl_be32_put(out + covered, sl_crc_compute(out, covered));
    return SL_OK;
}

/* The body of sl_datagram_beacon_open, filling *o as it goes; the wrapper
 * exposes it only on success. */
static sl_err beacon_open(struct sl_beacon *o, const uint8_t *dg, size_t len, const struct sl_key_set *trusted,
                          bool verify)
{
    if (len < SL_BEACON_BYTES)
        return SL_ERR_TRUNCATED;
    if (len > SL_BEACON_BYTES)
        return SL_ERR_LENGTH;
    struct sl_buf b = sl_buf_make(dg, len);
    uint16_t channel, reserved1, reserved2;
    uint8_t flags;
    const uint8_t *sig;
    uint32_t crc;
    /* The exact-length check above covers every getter below. */
    sl_err e = get_prefix(&b, SL_FRAME_BEACON);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &channel);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &reserved1);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->session);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->epoch);
    if (e == SL_OK) e = sl_buf_get_bytes(&b, o->key_id, SL_KEY_ID_BYTES);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->beacon_seq);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->tx_time_us);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->highest_block);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &o->symbol_size);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &o->k);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &o->m);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &o->interleave);
    if (e == SL_OK) e = sl_buf_get_u8(&b, &flags);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &reserved2);
    if (e == SL_OK) e = sl_buf_get_u32be(&b, &o->rate_kbps);
    if (e == SL_OK) e = sl_buf_get_bytes(&b, o->config_fp, SL_FP_BYTES);
    if (e == SL_OK) e = sl_buf_get_bytes(&b, o->schema_fp, SL_FP_BYTES);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->poll_errors);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->queue_drops);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->blocks_sent);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &o->frames_sent);
    if (e == SL_OK) e = sl_buf_get_ptr(&b, &sig, SL_SIG_BYTES);
    if (e == SL_OK) e = sl_buf_get_u32be(&b, &crc);
    if (e == SL_OK) e = sl_buf_end(&b);
    if (e != SL_OK)
        return e;
    if (crc != sl_crc_compute(dg, SL_BEACON_SIGNED_BYTES + SL_SIG_BYTES))
        return SL_ERR_CRC;
    if (channel != 0 || reserved1 != 0 || reserved2 != 0 || flags != 0 || !beacon_params_ok(o))
        return SL_ERR_HEADER;
    const struct sl_key_public *key;
    e = sl_key_set_signer(&key, trusted, o->key_id, sig);
    if (e != SL_OK || !verify)
        return e;
    return sl_key_verify(key, sig, dg, SL_BEACON_SIGNED_BYTES);
}

/* beacon_open into a scratch copy: *out gets the fields on SL_OK, zeroes
 * otherwise. */
static sl_err beacon_publish(struct sl_beacon *out, const uint8_t *dg, size_t len,
                             const struct sl_key_set *trusted, bool verify)
{
    struct sl_beacon tmp;
    memset(&tmp, 0, sizeof tmp);
    sl_err e = beacon_open(&tmp, dg, len, trusted, verify);
    if (e != SL_OK)
        memset(&tmp, 0, sizeof tmp);
    *out = tmp;
    return e;
}

sl_err sl_datagram_beacon_open(struct sl_beacon *out, const uint8_t *dg, size_t len,
                               const struct sl_key_set *trusted)
{
    return beacon_publish(out, dg, len, trusted, true);
}

sl_err sl_datagram_beacon_check(struct sl_beacon *out, const uint8_t *dg, size_t len,
                                const struct sl_key_set *trusted)
{
    return beacon_publish(out, dg, len, trusted, false);
}
