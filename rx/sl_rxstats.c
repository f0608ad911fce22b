#include "sl_rxstats.h"

#include <string.h>

void sl_rxbeacon_init(struct sl_rxbeacon *t)
{
    memset(t, 0, sizeof *t);
}

bool sl_rxbeacon_fits(const struct sl_beacon *b, const struct sl_rxbeacon_limits *lim)
{
    return b->k <= lim->max_k && b->m <= lim->max_m && b->symbol_size <= lim->symbol_max;
}

unsigned sl_rxbeacon_update(struct sl_rxbeacon *t, const struct sl_beacon *b,
                            const struct sl_rxbeacon_limits *lim, uint64_t now_ms, uint64_t now_us)
{
    unsigned ev = 0;
    const struct sl_beacon *prev = &t->last;
    bool fits = sl_rxbeacon_fits(b, lim);
    if (!t->seen) {
        ev |= SL_RXB_FIRST | SL_RXB_SESSION;
    } else if (b->session != prev->session || b->epoch != prev->epoch) {
        ev |= SL_RXB_SESSION;
    } else {
        if (b->symbol_size != prev->symbol_size || b->k != prev->k || b->m != prev->m ||
            b->interleave != prev->interleave || b->rate_kbps != prev->rate_kbps)
            ev |= SL_RXB_PARAMS;
        if (memcmp(b->config_fp, prev->config_fp, SL_FP_BYTES) != 0)
            ev |= SL_RXB_CONFIG_FP;
        if (memcmp(b->schema_fp, prev->schema_fp, SL_FP_BYTES) != 0)
            ev |= SL_RXB_SCHEMA_FP;
    }
    /* Report a violation when it starts (or when a new session or changed
     * parameters still violate), and its end once. */
    if (!fits && (!t->over_limits || (ev & (SL_RXB_SESSION | SL_RXB_PARAMS))))
        ev |= SL_RXB_LIMITS;
    else if (fits && t->over_limits)
        ev |= SL_RXB_LIMITS_OK;

    if (ev & SL_RXB_SESSION)
        t->sessions++;
    if (ev & SL_RXB_PARAMS)
        t->param_changes++;
    if (ev & (SL_RXB_CONFIG_FP | SL_RXB_SCHEMA_FP))
        t->fp_changes++;
    if (ev & SL_RXB_LIMITS)
        t->limit_mismatches++;
    t->over_limits = !fits;
    t->seen = true;
    t->beacons++;
    t->last = *b;
    t->last_ms = now_ms;
    t->last_rx_us = now_us;
    t->clock_offset_us = (int64_t)(now_us - b->tx_time_us);
    return ev;
}
