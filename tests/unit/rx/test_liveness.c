/* Liveness from data (rx/sl_liveness): tag blocks that lag what beacons
 * announce for longer than stale_ms make the mirror stale exactly as a cut
 * link does, and data flowing again brings it back; an isolated lost block,
 * a file-only TX, a short lag or a TX restart do not trip it. Times are
 * injected: the rule reads no clock. */
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
                sl_liveness_block(&r->l, S, E, r->seq);
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
        sl_liveness_block(&l, S, E, 100 + t / 200 - 1);
        CU_ASSERT_EQUAL(sl_liveness_tick(&l, t), 0);
    }
    /* New run: seq restarts at 0, before its first beacon. */
    sl_liveness_block(&l, 0x2222u, E + 1, 0);
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
    sl_liveness_block(&l, 0x2222u, E + 1, 9);
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
        sl_liveness_block(&l, S, E, seq);
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
    sl_liveness_block(&l, S, E, UINT64_MAX - 1);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 10), 0);
    sl_liveness_block(&l, S, E + 1, 0);
    sl_liveness_beacon(&l, 20, S, E + 1, UINT64_MAX);
    CU_ASSERT_EQUAL(sl_liveness_tick(&l, 30), SL_LIVENESS_STALE_START);
}
