#include "sl_txconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_conf.h"
#include "sl_generator.h"
#include "sl_hw.h"
#include "sl_log.h"
#include "sl_logmsg.h"

/* The INI core (reading, sections, typed getters, HOST:PORT) is sl_conf
 * (proto/rt/sl_conf.h); this file holds TX's sections and keys, their
 * defaults and bounds, and the checks only TX makes (key file mode, tag
 * maps, serial buses, mirror_unit and tag-name collisions). */

/* [device NAME] (the INI core caps NAME at SL_CONF_NAME_MAX) is copied into
 * sl_txconf_device.name (SL_NAME_MAX + 1) and names the device's tags: the
 * two limits must stay one. */
_Static_assert(SL_CONF_NAME_MAX == SL_NAME_MAX, "a device name must fit sl_txconf_device.name");

enum sec { SEC_LINK, SEC_FEC, SEC_KEYS, SEC_SNAPSHOT, SEC_TX, SEC_FILES, SEC_SYSLOG, SEC_BACKFILL, SEC_DEVICE,
           SEC__COUNT };

enum { K_TRANSPORT, K_DESTINATION, K_GSO, K_INTERFACE, K_DESTINATION_MAC, K_FILE, K_RATE_MBPS,
       K_MTU };
enum { K_K, K_M, K_INTERLEAVE };
enum { K_SIGNING_KEY, K_STATE_DIR };
enum { K_KEYFRAME_MS, K_BEACON_MS, K_MAX_DELAY_MS };
enum { K_USER, K_METRICS_FILE, K_ALLOW_ROOT };
enum { K_SPOOL, K_COPIES, K_SENT, K_FILES_MAX_BYTES, K_SHARE };
enum { K_SYSLOG_LISTEN, K_MAX_RATE, K_BATCH_MS, K_MAX_MESSAGE, K_MAX_CONNECTIONS, K_MAX_PER_PEER,
       K_IDLE_S, K_SYSLOG_SHARE };
enum { K_BACKFILL_ENABLED, K_BACKFILL_MAX_BYTES, K_WINDOW_S, K_BACKFILL_SHARE };
enum { K_PROTOCOL, K_ADDRESS, K_UNIT, K_MIRROR_UNIT, K_POLL_MS, K_TIMEOUT_MS, K_TAGS, K_BAUD,
       K_PARITY, K_DATA_BITS, K_STOP_BITS, K_MAX_GAP, K_RATE, K_RS485, K_RTS, K_RTS_DELAY_US };

static const char *const link_keys[] = { "transport", "destination", "gso", "interface",
                                         "destination_mac", "file", "rate_mbps", "mtu", NULL };
static const char *const fec_keys[] = { "k", "m", "interleave", NULL };
static const char *const keys_keys[] = { "signing_key", "state_dir", NULL };
static const char *const snapshot_keys[] = { "keyframe_ms", "beacon_ms", "max_delay_ms", NULL };
static const char *const tx_keys[] = { "user", "metrics_file", "allow_root", NULL };
static const char *const files_keys[] = { "spool", "copies", "sent", "max_bytes", "share", NULL };
static const char *const syslog_keys[] = { "listen", "max_rate", "batch_ms", "max_message",
                                           "max_connections", "max_per_peer", "idle_s", "share", NULL };
static const char *const backfill_keys[] = { "enabled", "max_bytes", "window_s", "share", NULL };
static const char *const device_keys[] = { "protocol", "address", "unit", "mirror_unit", "poll_ms",
                                           "timeout_ms", "tags", "baud", "parity", "data_bits",
                                           "stop_bits", "max_gap", "rate", "rs485", "rts",
                                           "rts_delay_us", NULL };

static const struct sl_conf_section sections[SEC__COUNT] = {
    [SEC_LINK] = { "link", link_keys, 0 },
    [SEC_FEC] = { "fec", fec_keys, 0 },
    [SEC_KEYS] = { "keys", keys_keys, 0 },
    [SEC_SNAPSHOT] = { "snapshot", snapshot_keys, 0 },
    [SEC_TX] = { "tx", tx_keys, 0 },
    [SEC_FILES] = { "files", files_keys, 0 },
    [SEC_SYSLOG] = { "syslog", syslog_keys, 0 },
    [SEC_BACKFILL] = { "backfill", backfill_keys, 0 },
    [SEC_DEVICE] = { "device", device_keys, SL_TXCONF_MAX_DEVICES },
};

/* Which [link] keys each transport needs or refuses. */
static const struct sl_conf_rule link_rules[] = {
    { SL_TXCONF_UDP, K_DESTINATION, true, " for transport udp" },
    /* interface is optional with udp: the diode NIC, for link health. */
    { SL_TXCONF_UDP, K_DESTINATION_MAC, false, "does not apply to transport udp" },
    { SL_TXCONF_UDP, K_FILE, false, "does not apply to transport udp" },
    { SL_TXCONF_RAW, K_INTERFACE, true, " for transport raw" },
    { SL_TXCONF_RAW, K_DESTINATION_MAC, true, " for transport raw" },
    { SL_TXCONF_RAW, K_GSO, false, "applies only to transport udp" },
    { SL_TXCONF_RAW, K_FILE, false, "does not apply to transport raw" },
    { SL_TXCONF_PCAPFILE, K_FILE, true, " for transport pcapfile" },
    { SL_TXCONF_PCAPFILE, K_GSO, false, "applies only to transport udp" },
    { SL_TXCONF_PCAPFILE, K_INTERFACE, false, "does not apply to transport pcapfile" },
    { SL_TXCONF_PCAPFILE, K_DESTINATION_MAC, false, "does not apply to transport pcapfile" },
};

/* Which [device] keys each protocol refuses (what it needs is read below). */
static const struct sl_conf_rule device_rules[] = {
    { SL_TXCONF_GENERATOR, K_ADDRESS, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_POLL_MS, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_TIMEOUT_MS, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_MAX_GAP, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_BAUD, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_PARITY, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_DATA_BITS, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_STOP_BITS, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_RS485, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_RTS, false, "does not apply to protocol generator" },
    { SL_TXCONF_GENERATOR, K_RTS_DELAY_US, false, "does not apply to protocol generator" },
    { SL_TXCONF_MODBUS_TCP, K_RATE, false, "applies only to protocol generator" },
    { SL_TXCONF_MODBUS_TCP, K_BAUD, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_TCP, K_PARITY, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_TCP, K_DATA_BITS, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_TCP, K_STOP_BITS, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_TCP, K_RS485, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_TCP, K_RTS, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_TCP, K_RTS_DELAY_US, false, "applies only to protocol modbus-rtu" },
    { SL_TXCONF_MODBUS_RTU, K_RATE, false, "applies only to protocol generator" },
    { 0, K_RATE, false, "applies only to protocol generator" },   /* protocol missing or bad */
};

/* The plain numeric keys: key, bounds, default, field. */
static const struct sl_conf_u32_field snapshot_nums[] = {
    SL_CONF_U32(K_KEYFRAME_MS, 100, 3600000, SL_TXCONF_DEFAULT_KEYFRAME_MS, struct sl_txconf,
                snapshot.keyframe_ms),
    SL_CONF_U32(K_BEACON_MS, 10, 60000, SL_TXCONF_DEFAULT_BEACON_MS, struct sl_txconf, snapshot.beacon_ms),
    SL_CONF_U32(K_MAX_DELAY_MS, 0, 1000, SL_TXCONF_DEFAULT_MAX_DELAY_MS, struct sl_txconf,
                snapshot.max_delay_ms),
};
static const struct sl_conf_u32_field device_nums[] = {
    SL_CONF_U32(K_POLL_MS, 10, 3600000, SL_TXCONF_DEFAULT_POLL_MS, struct sl_txconf_device, poll_ms),
    SL_CONF_U32(K_TIMEOUT_MS, 10, 60000, SL_TXCONF_DEFAULT_TIMEOUT_MS, struct sl_txconf_device, timeout_ms),
};

static const struct sl_conf_name transports[] = {
    { "udp", SL_TXCONF_UDP }, { "raw", SL_TXCONF_RAW }, { "pcapfile", SL_TXCONF_PCAPFILE }, { NULL, 0 }
};
static const struct sl_conf_name protocols[] = {
    { "modbus-tcp", SL_TXCONF_MODBUS_TCP }, { "modbus-rtu", SL_TXCONF_MODBUS_RTU },
    { "generator", SL_TXCONF_GENERATOR }, { NULL, 0 }
};
static const struct sl_conf_name parities[] = {
    { "none", 'N' }, { "N", 'N' }, { "even", 'E' }, { "E", 'E' }, { "odd", 'O' }, { "O", 'O' }, { NULL, 0 }
};
static const struct sl_conf_name rts_modes[] = {
    { "none", SL_TXCONF_RTS_NONE }, { "up", SL_TXCONF_RTS_UP }, { "down", SL_TXCONF_RTS_DOWN }, { NULL, 0 }
};

static bool parse_mac(const char *v, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        unsigned b = 0;
        for (int j = 0; j < 2; j++) {
            char ch = *v++;
            unsigned d;
            if (ch >= '0' && ch <= '9')
                d = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                d = (unsigned)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F')
                d = (unsigned)(ch - 'A' + 10);
            else
                return false;
            b = b * 16 + d;
        }
        mac[i] = (uint8_t)b;
        if (i < 5 && *v != ':' && *v != '-')
            return false;
        if (i < 5)
            v++;
    }
    return *v == '\0';
}

/* A decimal number in [lo, hi] ((lo, hi] when lo_open), else "bad k 'v'
 * (RANGE)"; *out untouched when absent or bad. No hex (strtod takes it). */
static bool conf_double(struct sl_conf *p, const struct sl_conf_sec *s, int k, double lo, bool lo_open,
                        double hi, const char *range, double *out)
{
    const char *v = sl_conf_val(s, k);
    if (!v)
        return false;
    char *end;
    errno = 0;
    double r = strtod(v, &end);
    bool in = lo_open ? r > lo : r >= lo;
    if (!*v || *end || errno || !(in && r <= hi) || strchr(v, 'x') || strchr(v, 'X')) {
        sl_conf_error(p, s->line[k], "bad %s '%s' (%s)", sl_conf_key(p, s, k), v, range);
        return false;
    }
    *out = r;
    return true;
}

static void do_link(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_LINK];
    const char *v;
    int t = 0;
    c->link.gso = true;
    c->link.dest_port = SL_DEFAULT_PORT;
    c->link.rate_mbps = SL_TXCONF_DEFAULT_RATE_MBPS;
    if (!s->header)
        sl_conf_error(p, 0, "missing section [link]");
    else if (sl_conf_require(p, s, K_TRANSPORT, ""))
        sl_conf_enum(p, s, K_TRANSPORT, transports, "udp|raw|pcapfile", &t);
    c->link.transport = (uint8_t)t;
    sl_conf_rules(p, s, link_rules, sizeof link_rules / sizeof link_rules[0], t);
    if (sl_conf_val(s, K_DESTINATION) &&
        sl_conf_hostport(p, s, K_DESTINATION, SL_DEFAULT_PORT, SL_HOSTPORT_DEFAULT_PORT, NULL,
                         &c->link.dest_addr)) {
        snprintf(c->link.destination, sizeof c->link.destination, "%s", sl_conf_val(s, K_DESTINATION));
        snprintf(c->link.dest_host, sizeof c->link.dest_host, "%s", c->link.dest_addr.host);
        c->link.dest_port = c->link.dest_addr.port;
    }
    sl_conf_bool(p, s, K_GSO, SL_CONF_ON_OFF, &c->link.gso);
    sl_conf_ifname(p, s, K_INTERFACE, c->link.interface);
    if ((v = sl_conf_val(s, K_DESTINATION_MAC)) && !parse_mac(v, c->link.destination_mac))
        sl_conf_error(p, s->line[K_DESTINATION_MAC], "bad destination_mac '%s' (aa:bb:cc:dd:ee:ff)", v);
    sl_conf_path(p, s, K_FILE, c->link.file);
    conf_double(p, s, K_RATE_MBPS, 0.064, false, 100000.0, "0.064..100000", &c->link.rate_mbps);
    c->link.rate_kbps = (uint32_t)(c->link.rate_mbps * 1000.0 + 0.5);
    /* The symbol must stay within SL_SYMBOL_MIN..SL_SYMBOL_MAX once IPv4,
     * UDP and the frame header are taken off. */
    sl_conf_u32(p, s, K_MTU, 576, SL_SYMBOL_MAX + SL_IPV4_UDP_BYTES + SL_FRAME_OVERHEAD,
                SL_TXCONF_DEFAULT_MTU, &c->link.mtu);
    c->link.symbol_bytes = SL_SYMBOL_FOR_MTU(c->link.mtu);
}

static void do_fec(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_FEC];
    uint32_t k, m, d;
    bool ok = sl_conf_u32(p, s, K_K, 1, SL_FEC_MAX_SYMBOLS - 1, SL_TXCONF_DEFAULT_K, &k);
    ok &= sl_conf_u32(p, s, K_M, 1, SL_FEC_MAX_SYMBOLS - 1, SL_TXCONF_DEFAULT_M, &m);
    sl_conf_u32(p, s, K_INTERLEAVE, 1, 64, SL_TXCONF_DEFAULT_INTERLEAVE, &d);   /* sl_sender limit */
    if (ok && k + m > SL_FEC_MAX_SYMBOLS)
        sl_conf_error(p, s->line[K_M] ? s->line[K_M] : s->line[K_K],
                      "k + m = %u exceeds %u (GF(2^8) Reed-Solomon)", k + m, SL_FEC_MAX_SYMBOLS);
    c->fec.k = (uint8_t)k;
    c->fec.m = (uint8_t)m;
    c->fec.interleave = (uint8_t)d;
}

/* Only mode and readability: the key's contents are checked where it is
 * loaded (proto), so --check needs no crypto. */
static void check_key_file(struct sl_conf *p, const char *path, unsigned line)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        sl_conf_error(p, line, "signing_key '%s': %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        sl_conf_error(p, line, "signing_key '%s' is not a regular file", path);
        return;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        sl_conf_error(p, line, "signing_key '%s' is accessible by group or others (mode %04o); "
                      "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        sl_conf_error(p, line, "signing_key '%s' is not readable: %s", path, strerror(errno));
    else
        close(fd);
}

static void do_keys(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_KEYS];
    snprintf(c->keys.state_dir, sizeof c->keys.state_dir, "%s", SL_TXCONF_DEFAULT_STATE_DIR);
    if (!s->header) {
        sl_conf_error(p, 0, "missing section [keys]");
        return;
    }
    if (sl_conf_require(p, s, K_SIGNING_KEY, "") && sl_conf_path(p, s, K_SIGNING_KEY, c->keys.signing_key) &&
        sl_conf_host_checks(p))
        check_key_file(p, c->keys.signing_key, s->line[K_SIGNING_KEY]);
    if (sl_conf_val(s, K_STATE_DIR)) {
        char dir[SL_TXCONF_STR_MAX];
        if (sl_conf_path(p, s, K_STATE_DIR, dir))
            memcpy(c->keys.state_dir, dir, sizeof dir);
    }
    struct stat st;
    /* A missing state_dir is created at start; something else in its place is not. */
    if (sl_conf_host_checks(p) && c->keys.state_dir[0] && stat(c->keys.state_dir, &st) == 0 &&
        !S_ISDIR(st.st_mode))
        sl_conf_error(p, sl_conf_line(s, K_STATE_DIR), "state_dir '%s' is not a directory",
                      c->keys.state_dir);
}

static void do_snapshot(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_SNAPSHOT];
    sl_conf_u32_fields(p, s, snapshot_nums, sizeof snapshot_nums / sizeof snapshot_nums[0], c);
}

/* The metrics file is replaced by rename from a temporary file beside it,
 * so its directory must exist; the path itself must not be a directory. */
static void do_metrics_file(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_TX];
    unsigned line = s->line[K_METRICS_FILE];
    if (!sl_conf_path(p, s, K_METRICS_FILE, c->tx.metrics_file))
        return;
    const char *path = c->tx.metrics_file;
    const char *slash = strrchr(path, '/');
    if (slash && !slash[1]) {
        sl_conf_error(p, line, "metrics_file '%s' names no file", path);
        c->tx.metrics_file[0] = '\0';
        return;
    }
    if (!sl_conf_host_checks(p))
        return;
    char dir[SL_TXCONF_STR_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0)
        sl_conf_error(p, line, "metrics_file '%s': directory '%s': %s", path, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        sl_conf_error(p, line, "metrics_file '%s': '%s' is not a directory", path, dir);
    else if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        sl_conf_error(p, line, "metrics_file '%s' is a directory", path);
}

static void do_tx(struct sl_conf *p, struct sl_txconf *c)
{
    do_metrics_file(p, c);
    sl_conf_user(p, &p->single[SEC_TX], K_USER, c->tx.user, sizeof c->tx.user);
    sl_conf_bool(p, &p->single[SEC_TX], K_ALLOW_ROOT, SL_CONF_YES_NO, &c->tx.allow_root);
}

/* A spool or sent directory: exists, is a directory and not a symbolic
 * link (the daemon opens it O_NOFOLLOW), and whoever runs --check may list,
 * read and write it (run --check as the [tx] user to check for that user).
 * Fills *st for the cross checks. */
static bool check_dir(struct sl_conf *p, const char *key, const char *path, unsigned line, struct stat *st)
{
    if (lstat(path, st) != 0) {
        sl_conf_error(p, line, "%s '%s': %s", key, path, strerror(errno));
        return false;
    }
    if (S_ISLNK(st->st_mode)) {
        sl_conf_error(p, line, "%s '%s' is a symbolic link (refused; name the directory itself)", key, path);
        return false;
    }
    if (!S_ISDIR(st->st_mode)) {
        sl_conf_error(p, line, "%s '%s' is not a directory", key, path);
        return false;
    }
    if (access(path, R_OK | W_OK | X_OK) != 0) {
        sl_conf_error(p, line, "%s '%s' is not readable and writable: %s", key, path, strerror(errno));
        return false;
    }
    return true;
}

/* [files]: the watched spool (tx/sl_spool.h). Without spool the section
 * is an error (it would do nothing). sent must be on the spool's
 * filesystem: files are moved there by rename(2), never copied. */
static void do_files(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_FILES];
    c->files.copies = SL_TXCONF_DEFAULT_FILE_COPIES;
    c->files.max_bytes = SL_TXCONF_DEFAULT_FILE_MAX_BYTES;
    c->files.share = SL_TXCONF_DEFAULT_FILE_SHARE;
    if (!s->header)
        return;
    c->files.enabled = true;
    sl_conf_u32(p, s, K_COPIES, 1, SL_TXCONF_MAX_FILE_COPIES, SL_TXCONF_DEFAULT_FILE_COPIES, &c->files.copies);
    sl_conf_u64(p, s, K_FILES_MAX_BYTES, 1, UINT64_MAX / 2, SL_TXCONF_DEFAULT_FILE_MAX_BYTES,
                &c->files.max_bytes);
    conf_double(p, s, K_SHARE, 0.0, true, 1.0, "0 < share <= 1", &c->files.share);
    bool spool = sl_conf_require(p, s, K_SPOOL, " (the directory to watch)") &&
                 sl_conf_path(p, s, K_SPOOL, c->files.spool);
    bool sent = sl_conf_path(p, s, K_SENT, c->files.sent);
    if (!sl_conf_host_checks(p))
        return;
    struct stat a, b;
    spool = spool && check_dir(p, "spool", c->files.spool, s->line[K_SPOOL], &a);
    sent = sent && check_dir(p, "sent", c->files.sent, s->line[K_SENT], &b);
    if (!spool || !sent)
        return;
    if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        sl_conf_error(p, s->line[K_SENT], "sent '%s' is the spool directory itself", c->files.sent);
    else if (a.st_dev != b.st_dev)
        sl_conf_error(p, s->line[K_SENT],
                      "sent '%s' is on another filesystem than spool '%s' (files are moved by rename)",
                      c->files.sent, c->files.spool);
}

/* [syslog]: the syslog intake (tx/sl_syslogin.h), UDP and TCP on listen.
 * A message must fit one block with its header, so max_message is checked
 * against the payload [link] and [fec] give. */
static void do_syslog(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_SYSLOG];
    struct sl_syslogin_config *y = &c->syslog.in;
    static const struct sl_conf_u32_field nums[] = {
        SL_CONF_U32(K_MAX_RATE, 1, 1000000, SL_TXCONF_DEFAULT_SYSLOG_RATE, struct sl_syslogin_config,
                    max_rate),
        SL_CONF_U32(K_BATCH_MS, 1, 1000, SL_TXCONF_DEFAULT_SYSLOG_BATCH_MS, struct sl_syslogin_config,
                    batch_ms),
        SL_CONF_U32(K_MAX_MESSAGE, 480, SL_SYSLOG_TEXT_MAX, SL_TXCONF_DEFAULT_SYSLOG_MESSAGE,
                    struct sl_syslogin_config, max_message),
        SL_CONF_U32(K_MAX_CONNECTIONS, 1, 1024, 64, struct sl_syslogin_config, max_connections),
        SL_CONF_U32(K_MAX_PER_PEER, 1, 1024, 8, struct sl_syslogin_config, max_per_peer),
        SL_CONF_U32(K_IDLE_S, 1, 86400, 300, struct sl_syslogin_config, idle_s),
    };
    sl_conf_u32_fields(p, s, nums, sizeof nums / sizeof nums[0], y);
    c->syslog.share = SL_TXCONF_DEFAULT_SYSLOG_SHARE;
    if (!s->header)
        return;
    c->syslog.enabled = true;
    conf_double(p, s, K_SYSLOG_SHARE, 0.0, true, 1.0, "0 < share <= 1", &c->syslog.share);
    if (sl_conf_require(p, s, K_SYSLOG_LISTEN, " (HOST:PORT to take syslog on, UDP and TCP)"))
        sl_conf_hostport(p, s, K_SYSLOG_LISTEN, 0, SL_HOSTPORT_ANY, "", &y->listen);
    uint64_t cap = (uint64_t)c->fec.k * c->link.symbol_bytes;
    cap = cap > SL_BLOCK_OVERHEAD ? cap - SL_BLOCK_OVERHEAD : 0;
    if (c->link.symbol_bytes && sl_logmsg_bytes(y->max_message) > cap)
        sl_conf_error(p, sl_conf_line(s, K_MAX_MESSAGE),
                      "max_message %u does not fit one block of %llu payload bytes ([fec] k x "
                      "symbol size); lower it or raise k", y->max_message, (unsigned long long)cap);
}

/* [backfill]: the change journal under state_dir (tx/sl_journal.h) and
 * the carousel that re-sends it. On without the section (the defaults);
 * enabled = no turns both off. share 0 is refused rather than read as
 * "off": a journal that is never re-sent would leave RX counting the
 * changes coalesced away as missing for ever. */
static void do_backfill(struct sl_conf *p, struct sl_txconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_BACKFILL];
    c->backfill.enabled = true;
    c->backfill.max_bytes = SL_TXCONF_DEFAULT_BACKFILL_MAX_BYTES;
    c->backfill.window_s = SL_TXCONF_DEFAULT_BACKFILL_WINDOW_S;
    c->backfill.share = SL_TXCONF_DEFAULT_BACKFILL_SHARE;
    sl_conf_bool(p, s, K_BACKFILL_ENABLED, SL_CONF_YES_NO, &c->backfill.enabled);
    sl_conf_u64(p, s, K_BACKFILL_MAX_BYTES, SL_TXCONF_MIN_BACKFILL_MAX_BYTES, UINT64_MAX / 2,
                SL_TXCONF_DEFAULT_BACKFILL_MAX_BYTES, &c->backfill.max_bytes);
    sl_conf_u64(p, s, K_WINDOW_S, SL_TXCONF_MIN_BACKFILL_WINDOW_S, SL_TXCONF_MAX_BACKFILL_WINDOW_S,
                SL_TXCONF_DEFAULT_BACKFILL_WINDOW_S, &c->backfill.window_s);
    conf_double(p, s, K_BACKFILL_SHARE, 0.0, true, 1.0, "0 < share <= 1; enabled = no turns backfill off",
                &c->backfill.share);
}

/* protocol = generator: `tags` is a tag count and `rate` updates per
 * second (tx/sl_generator.h); nothing is polled, so the Modbus keys do not
 * apply (device_rules). */
static void do_generator(struct sl_conf *p, const struct sl_conf_sec *s, struct sl_txconf_device *d)
{
    uint32_t n;
    sl_conf_u32(p, s, K_UNIT, 0, 255, SL_TXCONF_DEFAULT_UNIT, &n);
    d->unit = (uint8_t)n;
    sl_conf_u32(p, s, K_MIRROR_UNIT, 0, 255, d->unit, &n);
    d->mirror_unit = (uint8_t)n;
    sl_conf_u32(p, s, K_RATE, 0, SL_GENERATOR_MAX_RATE, SL_GENERATOR_DEFAULT_RATE, &d->rate);
    if (sl_conf_require(p, s, K_TAGS, " (the number of tags)") &&
        sl_conf_u32(p, s, K_TAGS, 1, SL_GENERATOR_MAX_TAGS, 1, &n)) {
        sl_err e = sl_generator_tagmap(&d->tagmap, d->name, n);
        if (e == SL_ERR_NOMEM)
            p->nomem = true;
        else if (e != SL_OK)
            sl_conf_error(p, s->header, "device '%s': cannot build its tags: %s", d->name, sl_strerror(e));
    }
}

/* A serial line's settings: baud, parity, data and stop bits, and the
 * RS-485 options: rs485 = on|off (kernel RS-485 mode, TIOCSRS485 through
 * libmodbus), rts = none|up|down (libmodbus drives RTS around each request,
 * for adapters without automatic direction control) and rts_delay_us
 * (settle time either side of the request, only with rts). */
static void do_serial(struct sl_conf *p, const struct sl_conf_sec *s, struct sl_txconf_device *d)
{
    int v = SL_TXCONF_DEFAULT_PARITY, rts = SL_TXCONF_RTS_NONE;
    uint32_t n;
    sl_conf_bool(p, s, K_RS485, SL_CONF_ON_OFF, &d->rs485);
    sl_conf_enum(p, s, K_RTS, rts_modes, "none|up|down", &rts);
    d->rts = (uint8_t)rts;
    if (d->rts == SL_TXCONF_RTS_NONE)
        sl_conf_forbid(p, s, K_RTS_DELAY_US, "applies only with rts = up|down");
    else
        sl_conf_u32(p, s, K_RTS_DELAY_US, 0, 1000000, 0, &d->rts_delay_us);
    sl_conf_u32(p, s, K_BAUD, 300, 4000000, SL_TXCONF_DEFAULT_BAUD, &d->baud);
    sl_conf_enum(p, s, K_PARITY, parities, "none|even|odd", &v);
    d->parity = (char)v;
    if (sl_conf_u32(p, s, K_DATA_BITS, 7, 8, SL_TXCONF_DEFAULT_DATA_BITS, &n))
        d->data_bits = (uint8_t)n;
    if (sl_conf_u32(p, s, K_STOP_BITS, 1, 2, SL_TXCONF_DEFAULT_STOP_BITS, &n))
        d->stop_bits = (uint8_t)n;
}

/* address: HOST:PORT for modbus-tcp (the one grammar, port 502 by
 * default), a serial device path for modbus-rtu. */
static void do_address(struct sl_conf *p, const struct sl_conf_sec *s, struct sl_txconf_device *d)
{
    const char *v = sl_conf_val(s, K_ADDRESS);
    snprintf(d->address, sizeof d->address, "%s", v);
    if (d->protocol == SL_TXCONF_MODBUS_TCP &&
        sl_conf_hostport(p, s, K_ADDRESS, SL_TXCONF_DEFAULT_MODBUS_PORT, SL_HOSTPORT_DEFAULT_PORT,
                         " for modbus-tcp", &d->addr)) {
        snprintf(d->host, sizeof d->host, "%s", d->addr.host);
        d->port = d->addr.port;
    }
    if (d->protocol != SL_TXCONF_MODBUS_RTU)
        return;
    if (v[0] != '/')
        sl_conf_error(p, s->line[K_ADDRESS],
                      "bad address '%s' for modbus-rtu (a serial device such as /dev/ttyUSB0)", v);
    /* Two names for one port (a udev symlink and /dev/ttyUSB0) are one bus;
     * a port that is not plugged in yet keeps its name. */
    char *canon = realpath(v, NULL);
    snprintf(d->line_path, sizeof d->line_path, "%s",
             canon && strlen(canon) < sizeof d->line_path ? canon : v);
    free(canon);
}

/* tags: the tag map CSV, loaded now so --check lists its problems. */
static void do_tags(struct sl_conf *p, const struct sl_conf_sec *s, struct sl_txconf_device *d)
{
    if (!sl_conf_require(p, s, K_TAGS, "") || !sl_conf_path(p, s, K_TAGS, d->tags))
        return;
    sl_err e = sl_tagmap_load(&d->tagmap, d->tags, p->diag);
    if (e == SL_ERR_NOMEM)
        p->nomem = true;
    else if (e == SL_ERR_IO)   /* the message names the map; point at the key too */
        sl_conf_error(p, s->line[K_TAGS], "device '%s': tag map unusable", d->name);
}

static void do_device(struct sl_conf *p, const struct sl_conf_sec *s, struct sl_txconf_device *d)
{
    int proto = 0;
    uint32_t n;
    snprintf(d->name, sizeof d->name, "%s", s->name);
    d->line = s->header;
    if (sl_conf_require(p, s, K_PROTOCOL, ""))
        sl_conf_enum(p, s, K_PROTOCOL, protocols, "modbus-tcp|modbus-rtu|generator", &proto);
    d->protocol = (uint8_t)proto;
    sl_conf_rules(p, s, device_rules, sizeof device_rules / sizeof device_rules[0], proto);
    if (d->protocol == SL_TXCONF_GENERATOR) {
        do_generator(p, s, d);
        return;
    }
    bool rtu = d->protocol == SL_TXCONF_MODBUS_RTU;
    if (sl_conf_require(p, s, K_ADDRESS, ""))
        do_address(p, s, d);
    /* Modbus RTU allows units 1..247 (0 is broadcast); TCP gateways also use 0 and 255. */
    sl_conf_u32(p, s, K_UNIT, rtu ? 1 : 0, rtu ? 247 : 255, SL_TXCONF_DEFAULT_UNIT, &n);
    d->unit = (uint8_t)n;
    sl_conf_u32(p, s, K_MIRROR_UNIT, 0, 255, d->unit, &n);
    d->mirror_unit = (uint8_t)n;
    sl_conf_u32_fields(p, s, device_nums, sizeof device_nums / sizeof device_nums[0], d);
    sl_conf_u32(p, s, K_MAX_GAP, 0, 120, SL_TXCONF_DEFAULT_MAX_GAP, &n);
    d->max_gap = (uint16_t)n;
    d->baud = SL_TXCONF_DEFAULT_BAUD;
    d->parity = SL_TXCONF_DEFAULT_PARITY;
    d->data_bits = SL_TXCONF_DEFAULT_DATA_BITS;
    d->stop_bits = SL_TXCONF_DEFAULT_STOP_BITS;
    if (rtu)
        do_serial(p, s, d);
    do_tags(p, s, d);
}

struct tagref {
    const struct sl_txconf_device *dev;
    const struct sl_tag *tag;
};

static int by_full_name(const void *a, const void *b)
{
    const struct tagref *x = a, *y = b;
    int c = strcmp(x->tag->path, y->tag->path);
    if (!c)
        c = strcmp(x->tag->name, y->tag->name);
    if (!c)
        c = (x->dev > y->dev) - (x->dev < y->dev);
    return c;
}

/* The first line setting in which RTU devices a and b differ: its key
 * (K_BAUD...) or -1 when they agree. */
static int line_difference(const struct sl_txconf_device *a, const struct sl_txconf_device *b)
{
    if (a->baud != b->baud)
        return K_BAUD;
    if (a->parity != b->parity)
        return K_PARITY;
    if (a->data_bits != b->data_bits)
        return K_DATA_BITS;
    if (a->stop_bits != b->stop_bits)
        return K_STOP_BITS;
    if (a->rs485 != b->rs485)
        return K_RS485;
    if (a->rts != b->rts)
        return K_RTS;
    if (a->rts_delay_us != b->rts_delay_us)
        return K_RTS_DELAY_US;
    return -1;
}

/* Groups RTU devices into buses by port and checks that one bus has one set
 * of line settings and no unit twice: the port is opened once with the
 * first device's settings, so a disagreement would silently lose. */
static void group_buses(struct sl_conf *p, struct sl_txconf *c)
{
    for (size_t i = 0; i < c->ndevices; i++) {
        struct sl_txconf_device *d = &c->devices[i];
        d->bus = (uint16_t)i;
        if (d->protocol != SL_TXCONF_MODBUS_RTU || !d->line_path[0])
            continue;
        const struct sl_conf_sec *s = &p->named[i];
        for (size_t j = 0; j < i; j++) {
            const struct sl_txconf_device *o = &c->devices[j];
            if (o->protocol != SL_TXCONF_MODBUS_RTU || strcmp(o->line_path, d->line_path) != 0)
                continue;
            d->bus = o->bus;
            int k = line_difference(o, d);
            if (k >= 0)
                sl_conf_error(p, s->line[k] ? s->line[k] : s->line[K_ADDRESS],
                            "device '%s': %s differs from device '%s' (line %u) on the same serial "
                            "line %s; every device on one port needs the same baud, parity, "
                            "data_bits, stop_bits, rs485, rts and rts_delay_us",
                            d->name, device_keys[k], o->name, o->line, d->line_path);
            break;
        }
        for (size_t j = 0; j < i; j++) {
            const struct sl_txconf_device *o = &c->devices[j];
            if (o->protocol == SL_TXCONF_MODBUS_RTU && o->bus == d->bus && o->unit == d->unit) {
                sl_conf_error(p, s->line[K_UNIT] ? s->line[K_UNIT] : s->header,
                            "device '%s': unit %u is already polled by device '%s' (line %u) on "
                            "serial line %s", d->name, d->unit, o->name, o->line, d->line_path);
                break;
            }
        }
    }
}

/* mirror_unit collisions and path/name clashes between devices. */
static void cross_checks(struct sl_conf *p, struct sl_txconf *c)
{
    group_buses(p, c);
    for (size_t i = 0; i < c->ndevices; i++)
        for (size_t j = 0; j < i; j++)
            if (c->devices[i].mirror_unit == c->devices[j].mirror_unit) {
                const struct sl_conf_sec *s = &p->named[i];
                unsigned line = s->line[K_MIRROR_UNIT] ? s->line[K_MIRROR_UNIT]
                              : s->line[K_UNIT] ? s->line[K_UNIT] : s->header;
                sl_conf_error(p, line,
                            "device '%s': mirror_unit %u collides with device '%s' (line %u); "
                            "set a distinct mirror_unit", c->devices[i].name,
                            c->devices[i].mirror_unit, c->devices[j].name, c->devices[j].line);
                break;
            }
    size_t total = 0;
    for (size_t i = 0; i < c->ndevices; i++)
        total += c->devices[i].tagmap.count;
    if (total < 2)
        return;
    struct tagref *v = malloc(total * sizeof *v);
    if (!v) {
        p->nomem = true;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->ndevices; i++)
        for (size_t j = 0; j < c->devices[i].tagmap.count; j++)
            v[n++] = (struct tagref){ &c->devices[i], &c->devices[i].tagmap.tags[j] };
    qsort(v, n, sizeof *v, by_full_name);
    for (size_t i = 1; i < n; i++) {
        const struct tagref *a = &v[i - 1], *b = &v[i];
        /* Same device: already reported by the tag map as a duplicate name. */
        if (a->dev != b->dev && strcmp(a->tag->path, b->tag->path) == 0 &&
            strcmp(a->tag->name, b->tag->name) == 0)
            sl_diag_add(p->diag, b->dev->tagmap.file, b->tag->line,
                        "tag '%s/%s' of device '%s' is also defined by device '%s' (%s:%u)",
                        b->tag->path, b->tag->name, b->dev->name, a->dev->name,
                        a->dev->tagmap.file, a->tag->line);
    }
    free(v);
}

static void finish(struct sl_conf *p)
{
    struct sl_txconf *c = p->out;
    do_link(p, c);
    do_fec(p, c);
    do_keys(p, c);
    do_snapshot(p, c);
    do_tx(p, c);
    do_files(p, c);
    do_syslog(p, c);
    do_backfill(p, c);
    /* No [device]: a file-only (or log-only) diode; the tag channel then
     * carries an empty schema (docs/tx.md). */
    if (p->nnamed == 0)
        return;
    c->devices = calloc(p->nnamed, sizeof *c->devices);
    if (!c->devices) {
        p->nomem = true;
        return;
    }
    c->ndevices = p->nnamed;
    for (size_t i = 0; i < p->nnamed; i++) {
        do_device(p, &p->named[i], &c->devices[i]);
        c->devices[i].first_tag_id = c->ntags;
        c->ntags += (uint32_t)c->devices[i].tagmap.count;
    }
    cross_checks(p, c);
}

static const struct sl_conf_spec spec = { sections, SEC__COUNT, finish, sizeof(struct sl_txconf),
                                          offsetof(struct sl_txconf, file) };

SL_CONF_ENTRY_POINTS(struct sl_txconf, sl_txconf_parse, sl_txconf_load, spec)

void sl_txconf_free(struct sl_txconf *c)
{
    for (size_t i = 0; i < c->ndevices; i++)
        sl_tagmap_free(&c->devices[i].tagmap);
    free(c->devices);
    c->devices = NULL;
    c->ndevices = 0;
    c->ntags = 0;
}

void sl_txconf_schema_fp(uint8_t out[SL_FP_BYTES], const struct sl_txconf *c)
{
    const struct sl_tagmap *maps[SL_TXCONF_MAX_DEVICES];
    uint8_t units[SL_TXCONF_MAX_DEVICES];
    size_t n = c->ndevices < SL_TXCONF_MAX_DEVICES ? c->ndevices : SL_TXCONF_MAX_DEVICES;
    for (size_t i = 0; i < n; i++) {
        maps[i] = &c->devices[i].tagmap;
        units[i] = c->devices[i].mirror_unit;
    }
    sl_tagmap_fingerprint(out, maps, units, n);
}

static void hash_u32(crypto_generichash_state *st, uint32_t v)
{
    uint8_t b[4];
    sl_be32_put(b, v);
    crypto_generichash_update(st, b, sizeof b);
}

static void hash_str(crypto_generichash_state *st, const char *s)
{
    size_t n = strlen(s);
    hash_u32(st, (uint32_t)n);
    crypto_generichash_update(st, (const unsigned char *)s, n);
}

void sl_txconf_config_fp(uint8_t out[SL_FP_BYTES], const struct sl_txconf *c)
{
    crypto_generichash_state st;
    uint8_t schema[SL_FP_BYTES];
    crypto_generichash_init(&st, NULL, 0, SL_FP_BYTES);
    hash_str(&st, "sluice txconf v1");
    hash_u32(&st, c->link.transport);
    hash_u32(&st, c->link.rate_kbps);
    hash_u32(&st, c->link.mtu);
    hash_u32(&st, c->fec.k);
    hash_u32(&st, c->fec.m);
    hash_u32(&st, c->fec.interleave);
    hash_u32(&st, c->snapshot.keyframe_ms);
    hash_u32(&st, c->snapshot.beacon_ms);
    hash_u32(&st, c->snapshot.max_delay_ms);
    hash_u32(&st, (uint32_t)c->ndevices);
    for (size_t i = 0; i < c->ndevices; i++) {
        const struct sl_txconf_device *d = &c->devices[i];
        hash_str(&st, d->name);
        hash_u32(&st, d->protocol);
        hash_str(&st, d->address);
        hash_u32(&st, d->unit);
        hash_u32(&st, d->mirror_unit);
        hash_u32(&st, d->poll_ms);
        hash_u32(&st, d->timeout_ms);
        hash_u32(&st, d->max_gap);
        hash_u32(&st, d->baud);
        hash_u32(&st, (uint32_t)d->parity);
        hash_u32(&st, d->data_bits);
        hash_u32(&st, d->stop_bits);
        if (d->protocol == SL_TXCONF_MODBUS_RTU) {   /* added with serial buses: TCP fingerprints unchanged */
            hash_u32(&st, d->rs485);
            hash_u32(&st, d->rts);
            hash_u32(&st, d->rts_delay_us);
        }
        if (d->protocol == SL_TXCONF_GENERATOR)
            hash_u32(&st, d->rate);
    }
    sl_txconf_schema_fp(schema, c);
    crypto_generichash_update(&st, schema, sizeof schema);
    crypto_generichash_final(&st, out, SL_FP_BYTES);
}

sl_err sl_txconf_link(const struct sl_txconf *c, struct sl_hw_config *hc)
{
    sl_hw_config_init(hc);
    hc->dir = SL_HW_TX;
    hc->datagram_bytes = SL_FRAME_OVERHEAD + c->link.symbol_bytes;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    bool have_dest = c->link.destination[0] != '\0';
    if (have_dest && sl_hw_addr_parse(&ss, &sl, c->link.destination, SL_DEFAULT_PORT) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s: [link] destination %s: cannot resolve", c->file, c->link.destination);
        return SL_ERR_CONFIG;
    }
    switch (c->link.transport) {
    case SL_TXCONF_UDP:
        hc->transport = SL_HW_UDP;
        hc->addr = ss;
        hc->addr_len = sl;
        hc->gso = c->link.gso;
        break;
    case SL_TXCONF_RAW:
        hc->transport = SL_HW_RAW;
        snprintf(hc->interface, sizeof hc->interface, "%s", c->link.interface);
        memcpy(hc->frame.dst_mac, c->link.destination_mac, sizeof hc->frame.dst_mac);
        break;
    default:
        hc->transport = SL_HW_PCAPFILE;
        hc->file = c->link.file;
        break;
    }
    /* raw and pcapfile write their own IPv4/UDP headers: use the
     * destination when one is given (IPv4 only). */
    if (have_dest && hc->transport != SL_HW_UDP && ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        hc->frame.dst_ip = ntohl(in->sin_addr.s_addr);
        hc->frame.dst_port = ntohs(in->sin_port);
    }
    return SL_OK;
}
