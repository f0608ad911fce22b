/* The code itself: repair-count rule, coefficients against ISA-L's Cauchy
 * generator and an independent GF(2^8), known-answer vectors, the encoder
 * against the reference encoder, pool and argument errors. */
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fec_testutil.h"
#include "sl_test.h"

SL_TEST(code, repair_count_rule)
{
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 64), 8);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 1), 2);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 8), 8);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 9), 8);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 57), 8);
    CU_ASSERT_EQUAL(sl_fec_repair_count(4, 2, 1), 2);
    CU_ASSERT_EQUAL(sl_fec_repair_count(4, 2, 2), 2);
    CU_ASSERT_EQUAL(sl_fec_repair_count(4, 2, 3), 2);
    CU_ASSERT_EQUAL(sl_fec_repair_count(1, 254, 1), 254);
    /* the small-block floor min(m, k' + 1), then proportional */
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 16, 1), 2);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 16, 4), 5);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 16, 15), 16);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 16, 40), 16);
    CU_ASSERT_EQUAL(sl_fec_repair_count(32, 4, 2), 3);
    CU_ASSERT_EQUAL(sl_fec_repair_count(32, 4, 31), 4);
    CU_ASSERT_EQUAL(sl_fec_repair_count(254, 1, 254), 1);
    CU_ASSERT_EQUAL(sl_fec_repair_count(128, 127, 1), 2);
    CU_ASSERT_EQUAL(sl_fec_repair_count(128, 127, 2), 3);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 0), 0);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 8, 65), 0);
    CU_ASSERT_EQUAL(sl_fec_repair_count(200, 56, 1), 0);
    CU_ASSERT_EQUAL(sl_fec_repair_count(64, 0, 1), 0);
    /* never more than m, never less than 1, monotonic in k' */
    for (unsigned k = 1; k < 255; k += 7)
        for (unsigned m = 1; k + m <= 255; m += 5) {
            unsigned prev = 1;
            for (unsigned kb = 1; kb <= k; kb++) {
                unsigned mb = sl_fec_repair_count(k, m, kb);
                CU_ASSERT(mb >= prev && mb <= m && mb >= 1);
                prev = mb;
            }
            CU_ASSERT_EQUAL(prev, m);
        }
}

SL_TEST(code, coefficients_are_isal_cauchy_rows)
{
    static uint8_t gen[255 * 255];
    const unsigned cases[][2] = { { 1, 1 }, { 4, 2 }, { 64, 8 }, { 200, 55 }, { 1, 254 }, { 254, 1 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned kb = cases[c][0], mb = cases[c][1];
        gf_gen_cauchy1_matrix(gen, (int)(kb + mb), (int)kb);
        unsigned bad = 0;
        for (unsigned r = 0; r < mb; r++)
            for (unsigned j = 0; j < kb; j++) {
                uint8_t want = gen[(kb + r) * kb + j];
                bad += sl_fec_coefficient(kb, r, j) != want;
                bad += tu_gf_inv((uint8_t)((kb + r) ^ j)) != want;
            }
        CU_ASSERT_EQUAL(bad, 0);
    }
    CU_ASSERT_EQUAL(sl_fec_coefficient(4, 0, 4), 0);
    CU_ASSERT_EQUAL(sl_fec_coefficient(4, 252, 0), 0);
    /* 1/(4^0) = 1/4 in GF(2^8)/0x11D is 0x47 */
    CU_ASSERT_EQUAL(sl_fec_coefficient(4, 0, 0), 0x47);
    CU_ASSERT_EQUAL(tu_gf_mul(0x47, 4), 1);
}

/* Known answer: k=4, m=2, S=64, input byte i = (i * 37 + 11) mod 256, a full
 * block (250 bytes -> k'=4, m'=2, 6 bytes padding) and an early-closed one
 * (100 bytes -> k'=2, m'=1). The file holds the repair symbols in hex. */
static size_t kat_text(char *out, size_t cap)
{
    struct sl_fec_encoder *enc = NULL;
    if (sl_fec_encoder_create(&enc, 4, 2, 64) != SL_OK)
        return 0;
    uint8_t in[256];
    for (unsigned i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    uint8_t mem[6 * 64];
    struct sl_fec_block blk = { .sym = mem, .cap = sizeof mem };
    size_t off = 0;
    off += (size_t)snprintf(out + off, cap - off,
                            "# sl_fec known answer: k=4 m=2 S=64, input byte i = (i*37+11) mod 256\n"
                            "# one line per repair symbol: len k' m' index hex(S bytes)\n");
    const size_t lens[] = { 250, 100 };
    for (size_t c = 0; c < 2; c++) {
        if (sl_fec_encode(enc, &blk, in, lens[c]) != SL_OK)
            break;
        for (unsigned r = 0; r < blk.m; r++) {
            off += (size_t)snprintf(out + off, cap - off, "%zu %u %u %u ", lens[c], blk.k, blk.m, blk.k + r);
            for (unsigned b = 0; b < 64; b++)
                off += (size_t)snprintf(out + off, cap - off, "%02x", mem[(blk.k + r) * 64 + b]);
            off += (size_t)snprintf(out + off, cap - off, "\n");
        }
    }
    sl_fec_encoder_destroy(enc);
    return off;
}

SL_TEST(code, known_answer_k4_m2_s64)
{
    static char now[8192];
    static char want[8192];
    size_t n = kat_text(now, sizeof now);
    CU_ASSERT_FATAL(n > 0 && n < sizeof now);
    const char *path = SL_TEST_DATA_DIR "/rs_k4_m2_s64.txt";
    const char *regen = getenv("SL_REGEN");
    if (regen && strcmp(regen, "1") == 0) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        CU_ASSERT_EQUAL(fwrite(now, 1, n, f), n);
        fclose(f);
    }
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    size_t got = fread(want, 1, sizeof want, f);
    fclose(f);
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT_EQUAL(memcmp(now, want, n < got ? n : got), 0);
}

SL_TEST(code, encoder_matches_reference)
{
    uint64_t rng = 0x5eed0001;
    static uint8_t in[255 * 512];
    static uint8_t mem[255 * 512];
    static uint8_t ref[512];
    for (unsigned t = 0; t < 40; t++) {
        unsigned k = t == 0 ? 1 : t == 1 ? 254 : t == 2 ? 1 : tu_range(&rng, 1, 120);
        unsigned m = t == 0 ? 1 : t == 1 ? 1 : t == 2 ? 254 : tu_range(&rng, 1, 255 - k < 40 ? 255 - k : 40);
        size_t s = tu_range(&rng, 64, 512);
        struct sl_fec_encoder *enc = NULL;
        CU_ASSERT_FATAL(sl_fec_encoder_create(&enc, k, m, s) == SL_OK);
        size_t len = tu_range(&rng, 1, (unsigned)(k * s));
        tu_fill(&rng, in, len);
        memset(mem, 0xAA, sizeof mem);
        struct sl_fec_block blk = { .sym = mem, .cap = sizeof mem };
        CU_ASSERT_FATAL(sl_fec_encode(enc, &blk, in, len) == SL_OK);
        unsigned kb = (unsigned)((len + s - 1) / s);
        CU_ASSERT_EQUAL(blk.k, kb);
        CU_ASSERT_EQUAL(blk.m, sl_fec_repair_count(k, m, kb));
        CU_ASSERT_EQUAL(blk.len, len);
        CU_ASSERT_EQUAL(blk.symbol_size, s);
        CU_ASSERT_EQUAL(sl_fec_encoded_bytes(enc, len), (kb + blk.m) * s);
        CU_ASSERT_EQUAL(memcmp(mem, in, len), 0);
        unsigned pad_bad = 0;
        for (size_t i = len; i < kb * s; i++)
            pad_bad += mem[i] != 0;
        CU_ASSERT_EQUAL(pad_bad, 0);
        /* the reference is slow; check a few repair symbols on big codes */
        for (unsigned r = 0; r < blk.m; r += blk.m > 4 ? blk.m / 3 : 1) {
            tu_ref_repair(ref, mem, kb, r, s);
            CU_ASSERT_EQUAL(memcmp(ref, mem + (kb + r) * s, s), 0);
        }
        sl_fec_encoder_destroy(enc);
    }
}

SL_TEST(code, encode_in_place_equals_copy)
{
    struct sl_fec_encoder *enc = NULL;
    CU_ASSERT_FATAL(sl_fec_encoder_create(&enc, 8, 3, 100) == SL_OK);
    uint8_t a[11 * 100], b[11 * 100], in[700];
    uint64_t rng = 7;
    tu_fill(&rng, in, sizeof in);
    struct sl_fec_block x = { .sym = a, .cap = sizeof a };
    struct sl_fec_block y = { .sym = b, .cap = sizeof b };
    memset(b, 0x55, sizeof b);
    memcpy(b, in, sizeof in);
    CU_ASSERT_EQUAL(sl_fec_encode(enc, &x, in, sizeof in), SL_OK);
    CU_ASSERT_EQUAL(sl_fec_encode(enc, &y, b, sizeof in), SL_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, (size_t)(x.k + x.m) * 100), 0);
    sl_fec_encoder_destroy(enc);
}

SL_TEST(code, argument_errors)
{
    struct sl_fec_encoder *enc = (struct sl_fec_encoder *)1;
    CU_ASSERT_EQUAL(sl_fec_encoder_create(&enc, 0, 2, 64), SL_ERR_RANGE);
    CU_ASSERT_PTR_NULL(enc);
    CU_ASSERT_EQUAL(sl_fec_encoder_create(&enc, 4, 0, 64), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_encoder_create(&enc, 200, 56, 64), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_encoder_create(&enc, 4, 2, 63), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_encoder_create(&enc, 4, 2, 8901), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_encoder_create(&enc, 4, 2, 64), SL_OK);
    uint8_t in[4 * 64 + 1] = { 0 };
    uint8_t mem[6 * 64];
    struct sl_fec_block blk = { .sym = mem, .cap = sizeof mem };
    CU_ASSERT_EQUAL(sl_fec_encode(enc, &blk, in, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_encode(enc, &blk, in, sizeof in), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_encoded_bytes(enc, 0), 0);
    CU_ASSERT_EQUAL(sl_fec_encoded_bytes(enc, 256), 6 * 64);
    CU_ASSERT_EQUAL(sl_fec_encoded_bytes(enc, 64), 3 * 64);   /* k'=1, m'=min(2, 1+1) */
    blk.cap = 6 * 64 - 1;
    CU_ASSERT_EQUAL(sl_fec_encode(enc, &blk, in, 256), SL_ERR_OVERFLOW);
    blk.cap = 3 * 64;
    CU_ASSERT_EQUAL(sl_fec_encode(enc, &blk, in, 64), SL_OK);
    CU_ASSERT_EQUAL(blk.k, 1);
    CU_ASSERT_EQUAL(blk.m, 2);
    sl_fec_encoder_destroy(enc);
}

SL_TEST(code, pool_get_put)
{
    struct sl_fec_pool *p = NULL;
    CU_ASSERT_EQUAL(sl_fec_pool_create(&p, 0, 4, 2, 64), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_pool_create(&p, 3, 4, 2, 64), SL_OK);
    struct sl_fec_block *b[4];
    for (int i = 0; i < 3; i++) {
        b[i] = sl_fec_pool_get(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b[i]);
        CU_ASSERT_EQUAL(b[i]->cap, 6 * 64);
        memset(b[i]->sym, i, b[i]->cap);   /* ASan checks the extent */
        b[i]->k = 3;
    }
    CU_ASSERT_PTR_NULL(sl_fec_pool_get(p));
    CU_ASSERT_EQUAL(sl_fec_pool_available(p), 0);
    sl_fec_pool_put(p, b[1]);
    sl_fec_pool_put(p, b[1]);   /* a double put is ignored */
    CU_ASSERT_EQUAL(sl_fec_pool_available(p), 1);
    b[3] = sl_fec_pool_get(p);
    CU_ASSERT_PTR_EQUAL(b[3], b[1]);
    CU_ASSERT_EQUAL(b[3]->k, 0);
    struct sl_fec_block foreign = { 0 };
    sl_fec_pool_put(p, &foreign);
    CU_ASSERT_EQUAL(sl_fec_pool_available(p), 0);
    sl_fec_pool_destroy(p);
}
