/* Encoder side: the repair-count rule, the code's coefficients, the block
 * pool and the encoder with its precomputed ISA-L tables. */
#include <isa-l/erasure_code.h>
#include <stdlib.h>
#include <string.h>

#include "sl_fec.h"

unsigned sl_fec_repair_count(unsigned k, unsigned m, unsigned kb)
{
    if (k == 0 || m == 0 || kb == 0 || kb > k || k + m > SL_FEC_SYMBOLS_MAX)
        return 0;
    unsigned mb = (m * kb + k - 1) / k;   /* ceil(m * kb / k), no overflow: <= 255*255 */
    /* Proportional repair leaves small blocks (latency-closed tag blocks of
     * a few symbols) far weaker than full ones: k'=2, m'=1 dies at 5 % loss
     * one time in 140. So a block also gets min(m, k' + 1) repair symbols:
     * it survives losing more than half its frames, as a full block does
     * far more often than the loss rate allows. */
    unsigned floor_mb = kb + 1 < m ? kb + 1 : m;
    return mb > floor_mb ? mb : floor_mb;
}

uint8_t sl_fec_coefficient(unsigned kb, unsigned r, unsigned j)
{
    /* x = kb + r (repair row) and y = j (column) are distinct field elements
     * as long as kb + r <= 255 and j < kb, so x ^ y != 0 is invertible. */
    if (kb == 0 || j >= kb || kb + r > SL_FEC_SYMBOLS_MAX)
        return 0;
    return gf_inv((unsigned char)((kb + r) ^ j));
}

/* ---- pool ---------------------------------------------------------------- */

struct sl_fec_pool {
    struct sl_fec_block *blocks;
    struct sl_fec_block **free;   /* stack of free blocks */
    bool *taken;                  /* per block: handed out, not yet put back */
    uint8_t *mem;
    unsigned count;
    unsigned nfree;
    size_t block_bytes;
};

sl_err sl_fec_pool_create(struct sl_fec_pool **out, unsigned count, unsigned k, unsigned m,
                          size_t symbol_size)
{
    *out = NULL;
    if (count == 0 || k == 0 || m == 0 || k + m > SL_FEC_SYMBOLS_MAX ||
        symbol_size < SL_FEC_SYMBOL_MIN || symbol_size > SL_FEC_SYMBOL_MAX)
        return SL_ERR_RANGE;
    struct sl_fec_pool *p = calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->count = count;
    p->block_bytes = (size_t)(k + m) * symbol_size;
    p->blocks = calloc(count, sizeof *p->blocks);
    p->free = calloc(count, sizeof *p->free);
    p->taken = calloc(count, sizeof *p->taken);
    p->mem = malloc(p->block_bytes * count);
    if (!p->blocks || !p->free || !p->taken || !p->mem) {
        sl_fec_pool_destroy(p);
        return SL_ERR_NOMEM;
    }
    for (unsigned i = 0; i < count; i++) {
        p->blocks[i].sym = p->mem + (size_t)i * p->block_bytes;
        p->blocks[i].cap = p->block_bytes;
        p->free[i] = &p->blocks[count - 1 - i];
    }
    p->nfree = count;
    *out = p;
    return SL_OK;
}

void sl_fec_pool_destroy(struct sl_fec_pool *pool)
{
    if (!pool)
        return;
    free(pool->mem);
    free(pool->free);
    free(pool->taken);
    free(pool->blocks);
    free(pool);
}

struct sl_fec_block *sl_fec_pool_get(struct sl_fec_pool *pool)
{
    if (pool->nfree == 0)
        return NULL;
    struct sl_fec_block *b = pool->free[--pool->nfree];
    pool->taken[b - pool->blocks] = true;
    uint8_t *sym = b->sym;
    size_t cap = b->cap;
    memset(b, 0, sizeof *b);
    b->sym = sym;
    b->cap = cap;
    return b;
}

void sl_fec_pool_put(struct sl_fec_pool *pool, struct sl_fec_block *blk)
{
    /* Only blocks of this pool that are out: a foreign or doubly returned
     * block would corrupt the free stack, so it is ignored. */
    if (!blk || blk < pool->blocks || blk >= pool->blocks + pool->count || !pool->taken[blk - pool->blocks])
        return;
    pool->taken[blk - pool->blocks] = false;
    pool->free[pool->nfree++] = blk;
}

unsigned sl_fec_pool_available(const struct sl_fec_pool *pool)
{
    return pool->nfree;
}

/* ---- encoder --------------------------------------------------------------- */

struct sl_fec_encoder {
    unsigned k, m;
    size_t symbol_size;
    uint8_t mb[SL_FEC_SYMBOLS_MAX + 1];      /* m' for each k' */
    size_t tbl_off[SL_FEC_SYMBOLS_MAX + 1];  /* offset of k' tables in tbls */
    uint8_t *tbls;                           /* 32 * k' * m' bytes per k' */
};

sl_err sl_fec_encoder_create(struct sl_fec_encoder **out, unsigned k, unsigned m, size_t symbol_size)
{
    *out = NULL;
    if (k == 0 || m == 0 || k + m > SL_FEC_SYMBOLS_MAX || symbol_size < SL_FEC_SYMBOL_MIN ||
        symbol_size > SL_FEC_SYMBOL_MAX)
        return SL_ERR_RANGE;
    struct sl_fec_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return SL_ERR_NOMEM;
    e->k = k;
    e->m = m;
    e->symbol_size = symbol_size;
    size_t total = 0;
    for (unsigned kb = 1; kb <= k; kb++) {
        e->mb[kb] = (uint8_t)sl_fec_repair_count(k, m, kb);
        e->tbl_off[kb] = total;
        total += (size_t)32 * kb * e->mb[kb];
    }
    e->tbls = malloc(total);
    /* Scratch for the full (k'+m') x k' generator; only its repair rows
     * (from row k') feed the tables. */
    uint8_t *gen = malloc((size_t)SL_FEC_SYMBOLS_MAX * SL_FEC_SYMBOLS_MAX);
    if (!e->tbls || !gen) {
        free(gen);
        sl_fec_encoder_destroy(e);
        return SL_ERR_NOMEM;
    }
    for (unsigned kb = 1; kb <= k; kb++) {
        unsigned mb = e->mb[kb];
        gf_gen_cauchy1_matrix(gen, (int)(kb + mb), (int)kb);
        ec_init_tables((int)kb, (int)mb, gen + (size_t)kb * kb, e->tbls + e->tbl_off[kb]);
    }
    free(gen);
    *out = e;
    return SL_OK;
}

void sl_fec_encoder_destroy(struct sl_fec_encoder *enc)
{
    if (!enc)
        return;
    free(enc->tbls);
    free(enc);
}

size_t sl_fec_encoded_bytes(const struct sl_fec_encoder *enc, size_t len)
{
    if (len == 0 || len > enc->k * enc->symbol_size)
        return 0;
    size_t kb = (len + enc->symbol_size - 1) / enc->symbol_size;
    return (kb + enc->mb[kb]) * enc->symbol_size;
}

sl_err sl_fec_encode(const struct sl_fec_encoder *enc, struct sl_fec_block *blk, const void *data,
                     size_t len)
{
    size_t need = sl_fec_encoded_bytes(enc, len);
    if (need == 0)
        return SL_ERR_RANGE;
    if (!blk->sym || blk->cap < need)
        return SL_ERR_OVERFLOW;
    size_t s = enc->symbol_size;
    unsigned kb = (unsigned)((len + s - 1) / s);
    unsigned mb = enc->mb[kb];
    if (data != blk->sym)
        memcpy(blk->sym, data, len);
    memset(blk->sym + len, 0, kb * s - len);

    unsigned char *src[SL_FEC_SYMBOLS_MAX];
    unsigned char *dst[SL_FEC_SYMBOLS_MAX];
    for (unsigned i = 0; i < kb; i++)
        src[i] = blk->sym + i * s;
    for (unsigned i = 0; i < mb; i++)
        dst[i] = blk->sym + (kb + i) * s;
    ec_encode_data((int)s, (int)kb, (int)mb, enc->tbls + enc->tbl_off[kb], src, dst);

    blk->len = (uint32_t)len;
    blk->symbol_size = (uint16_t)s;
    blk->k = (uint8_t)kb;
    blk->m = (uint8_t)mb;
    return SL_OK;
}
