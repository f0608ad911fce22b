/* Link accounting of sluice-rx: what the verified beacons say about the
 * link (the beacon tracker: liveness, clock offset, "something changed"
 * decisions), the frame and block loss of the current TX session measured
 * against them, and the drop summaries the daemon logs.
 *
 * Pure where it decides (time and counters come in as arguments, so the
 * decisions are unit-tested); the only output is sl_log lines. No globals:
 * one struct sl_linkacct per receive path. */
#ifndef SL_LINKACCT_H
#define SL_LINKACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_datagram.h"
#include "sl_hw.h"
#include "sl_mbserver.h"
#include "sl_receiver.h"
#include "sl_wire.h"

/* What RX's decoder accepts; a beacon announcing more is a mismatch. */
struct sl_rxbeacon_limits {
    uint32_t max_k, max_m;       /* [fec] max_k, max_m */
    uint32_t symbol_max;         /* from [link] mtu */
};

/* Bits returned by sl_rxbeacon_update(): what the daemon must log. */
#define SL_RXB_FIRST        0x01u  /* first beacon since RX start */
#define SL_RXB_SESSION      0x02u  /* session or epoch differs from the previous beacon */
#define SL_RXB_PARAMS       0x04u  /* S, k, m, interleave or rate changed within the session */
#define SL_RXB_CONFIG_FP    0x08u  /* TX configuration fingerprint changed within the session */
#define SL_RXB_SCHEMA_FP    0x10u  /* schema fingerprint changed within the session */
#define SL_RXB_LIMITS       0x20u  /* TX parameters now exceed RX's decoder limits */
#define SL_RXB_LIMITS_OK    0x40u  /* ... and now fit again */

struct sl_rxbeacon {
    bool seen;                   /* at least one beacon accepted */
    uint64_t last_ms;            /* RX CLOCK_MONOTONIC ms of the last beacon (staleness) */
    uint64_t last_rx_us;         /* RX wall clock, µs, of the last beacon */
    int64_t clock_offset_us;     /* RX wall clock - TX tx_time_us at the last beacon */
    struct sl_beacon last;       /* the last beacon, as verified */
    bool over_limits;            /* last beacon's parameters exceed the decoder's */
    uint64_t beacons;            /* accepted beacons seen here */
    uint64_t sessions;           /* new sessions or epochs seen (the first included) */
    uint64_t param_changes;      /* SL_RXB_PARAMS events */
    uint64_t fp_changes;         /* SL_RXB_CONFIG_FP or SL_RXB_SCHEMA_FP events */
    uint64_t limit_mismatches;   /* SL_RXB_LIMITS events */
};

/* Starts tracking: nothing seen. */
void sl_rxbeacon_init(struct sl_rxbeacon *t);

/* Records a verified beacon b received at now_ms (monotonic) / now_us (wall
 * clock) and compares it with the previous one: returns SL_RXB_* bits for
 * what changed, each set once per change (a parameter that stays changed is
 * not reported again; a limit violation is reported when it starts, and
 * again only after the parameters fit once more). Parameters and
 * fingerprints are compared within a session only: a new session or epoch
 * is reported as such and re-evaluates the limits. O(1). */
unsigned sl_rxbeacon_update(struct sl_rxbeacon *t, const struct sl_beacon *b,
                            const struct sl_rxbeacon_limits *lim, uint64_t now_ms, uint64_t now_us);

/* True when b's S, k, m fit the decoder limits. */
bool sl_rxbeacon_fits(const struct sl_beacon *b, const struct sl_rxbeacon_limits *lim);

/* A snapshot of the drop counters, for "what moved since" summaries. */
struct sl_drop_snap {
    uint64_t drops[SL_RX_STAGES][SL_ERR__COUNT];
    uint64_t link_reject[SL_ERR__COUNT];
    uint64_t kernel, ifdrops, unrec, evicted;
};

struct sl_linkacct {
    struct sl_rxbeacon beacon;
    struct sl_rxbeacon_limits limits;
    /* Frame loss of the current session: frames TX reported sent vs frames
     * that arrived, both counted from the session's first beacon. */
    uint64_t loss_base_sent, loss_base_got, loss_sent, loss_got;
    /* Tag blocks of a session that never arrived, including the ones no
     * frame of which reached us (invisible to the FEC decoder): the
     * beacon's highest_block minus the blocks delivered in that session.
     * A gauge: a block still in flight when the beacon overtakes it counts
     * as missing until the next beacon. */
    uint64_t blocks_missing;
    struct sl_drop_snap snap;    /* at the last drop summary line */
    struct sl_alert_snap {       /* at the last sl_linkacct_alerts call */
        uint64_t sig, budget, replay, key, mb_peer, mb_cap;
    } alert;
    uint64_t status_ms, status_blocks;   /* sl_linkacct_status: at the last call */
};

void sl_linkacct_init(struct sl_linkacct *a, const struct sl_rxbeacon_limits *lim);

/* Feeds a verified beacon: the tracker, the session's frame loss (frames_got
 * = the receiver's valid DATA frames so far) and the missing-block gauge
 * (delivered = tag blocks of b's session delivered so far). Logs what
 * changed (new session, parameter or fingerprint change at WARNING, limits
 * exceeded at ERR; every beacon at DEBUG). Returns the SL_RXB_* bits. */
unsigned sl_linkacct_beacon(struct sl_linkacct *a, const struct sl_beacon *b, uint64_t frames_got,
                            uint64_t delivered, uint64_t now_ms, uint64_t now_us);

/* 0..1: frames lost this session, measured at beacons (a beacon follows
 * the frames it counts): 1 - arrived / sent since the session's first. */
double sl_linkacct_frame_loss(const struct sl_linkacct *a);

/* The security events among the counters, as WARNING lines with stable
 * message ids (docs/operations.md, "Log messages") for whatever moved since
 * the last call: SL-RX-SIG-DROP (signature failures, and frames left
 * unverified once the failed-verification budget is spent: a forgery
 * flood), SL-RX-REPLAY-DROP (replayed sequences, older epochs),
 * SL-RX-KEY-UNTRUSTED (key ids not in [keys] trusted) and, when mb is not
 * NULL, SL-RX-MODBUS-PEER-LIMIT (connections refused by max_conns_per_peer
 * or max_conns). One line per kind and call: the daemon calls it with its
 * drop summary, every period_s seconds. */
void sl_linkacct_alerts(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                        const struct sl_mbserver_stats *mb, unsigned period_s);

/* The periodic drop summary, called every SL_LINKACCT_DROP_LOG_MS: one
 * "drops in the last 10 s: stage/reason=N ..." line for the counters that
 * moved, then the sl_linkacct_alerts lines (mb: NULL without Modbus). */
#define SL_LINKACCT_DROP_LOG_MS 10000u
void sl_linkacct_drop_log(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                          const struct sl_hw_stats *link, const struct sl_mbserver_stats *mb);

/* The one-line link state for systemd's STATUS= (sl_sdnotify): "no beacon
 * yet", "link up, K key(s), T tags, N blocks/s" (blocks = verified blocks
 * delivered so far; the rate is over the time since the previous call) or
 * "link stale S s" (link_up false: no beacon or data within stale_ms).
 * Returns the length written (out stays NUL-terminated). */
size_t sl_linkacct_status(struct sl_linkacct *a, char *out, size_t cap, bool link_up, size_t keys,
                          uint32_t tags, uint64_t blocks, uint64_t now_ms);

/* Appends " stage/reason=N" to out for every drop counter that moved since
 * the last snapshot (snap true: and takes a new one) or since start (snap
 * false); returns the length written (out stays NUL-terminated, truncated
 * to cap). */
size_t sl_linkacct_drops(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                         const struct sl_hw_stats *link, char *out, size_t cap, bool snap);

#endif
