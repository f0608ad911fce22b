/* Known answers: the encoder's output for fixed inputs is compared byte for
 * byte with the .hex files in tests/unit/msg/data and must appear verbatim in
 * docs/protocol-messages.md; the fuzz seed corpora are the encoder's output
 * too. SL_REGEN=1 rewrites the data files and corpora instead of comparing
 * (the doc is edited by hand from the data files). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "msg_fixtures.h"
#include "sl_hmsg.h"
#include "sl_msg.h"
#include "sl_test.h"

static int regen(void)
{
    const char *e = getenv("SL_REGEN");
    return e && strcmp(e, "1") == 0;
}

/* Whole file into a malloc'd NUL-terminated buffer; NULL if unreadable. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    while (p) {
        size_t k = fread(p + n, 1, cap - n, f);
        n += k;
        if (n < cap)
            break;
        char *q = realloc(p, cap * 2 + 1);
        if (!q) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

static int spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t k = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && k == n) ? 0 : -1;
}

/* Writes (SL_REGEN=1) or compares path against p[0..n). */
static void check_file(const char *path, const void *p, size_t n)
{
    if (regen()) {
        CU_ASSERT_EQUAL(spit(path, p, n), 0);
        return;
    }
    size_t len = 0;
    char *have = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(have);
    CU_ASSERT_EQUAL(len, n);
    if (len == n)
        CU_ASSERT_EQUAL(memcmp(have, p, n), 0);
    if (len != n || memcmp(have, p, n) != 0)
        fprintf(stderr, "\n%s differs from the encoder's output (SL_REGEN=1 rewrites it)\n", path);
    free(have);
}

static const struct {
    const char *name;
    size_t (*gen)(uint8_t *, size_t);
    uint8_t type;
} kats[] = {
    { "delta", fx_kat_delta, SL_MSG_DELTA },
    { "keyframe", fx_kat_keyframe, SL_MSG_KEYFRAME },
    { "schema", fx_kat_schema, SL_MSG_SCHEMA },
    { "event", fx_kat_event, SL_MSG_EVENT },
    { "delta_seq", fx_kat_delta_seq, SL_MSG_DELTA_SEQ },
    { "history", fx_kat_history, SL_MSG_HISTORY },
    { "history_idle", fx_kat_history_idle, SL_MSG_HISTORY },
};

SL_TEST(msg_kat, vectors_match_data_and_docs)
{
    size_t doc_len = 0;
    char *doc = slurp(SL_SOURCE_DIR "/docs/protocol-messages.md", &doc_len);
    CU_ASSERT_PTR_NOT_NULL(doc);
    for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
        uint8_t msg[512];
        char dump[4096], path[512];
        size_t len = kats[i].gen(msg, sizeof msg);
        CU_ASSERT_EQUAL(msg[0], kats[i].type);
        size_t dlen = fx_hexdump(dump, sizeof dump, msg, len);
        CU_ASSERT(dlen > 0 && dlen + 1 < sizeof dump);
        snprintf(path, sizeof path, "%s/%s.hex", SL_TEST_DATA_DIR, kats[i].name);
        check_file(path, dump, dlen);
        if (doc && !strstr(doc, dump)) {
            CU_FAIL("docs/protocol-messages.md lacks the hex dump");
            fprintf(stderr, "\ndocs/protocol-messages.md lacks the %s dump:\n%s", kats[i].name, dump);
        }
    }
    free(doc);
}

SL_TEST(msg_kat, fields_at_documented_offsets)
{
    uint8_t m[512];
    size_t len = fx_kat_delta(m, sizeof m);
    CU_ASSERT_EQUAL(len, 4 + 2 + 3 * 25);
    static const uint8_t delta_head[] = {
        0x03, 0x00, 0x00, 0x4d,                          /* DELTA, flags, body_len 77 */
        0x00, 0x03,                                      /* count */
        0x00, 0x00, 0x00, 0x11, 0x07,                    /* tag 17, float32 */
        0x00, 0x00, 0x00, 0x00, 0x42, 0x2a, 0x00, 0x00,  /* 42.5f */
        0x00, 0x00, 0x00, 0x00,                          /* Good */
        0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00,  /* 1700000000000000 µs */
        0x00, 0x00, 0x00, 0x12, 0x02,                    /* tag 18, int16 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe,  /* -2 zero-extended */
        0x80, 0x05, 0x00, 0x00,                          /* BadCommunicationError */
    };
    CU_ASSERT_EQUAL(memcmp(m, delta_head, sizeof delta_head), 0);

    len = fx_kat_keyframe(m, sizeof m);
    static const uint8_t kf_head[] = {
        0x02, 0x00, 0x00, 0x40,     /* KEYFRAME, body 14 + 2 * 25 = 64 */
        0x00, 0x00, 0x00, 0x07,     /* keyframe_id */
        0x00, 0x01, 0x00, 0x03,     /* chunk 1 of 3 */
        0x00, 0x00, 0x00, 0x05,     /* total_tags */
        0x00, 0x02,                 /* count */
    };
    CU_ASSERT_EQUAL(len, 4 + 64);
    CU_ASSERT_EQUAL(memcmp(m, kf_head, sizeof kf_head), 0);

    len = fx_kat_schema(m, sizeof m);
    static const uint8_t sc_tag0[] = {
        0x00, 0x00, 0x00, 0x11, 0x07, 0x01, 0x01, 0x01, 0x00, 0x64,   /* 17 float32 holding CDAB unit 1 @100 */
        0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a,               /* scale 0.1 */
        0xc0, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,               /* offset -40 */
        0x06, 'T', 'T', '-', '1', '0', '1',
    };
    CU_ASSERT_EQUAL(m[0], SL_MSG_SCHEMA);
    CU_ASSERT_EQUAL(sl_be32_get(m + 4), 0xA1B2C3D4u);
    CU_ASSERT_EQUAL(memcmp(m + 4 + 14, sc_tag0, sizeof sc_tag0), 0);
    CU_ASSERT_EQUAL(len, 4 + 14 + (29 + 6 + 23 + 3) + (29 + 9 + 23));

    len = fx_kat_event(m, sizeof m);
    CU_ASSERT_EQUAL(len, 4 + 12 + 24);
    CU_ASSERT_EQUAL(m[4], SL_EVENT_DEVICE_DOWN);
    CU_ASSERT_EQUAL(sl_be16_get(m + 14), 24);
    CU_ASSERT_EQUAL(memcmp(m + 16, "plc1: connection refused", 24), 0);
}

/* ---- seed corpora for tests/fuzz/fuzz_msg_*.c ---------------------------- */

static uint8_t scratch[16384];

static void seed(const char *target, const char *name, const uint8_t *p, size_t n)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", SL_SOURCE_DIR, target);
    if (regen() && mkdir(dir, 0755) != 0 && errno != EEXIST)
        CU_FAIL("cannot create corpus directory");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    check_file(path, p, n);
}

/* Seeds a one-message payload to msg_payload and its body to msg_<body>. */
static void seed_msg(const char *body_target, const char *name, const uint8_t *m, size_t n)
{
    char whole[128];
    snprintf(whole, sizeof whole, "%s_%s", body_target + 4, name);   /* "delta_kat" */
    seed("msg_payload", whole, m, n);
    seed(body_target, name, m + SL_MSG_HDR_BYTES, n - SL_MSG_HDR_BYTES);
}

SL_TEST(msg_kat, fuzz_corpora_are_encoder_output)
{
    struct sl_msg_writer w;
    size_t n, taken;
    n = fx_kat_delta(scratch, sizeof scratch);
    seed_msg("msg_delta", "kat", scratch, n);
    n = fx_kat_keyframe(scratch, sizeof scratch);
    seed_msg("msg_keyframe", "kat", scratch, n);
    n = fx_kat_schema(scratch, sizeof scratch);
    seed_msg("msg_schema", "kat", scratch, n);
    n = fx_kat_event(scratch, sizeof scratch);
    seed_msg("msg_event", "kat", scratch, n);
    n = fx_mixed_payload(scratch, sizeof scratch);
    seed("msg_payload", "mixed", scratch, n);

    struct sl_value v[8];
    size_t nv = fx_every_type(v, 8);
    sl_msg_writer_init(&w, scratch, sizeof scratch);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&w, &taken, v, nv), SL_OK);
    seed_msg("msg_delta", "every_type", scratch, w.off);
    sl_msg_writer_init(&w, scratch, sizeof scratch);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&w, &taken, 0xFFFFFFFFu, 0, 1, (uint32_t)nv, v, nv), SL_OK);
    seed_msg("msg_keyframe", "every_type", scratch, w.off);
    sl_msg_writer_init(&w, scratch, sizeof scratch);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&w, &taken, 3, 0, 1, 0, NULL, 0), SL_OK);
    seed_msg("msg_keyframe", "empty", scratch, w.off);

    struct sl_schema_tag t[6];
    fx_tag(&t[0], 1, SL_TYPE_BOOL, SL_REG_DISCRETE, SL_WORD_ABCD, 65535, "in.\xE2\x82\xAC", "", "");
    fx_tag(&t[1], 2, SL_TYPE_INT16, SL_REG_INPUT, SL_WORD_ABCD, 0, "i16", "a/b/c/d", "bar");
    fx_tag(&t[2], 3, SL_TYPE_UINT32, SL_REG_HOLDING, SL_WORD_BADC, 65534, "u32", "a/b/c/d", "");
    fx_tag(&t[3], 4, SL_TYPE_INT64, SL_REG_HOLDING, SL_WORD_DCBA, 10, "i64", "a/b/c/d", "Wh");
    fx_tag(&t[4], 5, SL_TYPE_FLOAT64, SL_REG_INPUT, SL_WORD_CDAB, 20, "f64", "a/b/c/d", "\xC2\xB5m");
    fx_tag(&t[5], 6, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_ABCD, 30, "u16", "a/b/c/d", "%");
    t[4].scale = -1e-9;
    t[4].offset = 1e300;
    sl_msg_writer_init(&w, scratch, sizeof scratch);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_schema(&w, &taken, 1, 1, 2, 7, t, 6), SL_OK);
    seed_msg("msg_schema", "kinds", scratch, w.off);
    sl_msg_writer_init(&w, scratch, sizeof scratch);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_schema(&w, &taken, 2, 0, 1, 0, NULL, 0), SL_OK);
    seed_msg("msg_schema", "empty", scratch, w.off);

    for (uint8_t kind = SL_EVENT_DEVICE_UP; kind <= SL_EVENT_TX_START; kind++) {
        static const char *texts[] = { "", "reload: 3 devices, 120 tags", "" };
        static const char *names[] = { "up", "config", "tx_start" };
        const char *txt = texts[kind - SL_EVENT_DEVICE_UP];
        sl_msg_writer_init(&w, scratch, sizeof scratch);
        CU_ASSERT_EQUAL_FATAL(sl_msg_put_event(&w, kind, kind == SL_EVENT_DEVICE_UP ? 2 : 0,
                                               FX_TIME_US, txt, strlen(txt)), SL_OK);
        seed_msg("msg_event", names[kind - SL_EVENT_DEVICE_UP], scratch, w.off);
    }
    seed("msg_payload", "empty", scratch, 0);

    /* DELTA_SEQ: the known answer and one value of every type. */
    n = fx_kat_delta_seq(scratch, sizeof scratch);
    seed_msg("msg_delta_seq", "kat", scratch, n);
    for (size_t i = 0; i < nv; i++)
        v[i].seq = 1 + i * 4099u;
    sl_msg_writer_init(&w, scratch, sizeof scratch);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&w, &taken, UINT64_MAX, v, nv), SL_OK);
    seed_msg("msg_delta_seq", "every_type", scratch, w.off);

    /* HISTORY (fuzz_hmsg): the known answer, the idle status, both in one
     * payload, and runs of every type with gaps between them. */
    n = fx_kat_history(scratch, sizeof scratch);
    seed("hmsg", "kat", scratch, n);
    size_t idle = fx_kat_history_idle(scratch + n, sizeof scratch - n);
    seed("hmsg", "kat_then_idle", scratch, n + idle);
    seed("hmsg", "idle", scratch + n, idle);
    const struct sl_hstatus st = { 0xFEDCBA9876543210ull, 0, 1000 };
    struct sl_hmsg_writer hw;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&hw, scratch, sizeof scratch, &st), SL_OK);
    uint64_t seq = 1, ts = FX_TIME_US;
    for (size_t i = 0; i < nv; i++) {
        for (int k = 0; k < 3; k++) {
            struct sl_hrec r = { .kind = SL_HREC_VALUE, .seq = seq++, .count = 1, .tag_id = v[i].tag_id,
                                 .type = v[i].type, .raw = k == 1 ? 0 : v[i].raw,
                                 .quality = k == 2 ? SL_Q_BAD_COMM_ERROR : SL_Q_GOOD,
                                 .source_time_us = ts += 1000000 + (uint64_t)k };
            CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&hw, &r), SL_OK);
        }
        struct sl_hrec g = { .kind = SL_HREC_GAP, .seq = seq, .count = 1 + i };
        CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&hw, &g), SL_OK);
        seq += g.count;
    }
    seed("hmsg", "every_type", scratch, sl_hmsg_finish(&hw));
}
