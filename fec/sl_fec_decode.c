/* Receive side: a bounded table of partial blocks, decode on the k'-th
 * distinct symbol, a history of finished block ids so stragglers do not
 * reopen a block, and an LRU cache of decode tables keyed by which symbols
 * were used (steady random loss repeats the same patterns).
 *
 * Decoding inverts only the lost part. With P the present data symbols, M
 * the missing ones and R the repair symbols received (|R| = |M| = n when k'
 * symbols are held), each repair symbol is y_r = C[r][P] d_P + C[r][M] d_M,
 * so d_M = C[R][M]^-1 y_R + C[R][M]^-1 C[R][P] d_P: an n x n inversion and
 * n x n x (k'-n) multiplies instead of a k' x k' inversion. */
#include <isa-l/erasure_code.h>
#include <stdlib.h>
#include <string.h>

#include "sl_fec.h"

#define NMAX SL_FEC_SYMBOLS_MAX

struct entry {
    uint64_t session;
    uint64_t seq;
    uint64_t order;       /* creation counter: smallest = oldest */
    uint64_t first_us;    /* arrival of the first symbol */
    uint64_t present[4];  /* bit i: symbol index i held */
    uint16_t channel;
    uint16_t symbol_size;
    uint8_t k, m;
    uint8_t have;         /* distinct symbols held */
    uint8_t have_data;    /* of which data symbols */
    bool used;
    uint8_t *mem;         /* symbol i at mem + i * symbol_size */
};

struct done_id {
    uint64_t session;
    uint64_t seq;
    uint16_t channel;
    bool used;
};

struct cache_entry {
    uint64_t used_mask[4];  /* the k' symbols the tables combine */
    uint64_t stamp;         /* last use, for LRU */
    uint8_t k, m, n;        /* n = missing data symbols = rows */
    bool valid;
    uint8_t *tbls;          /* 32 * k' * n bytes */
};

struct sl_fec_decoder {
    struct sl_fec_decoder_config cfg;
    struct entry *entries;
    uint8_t *mem;
    struct done_id *done;
    unsigned done_next;
    struct cache_entry *cache;
    uint8_t *cache_mem;
    uint64_t order;
    uint64_t stamp;
    unsigned pending;
    struct sl_fec_counters c;
    /* scratch for a cache miss, sized for the largest code */
    uint8_t crm[NMAX * NMAX];
    uint8_t inv[NMAX * NMAX];
    uint8_t crp[NMAX * NMAX];
    uint8_t dm[NMAX * NMAX];
};

static bool bit_get(const uint64_t *mask, unsigned i) { return (mask[i >> 6] >> (i & 63)) & 1u; }
static void bit_set(uint64_t *mask, unsigned i) { mask[i >> 6] |= (uint64_t)1 << (i & 63); }

sl_err sl_fec_decoder_create(struct sl_fec_decoder **out, const struct sl_fec_decoder_config *cfg)
{
    *out = NULL;
    if (cfg->k_max == 0 || cfg->m_max == 0 || cfg->k_max + cfg->m_max > NMAX ||
        cfg->symbol_max < SL_FEC_SYMBOL_MIN || cfg->symbol_max > SL_FEC_SYMBOL_MAX ||
        cfg->entries == 0 || cfg->entries > 65536 || cfg->done_history == 0 ||
        cfg->done_history > 1048576 || cfg->cache_entries == 0 || cfg->cache_entries > 65536)
        return SL_ERR_RANGE;
    struct sl_fec_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return SL_ERR_NOMEM;
    d->cfg = *cfg;
    size_t entry_bytes = (size_t)(cfg->k_max + cfg->m_max) * cfg->symbol_max;
    unsigned nrows = cfg->m_max < cfg->k_max ? cfg->m_max : cfg->k_max;
    size_t tbl_bytes = (size_t)32 * cfg->k_max * nrows;
    d->entries = calloc(cfg->entries, sizeof *d->entries);
    d->mem = malloc(entry_bytes * cfg->entries);
    d->done = calloc(cfg->done_history, sizeof *d->done);
    d->cache = calloc(cfg->cache_entries, sizeof *d->cache);
    d->cache_mem = malloc(tbl_bytes * cfg->cache_entries);
    if (!d->entries || !d->mem || !d->done || !d->cache || !d->cache_mem) {
        sl_fec_decoder_destroy(d);
        return SL_ERR_NOMEM;
    }
    for (unsigned i = 0; i < cfg->entries; i++)
        d->entries[i].mem = d->mem + (size_t)i * entry_bytes;
    for (unsigned i = 0; i < cfg->cache_entries; i++)
        d->cache[i].tbls = d->cache_mem + (size_t)i * tbl_bytes;
    *out = d;
    return SL_OK;
}

void sl_fec_decoder_destroy(struct sl_fec_decoder *dec)
{
    if (!dec)
        return;
    free(dec->entries);
    free(dec->mem);
    free(dec->done);
    free(dec->cache);
    free(dec->cache_mem);
    free(dec);
}

static bool is_done(const struct sl_fec_decoder *d, uint64_t session, uint16_t channel, uint64_t seq)
{
    for (unsigned i = 0; i < d->cfg.done_history; i++) {
        const struct done_id *x = &d->done[i];
        if (x->used && x->seq == seq && x->session == session && x->channel == channel)
            return true;
    }
    return false;
}

/* Remembers a finished block; the oldest memory is overwritten, so a
 * straggler arriving after done_history newer blocks finished reopens it
 * (and expires again by age). */
static void remember(struct sl_fec_decoder *d, const struct entry *e)
{
    d->done[d->done_next] = (struct done_id){ e->session, e->seq, e->channel, true };
    d->done_next = (d->done_next + 1) % d->cfg.done_history;
}

static void release(struct sl_fec_decoder *d, struct entry *e)
{
    remember(d, e);
    e->used = false;
    d->pending--;
}

static struct entry *find(struct sl_fec_decoder *d, const struct sl_fec_symbol *s)
{
    for (unsigned i = 0; i < d->cfg.entries; i++) {
        struct entry *e = &d->entries[i];
        if (e->used && e->seq == s->block_seq && e->session == s->session && e->channel == s->channel)
            return e;
    }
    return NULL;
}

/* A free entry, evicting the oldest partial block when none is free. */
static struct entry *claim(struct sl_fec_decoder *d)
{
    struct entry *oldest = NULL;
    for (unsigned i = 0; i < d->cfg.entries; i++) {
        struct entry *e = &d->entries[i];
        if (!e->used)
            return e;
        if (!oldest || e->order < oldest->order)
            oldest = e;
    }
    d->c.evicted++;
    release(d, oldest);
    return oldest;
}

/* Decode tables for the symbols held by e: from the cache, or built into the
 * least recently used cache slot. NULL only if the submatrix is singular,
 * which a Cauchy code cannot produce. */
static const struct cache_entry *tables_for(struct sl_fec_decoder *d, const struct entry *e,
                                            const uint8_t *src_idx, const uint8_t *miss, unsigned n)
{
    struct cache_entry *victim = NULL;
    for (unsigned i = 0; i < d->cfg.cache_entries; i++) {
        struct cache_entry *c = &d->cache[i];
        if (c->valid && c->k == e->k && c->m == e->m && memcmp(c->used_mask, e->present, sizeof c->used_mask) == 0) {
            c->stamp = ++d->stamp;
            d->c.cache_hits++;
            return c;
        }
        /* Victim: the first empty slot, else the least recently used. */
        if (!c->valid) {
            if (!victim || victim->valid)
                victim = c;
        } else if (!victim || (victim->valid && c->stamp < victim->stamp)) {
            victim = c;
        }
    }
    d->c.cache_misses++;
    unsigned kb = e->k;
    unsigned np = kb - n;   /* present data symbols: src_idx[0..np), repair after */
    /* C[R][M]: row b = repair symbol src_idx[np + b], column a = miss[a]. */
    for (unsigned b = 0; b < n; b++)
        for (unsigned a = 0; a < n; a++)
            d->crm[b * n + a] = sl_fec_coefficient(kb, src_idx[np + b] - kb, miss[a]);
    if (gf_invert_matrix(d->crm, d->inv, (int)n) != 0)
        return NULL;
    /* C[R][P]: row b = repair symbol src_idx[np + b], column = present data. */
    for (unsigned b = 0; b < n; b++)
        for (unsigned col = 0; col < np; col++)
            d->crp[b * np + col] = sl_fec_coefficient(kb, src_idx[np + b] - kb, src_idx[col]);
    /* Decode matrix: row a recovers miss[a] from the k' sources in src_idx
     * order. Repair columns take inv directly; present data columns take
     * (inv * C[R][P]). */
    for (unsigned a = 0; a < n; a++) {
        uint8_t *row = d->dm + a * kb;
        for (unsigned col = 0; col < np; col++) {
            uint8_t acc = 0;
            for (unsigned b = 0; b < n; b++)
                acc ^= gf_mul(d->inv[a * n + b], d->crp[b * np + col]);
            row[col] = acc;
        }
        for (unsigned b = 0; b < n; b++)
            row[np + b] = d->inv[a * n + b];
    }
    ec_init_tables((int)kb, (int)n, d->dm, victim->tbls);
    memcpy(victim->used_mask, e->present, sizeof victim->used_mask);
    victim->k = e->k;
    victim->m = e->m;
    victim->n = (uint8_t)n;
    victim->valid = true;
    victim->stamp = ++d->stamp;
    return victim;
}

/* Called with exactly k' distinct symbols held: fills the missing data
 * symbols in place and describes the block in *out. */
static sl_err complete(struct sl_fec_decoder *d, struct entry *e, struct sl_fec_decoded *out)
{
    unsigned kb = e->k;
    size_t s = e->symbol_size;
    bool recovered = e->have_data < kb;
    if (recovered) {
        uint8_t src_idx[NMAX];
        uint8_t miss[NMAX];
        unsigned ns = 0, n = 0;
        for (unsigned i = 0; i < (unsigned)kb + e->m; i++) {
            if (bit_get(e->present, i))
                src_idx[ns++] = (uint8_t)i;
            else if (i < kb)
                miss[n++] = (uint8_t)i;
        }
        const struct cache_entry *c = tables_for(d, e, src_idx, miss, n);
        if (!c) {
            d->c.unrecoverable++;
            release(d, e);
            return SL_ERR_UNDECODABLE;
        }
        unsigned char *src[NMAX];
        unsigned char *dst[NMAX];
        for (unsigned i = 0; i < kb; i++)
            src[i] = e->mem + src_idx[i] * s;
        for (unsigned a = 0; a < n; a++)
            dst[a] = e->mem + miss[a] * s;
        ec_encode_data((int)s, (int)kb, (int)n, c->tbls, src, dst);
        d->c.blocks_recovered++;
    } else {
        d->c.blocks_direct++;
    }
    *out = (struct sl_fec_decoded){
        .session = e->session,
        .block_seq = e->seq,
        .channel = e->channel,
        .k = e->k,
        .m = e->m,
        .symbol_size = e->symbol_size,
        .recovered = recovered,
        .data = e->mem,
        .len = kb * s,
    };
    /* The storage stays untouched until a later call claims this entry,
     * which is what keeps out->data valid until then. */
    release(d, e);
    return SL_OK;
}

sl_err sl_fec_decode(struct sl_fec_decoder *dec, struct sl_fec_decoded *out,
                     const struct sl_fec_symbol *sym, uint64_t now_us)
{
    memset(out, 0, sizeof *out);
    dec->c.symbols_in++;
    if (sym->k == 0 || sym->m == 0 || sym->k > dec->cfg.k_max || sym->m > dec->cfg.m_max ||
        sym->index >= (unsigned)sym->k + sym->m || sym->symbol_size < SL_FEC_SYMBOL_MIN ||
        sym->symbol_size > dec->cfg.symbol_max || !sym->data) {
        dec->c.rejected++;
        return SL_ERR_RANGE;
    }
    struct entry *e = find(dec, sym);
    if (e) {
        if (e->k != sym->k || e->m != sym->m || e->symbol_size != sym->symbol_size) {
            dec->c.mismatches++;
            return SL_ERR_MISMATCH;
        }
        if (bit_get(e->present, sym->index)) {
            dec->c.duplicates++;
            return SL_ERR_DUPLICATE;
        }
    } else {
        if (is_done(dec, sym->session, sym->channel, sym->block_seq)) {
            dec->c.late++;
            return SL_ERR_DUPLICATE;
        }
        e = claim(dec);
        uint8_t *mem = e->mem;
        *e = (struct entry){
            .session = sym->session,
            .seq = sym->block_seq,
            .order = ++dec->order,
            .first_us = now_us,
            .channel = sym->channel,
            .symbol_size = sym->symbol_size,
            .k = sym->k,
            .m = sym->m,
            .used = true,
            .mem = mem,
        };
        dec->pending++;
    }
    memcpy(e->mem + (size_t)sym->index * sym->symbol_size, sym->data, sym->symbol_size);
    bit_set(e->present, sym->index);
    e->have++;
    if (sym->index < sym->k)
        e->have_data++;
    if (e->have < e->k)
        return SL_ERR_AGAIN;
    return complete(dec, e, out);
}

unsigned sl_fec_decoder_tick(struct sl_fec_decoder *dec, uint64_t now_us)
{
    unsigned n = 0;
    for (unsigned i = 0; i < dec->cfg.entries; i++) {
        struct entry *e = &dec->entries[i];
        /* A clock that went backwards (now < first) expires nothing. */
        if (e->used && now_us >= e->first_us && now_us - e->first_us >= dec->cfg.max_age_us) {
            dec->c.unrecoverable++;
            release(dec, e);
            n++;
        }
    }
    return n;
}

unsigned sl_fec_decoder_pending(const struct sl_fec_decoder *dec)
{
    return dec->pending;
}

void sl_fec_decoder_counters(const struct sl_fec_decoder *dec, struct sl_fec_counters *out)
{
    *out = dec->c;
}
