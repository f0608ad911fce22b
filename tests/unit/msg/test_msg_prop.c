/* Seeded property tests: random values, tags and events roundtrip through
 * random payload capacities; random mutations of valid payloads never crash
 * and are either refused whole or decode to messages that re-encode to
 * exactly their own bytes (the fuzz targets' oracle, tests/fuzz/fuzz_msg.h). */
#include <math.h>
#include <string.h>

#include "../../fuzz/fuzz_msg.h"
#include "msg_fixtures.h"
#include "sl_msg.h"
#include "sl_test.h"

#define MAX_ITEMS 512

static uint64_t rnd(uint64_t *s, uint64_t n) { return n ? fx_rand(s) % n : 0; }

static void rand_value(uint64_t *s, struct sl_value *v)
{
    static const uint64_t mask[9] = { 0, 1, 0xFFFF, 0xFFFF, 0xFFFFFFFFu, 0xFFFFFFFFu,
                                      UINT64_MAX, 0xFFFFFFFFu, UINT64_MAX };
    static const uint32_t q[4] = { SL_Q_GOOD, SL_Q_BAD_COMM_ERROR, SL_Q_UNCERTAIN_LAST_USABLE, 0 };
    v->tag_id = (uint32_t)fx_rand(s);
    v->type = (uint8_t)(1 + rnd(s, 8));
    uint64_t r = fx_rand(s);
    switch (rnd(s, 4)) {               /* bias towards the edges */
    case 0: r = 0; break;
    case 1: r = UINT64_MAX; break;
    default: break;
    }
    v->raw = r & mask[v->type];
    v->quality = rnd(s, 2) ? q[rnd(s, 3)] : (uint32_t)fx_rand(s);
    v->source_time_us = rnd(s, 2) ? FX_TIME_US + rnd(s, 1000000) : fx_rand(s);
}

/* Appends random characters (ASCII, 2-, 3- and 4-byte UTF-8) up to max
 * bytes, never splitting one. */
static void rand_text(uint64_t *s, char *out, size_t max, size_t min)
{
    static const char *pieces[] = { "a", "Z", "0", " ", "/", "-", "_", "~", "\xC2\xB0",
                                    "\xC2\xA0", "\xE2\x82\xAC", "\xEF\xBF\xBD", "\xF0\x9F\x8F\xAD" };
    size_t target = min + rnd(s, max - min + 1), n = 0;
    while (n < target) {
        const char *p = pieces[rnd(s, sizeof pieces / sizeof pieces[0])];
        size_t k = strlen(p);
        if (n + k > max) {
            if (n >= min)
                break;
            p = "x";
            k = 1;
        }
        memcpy(out + n, p, k);
        n += k;
    }
    out[n] = '\0';
}

static void rand_tag(uint64_t *s, struct sl_schema_tag *t)
{
    memset(t, 0, sizeof *t);
    t->tag_id = (uint32_t)fx_rand(s);
    t->type = (uint8_t)(1 + rnd(s, 8));
    unsigned width = t->type >= SL_TYPE_INT64 && t->type != SL_TYPE_FLOAT32 ? 4
                   : t->type >= SL_TYPE_INT32 ? 2 : 1;
    if (t->type == SL_TYPE_BOOL)
        t->reg = rnd(s, 2) ? SL_REG_COIL : SL_REG_DISCRETE;
    else
        t->reg = rnd(s, 2) ? SL_REG_HOLDING : SL_REG_INPUT;
    t->word_order = width > 1 ? (uint8_t)rnd(s, 4) : SL_WORD_ABCD;
    t->mirror_unit = (uint8_t)fx_rand(s);
    t->address = (uint16_t)rnd(s, 65536u - width + 1u);
    uint64_t bits = fx_rand(s);
    memcpy(&t->scale, &bits, sizeof bits);
    if (!isfinite(t->scale))
        t->scale = -2.5;
    t->offset = (double)(int64_t)fx_rand(s) / 1024.0;
    rand_text(s, t->name, SL_NAME_MAX, 1);
    rand_text(s, t->path, rnd(s, 4) ? 40 : SL_PATH_MAX, 0);
    rand_text(s, t->units, SL_UNITS_MAX, 0);
}

/* What one encoded message should decode to. */
struct expect {
    uint8_t type;
    size_t first, count;            /* into vals / tags */
    uint32_t id, total;
    uint16_t chunk, chunks;
    uint8_t kind, unit;
    uint64_t time;
    char text[SL_EVENT_TEXT_MAX + 1];
};

static struct sl_value vals[MAX_ITEMS];
static struct sl_schema_tag tags[MAX_ITEMS];
static struct expect exp_msgs[MAX_ITEMS];
static uint8_t payload[16384], mutated[16384 + 64];

/* Fills payload with random messages until capacity runs out or a message
 * count is reached; returns the payload length and *nmsgs. */
static size_t build(uint64_t *s, size_t cap, size_t *nmsgs)
{
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, payload, cap);
    size_t nv = 0, nt = 0, nm = 0;
    for (int tries = 0; tries < 12 && nm < MAX_ITEMS; tries++) {
        struct expect *x = &exp_msgs[nm];
        memset(x, 0, sizeof *x);
        size_t want = 1 + rnd(s, 20), taken = 0;
        sl_err e;
        x->type = (uint8_t)(1 + rnd(s, 4));
        if (x->type == SL_MSG_SCHEMA) {
            if (nt + want > MAX_ITEMS)
                break;
            for (size_t i = 0; i < want; i++)
                rand_tag(s, &tags[nt + i]);
            x->total = (uint32_t)(want + rnd(s, 100));
            x->chunks = (uint16_t)(1 + rnd(s, want < x->total ? want : x->total));
            x->chunk = (uint16_t)rnd(s, x->chunks);
            x->id = (uint32_t)fx_rand(s);
            e = sl_msg_put_schema(&w, &taken, x->id, x->chunk, x->chunks, x->total, tags + nt, want);
            x->first = nt;
            nt += taken;
        } else if (x->type == SL_MSG_EVENT) {
            x->kind = (uint8_t)(1 + rnd(s, 4));
            x->unit = (uint8_t)fx_rand(s);
            x->time = fx_rand(s);
            rand_text(s, x->text, rnd(s, 3) ? 40 : SL_EVENT_TEXT_MAX, 0);
            e = sl_msg_put_event(&w, x->kind, x->unit, x->time, x->text, strlen(x->text));
        } else {
            if (nv + want > MAX_ITEMS)
                break;
            for (size_t i = 0; i < want; i++)
                rand_value(s, &vals[nv + i]);
            if (x->type == SL_MSG_DELTA) {
                e = sl_msg_put_delta(&w, &taken, vals + nv, want);
            } else {
                x->total = (uint32_t)(want + rnd(s, 1000));
                x->chunks = (uint16_t)(1 + rnd(s, want));
                x->chunk = (uint16_t)rnd(s, x->chunks);
                x->id = (uint32_t)fx_rand(s);
                e = sl_msg_put_keyframe(&w, &taken, x->id, x->chunk, x->chunks, x->total,
                                        vals + nv, want);
            }
            x->first = nv;
            nv += taken;
        }
        if (e == SL_ERR_CAPACITY)
            continue;
        CU_ASSERT_EQUAL_FATAL(e, SL_OK);
        CU_ASSERT(taken <= want);
        x->count = taken;
        nm++;
    }
    *nmsgs = nm;
    return w.off;
}

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

SL_TEST(msg_prop, random_roundtrip)
{
    uint64_t s = 0x5EED0001u;
    size_t total_msgs = 0;
    for (int iter = 0; iter < 600; iter++) {
        size_t cap = rnd(&s, 4) ? rnd(&s, 2000) : rnd(&s, sizeof payload + 1);
        size_t nm;
        size_t len = build(&s, cap, &nm);
        CU_ASSERT_FATAL(len <= cap);
        struct sl_msg_reader r;
        struct sl_msg m;
        CU_ASSERT_EQUAL_FATAL(sl_msg_reader_init(&r, payload, len), SL_OK);
        for (size_t k = 0; k < nm; k++) {
            const struct expect *x = &exp_msgs[k];
            CU_ASSERT_FATAL(sl_msg_next(&r, &m));
            CU_ASSERT_EQUAL_FATAL(m.type, x->type);
            struct sl_value v;
            struct sl_schema_tag t;
            size_t i = 0;
            switch (m.type) {
            case SL_MSG_DELTA:
                while (sl_msg_value_next(&m.u.delta.values, &v))
                    CU_ASSERT(i < x->count && value_eq(&v, &vals[x->first + i++]));
                break;
            case SL_MSG_KEYFRAME:
                CU_ASSERT(m.u.keyframe.keyframe_id == x->id && m.u.keyframe.total_tags == x->total &&
                          m.u.keyframe.chunk == x->chunk && m.u.keyframe.chunks == x->chunks);
                while (sl_msg_value_next(&m.u.keyframe.values, &v))
                    CU_ASSERT(i < x->count && value_eq(&v, &vals[x->first + i++]));
                break;
            case SL_MSG_SCHEMA:
                CU_ASSERT(m.u.schema.schema_id == x->id && m.u.schema.total_tags == x->total &&
                          m.u.schema.chunk == x->chunk && m.u.schema.chunks == x->chunks);
                while (sl_msg_tag_next(&m.u.schema.tags, &t))
                    CU_ASSERT(i < x->count && tag_eq(&t, &tags[x->first + i++]));
                break;
            default:
                CU_ASSERT(m.u.event.kind == x->kind && m.u.event.mirror_unit == x->unit &&
                          m.u.event.time_us == x->time && strcmp(m.u.event.text, x->text) == 0);
                i = x->count;
                break;
            }
            CU_ASSERT_EQUAL(i, x->count);
        }
        CU_ASSERT_FALSE(sl_msg_next(&r, &m));
        total_msgs += nm;
    }
    CU_ASSERT(total_msgs > 1000);
}

/* The oracle: a refused payload hands out nothing; an accepted one is a
 * tiling of messages that each re-encode to their own bytes. */
static int consistent(const uint8_t *p, size_t len, int *accepted)
{
    struct sl_msg_reader r;
    struct sl_msg m;
    if (sl_msg_reader_init(&r, p, len) != SL_OK) {
        *accepted = 0;
        return !sl_msg_next(&r, &m);
    }
    *accepted = 1;
    size_t off = 0;
    while (sl_msg_next(&r, &m)) {
        size_t n = SL_MSG_HDR_BYTES + sl_be16_get(p + off + 2);
        if (n > len - off || !fuzz_msg_reencode(&m, p + off, n))
            return 0;
        off += n;
    }
    return off == len;
}

SL_TEST(msg_prop, random_mutations)
{
    uint64_t s = 0x5EED0002u;
    size_t accepted_mutants = 0, refused = 0;
    for (int iter = 0; iter < 4000; iter++) {
        size_t nm;
        size_t len = build(&s, 64 + rnd(&s, 1500), &nm);
        memcpy(mutated, payload, len);
        size_t mlen = len;
        for (uint64_t k = 1 + rnd(&s, 3); k > 0; k--) {
            switch (rnd(&s, 6)) {
            case 0:   /* flip one bit */
                if (mlen)
                    mutated[rnd(&s, mlen)] ^= (uint8_t)(1u << rnd(&s, 8));
                break;
            case 1:   /* set a byte to an interesting value */
                if (mlen) {
                    static const uint8_t v[] = { 0, 1, 2, 3, 4, 5, 8, 9, 0x7F, 0x80, 0xC0, 0xFF };
                    mutated[rnd(&s, mlen)] = v[rnd(&s, sizeof v)];
                }
                break;
            case 2:   /* truncate */
                mlen = rnd(&s, mlen + 1);
                break;
            case 3:   /* append random bytes */
                for (uint64_t j = rnd(&s, 30); j > 0 && mlen < sizeof mutated; j--)
                    mutated[mlen++] = (uint8_t)fx_rand(&s);
                break;
            case 4:   /* rewrite a u16 (count, body_len, text_len ...) */
                if (mlen >= 2)
                    sl_be16_put(mutated + rnd(&s, mlen - 1), (uint16_t)fx_rand(&s));
                break;
            default:  /* delete one byte */
                if (mlen) {
                    size_t at = rnd(&s, mlen);
                    memmove(mutated + at, mutated + at + 1, mlen - at - 1);
                    mlen--;
                }
                break;
            }
        }
        int accepted;
        CU_ASSERT_FATAL(consistent(mutated, mlen, &accepted));
        if (accepted && (mlen != len || memcmp(mutated, payload, len) != 0))
            accepted_mutants++;
        refused += !accepted;
    }
    /* Both outcomes must be exercised for the test to mean anything. */
    CU_ASSERT(accepted_mutants > 50);
    CU_ASSERT(refused > 1000);
}
