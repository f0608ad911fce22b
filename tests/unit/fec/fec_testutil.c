#include "fec_testutil.h"

#include <stdlib.h>
#include <string.h>

uint64_t tu_rand(uint64_t *state)
{
    /* xorshift64*: deterministic across platforms for a given seed */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

unsigned tu_range(uint64_t *state, unsigned lo, unsigned hi)
{
    return lo + (unsigned)(tu_rand(state) % ((uint64_t)hi - lo + 1));
}

void tu_fill(uint64_t *state, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(tu_rand(state) >> 56);
}

static uint8_t gexp[512];
static uint8_t glog[256];
static bool gready;

static void gf_setup(void)
{
    if (gready)
        return;
    unsigned x = 1;
    for (unsigned i = 0; i < 255; i++) {
        gexp[i] = (uint8_t)x;
        glog[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100)
            x ^= 0x11D;
    }
    for (unsigned i = 255; i < 512; i++)
        gexp[i] = gexp[i - 255];
    gready = true;
}

uint8_t tu_gf_mul(uint8_t a, uint8_t b)
{
    gf_setup();
    if (!a || !b)
        return 0;
    return gexp[glog[a] + glog[b]];
}

uint8_t tu_gf_inv(uint8_t a)
{
    gf_setup();
    return a ? gexp[255 - glog[a]] : 0;
}

void tu_ref_repair(uint8_t *out, const uint8_t *data, unsigned kb, unsigned r, size_t s)
{
    memset(out, 0, s);
    for (unsigned j = 0; j < kb; j++) {
        uint8_t c = tu_gf_inv((uint8_t)((kb + r) ^ j));
        for (size_t b = 0; b < s; b++)
            out[b] ^= tu_gf_mul(c, data[j * s + b]);
    }
}

bool tu_feed(struct sl_fec_decoder *dec, const struct sl_fec_block *blk, const uint64_t *lost,
             uint64_t session, uint64_t seq, uint64_t now_us, uint64_t *rng, bool *ok)
{
    unsigned n = (unsigned)blk->k + blk->m;
    uint8_t order[256];
    for (unsigned i = 0; i < n; i++)
        order[i] = (uint8_t)i;
    for (unsigned i = n; i > 1; i--) {
        unsigned j = (unsigned)(tu_rand(rng) % i);
        uint8_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    unsigned outputs = 0;
    bool match = false;
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = order[i];
        if (lost && ((lost[idx >> 6] >> (idx & 63)) & 1u))
            continue;
        struct sl_fec_symbol sym = {
            .session = session, .block_seq = seq, .channel = blk->channel,
            .k = blk->k, .m = blk->m, .index = (uint8_t)idx,
            .symbol_size = blk->symbol_size,
            .data = blk->sym + (size_t)idx * blk->symbol_size,
        };
        struct sl_fec_decoded out;
        sl_err e = sl_fec_decode(dec, &out, &sym, now_us);
        if (e == SL_OK) {
            outputs++;
            match = out.len == (size_t)blk->k * blk->symbol_size && out.k == blk->k &&
                    out.m == blk->m && out.block_seq == seq && out.session == session &&
                    memcmp(out.data, blk->sym, out.len) == 0;
            /* Plays RX's verifier: a genuine block is confirmed done, so
             * its remaining symbols are late instead of a new block. */
            if (match)
                sl_fec_decoder_done(dec, &out);
        }
    }
    *ok = outputs == 1 && match;
    return outputs > 0;
}

struct sl_fec_decoder *tu_decoder(unsigned k_max, unsigned m_max, unsigned symbol_max,
                                  unsigned entries, unsigned cache)
{
    struct sl_fec_decoder_config cfg = {
        .k_max = k_max, .m_max = m_max, .symbol_max = symbol_max, .entries = entries,
        .done_history = 4 * entries, .cache_entries = cache, .max_age_us = 1000000,
    };
    struct sl_fec_decoder *d = NULL;
    if (sl_fec_decoder_create(&d, &cfg) != SL_OK)
        return NULL;
    return d;
}
