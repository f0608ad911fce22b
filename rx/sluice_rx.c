/* sluice-rx: the IT side of the diode (docs/rx.md).
 *
 * One thread, one poll loop: datagrams from the link go through the wire
 * path (frames, FEC, signature, replay: sl_receiver) to the tag channel
 * (sl_tagch: the mirror) or the file channel (sl_filerecv); beacons to the
 * link accounting (sl_linkacct). The read-only services (Modbus, HTTP,
 * MQTT) answer from the mirror; the SQLite checkpoint, the replay state and
 * the drop log follow on timers. Everything is opened first, then
 * privileges are dropped, then the loop runs until SIGTERM/SIGINT (or the
 * end of a replayed capture). This file is wiring: the decisions live in
 * the modules. Nothing is allocated per datagram, block or message. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_diag.h"
#include "sl_file.h"
#include "sl_filerecv.h"
#include "sl_http.h"
#include "sl_hw.h"
#include "sl_key.h"
#include "sl_link.h"
#include "sl_linkacct.h"
#include "sl_log.h"
#include "sl_mbserver.h"
#include "sl_metrics.h"
#include "sl_mirror.h"
#include "sl_mqtt.h"
#include "sl_privdrop.h"
#include "sl_receiver.h"
#include "sl_rxcheck.h"
#include "sl_rxconf.h"
#include "sl_rxstate.h"
#include "sl_store.h"
#include "sl_tagch.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define DROP_LOG_PERIOD_MS   10000u    /* at most one drop summary line per period */
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
    struct sl_mbserver *mb;
    struct sl_filerecv *fr;
    struct sl_http *http;
    struct sl_mqtt *mqtt;
    struct sl_linkacct acct;
    /* Health of the diode NIC ([link] interface), read once a second. */
    struct sl_link_health health;
    bool health_ok;
    int carrier;                    /* last carrier logged; -2 = none yet */
    uint64_t next_health_ms;

    uint64_t now_ms;                /* monotonic, refreshed every loop turn */
    struct sl_store_sched ckpt;
    uint64_t next_drop_log_ms;
    uint64_t next_write_log_ms, writes_unlogged;
    uint64_t next_io_log_ms;

    struct sl_metrics st;           /* every counter, refreshed by rxd_metrics() */
    struct sl_http_counter counters[SL_METRICS_DAEMON_MAX];
};

static bool rate_ok(uint64_t *next, uint64_t now, uint64_t period)
{
    if (now < *next)
        return false;
    *next = now + period;
    return true;
}

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
    st->health_ok = d->health_ok;
    st->health = d->health;
    st->store_on = d->store != NULL;
    if (d->store)
        sl_store_stats(d->store, &st->store);
    st->checkpoint_failures = d->ckpt.failures;
    st->modbus_on = d->mb != NULL;
    if (d->mb) {
        sl_mbserver_stats(d->mb, &st->modbus);
        st->modbus_conns = sl_mbserver_conns(d->mb);
    }
    st->files_on = d->fr != NULL;
    if (d->fr)
        sl_filerecv_stats(d->fr, &st->files);
    st->state_saves = d->state.saves;
    st->state_save_failures = d->state.failures;
    st->mqtt_on = d->mqtt != NULL;
    if (d->mqtt)
        sl_mqtt_stats(d->mqtt, &st->mqtt);
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

static void on_write(void *ctx, const char *peer, const struct sl_mbreq *req)
{
    struct rxd *d = ctx;
    if (rate_ok(&d->next_write_log_ms, d->now_ms, DROP_LOG_PERIOD_MS)) {
        sl_log(SL_LOG_NOTICE, "refused Modbus write FC %u from %s (unit %u, exception 0x01)%s", req->fc, peer,
               req->unit, d->writes_unlogged ? "; more refused since the last line" : "");
        d->writes_unlogged = 0;
    } else {
        d->writes_unlogged++;
    }
}

static void on_file_log(void *ctx, int ok, const char *line)
{
    (void)ctx;
    if (ok)
        sl_log(SL_LOG_INFO, "%s", line);
    else
        sl_log(SL_LOG_WARNING, "%s", line);
}

/* The one mirror hook: every follower of changes hears every event. */
static void on_mirror(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct rxd *d = ctx;
    if (d->http)
        sl_http_notify(d->http, ev, pos);
    if (d->mqtt)
        sl_mqtt_notify(d->mqtt, ev, pos);
}

/* Fills what /api/status and /metrics show (sl_metrics renders it). */
static void fill_status(void *ctx, struct sl_http_status *out)
{
    struct rxd *d = ctx;
    const struct sl_metrics *st = rxd_metrics(d);
    memset(out, 0, sizeof *out);
    out->have_beacon = st->beacon.seen;
    out->beacon = st->beacon.last;
    out->last_beacon_us = st->beacon.last_rx_us;
    /* sl_rxbeacon keeps RX - TX; the status page wants TX - RX. */
    out->clock_offset_us = -st->beacon.clock_offset_us;
    out->frame_loss = st->frame_loss;
    out->rx = st->rx;
    out->modbus_refused_writes = st->modbus.refused_writes;
    out->modbus_on = st->modbus_on;
    out->modbus_conns = st->modbus_conns;
    out->modbus = st->modbus;
    out->started_us = st->start_us;
    out->counters = d->counters;
    out->ncounters = sl_metrics_counters(st, d->counters, SL_METRICS_DAEMON_MAX);
}

/* ---- periodic work -------------------------------------------------------------- */

static void drop_log(struct rxd *d)
{
    const struct sl_metrics *st = rxd_metrics(d);
    char buf[768];
    if (sl_linkacct_drops(&d->acct, &st->rx, &st->link, buf, sizeof buf, true) > 0)
        sl_log(SL_LOG_INFO, "drops in the last %u s:%s", DROP_LOG_PERIOD_MS / 1000u, buf);
    if (d->writes_unlogged) {
        sl_log(SL_LOG_NOTICE, "refused %" PRIu64 " more Modbus writes", d->writes_unlogged);
        d->writes_unlogged = 0;
    }
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
        sl_log(carrier == 0 ? SL_LOG_WARNING : SL_LOG_INFO, "link %s: carrier %s, operstate %s", ifname,
               carrier == 1 ? "up" : carrier == 0 ? "DOWN" : "unknown",
               d->health_ok ? sl_link_oper_name(d->health.oper) : "unknown");
    d->carrier = carrier;
}

static void periodic(struct rxd *d)
{
    read_health(d);
    sl_tagch_tick(d->tags, d->now_ms);
    if (d->fr)
        sl_filerecv_tick(d->fr, sl_clock_wall_us());
    sl_store_sched_tick(&d->ckpt, d->store, d->mirror, d->now_ms, sl_clock_wall_us());
    sl_rxstate_tick(&d->state, d->now_ms);
    if (d->now_ms >= d->next_drop_log_ms) {
        d->next_drop_log_ms = d->now_ms + DROP_LOG_PERIOD_MS;
        drop_log(d);
    }
}

/* A service's run/poll call failed: logged (sl_log rate-limits the line per
 * service) and counted (sluice_rx_<service>_errors_total). */
static void service_error(uint64_t *count, const char *service, sl_err e)
{
    if (e == SL_OK)
        return;
    (*count)++;
    sl_log(SL_LOG_WARNING, "%s: %s%s%s (errors so far: %" PRIu64 ")", service, sl_strerror(e),
           e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "", *count);
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
    char why[256] = "";
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
    if (sl_hw_open(&d->hw, why, sizeof why, &hc) != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot open the link: %s", why);
        return -1;
    }
    struct sl_hw_stats hs;
    sl_hw_stats(d->hw, &hs);
    if (hs.warning[0])
        sl_log(SL_LOG_WARNING, "%s", hs.warning);
    return 0;
}

/* Hands the files RX writes after dropping privileges to the target user,
 * never through a link (sl_file_chown_nofollow): a link or hard-linked file
 * that appeared since start() checked is an attack, and RX stops. */
static int chown_quiet(const char *path, uid_t uid, gid_t gid)
{
    sl_err e = sl_file_chown_nofollow(path, uid, gid);
    if (e == SL_ERR_PERM) {
        sl_log(SL_LOG_ERR, "%s is a symbolic link, a hard-linked file or not a plain file: "
               "refusing to hand it to the [rx] user", path);
        return -1;
    }
    if (e != SL_OK && e != SL_ERR_NOT_FOUND)
        sl_log(SL_LOG_WARNING, "cannot chown %s to the [rx] user: %s", path, strerror(errno));
    return 0;
}

/* The state and database files go to the [rx] user first (RX's own part),
 * then sl_privdrop_to drops root for good. */
static int drop_privileges(const struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    char why[256] = "";
    uid_t uid;
    gid_t gid;
    if (sl_privdrop_lookup(c->rx.user, &uid, &gid, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", why);
        return -1;
    }
    char path[SL_RXCONF_STR_MAX + 8];
    int bad = chown_quiet(c->keys.state_dir, uid, gid);
    bad |= chown_quiet(d->state.path, uid, gid);
    if (c->mirror.database[0]) {
        bad |= chown_quiet(c->mirror.database, uid, gid);
        snprintf(path, sizeof path, "%s-wal", c->mirror.database);
        bad |= chown_quiet(path, uid, gid);
        snprintf(path, sizeof path, "%s-shm", c->mirror.database);
        bad |= chown_quiet(path, uid, gid);
    }
    if (bad)
        return -1;
    if (sl_privdrop_to(c->rx.user, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", why);
        return -1;
    }
    if (c->files.enabled && access(c->files.directory, W_OK) != 0)
        sl_log(SL_LOG_WARNING, "[files] directory %s is not writable by '%s': files will fail",
               c->files.directory, c->rx.user);
    sl_log(SL_LOG_INFO, "running as %s (uid %u, gid %u)", c->rx.user, (unsigned)uid, (unsigned)gid);
    return 0;
}

static const char *io_why(sl_err e)
{
    return e == SL_ERR_IO ? strerror(errno) : "";
}

static int open_http(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    char token[SL_HTTP_TOKEN_MAX + 1] = "";
    if (c->http.token_file[0]) {
        uid_t owner = geteuid();
        gid_t gid;
        char why[160] = "";
        if (c->rx.user[0] && sl_privdrop_lookup(c->rx.user, &owner, &gid, why, sizeof why) != SL_OK)
            owner = geteuid();
        sl_err e = sl_http_token_read(token, c->http.token_file, owner, why, sizeof why);
        if (e == SL_ERR_RANGE) {
            sl_log(SL_LOG_ERR, "[http] token_file %s: %s", c->http.token_file, why);
            return -1;
        }
        if (e != SL_OK) {
            sl_log(SL_LOG_ERR, "cannot read [http] token_file %s: %s", c->http.token_file, why);
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
    sl_err e = sl_http_open(&d->http, &hc, d->mirror, fill_status, d);
    sodium_memzero(token, sizeof token);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot serve HTTP on %s: %s%s%s", c->http.listen, sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", io_why(e));
        return -1;
    }
    sl_log(SL_LOG_INFO, "HTTP (read-only) on %s%s", c->http.listen,
           c->http.token_file[0] ? ", bearer token required" : "");
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
    size_t restored = 0;
    e = sl_store_restore(d->store, d->mirror, &restored);
    if (e == SL_OK) {
        sl_log(SL_LOG_INFO, "restored schema %08" PRIx32 " (%" PRIu32 " tags) and %zu values from %s, "
               "quality UncertainLastUsableValue until refreshed",
               sl_mirror_schema_id(d->mirror), sl_mirror_count(d->mirror), restored, c->mirror.database);
        /* Rewrite every row now, so the file shows the quality the
         * services show (restored values are no longer Good). */
        uint32_t n = sl_mirror_count(d->mirror);
        uint32_t *all = malloc((n ? n : 1) * sizeof *all);
        if (all) {
            for (uint32_t i = 0; i < n; i++)
                all[i] = i;
            if (sl_store_checkpoint(d->store, d->mirror, all, n, sl_clock_wall_us()) != SL_OK)
                sl_log(SL_LOG_WARNING, "database checkpoint failed: %s", sl_store_errmsg(d->store));
            free(all);
        }
    } else if (e != SL_ERR_NOT_FOUND) {
        sl_log(SL_LOG_WARNING, "cannot restore the mirror from %s (%s: %s); starting empty",
               c->mirror.database, sl_strerror(e), sl_store_errmsg(d->store));
    }
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

static int open_services(struct rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    sl_err e;
    if (c->modbus.enabled) {
        struct sl_mbserver_config mbc = { .listen = c->modbus.listen, .max_conns = c->modbus.max_conns,
                                          .idle_ms = c->modbus.idle_ms,
                                          .max_conns_per_peer = c->modbus.max_conns_per_peer,
                                          .request_timeout_ms = c->modbus.request_timeout_ms };
        if ((e = sl_mbserver_open(&d->mb, &mbc, d->mirror)) != SL_OK) {
            sl_log(SL_LOG_ERR, "cannot listen for Modbus on %s: %s%s%s", c->modbus.listen,
                   sl_strerror(e), e == SL_ERR_IO ? ": " : "", io_why(e));
            return -1;
        }
        sl_mbserver_set_write_hook(d->mb, on_write, d);
        sl_log(SL_LOG_INFO, "Modbus TCP (read-only) on %s", c->modbus.listen);
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
            sl_log(SL_LOG_ERR, "cannot use [files] directory %s: %s%s%s", c->files.directory,
                   sl_strerror(e), e == SL_ERR_IO ? ": " : "",
                   e != SL_ERR_IO ? "" : errno == ELOOP ? "a symbolic link: refusing to follow it"
                                                        : strerror(errno));
            return -1;
        }
    }
    if (c->http.enabled && open_http(d) != 0)
        return -1;
    if (c->mqtt.enabled) {
        struct sl_mqtt_config qc = { .broker = c->mqtt.broker, .prefix = c->mqtt.prefix,
                                     .max_tags = c->mirror.max_tags };
        if ((e = sl_mqtt_open(&d->mqtt, &qc, d->mirror)) != SL_OK) {
            sl_log(SL_LOG_ERR, "cannot set up MQTT for %s: %s", c->mqtt.broker, sl_strerror(e));
            return -1;
        }
        sl_log(SL_LOG_INFO, "MQTT publishing to %s under %s/ (retained, QoS 1; never subscribes)",
               c->mqtt.broker, c->mqtt.prefix);
    }
    sl_mirror_set_hook(d->mirror, on_mirror, d);
    return 0;
}

/* Opens the replay state, the mirror (restored from SQLite), the link, the
 * receiver and the services in the order of docs/rx.md §3, then drops
 * privileges. */
static int start(struct rxd *d)
{
    if (sl_rxstate_open(&d->state, d->conf->keys.state_dir, sl_clock_mono_ms()) != SL_OK ||
        open_mirror(d) != 0 || open_link(d) != 0 || open_receiver(d) != 0 ||
        open_services(d) != 0)
        return -1;
    if (d->conf->rx.user[0] && drop_privileges(d) != 0)
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
    d->next_drop_log_ms = d->now_ms + DROP_LOG_PERIOD_MS;
    d->st.start_us = sl_clock_wall_us();
    sl_log(SL_LOG_INFO, "receiving (%s)", sl_rxcheck_transport_name(c->link.transport));

    while (!stop_sig) {
        if (hup_sig) {
            hup_sig = 0;
            sl_log(SL_LOG_NOTICE, "SIGHUP: nothing is reloaded by sluice-rx; restart it to apply "
                   "configuration changes");
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
        if (d->http)
            fds[nf++] = (struct pollfd){ .fd = sl_http_fd(d->http), .events = POLLIN };
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
            int t = sl_mqtt_timeout_ms(d->mqtt, sl_clock_mono_ms());
            if (t >= 0 && t < wait)
                wait = t;
        }
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
            if (e == SL_ERR_IO && rate_ok(&d->next_io_log_ms, d->now_ms, DROP_LOG_PERIOD_MS))
                sl_log(SL_LOG_WARNING, "link receive failed: %s", strerror(errno));
        }
        if (d->mb && (mi < 0 || pr >= 0))
            service_error(&d->st.modbus_errors, "Modbus server", sl_mbserver_poll_once(d->mb, 0, d->now_ms));
        periodic(d);
        /* After periodic(): a link that just went stale reaches HTTP and
         * MQTT clients in this same turn. */
        if (d->http)
            service_error(&d->st.http_errors, "HTTP server", sl_http_run(d->http));
        if (d->mqtt)
            service_error(&d->st.mqtt_errors, "MQTT client",
                          sl_mqtt_run(d->mqtt, qi >= 0 && pr > 0 ? fds[qi].revents : 0, d->now_ms));
    }
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
    static struct rxd d;
    d.conf = &conf;
    d.carrier = -2;
    int rc = start(&d) == 0 ? run(&d) : 1;
    stop(&d);
    return rc;
}
