#include "sl_linkacct.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sl_key.h"
#include "sl_log.h"

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

void sl_linkacct_init(struct sl_linkacct *a, const struct sl_rxbeacon_limits *lim)
{
    memset(a, 0, sizeof *a);
    sl_rxbeacon_init(&a->beacon);
    a->limits = *lim;
}

static void fp_hex(char out[2 * SL_FP_BYTES + 1], const uint8_t fp[SL_FP_BYTES])
{
    for (unsigned i = 0; i < SL_FP_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

/* The lines an operator needs when TX changes under RX's feet. */
static void log_beacon(const struct sl_linkacct *a, const struct sl_beacon *prev,
                       const struct sl_beacon *b, unsigned ev)
{
    const struct sl_rxbeacon *t = &a->beacon;
    char kid[SL_KEY_ID_HEX_BYTES], x[2 * SL_FP_BYTES + 1], z[2 * SL_FP_BYTES + 1];
    sl_key_id_format(kid, b->key_id);
    if (ev & SL_RXB_SESSION)
        sl_log(SL_LOG_INFO, "TX session %016" PRIx64 " epoch %" PRIu64 " (key %s)%s: S=%u k=%u m=%u "
               "interleave=%u rate=%" PRIu32 " kbit/s, clock offset %+" PRId64 " ms",
               b->session, b->epoch, kid, (ev & SL_RXB_FIRST) ? "" : " (new)", b->symbol_size, b->k,
               b->m, b->interleave, b->rate_kbps, t->clock_offset_us / 1000);
    /* A new session whose configuration differs from the last one seen: a
     * TX restarted with another configuration (planned, or not). */
    if ((ev & SL_RXB_SESSION) && !(ev & SL_RXB_FIRST) &&
        memcmp(prev->config_fp, b->config_fp, SL_FP_BYTES) != 0) {
        fp_hex(x, prev->config_fp);
        fp_hex(z, b->config_fp);
        sl_log_id(SL_LOG_WARNING, "SL-RX-CONFIG-FP-CHANGED",
                  "TX session %016" PRIx64 " runs another configuration than session %016" PRIx64 ": %s -> %s",
                  b->session, prev->session, x, z);
    }
    if (ev & SL_RXB_PARAMS)
        sl_log_id(SL_LOG_WARNING, "SL-RX-PARAMS-CHANGED",
                  "TX link parameters changed within session %016" PRIx64
                  ": S %u->%u, k %u->%u, m %u->%u, interleave %u->%u, rate %" PRIu32 "->%" PRIu32
                  " kbit/s (changes so far: %" PRIu64 ")",
                  b->session, prev->symbol_size, b->symbol_size, prev->k, b->k, prev->m, b->m,
                  prev->interleave, b->interleave, prev->rate_kbps, b->rate_kbps, t->param_changes);
    if (ev & SL_RXB_CONFIG_FP) {
        fp_hex(x, prev->config_fp);
        fp_hex(z, b->config_fp);
        sl_log_id(SL_LOG_WARNING, "SL-RX-CONFIG-FP-CHANGED",
                  "TX configuration fingerprint changed within session %016" PRIx64
                  ": %s -> %s", b->session, x, z);
    }
    if (ev & SL_RXB_SCHEMA_FP) {
        fp_hex(x, prev->schema_fp);
        fp_hex(z, b->schema_fp);
        sl_log_id(SL_LOG_WARNING, "SL-RX-SCHEMA-FP-CHANGED",
                  "TX schema fingerprint changed within session %016" PRIx64 ": %s -> %s",
                  b->session, x, z);
    }
    if (ev & SL_RXB_LIMITS)
        sl_log_id(SL_LOG_ERR, "SL-RX-LIMITS",
                  "TX parameters exceed this receiver's decoder limits: S=%u (max %" PRIu32
                  ", from [link] mtu), k=%u (max_k %" PRIu32 "), m=%u (max_m %" PRIu32
                  "); blocks beyond them are dropped: raise [fec] max_k/max_m or [link] mtu",
                  b->symbol_size, a->limits.symbol_max, b->k, a->limits.max_k, b->m, a->limits.max_m);
    if (ev & SL_RXB_LIMITS_OK)
        sl_log_id(SL_LOG_NOTICE, "SL-RX-LIMITS-OK",
                  "TX parameters fit the decoder limits again (S=%u k=%u m=%u)",
                  b->symbol_size, b->k, b->m);
}

unsigned sl_linkacct_beacon(struct sl_linkacct *a, const struct sl_beacon *b, uint64_t frames_got,
                            uint64_t delivered, uint64_t now_ms, uint64_t now_us)
{
    struct sl_beacon prev = a->beacon.last;
    unsigned ev = sl_rxbeacon_update(&a->beacon, b, &a->limits, now_ms, now_us);
    if (ev & SL_RXB_SESSION) {
        a->loss_base_sent = b->frames_sent;
        a->loss_base_got = frames_got;
    }
    a->loss_sent = b->frames_sent;
    a->loss_got = frames_got;
    a->blocks_missing = b->highest_block > delivered ? b->highest_block - delivered : 0;
    sl_log(SL_LOG_DEBUG, "beacon %" PRIu64 " session %016" PRIx64 " epoch %" PRIu64
           " highest_block %" PRIu64 " clock offset %+" PRId64 " us", b->beacon_seq, b->session,
           b->epoch, b->highest_block, a->beacon.clock_offset_us);
    if (ev)
        log_beacon(a, &prev, b, ev);
    return ev;
}

double sl_linkacct_frame_loss(const struct sl_linkacct *a)
{
    uint64_t sent = a->loss_sent - a->loss_base_sent;
    uint64_t got = a->loss_got - a->loss_base_got;
    return sent > got ? (double)(sent - got) / (double)sent : 0.0;
}

/* One " name=N" item when v moved since *prev (or since start); *prev
 * follows when snap. */
static void add_delta(char *out, size_t cap, size_t *off, uint64_t v, uint64_t *prev, bool snap,
                      const char *a, const char *b)
{
    uint64_t d = v - (snap ? *prev : 0);
    if (snap)
        *prev = v;
    if (!d)
        return;
    int n = snprintf(out + *off, *off < cap ? cap - *off : 0, " %s/%s=%" PRIu64, a, b, d);
    if (n > 0)
        *off += (size_t)n;
}

/* Sum of one drop reason over every stage. */
static uint64_t reason_total(const struct sl_receiver_stats *rx, sl_err e)
{
    uint64_t n = 0;
    for (int s = 0; s < SL_RX_STAGES; s++)
        n += rx->drops[s][e];
    return n;
}

/* v - *prev, and *prev follows. */
static uint64_t moved(uint64_t v, uint64_t *prev)
{
    uint64_t d = v - *prev;
    *prev = v;
    return d;
}

void sl_linkacct_alerts(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                        const struct sl_mbserver_stats *mb, unsigned period_s)
{
    struct sl_alert_snap *p = &a->alert;
    uint64_t sig = moved(reason_total(rx, SL_ERR_SIGNATURE), &p->sig);
    uint64_t budget = moved(reason_total(rx, SL_ERR_BUDGET), &p->budget);
    uint64_t replay = moved(reason_total(rx, SL_ERR_REPLAY) + reason_total(rx, SL_ERR_EPOCH), &p->replay);
    uint64_t key = moved(reason_total(rx, SL_ERR_UNKNOWN_KEY), &p->key);
    if (sig || budget)
        sl_log_id(SL_LOG_WARNING, "SL-RX-SIG-DROP", "%" PRIu64 " blocks/beacons failed signature verification and "
                  "%" PRIu64 " frames were dropped unverified (verification budget spent) in the last %u s: "
                  "forged or corrupted traffic on the diode", sig, budget, period_s);
    if (replay)
        sl_log_id(SL_LOG_WARNING, "SL-RX-REPLAY-DROP", "%" PRIu64 " frames/blocks/beacons of an old epoch or an "
                  "already accepted sequence dropped in the last %u s: replayed traffic", replay, period_s);
    if (key)
        sl_log_id(SL_LOG_WARNING, "SL-RX-KEY-UNTRUSTED", "%" PRIu64 " frames/blocks/beacons under a key id not "
                  "in [keys] trusted dropped in the last %u s", key, period_s);
    if (!mb)
        return;
    uint64_t peer = moved(mb->refused_peer, &p->mb_peer), cap = moved(mb->refused_cap, &p->mb_cap);
    if (peer || cap)
        sl_log_id(SL_LOG_WARNING, "SL-RX-MODBUS-PEER-LIMIT", "Modbus connections refused in the last %u s: "
                  "%" PRIu64 " over max_conns_per_peer, %" PRIu64 " over max_conns", period_s, peer, cap);
}

size_t sl_linkacct_drops(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                         const struct sl_hw_stats *link, char *out, size_t cap, bool snap)
{
    struct sl_drop_snap *p = &a->snap;
    size_t off = 0;
    if (cap)
        out[0] = '\0';
    for (int s = 0; s < SL_RX_STAGES; s++)
        for (int e = 0; e < SL_ERR__COUNT; e++)
            add_delta(out, cap, &off, rx->drops[s][e], &p->drops[s][e], snap,
                      sl_receiver_stage_name((enum sl_rx_stage)s), sl_err_name((sl_err)e));
    for (int e = 0; e < SL_ERR__COUNT; e++)
        add_delta(out, cap, &off, link->rx_reject[e], &p->link_reject[e], snap, "link",
                  sl_err_name((sl_err)e));
    add_delta(out, cap, &off, link->rx_kernel_drops, &p->kernel, snap, "link", "socket_overflow");
    add_delta(out, cap, &off, link->rx_if_drops, &p->ifdrops, snap, "link", "nic_drop");
    add_delta(out, cap, &off, rx->fec.unrecoverable, &p->unrec, snap, "fec", "undecodable");
    add_delta(out, cap, &off, rx->fec.evicted, &p->evicted, snap, "fec", "table_full");
    return off < cap ? off : (cap ? cap - 1 : 0);
}

void sl_linkacct_drop_log(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                          const struct sl_hw_stats *link, const struct sl_mbserver_stats *mb)
{
    char buf[768];
    if (sl_linkacct_drops(a, rx, link, buf, sizeof buf, true) > 0)
        sl_log(SL_LOG_INFO, "drops in the last %u s:%s", SL_LINKACCT_DROP_LOG_MS / 1000u, buf);
    sl_linkacct_alerts(a, rx, mb, SL_LINKACCT_DROP_LOG_MS / 1000u);
}

size_t sl_linkacct_status(struct sl_linkacct *a, char *out, size_t cap, bool link_up, size_t keys,
                          uint32_t tags, uint64_t blocks, uint64_t now_ms)
{
    uint64_t dt = now_ms - a->status_ms, n = blocks - a->status_blocks;
    uint64_t rate = a->status_ms && dt ? (n * 1000u + dt / 2u) / dt : 0;
    a->status_ms = now_ms;
    a->status_blocks = blocks;
    int len;
    if (!a->beacon.seen)
        len = snprintf(out, cap, "no beacon yet, %zu key%s trusted", keys, keys == 1 ? "" : "s");
    else if (!link_up)
        len = snprintf(out, cap, "link stale %" PRIu64 " s",
                       now_ms > a->beacon.last_ms ? (now_ms - a->beacon.last_ms) / 1000u : 0);
    else
        len = snprintf(out, cap, "link up, %zu key%s, %" PRIu32 " tags, %" PRIu64 " blocks/s", keys,
                       keys == 1 ? "" : "s", tags, rate);
    return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : (cap ? cap - 1 : 0);
}
