/* Blocks: seal/pad/open round trip; no single bit flip of a sealed block
 * ever opens; foreign keys, mismatched frames, bad padding and lengths. */
#include <stdlib.h>
#include <string.h>

#include "proto_fixture.h"
#include "sl_block.h"
#include "sl_buf.h"
#include "sl_test.h"

#define PADDED (FX_K * FX_SYMBOL_SIZE)

/* The fixture block, sealed and padded to k' * S. */
static void fx_sealed(uint8_t blk[PADDED], const struct sl_key_secret *k)
{
    struct sl_block_hdr h;
    uint8_t payload[FX_PAYLOAD_LEN];
    fx_block_hdr(&h);
    fx_payload(payload);
    size_t len = 0, padded = 0;
    memset(blk, 0xEE, PADDED);
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(blk, PADDED, &len, &h, payload, sizeof payload, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL_FATAL(len, FX_BLOCK_LEN);
    CU_ASSERT_EQUAL_FATAL(sl_block_pad(&padded, blk, PADDED, len, FX_SYMBOL_SIZE), SL_OK);
    CU_ASSERT_EQUAL_FATAL(padded, PADDED);
}

static void trusted_fx(struct sl_key_set *s, const struct sl_key_secret *k)
{
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    sl_key_set_init(s);
    CU_ASSERT_EQUAL(sl_key_set_add(s, &pub), SL_OK);
}

SL_TEST(block, roundtrip)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    trusted_fx(&trusted, k);
    uint8_t blk[PADDED];
    fx_sealed(blk, k);
    for (size_t i = FX_BLOCK_LEN; i < PADDED; i++)
        CU_ASSERT_EQUAL(blk[i], 0);
    struct sl_block_expect x;
    fx_block_expect(&x, k, FX_K);
    const uint8_t *p = NULL;
    size_t plen = 0;
    struct sl_block_hdr h;
    CU_ASSERT_EQUAL_FATAL(sl_block_open(&p, &plen, &h, blk, sizeof blk, &x, &trusted), SL_OK);
    uint8_t payload[FX_PAYLOAD_LEN];
    fx_payload(payload);
    CU_ASSERT_EQUAL(plen, FX_PAYLOAD_LEN);
    CU_ASSERT_PTR_EQUAL(p, blk + SL_BLOCK_HDR_BYTES);
    CU_ASSERT_EQUAL(memcmp(p, payload, plen), 0);
    CU_ASSERT_EQUAL(h.tx_time_us, FX_TX_TIME_US);
    CU_ASSERT_EQUAL(h.block_seq, FX_BLOCK_SEQ);

    /* In place, and an empty payload. */
    uint8_t blk2[PADDED];
    struct sl_block_hdr hh;
    fx_block_hdr(&hh);
    memcpy(blk2 + SL_BLOCK_HDR_BYTES, payload, sizeof payload);
    size_t len = 0;
    CU_ASSERT_EQUAL(sl_block_seal(blk2, sizeof blk2, &len, &hh, blk2 + SL_BLOCK_HDR_BYTES, sizeof payload, sl_key_signer(k)),
                    SL_OK);
    CU_ASSERT_EQUAL(memcmp(blk2, blk, len), 0);
    CU_ASSERT_EQUAL(sl_block_seal(blk2, sizeof blk2, &len, &hh, NULL, 0, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL(len, SL_BLOCK_OVERHEAD);
    size_t padded;
    CU_ASSERT_EQUAL(sl_block_pad(&padded, blk2, sizeof blk2, len, FX_SYMBOL_SIZE), SL_OK);
    CU_ASSERT_EQUAL(padded, 2u * FX_SYMBOL_SIZE);
    fx_block_expect(&x, k, 2);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk2, padded, &x, &trusted), SL_OK);
    CU_ASSERT_EQUAL(plen, 0u);
    sl_key_free(k);
}

SL_TEST(block, seal_and_pad_limits)
{
    struct sl_key_secret *k = fx_key();
    struct sl_block_hdr h;
    fx_block_hdr(&h);
    uint8_t buf[256];
    size_t len = 7, padded = 7;
    CU_ASSERT_EQUAL(sl_block_seal(buf, SL_BLOCK_OVERHEAD + 9, &len, &h, buf, 10, sl_key_signer(k)), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(len, 0u);
    CU_ASSERT_EQUAL(sl_block_seal(buf, sizeof buf, &len, &h, buf, SL_BLOCK_PAYLOAD_MAX + 1, sl_key_signer(k)), SL_ERR_RANGE);
    h.channel = SL_CHANNEL_COUNT;
    CU_ASSERT_EQUAL(sl_block_seal(buf, sizeof buf, &len, &h, buf, 0, sl_key_signer(k)), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_block_symbols(0, 64), 0u);
    CU_ASSERT_EQUAL(sl_block_symbols(1, 64), 1u);
    CU_ASSERT_EQUAL(sl_block_symbols(64, 64), 1u);
    CU_ASSERT_EQUAL(sl_block_symbols(65, 64), 2u);
    CU_ASSERT_EQUAL(sl_block_symbols(100, 63), 0u);
    CU_ASSERT_EQUAL(sl_block_symbols(SL_BLOCK_MAX_BYTES, SL_SYMBOL_MAX), 254u);
    CU_ASSERT_EQUAL(sl_block_pad(&padded, buf, sizeof buf, 0, 64), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(padded, 0u);
    CU_ASSERT_EQUAL(sl_block_pad(&padded, buf, 191, 140, 64), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(sl_block_pad(&padded, buf, 192, 192, 64), SL_OK);
    CU_ASSERT_EQUAL(padded, 192u);
    CU_ASSERT_EQUAL(sl_block_pad(&padded, buf, sizeof buf, 255u * 64u, 64), SL_ERR_RANGE);
    sl_key_free(k);
}

SL_TEST(block, every_bit_flip_rejected)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    trusted_fx(&trusted, k);
    struct sl_block_expect x;
    fx_block_expect(&x, k, FX_K);
    uint8_t blk[PADDED];
    fx_sealed(blk, k);
    const uint8_t *p;
    size_t plen;
    struct sl_block_hdr h;
    for (size_t bit = 0; bit < PADDED * 8; bit++) {
        blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sl_err e = sl_block_open(&p, &plen, &h, blk, sizeof blk, &x, &trusted);
        CU_ASSERT(e == SL_ERR_SIGNATURE || e == SL_ERR_HEADER || e == SL_ERR_MISMATCH ||
                  e == SL_ERR_LENGTH || e == SL_ERR_MAGIC || e == SL_ERR_VERSION || e == SL_ERR_TRAILING);
        CU_ASSERT_PTR_NULL(p);
        CU_ASSERT_EQUAL(plen, 0u);
        CU_ASSERT_EQUAL(h.session, 0u);
        blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, sizeof blk, &x, &trusted), SL_OK);
    sl_key_free(k);
}

SL_TEST(block, wrong_key_frames_padding_length)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    trusted_fx(&trusted, k);
    struct sl_block_expect x, y;
    fx_block_expect(&x, k, FX_K);
    uint8_t blk[PADDED + FX_SYMBOL_SIZE];
    fx_sealed(blk, k);
    const uint8_t *p;
    size_t plen;
    struct sl_block_hdr h;

    /* Different key: unknown id, or a trusted id over a foreign signature. */
    struct sl_key_secret *other = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_key_generate(&other), SL_OK);
    uint8_t ob[PADDED];
    fx_sealed(ob, other);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, ob, PADDED, &x, &trusted), SL_ERR_SIGNATURE);
    fx_block_expect(&y, other, FX_K);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, ob, PADDED, &y, &trusted), SL_ERR_UNKNOWN_KEY);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &y, &trusted), SL_ERR_UNKNOWN_KEY);
    struct sl_key_set none;
    sl_key_set_init(&none);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &none), SL_ERR_UNKNOWN_KEY);

    /* Frame fields that disagree with the block header. */
    y = x; y.session ^= 1;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &y, &trusted), SL_ERR_MISMATCH);
    y = x; y.epoch++;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &y, &trusted), SL_ERR_MISMATCH);
    y = x; y.block_seq++;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &y, &trusted), SL_ERR_MISMATCH);
    y = x; y.channel = SL_CHANNEL_FILES;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &y, &trusted), SL_ERR_MISMATCH);

    /* Length disagrees with k' * S; bad S or k'. */
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED - 1, &x, &trusted), SL_ERR_LENGTH);
    y = x; y.k = 0;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, 0, &y, &trusted), SL_ERR_LENGTH);
    y = x; y.symbol_size = 63; y.k = 3;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, 189, &y, &trusted), SL_ERR_LENGTH);
    y = x; y.k = 1;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, FX_SYMBOL_SIZE, &y, &trusted), SL_ERR_TRUNCATED);

    /* Over-long padding: one whole extra zero symbol (k' not minimal). */
    memset(blk + PADDED, 0, FX_SYMBOL_SIZE);
    y = x; y.k = FX_K + 1;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, sizeof blk, &y, &trusted), SL_ERR_LENGTH);

    /* Non-zero padding, each padding byte in turn. */
    for (size_t i = FX_BLOCK_LEN; i < PADDED; i++) {
        blk[i] = 0x01;
        CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), SL_ERR_TRAILING);
        blk[i] = 0;
    }
    /* payload_len too large for the block, and too small (padding >= S). */
    uint8_t save[4];
    memcpy(save, blk + 40, 4);
    sl_be32_put(blk + 40, PADDED - SL_BLOCK_OVERHEAD + 1);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), SL_ERR_LENGTH);
    sl_be32_put(blk + 40, 0xFFFFFFFFu);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), SL_ERR_LENGTH);
    sl_be32_put(blk + 40, PADDED - SL_BLOCK_OVERHEAD - FX_SYMBOL_SIZE);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), SL_ERR_LENGTH);
    /* A payload_len that fits but was not signed. */
    sl_be32_put(blk + 40, FX_PAYLOAD_LEN + 1);
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), SL_ERR_SIGNATURE);
    memcpy(blk + 40, save, 4);

    /* Header constants. Version 1 (pure Ed25519 over header and payload,
     * before hash-then-sign) is refused by its version byte. */
    static const struct { size_t off; uint8_t v; sl_err want; } hdr[] = {
        { 0, 'X', SL_ERR_MAGIC }, { 1, 'L', SL_ERR_MAGIC }, { 2, 1, SL_ERR_VERSION },
        { 2, 3, SL_ERR_VERSION }, { 3, 1, SL_ERR_HEADER },  { 6, 1, SL_ERR_HEADER }, { 7, 0x80, SL_ERR_HEADER },
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        uint8_t was = blk[hdr[i].off];
        blk[hdr[i].off] = hdr[i].v;
        CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), hdr[i].want);
        blk[hdr[i].off] = was;
    }
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, blk, PADDED, &x, &trusted), SL_OK);
    sl_key_free(other);
    sl_key_free(k);
}

SL_TEST(block, beacon_and_block_signatures_do_not_cross)
{
    /* Domain separation: the signed bytes of a block start with "SB", of a
     * beacon with "SL" 01 02; a signature over one can never verify as the
     * other, because the first two signed bytes differ. Check the bytes. */
    struct sl_key_secret *k = fx_key();
    uint8_t blk[PADDED];
    fx_sealed(blk, k);
    CU_ASSERT_EQUAL(sl_be16_get(blk), SL_BLOCK_MAGIC);
    struct sl_beacon b;
    fx_beacon(&b);
    uint8_t dg[SL_BEACON_BYTES];
    CU_ASSERT_EQUAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL(sl_be16_get(dg), SL_WIRE_MAGIC);
    CU_ASSERT_NOT_EQUAL(SL_BLOCK_MAGIC, SL_WIRE_MAGIC);
    sl_key_free(k);
}
