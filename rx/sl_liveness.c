#include "sl_liveness.h"

#include <string.h>

void sl_liveness_init(struct sl_liveness *l, uint32_t stale_ms)
{
    memset(l, 0, sizeof *l);
    l->stale_ms = stale_ms ? stale_ms : 1u;
}

/* A new TX run: what was announced and verified before says nothing about
 * it. The stale flag is kept; the next tick decides it afresh. */
static void start_over(struct sl_liveness *l, uint64_t session, uint64_t epoch)
{
    l->have_session = true;
    l->session = session;
    l->epoch = epoch;
    l->head = l->n = 0;
    l->have_data = false;
    l->data_high = 0;
}

static bool same_run(const struct sl_liveness *l, uint64_t session, uint64_t epoch)
{
    return l->have_session && l->session == session && l->epoch == epoch;
}

static const struct sl_liveness_sample *at(const struct sl_liveness *l, unsigned i)
{
    return &l->ring[(l->head + i) % SL_LIVENESS_SAMPLES];
}

void sl_liveness_beacon(struct sl_liveness *l, uint64_t now_ms, uint64_t session, uint64_t epoch,
                        uint64_t highest_block)
{
    if (!same_run(l, session, epoch))
        start_over(l, session, epoch);
    /* Thinning: one sample per stale_ms / 32 keeps the ring bounded for any
     * beacon period; a skipped sample only makes the rule use a slightly
     * older (smaller or equal) H. */
    uint64_t gran = l->stale_ms / 32u ? l->stale_ms / 32u : 1u;
    if (l->n > 0) {
        const struct sl_liveness_sample *last = at(l, l->n - 1);
        if (now_ms >= last->ms && now_ms - last->ms < gran)
            return;
    }
    if (l->n == SL_LIVENESS_SAMPLES) {   /* not ticked for long: forget the oldest */
        l->head = (l->head + 1) % SL_LIVENESS_SAMPLES;
        l->n--;
    }
    l->ring[(l->head + l->n) % SL_LIVENESS_SAMPLES] = (struct sl_liveness_sample){ now_ms, highest_block };
    l->n++;
}

void sl_liveness_block(struct sl_liveness *l, uint64_t session, uint64_t epoch, uint64_t block_seq)
{
    if (!same_run(l, session, epoch))
        start_over(l, session, epoch);
    if (!l->have_data || block_seq > l->data_high)
        l->data_high = block_seq;
    l->have_data = true;
}

/* Old enough to judge by at now_ms: received at least stale_ms ago. */
static bool old_enough(const struct sl_liveness *l, const struct sl_liveness_sample *s, uint64_t now_ms)
{
    return s->ms <= now_ms && now_ms - s->ms >= l->stale_ms;
}

unsigned sl_liveness_tick(struct sl_liveness *l, uint64_t now_ms)
{
    /* Only the newest old-enough sample matters: drop the ones before it. */
    while (l->n >= 2 && old_enough(l, at(l, 1), now_ms)) {
        l->head = (l->head + 1) % SL_LIVENESS_SAMPLES;
        l->n--;
    }
    bool stale = false;
    if (l->n > 0 && old_enough(l, at(l, 0), now_ms)) {
        const struct sl_liveness_sample *s = at(l, 0);
        uint64_t h = s->highest;
        /* Live when the verified blocks reach H - 1 - SLACK (written so
         * that no sum can overflow). */
        bool live = h <= SL_LIVENESS_SLACK_BLOCKS ||
                    (l->have_data && l->data_high >= h - SL_LIVENESS_SLACK_BLOCKS - 1u);
        if (!live) {
            stale = true;
            l->lag_since_ms = s->ms;
            l->lag_announced = h;
        }
    }
    unsigned ev = 0;
    if (stale && !l->stale) {
        ev = SL_LIVENESS_STALE_START;
        l->episodes++;
    } else if (!stale && l->stale) {
        ev = SL_LIVENESS_STALE_END;
    }
    l->stale = stale;
    return ev;
}

bool sl_liveness_stale(const struct sl_liveness *l)
{
    return l->stale;
}

uint64_t sl_liveness_live_ms(const struct sl_liveness *l, uint64_t last_beacon_ms)
{
    if (l->stale && l->lag_since_ms < last_beacon_ms)
        return l->lag_since_ms;
    return last_beacon_ms;
}
