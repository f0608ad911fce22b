/* Cross-block interleaver: blocks queue in a ring, consecutive blocks form
 * groups of up to D, and each sealed group is emitted round-robin (symbol r
 * of every block, in push order, then r + 1). Spreading a block's symbols D
 * frames apart is what turns a burst of D * m lost frames into at most m
 * losses per block. Groups drain strictly in order; the open group fills
 * meanwhile. */
#include <stdlib.h>
#include <string.h>

#include "sl_fec.h"

struct sl_fec_interleaver {
    unsigned depth;
    unsigned cap;
    uint64_t max_delay_us;
    struct sl_fec_block **ring;  /* cap slots, queued blocks from head */
    uint8_t *nsym;               /* k' + m' per slot, copied at push so a block
                                    released after its last symbol is never read */
    unsigned *gsize;             /* ring of sealed group sizes, cap slots */
    unsigned head;               /* slot of the first block of the oldest group */
    unsigned count;              /* blocks queued */
    unsigned sealed;             /* blocks in sealed groups (the first ones) */
    unsigned ghead;              /* slot in gsize of the draining group */
    unsigned gcount;             /* sealed groups */
    uint64_t open_since_us;      /* push time of the open group's first block */
    /* progress through the draining group */
    unsigned round;
    unsigned pos;
    unsigned left;               /* symbols still to emit; 0 = not started */
};

sl_err sl_fec_interleaver_create(struct sl_fec_interleaver **out, unsigned depth, unsigned capacity,
                                 uint64_t max_delay_us)
{
    *out = NULL;
    if (depth == 0 || depth > SL_FEC_SYMBOLS_MAX || capacity < depth || capacity > 65536)
        return SL_ERR_RANGE;
    struct sl_fec_interleaver *il = calloc(1, sizeof *il);
    if (!il)
        return SL_ERR_NOMEM;
    il->depth = depth;
    il->cap = capacity;
    il->max_delay_us = max_delay_us;
    il->ring = calloc(capacity, sizeof *il->ring);
    il->nsym = calloc(capacity, sizeof *il->nsym);
    il->gsize = calloc(capacity, sizeof *il->gsize);
    if (!il->ring || !il->nsym || !il->gsize) {
        sl_fec_interleaver_destroy(il);
        return SL_ERR_NOMEM;
    }
    *out = il;
    return SL_OK;
}

void sl_fec_interleaver_destroy(struct sl_fec_interleaver *il)
{
    if (!il)
        return;
    free(il->ring);
    free(il->nsym);
    free(il->gsize);
    free(il);
}

static void seal(struct sl_fec_interleaver *il)
{
    unsigned g = il->count - il->sealed;
    if (g == 0)
        return;
    il->gsize[(il->ghead + il->gcount) % il->cap] = g;
    il->gcount++;
    il->sealed = il->count;
}

sl_err sl_fec_interleave_push(struct sl_fec_interleaver *il, struct sl_fec_block *blk, uint64_t now_us)
{
    unsigned n = (unsigned)blk->k + blk->m;
    if (n == 0 || n > SL_FEC_SYMBOLS_MAX)
        return SL_ERR_RANGE;
    if (il->count == il->cap)
        return SL_ERR_TABLE_FULL;
    unsigned slot = (il->head + il->count) % il->cap;
    il->ring[slot] = blk;
    il->nsym[slot] = (uint8_t)n;
    if (il->count == il->sealed)
        il->open_since_us = now_us;
    il->count++;
    if (il->count - il->sealed >= il->depth)
        seal(il);
    return SL_OK;
}

void sl_fec_interleave_flush(struct sl_fec_interleaver *il)
{
    seal(il);
}

void sl_fec_interleave_tick(struct sl_fec_interleaver *il, uint64_t now_us)
{
    /* now_us < open_since_us (a clock step back) seals too: better early
     * than a group stuck until the clock catches up. */
    if (il->count > il->sealed &&
        (now_us < il->open_since_us || now_us - il->open_since_us >= il->max_delay_us))
        seal(il);
}

sl_err sl_fec_interleave_deadline(const struct sl_fec_interleaver *il, uint64_t *out_us)
{
    *out_us = 0;
    if (il->count == il->sealed)
        return SL_ERR_NOT_FOUND;
    *out_us = il->open_since_us + il->max_delay_us;
    return SL_OK;
}

sl_err sl_fec_interleave_next(struct sl_fec_interleaver *il, struct sl_fec_emit *out)
{
    memset(out, 0, sizeof *out);
    if (il->gcount == 0)
        return SL_ERR_AGAIN;
    unsigned g = il->gsize[il->ghead];
    if (il->left == 0) {
        for (unsigned i = 0; i < g; i++)
            il->left += il->nsym[(il->head + i) % il->cap];
        il->round = 0;
        il->pos = 0;
    }
    /* left > 0 guarantees a block with more than round symbols remains, so
     * this terminates within one pass over the rounds still pending. */
    for (;;) {
        if (il->pos == g) {
            il->pos = 0;
            il->round++;
        }
        unsigned slot = (il->head + il->pos) % il->cap;
        il->pos++;
        if (il->round < il->nsym[slot]) {
            out->block = il->ring[slot];
            out->index = (uint8_t)il->round;
            out->last = il->round + 1 == il->nsym[slot];
            if (out->last)
                il->ring[slot] = NULL;
            break;
        }
    }
    if (--il->left == 0) {
        il->head = (il->head + g) % il->cap;
        il->count -= g;
        il->sealed -= g;
        il->ghead = (il->ghead + 1) % il->cap;
        il->gcount--;
    }
    return SL_OK;
}

unsigned sl_fec_interleave_queued(const struct sl_fec_interleaver *il)
{
    return il->count;
}
