/* sl_msg encoders and decoders: roundtrip of every type, register and word
 * order; validation rules; capacity edges (exact fit, one byte short, 0)
 * with the buffer left untouched on SL_ERR_CAPACITY. */
#include <string.h>

#include "msg_fixtures.h"
#include "sl_msg.h"
#include "sl_test.h"

static uint8_t buf[SL_MSG_HDR_BYTES + SL_MSG_BODY_MAX + 64];
static uint8_t big[4 * (SL_MSG_HDR_BYTES + SL_MSG_BODY_MAX)];

static int value_eq(const struct sl_value *a, const struct sl_value *b)
{
    return a->tag_id == b->tag_id && a->type == b->type && a->raw == b->raw &&
           a->quality == b->quality && a->source_time_us == b->source_time_us;
}

static int tag_eq(const struct sl_schema_tag *a, const struct sl_schema_tag *b)
{
    return a->tag_id == b->tag_id && a->type == b->type && a->reg == b->reg &&
           a->word_order == b->word_order && a->mirror_unit == b->mirror_unit &&
           a->address == b->address && memcmp(&a->scale, &b->scale, sizeof a->scale) == 0 &&
           memcmp(&a->offset, &b->offset, sizeof a->offset) == 0 &&
           strcmp(a->name, b->name) == 0 && strcmp(a->path, b->path) == 0 &&
           strcmp(a->units, b->units) == 0;
}

/* Reads the single message of payload[0..len) into *m. */
static int one_msg(struct sl_msg *m, const uint8_t *p, size_t len)
{
    struct sl_msg_reader r;
    if (sl_msg_reader_init(&r, p, len) != SL_OK || !sl_msg_next(&r, m))
        return 0;
    struct sl_msg extra;
    return !sl_msg_next(&r, &extra);
}

SL_TEST(msg, roundtrip_every_value_type)
{
    struct sl_value v[8 * 4];
    size_t n = 0;
    /* Each type at 0, 1, its widest raw and an arbitrary pattern. */
    for (uint8_t type = SL_TYPE_BOOL; type <= SL_TYPE_FLOAT64; type++) {
        uint64_t max = type == SL_TYPE_BOOL ? 1
                     : type <= SL_TYPE_UINT16 ? 0xFFFFu
                     : type <= SL_TYPE_UINT32 || type == SL_TYPE_FLOAT32 ? 0xFFFFFFFFu
                     : UINT64_MAX;
        const uint64_t raws[4] = { 0, 1, max, 0x0123456789ABCDEFull & max };
        for (int i = 0; i < 4; i++, n++)
            v[n] = (struct sl_value){ (uint32_t)(n * 977u), type, raws[i],
                                      (uint32_t)(0x80000000u >> i), FX_TIME_US + n, 0 };
    }
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&w, &taken, v, n), SL_OK);
    CU_ASSERT_EQUAL(taken, n);
    CU_ASSERT_EQUAL(w.off, SL_MSG_HDR_BYTES + SL_DELTA_HDR_BYTES + n * SL_VALUE_BYTES);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&w, &taken, 99, 0, 1, (uint32_t)n, v, n), SL_OK);
    CU_ASSERT_EQUAL(taken, n);

    struct sl_msg_reader r;
    struct sl_msg m;
    struct sl_value got;
    CU_ASSERT_EQUAL_FATAL(sl_msg_reader_init(&r, buf, w.off), SL_OK);
    CU_ASSERT_FATAL(sl_msg_next(&r, &m));
    CU_ASSERT_EQUAL(m.type, SL_MSG_DELTA);
    CU_ASSERT_EQUAL(m.u.delta.values.count, n);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_FATAL(sl_msg_value_next(&m.u.delta.values, &got));
        CU_ASSERT(value_eq(&got, &v[i]));
    }
    CU_ASSERT_FALSE(sl_msg_value_next(&m.u.delta.values, &got));
    CU_ASSERT_EQUAL(got.tag_id, 0);
    CU_ASSERT_FATAL(sl_msg_next(&r, &m));
    CU_ASSERT_EQUAL(m.type, SL_MSG_KEYFRAME);
    CU_ASSERT_EQUAL(m.u.keyframe.keyframe_id, 99);
    CU_ASSERT_EQUAL(m.u.keyframe.chunk, 0);
    CU_ASSERT_EQUAL(m.u.keyframe.chunks, 1);
    CU_ASSERT_EQUAL(m.u.keyframe.total_tags, n);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_FATAL(sl_msg_value_next(&m.u.keyframe.values, &got));
        CU_ASSERT(value_eq(&got, &v[i]));
    }
    CU_ASSERT_FALSE(sl_msg_value_next(&m.u.keyframe.values, &got));
    CU_ASSERT_FALSE(sl_msg_next(&r, &m));
}

SL_TEST(msg, roundtrip_every_tag_kind)
{
    /* Every type in every register space and word order it may use. */
    struct sl_schema_tag t[64];
    size_t n = 0;
    for (uint8_t type = SL_TYPE_BOOL; type <= SL_TYPE_FLOAT64; type++) {
        int multi = type >= SL_TYPE_INT32;
        for (uint8_t reg = SL_REG_HOLDING; reg <= SL_REG_DISCRETE; reg++) {
            int bits = reg == SL_REG_COIL || reg == SL_REG_DISCRETE;
            if (bits != (type == SL_TYPE_BOOL))
                continue;
            for (uint8_t wo = SL_WORD_ABCD; wo <= (multi ? SL_WORD_DCBA : SL_WORD_ABCD); wo++) {
                fx_tag(&t[n], (uint32_t)n + 1000u, type, reg, wo, (uint16_t)(n * 4),
                       "tag-\xE2\x82\xAC", "ent/site/area/line", n % 2 ? "m\xC2\xB3/h" : "");
                t[n].scale = n % 3 ? -0.5 * (double)n : 1e300;
                t[n].offset = n % 2 ? -0.0 : 273.15;
                t[n].mirror_unit = (uint8_t)n;
                CU_ASSERT_EQUAL(sl_msg_tag_check(&t[n]), SL_OK);
                n++;
            }
        }
    }
    CU_ASSERT_EQUAL(n, 2 + 2 * 2 + 4 * 2 * 5);
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_schema(&w, &taken, 0xCAFE, 0, 1, (uint32_t)n, t, n), SL_OK);
    CU_ASSERT_EQUAL(taken, n);
    struct sl_msg m;
    CU_ASSERT_FATAL(one_msg(&m, buf, w.off));
    CU_ASSERT_EQUAL(m.type, SL_MSG_SCHEMA);
    CU_ASSERT_EQUAL(m.u.schema.schema_id, 0xCAFE);
    CU_ASSERT_EQUAL(m.u.schema.total_tags, n);
    struct sl_schema_tag got;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_FATAL(sl_msg_tag_next(&m.u.schema.tags, &got));
        CU_ASSERT(tag_eq(&got, &t[i]));
    }
    CU_ASSERT_FALSE(sl_msg_tag_next(&m.u.schema.tags, &got));
}

SL_TEST(msg, roundtrip_event_every_kind)
{
    char text[SL_EVENT_TEXT_MAX];
    memset(text, 'x', sizeof text);
    for (uint8_t kind = SL_EVENT_DEVICE_DOWN; kind <= SL_EVENT_TX_START; kind++) {
        size_t len = kind == SL_EVENT_DEVICE_UP ? 0 : kind == SL_EVENT_CONFIG ? SL_EVENT_TEXT_MAX : 5;
        struct sl_msg_writer w;
        sl_msg_writer_init(&w, buf, sizeof buf);
        CU_ASSERT_EQUAL_FATAL(sl_msg_put_event(&w, kind, kind, FX_TIME_US * kind,
                                               len ? text : NULL, len), SL_OK);
        CU_ASSERT_EQUAL(w.off, SL_MSG_HDR_BYTES + SL_EVENT_HDR_BYTES + len);
        struct sl_msg m;
        CU_ASSERT_FATAL(one_msg(&m, buf, w.off));
        CU_ASSERT_EQUAL(m.type, SL_MSG_EVENT);
        CU_ASSERT_EQUAL(m.u.event.kind, kind);
        CU_ASSERT_EQUAL(m.u.event.mirror_unit, kind);
        CU_ASSERT_EQUAL(m.u.event.time_us, FX_TIME_US * kind);
        CU_ASSERT_EQUAL(m.u.event.text_len, len);
        CU_ASSERT_EQUAL(strlen(m.u.event.text), len);
        CU_ASSERT_EQUAL(memcmp(m.u.event.text, text, len), 0);
    }
}

SL_TEST(msg, value_check_rules)
{
    struct sl_value v = { 1, SL_TYPE_BOOL, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_OK);
    v.raw = 2;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_RANGE);
    v.type = SL_TYPE_INT16;
    v.raw = 0xFFFE;                       /* -2, zero-extended: the only spelling */
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_OK);
    v.raw = 0xFFFFFFFFFFFFFFFEull;        /* -2 sign-extended: refused */
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_RANGE);
    v.raw = 0x10000;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_RANGE);
    v.type = SL_TYPE_UINT16;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_RANGE);
    v.type = SL_TYPE_INT32;
    v.raw = 0x100000000ull;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_RANGE);
    v.type = SL_TYPE_FLOAT32;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_RANGE);
    v.raw = 0x7F800001u;                  /* a NaN: bit patterns pass through */
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_OK);
    v.type = SL_TYPE_INT64;
    v.raw = UINT64_MAX;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_OK);
    v.type = 0;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_TYPE);
    v.type = 9;
    CU_ASSERT_EQUAL(sl_msg_value_check(&v), SL_ERR_TYPE);
}

SL_TEST(msg, tag_check_rules)
{
    struct sl_schema_tag t, base;
    fx_tag(&base, 1, SL_TYPE_FLOAT64, SL_REG_INPUT, SL_WORD_DCBA, 65532, "n", "p", "u");
    CU_ASSERT_EQUAL(sl_msg_tag_check(&base), SL_OK);
#define TRY(expr, want) do { t = base; expr; CU_ASSERT_EQUAL(sl_msg_tag_check(&t), want); } while (0)
    TRY(t.address = 65533, SL_ERR_RANGE);            /* 4th register past 65535 */
    TRY(t.type = 0, SL_ERR_TYPE);
    TRY(t.type = 9, SL_ERR_TYPE);
    TRY(t.reg = 0, SL_ERR_RANGE);
    TRY(t.reg = 5, SL_ERR_RANGE);
    TRY(t.word_order = 4, SL_ERR_RANGE);
    TRY(t.reg = SL_REG_COIL, SL_ERR_RANGE);          /* float in a coil */
    TRY((t.type = SL_TYPE_BOOL, t.word_order = 0), SL_ERR_RANGE);   /* bool in a register */
    TRY((t.type = SL_TYPE_BOOL, t.reg = SL_REG_DISCRETE, t.word_order = 0, t.address = 65535), SL_OK);
    TRY((t.type = SL_TYPE_INT16), SL_ERR_RANGE);     /* one register: ABCD only */
    TRY((t.type = SL_TYPE_INT16, t.word_order = 0, t.address = 65535), SL_OK);
    TRY((t.type = SL_TYPE_UINT32, t.address = 65534), SL_OK);
    TRY((t.type = SL_TYPE_UINT32, t.address = 65535), SL_ERR_RANGE);
    TRY(t.scale = 1.0 / 0.0, SL_ERR_RANGE);
    TRY(t.offset = -1.0 / 0.0, SL_ERR_RANGE);
    TRY(t.offset = 0.0 / 0.0, SL_ERR_RANGE);
    TRY(t.name[0] = '\0', SL_ERR_RANGE);             /* name required */
    TRY((t.path[0] = '\0', t.units[0] = '\0'), SL_OK);
    TRY(memset(t.name, 'a', SL_NAME_MAX), SL_OK);    /* longest name */
    TRY(memset(t.name, 'a', SL_NAME_MAX + 1), SL_ERR_RANGE);   /* no terminator */
    TRY(memset(t.path, 'a', SL_PATH_MAX + 1), SL_ERR_RANGE);
    TRY(memset(t.units, 'a', SL_UNITS_MAX + 1), SL_ERR_RANGE);
    TRY(strcpy(t.name, "a\tb"), SL_ERR_RANGE);
    TRY(strcpy(t.path, "a\x7F"), SL_ERR_RANGE);
    TRY(strcpy(t.units, "\xC2\x85"), SL_ERR_RANGE);  /* C1 control NEL */
    TRY(strcpy(t.units, "\xC0\xAF"), SL_ERR_RANGE);  /* overlong '/' */
#undef TRY
}

SL_TEST(msg, utf8_rules)
{
    static const struct {
        const char *s;
        sl_err want;
    } cases[] = {
        { "plain ASCII ~", SL_OK },
        { "\xC2\xB0" "C", SL_OK },                 /* U+00B0 */
        { "\xC2\xA0", SL_OK },                     /* U+00A0, first after C1 */
        { "\xE2\x82\xAC", SL_OK },                 /* U+20AC */
        { "\xF0\x9D\x84\x9E", SL_OK },             /* U+1D11E */
        { "\xF4\x8F\xBF\xBF", SL_OK },             /* U+10FFFF */
        { "\xEF\xBF\xBF", SL_OK },                 /* U+FFFF */
        { "\x1F", SL_ERR_RANGE },
        { "\x7F", SL_ERR_RANGE },
        { "\xC2\x80", SL_ERR_RANGE },              /* U+0080 C1 */
        { "\xC2\x9F", SL_ERR_RANGE },              /* U+009F C1 */
        { "\xC1\xBF", SL_ERR_RANGE },              /* overlong */
        { "\xE0\x9F\xBF", SL_ERR_RANGE },          /* overlong */
        { "\xF0\x8F\xBF\xBF", SL_ERR_RANGE },      /* overlong */
        { "\xED\xA0\x80", SL_ERR_RANGE },          /* surrogate */
        { "\xED\xBF\xBF", SL_ERR_RANGE },          /* surrogate */
        { "\xF4\x90\x80\x80", SL_ERR_RANGE },      /* above U+10FFFF */
        { "\xF8\x88\x80\x80\x80", SL_ERR_RANGE },  /* 5-byte form */
        { "\x80", SL_ERR_RANGE },                  /* lone continuation */
        { "\xE2\x82", SL_ERR_RANGE },              /* cut sequence */
        { "\xE2\x28\xA1", SL_ERR_RANGE },          /* bad continuation */
        { "\xFF", SL_ERR_RANGE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sl_msg_writer w;
        sl_msg_writer_init(&w, buf, sizeof buf);
        sl_err e = sl_msg_put_event(&w, SL_EVENT_CONFIG, 0, 0, cases[i].s, strlen(cases[i].s));
        CU_ASSERT_EQUAL(e, cases[i].want);
        struct sl_schema_tag t;
        fx_tag(&t, 1, SL_TYPE_BOOL, SL_REG_COIL, 0, 0, "n", "p", cases[i].s);
        CU_ASSERT_EQUAL(sl_msg_tag_check(&t), cases[i].want);
        if (e == SL_OK) {
            struct sl_msg m;
            CU_ASSERT(one_msg(&m, buf, w.off));
            CU_ASSERT_STRING_EQUAL(m.u.event.text, cases[i].s);
        } else {
            CU_ASSERT_EQUAL(w.off, 0);
        }
    }
}

/* Checks buf[from..sizeof buf) still holds the 0xAA fill. */
static int untouched(size_t from)
{
    for (size_t i = from; i < sizeof buf; i++)
        if (buf[i] != 0xAA)
            return 0;
    return 1;
}

SL_TEST(msg, capacity_delta)
{
    struct sl_value v[10];
    for (size_t i = 0; i < 10; i++)
        v[i] = (struct sl_value){ (uint32_t)i, SL_TYPE_UINT32, i, 0, FX_TIME_US, 0 };
    const size_t fixed = SL_MSG_HDR_BYTES + SL_DELTA_HDR_BYTES;
    for (size_t nfit = 1; nfit <= 5; nfit++) {
        size_t exact = fixed + nfit * SL_VALUE_BYTES;
        CU_ASSERT_EQUAL(sl_msg_delta_fit(exact), nfit);
        CU_ASSERT_EQUAL(sl_msg_delta_fit(exact - 1), nfit - 1);
        struct sl_msg_writer w;
        size_t taken = 99;
        memset(buf, 0xAA, sizeof buf);
        sl_msg_writer_init(&w, buf, exact);
        CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 10), SL_OK);
        CU_ASSERT_EQUAL(taken, nfit);
        CU_ASSERT_EQUAL(w.off, exact);
        CU_ASSERT(untouched(exact));
        /* Full: the next append fits nothing and writes nothing. */
        CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 10), SL_ERR_CAPACITY);
        CU_ASSERT_EQUAL(taken, 0);
        CU_ASSERT_EQUAL(w.off, exact);

        memset(buf, 0xAA, sizeof buf);
        sl_msg_writer_init(&w, buf, exact - 1);
        sl_err e = sl_msg_put_delta(&w, &taken, v, 10);
        if (nfit == 1) {
            CU_ASSERT_EQUAL(e, SL_ERR_CAPACITY);
            CU_ASSERT_EQUAL(w.off, 0);
            CU_ASSERT(untouched(0));
        } else {
            CU_ASSERT_EQUAL(e, SL_OK);
            CU_ASSERT_EQUAL(taken, nfit - 1);
            CU_ASSERT_EQUAL(w.off, exact - SL_VALUE_BYTES);
            CU_ASSERT(untouched(w.off));
        }
    }
    for (size_t cap = 0; cap < fixed + SL_VALUE_BYTES; cap++) {
        struct sl_msg_writer w;
        size_t taken;
        memset(buf, 0xAA, sizeof buf);
        sl_msg_writer_init(&w, buf, cap);
        CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 1), SL_ERR_CAPACITY);
        CU_ASSERT(untouched(0));
        CU_ASSERT_EQUAL(sl_msg_delta_fit(cap), 0);
    }
    struct sl_msg_writer w;
    size_t taken;
    sl_msg_writer_init(&w, NULL, 0);
    CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 1), SL_ERR_CAPACITY);
}

SL_TEST(msg, capacity_keyframe)
{
    struct sl_value v[4];
    for (size_t i = 0; i < 4; i++)
        v[i] = (struct sl_value){ (uint32_t)i, SL_TYPE_BOOL, i & 1, 0, FX_TIME_US, 0 };
    const size_t fixed = SL_MSG_HDR_BYTES + SL_KEYFRAME_HDR_BYTES;
    struct sl_msg_writer w;
    size_t taken;
    for (size_t nfit = 1; nfit <= 4; nfit++) {
        size_t exact = fixed + nfit * SL_VALUE_BYTES;
        CU_ASSERT_EQUAL(sl_msg_keyframe_fit(exact), nfit);
        CU_ASSERT_EQUAL(sl_msg_keyframe_fit(exact - 1), nfit - 1);
        memset(buf, 0xAA, sizeof buf);
        sl_msg_writer_init(&w, buf, exact);
        CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 4, v, 4), SL_OK);
        CU_ASSERT_EQUAL(taken, nfit);
        CU_ASSERT_EQUAL(w.off, exact);
        CU_ASSERT(untouched(exact));
    }
    memset(buf, 0xAA, sizeof buf);
    sl_msg_writer_init(&w, buf, fixed + SL_VALUE_BYTES - 1);
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 4, v, 4), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(w.off, 0);
    CU_ASSERT(untouched(0));
    /* An empty keyframe is a header-only chunk: fits in exactly 18 bytes. */
    sl_msg_writer_init(&w, buf, fixed);
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 0, NULL, 0), SL_OK);
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(w.off, fixed);
    struct sl_msg m;
    CU_ASSERT(one_msg(&m, buf, w.off));
    CU_ASSERT_EQUAL(m.u.keyframe.values.count, 0);
    memset(buf, 0xAA, sizeof buf);
    sl_msg_writer_init(&w, buf, fixed - 1);
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 0, NULL, 0), SL_ERR_CAPACITY);
    CU_ASSERT(untouched(0));
}

SL_TEST(msg, capacity_schema_and_event)
{
    struct sl_schema_tag t[3];
    fx_tag(&t[0], 1, SL_TYPE_INT16, SL_REG_HOLDING, 0, 0, "a", "", "");
    fx_tag(&t[1], 2, SL_TYPE_INT16, SL_REG_HOLDING, 0, 1, "bb", "x/y", "kg");
    fx_tag(&t[2], 3, SL_TYPE_INT16, SL_REG_HOLDING, 0, 2, "ccc", "", "V");
    CU_ASSERT_EQUAL(sl_msg_tag_bytes(&t[0]), SL_SCHEMA_TAG_FIXED + 1);
    CU_ASSERT_EQUAL(sl_msg_tag_bytes(&t[1]), SL_SCHEMA_TAG_FIXED + 7);
    const size_t fixed = SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES;
    const size_t t0 = SL_SCHEMA_TAG_FIXED + 1, t1 = SL_SCHEMA_TAG_FIXED + 7, t2 = SL_SCHEMA_TAG_FIXED + 4;
    size_t sizes[3] = { fixed + t0, fixed + t0 + t1, fixed + t0 + t1 + t2 };
    struct sl_msg_writer w;
    size_t taken;
    for (size_t k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(sl_msg_schema_fit(sizes[k], t, 3), k + 1);
        CU_ASSERT_EQUAL(sl_msg_schema_fit(sizes[k] - 1, t, 3), k);
        memset(buf, 0xAA, sizeof buf);
        sl_msg_writer_init(&w, buf, sizes[k]);
        CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 5, 0, 1, 3, t, 3), SL_OK);
        CU_ASSERT_EQUAL(taken, k + 1);
        CU_ASSERT_EQUAL(w.off, sizes[k]);
        CU_ASSERT(untouched(sizes[k]));
        memset(buf, 0xAA, sizeof buf);
        sl_msg_writer_init(&w, buf, sizes[k] - 1);
        sl_err e = sl_msg_put_schema(&w, &taken, 5, 0, 1, 3, t, 3);
        CU_ASSERT_EQUAL(e, k == 0 ? SL_ERR_CAPACITY : SL_OK);
        CU_ASSERT_EQUAL(taken, k);
        CU_ASSERT(untouched(w.off));
    }
    sl_msg_writer_init(&w, buf, 0);
    CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 5, 0, 1, 3, t, 3), SL_ERR_CAPACITY);
    /* An invalid tag beyond what fits is left for the next chunk... */
    t[2].type = 0;
    sl_msg_writer_init(&w, buf, sizes[1]);
    CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 5, 0, 1, 3, t, 3), SL_OK);
    CU_ASSERT_EQUAL(taken, 2);
    /* ...and refused, writing nothing, once it would be taken. */
    memset(buf, 0xAA, sizeof buf);
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 5, 0, 1, 3, t, 3), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(w.off, 0);
    CU_ASSERT(untouched(0));

    size_t ev = SL_MSG_HDR_BYTES + SL_EVENT_HDR_BYTES + 3;
    sl_msg_writer_init(&w, buf, ev);
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, SL_EVENT_DEVICE_UP, 1, 0, "abc", 3), SL_OK);
    CU_ASSERT_EQUAL(w.off, ev);
    memset(buf, 0xAA, sizeof buf);
    sl_msg_writer_init(&w, buf, ev - 1);
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, SL_EVENT_DEVICE_UP, 1, 0, "abc", 3), SL_ERR_CAPACITY);
    CU_ASSERT(untouched(0));
}

SL_TEST(msg, body_max_splits_long_lists)
{
    static struct sl_value v[3 * SL_DELTA_VALUES_MAX];
    const size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i < n; i++)
        v[i] = (struct sl_value){ (uint32_t)i, SL_TYPE_INT32, i, 0, FX_TIME_US + i, 0 };
    CU_ASSERT_EQUAL(sl_msg_delta_fit(SIZE_MAX), SL_DELTA_VALUES_MAX);
    CU_ASSERT_EQUAL(sl_msg_keyframe_fit(SIZE_MAX), SL_KEYFRAME_VALUES_MAX);
    struct sl_msg_writer w;
    size_t taken, done = 0, msgs = 0;
    sl_msg_writer_init(&w, big, sizeof big);
    while (done < n) {
        CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&w, &taken, v + done, n - done), SL_OK);
        CU_ASSERT(taken <= SL_DELTA_VALUES_MAX);
        done += taken;
        msgs++;
    }
    CU_ASSERT_EQUAL(msgs, 3);
    CU_ASSERT_EQUAL(w.off, 3 * (SL_MSG_HDR_BYTES + SL_DELTA_HDR_BYTES + SL_DELTA_VALUES_MAX * SL_VALUE_BYTES));
    /* A keyframe chunk stops at its own maximum too. */
    sl_msg_writer_init(&w, big, sizeof big);
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 3, (uint32_t)n, v, n), SL_OK);
    CU_ASSERT_EQUAL(taken, SL_KEYFRAME_VALUES_MAX);
    CU_ASSERT_EQUAL(w.off, SL_MSG_HDR_BYTES + 65514u);   /* body 14 + 2620 * 25 */

    struct sl_msg_reader r;
    struct sl_msg m;
    CU_ASSERT_EQUAL_FATAL(sl_msg_reader_init(&r, big, w.off), SL_OK);
    CU_ASSERT_FATAL(sl_msg_next(&r, &m));
    struct sl_value got;
    size_t i = 0;
    while (sl_msg_value_next(&m.u.keyframe.values, &got)) {
        CU_ASSERT_EQUAL(got.raw, i);
        i++;
    }
    CU_ASSERT_EQUAL(i, SL_KEYFRAME_VALUES_MAX);
}

SL_TEST(msg, writer_argument_errors)
{
    struct sl_value v[3] = {
        { 1, SL_TYPE_BOOL, 1, 0, 0, 0 }, { 2, SL_TYPE_BOOL, 7, 0, 0, 0 }, { 3, SL_TYPE_BOOL, 0, 0, 0, 0 },
    };
    struct sl_msg_writer w;
    size_t taken = 5;
    memset(buf, 0xAA, sizeof buf);
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 0), SL_ERR_RANGE);   /* empty DELTA */
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 3), SL_ERR_RANGE);   /* v[1] bool 7 */
    CU_ASSERT_EQUAL(w.off, 0);
    CU_ASSERT(untouched(0));
    /* v[1] is not taken when only one value fits: no error. */
    sl_msg_writer_init(&w, buf, SL_MSG_HDR_BYTES + SL_DELTA_HDR_BYTES + SL_VALUE_BYTES);
    CU_ASSERT_EQUAL(sl_msg_put_delta(&w, &taken, v, 3), SL_OK);
    CU_ASSERT_EQUAL(taken, 1);

    sl_msg_writer_init(&w, buf, sizeof buf);
    memset(buf, 0xAA, sizeof buf);
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 0, 1, v, 1), SL_ERR_RANGE);  /* chunks 0 */
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 2, 2, 4, v, 1), SL_ERR_RANGE);  /* chunk >= chunks */
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 1, v + 2, 2), SL_ERR_RANGE); /* n > total */
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 3, v, 0), SL_ERR_RANGE);  /* empty chunk */
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 2, 0, v, 0), SL_ERR_RANGE);  /* empty, 2 chunks */
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 3, 2, v, 1), SL_ERR_RANGE);  /* chunks > total */
    CU_ASSERT_EQUAL(sl_msg_put_keyframe(&w, &taken, 1, 0, 1, 3, v, 3), SL_ERR_RANGE);  /* bad value */
    CU_ASSERT_EQUAL(w.off, 0);
    CU_ASSERT(untouched(0));

    struct sl_schema_tag t;
    fx_tag(&t, 1, SL_TYPE_BOOL, SL_REG_COIL, 0, 0, "n", "", "");
    CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 1, 1, 1, 1, &t, 1), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 1, 0, 1, 0, &t, 1), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_msg_put_schema(&w, &taken, 1, 0, 1, 0, NULL, 0), SL_OK);       /* empty schema */
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(w.off, SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES);

    size_t off = w.off;
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, 0, 0, 0, NULL, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, 5, 0, 0, NULL, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, 1, 0, 0, NULL, 1), SL_ERR_RANGE);
    char text[SL_EVENT_TEXT_MAX + 1];
    memset(text, 'a', sizeof text);
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, 1, 0, 0, text, sizeof text), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_msg_put_event(&w, 1, 0, 0, "a\0b", 3), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(w.off, off);
}
