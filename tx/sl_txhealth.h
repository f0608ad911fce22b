/* sluice-tx's health as the log and systemd see it: one line per change of
 * the link's send state, overload entered and left, the carrier of the diode
 * NIC, the totals lines (verbose status, stop) and the STATUS= text for
 * sd_notify. The decisions the daemon used to make inline, in one place;
 * counters come from the snapshot, the sender and the sources, which stay
 * free of logging. Main thread only; nothing allocated. */
#ifndef SL_TXHEALTH_H
#define SL_TXHEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_link.h"
#include "sl_sender.h"
#include "sl_snapshot.h"
#include "sl_source.h"
#include "sl_txconf.h"

struct sl_txhealth {
    bool link_failing;             /* the last send reported an error */
    bool overloaded;
    uint64_t overload_seen, overload_last_us;
    uint64_t overload_over_us;     /* quiet this long (2 keyframes) = over */
    size_t ndevices;
    struct sl_link_watch nic;      /* [link] interface ("" = none) */
    uint64_t status_us, status_bytes, status_blocks;   /* at the last status text */
    bool ready;                    /* READY=1 sent */
    uint64_t status_next_us;
};

/* For configuration c (which must outlive h). */
void sl_txhealth_init(struct sl_txhealth *h, const struct sl_txconf *c);

/* The result e of a sender call that sends (what: "beacon", "send",
 * "flush"): "link: WHAT failed: ..." (error) when sending starts failing,
 * "link: sending again" (notice) when it works again; nothing per frame. */
void sl_txhealth_send(struct sl_txhealth *h, sl_err e, const char *what);

/* Updates coalesced or dropped by the snapshot's queue (the beacon's
 * queue_drops). */
uint64_t sl_txhealth_queue_drops(const struct sl_snapshot_stats *st);

/* Once per beacon: overload (deltas coalesced, events dropped or keyframe
 * chunks late) entered ("overload: the link cannot keep up", warning) or
 * over after two keyframe intervals without a new one (notice), and the
 * NIC's carrier (sl_link_watch). */
void sl_txhealth_beacon(struct sl_txhealth *h, const struct sl_snapshot *snap, uint64_t now_us);

/* The sender's totals: "status: blocks=..." with the snapshot's (final
 * false: the verbose status) or "stopping: N blocks, N frames sent (N
 * unsent), N beacons" (final true). */
void sl_txhealth_totals(const struct sl_snapshot *snap, const struct sl_sender *snd,
                        const struct sl_sources *src, bool final);

/* systemd's STATUS= text: "D devices up, N down[, W waiting], R blocks/s,
 * M Mbit/s on the link" (rates since the previous call; generated devices
 * count as up) and ", link send failing" / ", overloaded" when so. Returns
 * the length written (out stays NUL-terminated). */
size_t sl_txhealth_status(struct sl_txhealth *h, char *out, size_t cap, const struct sl_sender *snd,
                          const struct sl_sources *src, uint64_t now_us);

/* systemd (sl_sdnotify), from every main loop turn after the first beacon:
 * WATCHDOG=1 when due, READY=1 with the first status text, then STATUS=
 * recomputed every SL_TXHEALTH_STATUS_US (sent only when it changed). */
#define SL_TXHEALTH_STATUS_US 1000000u
void sl_txhealth_notify(struct sl_txhealth *h, const struct sl_sender *snd, const struct sl_sources *src,
                        uint64_t now_us);

#endif
