/* Helpers shared by the FEC tests: a seeded PRNG, a reference encoder
 * written from docs/protocol-fec.md with its own GF(2^8) arithmetic (not
 * ISA-L's), and a driver that feeds an encoded block to the decoder with a
 * chosen set of symbols lost, in shuffled order. */
#ifndef FEC_TESTUTIL_H
#define FEC_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_fec.h"

uint64_t tu_rand(uint64_t *state);
/* Uniform in [lo, hi]. */
unsigned tu_range(uint64_t *state, unsigned lo, unsigned hi);
void tu_fill(uint64_t *state, uint8_t *p, size_t n);

/* GF(2^8) with polynomial 0x11D, from log/exp tables built here. */
uint8_t tu_gf_mul(uint8_t a, uint8_t b);
uint8_t tu_gf_inv(uint8_t a);

/* Repair symbol r (0-based) of a block with kb data symbols at data. */
void tu_ref_repair(uint8_t *out, const uint8_t *data, unsigned kb, unsigned r, size_t s);

/* Feeds blk's symbols except those with bit i set in lost (256-bit mask),
 * in an order shuffled by *rng, as block (session, seq) at now_us, and
 * marks a correct result done (as RX does once it verified). Returns
 * true if a block came out; *ok is set when it matched blk's data exactly
 * and only one result came out. */
bool tu_feed(struct sl_fec_decoder *dec, const struct sl_fec_block *blk, const uint64_t *lost,
             uint64_t session, uint64_t seq, uint64_t now_us, uint64_t *rng, bool *ok);

struct sl_fec_decoder *tu_decoder(unsigned k_max, unsigned m_max, unsigned symbol_max,
                                  unsigned entries, unsigned cache);

#endif
