/* The synthetic tag source (tx/sl_generator.c): its schedule (R updates per
 * second spread evenly, round robin over N tags, skip-ahead when far
 * behind, batched wake-ups), its tag map, and the txconf keys that select
 * it. Values fed into a snapshot come out as DELTA values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_generator.h"
#include "sl_msg.h"
#include "sl_snapshot.h"
#include "sl_test.h"
#include "sl_txconf.h"

#define T0 7000000ull

SL_TEST(generator, schedule_round_robin)
{
    struct sl_generator g;
    sl_generator_init(&g, 10, 3, 1000, T0);   /* 1000/s: one per ms */
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0), 0);
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0 + 999), 0);
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0 + 1000), 1);
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0 + 5500), 5);
    uint32_t want[] = { 10, 11, 12, 10, 11 };
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(sl_generator_next(&g), want[i]);
    CU_ASSERT_EQUAL(g.produced, 5);
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0 + 5500), 0);
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0 + 1000000), 995);
    CU_ASSERT_EQUAL(g.skipped, 0);
}

SL_TEST(generator, large_rate_and_time_no_overflow)
{
    struct sl_generator g;
    sl_generator_init(&g, 0, 1000000, SL_GENERATOR_MAX_RATE, 0);
    /* A year later: more than a second behind, so all but one second's
     * worth is skipped. */
    uint64_t year = 365ull * 86400 * 1000000;
    uint64_t due = sl_generator_due(&g, year);
    CU_ASSERT_EQUAL(due, SL_GENERATOR_MAX_RATE);
    CU_ASSERT_EQUAL(g.skipped + due, 365ull * 86400 * SL_GENERATOR_MAX_RATE);
    CU_ASSERT(g.next < 1000000);
}

SL_TEST(generator, skip_keeps_round_robin_position)
{
    struct sl_generator g;
    sl_generator_init(&g, 0, 7, 100, T0);   /* max lag: 100 updates */
    uint64_t due = sl_generator_due(&g, T0 + 3000000);   /* 300 scheduled */
    CU_ASSERT_EQUAL(due, 100);
    CU_ASSERT_EQUAL(g.skipped, 200);
    CU_ASSERT_EQUAL(sl_generator_next(&g), 200 % 7);
}

SL_TEST(generator, wake_batches_and_rate_zero)
{
    struct sl_generator g;
    sl_generator_init(&g, 0, 4, 10, T0);   /* one every 100 ms */
    CU_ASSERT_EQUAL(sl_generator_wake_us(&g, T0), T0 + 100000);
    sl_generator_init(&g, 0, 4, 10000000, T0);   /* one every 0.1 µs: batched per tick */
    CU_ASSERT_EQUAL(sl_generator_wake_us(&g, T0), T0 + SL_GENERATOR_TICK_US);
    sl_generator_init(&g, 0, 4, 0, T0);
    CU_ASSERT_EQUAL(sl_generator_due(&g, T0 + 10000000), 0);
    CU_ASSERT_EQUAL(sl_generator_wake_us(&g, T0), UINT64_MAX);
}

SL_TEST(generator, tagmap)
{
    struct sl_tagmap m;
    CU_ASSERT_EQUAL(sl_generator_tagmap(&m, "gen", 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_generator_tagmap(&m, "gen", SL_GENERATOR_MAX_TAGS + 1), SL_ERR_RANGE);
    CU_ASSERT_EQUAL_FATAL(sl_generator_tagmap(&m, "gen", 20000), SL_OK);
    CU_ASSERT_EQUAL(m.count, 20000);
    CU_ASSERT_STRING_EQUAL(m.tags[0].name, "t0");
    CU_ASSERT_STRING_EQUAL(m.tags[19999].name, "t19999");
    CU_ASSERT_STRING_EQUAL(m.tags[5].path, "bench/generator/gen/tags");
    CU_ASSERT_EQUAL(m.tags[5].type, SL_TYPE_INT64);
    CU_ASSERT_EQUAL(m.tags[5].address, 20);
    CU_ASSERT_EQUAL(m.tags[16384].address, 0);   /* wraps */
    for (size_t i = 0; i < m.count; i += 997) {
        struct sl_schema_tag t = { .tag_id = (uint32_t)i, .type = m.tags[i].type, .reg = m.tags[i].reg,
                                   .word_order = m.tags[i].word_order, .mirror_unit = 1,
                                   .address = m.tags[i].address, .scale = 1 };
        snprintf(t.name, sizeof t.name, "%s", m.tags[i].name);
        snprintf(t.path, sizeof t.path, "%s", m.tags[i].path);
        CU_ASSERT_EQUAL(sl_msg_tag_check(&t), SL_OK);
    }
    sl_tagmap_free(&m);
}

static const char conf_head[] =
    "[link]\ntransport = pcapfile\nfile = /tmp/x.pcap\n"
    "[keys]\nsigning_key = k\nstate_dir = s\n";

static sl_err parse(struct sl_txconf *c, struct sl_diag *d, const char *dev)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s", conf_head, dev);
    sl_diag_init(d);
    return sl_txconf_parse(c, text, strlen(text), "t.conf", "/tmp", SL_TXCONF_SKIP_HOST_CHECKS, d);
}

SL_TEST(generator, txconf)
{
    struct sl_txconf c;
    struct sl_diag d;
    CU_ASSERT_EQUAL(parse(&c, &d, "[device g]\nprotocol = generator\ntags = 1000\nrate = 50000\n"
                                  "mirror_unit = 9\n"), SL_OK);
    CU_ASSERT_EQUAL(c.ndevices, 1);
    CU_ASSERT_EQUAL(c.devices[0].protocol, SL_TXCONF_GENERATOR);
    CU_ASSERT_EQUAL(c.devices[0].rate, 50000);
    CU_ASSERT_EQUAL(c.devices[0].mirror_unit, 9);
    CU_ASSERT_EQUAL(c.ntags, 1000);
    sl_txconf_free(&c);
    sl_diag_free(&d);

    CU_ASSERT_EQUAL(parse(&c, &d, "[device g]\nprotocol = generator\ntags = 0\n"), SL_ERR_CONFIG);
    sl_txconf_free(&c);
    sl_diag_free(&d);
    CU_ASSERT_EQUAL(parse(&c, &d, "[device g]\nprotocol = generator\ntags = 10\n"
                                  "address = 127.0.0.1\n"), SL_ERR_CONFIG);
    CU_ASSERT(d.count >= 1 && strstr(d.msg[0], "does not apply to protocol generator") != NULL);
    sl_txconf_free(&c);
    sl_diag_free(&d);
    CU_ASSERT_EQUAL(parse(&c, &d, "[device m]\nprotocol = modbus-tcp\naddress = 127.0.0.1\n"
                                  "tags = x.csv\nrate = 5\n"), SL_ERR_CONFIG);
    sl_txconf_free(&c);
    sl_diag_free(&d);
}

SL_TEST(generator, feeds_snapshot_deltas)
{
    struct sl_tagmap m;
    CU_ASSERT_EQUAL_FATAL(sl_generator_tagmap(&m, "gen", 50), SL_OK);
    struct sl_snapshot_tag tags[50];
    memset(tags, 0, sizeof tags);
    for (uint32_t i = 0; i < 50; i++) {
        struct sl_schema_tag *t = &tags[i].schema;
        t->tag_id = i;
        t->type = m.tags[i].type;
        t->reg = m.tags[i].reg;
        t->word_order = m.tags[i].word_order;
        t->address = m.tags[i].address;
        t->scale = 1;
        snprintf(t->name, sizeof t->name, "%s", m.tags[i].name);
        snprintf(t->path, sizeof t->path, "%s", m.tags[i].path);
    }
    struct sl_snapshot_config sc = { .tags = tags, .ntags = 50, .schema_id = 1, .keyframe_ms = 1000000,
                                     .max_delay_ms = 0, .payload_cap = 8000 };
    struct sl_snapshot *s;
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_create(&s, &sc, T0), SL_OK);
    uint8_t buf[8000];
    size_t used;
    /* Drain the first schema and keyframe. */
    for (int i = 0; i < 10 && sl_snapshot_fill(s, buf, sizeof buf, T0, &used) == SL_OK; i++)
        ;
    struct sl_generator g;
    sl_generator_init(&g, 0, 50, 20000, T0);   /* 20 per ms */
    uint64_t now = T0 + 1000, wall = 1700000000000000ull;
    uint64_t n = sl_generator_due(&g, now);
    CU_ASSERT_EQUAL(n, 20);
    for (uint64_t j = 0; j < n; j++)
        CU_ASSERT_EQUAL(sl_snapshot_update(s, sl_generator_next(&g), wall, SL_Q_GOOD, wall, now), SL_OK);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.changes, 20);
    CU_ASSERT_EQUAL(sl_snapshot_fill(s, buf, sizeof buf, now, &used), SL_OK);
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.deltas_sent, 20);
    struct sl_value v;
    CU_ASSERT_EQUAL(sl_snapshot_value(s, 19, &v), SL_OK);
    CU_ASSERT_EQUAL(v.raw, wall);
    CU_ASSERT_EQUAL(v.source_time_us, wall);
    sl_snapshot_destroy(s);
    sl_tagmap_free(&m);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SL_TEST_SANITIZED 1
#endif
#endif

/* TX memory per tag: a 100,000-tag generator configuration and the
 * daemon's snapshot engine for it hold at most 160 bytes a tag (the tag
 * map's 64-byte rows and names, the snapshot's 56-byte state; the schema is
 * read on demand). Fixed-size strings in each row and a schema copy in the
 * snapshot cost 570. Measured with mallinfo2, so not under a sanitizer
 * (its allocator does not report there). */
#include <malloc.h>
SL_TEST(generator, memory_per_tag)
{
#ifdef SL_TEST_SANITIZED
    CU_PASS("allocator statistics not available under a sanitizer");
#else
    struct mallinfo2 m0 = mallinfo2();
    struct sl_txconf c;
    struct sl_diag d;
    CU_ASSERT_EQUAL_FATAL(parse(&c, &d, "[device g]\nprotocol = generator\ntags = 100000\n"), SL_OK);
    struct sl_snapshot *s = NULL;
    uint32_t sid;
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_from_conf(&s, &sid, &c, 64u * 1400u, T0), SL_OK);
    struct mallinfo2 m1 = mallinfo2();
    size_t used = (m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd);
    CU_ASSERT(used / 100000u <= 160u);
    if (used / 100000u > 160u)
        fprintf(stderr, "TX memory: %zu bytes a tag\n", used / 100000u);
    sl_snapshot_destroy(s);
    sl_txconf_free(&c);
    sl_diag_free(&d);
#endif
}

/* sl_generator_apply is n sl_generator_next + sl_snapshot_update calls:
 * the same tags in the same order (runs split at the wrap), all counted
 * produced; a batch of more than N updates applies only the last N (the
 * rest rewrote the same value) and leaves next where n calls would. */
SL_TEST(generator, apply_matches_next_and_update)
{
    struct sl_snapshot_tag tags[13];
    memset(tags, 0, sizeof tags);
    for (uint32_t i = 0; i < 13; i++) {
        tags[i].schema.tag_id = i;
        tags[i].schema.type = SL_TYPE_INT64;
        tags[i].schema.reg = SL_REG_HOLDING;
        tags[i].schema.word_order = SL_WORD_ABCD;
        tags[i].schema.mirror_unit = 1;
        tags[i].schema.address = (uint16_t)(4 * i);
        tags[i].schema.scale = 1;
        snprintf(tags[i].schema.name, sizeof tags[i].schema.name, "t%u", i);
    }
    struct sl_snapshot_config cfg = { .tags = tags, .ntags = 13, .keyframe_ms = 1000, .max_delay_ms = 2,
                                      .payload_cap = 4000 };
    struct sl_snapshot *s = NULL;
    CU_ASSERT_FATAL(sl_snapshot_create(&s, &cfg, T0) == SL_OK);
    struct sl_generator g, ref;
    sl_generator_init(&g, 10, 3, 1000, T0);   /* tags 10, 11, 12 */
    ref = g;
    CU_ASSERT_EQUAL(sl_generator_apply(&g, s, 2, 111, T0), 0);   /* 10, 11 */
    CU_ASSERT_EQUAL(sl_generator_apply(&g, s, 2, 222, T0), 0);   /* 12, wrap, 10 */
    for (int i = 0; i < 4; i++)
        sl_generator_next(&ref);
    CU_ASSERT_EQUAL(g.next, ref.next);
    CU_ASSERT_EQUAL(g.produced, 4);
    struct sl_value v;
    uint64_t want[] = { 222, 111, 222 };
    for (uint32_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(sl_snapshot_value(s, 10 + i, &v), SL_OK);
        CU_ASSERT_EQUAL(v.raw, want[i]);
        CU_ASSERT_EQUAL(v.source_time_us, want[i]);
        CU_ASSERT_EQUAL(v.quality, SL_Q_GOOD);
    }
    CU_ASSERT_EQUAL(sl_snapshot_value(s, 9, &v), SL_OK);
    CU_ASSERT_NOT_EQUAL(v.raw, 222);   /* outside the device: untouched */
    /* 8 updates over 3 tags: all produced, every tag 333, next as 8 calls. */
    CU_ASSERT_EQUAL(sl_generator_apply(&g, s, 8, 333, T0), 0);
    for (int i = 0; i < 8; i++)
        sl_generator_next(&ref);
    CU_ASSERT_EQUAL(g.next, ref.next);
    CU_ASSERT_EQUAL(g.produced, 12);
    for (uint32_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(sl_snapshot_value(s, 10 + i, &v), SL_OK);
        CU_ASSERT_EQUAL(v.raw, 333);
    }
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.changes, 4 + 3);
    /* Tags that are not the snapshot's: refused, counted. */
    struct sl_generator far;
    sl_generator_init(&far, 12, 3, 1000, T0);   /* 12, 13, 14: two past the table */
    CU_ASSERT_EQUAL(sl_generator_apply(&far, s, 3, 444, T0), 2);
    sl_snapshot_destroy(s);
}
