/* DATA frames and BEACONs: round trips, and every class of bad input maps to
 * its error (every bit flipped, every truncation, each header field). */
#include <string.h>

#include "proto_fixture.h"
#include "sl_buf.h"
#include "sl_crc.h"
#include "sl_datagram.h"
#include "sl_test.h"

static void fx_frame(struct sl_data_frame *f, const uint8_t *symbol, const struct sl_key_secret *k)
{
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    memset(f, 0, sizeof *f);
    f->channel = SL_CHANNEL_TAGS;
    f->symbol_size = FX_SYMBOL_SIZE;
    f->session = FX_SESSION;
    f->epoch = FX_EPOCH;
    f->block_seq = FX_BLOCK_SEQ;
    memcpy(f->key_id, pub.id, SL_KEY_ID_BYTES);
    f->k = FX_K;
    f->m = FX_M;
    f->index = 0;
    f->symbol = symbol;
}

/* Recomputes the trailing CRC of a datagram after a deliberate edit. */
static void fix_crc(uint8_t *dg, size_t len)
{
    sl_be32_put(dg + len - 4, sl_crc_compute(dg, len - 4));
}

SL_TEST(frame, roundtrip)
{
    struct sl_key_secret *k = fx_key();
    uint8_t sym[FX_SYMBOL_SIZE];
    for (unsigned i = 0; i < sizeof sym; i++)
        sym[i] = (uint8_t)(i * 7u);
    struct sl_data_frame f, g;
    fx_frame(&f, sym, k);
    f.index = 3;
    uint8_t dg[SL_FRAME_OVERHEAD + FX_SYMBOL_SIZE];
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_encode(dg, sizeof dg, &len, &f), SL_OK);
    CU_ASSERT_EQUAL(len, sizeof dg);
    uint8_t type = 0;
    CU_ASSERT_EQUAL(sl_datagram_peek(&type, dg, len), SL_OK);
    CU_ASSERT_EQUAL(type, SL_FRAME_DATA);
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_parse(&g, dg, len), SL_OK);
    CU_ASSERT_EQUAL(g.channel, f.channel);
    CU_ASSERT_EQUAL(g.symbol_size, f.symbol_size);
    CU_ASSERT_EQUAL(g.session, f.session);
    CU_ASSERT_EQUAL(g.epoch, f.epoch);
    CU_ASSERT_EQUAL(g.block_seq, f.block_seq);
    CU_ASSERT_EQUAL(memcmp(g.key_id, f.key_id, SL_KEY_ID_BYTES), 0);
    CU_ASSERT_EQUAL(g.k, f.k);
    CU_ASSERT_EQUAL(g.m, f.m);
    CU_ASSERT_EQUAL(g.index, 3);
    CU_ASSERT_PTR_EQUAL(g.symbol, dg + SL_FRAME_HDR_BYTES);   /* zero-copy */
    CU_ASSERT_EQUAL(memcmp(g.symbol, sym, sizeof sym), 0);

    /* In place: symbol already at out + 44. */
    uint8_t dg2[sizeof dg];
    memcpy(dg2 + SL_FRAME_HDR_BYTES, sym, sizeof sym);
    f.symbol = dg2 + SL_FRAME_HDR_BYTES;
    CU_ASSERT_EQUAL(sl_datagram_data_encode(dg2, sizeof dg2, &len, &f), SL_OK);
    CU_ASSERT_EQUAL(memcmp(dg, dg2, sizeof dg), 0);

    /* Largest symbol. */
    static uint8_t big[SL_FRAME_MAX_BYTES];
    static uint8_t bsym[SL_SYMBOL_MAX];
    f.symbol = bsym;
    f.symbol_size = SL_SYMBOL_MAX;
    f.k = 254;
    f.m = 1;
    f.index = 254;
    CU_ASSERT_EQUAL(sl_datagram_data_encode(big, sizeof big, &len, &f), SL_OK);
    CU_ASSERT_EQUAL(len, SL_FRAME_MAX_BYTES);
    CU_ASSERT_EQUAL(sl_datagram_data_parse(&g, big, len), SL_OK);
    CU_ASSERT_EQUAL(sl_datagram_data_encode(big, sizeof big - 1, &len, &f), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(len, 0u);
    sl_key_free(k);
}

SL_TEST(frame, encode_refuses_what_parse_rejects)
{
    struct sl_key_secret *k = fx_key();
    uint8_t sym[SL_SYMBOL_MAX + 1] = { 0 };
    uint8_t dg[SL_FRAME_MAX_BYTES + 1];
    size_t len;
    struct sl_data_frame f;
    fx_frame(&f, sym, k);
    struct { int field; unsigned v; } bad[] = {
        { 0, SL_CHANNEL_COUNT }, { 1, SL_SYMBOL_MIN - 1 }, { 1, SL_SYMBOL_MAX + 1 }, { 2, 0 }, { 3, 0 },
        { 4, FX_K + FX_M },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sl_data_frame g = f;
        switch (bad[i].field) {
        case 0: g.channel = (uint16_t)bad[i].v; break;
        case 1: g.symbol_size = (uint16_t)bad[i].v; break;
        case 2: g.k = (uint8_t)bad[i].v; break;
        case 3: g.m = (uint8_t)bad[i].v; break;
        default: g.index = (uint8_t)bad[i].v; break;
        }
        CU_ASSERT_EQUAL(sl_datagram_data_encode(dg, sizeof dg, &len, &g), SL_ERR_RANGE);
    }
    f.k = 200;
    f.m = 56;   /* 256 > 255 */
    CU_ASSERT_EQUAL(sl_datagram_data_encode(dg, sizeof dg, &len, &f), SL_ERR_RANGE);
    sl_key_free(k);
}

static size_t good_frame(uint8_t *dg, size_t cap, const struct sl_key_secret *k)
{
    uint8_t sym[FX_SYMBOL_SIZE];
    memset(sym, 0x5A, sizeof sym);
    struct sl_data_frame f;
    fx_frame(&f, sym, k);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_encode(dg, cap, &len, &f), SL_OK);
    return len;
}

SL_TEST(frame, every_bit_flip_rejected)
{
    struct sl_key_secret *k = fx_key();
    uint8_t dg[SL_FRAME_OVERHEAD + FX_SYMBOL_SIZE];
    size_t len = good_frame(dg, sizeof dg, k);
    struct sl_data_frame g;
    for (size_t bit = 0; bit < len * 8; bit++) {
        dg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sl_err e = sl_datagram_data_parse(&g, dg, len);
        CU_ASSERT_NOT_EQUAL(e, SL_OK);
        CU_ASSERT(e == SL_ERR_CRC || e == SL_ERR_MAGIC || e == SL_ERR_VERSION || e == SL_ERR_TYPE ||
                  e == SL_ERR_HEADER || e == SL_ERR_LENGTH);
        /* Header fields covered only by the CRC fail on the CRC. */
        size_t byte = bit / 8;
        if ((byte >= 4 && byte < 6) || (byte >= 8 && byte < 40) || byte >= 44)
            CU_ASSERT(e == SL_ERR_CRC || (byte < 6 && e == SL_ERR_HEADER));
        CU_ASSERT_EQUAL(g.symbol_size, 0);   /* output zeroed on failure */
        CU_ASSERT_PTR_NULL(g.symbol);
        dg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(sl_datagram_data_parse(&g, dg, len), SL_OK);
    sl_key_free(k);
}

SL_TEST(frame, every_truncation_and_extension_rejected)
{
    struct sl_key_secret *k = fx_key();
    uint8_t dg[SL_FRAME_OVERHEAD + FX_SYMBOL_SIZE + 1];
    size_t len = good_frame(dg, sizeof dg, k);
    struct sl_data_frame g;
    for (size_t n = 0; n < len; n++)
        CU_ASSERT_EQUAL(sl_datagram_data_parse(&g, dg, n), n < SL_FRAME_MIN_BYTES ? SL_ERR_TRUNCATED
                                                                                    : SL_ERR_LENGTH);
    dg[len] = 0;
    CU_ASSERT_EQUAL(sl_datagram_data_parse(&g, dg, len + 1), SL_ERR_LENGTH);
    uint8_t type = 9;
    for (size_t n = 0; n < 4; n++) {
        CU_ASSERT_EQUAL(sl_datagram_peek(&type, dg, n), SL_ERR_TRUNCATED);
        CU_ASSERT_EQUAL(type, 0);
    }
    sl_key_free(k);
}

/* Edits one header byte of a valid frame, fixes the CRC, and returns what
 * the parser says: the field check itself, not the CRC, must reject. */
static sl_err parse_with(size_t off, uint8_t v, const struct sl_key_secret *k)
{
    uint8_t dg[SL_FRAME_OVERHEAD + FX_SYMBOL_SIZE];
    size_t len = good_frame(dg, sizeof dg, k);
    dg[off] = v;
    fix_crc(dg, len);
    struct sl_data_frame g;
    return sl_datagram_data_parse(&g, dg, len);
}

SL_TEST(frame, header_fields_checked)
{
    struct sl_key_secret *k = fx_key();
    CU_ASSERT_EQUAL(parse_with(0, 'X', k), SL_ERR_MAGIC);
    CU_ASSERT_EQUAL(parse_with(1, 'X', k), SL_ERR_MAGIC);
    CU_ASSERT_EQUAL(parse_with(2, 0, k), SL_ERR_VERSION);
    CU_ASSERT_EQUAL(parse_with(2, 2, k), SL_ERR_VERSION);
    CU_ASSERT_EQUAL(parse_with(3, 0, k), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(parse_with(3, SL_FRAME_BEACON, k), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(parse_with(3, 3, k), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(parse_with(5, SL_CHANNEL_COUNT, k), SL_ERR_HEADER);     /* channel */
    CU_ASSERT_EQUAL(parse_with(4, 1, k), SL_ERR_HEADER);                    /* channel 256 */
    CU_ASSERT_EQUAL(parse_with(7, 63, k), SL_ERR_HEADER);                   /* S = 63 */
    CU_ASSERT_EQUAL(parse_with(7, 65, k), SL_ERR_LENGTH);                   /* S = 65 */
    CU_ASSERT_EQUAL(parse_with(6, 0x23, k), SL_ERR_HEADER);                 /* S = 9024 */
    CU_ASSERT_EQUAL(parse_with(40, 0, k), SL_ERR_HEADER);                   /* k = 0 */
    CU_ASSERT_EQUAL(parse_with(41, 0, k), SL_ERR_HEADER);                   /* m = 0 */
    CU_ASSERT_EQUAL(parse_with(40, 255, k), SL_ERR_HEADER);                 /* k + m = 256 */
    CU_ASSERT_EQUAL(parse_with(40, 254, k), SL_OK);                         /* k + m = 255 */
    CU_ASSERT_EQUAL(parse_with(42, FX_K + FX_M, k), SL_ERR_HEADER);         /* index = k + m */
    CU_ASSERT_EQUAL(parse_with(42, FX_K + FX_M - 1, k), SL_OK);             /* last repair */
    CU_ASSERT_EQUAL(parse_with(43, 1, k), SL_ERR_HEADER);                   /* flags */
    CU_ASSERT_EQUAL(parse_with(43, 0x80, k), SL_ERR_HEADER);
    CU_ASSERT_EQUAL(parse_with(5, SL_CHANNEL_FILES, k), SL_OK);
    uint8_t type;
    uint8_t b[4] = { 'S', 'L', 1, 3 };
    CU_ASSERT_EQUAL(sl_datagram_peek(&type, b, 4), SL_ERR_TYPE);
    b[2] = 2;
    CU_ASSERT_EQUAL(sl_datagram_peek(&type, b, 4), SL_ERR_VERSION);
    b[0] = 'X';
    CU_ASSERT_EQUAL(sl_datagram_peek(&type, b, 4), SL_ERR_MAGIC);
    sl_key_free(k);
}

/* ---- beacons --------------------------------------------------------- */

static void trusted_fx(struct sl_key_set *s, const struct sl_key_secret *k)
{
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    sl_key_set_init(s);
    CU_ASSERT_EQUAL(sl_key_set_add(s, &pub), SL_OK);
}

SL_TEST(beacon, roundtrip)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    trusted_fx(&trusted, k);
    struct sl_beacon b, o;
    fx_beacon(&b);
    uint8_t dg[SL_BEACON_BYTES];
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(k)), SL_OK);
    uint8_t type;
    CU_ASSERT_EQUAL(sl_datagram_peek(&type, dg, sizeof dg), SL_OK);
    CU_ASSERT_EQUAL(type, SL_FRAME_BEACON);
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_open(&o, dg, sizeof dg, &trusted), SL_OK);
    CU_ASSERT_EQUAL(memcmp(o.key_id, trusted.key[0].id, SL_KEY_ID_BYTES), 0);
    CU_ASSERT_EQUAL(o.session, b.session);
    CU_ASSERT_EQUAL(o.epoch, b.epoch);
    CU_ASSERT_EQUAL(o.beacon_seq, b.beacon_seq);
    CU_ASSERT_EQUAL(o.tx_time_us, b.tx_time_us);
    CU_ASSERT_EQUAL(o.highest_block, b.highest_block);
    CU_ASSERT_EQUAL(o.symbol_size, b.symbol_size);
    CU_ASSERT_EQUAL(o.k, b.k);
    CU_ASSERT_EQUAL(o.m, b.m);
    CU_ASSERT_EQUAL(o.interleave, b.interleave);
    CU_ASSERT_EQUAL(o.rate_kbps, b.rate_kbps);
    CU_ASSERT_EQUAL(memcmp(o.config_fp, b.config_fp, SL_FP_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(o.schema_fp, b.schema_fp, SL_FP_BYTES), 0);
    CU_ASSERT_EQUAL(o.poll_errors, b.poll_errors);
    CU_ASSERT_EQUAL(o.queue_drops, b.queue_drops);
    CU_ASSERT_EQUAL(o.blocks_sent, b.blocks_sent);
    CU_ASSERT_EQUAL(o.frames_sent, b.frames_sent);
    CU_ASSERT_EQUAL(sl_datagram_beacon_encode(dg, sizeof dg - 1, &b, sl_key_signer(k)), SL_ERR_OVERFLOW);
    b.interleave = 0;
    CU_ASSERT_EQUAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(k)), SL_ERR_RANGE);
    sl_key_free(k);
}

SL_TEST(beacon, rejections)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    trusted_fx(&trusted, k);
    struct sl_beacon b, o;
    fx_beacon(&b);
    uint8_t dg[SL_BEACON_BYTES + 1], tmp[SL_BEACON_BYTES + 1];
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(k)), SL_OK);

    for (size_t n = 0; n < SL_BEACON_BYTES; n++)
        CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, dg, n, &trusted), SL_ERR_TRUNCATED);
    dg[SL_BEACON_BYTES] = 0;
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, dg, SL_BEACON_BYTES + 1, &trusted), SL_ERR_LENGTH);

    /* Every bit flip: rejected; flips after the 4-byte prefix hit the CRC. */
    for (size_t bit = 0; bit < SL_BEACON_BYTES * 8; bit++) {
        memcpy(tmp, dg, SL_BEACON_BYTES);
        tmp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sl_err e = sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &trusted);
        CU_ASSERT(bit / 8 < 4 ? (e == SL_ERR_MAGIC || e == SL_ERR_VERSION || e == SL_ERR_TYPE)
                              : e == SL_ERR_CRC);
        CU_ASSERT_EQUAL(o.session, 0u);
    }

    /* Valid CRC, flipped signed byte: the signature catches it. Every
     * signed byte outside the checked header fields, and the signature. */
    for (size_t i = 0; i < SL_BEACON_SIGNED_BYTES + SL_SIG_BYTES; i++) {
        if (i < 8 || (i >= 24 && i < 32) || (i >= 56 && i < 64))
            continue;   /* prefix, key id, parameters: checked before the signature */
        memcpy(tmp, dg, SL_BEACON_BYTES);
        tmp[i] ^= 0x01;
        fix_crc(tmp, SL_BEACON_BYTES);
        CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &trusted), SL_ERR_SIGNATURE);
    }
    /* Parameter bytes with a valid CRC: the cheap checks or the signature. */
    static const struct { size_t off; uint8_t v; sl_err want; } hdr[] = {
        { 5, 1, SL_ERR_HEADER },  { 7, 1, SL_ERR_HEADER },  { 61, 1, SL_ERR_HEADER },
        { 63, 1, SL_ERR_HEADER }, { 58, 0, SL_ERR_HEADER }, { 59, 0, SL_ERR_HEADER },
        { 60, 0, SL_ERR_HEADER }, { 56, 0x30, SL_ERR_HEADER }, { 58, 250, SL_ERR_HEADER },
        { 58, 63, SL_ERR_SIGNATURE }, { 60, 1, SL_ERR_SIGNATURE }, { 2, 2, SL_ERR_VERSION },
        { 3, SL_FRAME_DATA, SL_ERR_TYPE }, { 0, 0, SL_ERR_MAGIC },
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        memcpy(tmp, dg, SL_BEACON_BYTES);
        tmp[hdr[i].off] = hdr[i].v;
        fix_crc(tmp, SL_BEACON_BYTES);
        CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &trusted), hdr[i].want);
    }
    /* Key id of a key we do not trust. */
    memcpy(tmp, dg, SL_BEACON_BYTES);
    tmp[24] ^= 0xFF;
    fix_crc(tmp, SL_BEACON_BYTES);
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &trusted), SL_ERR_UNKNOWN_KEY);

    /* Signed by a different, untrusted key; and that key trusted instead. */
    struct sl_key_secret *other = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_key_generate(&other), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_encode(tmp, sizeof tmp, &b, sl_key_signer(other)), SL_OK);
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &trusted), SL_ERR_UNKNOWN_KEY);
    struct sl_key_set only_other;
    trusted_fx(&only_other, other);
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, dg, SL_BEACON_BYTES, &only_other), SL_ERR_UNKNOWN_KEY);
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &only_other), SL_OK);
    /* Right key id, wrong key: claim the trusted key's id over the other
     * key's signature. */
    memcpy(tmp + 24, trusted.key[0].id, SL_KEY_ID_BYTES);
    fix_crc(tmp, SL_BEACON_BYTES);
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&o, tmp, SL_BEACON_BYTES, &trusted), SL_ERR_SIGNATURE);
    /* A beacon is not a data frame and vice versa. */
    struct sl_data_frame f;
    CU_ASSERT_EQUAL(sl_datagram_data_parse(&f, dg, SL_BEACON_BYTES), SL_ERR_TYPE);
    sl_key_free(other);
    sl_key_free(k);
}
