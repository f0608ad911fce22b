/* Liveness from data (rx/sl_liveness): tag blocks that lag what beacons
 * announce for longer than stale_ms, or too many announced blocks never
 * verified (selective loss), make the mirror stale exactly as a cut link
 * does, and data flowing again brings it back; verified blocks keep the
 * link live when beacons are starved. An isolated lost block, FEC's rare
 * unrecoverable block, a burst of loss, a file-only TX, a short lag, a TX
 * or RX restart and the end of a cut do not trip it. Times are injected:
 * the rules read no clock. */
#include <inttypes.h>

#include "rx_fixture.h"
#include "sl_liveness.h"

#define S 0x1111u   /* session */
#define E 5u        /* epoch */

/* A TX sending one tag block every `every` ms and (with beacons) a beacon
 * every 200 ms, from t0 to t1; blocks whose seq is in lost[] never arrive.
 * Ticks every 50 ms and counts the transitions in the run. */
struct run {
    struct sl_liveness l;
    uint64_t seq;          /* next block_seq TX will send */
    unsigned starts, ends;
    bool ever_stale;
};

static void drive(struct run *r, uint64_t t0, uint64_t t1, uint64_t every, const uint64_t *lost,
                  size_t nlost, bool beacons)
{
    for (uint64_t t = t0; t < t1; t += 10) {
        if ((t - t0) % every == 0) {
            bool gone = false;
            for (size_t i = 0; i < nlost; i++)
                gone |= lost[i] == r->seq;
            if (!gone)
                sl_liveness_block(&r->l, t, S, E, r->seq);
            r->seq++;
        }
        if (beacons && t % 200 == 0)
            sl_liveness_beacon(&r->l, t, S, E, r->seq);   /* highest_block = sent + 1 */
        if (t % 50 == 0) {
            unsigned ev = sl_liveness_tick(&r->l, t);
            r->starts += (ev & SL_LIVENESS_STALE_START) != 0;
            r->ends += (ev & SL_LIVENESS_STALE_END) != 0;
            r->ever_stale |= sl_liveness_stale(&r->l);
        }
    }
}

SL_TEST(liveness, nothing_announced_is_live)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 1000);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 100000), 0);
    CU_ASSERT_FALSE(sl_liveness_stale(&l));
    CU_ASSERT_EQUAL(sl_liveness_live_ms(&l, 42), 42);
    /* A file-only TX: beacons with highest_block 0 forever. */
    for (uint64_t t = 0; t < 10000; t += 200) {
        sl_liveness_beacon(&l, t, S, E, 0);
        CU_ASSERT_EQUAL(sl_liveness_tick(&l, t), 0);
    }
    CU_ASSERT_FALSE(sl_liveness_stale(&l));
}

SL_TEST(liveness, data_keeping_up_is_live)
{
    struct run r;
    memset(&r, 0, sizeof r);
    sl_liveness_init(&r.l, 1000);
    drive(&r, 0, 20000, 20, NULL, 0, true);
    CU_ASSERT_FALSE(r.ever_stale);
    CU_ASSERT_EQUAL(r.l.episodes, 0);
}

/* Beacons keep coming, tag blocks stop (poisoned decoder, lost frames):
 * stale after stale_ms, once; recovers when blocks arrive again. */
SL_TEST(liveness, lag_longer_than_stale_ms_then_recovery)
{
    struct run r;
    memset(&r, 0, sizeof r);
    sl_liveness_init(&r.l, 1000);
    drive(&r, 0, 5000, 100, NULL, 0, true);
    CU_ASSERT_FALSE(r.ever_stale);
    /* From 5000 every block is lost. */
    uint64_t lost[200];
    for (size_t i = 0; i < 200; i++)
        lost[i] = r.seq + i;
    drive(&r, 5000, 5900, 100, lost, 200, true);
    CU_ASSERT_FALSE(r.ever_stale);                   /* under stale_ms: not yet */
    drive(&r, 5900, 8000, 100, lost, 200, true);
    CU_ASSERT(sl_liveness_stale(&r.l));
    CU_ASSERT_EQUAL(r.starts, 1);
    CU_ASSERT_EQUAL(r.l.episodes, 1);
    /* The mirror ticked with live_ms goes stale although beacons are fresh. */
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    uint64_t live = sl_liveness_live_ms(&r.l, 7990);
    CU_ASSERT(live <= 8000 - 1000);
    sl_mirror_tick(m, 8000, live);
    CU_ASSERT_FALSE(sl_mirror_link_up(m));
    CU_ASSERT_EQUAL(sl_mirror_quality(m, 3), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    /* Blocks arrive again: live at the next tick, mirror up, held values
     * stay Uncertain until TX sends them again (as after a cut link). */
    drive(&r, 8000, 9000, 100, NULL, 0, true);
    CU_ASSERT_FALSE(sl_liveness_stale(&r.l));
    CU_ASSERT_EQUAL(r.ends, 1);
    sl_mirror_tick(m, 9000, sl_liveness_live_ms(&r.l, 8990));
    CU_ASSERT(sl_mirror_link_up(m));
    CU_ASSERT_EQUAL(sl_mirror_quality(m, 3), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    fx_fill(m, 200);
    CU_ASSERT_EQUAL(sl_mirror_quality(m, 3), SL_Q_GOOD);
    sl_mirror_destroy(m);
}

/* A quiet TX (one block per second, stale_ms 800): one lost block is
 * repaired by the next and never trips the rule (without the one-block
 * slack it would, for 200 ms each time); two in a row do. */
SL_TEST(liveness, isolated_loss_does_not_trip)
{
    struct run r;
    memset(&r, 0, sizeof r);
    sl_liveness_init(&r.l, 800);
    uint64_t lost[] = { 3, 9, 15, 16 + 100 };   /* isolated, far apart */
    drive(&r, 0, 20000, 1000, lost, 4, true);
    CU_ASSERT_FALSE(r.ever_stale);
    /* Two consecutive lost blocks of a quiet TX: stale, then back. */
    uint64_t two[] = { r.seq, r.seq + 1 };
    drive(&r, 20000, 26000, 1000, two, 2, true);
    CU_ASSERT(r.ever_stale);
    CU_ASSERT_FALSE(sl_liveness_stale(&r.l));
    CU_ASSERT_EQUAL(r.starts, 1);
    CU_ASSERT_EQUAL(r.ends, 1);
}

/* A lag shorter than stale_ms (a burst of loss) never trips. */
SL_TEST(liveness, short_lag_is_live)
{
    struct run r;
    memset(&r, 0, sizeof r);
    sl_liveness_init(&r.l, 1000);
    drive(&r, 0, 3000, 50, NULL, 0, true);
    uint64_t lost[14];
    for (size_t i = 0; i < 14; i++)
        lost[i] = r.seq + i;                       /* 700 ms of blocks */
    drive(&r, 3000, 10000, 50, lost, 14, true);
    CU_ASSERT_FALSE(r.ever_stale);
}

/* A restarted TX (new session and epoch): its blocks may come before its
 * first beacon and are not judged against the old run's samples. */
SL_TEST(liveness, new_session_starts_over)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 1000);
    for (uint64_t t = 0; t <= 3000; t += 200) {
        sl_liveness_beacon(&l, t, S, E, 100 + t / 200);
        sl_liveness_block(&l, t, S, E, 100 + t / 200 - 1);
        CU_ASSERT_EQUAL(sl_liveness_tick(&l, t), 0);
    }
    /* New run: seq restarts at 0, before its first beacon. */
    sl_liveness_block(&l, 3050, 0x2222u, E + 1, 0);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 3100), 0);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 5000), 0);
    sl_liveness_beacon(&l, 5000, 0x2222u, E + 1, 1);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 7000), 0);
    /* The new run announces blocks that never come: stale. */
    sl_liveness_beacon(&l, 7000, 0x2222u, E + 1, 10);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 7999), 0);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 8000), SL_LIVENESS_STALE_START);
    CU_ASSERT_EQUAL(l.lag_announced, 10);
    CU_ASSERT_EQUAL(sl_liveness_live_ms(&l, 7800), 7000);
    /* A beacon announcing nothing new but no tag block: still stale. */
    sl_liveness_beacon(&l, 8200, 0x2222u, E + 1, 10);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 9500), 0);
    CU_ASSERT(sl_liveness_stale(&l));
    sl_liveness_block(&l, 9550, 0x2222u, E + 1, 9);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 9600), SL_LIVENESS_STALE_END);
}

/* Beacons far more often than stale_ms / 32: memory stays bounded and the
 * rule still trips, at most 1/32 of stale_ms late. */
SL_TEST(liveness, fast_beacons_bounded)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 3200);
    uint64_t t = 0, seq = 0;
    for (; t < 20000; t++) {
        sl_liveness_beacon(&l, t, S, E, seq + 1);
        sl_liveness_block(&l, t, S, E, seq);
        seq++;
        CU_ASSERT_EQUAL(sl_liveness_tick(&l, t), 0);
        CU_ASSERT(l.n <= SL_LIVENESS_SAMPLES);
    }
    uint64_t cut = t;
    unsigned ev = 0;
    for (; t < cut + 5000 && !(ev & SL_LIVENESS_STALE_START); t++) {
        sl_liveness_beacon(&l, t, S, E, ++seq);   /* announced, never delivered */
        ev = sl_liveness_tick(&l, t);
        CU_ASSERT(l.n <= SL_LIVENESS_SAMPLES);
    }
    CU_ASSERT(ev & SL_LIVENESS_STALE_START);
    CU_ASSERT(t - cut >= 3200);
    CU_ASSERT(t - cut <= 3200 + 3200 / 32 + 2);
}

/* Sums near UINT64_MAX cannot wrap into "live" or "stale". */
SL_TEST(liveness, extreme_sequences)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 0);   /* 0 means 1 ms */
    sl_liveness_beacon(&l, 0, S, E, UINT64_MAX);
    sl_liveness_block(&l, 0, S, E, UINT64_MAX - 1);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 10), 0);
    sl_liveness_block(&l, 15, S, E + 1, 0);
    sl_liveness_beacon(&l, 20, S, E + 1, UINT64_MAX);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 30), SL_LIVENESS_STALE_START);
}

/* ---- completeness: selective loss, beacon floods, genuine loss ----------- */

/* A TX sending a tag block every `block_every` ms and, unless beacon_every
 * is 0, a beacon every beacon_every ms; `lose` decides which blocks never
 * verify. Ticks every 10 ms (the daemon ticks every loop turn) and ages a
 * mirror with live_ms, the way sluice-rx does. */
struct sim;
typedef bool (*lose_fn)(struct sim *s, uint64_t seq, uint64_t t);
struct sim {
    struct sl_liveness l;
    struct sl_mirror *m;
    uint64_t t, seq, last_beacon_ms;
    uint32_t rng;
    unsigned starts, ends;
    uint64_t stale_ticks, down_ticks, ticks;
    uint64_t first_stale_ms, last_stale_ms;   /* UINT64_MAX / 0 when never */
    uint64_t sent, lost;
};

static void sim_init(struct sim *s, uint32_t stale_ms)
{
    memset(s, 0, sizeof *s);
    sl_liveness_init(&s->l, stale_ms);
    s->m = fx_mirror(7);
    fx_fill(s->m, 100);
    s->rng = 12345u;
    s->first_stale_ms = UINT64_MAX;
}

static uint32_t sim_rand(struct sim *s)   /* xorshift32: the same run every time */
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 17;
    s->rng ^= s->rng << 5;
    return s->rng;
}

static void sim_clear(struct sim *s)
{
    s->starts = s->ends = 0;
    s->stale_ticks = s->down_ticks = s->ticks = 0;
    s->first_stale_ms = UINT64_MAX;
    s->last_stale_ms = 0;
}

static void sim_run(struct sim *s, uint64_t until, uint64_t block_every, uint64_t beacon_every, lose_fn lose)
{
    for (; s->t < until; s->t += 10) {
        /* The beacon first: highest_block counts the blocks handed so far. */
        if (beacon_every && s->t % beacon_every == 0) {
            sl_liveness_beacon(&s->l, s->t, S, E, s->seq);
            s->last_beacon_ms = s->t;
        }
        if (s->t % block_every == 0) {
            s->sent++;
            if (lose && lose(s, s->seq, s->t))
                s->lost++;
            else
                sl_liveness_block(&s->l, s->t, S, E, s->seq);
            s->seq++;
        }
        unsigned ev = sl_liveness_tick(&s->l, s->t);
        s->starts += (ev & SL_LIVENESS_STALE_START) != 0;
        s->ends += (ev & SL_LIVENESS_STALE_END) != 0;
        s->ticks++;
        if (sl_liveness_stale(&s->l)) {
            s->stale_ticks++;
            if (s->first_stale_ms == UINT64_MAX)
                s->first_stale_ms = s->t;
            s->last_stale_ms = s->t;
        }
        sl_mirror_tick(s->m, s->t, sl_liveness_live_ms(&s->l, s->last_beacon_ms));
        s->down_ticks += !sl_mirror_link_up(s->m);
    }
}

static void sim_free(struct sim *s)
{
    sl_mirror_destroy(s->m);
}

static bool lose_even(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)s, (void)t;
    return seq % 2 == 0;
}

/* Review finding 4 (review/selective_loss_keeps_liveness_good, made pure):
 * beacons every 50 ms announce every block; an attacker loses every
 * multi-symbol block (here: every other one) while the one-symbol blocks
 * get through. The newest block always arrives, so "highest verified"
 * never lags; half of the tag data is gone and its tags would stay Good.
 * Now: stale within stale_ms plus a fifth of the window, and the mirror
 * shows it although beacons never stopped. */
SL_TEST(liveness, selective_loss_goes_stale)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 5000, 50, 50, NULL);
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    sim_clear(&s);
    sim_run(&s, 15000, 50, 50, lose_even);
    printf("\nselective loss: sent %" PRIu64 " lost %" PRIu64 "; stale %" PRIu64 " of %" PRIu64
           " ticks, first at +%" PRId64 " ms\n", s.sent, s.lost, s.stale_ticks, s.ticks,
           s.stale_ticks ? (int64_t)(s.first_stale_ms - 5000) : -1);
    CU_ASSERT(s.first_stale_ms != UINT64_MAX);
    CU_ASSERT(s.first_stale_ms <= 5000 + 1000 + 1000 * SL_LIVENESS_WINDOW_PERIODS / 5 + 100);
    CU_ASSERT_EQUAL(s.starts, 1);
    CU_ASSERT_EQUAL(s.l.reason, SL_LIVENESS_INCOMPLETE);
    CU_ASSERT_EQUAL(s.l.incomplete_episodes, 1);
    CU_ASSERT(s.last_stale_ms == 15000 - 10);                    /* for as long as it lasts */
    CU_ASSERT(s.down_ticks >= s.stale_ticks);
    CU_ASSERT_FALSE(sl_mirror_link_up(s.m));
    CU_ASSERT_EQUAL(sl_mirror_quality(s.m, 3), SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    CU_ASSERT(s.l.win_missing * 10 >= (s.l.win_hi - s.l.win_lo) * 4);
    /* The loss stops: live again once the lossy blocks leave the window. */
    sim_clear(&s);
    sim_run(&s, 25000, 50, 50, NULL);
    CU_ASSERT_EQUAL(s.ends, 1);
    CU_ASSERT_FALSE(sl_liveness_stale(&s.l));
    CU_ASSERT(s.last_stale_ms <= 15000 + 1000 * (1 + SL_LIVENESS_WINDOW_PERIODS) + 100);
    CU_ASSERT(sl_mirror_link_up(s.m));
    sim_free(&s);
}

static bool lose_one_in_five(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)s, (void)t;
    return seq % 5 == 0;
}

/* 20 % of the blocks, scattered: above the 10 % line, stale too. */
SL_TEST(liveness, scattered_fifth_lost_goes_stale)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 3000, 20, 200, NULL);
    sim_clear(&s);
    sim_run(&s, 12000, 20, 200, lose_one_in_five);
    CU_ASSERT(s.first_stale_ms != UINT64_MAX);
    CU_ASSERT_EQUAL(s.starts, 1);
    CU_ASSERT(s.last_stale_ms == 12000 - 10);
    sim_free(&s);
}

/* Review finding 3's consequence: forged beacons starve the genuine ones
 * (one arrives at start, then none) while genuine tag blocks keep flowing.
 * The link is live: the mirror stays up, nothing is stale. (Before, link
 * liveness was beacons only: down after stale_ms.) */
SL_TEST(liveness, beacon_flood_with_data_flowing_stays_live)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 2000, 20, 200, NULL);
    sim_clear(&s);
    sim_run(&s, 12000, 20, 0, NULL);                 /* no beacon for 10 s */
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    CU_ASSERT_EQUAL(s.down_ticks, 0);
    CU_ASSERT(sl_mirror_link_up(s.m));
    CU_ASSERT_EQUAL(sl_mirror_quality(s.m, 3), SL_Q_GOOD);
    /* A quiet TX (one block per 500 ms) under the same flood: still live. */
    sim_clear(&s);
    sim_run(&s, 20000, 500, 0, NULL);
    CU_ASSERT_EQUAL(s.down_ticks, 0);
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    /* Data stops too: a cut, stale within stale_ms of the last block. */
    sim_clear(&s);
    uint64_t last_block = s.t - 500;   /* 19500 */
    for (; s.t < 23000; s.t += 10) {
        sl_liveness_tick(&s.l, s.t);
        sl_mirror_tick(s.m, s.t, sl_liveness_live_ms(&s.l, s.last_beacon_ms));
        if (!sl_mirror_link_up(s.m))
            break;
    }
    CU_ASSERT_FALSE(sl_mirror_link_up(s.m));
    CU_ASSERT(s.t - last_block <= 1000 + 10);
    sim_free(&s);
}

/* The same flood combined with selective loss: no beacon sample is newer
 * than stale_ms, so completeness is judged on what verified blocks
 * announce themselves (block b proves b was sent): stale. */
SL_TEST(liveness, beacon_flood_with_selective_loss_goes_stale)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 2000, 20, 200, NULL);
    sim_clear(&s);
    sim_run(&s, 12000, 20, 0, lose_even);
    CU_ASSERT(s.first_stale_ms != UINT64_MAX);
    CU_ASSERT(s.first_stale_ms <= 2000 + 1000 + 1000 * SL_LIVENESS_WINDOW_PERIODS / 5 + 100);
    CU_ASSERT(s.last_stale_ms == 12000 - 10);
    CU_ASSERT_FALSE(sl_mirror_link_up(s.m));
    sim_free(&s);
}

/* Genuine loss with FEC: 5 % frame loss leaves a rare unrecoverable block
 * (here 1 % of blocks, at random), and a burst of loss takes a run of
 * consecutive blocks (up to 600 ms of them, once every 5 s, as the rig's
 * 50-frame bursts do at light load). Neither trips either rule. */
static bool lose_genuine(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)seq;
    if (t % 5000 >= 2000 && t % 5000 < 2600)
        return true;
    return sim_rand(s) % 100 == 0;
}

SL_TEST(liveness, random_loss_and_bursts_stay_live)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 60000, 20, 200, lose_genuine);
    CU_ASSERT(s.lost > s.sent / 10);                 /* the run did lose blocks */
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    CU_ASSERT_EQUAL(s.down_ticks, 0);
    sim_free(&s);
    /* A light load (one block per 100 ms): the same. */
    sim_init(&s, 1000);
    sim_run(&s, 60000, 100, 200, lose_genuine);
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    sim_free(&s);
}

/* Two outages in one window are not a burst: the second counts. */
static bool lose_two_outages(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)s, (void)seq;
    return (t >= 4000 && t < 4600) || (t >= 5500 && t < 6100);
}

SL_TEST(liveness, two_outages_in_a_window_go_stale)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 12000, 20, 200, lose_two_outages);
    CU_ASSERT_EQUAL(s.starts, 1);
    CU_ASSERT_EQUAL(s.ends, 1);
    CU_ASSERT_EQUAL(s.l.incomplete_episodes, 1);
    sim_free(&s);
}

/* A quiet TX: one keyframe block per second, beacons every 200 ms; an
 * isolated lost block now and then never trips (the one-block slack and
 * MISSING_MIN). */
static bool lose_every_seventh(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)s, (void)t;
    return seq % 7 == 3;
}

SL_TEST(liveness, quiet_tx_isolated_losses_stay_live)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 60000, 1000, 200, lose_every_seventh);
    CU_ASSERT(s.lost >= 8);
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    sim_free(&s);
}

/* RX starts in the middle of a session: blocks announced before it
 * listened (0..4999) are not missing, nor the two partly sent when it
 * started; counting starts at the first beacon and block. */
SL_TEST(liveness, rx_restart_mid_session)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 1000);
    uint64_t seq = 5000;
    for (uint64_t t = 100; t < 20000; t += 10) {
        if (t % 200 == 0)
            sl_liveness_beacon(&l, t, S, E, seq);
        if (t % 20 == 0) {
            if (seq > 5001)
                sl_liveness_block(&l, t, S, E, seq);
            seq++;
        }
        sl_liveness_tick(&l, t);
        CU_ASSERT_FALSE(sl_liveness_stale(&l));
    }
    /* The first thing seen was a block of a new run (TX restarted before
     * RX): the same, from that block. */
    sl_liveness_init(&l, 1000);
    seq = 300;
    for (uint64_t t = 0; t < 20000; t += 10) {
        if (t % 20 == 0)
            sl_liveness_block(&l, t, S, E, seq++);
        if (t % 200 == 100)
            sl_liveness_beacon(&l, t, S, E, seq);
        sl_liveness_tick(&l, t);
        CU_ASSERT_FALSE(sl_liveness_stale(&l));
    }
}

/* A cut link (nothing for 10 s): stale by silence; when the link returns
 * the blocks sent during the cut are not held against it, so data is live
 * at once and the mirror comes back (docs/mirror.md §1.1: Good again within one
 * keyframe). */
static bool lose_during_cut(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)s, (void)seq;
    return t >= 5000 && t < 15000;
}

SL_TEST(liveness, cut_link_then_back)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 5000, 20, 200, NULL);
    /* The cut: beacons are lost too. */
    sim_run(&s, 15000, 20, 0, lose_during_cut);
    CU_ASSERT_FALSE(sl_mirror_link_up(s.m));
    sim_clear(&s);
    sim_run(&s, 30000, 20, 200, NULL);
    CU_ASSERT_EQUAL(s.stale_ticks, 0);
    CU_ASSERT(sl_mirror_link_up(s.m));
    sim_free(&s);
}

/* A session change in the middle of selective loss: the new run is judged
 * on its own blocks only. */
SL_TEST(liveness, session_change_starts_clean)
{
    struct sim s;
    sim_init(&s, 1000);
    sim_run(&s, 10000, 50, 50, lose_even);
    CU_ASSERT(sl_liveness_stale(&s.l));
    uint64_t seq = 0;
    for (uint64_t t = 10000; t < 20000; t += 10) {
        if (t % 200 == 0)
            sl_liveness_beacon(&s.l, t, 0x3333u, E + 1, seq);
        if (t % 20 == 0)
            sl_liveness_block(&s.l, t, 0x3333u, E + 1, seq++);
        sl_liveness_tick(&s.l, t);
        if (t >= 10000 + 1100)
            CU_ASSERT_FALSE(sl_liveness_stale(&s.l));
    }
    CU_ASSERT_FALSE(sl_liveness_stale(&s.l));
    sim_free(&s);
}

/* More blocks per window than the bitmap holds (2000 blocks/s, 10 000 in
 * the window): judged on the newest ones; all arrive -> live, one in three
 * lost -> stale. Memory stays fixed. */
static bool lose_one_in_three(struct sim *s, uint64_t seq, uint64_t t)
{
    (void)s, (void)t;
    return seq % 3 == 1;
}

SL_TEST(liveness, fast_run_beyond_bitmap)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 1000);
    uint64_t seq = 0;
    bool stale = false;
    for (uint64_t t = 0; t < 12000; t++) {
        if (t % 200 == 0)
            sl_liveness_beacon(&l, t, S, E, seq);
        for (int i = 0; i < 2; i++)
            sl_liveness_block(&l, t, S, E, seq++);
        sl_liveness_tick(&l, t);
        stale |= sl_liveness_stale(&l);
        CU_ASSERT(l.n <= SL_LIVENESS_SAMPLES);
    }
    CU_ASSERT_FALSE(stale);
    for (uint64_t t = 12000; t < 16000; t++) {
        if (t % 200 == 0)
            sl_liveness_beacon(&l, t, S, E, seq);
        for (int i = 0; i < 2; i++, seq++)
            if (!lose_one_in_three(NULL, seq, t))
                sl_liveness_block(&l, t, S, E, seq);
        sl_liveness_tick(&l, t);
    }
    CU_ASSERT(sl_liveness_stale(&l));
    CU_ASSERT_EQUAL(l.reason, SL_LIVENESS_INCOMPLETE);
}

/* Announcements far beyond anything verified (everything lost for a long
 * time, or a wild highest_block): bounded work, stale, no overflow. */
SL_TEST(liveness, announced_far_beyond_bitmap)
{
    struct sl_liveness l;
    sl_liveness_init(&l, 1000);
    for (uint64_t t = 0; t < 3000; t += 20) {
        sl_liveness_beacon(&l, t, S, E, t / 20);
        sl_liveness_block(&l, t, S, E, t / 20);
        sl_liveness_tick(&l, t);
    }
    CU_ASSERT_FALSE(sl_liveness_stale(&l));
    sl_liveness_beacon(&l, 3000, S, E, UINT64_C(1) << 40);
    sl_liveness_beacon(&l, 3100, S, E, (UINT64_C(1) << 40) + 5);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 4100), SL_LIVENESS_STALE_START);
    CU_ASSERT_EQUAL(l.reason, SL_LIVENESS_LAGGING);
}

/* Two trusted keys both live (a key rotation's overlap, a standby TX), one
 * tracker per key slot. TX A loses every tag block (only its beacons
 * arrive, announcing more and more); TX B is healthy. One tracker for both
 * was restarted by each of B's events and A's lag was never judged; with
 * one per key, A's lag makes the data stale, whatever B does. */
SL_TEST(liveness, two_live_keys_each_judged)
{
    static struct sl_liveness_set s;
    sl_liveness_set_init(&s, 1000);
    uint64_t a_high = 100, b_seq = 0;
    bool ever = false;
    unsigned starts = 0;
    for (uint64_t t = 0; t < 20000; t += 10) {
        if (t % 200 == 0) {
            a_high += 10;                                         /* A: 50 blocks/s, none verified */
            sl_liveness_set_beacon(&s, 0, t, 0xAAAA, 3, a_high);
        }
        if (t % 100 == 50) {
            sl_liveness_set_block(&s, 1, t, 0xBBBB, 9, b_seq);   /* B: every block verified */
            b_seq++;
        }
        if (t % 50 == 0) {
            starts += (sl_liveness_set_tick(&s, t) & SL_LIVENESS_STALE_START) != 0;
            ever |= sl_liveness_set_stale(&s);
        }
    }
    CU_ASSERT(ever);
    CU_ASSERT_EQUAL(starts, 1);
    CU_ASSERT(sl_liveness_set_stale(&s));
    CU_ASSERT_EQUAL(s.culprit, 0);
    CU_ASSERT_PTR_EQUAL(sl_liveness_set_culprit(&s), &s.key[0]);
    CU_ASSERT_EQUAL(s.key[0].reason, SL_LIVENESS_LAGGING);
    CU_ASSERT(!s.key[1].stale);
    /* The mirror ages from A's rule sample, not from B's fresh blocks. */
    CU_ASSERT(sl_liveness_set_live_ms(&s, 19800) <= 19000);
    CU_ASSERT_EQUAL(s.episodes, 1);
}

/* Two healthy keys interleaved (different sessions and rates): neither
 * wipes the other's history and neither is ever stale. */
SL_TEST(liveness, two_healthy_keys_fresh)
{
    static struct sl_liveness_set s;
    sl_liveness_set_init(&s, 1000);
    uint64_t a = 0, b = 0;
    bool ever = false;
    for (uint64_t t = 0; t < 10000; t += 10) {
        if (t % 20 == 0)
            sl_liveness_set_block(&s, 2, t, 0xAAAA, 3, a++);
        if (t % 200 == 0)
            sl_liveness_set_beacon(&s, 2, t, 0xAAAA, 3, a);
        if (t % 100 == 50)
            sl_liveness_set_block(&s, 7, t, 0xBBBB, 9, b++);
        if (t % 200 == 100)
            sl_liveness_set_beacon(&s, 7, t, 0xBBBB, 9, b);
        if (t % 50 == 0) {
            sl_liveness_set_tick(&s, t);
            ever |= sl_liveness_set_stale(&s);
        }
    }
    CU_ASSERT(!ever);
    CU_ASSERT_EQUAL(s.episodes, 0);
    /* Out-of-range slots are ignored, not written beyond the array. */
    sl_liveness_set_beacon(&s, SL_LIVENESS_KEYS, 10000, 1, 1, 1000000);
    sl_liveness_set_tick(&s, 12000);
    CU_ASSERT(!sl_liveness_set_stale(&s));
}

/* A retired key stops counting: A's blocks are all lost until A stops
 * sending entirely at 3 s (rotation finished); B stays healthy. The data
 * is stale while A is active and RETIRE_PERIODS * stale_ms after A's last
 * beacon its tracker is dropped: the data is fresh again on B alone. */
SL_TEST(liveness, retired_key_stops_counting)
{
    static struct sl_liveness_set s;
    sl_liveness_set_init(&s, 1000);
    uint64_t a_high = 100, b_seq = 0, last_a = 0, end_at = 0;
    bool stale_at_7s = false;
    for (uint64_t t = 0; t < 12000; t += 10) {
        if (t < 3000 && t % 200 == 0) {
            a_high += 10;
            sl_liveness_set_beacon(&s, 0, t, 0xAAAA, 3, a_high);
            last_a = t;
        }
        if (t % 100 == 50)
            sl_liveness_set_block(&s, 1, t, 0xBBBB, 9, b_seq++);
        if (t % 200 == 150)
            sl_liveness_set_beacon(&s, 1, t, 0xBBBB, 9, b_seq);
        if (t % 50 == 0) {
            unsigned ev = sl_liveness_set_tick(&s, t);
            if ((ev & SL_LIVENESS_STALE_END) && !end_at)
                end_at = t;
            if (t == 7000)
                stale_at_7s = sl_liveness_set_stale(&s);
        }
    }
    CU_ASSERT(stale_at_7s);                 /* still active within the retire time */
    CU_ASSERT(!sl_liveness_set_stale(&s));
    CU_ASSERT_EQUAL(s.retired, 1);
    CU_ASSERT(!s.used[0]);
    CU_ASSERT(s.used[1]);
    CU_ASSERT(end_at >= last_a + SL_LIVENESS_RETIRE_PERIODS * 1000u);
    CU_ASSERT(end_at <= last_a + SL_LIVENESS_RETIRE_PERIODS * 1000u + 100u);
    CU_ASSERT_EQUAL(s.episodes, 1);
    CU_ASSERT(sl_liveness_set_live_ms(&s, 11950) >= 11900);
    /* A key that comes back later starts a fresh tracker (as at RX start). */
    sl_liveness_set_beacon(&s, 0, 12000, 0xAAAA, 4, 5000);
    sl_liveness_set_tick(&s, 12000);
    CU_ASSERT(!sl_liveness_set_stale(&s));
}
