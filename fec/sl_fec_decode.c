/* Receive side: a bounded table of partial blocks in two parts (announced
 * and unannounced, which never evict each other), decode on the k'-th
 * distinct symbol, a history of block ids the caller confirmed genuine so
 * stragglers do not reopen them, and an LRU cache of decode tables keyed by
 * which symbols were used (steady random loss repeats the same patterns).
 *
 * Nothing the decoder sees is authenticated. So an entry's identity is
 * every header field a symbol carries (a forged symbol with other
 * parameters opens its own entry), and an id is remembered as finished only
 * when the caller says the block verified (sl_fec_decoder_done): releasing
 * an entry (completed, evicted, expired) remembers nothing, so a forged
 * block that completes first cannot make the genuine one "late".
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
    uint64_t epoch;
    uint64_t seq;
    uint64_t tag;
    uint64_t order;       /* creation counter: smallest = oldest */
    uint64_t rank;        /* distance from its stream's frontier at its last symbol */
    uint64_t first_us;    /* arrival of the first symbol */
    uint64_t present[4];  /* bit i: symbol index i held */
    uint64_t contested[4];/* bit i: two different symbols i seen: one is forged */
    uint16_t channel;
    uint16_t symbol_size;
    uint8_t k, m;
    uint8_t have;         /* distinct symbols held */
    uint8_t have_data;    /* of which data symbols */
    bool used;
    bool unannounced;     /* lives in the unannounced part */
    bool ranked;          /* rank is set (symbols came with a frontier) */
    uint8_t *mem;         /* symbol i at mem + i * symbol_size */
};

struct done_id {
    uint64_t session;
    uint64_t epoch;
    uint64_t seq;
    uint64_t tag;
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
    unsigned nentries;    /* entries + entries_unannounced */
    unsigned pending;
    unsigned pending_unannounced;
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
        cfg->entries == 0 || cfg->entries > 65536 || cfg->entries_unannounced > 65536 ||
        cfg->done_history == 0 ||
        cfg->done_history > 1048576 || cfg->cache_entries == 0 || cfg->cache_entries > 65536)
        return SL_ERR_RANGE;
    struct sl_fec_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return SL_ERR_NOMEM;
    d->cfg = *cfg;
    d->nentries = cfg->entries + cfg->entries_unannounced;
    size_t entry_bytes = (size_t)(cfg->k_max + cfg->m_max) * cfg->symbol_max;
    unsigned nrows = cfg->m_max < cfg->k_max ? cfg->m_max : cfg->k_max;
    size_t tbl_bytes = (size_t)32 * cfg->k_max * nrows;
    /* + 1: the scratch entry for blocks complete on their first symbol */
    d->entries = calloc(d->nentries + 1u, sizeof *d->entries);
    d->mem = malloc(entry_bytes * (d->nentries + 1u));
    d->done = calloc(cfg->done_history, sizeof *d->done);
    d->cache = calloc(cfg->cache_entries, sizeof *d->cache);
    d->cache_mem = malloc(tbl_bytes * cfg->cache_entries);
    if (!d->entries || !d->mem || !d->done || !d->cache || !d->cache_mem) {
        sl_fec_decoder_destroy(d);
        return SL_ERR_NOMEM;
    }
    for (unsigned i = 0; i <= d->nentries; i++) {
        d->entries[i].mem = d->mem + (size_t)i * entry_bytes;
        d->entries[i].unannounced = i >= cfg->entries && i < d->nentries;
    }
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

static bool is_done(const struct sl_fec_decoder *d, const struct sl_fec_symbol *s)
{
    for (unsigned i = 0; i < d->cfg.done_history; i++) {
        const struct done_id *x = &d->done[i];
        if (x->used && x->seq == s->block_seq && x->session == s->session && x->channel == s->channel &&
            x->epoch == s->epoch && x->tag == s->tag)
            return true;
    }
    return false;
}

/* Frees an entry. Deliberately remembers nothing (see the top comment). */
static void release(struct sl_fec_decoder *d, struct entry *e)
{
    e->used = false;
    d->pending--;
    if (e->unannounced)
        d->pending_unannounced--;
}

/* The oldest memory is overwritten, so a straggler arriving after
 * done_history newer blocks were confirmed reopens its block (and expires
 * again by age; RX's replay window refuses it before that). */
void sl_fec_decoder_done(struct sl_fec_decoder *dec, const struct sl_fec_decoded *blk)
{
    dec->done[dec->done_next] = (struct done_id){
        .session = blk->session, .epoch = blk->epoch, .seq = blk->block_seq,
        .tag = blk->tag, .channel = blk->channel, .used = true,
    };
    dec->done_next = (dec->done_next + 1) % dec->cfg.done_history;
    dec->c.done++;
    /* The id is genuine and finished: any other identity still held for it
     * is forged (is_done refuses its later symbols anyway), so free it now
     * rather than let it sit next to the frontier outranking real blocks.
     * Releasing leaves blk->data untouched. */
    for (unsigned i = 0; i < dec->nentries; i++) {
        struct entry *e = &dec->entries[i];
        if (e->used && e->seq == blk->block_seq && e->session == blk->session && e->epoch == blk->epoch &&
            e->tag == blk->tag && e->channel == blk->channel)
            release(dec, e);
    }
}

/* Same identity: every field but index and data. */
static struct entry *find(struct sl_fec_decoder *d, const struct sl_fec_symbol *s)
{
    for (unsigned i = 0; i < d->nentries; i++) {
        struct entry *e = &d->entries[i];
        if (e->used && e->seq == s->block_seq && e->session == s->session && e->channel == s->channel &&
            e->epoch == s->epoch && e->tag == s->tag && e->k == s->k && e->m == s->m &&
            e->symbol_size == s->symbol_size)
            return e;
    }
    return NULL;
}

static uint64_t distance(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

/* Same stream: the block ids of one sender's channel in one run. */
static bool same_stream(const struct entry *e, const struct sl_fec_symbol *s)
{
    return e->session == s->session && e->epoch == s->epoch && e->tag == s->tag && e->channel == s->channel;
}

/* Announced identities held for the symbol's id (with other parameters,
 * since find() failed); *oldest is the one claimed first. */
static unsigned announced_ids_held(struct sl_fec_decoder *d, const struct sl_fec_symbol *s, struct entry **oldest)
{
    unsigned n = 0;
    *oldest = NULL;
    for (unsigned i = 0; i < d->cfg.entries; i++) {
        struct entry *e = &d->entries[i];
        if (e->used && e->seq == s->block_seq && same_stream(e, s)) {
            n++;
            if (!*oldest || e->order < (*oldest)->order)
                *oldest = e;
        }
    }
    return n;
}

/* A free entry of the part the symbol may use; when none is free, the
 * part's partial block of largest rank is evicted (unranked blocks rank
 * highest; ties: the oldest; see struct sl_fec_symbol). Symbols held is
 * no tie-break: junk holding k'-1 symbols costs a forger nothing and would
 * outlast a genuine block that just started. A block complete with its
 * first symbol (k' = 1) takes the scratch entry instead and evicts
 * nothing. With no separate unannounced part every symbol uses the one
 * table. */
static struct entry *claim(struct sl_fec_decoder *d, const struct sl_fec_symbol *s, bool unannounced)
{
    if (s->k == 1)
        return &d->entries[d->nentries];
    unsigned lo = 0, hi = d->cfg.entries;
    if (unannounced && d->cfg.entries_unannounced > 0) {
        lo = d->cfg.entries;
        hi = d->nentries;
    }
    struct entry *victim = NULL;
    uint64_t vrank = 0;
    for (unsigned i = lo; i < hi; i++) {
        struct entry *e = &d->entries[i];
        if (!e->used)
            return e;
        uint64_t r = !e->ranked ? UINT64_MAX
                     : s->ranked && same_stream(e, s) ? distance(e->seq, s->frontier) : e->rank;
        if (!victim || r > vrank || (r == vrank && e->order < victim->order)) {
            victim = e;
            vrank = r;
        }
    }
    if (s->ranked && s->yields && distance(s->block_seq, s->frontier) > vrank) {
        d->c.refused++;
        return NULL;
    }
    d->c.evicted++;
    if (victim->unannounced)
        d->c.evicted_unannounced++;
    release(d, victim);
    return victim;
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
        .epoch = e->epoch,
        .block_seq = e->seq,
        .tag = e->tag,
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
        if (bit_get(e->contested, sym->index)) {
            dec->c.duplicates++;
            return SL_ERR_DUPLICATE;
        }
        if (bit_get(e->present, sym->index)) {
            /* Two different symbols for one index: one of them is forged
             * (unauthenticated frames), and nothing says which. Treat the
             * index as lost for good, so the block decodes from its other
             * symbols; a forger must now spend more than m' frames, each
             * ahead of the genuine one, to lose one block. */
            uint8_t *held = e->mem + (size_t)sym->index * sym->symbol_size;
            if (memcmp(held, sym->data, sym->symbol_size) != 0) {
                bit_set(e->contested, sym->index);
                e->present[sym->index >> 6] &= ~((uint64_t)1 << (sym->index & 63));
                e->have--;
                if (sym->index < sym->k)
                    e->have_data--;
                dec->c.contested++;
            }
            dec->c.duplicates++;
            return SL_ERR_DUPLICATE;
        }
    } else {
        if (is_done(dec, sym)) {
            dec->c.late++;
            return SL_ERR_DUPLICATE;
        }
        /* Every identity of an announced id stays in the announced part
         * (only one is genuine and nothing says which, so demoting the
         * later one would let a forger who speaks first push the genuine
         * block out); a per-id cap of k_max identities (RX fixes S and m'
         * per k', so a genuine sender has fewer) keeps one id from taking
         * the part: over it, the id's oldest identity makes room. */
        e = NULL;
        if (!sym->unannounced) {
            struct entry *oldest;
            unsigned held = announced_ids_held(dec, sym, &oldest);
            if (held > 0)
                dec->c.demoted++;
            if (held >= dec->cfg.k_max && sym->k > 1) {
                dec->c.evicted++;
                release(dec, oldest);
                e = oldest;
            }
        }
        if (!e)
            e = claim(dec, sym, sym->unannounced);
        if (!e)
            return SL_ERR_TABLE_FULL;
        uint8_t *mem = e->mem;
        bool part = e->unannounced;
        *e = (struct entry){
            .session = sym->session,
            .epoch = sym->epoch,
            .seq = sym->block_seq,
            .tag = sym->tag,
            .order = ++dec->order,
            .first_us = now_us,
            .channel = sym->channel,
            .symbol_size = sym->symbol_size,
            .k = sym->k,
            .m = sym->m,
            .used = true,
            .unannounced = part,
            .mem = mem,
        };
        dec->pending++;
        if (part)
            dec->pending_unannounced++;
    }
    if (sym->ranked) {
        e->rank = distance(sym->block_seq, sym->frontier);
        e->ranked = true;
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
    for (unsigned i = 0; i < dec->nentries; i++) {
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

unsigned sl_fec_decoder_pending_unannounced(const struct sl_fec_decoder *dec)
{
    return dec->pending_unannounced;
}

void sl_fec_decoder_counters(const struct sl_fec_decoder *dec, struct sl_fec_counters *out)
{
    *out = dec->c;
}
