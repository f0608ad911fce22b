/* Register grouping: contiguous and near-contiguous merging, the gap rule,
 * the 125-register and 2000-bit limits, spaces never mixed. */
#include <string.h>

#include "sl_poll_plan.h"
#include "sl_regs.h"
#include "sl_test.h"

static struct sl_tag mk(uint8_t reg, uint16_t addr, uint8_t type)
{
    struct sl_tag t;
    memset(&t, 0, sizeof t);
    t.reg = reg;
    t.address = addr;
    t.type = type;
    t.nregs = (uint8_t)sl_regs_count(type);
    return t;
}

SL_TEST(plan, contiguous_and_gaps)
{
    struct sl_tag t[] = {
        mk(SL_REG_HOLDING, 10, SL_TYPE_FLOAT32),   /* 10..11 */
        mk(SL_REG_HOLDING, 0, SL_TYPE_INT16),      /* 0 */
        mk(SL_REG_HOLDING, 1, SL_TYPE_INT64),      /* 1..4; gap 5..9 (5) merges */
        mk(SL_REG_HOLDING, 21, SL_TYPE_INT16),     /* gap 12..20 = 9 > 8: new read */
        mk(SL_REG_INPUT, 0, SL_TYPE_INT16),        /* another space */
    };
    struct sl_poll_plan p;
    CU_ASSERT_EQUAL_FATAL(sl_poll_plan_build(&p, t, 5, 8), SL_OK);
    CU_ASSERT_EQUAL_FATAL(p.nreads, 3);
    CU_ASSERT_EQUAL(p.reads[0].reg, SL_REG_HOLDING);
    CU_ASSERT_EQUAL(p.reads[0].address, 0);
    CU_ASSERT_EQUAL(p.reads[0].count, 12);
    CU_ASSERT_EQUAL(p.reads[0].ntags, 3);
    CU_ASSERT_EQUAL(p.tag_index[p.reads[0].first], 1);   /* address order */
    CU_ASSERT_EQUAL(p.tag_index[p.reads[0].first + 1], 2);
    CU_ASSERT_EQUAL(p.tag_index[p.reads[0].first + 2], 0);
    CU_ASSERT_EQUAL(p.reads[1].address, 21);
    CU_ASSERT_EQUAL(p.reads[1].count, 1);
    CU_ASSERT_EQUAL(p.reads[2].reg, SL_REG_INPUT);
    sl_poll_plan_free(&p);

    /* gap of exactly max_gap merges; max_gap 0 only merges adjacent tags */
    struct sl_tag u[] = { mk(SL_REG_HOLDING, 0, SL_TYPE_INT16), mk(SL_REG_HOLDING, 9, SL_TYPE_INT16) };
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, u, 2, 8), SL_OK);
    CU_ASSERT_EQUAL(p.nreads, 1);
    CU_ASSERT_EQUAL(p.reads[0].count, 10);
    sl_poll_plan_free(&p);
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, u, 2, 7), SL_OK);
    CU_ASSERT_EQUAL(p.nreads, 2);
    sl_poll_plan_free(&p);
    struct sl_tag v[] = { mk(SL_REG_INPUT, 0, SL_TYPE_INT16), mk(SL_REG_INPUT, 1, SL_TYPE_INT32),
                          mk(SL_REG_INPUT, 4, SL_TYPE_INT16) };
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, v, 3, 0), SL_OK);
    CU_ASSERT_EQUAL(p.nreads, 2);
    CU_ASSERT_EQUAL(p.reads[0].count, 3);
    sl_poll_plan_free(&p);
    sl_poll_plan_free(&p);   /* twice is safe */
}

SL_TEST(plan, register_limit)
{
    /* 100 float32 back to back = 200 registers: 125 is the limit; a float
     * that would straddle it starts the next read. */
    struct sl_tag t[100];
    for (int i = 0; i < 100; i++)
        t[i] = mk(SL_REG_HOLDING, (uint16_t)(1000 + 2 * i), SL_TYPE_FLOAT32);
    struct sl_poll_plan p;
    CU_ASSERT_EQUAL_FATAL(sl_poll_plan_build(&p, t, 100, 8), SL_OK);
    CU_ASSERT_EQUAL_FATAL(p.nreads, 2);
    CU_ASSERT_EQUAL(p.reads[0].address, 1000);
    CU_ASSERT_EQUAL(p.reads[0].count, 124);
    CU_ASSERT_EQUAL(p.reads[0].ntags, 62);
    CU_ASSERT_EQUAL(p.reads[1].address, 1124);
    CU_ASSERT_EQUAL(p.reads[1].count, 76);
    for (size_t r = 0; r < p.nreads; r++)
        CU_ASSERT_TRUE(p.reads[r].count <= SL_POLL_MAX_REGS);
    sl_poll_plan_free(&p);

    /* exactly 125 single registers fit one read; 126 need two */
    struct sl_tag u[126];
    for (int i = 0; i < 126; i++)
        u[i] = mk(SL_REG_INPUT, (uint16_t)(65410 + i), SL_TYPE_UINT16);
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, u, 125, 8), SL_OK);
    CU_ASSERT_EQUAL(p.nreads, 1);
    CU_ASSERT_EQUAL(p.reads[0].count, 125);
    sl_poll_plan_free(&p);
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, u, 126, 8), SL_OK);
    CU_ASSERT_EQUAL(p.nreads, 2);
    CU_ASSERT_EQUAL(p.reads[1].address, 65535);
    CU_ASSERT_EQUAL(p.reads[1].count, 1);
    sl_poll_plan_free(&p);
}

SL_TEST(plan, coils_and_discretes)
{
    static struct sl_tag t[2100];
    for (int i = 0; i < 2100; i++)
        t[i] = mk(SL_REG_COIL, (uint16_t)i, SL_TYPE_BOOL);
    struct sl_poll_plan p;
    CU_ASSERT_EQUAL_FATAL(sl_poll_plan_build(&p, t, 2100, 8), SL_OK);
    CU_ASSERT_EQUAL_FATAL(p.nreads, 2);
    CU_ASSERT_EQUAL(p.reads[0].count, 2000);
    CU_ASSERT_EQUAL(p.reads[1].address, 2000);
    CU_ASSERT_EQUAL(p.reads[1].count, 100);
    sl_poll_plan_free(&p);

    /* bit gaps are max_gap * 16 bits; discretes are their own space */
    struct sl_tag u[] = { mk(SL_REG_COIL, 0, SL_TYPE_BOOL), mk(SL_REG_COIL, 129, SL_TYPE_BOOL),
                          mk(SL_REG_COIL, 300, SL_TYPE_BOOL), mk(SL_REG_DISCRETE, 1, SL_TYPE_BOOL) };
    CU_ASSERT_EQUAL_FATAL(sl_poll_plan_build(&p, u, 4, 8), SL_OK);
    CU_ASSERT_EQUAL_FATAL(p.nreads, 3);
    CU_ASSERT_EQUAL(p.reads[0].count, 130);
    CU_ASSERT_EQUAL(p.reads[1].address, 300);
    CU_ASSERT_EQUAL(p.reads[2].reg, SL_REG_DISCRETE);
    sl_poll_plan_free(&p);
}

SL_TEST(plan, empty_and_invalid)
{
    struct sl_poll_plan p;
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, NULL, 0, 8), SL_OK);
    CU_ASSERT_EQUAL(p.nreads, 0);
    struct sl_tag t = mk(SL_REG_HOLDING, 0, 0);
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, &t, 1, 8), SL_ERR_TYPE);
    t = mk(9, 0, SL_TYPE_INT16);
    CU_ASSERT_EQUAL(sl_poll_plan_build(&p, &t, 1, 8), SL_ERR_TYPE);
    CU_ASSERT_PTR_NULL(p.reads);
}
