/* The snapshot engine (tx/sl_snapshot.c) driven by a fake clock: every
 * payload it fills must pass sl_msg_reader_init, and what it schedules must
 * follow docs/tx.md (deltas within max_delay, deadband on deltas only,
 * keyframes spread with every tag exactly once, schema at start and every
 * <= 10 keyframes, coalescing under overload, events first, qualities). */
#define _GNU_SOURCE   /* nftw */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <unistd.h>

#include "sl_journal.h"
#include "sl_msg.h"
#include "sl_snapshot.h"
#include "sl_test.h"

#define MS 1000ull
#define T0 (5000 * MS)             /* monotonic start, arbitrary */
#define WALL 1700000000000000ull   /* source times */
#define CAP 4000u                  /* payload bytes per block */
#define F32_10_0 0x41200000u
#define F32_10_3 0x4124CCCDu
#define F32_10_6 0x4129999Au

/* What one payload held. */
struct seen {
    unsigned msgs, events, deltas, keyframes, schemas;
    unsigned delta_seqs;           /* DELTA_SEQ messages (counted in deltas too) */
    uint64_t journal_id;
    uint8_t first_type;
    uint8_t types[64];
    struct sl_value delta[256];
    unsigned ndelta;
    uint32_t kf_id[16];
    uint16_t kf_chunk[16], kf_chunks[16];
    uint32_t kf_tags[16][64];
    unsigned kf_count[16];
    uint16_t sc_chunk[16];
    uint32_t sc_id[16];
    uint32_t sc_first_tag[16];
    unsigned sc_count[16];
    struct sl_msg_event event[8];
    struct sl_value kf_val[16][64];
};

static struct sl_snapshot_tag tags[200];

static void make_tags(uint32_t n, uint8_t type, double deadband)
{
    memset(tags, 0, sizeof tags);
    for (uint32_t i = 0; i < n; i++) {
        struct sl_schema_tag *t = &tags[i].schema;
        t->tag_id = i;
        t->type = type;
        t->reg = type == SL_TYPE_BOOL ? SL_REG_COIL : SL_REG_HOLDING;
        t->word_order = SL_WORD_ABCD;
        t->mirror_unit = 1;
        t->address = (uint16_t)(i * 2);
        t->scale = 1;
        t->offset = 0;
        snprintf(t->name, sizeof t->name, "tag%u", i);
        snprintf(t->path, sizeof t->path, "ent/site/area/line");
        tags[i].deadband = deadband;
    }
}

static struct sl_snapshot *make(uint32_t n, uint32_t keyframe_ms, uint32_t max_delay_ms,
                                uint32_t chunk_values, uint32_t schema_every)
{
    struct sl_snapshot_config cfg = {
        .tags = tags, .ntags = n, .schema_id = 0xA1B2C3D4u, .keyframe_ms = keyframe_ms,
        .max_delay_ms = max_delay_ms, .schema_every = schema_every, .payload_cap = CAP,
        .chunk_values = chunk_values,
    };
    struct sl_snapshot *s = NULL;
    CU_ASSERT_FATAL(sl_snapshot_create(&s, &cfg, T0) == SL_OK);
    return s;
}

/* Decodes a payload completely; fails the test if RX would refuse it. */
static void decode(struct seen *o, const uint8_t *p, size_t len)
{
    memset(o, 0, sizeof *o);
    struct sl_msg_reader r;
    CU_ASSERT_FATAL(sl_msg_reader_init(&r, p, len) == SL_OK);
    struct sl_msg m;
    while (sl_msg_next(&r, &m)) {
        if (o->msgs == 0)
            o->first_type = m.type;
        if (o->msgs < 64)
            o->types[o->msgs] = m.type;
        o->msgs++;
        struct sl_value v;
        switch (m.type) {
        case SL_MSG_EVENT:
            if (o->events < 8)
                o->event[o->events] = m.u.event;
            o->events++;
            break;
        case SL_MSG_DELTA_SEQ:
            o->delta_seqs++;
            o->journal_id = m.u.delta.journal_id;
            /* fall through */
        case SL_MSG_DELTA:
            o->deltas++;
            while (sl_msg_value_next(&m.u.delta.values, &v))
                if (o->ndelta < 256)
                    o->delta[o->ndelta++] = v;
            break;
        case SL_MSG_KEYFRAME: {
            unsigned k = o->keyframes++;
            CU_ASSERT_FATAL(k < 16);
            o->kf_id[k] = m.u.keyframe.keyframe_id;
            o->kf_chunk[k] = m.u.keyframe.chunk;
            o->kf_chunks[k] = m.u.keyframe.chunks;
            while (sl_msg_value_next(&m.u.keyframe.values, &v)) {
                CU_ASSERT_FATAL(o->kf_count[k] < 64);
                o->kf_val[k][o->kf_count[k]] = v;
                o->kf_tags[k][o->kf_count[k]++] = v.tag_id;
            }
            break;
        }
        case SL_MSG_SCHEMA: {
            unsigned k = o->schemas++;
            CU_ASSERT_FATAL(k < 16);
            o->sc_chunk[k] = m.u.schema.chunk;
            o->sc_id[k] = m.u.schema.schema_id;
            struct sl_schema_tag t;
            bool first = true;
            while (sl_msg_tag_next(&m.u.schema.tags, &t)) {
                if (first)
                    o->sc_first_tag[k] = t.tag_id;
                first = false;
                o->sc_count[k]++;
            }
            break;
        }
        default:
            CU_FAIL("unexpected message type");
        }
    }
}

/* Fills one block at now; SL_ERR_AGAIN leaves *o empty. */
static sl_err fill(struct sl_snapshot *s, uint64_t now, struct seen *o)
{
    static uint8_t buf[CAP];
    size_t used = 12345;
    sl_err e = sl_snapshot_fill(s, buf, sizeof buf, now, &used);
    memset(o, 0, sizeof *o);
    if (e == SL_OK) {
        CU_ASSERT(used >= 1 && used <= CAP);
        decode(o, buf, used);
    } else {
        CU_ASSERT_EQUAL(used, 0);
    }
    return e;
}

/* Drains everything due at now (bounded). */
static unsigned drain(struct sl_snapshot *s, uint64_t now)
{
    struct seen o;
    unsigned n = 0;
    while (fill(s, now, &o) == SL_OK)
        CU_ASSERT_FATAL(++n < 1000);
    return n;
}

SL_TEST(snapshot, start_sends_schema_before_values_and_decodes)
{
    make_tags(4, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(4, 1000, 2, 0, 0);
    CU_ASSERT(sl_snapshot_next_due_us(s) <= T0);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0, &o), SL_OK);
    CU_ASSERT_EQUAL(o.first_type, SL_MSG_SCHEMA);
    CU_ASSERT_EQUAL(o.schemas, 1);
    CU_ASSERT_EQUAL(o.sc_id[0], 0xA1B2C3D4u);
    CU_ASSERT_EQUAL(o.sc_count[0], 4);
    CU_ASSERT_EQUAL(o.keyframes, 1);
    CU_ASSERT_EQUAL(o.kf_count[0], 4);
    /* Before any poll the truth is "waiting for initial data". */
    CU_ASSERT_EQUAL(o.kf_val[0][0].quality, SL_Q_BAD_WAITING_INITIAL);
    CU_ASSERT_EQUAL(fill(s, T0, &o), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(sl_snapshot_next_due_us(s), T0 + 1000 * MS);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, delta_flushed_within_max_delay)
{
    make_tags(4, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(4, 1000, 5, 0, 0);
    drain(s, T0);
    for (uint32_t i = 0; i < 4; i++)
        CU_ASSERT(sl_snapshot_update(s, i, 7, SL_Q_GOOD, WALL, T0 + 10 * MS) == SL_OK);
    drain(s, T0 + 10 * MS);   /* first Good values: quality change, sent at once */

    CU_ASSERT(sl_snapshot_update(s, 2, 8, SL_Q_GOOD, WALL + 100 * MS, T0 + 100 * MS) == SL_OK);
    CU_ASSERT_EQUAL(sl_snapshot_next_due_us(s), T0 + 105 * MS);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0 + 104 * MS, &o), SL_ERR_AGAIN);
    /* A second change joins the same block and does not extend the wait. */
    CU_ASSERT(sl_snapshot_update(s, 3, 9, SL_Q_GOOD, WALL + 103 * MS, T0 + 103 * MS) == SL_OK);
    CU_ASSERT_EQUAL(sl_snapshot_next_due_us(s), T0 + 105 * MS);
    CU_ASSERT_EQUAL(fill(s, T0 + 105 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.deltas, 1);
    CU_ASSERT_EQUAL(o.ndelta, 2);
    CU_ASSERT_EQUAL(o.delta[0].tag_id, 2);
    CU_ASSERT_EQUAL(o.delta[0].raw, 8);
    CU_ASSERT_EQUAL(o.delta[0].source_time_us, WALL + 100 * MS);
    CU_ASSERT_EQUAL(o.delta[1].tag_id, 3);
    CU_ASSERT_EQUAL(o.keyframes, 0);
    /* An unchanged value is not a delta. */
    CU_ASSERT(sl_snapshot_update(s, 2, 8, SL_Q_GOOD, WALL + 200 * MS, T0 + 200 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 300 * MS, &o), SL_ERR_AGAIN);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.deltas_sent, 6);
    CU_ASSERT_EQUAL(st.pending, 0);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, deadband_applies_to_deltas_only)
{
    make_tags(1, SL_TYPE_FLOAT32, 0.5);
    struct sl_snapshot *s = make(1, 1000, 0, 0, 0);
    drain(s, T0);
    struct seen o;
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_0, SL_Q_GOOD, WALL, T0 + MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.ndelta, 1);
    /* 10.3: within 0.5 of the 10.0 sent: no delta. */
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_3, SL_Q_GOOD, WALL + 1, T0 + 2 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 10 * MS, &o), SL_ERR_AGAIN);
    /* 10.6 is compared with 10.0 (last sent), not 10.3: slow drift crosses. */
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_6, SL_Q_GOOD, WALL + 2, T0 + 20 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 20 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.delta[0].raw, F32_10_6);
    /* Back within the band: the keyframe still carries the exact value. */
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_3, SL_Q_GOOD, WALL + 3, T0 + 30 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 30 * MS, &o), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(fill(s, T0 + 1000 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.keyframes, 1);
    CU_ASSERT_EQUAL(o.ndelta, 0);
    CU_ASSERT_EQUAL(o.kf_val[0][0].raw, F32_10_3);
    CU_ASSERT_EQUAL(o.kf_val[0][0].source_time_us, WALL + 3);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, keyframe_spread_over_interval_every_tag_once)
{
    enum { N = 100, PER = 10, CHUNKS = 10 };
    make_tags(N, SL_TYPE_INT32, 0);
    struct sl_snapshot *s = make(N, 1000, 2, PER, 0);
    unsigned count[8][N];
    uint64_t chunk_at[8][CHUNKS];
    memset(count, 0, sizeof count);
    memset(chunk_at, 0, sizeof chunk_at);
    uint32_t first_id = 0;
    unsigned fills = 0;
    /* Tick every 5 ms for 5 s, as the daemon would when nothing else is due. */
    for (uint64_t t = T0; t < T0 + 5000 * MS; t += 5 * MS) {
        struct seen o;
        while (fill(s, t, &o) == SL_OK) {
            CU_ASSERT_FATAL(++fills < 10000);
            CU_ASSERT(o.keyframes <= 1);   /* one slice per tick here, never a burst */
            for (unsigned k = 0; k < o.keyframes; k++) {
                if (!first_id)
                    first_id = o.kf_id[k];
                unsigned kf = o.kf_id[k] - first_id;
                CU_ASSERT_FATAL(kf < 8);
                CU_ASSERT_EQUAL(o.kf_chunks[k], CHUNKS);
                CU_ASSERT_FATAL(o.kf_chunk[k] < CHUNKS);
                chunk_at[kf][o.kf_chunk[k]] = t;
                for (unsigned i = 0; i < o.kf_count[k]; i++)
                    count[kf][o.kf_tags[k][i]]++;
            }
        }
    }
    for (unsigned kf = 0; kf < 5; kf++) {
        for (unsigned i = 0; i < N; i++)
            CU_ASSERT_EQUAL(count[kf][i], 1);
        /* Chunk c goes out at start + c * 100 ms (within one tick). */
        for (unsigned c = 0; c < CHUNKS; c++) {
            uint64_t want = T0 + kf * 1000 * MS + c * 100 * MS;
            CU_ASSERT(chunk_at[kf][c] >= want && chunk_at[kf][c] < want + 5 * MS);
        }
    }
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, automatic_chunks_fit_and_cover)
{
    make_tags(200, SL_TYPE_FLOAT64, 0);
    struct sl_snapshot *s = make(200, 1000, 2, 0, 0);
    struct seen o;
    unsigned total = 0;
    for (uint64_t t = T0; t < T0 + 1000 * MS; t += MS)
        while (fill(s, t, &o) == SL_OK)
            for (unsigned k = 0; k < o.keyframes; k++)
                total += o.kf_count[k];
    CU_ASSERT_EQUAL(total, 200);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.keyframes, 1);
    CU_ASSERT(st.keyframe_chunks >= 2);   /* 200 values do not fit one 4000-byte payload */
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, schema_at_start_and_at_most_every_ten_keyframes)
{
    make_tags(30, SL_TYPE_UINT16, 0);
    for (uint32_t every = 0; every <= 3; every += 3) {
        struct sl_snapshot *s = make(30, 100, 2, 0, every);
        uint64_t first = 0, last = 0;
        unsigned schemas = 0, max_gap_kf = 0, kf_since = 0;
        for (uint64_t t = T0; t < T0 + 5000 * MS; t += MS) {
            struct seen o;
            while (fill(s, t, &o) == SL_OK) {
                if (o.keyframes)
                    kf_since += o.keyframes;
                if (o.schemas) {
                    if (!schemas)
                        first = t;
                    if (schemas && kf_since > max_gap_kf)
                        max_gap_kf = kf_since;
                    kf_since = 0;
                    last = t;
                    schemas += o.schemas;
                }
            }
        }
        CU_ASSERT_EQUAL(first, T0);
        CU_ASSERT(max_gap_kf >= 1 && max_gap_kf <= (every ? every : 10));
        CU_ASSERT(schemas >= 50 / (every ? every : 10) - 1);
        CU_ASSERT(last >= T0 + 4000 * MS);
        sl_snapshot_destroy(s);
    }
}

SL_TEST(snapshot, overload_coalesces_per_tag_and_counts)
{
    make_tags(8, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(8, 1000, 1000, 0, 0);
    drain(s, T0);
    /* 8 tags x 100 changes while nothing is sent: the queue holds at most
     * one entry per tag, the rest are counted. */
    for (uint32_t r = 1; r <= 100; r++)
        for (uint32_t i = 0; i < 8; i++)
            CU_ASSERT(sl_snapshot_update(s, i, r, SL_Q_BAD_WAITING_INITIAL, WALL + r, T0 + r) == SL_OK);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.pending, 8);
    CU_ASSERT_EQUAL(st.changes, 800);
    CU_ASSERT_EQUAL(st.coalesced, 792);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0 + 1000 * MS + 1, &o), SL_OK);
    /* Oldest first, each tag once, with its newest value. */
    CU_ASSERT_EQUAL(o.ndelta, 8);
    for (unsigned i = 0; i < o.ndelta && i < 8; i++) {
        CU_ASSERT_EQUAL(o.delta[i].tag_id, i);
        CU_ASSERT_EQUAL(o.delta[i].raw, 100);
    }
    /* Unknown tag and impossible raw are refused without side effects. */
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 8, 1, SL_Q_GOOD, WALL, T0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 0x10000, SL_Q_GOOD, WALL, T0), SL_ERR_RANGE);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, keyframe_satisfies_pending_deltas)
{
    make_tags(4, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(4, 1000, 900, 0, 0);
    drain(s, T0);
    CU_ASSERT(sl_snapshot_update(s, 1, 5, SL_Q_BAD_WAITING_INITIAL, WALL, T0 + 500 * MS) == SL_OK);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0 + 1000 * MS, &o), SL_OK);
    /* The block goes out for the keyframe; the pending delta rides along. */
    CU_ASSERT_EQUAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.keyframes, 1);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, overdue_keyframe_not_starved_by_deltas)
{
    make_tags(200, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(200, 1000, 0, 50, 0);
    drain(s, T0);
    /* Every tag changes every "tick" but one block (159 deltas) goes out per tick:
     * keyframes must still complete, one interval late at worst. */
    uint64_t t = T0;
    for (unsigned r = 1; r <= 400; r++) {
        t += 10 * MS;
        for (uint32_t i = 0; i < 200; i++)
            CU_ASSERT(sl_snapshot_update(s, i, r, r % 2 ? SL_Q_GOOD : SL_Q_BAD_COMM_ERROR, WALL + r, t) == SL_OK);
        struct seen o;
        CU_ASSERT(fill(s, t, &o) == SL_OK);
    }
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT(st.keyframes >= 2);
    CU_ASSERT(st.coalesced > 0);
    CU_ASSERT(st.late > 0);
    CU_ASSERT(st.pending <= 200);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, events_first_and_ring_drops_oldest)
{
    make_tags(2, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(2, 1000, 2, 0, 0);
    CU_ASSERT(sl_snapshot_event(s, SL_EVENT_TX_START, 0, WALL, "started", 7) == SL_OK);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0, &o), SL_OK);
    CU_ASSERT_EQUAL(o.first_type, SL_MSG_EVENT);
    CU_ASSERT_EQUAL(o.types[1], SL_MSG_SCHEMA);
    CU_ASSERT_EQUAL(o.event[0].kind, SL_EVENT_TX_START);
    CU_ASSERT_STRING_EQUAL(o.event[0].text, "started");
    drain(s, T0);
    /* An event is due at once even when nothing else is. */
    CU_ASSERT(sl_snapshot_event(s, SL_EVENT_DEVICE_DOWN, 3, WALL + 1, "plc: down", 9) == SL_OK);
    CU_ASSERT(sl_snapshot_next_due_us(s) <= T0 + MS);
    CU_ASSERT_EQUAL(fill(s, T0 + MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.msgs, 1);
    CU_ASSERT_EQUAL(o.event[0].mirror_unit, 3);
    /* Bad text is refused at queue time, never stuck in the queue. */
    CU_ASSERT_EQUAL(sl_snapshot_event(s, SL_EVENT_CONFIG, 0, WALL, "a\nb", 3), SL_ERR_RANGE);
    char big[SL_EVENT_TEXT_MAX + 1];
    memset(big, 'x', sizeof big);
    CU_ASSERT_EQUAL(sl_snapshot_event(s, SL_EVENT_CONFIG, 0, WALL, big, sizeof big), SL_ERR_RANGE);
    for (unsigned i = 0; i < SL_SNAPSHOT_EVENTS + 6; i++) {
        char txt[16];
        int n = snprintf(txt, sizeof txt, "e%u", i);
        CU_ASSERT(sl_snapshot_event(s, SL_EVENT_CONFIG, 0, WALL + i, txt, (size_t)n) == SL_OK);
    }
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.events_dropped, 6);
    CU_ASSERT_EQUAL(fill(s, T0 + 2 * MS, &o), SL_OK);
    CU_ASSERT_STRING_EQUAL(o.event[0].text, "e6");
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, device_down_bad_comm_then_recovery_good_at_once)
{
    make_tags(3, SL_TYPE_INT16, 100.0);   /* a wide deadband must not hold back qualities */
    struct sl_snapshot *s = make(3, 1000, 500, 0, 0);
    drain(s, T0);
    for (uint32_t i = 0; i < 3; i++)
        CU_ASSERT(sl_snapshot_update(s, i, 0xFFFE, SL_Q_GOOD, WALL, T0 + MS) == SL_OK);
    drain(s, T0 + MS);
    /* Device down: the poller keeps the raw and stamps the failure time. */
    CU_ASSERT(sl_snapshot_event(s, SL_EVENT_DEVICE_DOWN, 1, WALL + 50, "plc1: connection refused", 24) == SL_OK);
    for (uint32_t i = 0; i < 3; i++)
        CU_ASSERT(sl_snapshot_update(s, i, 0xFFFE, SL_Q_BAD_COMM_ERROR, WALL + 50, T0 + 50 * MS) == SL_OK);
    CU_ASSERT(sl_snapshot_next_due_us(s) <= T0 + 50 * MS);   /* not after max_delay */
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0 + 50 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.first_type, SL_MSG_EVENT);
    CU_ASSERT_EQUAL(o.event[0].kind, SL_EVENT_DEVICE_DOWN);
    CU_ASSERT_EQUAL(o.ndelta, 3);
    for (unsigned i = 0; i < o.ndelta && i < 3; i++) {
        CU_ASSERT_EQUAL(o.delta[i].quality, SL_Q_BAD_COMM_ERROR);
        CU_ASSERT_EQUAL(o.delta[i].source_time_us, WALL + 50);
        CU_ASSERT_EQUAL(o.delta[i].raw, 0xFFFE);
    }
    /* Recovery with the same raw: Good at once. */
    CU_ASSERT(sl_snapshot_update(s, 0, 0xFFFE, SL_Q_GOOD, WALL + 90, T0 + 90 * MS) == SL_OK);
    CU_ASSERT(sl_snapshot_next_due_us(s) <= T0 + 90 * MS);
    CU_ASSERT_EQUAL(fill(s, T0 + 90 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.delta[0].quality, SL_Q_GOOD);
    CU_ASSERT_EQUAL(o.delta[0].source_time_us, WALL + 90);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, set_schema_resends_and_checks_shape)
{
    make_tags(5, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(5, 1000, 2, 0, 0);
    drain(s, T0);
    snprintf(tags[2].schema.units, sizeof tags[2].schema.units, "bar");
    CU_ASSERT_EQUAL(sl_snapshot_set_schema(s, tags, 4, 7, T0 + MS), SL_ERR_MISMATCH);
    tags[1].schema.type = SL_TYPE_INT16;
    CU_ASSERT_EQUAL(sl_snapshot_set_schema(s, tags, 5, 7, T0 + MS), SL_ERR_MISMATCH);
    tags[1].schema.type = SL_TYPE_UINT16;
    tags[1].schema.name[0] = '\0';
    CU_ASSERT_EQUAL(sl_snapshot_set_schema(s, tags, 5, 7, T0 + MS), SL_ERR_RANGE);
    tags[1].schema.name[0] = 'x';
    CU_ASSERT_EQUAL(sl_snapshot_set_schema(s, tags, 5, 7, T0 + MS), SL_OK);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0 + MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.first_type, SL_MSG_SCHEMA);
    CU_ASSERT_EQUAL(o.sc_id[0], 7);
    CU_ASSERT_EQUAL(o.sc_count[0], 5);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, bad_config_refused)
{
    make_tags(3, SL_TYPE_UINT16, 0);
    struct sl_snapshot_config cfg = {
        .tags = tags, .ntags = 3, .keyframe_ms = 1000, .payload_cap = CAP,
    };
    struct sl_snapshot *s = NULL;
    cfg.payload_cap = 100;   /* cannot hold the largest schema record */
    CU_ASSERT_EQUAL(sl_snapshot_create(&s, &cfg, T0), SL_ERR_RANGE);
    cfg.payload_cap = CAP;
    cfg.schema_every = 11;
    CU_ASSERT_EQUAL(sl_snapshot_create(&s, &cfg, T0), SL_ERR_RANGE);
    cfg.schema_every = 0;
    tags[2].schema.tag_id = 7;
    CU_ASSERT_EQUAL(sl_snapshot_create(&s, &cfg, T0), SL_ERR_RANGE);
    CU_ASSERT_PTR_NULL(s);
    /* No tags at all: one empty schema chunk and one empty keyframe chunk. */
    cfg.ntags = 0;
    CU_ASSERT_EQUAL(sl_snapshot_create(&s, &cfg, T0), SL_OK);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0, &o), SL_OK);
    CU_ASSERT_EQUAL(o.schemas, 1);
    CU_ASSERT_EQUAL(o.keyframes, 1);
    sl_snapshot_destroy(s);
}

SL_TEST(snapshot, multi_block_schema_goes_before_any_value)
{
    make_tags(200, SL_TYPE_UINT16, 0);
    struct sl_snapshot *s = make(200, 1000, 2, 0, 0);
    for (uint32_t i = 0; i < 200; i++)
        CU_ASSERT(sl_snapshot_update(s, i, i, SL_Q_GOOD, WALL, T0) == SL_OK);
    struct seen o;
    unsigned schema_blocks = 0, tags_seen = 0;
    bool values_seen = false;
    for (unsigned n = 0; n < 50 && fill(s, T0, &o) == SL_OK; n++) {
        for (unsigned k = 0; k < o.schemas; k++)
            tags_seen += o.sc_count[k];
        if (o.ndelta || o.keyframes)
            values_seen = true;
        else
            schema_blocks++;
        if (values_seen && tags_seen < 200)
            CU_FAIL("values before the whole schema");
    }
    CU_ASSERT_EQUAL(tags_seen, 200);
    CU_ASSERT(schema_blocks >= 2);   /* 200 records do not fit one 4000-byte payload */
    CU_ASSERT(values_seen);
    sl_snapshot_destroy(s);
}

/* ---- the schema read on demand ------------------------------------------- */

struct reader {
    const struct sl_snapshot_tag *tags;
    unsigned calls, released;
};

static void reader_tag(const void *ctx, uint32_t id, struct sl_snapshot_tag *out)
{
    struct reader *r = (struct reader *)(uintptr_t)ctx;
    r->calls++;
    *out = r->tags[id];
}

static void reader_release(void *ctx)
{
    ((struct reader *)ctx)->released++;
}

/* A schema read through tag_fn (what the daemon does: the snapshot keeps no
 * copy of names, paths and units) writes exactly the bytes a copied array
 * does, block by block, records of mixed lengths included; a schema handed
 * over with a release function is released once, when replaced. */
SL_TEST(snapshot, schema_on_demand_writes_the_same_bytes)
{
    make_tags(200, SL_TYPE_UINT16, 0);
    for (uint32_t i = 0; i < 200; i += 3)   /* long records: schema chunks end early */
        memset(tags[i].schema.path, 'p', (size_t)(i % 120) + 1);
    for (uint32_t i = 0; i < 200; i += 3)
        tags[i].schema.path[(i % 120) + 1] = '\0';
    tags[5].deadband = 2.0;
    struct reader rd = { .tags = tags };
    struct sl_snapshot_config a = {
        .tags = tags, .ntags = 200, .schema_id = 9, .keyframe_ms = 100, .max_delay_ms = 1,
        .payload_cap = CAP,
    };
    struct sl_snapshot_config b = a;
    b.tags = NULL;
    b.tag_fn = reader_tag;
    b.tag_ctx = &rd;
    struct sl_snapshot *sa = NULL, *sb = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_create(&sa, &a, T0), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_create(&sb, &b, T0), SL_OK);
    CU_ASSERT(rd.calls >= 200);
    static uint8_t pa[CAP], pb[CAP];
    unsigned blocks = 0;
    for (uint64_t t = T0; t < T0 + 350 * MS; t += MS) {
        /* tag 5 has a deadband of 2: +1 stays within it on both */
        CU_ASSERT_EQUAL(sl_snapshot_update(sa, 5, (t / MS) % 7, SL_Q_GOOD, t, t), SL_OK);
        CU_ASSERT_EQUAL(sl_snapshot_update(sb, 5, (t / MS) % 7, SL_Q_GOOD, t, t), SL_OK);
        for (int k = 0; k < 8; k++) {
            size_t ua = 0, ub = 0;
            sl_err ea = sl_snapshot_fill(sa, pa, sizeof pa, t, &ua);
            sl_err eb = sl_snapshot_fill(sb, pb, sizeof pb, t, &ub);
            CU_ASSERT_EQUAL_FATAL(ea, eb);
            CU_ASSERT_EQUAL_FATAL(ua, ub);
            if (ea != SL_OK)
                break;
            CU_ASSERT_EQUAL_FATAL(memcmp(pa, pb, ua), 0);
            blocks++;
        }
    }
    struct sl_snapshot_stats st;
    sl_snapshot_stats(sb, &st);
    CU_ASSERT(st.schemas >= 1 && st.keyframes >= 3 && blocks > 10);
    CU_ASSERT(st.changes < st.updates);   /* the deadband was applied */

    /* Handed over with a release: released when replaced, never twice. */
    struct reader r2 = { .tags = tags };
    CU_ASSERT_EQUAL(sl_snapshot_set_schema_fn(sb, reader_tag, &r2, reader_release, 200, 10, T0), SL_OK);
    struct reader r3 = { .tags = tags };
    CU_ASSERT_EQUAL(sl_snapshot_set_schema_fn(sb, reader_tag, &r3, reader_release, 199, 11, T0),
                    SL_ERR_MISMATCH);   /* refused: the caller keeps r3 */
    CU_ASSERT_EQUAL(r3.released, 0);
    CU_ASSERT_EQUAL(sl_snapshot_set_schema(sb, tags, 200, 12, T0), SL_OK);
    CU_ASSERT_EQUAL(r2.released, 1);
    CU_ASSERT_EQUAL(rd.released, 0);   /* borrowed at create: never released */
    sl_snapshot_destroy(sa);
    sl_snapshot_destroy(sb);
    CU_ASSERT_EQUAL(r2.released, 1);
}

/* ---- with a journal ------------------------------------------------------ */

#define F32_11_0 0x41300000u

static char jdir[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(path);
}

/* A journal in a new directory (memory-backed when it can be). */
static struct sl_journal *journal_new(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(jdir, sizeof jdir, "%s/sl-snapj-XXXXXX", base);
    CU_ASSERT_FATAL(mkdtemp(jdir) != NULL);
    struct sl_journal_config c = { .dir = jdir, .max_bytes = 1u << 20, .no_sync = true,
                                   .buffer_bytes = 1u << 16 };
    struct sl_journal *j = NULL;
    CU_ASSERT_FATAL(sl_journal_open(&j, &c) == SL_OK);
    return j;
}

static void journal_gone(struct sl_journal *j)
{
    sl_journal_close(j);
    nftw(jdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A snapshot of n tags (keyframe 1 s) appending to a new journal *j,
 * its start drained. */
static struct sl_snapshot *journaled(uint32_t n, uint8_t type, double deadband, uint32_t max_delay_ms,
                                     struct sl_journal **j)
{
    make_tags(n, type, deadband);
    struct sl_snapshot *s = make(n, 1000, max_delay_ms, 0, 0);
    *j = journal_new();
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_set_journal(s, *j), SL_OK);
    drain(s, T0);
    return s;
}

/* Every journaled change, in seq order, into out (cap). */
static size_t journal_read(struct sl_journal *j, struct sl_journal_rec *out, size_t cap)
{
    CU_ASSERT_FATAL(sl_journal_flush(j) == SL_OK);
    struct sl_journal_iter *it = NULL;
    CU_ASSERT_FATAL(sl_journal_iter_new(&it, j) == SL_OK);
    CU_ASSERT_FATAL(sl_journal_iter_from_seq(it, 1) == SL_OK);
    size_t n = 0;
    struct sl_journal_rec r;
    while (sl_journal_iter_next(it, &r, NULL) == SL_OK)
        if (r.kind == SL_JOURNAL_VALUE && n < cap)
            out[n++] = r;
    sl_journal_iter_free(it);
    return n;
}

/* Deltas go out as DELTA_SEQ under the journal's id, each value with the
 * seq its change got in the journal, increasing; the journal holds them
 * with their source times; keyframes stay plain. */
SL_TEST(snapshot, journal_delta_seq_with_increasing_seqs)
{
    struct sl_journal *j;
    struct sl_snapshot *s = journaled(4, SL_TYPE_UINT16, 0, 5, &j);
    CU_ASSERT_EQUAL(sl_snapshot_set_journal(s, j), SL_ERR_RANGE);   /* once */
    struct seen o;
    for (uint32_t i = 0; i < 4; i++)
        CU_ASSERT(sl_snapshot_update(s, i, 7 + i, SL_Q_GOOD, WALL + i, T0 + 10 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 10 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.delta_seqs, 1);
    CU_ASSERT_EQUAL(o.deltas, 1);
    CU_ASSERT_EQUAL(o.journal_id, sl_journal_id(j));
    CU_ASSERT_NOT_EQUAL(o.journal_id, 0);
    CU_ASSERT_EQUAL_FATAL(o.ndelta, 4);
    for (unsigned i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(o.delta[i].tag_id, i);
        CU_ASSERT_EQUAL(o.delta[i].raw, 7 + i);
        CU_ASSERT_EQUAL(o.delta[i].seq, 1 + i);
        CU_ASSERT_EQUAL(o.delta[i].source_time_us, WALL + i);
    }
    CU_ASSERT(sl_snapshot_update(s, 2, 100, SL_Q_GOOD, WALL + 50, T0 + 20 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 25 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL_FATAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.delta[0].seq, 5);
    CU_ASSERT_EQUAL(o.delta[0].raw, 100);
    /* An unchanged value is neither journaled nor sent. */
    CU_ASSERT(sl_snapshot_update(s, 2, 100, SL_Q_GOOD, WALL + 60, T0 + 30 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 40 * MS, &o), SL_ERR_AGAIN);
    /* The keyframe: current values, no seq, plain KEYFRAME. */
    CU_ASSERT_EQUAL(fill(s, T0 + 1000 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.keyframes, 1);
    CU_ASSERT_EQUAL(o.kf_val[0][2].raw, 100);
    CU_ASSERT_EQUAL(o.kf_val[0][2].source_time_us, WALL + 60);
    CU_ASSERT_EQUAL(o.kf_val[0][2].seq, 0);

    struct sl_journal_rec r[8];
    CU_ASSERT_EQUAL_FATAL(journal_read(j, r, 8), 5);
    for (unsigned i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(r[i].seq, 1 + i);
        CU_ASSERT_EQUAL(r[i].tag_id, i);
        CU_ASSERT_EQUAL(r[i].raw, 7 + i);
        CU_ASSERT_EQUAL(r[i].type, SL_TYPE_UINT16);
        CU_ASSERT_EQUAL(r[i].quality, SL_Q_GOOD);
        CU_ASSERT_EQUAL(r[i].source_time_us, WALL + i);
    }
    CU_ASSERT_EQUAL(r[4].seq, 5);
    CU_ASSERT_EQUAL(r[4].source_time_us, WALL + 50);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.journaled, 5);
    sl_snapshot_destroy(s);
    journal_gone(j);
}

/* Changes of a tag still waiting: every one journaled; the pending entry
 * holds the newest with its seq; the keyframe does not satisfy it (it
 * carries no seq). */
SL_TEST(snapshot, journal_coalesced_keeps_newest_seq)
{
    struct sl_journal *j;
    struct sl_snapshot *s = journaled(2, SL_TYPE_UINT16, 0, 900, &j);
    for (uint32_t r = 1; r <= 3; r++)
        CU_ASSERT(sl_snapshot_update(s, 1, r, SL_Q_BAD_WAITING_INITIAL, WALL + r, T0 + r * MS) == SL_OK);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.coalesced, 2);
    CU_ASSERT_EQUAL(st.journaled, 3);
    struct seen o;
    CU_ASSERT_EQUAL(fill(s, T0 + 1000 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.keyframes, 1);
    CU_ASSERT_EQUAL_FATAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.delta_seqs, 1);
    CU_ASSERT_EQUAL(o.delta[0].raw, 3);
    CU_ASSERT_EQUAL(o.delta[0].seq, 3);
    CU_ASSERT_EQUAL(o.delta[0].source_time_us, WALL + 3);
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.satisfied, 0);
    CU_ASSERT_EQUAL(st.pending, 0);
    struct sl_journal_rec rec[8];
    CU_ASSERT_EQUAL_FATAL(journal_read(j, rec, 8), 3);
    CU_ASSERT_EQUAL(rec[0].raw, 1);
    CU_ASSERT_EQUAL(rec[1].raw, 2);
    CU_ASSERT_EQUAL(rec[2].raw, 3);
    sl_snapshot_destroy(s);
    journal_gone(j);
}

/* The deadband is measured against the value last journaled, not the one
 * last sent: 10.0 sent, 10.6 journaled and waiting, 11.0 is within 0.5 of
 * 10.6, so it is neither journaled nor does it replace the waiting 10.6
 * (whose seq it would otherwise wrongly carry). */
SL_TEST(snapshot, journal_deadband_against_journaled_value)
{
    struct sl_journal *j;
    struct sl_snapshot *s = journaled(1, SL_TYPE_FLOAT32, 0.5, 100, &j);
    struct seen o;
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_0, SL_Q_GOOD, WALL, T0 + MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + MS, &o), SL_OK);   /* quality change: at once */
    CU_ASSERT_EQUAL(o.ndelta, 1);
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_3, SL_Q_GOOD, WALL + 1, T0 + 2 * MS) == SL_OK);
    CU_ASSERT(sl_snapshot_update(s, 0, F32_10_6, SL_Q_GOOD, WALL + 2, T0 + 3 * MS) == SL_OK);
    CU_ASSERT(sl_snapshot_update(s, 0, F32_11_0, SL_Q_GOOD, WALL + 3, T0 + 4 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 200 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL_FATAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.delta[0].raw, F32_10_6);
    CU_ASSERT_EQUAL(o.delta[0].seq, 2);
    CU_ASSERT_EQUAL(o.delta[0].source_time_us, WALL + 2);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.journaled, 2);
    /* The keyframe still carries the exact current value. */
    CU_ASSERT_EQUAL(fill(s, T0 + 1000 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL(o.kf_val[0][0].raw, F32_11_0);
    /* 11.2 is 0.6 from 10.6: journaled, although only 0.2 from what the
     * keyframe sent. */
    CU_ASSERT(sl_snapshot_update(s, 0, 0x41333333u, SL_Q_GOOD, WALL + 4, T0 + 1001 * MS) == SL_OK);
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.journaled, 3);
    sl_snapshot_destroy(s);
    journal_gone(j);
}

/* A quality change alone (same raw) is journaled, with its quality, and
 * goes out at once. */
SL_TEST(snapshot, journal_quality_change_journaled)
{
    struct sl_journal *j;
    struct sl_snapshot *s = journaled(1, SL_TYPE_UINT16, 0, 100, &j);
    struct seen o;
    CU_ASSERT(sl_snapshot_update(s, 0, 42, SL_Q_GOOD, WALL, T0 + MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + MS, &o), SL_OK);
    CU_ASSERT(sl_snapshot_update(s, 0, 42, SL_Q_BAD_COMM_ERROR, WALL + 1, T0 + 2 * MS) == SL_OK);
    CU_ASSERT_EQUAL(fill(s, T0 + 2 * MS, &o), SL_OK);
    CU_ASSERT_EQUAL_FATAL(o.ndelta, 1);
    CU_ASSERT_EQUAL(o.delta[0].quality, SL_Q_BAD_COMM_ERROR);
    CU_ASSERT_EQUAL(o.delta[0].seq, 2);
    struct sl_journal_rec r[4];
    CU_ASSERT_EQUAL_FATAL(journal_read(j, r, 4), 2);
    CU_ASSERT_EQUAL(r[1].quality, SL_Q_BAD_COMM_ERROR);
    CU_ASSERT_EQUAL(r[1].raw, 42);
    sl_snapshot_destroy(s);
    journal_gone(j);
}

/* ---- runs of consecutive tags (sl_snapshot_update_range) ---------------- */

#define RUN_TAGS (2 * SL_SNAPSHOT_JOURNAL_RUN + 500u)   /* three journal runs */

/* RUN_TAGS uint16 tags read on demand: tag i is "r<i>". */
static void run_tag(const void *ctx, uint32_t id, struct sl_snapshot_tag *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    out->schema.tag_id = id;
    out->schema.type = SL_TYPE_UINT16;
    out->schema.reg = SL_REG_HOLDING;
    out->schema.word_order = SL_WORD_ABCD;
    out->schema.mirror_unit = 1;
    out->schema.address = (uint16_t)id;
    out->schema.scale = 1;
    snprintf(out->schema.name, sizeof out->schema.name, "r%u", id);
}

static struct sl_snapshot *run_snapshot(struct sl_journal **j)
{
    struct sl_snapshot_config cfg = {
        .tag_fn = run_tag, .ntags = RUN_TAGS, .schema_id = 7, .keyframe_ms = 1000, .max_delay_ms = 5,
        .payload_cap = CAP,
    };
    struct sl_snapshot *s = NULL;
    CU_ASSERT_FATAL(sl_snapshot_create(&s, &cfg, T0) == SL_OK);
    *j = journal_new();
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_set_journal(s, *j), SL_OK);
    drain(s, T0);
    return s;
}

/* A range is the same as one update per tag in id order: every change
 * journaled with consecutive seqs across the journal-lock runs, pending in
 * that order, sent as DELTA_SEQ with those seqs; an unchanged range is no
 * change; ids past the table and raws the type cannot carry are refused
 * and counted, nothing of them applied. */
SL_TEST(snapshot, update_range_equals_single_updates)
{
    struct sl_journal *j;
    struct sl_snapshot *s = run_snapshot(&j);
    CU_ASSERT_EQUAL(sl_snapshot_update_range(s, 0, RUN_TAGS, 42, SL_Q_GOOD, WALL, T0 + MS), 0);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.changes, RUN_TAGS);
    CU_ASSERT_EQUAL(st.journaled, RUN_TAGS);
    CU_ASSERT_EQUAL(st.pending, RUN_TAGS);
    /* Unchanged: nothing new. Past the end and too wide: refused. */
    CU_ASSERT_EQUAL(sl_snapshot_update_range(s, 0, RUN_TAGS, 42, SL_Q_GOOD, WALL, T0 + MS), 0);
    CU_ASSERT_EQUAL(sl_snapshot_update_range(s, RUN_TAGS - 10, 30, 42, SL_Q_GOOD, WALL, T0 + MS), 20);
    CU_ASSERT_EQUAL(sl_snapshot_update_range(s, RUN_TAGS, 5, 43, SL_Q_GOOD, WALL, T0 + MS), 5);
    CU_ASSERT_EQUAL(sl_snapshot_update_range(s, 3, 4, 0x10000u, SL_Q_GOOD, WALL, T0 + MS), 4);
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.changes, RUN_TAGS);
    CU_ASSERT_EQUAL(st.updates, RUN_TAGS + RUN_TAGS + 10);
    struct sl_value v;
    CU_ASSERT_EQUAL(sl_snapshot_value(s, 3, &v), SL_OK);
    CU_ASSERT_EQUAL(v.raw, 42);
    /* Deltas in id order, seq = id + 1. */
    uint32_t next = 0;
    struct seen o;
    for (unsigned b = 0; b < 100 && next < RUN_TAGS; b++) {
        CU_ASSERT_EQUAL_FATAL(fill(s, T0 + 10 * MS, &o), SL_OK);
        for (unsigned i = 0; i < o.ndelta; i++, next++) {
            CU_ASSERT_EQUAL(o.delta[i].tag_id, next);
            CU_ASSERT_EQUAL(o.delta[i].seq, next + 1u);
            CU_ASSERT_EQUAL(o.delta[i].raw, 42);
        }
    }
    CU_ASSERT_EQUAL(next, RUN_TAGS);
    /* The journal holds the same, and the lock was given back (a flush
     * from here would hang otherwise). */
    static struct sl_journal_rec r[RUN_TAGS + 1];
    CU_ASSERT_EQUAL_FATAL(journal_read(j, r, RUN_TAGS + 1), RUN_TAGS);
    for (uint32_t i = 0; i < RUN_TAGS; i++) {
        CU_ASSERT_EQUAL(r[i].seq, i + 1u);
        CU_ASSERT_EQUAL(r[i].tag_id, i);
    }
    sl_snapshot_destroy(s);
    journal_gone(j);
}

/* The fast checks inside an update: a bool takes only 0 or 1 and a
 * uint16 nothing above 0xFFFF (refused, nothing changes); without
 * deadbands a new bit pattern is a change and the same one is not. */
SL_TEST(snapshot, update_checks_width_and_change)
{
    make_tags(2, SL_TYPE_BOOL, 0);
    struct sl_snapshot *s = make(2, 1000, 5, 0, 0);
    drain(s, T0);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 2, SL_Q_GOOD, WALL, T0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 1, SL_Q_GOOD, WALL, T0), SL_OK);
    drain(s, T0);   /* sent: the reference for the next change */
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 1, SL_Q_GOOD, WALL + 1, T0), SL_OK);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 2, 1, SL_Q_GOOD, WALL, T0), SL_ERR_RANGE);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.updates, 2);
    CU_ASSERT_EQUAL(st.changes, 1);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 0, SL_Q_GOOD, WALL + 2, T0), SL_OK);
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.changes, 2);
    sl_snapshot_destroy(s);
    make_tags(1, SL_TYPE_UINT16, 0);
    s = make(1, 1000, 5, 0, 0);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 0x10000u, SL_Q_GOOD, WALL, T0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_snapshot_update(s, 0, 0xFFFFu, SL_Q_GOOD, WALL, T0), SL_OK);
    sl_snapshot_stats(s, &st);
    CU_ASSERT_EQUAL(st.updates, 1);
    sl_snapshot_destroy(s);
}

/* ---- a due schema chunk that does not fit ------------------------------- */

static unsigned sched_reads;   /* schema records read through counted_tag */

static void counted_tag(const void *ctx, uint32_t id, struct sl_snapshot_tag *out)
{
    sched_reads++;
    run_tag(ctx, id, out);
}

/* Blocks full of deltas leave no room for the schema chunk that is due:
 * each such block passes it over by its known size, so over a whole
 * overloaded interval every schema record is read exactly once, when its
 * chunk is written (reading a chunk's tags for every block that then had
 * no room for it cost ~6 % of sluice-tx at 4 M changes/s). */
SL_TEST(snapshot, schema_chunk_read_only_when_it_fits)
{
    const uint32_t n = 600;
    struct sl_snapshot_config cfg = {
        .tag_fn = counted_tag, .ntags = n, .schema_id = 9, .keyframe_ms = 1000, .max_delay_ms = 1,
        .schema_every = 1, .payload_cap = CAP,
    };
    struct sl_snapshot *s = NULL;
    CU_ASSERT_FATAL(sl_snapshot_create(&s, &cfg, T0) == SL_OK);
    drain(s, T0);
    unsigned written = 0, blocks = 0;
    uint64_t t = T0;
    /* One interval in 1 ms steps, every tag changing every step: each
     * step's deltas fill several blocks before anything else is due. */
    for (unsigned step = 1; step <= 1000; step++) {
        t = T0 + 1000 * MS + step * MS;
        CU_ASSERT_EQUAL_FATAL(sl_snapshot_update_range(s, 0, n, step & 0xFFFFu, SL_Q_GOOD, WALL + step, t), 0);
        if (step == 1)
            sched_reads = 0;   /* from the interval's first schema chunk on */
        blocks += drain(s, t);
        struct sl_snapshot_stats st1;
        sl_snapshot_stats(s, &st1);
        written = (unsigned)st1.schema_chunks;
    }
    struct sl_snapshot_stats st;
    sl_snapshot_stats(s, &st);
    CU_ASSERT(blocks > 1000);
    CU_ASSERT(st.schemas >= 2);                   /* the start's and this interval's */
    CU_ASSERT(written >= 2);
    /* Each record read once per repetition written in the interval, not
     * once per block that had no room. */
    CU_ASSERT(sched_reads <= n * (st.schemas - 1) + n);
    if (sched_reads > n * (st.schemas - 1) + n)
        fprintf(stderr, "schema records read %u for %llu repetitions of %u tags\n", sched_reads,
                (unsigned long long)(st.schemas - 1), n);
    sl_snapshot_destroy(s);
}
