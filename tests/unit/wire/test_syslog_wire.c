/* The syslog channel's codec (sl_logmsg): a known-answer batch that
 * docs/protocol-messages.md shows byte for byte (SL_REGEN=1 rewrites
 * data/syslog.hex and the fuzz seeds), the exact-length rules, and the
 * all-or-nothing batch check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_logmsg.h"
#include "sl_msg.h"
#include "sl_test.h"

static int regen(void)
{
    const char *e = getenv("SL_REGEN");
    return e && strcmp(e, "1") == 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(1u << 20);
    size_t n = p ? fread(p, 1, (1u << 20) - 1, f) : 0;
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

static size_t hexdump(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = i % 16 == 0 ? snprintf(out + len, cap - len, "%04zx  %02x", i, p[i])
                            : snprintf(out + len, cap - len, " %02x", p[i]);
        if (k < 0 || (size_t)k >= cap - len)
            return len;
        len += (size_t)k;
        if ((i % 16 == 15 || i + 1 == n) && len + 1 < cap) {
            out[len++] = '\n';
            out[len] = '\0';
        }
    }
    return len;
}

static const char RFC5424[] = "<34>1 2023-11-14T22:13:20Z plc-gw su - ID47 - 'su root' failed";
static const char RFC3164[] = "<13>Nov 14 22:13:20 hmi1 app: ok";

/* The KAT batch: an RFC 5424 message over UDP from 192.0.2.7:514, and an
 * RFC 3164 one over TCP from [2001:db8::5]:40000, truncated. */
static size_t kat_batch(uint8_t *out, size_t cap)
{
    struct sl_logmsg a = { .recv_time_us = 1700000000000000ull, .port = 514,
                           .transport = SL_SYSLOG_UDP, .text = (const uint8_t *)RFC5424,
                           .text_len = sizeof RFC5424 - 1 };
    a.addr[10] = 0xff;
    a.addr[11] = 0xff;
    a.addr[12] = 192;
    a.addr[13] = 0;
    a.addr[14] = 2;
    a.addr[15] = 7;
    struct sl_logmsg b = { .recv_time_us = 1700000000001000ull, .port = 40000,
                           .transport = SL_SYSLOG_TCP, .flags = SL_SYSLOG_F_TRUNCATED,
                           .text = (const uint8_t *)RFC3164, .text_len = sizeof RFC3164 - 1 };
    b.addr[0] = 0x20;
    b.addr[1] = 0x01;
    b.addr[2] = 0x0d;
    b.addr[3] = 0xb8;
    b.addr[15] = 5;
    size_t off = 0;
    CU_ASSERT_FATAL(sl_logmsg_put(out, cap, &off, &a) == SL_OK);
    CU_ASSERT_FATAL(sl_logmsg_put(out, cap, &off, &b) == SL_OK);
    return off;
}

SL_TEST(syslog_wire, kat_matches_data_and_docs)
{
    uint8_t p[512];
    char dump[4096], path[512];
    size_t n = kat_batch(p, sizeof p);
    CU_ASSERT_EQUAL(n, sl_logmsg_bytes(sizeof RFC5424 - 1) + sl_logmsg_bytes(sizeof RFC3164 - 1));
    size_t dlen = hexdump(dump, sizeof dump, p, n);
    snprintf(path, sizeof path, "%s/syslog.hex", SL_TEST_DATA_DIR);
    if (regen()) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        CU_ASSERT_EQUAL(fwrite(dump, 1, dlen, f), dlen);
        fclose(f);
        /* Seeds: the batch, each message alone, and one truncated. */
        static const struct { const char *name; size_t off, len; } seeds[] = {
            { "batch", 0, 0 }, { "first", 0, 1 }, { "short", 0, 2 },
        };
        size_t first = sl_logmsg_bytes(sizeof RFC5424 - 1);
        for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
            char sp[512];
            snprintf(sp, sizeof sp, "%s/tests/fuzz/corpus/logmsg/%s", SL_SOURCE_DIR, seeds[i].name);
            size_t len = seeds[i].len == 0 ? n : seeds[i].len == 1 ? first : first - 3;
            FILE *s = fopen(sp, "wb");
            CU_ASSERT_FATAL(s != NULL);
            CU_ASSERT_EQUAL(fwrite(p, 1, len, s), len);
            fclose(s);
        }
        return;
    }
    size_t len = 0;
    char *have = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(have);
    CU_ASSERT(len == dlen && memcmp(have, dump, dlen) == 0);
    free(have);
    char *doc = slurp(SL_SOURCE_DIR "/docs/protocol-messages.md", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    if (!strstr(doc, dump)) {
        CU_FAIL("docs/protocol-messages.md lacks the SYSLOG hex dump");
        fprintf(stderr, "\n%s", dump);
    }
    free(doc);
}

SL_TEST(syslog_wire, fields_at_documented_offsets)
{
    uint8_t p[512];
    kat_batch(p, sizeof p);
    static const uint8_t head[] = {
        0x20, 0x00, 0x00, 0x5a,                          /* SYSLOG, flags, body 28 + 62 */
        0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00,  /* recv_time_us */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7,
        0x02, 0x02,                                      /* port 514 */
        0x01, 0x00,                                      /* UDP, flags 0 */
        '<', '3', '4', '>',
    };
    CU_ASSERT_EQUAL(sizeof RFC5424 - 1, 62);
    CU_ASSERT_EQUAL(memcmp(p, head, sizeof head), 0);
}

SL_TEST(syslog_wire, round_trip_and_batch)
{
    uint8_t p[512];
    size_t n = kat_batch(p, sizeof p), count = 0;
    CU_ASSERT_EQUAL(sl_logmsg_batch_check(p, n, &count), SL_OK);
    CU_ASSERT_EQUAL(count, 2);
    struct sl_buf b = sl_buf_make(p, n);
    struct sl_logmsg m;
    CU_ASSERT_FATAL(sl_logmsg_next(&b, &m));
    CU_ASSERT_EQUAL(m.text_len, sizeof RFC5424 - 1);
    CU_ASSERT_EQUAL(memcmp(m.text, RFC5424, m.text_len), 0);
    CU_ASSERT_EQUAL(m.port, 514);
    char a[64];
    sl_logmsg_addr_text(a, sizeof a, m.addr);
    CU_ASSERT_STRING_EQUAL(a, "192.0.2.7");
    CU_ASSERT_FATAL(sl_logmsg_next(&b, &m));
    CU_ASSERT_EQUAL(m.transport, SL_SYSLOG_TCP);
    CU_ASSERT_EQUAL(m.flags, SL_SYSLOG_F_TRUNCATED);
    sl_logmsg_addr_text(a, sizeof a, m.addr);
    CU_ASSERT_STRING_EQUAL(a, "2001:db8::5");
    CU_ASSERT(!sl_logmsg_next(&b, &m));

    /* Short anywhere but at the message boundary: refused whole. */
    size_t first = sl_logmsg_bytes(sizeof RFC5424 - 1);
    for (size_t cut = 1; cut < n; cut++)
        if (n - cut != first)
            CU_ASSERT_NOT_EQUAL(sl_logmsg_batch_check(p, n - cut, &count), SL_OK);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(sl_logmsg_batch_check(p, 0, &count), SL_ERR_TRUNCATED);
}

SL_TEST(syslog_wire, rejections)
{
    uint8_t p[512];
    size_t n = kat_batch(p, sizeof p), count;
    struct sl_logmsg m;
    /* Header only: no text. */
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_SYSLOG, p + 4, SL_SYSLOG_HDR_BYTES), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_SYSLOG, p + 4, 10), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_FILE_DATA, p + 4, 90), SL_ERR_TYPE);
    /* Unknown transport, unknown flag. */
    p[4 + SL_SYSLOG_OFF_TRANSPORT] = 3;
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_SYSLOG, p + 4, 90), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_logmsg_batch_check(p, n, &count), SL_ERR_RANGE);
    p[4 + SL_SYSLOG_OFF_TRANSPORT] = SL_SYSLOG_UDP;
    p[4 + SL_SYSLOG_OFF_FLAGS] = 2;
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_SYSLOG, p + 4, 90), SL_ERR_RANGE);
    p[4 + SL_SYSLOG_OFF_FLAGS] = 0;
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_SYSLOG, p + 4, 90), SL_OK);
    /* A tag message inside a syslog batch. */
    p[0] = SL_MSG_DELTA;
    CU_ASSERT_EQUAL(sl_logmsg_batch_check(p, n, &count), SL_ERR_TYPE);

    /* Encoder limits. */
    static uint8_t big[SL_SYSLOG_TEXT_MAX + 1];
    static uint8_t out[SL_SYSLOG_TEXT_MAX + 64];
    struct sl_logmsg w = { .transport = SL_SYSLOG_UDP, .text = big, .text_len = sizeof big };
    size_t off = 0;
    CU_ASSERT_EQUAL(sl_logmsg_put(out, sizeof out, &off, &w), SL_ERR_RANGE);
    w.text_len = 0;
    CU_ASSERT_EQUAL(sl_logmsg_put(out, sizeof out, &off, &w), SL_ERR_RANGE);
    w.text_len = SL_SYSLOG_TEXT_MAX;
    CU_ASSERT_EQUAL(sl_logmsg_put(out, sizeof out, &off, &w), SL_OK);
    CU_ASSERT_EQUAL(off, sl_logmsg_bytes(SL_SYSLOG_TEXT_MAX));
    CU_ASSERT_EQUAL(sl_logmsg_decode(&m, SL_MSG_SYSLOG, out + 4, off - 4), SL_OK);
    off = 0;
    CU_ASSERT_EQUAL(sl_logmsg_put(out, SL_SYSLOG_TEXT_MAX, &off, &w), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(off, 0);
}
