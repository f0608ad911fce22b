/* The mirror: every row of the quality table (docs/mirror.md §1.1) with an injected
 * clock, ordering by TX block (older blocks ignored, source time never
 * decides), future-dated values flagged, hostile names refused, schema
 * staging and rebuild, followers (dirty list and hook), and register images
 * for every type and word order. */
#include <stdlib.h>

#include "rx_fixture.h"

static uint32_t q_of(const struct sl_mirror *m, uint32_t id)
{
    uint32_t pos;
    CU_ASSERT_FATAL(sl_mirror_find(m, id, &pos) == SL_OK);
    return sl_mirror_quality(m, pos);
}

static void apply1(struct sl_mirror *m, uint32_t id, uint8_t type, uint64_t raw, uint32_t q,
                   uint64_t src)
{
    struct sl_value v = fx_val(id, type, raw, q, src);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, src + 1) == SL_OK);
}

/* Origin of a block signed by key `k` (one byte repeated). */
static struct sl_mirror_origin org(uint8_t k, uint64_t epoch, uint64_t seq)
{
    struct sl_mirror_origin o;
    memset(o.key_id, k, sizeof o.key_id);
    o.epoch = epoch;
    o.block_seq = seq;
    return o;
}

/* One value of tag 5 (uint16) from block (key 1, epoch, seq). */
static void apply_b(struct sl_mirror *m, uint64_t epoch, uint64_t seq, uint64_t raw, uint64_t src,
                    uint64_t future_after)
{
    struct sl_mirror_origin o = org(1, epoch, seq);
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, raw, SL_Q_GOOD, src);
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, src + 1, future_after) == SL_OK);
}

static uint64_t raw_of(const struct sl_mirror *m, uint32_t id)
{
    uint32_t pos;
    struct sl_mirror_tag t;
    CU_ASSERT_FATAL(sl_mirror_find(m, id, &pos) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_get(m, pos, &t) == SL_OK);
    return t.raw;
}

SL_TEST(mirror, waiting_before_first_value)
{
    struct sl_mirror *m = fx_mirror(7);
    CU_ASSERT_EQUAL(sl_mirror_count(m), FX_TAGS);
    sl_mirror_tick(m, 500, 0);                 /* inside stale_ms of start */
    CU_ASSERT(sl_mirror_link_up(m));
    for (uint32_t i = 0; i < FX_TAGS; i++)
        CU_ASSERT_EQUAL(q_of(m, i), SL_Q_BAD_WAITING_INITIAL);
    struct sl_mirror_tag t;
    CU_ASSERT(sl_mirror_get(m, 0, &t) == SL_OK);
    CU_ASSERT_FALSE(t.has_value);
    CU_ASSERT_STRING_EQUAL(t.name, "tag0");
    CU_ASSERT_STRING_EQUAL(t.path, "acme/plant1/area1/line1");
    CU_ASSERT_STRING_EQUAL(t.units, "degC");
    sl_mirror_destroy(m);
}

SL_TEST(mirror, good_and_tx_codes_passed_through)
{
    struct sl_mirror *m = fx_mirror(7);
    apply1(m, 5, SL_TYPE_UINT16, 42, SL_Q_GOOD, 1000);
    apply1(m, 4, SL_TYPE_INT16, 1, SL_Q_BAD_COMM_ERROR, 1000);
    apply1(m, 6, SL_TYPE_INT32, 1, 0x80340000u /* BadNodeIdUnknown: any code */, 1000);
    apply1(m, 7, SL_TYPE_UINT32, 1, 0x40000000u, 1000);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    CU_ASSERT_EQUAL(q_of(m, 4), SL_Q_BAD_COMM_ERROR);
    CU_ASSERT_EQUAL(q_of(m, 6), 0x80340000u);
    CU_ASSERT_EQUAL(q_of(m, 7), 0x40000000u);
    struct sl_mirror_tag t;
    uint32_t pos;
    CU_ASSERT(sl_mirror_find(m, 5, &pos) == SL_OK);
    CU_ASSERT(sl_mirror_get(m, pos, &t) == SL_OK);
    CU_ASSERT(t.has_value);
    CU_ASSERT_EQUAL(t.raw, 42);
    CU_ASSERT_EQUAL(t.source_time_us, 1000);    /* TX's time kept */
    CU_ASSERT_EQUAL(t.rx_time_us, 1001);        /* RX's time added */
    /* Device recovers: Good again. */
    apply1(m, 4, SL_TYPE_INT16, 2, SL_Q_GOOD, 2000);
    CU_ASSERT_EQUAL(q_of(m, 4), SL_Q_GOOD);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, stale_link_and_return)
{
    struct sl_mirror *m = fx_mirror(7);
    apply1(m, 5, SL_TYPE_UINT16, 42, SL_Q_GOOD, 1000);
    apply1(m, 4, SL_TYPE_INT16, 1, SL_Q_BAD_COMM_ERROR, 1000);
    sl_mirror_tick(m, 10000, 9001);            /* 999 ms: not yet */
    CU_ASSERT(sl_mirror_link_up(m));
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    sl_mirror_tick(m, 10000, 9000);            /* exactly stale_ms */
    CU_ASSERT_FALSE(sl_mirror_link_up(m));
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);   /* value held */
    CU_ASSERT_EQUAL(q_of(m, 0), SL_Q_BAD_NO_COMM);                     /* never had one */
    CU_ASSERT_EQUAL(q_of(m, 4), SL_Q_BAD_NO_COMM);                     /* held value was Bad */
    struct sl_mirror_tag t;
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT_EQUAL(t.raw, 42);
    CU_ASSERT_EQUAL(t.tx_quality, SL_Q_GOOD);
    /* Beacons again: a value from before the outage is still only "last
     * usable" until TX sends it again (never stale data shown Good); empty
     * ones wait. */
    sl_mirror_tick(m, 10100, 10050);
    CU_ASSERT(sl_mirror_link_up(m));
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    CU_ASSERT_EQUAL(q_of(m, 0), SL_Q_BAD_WAITING_INITIAL);
    CU_ASSERT_EQUAL(q_of(m, 4), SL_Q_BAD_NO_COMM);
    /* The next keyframe refreshes them: the same source time counts. */
    apply1(m, 5, SL_TYPE_UINT16, 42, SL_Q_GOOD, 1000);
    apply1(m, 4, SL_TYPE_INT16, 1, SL_Q_BAD_COMM_ERROR, 1000);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    CU_ASSERT_EQUAL(q_of(m, 4), SL_Q_BAD_COMM_ERROR);
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.link_changes, 2);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, no_beacon_ever_after_start)
{
    struct sl_mirror *m = fx_mirror(7);
    uint64_t start = 123456;                   /* the daemon passes its start time */
    sl_mirror_tick(m, start + 999, start);
    CU_ASSERT_EQUAL(q_of(m, 3), SL_Q_BAD_WAITING_INITIAL);
    sl_mirror_tick(m, start + 1000, start);
    CU_ASSERT_EQUAL(q_of(m, 3), SL_Q_BAD_NO_COMM);
    /* A clock before the last beacon (caller skew) never reads as stale. */
    sl_mirror_tick(m, start - 5, start);
    CU_ASSERT(sl_mirror_link_up(m));
    sl_mirror_destroy(m);
}

SL_TEST(mirror, restored_until_refreshed)
{
    struct sl_mirror *m = fx_mirror(7);
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 77, SL_Q_GOOD, 5000);
    CU_ASSERT(sl_mirror_restore(m, &v, 5003) == SL_OK);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_UNCERTAIN_LAST_USABLE);
    size_t nd;
    (void)sl_mirror_dirty(m, &nd);
    sl_mirror_dirty_clear(m);
    /* Restored values stay "from the database" whatever the link does. */
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_UNCERTAIN_LAST_USABLE);
    sl_mirror_tick(m, 5000, 4900);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_UNCERTAIN_LAST_USABLE);
    /* A restored value has no block sequence: any verified block replaces
     * it, whatever its source time (TX's clock may have stepped back while
     * RX was down). */
    apply_b(m, 3, 10, 78, 4999, 0);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    struct sl_mirror_tag t;
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT_EQUAL(t.raw, 78);
    CU_ASSERT_EQUAL(t.source_time_us, 4999);
    /* Restoring a tag that is not in the schema, or as another type. */
    v = fx_val(999, SL_TYPE_UINT16, 1, 0, 1);
    CU_ASSERT_EQUAL(sl_mirror_restore(m, &v, 1), SL_ERR_NOT_FOUND);
    v = fx_val(5, SL_TYPE_FLOAT32, 1, 0, 1);
    CU_ASSERT_EQUAL(sl_mirror_restore(m, &v, 1), SL_ERR_TYPE);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, older_block_ignored)
{
    struct sl_mirror *m = fx_mirror(7);
    apply_b(m, 4, 10, 10, 2000, 0);
    apply_b(m, 4, 9, 11, 2500, 0);     /* older block delivered late: ignored, */
    CU_ASSERT_EQUAL(raw_of(m, 5), 10);  /* even with a newer source time */
    apply_b(m, 3, 50, 11, 2600, 0);    /* older epoch */
    CU_ASSERT_EQUAL(raw_of(m, 5), 10);
    apply_b(m, 4, 11, 12, 2000, 0);    /* next block, same source time: taken */
    CU_ASSERT_EQUAL(raw_of(m, 5), 12);
    apply_b(m, 5, 0, 13, 2000, 0);     /* new epoch (TX restarted), seq starts over */
    CU_ASSERT_EQUAL(raw_of(m, 5), 13);
    apply_b(m, 4, 12, 14, 9000, 0);    /* the old run's block: ignored */
    CU_ASSERT_EQUAL(raw_of(m, 5), 13);
    /* Within one block the last value of a tag wins. */
    struct sl_mirror_origin o = org(1, 5, 1);
    struct sl_value two[2] = { fx_val(5, SL_TYPE_UINT16, 20, SL_Q_GOOD, 3000),
                               fx_val(5, SL_TYPE_UINT16, 21, SL_Q_GOOD, 3000) };
    CU_ASSERT(sl_mirror_apply_block(m, &o, two, 2, 3001, 0) == SL_OK);
    CU_ASSERT_EQUAL(raw_of(m, 5), 21);
    /* Another trusted key has its own epochs: its value is taken even with
     * a lower epoch (a new TX key starts at epoch 1). */
    o = org(2, 1, 0);
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 30, SL_Q_GOOD, 100);
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, 101, 0) == SL_OK);
    CU_ASSERT_EQUAL(raw_of(m, 5), 30);
    /* Held through a stale link, the order still holds. */
    sl_mirror_tick(m, 10000, 0);
    o = org(2, 1, 0);                   /* the same block id again is not older */
    v.raw = 31;
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, 102, 0) == SL_OK);
    CU_ASSERT_EQUAL(raw_of(m, 5), 31);
    sl_mirror_tick(m, 10000, 9500);
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.older, 3);
    CU_ASSERT_EQUAL(st.applied, 7);
    sl_mirror_destroy(m);
}

/* A TX clock stepping back: later blocks carry older source times, and
 * each one is applied (the old rule froze the tag at the highest time). */
SL_TEST(mirror, tx_clock_step_back)
{
    struct sl_mirror *m = fx_mirror(7);
    uint64_t t = 1700000000000000ull;
    apply_b(m, 2, 1, 1, t, 0);
    apply_b(m, 2, 2, 2, t - 3600000000ull, 0);   /* stepped back one hour */
    CU_ASSERT_EQUAL(raw_of(m, 5), 2);
    apply_b(m, 2, 3, 3, t - 3599000000ull, 0);
    CU_ASSERT_EQUAL(raw_of(m, 5), 3);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    struct sl_mirror_tag tag;
    CU_ASSERT(sl_mirror_get(m, 5, &tag) == SL_OK);
    CU_ASSERT_EQUAL(tag.source_time_us, t - 3599000000ull);   /* TX's time, as sent */
    sl_mirror_destroy(m);
}

/* One value stamped far in the future is applied and flagged Uncertain;
 * the genuine values after it are applied and Good again. */
SL_TEST(mirror, future_value_flagged_then_genuine_applies)
{
    struct sl_mirror *m = fx_mirror(7);
    uint64_t now = 1700000000000000ull, limit = now + 5000000u;   /* 5 s tolerance */
    apply_b(m, 2, 1, 1, now, limit);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    apply_b(m, 2, 2, 2, now + 86400000000ull, limit);            /* a day ahead */
    CU_ASSERT_EQUAL(raw_of(m, 5), 2);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_MIRROR_Q_FUTURE);
    struct sl_mirror_tag t;
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT(t.future);
    CU_ASSERT_EQUAL(t.tx_quality, SL_Q_GOOD);
    uint32_t id = 0;
    uint64_t src = 0;
    CU_ASSERT(sl_mirror_future_last(m, &id, &src));
    CU_ASSERT_EQUAL(id, 5);
    CU_ASSERT_EQUAL(src, now + 86400000000ull);
    /* Genuine values keep coming and win. */
    for (uint64_t i = 3; i < 6; i++) {
        apply_b(m, 2, i, i, now + i * 1000u, limit);
        CU_ASSERT_EQUAL(raw_of(m, 5), i);
        CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    }
    /* Within the tolerance: not flagged. */
    apply_b(m, 2, 6, 6, limit, limit);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_GOOD);
    /* A Bad code from TX stays Bad even when future-dated. */
    struct sl_mirror_origin o = org(1, 2, 7);
    struct sl_value v = fx_val(4, SL_TYPE_INT16, 1, SL_Q_BAD_COMM_ERROR, limit + 1);
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, 1, limit) == SL_OK);
    CU_ASSERT_EQUAL(q_of(m, 4), SL_Q_BAD_COMM_ERROR);
    /* A stale link shows the held future value as any held value. */
    apply_b(m, 2, 8, 8, limit + 1, limit);
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT_EQUAL(q_of(m, 5), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    /* No check when the limit is 0 (no beacon yet). */
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.future, 3);
    CU_ASSERT_EQUAL(st.older, 0);
    o = org(1, 2, 9);
    v = fx_val(6, SL_TYPE_INT32, 1, SL_Q_GOOD, UINT64_MAX / 2);
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, 1, 0) == SL_OK);
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.future, 3);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, apply_without_origin)
{
    struct sl_mirror *m = fx_mirror(7);
    apply1(m, 5, SL_TYPE_UINT16, 10, SL_Q_GOOD, 2000);
    apply1(m, 5, SL_TYPE_UINT16, 11, SL_Q_BAD_COMM_ERROR, 1999);   /* call order wins */
    struct sl_mirror_tag t;
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT_EQUAL(t.raw, 11);
    CU_ASSERT_EQUAL(t.quality, SL_Q_BAD_COMM_ERROR);
    apply1(m, 5, SL_TYPE_UINT16, 12, SL_Q_GOOD, 2000);
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT_EQUAL(t.raw, 12);
    /* Unknown id and wrong type are counted, the rest of the batch applied. */
    struct sl_value v[3] = { fx_val(999, SL_TYPE_UINT16, 1, 0, 3000),
                                    fx_val(5, SL_TYPE_INT32, 1, 0, 3000),
                                    fx_val(5, SL_TYPE_UINT16, 13, 0, 3000) };
    CU_ASSERT(sl_mirror_apply(m, v, 3, 3001) == SL_OK);
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT_EQUAL(t.raw, 13);
    struct sl_value wide = fx_val(5, SL_TYPE_UINT16, 0x10000, SL_Q_GOOD, 4000);   /* > 16 bits */
    CU_ASSERT(sl_mirror_apply(m, &wide, 1, 4001) == SL_OK);
    CU_ASSERT(sl_mirror_get(m, 5, &t) == SL_OK);
    CU_ASSERT_EQUAL(t.raw, 13);
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.invalid, 1);
    CU_ASSERT_EQUAL(st.older, 0);
    CU_ASSERT_EQUAL(st.unknown_tag, 1);
    CU_ASSERT_EQUAL(st.type_mismatch, 1);
    CU_ASSERT_EQUAL(st.applied, 4);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, values_before_schema)
{
    struct sl_mirror_config cfg = { .max_tags = 4, .stale_ms = 0, .max_string_bytes = 0 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct sl_value v = fx_val(0, SL_TYPE_UINT16, 1, 0, 1);
    CU_ASSERT_EQUAL(sl_mirror_apply(m, &v, 1, 2), SL_ERR_STATE);
    CU_ASSERT_EQUAL(sl_mirror_count(m), 0);
    CU_ASSERT_FALSE(sl_mirror_has_unit(m, 1));
    uint16_t w[1];
    uint32_t q;
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0, 1, w, &q), SL_ERR_NOT_FOUND);
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.no_schema, 1);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, create_bounds)
{
    struct sl_mirror *m = (struct sl_mirror *)1;
    struct sl_mirror_config cfg = { .max_tags = 0, .stale_ms = 0, .max_string_bytes = 0 };
    CU_ASSERT_EQUAL(sl_mirror_create(&m, &cfg), SL_ERR_RANGE);
    CU_ASSERT_PTR_NULL(m);
    cfg.max_tags = SL_MIRROR_MAX_TAGS + 1;
    CU_ASSERT_EQUAL(sl_mirror_create(&m, &cfg), SL_ERR_RANGE);
    sl_mirror_destroy(NULL);
}

SL_TEST(mirror, schema_chunks_any_order_and_repeats)
{
    struct sl_mirror_config cfg = { .max_tags = 64, .stale_ms = 0, .max_string_bytes = 0 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    /* Three chunks: 6 + 6 + 4 tags, arriving 2, 0, 0 (repeat), 1. */
    CU_ASSERT(sl_mirror_schema_chunk(m, 9, 2, 3, FX_TAGS, d + 12, 4) == SL_OK);
    CU_ASSERT(sl_mirror_schema_chunk(m, 9, 0, 3, FX_TAGS, d, 6) == SL_OK);
    CU_ASSERT(sl_mirror_schema_chunk(m, 9, 0, 3, FX_TAGS, d, 6) == SL_OK);
    CU_ASSERT_FALSE(sl_mirror_has_schema(m));
    CU_ASSERT(sl_mirror_schema_chunk(m, 9, 1, 3, FX_TAGS, d + 6, 6) == SL_OK);
    CU_ASSERT(sl_mirror_has_schema(m));
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 9);
    CU_ASSERT_EQUAL(sl_mirror_count(m), FX_TAGS);
    /* Positions are by tag id whatever the arrival order. */
    for (uint32_t i = 0; i < FX_TAGS; i++) {
        struct sl_mirror_tag t;
        CU_ASSERT(sl_mirror_get(m, i, &t) == SL_OK);
        CU_ASSERT_EQUAL(t.tag_id, i);
    }
    uint64_t gen = sl_mirror_generation(m);
    /* The repeated schema costs nothing and changes nothing. */
    fx_fill(m, 100);
    CU_ASSERT(sl_mirror_schema_chunk(m, 9, 0, 3, FX_TAGS, d, 6) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_generation(m), gen);
    CU_ASSERT_EQUAL(q_of(m, 3), SL_Q_GOOD);
    sl_mirror_destroy(m);
}

SL_TEST(mirror, schema_rebuild_on_new_id)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    uint64_t gen = sl_mirror_generation(m);
    CU_ASSERT_EQUAL(q_of(m, 0), SL_Q_GOOD);
    /* New id, different tags: the old schema serves until it is complete. */
    struct sl_schema_tag d[2] = { fx_tag(50, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 3, 40),
                                     fx_tag(40, SL_TYPE_FLOAT32, SL_REG_INPUT, 1, 3, 40) };
    CU_ASSERT(sl_mirror_schema_chunk(m, 8, 0, 2, 2, d, 1) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 7);
    CU_ASSERT_EQUAL(q_of(m, 0), SL_Q_GOOD);
    CU_ASSERT(sl_mirror_schema_chunk(m, 8, 1, 2, 2, d + 1, 1) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 8);
    CU_ASSERT_NOT_EQUAL(sl_mirror_generation(m), gen);
    CU_ASSERT_EQUAL(sl_mirror_count(m), 2);
    uint32_t pos;
    CU_ASSERT_EQUAL(sl_mirror_find(m, 0, &pos), SL_ERR_NOT_FOUND);
    CU_ASSERT(sl_mirror_find(m, 40, &pos) == SL_OK);
    CU_ASSERT_EQUAL(pos, 0);
    CU_ASSERT_EQUAL(sl_mirror_quality(m, pos), SL_Q_BAD_WAITING_INITIAL);   /* starts over */
    CU_ASSERT_FALSE(sl_mirror_has_unit(m, 1));
    CU_ASSERT(sl_mirror_has_unit(m, 3));
    sl_mirror_destroy(m);
}

SL_TEST(mirror, schema_errors)
{
    struct sl_mirror_config cfg = { .max_tags = 4, .stale_ms = 0, .max_string_bytes = 80 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct sl_schema_tag d[5];
    for (uint32_t i = 0; i < 5; i++)
        d[i] = fx_tag(i, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, (uint16_t)i);
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 1, 0, 1, 5, d, 5), SL_ERR_TABLE_FULL);
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 1, 1, 1, 2, d, 2), SL_ERR_HEADER);   /* chunk >= chunks */
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 1, 0, 0, 2, d, 2), SL_ERR_HEADER);
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 1, 0, 1, 1, d, 2), SL_ERR_HEADER);   /* n > total */
    /* Chunk fields changing mid-schema. */
    CU_ASSERT(sl_mirror_schema_chunk(m, 1, 0, 2, 2, d, 1) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 1, 1, 3, 2, d + 1, 1), SL_ERR_HEADER);
    /* Duplicate tag id. */
    struct sl_schema_tag dup[2] = { d[0], d[0] };
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 2, 0, 1, 2, dup, 2), SL_ERR_DUPLICATE);
    /* Fewer tags than announced. */
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 3, 0, 1, 3, d, 2), SL_ERR_LENGTH);
    /* Bad fields. */
    struct sl_schema_tag bad = d[0];
    bad.type = 9;
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_TYPE);
    bad = fx_tag(0, SL_TYPE_UINT16, SL_REG_COIL, 0, 1, 0);          /* coil must be bool */
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_RANGE);
    bad = fx_tag(0, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_CDAB, 1, 0);   /* order on 1 reg */
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_RANGE);
    bad = d[0];
    bad.reg = 0;
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_RANGE);
    bad = d[0];
    bad.word_order = 4;
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_RANGE);
    bad = fx_tag(0, SL_TYPE_FLOAT64, SL_REG_HOLDING, 0, 1, 65533);   /* passes 65535 */
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_RANGE);
    bad = d[0];
    bad.name[3] = '\n';
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 4, 0, 1, 1, &bad, 1), SL_ERR_RANGE);
    /* String pool bound: 80 bytes hold two tags' strings (34 each), not four. */
    CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 5, 0, 1, 4, d, 4), SL_ERR_CAPACITY);
    CU_ASSERT_FALSE(sl_mirror_has_schema(m));
    /* Direct staging misuse. */
    CU_ASSERT_EQUAL(sl_mirror_schema_add(m, d), SL_ERR_STATE);
    CU_ASSERT_EQUAL(sl_mirror_schema_commit(m), SL_ERR_STATE);
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT(st.schema_errors >= 13);
    /* After all that, a good schema still loads. */
    CU_ASSERT(sl_mirror_schema_chunk(m, 6, 0, 1, 2, d, 2) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_count(m), 2);
    sl_mirror_destroy(m);
}

/* Names and paths become MQTT topic levels (prefix/path/name): a hostile
 * TX must not be able to publish over another topic. Each bad tag drops
 * the staged schema and the active one keeps serving. */
SL_TEST(mirror, hostile_names_refused)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    static const char *const names[] = { "a/b", "_sluice/status", "/", "a+", "#", "x\x01y", "x\x7f" };
    static const char *const paths[] = { "", "a", "a/b/c", "a/b/c/d/e", "a//c/d", "/b/c/d", "a/b/c/",
                                         "a/+/c/d", "a/b/#/d", "a/b/c/d\n", "a/b\tx/c/d" };
    struct sl_mirror_stats st0, st;
    sl_mirror_stats(m, &st0);
    unsigned n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++, n++) {
        struct sl_schema_tag d = fx_tag(1, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, 0);
        snprintf(d.name, sizeof d.name, "%s", names[i]);
        CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 100u + n, 0, 1, 1, &d, 1), SL_ERR_RANGE);
    }
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++, n++) {
        struct sl_schema_tag d = fx_tag(1, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, 0);
        snprintf(d.path, sizeof d.path, "%s", paths[i]);
        CU_ASSERT_EQUAL(sl_mirror_schema_chunk(m, 100u + n, 0, 1, 1, &d, 1), SL_ERR_RANGE);
    }
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.schema_errors - st0.schema_errors, n);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 7);                 /* previous schema kept */
    CU_ASSERT_EQUAL(q_of(m, 3), SL_Q_GOOD);                      /* and its values */
    /* Staging directly (the store's restore path) applies the same rules. */
    struct sl_schema_tag d = fx_tag(1, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, 0);
    snprintf(d.name, sizeof d.name, "status/x");
    CU_ASSERT(sl_mirror_schema_begin(m, 200, 1) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_schema_add(m, &d), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_mirror_schema_commit(m), SL_ERR_STATE);
    /* Spaces, dots, dashes and UTF-8 are fine. */
    d = fx_tag(1, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, 0);
    snprintf(d.name, sizeof d.name, "Temp. \xc3\xa9t\xc3\xa9-1");
    snprintf(d.path, sizeof d.path, "acme/plant 1/\xc3\xa1rea/line-1.2");
    CU_ASSERT(sl_mirror_schema_chunk(m, 300, 0, 1, 1, &d, 1) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 300);
    sl_mirror_destroy(m);
}

struct events {
    unsigned value, link, schema;
    uint32_t last_pos;
};

static void hook(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct events *e = ctx;
    if (ev == SL_MIRROR_EV_VALUE) {
        e->value++;
        e->last_pos = pos;
    } else if (ev == SL_MIRROR_EV_LINK) {
        e->link++;
    } else if (ev == SL_MIRROR_EV_SCHEMA) {
        e->schema++;
    }
}

SL_TEST(mirror, dirty_list_and_hook)
{
    struct sl_mirror_config cfg = { .max_tags = 64, .stale_ms = 1000, .max_string_bytes = 0,
                                    .dirty_list = true };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct events ev = { 0, 0, 0, 0 };
    sl_mirror_set_hook(m, hook, &ev);
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    CU_ASSERT(sl_mirror_schema_chunk(m, 1, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    CU_ASSERT_EQUAL(ev.schema, 1);
    size_t n;
    const uint32_t *dl = sl_mirror_dirty(m, &n);
    CU_ASSERT_EQUAL(n, FX_TAGS);                 /* a new schema: everything */
    sl_mirror_dirty_clear(m);
    (void)sl_mirror_dirty(m, &n);
    CU_ASSERT_EQUAL(n, 0);
    apply1(m, 9, SL_TYPE_FLOAT64, 1, SL_Q_GOOD, 10);
    apply1(m, 3, SL_TYPE_FLOAT32, 1, SL_Q_GOOD, 10);
    apply1(m, 9, SL_TYPE_FLOAT64, 2, SL_Q_GOOD, 11);
    struct sl_mirror_origin o = org(1, 1, 2);
    struct sl_value v = fx_val(9, SL_TYPE_FLOAT64, 2, SL_Q_GOOD, 12);
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, 13, 0) == SL_OK);   /* one more event */
    o.block_seq = 1;
    CU_ASSERT(sl_mirror_apply_block(m, &o, &v, 1, 13, 0) == SL_OK);   /* older block: none */
    CU_ASSERT_EQUAL(ev.value, 4);
    CU_ASSERT_EQUAL(ev.last_pos, 9);
    dl = sl_mirror_dirty(m, &n);
    CU_ASSERT_EQUAL(n, 2);                       /* each tag once, in change order */
    CU_ASSERT_EQUAL(dl[0], 9);
    CU_ASSERT_EQUAL(dl[1], 3);
    sl_mirror_dirty_clear(m);
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT_EQUAL(ev.link, 1);
    (void)sl_mirror_dirty(m, &n);
    CU_ASSERT_EQUAL(n, FX_TAGS);
    sl_mirror_tick(m, 5001, 0);                  /* no transition, no event */
    CU_ASSERT_EQUAL(ev.link, 1);
    sl_mirror_set_hook(m, NULL, NULL);
    apply1(m, 9, SL_TYPE_FLOAT64, 3, SL_Q_GOOD, 12);
    CU_ASSERT_EQUAL(ev.value, 4);
    sl_mirror_destroy(m);
}

/* Without dirty_list (the daemon, whose threads follow with subscriptions)
 * no list is kept: nothing would clear it, and a commit or a link change
 * would walk every tag for it. */
SL_TEST(mirror, no_dirty_list_unless_asked)
{
    struct sl_mirror_config cfg = { .max_tags = 64, .stale_ms = 1000, .max_string_bytes = 0 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    CU_ASSERT(sl_mirror_schema_chunk(m, 1, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    apply1(m, 9, SL_TYPE_FLOAT64, 1, SL_Q_GOOD, 10);
    sl_mirror_tick(m, 5000, 0);
    size_t n = 99;
    CU_ASSERT_PTR_NULL(sl_mirror_dirty(m, &n));
    CU_ASSERT_EQUAL(n, 0);
    sl_mirror_dirty_clear(m);
    CU_ASSERT_EQUAL(sl_mirror_quality(m, 9), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    sl_mirror_destroy(m);
}

/* ---- register images ----------------------------------------------------- */

/* The mirror's words come from sl_regs_encode (proto/sl_regs.c, shared with
 * TX's decode); these vectors pin the word orders the mirror promises. */
SL_TEST(regs, every_type_and_order)
{
    static const struct {
        uint8_t type, order;
        uint64_t raw;
        unsigned n;
        uint16_t w[4];
    } v[] = {
        { SL_TYPE_FLOAT32, SL_WORD_ABCD, 0x47F12000u, 2, { 0x47F1, 0x2000 } },
        { SL_TYPE_FLOAT32, SL_WORD_CDAB, 0x47F12000u, 2, { 0x2000, 0x47F1 } },
        { SL_TYPE_FLOAT32, SL_WORD_BADC, 0x47F12000u, 2, { 0xF147, 0x0020 } },
        { SL_TYPE_FLOAT32, SL_WORD_DCBA, 0x47F12000u, 2, { 0x0020, 0xF147 } },
        { SL_TYPE_BOOL, SL_WORD_ABCD, 1, 1, { 0x0001 } },
        { SL_TYPE_INT16, SL_WORD_ABCD, 0xFF85, 1, { 0xFF85 } },
        { SL_TYPE_UINT16, SL_WORD_ABCD, 0xBEEF, 1, { 0xBEEF } },
        { SL_TYPE_INT32, SL_WORD_ABCD, 0x12345678, 2, { 0x1234, 0x5678 } },
        { SL_TYPE_INT32, SL_WORD_CDAB, 0x12345678, 2, { 0x5678, 0x1234 } },
        { SL_TYPE_INT32, SL_WORD_BADC, 0x12345678, 2, { 0x3412, 0x7856 } },
        { SL_TYPE_INT32, SL_WORD_DCBA, 0x12345678, 2, { 0x7856, 0x3412 } },
        { SL_TYPE_UINT32, SL_WORD_ABCD, 0x89ABCDEF, 2, { 0x89AB, 0xCDEF } },
        { SL_TYPE_UINT32, SL_WORD_CDAB, 0x89ABCDEF, 2, { 0xCDEF, 0x89AB } },
        { SL_TYPE_UINT32, SL_WORD_BADC, 0x89ABCDEF, 2, { 0xAB89, 0xEFCD } },
        { SL_TYPE_UINT32, SL_WORD_DCBA, 0x89ABCDEF, 2, { 0xEFCD, 0xAB89 } },
        { SL_TYPE_INT64, SL_WORD_ABCD, 0x0102030405060708ull, 4, { 0x0102, 0x0304, 0x0506, 0x0708 } },
        { SL_TYPE_INT64, SL_WORD_CDAB, 0x0102030405060708ull, 4, { 0x0708, 0x0506, 0x0304, 0x0102 } },
        { SL_TYPE_INT64, SL_WORD_BADC, 0x0102030405060708ull, 4, { 0x0201, 0x0403, 0x0605, 0x0807 } },
        { SL_TYPE_INT64, SL_WORD_DCBA, 0x0102030405060708ull, 4, { 0x0807, 0x0605, 0x0403, 0x0201 } },
        /* 123456.0 as float64 = 0x40FE240000000000 */
        { SL_TYPE_FLOAT64, SL_WORD_ABCD, 0x40FE240000000000ull, 4, { 0x40FE, 0x2400, 0, 0 } },
        { SL_TYPE_FLOAT64, SL_WORD_CDAB, 0x40FE240000000000ull, 4, { 0, 0, 0x2400, 0x40FE } },
        { SL_TYPE_FLOAT64, SL_WORD_BADC, 0x40FE240000000000ull, 4, { 0xFE40, 0x0024, 0, 0 } },
        { SL_TYPE_FLOAT64, SL_WORD_DCBA, 0x40FE240000000000ull, 4, { 0, 0, 0x0024, 0xFE40 } },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        /* Through the mirror: one tag of this type and order at holding 100. */
        struct sl_mirror_config cfg = { .max_tags = 1, .stale_ms = 1000, .max_string_bytes = 0 };
        struct sl_mirror *m;
        CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
        uint8_t reg = v[i].type == SL_TYPE_BOOL ? SL_REG_COIL : SL_REG_HOLDING;
        struct sl_schema_tag d = fx_tag(1, v[i].type, reg, v[i].order, 1, 100);
        CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 1, 0, 1, 1, &d, 1) == SL_OK);
        apply1(m, 1, v[i].type, v[i].raw, SL_Q_GOOD, 1);
        uint16_t w[4] = { 0xAAAA, 0xAAAA, 0xAAAA, 0xAAAA };
        uint32_t q;
        if (reg == SL_REG_COIL) {
            uint8_t bit = 0;
            CU_ASSERT(sl_mirror_read_bits(m, 1, reg, 100, 1, &bit, &q) == SL_OK);
            w[0] = bit;
        } else {
            CU_ASSERT(sl_mirror_read_regs(m, 1, reg, 100, (uint16_t)v[i].n, w, &q) == SL_OK);
            /* One past the tag is unmapped. */
            CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, reg, 100, (uint16_t)(v[i].n + 1), w + 0, &q),
                            SL_ERR_NOT_FOUND);
            CU_ASSERT(sl_mirror_read_regs(m, 1, reg, 100, (uint16_t)v[i].n, w, &q) == SL_OK);
        }
        CU_ASSERT_EQUAL(q, SL_Q_GOOD);
        for (unsigned j = 0; j < v[i].n; j++)
            if (w[j] != v[i].w[j]) {
                CU_FAIL("register word differs");
                fprintf(stderr, "case %zu word %u: %04X want %04X\n", i, j, w[j], v[i].w[j]);
            }
        sl_mirror_destroy(m);
    }
}

SL_TEST(regs, image_reads)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    uint16_t w[32];
    uint32_t q;
    /* The four float32 word orders side by side, one read. */
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0, 8, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(q, SL_Q_GOOD);
    static const uint16_t f32[8] = { 0x47F1, 0x2000, 0x2000, 0x47F1, 0xF147, 0x0020, 0x0020, 0xF147 };
    CU_ASSERT_EQUAL(memcmp(w, f32, sizeof f32), 0);
    /* int16, uint16, int32 ABCD, uint32 CDAB. */
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 10, 6, w, &q) == SL_OK);
    static const uint16_t ints[6] = { 0xFF85, 0xBEEF, 0x1234, 0x5678, 0xCDEF, 0x89AB };
    CU_ASSERT_EQUAL(memcmp(w, ints, sizeof ints), 0);
    /* A read starting in the middle of a 64-bit value. */
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 22, 6, w, &q) == SL_OK);
    static const uint16_t mid[6] = { 0x0506, 0x0708, 0, 0, 0x0024, 0xFE40 };
    CU_ASSERT_EQUAL(memcmp(w, mid, sizeof mid), 0);
    /* Input registers are a separate space. */
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_INPUT, 0, 1, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(w[0], 0x0042);
    CU_ASSERT(sl_mirror_read_regs(m, 7, SL_REG_HOLDING, 100, 1, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(w[0], 0x1234);
    /* Gaps and ranges. */
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 15, 2, w, &q), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 16, 1, w, &q), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 2, SL_REG_HOLDING, 0, 1, w, &q), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_INPUT, 1, 1, w, &q), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0xFFFF, 2, w, &q), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0, 0, w, &q), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_mirror_read_regs(m, 1, SL_REG_COIL, 0, 1, w, &q), SL_ERR_RANGE);
    /* Bits: coils 1,0,1 and discrete 5. */
    uint8_t bits[2] = { 0xFF, 0xFF };
    CU_ASSERT(sl_mirror_read_bits(m, 1, SL_REG_COIL, 0, 3, bits, &q) == SL_OK);
    CU_ASSERT_EQUAL(bits[0], 0x05);
    CU_ASSERT(sl_mirror_read_bits(m, 1, SL_REG_DISCRETE, 5, 1, bits, &q) == SL_OK);
    CU_ASSERT_EQUAL(bits[0], 0x01);
    CU_ASSERT_EQUAL(sl_mirror_read_bits(m, 1, SL_REG_COIL, 0, 4, bits, &q), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_mirror_read_bits(m, 1, SL_REG_HOLDING, 0, 1, bits, &q), SL_ERR_RANGE);
    /* Quality: the first non-Good covering tag is reported. */
    apply1(m, 1, SL_TYPE_FLOAT32, 0x47F12000u, SL_Q_BAD_COMM_ERROR, 200);
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0, 8, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(q, SL_Q_BAD_COMM_ERROR);
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0, 2, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(q, SL_Q_GOOD);
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 0, 2, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(q, SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    sl_mirror_destroy(m);
}

SL_TEST(regs, overlapping_tags_lowest_id_serves)
{
    struct sl_mirror_config cfg = { .max_tags = 4, .stale_ms = 0, .max_string_bytes = 0 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    /* One PLC register read both as uint16 (id 2) and as the high word of a
     * uint32 (id 1): the lower id's words are served. */
    struct sl_schema_tag d[2] = { fx_tag(2, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, 10),
                                     fx_tag(1, SL_TYPE_UINT32, SL_REG_HOLDING, 0, 1, 10) };
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 1, 0, 1, 2, d, 2) == SL_OK);
    apply1(m, 1, SL_TYPE_UINT32, 0x11112222u, SL_Q_GOOD, 1);
    apply1(m, 2, SL_TYPE_UINT16, 0x1111u, SL_Q_GOOD, 1);
    uint16_t w[2];
    uint32_t q;
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 10, 2, w, &q) == SL_OK);
    CU_ASSERT(w[0] == 0x1111 && w[1] == 0x2222);
    sl_mirror_destroy(m);
}

/* One million tags: built at schema load, applied and read without
 * allocation. Tag ids are sparse (x3) so the binary search path is used. */
SL_TEST(mirror, one_million_tags)
{
    enum { N = 1000000, CHUNK = 1000 };
    struct sl_mirror_config cfg = { .max_tags = N, .stale_ms = 1000, .max_string_bytes = 0 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    static struct sl_schema_tag d[CHUNK];
    for (uint32_t c = 0; c < N / CHUNK; c++) {
        for (uint32_t i = 0; i < CHUNK; i++) {
            uint32_t k = c * CHUNK + i;
            /* 250 units x 4000 uint16 holding registers */
            d[i] = fx_tag(k * 3, SL_TYPE_UINT16, SL_REG_HOLDING, 0, (uint8_t)(k / 4000),
                          (uint16_t)(k % 4000));
        }
        CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 1, (uint16_t)c, N / CHUNK, N, d, CHUNK) == SL_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sl_mirror_count(m), N);
    struct sl_value v[CHUNK];
    for (uint32_t c = 0; c < N / CHUNK; c++) {
        for (uint32_t i = 0; i < CHUNK; i++) {
            uint32_t k = c * CHUNK + i;
            v[i] = fx_val(k * 3, SL_TYPE_UINT16, k & 0xFFFF, SL_Q_GOOD, 1);
        }
        CU_ASSERT(sl_mirror_apply(m, v, CHUNK, 2) == SL_OK);
    }
    struct sl_mirror_stats st;
    sl_mirror_stats(m, &st);
    CU_ASSERT_EQUAL(st.applied, N);
    uint16_t w[125];
    uint32_t q;
    CU_ASSERT(sl_mirror_read_regs(m, 249, SL_REG_HOLDING, 3875, 125, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(q, SL_Q_GOOD);
    CU_ASSERT_EQUAL(w[124], (uint16_t)((249u * 4000u + 3999u) & 0xFFFF));
    sl_mirror_destroy(m);
}
