/* DELTA_SEQ (a DELTA whose values carry their TX change seq): round trip,
 * sizing, writer refusals, decoder refusals in the documented order, and
 * seq 0 from DELTA and KEYFRAME. */
#include <string.h>

#include "msg_fixtures.h"
#include "sl_hmsg.h"
#include "sl_msg.h"
#include "sl_test.h"

static uint8_t buf[SL_MSG_HDR_BYTES + SL_MSG_BODY_MAX + 64];
static struct sl_value vals[SL_DELTA_SEQ_VALUES_MAX + 10];

static int value_eq(const struct sl_value *a, const struct sl_value *b)
{
    return a->tag_id == b->tag_id && a->type == b->type && a->raw == b->raw &&
           a->quality == b->quality && a->source_time_us == b->source_time_us && a->seq == b->seq;
}

SL_TEST(msg_seq, roundtrip_with_delta_and_keyframe)
{
    struct sl_value v[8];
    size_t n = fx_every_type(v, 8);
    for (size_t i = 0; i < n; i++)
        v[i].seq = i == 0 ? SL_HREC_SEQ_LIMIT - 1 : 1 + i * 1000003u;
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&w, &taken, FX_JOURNAL_ID, v, n), SL_OK);
    CU_ASSERT_EQUAL(taken, n);
    CU_ASSERT_EQUAL(w.off, SL_MSG_HDR_BYTES + SL_DELTA_SEQ_HDR_BYTES + n * SL_VALUE_SEQ_BYTES);
    /* DELTA and KEYFRAME ignore seq and hand out 0. */
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&w, &taken, v, n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, (uint32_t)n, v, n), SL_OK);

    struct sl_msg_reader r;
    struct sl_msg m;
    struct sl_value got;
    CU_ASSERT_EQUAL_FATAL(sl_msg_reader_init(&r, buf, w.off), SL_OK);
    CU_ASSERT_FATAL(sl_msg_next(&r, &m));
    CU_ASSERT_EQUAL(m.type, SL_MSG_DELTA_SEQ);
    CU_ASSERT_EQUAL(m.u.delta.journal_id, FX_JOURNAL_ID);
    CU_ASSERT_EQUAL(m.u.delta.values.count, n);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_FATAL(sl_msg_value_next(&m.u.delta.values, &got));
        CU_ASSERT(value_eq(&got, &v[i]));
    }
    CU_ASSERT_FALSE(sl_msg_value_next(&m.u.delta.values, &got));
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_FATAL(sl_msg_next(&r, &m));
        CU_ASSERT_EQUAL(m.type, k == 0 ? SL_MSG_DELTA : SL_MSG_KEYFRAME);
        struct sl_value_iter *it = k == 0 ? &m.u.delta.values : &m.u.keyframe.values;
        CU_ASSERT_EQUAL(m.u.delta.journal_id * (k == 0), 0);
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_FATAL(sl_msg_value_next(it, &got));
            CU_ASSERT_EQUAL(got.seq, 0);
            CU_ASSERT_EQUAL(got.raw, v[i].raw);
        }
    }
    CU_ASSERT_FALSE(sl_msg_next(&r, &m));
}

SL_TEST(msg_seq, sizing_and_capacity)
{
    const size_t one = SL_MSG_HDR_BYTES + SL_DELTA_SEQ_HDR_BYTES + SL_VALUE_SEQ_BYTES;   /* 47 */
    CU_ASSERT_EQUAL(sl_msg_delta_seq_fit(0), 0);
    CU_ASSERT_EQUAL(sl_msg_delta_seq_fit(one - 1), 0);
    CU_ASSERT_EQUAL(sl_msg_delta_seq_fit(one), 1);
    CU_ASSERT_EQUAL(sl_msg_delta_seq_fit(one + SL_VALUE_SEQ_BYTES - 1), 1);
    CU_ASSERT_EQUAL(sl_msg_delta_seq_fit(one + SL_VALUE_SEQ_BYTES), 2);
    CU_ASSERT_EQUAL(sl_msg_delta_seq_fit(SIZE_MAX), SL_DELTA_SEQ_VALUES_MAX);
    CU_ASSERT_EQUAL(SL_DELTA_SEQ_HDR_BYTES + SL_DELTA_SEQ_VALUES_MAX * SL_VALUE_SEQ_BYTES <= SL_MSG_BODY_MAX, 1);
    CU_ASSERT(SL_DELTA_SEQ_HDR_BYTES + (SL_DELTA_SEQ_VALUES_MAX + 1) * SL_VALUE_SEQ_BYTES > SL_MSG_BODY_MAX);

    size_t n = SL_DELTA_SEQ_VALUES_MAX + 10;
    for (size_t i = 0; i < n; i++)
        vals[i] = (struct sl_value){ (uint32_t)i, SL_TYPE_UINT16, i & 0xFFFF, SL_Q_GOOD, FX_TIME_US + i, 1 + i };
    struct sl_msg_writer w;
    size_t taken;
    /* Capacity: one byte short of one value writes nothing. */
    memset(buf, 0xAA, sizeof buf);
    sl_msg_writer_init(&w, buf, one - 1);
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, vals, n), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(w.off, 0);
    CU_ASSERT_EQUAL(buf[0], 0xAA);
    sl_msg_writer_init(&w, buf, one + SL_VALUE_SEQ_BYTES + 5);
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, vals, n), SL_OK);
    CU_ASSERT_EQUAL(taken, 2);
    /* A whole message holds at most SL_DELTA_SEQ_VALUES_MAX. */
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, vals, n), SL_OK);
    CU_ASSERT_EQUAL(taken, SL_DELTA_SEQ_VALUES_MAX);
    struct sl_msg_reader r;
    CU_ASSERT_EQUAL(sl_msg_reader_init(&r, buf, w.off), SL_OK);
}

SL_TEST(msg_seq, writer_refusals)
{
    struct sl_value v = { 1, SL_TYPE_INT16, 5, SL_Q_GOOD, FX_TIME_US, 7 };
    struct sl_msg_writer w;
    size_t taken = 99;
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 0, &v, 1), SL_ERR_RANGE);   /* journal 0 */
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, &v, 0), SL_ERR_RANGE);   /* no value */
    v.seq = 0;
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, &v, 1), SL_ERR_RANGE);
    v.seq = SL_HREC_SEQ_LIMIT;
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, &v, 1), SL_ERR_RANGE);
    v.seq = 7;
    v.raw = 0x10000;
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, &v, 1), SL_ERR_RANGE);
    v.raw = 5;
    v.type = 0;
    CU_ASSERT_EQUAL(sl_msg_put_delta_seq(&w, &taken, 1, &v, 1), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(w.off, 0);
}

static sl_err dec(const uint8_t *b, size_t len)
{
    struct sl_msg_delta d;
    memset(&d, 0x55, sizeof d);
    sl_err e = sl_msg_decode_delta_seq(&d, b, len);
    if (e != SL_OK) {
        static const struct sl_msg_delta zero;
        CU_ASSERT_EQUAL(memcmp(&d, &zero, sizeof d), 0);
    }
    return e;
}

SL_TEST(msg_seq, decoder_refusals)
{
    uint8_t m[128];
    size_t len = fx_kat_delta_seq(m, sizeof m);
    uint8_t *b = m + SL_MSG_HDR_BYTES;
    size_t bl = len - SL_MSG_HDR_BYTES;
    CU_ASSERT_EQUAL(bl, 10 + 2 * 33);
    CU_ASSERT_EQUAL(dec(b, bl), SL_OK);
    CU_ASSERT_EQUAL(dec(b, 9), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dec(b, bl - 1), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(dec(b, 10 + 33 + 25), SL_ERR_LENGTH);   /* a DELTA-sized entry */
    uint8_t t[128];
    memcpy(t, b, bl);
    t[9] = 1;
    CU_ASSERT_EQUAL(dec(t, bl), SL_ERR_TRAILING);
    t[9] = 0;
    CU_ASSERT_EQUAL(dec(t, 10), SL_ERR_HEADER);               /* empty */
    memcpy(t, b, bl);
    memset(t, 0, 8);
    CU_ASSERT_EQUAL(dec(t, bl), SL_ERR_HEADER);               /* journal 0 */
    memcpy(t, b, bl);
    memset(t + 10 + 25, 0, 8);
    CU_ASSERT_EQUAL(dec(t, bl), SL_ERR_RANGE);                /* seq 0 */
    sl_be64_put(t + 10 + 25, SL_HREC_SEQ_LIMIT);
    CU_ASSERT_EQUAL(dec(t, bl), SL_ERR_RANGE);                /* seq at the limit */
    sl_be64_put(t + 10 + 25, SL_HREC_SEQ_LIMIT - 1);
    CU_ASSERT_EQUAL(dec(t, bl), SL_OK);
    t[10 + 33 + SL_VALUE_OFF_TYPE] = 9;
    CU_ASSERT_EQUAL(dec(t, bl), SL_ERR_TYPE);
    /* The payload reader refuses the whole payload for one bad seq. */
    memcpy(t, m, len);
    memset(t + SL_MSG_HDR_BYTES + 10 + 33 + 25, 0, 8);
    struct sl_msg_reader r;
    struct sl_msg msg;
    CU_ASSERT_EQUAL(sl_msg_reader_init(&r, t, len), SL_ERR_RANGE);
    CU_ASSERT_FALSE(sl_msg_next(&r, &msg));
}
