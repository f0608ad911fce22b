/* Interleaver: the exact send order (D=3 example of docs/protocol-fec.md),
 * the spacing guarantee for mixed block sizes, bursts of D*m frames fully
 * recovered end to end (D*m+1 not always), latency flush, deadline,
 * capacity, and block release on the last symbol. */
#include <stdlib.h>
#include <string.h>

#include "fec_testutil.h"
#include "sl_test.h"

static struct sl_fec_interleaver *make_il(unsigned d, unsigned cap, uint64_t delay)
{
    struct sl_fec_interleaver *il = NULL;
    if (sl_fec_interleaver_create(&il, d, cap, delay) != SL_OK)
        return NULL;
    return il;
}

/* Drains into parallel arrays; returns the count. */
static unsigned drain(struct sl_fec_interleaver *il, struct sl_fec_block **blk, uint8_t *idx, bool *last,
                      unsigned cap)
{
    unsigned n = 0;
    struct sl_fec_emit e;
    while (n < cap && sl_fec_interleave_next(il, &e) == SL_OK) {
        blk[n] = e.block;
        idx[n] = e.index;
        last[n] = e.last;
        n++;
    }
    return n;
}

SL_TEST(interleave, order_d3_doc_example)
{
    /* Blocks A, B (k'=4, m'=2) and C early-closed (k'=1, m'=1), D = 3:
     * A0 B0 C0 A1 B1 C1 A2 B2 A3 B3 A4 B4 A5 B5 */
    struct sl_fec_block b[3] = { { .k = 4, .m = 2 }, { .k = 4, .m = 2 }, { .k = 1, .m = 1 } };
    struct sl_fec_interleaver *il = make_il(3, 6, 1000);
    CU_ASSERT_FATAL(il != NULL);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(sl_fec_interleave_push(il, &b[i], 0), SL_OK);
    struct sl_fec_block *got[32];
    uint8_t idx[32];
    bool last[32];
    unsigned n = drain(il, got, idx, last, 32);
    const char *want_b = "ABCABCABABABAB";
    const uint8_t want_i[] = { 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5 };
    CU_ASSERT_EQUAL_FATAL(n, 14);
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_PTR_EQUAL(got[i], &b[want_b[i] - 'A']);
        CU_ASSERT_EQUAL(idx[i], want_i[i]);
        CU_ASSERT_EQUAL(last[i], idx[i] + 1u == (unsigned)got[i]->k + got[i]->m);
    }
    CU_ASSERT_EQUAL(sl_fec_interleave_queued(il), 0);
    sl_fec_interleaver_destroy(il);
}

/* In any group, consecutive symbols of block b are at least c_b frames
 * apart (c_b = blocks in the group with at least as many symbols as b),
 * which is the burst guarantee: L lost frames cost b at most ceil(L/c_b). */
SL_TEST(interleave, spacing_guarantee_mixed_sizes)
{
    uint64_t rng = 0x5eed0101;
    struct sl_fec_block b[16];
    struct sl_fec_block *got[16 * 255];
    uint8_t idx[16 * 255];
    bool last[16 * 255];
    unsigned bad = 0;
    for (unsigned t = 0; t < 200; t++) {
        unsigned d = tu_range(&rng, 1, 16);
        unsigned g = tu_range(&rng, 1, d);   /* flushed early when g < d */
        struct sl_fec_interleaver *il = make_il(d, d, 0);
        CU_ASSERT_FATAL(il != NULL);
        for (unsigned i = 0; i < g; i++) {
            unsigned k = tu_range(&rng, 1, 60);
            b[i] = (struct sl_fec_block){ .k = (uint8_t)k, .m = (uint8_t)sl_fec_repair_count(60, 12, k) };
            CU_ASSERT_EQUAL(sl_fec_interleave_push(il, &b[i], 0), SL_OK);
        }
        sl_fec_interleave_flush(il);
        unsigned n = drain(il, got, idx, last, 16 * 255);
        unsigned total = 0;
        for (unsigned i = 0; i < g; i++)
            total += (unsigned)b[i].k + b[i].m;
        bad += n != total;
        for (unsigned i = 0; i < g; i++) {
            unsigned ni = (unsigned)b[i].k + b[i].m, c = 0;
            for (unsigned j = 0; j < g; j++)
                c += (unsigned)b[j].k + b[j].m >= ni;
            unsigned prev = 0, seen = 0;
            for (unsigned p = 0; p < n; p++) {
                if (got[p] != &b[i])
                    continue;
                bad += idx[p] != seen;          /* each block's symbols in index order */
                if (seen && p - prev < c)
                    bad++;
                prev = p;
                seen++;
            }
            bad += seen != ni;
        }
        sl_fec_interleaver_destroy(il);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* End to end: groups of D encoded blocks through the interleaver; every
 * burst of D*m consecutive frames, at every offset, is fully recovered. */
#define BK 8
#define BM 2
#define BD 4
#define BGROUPS 3
#define BBLOCKS (BD * BGROUPS)
#define BFRAMES (BBLOCKS * (BK + BM))

struct stream {
    struct sl_fec_block blk[BBLOCKS];
    uint8_t mem[BBLOCKS][(BK + BM) * 64];
    struct sl_fec_block *fb[BFRAMES];
    uint8_t fi[BFRAMES];
    unsigned nframes;
};

static void build_stream(struct stream *st, unsigned group)
{
    uint64_t rng = 0x5eed0102;
    struct sl_fec_encoder *enc = NULL;
    struct sl_fec_interleaver *il = make_il(BD, 2 * BD, 0);
    CU_ASSERT_FATAL(il != NULL && sl_fec_encoder_create(&enc, BK, BM, 64) == SL_OK);
    uint8_t in[BK * 64];
    st->nframes = 0;
    bool last[BFRAMES];
    for (unsigned i = 0; i < BBLOCKS; i++) {
        tu_fill(&rng, in, sizeof in);
        st->blk[i] = (struct sl_fec_block){ .sym = st->mem[i], .cap = sizeof st->mem[i], .seq = i };
        CU_ASSERT_FATAL(sl_fec_encode(enc, &st->blk[i], in, sizeof in) == SL_OK);
        CU_ASSERT_EQUAL(sl_fec_interleave_push(il, &st->blk[i], 0), SL_OK);
        if ((i + 1) % group == 0)
            sl_fec_interleave_flush(il);
        st->nframes += drain(il, st->fb + st->nframes, st->fi + st->nframes, last + st->nframes,
                             BFRAMES - st->nframes);
    }
    sl_fec_interleave_flush(il);
    st->nframes += drain(il, st->fb + st->nframes, st->fi + st->nframes, last + st->nframes,
                         BFRAMES - st->nframes);
    CU_ASSERT_EQUAL(st->nframes, BFRAMES);
    sl_fec_interleaver_destroy(il);
    sl_fec_encoder_destroy(enc);
}

/* Feeds the stream minus frames [start, start+len) to a fresh session of
 * dec; returns blocks decoded correctly. */
static unsigned run_burst(struct sl_fec_decoder *dec, const struct stream *st, uint64_t session,
                          unsigned start, unsigned len)
{
    unsigned good = 0;
    for (unsigned f = 0; f < st->nframes; f++) {
        if (f >= start && f < start + len)
            continue;
        const struct sl_fec_block *b = st->fb[f];
        struct sl_fec_symbol sym = { .session = session, .block_seq = b->seq, .k = b->k, .m = b->m,
                                     .index = st->fi[f], .symbol_size = 64,
                                     .data = b->sym + st->fi[f] * 64 };
        struct sl_fec_decoded out;
        if (sl_fec_decode(dec, &out, &sym, 0) == SL_OK && memcmp(out.data, b->sym, out.len) == 0)
            good++;
    }
    return good;
}

SL_TEST(interleave, burst_of_d_times_m_recovered)
{
    static struct stream st;
    build_stream(&st, BD);
    struct sl_fec_decoder *dec = tu_decoder(BK, BM, 64, 2 * BD, 16);
    CU_ASSERT_FATAL(dec != NULL);
    unsigned bad = 0;
    uint64_t session = 1;
    for (unsigned start = 0; start + BD * BM <= st.nframes; start++)
        bad += run_burst(dec, &st, session++, start, BD * BM) != BBLOCKS;
    CU_ASSERT_EQUAL(bad, 0);
    /* one more frame: the burst from the group's first frame takes m+1
     * symbols of its first block */
    CU_ASSERT_EQUAL(run_burst(dec, &st, session++, 0, BD * BM + 1), BBLOCKS - 1);
    sl_fec_decoder_destroy(dec);
}

SL_TEST(interleave, early_flushed_groups_guarantee_c_times_m)
{
    /* flushed every 2 blocks: c_b = 2, so bursts of 2*m are recovered */
    static struct stream st;
    build_stream(&st, 2);
    struct sl_fec_decoder *dec = tu_decoder(BK, BM, 64, 2 * BD, 16);
    unsigned bad = 0;
    uint64_t session = 1;
    for (unsigned start = 0; start + 2 * BM <= st.nframes; start++)
        bad += run_burst(dec, &st, session++, start, 2 * BM) != BBLOCKS;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(run_burst(dec, &st, session++, 0, 2 * BM + 1), BBLOCKS - 1);
    sl_fec_decoder_destroy(dec);
}

SL_TEST(interleave, latency_flush_deadline_capacity)
{
    struct sl_fec_pool *pool = NULL;
    CU_ASSERT_FATAL(sl_fec_pool_create(&pool, 8, 4, 2, 64) == SL_OK);
    struct sl_fec_interleaver *il = make_il(3, 4, 500);
    CU_ASSERT_FATAL(il != NULL);
    struct sl_fec_emit e;
    uint64_t dl = 1;
    CU_ASSERT_EQUAL(sl_fec_interleave_deadline(il, &dl), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(dl, 0);
    struct sl_fec_block *a = sl_fec_pool_get(pool);
    a->k = 1;
    a->m = 1;
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, a, 100), SL_OK);
    CU_ASSERT_EQUAL(sl_fec_interleave_next(il, &e), SL_ERR_AGAIN);
    CU_ASSERT_PTR_NULL(e.block);
    CU_ASSERT_EQUAL(sl_fec_interleave_deadline(il, &dl), SL_OK);
    CU_ASSERT_EQUAL(dl, 600);
    sl_fec_interleave_tick(il, 599);
    CU_ASSERT_EQUAL(sl_fec_interleave_next(il, &e), SL_ERR_AGAIN);
    sl_fec_interleave_tick(il, 600);
    CU_ASSERT_EQUAL(sl_fec_interleave_deadline(il, &dl), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_fec_interleave_next(il, &e), SL_OK);
    CU_ASSERT(e.block == a && e.index == 0 && !e.last);
    /* a block pushed while a group drains opens the next group */
    struct sl_fec_block *bl[4];
    for (int i = 0; i < 4; i++) {
        bl[i] = sl_fec_pool_get(pool);
        bl[i]->k = 2;
        bl[i]->m = 1;
    }
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, bl[0], 700), SL_OK);
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, bl[1], 710), SL_OK);
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, bl[2], 720), SL_OK);   /* seals at D */
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, bl[3], 730), SL_ERR_TABLE_FULL);
    CU_ASSERT_EQUAL(sl_fec_interleave_queued(il), 4);
    CU_ASSERT_EQUAL(sl_fec_interleave_next(il, &e), SL_OK);
    CU_ASSERT(e.block == a && e.index == 1 && e.last);
    sl_fec_pool_put(pool, e.block);
    CU_ASSERT_EQUAL(sl_fec_interleave_queued(il), 3);
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, bl[3], 730), SL_OK);   /* room again */
    unsigned sent = 0;
    while (sl_fec_interleave_next(il, &e) == SL_OK) {
        sent++;
        if (e.last)
            sl_fec_pool_put(pool, e.block);
    }
    CU_ASSERT_EQUAL(sent, 9);   /* bl[0..2]; bl[3] waits in the open group */
    CU_ASSERT_EQUAL(sl_fec_pool_available(pool), 8 - 1);
    CU_ASSERT_EQUAL(sl_fec_interleave_deadline(il, &dl), SL_OK);
    CU_ASSERT_EQUAL(dl, 1230);
    sl_fec_interleave_flush(il);
    while (sl_fec_interleave_next(il, &e) == SL_OK)
        if (e.last)
            sl_fec_pool_put(pool, e.block);
    CU_ASSERT_EQUAL(sl_fec_pool_available(pool), 8);
    CU_ASSERT_EQUAL(sl_fec_interleave_queued(il), 0);
    struct sl_fec_block empty = { 0 };
    CU_ASSERT_EQUAL(sl_fec_interleave_push(il, &empty, 0), SL_ERR_RANGE);
    sl_fec_interleaver_destroy(il);
    sl_fec_pool_destroy(pool);
    struct sl_fec_interleaver *x = NULL;
    CU_ASSERT_EQUAL(sl_fec_interleaver_create(&x, 0, 4, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fec_interleaver_create(&x, 4, 3, 0), SL_ERR_RANGE);
    CU_ASSERT_PTR_NULL(x);
}
