/* Decoder: every loss pattern of at most m symbols for small codes, random
 * patterns for large ones (k=1, m=1, k+m=255), more than m lost, early-closed
 * blocks, table-full and age eviction, duplicates, late symbols, symbols
 * with other parameters, range checks and the decode-matrix cache; and the
 * attacks on the receive path: forged blocks that complete first, forged symbols
 * with other parameters, junk floods against announced blocks. */
#include <stdlib.h>
#include <string.h>

#include "fec_testutil.h"
#include "sl_test.h"

static uint8_t g_in[255 * 1500];

/* Encodes len random bytes with (k, m, s) into a malloc'd block. */
static struct sl_fec_block make_block(unsigned k, unsigned m, size_t s, size_t len, uint64_t *rng)
{
    struct sl_fec_block blk = { 0 };
    struct sl_fec_encoder *enc = NULL;
    if (sl_fec_encoder_create(&enc, k, m, s) != SL_OK)
        return blk;
    blk.cap = sl_fec_encoded_bytes(enc, len);
    blk.sym = malloc(blk.cap);
    tu_fill(rng, g_in, len);
    if (!blk.sym || sl_fec_encode(enc, &blk, g_in, len) != SL_OK)
        blk.k = 0;
    sl_fec_encoder_destroy(enc);
    return blk;
}

static void mask_set(uint64_t *mask, unsigned i) { mask[i >> 6] |= (uint64_t)1 << (i & 63); }

/* Every subset of at most m of the k+m symbols lost: all must decode to the
 * exact bytes. Walks subsets by recursion over a 256-bit mask. */
static unsigned g_fail, g_count, g_seq;
static void every_subset(struct sl_fec_decoder *dec, const struct sl_fec_block *blk, uint64_t *mask,
                         unsigned from, unsigned left, uint64_t *rng)
{
    bool ok = false;
    tu_feed(dec, blk, mask, 1, g_seq++, 0, rng, &ok);
    g_fail += !ok;
    g_count++;
    if (left == 0)
        return;
    unsigned n = (unsigned)blk->k + blk->m;
    for (unsigned i = from; i < n; i++) {
        mask_set(mask, i);
        every_subset(dec, blk, mask, i + 1, left - 1, rng);
        mask[i >> 6] &= ~((uint64_t)1 << (i & 63));
    }
}

SL_TEST(decode, every_pattern_small_codes)
{
    const unsigned codes[][2] = { { 1, 1 }, { 1, 3 }, { 2, 1 }, { 3, 2 }, { 4, 2 }, { 5, 3 },
                                  { 8, 4 }, { 10, 3 }, { 4, 6 }, { 16, 2 } };
    uint64_t rng = 0x5eed0002;
    for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
        unsigned k = codes[c][0], m = codes[c][1];
        size_t s = tu_range(&rng, 64, 300);
        struct sl_fec_block blk = make_block(k, m, s, k * s - tu_range(&rng, 0, 63), &rng);
        CU_ASSERT_FATAL(blk.k == k && blk.m == m);
        struct sl_fec_decoder *dec = tu_decoder(k, m, (unsigned)s, 4, 64);
        CU_ASSERT_FATAL(dec != NULL);
        uint64_t mask[4] = { 0 };
        g_fail = g_count = 0;
        every_subset(dec, &blk, mask, 0, m, &rng);
        CU_ASSERT_EQUAL(g_fail, 0);
        struct sl_fec_counters ctr;
        sl_fec_decoder_counters(dec, &ctr);
        CU_ASSERT_EQUAL(ctr.blocks_direct + ctr.blocks_recovered, g_count);
        CU_ASSERT_EQUAL(ctr.unrecoverable + ctr.evicted + ctr.rejected + ctr.duplicates, 0);
        sl_fec_decoder_destroy(dec);
        free(blk.sym);
    }
}

/* Random patterns of exactly m' lost (the worst that must work) on large
 * codes, including k + m = 255 at both extremes. */
SL_TEST(decode, random_patterns_large_codes)
{
    const unsigned codes[][2] = { { 1, 1 }, { 1, 254 }, { 254, 1 }, { 223, 32 }, { 128, 127 },
                                  { 64, 8 }, { 100, 50 } };
    uint64_t rng = 0x5eed0003;
    for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
        unsigned k = codes[c][0], m = codes[c][1];
        size_t s = tu_range(&rng, 64, 256);
        struct sl_fec_decoder *dec = tu_decoder(k, m, (unsigned)s, 2, 4);
        CU_ASSERT_FATAL(dec != NULL);
        unsigned fail = 0;
        for (unsigned t = 0; t < 12; t++) {
            /* t == 0: a full block; later ones random length (early-closed) */
            size_t len = t == 0 ? k * s : tu_range(&rng, 1, (unsigned)(k * s));
            struct sl_fec_block blk = make_block(k, m, s, len, &rng);
            CU_ASSERT_FATAL(blk.k > 0);
            unsigned n = (unsigned)blk.k + blk.m;
            uint64_t mask[4] = { 0 };
            unsigned lost = 0;
            while (lost < blk.m) {
                unsigned i = tu_range(&rng, 0, n - 1);
                if (!((mask[i >> 6] >> (i & 63)) & 1u)) {
                    mask_set(mask, i);
                    lost++;
                }
            }
            bool ok = false;
            tu_feed(dec, &blk, mask, 9, 100 + t, 0, &rng, &ok);
            fail += !ok;
            free(blk.sym);
        }
        CU_ASSERT_EQUAL(fail, 0);
        sl_fec_decoder_destroy(dec);
    }
}

SL_TEST(decode, more_than_m_lost_fails_cleanly)
{
    uint64_t rng = 0x5eed0004;
    struct sl_fec_block blk = make_block(8, 3, 64, 8 * 64, &rng);
    struct sl_fec_decoder_config cfg = { .k_max = 8, .m_max = 3, .symbol_max = 64, .entries = 4,
                                         .done_history = 8, .cache_entries = 2, .max_age_us = 5000 };
    struct sl_fec_decoder *dec = NULL;
    CU_ASSERT_FATAL(sl_fec_decoder_create(&dec, &cfg) == SL_OK);
    uint64_t mask[4] = { 0 };
    mask_set(mask, 0);
    mask_set(mask, 3);
    mask_set(mask, 8);
    mask_set(mask, 10);   /* 4 lost > m = 3 */
    bool ok = true;
    CU_ASSERT_FALSE(tu_feed(dec, &blk, mask, 1, 77, 1000, &rng, &ok));
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 1);
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 5999), 0);
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 500), 0);   /* clock went back: nothing */
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 6000), 1);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 0);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.unrecoverable, 1);
    CU_ASSERT_EQUAL(ctr.blocks_direct + ctr.blocks_recovered, 0);
    /* An expired block is not remembered (its symbols are unauthenticated):
     * a straggler opens a new partial block that expires by age again. */
    struct sl_fec_symbol sym = { .session = 1, .block_seq = 77, .k = 8, .m = 3, .index = 0,
                                 .symbol_size = 64, .data = blk.sym };
    struct sl_fec_decoded out;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 7000), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 1);
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 12000), 1);
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.late, 0);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

SL_TEST(decode, direct_needs_no_matrix_and_late_repair_ignored)
{
    uint64_t rng = 0x5eed0005;
    struct sl_fec_block blk = make_block(6, 2, 80, 6 * 80 - 5, &rng);
    struct sl_fec_decoder *dec = tu_decoder(6, 2, 80, 4, 4);
    struct sl_fec_decoded out;
    for (unsigned i = 0; i < 8; i++) {
        struct sl_fec_symbol sym = { .session = 5, .block_seq = 1, .channel = 1, .k = 6, .m = 2,
                                     .index = (uint8_t)i, .symbol_size = 80, .data = blk.sym + i * 80 };
        sl_err e = sl_fec_decode(dec, &out, &sym, 0);
        if (i < 5)
            CU_ASSERT_EQUAL(e, SL_ERR_AGAIN);
        if (i == 5) {
            CU_ASSERT_EQUAL(e, SL_OK);
            CU_ASSERT_FALSE(out.recovered);
            CU_ASSERT_EQUAL(out.channel, 1);
            CU_ASSERT_EQUAL(out.len, 480);
            CU_ASSERT_EQUAL(memcmp(out.data, blk.sym, 480), 0);
            sl_fec_decoder_done(dec, &out);   /* the caller verified it */
        }
        if (i > 5) {
            CU_ASSERT_EQUAL(e, SL_ERR_DUPLICATE);
            CU_ASSERT_PTR_NULL(out.data);
        }
    }
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.symbols_in, 8);
    CU_ASSERT_EQUAL(ctr.blocks_direct, 1);
    CU_ASSERT_EQUAL(ctr.late, 2);
    CU_ASSERT_EQUAL(ctr.cache_hits + ctr.cache_misses, 0);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

SL_TEST(decode, duplicates_counted)
{
    uint64_t rng = 0x5eed0006;
    struct sl_fec_block blk = make_block(4, 2, 64, 256, &rng);
    struct sl_fec_decoder *dec = tu_decoder(4, 2, 64, 4, 4);
    struct sl_fec_decoded out;
    struct sl_fec_symbol sym = { .session = 5, .block_seq = 1, .k = 4, .m = 2, .index = 5,
                                 .symbol_size = 64, .data = blk.sym + 5 * 64 };
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_DUPLICATE);
    for (unsigned i = 1; i < 4; i++) {
        sym.index = (uint8_t)i;
        sym.data = blk.sym + i * 64;
        sl_err e = sl_fec_decode(dec, &out, &sym, 0);
        CU_ASSERT_EQUAL(e, i == 3 ? SL_OK : SL_ERR_AGAIN);
    }
    CU_ASSERT(out.recovered);
    CU_ASSERT_EQUAL(memcmp(out.data, blk.sym, 256), 0);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.duplicates, 2);
    CU_ASSERT_EQUAL(ctr.blocks_recovered, 1);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

SL_TEST(decode, other_params_open_own_entry_and_range_rejected)
{
    uint64_t rng = 0x5eed0007;
    struct sl_fec_block blk = make_block(4, 2, 64, 256, &rng);
    struct sl_fec_decoder *dec = tu_decoder(4, 2, 128, 8, 4);
    struct sl_fec_decoded out;
    struct sl_fec_symbol sym = { .session = 5, .block_seq = 1, .k = 4, .m = 2, .index = 0,
                                 .symbol_size = 64, .data = blk.sym };
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_AGAIN);
    /* Same id, other k', m' or S: unauthenticated, so neither refused
     * (which would let a forger block the genuine block) nor mixed in: each
     * is a block of its own. */
    struct sl_fec_symbol bad = sym;
    bad.index = 1;
    bad.k = 3;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    bad.k = 4;
    bad.m = 1;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    bad.m = 2;
    bad.symbol_size = 65;
    uint8_t big[128] = { 0 };
    bad.data = big;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    /* ... and so are another epoch and another tag (key id) */
    bad = sym;
    bad.epoch = 9;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    bad = sym;
    bad.tag = 9;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    /* same block id on another channel or session is another block */
    bad = sym;
    bad.channel = 1;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    bad = sym;
    bad.session = 6;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_AGAIN);
    /* out of range: never stored */
    const struct { uint8_t k, m, index; uint16_t s; } r[] = {
        { 0, 2, 0, 64 }, { 4, 0, 0, 64 }, { 5, 2, 0, 64 }, { 4, 3, 0, 64 },
        { 4, 2, 6, 64 }, { 4, 2, 0, 63 }, { 4, 2, 0, 129 },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        bad = sym;
        bad.block_seq = 50 + i;
        bad.k = r[i].k;
        bad.m = r[i].m;
        bad.index = r[i].index;
        bad.symbol_size = r[i].s;
        bad.data = big;
        CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_RANGE);
    }
    bad = sym;
    bad.data = NULL;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &bad, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 8);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.evicted, 0);
    CU_ASSERT_EQUAL(ctr.rejected, 8);
    /* the original block still completes from its own symbols */
    for (unsigned i = 1; i < 4; i++) {
        sym.index = (uint8_t)i;
        sym.data = blk.sym + i * 64;
        CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), i == 3 ? SL_OK : SL_ERR_AGAIN);
    }
    CU_ASSERT_EQUAL(memcmp(out.data, blk.sym, 256), 0);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

/* A forged symbol with the block's own identity arrives first; when the
 * genuine symbol of that index arrives with other bytes, the index is
 * erased (contested) and the block decodes from its other symbols, exactly. */
SL_TEST(decode, contested_index_erased_block_still_decodes)
{
    uint64_t rng = 0x5eed000b;
    struct sl_fec_block blk = make_block(4, 2, 64, 256, &rng);
    struct sl_fec_decoder *dec = tu_decoder(4, 2, 64, 4, 4);
    struct sl_fec_decoded out;
    uint8_t forged[64];
    memset(forged, 0x5a, sizeof forged);
    struct sl_fec_symbol sym = { .session = 5, .block_seq = 1, .k = 4, .m = 2, .index = 0,
                                 .symbol_size = 64, .data = forged };
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_AGAIN);
    sym.data = blk.sym;   /* the genuine index 0: differs, so 0 is erased */
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_DUPLICATE);
    sym.data = forged;    /* and stays erased whatever comes later */
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_DUPLICATE);
    sl_err e = SL_ERR_AGAIN;
    for (unsigned i = 1; i < 6 && e == SL_ERR_AGAIN; i++) {
        sym.index = (uint8_t)i;
        sym.data = blk.sym + i * 64;
        e = sl_fec_decode(dec, &out, &sym, 0);
        CU_ASSERT_EQUAL(e, i == 4 ? SL_OK : SL_ERR_AGAIN);
    }
    CU_ASSERT(out.recovered);
    CU_ASSERT_EQUAL(memcmp(out.data, blk.sym, 256), 0);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.contested, 1);
    /* the same bytes twice are a plain duplicate, never contested */
    sym.block_seq = 2;
    sym.index = 3;
    sym.data = blk.sym + 3 * 64;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 0), SL_ERR_DUPLICATE);
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.contested, 1);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

SL_TEST(decode, table_full_evicts_oldest)
{
    uint64_t rng = 0x5eed0008;
    struct sl_fec_block blk = make_block(4, 2, 64, 256, &rng);
    struct sl_fec_decoder *dec = tu_decoder(4, 2, 64, 2, 4);
    struct sl_fec_decoded out;
    struct sl_fec_symbol sym = { .session = 5, .k = 4, .m = 2, .index = 0, .symbol_size = 64,
                                 .data = blk.sym };
    for (uint64_t seq = 10; seq < 13; seq++) {
        sym.block_seq = seq;
        CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, seq), SL_ERR_AGAIN);
    }
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 2);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.evicted, 1);
    /* block 10 was the oldest; 11 and 12 live on */
    for (uint64_t seq = 11; seq < 13; seq++) {
        sym.block_seq = seq;
        for (unsigned i = 1; i < 4; i++) {
            sym.index = (uint8_t)i;
            sym.data = blk.sym + i * 64;
            CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 20), i == 3 ? SL_OK : SL_ERR_AGAIN);
        }
        CU_ASSERT_EQUAL(out.block_seq, seq);
    }
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.blocks_direct, 2);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 0);
    /* an evicted block is not remembered: its straggler opens it again */
    sym.block_seq = 10;
    sym.index = 1;
    sym.data = blk.sym + 64;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 20), SL_ERR_AGAIN);
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.late, 0);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

SL_TEST(decode, age_eviction_only_old_entries)
{
    uint64_t rng = 0x5eed0009;
    struct sl_fec_block blk = make_block(4, 2, 64, 256, &rng);
    struct sl_fec_decoder_config cfg = { .k_max = 4, .m_max = 2, .symbol_max = 64, .entries = 8,
                                         .done_history = 16, .cache_entries = 1, .max_age_us = 100 };
    struct sl_fec_decoder *dec = NULL;
    CU_ASSERT_FATAL(sl_fec_decoder_create(&dec, &cfg) == SL_OK);
    struct sl_fec_decoded out;
    struct sl_fec_symbol sym = { .session = 5, .k = 4, .m = 2, .index = 0, .symbol_size = 64,
                                 .data = blk.sym };
    for (uint64_t seq = 0; seq < 5; seq++) {
        sym.block_seq = seq;
        CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 1000 + seq * 30), SL_ERR_AGAIN);
    }
    /* first symbols at 1000, 1030, 1060, 1090, 1120; at 1150 the first two are >= 100 old */
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 1150), 2);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 3);
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 1150), 0);
    /* a later symbol does not refresh the age: it counts from the first */
    sym.block_seq = 2;
    sym.index = 1;
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &sym, 1155), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(sl_fec_decoder_tick(dec, 1160), 1);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.unrecoverable, 3);
    CU_ASSERT_EQUAL(ctr.evicted, 0);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

/* Loses data symbols a and b and repair symbols 18, 19 of a k=16, m=4
 * block: exactly k' symbols arrive, so the set combined is fixed whatever
 * the arrival order. */
static void lose(struct sl_fec_decoder *dec, const struct sl_fec_block *blk, uint64_t seq,
                 unsigned a, unsigned b, uint64_t *rng, unsigned *fail)
{
    uint64_t mask[4] = { 0 };
    mask_set(mask, a);
    mask_set(mask, b);
    mask_set(mask, 18);
    mask_set(mask, 19);
    bool ok = false;
    tu_feed(dec, blk, mask, 3, seq, 0, rng, &ok);
    *fail += !ok;
}

SL_TEST(decode, matrix_cache_hits_and_lru)
{
    uint64_t rng = 0x5eed000a;
    struct sl_fec_block blk = make_block(16, 4, 64, 16 * 64, &rng);
    struct sl_fec_decoder *dec = tu_decoder(16, 4, 64, 4, 2);
    unsigned fail = 0;
    struct sl_fec_counters ctr;
    lose(dec, &blk, 1, 2, 7, &rng, &fail);     /* miss A */
    lose(dec, &blk, 2, 2, 7, &rng, &fail);     /* hit A */
    lose(dec, &blk, 3, 2, 7, &rng, &fail);     /* hit A */
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.cache_misses, 1);
    CU_ASSERT_EQUAL(ctr.cache_hits, 2);
    lose(dec, &blk, 4, 0, 15, &rng, &fail);    /* miss B */
    lose(dec, &blk, 5, 2, 7, &rng, &fail);     /* hit A: A most recent */
    lose(dec, &blk, 6, 3, 4, &rng, &fail);     /* miss C, evicts B */
    lose(dec, &blk, 7, 2, 7, &rng, &fail);     /* hit A */
    lose(dec, &blk, 8, 0, 15, &rng, &fail);    /* miss B again */
    /* losing a repair symbol instead changes which symbols are combined */
    lose(dec, &blk, 9, 2, 16, &rng, &fail);    /* miss D */
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.cache_misses, 5);
    CU_ASSERT_EQUAL(ctr.cache_hits, 4);
    CU_ASSERT_EQUAL(ctr.blocks_recovered, 9);
    CU_ASSERT_EQUAL(fail, 0);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}

SL_TEST(decode, config_errors)
{
    struct sl_fec_decoder_config ok = { .k_max = 4, .m_max = 2, .symbol_max = 64, .entries = 1,
                                        .done_history = 1, .cache_entries = 1, .max_age_us = 1 };
    struct sl_fec_decoder *d = NULL;
    CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &ok), SL_OK);
    sl_fec_decoder_destroy(d);
    struct sl_fec_decoder_config c;
    c = ok; c.k_max = 0;           CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.m_max = 0;           CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.k_max = 250; c.m_max = 6; CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.symbol_max = 63;     CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.symbol_max = 8901;   CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.entries = 0;         CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.done_history = 0;    CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    c = ok; c.cache_entries = 0;   CU_ASSERT_EQUAL(sl_fec_decoder_create(&d, &c), SL_ERR_RANGE);
    CU_ASSERT_PTR_NULL(d);
}

/* Junk that claims an announced id first (other k') once pushed the
 * genuine identity into the small unannounced part, where junk holding
 * k'-1 symbols evicted it. Every identity now stays announced, and when
 * the genuine block is done the junk identity of its id is freed. */
SL_TEST(decode, second_identity_stays_announced_and_freed_when_done)
{
    uint64_t rng = 0x5eed000b;
    struct sl_fec_block blk = make_block(4, 2, 64, 256, &rng);
    struct sl_fec_decoder_config cfg = {
        .k_max = 4, .m_max = 2, .symbol_max = 64, .entries = 4, .entries_unannounced = 2,
        .done_history = 16, .cache_entries = 4, .max_age_us = 1000000,
    };
    struct sl_fec_decoder *dec = NULL;
    CU_ASSERT_FATAL(sl_fec_decoder_create(&dec, &cfg) == SL_OK);
    struct sl_fec_decoded out;
    uint8_t junk[64];
    memset(junk, 0xA5, sizeof junk);
    struct sl_fec_symbol pre = { .session = 5, .block_seq = 7, .k = 3, .m = 2, .index = 0,
                                 .symbol_size = 64, .data = junk };
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &pre, 0), SL_ERR_AGAIN);
    struct sl_fec_symbol g = { .session = 5, .block_seq = 7, .k = 4, .m = 2, .index = 0,
                               .symbol_size = 64, .data = blk.sym };
    CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &g, 1), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending_unannounced(dec), 0);
    /* a wall of unannounced junk, k'-1 symbols each, newer than the genuine */
    for (uint64_t id = 100; id < 104; id++)
        for (uint8_t i = 0; i < 2; i++) {
            struct sl_fec_symbol w = { .session = 5, .block_seq = id, .k = 3, .m = 2, .index = i,
                                       .symbol_size = 64, .data = junk, .unannounced = true };
            CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &w, 2), SL_ERR_AGAIN);
        }
    for (unsigned i = 1; i < 4; i++) {
        g.index = (uint8_t)i;
        g.data = blk.sym + i * 64;
        CU_ASSERT_EQUAL(sl_fec_decode(dec, &out, &g, 3), i == 3 ? SL_OK : SL_ERR_AGAIN);
    }
    CU_ASSERT_EQUAL(out.k, 4);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 3);   /* the k'=3 identity + 2 unannounced */
    sl_fec_decoder_done(dec, &out);
    CU_ASSERT_EQUAL(sl_fec_decoder_pending(dec), 2);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    CU_ASSERT_EQUAL(ctr.demoted, 1);
    sl_fec_decoder_destroy(dec);
    free(blk.sym);
}
