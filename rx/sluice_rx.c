/* sluice-rx: the IT side of the diode (docs/rx.md).
 *
 * One thread, one poll loop: datagrams from the link go through the wire
 * path (frames, FEC, signature, replay: sl_receiver) to the tag channel
 * (sl_tagch: the mirror) or the file channel (sl_filerecv); beacons to the
 * link accounting (sl_linkacct). The read-only services (Modbus, HTTP,
 * MQTT) answer from the mirror; the SQLite checkpoint, the replay state and
 * the drop log follow on timers. Everything is opened first, then
 * privileges are dropped, then systemd hears READY=1 and the loop runs
 * (pinging the watchdog each turn) until SIGTERM/SIGINT (or the end of a
 * replayed capture). This file is wiring: the decisions live in the
 * modules. Nothing is allocated per datagram, block or message. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_diag.h"
#include "sl_filerecv.h"
#include "sl_hw.h"
#include "sl_key.h"
#include "sl_link.h"
#include "sl_linkacct.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_mirror.h"
#include "sl_receiver.h"
#include "sl_rxcheck.h"
#include "sl_rxconf.h"
#include "sl_rxstate.h"
#include "sl_sdnotify.h"
#include "sl_services.h"
#include "sl_store.h"
#include "sl_tagch.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define STATUS_PERIOD_MS     1000u     /* systemd STATUS= recomputed (sent only when changed) */
#define LOOP_MAX_WAIT_MS     100       /* poll timeout cap: timers are checked this often */
#define RX_BATCHES_PER_LOOP  16        /* link batches per loop turn, so Modbus is served too */
#define FEC_DONE_HISTORY     1024u     /* completed block ids remembered (late symbols) */
#define FEC_CACHE_ENTRIES    16u       /* cached decode matrices */
#define FILES_IDLE_US        (60ull * 1000000u)   /* a file with no progress for 60 s is dropped */

static volatile sig_atomic_t stop_sig;
static volatile sig_atomic_t hup_sig;

/* ---- the daemon's state --------------------------------------------------------- */

struct rxd {
    const struct sl_rxconf *conf;
    struct sl_rxstate state;        /* replay.state: the replay window on disk */
    struct sl_hw *hw;
    struct sl_receiver *rcv;
    struct sl_mirror *mirror;
    struct sl_tagch *tags;
    struct sl_store *store;
    struct sl_filerecv *fr;
    struct sl_services svc;         /* Modbus, HTTP, MQTT */
    struct sl_linkacct acct;
    struct sl_link_watch nic;       /* health of the diode NIC ([link] interface) */

    uint64_t now_ms;                /* monotonic, refreshed every loop turn */
    struct sl_store_sched ckpt;
    uint64_t next_drop_log_ms;
    uint64_t next_io_log_ms;
    uint64_t next_status_ms;        /* systemd STATUS= */

    struct sl_metrics st;           /* every counter, refreshed by rxd_metrics() */
    struct sl_http_counter counters[SL_METRICS_DAEMON_MAX];
};

/* Every counter of the daemon in one struct, refreshed from each module.
 * Cost: a few struct copies and, for pcap, one pcap_stats call. */
static const struct sl_metrics *rxd_metrics(struct rxd *d)
{
    struct sl_metrics *st = &d->st;
    sl_receiver_stats(d->rcv, &st->rx);
    sl_hw_stats(d->hw, &st->link);
    sl_mirror_stats(d->mirror, &st->mirror);
    st->link_up = sl_mirror_link_up(d->mirror);
    st->tags = sl_mirror_count(d->mirror);
    st->tagch = d->tags->st;
    st->beacon = d->acct.beacon;
    st->beacon_changes = st->beacon.param_changes + st->beacon.fp_changes;
    st->frame_loss = sl_linkacct_frame_loss(&d->acct);
    st->blocks_missing = d->acct.blocks_missing;
    st->data_stale = sl_liveness_set_stale(&d->tags->live);
    st->stale_episodes = d->tags->live.episodes;
    st->incomplete_episodes = d->tags->live.incomplete_episodes;
    st->unverified_window = d->tags->live.win_missing;
    st->health_ok = d->nic.ok;
    st->health = d->nic.health;
    st->store_on = d->store != NULL;
    if (d->store)
        sl_store_stats(d->store, &st->store);
    st->checkpoint_failures = d->ckpt.failures;
    st->modbus_on = d->svc.mb != NULL;
    if (d->svc.mb) {
        sl_mbserver_stats(d->svc.mb, &st->modbus);
        st->modbus_conns = sl_mbserver_conns(d->svc.mb);
    }
    st->files_on = d->fr != NULL;
    if (d->fr)
        sl_filerecv_stats(d->fr, &st->files);
    st->state_saves = d->state.saves;
    st->state_save_failures = d->state.failures;
    st->mqtt_on = d->svc.mqtt != NULL;
    if (d->svc.mqtt)
        sl_mqtt_stats(d->svc.mqtt, &st->mqtt);
    st->http_errors = d->svc.http_errors;
    st->mqtt_errors = d->svc.mqtt_errors;
    st->modbus_errors = d->svc.modbus_errors;
    return st;
}

/* ---- the receive path's callbacks ------------------------------------------------ */

static void on_payload(void *ctx, const struct sl_block_hdr *h, const uint8_t key_id[SL_KEY_ID_BYTES],
                       const uint8_t *payload, size_t len, uint64_t now_us)
{
    struct rxd *d = ctx;
    d->state.dirty = true;   /* the receiver accepted (epoch, seq) into the window */
    if (h->channel == SL_CHANNEL_TAGS)
        sl_tagch_payload(d->tags, h, key_id, payload, len, d->now_ms, now_us);
    else if (h->channel == SL_CHANNEL_FILES && d->fr)
        sl_filerecv_payload(d->fr, h->session, payload, len, now_us);
    else
        d->st.other_channel++;
}

static void on_beacon(void *ctx, const struct sl_beacon *b, uint64_t now_us)
{
    struct rxd *d = ctx;
    d->state.dirty = true;
    struct sl_receiver_stats rs;
    sl_receiver_stats(d->rcv, &rs);
    sl_linkacct_beacon(&d->acct, b, rs.frames, sl_tagch_blocks(d->tags, b->session), d->now_ms, now_us);
    sl_tagch_beacon(d->tags, b->key_id, b->session, b->epoch, b->highest_block,
                    d->acct.beacon.clock_offset_us, d->now_ms);
}

static void on_file_log(void *ctx, int ok, const char *line)
{
    (void)ctx;
    if (ok)
        sl_log(SL_LOG_INFO, "%s", line);
    else
        sl_log(SL_LOG_WARNING, "%s", line);
}

/* What /api/status and /metrics show (sl_metrics renders it). */
static void fill_status(void *ctx, struct sl_http_status *out)
{
    struct rxd *d = ctx;
    sl_metrics_http_status(out, rxd_metrics(d), d->counters, SL_METRICS_DAEMON_MAX);
}

/* ---- periodic work -------------------------------------------------------------- */

/* systemd's STATUS= line: the link state, recomputed once a second. */
static void notify_status(struct rxd *d)
{
    if (!sl_clock_due(&d->next_status_ms, d->now_ms, STATUS_PERIOD_MS))
        return;
    struct sl_receiver_stats rs;
    char text[SL_SDNOTIFY_STATUS_MAX + 1];
    sl_receiver_stats(d->rcv, &rs);
    sl_linkacct_status(&d->acct, text, sizeof text, sl_mirror_link_up(d->mirror), d->conf->keys.keys.count,
                       sl_mirror_count(d->mirror), rs.blocks, d->now_ms);
    sl_sdnotify_check(sl_sdnotify_status("%s", text));
}

static void drop_log(struct rxd *d)
{
    const struct sl_metrics *st = rxd_metrics(d);
    sl_linkacct_drop_log(&d->acct, &st->rx, &st->link, st->modbus_on ? &st->modbus : NULL);
    sl_services_writes_log(&d->svc);
}

static void periodic(struct rxd *d)
{
    sl_link_watch_tick(&d->nic, d->now_ms);
    sl_tagch_tick(d->tags, d->now_ms);
    if (d->fr)
        sl_filerecv_tick(d->fr, sl_clock_wall_us());
    sl_store_sched_tick(&d->ckpt, d->store, d->mirror, d->now_ms, sl_clock_wall_us());
    sl_rxstate_tick(&d->state, d->now_ms);
    if (sl_clock_due(&d->next_drop_log_ms, d->now_ms, SL_LINKACCT_DROP_LOG_MS))
        drop_log(d);
    notify_status(d);
}

/* ---- start-up --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-rx -c FILE [--check] [--log-level LEVEL] [-v]\n"
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
            "      --log-level LEVEL  error, warning, notice, info (default) or debug\n"
            "  -v, --verbose      same as --log-level debug: also log every verified\n"
            "                     beacon's session and each schema chunk\n"
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

static int open_link(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.dir = SL_HW_RX;
    hc.datagram_bytes = c->link.datagram_max;
    switch (c->link.transport) {
    case SL_RXCONF_UDP:
        hc.transport = SL_HW_UDP;
        if (sl_hw_addr_parse(&hc.addr, &hc.addr_len, c->link.listen, SL_DEFAULT_PORT) != SL_OK) {
            sl_log(SL_LOG_ERR, "cannot resolve listen address '%s'", c->link.listen);
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
    return sl_hw_open_logged(&d->hw, &hc) == SL_OK ? 0 : -1;
}

/* The state and database files go to the [rx] user, then root is dropped
 * for good (sl_rxstate_drop_to). */
static int drop_privileges(const struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (sl_rxstate_drop_to(&d->state, c->rx.user, c->keys.state_dir, c->mirror.database) != SL_OK)
        return -1;
    if (c->files.enabled && access(c->files.directory, W_OK) != 0)
        sl_log(SL_LOG_WARNING, "[files] directory %s is not writable by '%s': files will fail",
               c->files.directory, c->rx.user);
    return 0;
}

static int open_mirror(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    char err[512] = "";
    struct sl_mirror_config mc = { .max_tags = c->mirror.max_tags, .stale_ms = c->mirror.stale_ms };
    sl_err e = sl_mirror_create(&d->mirror, &mc);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot create the mirror for %" PRIu32 " tags: %s", c->mirror.max_tags,
               sl_strerror(e));
        return -1;
    }
    if (!c->mirror.database[0])
        return 0;
    struct sl_store_config sc = { .path = c->mirror.database, .max_bytes = c->mirror.max_bytes };
    if ((e = sl_store_open(&d->store, &sc, err, sizeof err)) != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot open database %s: %s", c->mirror.database, err);
        return -1;
    }
    sl_store_resume(d->store, d->mirror, c->mirror.database, sl_clock_wall_us());
    return 0;
}

static int open_receiver(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    struct sl_tagch_config tc = { .mirror = d->mirror, .keys = &c->keys.keys, .stale_ms = c->mirror.stale_ms,
                                  .future_tolerance_ms = c->mirror.future_tolerance_ms };
    sl_err e = sl_tagch_create(&d->tags, &tc, sl_clock_mono_ms());
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot create the tag channel: %s", sl_strerror(e));
        return -1;
    }
    sl_linkacct_init(&d->acct, &(struct sl_rxbeacon_limits){ c->fec.max_k, c->fec.max_m, c->link.symbol_max });
    struct sl_receiver_config rc = {
        .hw = d->hw, .trusted = &c->keys.keys, .replay = d->state.replay,
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
        sl_log(SL_LOG_ERR, "cannot create the receiver: %s", sl_strerror(e));
        return -1;
    }
    return 0;
}

/* The file channel's receiver ([files] directory), when on. */
static int open_files(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (!c->files.enabled)
        return 0;
    struct sl_filerecv_config fc = { .directory = c->files.directory, .slots = SL_FILERECV_SLOTS_DEFAULT,
                                     .max_bytes = c->files.max_bytes, .max_total_bytes = c->files.max_total_bytes,
                                     .max_versions = c->files.max_versions, .idle_timeout_us = FILES_IDLE_US,
                                     .log = on_file_log, .ctx = d };
    sl_err e = sl_filerecv_create(&d->fr, &fc);
    if (e == SL_OK)
        return 0;
    sl_log(SL_LOG_ERR, "cannot use [files] directory %s: %s%s%s", c->files.directory, sl_strerror(e),
           e == SL_ERR_IO ? ": " : "",
           e != SL_ERR_IO ? "" : errno == ELOOP ? "a symbolic link: refusing to follow it" : strerror(errno));
    return -1;
}

/* Opens the replay state, the mirror (restored from SQLite), the link, the
 * receiver and the services in the order of docs/rx.md §3, then drops
 * privileges. */
static int start(struct rxd *d)
{
    if (sl_rxstate_open(&d->state, d->conf->keys.state_dir, sl_clock_mono_ms()) != SL_OK ||
        open_mirror(d) != 0 || open_link(d) != 0 || open_receiver(d) != 0 ||
        open_files(d) != 0 || sl_services_open(&d->svc, d->conf, d->mirror, fill_status, d) != SL_OK)
        return -1;
    if (d->conf->rx.user[0] && drop_privileges(d) != 0)
        return -1;
    return 0;
}

static void stop(struct rxd *d)
{
    sl_services_close(&d->svc, d->mirror);
    sl_filerecv_destroy(d->fr);
    sl_receiver_destroy(d->rcv);
    sl_tagch_destroy(d->tags);
    sl_hw_close(d->hw);
    sl_store_close(d->store);
    sl_mirror_destroy(d->mirror);
    sl_rxstate_close(&d->state);
}

/* Final checkpoint and state save; returns 0 when both succeeded. */
static int finish(struct rxd *d, const char *why)
{
    d->now_ms = sl_clock_mono_ms();
    sl_tagch_tick(d->tags, d->now_ms);
    bool ok = sl_store_sched_run(&d->ckpt, d->store, d->mirror, d->now_ms, sl_clock_wall_us());
    ok &= sl_rxstate_save(&d->state, d->now_ms);
    const struct sl_metrics *st = rxd_metrics(d);
    char sum[512], drops[768];
    sl_metrics_summary(sum, sizeof sum, st);
    sl_linkacct_drops(&d->acct, &st->rx, &st->link, drops, sizeof drops, false);
    sl_log(SL_LOG_INFO, "%s: %s drops:%s", why, sum, drops[0] ? drops : " none");
    return ok ? 0 : 1;
}

static int run(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    bool pcapfile = c->link.transport == SL_RXCONF_PCAPFILE;
    int link_fd = sl_hw_fd(d->hw);
    d->now_ms = sl_clock_mono_ms();
    sl_store_sched_init(&d->ckpt, c->mirror.checkpoint_ms, d->now_ms);
    d->next_drop_log_ms = d->now_ms + SL_LINKACCT_DROP_LOG_MS;
    d->st.start_us = sl_clock_wall_us();
    sl_log(SL_LOG_INFO, "receiving (%s)", sl_rxcheck_transport_name(c->link.transport));
    /* Start-up is complete (state loaded, link open, every service
     * listening, privileges dropped): `systemctl start` may return. */
    char text[SL_SDNOTIFY_STATUS_MAX + 1];
    sl_linkacct_status(&d->acct, text, sizeof text, false, c->keys.keys.count, 0, 0, d->now_ms);
    sl_sdnotify_check(sl_sdnotify_ready(text));
    d->next_status_ms = d->now_ms + STATUS_PERIOD_MS;

    while (!stop_sig) {
        /* From the loop itself: a loop that stops turning stops the pings. */
        sl_sdnotify_check(sl_sdnotify_watchdog(d->now_ms));
        if (hup_sig) {
            hup_sig = 0;
            sl_log(SL_LOG_NOTICE, "SIGHUP: nothing is reloaded by sluice-rx; restart it to apply "
                   "configuration changes");
        }
        struct pollfd fds[1 + SL_SERVICES_POLLFDS];
        nfds_t nf = 0;
        int li = -1;
        if (link_fd >= 0) {
            li = (int)nf;
            fds[nf++] = (struct pollfd){ .fd = link_fd, .events = POLLIN };
        }
        /* A capture file has no descriptor: it is read below without
         * waiting, so here only the service sockets are looked at. */
        int wait = pcapfile ? 0 : LOOP_MAX_WAIT_MS;
        sl_services_pollset(&d->svc, fds, &nf, &wait, sl_clock_mono_ms());
        int pr = nf ? poll(fds, nf, wait) : 0;
        if (pr < 0 && errno != EINTR) {
            sl_log(SL_LOG_ERR, "poll: %s", strerror(errno));
            return 1;
        }
        d->now_ms = sl_clock_mono_ms();
        sl_err e = SL_ERR_AGAIN;
        if (pcapfile || (pr > 0 && li >= 0 && (fds[li].revents & (POLLIN | POLLERR)))) {
            /* follow mode waits a little inside recv for appended records. */
            int t = pcapfile && c->link.follow ? 10 : 0;
            for (int i = 0; i < RX_BATCHES_PER_LOOP && !stop_sig; i++) {
                e = sl_receiver_poll(d->rcv, t, sl_clock_wall_us());
                d->now_ms = sl_clock_mono_ms();
                if (e != SL_OK)
                    break;
                t = 0;
            }
            if (e == SL_ERR_EOF) {
                periodic(d);
                return finish(d, "end of capture");
            }
            if (e == SL_ERR_IO && sl_clock_due(&d->next_io_log_ms, d->now_ms, SL_LINKACCT_DROP_LOG_MS))
                sl_log(SL_LOG_WARNING, "link receive failed: %s", strerror(errno));
        }
        sl_services_modbus(&d->svc, pr, d->now_ms);
        periodic(d);
        /* After periodic(): a link that just went stale reaches HTTP and
         * MQTT clients in this same turn. */
        sl_services_run(&d->svc, fds, pr, d->now_ms);
    }
    sl_sdnotify_check(sl_sdnotify_stopping());
    return finish(d, "stopping on signal");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
        { "verbose", no_argument, NULL, 'v' },      { "log-level", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf_path = NULL;
    bool check = false;
    enum sl_log_level level = SL_LOG_INFO;
    int ch;
    sl_log_init("sluice-rx");
    while ((ch = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'v':
            level = SL_LOG_DEBUG;
            break;
        case 'L':
            if (sl_log_level_parse(&level, optarg) != SL_OK) {
                sl_log(SL_LOG_ERR, "--log-level %s: want error, warning, notice, info or debug", optarg);
                return 2;
            }
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
    sl_log_set_level(level);

    static struct sl_rxconf conf;   /* ~40 KiB: not on the stack */
    struct sl_diag diag;
    sl_diag_init(&diag);
    sl_err e = sl_rxconf_load(&conf, conf_path, 0, &diag);
    if (e != SL_OK) {
        sl_rxcheck_warnings(&conf, false);
        sl_log_diag(&diag);
        sl_log(SL_LOG_ERR, "%s: %zu problem%s", conf_path, sl_diag_total(&diag),
               sl_diag_total(&diag) == 1 ? "" : "s");
        sl_diag_free(&diag);
        return e == SL_ERR_NOMEM ? 1 : 2;
    }
    sl_diag_free(&diag);
    if (check) {
        sl_rxcheck_warnings(&conf, false);
        sl_rxcheck_root(&conf, false);
        sl_rxcheck_summary(&conf);
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

    sl_log(SL_LOG_INFO, "sluice-rx %s starting with %s", SL_VERSION, conf_path);
    sl_rxcheck_warnings(&conf, true);
    sl_rxcheck_root(&conf, true);
    static struct rxd d;
    d.conf = &conf;
    sl_link_watch_init(&d.nic, conf.link.interface, "SL-RX-CARRIER-UP", "SL-RX-CARRIER-DOWN");
    int rc = start(&d) == 0 ? run(&d) : 1;
    stop(&d);
    return rc;
}
