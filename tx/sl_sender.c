#include "sl_sender.h"

#include <stdlib.h>
#include <string.h>

#include "sl_block.h"
#include "sl_fec.h"
#include "sl_hw.h"
#include "sl_pace.h"

/* Datagrams built per link call: one sendmmsg (or a few GSO super-packets). */
#define BATCH 64u

struct sl_sender {
    struct sl_sender_config cfg;
    size_t dgram_bytes;                 /* SL_FRAME_OVERHEAD + S */
    uint8_t key_id[SL_KEY_ID_BYTES];
    struct sl_fec_pool *pool;
    struct sl_fec_encoder *enc;
    struct sl_fec_interleaver *il;
    struct sl_pace pace;

    /* The block being filled: header room + payload live in the pool
     * block's own symbol storage, so sealing and encoding work in place. */
    struct sl_fec_block *open;
    uint16_t open_channel;

    /* Blocks prepared but not yet signed, when the signer takes several
     * per call (a signer process: one round trip per batch, not per
     * block). They hold their pool buffers and sequence numbers; complete()
     * signs, encodes and queues them, in order, before anything reads the
     * interleaver. sign_batch is 1 for an in-process signer: every block
     * is completed by its own commit, as before. */
    size_t sign_batch;                  /* min(signer's batch_max, interleave) */
    size_t npend;
    struct sl_fec_block *pend[SL_SIGN_BATCH_MAX];
    uint8_t pend_msgs[SL_SIGN_BATCH_MAX * SL_BLOCK_SIGNED_BYTES];
    uint8_t pend_sigs[SL_SIGN_BATCH_MAX * SL_SIG_BYTES];
    size_t pend_len[SL_SIGN_BATCH_MAX];
    uint64_t pend_now_us;               /* the latest commit's clock, for the interleaver */

    uint8_t *batch;                     /* BATCH * dgram_bytes */
    const uint8_t *batch_ptr[BATCH];
    struct sl_fec_block *release[BATCH];/* blocks whose last frame is in the batch */
    size_t batch_n, release_n;

    struct sl_sender_stats st;
};

void sl_sender_destroy(struct sl_sender *s)
{
    if (!s)
        return;
    sl_fec_interleaver_destroy(s->il);
    sl_fec_encoder_destroy(s->enc);
    sl_fec_pool_destroy(s->pool);
    free(s->batch);
    free(s);
}

sl_err sl_sender_create(struct sl_sender **out, const struct sl_sender_config *cfg)
{
    *out = NULL;
    if (!cfg->signer || !cfg->hw || !sl_wire_code_ok(cfg->k, cfg->m) || cfg->interleave < 1 ||
        cfg->interleave > 64 || !sl_wire_symbol_size_ok(cfg->symbol_size) ||
        (size_t)cfg->k * cfg->symbol_size <= SL_BLOCK_OVERHEAD)
        return SL_ERR_RANGE;
    struct sl_sender *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    s->cfg = *cfg;
    s->dgram_bytes = SL_FRAME_OVERHEAD + cfg->symbol_size;
    memcpy(s->key_id, cfg->signer->pub.id, sizeof s->key_id);
    /* Gathered blocks hold pool buffers: at most one interleave group's
     * worth, so a group can always fill behind them. */
    s->sign_batch = cfg->signer->batch_max < cfg->interleave ? cfg->signer->batch_max : cfg->interleave;
    if (s->sign_batch < 1)
        s->sign_batch = 1;
    if (s->sign_batch > SL_SIGN_BATCH_MAX)
        s->sign_batch = SL_SIGN_BATCH_MAX;

    /* Two interleave groups in flight (one filling, one draining) plus the
     * block being written. */
    unsigned blocks = 2 * cfg->interleave + 1;
    sl_err e = sl_fec_pool_create(&s->pool, blocks, cfg->k, cfg->m, cfg->symbol_size);
    if (e == SL_OK)
        e = sl_fec_encoder_create(&s->enc, cfg->k, cfg->m, cfg->symbol_size);
    if (e == SL_OK)
        e = sl_fec_interleaver_create(&s->il, cfg->interleave, 2 * cfg->interleave, cfg->max_delay_us);
    if (e == SL_OK)
        e = sl_pace_init(&s->pace, cfg->rate_mbps, s->dgram_bytes, 0);
    if (e == SL_OK) {
        s->batch = malloc(BATCH * s->dgram_bytes);
        if (!s->batch)
            e = SL_ERR_NOMEM;
    }
    if (e != SL_OK) {
        sl_sender_destroy(s);
        return e;
    }
    for (size_t i = 0; i < BATCH; i++)
        s->batch_ptr[i] = s->batch + i * s->dgram_bytes;
    *out = s;
    return SL_OK;
}

size_t sl_sender_payload_cap(const struct sl_sender *s)
{
    return (size_t)s->cfg.k * s->cfg.symbol_size - SL_BLOCK_OVERHEAD;
}

/* Hands the built batch to the link (paced) and returns the blocks whose
 * last frame it held to the pool. A link error loses those frames (the
 * receiver's FEC or the next keyframe covers it) but is reported. */
static sl_err send_batch(struct sl_sender *s)
{
    sl_err e = SL_OK;
    if (s->batch_n) {
        size_t sent = 0;
        e = sl_hw_send_paced(s->cfg.hw, &s->pace, &sent, s->batch_ptr, s->batch_n);
        s->st.frames_sent += sent;
        s->st.frames_unsent += s->batch_n - sent;
        s->st.bytes_sent += sent * s->dgram_bytes;
        s->batch_n = 0;
    }
    for (size_t i = 0; i < s->release_n; i++)
        sl_fec_pool_put(s->pool, s->release[i]);
    s->release_n = 0;
    return e;
}

/* Pulls every sealed symbol from the interleaver into frames and sends them.
 * Cost: one S-byte copy and one CRC per frame; one link call per BATCH. */
static sl_err drain(struct sl_sender *s)
{
    sl_err first = SL_OK;
    struct sl_fec_emit em;
    while (sl_fec_interleave_next(s->il, &em) == SL_OK) {
        const struct sl_fec_block *b = em.block;
        struct sl_data_frame f = {
            .channel = b->channel,
            .symbol_size = b->symbol_size,
            .session = s->cfg.session,
            .epoch = s->cfg.epoch,
            .block_seq = b->seq,
            .k = b->k,
            .m = b->m,
            .index = em.index,
            .symbol = b->sym + (size_t)em.index * b->symbol_size,
        };
        memcpy(f.key_id, s->key_id, sizeof f.key_id);
        size_t len = 0;
        sl_err e = sl_datagram_data_encode((uint8_t *)s->batch_ptr[s->batch_n], s->dgram_bytes, &len, &f);
        if (e == SL_OK)
            s->batch_n++;
        else if (first == SL_OK)
            first = e;     /* cannot happen for blocks we encoded; never silent */
        if (em.last) {
            s->release[s->release_n++] = em.block;
            s->st.emitted[b->channel]++;
        }
        if (s->batch_n == BATCH || s->release_n == BATCH) {
            e = send_batch(s);
            if (e != SL_OK && first == SL_OK)
                first = e;
        }
    }
    sl_err e = send_batch(s);
    return first != SL_OK ? first : e;
}

/* Queues an encoded block for interleaving and sends any group that
 * seals. The block is the interleaver's (or back in the pool) after. */
static sl_err queue_block(struct sl_sender *s, struct sl_fec_block *b, uint64_t now_us)
{
    sl_err e = sl_fec_interleave_push(s->il, b, now_us);
    if (e == SL_ERR_TABLE_FULL) {
        /* Both groups are queued: send the older ones, then retry. */
        sl_fec_interleave_flush(s->il);
        sl_err d = drain(s);
        e = sl_fec_interleave_push(s->il, b, now_us);
        if (e == SL_OK && d != SL_OK) {
            sl_err ignored = drain(s);   /* the block is queued; report d */
            (void)ignored;
            return d;
        }
    }
    if (e != SL_OK) {
        sl_fec_pool_put(s->pool, b);
        return e;
    }
    return drain(s);      /* a group sealed by reaching depth D goes now */
}

/* Signs the gathered blocks in one call, then encodes and queues each in
 * commit order. A refused or failed signature drops them all (their
 * sequence numbers are not reused: nothing unsigned is ever encoded).
 * Cost: one signer call, then per block one RS encode. */
static sl_err complete(struct sl_sender *s)
{
    size_t n = s->npend;
    if (n == 0)
        return SL_OK;
    s->npend = 0;
    sl_err e = sl_signer_sign_batch(s->cfg.signer, s->pend_sigs, s->pend_msgs, SL_BLOCK_SIGNED_BYTES, n);
    sl_err first = e;
    for (size_t i = 0; i < n; i++) {
        struct sl_fec_block *b = s->pend[i];
        size_t blen = s->pend_len[i];
        if (e == SL_OK) {
            memcpy(b->sym + blen - SL_SIG_BYTES, s->pend_sigs + i * SL_SIG_BYTES, SL_SIG_BYTES);
            sl_err f = sl_fec_encode(s->enc, b, b->sym, blen);   /* in place: pads, adds repair */
            if (f == SL_OK) {
                s->st.blocks_sent[b->channel]++;
                f = queue_block(s, b, s->pend_now_us);
            } else {
                sl_fec_pool_put(s->pool, b);
            }
            if (first == SL_OK)
                first = f;
        } else {
            sl_fec_pool_put(s->pool, b);
        }
    }
    return first;
}

sl_err sl_sender_block(struct sl_sender *s, uint8_t **payload, size_t *cap, uint16_t channel)
{
    *payload = NULL;
    *cap = 0;
    if (s->open)
        return SL_ERR_STATE;
    if (channel >= SL_CHANNEL_COUNT)
        return SL_ERR_RANGE;
    struct sl_fec_block *b = sl_fec_pool_get(s->pool);
    if (!b) {
        /* Every buffer is queued: seal what is waiting and send it. */
        sl_err e = complete(s);
        if (e != SL_OK)
            return e;
        sl_fec_interleave_flush(s->il);
        e = drain(s);
        b = sl_fec_pool_get(s->pool);
        if (!b)
            return e != SL_OK ? e : SL_ERR_STATE;
    }
    s->open = b;
    s->open_channel = channel;
    *payload = b->sym + SL_BLOCK_HDR_BYTES;
    *cap = sl_sender_payload_cap(s);
    return SL_OK;
}

/* The body of both commits; split 0 is the plain digest rule. */
static sl_err commit_block(struct sl_sender *s, size_t len, size_t split, const uint8_t *leaf,
                           uint64_t tx_time_us, uint64_t now_us)
{
    struct sl_fec_block *b = s->open;
    if (!b)
        return SL_ERR_STATE;
    s->open = NULL;
    if (len == 0) {
        sl_fec_pool_put(s->pool, b);
        return SL_OK;
    }
    if (len > sl_sender_payload_cap(s) || split >= len || split > UINT16_MAX) {
        sl_fec_pool_put(s->pool, b);
        return SL_ERR_RANGE;
    }
    uint16_t ch = s->open_channel;
    struct sl_block_hdr h = {
        .channel = ch,
        .session = s->cfg.session,
        .epoch = s->cfg.epoch,
        .block_seq = s->st.next_seq[ch],
        .tx_time_us = tx_time_us,
        .split = (uint16_t)split,
    };
    if (split != 0)
        memcpy(h.leaf, leaf, sizeof h.leaf);
    size_t blen = 0;
    sl_err e = sl_block_prepare(b->sym, b->cap, &blen, &h, b->sym + SL_BLOCK_HDR_BYTES, len,
                                s->pend_msgs + s->npend * SL_BLOCK_SIGNED_BYTES);
    if (e != SL_OK) {
        sl_fec_pool_put(s->pool, b);
        return e;
    }
    b->seq = h.block_seq;
    b->channel = ch;
    s->st.next_seq[ch]++;
    s->pend[s->npend] = b;
    s->pend_len[s->npend++] = blen;
    s->pend_now_us = now_us;
    return s->npend < s->sign_batch ? SL_OK : complete(s);
}

sl_err sl_sender_commit(struct sl_sender *s, size_t len, uint64_t tx_time_us, uint64_t now_us)
{
    return commit_block(s, len, 0, NULL, tx_time_us, now_us);
}

sl_err sl_sender_commit_split(struct sl_sender *s, size_t len, size_t split,
                              const uint8_t leaf[SL_BLOCK_DIGEST_BYTES], uint64_t tx_time_us, uint64_t now_us)
{
    if (split == 0 || !leaf) {
        sl_err e = commit_block(s, 0, 0, NULL, tx_time_us, now_us);   /* abandons the open block */
        return e != SL_OK ? e : SL_ERR_RANGE;
    }
    return commit_block(s, len, split, leaf, tx_time_us, now_us);
}

sl_err sl_sender_flush(struct sl_sender *s)
{
    sl_err e = complete(s);
    sl_fec_interleave_flush(s->il);
    sl_err d = drain(s);
    return e != SL_OK ? e : d;
}

sl_err sl_sender_tick(struct sl_sender *s, uint64_t now_us)
{
    sl_err e = complete(s);   /* gathered blocks wait one loop turn at most */
    sl_fec_interleave_tick(s->il, now_us);
    sl_err d = drain(s);
    return e != SL_OK ? e : d;
}

sl_err sl_sender_deadline(const struct sl_sender *s, uint64_t *out_us)
{
    if (s->npend) {
        *out_us = 0;           /* gathered blocks: due now (sl_sender_tick) */
        return SL_OK;
    }
    return sl_fec_interleave_deadline(s->il, out_us);
}

sl_err sl_sender_beacon(struct sl_sender *s, struct sl_beacon *b)
{
    b->session = s->cfg.session;
    b->epoch = s->cfg.epoch;
    b->symbol_size = s->cfg.symbol_size;
    b->k = (uint8_t)s->cfg.k;
    b->m = (uint8_t)s->cfg.m;
    b->interleave = (uint8_t)s->cfg.interleave;
    /* Blocks fully handed to the link, not merely queued for interleaving:
     * groups go out whole and in order, so between drains this is a prefix
     * of the sequence and RX can count what never arrived. */
    b->highest_block = s->st.emitted[SL_CHANNEL_TAGS];
    b->blocks_sent = 0;   /* every channel, as the beacon layout says */
    for (unsigned c = 0; c < SL_CHANNEL_COUNT; c++)
        b->blocks_sent += s->st.emitted[c];
    b->frames_sent = s->st.frames_sent;
    uint8_t dg[SL_BEACON_BYTES];
    sl_err e = sl_datagram_beacon_encode(dg, sizeof dg, b, s->cfg.signer);
    if (e != SL_OK)
        return e;
    e = sl_hw_send_small(s->cfg.hw, dg, sizeof dg);
    if (e == SL_OK)
        s->st.beacons_sent++;
    return e;
}

void sl_sender_stats(const struct sl_sender *s, struct sl_sender_stats *out)
{
    *out = s->st;
}
