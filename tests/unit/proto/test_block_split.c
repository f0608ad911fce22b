/* Split blocks (SL_BLOCK_FLAG_SPLIT): the signed digest is
 * SHA-256(payload[0, split) || SHA-256(payload[split, L))). A known answer,
 * the round trip with the leaf handed back by open, and every way the flag,
 * the split field or the data can be wrong.
 *
 * SPLIT_DIGEST_KAT was computed once with Python's hashlib, independently
 * of this code: p = bytes(range(40));
 * sha256(p[:24] + sha256(p[24:]).digest()).hexdigest(). */
#include <stdio.h>
#include <string.h>

#include "proto_fixture.h"
#include "sl_block.h"
#include "sl_buf.h"
#include "sl_ftree.h"
#include "sl_test.h"

#define SPL_LEN    40u
#define SPL_AT     24u
#define SPL_BLOCK  (SL_BLOCK_OVERHEAD + SPL_LEN)   /* 148 */
#define SPL_K      3u                             /* ceil(148 / 64) */
#define SPL_PADDED (SPL_K * FX_SYMBOL_SIZE)
static const char split_digest_kat[] = "cbf51f6a50b096a1be4827fe97d277de5b03d7b45a1d1523564ccc78168c67a8";

static void spl_payload(uint8_t p[SPL_LEN])
{
    for (unsigned i = 0; i < SPL_LEN; i++)
        p[i] = (uint8_t)i;
}

static void spl_sealed(uint8_t blk[SPL_PADDED], const struct sl_key_secret *k, uint16_t split)
{
    struct sl_block_hdr h;
    uint8_t p[SPL_LEN];
    fx_block_hdr(&h);
    spl_payload(p);
    h.split = split;
    if (split)
        sl_ftree_leaf(h.leaf, p + split, SPL_LEN - split);
    size_t len = 0, padded = 0;
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(blk, SPL_PADDED, &len, &h, p, sizeof p, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL_FATAL(len, SPL_BLOCK);
    CU_ASSERT_EQUAL_FATAL(sl_block_pad(&padded, blk, SPL_PADDED, len, FX_SYMBOL_SIZE), SL_OK);
}

static void spl_trusted(struct sl_key_set *s, const struct sl_key_secret *k)
{
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    sl_key_set_init(s);
    CU_ASSERT_EQUAL(sl_key_set_add(s, &pub), SL_OK);
}

SL_TEST(block_split, digest_kat)
{
    struct sl_block_hdr h;
    uint8_t p[SPL_LEN], blk[SPL_PADDED], msg[SL_BLOCK_SIGNED_BYTES];
    fx_block_hdr(&h);
    spl_payload(p);
    h.split = SPL_AT;
    sl_ftree_leaf(h.leaf, p + SPL_AT, SPL_LEN - SPL_AT);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(sl_block_prepare(blk, sizeof blk, &len, &h, p, sizeof p, msg), SL_OK);
    CU_ASSERT_EQUAL(blk[SL_BLOCK_OFF_FLAGS], SL_BLOCK_FLAG_SPLIT);
    CU_ASSERT_EQUAL(sl_be16_get(blk + SL_BLOCK_OFF_SPLIT), SPL_AT);
    CU_ASSERT_EQUAL(memcmp(msg, blk, SL_BLOCK_HDR_BYTES), 0);
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", msg[SL_BLOCK_HDR_BYTES + i]);
    CU_ASSERT_STRING_EQUAL(hex, split_digest_kat);

    /* Without the flag the same payload signs its plain SHA-256. */
    uint8_t plain[SL_BLOCK_SIGNED_BYTES];
    h.split = 0;
    CU_ASSERT_EQUAL_FATAL(sl_block_prepare(blk, sizeof blk, &len, &h, p, sizeof p, plain), SL_OK);
    CU_ASSERT_EQUAL(blk[SL_BLOCK_OFF_FLAGS], 0);
    CU_ASSERT_EQUAL(sl_be16_get(blk + SL_BLOCK_OFF_SPLIT), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(plain + SL_BLOCK_HDR_BYTES, msg + SL_BLOCK_HDR_BYTES, 32), 0);

    /* The split must leave a non-empty tail. */
    h.split = SPL_LEN;
    CU_ASSERT_EQUAL(sl_block_prepare(blk, sizeof blk, &len, &h, p, sizeof p, msg), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(len, 0u);
    h.split = 1;
    CU_ASSERT_EQUAL(sl_block_prepare(blk, sizeof blk, &len, &h, p, 0, msg), SL_ERR_RANGE);
}

SL_TEST(block_split, roundtrip_gives_leaf)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    spl_trusted(&trusted, k);
    struct sl_block_expect x;
    fx_block_expect(&x, k, SPL_K);
    uint8_t blk[SPL_PADDED], p[SPL_LEN], want[SL_FTREE_LEAF_BYTES];
    spl_payload(p);
    sl_ftree_leaf(want, p + SPL_AT, SPL_LEN - SPL_AT);
    const uint8_t *pl = NULL;
    size_t plen = 0;
    struct sl_block_hdr h;
    for (uint16_t split = 1; split < SPL_LEN; split++) {
        spl_sealed(blk, k, split);
        CU_ASSERT_EQUAL(sl_block_check(blk, sizeof blk, &x, &trusted), SL_OK);
        CU_ASSERT_EQUAL_FATAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), SL_OK);
        CU_ASSERT_EQUAL(plen, SPL_LEN);
        CU_ASSERT_EQUAL(memcmp(pl, p, SPL_LEN), 0);
        CU_ASSERT_EQUAL(h.split, split);
        uint8_t l[SL_FTREE_LEAF_BYTES];
        sl_ftree_leaf(l, p + split, SPL_LEN - split);
        CU_ASSERT_EQUAL(memcmp(h.leaf, l, sizeof l), 0);
    }
    spl_sealed(blk, k, SPL_AT);
    CU_ASSERT_EQUAL_FATAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), SL_OK);
    CU_ASSERT_EQUAL(memcmp(h.leaf, want, sizeof want), 0);

    /* A plain block opens with split 0 and no leaf. */
    spl_sealed(blk, k, 0);
    CU_ASSERT_EQUAL_FATAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), SL_OK);
    CU_ASSERT_EQUAL(h.split, 0);
    static const uint8_t zero[SL_FTREE_LEAF_BYTES];
    CU_ASSERT_EQUAL(memcmp(h.leaf, zero, sizeof zero), 0);
    sl_key_free(k);
}

/* A sealer that hands a wrong leaf makes a block nobody accepts. */
SL_TEST(block_split, wrong_leaf_never_opens)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    spl_trusted(&trusted, k);
    struct sl_block_expect x;
    fx_block_expect(&x, k, SPL_K);
    struct sl_block_hdr h;
    uint8_t p[SPL_LEN], blk[SPL_PADDED];
    fx_block_hdr(&h);
    spl_payload(p);
    h.split = SPL_AT;
    sl_ftree_leaf(h.leaf, p + SPL_AT, SPL_LEN - SPL_AT);
    h.leaf[31] ^= 1;
    size_t len = 0, padded = 0;
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(blk, sizeof blk, &len, &h, p, sizeof p, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_block_pad(&padded, blk, sizeof blk, len, FX_SYMBOL_SIZE), SL_OK);
    const uint8_t *pl;
    size_t plen;
    struct sl_block_hdr o;
    CU_ASSERT_EQUAL(sl_block_open(&pl, &plen, &o, blk, sizeof blk, &x, &trusted), SL_ERR_SIGNATURE);
    CU_ASSERT_PTR_NULL(pl);
    CU_ASSERT_EQUAL(o.split, 0);
    sl_key_free(k);
}

SL_TEST(block_split, tampering_rejected)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_set trusted;
    spl_trusted(&trusted, k);
    struct sl_block_expect x;
    fx_block_expect(&x, k, SPL_K);
    uint8_t blk[SPL_PADDED];
    spl_sealed(blk, k, SPL_AT);
    const uint8_t *pl;
    size_t plen;
    struct sl_block_hdr h;

    /* Every single bit flip fails, the data's and the prefix's included. */
    for (size_t bit = 0; bit < SPL_PADDED * 8; bit++) {
        blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sl_err e = sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted);
        CU_ASSERT(e != SL_OK);
        CU_ASSERT_PTR_NULL(pl);
        CU_ASSERT_EQUAL(h.split, 0);
        blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Named cases, with the error each gets. */
    uint8_t *data = blk + SL_BLOCK_HDR_BYTES + SPL_AT;
    data[3] ^= 0x40;   /* a data byte after the split */
    CU_ASSERT_EQUAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), SL_ERR_SIGNATURE);
    data[3] ^= 0x40;
    blk[SL_BLOCK_HDR_BYTES + 1] ^= 0x01;   /* a prefix byte */
    CU_ASSERT_EQUAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), SL_ERR_SIGNATURE);
    blk[SL_BLOCK_HDR_BYTES + 1] ^= 0x01;

    static const struct { uint8_t flags; uint16_t split; sl_err want; } cases[] = {
        { SL_BLOCK_FLAG_SPLIT, SPL_AT - 1, SL_ERR_SIGNATURE },   /* another valid split: signed differently */
        { SL_BLOCK_FLAG_SPLIT, SPL_AT + 1, SL_ERR_SIGNATURE },
        { SL_BLOCK_FLAG_SPLIT, 1, SL_ERR_SIGNATURE },
        { SL_BLOCK_FLAG_SPLIT, SPL_LEN - 1, SL_ERR_SIGNATURE },
        { 0, SPL_AT, SL_ERR_HEADER },                            /* flag cleared, field kept */
        { 0, 0, SL_ERR_SIGNATURE },                              /* both cleared: a plain block, not signed so */
        { SL_BLOCK_FLAG_SPLIT, 0, SL_ERR_HEADER },               /* flag with split 0 */
        { SL_BLOCK_FLAG_SPLIT, SPL_LEN, SL_ERR_HEADER },         /* split == L */
        { SL_BLOCK_FLAG_SPLIT, SPL_LEN + 1, SL_ERR_HEADER },     /* split > L */
        { SL_BLOCK_FLAG_SPLIT, 0xFFFF, SL_ERR_HEADER },
        { SL_BLOCK_FLAG_SPLIT | 0x02, SPL_AT, SL_ERR_HEADER },   /* an unknown flag */
        { 0x02, SPL_AT, SL_ERR_HEADER },
        { 0x80, 0, SL_ERR_HEADER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t f = blk[SL_BLOCK_OFF_FLAGS];
        uint16_t s = sl_be16_get(blk + SL_BLOCK_OFF_SPLIT);
        blk[SL_BLOCK_OFF_FLAGS] = cases[i].flags;
        sl_be16_put(blk + SL_BLOCK_OFF_SPLIT, cases[i].split);
        CU_ASSERT_EQUAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), cases[i].want);
        sl_err chk = sl_block_check(blk, sizeof blk, &x, &trusted);
        CU_ASSERT_EQUAL(chk, cases[i].want == SL_ERR_HEADER ? SL_ERR_HEADER : SL_OK);
        blk[SL_BLOCK_OFF_FLAGS] = f;
        sl_be16_put(blk + SL_BLOCK_OFF_SPLIT, s);
    }
    CU_ASSERT_EQUAL(sl_block_open(&pl, &plen, &h, blk, sizeof blk, &x, &trusted), SL_OK);

    /* A plain block given the flag and a split after sealing. */
    uint8_t plain[SPL_PADDED];
    spl_sealed(plain, k, 0);
    plain[SL_BLOCK_OFF_FLAGS] = SL_BLOCK_FLAG_SPLIT;
    sl_be16_put(plain + SL_BLOCK_OFF_SPLIT, SPL_AT);
    CU_ASSERT_EQUAL(sl_block_open(&pl, &plen, &h, plain, sizeof plain, &x, &trusted), SL_ERR_SIGNATURE);
    sl_key_free(k);
}
