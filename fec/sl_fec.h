/* Sluice forward error correction: systematic Reed-Solomon erasure coding
 * over GF(2^8) (ISA-L, Cauchy matrices), block assembly and padding,
 * cross-block interleaving, and a receive-side decoder with bounded memory.
 * docs/protocol-fec.md is the byte-exact specification of the code.
 *
 * Pure: no I/O, no clock reads (time comes in as µs), no allocation after
 * the *_create calls. Objects are not thread-safe; use one per thread.
 *
 * Terms: a block of len bytes is cut into k' = ceil(len/S) data symbols of
 * S bytes (the last zero-padded), protected by m' = sl_fec_repair_count()
 * repair symbols. Symbol index i is 0..k'-1 for data, k'..k'+m'-1 for
 * repair. k and m are the configured maxima (k + m <= 255). */
#ifndef SL_FEC_H
#define SL_FEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_FEC_SYMBOLS_MAX   255u    /* k + m <= 255: GF(2^8) Cauchy limit */
#define SL_FEC_SYMBOL_MIN    64u     /* bytes; matches SL_SYMBOL_MIN */
#define SL_FEC_SYMBOL_MAX    8900u   /* bytes; matches SL_SYMBOL_MAX */

/* ---- code parameters ------------------------------------------------------ */

/* Repair symbols for a block of kb data symbols under configured (k, m):
 * max(ceil(m * kb / k), min(m, kb + 1)): proportional for large blocks,
 * with a floor so early-closed small blocks are not the weakest link.
 * Returns 0 when the arguments are out of range (kb == 0, kb > k, m == 0,
 * k + m > 255). Cost: a few integer operations. */
unsigned sl_fec_repair_count(unsigned k, unsigned m, unsigned kb);

/* The GF(2^8) coefficient of data symbol j in repair symbol k'+r of a block
 * with k' data symbols: 1 / ((k' + r) XOR j) over the ISA-L field (0x11D),
 * i.e. row k'+r of gf_gen_cauchy1_matrix(k'+m', k'). Exposed for the
 * protocol document and tests; 0 when out of range. */
uint8_t sl_fec_coefficient(unsigned kb, unsigned r, unsigned j);

/* ---- blocks and their memory ---------------------------------------------- */

/* One encoded block: k' data symbols then m' repair symbols, contiguous, S
 * bytes each. The storage is owned by whoever set sym (the caller or a
 * sl_fec_pool); the encoder and interleaver only borrow it. seq and channel
 * are the caller's labels (frame header fields), carried untouched. */
struct sl_fec_block {
    uint8_t *sym;           /* symbol i at sym + i * symbol_size */
    size_t cap;             /* bytes of storage at sym */
    uint32_t len;           /* block bytes before padding (set by encode) */
    uint16_t symbol_size;   /* S (set by encode) */
    uint8_t k;              /* k' data symbols (set by encode) */
    uint8_t m;              /* m' repair symbols (set by encode) */
    uint64_t seq;           /* caller's block sequence */
    uint16_t channel;       /* caller's channel id */
};

struct sl_fec_pool;

/* A fixed pool of count blocks, each with room for (k + m) * S bytes,
 * allocated once here. On success *out owns the memory until
 * sl_fec_pool_destroy. SL_ERR_RANGE for bad parameters, SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_fec_pool_create(struct sl_fec_pool **out, unsigned count, unsigned k, unsigned m,
                          size_t symbol_size);

/* Frees the pool and every block's storage (blocks must no longer be used). */
void sl_fec_pool_destroy(struct sl_fec_pool *pool);

/* Takes a free block (fields other than sym/cap zeroed), or NULL when every
 * block is in use. O(1). */
struct sl_fec_block *sl_fec_pool_get(struct sl_fec_pool *pool);

/* Returns a block taken from this pool; a block not taken from it (or put
 * back twice) is ignored. O(1). */
void sl_fec_pool_put(struct sl_fec_pool *pool, struct sl_fec_block *blk);

/* Free blocks left in the pool. */
unsigned sl_fec_pool_available(const struct sl_fec_pool *pool);

/* ---- encoder -------------------------------------------------------------- */

struct sl_fec_encoder;

/* An encoder for configured (k, m) and symbol size S. Builds the Cauchy
 * matrix and ISA-L multiplication tables for every k' in 1..k with its
 * m' = sl_fec_repair_count(k, m, k'), so encoding never allocates: about
 * 32 * sum(k' * m') bytes (k=64, m=8: 0.6 MB). SL_ERR_RANGE unless
 * 1 <= k, 1 <= m, k + m <= 255, 64 <= S <= 8900; SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_fec_encoder_create(struct sl_fec_encoder **out, unsigned k, unsigned m, size_t symbol_size);

void sl_fec_encoder_destroy(struct sl_fec_encoder *enc);

/* Bytes of symbol storage a block of len bytes needs: (k' + m') * S; 0 if
 * len is 0 or above k * S. */
size_t sl_fec_encoded_bytes(const struct sl_fec_encoder *enc, size_t len);

/* Encodes len bytes (1..k*S) into blk: copies them to blk->sym (skipped when
 * data == blk->sym, i.e. the block was assembled in place), zero-pads the
 * last data symbol, computes m' repair symbols after the data symbols and
 * sets blk->len, symbol_size, k, m. data must not otherwise overlap the
 * storage. SL_ERR_RANGE for a bad len, SL_ERR_OVERFLOW if blk->cap is below
 * sl_fec_encoded_bytes(). Cost: one memcpy plus one ISA-L pass (k' x m'
 * multiply-adds per byte column); no allocation. */
__attribute__((warn_unused_result))
sl_err sl_fec_encode(const struct sl_fec_encoder *enc, struct sl_fec_block *blk, const void *data,
                     size_t len);

/* ---- interleaver ------------------------------------------------------------ */

/* Groups up to depth D consecutive blocks and emits their symbols round-robin:
 * round r = 0, 1, ... visits the group's blocks in push order and emits
 * symbol r of each block that has more than r symbols. In a group of D
 * blocks of k + m symbols, any burst of up to D * m consecutive lost frames
 * costs each block at most m symbols. In general a burst of L frames costs
 * block b at most ceil(L / c_b) symbols, c_b = number of blocks in its group
 * with at least as many symbols as b (b included); see docs/protocol-fec.md. */
struct sl_fec_interleaver;

/* One emitted symbol: send symbol index of block. last is true on the
 * block's final symbol, after which the interleaver holds no reference and
 * the caller may release the block once the frame is built. */
struct sl_fec_emit {
    struct sl_fec_block *block;
    uint8_t index;
    bool last;
};

/* An interleaver of depth D (1..255) holding up to capacity blocks (>= D;
 * 2 * D lets one group fill while the previous drains). A partially filled
 * group is sealed by sl_fec_interleave_flush, or by sl_fec_interleave_tick
 * once its first block has waited max_delay_us. Allocates capacity slots
 * once. SL_ERR_RANGE, SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_fec_interleaver_create(struct sl_fec_interleaver **out, unsigned depth, unsigned capacity,
                                 uint64_t max_delay_us);

void sl_fec_interleaver_destroy(struct sl_fec_interleaver *il);

/* Queues an encoded block (borrowed until its last symbol is emitted); the
 * group seals itself when it reaches D blocks. now_us starts the latency
 * timer of a new group. SL_ERR_TABLE_FULL when capacity blocks are queued
 * (send first), SL_ERR_RANGE for a block with no symbols. O(1). */
__attribute__((warn_unused_result))
sl_err sl_fec_interleave_push(struct sl_fec_interleaver *il, struct sl_fec_block *blk, uint64_t now_us);

/* Seals the open group now so its symbols can be pulled (latency flush). */
void sl_fec_interleave_flush(struct sl_fec_interleaver *il);

/* Seals the open group if its first block was pushed max_delay_us or more
 * before now_us. Call from the sender's timer. */
void sl_fec_interleave_tick(struct sl_fec_interleaver *il, uint64_t now_us);

/* When the open group will be sealed by tick (first push + max_delay_us);
 * SL_ERR_NOT_FOUND if no group is open. For the caller's timer. */
__attribute__((warn_unused_result))
sl_err sl_fec_interleave_deadline(const struct sl_fec_interleaver *il, uint64_t *out_us);

/* Next symbol in send order from the oldest sealed group; SL_ERR_AGAIN
 * (out zeroed) when nothing is sealed. O(D) worst case per call. */
__attribute__((warn_unused_result))
sl_err sl_fec_interleave_next(struct sl_fec_interleaver *il, struct sl_fec_emit *out);

/* Blocks currently referenced (sealed or open). */
unsigned sl_fec_interleave_queued(const struct sl_fec_interleaver *il);

/* ---- decoder ---------------------------------------------------------------- */

/* One received symbol, fields as in the DATA frame header. data is borrowed
 * for the call only (copied into the decoder).
 *
 * Identity: a partial block is the set of symbols that agree on every field
 * but index and data: (session, channel, block_seq, k', m', S, epoch, tag).
 * Nothing here is authenticated, so a forged symbol whose parameters differ
 * from the genuine block's opens its own entry instead of refusing or
 * corrupting the genuine one. tag is opaque to the decoder (RX puts the key
 * id there). unannounced picks the table part the block may take room in
 * (RX: the frame does not match a verified beacon); see the config.
 *
 * Announced part (unannounced false): a symbol of an id (session, epoch,
 * tag, channel, block_seq) already held with another k', m' or S is a
 * further identity (counted demoted); at most one is genuine and nothing
 * says which, so all stay in the announced part, at most k_max per id:
 * over that the id's oldest identity makes room, never another id's block
 * (moving the later one aside let junk that spoke first push the genuine
 * block into the small unannounced part). sl_fec_decoder_done frees the
 * other identities of the finished id.
 *
 * ranked/frontier: the caller's position of the symbol's stream (session,
 * epoch, tag, channel), e.g. RX's highest verified block_seq. When set,
 * the block's rank is |block_seq - frontier|: genuine partial blocks sit
 * next to the frontier, while junk spread over other ids does not. A new
 * block in a full part (either part) evicts the entry of largest rank
 * (ties: the oldest; symbols held is no tie-break, junk gets k'-1 of them
 * for free). Unranked entries rank
 * highest (among them: the oldest goes); for a ranked symbol, ranks of
 * entries of its stream are recomputed against its frontier (so a stuck or
 * stale entry far from it goes first), others keep the rank of their last
 * symbol. A yielding symbol (RX: beyond the announced window) whose rank
 * is above every entry's in its full part is refused instead (SL_ERR_
 * TABLE_FULL, counted refused). A block with k' = 1 completes on its
 * first symbol in a scratch entry and evicts nothing. */
struct sl_fec_symbol {
    uint64_t session;
    uint64_t epoch;
    uint64_t block_seq;
    uint64_t tag;           /* caller's label, part of the identity */
    uint64_t frontier;      /* the stream's position (with ranked) */
    uint16_t channel;
    uint8_t k;              /* k' */
    uint8_t m;              /* m' */
    uint8_t index;          /* 0..k'+m'-1 */
    bool unannounced;       /* take room in the unannounced part */
    bool ranked;            /* frontier is set: evict by distance from it */
    bool yields;            /* ranked and far: refused rather than evict a nearer block */
    uint16_t symbol_size;   /* S, bytes at data */
    const uint8_t *data;
};

/* A completed block: k' symbols agreed on its identity, which says nothing
 * about authenticity. The caller verifies it and, only if it is genuine,
 * calls sl_fec_decoder_done so that late symbols of it are refused. data
 * (k' * S bytes, padding included) points into the decoder and stays valid
 * until the next sl_fec_decode or sl_fec_decoder_tick call. */
struct sl_fec_decoded {
    uint64_t session;
    uint64_t epoch;
    uint64_t block_seq;
    uint64_t tag;
    uint16_t channel;
    uint8_t k;
    uint8_t m;
    uint16_t symbol_size;
    bool recovered;         /* repair symbols were needed */
    const uint8_t *data;
    size_t len;             /* k' * S */
};

/* The table of partial blocks has two parts that never evict each other:
 * entries for announced blocks (RX: frames that match the last verified
 * beacon of their key) and entries_unannounced for everything else (a TX
 * restart whose first beacon has not arrived, or frames before any
 * beacon; also where junk lands). A flood of unannounced symbols only
 * evicts unannounced blocks. entries_unannounced = 0 means one shared
 * table of entries for both (tests, tools). */
struct sl_fec_decoder_config {
    unsigned k_max;         /* largest k' accepted (1..254) */
    unsigned m_max;         /* largest m' accepted (1..255-k_max) */
    unsigned symbol_max;    /* largest S accepted, bytes (64..8900) */
    unsigned entries;       /* partial announced blocks held at once (>= 1) */
    unsigned entries_unannounced; /* partial unannounced blocks (0: share entries) */
    unsigned done_history;  /* verified block ids remembered (>= 1) */
    unsigned cache_entries; /* decode matrices cached, LRU (>= 1) */
    uint64_t max_age_us;    /* partial block expires this long after its first symbol */
};

struct sl_fec_counters {
    uint64_t symbols_in;        /* every sl_fec_decode call */
    uint64_t duplicates;        /* same index twice for a partial block */
    uint64_t late;              /* symbol of a block already done (verified) */
    uint64_t blocks_direct;     /* decoded from the k' data symbols alone */
    uint64_t blocks_recovered;  /* decoded with repair symbols */
    uint64_t unrecoverable;     /* expired by age: lost more than m' */
    uint64_t evicted;           /* pushed out, its part of the table full */
    uint64_t evicted_unannounced; /* of which from the unannounced part */
    uint64_t demoted;           /* further identity for an announced id (kept, k_max per id) */
    uint64_t refused;           /* yielding block refused: its part full of nearer ones */
    uint64_t done;              /* ids marked done by sl_fec_decoder_done */
    uint64_t contested;         /* an index seen with two different symbols: erased */
    uint64_t rejected;          /* k', m', S or index out of range */
    uint64_t cache_hits;        /* decode matrix found in the cache */
    uint64_t cache_misses;      /* decode matrix computed (inversion) */
};

struct sl_fec_decoder;

/* Allocates everything the decoder will use: (entries + entries_unannounced)
 * * (k_max + m_max) * symbol_max bytes of symbol storage, cache_entries * 32
 * * k_max * min(k_max, m_max) bytes of decode tables, and the id history.
 * SL_ERR_RANGE for a bad config, SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_fec_decoder_create(struct sl_fec_decoder **out, const struct sl_fec_decoder_config *cfg);

void sl_fec_decoder_destroy(struct sl_fec_decoder *dec);

/* Feeds one symbol received at now_us. Returns
 *   SL_OK               block complete: *out filled (data valid until the
 *                       next call on dec); happens on the k'-th distinct
 *                       symbol. The entry is freed; the id is NOT
 *                       remembered until sl_fec_decoder_done
 *   SL_ERR_AGAIN        stored, block still incomplete
 *   SL_ERR_DUPLICATE    index already held, or block already done
 *                       (counted as duplicates / late). A duplicate whose
 *                       bytes differ from the held symbol means one of the
 *                       two is forged: that index is erased for the block
 *                       (counted contested) and decoding waits for others
 *   SL_ERR_RANGE        fields out of the configured range
 *   SL_ERR_TABLE_FULL   a yielding symbol found its part full of nearer
 *                       blocks (refused)
 * *out is zeroed unless SL_OK. A new block when its part of the table is
 * full evicts a partial block of that part, the farthest from its frontier
 * or the oldest (see struct sl_fec_symbol; k' = 1 evicts nothing; not remembered: its stragglers
 * may open it again and expire by age). Cost: O(entries +
 * entries_unannounced + done_history) lookup, one S-byte copy; at
 * completion nothing more if all data arrived, else one ISA-L pass over the
 * missing symbols, plus on a cache miss an n x n inversion (n = missing
 * data symbols) and table setup. */
__attribute__((warn_unused_result))
sl_err sl_fec_decode(struct sl_fec_decoder *dec, struct sl_fec_decoded *out,
                     const struct sl_fec_symbol *sym, uint64_t now_us);

/* Marks the block blk (as returned by sl_fec_decode) done: later symbols of
 * (session, channel, block_seq, epoch, tag) are refused as late, whatever
 * their k', m', S, until done_history newer blocks have been marked. Call
 * only once the block proved genuine (signature, replay window): a block
 * that fails is simply dropped, so genuine symbols can still open a fresh
 * entry. O(1). */
void sl_fec_decoder_done(struct sl_fec_decoder *dec, const struct sl_fec_decoded *blk);

/* Expires partial blocks whose first symbol arrived max_age_us or more
 * before now_us (counted unrecoverable, not remembered). Returns how many
 * expired. O(entries). */
unsigned sl_fec_decoder_tick(struct sl_fec_decoder *dec, uint64_t now_us);

/* Partial blocks currently held (both parts). */
unsigned sl_fec_decoder_pending(const struct sl_fec_decoder *dec);

/* Partial blocks held in the unannounced part (0 with no separate part). */
unsigned sl_fec_decoder_pending_unannounced(const struct sl_fec_decoder *dec);

/* Copies the counters (monotonic since create). */
void sl_fec_decoder_counters(const struct sl_fec_decoder *dec, struct sl_fec_counters *out);

#endif
