#include "sl_rxconf.h"
#include "sl_conf.h"
#include "sl_file.h"
#include "sl_histdb.h"
#include "sl_keyfile.h"
#include "sl_mqttconn.h"
#include "sl_sandbox.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The INI core (reading, sections, typed getters, HOST:PORT) is sl_conf
 * (proto/rt/sl_conf.h); this file holds RX's sections and keys, their
 * defaults and bounds, and the checks only RX makes (trusted keys, secret
 * files, services kept off the diode address). */

enum sec { SEC_LINK, SEC_FEC, SEC_KEYS, SEC_MIRROR, SEC_MODBUS, SEC_HTTP, SEC_MQTT, SEC_FILES,
           SEC_RX, SEC_SYSLOG, SEC_SPARKPLUG, SEC_HISTORY, SEC__COUNT };

enum { K_TRANSPORT, K_LISTEN, K_INTERFACE, K_PORT, K_FILE, K_FOLLOW, K_MTU, K_ALLOW_DIODE, K_COALESCE };
enum { K_MAX_K, K_MAX_M, K_ENTRIES, K_MAX_AGE_MS };
enum { K_TRUSTED, K_STATE_DIR };
enum { K_STALE_MS, K_DATABASE, K_DB_MAX_BYTES, K_MAX_TAGS, K_CHECKPOINT_MS, K_FUTURE_TOL_MS };
enum { K_MB_LISTEN, K_MAX_CONNS, K_IDLE_MS, K_MB_PER_PEER, K_MB_REQ_MS, K_MB_RATE };
enum { K_HTTP_LISTEN, K_TOKEN_FILE, K_HTTP_CONNS, K_HTTP_PER_PEER, K_HTTP_TIMEOUT_S, K_HTTP_REQ_MS,
       K_HTTP_STREAMS, K_HTTP_STREAMS_PER_PEER, K_HTTP_HOSTS };
enum { K_BROKER, K_PREFIX, K_TLS_CA, K_TLS_CERT, K_TLS_KEY, K_USERNAME, K_PASSWORD_FILE, K_CLIENT_ID,
       K_KEEPALIVE };
enum { K_DIRECTORY, K_FILES_MAX_BYTES, K_FILES_MAX_TOTAL, K_FILES_MAX_VERSIONS, K_FILES_VERIFY_READBACK };
enum { K_USER, K_ALLOW_ROOT };
enum { K_SYSLOG_FILE, K_FORWARD, K_QUEUE_BYTES };
enum { K_GROUP_ID, K_EDGE_NODE_ID, K_PRIMARY_HOST_ID, K_DDATA_MAX };
enum { K_HIST_DATABASE, K_HIST_URL, K_HIST_RETENTION, K_HIST_PASSWORD_FILE };

static const char *const link_keys[] = { "transport", "listen", "interface", "port", "file", "follow",
                                         "mtu", "allow_services_on_diode", "coalesce_us", NULL };
static const char *const fec_keys[] = { "max_k", "max_m", "entries", "max_age_ms", NULL };
static const char *const keys_keys[] = { "trusted", "state_dir", NULL };
static const char *const mirror_keys[] = { "stale_ms", "database", "max_bytes", "max_tags",
                                           "checkpoint_ms", "future_tolerance_ms", NULL };
static const char *const modbus_keys[] = { "listen", "max_conns", "idle_ms", "max_conns_per_peer",
                                           "request_timeout_ms", "max_requests_per_s", NULL };
static const char *const http_keys[] = { "listen", "token_file", "max_conns", "max_conns_per_peer",
                                         "timeout_s", "request_timeout_ms", "max_streams",
                                         "max_streams_per_peer", "allowed_hosts", NULL };
static const char *const mqtt_keys[] = { "broker", "prefix", "tls_ca", "tls_cert", "tls_key", "username",
                                         "password_file", "client_id", "keepalive", NULL };
static const char *const files_keys[] = { "directory", "max_bytes", "max_total_bytes", "max_versions",
                                          "verify_readback", NULL };
static const char *const rx_keys[] = { "user", "allow_root", NULL };
static const char *const syslog_keys[] = { "file", "forward", "queue_bytes", NULL };
static const char *const sparkplug_keys[] = { "group_id", "edge_node_id", "primary_host_id",
                                              "ddata_max_metrics", NULL };
static const char *const history_keys[] = { "database", "url", "retention_days", "password_file", NULL };

static const struct sl_conf_section sections[SEC__COUNT] = {
    [SEC_LINK] = { "link", link_keys, 0 },       [SEC_FEC] = { "fec", fec_keys, 0 },
    [SEC_KEYS] = { "keys", keys_keys, 0 },       [SEC_MIRROR] = { "mirror", mirror_keys, 0 },
    [SEC_MODBUS] = { "modbus", modbus_keys, 0 }, [SEC_HTTP] = { "http", http_keys, 0 },
    [SEC_MQTT] = { "mqtt", mqtt_keys, 0 },       [SEC_FILES] = { "files", files_keys, 0 },
    [SEC_RX] = { "rx", rx_keys, 0 },
    [SEC_SYSLOG] = { "syslog", syslog_keys, 0 },
    [SEC_SPARKPLUG] = { "sparkplug", sparkplug_keys, 0 },
    [SEC_HISTORY] = { "history", history_keys, 0 },
};

/* The plain numeric keys: key, bounds, default, field. */
#define RX_U32(KEY, MIN, MAX, DEF, FIELD) SL_CONF_U32(KEY, MIN, MAX, DEF, struct sl_rxconf, FIELD)
static const struct sl_conf_u32_field fec_nums[] = {
    RX_U32(K_ENTRIES, 1, 4096, SL_RXCONF_DEFAULT_ENTRIES, fec.entries),
    RX_U32(K_MAX_AGE_MS, 10, 600000, SL_RXCONF_DEFAULT_MAX_AGE_MS, fec.max_age_ms),
};
static const struct sl_conf_u32_field mirror_nums[] = {
    RX_U32(K_STALE_MS, 10, 3600000, SL_RXCONF_DEFAULT_STALE_MS, mirror.stale_ms),
    RX_U32(K_FUTURE_TOL_MS, 100, 86400000, SL_RXCONF_DEFAULT_FUTURE_TOL_MS, mirror.future_tolerance_ms),
    RX_U32(K_MAX_TAGS, 1, 1u << 30, SL_RXCONF_DEFAULT_MAX_TAGS, mirror.max_tags),
    RX_U32(K_CHECKPOINT_MS, 10, 3600000, SL_RXCONF_DEFAULT_CHECKPOINT_MS, mirror.checkpoint_ms),
};
static const struct sl_conf_u32_field modbus_nums[] = {
    RX_U32(K_MAX_CONNS, 1, 4096, SL_RXCONF_DEFAULT_MB_CONNS, modbus.max_conns),
    RX_U32(K_IDLE_MS, 100, 86400000, SL_RXCONF_DEFAULT_MB_IDLE_MS, modbus.idle_ms),
    RX_U32(K_MB_REQ_MS, 100, 3600000, SL_RXCONF_DEFAULT_MB_REQ_MS, modbus.request_timeout_ms),
    RX_U32(K_MB_RATE, 0, 1000000, SL_RXCONF_DEFAULT_MB_RATE, modbus.max_requests_per_s),
};
static const struct sl_conf_u32_field http_nums[] = {
    RX_U32(K_HTTP_CONNS, 1, 4096, SL_RXCONF_DEFAULT_HTTP_CONNS, http.max_conns),
    RX_U32(K_HTTP_TIMEOUT_S, 1, 86400, SL_RXCONF_DEFAULT_HTTP_TIMEOUT_S, http.timeout_s),
    RX_U32(K_HTTP_REQ_MS, 100, 3600000, SL_RXCONF_DEFAULT_HTTP_REQ_MS, http.request_timeout_ms),
};

/* Records "file:line: warning: message" in c->warn (see sl_rxconf.h). */
static void warn(struct sl_conf *p, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(struct sl_conf *p, unsigned line, const char *fmt, ...)
{
    struct sl_rxconf *c = p->out;
    if (c->warn.count++ >= SL_RXCONF_WARN_MAX)
        return;
    char *m = c->warn.msg[c->warn.count - 1];
    int n = line ? snprintf(m, SL_DIAG_MSG_MAX, "%s:%u: warning: ", p->file, line)
                 : snprintf(m, SL_DIAG_MSG_MAX, "%s: warning: ", p->file);
    if (n < 0 || (size_t)n >= SL_DIAG_MSG_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m + n, SL_DIAG_MSG_MAX - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A listen address of [link] (udp), [modbus] or [http], by the one grammar
 * (sl_conf.h): the services need an explicit port and may use port 0 (a
 * free one is picked: tests) or "*"; the link may leave the port out
 * (default 7400) but never uses 0. The text is kept as written for the
 * bind, which parses it with the same grammar. */
static bool listen_addr(struct sl_conf *p, int kind, int k, char *out, struct sl_hostport *hp,
                        bool service)
{
    const struct sl_conf_sec *s = &p->single[kind];
    const char *v = sl_conf_val(s, k);
    if (!v || !sl_conf_hostport(p, s, k, SL_DEFAULT_PORT,
                                service ? SL_HOSTPORT_LISTENER : SL_HOSTPORT_DEFAULT_PORT, NULL, hp))
        return false;
    snprintf(out, SL_RXCONF_STR_MAX, "%s", v);
    return true;
}

/* A TCP service section ([modbus], [http]): present turns it on, and its
 * listen address (key 0) is required. False when the section is absent. */
static bool service(struct sl_conf *p, int kind, bool *enabled, char *listen, struct sl_hostport *addr)
{
    if (!p->single[kind].header)
        return false;
    *enabled = true;
    if (sl_conf_require(p, &p->single[kind], 0, ""))
        listen_addr(p, kind, 0, listen, addr, true);
    return true;
}

/* Which [link] keys each transport needs or refuses. */
static const struct sl_conf_rule link_rules[] = {
    { SL_RXCONF_UDP, K_LISTEN, true, " for transport udp" },
    /* interface is optional with udp: the diode NIC, for link health. */
    { SL_RXCONF_UDP, K_PORT, false, "does not apply to transport udp (the port is in listen)" },
    { SL_RXCONF_UDP, K_FILE, false, "does not apply to transport udp" },
    { SL_RXCONF_UDP, K_FOLLOW, false, "applies only to transport pcapfile" },
    { SL_RXCONF_PCAP, K_INTERFACE, true, " for transport pcap" },
    { SL_RXCONF_PCAP, K_LISTEN, false, "applies only to transport udp" },
    { SL_RXCONF_PCAP, K_FILE, false, "does not apply to transport pcap" },
    { SL_RXCONF_PCAP, K_FOLLOW, false, "applies only to transport pcapfile" },
    { SL_RXCONF_PCAP, K_ALLOW_DIODE, false, "applies only to transport udp" },
    { SL_RXCONF_PCAPFILE, K_FILE, true, " for transport pcapfile" },
    { SL_RXCONF_PCAPFILE, K_COALESCE, false, "does not apply to transport pcapfile (a capture is read as fast as it goes)" },
    { SL_RXCONF_PCAPFILE, K_LISTEN, false, "applies only to transport udp" },
    { SL_RXCONF_PCAPFILE, K_INTERFACE, false, "does not apply to transport pcapfile" },
    { SL_RXCONF_PCAPFILE, K_ALLOW_DIODE, false, "applies only to transport udp" },
};

static const struct sl_conf_name transports[] = {
    { "udp", SL_RXCONF_UDP }, { "pcap", SL_RXCONF_PCAP }, { "pcapfile", SL_RXCONF_PCAPFILE }, { NULL, 0 }
};

static void do_link(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_LINK];
    int t = 0;
    c->link.listen_port = SL_DEFAULT_PORT;
    if (!s->header)
        sl_conf_error(p, 0, "missing section [link]");
    else if (sl_conf_require(p, s, K_TRANSPORT, ""))
        sl_conf_enum(p, s, K_TRANSPORT, transports, "udp|pcap|pcapfile", &t);
    c->link.transport = (uint8_t)t;
    sl_conf_rules(p, s, link_rules, sizeof link_rules / sizeof link_rules[0], t);
    if (listen_addr(p, SEC_LINK, K_LISTEN, c->link.listen, &c->link.listen_addr, false)) {
        snprintf(c->link.listen_host, sizeof c->link.listen_host, "%s", c->link.listen_addr.host);
        c->link.listen_port = c->link.listen_addr.port;
    }
    sl_conf_ifname(p, s, K_INTERFACE, c->link.interface);
    /* pcapfile replays any port unless told; a live capture needs a filter. */
    uint32_t port;
    if (c->link.transport == SL_RXCONF_PCAPFILE)
        sl_conf_u32(p, s, K_PORT, 0, 65535, 0, &port);
    else
        sl_conf_u32(p, s, K_PORT, 1, 65535, SL_DEFAULT_PORT, &port);
    c->link.port = (uint16_t)port;
    sl_conf_path(p, s, K_FILE, c->link.file);
    sl_conf_bool(p, s, K_FOLLOW, SL_CONF_ON_OFF, &c->link.follow);
    sl_conf_bool(p, s, K_ALLOW_DIODE, SL_CONF_ON_OFF, &c->link.allow_services_on_diode);
    sl_conf_u32(p, s, K_MTU, SL_RXCONF_MTU_MIN, SL_RXCONF_MTU_MAX, SL_RXCONF_DEFAULT_MTU, &c->link.mtu);
    c->link.symbol_max = SL_SYMBOL_FOR_MTU(c->link.mtu);
    c->link.datagram_max = c->link.mtu - SL_IPV4_UDP_BYTES;
    sl_conf_u32(p, s, K_COALESCE, 0, SL_RXCONF_COALESCE_US_MAX, SL_RXCONF_DEFAULT_COALESCE_US, &c->link.coalesce_us);
    if (c->link.transport == SL_RXCONF_PCAPFILE)
        c->link.coalesce_us = 0;
}

static void do_fec(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_FEC];
    bool ok = sl_conf_u32(p, s, K_MAX_K, 1, SL_FEC_MAX_SYMBOLS - 1, SL_RXCONF_DEFAULT_MAX_K, &c->fec.max_k);
    ok &= sl_conf_u32(p, s, K_MAX_M, 1, SL_FEC_MAX_SYMBOLS - 1, SL_RXCONF_DEFAULT_MAX_M, &c->fec.max_m);
    sl_conf_u32_fields(p, s, fec_nums, sizeof fec_nums / sizeof fec_nums[0], c);
    if (ok && c->fec.max_k + c->fec.max_m > SL_FEC_MAX_SYMBOLS)
        sl_conf_error(p, s->line[K_MAX_M] ? s->line[K_MAX_M] : s->line[K_MAX_K],
                      "max_k + max_m = %u exceeds %u (GF(2^8) Reed-Solomon)",
                      c->fec.max_k + c->fec.max_m, SL_FEC_MAX_SYMBOLS);
}

/* The user RX runs as once started: [rx] user when set (looked up here,
 * since [rx] is interpreted after [keys]), else whoever runs this. Files
 * that decide trust must belong to root or to this user. */
static uid_t daemon_uid(const struct sl_conf *p)
{
    const char *u = sl_conf_val(&p->single[SEC_RX], K_USER);
    const struct passwd *pw = u && *u ? getpwnam(u) : NULL;
    return pw ? pw->pw_uid : geteuid();
}

/* One trusted key file: loaded now, so --check finds a missing, unreadable,
 * malformed or duplicate key before the daemon would. */
static void load_trusted(struct sl_conf *p, struct sl_rxconf *c, const char *path, unsigned line)
{
    struct sl_key_public k;
    char why[160];
    sl_err e = sl_keyfile_load_trusted(&k, path, daemon_uid(p), why, sizeof why);
    if (e == SL_ERR_NOT_FOUND || e == SL_ERR_IO) {
        sl_conf_error(p, line, "trusted key '%s': %s", path,
                      e == SL_ERR_NOT_FOUND ? "no such file" : strerror(errno));
        return;
    }
    if (e == SL_ERR_PERM || (e == SL_ERR_CONFIG && why[0])) {
        /* Whoever can rewrite a trusted key can make RX accept their frames. */
        sl_conf_error(p, line, "trusted key '%s': refused: %s", path, why);
        return;
    }
    if (e != SL_OK) {
        sl_conf_error(p, line, "trusted key '%s': not a public key file (64 hex digits): %s", path,
                      sl_strerror(e));
        return;
    }
    e = sl_key_set_add(&c->keys.keys, &k);
    if (e == SL_ERR_DUPLICATE) {
        char id[SL_KEY_ID_HEX_BYTES];
        sl_key_id_format(id, k.id);
        sl_conf_error(p, line, "trusted key '%s': key id %s listed twice", path, id);
    } else if (e != SL_OK) {
        sl_conf_error(p, line, "trusted key '%s': %s", path, sl_strerror(e));
    }
}

/* A directory named by key k (resolved in path): a symbolic link is
 * refused (name the directory itself); with must_exist, so is a missing
 * one; anything else in its place always is. Host checks only. */
static void check_dir(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *path,
                      bool must_exist)
{
    struct stat st;
    const char *key = sl_conf_key(p, s, k);
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        sl_conf_error(p, s->line[k], "%s '%s' is a symbolic link: refusing to follow it (name the "
                      "directory itself)", key, path);
    } else if (stat(path, &st) != 0) {
        if (must_exist)
            sl_conf_error(p, s->line[k], "%s '%s': %s", key, path, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        sl_conf_error(p, s->line[k], "%s '%s' is not a directory", key, path);
    }
}

static void do_keys(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_KEYS];
    bool host = sl_conf_host_checks(p);
    sl_key_set_init(&c->keys.keys);
    if (!s->header) {
        sl_conf_error(p, 0, "missing section [keys]");
        return;
    }
    if (sl_conf_require(p, s, K_TRUSTED, "")) {
        const char *v = sl_conf_val(s, K_TRUSTED);
        unsigned line = s->line[K_TRUSTED];
        const char *q = v, *a, *b;
        while (sl_conf_list_next(&q, &a, &b)) {
            if (a == b) {
                sl_conf_error(p, line, "empty entry in trusted '%s'", v);
            } else if (c->keys.ntrusted == SL_KEY_SET_MAX) {
                sl_conf_error(p, line, "more than %u trusted keys", SL_KEY_SET_MAX);
                break;
            } else {
                char *dst = c->keys.trusted[c->keys.ntrusted];
                if (sl_conf_resolve(p, dst, a, (size_t)(b - a), line)) {
                    c->keys.trusted_line[c->keys.ntrusted++] = line;
                    if (host)
                        load_trusted(p, c, dst, line);
                }
            }
        }
    }
    /* A missing state_dir is created at start; something else in its place is not. */
    if (sl_conf_require(p, s, K_STATE_DIR, " (replay state survives restarts)") &&
        sl_conf_path(p, s, K_STATE_DIR, c->keys.state_dir) && host)
        check_dir(p, s, K_STATE_DIR, c->keys.state_dir, false);
}

static void do_mirror(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_MIRROR];
    sl_conf_u32_fields(p, s, mirror_nums, sizeof mirror_nums / sizeof mirror_nums[0], c);
    sl_conf_u64(p, s, K_DB_MAX_BYTES, 0, UINT64_MAX / 2, 0, &c->mirror.max_bytes);
    if (sl_conf_val(s, K_DATABASE)) {
        /* Root opens it before dropping privileges (docs/operations.md). */
        if (sl_conf_path(p, s, K_DATABASE, c->mirror.database) && sl_conf_host_checks(p) &&
            sl_file_check_nolink(c->mirror.database) == SL_ERR_PERM)
            sl_conf_error(p, s->line[K_DATABASE],
                          "database '%s' is a symbolic link or has other hard links: refusing to follow it",
                          c->mirror.database);
    } else if (sl_conf_val(s, K_DB_MAX_BYTES)) {
        sl_conf_error(p, s->line[K_DB_MAX_BYTES], "key 'max_bytes' needs 'database'");
    }
}

/* A per-peer (or partial) cap read as key k of s, bounded by the total
 * `limit` (named by limit_key): an explicit value above it is an error, a
 * default one follows the total down. below: the cap must stay under the
 * total (streams hold connections), else at most equal. */
static void cap_under(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint32_t def,
                      uint32_t *out, uint32_t limit, const char *limit_key, bool below)
{
    if (!sl_conf_u32(p, s, k, 1, 4096, def, out) || (below ? *out < limit : *out <= limit))
        return;
    if (s->line[k] && below)
        sl_conf_error(p, s->line[k], "%s %u must be below %s %u (streams hold connections)",
                      sl_conf_key(p, s, k), *out, limit_key, limit);
    else if (s->line[k])
        sl_conf_error(p, s->line[k], "%s %u exceeds %s %u", sl_conf_key(p, s, k), *out, limit_key,
                      limit);
    *out = below ? (limit > 1 ? limit - 1 : 1) : limit;
}

static void do_modbus(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_MODBUS];
    if (!service(p, SEC_MODBUS, &c->modbus.enabled, c->modbus.listen, &c->modbus.addr))
        return;
    sl_conf_u32_fields(p, s, modbus_nums, sizeof modbus_nums / sizeof modbus_nums[0], c);
    cap_under(p, s, K_MB_PER_PEER, SL_RXCONF_DEFAULT_MB_PER_PEER, &c->modbus.max_conns_per_peer,
              c->modbus.max_conns, "max_conns", false);
}

/* A secret file (the HTTP token): readable, and owned and protected as
 * sl_file_open_trusted demands (not world-readable, not group/world-writable,
 * owned by root or the daemon's user). */
static void secret_file(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *path)
{
    char why[160];
    int fd;
    sl_err e = sl_file_open_trusted(&fd, path, daemon_uid(p), SL_FILE_NO_OTHER_READ, why, sizeof why);
    if (e == SL_ERR_PERM || e == SL_ERR_CONFIG)
        sl_conf_error(p, s->line[k], "%s '%s': refused: %s", sl_conf_key(p, s, k), path, why);
    else if (e != SL_OK)
        sl_conf_error(p, s->line[k], "%s '%s': %s", sl_conf_key(p, s, k), path,
                      e == SL_ERR_NOT_FOUND ? strerror(ENOENT) : strerror(errno));
    else
        close(fd);
}

/* allowed_hosts: host names only (letters, digits, '-', '.'; 1..253 bytes
 * each), comma-separated: IP literals and localhost are always allowed. */
static bool host_list(const char *v)
{
    const char *q = v, *a, *b;
    bool ok = *v != '\0';
    while (ok && sl_conf_list_next(&q, &a, &b)) {
        ok = b > a && b - a <= 253;
        for (const char *x = a; ok && x < b; x++)
            ok = (*x >= 'a' && *x <= 'z') || (*x >= 'A' && *x <= 'Z') || (*x >= '0' && *x <= '9') ||
                 *x == '-' || *x == '.';
    }
    return ok;
}

static void do_http(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_HTTP];
    if (!service(p, SEC_HTTP, &c->http.enabled, c->http.listen, &c->http.addr))
        return;
    if (sl_conf_path(p, s, K_TOKEN_FILE, c->http.token_file) && sl_conf_host_checks(p))
        secret_file(p, s, K_TOKEN_FILE, c->http.token_file);
    sl_conf_u32_fields(p, s, http_nums, sizeof http_nums / sizeof http_nums[0], c);
    cap_under(p, s, K_HTTP_PER_PEER, SL_RXCONF_DEFAULT_HTTP_PER_PEER, &c->http.max_conns_per_peer,
              c->http.max_conns, "max_conns", false);
    cap_under(p, s, K_HTTP_STREAMS, SL_RXCONF_DEFAULT_HTTP_STREAMS, &c->http.max_streams,
              c->http.max_conns, "max_conns", true);
    cap_under(p, s, K_HTTP_STREAMS_PER_PEER, SL_RXCONF_DEFAULT_HTTP_STREAMS_PER_PEER,
              &c->http.max_streams_per_peer, c->http.max_streams, "max_streams", false);
    const char *v = sl_conf_val(s, K_HTTP_HOSTS);
    if (v && host_list(v))
        snprintf(c->http.allowed_hosts, sizeof c->http.allowed_hosts, "%s", v);
    else if (v)
        sl_conf_error(p, s->line[K_HTTP_HOSTS],
                      "bad allowed_hosts '%s' (comma-separated host names: letters, digits, '-', '.')", v);
}

/* A TLS file libmosquitto reads at each connect, after privileges are
 * dropped: a readable regular file now (whether the account RX will run as
 * can read it is mqtt_files_for_account's question). Links are fine
 * (/etc/ssl/certs). A private key others may read: a warning. */
static void tls_file(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *path)
{
    int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        sl_conf_error(p, s->line[k], "%s '%s': %s", sl_conf_key(p, s, k), path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    if (!S_ISREG(st.st_mode)) {
        sl_conf_error(p, s->line[k], "%s '%s': not a regular file", sl_conf_key(p, s, k), path);
        return;
    }
    if (k == K_TLS_KEY && (st.st_mode & S_IROTH))
        warn(p, s->line[k], "tls_key '%s' is readable by others (mode %04o; chmod 640 or 600)", path,
             (unsigned)(st.st_mode & 07777));
}

/* [mqtt]'s connection settings: the checks sl_mqttconn makes at start
 * (same function), plus the files, now. */
static void mqtt_conn(struct sl_conf *p, const struct sl_conf_sec *s, struct sl_rxconf *c)
{
    static const int path_keys[] = { K_TLS_CA, K_TLS_CERT, K_TLS_KEY, K_PASSWORD_FILE };
    char *paths[] = { c->mqtt.tls_ca, c->mqtt.tls_cert, c->mqtt.tls_key, c->mqtt.password_file };
    bool ok[4];
    for (int i = 0; i < 4; i++)
        ok[i] = sl_conf_path(p, s, path_keys[i], paths[i]);
    const char *v;
    if ((v = sl_conf_val(s, K_CLIENT_ID)))
        snprintf(c->mqtt.client_id, sizeof c->mqtt.client_id, "%s", v);
    if ((v = sl_conf_val(s, K_USERNAME)))
        snprintf(c->mqtt.username, sizeof c->mqtt.username, "%s", v);
    sl_conf_u32(p, s, K_KEEPALIVE, SL_MQTTCONN_KEEPALIVE_MIN_S, SL_MQTTCONN_KEEPALIVE_MAX_S,
                SL_MQTTCONN_DEFAULT_KEEPALIVE_S, &c->mqtt.keepalive_s);
    struct sl_mqttconn_config mc = { .client_id = sl_conf_val(s, K_CLIENT_ID),
                                     .tls_ca = c->mqtt.tls_ca, .tls_cert = c->mqtt.tls_cert,
                                     .tls_key = c->mqtt.tls_key, .username = sl_conf_val(s, K_USERNAME),
                                     .password_file = c->mqtt.password_file };
    char why[SL_DIAG_MSG_MAX];
    const char *key = NULL;
    if (sl_mqttconn_check(&mc, why, sizeof why, &key) != SL_OK) {
        int k = K_BROKER;
        for (int i = K_TLS_CA; i <= K_KEEPALIVE; i++)
            if (key && strcmp(key, sl_conf_key(p, s, i)) == 0)
                k = i;
        sl_conf_error(p, sl_conf_line(s, k), "%s", why);
        c->mqtt.client_id[0] = c->mqtt.username[0] = '\0';
        return;
    }
    if (c->mqtt.password_file[0] && !c->mqtt.tls_ca[0])
        warn(p, s->line[K_PASSWORD_FILE], "password_file without tls_ca: the password crosses the network "
             "in clear text");
    if (!sl_conf_host_checks(p))
        return;
    for (int i = 0; i < 3; i++)
        if (ok[i])
            tls_file(p, s, path_keys[i], paths[i]);
}

static void do_mqtt(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_MQTT];
    const char *v;
    snprintf(c->mqtt.prefix, sizeof c->mqtt.prefix, "%s", SL_RXCONF_DEFAULT_PREFIX);
    if (!s->header)
        return;
    c->mqtt.enabled = true;
    if (sl_conf_require(p, s, K_BROKER, "") &&
        sl_conf_hostport(p, s, K_BROKER, SL_RXCONF_DEFAULT_MQTT_PORT, SL_HOSTPORT_DEFAULT_PORT, NULL,
                         &c->mqtt.addr)) {
        snprintf(c->mqtt.broker, sizeof c->mqtt.broker, "%s", sl_conf_val(s, K_BROKER));
        snprintf(c->mqtt.host, sizeof c->mqtt.host, "%s", c->mqtt.addr.host);
        c->mqtt.port = c->mqtt.addr.port;
    }
    if ((v = sl_conf_val(s, K_PREFIX))) {
        /* Topic levels: no wildcards, no empty level at either end, printable. */
        size_t n = strlen(v);
        bool ok = n > 0 && n < sizeof c->mqtt.prefix && v[0] != '/' && v[n - 1] != '/';
        for (size_t i = 0; ok && i < n; i++)
            if ((unsigned char)v[i] < 0x21 || v[i] == 0x7F || v[i] == '+' || v[i] == '#')
                ok = false;
        if (ok)
            snprintf(c->mqtt.prefix, sizeof c->mqtt.prefix, "%s", v);
        else
            sl_conf_error(p, s->line[K_PREFIX],
                          "bad prefix '%s' (1..%u printable bytes, no '+', '#' or spaces, "
                          "no leading or trailing '/')", v, SL_RXCONF_PREFIX_MAX - 1);
    }
    mqtt_conn(p, s, c);
}

/* [sparkplug]: the edge node's ids (topic levels of spBv1.0/...: no
 * wildcards, no '/'); it publishes through [mqtt]'s broker. */
static void sparkplug_id(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out, bool required)
{
    const char *v = sl_conf_val(s, k);
    if (!v) {
        if (required)
            (void)sl_conf_require(p, s, k, "");
        return;
    }
    if (sl_sparkplug_id_ok(v))
        snprintf(out, SL_SPARKPLUG_ID_MAX + 1, "%s", v);
    else
        sl_conf_error(p, s->line[k], "bad %s '%s' (1..%u printable bytes, no '+', '#', '/' or spaces)",
                      sections[SEC_SPARKPLUG].keys[k], v, SL_SPARKPLUG_ID_MAX);
}

static void do_sparkplug(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_SPARKPLUG];
    c->sparkplug.ddata_max_metrics = SL_SPARKPLUG_DEFAULT_DDATA_MAX;
    if (!s->header)
        return;
    c->sparkplug.enabled = true;
    if (!p->single[SEC_MQTT].header)
        sl_conf_error(p, s->header, "[sparkplug] needs [mqtt]: it publishes to that broker");
    sparkplug_id(p, s, K_GROUP_ID, c->sparkplug.group_id, true);
    sparkplug_id(p, s, K_EDGE_NODE_ID, c->sparkplug.edge_node_id, true);
    sparkplug_id(p, s, K_PRIMARY_HOST_ID, c->sparkplug.primary_host_id, false);
    (void)sl_conf_u32(p, s, K_DDATA_MAX, 1, SL_SPARKPLUG_DDATA_MAX_MAX, SL_SPARKPLUG_DEFAULT_DDATA_MAX,
                      &c->sparkplug.ddata_max_metrics);
}

/* [mqtt]'s files against the account RX will run as once privileges are
 * dropped (sl_sandbox_plan: [rx] user, else the default account, else root
 * without capabilities), so after [rx]: the password file, read at start,
 * must belong to root or that account (the check sl_mqttconn makes at
 * start); a TLS file it cannot read is a warning, since RX would start and
 * then fail every MQTT connection (SL-RX-MQTT-TLS). */
/* A password file as sluice-rx reads it at start (sl_mqttconn_password_load:
 * owned by root or owner, not readable by others, one line); the secret is
 * wiped at once. */
static void password_file_check(struct sl_conf *p, unsigned line, const char *path, uid_t owner)
{
    char *secret = NULL;
    char why[SL_DIAG_MSG_MAX];
    sl_err e = sl_mqttconn_password_load(&secret, path, owner, why, sizeof why);
    sl_mqttconn_password_free(secret);
    if (e != SL_OK)
        sl_conf_error(p, line, "password_file '%s': %s%s", path,
                      e == SL_ERR_PERM || e == SL_ERR_CONFIG ? "refused: " : "", why);
}

static void mqtt_files_for_account(struct sl_conf *p, const struct sl_rxconf *c)
{
    struct sl_sandbox_plan plan;
    if (!c->mqtt.enabled || !sl_conf_host_checks(p))
        return;
    bool planned = sl_sandbox_plan(&plan, "rx", c->rx.user, c->rx.allow_root) == SL_OK;
    const struct sl_conf_sec *s = &p->single[SEC_MQTT];
    if (c->mqtt.password_file[0])
        password_file_check(p, s->line[K_PASSWORD_FILE], c->mqtt.password_file, planned ? plan.uid : geteuid());
    if (!planned || !c->mqtt.tls_ca[0])
        return;
    const struct passwd *pw = getpwuid(plan.uid);
    const char *name = pw ? pw->pw_name : "";
    static const int keys[] = { K_TLS_CA, K_TLS_CERT, K_TLS_KEY };
    const char *paths[] = { c->mqtt.tls_ca, c->mqtt.tls_cert, c->mqtt.tls_key };
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (!paths[i][0] || stat(paths[i], &st) != 0 || sl_sandbox_user_can_read(&st, name, plan.uid, plan.gid))
            continue;
        warn(p, s->line[keys[i]], "%s '%s' is not readable by %s (uid %u), the account sluice-rx runs as, "
             "which reads it at each connect: every MQTT connection would fail", sl_conf_key(p, s, keys[i]),
             paths[i], name[0] ? name : "the account", (unsigned)plan.uid);
    }
}

static void do_files(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_FILES];
    if (!s->header)
        return;
    c->files.enabled = true;
    if (sl_conf_require(p, s, K_DIRECTORY, "") && sl_conf_path(p, s, K_DIRECTORY, c->files.directory) &&
        sl_conf_host_checks(p))
        check_dir(p, s, K_DIRECTORY, c->files.directory, true);
    sl_conf_u64(p, s, K_FILES_MAX_BYTES, 0, UINT64_MAX / 2, 0, &c->files.max_bytes);
    sl_conf_u64(p, s, K_FILES_MAX_TOTAL, 0, UINT64_MAX / 2, SL_RXCONF_DEFAULT_FILES_TOTAL,
                &c->files.max_total_bytes);
    sl_conf_u32(p, s, K_FILES_MAX_VERSIONS, 1, SL_RXCONF_FILES_VERSIONS_MAX,
                SL_RXCONF_DEFAULT_FILES_VERSIONS, &c->files.max_versions);
    sl_conf_bool(p, s, K_FILES_VERIFY_READBACK, SL_CONF_YES_NO, &c->files.verify_readback);
    if (c->files.max_total_bytes && c->files.max_bytes > c->files.max_total_bytes)
        sl_conf_error(p, s->line[K_FILES_MAX_BYTES] ? s->line[K_FILES_MAX_BYTES] : s->line[K_FILES_MAX_TOTAL],
                      "max_bytes %llu exceeds max_total_bytes %llu: no such file could be kept",
                      (unsigned long long)c->files.max_bytes, (unsigned long long)c->files.max_total_bytes);
}

/* [syslog]: where the syslog channel goes (rx/sl_syslogout.h); file and/or
 * forward, at least one. */
static void do_syslog(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_SYSLOG];
    struct sl_syslogout_config *y = &c->syslog.out;
    sl_conf_u32(p, s, K_QUEUE_BYTES, 65536, 1u << 30, SL_SYSLOGOUT_QUEUE_DEFAULT, &y->queue_bytes);
    if (!s->header)
        return;
    c->syslog.enabled = true;
    sl_conf_path(p, s, K_SYSLOG_FILE, y->file);
    const char *f = sl_conf_val(s, K_FORWARD);
    char why[128];
    if (f && sl_syslogout_parse_forward(&y->proto, &y->forward, f, why, sizeof why) != SL_OK)
        sl_conf_error(p, s->line[K_FORWARD], "bad forward '%s' (udp://HOST:PORT or tcp://HOST:PORT): %s", f,
                      why);
    if (!sl_conf_val(s, K_SYSLOG_FILE) && !f)
        sl_conf_error(p, s->header, "[syslog]: neither file nor forward: the messages would go nowhere");
}

/* [syslog] file's directory against the account RX runs as (the sandbox
 * plan), as sluice-rx checks it at start: that account creates the file
 * and reopens it after logrotate's SIGHUP. */
static void syslog_dir_for_account(struct sl_conf *p, const struct sl_rxconf *c)
{
    struct sl_sandbox_plan plan;
    if (!c->syslog.enabled || !c->syslog.out.file[0] || !sl_conf_host_checks(p) ||
        sl_sandbox_plan(&plan, "rx", c->rx.user, c->rx.allow_root) != SL_OK)
        return;
    char dir[sizeof c->syslog.out.file];
    struct stat st;
    if (stat(sl_file_dir_of(dir, sizeof dir, c->syslog.out.file), &st) != 0)
        return;   /* sluice-rx says so at start */
    const struct passwd *pw = getpwuid(plan.uid);
    const char *name = pw ? pw->pw_name : "";
    if (!sl_sandbox_user_can_write_dir(&st, name, plan.uid, plan.gid))
        warn(p, p->single[SEC_SYSLOG].line[K_SYSLOG_FILE],
             "file '%s': directory %s is not writable by %s (uid %u), the account sluice-rx runs as, which "
             "creates the file and reopens it after a SIGHUP (logrotate): sluice-rx would refuse to start",
             c->syslog.out.file, dir, name[0] ? name : "the account", (unsigned)plan.uid);
}

/* [history]: exactly one of database (SQLite, opened after the privilege
 * drop by the RX user, like the mirror's) and url (PostgreSQL over TCP);
 * password_file only with url, read before the drop and owner-checked
 * like [mqtt]'s (history_password_for_account). */
static void do_history(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_HISTORY];
    sl_conf_u32(p, s, K_HIST_RETENTION, 1, 3650, SL_RXCONF_DEFAULT_HISTORY_DAYS, &c->history.retention_days);
    if (!s->header)
        return;
    c->history.enabled = true;
    const char *db = sl_conf_val(s, K_HIST_DATABASE), *url = sl_conf_val(s, K_HIST_URL);
    if (!db == !url) {
        sl_conf_error(p, db ? s->line[K_HIST_URL] : s->header,
                      "[history] needs exactly one of database = PATH (SQLite) and url = postgresql://...");
        return;
    }
    if (db && sl_conf_path(p, s, K_HIST_DATABASE, c->history.database) && sl_conf_host_checks(p) &&
        sl_file_check_nolink(c->history.database) == SL_ERR_PERM)
        sl_conf_error(p, s->line[K_HIST_DATABASE],
                      "database '%s' is a symbolic link or has other hard links: refusing to follow it",
                      c->history.database);
    if (db && c->mirror.database[0] && strcmp(c->mirror.database, c->history.database) == 0)
        sl_conf_error(p, s->line[K_HIST_DATABASE], "database '%s' is [mirror] database too: give history its "
                      "own file", c->history.database);
    if (url) {
        char why[SL_DIAG_MSG_MAX];
        if (strlen(url) >= sizeof c->history.url)
            sl_conf_error(p, s->line[K_HIST_URL], "url longer than %zu bytes", sizeof c->history.url - 1);
        else if (sl_histdb_pg_check_url(url, why, sizeof why) != SL_OK)
            sl_conf_error(p, s->line[K_HIST_URL], "bad url: %s", why);
        else
            snprintf(c->history.url, sizeof c->history.url, "%s", url);
    }
    if (sl_conf_val(s, K_HIST_PASSWORD_FILE)) {
        if (!url)
            sl_conf_error(p, s->line[K_HIST_PASSWORD_FILE], "key 'password_file' needs 'url'");
        else
            sl_conf_path(p, s, K_HIST_PASSWORD_FILE, c->history.password_file);
    }
}

/* [history] password_file as sluice-rx reads it at start, before the drop:
 * owned by root or the account RX runs as, not readable by others. */
static void history_password_for_account(struct sl_conf *p, const struct sl_rxconf *c)
{
    struct sl_sandbox_plan plan;
    if (!c->history.password_file[0] || !sl_conf_host_checks(p))
        return;
    bool planned = sl_sandbox_plan(&plan, "rx", c->rx.user, c->rx.allow_root) == SL_OK;
    password_file_check(p, p->single[SEC_HISTORY].line[K_HIST_PASSWORD_FILE], c->history.password_file,
                        planned ? plan.uid : geteuid());
}

static void do_rx(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_conf_sec *s = &p->single[SEC_RX];
    sl_conf_bool(p, s, K_ALLOW_ROOT, SL_CONF_YES_NO, &c->rx.allow_root);
    sl_conf_user(p, s, K_USER, c->rx.user, sizeof c->rx.user);
}

/* ---- no reply onto the fibre ------------------------------------------------
 * With transport udp the diode NIC has an IP address. A TCP service bound to
 * that address, or to a wildcard (which includes it), answers a SYN forged on
 * the fibre with a SYN-ACK or RST that leaves through the diode NIC: the one
 * thing RX must never do (docs/operations.md, "IT-side services"). So [modbus] and [http] must bind an
 * IT-side address unless the operator says otherwise with [link]
 * allow_services_on_diode = on (then a warning). Both sides are resolved
 * with the getaddrinfo call that binds them (the services: AI_PASSIVE,
 * SOCK_STREAM; the link: SOCK_DGRAM) and every resulting address is compared,
 * so "localhost", "0", "::ffff:0.0.0.0" and a name in /etc/hosts are judged
 * by what they bind, not by how they are spelt. A name that does not resolve
 * is an error (the bind would fail too). Without host checks (fuzzing,
 * syntax-only tools) nothing is looked up: numeric hosts are compared as
 * addresses and names as written. With host checks on and [link] interface
 * set, the interface's own addresses count as the diode's as well. */

struct ipaddr {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t b[16];
};

/* From a sockaddr; an IPv4-mapped IPv6 address becomes IPv4. */
static bool ipaddr_from(struct ipaddr *out, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        out->family = AF_INET;
        memcpy(out->b, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            out->family = AF_INET;
            memcpy(out->b, a + 12, 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->b, a, 16);
        }
        return true;
    }
    return false;
}

static bool ipaddr_any(const struct ipaddr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->b, zero, a->family == AF_INET ? 4 : 16) == 0;
}

static bool ipaddr_eq(const struct ipaddr *a, const struct ipaddr *b)
{
    return a->family == b->family && memcmp(a->b, b->b, a->family == AF_INET ? 4 : 16) == 0;
}

/* Is a one of ifname's addresses on this host? (host checks only) */
static bool on_interface(const char *ifname, const struct ipaddr *a)
{
    struct ifaddrs *all = NULL;
    bool hit = false;
    if (getifaddrs(&all) != 0)
        return false;
    for (const struct ifaddrs *i = all; i && !hit; i = i->ifa_next) {
        struct ipaddr x;
        if (i->ifa_addr && i->ifa_name && strcmp(i->ifa_name, ifname) == 0 &&
            ipaddr_from(&x, i->ifa_addr))
            hit = ipaddr_eq(&x, a);
    }
    freeifaddrs(all);
    return hit;
}

/* Every address one host may bind: a name can mean several (localhost ->
 * 127.0.0.1 and ::1), and a service binds whichever comes first. */
#define ADDRS_MAX 16
struct addrset {
    size_t n;
    struct ipaddr a[ADDRS_MAX];
};

/* Resolves hp into *out with the call its bind makes
 * (sl_conf_hostport_resolve): a service is SOCK_STREAM and passive ("*"
 * meaning every address, as sl_mbserver/sl_http bind), the link SOCK_DGRAM
 * (as sl_hw_addr_parse binds). numeric_only: no /etc/hosts, no DNS. Returns
 * 0 or the getaddrinfo error (EAI_NONAME for a name under numeric_only).
 * May block on DNS for a name that is not in /etc/hosts: start-up only. */
static int resolve_all(struct addrset *out, const struct sl_hostport *hp, bool service, bool numeric_only)
{
    struct addrinfo *res = NULL;
    out->n = 0;
    int r = sl_conf_hostport_resolve(&res, hp, service ? SOCK_STREAM : SOCK_DGRAM,
                                     (service ? SL_HOSTPORT_PASSIVE : 0u) |
                                     (numeric_only ? SL_HOSTPORT_NUMERIC : 0u));
    if (r != 0)
        return r;
    for (const struct addrinfo *i = res; i && out->n < ADDRS_MAX; i = i->ai_next)
        if (ipaddr_from(&out->a[out->n], i->ai_addr))
            out->n++;
    freeaddrinfo(res);
    return out->n ? 0 : EAI_NONAME;
}

/* Why service address a would reach the diode (why "" when it would not).
 * Returns the resolver's result for a (0 or an EAI_* code). */
static int diode_why(char *why, size_t cap, const struct sl_conf *p, const struct sl_rxconf *c,
                     const struct sl_hostport *a, const struct addrset *d, bool dresolved)
{
    bool host_checks = sl_conf_host_checks(p);
    unsigned dline = p->single[SEC_LINK].line[K_LISTEN];
    struct addrset as;
    int r = resolve_all(&as, a, true, !host_checks);
    why[0] = '\0';
    if (r != 0) {
        /* No host checks and a name: as written. */
        if (a->any)
            snprintf(why, cap, "takes every address, the diode's included");
        else if (strcasecmp(a->host, c->link.listen_host) == 0)
            snprintf(why, cap, "is the diode address ([link] listen, line %u)", dline);
    }
    for (size_t i = 0; r == 0 && i < as.n && !why[0]; i++) {
        if (ipaddr_any(&as.a[i])) {
            snprintf(why, cap, "takes every address, the diode's included");
            break;
        }
        for (size_t j = 0; dresolved && j < d->n && !why[0]; j++)
            if (ipaddr_eq(&as.a[i], &d->a[j]))
                snprintf(why, cap, "is the diode address ([link] listen, line %u)", dline);
        if (!why[0] && c->link.interface[0] && host_checks && on_interface(c->link.interface, &as.a[i]))
            snprintf(why, cap, "is an address of the diode interface '%s'", c->link.interface);
    }
    if (!dresolved && !why[0] && strcasecmp(a->host, c->link.listen_host) == 0)
        snprintf(why, cap, "is the diode address ([link] listen, line %u)", dline);
    return r;
}

static void diode_bind(struct sl_conf *p, struct sl_rxconf *c, int kind, const char *listen,
                       const struct sl_hostport *a, const struct addrset *d, bool dresolved)
{
    char why[SL_RXCONF_IFNAME_MAX + 96];
    unsigned line = p->single[kind].line[0];   /* listen is key 0 of [modbus] and [http] */
    const char *name = p->tab[kind].name;
    int r = diode_why(why, sizeof why, p, c, a, d, dresolved);
    if (r != 0 && sl_conf_host_checks(p)) {
        sl_conf_error(p, line, "[%s] listen '%s': cannot resolve '%s' (%s)", name, listen, a->host,
                      gai_strerror(r));
        return;
    }
    if (!why[0])
        return;
    if (c->link.allow_services_on_diode)
        warn(p, line, "[%s] listen '%s' %s; allowed by [link] allow_services_on_diode "
             "(drop egress on the diode NIC: docs/operations.md)", name, listen, why);
    else
        sl_conf_error(p, line,
                      "[%s] listen '%s' %s: a SYN forged on the fibre would draw a reply onto it; "
                      "bind an IT-side address (or set [link] allow_services_on_diode = on)",
                      name, listen, why);
}

static void do_diode_binds(struct sl_conf *p, struct sl_rxconf *c)
{
    if (c->link.transport != SL_RXCONF_UDP || !c->link.listen_host[0])
        return;
    bool host_checks = sl_conf_host_checks(p);
    struct addrset d;
    int r = resolve_all(&d, &c->link.listen_addr, false, !host_checks);
    if (r != 0 && host_checks)
        sl_conf_error(p, p->single[SEC_LINK].line[K_LISTEN], "[link] listen '%s': cannot resolve '%s' (%s)",
                      c->link.listen, c->link.listen_host, gai_strerror(r));
    if (c->modbus.enabled && c->modbus.listen[0])
        diode_bind(p, c, SEC_MODBUS, c->modbus.listen, &c->modbus.addr, &d, r == 0);
    if (c->http.enabled && c->http.listen[0])
        diode_bind(p, c, SEC_HTTP, c->http.listen, &c->http.addr, &d, r == 0);
    /* A wildcard [link] listen hides which address is the diode's: the
     * services' addresses cannot be judged against it. */
    bool dany = false;
    for (size_t i = 0; r == 0 && i < d.n; i++)
        dany |= ipaddr_any(&d.a[i]);
    if ((c->modbus.enabled || c->http.enabled) && !c->link.allow_services_on_diode &&
        !c->link.interface[0] && dany)
        warn(p, p->single[SEC_LINK].line[K_LISTEN],
             "[link] listen '%s' takes every address: cannot tell whether [modbus] or [http] "
             "share the diode NIC; listen on the diode address or name it in [link] interface",
             c->link.listen);
}

/* [syslog] forward is the one thing RX sends: its route must not leave
 * through the diode NIC (RX never transmits there). The kernel's choice of
 * source address for a connected UDP socket (no datagram is sent) says
 * which way it would go. Host checks and transport udp only. */
static void syslog_route(struct sl_conf *p, struct sl_rxconf *c)
{
    const struct sl_syslogout_config *y = &c->syslog.out;
    if (!c->syslog.enabled || y->proto == SL_SYSLOGOUT_NONE || !sl_conf_host_checks(p) ||
        c->link.transport != SL_RXCONF_UDP || !c->link.listen_host[0])
        return;
    unsigned line = p->single[SEC_SYSLOG].line[K_FORWARD];
    struct addrinfo *res = NULL;
    int r = sl_conf_hostport_resolve(&res, &y->forward, SOCK_DGRAM, 0);
    if (r != 0 || !res) {
        sl_conf_error(p, line, "[syslog] forward: cannot resolve '%s' (%s)", y->forward.host, gai_strerror(r));
        return;
    }
    struct sockaddr_storage src;
    socklen_t sl = sizeof src;
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool routed = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
                  getsockname(fd, (struct sockaddr *)&src, &sl) == 0;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    struct ipaddr a;
    struct addrset d;
    if (!routed || !ipaddr_from(&a, (const struct sockaddr *)&src) ||
        resolve_all(&d, &c->link.listen_addr, false, false) != 0)
        return;
    bool diode = c->link.interface[0] && on_interface(c->link.interface, &a);
    for (size_t i = 0; i < d.n && !diode; i++)
        diode = !ipaddr_any(&d.a[i]) && ipaddr_eq(&a, &d.a[i]);
    if (diode)
        sl_conf_error(p, line, "[syslog] forward '%s:%u' would leave through the diode NIC (its route's source "
                      "address is the diode's): RX never transmits there; forward to an IT-side address",
                      y->forward.host, y->forward.port);
}

static void finish(struct sl_conf *p)
{
    struct sl_rxconf *c = p->out;
    do_link(p, c);
    do_fec(p, c);
    do_keys(p, c);
    do_mirror(p, c);
    do_modbus(p, c);
    do_http(p, c);
    do_diode_binds(p, c);
    do_mqtt(p, c);
    do_files(p, c);
    do_rx(p, c);
    mqtt_files_for_account(p, c);
    do_syslog(p, c);
    syslog_dir_for_account(p, c);
    do_sparkplug(p, c);
    syslog_route(p, c);
    do_history(p, c);
    history_password_for_account(p, c);
}

static const struct sl_conf_spec spec = { sections, SEC__COUNT, finish, sizeof(struct sl_rxconf),
                                          offsetof(struct sl_rxconf, file) };

SL_CONF_ENTRY_POINTS(struct sl_rxconf, sl_rxconf_parse, sl_rxconf_load, spec)

size_t sl_rxconf_warnings(const struct sl_rxconf *c)
{
    return c->warn.count < SL_RXCONF_WARN_MAX ? c->warn.count : SL_RXCONF_WARN_MAX;
}

/* ---- nftables: is there an egress drop on the diode NIC? --------------------
 * Reads `nft list ruleset` line by line as tokens. Only two shapes count,
 * so a partial drop (UDP only, one port) is never reported as protection:
 * a netdev egress chain on the interface that drops everything (policy or
 * an unconditional rule), or an ip/inet output or postrouting chain with a
 * rule that matches nothing but the interface and drops. "counter ..." and
 * "comment ..." parts of a rule are ignored. */

#define NFT_TOKENS 48u

struct tok {
    const char *s;
    size_t n;
};

enum nft_chain { NFT_NONE, NFT_EGRESS, NFT_OUTPUT };

/* Splits one line at blanks; trailing ';' and ',' are dropped from each
 * token. Returns the number of tokens kept (at most max). */
static size_t nft_tokens(struct tok *t, size_t max, const char *s, size_t n)
{
    size_t count = 0, i = 0;
    while (i < n && count < max) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
            i++;
        size_t j = i;
        while (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\r')
            j++;
        size_t len = j - i;
        while (len && (s[i + len - 1] == ';' || s[i + len - 1] == ','))
            len--;
        if (len)
            t[count++] = (struct tok){ s + i, len };
        i = j;
    }
    return count;
}

static bool tok_is(const struct tok *t, const char *w)
{
    size_t n = strlen(w);
    return t->n == n && memcmp(t->s, w, n) == 0;
}

/* The interface name, bare or in double quotes. */
static bool tok_ifname(const struct tok *t, const char *ifname)
{
    size_t n = strlen(ifname);
    if (t->n == n + 2 && t->s[0] == '"' && t->s[n + 1] == '"')
        return memcmp(t->s + 1, ifname, n) == 0;
    return t->n == n && memcmp(t->s, ifname, n) == 0;
}

/* A rule that drops everything, or everything leaving ifname. */
static bool nft_rule_drops(const struct tok *t, size_t n, const char *ifname)
{
    struct tok r[NFT_TOKENS];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok_is(&t[i], "counter")) {
            if (i + 1 < n && tok_is(&t[i + 1], "packets"))
                i += 4;        /* counter packets N bytes M */
            else if (i + 1 < n && tok_is(&t[i + 1], "name"))
                i += 2;        /* counter name "x" */
            continue;
        }
        if (tok_is(&t[i], "comment")) {
            i++;
            continue;
        }
        r[m++] = t[i];
    }
    if (m == 1 && tok_is(&r[0], "drop"))
        return true;
    size_t o = m == 4 && tok_is(&r[0], "meta") ? 1 : 0;
    return m == 3 + o && (tok_is(&r[o], "oifname") || tok_is(&r[o], "oif")) &&
           tok_ifname(&r[o + 1], ifname) && tok_is(&r[o + 2], "drop");
}

bool sl_rxconf_nft_egress_drop(const char *ruleset, size_t len, const char *ifname)
{
    struct tok t[NFT_TOKENS];
    enum nft_chain chain = NFT_NONE;
    bool netdev = false, ipv4 = false;
    size_t off = 0;
    if (!ifname || !ifname[0])
        return false;
    while (off < len) {
        const char *line = ruleset + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t n = nl ? (size_t)(nl - line) : len - off;
        off += n + (nl ? 1u : 0u);
        size_t nt = nft_tokens(t, NFT_TOKENS, line, n);
        if (nt == 0)
            continue;
        if (tok_is(&t[0], "table")) {
            netdev = nt > 1 && tok_is(&t[1], "netdev");
            ipv4 = nt > 1 && (tok_is(&t[1], "ip") || tok_is(&t[1], "inet"));
            chain = NFT_NONE;
            continue;
        }
        if (tok_is(&t[nt - 1], "{") || tok_is(&t[0], "}")) {
            chain = NFT_NONE;   /* a new chain, set, counter...: rules need its type line */
            continue;
        }
        if (tok_is(&t[0], "type")) {
            const struct tok *hook = NULL;
            bool dev = false, policy_drop = false;
            for (size_t i = 1; i + 1 < nt; i++) {
                if (tok_is(&t[i], "hook"))
                    hook = &t[i + 1];
                else if (tok_is(&t[i], "device"))
                    dev = dev || tok_ifname(&t[i + 1], ifname);
                else if (tok_is(&t[i], "devices"))
                    for (size_t j = i + 1; j < nt && !tok_is(&t[j], "}"); j++)
                        dev = dev || tok_ifname(&t[j], ifname);
                else if (tok_is(&t[i], "policy"))
                    policy_drop = tok_is(&t[i + 1], "drop");
            }
            chain = NFT_NONE;
            if (hook && netdev && dev && tok_is(hook, "egress"))
                chain = NFT_EGRESS;
            else if (hook && ipv4 && (tok_is(hook, "output") || tok_is(hook, "postrouting")))
                chain = NFT_OUTPUT;
            if (chain != NFT_NONE && policy_drop)
                return true;
            continue;
        }
        if (chain != NFT_NONE && nft_rule_drops(t, nt, ifname))
            return true;
    }
    return false;
}
