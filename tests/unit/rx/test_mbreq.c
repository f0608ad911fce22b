/* Modbus request parsing: every malformed MBAP, every exception code, and
 * the answers built from the mirror (sl_mbserver_answer, no sockets). */
#include "rx_fixture.h"
#include "sl_mbreq.h"
#include "sl_mbserver.h"

/* A read request ADU: tid 0x0102, unit, fc, addr, count. */
static size_t mk_read(uint8_t *b, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count)
{
    const uint8_t adu[12] = { 0x01, 0x02, 0, 0, 0, 6, unit, fc, (uint8_t)(addr >> 8), (uint8_t)addr,
                              (uint8_t)(count >> 8), (uint8_t)count };
    memcpy(b, adu, sizeof adu);
    return sizeof adu;
}

SL_TEST(mbreq, frame_boundaries)
{
    uint8_t b[300];
    size_t n = mk_read(b, 1, 3, 0, 1), adu = 99;
    for (size_t k = 0; k < 6; k++) {
        CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, k), SL_ERR_AGAIN);
        CU_ASSERT_EQUAL(adu, 0);
    }
    for (size_t k = 6; k < n; k++) {
        CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, k), SL_ERR_AGAIN);
        CU_ASSERT_EQUAL(adu, n);                 /* total needed is known */
    }
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, n), SL_OK);
    CU_ASSERT_EQUAL(adu, n);
    /* Two requests back to back: the first one's length. */
    mk_read(b + n, 1, 3, 0, 1);
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 2 * n), SL_OK);
    CU_ASSERT_EQUAL(adu, n);
}

SL_TEST(mbreq, frame_malformed_mbap)
{
    uint8_t b[300];
    size_t adu;
    mk_read(b, 1, 3, 0, 1);
    b[3] = 1;                                    /* protocol id 1 */
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 12), SL_ERR_HEADER);
    b[3] = 0;
    b[2] = 0x80;                                 /* protocol id 0x8000 */
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 12), SL_ERR_HEADER);
    b[2] = 0;
    for (uint16_t len = 0; len < 2; len++) {     /* length < unit + fc */
        b[4] = 0;
        b[5] = (uint8_t)len;
        CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 12), SL_ERR_LENGTH);
    }
    memset(b, 0, sizeof b);
    b[4] = 0;
    b[5] = 255;                                  /* 6 + 255 = 261 > 260 */
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 261), SL_ERR_LENGTH);
    b[4] = 0xFF;
    b[5] = 0xFF;
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 261), SL_ERR_LENGTH);
    b[4] = 0;
    b[5] = 254;                                  /* exactly 260: allowed */
    CU_ASSERT_EQUAL(sl_mbreq_frame(&adu, b, 260), SL_OK);
    CU_ASSERT_EQUAL(adu, 260);
}

SL_TEST(mbreq, parse_reads)
{
    uint8_t b[16];
    struct sl_mbreq r;
    size_t n = mk_read(b, 17, 3, 0x1234, 125);
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, n), SL_OK);
    CU_ASSERT_EQUAL(r.tid, 0x0102);
    CU_ASSERT_EQUAL(r.unit, 17);
    CU_ASSERT_EQUAL(r.fc, 3);
    CU_ASSERT_EQUAL(r.addr, 0x1234);
    CU_ASSERT_EQUAL(r.count, 125);
    CU_ASSERT_EQUAL(r.exception, 0);
    CU_ASSERT_FALSE(r.write);
    for (uint8_t fc = 1; fc <= 4; fc++) {
        uint16_t max = fc <= 2 ? 2000 : 125;
        n = mk_read(b, 1, fc, 0, max);
        CU_ASSERT(sl_mbreq_parse(&r, b, n) == SL_OK && r.exception == 0);
        n = mk_read(b, 1, fc, 0, (uint16_t)(max + 1));
        CU_ASSERT(sl_mbreq_parse(&r, b, n) == SL_OK && r.exception == SL_MB_EX_ILLEGAL_VALUE);
        n = mk_read(b, 1, fc, 0, 0);
        CU_ASSERT(sl_mbreq_parse(&r, b, n) == SL_OK && r.exception == SL_MB_EX_ILLEGAL_VALUE);
        n = mk_read(b, 1, fc, 0xFFFF, 1);        /* last address: fine */
        CU_ASSERT(sl_mbreq_parse(&r, b, n) == SL_OK && r.exception == 0);
        n = mk_read(b, 1, fc, 0xFFFF, 2);        /* passes 65535 */
        CU_ASSERT(sl_mbreq_parse(&r, b, n) == SL_OK && r.exception == SL_MB_EX_ILLEGAL_ADDRESS);
        n = mk_read(b, 1, fc, (uint16_t)(0x10000 - max), max);
        CU_ASSERT(sl_mbreq_parse(&r, b, n) == SL_OK && r.exception == 0);
    }
}

SL_TEST(mbreq, parse_read_pdu_wrong_size)
{
    uint8_t b[16];
    struct sl_mbreq r;
    mk_read(b, 1, 3, 0, 1);
    /* One byte short: length 5, PDU fc + 3 bytes. */
    b[5] = 5;
    CU_ASSERT(sl_mbreq_parse(&r, b, 11) == SL_OK && r.exception == SL_MB_EX_ILLEGAL_VALUE);
    /* One byte over. */
    b[5] = 7;
    b[12] = 0;
    CU_ASSERT(sl_mbreq_parse(&r, b, 13) == SL_OK && r.exception == SL_MB_EX_ILLEGAL_VALUE);
    /* Function code only. */
    b[5] = 2;
    CU_ASSERT(sl_mbreq_parse(&r, b, 8) == SL_OK && r.exception == SL_MB_EX_ILLEGAL_VALUE);
}

SL_TEST(mbreq, parse_malformed_mbap)
{
    uint8_t b[300];
    struct sl_mbreq r;
    size_t n = mk_read(b, 1, 3, 0, 1);
    for (size_t k = 0; k < 8; k++)               /* header itself truncated */
        CU_ASSERT_NOT_EQUAL(sl_mbreq_parse(&r, b, k), SL_OK);
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, n - 1), SL_ERR_LENGTH);   /* length says 6, 5 follow */
    b[12] = 0;
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, n + 1), SL_ERR_LENGTH);   /* one trailing byte */
    b[3] = 1;
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, n), SL_ERR_HEADER);
    b[3] = 0;
    b[5] = 1;
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, 7), SL_ERR_LENGTH);
    memset(b, 0, sizeof b);
    b[5] = 255;
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, 261), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, 299), SL_ERR_LENGTH);
}

SL_TEST(mbreq, parse_writes_and_unknown)
{
    static const uint8_t writes[] = { 5, 6, 15, 16, 22, 23 };
    uint8_t b[32];
    struct sl_mbreq r;
    for (size_t i = 0; i < sizeof writes; i++) {
        /* FC 16 writing two registers at 0: its body is never looked at. */
        const uint8_t adu[] = { 0, 9, 0, 0, 0, 11, 1, writes[i], 0, 0, 0, 2, 4, 0, 1, 0, 2 };
        memcpy(b, adu, sizeof adu);
        CU_ASSERT_EQUAL(sl_mbreq_parse(&r, b, sizeof adu), SL_OK);
        CU_ASSERT(r.write);
        CU_ASSERT_EQUAL(r.exception, SL_MB_EX_ILLEGAL_FUNCTION);
        CU_ASSERT_EQUAL(r.fc, writes[i]);
    }
    static const uint8_t unknown[] = { 0, 7, 8, 11, 17, 20, 43, 0x7F, 0x81, 0x83, 0xFF };
    for (size_t i = 0; i < sizeof unknown; i++) {
        const uint8_t adu[] = { 0, 9, 0, 0, 0, 2, 1, unknown[i] };
        CU_ASSERT_EQUAL(sl_mbreq_parse(&r, adu, sizeof adu), SL_OK);
        CU_ASSERT_FALSE(r.write);
        CU_ASSERT_EQUAL(r.exception, SL_MB_EX_ILLEGAL_FUNCTION);
    }
}

SL_TEST(mbreq, exception_encoding)
{
    struct sl_mbreq r = { .tid = 0xBEEF, .unit = 9, .fc = 16 };
    uint8_t out[16];
    size_t n;
    CU_ASSERT_EQUAL(sl_mbreq_exception(out, sizeof out, &n, &r, 1), SL_OK);
    static const uint8_t want[9] = { 0xBE, 0xEF, 0, 0, 0, 3, 9, 0x90, 0x01 };
    CU_ASSERT_EQUAL(n, 9);
    CU_ASSERT_EQUAL(memcmp(out, want, 9), 0);
    CU_ASSERT_EQUAL(sl_mbreq_exception(out, 8, &n, &r, 1), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(n, 0);
}

/* ---- answers from the mirror ------------------------------------------- */

static uint8_t ask(const struct sl_mirror *m, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                   uint8_t *out, size_t *n)
{
    uint8_t b[16];
    struct sl_mbreq r;
    size_t len = mk_read(b, unit, fc, addr, count);
    CU_ASSERT_FATAL(sl_mbreq_parse(&r, b, len) == SL_OK);
    uint8_t code = sl_mbserver_answer(out, SL_MB_RESP_MAX, n, &r, m);
    if (code) {
        /* Every exception is a well-formed 9-byte ADU echoing tid and unit. */
        CU_ASSERT_EQUAL(*n, 9);
        CU_ASSERT(out[0] == 0x01 && out[1] == 0x02 && out[5] == 3 && out[6] == unit);
        CU_ASSERT_EQUAL(out[7], fc | 0x80);
        CU_ASSERT_EQUAL(out[8], code);
    }
    return code;
}

SL_TEST(mbanswer, data_responses)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    uint8_t out[SL_MB_RESP_MAX];
    size_t n;
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 8, out, &n), 0);
    static const uint8_t fc3[] = { 0x01, 0x02, 0, 0, 0, 19, 1, 3, 16, 0x47, 0xF1, 0x20, 0x00, 0x20,
                                   0x00, 0x47, 0xF1, 0xF1, 0x47, 0x00, 0x20, 0x00, 0x20, 0xF1, 0x47 };
    CU_ASSERT_EQUAL(n, sizeof fc3);
    CU_ASSERT_EQUAL(memcmp(out, fc3, sizeof fc3), 0);
    CU_ASSERT_EQUAL(ask(m, 1, 4, 0, 1, out, &n), 0);
    static const uint8_t fc4[] = { 0x01, 0x02, 0, 0, 0, 5, 1, 4, 2, 0x00, 0x42 };
    CU_ASSERT(n == sizeof fc4 && memcmp(out, fc4, n) == 0);
    CU_ASSERT_EQUAL(ask(m, 1, 1, 0, 3, out, &n), 0);
    static const uint8_t fc1[] = { 0x01, 0x02, 0, 0, 0, 4, 1, 1, 1, 0x05 };
    CU_ASSERT(n == sizeof fc1 && memcmp(out, fc1, n) == 0);
    CU_ASSERT_EQUAL(ask(m, 1, 2, 5, 1, out, &n), 0);
    static const uint8_t fc2[] = { 0x01, 0x02, 0, 0, 0, 4, 1, 2, 1, 0x01 };
    CU_ASSERT(n == sizeof fc2 && memcmp(out, fc2, n) == 0);
    CU_ASSERT_EQUAL(ask(m, 7, 3, 100, 1, out, &n), 0);
    CU_ASSERT(n == 11 && out[9] == 0x12 && out[10] == 0x34);
    sl_mirror_destroy(m);
}

SL_TEST(mbanswer, every_exception)
{
    struct sl_mirror *m = fx_mirror(7);
    uint8_t out[SL_MB_RESP_MAX];
    size_t n;
    /* Before any value: tags wait for initial data -> 0x0B. */
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 2, out, &n), SL_MB_EX_GATEWAY_TARGET);
    fx_fill(m, 100);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 2, out, &n), 0);
    /* 0x01: a write and an unknown code. */
    uint8_t b[] = { 0x01, 0x02, 0, 0, 0, 6, 1, 6, 0, 0, 0, 1 };
    struct sl_mbreq r;
    CU_ASSERT(sl_mbreq_parse(&r, b, sizeof b) == SL_OK);
    CU_ASSERT_EQUAL(sl_mbserver_answer(out, sizeof out, &n, &r, m), SL_MB_EX_ILLEGAL_FUNCTION);
    CU_ASSERT(n == 9 && out[7] == 0x86 && out[8] == 1);
    b[7] = 0x2B;
    CU_ASSERT(sl_mbreq_parse(&r, b, sizeof b) == SL_OK);
    CU_ASSERT_EQUAL(sl_mbserver_answer(out, sizeof out, &n, &r, m), SL_MB_EX_ILLEGAL_FUNCTION);
    /* 0x03: counts. */
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 0, out, &n), SL_MB_EX_ILLEGAL_VALUE);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 126, out, &n), SL_MB_EX_ILLEGAL_VALUE);
    CU_ASSERT_EQUAL(ask(m, 1, 1, 0, 2001, out, &n), SL_MB_EX_ILLEGAL_VALUE);
    /* 0x02: unmapped inside the range, partly mapped, and past 65535. */
    CU_ASSERT_EQUAL(ask(m, 1, 3, 16, 1, out, &n), SL_MB_EX_ILLEGAL_ADDRESS);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 10, 7, out, &n), SL_MB_EX_ILLEGAL_ADDRESS);
    CU_ASSERT_EQUAL(ask(m, 1, 1, 0, 4, out, &n), SL_MB_EX_ILLEGAL_ADDRESS);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0xFFFF, 2, out, &n), SL_MB_EX_ILLEGAL_ADDRESS);
    CU_ASSERT_EQUAL(ask(m, 1, 2, 0, 1, out, &n), SL_MB_EX_ILLEGAL_ADDRESS);
    /* 0x0A: a unit id no device is mirrored at. */
    CU_ASSERT_EQUAL(ask(m, 2, 3, 0, 1, out, &n), SL_MB_EX_GATEWAY_PATH);
    CU_ASSERT_EQUAL(ask(m, 0, 3, 0, 1, out, &n), SL_MB_EX_GATEWAY_PATH);
    CU_ASSERT_EQUAL(ask(m, 255, 3, 0, 1, out, &n), SL_MB_EX_GATEWAY_PATH);
    /* 0x0B: one tag in the range not Good (device unreachable at TX). */
    struct sl_value v = fx_val(1, SL_TYPE_FLOAT32, 0, SL_Q_BAD_COMM_ERROR, 200);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 201) == SL_OK);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 8, out, &n), SL_MB_EX_GATEWAY_TARGET);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 2, out, &n), 0);
    /* 0x0A: link down, even for tags whose held value was Good. */
    sl_mirror_tick(m, 10000, 0);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 2, out, &n), SL_MB_EX_GATEWAY_PATH);
    CU_ASSERT_EQUAL(ask(m, 1, 1, 0, 3, out, &n), SL_MB_EX_GATEWAY_PATH);
    /* ...but an unmapped address is still the client's error. */
    CU_ASSERT_EQUAL(ask(m, 1, 3, 16, 1, out, &n), SL_MB_EX_ILLEGAL_ADDRESS);
    sl_mirror_tick(m, 10000, 9999);
    /* Link back, value not yet refreshed: still not Good (0x0B). */
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 2, out, &n), SL_MB_EX_GATEWAY_TARGET);
    v = fx_val(0, SL_TYPE_FLOAT32, 0, SL_Q_GOOD, 300);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 301) == SL_OK);
    CU_ASSERT_EQUAL(ask(m, 1, 3, 0, 2, out, &n), 0);
    /* Restored from the database (Uncertain) is not Good: 0x0B. */
    v = fx_val(5, SL_TYPE_UINT16, 1, 0, 1);
    struct sl_mirror *rm = fx_mirror(7);
    CU_ASSERT(sl_mirror_restore(rm, &v, 2) == SL_OK);
    CU_ASSERT_EQUAL(ask(rm, 1, 3, 11, 1, out, &n), SL_MB_EX_GATEWAY_TARGET);
    sl_mirror_destroy(rm);
    /* Too small an output buffer never overflows. */
    uint8_t rb[12], small[20];
    size_t len = mk_read(rb, 1, 3, 0, 8);
    CU_ASSERT(sl_mbreq_parse(&r, rb, len) == SL_OK);
    CU_ASSERT_NOT_EQUAL(sl_mbserver_answer(small, sizeof small, &n, &r, m), 0);
    CU_ASSERT(n <= sizeof small);
    sl_mirror_destroy(m);
}
