#include "sl_txhealth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sl_log.h"
#include "sl_sdnotify.h"

void sl_txhealth_init(struct sl_txhealth *h, const struct sl_txconf *c)
{
    memset(h, 0, sizeof *h);
    h->overload_over_us = 2ull * c->snapshot.keyframe_ms * 1000u;
    h->ndevices = c->ndevices;
    sl_link_watch_init(&h->nic, c->link.interface, "SL-TX-CARRIER-UP", "SL-TX-CARRIER-DOWN");
}

void sl_txhealth_send(struct sl_txhealth *h, sl_err e, const char *what)
{
    if (e == SL_OK) {
        if (h->link_failing)
            sl_log_id(SL_LOG_NOTICE, "SL-TX-SEND-OK", "link: sending again");
        h->link_failing = false;
        return;
    }
    if (!h->link_failing)
        sl_log_id(SL_LOG_ERR, "SL-TX-SEND-FAIL", "link: %s failed: %s%s%s (frames are counted as unsent)",
                  what, sl_strerror(e), e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
    h->link_failing = true;
}

uint64_t sl_txhealth_queue_drops(const struct sl_snapshot_stats *st)
{
    return st->coalesced + st->events_dropped;
}

void sl_txhealth_beacon(struct sl_txhealth *h, const struct sl_snapshot *snap, uint64_t now_us)
{
    struct sl_snapshot_stats st;
    sl_snapshot_stats(snap, &st);
    uint64_t seen = sl_txhealth_queue_drops(&st) + st.late;
    if (seen != h->overload_seen) {
        if (!h->overloaded)
            sl_log_id(SL_LOG_WARNING, "SL-TX-OVERLOAD",
                      "overload: the link cannot keep up: %" PRIu64 " update(s) coalesced, "
                      "%" PRIu64 " event(s) dropped, %" PRIu64 " keyframe/schema chunk(s) late so far",
                      st.coalesced, st.events_dropped, st.late);
        h->overloaded = true;
        h->overload_seen = seen;
        h->overload_last_us = now_us;
    } else if (h->overloaded && now_us - h->overload_last_us >= h->overload_over_us) {
        sl_log(SL_LOG_NOTICE, "overload over");
        h->overloaded = false;
    }
    sl_link_watch_tick(&h->nic, now_us / 1000u);
}

void sl_txhealth_totals(const struct sl_snapshot *snap, const struct sl_sender *snd,
                        const struct sl_sources *src, bool final)
{
    struct sl_snapshot_stats st;
    struct sl_sender_stats ss;
    sl_snapshot_stats(snap, &st);
    sl_sender_stats(snd, &ss);
    if (final)
        sl_log(SL_LOG_INFO, "stopping: %" PRIu64 " blocks, %" PRIu64 " frames sent (%" PRIu64 " unsent), "
               "%" PRIu64 " beacons", ss.blocks_sent[SL_CHANNEL_TAGS], ss.frames_sent, ss.frames_unsent,
               ss.beacons_sent);
    else
        sl_log(SL_LOG_INFO, "status: blocks=%" PRIu64 " frames=%" PRIu64 " unsent=%" PRIu64
               " beacons=%" PRIu64 " deltas=%" PRIu64 " keyframes=%" PRIu64 " schemas=%" PRIu64
               " pending=%u coalesced=%" PRIu64 " poll_errors=%" PRIu64,
               ss.blocks_sent[SL_CHANNEL_TAGS], ss.frames_sent, ss.frames_unsent, ss.beacons_sent,
               st.deltas_sent, st.keyframes, st.schemas, st.pending, st.coalesced,
               sl_sources_poll_errors(src));
}

size_t sl_txhealth_status(struct sl_txhealth *h, char *out, size_t cap, const struct sl_sender *snd,
                          const struct sl_sources *src, uint64_t now_us)
{
    size_t n[3] = { 0, 0, 0 }, units = 0;   /* by enum sl_poller_state: waiting, up, down */
    struct sl_source_line li;
    struct sl_source_unit u;
    for (size_t i = 0; sl_sources_line(src, i, &li); i++)
        for (size_t k = 0; sl_sources_unit(src, i, k, &u); k++, units++)
            n[u.state <= SL_POLLER_DOWN ? u.state : SL_POLLER_UNKNOWN]++;
    n[SL_POLLER_UP] += h->ndevices > units ? h->ndevices - units : 0;   /* generated: always up */
    struct sl_sender_stats ss;
    sl_sender_stats(snd, &ss);
    uint64_t blocks = 0;
    for (unsigned c = 0; c < SL_CHANNEL_COUNT; c++)
        blocks += ss.blocks_sent[c];
    uint64_t dt = now_us - h->status_us;
    bool rated = h->status_us && dt;
    uint64_t bps = rated ? (ss.bytes_sent - h->status_bytes) * 8000000u / dt : 0;
    uint64_t rate = rated ? ((blocks - h->status_blocks) * 1000000u + dt / 2u) / dt : 0;
    h->status_us = now_us;
    h->status_bytes = ss.bytes_sent;
    h->status_blocks = blocks;
    char waiting[48] = "";
    if (n[SL_POLLER_UNKNOWN])
        snprintf(waiting, sizeof waiting, ", %zu waiting", n[SL_POLLER_UNKNOWN]);
    int len = snprintf(out, cap, "%zu device%s up, %zu down%s, %" PRIu64 " blocks/s, %" PRIu64 ".%" PRIu64
                       " Mbit/s on the link%s%s", n[SL_POLLER_UP], n[SL_POLLER_UP] == 1 ? "" : "s",
                       n[SL_POLLER_DOWN], waiting, rate, bps / 1000000u, bps / 100000u % 10u,
                       h->link_failing ? ", link send failing" : "", h->overloaded ? ", overloaded" : "");
    return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : (cap ? cap - 1 : 0);
}

void sl_txhealth_notify(struct sl_txhealth *h, const struct sl_sender *snd, const struct sl_sources *src,
                        uint64_t now_us)
{
    sl_sdnotify_check(sl_sdnotify_watchdog(now_us / 1000u));
    if (now_us < h->status_next_us)
        return;
    char text[SL_SDNOTIFY_STATUS_MAX + 1];
    sl_txhealth_status(h, text, sizeof text, snd, src, now_us);
    sl_sdnotify_check(h->ready ? sl_sdnotify_status("%s", text) : sl_sdnotify_ready(text));
    h->ready = true;
    h->status_next_us = now_us + SL_TXHEALTH_STATUS_US;
}
