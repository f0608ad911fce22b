#include "sl_liveness.h"

#include <string.h>

void sl_liveness_init(struct sl_liveness *l, uint32_t stale_ms)
{
    memset(l, 0, sizeof *l);
    l->stale_ms = stale_ms ? stale_ms : 1u;
}

/* Sample spacing: one per stale_ms / 32 bounds the ring for any event rate. */
static uint64_t gran_ms(const struct sl_liveness *l)
{
    return l->stale_ms / 32u ? l->stale_ms / 32u : 1u;
}

/* A new TX run: what was announced and verified before says nothing about
 * it. The stale flag, the episode counts and the link activity are kept;
 * the next tick decides staleness afresh. */
static void start_over(struct sl_liveness *l, uint64_t session, uint64_t epoch)
{
    l->have_session = true;
    l->session = session;
    l->epoch = epoch;
    l->head = l->n = l->nold = 0;
    l->open_ms = 0;
    l->announced = 0;
    l->have_data = false;
    l->data_high = 0;
    l->floor_beacon = l->floor_block = false;
    l->floor = l->bm_lo = 0;
    l->bm_started = false;
    memset(l->bits, 0, sizeof l->bits);
    l->next_eval_ms = 0;
    l->incomplete = false;
    l->win_lo = l->win_hi = l->win_missing = l->win_since_ms = 0;
}

static bool same_run(const struct sl_liveness *l, uint64_t session, uint64_t epoch)
{
    return l->have_session && l->session == session && l->epoch == epoch;
}

static struct sl_liveness_sample *at(struct sl_liveness *l, unsigned i)
{
    return &l->ring[(l->head + i) % SL_LIVENESS_SAMPLES];
}

static void drop_oldest(struct sl_liveness *l)
{
    l->head = (l->head + 1) % SL_LIVENESS_SAMPLES;
    l->n--;
    if (l->nold)
        l->nold--;
}

/* Records "blocks below l->announced were handed to the link by now_ms".
 * An event closer than gran_ms to the first event of the newest sample
 * updates that sample in place, moving its time to now_ms: an announcement
 * is never lost (the last beacon before a cut counts) and never dated
 * earlier than it was learnt, so thinning only makes the rules more
 * lenient, by less than gran_ms. The newest sample is younger than
 * gran_ms <= stale_ms while it is updated, so never among the nold
 * old-enough ones. */
static void note(struct sl_liveness *l, uint64_t now_ms)
{
    if (l->n > 0 && (now_ms < l->open_ms || now_ms - l->open_ms < gran_ms(l))) {
        struct sl_liveness_sample *last = at(l, l->n - 1);
        if (now_ms > last->ms)
            last->ms = now_ms;
        last->highest = l->announced;
        return;
    }
    if (l->n == SL_LIVENESS_SAMPLES)   /* not ticked for long: forget the oldest */
        drop_oldest(l);
    *at(l, l->n) = (struct sl_liveness_sample){ now_ms, l->announced };
    l->n++;
    l->open_ms = now_ms;
}

/* The run's first beacon and first block each raise the floor: blocks
 * below it were announced before this RX knew the run (RX started
 * mid-session, frames of a block partly sent before it listened) and are
 * never counted missing. The bitmap starts at the first floor. */
static void raise_floor(struct sl_liveness *l, uint64_t seq)
{
    if (!l->bm_started) {
        l->bm_lo = seq;
        l->bm_started = true;
    }
    if (seq > l->floor)
        l->floor = seq;
}

/* Nothing at all (no beacon, no verified block) for stale_ms: the link was
 * cut and the mirror went stale for it already. The blocks TX sent during
 * the cut are not held against the link once it is back, or every tag
 * would stay stale for the whole window after a cut ends; counting resumes
 * from the next beacon and block, as at start. A shorter silence is not a
 * cut and its losses count. */
static void resume_after_cut(struct sl_liveness *l, uint64_t now_ms)
{
    if (l->n == 0)
        return;
    const struct sl_liveness_sample *last = at(l, l->n - 1);
    if (now_ms >= last->ms && now_ms - last->ms >= l->stale_ms)
        l->floor_beacon = l->floor_block = false;
}

void sl_liveness_beacon(struct sl_liveness *l, uint64_t now_ms, uint64_t session, uint64_t epoch,
                        uint64_t highest_block)
{
    if (!same_run(l, session, epoch))
        start_over(l, session, epoch);
    resume_after_cut(l, now_ms);
    if (!l->floor_beacon) {
        raise_floor(l, highest_block);
        l->floor_beacon = true;
    }
    if (highest_block > l->announced)
        l->announced = highest_block;
    note(l, now_ms);
}

static uint64_t bm_top(const struct sl_liveness *l)
{
    return l->bm_lo > UINT64_MAX - SL_LIVENESS_BITS ? UINT64_MAX : l->bm_lo + SL_LIVENESS_BITS;
}

static void bit_set(struct sl_liveness *l, uint64_t seq)
{
    if (seq < l->bm_lo)
        return;   /* older than anything still judged */
    if (seq - l->bm_lo >= SL_LIVENESS_BITS) {
        /* Slide up so seq is the top bit; what leaves is forgotten. */
        uint64_t lo = seq - (SL_LIVENESS_BITS - 1u);
        if (lo - l->bm_lo >= SL_LIVENESS_BITS)
            memset(l->bits, 0, sizeof l->bits);
        else
            for (uint64_t s = l->bm_lo; s < lo; s++)
                l->bits[(s % SL_LIVENESS_BITS) / 64u] &= ~(1ull << (s % 64u));
        l->bm_lo = lo;
    }
    l->bits[(seq % SL_LIVENESS_BITS) / 64u] |= 1ull << (seq % 64u);
}

void sl_liveness_block(struct sl_liveness *l, uint64_t now_ms, uint64_t session, uint64_t epoch,
                       uint64_t block_seq)
{
    if (!same_run(l, session, epoch))
        start_over(l, session, epoch);
    resume_after_cut(l, now_ms);
    if (!l->floor_block) {
        raise_floor(l, block_seq);
        l->floor_block = true;
    }
    if (!l->have_data || block_seq > l->data_high)
        l->data_high = block_seq;
    l->have_data = true;
    l->have_block_ms = true;
    l->last_block_ms = now_ms;
    bit_set(l, block_seq);
    /* A verified block b proves b was handed to the link: the same
     * announcement a beacon would make, so starved beacons do not blind
     * the rules. */
    if (block_seq < UINT64_MAX && block_seq + 1u > l->announced)
        l->announced = block_seq + 1u;
    note(l, now_ms);
}

/* Received at least age_ms before now_ms. */
static bool older(const struct sl_liveness_sample *s, uint64_t now_ms, uint64_t age_ms)
{
    return s->ms <= now_ms && now_ms - s->ms >= age_ms;
}

/* Over [lo, top) (lo >= bm_lo, top <= bm_top): how many were verified and
 * the longest run of consecutive unverified ones; *tail is the run that
 * ends at top. BITS is a multiple of 64, so no chunk wraps inside a word;
 * whole words of 0 or 1 bits are taken at once. */
static uint64_t scan_bits(const struct sl_liveness *l, uint64_t lo, uint64_t top, uint64_t *longest,
                          uint64_t *tail)
{
    uint64_t c = 0, run = 0, best = 0;
    while (lo < top) {
        unsigned p = (unsigned)(lo % SL_LIVENESS_BITS), b = p % 64u;
        uint64_t take = 64u - b;
        if (take > top - lo)
            take = top - lo;
        uint64_t mask = take == 64u ? ~0ull : ((1ull << take) - 1u) << b;
        uint64_t w = l->bits[p / 64u] & mask;
        c += (uint64_t)__builtin_popcountll(w);
        if (w == 0) {
            run += take;
        } else {
            for (uint64_t i = 0; i < take; i++) {
                if (w >> (b + i) & 1u) {
                    if (run > best)
                        best = run;
                    run = 0;
                } else {
                    run++;
                }
            }
        }
        lo += take;
    }
    if (run > best)
        best = run;
    *longest = best;
    *tail = run;
    return c;
}

/* pct % of m, without overflow. */
static uint64_t share(uint64_t m, unsigned pct)
{
    return m / 100u * pct + m % 100u * pct / 100u;
}

/* The completeness rule over the blocks announced between (1 + WINDOW)
 * stale_ms and stale_ms ago (newest old-enough sample at nold - 1; head is
 * the newest sample at least the window's age, when there is one), counted
 * from the floor. Blocks announced beyond the bitmap's top were never
 * verified, so count missing; blocks below its bottom are not judged (a
 * run faster than the bitmap holds is judged on its newest BITS blocks).
 *
 * The longest run of consecutive missing blocks is forgiven: one outage is
 * the other rules' business (longer than stale_ms it is a cut or a lag and
 * already stale; shorter, it is a burst of loss the link may have), while
 * scattered losses, or several outages in one window, are what selective
 * loss looks like. */
static void judge_complete(struct sl_liveness *l, uint64_t now_ms)
{
    uint64_t win_age = (uint64_t)l->stale_ms * (1u + SL_LIVENESS_WINDOW_PERIODS);
    if (l->nold == 0) {
        l->incomplete = false;
        return;
    }
    struct sl_liveness_sample *s = at(l, l->nold - 1);
    uint64_t hi = s->highest;
    uint64_t lo = older(at(l, 0), now_ms, win_age) ? at(l, 0)->highest : 0;
    if (lo < l->floor)
        lo = l->floor;
    if (lo < l->bm_lo)
        lo = l->bm_lo;
    if (hi < lo)
        hi = lo;
    uint64_t m = hi - lo;
    uint64_t top = hi < bm_top(l) ? hi : bm_top(l);
    uint64_t run = 0, tail = 0, got = 0;
    if (top > lo)
        got = scan_bits(l, lo, top, &run, &tail);
    if (hi > top) {   /* announced beyond the bitmap: one run with the tail */
        tail += hi - (top > lo ? top : lo);
        if (tail > run)
            run = tail;
    }
    uint64_t missing = m - got;
    uint64_t pct = l->incomplete ? SL_LIVENESS_RECOVER_PCT : SL_LIVENESS_MISSING_PCT;
    uint64_t limit = share(m - run, (unsigned)pct);
    if (limit < SL_LIVENESS_MISSING_MIN)
        limit = SL_LIVENESS_MISSING_MIN;
    l->incomplete = missing - run > limit;
    l->win_lo = lo;
    l->win_hi = hi;
    l->win_missing = missing;
    l->win_run = run;
    l->win_since_ms = s->ms;
}

unsigned sl_liveness_tick(struct sl_liveness *l, uint64_t now_ms)
{
    uint64_t win_age = (uint64_t)l->stale_ms * (1u + SL_LIVENESS_WINDOW_PERIODS);
    while (l->nold < l->n && older(at(l, l->nold), now_ms, l->stale_ms))
        l->nold++;
    /* Keep one sample at least the window's age (the window's start); the
     * ones before it are no longer needed. */
    while (l->n >= 2 && older(at(l, 1), now_ms, win_age))
        drop_oldest(l);
    if (now_ms >= l->next_eval_ms || now_ms + gran_ms(l) < l->next_eval_ms) {
        l->next_eval_ms = now_ms + gran_ms(l);
        judge_complete(l, now_ms);
    }
    bool stale = false;
    if (l->nold > 0) {
        const struct sl_liveness_sample *s = at(l, l->nold - 1);
        uint64_t h = s->highest;
        /* Lagging unless the verified blocks reach H - 1 - SLACK (written
         * so that no sum can overflow). */
        bool live = h <= SL_LIVENESS_SLACK_BLOCKS ||
                    (l->have_data && l->data_high >= h - SL_LIVENESS_SLACK_BLOCKS - 1u);
        if (!live) {
            stale = true;
            l->reason = SL_LIVENESS_LAGGING;
            l->lag_announced = h;
        } else if (l->incomplete) {
            stale = true;
            l->reason = SL_LIVENESS_INCOMPLETE;
            l->lag_announced = h;
        }
        if (stale)
            l->lag_since_ms = s->ms;
    }
    unsigned ev = 0;
    if (stale && !l->stale) {
        ev = SL_LIVENESS_STALE_START;
        l->episodes++;
        if (l->reason == SL_LIVENESS_INCOMPLETE)
            l->incomplete_episodes++;
    } else if (!stale && l->stale) {
        ev = SL_LIVENESS_STALE_END;
    }
    if (!stale)
        l->reason = SL_LIVENESS_FRESH;
    l->stale = stale;
    return ev;
}

bool sl_liveness_stale(const struct sl_liveness *l)
{
    return l->stale;
}

uint64_t sl_liveness_live_ms(const struct sl_liveness *l, uint64_t last_beacon_ms)
{
    uint64_t act = last_beacon_ms;
    if (l->have_block_ms && l->last_block_ms > act)
        act = l->last_block_ms;
    if (l->stale && l->lag_since_ms < act)
        return l->lag_since_ms;
    return act;
}

/* ---- One tracker per trusted key ---- */

void sl_liveness_set_init(struct sl_liveness_set *s, uint32_t stale_ms)
{
    memset(s, 0, sizeof *s);
    s->stale_ms = stale_ms ? stale_ms : 1u;
    for (unsigned i = 0; i < SL_LIVENESS_KEYS; i++)
        sl_liveness_init(&s->key[i], s->stale_ms);
}

static struct sl_liveness *set_use(struct sl_liveness_set *s, unsigned slot, uint64_t now_ms)
{
    if (slot >= SL_LIVENESS_KEYS)
        return NULL;
    s->used[slot] = true;
    if (now_ms > s->last_ms[slot])
        s->last_ms[slot] = now_ms;
    return &s->key[slot];
}

void sl_liveness_set_beacon(struct sl_liveness_set *s, unsigned slot, uint64_t now_ms, uint64_t session,
                            uint64_t epoch, uint64_t highest_block)
{
    struct sl_liveness *l = set_use(s, slot, now_ms);
    if (l)
        sl_liveness_beacon(l, now_ms, session, epoch, highest_block);
}

void sl_liveness_set_block(struct sl_liveness_set *s, unsigned slot, uint64_t now_ms, uint64_t session,
                           uint64_t epoch, uint64_t block_seq)
{
    struct sl_liveness *l = set_use(s, slot, now_ms);
    if (!l)
        return;
    sl_liveness_block(l, now_ms, session, epoch, block_seq);
    s->have_block_ms = true;
    s->last_block_ms = now_ms;
}

unsigned sl_liveness_set_tick(struct sl_liveness_set *s, uint64_t now_ms)
{
    uint64_t retire_ms = (uint64_t)s->stale_ms * SL_LIVENESS_RETIRE_PERIODS;
    bool stale = false;
    unsigned culprit = 0;
    uint64_t missing = 0;
    for (unsigned i = 0; i < SL_LIVENESS_KEYS; i++) {
        if (!s->used[i])
            continue;
        if (now_ms >= s->last_ms[i] && now_ms - s->last_ms[i] >= retire_ms) {
            /* Silent for RETIRE_PERIODS: the key stopped sending (rotation
             * done); a later frame of it starts a fresh tracker, as at RX
             * start. */
            sl_liveness_init(&s->key[i], s->stale_ms);
            s->used[i] = false;
            s->last_ms[i] = 0;
            s->retired++;
            continue;
        }
        sl_liveness_tick(&s->key[i], now_ms);
        missing += s->key[i].win_missing;
        if (s->key[i].stale && !stale) {
            stale = true;
            culprit = i;
        }
    }
    s->win_missing = missing;
    unsigned ev = 0;
    if (stale && !s->stale) {
        ev = SL_LIVENESS_STALE_START;
        s->episodes++;
        if (s->key[culprit].reason == SL_LIVENESS_INCOMPLETE)
            s->incomplete_episodes++;
    } else if (!stale && s->stale) {
        ev = SL_LIVENESS_STALE_END;
    }
    s->stale = stale;
    s->culprit = culprit;
    return ev;
}

bool sl_liveness_set_stale(const struct sl_liveness_set *s)
{
    return s->stale;
}

const struct sl_liveness *sl_liveness_set_culprit(const struct sl_liveness_set *s)
{
    return s->stale && s->culprit < SL_LIVENESS_KEYS ? &s->key[s->culprit] : NULL;
}

uint64_t sl_liveness_set_live_ms(const struct sl_liveness_set *s, uint64_t last_beacon_ms)
{
    uint64_t act = last_beacon_ms;
    if (s->have_block_ms && s->last_block_ms > act)
        act = s->last_block_ms;
    if (!s->stale)
        return act;
    for (unsigned i = 0; i < SL_LIVENESS_KEYS; i++)
        if (s->used[i] && s->key[i].stale && s->key[i].lag_since_ms < act)
            act = s->key[i].lag_since_ms;
    return act;
}
