/* Value codec: the docs/mirror.md §2.3 float vectors, every type in every word
 * order against hand-written register images, bit-exact round trips,
 * range checks, engineering values and the deadband rule. */
#include <string.h>

#include "sl_regs.h"
#include "sl_test.h"
#include "sl_wire.h"

static void check(uint8_t type, uint8_t order, uint64_t raw, const uint16_t *want, unsigned n)
{
    uint16_t regs[4] = { 0 };
    uint64_t back = 0;
    CU_ASSERT_EQUAL(sl_regs_count(type), n);
    CU_ASSERT_EQUAL(sl_regs_encode(regs, n, raw, type, order), SL_OK);
    CU_ASSERT_EQUAL(memcmp(regs, want, n * sizeof *regs), 0);
    CU_ASSERT_EQUAL(sl_regs_decode(&back, want, n, type, order), SL_OK);
    CU_ASSERT_EQUAL(back, raw);
}

SL_TEST(regs, float32_design_vectors)
{
    /* 123456.0f = 0x47F12000 (docs/mirror.md §2.3). */
    float f = 123456.0f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    CU_ASSERT_EQUAL(bits, 0x47F12000u);
    check(SL_TYPE_FLOAT32, SL_WORD_ABCD, bits, (const uint16_t[]){ 0x47F1, 0x2000 }, 2);
    check(SL_TYPE_FLOAT32, SL_WORD_CDAB, bits, (const uint16_t[]){ 0x2000, 0x47F1 }, 2);
    check(SL_TYPE_FLOAT32, SL_WORD_BADC, bits, (const uint16_t[]){ 0xF147, 0x0020 }, 2);
    check(SL_TYPE_FLOAT32, SL_WORD_DCBA, bits, (const uint16_t[]){ 0x0020, 0xF147 }, 2);
    uint64_t raw;
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, (const uint16_t[]){ 0x2000, 0x47F1 }, 2, SL_TYPE_FLOAT32,
                                   SL_WORD_CDAB), SL_OK);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(raw, SL_TYPE_FLOAT32), 123456.0, 0.0);
}

SL_TEST(regs, int32_uint32_all_orders)
{
    /* -2 = 0xFFFFFFFE; 0x12345678 */
    check(SL_TYPE_INT32, SL_WORD_ABCD, 0xFFFFFFFEu, (const uint16_t[]){ 0xFFFF, 0xFFFE }, 2);
    check(SL_TYPE_INT32, SL_WORD_CDAB, 0xFFFFFFFEu, (const uint16_t[]){ 0xFFFE, 0xFFFF }, 2);
    check(SL_TYPE_INT32, SL_WORD_BADC, 0xFFFFFFFEu, (const uint16_t[]){ 0xFFFF, 0xFEFF }, 2);
    check(SL_TYPE_INT32, SL_WORD_DCBA, 0xFFFFFFFEu, (const uint16_t[]){ 0xFEFF, 0xFFFF }, 2);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(0xFFFFFFFEu, SL_TYPE_INT32), -2.0, 0.0);
    check(SL_TYPE_UINT32, SL_WORD_ABCD, 0x12345678u, (const uint16_t[]){ 0x1234, 0x5678 }, 2);
    check(SL_TYPE_UINT32, SL_WORD_CDAB, 0x12345678u, (const uint16_t[]){ 0x5678, 0x1234 }, 2);
    check(SL_TYPE_UINT32, SL_WORD_BADC, 0x12345678u, (const uint16_t[]){ 0x3412, 0x7856 }, 2);
    check(SL_TYPE_UINT32, SL_WORD_DCBA, 0x12345678u, (const uint16_t[]){ 0x7856, 0x3412 }, 2);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(0xFFFFFFFEu, SL_TYPE_UINT32), 4294967294.0, 0.0);
}

SL_TEST(regs, int64_float64_all_orders)
{
    const uint64_t v = 0x0102030405060708ull;
    check(SL_TYPE_INT64, SL_WORD_ABCD, v, (const uint16_t[]){ 0x0102, 0x0304, 0x0506, 0x0708 }, 4);
    check(SL_TYPE_INT64, SL_WORD_CDAB, v, (const uint16_t[]){ 0x0708, 0x0506, 0x0304, 0x0102 }, 4);
    check(SL_TYPE_INT64, SL_WORD_BADC, v, (const uint16_t[]){ 0x0201, 0x0403, 0x0605, 0x0807 }, 4);
    check(SL_TYPE_INT64, SL_WORD_DCBA, v, (const uint16_t[]){ 0x0807, 0x0605, 0x0403, 0x0201 }, 4);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(UINT64_MAX, SL_TYPE_INT64), -1.0, 0.0);
    /* 1.5 = 0x3FF8000000000000 */
    double d = 1.5;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    CU_ASSERT_EQUAL(bits, 0x3FF8000000000000ull);
    check(SL_TYPE_FLOAT64, SL_WORD_ABCD, bits, (const uint16_t[]){ 0x3FF8, 0, 0, 0 }, 4);
    check(SL_TYPE_FLOAT64, SL_WORD_CDAB, bits, (const uint16_t[]){ 0, 0, 0, 0x3FF8 }, 4);
    check(SL_TYPE_FLOAT64, SL_WORD_BADC, bits, (const uint16_t[]){ 0xF83F, 0, 0, 0 }, 4);
    check(SL_TYPE_FLOAT64, SL_WORD_DCBA, bits, (const uint16_t[]){ 0, 0, 0, 0xF83F }, 4);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(bits, SL_TYPE_FLOAT64), 1.5, 0.0);
}

SL_TEST(regs, sixteen_bit_and_bool)
{
    check(SL_TYPE_INT16, SL_WORD_ABCD, 0xFFFF, (const uint16_t[]){ 0xFFFF }, 1);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(0xFFFF, SL_TYPE_INT16), -1.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_number(0xFFFF, SL_TYPE_UINT16), 65535.0, 0.0);
    check(SL_TYPE_UINT16, SL_WORD_ABCD, 0x1234, (const uint16_t[]){ 0x1234 }, 1);
    check(SL_TYPE_BOOL, SL_WORD_ABCD, 1, (const uint16_t[]){ 1 }, 1);
    uint64_t raw = 9;
    /* any non-zero bit reads as 1 */
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, (const uint16_t[]){ 0xFF }, 1, SL_TYPE_BOOL, 0), SL_OK);
    CU_ASSERT_EQUAL(raw, 1);
    /* word orders other than ABCD are meaningless on one register */
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, (const uint16_t[]){ 1 }, 1, SL_TYPE_INT16, SL_WORD_BADC),
                    SL_ERR_TYPE);
    CU_ASSERT_EQUAL(raw, 0);
}

SL_TEST(regs, round_trip_bit_exact)
{
    static const uint8_t types[] = { SL_TYPE_INT16, SL_TYPE_UINT16, SL_TYPE_INT32, SL_TYPE_UINT32,
                                     SL_TYPE_INT64, SL_TYPE_FLOAT32, SL_TYPE_FLOAT64 };
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int iter = 0; iter < 2000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (size_t t = 0; t < sizeof types; t++) {
            unsigned n = sl_regs_count(types[t]);
            for (uint8_t o = 0; o < (n > 1 ? 4 : 1); o++) {
                uint16_t regs[4];
                for (unsigned i = 0; i < n; i++)
                    regs[i] = (uint16_t)(x >> (16 * i));
                uint64_t raw;
                uint16_t again[4];
                CU_ASSERT_EQUAL_FATAL(sl_regs_decode(&raw, regs, n, types[t], o), SL_OK);
                CU_ASSERT_EQUAL_FATAL(sl_regs_encode(again, n, raw, types[t], o), SL_OK);
                CU_ASSERT_EQUAL_FATAL(memcmp(regs, again, n * sizeof *regs), 0);
            }
        }
    }
    /* NaN payloads survive (no float conversion on the way) */
    uint16_t nan[2] = { 0x7FC0, 0x1234 }, out[2];
    uint64_t raw;
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, nan, 2, SL_TYPE_FLOAT32, SL_WORD_ABCD), SL_OK);
    CU_ASSERT_EQUAL(sl_regs_encode(out, 2, raw, SL_TYPE_FLOAT32, SL_WORD_ABCD), SL_OK);
    CU_ASSERT_EQUAL(memcmp(nan, out, sizeof nan), 0);
}

SL_TEST(regs, bad_arguments)
{
    uint16_t regs[4] = { 7, 7, 7, 7 };
    uint64_t raw = 5;
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, regs, 1, SL_TYPE_INT32, SL_WORD_ABCD), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(raw, 0);
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, regs, 2, 99, SL_WORD_ABCD), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(sl_regs_decode(&raw, regs, 2, SL_TYPE_INT32, 4), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(sl_regs_encode(regs, 1, 0x10000, SL_TYPE_UINT16, SL_WORD_ABCD), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(regs[0], 0);
    CU_ASSERT_EQUAL(sl_regs_encode(regs, 2, 0x100000000ull, SL_TYPE_INT32, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_regs_encode(regs, 1, 2, SL_TYPE_BOOL, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_regs_encode(regs, 3, 1, SL_TYPE_INT64, 0), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(sl_regs_count(0), 0);
    CU_ASSERT_STRING_EQUAL(sl_regs_type_name(SL_TYPE_FLOAT64), "float64");
    CU_ASSERT_STRING_EQUAL(sl_regs_type_name(42), "?");
    CU_ASSERT_STRING_EQUAL(sl_regs_order_name(SL_WORD_BADC), "BADC");
    CU_ASSERT_STRING_EQUAL(sl_regs_space_name(SL_REG_DISCRETE), "discrete");
}

SL_TEST(regs, engineering_value)
{
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_eng(0xFFF6, SL_TYPE_INT16, 0.1, 20.0), 19.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sl_regs_eng(250, SL_TYPE_UINT16, 2.0, -273.15), 226.85, 1e-9);
}

static uint64_t f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

SL_TEST(regs, deadband)
{
    /* identical bits never send; no deadband sends any change */
    CU_ASSERT_FALSE(sl_regs_deadband_exceeded(5, 5, SL_TYPE_UINT16, 1.0, 0.0));
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(5, 6, SL_TYPE_UINT16, 1.0, 0.0));
    /* band in engineering units: scale applies, offset cancels */
    CU_ASSERT_FALSE(sl_regs_deadband_exceeded(100, 104, SL_TYPE_UINT16, 0.1, 0.5));
    CU_ASSERT_FALSE(sl_regs_deadband_exceeded(100, 105, SL_TYPE_UINT16, 0.1, 0.5 + 1e-9));
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(100, 106, SL_TYPE_UINT16, 0.1, 0.5));
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(106, 100, SL_TYPE_UINT16, 0.1, 0.5));
    /* exactly the band is not "exceeded" */
    CU_ASSERT_FALSE(sl_regs_deadband_exceeded(f32(1.0f), f32(1.5f), SL_TYPE_FLOAT32, 1.0, 0.5));
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(f32(1.0f), f32(1.75f), SL_TYPE_FLOAT32, 1.0, 0.5));
    /* negative scale */
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(0, 10, SL_TYPE_INT16, -1.0, 5.0));
    /* signed decoding: -1 -> 1 is a change of 2 */
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(0xFFFF, 1, SL_TYPE_INT16, 1.0, 1.5));
    CU_ASSERT_FALSE(sl_regs_deadband_exceeded(0xFFFF, 1, SL_TYPE_INT16, 1.0, 2.5));
    /* bool and NaN always send a change */
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(0, 1, SL_TYPE_BOOL, 1.0, 10.0));
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(f32(1.0f), 0x7FC00000u, SL_TYPE_FLOAT32, 1.0, 10.0));
    CU_ASSERT_TRUE(sl_regs_deadband_exceeded(0x7FC00000u, f32(1.0f), SL_TYPE_FLOAT32, 1.0, 10.0));
}
