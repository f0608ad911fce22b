/* sluice-tx: the OT-side daemon. Wiring only: the device sources
 * (sl_source.h: Modbus pollers on their own threads, or the generator) feed
 * the tag table (sl_snapshot), which the main thread sends across the diode
 * as signed, FEC-protected, paced blocks with a beacon every beacon_ms.
 * `--send PATH...` is the bulk mode (sl_bulk.h): files over the file
 * channel, then exit. Locks and epoch: sl_epoch.h; SIGHUP: sl_reload.h;
 * [tx] metrics_file: sl_txmetrics.h; log lines on the link's health and
 * systemd's READY/STATUS/WATCHDOG: sl_txhealth.h. Behaviour: docs/tx.md.
 *
 * Threads: the main thread owns the snapshot, the sender and the link; each
 * poll line's thread owns its Modbus connection and hands results over as
 * sl_source.c describes, so the main thread never waits on a PLC. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_bulk.h"
#include "sl_carousel.h"
#include "sl_clock.h"
#include "sl_epoch.h"
#include "sl_journald.h"
#include "sl_fec.h"
#include "sl_hw.h"
#include "sl_pace.h"
#include "sl_key.h"
#include "sl_keyfile.h"
#include "sl_log.h"
#include "sl_reload.h"
#include "sl_sandbox.h"
#include "sl_sdnotify.h"
#include "sl_seccomp.h"
#include "sl_sender.h"
#include "sl_signer.h"
#include "sl_snapshot.h"
#include "sl_source.h"
#include "sl_spool.h"
#include "sl_syslogin.h"
#include "sl_txconf.h"
#include "sl_txhealth.h"
#include "sl_txmetrics.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define PROG "sluice-tx"
#define BLOCKS_PER_TURN 64u        /* blocks per loop turn, so beacons are never starved */
#define STATS_EVERY_US 10000000u   /* -v status line */

static volatile sig_atomic_t got_term, got_hup;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_term = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -c FILE [--check] [-v] [--log-level LEVEL]\n"
            "       " PROG " -c FILE --send PATH...\n"
            "\n"
            "The OT side of the Sluice data diode: polls the PLCs of FILE's [device]\n"
            "sections over Modbus, and sends every tag (schema, keyframes, deltas, events)\n"
            "as signed, FEC-protected, paced UDP frames, with a beacon every beacon_ms.\n"
            "\n"
            "  -c, --config FILE   configuration (INI); every key is documented in\n"
            "                      docs/tx.md, a commented example is docs/examples/tx.conf:\n"
            "                      [link] transport destination gso interface destination_mac\n"
            "                             file rate_mbps mtu\n"
            "                      [fec] k m interleave   [keys] signing_key state_dir\n"
            "                      [snapshot] keyframe_ms beacon_ms max_delay_ms\n"
            "                      [tx] user allow_root metrics_file\n"
            "                      [files] spool copies sent max_bytes share\n"
            "                      [syslog] listen max_rate batch_ms max_message share\n"
            "                             max_connections max_per_peer idle_s\n"
            "                      [backfill] enabled max_bytes window_s share (on by default:\n"
            "                             the change journal in state_dir/journal)\n"
            "                      [device NAME] protocol address unit mirror_unit poll_ms\n"
            "                             timeout_ms max_gap tags baud parity data_bits stop_bits\n"
            "      --check         validate FILE, its tag maps, the key file's permissions,\n"
            "                      state_dir and user; print every problem as file:line: message\n"
            "      --send PATH...  bulk mode: send these files once over the file channel\n"
            "                      (no polling), then exit; progress on stderr when it is a tty\n"
            "  -v, --verbose       also log a status line every 10 s\n"
            "      --log-level L   error, warning, notice, info (default) or debug: lines\n"
            "                      less important than L are not written\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "\n"
            "Each start increments the epoch in state_dir/epoch before the first frame.\n"
            "One sluice-tx per state_dir and per signing key: each run holds state_dir/lock\n"
            "and /run/lock/sluice-tx-KEYID.lock (flock, pid inside; not for transport\n"
            "pcapfile) for its life, and a second daemon or a --send on the same state_dir\n"
            "or the same key exits 3 naming the key id or state_dir and the holder's pid,\n"
            "sending nothing and leaving the epoch alone (RX keeps one epoch per key, so a\n"
            "newer epoch would make it drop the daemon's frames). Without a writable\n"
            "/run/lock only state_dir is locked (a warning says so).\n"
            "Run --send beside a daemon with its own signing_key and state_dir.\n"
            "Signals: SIGTERM/SIGINT flush, send a final beacon and exit 0; SIGHUP re-reads\n"
            "the configuration and applies tag-map changes that keep every poll the same\n"
            "(names, paths, units, scale, offset, deadband, mirror_unit), else logs why not.\n"
            "Exit status: 0 done, 1 runtime failure, 2 usage or configuration errors,\n"
            "3 state_dir or signing key in use by another sluice-tx.\n");
}

/* ---- the daemon ---------------------------------------------------------- */

struct daemon {
    const char *conf_path;
    struct sl_txconf cfg;
    bool verbose;
    struct sl_signer_proc *signer;  /* the key lives only there (sl_signer.h) */
    struct sl_hw *hw;
    struct sl_sender *snd;
    struct sl_snapshot *snap;
    struct sl_sources src;
    struct sl_txmetrics *metrics;
    int wake_fd;
    uint64_t epoch, session;
    struct sl_reload_state ann;     /* fingerprints and schema id beacons announce */
    uint64_t beacon_seq;
    struct sl_txhealth health;      /* send state, overload, NIC carrier, status texts */
    struct sl_syslogin *syslog;     /* [syslog] intake; NULL without */
    struct sl_spool *spool;         /* [files] spool; NULL without */
    struct sl_carousel *carousel;   /* [backfill]: re-sends the journal; NULL without a journal */
    struct sl_journald *jd;         /* [backfill]: the journal's directory and flusher; NULL when off */
    struct sl_journal *journal;     /* the open journal (the snapshot appends); NULL when off or failed */
    uint64_t journal_id;            /* its id, non-zero with journal */
};

/* " : strerror(errno)" after an sl_err that kept one. */
#define ERRNO_TEXT(e) ((e) == SL_ERR_IO ? ": " : ""), ((e) == SL_ERR_IO ? strerror(errno) : "")

static void send_beacon(void *ctx)
{
    struct daemon *D = ctx;
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.beacon_seq = D->beacon_seq++;
    b.tx_time_us = sl_clock_wall_us();
    b.rate_kbps = D->cfg.link.rate_kbps;
    memcpy(b.config_fp, D->ann.config_fp, SL_FP_BYTES);
    memcpy(b.schema_fp, D->ann.schema_fp, SL_FP_BYTES);
    b.poll_errors = sl_sources_poll_errors(&D->src);
    if (D->snap) {
        struct sl_snapshot_stats st;
        sl_snapshot_stats(D->snap, &st);
        b.queue_drops = sl_txhealth_queue_drops(&st);
    }
    sl_txhealth_send(&D->health, sl_sender_beacon(D->snd, &b), "beacon");
}

/* Fills and commits one block of what the snapshot has due at now. */
static sl_err send_block(struct daemon *D, uint64_t now)
{
    uint8_t *p;
    size_t cap, used = 0;
    sl_err e = sl_sender_block(D->snd, &p, &cap, SL_CHANNEL_TAGS);
    if (e != SL_OK) {
        sl_txhealth_send(&D->health, e, "block");
        return e;
    }
    sl_err f = sl_snapshot_fill(D->snap, p, cap, now, &used);
    e = sl_sender_commit(D->snd, f == SL_OK ? used : 0, sl_clock_wall_us(), sl_clock_mono_us());
    if (f == SL_OK && !sl_signer_proc_dead(D->signer))   /* not the link: [SL-TX-SIGNER-DEAD] */
        sl_txhealth_send(&D->health, e, "send");
    return f;
}

/* One syslog batch as one block of the syslog channel; *wire_bytes is
 * what its k' data and m' repair frames cost on the link (the intake's
 * share pacing charges it). */
static sl_err send_syslog(void *ctx, const uint8_t *payload, size_t len, uint64_t *wire_bytes)
{
    struct daemon *D = ctx;
    uint8_t *p;
    size_t cap;
    *wire_bytes = 0;
    sl_err e = sl_sender_block(D->snd, &p, &cap, SL_CHANNEL_SYSLOG);
    if (e == SL_OK && len > cap)
        e = SL_ERR_CAPACITY;
    if (e == SL_OK)
        memcpy(p, payload, len);
    bool sent = e == SL_OK;
    if (e == SL_OK || e == SL_ERR_CAPACITY)
        e = sl_sender_commit(D->snd, sent ? len : 0, sl_clock_wall_us(), sl_clock_mono_us());
    if (sent) {
        size_t sym = D->cfg.link.symbol_bytes;
        unsigned kb = (unsigned)((len + SL_BLOCK_OVERHEAD + sym - 1) / sym);
        unsigned frames = kb + sl_fec_repair_count(D->cfg.fec.k, D->cfg.fec.m, kb);
        *wire_bytes = frames * sl_pace_wire_bytes(SL_FRAME_OVERHEAD + sym);
    }
    sl_txhealth_send(&D->health, e, "syslog");
    return e;
}

/* [syslog]: bound before privileges drop (port 514 is privileged). */
static int open_syslog(struct daemon *D)
{
    if (!D->cfg.syslog.enabled)
        return 0;
    size_t cap = (size_t)D->cfg.fec.k * D->cfg.link.symbol_bytes - SL_BLOCK_OVERHEAD;
    D->cfg.syslog.in.rate_mbps = D->cfg.syslog.share * D->cfg.link.rate_mbps;   /* 0: unpaced link */
    sl_err e = sl_syslogin_create(&D->syslog, &D->cfg.syslog.in, cap, send_syslog, D);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "[syslog] listen %s:%u: %s%s%s", D->cfg.syslog.in.listen.host,
               D->cfg.syslog.in.listen.port, sl_strerror(e), ERRNO_TEXT(e));
        return 1;
    }
    sl_log(SL_LOG_INFO, "syslog: listening on %s port %u (UDP and TCP), up to %.3g Mbit/s of the link",
           D->cfg.syslog.in.listen.host, sl_syslogin_port(D->syslog), D->cfg.syslog.in.rate_mbps);
    return 0;
}

/* [files]: the watched spool, opened as the TX user (after the drop), so
 * a directory that user cannot use fails here, at start. The file channel
 * is paced to share * rate_mbps at the wire cost of a full block. */
static int open_spool(struct daemon *D)
{
    if (!D->cfg.files.enabled)
        return 0;
    struct sl_spool_config sc = {
        .spool = D->cfg.files.spool, .sent = D->cfg.files.sent, .copies = D->cfg.files.copies,
        .max_bytes = D->cfg.files.max_bytes, .rate_mbps = D->cfg.files.share * D->cfg.link.rate_mbps,
        .block_wire_bytes = ((uint64_t)D->cfg.fec.k + D->cfg.fec.m) *
                            sl_pace_wire_bytes(SL_FRAME_OVERHEAD + D->cfg.link.symbol_bytes),
    };
    sl_err e = sl_spool_create(&D->spool, &sc);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "[files] spool %s%s%s: %s%s%s", D->cfg.files.spool, D->cfg.files.sent[0] ? ", sent " : "",
               D->cfg.files.sent, sl_strerror(e), ERRNO_TEXT(e));
        return 1;
    }
    struct sl_spool_stats st;
    sl_spool_stats(D->spool, &st);
    sl_log(SL_LOG_INFO, "files: watching %s (%llu file(s) waiting), %u cop%s each, up to %.3g Mbit/s, then %s%s",
           D->cfg.files.spool, (unsigned long long)st.backlog, D->cfg.files.copies,
           D->cfg.files.copies == 1 ? "y" : "ies", sc.rate_mbps, D->cfg.files.sent[0] ? "moved to " : "deleted",
           D->cfg.files.sent);
    return 0;
}

/* [backfill]: the journal, opened as the TX user (after the drop, before
 * seccomp) in the directory prepared before the drop; the snapshot engine
 * becomes its appender and sends DELTA_SEQ. A journal that cannot be
 * opened costs history, never live values: TX goes on without it (logged,
 * sluice_tx_journal_up 0). 1 only when out of memory. */
/* The journal's tag-map fingerprint: the schema fingerprint's first 8
 * bytes (never 0: 0 means "not checked"). */
static uint64_t schema_fp64(const uint8_t fp[SL_FP_BYTES])
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8 && i < SL_FP_BYTES; i++)
        v |= (uint64_t)fp[i] << (8 * i);
    return v ? v : 1;
}

static int open_journal(struct daemon *D)
{
    if (!D->jd)
        return 0;
    struct sl_journal_config jc = {
        .max_bytes = D->cfg.backfill.max_bytes, .window_s = D->cfg.backfill.window_s, .epoch = D->epoch,
        .schema_fp = schema_fp64(D->ann.schema_fp),
    };
    if (sl_journald_start(D->jd, &jc) != SL_OK)
        return 0;
    D->journal = sl_journald_journal(D->jd);
    D->journal_id = sl_journal_id(D->journal);
    D->ann.schema_locked = true;   /* a SIGHUP may not re-map its records' tag ids */
    if (sl_snapshot_set_journal(D->snap, D->journal) != SL_OK) {
        sl_log(SL_LOG_ERR, "out of memory");
        return 1;
    }
    return 0;
}

/* [backfill]: the carousel re-sends the open journal on the history
 * channel within share * rate_mbps; its producer thread reads the journal
 * (started before seccomp, which lets it go on reading). 1 on failure. */
static int open_carousel(struct daemon *D)
{
    if (!D->journal)
        return 0;
    struct sl_carousel_config cc = {
        .journal = D->journal, .window_s = D->cfg.backfill.window_s,
        .rate_mbps = D->cfg.backfill.share * D->cfg.link.rate_mbps, .k = D->cfg.fec.k, .m = D->cfg.fec.m,
        .symbol_bytes = D->cfg.link.symbol_bytes, .payload_cap = sl_sender_payload_cap(D->snd),
        .wake_fd = D->wake_fd,
    };
    sl_err e = sl_carousel_create(&D->carousel, &cc);
    if (e == SL_OK)
        e = sl_carousel_start(D->carousel);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "backfill carousel: %s%s%s", sl_strerror(e), ERRNO_TEXT(e));
        return 1;
    }
    sl_log(SL_LOG_INFO, "backfill: re-sending the last %llu s of journal %016llx in passes of %u level(s), "
           "up to %.3g Mbit/s of the link", (unsigned long long)cc.window_s, (unsigned long long)D->journal_id,
           sl_carousel_level_count(cc.window_s, 0), cc.rate_mbps);
    return 0;
}

/* The main process's seccomp list (sl_seccomp.h), on every thread at once
 * (TSYNC): once nothing more needs opening but what the list allows. */
static int confine_main(const struct sl_txconf *c)
{
    /* A device named by host name: its lookup may need a name service
     * module that the list would no longer let the process map. */
    for (size_t i = 0; i < c->ndevices; i++)
        if (c->devices[i].protocol == SL_TXCONF_MODBUS_TCP && c->devices[i].host[0])
            sl_seccomp_preload_names(c->devices[i].host);
    char why[160];
    if (sl_seccomp_install(SL_SECCOMP_TX_MAIN, SL_SECCOMP_F_CONNECT, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", why);
        return 1;
    }
    sl_seccomp_selftest("tx-main");
    return 0;
}

/* The tag table, the start event, the sources, the metrics file and the
 * spool; then the seccomp list, before the pollers start: a poller's
 * first byte from a PLC is parsed under it. */
static int start_daemon(struct daemon *D)
{
    if (sl_snapshot_from_conf(&D->snap, &D->ann.schema_id, &D->cfg, sl_sender_payload_cap(D->snd),
                              sl_clock_mono_us()) != SL_OK)
        return 1;
    char text[SL_EVENT_TEXT_MAX + 1];
    size_t len = sl_snapshot_event_text(text, sizeof text,
                                        "sluice-tx %s started: epoch %llu, %zu devices, %u tags",
                                        SL_VERSION, (unsigned long long)D->epoch, D->cfg.ndevices,
                                        D->cfg.ntags);
    if (sl_snapshot_event(D->snap, SL_EVENT_TX_START, 0, sl_clock_wall_us(), text, len) != SL_OK)
        sl_log(SL_LOG_WARNING, "start event not queued");
    if (open_journal(D) != 0)
        return 1;
    /* the journal is open here: D->journal, D->journal_id (NULL, 0 when off) */
    if (open_carousel(D) != 0)
        return 1;
    if (sl_sources_open(&D->src, &D->cfg, D->wake_fd) != SL_OK)
        return 1;
    if (sl_txmetrics_create(&D->metrics, D->cfg.tx.metrics_file, &D->src, sl_clock_mono_us()) != SL_OK) {
        sl_log(SL_LOG_ERR, "out of memory");
        return 1;
    }
    if (D->syslog)
        sl_txmetrics_syslog(D->metrics, D->syslog);
    if (D->cfg.backfill.enabled)
        sl_txmetrics_journal(D->metrics, D->journal ? D->jd : NULL);
    if (D->carousel)
        sl_txmetrics_carousel(D->metrics, D->carousel);
    if (open_spool(D) != 0)   /* inotify_init1: not on the list */
        return 1;
    if (D->spool)
        sl_txmetrics_spool(D->metrics, D->spool);
    if (confine_main(&D->cfg) != 0 || sl_sources_start(&D->src, sl_clock_mono_us()) != SL_OK)
        return 1;
    sl_log(SL_LOG_INFO, "started: epoch %llu, %zu device(s), %u tag(s), schema %08x",
           (unsigned long long)D->epoch, D->cfg.ndevices, D->cfg.ntags, D->ann.schema_id);
    return 0;
}

/* Stop: the last values and everything pending go out, then a final beacon
 * that carries the final counters. */
static void stop_daemon(struct daemon *D)
{
    uint64_t now = sl_clock_mono_us();
    sl_sources_collect(&D->src, D->snap, now);
    uint64_t flush_at = now + (uint64_t)D->cfg.snapshot.max_delay_ms * 1000u;
    for (unsigned i = 0; i < BLOCKS_PER_TURN; i++)
        if (send_block(D, flush_at) != SL_OK)
            break;
    if (D->syslog) {
        sl_syslogin_flush(D->syslog);
        struct sl_syslogin_stats y;
        sl_syslogin_stats(D->syslog, &y);
        sl_log(SL_LOG_INFO, "syslog: %llu messages in %llu blocks; dropped: %llu over max_rate, %llu over the "
               "link share, %llu by the kernel, %llu invalid; %llu truncated, %llu connections refused",
               (unsigned long long)y.received, (unsigned long long)y.batches, (unsigned long long)y.dropped_rate,
               (unsigned long long)y.dropped_share, (unsigned long long)y.dropped_kernel, (unsigned long long)y.dropped_invalid,
               (unsigned long long)y.truncated, (unsigned long long)y.refused_connections);
    }
    sl_txhealth_send(&D->health, sl_sender_flush(D->snd), "flush");
    send_beacon(D);
    sl_sources_log_counters(&D->src, D->snap, now, false);
    sl_txmetrics_tick(D->metrics, sl_clock_mono_us(), true);
    sl_txhealth_totals(D->snap, D->snd, &D->src, true);
    sl_sources_log_counters(&D->src, D->snap, now, true);
    if (D->spool)
        sl_spool_log_counters(D->spool);
    if (D->carousel)
        sl_carousel_log_counters(D->carousel);
}

static int run_daemon(struct daemon *D, const sigset_t *waitmask)
{
    if (start_daemon(D) != 0)
        return 1;
    uint64_t beacon_us = (uint64_t)D->cfg.snapshot.beacon_ms * 1000u;
    uint64_t next_beacon = sl_clock_mono_us();
    uint64_t status_next = next_beacon + STATS_EVERY_US;
    while (!got_term) {
        /* A TX that cannot sign must not run: no final flush (nothing
         * could be signed), exit non-zero and let systemd restart it. */
        if (sl_signer_proc_dead(D->signer))
            return 1;
        uint64_t now = sl_clock_mono_us();
        if (got_hup) {
            got_hup = 0;
            sl_reload_file(&D->ann, D->snap, &D->cfg, D->conf_path, now, sl_clock_wall_us());
        }
        uint64_t wake = sl_sources_collect(&D->src, D->snap, now);
        if (now >= next_beacon) {
            send_beacon(D);
            sl_txhealth_beacon(&D->health, D->snap, now);
            sl_sources_check(&D->src, now);
            sl_txmetrics_tick(D->metrics, now, false);
            next_beacon += beacon_us;
            if (next_beacon <= now)   /* stalled (pacing, suspend): no burst of beacons */
                next_beacon = now + beacon_us;
        }
        for (unsigned i = 0; i < BLOCKS_PER_TURN && !got_term; i++) {
            now = sl_clock_mono_us();
            if (sl_snapshot_next_due_us(D->snap) > now || send_block(D, now) != SL_OK)
                break;
        }
        if (sl_signer_proc_dead(D->signer))
            return 1;
        /* Syslog after the tags: a bounded read per turn and a batch when
         * due and within its share of the link; never waits. */
        if (D->syslog && !got_term) {
            sl_syslogin_run(D->syslog, sl_clock_mono_us(), sl_clock_wall_us());
            if (sl_syslogin_deadline(D->syslog) < wake)
                wake = sl_syslogin_deadline(D->syslog);
        }
        /* Files after the tags, paced to their share and a few blocks a
         * turn: a large file never holds up a beacon or a tag block. */
        if (D->spool && !got_term)
            sl_txhealth_send(&D->health, sl_spool_run(D->spool, D->snd, sl_clock_mono_us()), "file");
        /* History last, one block a turn within its share, and only when
         * no tag block is due: live tags always win. */
        if (D->carousel && !got_term) {
            now = sl_clock_mono_us();
            sl_txhealth_send(&D->health, sl_carousel_run(D->carousel, D->snd, sl_snapshot_next_due_us(D->snap) <= now,
                                                         now), "history");
        }
        now = sl_clock_mono_us();
        sl_err te = sl_sender_tick(D->snd, now);   /* signs the blocks gathered this turn */
        if (!sl_signer_proc_dead(D->signer))         /* not the link: [SL-TX-SIGNER-DEAD] */
            sl_txhealth_send(&D->health, te, "send");
        /* READY=1 after the first beacon (the pollers run), then STATUS=
         * and WATCHDOG=1 from the loop itself. */
        sl_txhealth_notify(&D->health, D->snd, &D->src, now);
        if (D->verbose && now >= status_next) {
            sl_txhealth_totals(D->snap, D->snd, &D->src, false);
            sl_sources_log_counters(&D->src, D->snap, now, false);
            if (D->spool)
                sl_spool_log_counters(D->spool);
            if (D->carousel)
                sl_carousel_log_counters(D->carousel);
            status_next = now + STATS_EVERY_US;
        }

        uint64_t t = sl_snapshot_next_due_us(D->snap);
        if (next_beacon < wake)
            wake = next_beacon;
        if (t < wake)
            wake = t;
        if (sl_sender_deadline(D->snd, &t) == SL_OK && t < wake)
            wake = t;
        if (D->spool && sl_spool_deadline(D->spool) < wake)
            wake = sl_spool_deadline(D->spool);
        if (D->carousel && sl_carousel_deadline(D->carousel) < wake)
            wake = sl_carousel_deadline(D->carousel);
        now = sl_clock_mono_us();
        uint64_t wait = wake > now ? wake - now : 0;
        if (wait > 1000000u)
            wait = 1000000u;
        struct timespec ts = { (time_t)(wait / 1000000u), (long)(wait % 1000000u) * 1000L };
        /* The signer's socket too: it never speaks unasked, so a wake-up
         * there is its death (kill -9, a seccomp kill), seen at once even
         * when nothing is being signed. */
        struct pollfd pfd[4] = { { .fd = D->wake_fd, .events = POLLIN },
                                 { .fd = D->syslog ? sl_syslogin_fd(D->syslog) : -1, .events = POLLIN },
                                 { .fd = D->spool ? sl_spool_fd(D->spool) : -1, .events = POLLIN },
                                 { .fd = sl_signer_proc_fd(D->signer), .events = POLLIN } };
        /* Signals are blocked except inside ppoll: none is lost between
         * the flag checks above and the wait. Called even with nothing to
         * wait for (a zero timeout), or a loop that always has work (an
         * overloaded link) would never see SIGTERM. */
        if (ppoll(pfd, 4, &ts, waitmask) < 0 && errno != EINTR) {
            sl_log(SL_LOG_ERR, "ppoll: %s", strerror(errno));
            return 1;
        }
        if (pfd[3].revents)
            sl_signer_proc_check(D->signer);
        if (pfd[0].revents) {   /* pollers and the carousel: the next turn looks at all of them */
            uint64_t n;
            ssize_t r = read(D->wake_fd, &n, sizeof n);
            (void)r;
        }
    }
    sl_sdnotify_check(sl_sdnotify_stopping());
    stop_daemon(D);
    return 0;
}

/* Bulk mode: the same seccomp list as the daemon's main process (the
 * files are opened under it). */
static int run_bulk(struct daemon *D, char **paths, int npaths)
{
    if (confine_main(&D->cfg) != 0)
        return 1;
    sl_err e = sl_bulk_send(D->snd, paths, npaths, D->cfg.snapshot.beacon_ms, send_beacon, D);
    sl_txhealth_send(&D->health, sl_sender_flush(D->snd), "flush");
    send_beacon(D);
    struct sl_sender_stats ss;
    sl_sender_stats(D->snd, &ss);
    sl_log(SL_LOG_INFO, "bulk: %llu blocks, %llu frames, %llu bytes on the link",
           (unsigned long long)ss.blocks_sent[SL_CHANNEL_FILES], (unsigned long long)ss.frames_sent,
           (unsigned long long)ss.bytes_sent);
    return e == SL_OK ? 0 : 1;
}

/* The sandbox decided at start (sl_sandbox.h), before anything opens. */
static struct sl_sandbox_plan sandbox;

/* The key file, readable by the account the main process runs as: a
 * warning, not a refusal (a developer's run as their own user, with their
 * own key, would otherwise not start). */
#define KEY_EXPOSED_ID "SL-TX-KEY-EXPOSED"
#define KEY_EXPOSED_FMT                                                                                       \
    "the signing key %s is readable by the user " PROG " runs as (uid %u): a compromised poller could "   \
    "read it; make it root:root 0600 and start " PROG " as root with [tx] user"

/* --check: would the planned account read the key file (permission bits)? */
static bool key_readable_by_plan(const struct sl_txconf *cfg)
{
    struct stat st;
    if (sandbox.action == SL_SANDBOX_REFUSE || stat(cfg->keys.signing_key, &st) != 0)
        return false;
    const struct passwd *pw = getpwuid(sandbox.uid);
    return sl_sandbox_user_can_read(&st, pw ? pw->pw_name : "", sandbox.uid, sandbox.gid);
}

/* After the drop, the truth (ACLs included): can this process open the
 * key? Opened and closed at once, never read. */
static void warn_key_exposed(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return;
    close(fd);
    sl_log_id(SL_LOG_WARNING, KEY_EXPOSED_ID, KEY_EXPOSED_FMT, path, (unsigned)geteuid());
}

/* Decides the sandbox and logs what it will be (--check prints the same
 * lines): 0, or 1 when a start as root would keep root unasked. */
static int plan_sandbox(const struct sl_txconf *cfg, FILE *out)
{
    struct sl_sandbox_report r;
    sl_err e = sl_sandbox_plan(&sandbox, "tx", cfg->tx.user, cfg->tx.allow_root);
    sl_sandbox_describe(&r, &sandbox);
    char line[SL_SANDBOX_LINE_MAX];
    sl_seccomp_describe(SL_SECCOMP_TX_MAIN, SL_SECCOMP_F_CONNECT, line, sizeof line);
    sl_sandbox_report_add(&r, "%s", line);
    /* The main process cannot open the key file only when the account it
     * runs as cannot read it: root:root 0600 with a start as root and a
     * [tx] user (the signer reads it before its own drop). */
    bool exposed = out && key_readable_by_plan(cfg);
    sl_sandbox_report_add(&r, "signer: the signing key is read and held only by the child process "
                          SL_SIGNER_NAME " (the same user, non-dumpable, list tx-signer); this process "
                          "knows only the public key and %s", exposed ? "CAN open the key file (see the "
                          "warning)" : "cannot open the key file when the account it runs as cannot read it "
                          "(root:root 0600, started as root with [tx] user)");
    if (e != SL_OK && !out) {
        sl_log(SL_LOG_ERR, "%s", sandbox.why);
        return 1;
    }
    if (out && (e != SL_OK || sandbox.action == SL_SANDBOX_KEEP_ROOT))
        fprintf(stderr, "%s: warning: %s\n", cfg->file, sandbox.why);   /* at start: after the drop */
    if (exposed)
        fprintf(stderr, "%s: warning: [" KEY_EXPOSED_ID "] " KEY_EXPOSED_FMT "\n", cfg->file, cfg->keys.signing_key,
                (unsigned)sandbox.uid);
    sl_sandbox_report_print(&r, out);
    return 0;
}

/* Once the link, the syslog listener (port 514) and the key are open:
 * every privilege goes (sl_sandbox_apply), on the only thread (the pollers
 * start later); what TX writes from now on must be writable by the user. */
static int drop_privileges(const struct daemon *D)
{
    char why[SL_SANDBOX_WHY_MAX] = "";
    if (sl_sandbox_apply(&sandbox, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", why);
        return 1;
    }
    sl_sandbox_log_applied(&sandbox);
    const struct sl_txconf *c = &D->cfg;
    warn_key_exposed(c->keys.signing_key);
    char dir[sizeof c->tx.metrics_file];   /* written as a temporary file renamed in place */
    snprintf(dir, sizeof dir, "%s", c->tx.metrics_file);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir] = '\0';
    if (sl_sandbox_need_writable(&sandbox, "[tx] metrics_file directory", dir) != SL_OK ||
        (c->files.enabled && (sl_sandbox_need_writable(&sandbox, "[files] spool", c->files.spool) != SL_OK ||
                              sl_sandbox_need_writable(&sandbox, "[files] sent", c->files.sent) != SL_OK)))
        return 1;
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

/* Loads path into *cfg; problems are logged. 0, or the exit status. */
static int load_config(struct sl_txconf *cfg, const char *path, bool check)
{
    struct sl_diag diag;
    sl_diag_init(&diag);
    sl_err e = sl_txconf_load(cfg, path, 0, &diag);
    sl_log_diag(&diag);
    int rc = 0;
    if (e != SL_OK || (check && sl_diag_total(&diag))) {
        if (check)
            sl_log(SL_LOG_ERR, "%s: %zu problem(s)", path, sl_diag_total(&diag));
        else
            sl_log(SL_LOG_ERR, "%s: %zu problem(s); see `" PROG " -c %s --check`", path,
                   sl_diag_total(&diag), path);
        rc = e == SL_ERR_NOMEM ? 1 : 2;
    }
    sl_diag_free(&diag);
    return rc;
}

static int check_only(const char *conf)
{
    struct sl_txconf cfg;
    int rc = load_config(&cfg, conf, true);
    if (rc == 0) {
        printf("config OK: %zu devices, %u tags\n", cfg.ndevices, cfg.ntags);
        plan_sandbox(&cfg, stdout);
    }
    sl_txconf_free(&cfg);
    return rc;
}

/* Signals: blocked everywhere (poller threads inherit the mask) and taken
 * only inside the main loop's ppoll (*waitmask). Bulk mode keeps the default
 * actions: a killed transfer is simply incomplete on RX. */
static void setup_signals(bool bulk, sigset_t *waitmask)
{
    sigset_t block;
    sigemptyset(waitmask);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    if (!bulk) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        pthread_sigmask(SIG_BLOCK, &block, waitmask);
        sigdelset(waitmask, SIGTERM);
        sigdelset(waitmask, SIGINT);
        sigdelset(waitmask, SIGHUP);
    }
    signal(SIGPIPE, SIG_IGN);
}

/* The signer process's privileges, dropped in it once its key is loaded:
 * the plan the main process applies later (the same user, no
 * capabilities, no_new_privs); sl_signer adds its seccomp filter. */
static sl_err confine_signer(void *arg)
{
    (void)arg;
    char why[SL_SANDBOX_WHY_MAX] = "";
    if (sl_sandbox_apply(&sandbox, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "signer: %s", why);
        return SL_ERR_PERM;
    }
    return SL_OK;
}

/* Everything between the configuration and the first frame: the key, the
 * locks (before the link: a second run on a pcapfile would truncate the
 * running one's capture), the link, the epoch, privileges, the sender.
 * 0, or the exit status. */
static int prepare(struct daemon *D, struct sl_epoch_keylock *kl, bool bulk)
{
    if (sodium_init() < 0) {
        sl_log(SL_LOG_ERR, "libsodium cannot initialise");
        return 1;
    }
    /* First, while this is the only thread: the signer process reads the
     * key; this process only ever sees its public half. */
    sl_err e = sl_signer_spawn(&D->signer, D->cfg.keys.signing_key, confine_signer, NULL);
    if (e != SL_OK) {
        if (e == SL_ERR_IO)
            sl_log(SL_LOG_ERR, "cannot start the signer process: %s", strerror(errno));
        return 1;   /* the key's problem was logged by the signer */
    }
    const struct sl_signer *signer = sl_signer_proc_signer(D->signer);
    int lock_fd;   /* held until exit: the kernel releases it */
    e = sl_epoch_lock_state_dir(&lock_fd, D->cfg.keys.state_dir, bulk);
    if (e == SL_OK && D->cfg.link.transport != SL_TXCONF_PCAPFILE)
        e = sl_epoch_lock_key(kl, &signer->pub, D->cfg.keys.signing_key, bulk);
    if (e != SL_OK)
        return e == SL_ERR_EXISTS ? SL_EPOCH_EXIT_IN_USE : 1;
    struct sl_hw_config hc;
    if (sl_txconf_link(&D->cfg, &hc) != SL_OK || sl_hw_open_logged(&D->hw, &hc) != SL_OK ||
        sl_epoch_next(&D->epoch, D->cfg.keys.state_dir) != SL_OK)
        return 1;
    randombytes_buf(&D->session, sizeof D->session);
    if (sl_signer_proc_bind(D->signer, D->session, D->epoch) != SL_OK)
        return 1;   /* [SL-TX-SIGNER-DEAD] said why */
    D->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (D->wake_fd < 0) {
        sl_log(SL_LOG_ERR, "eventfd: %s", strerror(errno));
        return 1;
    }
    if (!bulk && open_syslog(D) != 0)
        return 1;
    /* The journal's directory while root can still make it and hand it to
     * the user (state_dir may be root's 0700); a failure costs history,
     * not the start. */
    if (!bulk && D->cfg.backfill.enabled &&
        sl_journald_prepare(&D->jd, D->cfg.keys.state_dir, sandbox.action == SL_SANDBOX_DROP, sandbox.uid,
                            sandbox.gid) != SL_OK)
        D->jd = NULL;
    if (drop_privileges(D) != 0)
        return 1;
    struct sl_sender_config scfg = {
        .k = D->cfg.fec.k, .m = D->cfg.fec.m, .interleave = D->cfg.fec.interleave,
        .symbol_size = (uint16_t)D->cfg.link.symbol_bytes, .rate_mbps = D->cfg.link.rate_mbps,
        .max_delay_us = (uint64_t)(D->cfg.snapshot.max_delay_ms - sl_snapshot_delay_ms(&D->cfg)) * 1000u,
        .session = D->session,
        .epoch = D->epoch, .signer = signer, .hw = D->hw,
    };
    e = sl_sender_create(&D->snd, &scfg);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot create the sender: %s", sl_strerror(e));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_SEND, OPT_LOG_LEVEL };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, OPT_CHECK },
        { "send", no_argument, NULL, OPT_SEND },    { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { NULL, 0, NULL, 0 },
    };
    sl_log_init(PROG);
    const char *conf = NULL;
    bool check = false, send = false, verbose = false;
    enum sl_log_level level;
    int c;
    while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case OPT_CHECK: check = true; break;
        case OPT_SEND: send = true; break;
        case 'v': verbose = true; break;
        case OPT_LOG_LEVEL:
            if (sl_log_level_parse(&level, optarg) != SL_OK) {
                sl_log(SL_LOG_ERR, "--log-level %s: not error, warning, notice, info or debug",
                       optarg);
                return 2;
            }
            sl_log_set_level(level);
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " %s\n", SL_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!conf || (check && send) || (send && optind == argc) || (!send && optind != argc)) {
        usage(stderr);
        return 2;
    }
    if (check)
        return check_only(conf);

    static struct daemon D;   /* static: poller threads may outlive main's frame at exit */
    D.conf_path = conf;
    D.verbose = verbose;
    D.wake_fd = -1;
    int rc = load_config(&D.cfg, conf, false);
    if (rc != 0) {
        sl_txconf_free(&D.cfg);
        return rc;
    }
    sl_txhealth_init(&D.health, &D.cfg);
    sl_txconf_schema_fp(D.ann.schema_fp, &D.cfg);
    sl_txconf_config_fp(D.ann.config_fp, &D.cfg);
    sigset_t waitmask;
    setup_signals(send, &waitmask);
    struct sl_epoch_keylock kl = { .fd = -1 };
    rc = plan_sandbox(&D.cfg, NULL);
    if (rc == 0)
        rc = prepare(&D, &kl, send);
    if (rc == 0 && send)
        rc = sl_bulk_check(argv + optind, argc - optind) == SL_OK ? run_bulk(&D, argv + optind,
                                                                            argc - optind) : 1;
    else if (rc == 0)
        rc = run_daemon(&D, &waitmask);

    bool joined = sl_sources_stop(&D.src);
    sl_syslogin_destroy(D.syslog);   /* its batch went out in stop_daemon */
    sl_spool_destroy(D.spool);       /* a file part-sent stays in the spool */
    sl_carousel_destroy(D.carousel); /* its reader thread, before the journal closes */
    sl_journald_destroy(D.jd);       /* flushed, exact seq mark; only the main thread appended */
    sl_sender_destroy(D.snd);
    sl_hw_close(D.hw);
    if (!joined) {
        /* A poller is still inside libmodbus and reads its device config:
         * leave the memory to the exit. The capture is already closed. */
        fflush(stderr);
        _exit(rc);
    }
    sl_sources_free(&D.src);
    sl_txmetrics_destroy(D.metrics);
    sl_snapshot_destroy(D.snap);
    sl_epoch_unlock_key(&kl);
    sl_signer_proc_stop(D.signer);
    if (D.wake_fd >= 0)
        close(D.wake_fd);
    sl_txconf_free(&D.cfg);
    return rc;
}
