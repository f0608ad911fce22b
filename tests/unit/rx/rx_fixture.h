/* Shared fixtures for the rx tests: tag definitions and a small mirror with
 * one tag of every type and word order on two units. */
#ifndef RX_FIXTURE_H
#define RX_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "sl_mirror.h"
#include "sl_test.h"

static inline struct sl_schema_tag fx_tag(uint32_t id, uint8_t type, uint8_t reg, uint8_t order,
                                             uint8_t unit, uint16_t addr)
{
    struct sl_schema_tag d;
    memset(&d, 0, sizeof d);
    d.tag_id = id;
    d.type = type;
    d.reg = reg;
    d.word_order = order;
    d.mirror_unit = unit;
    d.address = addr;
    d.scale = 1.0;
    d.offset = 0.0;
    snprintf(d.name, sizeof d.name, "tag%u", (unsigned)id);
    snprintf(d.path, sizeof d.path, "acme/plant1/area%u/line1", (unsigned)unit);
    snprintf(d.units, sizeof d.units, "degC");
    return d;
}

/* Unit 1: holding 0 float32 ABCD, 2 CDAB, 4 BADC, 6 DCBA; 10 int16; 11 uint16;
 *   12 int32 ABCD; 14 uint32 CDAB; 20 int64 ABCD; 24 float64 DCBA;
 *   input 0 uint16; coil 0..2 bool; discrete 5 bool.
 * Unit 7: holding 100 uint16. Tag ids 0..15. */
#define FX_TAGS 16u
static inline void fx_defs(struct sl_schema_tag *d)
{
    d[0] = fx_tag(0, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_ABCD, 1, 0);
    d[1] = fx_tag(1, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_CDAB, 1, 2);
    d[2] = fx_tag(2, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_BADC, 1, 4);
    d[3] = fx_tag(3, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_DCBA, 1, 6);
    d[4] = fx_tag(4, SL_TYPE_INT16, SL_REG_HOLDING, SL_WORD_ABCD, 1, 10);
    d[5] = fx_tag(5, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_ABCD, 1, 11);
    d[6] = fx_tag(6, SL_TYPE_INT32, SL_REG_HOLDING, SL_WORD_ABCD, 1, 12);
    d[7] = fx_tag(7, SL_TYPE_UINT32, SL_REG_HOLDING, SL_WORD_CDAB, 1, 14);
    d[8] = fx_tag(8, SL_TYPE_INT64, SL_REG_HOLDING, SL_WORD_ABCD, 1, 20);
    d[9] = fx_tag(9, SL_TYPE_FLOAT64, SL_REG_HOLDING, SL_WORD_DCBA, 1, 24);
    d[10] = fx_tag(10, SL_TYPE_UINT16, SL_REG_INPUT, SL_WORD_ABCD, 1, 0);
    d[11] = fx_tag(11, SL_TYPE_BOOL, SL_REG_COIL, SL_WORD_ABCD, 1, 0);
    d[12] = fx_tag(12, SL_TYPE_BOOL, SL_REG_COIL, SL_WORD_ABCD, 1, 1);
    d[13] = fx_tag(13, SL_TYPE_BOOL, SL_REG_COIL, SL_WORD_ABCD, 1, 2);
    d[14] = fx_tag(14, SL_TYPE_BOOL, SL_REG_DISCRETE, SL_WORD_ABCD, 1, 5);
    d[15] = fx_tag(15, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_ABCD, 7, 100);
}

static inline struct sl_mirror *fx_mirror(uint32_t schema_id)
{
    struct sl_mirror_config cfg = { .max_tags = 64, .stale_ms = 1000, .max_string_bytes = 0,
                                    .dirty_list = true };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, schema_id, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_has_schema(m));
    return m;
}

static inline struct sl_value fx_val(uint32_t id, uint8_t type, uint64_t raw, uint32_t q,
                                            uint64_t src)
{
    struct sl_value v = { id, type, raw, q, src, 0 };
    return v;
}

/* Every fixture tag Good with known values; 123456.0f in each float32. */
static inline void fx_fill(struct sl_mirror *m, uint64_t src)
{
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    static const uint64_t raws[FX_TAGS] = {
        0x47F12000u, 0x47F12000u, 0x47F12000u, 0x47F12000u, 0xFF85u /* -123 */, 0xBEEFu,
        0x12345678u, 0x89ABCDEFu, 0x0102030405060708ull, 0x40FE240000000000ull /* 123456.0 */,
        0x0042u, 1, 0, 1, 1, 0x1234u
    };
    struct sl_value v[FX_TAGS];
    for (unsigned i = 0; i < FX_TAGS; i++)
        v[i] = fx_val(i, d[i].type, raws[i], SL_Q_GOOD, src);
    CU_ASSERT(sl_mirror_apply(m, v, FX_TAGS, src + 5) == SL_OK);
}

#endif
