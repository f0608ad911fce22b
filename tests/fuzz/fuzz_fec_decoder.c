/* Feeds the FEC decoder arbitrary symbol sequences and checks every block it
 * returns against what it was given: the data symbols it received must
 * appear unchanged in the output and every repair symbol it received must
 * equal the repair symbol recomputed from the output (any k' symbols of an
 * MDS code determine one codeword, so a decoder that returns anything else
 * is wrong).
 *
 * Input: 4 config bytes (k_max, m_max, entries, cache), then records of
 *   id u8     block id: bits 0-2 block_seq, bit 3 session, bit 4 channel
 *   k u8, m u8, index u8
 *   ctl u8    bits 0-1 symbol size (64, 65, 100, 128), bit 2 tick after,
 *             bits 3-7 time step in ms
 *   S bytes   symbol (zero-filled when the input runs out)
 */
#include <isa-l/erasure_code.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_fec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IDS 32
#define SMAX 128u
#define NSYM 24u   /* k_max 16 + m_max 8 */

struct shadow {
    bool live;       /* holds the symbols accepted since the block opened */
    bool trusted;    /* no eviction happened meanwhile (entry may have been reset) */
    uint8_t k, m;
    uint16_t s;
    uint32_t have;   /* bit i: symbol i accepted */
    uint8_t sym[NSYM][SMAX];
};

static struct shadow sh[IDS];

static void check(const struct shadow *x, const struct sl_fec_decoded *out)
{
    if (!out->data || out->len != (size_t)x->k * x->s || out->k != x->k || out->m != x->m)
        __builtin_trap();
    uint8_t rep[SMAX];
    for (unsigned i = 0; i < (unsigned)x->k + x->m; i++) {
        if (!((x->have >> i) & 1u))
            continue;
        const uint8_t *want = x->sym[i];
        if (i < x->k) {
            if (memcmp(out->data + i * x->s, want, x->s) != 0)
                __builtin_trap();
            continue;
        }
        memset(rep, 0, x->s);
        for (unsigned j = 0; j < x->k; j++) {
            uint8_t c = sl_fec_coefficient(x->k, i - x->k, j);
            for (unsigned b = 0; b < x->s; b++)
                rep[b] ^= gf_mul(c, out->data[j * x->s + b]);
        }
        if (memcmp(rep, want, x->s) != 0)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct sl_fec_decoder_config cfg = {
        .k_max = data[0] % 16 + 1u,
        .m_max = data[1] % 8 + 1u,
        .symbol_max = SMAX,
        .entries = data[2] % 4 + 1u,
        .done_history = data[2] % 4 + 1u,
        .cache_entries = data[3] % 3 + 1u,
        .max_age_us = 20000,
    };
    struct sl_fec_decoder *dec = NULL;
    if (sl_fec_decoder_create(&dec, &cfg) != SL_OK)
        __builtin_trap();
    memset(sh, 0, sizeof sh);
    static const uint16_t sizes[4] = { 64, 65, 100, 128 };
    uint8_t buf[SMAX];
    uint64_t now = 0;
    size_t off = 4;
    uint64_t lost_before = 0;
    while (size - off >= 5) {
        const uint8_t *h = data + off;
        off += 5;
        uint16_t s = sizes[h[4] & 3];
        size_t take = size - off < s ? size - off : s;
        memset(buf, 0, sizeof buf);
        memcpy(buf, data + off, take);
        off += take;
        unsigned id = h[0] % IDS;
        struct sl_fec_symbol sym = {
            .session = (id >> 3) & 1u, .block_seq = id & 7u, .channel = (uint16_t)((id >> 4) & 1u),
            .k = h[1], .m = h[2], .index = h[3], .symbol_size = s, .data = buf,
        };
        struct sl_fec_decoded out;
        sl_err e = sl_fec_decode(dec, &out, &sym, now);
        struct shadow *x = &sh[id];
        if (e == SL_OK || e == SL_ERR_AGAIN) {
            if (!x->live || x->k != sym.k || x->m != sym.m || x->s != s || ((x->have >> sym.index) & 1u)) {
                /* The decoder opened a new block (first symbol, or after an
                 * eviction we could not see): start a fresh shadow. */
                *x = (struct shadow){ .live = true, .trusted = x->live ? false : true,
                                      .k = sym.k, .m = sym.m, .s = s };
            }
            x->have |= 1u << sym.index;
            memcpy(x->sym[sym.index], buf, s);
        } else if (e == SL_ERR_DUPLICATE && x->live && x->k == sym.k && x->m == sym.m && x->s == s &&
                   ((x->have >> sym.index) & 1u) && memcmp(x->sym[sym.index], buf, s) != 0) {
            /* A second, different symbol for a held index: the decoder
             * erases the index (one of the two is forged and nothing says
             * which) and decodes from the others, so neither binds it. */
            x->have &= ~(1u << sym.index);
        }
        if (e == SL_OK) {
            if (x->trusted)
                check(x, &out);
            x->live = false;
        } else if (out.data || out.len) {
            __builtin_trap();   /* out must be zeroed unless SL_OK */
        }
        now += (uint64_t)(h[4] >> 3) * 1000u;
        if (h[4] & 4)
            (void)sl_fec_decoder_tick(dec, now);
        /* Evictions and expiries are invisible per id: distrust every open
         * shadow, since its block may have been dropped and reopened. */
        struct sl_fec_counters c;
        sl_fec_decoder_counters(dec, &c);
        if (c.evicted + c.unrecoverable != lost_before) {
            lost_before = c.evicted + c.unrecoverable;
            for (unsigned i = 0; i < IDS; i++)
                sh[i].trusted = false;
        }
        if (sl_fec_decoder_pending(dec) > cfg.entries)
            __builtin_trap();
    }
    sl_fec_decoder_destroy(dec);
    return 0;
}
