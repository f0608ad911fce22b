/* Malformed input: each rejection rule returns its own sl_err; truncation
 * at every length of every message and of a multi-message payload is
 * refused with nothing handed out; oversized counts never read past the
 * body. */
#include <string.h>

#include "msg_fixtures.h"
#include "sl_msg.h"
#include "sl_test.h"

static uint8_t pay[4096];

/* Result of reading payload p[0..len); also asserts a refused payload hands
 * out no message. */
static sl_err read_all(const uint8_t *p, size_t len, size_t *msgs)
{
    struct sl_msg_reader r;
    struct sl_msg m;
    sl_err e = sl_msg_reader_init(&r, p, len);
    size_t n = 0;
    while (sl_msg_next(&r, &m))
        n++;
    if (e != SL_OK) {
        CU_ASSERT_EQUAL(n, 0);
    }
    if (msgs)
        *msgs = n;
    return e;
}

/* Decodes body b[0..len) as type through its own entry point. */
static sl_err decode(uint8_t type, const uint8_t *b, size_t len)
{
    struct sl_msg m;
    memset(&m, 0x55, sizeof m);
    sl_err e;
    switch (type) {
    case SL_MSG_DELTA:    e = sl_msg_decode_delta(&m.u.delta, b, len); break;
    case SL_MSG_KEYFRAME: e = sl_msg_decode_keyframe(&m.u.keyframe, b, len); break;
    case SL_MSG_SCHEMA:   e = sl_msg_decode_schema(&m.u.schema, b, len); break;
    default:              e = sl_msg_decode_event(&m.u.event, b, len); break;
    }
    if (e != SL_OK) {
        /* Outputs are zeroed on failure. */
        const uint8_t *z = (const uint8_t *)&m.u;
        size_t sz = type == SL_MSG_DELTA ? sizeof m.u.delta
                  : type == SL_MSG_KEYFRAME ? sizeof m.u.keyframe
                  : type == SL_MSG_SCHEMA ? sizeof m.u.schema : sizeof m.u.event;
        for (size_t i = 0; i < sz; i++)
            if (z[i] != 0) {
                CU_FAIL("output not zeroed");
                break;
            }
    }
    return e;
}

SL_TEST(msg_err, framing)
{
    size_t n;
    CU_ASSERT_EQUAL(read_all(NULL, 0, &n), SL_OK);                /* empty payload */
    CU_ASSERT_EQUAL(n, 0);
    size_t len = fx_kat_event(pay, sizeof pay);
    CU_ASSERT_EQUAL(read_all(pay, len, &n), SL_OK);
    CU_ASSERT_EQUAL(n, 1);
    pay[1] = 0x80;                                                /* flags */
    CU_ASSERT_EQUAL(read_all(pay, len, NULL), SL_ERR_HEADER);
    pay[1] = 0;
    for (unsigned t = 0; t < 256; t++) {
        pay[0] = (uint8_t)t;
        sl_err e = read_all(pay, len, NULL);
        if (t == SL_MSG_EVENT) {
            CU_ASSERT_EQUAL(e, SL_OK);
        } else if (t >= SL_MSG_SCHEMA && t <= SL_MSG_DELTA_SEQ) {
            CU_ASSERT(e != SL_OK && e != SL_ERR_TYPE);   /* an EVENT body read as another type */
        } else {
            CU_ASSERT_EQUAL(e, SL_ERR_TYPE);
        }
    }
    pay[0] = SL_MSG_EVENT;
    sl_be16_put(pay + 2, (uint16_t)(len - SL_MSG_HDR_BYTES + 1));  /* body_len past the end */
    CU_ASSERT_EQUAL(read_all(pay, len, NULL), SL_ERR_TRUNCATED);
    sl_be16_put(pay + 2, 0xFFFF);
    CU_ASSERT_EQUAL(read_all(pay, len, NULL), SL_ERR_TRUNCATED);
    sl_be16_put(pay + 2, (uint16_t)(len - SL_MSG_HDR_BYTES - 1));  /* one byte left over */
    CU_ASSERT_EQUAL(read_all(pay, len, NULL), SL_ERR_LENGTH);      /* text_len runs past the body */

    /* sl_msg_split itself: the file channel frames with it. */
    const uint8_t file_msg[6] = { SL_MSG_FILE_DATA, 0, 0, 2, 'h', 'i' };
    struct sl_buf b = sl_buf_make(file_msg, sizeof file_msg);
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    CU_ASSERT_EQUAL(sl_msg_split(&b, &type, &body, &blen), SL_OK);
    CU_ASSERT_EQUAL(type, SL_MSG_FILE_DATA);
    CU_ASSERT_EQUAL(blen, 2);
    CU_ASSERT_PTR_EQUAL(body, file_msg + 4);
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
    CU_ASSERT_EQUAL(read_all(file_msg, sizeof file_msg, NULL), SL_ERR_TYPE);
    b = sl_buf_make(file_msg, 5);
    CU_ASSERT_EQUAL(sl_msg_split(&b, &type, &body, &blen), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(b.off, 0);
    CU_ASSERT_PTR_NULL(body);
    b = sl_buf_make(file_msg, 3);
    CU_ASSERT_EQUAL(sl_msg_split(&b, &type, &body, &blen), SL_ERR_TRUNCATED);
}

SL_TEST(msg_err, delta_and_keyframe_bodies)
{
    uint8_t b[SL_KEYFRAME_HDR_BYTES + 2 * SL_VALUE_BYTES + 1];
    size_t len = fx_kat_delta(pay, sizeof pay) - SL_MSG_HDR_BYTES;   /* 3 values */
    const uint8_t *delta = pay + SL_MSG_HDR_BYTES;
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, delta, len), SL_OK);
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, delta, 0), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, delta, 1), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, delta, len - 1), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, delta, 2), SL_ERR_LENGTH);
    memcpy(b, delta, 2 + SL_VALUE_BYTES);
    sl_be16_put(b, 1);
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 2 + SL_VALUE_BYTES), SL_OK);
    b[2 + SL_VALUE_BYTES] = 0;
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 3 + SL_VALUE_BYTES), SL_ERR_TRAILING);
    sl_be16_put(b, 0xFFFF);                                   /* oversized count */
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 2 + SL_VALUE_BYTES), SL_ERR_LENGTH);
    sl_be16_put(b, 0);                                        /* empty DELTA */
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 2), SL_ERR_HEADER);
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 3), SL_ERR_TRAILING);
    sl_be16_put(b, 1);
    b[2 + 4] = 0;                                             /* value type 0 */
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 2 + SL_VALUE_BYTES), SL_ERR_TYPE);
    b[2 + 4] = SL_TYPE_INT16;                                 /* raw 0x422A0000 > 16 bits */
    CU_ASSERT_EQUAL(decode(SL_MSG_DELTA, b, 2 + SL_VALUE_BYTES), SL_ERR_RANGE);

    len = fx_kat_keyframe(pay, sizeof pay) - SL_MSG_HDR_BYTES;   /* chunk 1/3, total 5, 2 values */
    memcpy(b, pay + SL_MSG_HDR_BYTES, len);
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, b, len), SL_OK);
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, b, SL_KEYFRAME_HDR_BYTES - 1), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, b, len - 1), SL_ERR_LENGTH);
    b[len] = 0;
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, b, len + 1), SL_ERR_TRAILING);
#define KF(off, put, val, want) do { uint8_t c[sizeof b]; memcpy(c, b, len); put(c + (off), val); \
        CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, c, len), want); } while (0)
    KF(4, sl_be16_put, 3, SL_ERR_HEADER);        /* chunk == chunks */
    KF(4, sl_be16_put, 0xFFFF, SL_ERR_HEADER);   /* chunk > chunks */
    KF(6, sl_be16_put, 0, SL_ERR_HEADER);        /* chunks == 0 */
    KF(6, sl_be16_put, 6, SL_ERR_HEADER);        /* more chunks than tags */
    KF(8, sl_be32_put, 1, SL_ERR_HEADER);        /* count 2 > total_tags 1 */
    KF(8, sl_be32_put, 0, SL_ERR_HEADER);
    KF(8, sl_be32_put, 0xFFFFFFFFu, SL_OK);
    KF(12, sl_be16_put, 3, SL_ERR_LENGTH);       /* count past the body */
    KF(12, sl_be16_put, 0xFFFF, SL_ERR_LENGTH);  /* oversized count */
    KF(12, sl_be16_put, 1, SL_ERR_TRAILING);
#undef KF
    /* An empty keyframe: total 0 needs chunks 1 and count 0. */
    uint8_t e0[SL_KEYFRAME_HDR_BYTES] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, e0, sizeof e0), SL_OK);
    e0[7] = 2;
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, e0, sizeof e0), SL_ERR_HEADER);
    e0[7] = 1;
    e0[11] = 3;                                  /* total 3, count 0 */
    CU_ASSERT_EQUAL(decode(SL_MSG_KEYFRAME, e0, sizeof e0), SL_ERR_HEADER);
}

SL_TEST(msg_err, schema_bodies)
{
    size_t len = fx_kat_schema(pay, sizeof pay) - SL_MSG_HDR_BYTES;
    uint8_t b[512], c[512];
    memcpy(b, pay + SL_MSG_HDR_BYTES, len);
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, b, len), SL_OK);
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, b, 13), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, b, 14), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, b, len - 1), SL_ERR_LENGTH);
    b[len] = 'x';
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, b, len + 1), SL_ERR_TRAILING);
    const size_t t0 = SL_SCHEMA_HDR_BYTES;           /* first tag */
    const size_t name0 = t0 + 26;                    /* its name_len byte */
#define SC(stmt, want) do { memcpy(c, b, len); stmt; CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, c, len), want); } while (0)
    SC(sl_be16_put(c + 12, 0xFFFF), SL_ERR_LENGTH);  /* oversized count */
    SC(sl_be16_put(c + 12, 1), SL_ERR_TRAILING);
    SC(sl_be16_put(c + 6, 0), SL_ERR_HEADER);        /* chunks 0 */
    SC(sl_be16_put(c + 4, 1), SL_ERR_HEADER);        /* chunk 1 of 1 */
    SC(sl_be32_put(c + 8, 1), SL_ERR_HEADER);        /* count 2 > total 1 */
    SC(c[t0 + 4] = 0, SL_ERR_TYPE);                  /* unknown type */
    SC(c[t0 + 5] = 9, SL_ERR_RANGE);                 /* unknown register */
    SC(c[t0 + 5] = SL_REG_COIL, SL_ERR_RANGE);       /* float32 in a coil */
    SC(c[t0 + 6] = 4, SL_ERR_RANGE);                 /* unknown word order */
    SC(sl_be16_put(c + t0 + 8, 0xFFFF), SL_ERR_RANGE);   /* 2nd register past 65535 */
    SC(sl_be64_put(c + t0 + 10, 0x7FF0000000000000ull), SL_ERR_RANGE);   /* scale +inf */
    SC(sl_be64_put(c + t0 + 18, 0x7FF8000000000000ull), SL_ERR_RANGE);   /* offset NaN */
    memcpy(c, b, len);
    c[name0] = 0;                                    /* shifts every later field */
    CU_ASSERT_NOT_EQUAL(decode(SL_MSG_SCHEMA, c, len), SL_OK);
    SC(c[name0] = 200, SL_ERR_LENGTH);               /* string past the end */
    SC(c[name0 + 1] = '\n', SL_ERR_RANGE);           /* control char */
    SC(c[name0 + 1] = 0, SL_ERR_RANGE);              /* NUL inside */
    SC(c[name0 + 1] = 0xC3, SL_ERR_RANGE);           /* broken UTF-8 */
    /* A valid first tag with a 2nd tag of type 9: the item error is found
     * after the whole length walk. */
    SC(c[len - (26 + 1 + 9 + 1 + 23 + 1) + 4] = 9, SL_ERR_TYPE);
#undef SC
    /* Name over SL_NAME_MAX, well-formed otherwise. */
    struct sl_schema_tag t;
    fx_tag(&t, 1, SL_TYPE_BOOL, SL_REG_COIL, 0, 0, "n", "", "");
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, pay, sizeof pay);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_schema(&w, &taken, 1, 0, 1, 1, &t, 1), SL_OK);
    uint8_t longer[SL_SCHEMA_HDR_BYTES + SL_SCHEMA_TAG_FIXED + SL_NAME_MAX + 1];
    memcpy(longer, pay + SL_MSG_HDR_BYTES, SL_SCHEMA_HDR_BYTES + 26);
    longer[SL_SCHEMA_HDR_BYTES + 26] = SL_NAME_MAX + 1;
    memset(longer + SL_SCHEMA_HDR_BYTES + 27, 'a', SL_NAME_MAX + 1);
    longer[sizeof longer - 2] = 0;   /* path_len */
    longer[sizeof longer - 1] = 0;   /* units_len */
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, longer, sizeof longer), SL_ERR_RANGE);
    longer[SL_SCHEMA_HDR_BYTES + 26] = SL_NAME_MAX;
    longer[sizeof longer - 3] = 0;   /* last 'a' becomes path_len 0, then units_len 0, trailing 0 */
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, longer, sizeof longer), SL_ERR_TRAILING);
    CU_ASSERT_EQUAL(decode(SL_MSG_SCHEMA, longer, sizeof longer - 1), SL_OK);
}

SL_TEST(msg_err, event_bodies)
{
    size_t len = fx_kat_event(pay, sizeof pay) - SL_MSG_HDR_BYTES;
    uint8_t b[SL_EVENT_HDR_BYTES + SL_EVENT_TEXT_MAX + 2], c[sizeof b];
    memcpy(b, pay + SL_MSG_HDR_BYTES, len);
    CU_ASSERT_EQUAL(decode(SL_MSG_EVENT, b, len), SL_OK);
    CU_ASSERT_EQUAL(decode(SL_MSG_EVENT, b, 11), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(decode(SL_MSG_EVENT, b, len - 1), SL_ERR_LENGTH);
    b[len] = 'x';
    CU_ASSERT_EQUAL(decode(SL_MSG_EVENT, b, len + 1), SL_ERR_TRAILING);
#define EV(stmt, n, want) do { memcpy(c, b, sizeof b); stmt; CU_ASSERT_EQUAL(decode(SL_MSG_EVENT, c, n), want); } while (0)
    EV(c[0] = 0, len, SL_ERR_RANGE);
    EV(c[0] = 5, len, SL_ERR_RANGE);
    EV(c[12] = 0x1B, len, SL_ERR_RANGE);                 /* ESC in text */
    EV(sl_be16_put(c + 10, 0xFFFF), len, SL_ERR_LENGTH);
    EV((sl_be16_put(c + 10, SL_EVENT_TEXT_MAX + 1), memset(c + 12, 'a', SL_EVENT_TEXT_MAX + 1)),
       SL_EVENT_HDR_BYTES + SL_EVENT_TEXT_MAX + 1, SL_ERR_RANGE);
    EV((sl_be16_put(c + 10, SL_EVENT_TEXT_MAX), memset(c + 12, 'a', SL_EVENT_TEXT_MAX)),
       SL_EVENT_HDR_BYTES + SL_EVENT_TEXT_MAX, SL_OK);
#undef EV
}

/* Every strict prefix of a one-message payload is refused, by the reader
 * and by the body decoder. */
static void truncate_all(size_t (*gen)(uint8_t *, size_t))
{
    size_t len = gen(pay, sizeof pay);
    CU_ASSERT_EQUAL(read_all(pay, len, NULL), SL_OK);
    for (size_t cut = 0; cut < len; cut++) {
        sl_err e = read_all(pay, cut, NULL);
        if (cut == 0) {
            CU_ASSERT_EQUAL(e, SL_OK);   /* the empty payload */
        } else {
            CU_ASSERT_NOT_EQUAL(e, SL_OK);
        }
        if (cut > SL_MSG_HDR_BYTES)
            CU_ASSERT_NOT_EQUAL(decode(pay[0], pay + SL_MSG_HDR_BYTES, cut - SL_MSG_HDR_BYTES), SL_OK);
    }
}

SL_TEST(msg_err, truncation_every_length)
{
    truncate_all(fx_kat_delta);
    truncate_all(fx_kat_keyframe);
    truncate_all(fx_kat_schema);
    truncate_all(fx_kat_event);

    /* A multi-message payload: cut anywhere but a message boundary, it is
     * refused whole; cut at a boundary, it is a shorter valid payload (the
     * block header's payload_len and signature guard that case). */
    size_t bounds[5] = { 0 };
    uint8_t tmp[1024];
    bounds[1] = fx_kat_schema(tmp, sizeof tmp);
    bounds[2] = bounds[1] + fx_kat_keyframe(tmp, sizeof tmp);
    bounds[3] = bounds[2] + fx_kat_delta(tmp, sizeof tmp);
    bounds[4] = bounds[3] + fx_kat_event(tmp, sizeof tmp);
    size_t len = fx_mixed_payload(pay, sizeof pay);
    CU_ASSERT_EQUAL_FATAL(len, bounds[4]);
    for (size_t cut = 0; cut <= len; cut++) {
        size_t msgs;
        sl_err e = read_all(pay, cut, &msgs);
        int boundary = -1;
        for (int k = 0; k < 5; k++)
            if (cut == bounds[k])
                boundary = k;
        if (boundary >= 0) {
            CU_ASSERT_EQUAL(e, SL_OK);
            CU_ASSERT_EQUAL(msgs, (size_t)boundary);
        } else {
            CU_ASSERT_NOT_EQUAL(e, SL_OK);
            CU_ASSERT_EQUAL(msgs, 0);
        }
    }
}
