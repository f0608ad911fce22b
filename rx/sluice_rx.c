/* sluice-rx: the IT side of the diode (docs/rx.md).
 *
 * Start-up in one thread: the mirror, the link and the read-only services'
 * listeners (Modbus, HTTP, MQTT); then privileges are dropped, and as the
 * user the replay state, the database (the mirror restored from SQLite),
 * the wire path (frames, FEC, signature, replay: sl_receiver) with the tag
 * channel (sl_tagch: the mirror) and the file channel (sl_filerecv), the
 * syslog output; then sl_rxthreads_run runs the daemon as a pipeline
 * of threads (the link intake never waits on a consumer or the disk) until
 * SIGTERM/SIGINT, the end of a replayed capture, or a thread's failure.
 * This file is wiring: the decisions live in the modules. Nothing is
 * allocated per datagram, block or message. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_diag.h"
#include "sl_file.h"
#include "sl_filerecv.h"
#include "sl_history.h"
#include "sl_hw.h"
#include "sl_key.h"
#include "sl_link.h"
#include "sl_linkacct.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_mirror.h"
#include "sl_mqttconn.h"
#include "sl_receiver.h"
#include "sl_rxcheck.h"
#include "sl_rxconf.h"
#include "sl_rxstate.h"
#include "sl_rxthreads.h"
#include "sl_services.h"
#include "sl_store.h"
#include "sl_tagch.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define FEC_DONE_HISTORY     1024u     /* completed block ids remembered (late symbols) */
#define FEC_CACHE_ENTRIES    16u       /* cached decode matrices */
#define FILES_IDLE_US        (60ull * 1000000u)   /* a file with no progress for 60 s is dropped */

static void on_file_log(void *ctx, int ok, const char *line)
{
    (void)ctx;
    if (ok)
        sl_log(SL_LOG_INFO, "%s", line);
    else
        sl_log(SL_LOG_WARNING, "%s", line);
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
            "SIGHUP reopens [syslog] file (logrotate); nothing else is reloaded (restart\n"
            "to apply configuration changes).\n"
            "Exit status: 0 clean stop (or end of a pcapfile replay), 1 start-up or runtime\n"
            "failure (a thread failed: SL-RX-THREAD-FAIL), 2 configuration problems.\n");
}

static int open_link(struct sl_rxd *d)
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

/* The sandbox decided at start (sl_rxcheck_sandbox). */
static struct sl_sandbox_plan sandbox;

/* The state, database and syslog files go to the user (a chown through
 * O_PATH|O_NOFOLLOW: nothing in them is read), then every privilege is
 * dropped for good (sl_rxstate_drop_to); what RX opens from then on, as the
 * user, must be writable by that user: the [syslog] file's directory too,
 * or logrotate's SIGHUP could never reopen it. */
static int drop_privileges(const struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (sl_rxstate_drop_to(&d->state, &sandbox, c->keys.state_dir, c->mirror.database,
                           c->syslog.enabled ? c->syslog.out.file : "") != SL_OK)
        return -1;
    if (c->files.enabled && sl_sandbox_need_writable(&sandbox, "[files] directory", c->files.directory) != SL_OK)
        return -1;
    if (c->mirror.database[0] && sl_sandbox_need_writable(&sandbox, "[mirror] database", c->mirror.database) != SL_OK)
        return -1;
    /* SQLite creates the database, its -wal and -shm beside it. */
    if (c->history.database[0]) {
        char dir[sizeof c->history.database];
        if (sl_sandbox_need_writable(&sandbox, "[history] database's directory",
                                     sl_file_dir_of(dir, sizeof dir, c->history.database)) != SL_OK ||
            sl_sandbox_need_writable(&sandbox, "[history] database", c->history.database) != SL_OK)
            return -1;
    }
    if (c->syslog.enabled && c->syslog.out.file[0]) {
        char dir[sizeof c->syslog.out.file];
        if (sl_sandbox_need_writable(&sandbox, "[syslog] file's directory",
                                     sl_file_dir_of(dir, sizeof dir, c->syslog.out.file)) != SL_OK ||
            sl_sandbox_need_writable(&sandbox, "[syslog] file", c->syslog.out.file) != SL_OK)
            return -1;
    }
    return 0;
}

/* The mirror in memory (before the services that serve it). */
static int create_mirror(struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    struct sl_mirror_config mc = { .max_tags = c->mirror.max_tags, .stale_ms = c->mirror.stale_ms };
    sl_err e = sl_mirror_create(&d->mirror, &mc);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot create the mirror for %" PRIu32 " tags: %s", c->mirror.max_tags,
               sl_strerror(e));
        return -1;
    }
    return 0;
}

/* The database and the mirror restored from it: after the drop, as the
 * user (SQLite never parses as root a file that user could write). */
static int open_store(struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    char err[512] = "";
    sl_err e;
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

/* [history]: the writer's state, with the mirror's reader slot it maps tag
 * ids through, and a PostgreSQL password read now, before the drop (owned
 * by root or the [rx] user, like [mqtt]'s; kept for reconnects). */
static char *hist_password;

static int create_history(struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (!c->history.enabled)
        return 0;
    if (c->history.password_file[0]) {
        char why[160] = "";
        if (sl_mqttconn_password_load(&hist_password, c->history.password_file,
                                      sandbox.action == SL_SANDBOX_DROP ? sandbox.uid : geteuid(), why,
                                      sizeof why) != SL_OK) {
            sl_log(SL_LOG_ERR, "cannot read [history] password_file %s: %s", c->history.password_file, why);
            return -1;
        }
    }
    int slot = sl_mirror_reader_register(d->mirror);
    struct sl_history_config hc = {
        .db = { .database = c->history.database[0] ? c->history.database : NULL,
                .url = c->history.url[0] ? c->history.url : NULL, .password = hist_password,
                .retention_days = c->history.retention_days },
        .mirror = d->mirror, .mirror_slot = slot };
    sl_err e = slot < 0 ? SL_ERR_TABLE_FULL : sl_history_create(&d->hist, &hc);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot set up [history]: %s", sl_strerror(e));
        return -1;
    }
    return 0;
}

/* The history database, as the user. SQLite must open now (a wrong path
 * stops the start); a PostgreSQL server away is retried by rx-hist. */
static int open_history(struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (!d->hist)
        return 0;
    char err[512] = "";
    if (sl_history_open(d->hist, sl_clock_wall_us(), err, sizeof err) == SL_OK)
        return 0;
    if (c->history.database[0]) {
        sl_log(SL_LOG_ERR, "cannot open [history] database %s: %s", c->history.database, err);
        return -1;
    }
    sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-OPEN", "history: cannot open the database yet: %s (retried)", err);
    return 0;
}

static int open_receiver(struct sl_rxd *d)
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
        .on_payload = sl_rxd_on_payload, .on_beacon = sl_rxd_on_beacon, .ctx = d,
    };
    if ((e = sl_receiver_create(&d->rcv, &rc)) != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot create the receiver: %s", sl_strerror(e));
        return -1;
    }
    return 0;
}

/* The file channel's receiver ([files] directory), when on. */
static int open_files(struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (!c->files.enabled)
        return 0;
    struct sl_filerecv_config fc = { .directory = c->files.directory, .slots = SL_FILERECV_SLOTS_DEFAULT,
                                     .max_bytes = c->files.max_bytes, .max_total_bytes = c->files.max_total_bytes,
                                     .max_versions = c->files.max_versions, .idle_timeout_us = FILES_IDLE_US,
                                     .verify_readback = c->files.verify_readback,
                                     .log = on_file_log, .ctx = d };
    sl_err e = sl_filerecv_create(&d->fr, &fc);
    if (e == SL_OK)
        return 0;
    sl_log(SL_LOG_ERR, "cannot use [files] directory %s: %s%s%s", c->files.directory, sl_strerror(e),
           e == SL_ERR_IO ? ": " : "",
           e != SL_ERR_IO ? "" : errno == ELOOP ? "a symbolic link: refusing to follow it" : strerror(errno));
    return -1;
}

/* The syslog channel's output ([syslog] file and/or forward), when on. */
static int open_syslog(struct sl_rxd *d)
{
    const struct sl_rxconf *c = d->conf;
    if (!c->syslog.enabled)
        return 0;
    sl_err e = sl_syslogout_create(&d->syslog, &c->syslog.out);
    if (e == SL_OK)
        return 0;
    sl_log(SL_LOG_ERR, "cannot use [syslog] %s%s: %s%s%s", c->syslog.out.file[0] ? "file " : "forward ",
           c->syslog.out.file[0] ? c->syslog.out.file : c->syslog.out.forward.host, sl_strerror(e),
           e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
    return -1;
}

/* In the order of docs/rx.md §3. As started (root, maybe): state_dir
 * created and checked, the mirror in memory, the link (capture or socket)
 * and the services' listeners, nothing read from a file the user can
 * write; then the drop; then, as the user, the replay state and the
 * database are read (a planted file is parsed with the user's rights
 * only), the receiver, [files] and [syslog] opened. */
static int start(struct sl_rxd *d)
{
    if (sl_rxstate_prepare(&d->state, d->conf->keys.state_dir, sl_clock_mono_ms()) != SL_OK ||
        create_mirror(d) != 0 || create_history(d) != 0 || open_link(d) != 0 ||
        sl_services_open(&d->svc, d->conf, d->mirror, sl_rxd_fill_status, d) != SL_OK)
        return -1;
    if (drop_privileges(d) != 0)
        return -1;
    if (sl_rxstate_load(&d->state) != SL_OK || open_store(d) != 0 || open_history(d) != 0 ||
        open_receiver(d) != 0 || open_files(d) != 0 || open_syslog(d) != 0)
        return -1;
    return 0;
}

static void stop(struct sl_rxd *d)
{
    sl_services_close(&d->svc);
    sl_filerecv_destroy(d->fr);
    sl_syslogout_destroy(d->syslog);
    sl_receiver_destroy(d->rcv);
    sl_tagch_destroy(d->tags);
    sl_hw_close(d->hw);
    sl_store_close(d->store);
    sl_history_destroy(d->hist);
    sl_mqttconn_password_free(hist_password);
    sl_mirror_destroy(d->mirror);
    sl_rxstate_close(&d->state);
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

    /* SIGTERM, SIGINT and SIGHUP wait, blocked, for the main thread's
     * signalfd (sl_rxthreads_run): one sent during start-up stops the
     * daemon as soon as it runs, cleanly. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);   /* a Modbus client closing mid-answer is not fatal */

    sl_log(SL_LOG_INFO, "sluice-rx %s starting with %s", SL_VERSION, conf_path);
    sl_rxcheck_warnings(&conf, true);
    struct sl_sandbox_report sandbox_report;
    if (sl_rxcheck_sandbox(&conf, &sandbox, &sandbox_report) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", sandbox.why);
        return 1;
    }
    sl_sandbox_report_print(&sandbox_report, NULL);
    static struct sl_rxd d;
    d.conf = &conf;
    sl_link_watch_init(&d.nic, conf.link.interface, "SL-RX-CARRIER-UP", "SL-RX-CARRIER-DOWN");
    int rc = start(&d) == 0 ? sl_rxthreads_run(&d) : 1;
    stop(&d);
    return rc;
}
