#include "msg_fixtures.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "sl_hmsg.h"

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void fx_tag(struct sl_schema_tag *t, uint32_t tag_id, uint8_t type, uint8_t reg,
            uint8_t word_order, uint16_t address, const char *name, const char *path,
            const char *units)
{
    memset(t, 0, sizeof *t);
    t->tag_id = tag_id;
    t->type = type;
    t->reg = reg;
    t->word_order = word_order;
    t->mirror_unit = 1;
    t->address = address;
    t->scale = 1.0;
    t->offset = 0.0;
    copy_str(t->name, sizeof t->name, name);
    copy_str(t->path, sizeof t->path, path);
    copy_str(t->units, sizeof t->units, units);
}

size_t fx_kat_delta(uint8_t *buf, size_t cap)
{
    const struct sl_value v[3] = {
        { 17, SL_TYPE_FLOAT32, 0x422A0000u /* 42.5f */, SL_Q_GOOD, FX_TIME_US, 0 },
        { 18, SL_TYPE_INT16, 0xFFFEu /* -2 */, SL_Q_BAD_COMM_ERROR, FX_TIME_US + 1000, 0 },
        { 19, SL_TYPE_BOOL, 1, SL_Q_GOOD, FX_TIME_US + 2000, 0 },
    };
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, cap);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&w, &taken, v, 3), SL_OK);
    CU_ASSERT_EQUAL(taken, 3);
    return w.off;
}

size_t fx_kat_keyframe(uint8_t *buf, size_t cap)
{
    const struct sl_value v[2] = {
        { 20, SL_TYPE_INT64, 0xFFFFFFFFFFFFFF85ull /* -123 */, SL_Q_GOOD, FX_TIME_US, 0 },
        { 21, SL_TYPE_FLOAT64, 0x40FE240C9FBE76C9ull /* 123456.789 */, SL_Q_GOOD, FX_TIME_US, 0 },
    };
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, cap);
    /* Chunk 1 of 3 of keyframe 7, which carries 5 tags in all. */
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&w, &taken, 7, 1, 3, 5, v, 2), SL_OK);
    CU_ASSERT_EQUAL(taken, 2);
    return w.off;
}

size_t fx_kat_schema(uint8_t *buf, size_t cap)
{
    struct sl_schema_tag t[2];
    fx_tag(&t[0], 17, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_CDAB, 100, "TT-101",
           "acme/plant1/area2/line3", "\xC2\xB0" "C");
    t[0].scale = 0.1;
    t[0].offset = -40.0;
    fx_tag(&t[1], 19, SL_TYPE_BOOL, SL_REG_COIL, SL_WORD_ABCD, 5, "P-101.run",
           "acme/plant1/area2/line3", "");
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, cap);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_schema(&w, &taken, 0xA1B2C3D4u, 0, 1, 2, t, 2), SL_OK);
    CU_ASSERT_EQUAL(taken, 2);
    return w.off;
}

size_t fx_kat_event(uint8_t *buf, size_t cap)
{
    static const char text[] = "plc1: connection refused";
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, buf, cap);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_event(&w, SL_EVENT_DEVICE_DOWN, 1, FX_TIME_US + 5000, text,
                                           sizeof text - 1), SL_OK);
    return w.off;
}

size_t fx_kat_delta_seq(uint8_t *buf, size_t cap)
{
    const struct sl_value v[2] = {
        { 17, SL_TYPE_FLOAT32, 0x422A0000u /* 42.5f */, SL_Q_GOOD, FX_TIME_US, 1001 },
        { 18, SL_TYPE_INT16, 0xFFFEu /* -2 */, SL_Q_BAD_COMM_ERROR, FX_TIME_US + 1000, 1002 },
    };
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, cap);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&w, &taken, FX_JOURNAL_ID, v, 2), SL_OK);
    CU_ASSERT_EQUAL(taken, 2);
    return w.off;
}

size_t fx_kat_history(uint8_t *buf, size_t cap)
{
    const struct sl_hstatus st = { FX_JOURNAL_ID, 1000, 1010 };
    const struct sl_hrec r[6] = {
        /* tag 17, float32, 1 s apart with a few µs of jitter */
        { .kind = SL_HREC_VALUE, .seq = 1001, .count = 1, .tag_id = 17, .type = SL_TYPE_FLOAT32,
          .raw = 0x422A0000u /* 42.5f */, .quality = SL_Q_GOOD, .source_time_us = FX_TIME_US },
        { .kind = SL_HREC_VALUE, .seq = 1003, .count = 1, .tag_id = 17, .type = SL_TYPE_FLOAT32,
          .raw = 0x422A1000u /* 42.515625f */, .quality = SL_Q_GOOD,
          .source_time_us = FX_TIME_US + 1000003 },
        { .kind = SL_HREC_VALUE, .seq = 1005, .count = 1, .tag_id = 17, .type = SL_TYPE_FLOAT32,
          .raw = 0x422A1800u /* 42.5234375f */, .quality = SL_Q_GOOD,
          .source_time_us = FX_TIME_US + 2000001 },
        /* tag 18, int16 counter crossing zero, then the device fails */
        { .kind = SL_HREC_VALUE, .seq = 1002, .count = 1, .tag_id = 18, .type = SL_TYPE_INT16,
          .raw = 0xFFFFu /* -1 */, .quality = SL_Q_GOOD, .source_time_us = FX_TIME_US + 500 },
        { .kind = SL_HREC_VALUE, .seq = 1004, .count = 1, .tag_id = 18, .type = SL_TYPE_INT16,
          .raw = 0u, .quality = SL_Q_BAD_COMM_ERROR, .source_time_us = FX_TIME_US + 1000500 },
        /* seqs 1006..1008 were lost to the journal */
        { .kind = SL_HREC_GAP, .seq = 1006, .count = 3 },
    };
    struct sl_hmsg_writer w;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, cap, &st), SL_OK);
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&w, &r[i]), SL_OK);
    return sl_hmsg_finish(&w);
}

size_t fx_kat_history_idle(uint8_t *buf, size_t cap)
{
    const struct sl_hstatus st = { FX_JOURNAL_ID, 1000, 1010 };
    struct sl_hmsg_writer w;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, cap, &st), SL_OK);
    return sl_hmsg_finish(&w);
}

size_t fx_mixed_payload(uint8_t *buf, size_t cap)
{
    size_t off = fx_kat_schema(buf, cap);
    off += fx_kat_keyframe(buf + off, cap - off);
    off += fx_kat_delta(buf + off, cap - off);
    off += fx_kat_event(buf + off, cap - off);
    return off;
}

size_t fx_every_type(struct sl_value *out, size_t n)
{
    const struct sl_value v[8] = {
        { 1, SL_TYPE_BOOL, 1, SL_Q_GOOD, FX_TIME_US, 0 },
        { 2, SL_TYPE_INT16, 0x8000u, SL_Q_GOOD, FX_TIME_US, 0 },
        { 3, SL_TYPE_UINT16, 0xFFFFu, SL_Q_BAD_COMM_ERROR, FX_TIME_US, 0 },
        { 4, SL_TYPE_INT32, 0x80000000u, SL_Q_GOOD, FX_TIME_US, 0 },
        { 5, SL_TYPE_UINT32, 0xFFFFFFFFu, SL_Q_UNCERTAIN_LAST_USABLE, FX_TIME_US, 0 },
        { 6, SL_TYPE_INT64, 0x8000000000000000ull, SL_Q_GOOD, FX_TIME_US, 0 },
        { 7, SL_TYPE_FLOAT32, 0x7FC00000u /* NaN passes through */, SL_Q_GOOD, FX_TIME_US, 0 },
        { 8, SL_TYPE_FLOAT64, 0xFFFFFFFFFFFFFFFFull, SL_Q_GOOD, UINT64_MAX, 0 },
    };
    size_t k = n < 8 ? n : 8;
    memcpy(out, v, k * sizeof v[0]);
    return k;
}

size_t fx_hexdump(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k;
        if (i % 16 == 0)
            k = snprintf(out + len, cap - len, "%04zx  %02x", i, p[i]);
        else
            k = snprintf(out + len, cap - len, " %02x", p[i]);
        if (k < 0 || (size_t)k >= cap - len)
            return len;
        len += (size_t)k;
        if (i % 16 == 15 || i + 1 == n) {
            if (len + 1 >= cap)
                return len;
            out[len++] = '\n';
            out[len] = '\0';
        }
    }
    return len;
}

uint64_t fx_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
