#include "sl_receiver.h"

#include <stdlib.h>
#include <string.h>

#include "sl_hw.h"

/* A token bucket of failed verifications, in millionths of a token so
 * that refill needs no division: rate tokens per second = rate micro-tokens
 * per µs. Depth: one second's worth. A failure is charged by its cost (see
 * charge()), which may leave the bucket in debt: the average rate holds
 * whatever the blocks' sizes, and a large genuine block is never starved by
 * a flood of small forged ones. */
#define TOKEN 1000000u

struct budget {
    int64_t micro;      /* millionths of a token available (< 0: debt) */
    uint64_t last_us;   /* last refill */
};

/* The last verified beacon of one trusted key: what its frames look like,
 * and where its beacon_seq can plausibly be by now. */
struct announce {
    bool valid;
    uint64_t session;
    uint64_t epoch;
    uint64_t highest_block;  /* tag blocks handed to the link + 1 (0: none) */
    uint16_t symbol_size;
    uint8_t k, m;
    uint64_t beacon_seq;     /* of the last verified beacon */
    uint64_t beacon_us;      /* its arrival */
    uint64_t interval_us;    /* learned spacing of this TX run's beacons */
    struct budget pool;      /* failed checks of blocks of (this key, its announced session) */
    struct budget beacon_pool; /* failed checks of beacons claiming this key */
};

struct sl_receiver {
    struct sl_receiver_config cfg;
    struct sl_fec_decoder *dec;
    struct sl_hw_rxmsg *msgs;       /* batch slots */
    uint8_t *slots;                 /* batch * datagram_max bytes */
    struct announce ann[SL_KEY_SET_MAX];   /* by index in cfg.trusted */
    struct budget unannounced;      /* shared by blocks that match no beacon */
    unsigned key_rate;              /* cfg.fail_per_s split over the trusted keys */
    unsigned key_beacon_rate;       /* cfg.fail_beacon_per_s split likewise */
    struct sl_receiver_stats st;
};

static const char *const stage_names[SL_RX_STAGES] = {
    [SL_RX_DATAGRAM] = "datagram", [SL_RX_FRAME] = "frame", [SL_RX_BEACON] = "beacon",
    [SL_RX_FEC] = "fec",           [SL_RX_BLOCK] = "block", [SL_RX_REPLAY] = "replay",
    [SL_RX_ANNOUNCE] = "announce",
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
        cfg->datagram_max < SL_BEACON_BYTES || cfg->datagram_max > SL_FRAME_MAX_BYTES + 64 ||
        cfg->fail_per_s > SL_RX_FAIL_PER_S_MAX || cfg->fail_unannounced_per_s > SL_RX_FAIL_PER_S_MAX ||
        cfg->fail_beacon_per_s > SL_RX_FAIL_PER_S_MAX)
        return SL_ERR_RANGE;
    struct sl_receiver *r = calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->cfg = *cfg;
    if (!r->cfg.fail_per_s)
        r->cfg.fail_per_s = SL_RX_FAIL_PER_S_DEFAULT;
    if (!r->cfg.fail_unannounced_per_s)
        r->cfg.fail_unannounced_per_s = SL_RX_FAIL_UNANNOUNCED_PER_S_DEFAULT;
    if (!r->cfg.fail_beacon_per_s)
        r->cfg.fail_beacon_per_s = SL_RX_FAIL_BEACON_PER_S_DEFAULT;
    /* The rates are totals: split over the keys, so that the CPU spent on
     * failures stays the same whatever the number of trusted keys. */
    size_t nkeys = cfg->trusted->count ? cfg->trusted->count : 1;
    r->key_rate = (unsigned)(r->cfg.fail_per_s / nkeys) ? (unsigned)(r->cfg.fail_per_s / nkeys) : 1u;
    r->key_beacon_rate =
        (unsigned)(r->cfg.fail_beacon_per_s / nkeys) ? (unsigned)(r->cfg.fail_beacon_per_s / nkeys) : 1u;
    /* Buckets start full; the first refill anchors them to the caller's clock. */
    r->unannounced.micro = (int64_t)r->cfg.fail_unannounced_per_s * TOKEN;
    for (size_t i = 0; i < SL_KEY_SET_MAX; i++)
        r->ann[i].beacon_pool.micro = (int64_t)r->key_beacon_rate * TOKEN;
    sl_err e = sl_fec_decoder_create(&r->dec, &cfg->fec);
    if (e == SL_OK && cfg->hw) {
        r->msgs = calloc(cfg->batch, sizeof *r->msgs);
        r->slots = malloc(cfg->batch * cfg->datagram_max);
        if (!r->msgs || !r->slots)
            e = SL_ERR_NOMEM;
        else
            for (size_t i = 0; i < cfg->batch; i++)
                r->msgs[i] = (struct sl_hw_rxmsg){ r->slots + i * cfg->datagram_max, cfg->datagram_max, 0, NULL };
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
    if ((unsigned)e < SL_ERR__COUNT)
        r->st.drops[stage][e]++;
    else
        r->st.drops_unclassified++;
}

/* Refills b for the time since its last refill (rate tokens per second, at
 * most one second's worth held) and says whether a whole token is there. A
 * clock that went backwards re-anchors without refilling. */
static bool budget_ready(struct budget *b, unsigned rate, uint64_t now_us)
{
    int64_t cap = (int64_t)rate * TOKEN;
    if (now_us > b->last_us) {
        uint64_t dt = now_us - b->last_us;
        /* 2 s refills any debt (at most one second's worth) to the cap */
        int64_t add = dt >= 2u * TOKEN ? 2 * cap : (int64_t)dt * rate;
        b->micro = cap - b->micro <= add ? cap : b->micro + add;
    }
    b->last_us = now_us;
    return b->micro >= (int64_t)TOKEN;
}

/* Charges one failed verification of len signed bytes: one token, plus one
 * per SL_RX_VERIFY_BYTES_PER_TOKEN hashed (SHA-512 over a 90 KB block
 * costs ~4 times the curve arithmetic). Debt is capped at one second. */
static void budget_spend(struct budget *b, unsigned rate, size_t len)
{
    int64_t cost = (int64_t)TOKEN + (int64_t)(len * TOKEN / SL_RX_VERIFY_BYTES_PER_TOKEN);
    int64_t floor = -(int64_t)rate * TOKEN;
    b->micro = b->micro - cost < floor ? floor : b->micro - cost;
}

/* Index of key id in the trusted set, or -1. */
static int key_index(const struct sl_receiver *r, const uint8_t id[SL_KEY_ID_BYTES])
{
    const struct sl_key_public *k = sl_key_set_find(r->cfg.trusted, id);
    return k ? (int)(k - r->cfg.trusted->key) : -1;
}

/* Can a genuine TX have reached this beacon_seq by now? Its beacons come
 * every beacon_ms (not on the wire), so the bound is learned: from the last
 * verified beacon of the key, at most SL_RX_BEACON_SLACK plus two per
 * learned interval elapsed since it arrived. A new epoch (TX restarted
 * after that beacon, numbering from 0) gets the same bound from 0 with the
 * shortest interval TX allows; so does a key whose last verified beacon is
 * older than SL_RX_BEACON_RELEARN_US. Before the first verified beacon of
 * this RX run there is no bound (the budget alone). Cheap: a few integer
 * operations, so a flood of forged beacons with made-up sequences never
 * reaches a verification nor spends the budget genuine beacons need. */
static bool beacon_plausible(const struct announce *a, const struct sl_beacon *b, uint64_t now_us)
{
    if (!a->valid || b->epoch < a->epoch)
        return true;   /* no bound yet; an older epoch is the replay check's */
    uint64_t el = now_us > a->beacon_us ? now_us - a->beacon_us : 0;
    bool same = b->epoch == a->epoch;
    uint64_t iv = same && el < SL_RX_BEACON_RELEARN_US ? a->interval_us : SL_RX_BEACON_MIN_INTERVAL_US;
    uint64_t base = same ? a->beacon_seq : 0;
    uint64_t ahead = SL_RX_BEACON_SLACK + 2u * (el / (iv ? iv : 1u));
    return b->beacon_seq <= base || b->beacon_seq - base <= ahead;
}

/* Learns the beacon spacing from two verified beacons of one run: quick to
 * shrink (a shorter spacing widens the bound at once), slow to grow (1/8
 * per beacon), never below TX's minimum beacon_ms. */
static void beacon_learn(struct announce *a, const struct sl_beacon *b, uint64_t now_us, bool same_run)
{
    if (same_run && b->beacon_seq > a->beacon_seq && now_us >= a->beacon_us) {
        uint64_t step = (now_us - a->beacon_us) / (b->beacon_seq - a->beacon_seq);
        if (step < SL_RX_BEACON_MIN_INTERVAL_US)
            step = SL_RX_BEACON_MIN_INTERVAL_US;
        a->interval_us = step <= a->interval_us ? step : a->interval_us + (step - a->interval_us) / 8u;
    } else if (!same_run) {
        a->interval_us = SL_RX_BEACON_MIN_INTERVAL_US;
    } else {
        return;   /* an older beacon of the run, late: the bound stays */
    }
    a->beacon_seq = b->beacon_seq;
    a->beacon_us = now_us;
}

static void beacon_in(struct sl_receiver *r, const uint8_t *dg, size_t len, uint64_t now_us)
{
    struct sl_beacon b;
    /* Everything cheap first: layout, CRC, fields, trusted key, canonical
     * s, and the replay window read-only (a recorded genuine beacon would
     * verify, so it must be refused before it costs a verification), then
     * the plausibility of its sequence; the budget is the key's own. */
    sl_err e = sl_datagram_beacon_check(&b, dg, len, r->cfg.trusted);
    int ki = e == SL_OK ? key_index(r, b.key_id) : -1;
    if (e == SL_OK && ki < 0)
        e = SL_ERR_UNKNOWN_KEY;
    if (e == SL_OK)
        e = sl_replay_check(r->cfg.replay, b.key_id, SL_REPLAY_CHANNEL_BEACON, b.epoch, b.beacon_seq);
    if (e == SL_OK && !beacon_plausible(&r->ann[ki], &b, now_us))
        e = SL_ERR_RANGE;
    if (e == SL_OK && !budget_ready(&r->ann[ki].beacon_pool, r->key_beacon_rate, now_us))
        e = SL_ERR_BUDGET;
    if (e != SL_OK) {
        drop(r, SL_RX_BEACON, e);
        return;
    }
    r->st.verifies++;
    e = sl_datagram_beacon_open(&b, dg, len, r->cfg.trusted);
    if (e != SL_OK) {
        r->st.verify_failures++;
        budget_spend(&r->ann[ki].beacon_pool, r->key_beacon_rate, SL_BEACON_SIGNED_BYTES);
        drop(r, SL_RX_BEACON, e);
        return;
    }
    /* Beacons have their own replay window (beacon_seq within the epoch),
     * so a recorded beacon cannot fake liveness after TX has gone. */
    /* A verified beacon still must not claim a position no run reaches
     * (TX numbers blocks from 0 per epoch): bounded, the receive window
     * arithmetic on it cannot wrap. */
    if (b.highest_block > SL_RX_HIGHEST_BLOCK_MAX) {
        drop(r, SL_RX_BEACON, SL_ERR_RANGE);
        return;
    }
    e = sl_replay_accept(r->cfg.replay, b.key_id, SL_REPLAY_CHANNEL_BEACON, b.epoch, b.beacon_seq);
    if (e != SL_OK) {
        drop(r, SL_RX_BEACON, e);
        return;
    }
    {
        struct announce *a = &r->ann[ki];
        bool fresh = !a->valid || a->session != b.session || a->epoch != b.epoch;
        beacon_learn(a, &b, now_us, !fresh);
        a->valid = true;
        a->session = b.session;
        a->epoch = b.epoch;
        a->highest_block = b.highest_block;
        a->symbol_size = b.symbol_size;
        a->k = b.k;
        a->m = b.m;
        if (fresh) {
            /* The pool belongs to (key, announced session): a new session
             * starts with a full bucket of its own. Only a verified beacon
             * changes the session, so a forger cannot refill it. */
            a->pool.micro = (int64_t)r->key_rate * TOKEN;
            a->pool.last_us = now_us;
        }
    }
    r->st.beacons++;
    if (r->cfg.on_beacon)
        r->cfg.on_beacon(r->cfg.ctx, &b, now_us);
}

/* Where a DATA frame of a trusted key stands against that key's last
 * verified beacon: SL_OK with *announced set (it matches) or clear (newer
 * epoch or no beacon yet), SL_ERR_EPOCH (older epoch) or SL_ERR_MISMATCH
 * (same epoch, other session, S, k' > k or m' not TX's repair count for
 * k'). TX restarts always bump the epoch, so same-epoch disagreement is
 * never genuine. */
static sl_err announce_check(const struct announce *a, const struct sl_data_frame *f, bool *announced)
{
    *announced = false;
    if (!a->valid || f->epoch > a->epoch)
        return SL_OK;
    if (f->epoch < a->epoch)
        return SL_ERR_EPOCH;
    if (f->session != a->session || f->symbol_size != a->symbol_size || f->k > a->k ||
        f->m != sl_fec_repair_count(a->k, a->m, f->k))
        return SL_ERR_MISMATCH;
    *announced = true;
    return SL_OK;
}

/* Where an announced frame's stream stands: the highest block_seq verified
 * in its (key, channel, epoch) and, for the tag channel, the highest block
 * the last verified beacon says TX handed to the link, whichever is ahead.
 * false when neither is known: such a stream is unranked (evicted before
 * ranked blocks), not "at 0", since rank 0 would let junk on ids 0 and 1
 * tie with every genuine block next to a real frontier. */
static bool frontier(uint64_t *fr, const struct sl_receiver *r, const struct announce *a,
                     const struct sl_data_frame *f)
{
    uint64_t ep = 0, hi = 0;
    bool known = false;
    *fr = 0;
    if (sl_replay_position(&ep, &hi, r->cfg.replay, f->key_id, f->channel) == SL_OK && ep == f->epoch) {
        *fr = hi;
        known = true;
    }
    if (f->channel == SL_CHANNEL_TAGS && a->highest_block > 0) {
        if (a->highest_block - 1u > *fr)
            *fr = a->highest_block - 1u;
        known = true;
    }
    return known;
}

static void block_in(struct sl_receiver *r, const struct sl_fec_decoded *d, const struct sl_data_frame *f,
                     int ki, bool announced, uint64_t now_us)
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
    /* Layout, fields, padding, trusted key, canonical s: ~1 µs, no token. */
    sl_err e = sl_block_check(d->data, d->len, &x, r->cfg.trusted);
    struct budget *pool = announced ? &r->ann[ki].pool : &r->unannounced;
    unsigned rate = announced ? r->key_rate : r->cfg.fail_unannounced_per_s;
    if (e == SL_OK && !budget_ready(pool, rate, now_us))
        e = SL_ERR_BUDGET;
    if (e != SL_OK) {
        drop(r, SL_RX_BLOCK, e);
        return;
    }
    const uint8_t *payload;
    size_t plen;
    struct sl_block_hdr h;
    r->st.verifies++;
    e = sl_block_open(&payload, &plen, &h, d->data, d->len, &x, r->cfg.trusted);
    if (e != SL_OK) {
        /* Not remembered: genuine symbols of this id may still arrive and
         * open a fresh entry. */
        r->st.verify_failures++;
        budget_spend(pool, rate, d->len);
        drop(r, SL_RX_BLOCK, e);
        return;
    }
    e = sl_replay_accept(r->cfg.replay, f->key_id, h.channel, h.epoch, h.block_seq);
    if (e != SL_OK) {
        /* Signed but refused (the pre-check passed, so this is rare): it
         * still cost a verification, so it is charged like a failure. */
        budget_spend(pool, rate, d->len);
        drop(r, SL_RX_REPLAY, e);
        return;
    }
    sl_fec_decoder_done(r->dec, d);
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
    /* A key we do not trust can never produce a block: do not let its
     * frames take decoder room. */
    int ki = key_index(r, f.key_id);
    if (ki < 0) {
        drop(r, SL_RX_FRAME, SL_ERR_UNKNOWN_KEY);
        return;
    }
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
    bool announced;
    e = announce_check(&r->ann[ki], &f, &announced);
    if (e != SL_OK) {
        drop(r, SL_RX_ANNOUNCE, e);
        return;
    }
    /* Announced room only near the stream's frontier: junk that copies the
     * beacon's parameters onto far ids goes to the unannounced part, and
     * within the window the decoder evicts whatever is farthest from the
     * frontier first. Frames of a stream whose frontier is known carry it
     * (ranked), in or outside the window, so a block demoted to the
     * unannounced part keeps its rank there against far junk. */
    uint64_t fr = 0;
    bool ranked = false, far = false;
    if (announced) {
        ranked = frontier(&fr, r, &r->ann[ki], &f);
        /* Differences, not sums: fr and block_seq are bounded (beacon
         * highest_block, replay jumps) but nothing here may wrap. */
        if ((f.block_seq > fr && f.block_seq - fr > SL_RX_AHEAD_BLOCKS) ||
            (f.block_seq < fr && fr - f.block_seq >= SL_REPLAY_WINDOW)) {
            announced = false;
            far = true;
            r->st.outside_window++;
        }
    }
    uint64_t tag;
    _Static_assert(sizeof tag == SL_KEY_ID_BYTES, "the key id is the decoder's tag");
    memcpy(&tag, f.key_id, sizeof tag);
    struct sl_fec_symbol sym = {
        .session = f.session,
        .epoch = f.epoch,
        .block_seq = f.block_seq,
        .tag = tag,
        .frontier = fr,
        .channel = f.channel,
        .k = f.k,
        .m = f.m,
        .index = f.index,
        .unannounced = !announced,
        .ranked = ranked,
        .yields = far,
        .symbol_size = f.symbol_size,
        .data = f.symbol,
    };
    struct sl_fec_decoded d;
    e = sl_fec_decode(r->dec, &d, &sym, now_us);
    if (e == SL_OK)
        block_in(r, &d, &f, ki, announced, now_us);
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
        sl_receiver_input(r, r->msgs[i].data, r->msgs[i].len, now_us);
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
