/* sluice-rx: the IT side of the diode (docs/rx.md).
 *
 * One thread, one poll loop: datagrams from the link go through the wire
 * path (frames, FEC, signature, replay) into the mirror; the read-only
 * Modbus server answers from the mirror; the SQLite store, the replay state
 * and the drop log follow on timers. Everything is opened first, then
 * privileges are dropped, then the loop runs until SIGTERM/SIGINT (or the
 * end of a replayed capture). Nothing is allocated per datagram, block or
 * message: every buffer is taken at start-up. */
#define _GNU_SOURCE   /* setresuid, setresgid */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sodium.h>
#include <unistd.h>

#include "sl_diag.h"
#include "sl_file.h"
#include "sl_filerecv.h"
#include "sl_http.h"
#include "sl_liveness.h"
#include "sl_hw.h"
#include "sl_link.h"
#include "sl_key.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_mqtt.h"
#include "sl_msg.h"
#include "sl_receiver.h"
#include "sl_replay.h"
#include "sl_replayfile.h"
#include "sl_rxconf.h"
#include "sl_rxstats.h"
#include "sl_store.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define REPLAY_FILE          "replay.state"
#define SAVE_PERIOD_MS       1000u     /* replay state saved at most this often when changed */
#define DROP_LOG_PERIOD_MS   10000u    /* at most one drop summary line per period */
#define LOOP_MAX_WAIT_MS     100       /* poll timeout cap: timers are checked this often */
#define RX_BATCHES_PER_LOOP  16        /* link batches per loop turn, so Modbus is served too */
#define FEC_DONE_HISTORY     1024u     /* completed block ids remembered (late symbols) */
#define FEC_CACHE_ENTRIES    16u       /* cached decode matrices */
#define FILES_IDLE_US        (60ull * 1000000u)   /* a file with no progress for 60 s is dropped */
#define SCHEMA_TAGS_MAX      (SL_MSG_BODY_MAX / SL_SCHEMA_TAG_FIXED)  /* tags one SCHEMA can hold */

static volatile sig_atomic_t stop_sig;
static volatile sig_atomic_t hup_sig;
static int verbose;

/* ---- logging: the only place that prints ------------------------------------- */

__attribute__((format(printf, 1, 2))) static void logline(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sluice-rx: %s\n", buf);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the daemon's state --------------------------------------------------------- */

struct rxd {
    const struct sl_rxconf *conf;
    struct sl_replay *replay;
    char replay_path[SL_RXCONF_STR_MAX + 32];
    bool replay_dirty;
    struct sl_hw *hw;
    struct sl_receiver *rcv;
    struct sl_mirror *mirror;
    struct sl_store *store;
    struct sl_mbserver *mb;
    struct sl_filerecv *fr;
    struct sl_http *http;
    struct sl_mqtt *mqtt;
    struct sl_rxbeacon_limits limits;
    /* Frame loss of the current session: frames TX reported sent vs frames
     * that arrived, both counted from the session's first beacon. */
    uint64_t loss_base_sent, loss_base_got, loss_sent, loss_got;
    /* Tag blocks of a session that never arrived, including the ones no
     * frame of which reached us (invisible to the FEC decoder): the
     * beacon's highest_block minus the blocks delivered in that session. */
    uint64_t pl_session, pl_blocks, blocks_missing;
    /* Health of the diode NIC ([link] interface), read once a second. */
    struct sl_link_health health;
    bool health_ok;
    int carrier;                    /* last carrier logged; -2 = none yet */
    uint64_t next_health_ms;

    struct sl_value *vals;          /* one message's values: SL_DELTA_VALUES_MAX */
    struct sl_schema_tag *tags;     /* one SCHEMA chunk's tags: SCHEMA_TAGS_MAX */
    uint64_t generation;            /* mirror schema generation last logged */
    /* Liveness from data: tag blocks verified vs beacons' highest_block,
     * one tracker per trusted key (slot in c->keys.keys). */
    struct sl_liveness_set live;
    uint64_t data_stale_since_ms;   /* monotonic ms the current episode was logged */
    uint64_t next_future_log_ms;    /* future-dated values: rate-limited log */
    uint64_t future_logged;         /* mirror's future count at the last log line */

    uint64_t now_ms;                /* monotonic, refreshed every loop turn */
    uint64_t start_ms;
    uint64_t last_beacon_ms;        /* start time until the first beacon */
    uint64_t next_checkpoint_ms, next_save_ms, next_drop_log_ms;
    bool checkpoint_failing;
    uint64_t next_ckpt_log_ms;
    uint64_t next_save_log_ms;
    uint64_t next_bad_log_ms;       /* malformed payloads / refused schema chunks */
    uint64_t next_write_log_ms;
    uint64_t writes_unlogged;
    uint64_t next_io_log_ms;

    struct sl_rxstats st;           /* every counter, refreshed by rxd_stats() */
    /* Snapshot of drop counters at the last summary line, for deltas. */
    uint64_t prev_drops[SL_RX_STAGES][SL_ERR__COUNT];
    uint64_t prev_link_reject[SL_ERR__COUNT];
    uint64_t prev_kernel, prev_ifdrops, prev_unrec, prev_evicted;
};

/* Every counter of the daemon in one struct, refreshed from each module
 * (receiver, link, mirror, store, Modbus server, file receiver). This is
 * what a metrics or status page reads; cost: a few struct copies and, for
 * pcap, one pcap_stats call. */
static const struct sl_rxstats *rxd_stats(struct rxd *d)
{
    struct sl_rxstats *st = &d->st;
    sl_receiver_stats(d->rcv, &st->rx);
    sl_hw_stats(d->hw, &st->link);
    sl_mirror_stats(d->mirror, &st->mirror);
    st->link_up = sl_mirror_link_up(d->mirror);
    st->tags = sl_mirror_count(d->mirror);
    st->store_on = d->store != NULL;
    if (d->store)
        sl_store_stats(d->store, &st->store);
    st->modbus_on = d->mb != NULL;
    if (d->mb) {
        sl_mbserver_stats(d->mb, &st->modbus);
        st->modbus_conns = sl_mbserver_conns(d->mb);
    }
    st->files_on = d->fr != NULL;
    if (d->fr)
        sl_filerecv_stats(d->fr, &st->files);
    return st;
}

/* ---- tag channel ---------------------------------------------------------------- */

static void log_schema_change(struct rxd *d)
{
    uint64_t g = sl_mirror_generation(d->mirror);
    if (g == d->generation)
        return;
    d->generation = g;
    logline("schema %08" PRIx32 " active: %" PRIu32 " tags (values wait for the next keyframe)",
            sl_mirror_schema_id(d->mirror), sl_mirror_count(d->mirror));
}

static bool rate_ok(uint64_t *next, uint64_t now, uint64_t period)
{
    if (now < *next)
        return false;
    *next = now + period;
    return true;
}

/* The source time above which a value is future-dated: RX's clock turned
 * into TX's by the last beacon's offset (RX - TX), plus [mirror]
 * future_tolerance_ms. 0 (no check) until a beacon gave the offset. */
static uint64_t future_after_us(const struct rxd *d, uint64_t now_us)
{
    const struct sl_rxbeacon *b = &d->st.beacon;
    if (!b->seen)
        return 0;
    uint64_t tx_now = now_us - (uint64_t)b->clock_offset_us;   /* two's complement: now - off */
    return tx_now + (uint64_t)d->conf->mirror.future_tolerance_ms * 1000u;
}

/* One rate-limited line naming the last future-dated tag, when any came. */
static void log_future(struct rxd *d)
{
    struct sl_mirror_stats ms;
    sl_mirror_stats(d->mirror, &ms);
    uint32_t id, pos;
    uint64_t src;
    if (ms.future == d->future_logged || !sl_mirror_future_last(d->mirror, &id, &src) ||
        !rate_ok(&d->next_future_log_ms, d->now_ms, DROP_LOG_PERIOD_MS))
        return;
    uint64_t tx_now = wall_us() - (uint64_t)d->st.beacon.clock_offset_us;
    struct sl_mirror_tag t;
    bool named = sl_mirror_find(d->mirror, id, &pos) == SL_OK && sl_mirror_get(d->mirror, pos, &t) == SL_OK;
    logline("warning: tag %s%s%s (id %" PRIu32 ") has a source time %.3f s ahead of TX's clock "
            "(tolerance %" PRIu32 " ms): applied, shown Uncertain (0x40000000); %" PRIu64
            " future-dated values so far", named ? t.path : "?", named ? "/" : "", named ? t.name : "", id,
            (double)(int64_t)(src - tx_now) / 1e6, d->conf->mirror.future_tolerance_ms, ms.future);
    d->future_logged = ms.future;
}

static void tags_payload(struct rxd *d, const struct sl_block_hdr *h,
                         const uint8_t key_id[SL_KEY_ID_BYTES], const uint8_t *payload, size_t len,
                         uint64_t now_us)
{
    struct sl_msg_reader r;
    struct sl_msg msg;
    sl_err e = sl_msg_reader_init(&r, payload, len);
    d->st.tagch.payloads++;
    if (e != SL_OK) {
        /* Signed by a trusted key yet malformed: a TX/RX version mismatch or
         * a TX bug, never line noise. Nothing of it is applied. */
        d->st.tagch.bad_payloads++;
        if (rate_ok(&d->next_bad_log_ms, d->now_ms, DROP_LOG_PERIOD_MS))
            logline("warning: signed tag payload refused (%s), %" PRIu64 " so far",
                    sl_strerror(e), d->st.tagch.bad_payloads);
        return;
    }
    while (sl_msg_next(&r, &msg)) {
        switch (msg.type) {
        case SL_MSG_SCHEMA: {
            struct sl_msg_schema *s = &msg.u.schema;
            size_t n = 0;
            while (n < SCHEMA_TAGS_MAX && sl_msg_tag_next(&s->tags, &d->tags[n]))
                n++;
            d->st.tagch.schema_chunks++;
            if (verbose)
                logline("schema %08" PRIx32 " chunk %u/%u: %zu tags", s->schema_id, s->chunk + 1u,
                        s->chunks, n);
            e = sl_mirror_schema_chunk(d->mirror, s->schema_id, s->chunk, s->chunks, s->total_tags,
                                       d->tags, n);
            if (e != SL_OK) {
                d->st.tagch.schema_refused++;
                if (rate_ok(&d->next_bad_log_ms, d->now_ms, DROP_LOG_PERIOD_MS))
                    logline("warning: schema %08" PRIx32 " chunk %u/%u refused: %s "
                            "(the mirror keeps the previous schema)",
                            s->schema_id, s->chunk + 1u, s->chunks, sl_strerror(e));
            }
            log_schema_change(d);
            break;
        }
        case SL_MSG_KEYFRAME:
        case SL_MSG_DELTA: {
            struct sl_value_iter *it =
                msg.type == SL_MSG_KEYFRAME ? &msg.u.keyframe.values : &msg.u.delta.values;
            size_t n = 0;
            /* One message holds at most SL_DELTA_VALUES_MAX values: one batch. */
            while (n < SL_DELTA_VALUES_MAX && sl_msg_value_next(it, &d->vals[n]))
                n++;
            d->st.tagch.values += n;
            /* Ordered by the block that carried them, not by source time. */
            struct sl_mirror_origin o = { .epoch = h->epoch, .block_seq = h->block_seq };
            memcpy(o.key_id, key_id, SL_KEY_ID_BYTES);
            /* Ignored values are counted by the mirror. */
            (void)sl_mirror_apply_block(d->mirror, &o, d->vals, n, now_us, future_after_us(d, now_us));
            log_future(d);
            break;
        }
        case SL_MSG_EVENT: {
            const struct sl_msg_event *ev = &msg.u.event;
            static const char *const kinds[] = { "event", "device down", "device up",
                                                 "configuration", "start" };
            d->st.tagch.events++;
            if (ev->mirror_unit)
                logline("TX %s (unit %u): %s", ev->kind < 5 ? kinds[ev->kind] : "event",
                        ev->mirror_unit, ev->text);
            else
                logline("TX %s: %s", ev->kind < 5 ? kinds[ev->kind] : "event", ev->text);
            break;
        }
        default:
            break;
        }
    }
}

_Static_assert(SL_LIVENESS_KEYS == SL_KEY_SET_MAX, "one liveness tracker per trusted key slot");

/* Slot of a trusted key in the set (its liveness tracker); SL_LIVENESS_KEYS,
 * which the tracker set ignores, if not found (cannot happen: the frame
 * verified under it). */
static unsigned key_slot(const struct rxd *d, const uint8_t key_id[SL_KEY_ID_BYTES])
{
    const struct sl_key_set *ks = &d->conf->keys.keys;
    const struct sl_key_public *k = sl_key_set_find(ks, key_id);
    return k ? (unsigned)(k - ks->key) : SL_LIVENESS_KEYS;
}

static void on_payload(void *ctx, const struct sl_block_hdr *h, const uint8_t key_id[SL_KEY_ID_BYTES],
                       const uint8_t *payload, size_t len, uint64_t now_us)
{
    struct rxd *d = ctx;
    d->replay_dirty = true;   /* the receiver accepted (epoch, seq) into the window */
    if (h->channel == SL_CHANNEL_TAGS) {
        if (h->session != d->pl_session) {
            d->pl_session = h->session;
            d->pl_blocks = 0;
        }
        d->pl_blocks++;
        sl_liveness_set_block(&d->live, key_slot(d, key_id), d->now_ms, h->session, h->epoch,
                              h->block_seq);
        tags_payload(d, h, key_id, payload, len, now_us);
    }
    else if (h->channel == SL_CHANNEL_FILES && d->fr)
        sl_filerecv_payload(d->fr, h->session, payload, len, now_us);
    else
        d->st.tagch.other_channel++;
}

/* ---- beacons -------------------------------------------------------------------- */

static void fp_hex(char out[2 * SL_FP_BYTES + 1], const uint8_t fp[SL_FP_BYTES])
{
    for (unsigned i = 0; i < SL_FP_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

static void on_beacon(void *ctx, const struct sl_beacon *b, uint64_t now_us)
{
    struct rxd *d = ctx;
    struct sl_rxbeacon *t = &d->st.beacon;
    struct sl_beacon prev = t->last;
    d->replay_dirty = true;
    d->last_beacon_ms = d->now_ms;
    sl_liveness_set_beacon(&d->live, key_slot(d, b->key_id), d->now_ms, b->session, b->epoch,
                           b->highest_block);
    unsigned ev = sl_rxbeacon_update(t, b, &d->limits, d->now_ms, now_us);
    struct sl_receiver_stats rs;
    sl_receiver_stats(d->rcv, &rs);
    if (ev & SL_RXB_SESSION) {
        d->loss_base_sent = b->frames_sent;
        d->loss_base_got = rs.frames;
    }
    d->loss_sent = b->frames_sent;
    d->loss_got = rs.frames;
    /* A block still in flight when the beacon overtakes it counts as
     * missing until the next beacon: a gauge, not a counter. */
    uint64_t delivered = b->session == d->pl_session ? d->pl_blocks : 0;
    d->blocks_missing = b->highest_block > delivered ? b->highest_block - delivered : 0;
    if (verbose)
        logline("beacon %" PRIu64 " session %016" PRIx64 " epoch %" PRIu64 " highest_block %" PRIu64
                " clock offset %+" PRId64 " us", b->beacon_seq, b->session, b->epoch,
                b->highest_block, t->clock_offset_us);
    if (!ev)
        return;
    char kid[SL_KEY_ID_HEX_BYTES], a[2 * SL_FP_BYTES + 1], z[2 * SL_FP_BYTES + 1];
    sl_key_id_format(kid, b->key_id);
    if (ev & SL_RXB_SESSION)
        logline("TX session %016" PRIx64 " epoch %" PRIu64 " (key %s)%s: S=%u k=%u m=%u "
                "interleave=%u rate=%" PRIu32 " kbit/s, clock offset %+" PRId64 " ms",
                b->session, b->epoch, kid, (ev & SL_RXB_FIRST) ? "" : " (new)", b->symbol_size, b->k,
                b->m, b->interleave, b->rate_kbps, t->clock_offset_us / 1000);
    if (ev & SL_RXB_PARAMS)
        logline("WARNING: TX link parameters changed within session %016" PRIx64
                ": S %u->%u, k %u->%u, m %u->%u, interleave %u->%u, rate %" PRIu32 "->%" PRIu32
                " kbit/s (changes so far: %" PRIu64 ")",
                b->session, prev.symbol_size, b->symbol_size, prev.k, b->k, prev.m, b->m,
                prev.interleave, b->interleave, prev.rate_kbps, b->rate_kbps, t->param_changes);
    if (ev & SL_RXB_CONFIG_FP) {
        fp_hex(a, prev.config_fp);
        fp_hex(z, b->config_fp);
        logline("WARNING: TX configuration fingerprint changed within session %016" PRIx64
                ": %s -> %s", b->session, a, z);
    }
    if (ev & SL_RXB_SCHEMA_FP) {
        fp_hex(a, prev.schema_fp);
        fp_hex(z, b->schema_fp);
        logline("WARNING: TX schema fingerprint changed within session %016" PRIx64 ": %s -> %s",
                b->session, a, z);
    }
    if (ev & SL_RXB_LIMITS)
        logline("ERROR: TX parameters exceed this receiver's decoder limits: S=%u (max %" PRIu32
                ", from [link] mtu), k=%u (max_k %" PRIu32 "), m=%u (max_m %" PRIu32
                "); blocks beyond them are dropped: raise [fec] max_k/max_m or [link] mtu",
                b->symbol_size, d->limits.symbol_max, b->k, d->limits.max_k, b->m, d->limits.max_m);
    if (ev & SL_RXB_LIMITS_OK)
        logline("TX parameters fit the decoder limits again (S=%u k=%u m=%u)", b->symbol_size, b->k,
                b->m);
}

/* ---- Modbus write log ----------------------------------------------------------- */

static void on_write(void *ctx, const char *peer, const struct sl_mbreq *req)
{
    struct rxd *d = ctx;
    if (rate_ok(&d->next_write_log_ms, d->now_ms, DROP_LOG_PERIOD_MS)) {
        logline("refused Modbus write FC %u from %s (unit %u, exception 0x01)%s", req->fc, peer,
                req->unit, d->writes_unlogged ? "; more refused since the last line" : "");
        d->writes_unlogged = 0;
    } else {
        d->writes_unlogged++;
    }
}

static void on_file_log(void *ctx, int ok, const char *line)
{
    (void)ctx;
    logline("%s%s", ok ? "" : "warning: ", line);
}

/* ---- periodic work -------------------------------------------------------------- */

/* Appends " stage/reason=N" for every counter that moved since the
 * snapshot (or since start when snap is false), and updates the snapshot. */
static size_t drop_deltas(struct rxd *d, char *out, size_t cap, bool snap)
{
    const struct sl_rxstats *st = rxd_stats(d);
    size_t off = 0;
    int n;
#define ADD(...)                                                              \
    do {                                                                      \
        n = snprintf(out + off, off < cap ? cap - off : 0, __VA_ARGS__);      \
        if (n > 0)                                                            \
            off += (size_t)n;                                                 \
    } while (0)
    for (int s = 0; s < SL_RX_STAGES; s++)
        for (int e = 0; e < SL_ERR__COUNT; e++) {
            uint64_t v = st->rx.drops[s][e] - (snap ? d->prev_drops[s][e] : 0);
            if (v)
                ADD(" %s/%s=%" PRIu64, sl_receiver_stage_name((enum sl_rx_stage)s),
                    sl_err_name((sl_err)e), v);
            if (snap)
                d->prev_drops[s][e] = st->rx.drops[s][e];
        }
    for (int e = 0; e < SL_ERR__COUNT; e++) {
        uint64_t v = st->link.rx_reject[e] - (snap ? d->prev_link_reject[e] : 0);
        if (v)
            ADD(" link/%s=%" PRIu64, sl_err_name((sl_err)e), v);
        if (snap)
            d->prev_link_reject[e] = st->link.rx_reject[e];
    }
    uint64_t v;
    if ((v = st->link.rx_kernel_drops - (snap ? d->prev_kernel : 0)))
        ADD(" link/socket_overflow=%" PRIu64, v);
    if ((v = st->link.rx_if_drops - (snap ? d->prev_ifdrops : 0)))
        ADD(" link/nic_drop=%" PRIu64, v);
    if ((v = st->rx.fec.unrecoverable - (snap ? d->prev_unrec : 0)))
        ADD(" fec/undecodable=%" PRIu64, v);
    if ((v = st->rx.fec.evicted - (snap ? d->prev_evicted : 0)))
        ADD(" fec/table_full=%" PRIu64, v);
    if (snap) {
        d->prev_kernel = st->link.rx_kernel_drops;
        d->prev_ifdrops = st->link.rx_if_drops;
        d->prev_unrec = st->rx.fec.unrecoverable;
        d->prev_evicted = st->rx.fec.evicted;
    }
#undef ADD
    return off;
}

static void drop_log(struct rxd *d)
{
    char buf[768];
    buf[0] = '\0';
    if (drop_deltas(d, buf, sizeof buf, true) > 0)
        logline("drops in the last %u s:%s", DROP_LOG_PERIOD_MS / 1000u, buf);
    if (d->writes_unlogged) {
        logline("refused %" PRIu64 " more Modbus writes", d->writes_unlogged);
        d->writes_unlogged = 0;
    }
}

/* Writes the mirror's dirty tags; the list is cleared only on success, so a
 * failed checkpoint (disk full) is retried whole at the next period. */
static bool checkpoint(struct rxd *d)
{
    size_t n;
    const uint32_t *pos = sl_mirror_dirty(d->mirror, &n);
    if (!d->store) {
        sl_mirror_dirty_clear(d->mirror);   /* nothing follows it: keep it short */
        return true;
    }
    if (n == 0)
        return true;
    sl_err e = sl_store_checkpoint(d->store, d->mirror, pos, n, wall_us());
    if (e == SL_OK) {
        sl_mirror_dirty_clear(d->mirror);
        if (d->checkpoint_failing)
            logline("database checkpoint works again (%zu rows)", n);
        d->checkpoint_failing = false;
        return true;
    }
    d->st.checkpoint_failures++;
    if (!d->checkpoint_failing || rate_ok(&d->next_ckpt_log_ms, d->now_ms, DROP_LOG_PERIOD_MS)) {
        d->next_ckpt_log_ms = d->now_ms + DROP_LOG_PERIOD_MS;
        logline("warning: database checkpoint failed: %s (%zu rows kept; serving from memory, "
                "retrying every %" PRIu32 " ms; failures: %" PRIu64 ")",
                sl_store_errmsg(d->store), n, d->conf->mirror.checkpoint_ms,
                d->st.checkpoint_failures);
    }
    d->checkpoint_failing = true;
    return false;
}

static bool save_state(struct rxd *d)
{
    if (sl_replayfile_save(d->replay, d->replay_path) == SL_OK) {
        d->replay_dirty = false;
        d->st.state_saves++;
        return true;
    }
    d->st.state_save_failures++;
    if (rate_ok(&d->next_save_log_ms, d->now_ms, DROP_LOG_PERIOD_MS))
        logline("warning: cannot save replay state %s: %s (failures: %" PRIu64 ")", d->replay_path,
                strerror(errno), d->st.state_save_failures);
    return false;
}

/* Carrier and NIC counters of the diode interface from sysfs, with one
 * log line per carrier change. An RX NIC that transmits anything is worth
 * a look: on a diode its tx counters stay at zero. */
static void read_health(struct rxd *d)
{
    const char *ifname = d->conf->link.interface;
    if (!ifname[0] || d->now_ms < d->next_health_ms)
        return;
    d->next_health_ms = d->now_ms + 1000;
    d->health_ok = sl_link_read(&d->health, NULL, ifname) == SL_OK;
    int carrier = d->health_ok ? d->health.carrier : -1;
    if (carrier != d->carrier)
        logline("link %s: carrier %s, operstate %s", ifname,
                carrier == 1 ? "up" : carrier == 0 ? "DOWN" : "unknown",
                d->health_ok ? sl_link_oper_name(d->health.oper) : "unknown");
    d->carrier = carrier;
}

/* Liveness from data, then the mirror's staleness from both: beacons
 * silent for stale_ms, or tag blocks lagging the beacons for stale_ms,
 * age the mirror the same way. One line when data starts lagging and one
 * when it flows again. */
static void tick_liveness(struct rxd *d)
{
    unsigned ev = sl_liveness_set_tick(&d->live, d->now_ms);
    const struct sl_liveness *l = sl_liveness_set_culprit(&d->live);
    if ((ev & SL_LIVENESS_STALE_START) && l) {
        d->data_stale_since_ms = d->now_ms;
        char kid[SL_KEY_ID_HEX_BYTES] = "?";
        if (d->live.culprit < d->conf->keys.keys.count)
            sl_key_id_format(kid, d->conf->keys.keys.key[d->live.culprit].id);
        char got[32] = "none";
        if (l->have_data)
            snprintf(got, sizeof got, "%" PRIu64, l->data_high);
        if (l->reason == SL_LIVENESS_INCOMPLETE)
            logline("warning: tag data stale: %" PRIu64 " of %" PRIu64 " tag blocks announced before "
                    "%" PRIu64 " ms ago (blocks %" PRIu64 "..%" PRIu64 ") were never verified, "
                    "%" PRIu64 " of them scattered beyond one outage (key %s, session %016" PRIx64 "); the "
                    "mirror shows last usable values (0x408F0000) as for a cut link (episodes: %" PRIu64
                    ")",
                    l->win_missing, l->win_hi - l->win_lo, d->now_ms - l->win_since_ms, l->win_lo,
                    l->win_hi - 1u, l->win_missing - l->win_run, kid, l->session, d->live.episodes);
        else
            logline("warning: tag data stale: beacons announced tag block %" PRIu64 " over %" PRIu32
                    " ms ago, highest verified is %s (key %s, session %016" PRIx64 "); the mirror "
                    "shows last usable values (0x408F0000) as for a cut link (episodes: %" PRIu64 ")",
                    l->lag_announced - 1u, d->conf->mirror.stale_ms, got, kid, l->session,
                    d->live.episodes);
    }
    if (ev & SL_LIVENESS_STALE_END)
        logline("tag data flows again: every active key's tag blocks verified up to its announcements "
                "(stale for %" PRIu64 " ms)", d->now_ms - d->data_stale_since_ms);
    sl_mirror_tick(d->mirror, d->now_ms, sl_liveness_set_live_ms(&d->live, d->last_beacon_ms));
}

static void periodic(struct rxd *d)
{
    read_health(d);
    tick_liveness(d);
    if (d->fr)
        sl_filerecv_tick(d->fr, wall_us());
    if (d->now_ms >= d->next_checkpoint_ms) {
        d->next_checkpoint_ms = d->now_ms + d->conf->mirror.checkpoint_ms;
        checkpoint(d);
    }
    if (d->now_ms >= d->next_save_ms) {
        d->next_save_ms = d->now_ms + SAVE_PERIOD_MS;
        if (d->replay_dirty)
            save_state(d);
    }
    if (d->now_ms >= d->next_drop_log_ms) {
        d->next_drop_log_ms = d->now_ms + DROP_LOG_PERIOD_MS;
        drop_log(d);
    }
}

/* ---- start-up --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-rx -c FILE [--check] [-v]\n"
            "       sluice-rx --help | --version\n"
            "\n"
            "The IT side of the Sluice data diode: receives signed, FEC-protected frames,\n"
            "verifies them, keeps the mirror (SQLite) and serves it read-only over Modbus TCP.\n"
            "\n"
            "  -c, --config FILE  configuration (INI; docs/rx.md, docs/examples/rx.conf)\n"
            "      --check        validate the configuration (and its key files, state_dir,\n"
            "                     directories, user) and exit: 0 and a summary when clean,\n"
            "                     2 with every problem as file:line: message; warnings\n"
            "                     (file:line: warning: ...) never change the status. With\n"
            "                     transport udp, [modbus]/[http] on the diode address or a\n"
            "                     wildcard are refused unless [link] allow_services_on_diode\n"
            "                     = on; as root it also reports whether nftables drops\n"
            "                     egress on [link] interface (docs/operations.md)\n"
            "  -v, --verbose      also log every verified beacon's session and each schema chunk\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT checkpoint the database, save the replay state and exit 0;\n"
            "SIGHUP is logged and ignored (restart to apply configuration changes).\n"
            "Exit status: 0 clean stop (or end of a pcapfile replay), 1 start-up or runtime\n"
            "failure, 2 configuration problems.\n");
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        hup_sig = 1;
    else
        stop_sig = 1;
}

static int print_diag(const struct sl_diag *diag)
{
    size_t need = 0;
    sl_err sized = sl_diag_render(NULL, 0, &need, diag);   /* SL_ERR_OVERFLOW: need is set */
    (void)sized;
    char *text = malloc(need + 1);
    if (!text)
        return 1;
    if (sl_diag_render(text, need + 1, &need, diag) == SL_OK)
        fputs(text, stderr);
    free(text);
    return 0;
}

static const char *transport_name(uint8_t t)
{
    return t == SL_RXCONF_UDP ? "udp" : t == SL_RXCONF_PCAP ? "pcap" : "pcapfile";
}

/* The configuration's warnings (sl_rxconf.h): on stderr for --check, as
 * log lines at start. */
static void print_warnings(const struct sl_rxconf *c, bool log)
{
    size_t n = sl_rxconf_warnings(c);
    for (size_t i = 0; i < n; i++) {
        if (log)
            logline("%s", c->warn.msg[i]);
        else
            fprintf(stderr, "%s\n", c->warn.msg[i]);
    }
    if (c->warn.count > n) {
        if (log)
            logline("%s: warning: ... and %zu more warnings", c->file, c->warn.count - n);
        else
            fprintf(stderr, "%s: warning: ... and %zu more warnings\n", c->file, c->warn.count - n);
    }
}

#define NFT_OUTPUT_MAX (4u << 20)   /* bytes of `nft list ruleset` read; a ruleset is far smaller */

/* --check note: does nftables drop what this host sends on the diode NIC?
 * Runs `nft list ruleset` (needs root: CAP_NET_ADMIN) and hands the text to
 * sl_rxconf_nft_egress_drop. A note, never an error: RX itself sends
 * nothing on the link; the rule also stops the kernel's own replies (ICMP,
 * TCP RST) to whatever arrives there (docs/operations.md). */
static void nft_note(const struct sl_rxconf *c)
{
    if (c->link.transport == SL_RXCONF_PCAPFILE)
        return;
    if (!c->link.interface[0]) {
        printf("  nftables egress drop on the diode NIC: unknown ([link] interface not set)\n");
        return;
    }
    const char *state = "unknown (not root or nft missing)";
    int fds[2] = { -1, -1 };
    char *text = malloc(NFT_OUTPUT_MAX);
    posix_spawn_file_actions_t fa;
    bool fa_ok = false;
    pid_t pid = -1;
    if (!text || pipe2(fds, O_CLOEXEC) != 0 || posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_ok = true;
    char *const argv[] = { "nft", "list", "ruleset", NULL };
    if (posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO) != 0 ||
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0) != 0 ||
        posix_spawnp(&pid, "nft", &fa, NULL, argv, environ) != 0) {
        pid = -1;
        goto out;
    }
    close(fds[1]);
    fds[1] = -1;
    size_t len = 0;
    ssize_t r;
    while (len < NFT_OUTPUT_MAX &&
           ((r = read(fds[0], text + len, NFT_OUTPUT_MAX - len)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            len += (size_t)r;
    close(fds[0]);   /* an oversized ruleset: nft stops on EPIPE */
    fds[0] = -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && len < NFT_OUTPUT_MAX)
        state = sl_rxconf_nft_egress_drop(text, len, c->link.interface) ? "present" : "absent";
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(text);
    printf("  nftables egress drop on %s: %s\n", c->link.interface, state);
}

/* Started as root with no [rx] user to drop to, RX would parse the fibre's
 * bytes and write its files as root for good: said loudly at start and by
 * --check, not fatal (the demo and tests run this way), silenced only on
 * purpose by [rx] allow_root = yes. */
static const char *root_warning(const struct sl_rxconf *c)
{
    if (c->rx.user[0] || c->rx.allow_root || geteuid() != 0)
        return NULL;
    return "no [rx] user: sluice-rx started as root keeps running as root; set [rx] user = an "
           "unprivileged account, or [rx] allow_root = yes to accept this";
}

static void print_summary(const struct sl_rxconf *c)
{
    printf("%s: OK\n", c->file);
    printf("  link: %s %s, mtu %" PRIu32 " (symbols up to %" PRIu32 " bytes)\n",
           transport_name(c->link.transport),
           c->link.transport == SL_RXCONF_UDP ? c->link.listen
           : c->link.transport == SL_RXCONF_PCAP ? c->link.interface : c->link.file,
           c->link.mtu, c->link.symbol_max);
    printf("  fec: max_k %" PRIu32 " max_m %" PRIu32 ", %" PRIu32 " partial blocks, %" PRIu32 " ms\n",
           c->fec.max_k, c->fec.max_m, c->fec.entries, c->fec.max_age_ms);
    printf("  keys: %zu trusted, state in %s\n", c->keys.ntrusted, c->keys.state_dir);
    printf("  mirror: up to %" PRIu32 " tags, stale after %" PRIu32 " ms, database %s\n",
           c->mirror.max_tags, c->mirror.stale_ms, c->mirror.database[0] ? c->mirror.database : "(none)");
    printf("  modbus: %s\n", c->modbus.enabled ? c->modbus.listen : "off");
    printf("  http: %s\n", c->http.enabled ? c->http.listen : "off");
    printf("  mqtt: %s\n", c->mqtt.enabled ? c->mqtt.broker : "off");
    printf("  files: %s\n", c->files.enabled ? c->files.directory : "off");
    if (c->rx.user[0])
        printf("  runs as user %s\n", c->rx.user);
    nft_note(c);
}

static int open_link(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    struct sl_hw_config hc;
    char why[256] = "";
    sl_hw_config_init(&hc);
    hc.dir = SL_HW_RX;
    hc.datagram_bytes = c->link.datagram_max;
    switch (c->link.transport) {
    case SL_RXCONF_UDP:
        hc.transport = SL_HW_UDP;
        if (sl_hw_addr_parse(&hc.addr, &hc.addr_len, c->link.listen, SL_DEFAULT_PORT) != SL_OK) {
            logline("error: cannot resolve listen address '%s'", c->link.listen);
            return -1;
        }
        break;
    case SL_RXCONF_PCAP:
        hc.transport = SL_HW_PCAP;
        snprintf(hc.interface, sizeof hc.interface, "%s", c->link.interface);
        hc.port = c->link.port;
        break;
    default:
        hc.transport = SL_HW_PCAPFILE;
        hc.file = c->link.file;
        hc.port = c->link.port;
        hc.follow = c->link.follow;
        break;
    }
    if (sl_hw_open(&d->hw, why, sizeof why, &hc) != SL_OK) {
        logline("error: cannot open the link: %s", why);
        return -1;
    }
    struct sl_hw_stats hs;
    sl_hw_stats(d->hw, &hs);
    if (hs.warning[0])
        logline("warning: %s", hs.warning);
    return 0;
}

/* Hands the files RX writes after dropping privileges to the target user,
 * never through a link (sl_file_chown_nofollow): a link or hard-linked file
 * that appeared since start() checked is an attack, and RX stops. */
static int chown_quiet(const char *path, uid_t uid, gid_t gid)
{
    sl_err e = sl_file_chown_nofollow(path, uid, gid);
    if (e == SL_ERR_PERM) {
        logline("error: %s is a symbolic link, a hard-linked file or not a plain file: "
                "refusing to hand it to the [rx] user", path);
        return -1;
    }
    if (e != SL_OK && e != SL_ERR_NOT_FOUND)
        logline("warning: cannot chown %s to the [rx] user: %s", path, strerror(errno));
    return 0;
}

static int drop_privileges(const struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    struct passwd *pw = getpwnam(c->rx.user);
    if (!pw) {
        logline("error: user '%s' does not exist", c->rx.user);
        return -1;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char path[SL_RXCONF_STR_MAX + 8];
    int bad = chown_quiet(c->keys.state_dir, uid, gid);
    bad |= chown_quiet(d->replay_path, uid, gid);
    if (c->mirror.database[0]) {
        bad |= chown_quiet(c->mirror.database, uid, gid);
        snprintf(path, sizeof path, "%s-wal", c->mirror.database);
        bad |= chown_quiet(path, uid, gid);
        snprintf(path, sizeof path, "%s-shm", c->mirror.database);
        bad |= chown_quiet(path, uid, gid);
    }
    if (bad)
        return -1;
    /* OpenBSD order: groups first, then gid, then uid (after which no way back). */
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        logline("error: cannot drop privileges to '%s': %s", c->rx.user, strerror(errno));
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        logline("error: privileges could be regained after dropping to '%s'", c->rx.user);
        return -1;
    }
    if (c->files.enabled && access(c->files.directory, W_OK) != 0)
        logline("warning: [files] directory %s is not writable by '%s': files will fail",
                c->files.directory, c->rx.user);
    logline("running as %s (uid %u, gid %u)", c->rx.user, (unsigned)uid, (unsigned)gid);
    return 0;
}

/* Opens everything in the documented order (docs/rx.md §3). */
/* ---- read-only services: HTTP and MQTT ------------------------------------------ */

/* The one mirror hook: every follower of changes hears every event. */
static void on_mirror(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct rxd *d = ctx;
    if (d->http)
        sl_http_notify(d->http, ev, pos);
    if (d->mqtt)
        sl_mqtt_notify(d->mqtt, ev, pos);
}

/* Fills what /api/status and /metrics show, from the daemon's counters. */
static void fill_status(void *ctx, struct sl_http_status *out)
{
    struct rxd *d = ctx;
    const struct sl_rxstats *st = rxd_stats(d);
    static struct sl_http_counter extra[32];
    size_t n = 0;
    extra[n++] = (struct sl_http_counter){ "sluice_store_checkpoints_total", "SQLite checkpoints written",
                                           st->store.checkpoints, false };
    extra[n++] = (struct sl_http_counter){ "sluice_link_kernel_drops_total",
                                           "datagrams dropped by the kernel (socket overflow, capture ring)",
                                           st->link.rx_kernel_drops, false };
    extra[n++] = (struct sl_http_counter){ "sluice_link_nic_drops_total", "frames dropped by the NIC/driver",
                                           st->link.rx_if_drops, false };
    extra[n++] = (struct sl_http_counter){ "sluice_files_ok_total", "files published whole and verified",
                                           st->files.files_ok, false };
    extra[n++] = (struct sl_http_counter){ "sluice_files_failed_total", "files discarded",
                                           st->files.files_failed, false };
    extra[n++] = (struct sl_http_counter){ "sluice_files_refused_quota_total",
                                           "files refused by [files] max_total_bytes (of files_failed)",
                                           st->files.failed_quota, false };
    extra[n++] = (struct sl_http_counter){ "sluice_files_refused_versions_total",
                                           "files refused by [files] max_versions (of files_failed)",
                                           st->files.failed_versions, false };
    extra[n++] = (struct sl_http_counter){ "sluice_tx_sessions_total", "TX sessions or epochs seen",
                                           st->beacon.sessions, false };
    extra[n++] = (struct sl_http_counter){ "sluice_beacon_param_changes_total",
                                           "link parameter or fingerprint changes announced by beacons",
                                           st->beacon.param_changes + st->beacon.fp_changes, false };
    extra[n++] = (struct sl_http_counter){ "sluice_rx_blocks_missing",
                                           "tag blocks of this TX session announced by beacons but not received "
                                           "(lost whole, or still in flight)",
                                           d->blocks_missing, true };
    extra[n++] = (struct sl_http_counter){ "sluice_rx_data_stale",
                                           "1 while verified tag blocks lag the beacons' highest_block "
                                           "for stale_ms or too many announced blocks were never verified "
                                           "(mirror shown as for a cut link)",
                                           sl_liveness_set_stale(&d->live) ? 1u : 0u, true };
    extra[n++] = (struct sl_http_counter){ "sluice_rx_data_stale_total",
                                           "episodes of stale tag data (lagging the announcements for "
                                           "stale_ms, or incomplete)",
                                           d->live.episodes, false };
    extra[n++] = (struct sl_http_counter){ "sluice_rx_data_incomplete_total",
                                           "stale episodes begun because more than 10 % of the tag blocks "
                                           "announced over the last stale_ms periods were never verified",
                                           d->live.incomplete_episodes, false };
    extra[n++] = (struct sl_http_counter){ "sluice_rx_tag_blocks_unverified_window",
                                           "tag blocks announced at least stale_ms ago, in the completeness "
                                           "window, never verified",
                                           d->live.win_missing, true };
    extra[n++] = (struct sl_http_counter){ "sluice_mirror_future_values_total",
                                           "values applied with a source time beyond future_tolerance_ms "
                                           "ahead of TX's clock (shown Uncertain 0x40000000)",
                                           st->mirror.future, false };
    extra[n++] = (struct sl_http_counter){ "sluice_link_rejected_total",
                                           "datagrams the link layer refused (bigger than a slot, bad framing)",
                                           st->link.rx_rejected, false };
    if (d->health_ok) {
        const struct sl_link_health *h = &d->health;
        extra[n++] = (struct sl_http_counter){ "sluice_nic_carrier", "diode NIC carrier (1 up, 0 down)",
                                               h->carrier == 1 ? 1u : 0u, true };
        extra[n++] = (struct sl_http_counter){ "sluice_nic_rx_dropped_total", "NIC rx_dropped (sysfs)",
                                               h->rx_dropped, false };
        extra[n++] = (struct sl_http_counter){ "sluice_nic_rx_missed_total",
                                               "NIC rx_missed_errors: ring full, host did not drain it",
                                               h->rx_missed_errors, false };
        extra[n++] = (struct sl_http_counter){ "sluice_nic_rx_crc_errors_total", "NIC rx_crc_errors",
                                               h->rx_crc_errors, false };
        extra[n++] = (struct sl_http_counter){ "sluice_nic_tx_packets_total",
                                               "packets the RX diode NIC transmitted (should stay 0)",
                                               h->tx_packets, false };
    }
    memset(out, 0, sizeof *out);
    out->have_beacon = st->beacon.seen;
    out->beacon = st->beacon.last;
    out->last_beacon_us = st->beacon.last_rx_us;
    /* sl_rxbeacon keeps RX - TX; the status page wants TX - RX. */
    out->clock_offset_us = -st->beacon.clock_offset_us;
    /* Frame loss this session, measured at beacons (a beacon follows the
     * frames it counts): 1 - arrived / sent since the session's first. */
    uint64_t sent = d->loss_sent - d->loss_base_sent;
    uint64_t got = d->loss_got - d->loss_base_got;
    out->frame_loss = sent > got ? (double)(sent - got) / (double)sent : 0.0;
    out->rx = st->rx;
    out->modbus_refused_writes = st->modbus.refused_writes;
    out->modbus_on = st->modbus_on;
    out->modbus_conns = st->modbus_conns;
    out->modbus = st->modbus;
    out->started_us = st->start_us;
    out->counters = extra;
    out->ncounters = n;
}

static int open_services(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    sl_err e;
    if (c->http.enabled) {
        char token[SL_HTTP_TOKEN_MAX + 2] = "";
        if (c->http.token_file[0]) {
            /* A secret: not world-readable, not writable by others, owned by
             * root or the [rx] user, never read through a link. */
            const struct passwd *pw = c->rx.user[0] ? getpwnam(c->rx.user) : NULL;
            char why[160] = "";
            char text[4096];
            size_t tlen = 0;
            int fd = -1;
            e = sl_file_open_trusted(&fd, c->http.token_file, pw ? pw->pw_uid : geteuid(),
                                     SL_FILE_NO_OTHER_READ, why, sizeof why);
            if (e == SL_OK) {
                e = sl_file_read_fd(text, sizeof text - 1, &tlen, fd);
                close(fd);
            }
            if (e != SL_OK || tlen == 0) {
                logline("error: cannot read [http] token_file %s: %s", c->http.token_file,
                        why[0] ? why : e == SL_OK ? "empty" : e == SL_ERR_LENGTH ? "longer than 4 KiB"
                                                 : strerror(errno));
                sodium_memzero(text, sizeof text);
                return -1;
            }
            text[tlen] = '\0';
            text[strcspn(text, "\r\n")] = '\0';
            size_t tl = strlen(text);
            if (tl < sizeof token)
                memcpy(token, text, tl + 1);   /* else stays "": refused just below */
            sodium_memzero(text, sizeof text);
            if (!token[0] || strlen(token) > SL_HTTP_TOKEN_MAX) {
                logline("error: [http] token_file %s: token must be 1..%u bytes on the first line",
                        c->http.token_file, SL_HTTP_TOKEN_MAX);
                return -1;
            }
        }
        struct sl_http_config hc = { .listen = c->http.listen, .token = token[0] ? token : NULL,
                                     .max_tags = c->mirror.max_tags, .max_conns = c->http.max_conns,
                                     .max_conns_per_peer = c->http.max_conns_per_peer,
                                     .timeout_s = c->http.timeout_s,
                                     .request_timeout_ms = c->http.request_timeout_ms,
                                     .max_sse = c->http.max_streams,
                                     .max_sse_per_peer = c->http.max_streams_per_peer,
                                     .allowed_hosts = c->http.allowed_hosts };
        e = sl_http_open(&d->http, &hc, d->mirror, fill_status, d);
        sodium_memzero(token, sizeof token);
        if (e != SL_OK) {
            logline("error: cannot serve HTTP on %s: %s%s%s", c->http.listen, sl_strerror(e),
                    e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
            return -1;
        }
        logline("HTTP (read-only) on %s%s", c->http.listen, c->http.token_file[0] ? ", bearer token required" : "");
    }
    if (c->mqtt.enabled) {
        struct sl_mqtt_config qc = { .broker = c->mqtt.broker, .prefix = c->mqtt.prefix,
                                     .max_tags = c->mirror.max_tags };
        if ((e = sl_mqtt_open(&d->mqtt, &qc, d->mirror)) != SL_OK) {
            logline("error: cannot set up MQTT for %s: %s", c->mqtt.broker, sl_strerror(e));
            return -1;
        }
        logline("MQTT publishing to %s under %s/ (retained, QoS 1; never subscribes)", c->mqtt.broker,
                c->mqtt.prefix);
    }
    sl_mirror_set_hook(d->mirror, on_mirror, d);
    return 0;
}

static int start(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    char err[512] = "";

    if (mkdir(c->keys.state_dir, 0700) != 0 && errno != EEXIST) {
        logline("error: cannot create state_dir %s: %s", c->keys.state_dir, strerror(errno));
        return -1;
    }
    int pn = snprintf(d->replay_path, sizeof d->replay_path, "%s/%s", c->keys.state_dir, REPLAY_FILE);
    if (pn < 0 || (size_t)pn >= sizeof d->replay_path) {
        logline("error: state_dir path too long");
        return -1;
    }
    /* Root opens, creates and chowns these before dropping privileges; in a
     * directory the service user can write, a planted link would aim that
     * at any file on the host (docs/security.md). */
    struct stat lst;
    if (lstat(c->keys.state_dir, &lst) == 0 && !S_ISDIR(lst.st_mode)) {
        logline("error: state_dir %s is %s: refusing to follow it", c->keys.state_dir,
                S_ISLNK(lst.st_mode) ? "a symbolic link" : "not a directory");
        return -1;
    }
    if (sl_file_check_nolink(d->replay_path) != SL_OK) {
        logline("error: replay state %s is a symbolic link or has other hard links: refusing to follow it",
                d->replay_path);
        return -1;
    }
    d->replay = malloc(sizeof *d->replay);
    d->vals = malloc(SL_DELTA_VALUES_MAX * sizeof *d->vals);
    d->tags = malloc(SCHEMA_TAGS_MAX * sizeof *d->tags);
    if (!d->replay || !d->vals || !d->tags) {
        logline("error: out of memory");
        return -1;
    }
    sl_replay_init(d->replay);
    sl_err e = sl_replayfile_load(d->replay, d->replay_path);
    if (e == SL_ERR_NOT_FOUND) {
        logline("no replay state at %s: starting with an empty window (first start)", d->replay_path);
    } else if (e != SL_OK) {
        /* Resetting would silently re-open every old epoch to replay. */
        logline("error: replay state %s is unusable (%s%s%s); refusing to start. Restore it from a "
                "backup, or, if you accept that blocks recorded before now could be replayed "
                "once, move it aside and start again",
                d->replay_path, sl_strerror(e), e == SL_ERR_IO ? ": " : "",
                e == SL_ERR_IO ? strerror(errno) : "");
        return -1;
    } else {
        logline("replay state loaded from %s (%zu entries)", d->replay_path, d->replay->count);
    }

    struct sl_mirror_config mc = { .max_tags = c->mirror.max_tags, .stale_ms = c->mirror.stale_ms };
    if ((e = sl_mirror_create(&d->mirror, &mc)) != SL_OK) {
        logline("error: cannot create the mirror for %" PRIu32 " tags: %s", c->mirror.max_tags,
                sl_strerror(e));
        return -1;
    }
    if (c->mirror.database[0]) {
        struct sl_store_config sc = { .path = c->mirror.database, .max_bytes = c->mirror.max_bytes };
        if ((e = sl_store_open(&d->store, &sc, err, sizeof err)) != SL_OK) {
            logline("error: cannot open database %s: %s", c->mirror.database, err);
            return -1;
        }
        size_t restored = 0;
        e = sl_store_restore(d->store, d->mirror, &restored);
        if (e == SL_OK) {
            logline("restored schema %08" PRIx32 " (%" PRIu32 " tags) and %zu values from %s, "
                    "quality UncertainLastUsableValue until refreshed",
                    sl_mirror_schema_id(d->mirror), sl_mirror_count(d->mirror), restored,
                    c->mirror.database);
            d->generation = sl_mirror_generation(d->mirror);
            /* Rewrite every row now, so the file shows the quality the
             * services show (restored values are no longer Good). */
            uint32_t n = sl_mirror_count(d->mirror);
            uint32_t *all = malloc((n ? n : 1) * sizeof *all);
            if (all) {
                for (uint32_t i = 0; i < n; i++)
                    all[i] = i;
                if (sl_store_checkpoint(d->store, d->mirror, all, n, wall_us()) != SL_OK)
                    logline("warning: database checkpoint failed: %s", sl_store_errmsg(d->store));
                free(all);
            }
        } else if (e != SL_ERR_NOT_FOUND) {
            logline("warning: cannot restore the mirror from %s (%s: %s); starting empty",
                    c->mirror.database, sl_strerror(e), sl_store_errmsg(d->store));
        }
    }

    if (open_link(d) != 0)
        return -1;
    d->limits = (struct sl_rxbeacon_limits){ c->fec.max_k, c->fec.max_m, c->link.symbol_max };
    struct sl_receiver_config rc = {
        .hw = d->hw, .trusted = &c->keys.keys, .replay = d->replay,
        .fec = { .k_max = c->fec.max_k, .m_max = c->fec.max_m, .symbol_max = c->link.symbol_max,
                 .entries = c->fec.entries,
                 /* Junk and not-yet-announced blocks get a quarter more room
                  * of their own, so they can never evict announced blocks. */
                 .entries_unannounced = c->fec.entries / 4u > 2u ? c->fec.entries / 4u : 2u,
                 .done_history = FEC_DONE_HISTORY,
                 .cache_entries = FEC_CACHE_ENTRIES,
                 .max_age_us = (uint64_t)c->fec.max_age_ms * 1000u },
        .batch = SL_HW_BATCH_DEFAULT, .datagram_max = c->link.datagram_max,
        .on_payload = on_payload, .on_beacon = on_beacon, .ctx = d,
    };
    if ((e = sl_receiver_create(&d->rcv, &rc)) != SL_OK) {
        logline("error: cannot create the receiver: %s", sl_strerror(e));
        return -1;
    }
    if (c->modbus.enabled) {
        struct sl_mbserver_config mbc = { .listen = c->modbus.listen, .max_conns = c->modbus.max_conns,
                                          .idle_ms = c->modbus.idle_ms,
                                          .max_conns_per_peer = c->modbus.max_conns_per_peer,
                                          .request_timeout_ms = c->modbus.request_timeout_ms };
        if ((e = sl_mbserver_open(&d->mb, &mbc, d->mirror)) != SL_OK) {
            logline("error: cannot listen for Modbus on %s: %s%s%s", c->modbus.listen,
                    sl_strerror(e), e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
            return -1;
        }
        sl_mbserver_set_write_hook(d->mb, on_write, d);
        logline("Modbus TCP (read-only) on %s", c->modbus.listen);
    }
    if (c->files.enabled) {
        struct sl_filerecv_config fc = { .directory = c->files.directory,
                                         .slots = SL_FILERECV_SLOTS_DEFAULT,
                                         .max_bytes = c->files.max_bytes,
                                         .max_total_bytes = c->files.max_total_bytes,
                                         .max_versions = c->files.max_versions,
                                         .idle_timeout_us = FILES_IDLE_US,
                                         .log = on_file_log, .ctx = d };
        if ((e = sl_filerecv_create(&d->fr, &fc)) != SL_OK) {
            logline("error: cannot use [files] directory %s: %s%s%s", c->files.directory,
                    sl_strerror(e), e == SL_ERR_IO ? ": " : "",
                    e != SL_ERR_IO ? "" : errno == ELOOP ? "a symbolic link: refusing to follow it"
                                                         : strerror(errno));
            return -1;
        }
    }
    if (open_services(d) != 0)
        return -1;
    if (c->rx.user[0] && drop_privileges(d) != 0)
        return -1;
    return 0;
}

static void stop(struct rxd *d)
{
    if (d->mirror)
        sl_mirror_set_hook(d->mirror, NULL, NULL);
    sl_mqtt_close(d->mqtt);
    sl_http_close(d->http);
    sl_filerecv_destroy(d->fr);
    sl_mbserver_close(d->mb);
    sl_receiver_destroy(d->rcv);
    sl_hw_close(d->hw);
    sl_store_close(d->store);
    sl_mirror_destroy(d->mirror);
    free(d->tags);
    free(d->vals);
    free(d->replay);
}

/* Final checkpoint and state save; returns 0 when both succeeded. */
static int finish(struct rxd *d, const char *why)
{
    d->now_ms = mono_ms();
    tick_liveness(d);
    bool ok = checkpoint(d);
    ok &= save_state(d);
    const struct sl_rxstats *st = rxd_stats(d);
    char drops[768] = "";
    drop_deltas(d, drops, sizeof drops, false);
    logline("%s: datagrams=%" PRIu64 " blocks=%" PRIu64 " (recovered %" PRIu64 ") missing=%" PRIu64
            " beacons=%" PRIu64
            " values=%" PRIu64 " applied=%" PRIu64 " older=%" PRIu64 " tags=%" PRIu32
            " checkpoints=%" PRIu64 " drops:%s",
            why, st->rx.datagrams, st->rx.blocks, st->rx.blocks_recovered, d->blocks_missing, st->rx.beacons,
            st->tagch.values, st->mirror.applied, st->mirror.older, st->tags, st->store.checkpoints,
            drops[0] ? drops : " none");
    return ok ? 0 : 1;
}

static int run(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    bool pcapfile = c->link.transport == SL_RXCONF_PCAPFILE;
    int link_fd = sl_hw_fd(d->hw);
    d->start_ms = d->last_beacon_ms = d->now_ms = mono_ms();
    d->next_checkpoint_ms = d->now_ms + c->mirror.checkpoint_ms;
    d->next_save_ms = d->now_ms + SAVE_PERIOD_MS;
    d->next_drop_log_ms = d->now_ms + DROP_LOG_PERIOD_MS;
    d->st.start_us = wall_us();
    sl_rxbeacon_init(&d->st.beacon);
    sl_liveness_set_init(&d->live, c->mirror.stale_ms);
    logline("receiving (%s)", transport_name(c->link.transport));

    while (!stop_sig) {
        if (hup_sig) {
            hup_sig = 0;
            logline("SIGHUP: nothing is reloaded by sluice-rx; restart it to apply configuration changes");
        }
        struct pollfd fds[4];
        nfds_t nf = 0;
        int li = -1, mi = -1, qi = -1;
        if (link_fd >= 0) {
            li = (int)nf;
            fds[nf++] = (struct pollfd){ .fd = link_fd, .events = POLLIN };
        }
        if (d->mb) {
            mi = (int)nf;
            fds[nf++] = (struct pollfd){ .fd = sl_mbserver_fd(d->mb), .events = POLLIN };
        }
        if (d->http) {
            fds[nf++] = (struct pollfd){ .fd = sl_http_fd(d->http), .events = POLLIN };
        }
        if (d->mqtt) {
            /* The descriptor changes with every reconnect (-1 while down:
             * poll ignores it). */
            qi = (int)nf;
            fds[nf++] = (struct pollfd){ .fd = sl_mqtt_fd(d->mqtt),
                                         .events = (short)(POLLIN | (sl_mqtt_want_write(d->mqtt) ? POLLOUT : 0)) };
        }
        /* A capture file has no descriptor: it is read below without
         * waiting, so here only the service sockets are looked at. */
        int wait = pcapfile ? 0 : LOOP_MAX_WAIT_MS;
        /* Modbus requests left by its per-turn caps: come straight back. */
        if (d->mb && sl_mbserver_timeout_ms(d->mb) == 0)
            wait = 0;
        if (d->http) {
            int t = sl_http_timeout_ms(d->http);
            if (t >= 0 && t < wait)
                wait = t;
        }
        if (d->mqtt) {
            int t = sl_mqtt_timeout_ms(d->mqtt, mono_ms());
            if (t >= 0 && t < wait)
                wait = t;
        }
        int pr = nf ? poll(fds, nf, wait) : 0;
        if (pr < 0 && errno != EINTR) {
            logline("error: poll: %s", strerror(errno));
            return 1;
        }
        d->now_ms = mono_ms();
        sl_err e = SL_ERR_AGAIN;
        if (pcapfile || (pr > 0 && li >= 0 && (fds[li].revents & (POLLIN | POLLERR)))) {
            /* follow mode waits a little inside recv for appended records. */
            int t = pcapfile && c->link.follow ? 10 : 0;
            for (int i = 0; i < RX_BATCHES_PER_LOOP && !stop_sig; i++) {
                e = sl_receiver_poll(d->rcv, t, wall_us());
                d->now_ms = mono_ms();
                if (e != SL_OK)
                    break;
                t = 0;
            }
            if (e == SL_ERR_EOF) {
                periodic(d);
                return finish(d, "end of capture");
            }
            if (e == SL_ERR_IO && rate_ok(&d->next_io_log_ms, d->now_ms, DROP_LOG_PERIOD_MS))
                logline("warning: link receive failed: %s", strerror(errno));
        }
        if (d->mb && (mi < 0 || pr >= 0))
            (void)sl_mbserver_poll_once(d->mb, 0, d->now_ms);
        periodic(d);
        /* After periodic(): a link that just went stale reaches HTTP and
         * MQTT clients in this same turn. */
        if (d->http)
            (void)sl_http_run(d->http);
        if (d->mqtt)
            (void)sl_mqtt_run(d->mqtt, qi >= 0 && pr > 0 ? fds[qi].revents : 0, d->now_ms);
    }
    return finish(d, "stopping on signal");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
        { "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },      { NULL, 0, NULL, 0 },
    };
    const char *conf_path = NULL;
    bool check = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'v':
            verbose++;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sluice-rx %s\n", SL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!conf_path || optind != argc) {
        usage(stderr);
        return 2;
    }

    static struct sl_rxconf conf;   /* ~40 KiB: not on the stack */
    struct sl_diag diag;
    sl_diag_init(&diag);
    sl_err e = sl_rxconf_load(&conf, conf_path, 0, &diag);
    if (e != SL_OK) {
        print_warnings(&conf, false);
        print_diag(&diag);
        fprintf(stderr, "sluice-rx: %s: %zu problem%s\n", conf_path, sl_diag_total(&diag),
                sl_diag_total(&diag) == 1 ? "" : "s");
        sl_diag_free(&diag);
        return e == SL_ERR_NOMEM ? 1 : 2;
    }
    sl_diag_free(&diag);
    if (check) {
        print_warnings(&conf, false);
        if (root_warning(&conf))
            fprintf(stderr, "%s: warning: %s\n", conf.file, root_warning(&conf));
        print_summary(&conf);
        return 0;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);   /* a Modbus client closing mid-answer is not fatal */

    logline("sluice-rx %s starting with %s", SL_VERSION, conf_path);
    print_warnings(&conf, true);
    if (root_warning(&conf))
        logline("warning: %s", root_warning(&conf));
    static struct rxd d;
    d.conf = &conf;
    d.carrier = -2;
    int rc = start(&d) == 0 ? run(&d) : 1;
    stop(&d);
    return rc;
}
