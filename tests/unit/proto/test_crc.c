/* CRC32C: the standard check value, agreement with a bit-at-a-time
 * reference at every length and alignment, and incremental use. */
#include <stdint.h>
#include <string.h>

#include "sl_crc.h"
#include "sl_test.h"

static uint32_t crc_reference(const uint8_t *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

SL_TEST(crc, check_value)
{
    CU_ASSERT_EQUAL(sl_crc_compute("123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(sl_crc_compute("", 0), 0u);
    /* RFC 3720 B.4: 32 bytes of zeros, and of 0xFF. */
    uint8_t z[32];
    memset(z, 0, sizeof z);
    CU_ASSERT_EQUAL(sl_crc_compute(z, sizeof z), 0x8A9136AAu);
    memset(z, 0xFF, sizeof z);
    CU_ASSERT_EQUAL(sl_crc_compute(z, sizeof z), 0x62A8AB43u);
}

SL_TEST(crc, matches_reference_every_length_and_offset)
{
    uint8_t buf[600];
    uint32_t x = 0x12345678u;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= sizeof buf; len += (len < 80 ? 1 : 37))
            CU_ASSERT_EQUAL_FATAL(sl_crc_compute(buf + off, len), crc_reference(buf + off, len));
}

SL_TEST(crc, extend_equals_one_pass)
{
    const char *s = "123456789";
    for (size_t cut = 0; cut <= 9; cut++)
        CU_ASSERT_EQUAL(sl_crc_extend(sl_crc_compute(s, cut), s + cut, 9 - cut), 0xE3069283u);
    CU_ASSERT_EQUAL(sl_crc_extend(0, s, 9), 0xE3069283u);
}
