/* sl_buf / sl_wbuf: every getter fails cleanly one byte short, zeroes its
 * output, never moves the cursor on failure; exactly-consumed is enforced. */
#include <string.h>

#include "sl_buf.h"
#include "sl_test.h"

SL_TEST(buf, roundtrip_all_widths)
{
    uint8_t mem[32];
    struct sl_wbuf w = sl_wbuf_make(mem, sizeof mem);
    CU_ASSERT_EQUAL(sl_wbuf_put_u8(&w, 0xA5), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_u16be(&w, 0x1234), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_u32be(&w, 0xDEADBEEFu), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_u64be(&w, 0x0102030405060708ull), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_bytes(&w, "xyz", 3), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_zeros(&w, 2), SL_OK);
    CU_ASSERT_EQUAL(w.off, 20u);
    static const uint8_t want[20] = { 0xA5, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8,
                                      'x', 'y', 'z', 0, 0 };
    CU_ASSERT_EQUAL(memcmp(mem, want, sizeof want), 0);

    struct sl_buf b = sl_buf_make(mem, w.off);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t s[3];
    CU_ASSERT_EQUAL(sl_buf_get_u8(&b, &u8), SL_OK);
    CU_ASSERT_EQUAL(u8, 0xA5);
    CU_ASSERT_EQUAL(sl_buf_get_u16be(&b, &u16), SL_OK);
    CU_ASSERT_EQUAL(u16, 0x1234);
    CU_ASSERT_EQUAL(sl_buf_get_u32be(&b, &u32), SL_OK);
    CU_ASSERT_EQUAL(u32, 0xDEADBEEFu);
    CU_ASSERT_EQUAL(sl_buf_get_u64be(&b, &u64), SL_OK);
    CU_ASSERT_EQUAL(u64, 0x0102030405060708ull);
    CU_ASSERT_EQUAL(sl_buf_get_bytes(&b, s, 3), SL_OK);
    CU_ASSERT_EQUAL(memcmp(s, "xyz", 3), 0);
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_ERR_TRAILING);
    CU_ASSERT_EQUAL(sl_buf_skip(&b, 2), SL_OK);
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
}

SL_TEST(buf, one_byte_short_fails_and_zeroes)
{
    const uint8_t mem[8] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
    for (size_t n = 0; n < 8; n++) {
        struct sl_buf b = sl_buf_make(mem, n);
        uint64_t u64 = 99;
        CU_ASSERT_EQUAL(sl_buf_get_u64be(&b, &u64), SL_ERR_TRUNCATED);
        CU_ASSERT_EQUAL(u64, 0);
        CU_ASSERT_EQUAL(b.off, 0);
    }
    struct sl_buf b = sl_buf_make(mem, 3);
    uint32_t u32 = 1;
    CU_ASSERT_EQUAL(sl_buf_get_u32be(&b, &u32), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(u32, 0);
    uint16_t u16 = 1;
    b = sl_buf_make(mem, 1);
    CU_ASSERT_EQUAL(sl_buf_get_u16be(&b, &u16), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(u16, 0);
    uint8_t u8 = 1;
    b = sl_buf_make(mem, 0);
    CU_ASSERT_EQUAL(sl_buf_get_u8(&b, &u8), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(u8, 0);
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
}

SL_TEST(buf, huge_lengths_do_not_wrap)
{
    const uint8_t mem[4] = { 0 };
    struct sl_buf b = sl_buf_make(mem, sizeof mem);
    CU_ASSERT_EQUAL(sl_buf_skip(&b, 1), SL_OK);
    const uint8_t *p = mem;
    CU_ASSERT_EQUAL(sl_buf_get_ptr(&b, &p, SIZE_MAX), SL_ERR_TRUNCATED);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(sl_buf_skip(&b, SIZE_MAX - 1), SL_ERR_TRUNCATED);
    struct sl_buf sub;
    CU_ASSERT_EQUAL(sl_buf_sub(&b, &sub, 4), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(sl_buf_sub(&b, &sub, 3), SL_OK);
    CU_ASSERT_EQUAL(sub.len, 3u);
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
}

SL_TEST(buf, writer_overflow_writes_nothing)
{
    uint8_t mem[5] = { 0 };
    struct sl_wbuf w = sl_wbuf_make(mem, 3);
    CU_ASSERT_EQUAL(sl_wbuf_put_u32be(&w, 0xFFFFFFFFu), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(w.off, 0u);
    CU_ASSERT_EQUAL(mem[0], 0);
    CU_ASSERT_EQUAL(sl_wbuf_put_u16be(&w, 0xFFFF), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_u16be(&w, 0xFFFF), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(sl_wbuf_put_bytes(&w, "ab", 2), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(sl_wbuf_put_zeros(&w, SIZE_MAX), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(sl_wbuf_put_u8(&w, 7), SL_OK);
    CU_ASSERT_EQUAL(sl_wbuf_put_u8(&w, 7), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(mem[3], 0);
}

/* The little-endian getters (pcap file and record headers): the byte order
 * is the reverse of the big-endian ones on the same bytes. */
SL_TEST(buf, little_endian_getters)
{
    static const uint8_t mem[14] = { 0x34, 0x12, 0xEF, 0xBE, 0xAD, 0xDE, 8, 7, 6, 5, 4, 3, 2, 1 };
    struct sl_buf b = sl_buf_make(mem, sizeof mem);
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    CU_ASSERT_EQUAL(sl_buf_get_u16le(&b, &u16), SL_OK);
    CU_ASSERT_EQUAL(u16, 0x1234);
    CU_ASSERT_EQUAL(sl_buf_get_u32le(&b, &u32), SL_OK);
    CU_ASSERT_EQUAL(u32, 0xDEADBEEFu);
    CU_ASSERT_EQUAL(sl_buf_get_u64le(&b, &u64), SL_OK);
    CU_ASSERT_EQUAL(u64, 0x0102030405060708ull);
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
    b = sl_buf_make(mem, sizeof mem);
    CU_ASSERT_EQUAL(sl_buf_get_u32be(&b, &u32), SL_OK);
    CU_ASSERT_EQUAL(u32, 0x3412EFBEu);
    CU_ASSERT_EQUAL(sl_le16_get(mem), 0x1234);
    CU_ASSERT_EQUAL(sl_le32_get(mem + 2), 0xDEADBEEFu);
    CU_ASSERT_EQUAL(sl_le64_get(mem + 6), 0x0102030405060708ull);
    /* The putters write what the getters read, and only their own bytes. */
    uint8_t out[8] = { 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55 };
    sl_le16_put(out + 1, 0x1234);
    sl_le32_put(out + 3, 0xDEADBEEFu);
    static const uint8_t want[8] = { 0x55, 0x34, 0x12, 0xEF, 0xBE, 0xAD, 0xDE, 0x55 };
    CU_ASSERT_EQUAL(memcmp(out, want, sizeof want), 0);
    CU_ASSERT_EQUAL(sl_le16_get(out + 1), 0x1234);
    CU_ASSERT_EQUAL(sl_le32_get(out + 3), 0xDEADBEEFu);
}

/* One byte short: fail, zero the output, leave the cursor where it was. */
SL_TEST(buf, little_endian_one_byte_short)
{
    const uint8_t mem[8] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
    for (size_t n = 0; n < 8; n++) {
        struct sl_buf b = sl_buf_make(mem, n);
        uint64_t u64 = 99;
        CU_ASSERT_EQUAL(sl_buf_get_u64le(&b, &u64), SL_ERR_TRUNCATED);
        CU_ASSERT_EQUAL(u64, 0);
        CU_ASSERT_EQUAL(b.off, 0);
        if (n < 4) {
            uint32_t u32 = 99;
            CU_ASSERT_EQUAL(sl_buf_get_u32le(&b, &u32), SL_ERR_TRUNCATED);
            CU_ASSERT_EQUAL(u32, 0);
            CU_ASSERT_EQUAL(b.off, 0);
        }
        if (n < 2) {
            uint16_t u16 = 99;
            CU_ASSERT_EQUAL(sl_buf_get_u16le(&b, &u16), SL_ERR_TRUNCATED);
            CU_ASSERT_EQUAL(u16, 0);
            CU_ASSERT_EQUAL(b.off, 0);
        }
    }
    /* Past the middle of a buffer too: off > 0, fewer than 4 left. */
    struct sl_buf b = sl_buf_make(mem, 6);
    uint32_t u32 = 0;
    CU_ASSERT_EQUAL(sl_buf_get_u32le(&b, &u32), SL_OK);
    CU_ASSERT_EQUAL(sl_buf_get_u32le(&b, &u32), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(u32, 0);
    CU_ASSERT_EQUAL(b.off, 4u);
}

SL_TEST(buf, varint_roundtrip_and_limits)
{
    static const uint64_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384, 1ull << 32, UINT64_MAX };
    static const size_t lens[] = { 1, 1, 1, 2, 2, 2, 3, 5, 10 };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t mem[SL_VARINT_MAX];
        uint64_t v = 1;
        CU_ASSERT_EQUAL(sl_varint_put(mem, vals[i]), lens[i]);
        struct sl_buf b = sl_buf_make(mem, lens[i]);
        CU_ASSERT_EQUAL(sl_buf_get_varint(&b, &v), SL_OK);
        CU_ASSERT_EQUAL(v, vals[i]);
        CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
        b = sl_buf_make(mem, lens[i] - 1);            /* one byte short */
        CU_ASSERT_EQUAL(sl_buf_get_varint(&b, &v), SL_ERR_TRUNCATED);
        CU_ASSERT_EQUAL(v, 0);
        CU_ASSERT_EQUAL(b.off, 0);
    }
    uint8_t mem[2];
    CU_ASSERT_EQUAL(sl_varint_put(mem, 300), 2);
    CU_ASSERT_EQUAL(mem[0], 0xAC);                       /* protobuf's own example */
    CU_ASSERT_EQUAL(mem[1], 0x02);

    /* More than 64 bits: a tenth byte above 1, or an eleventh byte. */
    uint8_t big[11];
    memset(big, 0xFF, 9);
    big[9] = 0x02;
    uint64_t v = 1;
    struct sl_buf b = sl_buf_make(big, 10);
    CU_ASSERT_EQUAL(sl_buf_get_varint(&b, &v), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(b.off, 0);
    memset(big, 0x80, sizeof big);
    big[10] = 0;
    b = sl_buf_make(big, sizeof big);
    CU_ASSERT_EQUAL(sl_buf_get_varint(&b, &v), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(b.off, 0);
}
