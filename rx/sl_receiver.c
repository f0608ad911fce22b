#include "sl_receiver.h"

#include <stdlib.h>
#include <string.h>

#include "sl_hw.h"

struct sl_receiver {
    struct sl_receiver_config cfg;
    struct sl_fec_decoder *dec;
    struct sl_hw_rxmsg *msgs;       /* batch slots */
    uint8_t *slots;                 /* batch * datagram_max bytes */
    struct sl_receiver_stats st;
};

static const char *const stage_names[SL_RX_STAGES] = {
    [SL_RX_DATAGRAM] = "datagram", [SL_RX_FRAME] = "frame", [SL_RX_BEACON] = "beacon",
    [SL_RX_FEC] = "fec",           [SL_RX_BLOCK] = "block", [SL_RX_REPLAY] = "replay",
};

const char *sl_receiver_stage_name(enum sl_rx_stage s)
{
    return (unsigned)s < SL_RX_STAGES ? stage_names[s] : "unknown";
}

void sl_receiver_destroy(struct sl_receiver *r)
{
    if (!r)
        return;
    sl_fec_decoder_destroy(r->dec);
    free(r->msgs);
    free(r->slots);
    free(r);
}

sl_err sl_receiver_create(struct sl_receiver **out, const struct sl_receiver_config *cfg)
{
    *out = NULL;
    if (!cfg->trusted || !cfg->replay || cfg->batch < 1 || cfg->batch > 1024 ||
        cfg->datagram_max < SL_BEACON_BYTES || cfg->datagram_max > SL_FRAME_MAX_BYTES + 64)
        return SL_ERR_RANGE;
    struct sl_receiver *r = calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->cfg = *cfg;
    sl_err e = sl_fec_decoder_create(&r->dec, &cfg->fec);
    if (e == SL_OK && cfg->hw) {
        r->msgs = calloc(cfg->batch, sizeof *r->msgs);
        r->slots = malloc(cfg->batch * cfg->datagram_max);
        if (!r->msgs || !r->slots)
            e = SL_ERR_NOMEM;
        else
            for (size_t i = 0; i < cfg->batch; i++)
                r->msgs[i] = (struct sl_hw_rxmsg){ r->slots + i * cfg->datagram_max, cfg->datagram_max, 0 };
    }
    if (e != SL_OK) {
        sl_receiver_destroy(r);
        return e;
    }
    *out = r;
    return SL_OK;
}

static void drop(struct sl_receiver *r, enum sl_rx_stage stage, sl_err e)
{
    r->st.drops[stage][(unsigned)e < SL_ERR__COUNT ? e : SL_ERR_STATE]++;
}

static void beacon_in(struct sl_receiver *r, const uint8_t *dg, size_t len, uint64_t now_us)
{
    struct sl_beacon b;
    sl_err e = sl_datagram_beacon_open(&b, dg, len, r->cfg.trusted);
    if (e != SL_OK) {
        drop(r, SL_RX_BEACON, e);
        return;
    }
    /* Beacons have their own replay window (beacon_seq within the epoch),
     * so a recorded beacon cannot fake liveness after TX has gone. */
    e = sl_replay_accept(r->cfg.replay, b.key_id, SL_REPLAY_CHANNEL_BEACON, b.epoch, b.beacon_seq);
    if (e != SL_OK) {
        drop(r, SL_RX_BEACON, e);
        return;
    }
    r->st.beacons++;
    if (r->cfg.on_beacon)
        r->cfg.on_beacon(r->cfg.ctx, &b, now_us);
}

static void block_in(struct sl_receiver *r, const struct sl_fec_decoded *d, const struct sl_data_frame *f,
                     uint64_t now_us)
{
    struct sl_block_expect x = {
        .channel = d->channel,
        .symbol_size = d->symbol_size,
        .session = d->session,
        .epoch = f->epoch,
        .block_seq = d->block_seq,
        .k = d->k,
    };
    memcpy(x.key_id, f->key_id, sizeof x.key_id);
    const uint8_t *payload;
    size_t plen;
    struct sl_block_hdr h;
    sl_err e = sl_block_open(&payload, &plen, &h, d->data, d->len, &x, r->cfg.trusted);
    if (e != SL_OK) {
        drop(r, SL_RX_BLOCK, e);
        return;
    }
    e = sl_replay_accept(r->cfg.replay, f->key_id, h.channel, h.epoch, h.block_seq);
    if (e != SL_OK) {
        drop(r, SL_RX_REPLAY, e);
        return;
    }
    r->st.blocks++;
    if (d->recovered)
        r->st.blocks_recovered++;
    if (r->cfg.on_payload)
        r->cfg.on_payload(r->cfg.ctx, &h, f->key_id, payload, plen, now_us);
}

void sl_receiver_input(struct sl_receiver *r, const uint8_t *dg, size_t len, uint64_t now_us)
{
    r->st.datagrams++;
    uint8_t type;
    sl_err e = sl_datagram_peek(&type, dg, len);
    if (e != SL_OK) {
        drop(r, SL_RX_DATAGRAM, e);
        return;
    }
    if (type == SL_FRAME_BEACON) {
        beacon_in(r, dg, len, now_us);
        return;
    }
    struct sl_data_frame f;
    e = sl_datagram_data_parse(&f, dg, len);
    if (e != SL_OK) {
        drop(r, SL_RX_FRAME, e);
        return;
    }
    r->st.frames++;
    /* Cheap pre-check on the (unauthenticated) header: frames of a block
     * already accepted, or of an older epoch, never reach the decoder. It
     * only reads the window; only a verified block updates it. */
    e = sl_replay_check(r->cfg.replay, f.key_id, f.channel, f.epoch, f.block_seq);
    if (e != SL_OK) {
        /* Repair symbols of a block decoded before they arrived are the
         * normal tail of every clean block, not a replay: count them where
         * the decoder counts its own late symbols. */
        if (e == SL_ERR_REPLAY && f.index >= f.k)
            drop(r, SL_RX_FEC, SL_ERR_DUPLICATE);
        else
            drop(r, SL_RX_REPLAY, e);
        return;
    }
    struct sl_fec_symbol sym = {
        .session = f.session,
        .block_seq = f.block_seq,
        .channel = f.channel,
        .k = f.k,
        .m = f.m,
        .index = f.index,
        .symbol_size = f.symbol_size,
        .data = f.symbol,
    };
    struct sl_fec_decoded d;
    e = sl_fec_decode(r->dec, &d, &sym, now_us);
    if (e == SL_OK)
        block_in(r, &d, &f, now_us);
    else if (e != SL_ERR_AGAIN)
        drop(r, SL_RX_FEC, e);
}

void sl_receiver_tick(struct sl_receiver *r, uint64_t now_us)
{
    (void)sl_fec_decoder_tick(r->dec, now_us);
}

sl_err sl_receiver_poll(struct sl_receiver *r, int timeout_ms, uint64_t now_us)
{
    if (!r->cfg.hw)
        return SL_ERR_STATE;
    size_t got = 0;
    sl_err e = sl_hw_recv(r->cfg.hw, &got, r->msgs, r->cfg.batch, timeout_ms);
    for (size_t i = 0; i < got; i++)
        sl_receiver_input(r, r->msgs[i].buf, r->msgs[i].len, now_us);
    sl_receiver_tick(r, now_us);
    if (e == SL_OK && got == 0)
        return SL_ERR_AGAIN;
    return e;
}

void sl_receiver_stats(const struct sl_receiver *r, struct sl_receiver_stats *out)
{
    *out = r->st;
    sl_fec_decoder_counters(r->dec, &out->fec);
}
