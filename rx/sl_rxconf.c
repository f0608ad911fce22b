#include "sl_rxconf.h"
#include "sl_file.h"
#include "sl_keyfile.h"
#include "sl_ini.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- phase 1: collect every key's text and line ------------------------------
 * Same scheme as the TX configuration (tx/sl_txconf.c): libinih gets its
 * lines through sl_ini_reader (proto/sl_ini.h), which counts lines, classifies section
 * headers and syntax errors with their line numbers, strips leading blanks
 * (no multi-line continuations: one `key = value` per line) and blanks out
 * over-long lines after reporting them. The handler only records each key's
 * text and line; phase 2 interprets them once everything is known (the
 * transport decides which [link] keys apply wherever they appear). */

enum sec { SEC_LINK, SEC_FEC, SEC_KEYS, SEC_MIRROR, SEC_MODBUS, SEC_HTTP, SEC_MQTT, SEC_FILES,
           SEC_RX, SEC__COUNT, SEC_UNKNOWN = SEC__COUNT, SEC_NONE };

enum { K_TRANSPORT, K_LISTEN, K_INTERFACE, K_PORT, K_FILE, K_FOLLOW, K_MTU, K_ALLOW_DIODE };
enum { K_MAX_K, K_MAX_M, K_ENTRIES, K_MAX_AGE_MS };
enum { K_TRUSTED, K_STATE_DIR };
enum { K_STALE_MS, K_DATABASE, K_DB_MAX_BYTES, K_MAX_TAGS, K_CHECKPOINT_MS, K_FUTURE_TOL_MS };
enum { K_MB_LISTEN, K_MAX_CONNS, K_IDLE_MS, K_MB_PER_PEER, K_MB_REQ_MS };
enum { K_HTTP_LISTEN, K_TOKEN_FILE, K_HTTP_CONNS, K_HTTP_PER_PEER, K_HTTP_TIMEOUT_S, K_HTTP_REQ_MS,
       K_HTTP_STREAMS, K_HTTP_STREAMS_PER_PEER, K_HTTP_HOSTS };
enum { K_BROKER, K_PREFIX };
enum { K_DIRECTORY, K_FILES_MAX_BYTES, K_FILES_MAX_TOTAL, K_FILES_MAX_VERSIONS };
enum { K_USER, K_ALLOW_ROOT };

#define KEYS_MAX 10

static const char *const sec_names[SEC__COUNT] = { "link", "fec", "keys", "mirror", "modbus",
                                                    "http", "mqtt", "files", "rx" };
static const char *const sec_keys[SEC__COUNT][KEYS_MAX + 1] = {
    [SEC_LINK] = { "transport", "listen", "interface", "port", "file", "follow", "mtu",
                   "allow_services_on_diode", NULL },
    [SEC_FEC] = { "max_k", "max_m", "entries", "max_age_ms", NULL },
    [SEC_KEYS] = { "trusted", "state_dir", NULL },
    [SEC_MIRROR] = { "stale_ms", "database", "max_bytes", "max_tags", "checkpoint_ms",
                     "future_tolerance_ms", NULL },
    [SEC_MODBUS] = { "listen", "max_conns", "idle_ms", "max_conns_per_peer", "request_timeout_ms", NULL },
    [SEC_HTTP] = { "listen", "token_file", "max_conns", "max_conns_per_peer", "timeout_s",
                   "request_timeout_ms", "max_streams", "max_streams_per_peer", "allowed_hosts", NULL },
    [SEC_MQTT] = { "broker", "prefix", NULL },
    [SEC_FILES] = { "directory", "max_bytes", "max_total_bytes", "max_versions", NULL },
    [SEC_RX] = { "user", "allow_root", NULL },
};

struct rawsec {
    unsigned header;              /* line of [section], 0 = absent */
    unsigned line[KEYS_MAX];      /* line of each key, 0 = absent */
    char *val[KEYS_MAX];          /* owned copies */
};

struct parse {
    struct sl_rxconf *c;
    struct sl_diag *diag;
    const char *file;
    const char *base_dir;
    unsigned flags;
    struct sl_ini_src src;              /* text, offset and line number */
    enum sec cur;
    struct rawsec sec[SEC__COUNT];
    bool nomem;
};

/* A section header line "[...]" (leading blanks already stripped). */
static void section_line(struct parse *p, const char *s, size_t n)
{
    const char *end = memchr(s, ']', n);
    p->cur = SEC_UNKNOWN;
    if (!end) {
        sl_diag_add(p->diag, p->file, p->src.line, "unterminated section header");
        return;
    }
    const char *a = s + 1, *b = end;
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    size_t len = (size_t)(b - a);
    for (int i = 0; i < SEC__COUNT; i++) {
        if (len == strlen(sec_names[i]) && memcmp(a, sec_names[i], len) == 0) {
            if (p->sec[i].header)
                sl_diag_add(p->diag, p->file, p->src.line, "duplicate section [%s] (first at line %u)",
                            sec_names[i], p->sec[i].header);
            else
                p->sec[i].header = p->src.line;
            p->cur = (enum sec)i;
            return;
        }
    }
    sl_diag_add(p->diag, p->file, p->src.line, "unknown section [%.*s]", (int)len, a);
}

/* sl_ini_reader's section callback. */
static void on_section(void *ctx, const char *s, size_t n)
{
    section_line(ctx, s, n);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    (void)section;   /* p->cur, kept by the reader, is authoritative */
    if (p->cur == SEC_UNKNOWN)
        return 1;    /* already reported at the section header */
    if (p->cur == SEC_NONE) {
        sl_diag_add(p->diag, p->file, p->src.line, "key '%s' outside any section", name);
        return 1;
    }
    int kind = (int)p->cur;
    struct rawsec *s = &p->sec[kind];
    int k = -1;
    for (int i = 0; sec_keys[kind][i]; i++)
        if (strcmp(sec_keys[kind][i], name) == 0)
            k = i;
    if (k < 0) {
        sl_diag_add(p->diag, p->file, p->src.line, "unknown key '%s' in [%s]", name, sec_names[kind]);
        return 1;
    }
    if (s->line[k]) {
        sl_diag_add(p->diag, p->file, p->src.line, "duplicate key '%s' (first at line %u)", name,
                    s->line[k]);
        return 1;
    }
    if (strlen(value) >= SL_RXCONF_STR_MAX) {
        sl_diag_add(p->diag, p->file, p->src.line, "value of '%s' longer than %u bytes", name,
                    SL_RXCONF_STR_MAX - 1);
        return 1;
    }
    s->val[k] = strdup(value);
    if (!s->val[k]) {
        p->nomem = true;
        return 1;
    }
    s->line[k] = p->src.line;
    return 1;
}

/* ---- phase 2: interpret ------------------------------------------------------ */

static const char *val(const struct rawsec *s, int k)
{
    return s->line[k] ? s->val[k] : NULL;
}

static bool parse_u64(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (const char *q = v; *q; q++) {
        if (*q < '0' || *q > '9')
            return false;
        uint64_t d = (uint64_t)(*q - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* Reads key k of section kind as an integer in [min, max] into *out
 * (default def when absent); reports and returns false when bad. */
static bool num64(struct parse *p, int kind, int k, uint64_t min, uint64_t max, uint64_t def,
                  uint64_t *out)
{
    const struct rawsec *s = &p->sec[kind];
    const char *v = val(s, k);
    *out = def;
    if (!v)
        return true;
    uint64_t n;
    if (!parse_u64(v, &n) || n < min || n > max) {
        sl_diag_add(p->diag, p->file, s->line[k], "bad %s '%s' (integer %llu..%llu)",
                    sec_keys[kind][k], v, (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = n;
    return true;
}

static bool num(struct parse *p, int kind, int k, uint32_t min, uint32_t max, uint32_t def,
                uint32_t *out)
{
    uint64_t n;
    bool ok = num64(p, kind, k, min, max, def, &n);
    *out = (uint32_t)n;
    return ok;
}

static bool require(struct parse *p, int kind, int k, const char *why)
{
    const struct rawsec *s = &p->sec[kind];
    if (val(s, k))
        return true;
    sl_diag_add(p->diag, p->file, s->header, "[%s]: missing required key '%s'%s", sec_names[kind],
                sec_keys[kind][k], why);
    return false;
}

static void forbid(struct parse *p, int kind, int k, const char *why)
{
    const struct rawsec *s = &p->sec[kind];
    if (val(s, k))
        sl_diag_add(p->diag, p->file, s->line[k], "key '%s' %s", sec_keys[kind][k], why);
}

/* Records "file:line: warning: message" in c->warn (see sl_rxconf.h). */
static void warn(struct parse *p, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(struct parse *p, unsigned line, const char *fmt, ...)
{
    struct sl_rxconf *c = p->c;
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

/* Resolves v against base_dir into out (SL_RXCONF_STR_MAX); reports an
 * empty value or a path too long. False when out is unusable. */
static bool resolve(struct parse *p, char *out, int kind, int k)
{
    const char *v = val(&p->sec[kind], k);
    unsigned line = p->sec[kind].line[k];
    int n;
    out[0] = '\0';
    if (!v)
        return false;
    if (!*v) {
        sl_diag_add(p->diag, p->file, line, "empty %s", sec_keys[kind][k]);
        return false;
    }
    if (v[0] == '/' || !p->base_dir || !p->base_dir[0])
        n = snprintf(out, SL_RXCONF_STR_MAX, "%s", v);
    else
        n = snprintf(out, SL_RXCONF_STR_MAX, "%s/%s", p->base_dir, v);
    if (n < 0 || (size_t)n >= SL_RXCONF_STR_MAX) {
        sl_diag_add(p->diag, p->file, line, "path '%s' too long", v);
        out[0] = '\0';
        return false;
    }
    return true;
}

sl_err sl_rxconf_split_hostport(char *host, size_t cap, uint16_t *port, const char *text,
                                uint16_t default_port)
{
    const char *h = text, *colon;
    size_t hl;
    *port = 0;
    if (cap)
        host[0] = '\0';
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (!rb || rb == text + 1)
            return SL_ERR_CONFIG;
        h = text + 1;
        hl = (size_t)(rb - h);
        if (rb[1] != '\0' && rb[1] != ':')
            return SL_ERR_CONFIG;
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(text, ':');
        if (colon && strchr(text, ':') != colon)
            return SL_ERR_CONFIG;   /* bare IPv6 needs brackets */
        hl = colon ? (size_t)(colon - text) : strlen(text);
    }
    if (hl == 0 || hl >= cap)
        return SL_ERR_CONFIG;
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] == 0x7F)
            return SL_ERR_CONFIG;
    uint64_t pn = default_port;
    if (colon && (!parse_u64(colon + 1, &pn) || pn < 1 || pn > 65535))
        return SL_ERR_CONFIG;
    if (pn < 1 || pn > 65535)
        return SL_ERR_CONFIG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)pn;
    return SL_OK;
}

/* A listen address of [link] (udp), [modbus] or [http]: syntax only (DNS
 * and binding happen at start). The services need an explicit port and may
 * use port 0 (a free one is picked: tests); the link may leave the port out
 * (default 7400) but never uses 0. */
static void listen_addr(struct parse *p, int kind, int k, char *out, char *host, uint16_t *port,
                        bool service)
{
    const char *v = val(&p->sec[kind], k);
    char h[SL_RXCONF_STR_MAX], tmp[SL_RXCONF_STR_MAX];
    const char *text = v, *colon, *rb;
    uint16_t pn = 0;
    bool zero = false;
    if (!v)
        return;
    snprintf(out, SL_RXCONF_STR_MAX, "%s", v);
    if (v[0] == '[')
        colon = (rb = strchr(v, ']')) && rb[1] == ':' ? rb + 1 : NULL;
    else
        colon = strrchr(v, ':');
    if (service && colon && strcmp(colon, ":0") == 0) {
        /* The splitter takes ports 1..65535 only: check the host part alone. */
        zero = true;
        snprintf(tmp, sizeof tmp, "%.*s", (int)(colon - v), v);
        text = tmp;
    }
    if ((service && !colon) ||
        sl_rxconf_split_hostport(h, sizeof h, &pn, text, SL_DEFAULT_PORT) != SL_OK) {
        sl_diag_add(p->diag, p->file, p->sec[kind].line[k], "bad %s '%s' (%s)", sec_keys[kind][k], v,
                    service ? "HOST:PORT or [IPv6]:PORT" : "HOST:PORT, [IPv6]:PORT or HOST");
        return;
    }
    if (host)
        snprintf(host, SL_RXCONF_STR_MAX, "%s", h);
    if (port)
        *port = zero ? 0 : pn;
}

static bool on_off(struct parse *p, int kind, int k, bool def)
{
    const char *v = val(&p->sec[kind], k);
    if (!v)
        return def;
    if (strcmp(v, "on") == 0)
        return true;
    if (strcmp(v, "off") == 0)
        return false;
    sl_diag_add(p->diag, p->file, p->sec[kind].line[k], "bad %s '%s' (on|off)", sec_keys[kind][k], v);
    return def;
}

static void do_link(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    const struct rawsec *s = &p->sec[SEC_LINK];
    const char *v;
    c->link.listen_port = SL_DEFAULT_PORT;
    if (!s->header) {
        sl_diag_add(p->diag, p->file, 0, "missing section [link]");
    } else if (require(p, SEC_LINK, K_TRANSPORT, "")) {
        v = val(s, K_TRANSPORT);
        if (strcmp(v, "udp") == 0)
            c->link.transport = SL_RXCONF_UDP;
        else if (strcmp(v, "pcap") == 0)
            c->link.transport = SL_RXCONF_PCAP;
        else if (strcmp(v, "pcapfile") == 0)
            c->link.transport = SL_RXCONF_PCAPFILE;
        else
            sl_diag_add(p->diag, p->file, s->line[K_TRANSPORT],
                        "bad transport '%s' (udp|pcap|pcapfile)", v);
    }
    switch (c->link.transport) {
    case SL_RXCONF_UDP:
        require(p, SEC_LINK, K_LISTEN, " for transport udp");
        /* interface is optional here: the diode NIC, for link health. */
        forbid(p, SEC_LINK, K_PORT, "does not apply to transport udp (the port is in listen)");
        forbid(p, SEC_LINK, K_FILE, "does not apply to transport udp");
        forbid(p, SEC_LINK, K_FOLLOW, "applies only to transport pcapfile");
        break;
    case SL_RXCONF_PCAP:
        require(p, SEC_LINK, K_INTERFACE, " for transport pcap");
        forbid(p, SEC_LINK, K_LISTEN, "applies only to transport udp");
        forbid(p, SEC_LINK, K_FILE, "does not apply to transport pcap");
        forbid(p, SEC_LINK, K_FOLLOW, "applies only to transport pcapfile");
        forbid(p, SEC_LINK, K_ALLOW_DIODE, "applies only to transport udp");
        break;
    case SL_RXCONF_PCAPFILE:
        require(p, SEC_LINK, K_FILE, " for transport pcapfile");
        forbid(p, SEC_LINK, K_LISTEN, "applies only to transport udp");
        forbid(p, SEC_LINK, K_INTERFACE, "does not apply to transport pcapfile");
        forbid(p, SEC_LINK, K_ALLOW_DIODE, "applies only to transport udp");
        break;
    default:
        break;
    }
    if (val(s, K_LISTEN))
        listen_addr(p, SEC_LINK, K_LISTEN, c->link.listen, c->link.listen_host,
                    &c->link.listen_port, false);
    if ((v = val(s, K_INTERFACE))) {
        if (!*v || strlen(v) >= SL_RXCONF_IFNAME_MAX || strchr(v, '/') || strchr(v, ' '))
            sl_diag_add(p->diag, p->file, s->line[K_INTERFACE],
                        "bad interface name '%s' (1..%u bytes, no '/' or spaces)", v,
                        SL_RXCONF_IFNAME_MAX - 1);
        else
            snprintf(c->link.interface, sizeof c->link.interface, "%s", v);
    }
    /* pcapfile replays any port unless told; a live capture needs a filter. */
    uint32_t port;
    if (c->link.transport == SL_RXCONF_PCAPFILE)
        num(p, SEC_LINK, K_PORT, 0, 65535, 0, &port);
    else
        num(p, SEC_LINK, K_PORT, 1, 65535, SL_DEFAULT_PORT, &port);
    c->link.port = (uint16_t)port;
    if (val(s, K_FILE))
        resolve(p, c->link.file, SEC_LINK, K_FILE);
    c->link.follow = on_off(p, SEC_LINK, K_FOLLOW, false);
    c->link.allow_services_on_diode = on_off(p, SEC_LINK, K_ALLOW_DIODE, false);
    num(p, SEC_LINK, K_MTU, SL_RXCONF_MTU_MIN, SL_RXCONF_MTU_MAX, SL_RXCONF_DEFAULT_MTU,
        &c->link.mtu);
    c->link.symbol_max = SL_SYMBOL_FOR_MTU(c->link.mtu);
    c->link.datagram_max = c->link.mtu - SL_IPV4_UDP_BYTES;
}

static void do_fec(struct parse *p)
{
    const struct rawsec *s = &p->sec[SEC_FEC];
    struct sl_rxconf *c = p->c;
    bool ok = num(p, SEC_FEC, K_MAX_K, 1, SL_FEC_MAX_SYMBOLS - 1, SL_RXCONF_DEFAULT_MAX_K,
                  &c->fec.max_k);
    ok &= num(p, SEC_FEC, K_MAX_M, 1, SL_FEC_MAX_SYMBOLS - 1, SL_RXCONF_DEFAULT_MAX_M, &c->fec.max_m);
    num(p, SEC_FEC, K_ENTRIES, 1, 4096, SL_RXCONF_DEFAULT_ENTRIES, &c->fec.entries);
    num(p, SEC_FEC, K_MAX_AGE_MS, 10, 600000, SL_RXCONF_DEFAULT_MAX_AGE_MS, &c->fec.max_age_ms);
    if (ok && c->fec.max_k + c->fec.max_m > SL_FEC_MAX_SYMBOLS)
        sl_diag_add(p->diag, p->file, s->line[K_MAX_M] ? s->line[K_MAX_M] : s->line[K_MAX_K],
                    "max_k + max_m = %u exceeds %u (GF(2^8) Reed-Solomon)",
                    c->fec.max_k + c->fec.max_m, SL_FEC_MAX_SYMBOLS);
}

/* The user RX runs as once started: [rx] user when set (looked up here,
 * since [rx] is interpreted after [keys]), else whoever runs this. Files
 * that decide trust must belong to root or to this user. */
static uid_t daemon_uid(const struct parse *p)
{
    const char *u = val(&p->sec[SEC_RX], K_USER);
    const struct passwd *pw = u && *u ? getpwnam(u) : NULL;
    return pw ? pw->pw_uid : geteuid();
}

/* One trusted key file: loaded now, so --check finds a missing, unreadable,
 * malformed or duplicate key before the daemon would. */
static void load_trusted(struct parse *p, const char *path, unsigned line)
{
    struct sl_rxconf *c = p->c;
    struct sl_key_public k;
    char why[160];
    sl_err e = sl_keyfile_load_trusted(&k, path, daemon_uid(p), why, sizeof why);
    if (e == SL_ERR_NOT_FOUND || e == SL_ERR_IO) {
        sl_diag_add(p->diag, p->file, line, "trusted key '%s': %s", path,
                    e == SL_ERR_NOT_FOUND ? "no such file" : strerror(errno));
        return;
    }
    if (e == SL_ERR_PERM || (e == SL_ERR_CONFIG && why[0])) {
        /* Whoever can rewrite a trusted key can make RX accept their frames. */
        sl_diag_add(p->diag, p->file, line, "trusted key '%s': refused: %s", path, why);
        return;
    }
    if (e != SL_OK) {
        sl_diag_add(p->diag, p->file, line,
                    "trusted key '%s': not a public key file (64 hex digits): %s", path,
                    sl_strerror(e));
        return;
    }
    e = sl_key_set_add(&c->keys.keys, &k);
    if (e == SL_ERR_DUPLICATE) {
        char id[SL_KEY_ID_HEX_BYTES];
        sl_key_id_format(id, k.id);
        sl_diag_add(p->diag, p->file, line, "trusted key '%s': key id %s listed twice", path, id);
    } else if (e != SL_OK) {
        sl_diag_add(p->diag, p->file, line, "trusted key '%s': %s", path, sl_strerror(e));
    }
}

static void do_keys(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    const struct rawsec *s = &p->sec[SEC_KEYS];
    bool host = !(p->flags & SL_RXCONF_SKIP_HOST_CHECKS);
    sl_key_set_init(&c->keys.keys);
    if (!s->header) {
        sl_diag_add(p->diag, p->file, 0, "missing section [keys]");
        return;
    }
    if (require(p, SEC_KEYS, K_TRUSTED, "")) {
        const char *v = val(s, K_TRUSTED);
        unsigned line = s->line[K_TRUSTED];
        const char *q = v;
        for (;;) {
            const char *comma = strchr(q, ',');
            const char *a = q, *b = comma ? comma : q + strlen(q);
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            if (a == b) {
                sl_diag_add(p->diag, p->file, line, "empty entry in trusted '%s'", v);
            } else if (c->keys.ntrusted == SL_KEY_SET_MAX) {
                sl_diag_add(p->diag, p->file, line, "more than %u trusted keys", SL_KEY_SET_MAX);
                break;
            } else {
                char one[SL_RXCONF_STR_MAX];
                char *dst = c->keys.trusted[c->keys.ntrusted];
                snprintf(one, sizeof one, "%.*s", (int)(b - a), a);
                int n = one[0] == '/' || !p->base_dir || !p->base_dir[0]
                            ? snprintf(dst, SL_RXCONF_STR_MAX, "%s", one)
                            : snprintf(dst, SL_RXCONF_STR_MAX, "%s/%s", p->base_dir, one);
                if (n < 0 || (size_t)n >= SL_RXCONF_STR_MAX) {
                    sl_diag_add(p->diag, p->file, line, "path '%s' too long", one);
                } else {
                    c->keys.trusted_line[c->keys.ntrusted++] = line;
                    if (host)
                        load_trusted(p, dst, line);
                }
            }
            if (!comma)
                break;
            q = comma + 1;
        }
    }
    if (require(p, SEC_KEYS, K_STATE_DIR, " (replay state survives restarts)") &&
        resolve(p, c->keys.state_dir, SEC_KEYS, K_STATE_DIR) && host) {
        /* A missing state_dir is created at start; something else in its place is not. */
        struct stat st;
        if (lstat(c->keys.state_dir, &st) == 0 && S_ISLNK(st.st_mode))
            sl_diag_add(p->diag, p->file, s->line[K_STATE_DIR],
                        "state_dir '%s' is a symbolic link: refusing to follow it (name the directory itself)",
                        c->keys.state_dir);
        else if (stat(c->keys.state_dir, &st) == 0 && !S_ISDIR(st.st_mode))
            sl_diag_add(p->diag, p->file, s->line[K_STATE_DIR], "state_dir '%s' is not a directory",
                        c->keys.state_dir);
    }
}

static void do_mirror(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    const struct rawsec *s = &p->sec[SEC_MIRROR];
    num(p, SEC_MIRROR, K_STALE_MS, 10, 3600000, SL_RXCONF_DEFAULT_STALE_MS, &c->mirror.stale_ms);
    num(p, SEC_MIRROR, K_FUTURE_TOL_MS, 100, 86400000, SL_RXCONF_DEFAULT_FUTURE_TOL_MS,
        &c->mirror.future_tolerance_ms);
    num(p, SEC_MIRROR, K_MAX_TAGS, 1, 1u << 30, SL_RXCONF_DEFAULT_MAX_TAGS, &c->mirror.max_tags);
    num(p, SEC_MIRROR, K_CHECKPOINT_MS, 10, 3600000, SL_RXCONF_DEFAULT_CHECKPOINT_MS,
        &c->mirror.checkpoint_ms);
    num64(p, SEC_MIRROR, K_DB_MAX_BYTES, 0, UINT64_MAX / 2, 0, &c->mirror.max_bytes);
    if (val(s, K_DATABASE)) {
        /* Root opens it before dropping privileges (docs/operations.md). */
        if (resolve(p, c->mirror.database, SEC_MIRROR, K_DATABASE) &&
            !(p->flags & SL_RXCONF_SKIP_HOST_CHECKS) && sl_file_check_nolink(c->mirror.database) == SL_ERR_PERM)
            sl_diag_add(p->diag, p->file, s->line[K_DATABASE],
                        "database '%s' is a symbolic link or has other hard links: refusing to follow it",
                        c->mirror.database);
    } else if (val(s, K_DB_MAX_BYTES))
        sl_diag_add(p->diag, p->file, s->line[K_DB_MAX_BYTES], "key 'max_bytes' needs 'database'");
}

static void do_modbus(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    if (!p->sec[SEC_MODBUS].header)
        return;
    c->modbus.enabled = true;
    if (require(p, SEC_MODBUS, K_MB_LISTEN, ""))
        listen_addr(p, SEC_MODBUS, K_MB_LISTEN, c->modbus.listen, NULL, NULL, true);
    num(p, SEC_MODBUS, K_MAX_CONNS, 1, 4096, SL_RXCONF_DEFAULT_MB_CONNS, &c->modbus.max_conns);
    num(p, SEC_MODBUS, K_IDLE_MS, 100, 86400000, SL_RXCONF_DEFAULT_MB_IDLE_MS, &c->modbus.idle_ms);
    num(p, SEC_MODBUS, K_MB_REQ_MS, 100, 3600000, SL_RXCONF_DEFAULT_MB_REQ_MS,
        &c->modbus.request_timeout_ms);
    if (num(p, SEC_MODBUS, K_MB_PER_PEER, 1, 4096, SL_RXCONF_DEFAULT_MB_PER_PEER,
            &c->modbus.max_conns_per_peer) &&
        c->modbus.max_conns_per_peer > c->modbus.max_conns) {
        /* Only an explicit value is an error; the default follows a small max_conns. */
        if (p->sec[SEC_MODBUS].line[K_MB_PER_PEER])
            sl_diag_add(p->diag, p->file, p->sec[SEC_MODBUS].line[K_MB_PER_PEER],
                        "max_conns_per_peer %u exceeds max_conns %u", c->modbus.max_conns_per_peer,
                        c->modbus.max_conns);
        c->modbus.max_conns_per_peer = c->modbus.max_conns;
    }
}

/* A secret file (the HTTP token): readable, and owned and protected as
 * sl_file_open_trusted demands (not world-readable, not group/world-writable,
 * owned by root or the daemon's user). */
static void secret_file(struct parse *p, const char *path, int kind, int k)
{
    char why[160];
    int fd;
    sl_err e = sl_file_open_trusted(&fd, path, daemon_uid(p), SL_FILE_NO_OTHER_READ, why, sizeof why);
    if (e == SL_ERR_PERM || e == SL_ERR_CONFIG) {
        sl_diag_add(p->diag, p->file, p->sec[kind].line[k], "%s '%s': refused: %s", sec_keys[kind][k], path,
                    why);
        return;
    }
    if (e != SL_OK) {
        sl_diag_add(p->diag, p->file, p->sec[kind].line[k], "%s '%s': %s", sec_keys[kind][k], path,
                    e == SL_ERR_NOT_FOUND ? strerror(ENOENT) : strerror(errno));
        return;
    }
    close(fd);
}

static void do_http(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    if (!p->sec[SEC_HTTP].header)
        return;
    c->http.enabled = true;
    if (require(p, SEC_HTTP, K_HTTP_LISTEN, ""))
        listen_addr(p, SEC_HTTP, K_HTTP_LISTEN, c->http.listen, NULL, NULL, true);
    if (val(&p->sec[SEC_HTTP], K_TOKEN_FILE) &&
        resolve(p, c->http.token_file, SEC_HTTP, K_TOKEN_FILE) &&
        !(p->flags & SL_RXCONF_SKIP_HOST_CHECKS))
        secret_file(p, c->http.token_file, SEC_HTTP, K_TOKEN_FILE);
    const struct rawsec *s = &p->sec[SEC_HTTP];
    num(p, SEC_HTTP, K_HTTP_CONNS, 1, 4096, SL_RXCONF_DEFAULT_HTTP_CONNS, &c->http.max_conns);
    num(p, SEC_HTTP, K_HTTP_TIMEOUT_S, 1, 86400, SL_RXCONF_DEFAULT_HTTP_TIMEOUT_S, &c->http.timeout_s);
    num(p, SEC_HTTP, K_HTTP_REQ_MS, 100, 3600000, SL_RXCONF_DEFAULT_HTTP_REQ_MS,
        &c->http.request_timeout_ms);
    /* Per-peer caps above their totals: an explicit one is an error, a
     * default one follows the total down. */
    if (num(p, SEC_HTTP, K_HTTP_PER_PEER, 1, 4096, SL_RXCONF_DEFAULT_HTTP_PER_PEER,
            &c->http.max_conns_per_peer) &&
        c->http.max_conns_per_peer > c->http.max_conns) {
        if (s->line[K_HTTP_PER_PEER])
            sl_diag_add(p->diag, p->file, s->line[K_HTTP_PER_PEER],
                        "max_conns_per_peer %u exceeds max_conns %u", c->http.max_conns_per_peer,
                        c->http.max_conns);
        c->http.max_conns_per_peer = c->http.max_conns;
    }
    if (num(p, SEC_HTTP, K_HTTP_STREAMS, 1, 4096, SL_RXCONF_DEFAULT_HTTP_STREAMS,
            &c->http.max_streams) &&
        c->http.max_streams >= c->http.max_conns) {
        if (s->line[K_HTTP_STREAMS])
            sl_diag_add(p->diag, p->file, s->line[K_HTTP_STREAMS],
                        "max_streams %u must be below max_conns %u (streams hold connections)",
                        c->http.max_streams, c->http.max_conns);
        c->http.max_streams = c->http.max_conns > 1 ? c->http.max_conns - 1 : 1;
    }
    if (num(p, SEC_HTTP, K_HTTP_STREAMS_PER_PEER, 1, 4096, SL_RXCONF_DEFAULT_HTTP_STREAMS_PER_PEER,
            &c->http.max_streams_per_peer) &&
        c->http.max_streams_per_peer > c->http.max_streams) {
        if (s->line[K_HTTP_STREAMS_PER_PEER])
            sl_diag_add(p->diag, p->file, s->line[K_HTTP_STREAMS_PER_PEER],
                        "max_streams_per_peer %u exceeds max_streams %u",
                        c->http.max_streams_per_peer, c->http.max_streams);
        c->http.max_streams_per_peer = c->http.max_streams;
    }
    const char *v = val(s, K_HTTP_HOSTS);
    if (v) {
        /* Host names only (letters, digits, '-', '.'; 1..253 bytes each):
         * IP literals and localhost are always allowed. */
        const char *q = v;
        bool ok = *v != '\0';
        while (ok) {
            const char *comma = strchr(q, ',');
            const char *a = q, *b = comma ? comma : q + strlen(q);
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            ok = b > a && b - a <= 253;
            for (const char *x = a; ok && x < b; x++)
                ok = (*x >= 'a' && *x <= 'z') || (*x >= 'A' && *x <= 'Z') ||
                     (*x >= '0' && *x <= '9') || *x == '-' || *x == '.';
            if (!comma)
                break;
            q = comma + 1;
        }
        if (ok)
            snprintf(c->http.allowed_hosts, sizeof c->http.allowed_hosts, "%s", v);
        else
            sl_diag_add(p->diag, p->file, s->line[K_HTTP_HOSTS],
                        "bad allowed_hosts '%s' (comma-separated host names: letters, digits, '-', '.')",
                        v);
    }
}

static void do_mqtt(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    const struct rawsec *s = &p->sec[SEC_MQTT];
    const char *v;
    snprintf(c->mqtt.prefix, sizeof c->mqtt.prefix, "%s", SL_RXCONF_DEFAULT_PREFIX);
    if (!s->header)
        return;
    c->mqtt.enabled = true;
    if (require(p, SEC_MQTT, K_BROKER, "")) {
        v = val(s, K_BROKER);
        snprintf(c->mqtt.broker, sizeof c->mqtt.broker, "%s", v);
        if (sl_rxconf_split_hostport(c->mqtt.host, sizeof c->mqtt.host, &c->mqtt.port, v,
                                     SL_RXCONF_DEFAULT_MQTT_PORT) != SL_OK)
            sl_diag_add(p->diag, p->file, s->line[K_BROKER],
                        "bad broker '%s' (HOST:PORT, [IPv6]:PORT or HOST)", v);
    }
    if ((v = val(s, K_PREFIX))) {
        /* Topic levels: no wildcards, no empty level at either end, printable. */
        size_t n = strlen(v);
        bool ok = n > 0 && n < sizeof c->mqtt.prefix && v[0] != '/' && v[n - 1] != '/';
        for (size_t i = 0; ok && i < n; i++)
            if ((unsigned char)v[i] < 0x21 || v[i] == 0x7F || v[i] == '+' || v[i] == '#')
                ok = false;
        if (ok)
            snprintf(c->mqtt.prefix, sizeof c->mqtt.prefix, "%s", v);
        else
            sl_diag_add(p->diag, p->file, s->line[K_PREFIX],
                        "bad prefix '%s' (1..%u printable bytes, no '+', '#' or spaces, "
                        "no leading or trailing '/')", v, SL_RXCONF_PREFIX_MAX - 1);
    }
}

static void do_files(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    const struct rawsec *s = &p->sec[SEC_FILES];
    if (!s->header)
        return;
    c->files.enabled = true;
    if (require(p, SEC_FILES, K_DIRECTORY, "") &&
        resolve(p, c->files.directory, SEC_FILES, K_DIRECTORY) &&
        !(p->flags & SL_RXCONF_SKIP_HOST_CHECKS)) {
        struct stat st;
        if (lstat(c->files.directory, &st) == 0 && S_ISLNK(st.st_mode))
            sl_diag_add(p->diag, p->file, s->line[K_DIRECTORY],
                        "directory '%s' is a symbolic link: refusing to follow it (name the directory itself)",
                        c->files.directory);
        else if (stat(c->files.directory, &st) != 0)
            sl_diag_add(p->diag, p->file, s->line[K_DIRECTORY], "directory '%s': %s",
                        c->files.directory, strerror(errno));
        else if (!S_ISDIR(st.st_mode))
            sl_diag_add(p->diag, p->file, s->line[K_DIRECTORY], "directory '%s' is not a directory",
                        c->files.directory);
    }
    num64(p, SEC_FILES, K_FILES_MAX_BYTES, 0, UINT64_MAX / 2, 0, &c->files.max_bytes);
    num64(p, SEC_FILES, K_FILES_MAX_TOTAL, 0, UINT64_MAX / 2, SL_RXCONF_DEFAULT_FILES_TOTAL,
          &c->files.max_total_bytes);
    num(p, SEC_FILES, K_FILES_MAX_VERSIONS, 1, SL_RXCONF_FILES_VERSIONS_MAX, SL_RXCONF_DEFAULT_FILES_VERSIONS,
        &c->files.max_versions);
    if (c->files.max_total_bytes && c->files.max_bytes > c->files.max_total_bytes)
        sl_diag_add(p->diag, p->file, s->line[K_FILES_MAX_BYTES] ? s->line[K_FILES_MAX_BYTES] : s->line[K_FILES_MAX_TOTAL],
                    "max_bytes %llu exceeds max_total_bytes %llu: no such file could be kept",
                    (unsigned long long)c->files.max_bytes, (unsigned long long)c->files.max_total_bytes);
}

static void do_rx(struct parse *p)
{
    const struct rawsec *s = &p->sec[SEC_RX];
    const char *v = val(s, K_USER);
    const char *ar = val(s, K_ALLOW_ROOT);
    if (ar) {
        if (strcmp(ar, "yes") == 0 || strcmp(ar, "on") == 0)
            p->c->rx.allow_root = true;
        else if (strcmp(ar, "no") != 0 && strcmp(ar, "off") != 0)
            sl_diag_add(p->diag, p->file, s->line[K_ALLOW_ROOT], "bad allow_root '%s' (yes|no)", ar);
    }
    if (!v)
        return;
    if (!*v || strlen(v) >= sizeof p->c->rx.user) {
        sl_diag_add(p->diag, p->file, s->line[K_USER], "bad user '%s'", v);
        return;
    }
    snprintf(p->c->rx.user, sizeof p->c->rx.user, "%s", v);
    if (!(p->flags & SL_RXCONF_SKIP_HOST_CHECKS)) {
        errno = 0;
        if (!getpwnam(v))
            sl_diag_add(p->diag, p->file, s->line[K_USER], "user '%s' does not exist", v);
    }
}

/* ---- no reply onto the fibre ------------------------------------------------
 * With transport udp the diode NIC has an IP address. A TCP service bound to
 * that address, or to a wildcard (which includes it), answers a SYN forged on
 * the fibre with a SYN-ACK or RST that leaves through the diode NIC: the one
 * thing RX must never do (DESIGN.md §2). So [modbus] and [http] must bind an
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

/* The host part of a service listen value ("HOST:PORT" or "[V6]:PORT");
 * false when it has none (listen_addr has reported that already). */
static bool service_host(char *out, size_t cap, const char *v)
{
    const char *a = v, *b;
    if (v[0] == '[') {
        a = v + 1;
        b = strchr(a, ']');
    } else {
        b = strrchr(v, ':');
    }
    if (!b || (size_t)(b - a) >= cap)
        return false;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return true;
}

/* Every address one host may bind: a name can mean several (localhost ->
 * 127.0.0.1 and ::1), and a service binds whichever comes first. */
#define ADDRS_MAX 16
struct addrset {
    size_t n;
    struct ipaddr a[ADDRS_MAX];
};

/* Resolves host into *out with the hints of the bind it stands for:
 * service (AI_PASSIVE, SOCK_STREAM, "*" meaning every address, as
 * sl_mbserver/sl_http bind) or the link (SOCK_DGRAM, as sl_hw_addr_parse
 * binds). numeric_only adds AI_NUMERICHOST (no /etc/hosts, no DNS). Returns
 * 0 or the getaddrinfo error (EAI_NONAME for a name under numeric_only).
 * May block on DNS for a name that is not in /etc/hosts: start-up only. */
static int resolve_all(struct addrset *out, const char *host, bool service, bool numeric_only)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = service ? SOCK_STREAM : SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV | (service ? AI_PASSIVE : 0) | (numeric_only ? AI_NUMERICHOST : 0);
    out->n = 0;
    bool any = service && strcmp(host, "*") == 0;
    int r = getaddrinfo(any ? NULL : host, "1", &hints, &res);
    if (r != 0)
        return r;
    for (const struct addrinfo *i = res; i && out->n < ADDRS_MAX; i = i->ai_next)
        if (ipaddr_from(&out->a[out->n], i->ai_addr))
            out->n++;
    freeaddrinfo(res);
    return out->n ? 0 : EAI_NONAME;
}

static void diode_bind(struct parse *p, int kind, int k, const char *listen,
                       const struct addrset *d, bool dresolved)
{
    struct sl_rxconf *c = p->c;
    char host[SL_RXCONF_STR_MAX], why[SL_RXCONF_IFNAME_MAX + 96];
    bool host_checks = !(p->flags & SL_RXCONF_SKIP_HOST_CHECKS);
    unsigned line = p->sec[kind].line[k];
    struct addrset a;
    if (!service_host(host, sizeof host, listen) || !host[0])
        return;                         /* listen_addr has said so */
    int r = resolve_all(&a, host, true, !host_checks);
    if (r != 0 && host_checks) {
        sl_diag_add(p->diag, p->file, line, "[%s] listen '%s': cannot resolve '%s' (%s)",
                    sec_names[kind], listen, host, gai_strerror(r));
        return;
    }
    why[0] = '\0';
    if (r != 0) {
        /* No host checks and a name: as written. */
        if (strcmp(host, "*") == 0)
            snprintf(why, sizeof why, "takes every address, the diode's included");
        else if (strcasecmp(host, c->link.listen_host) == 0)
            snprintf(why, sizeof why, "is the diode address ([link] listen, line %u)",
                     p->sec[SEC_LINK].line[K_LISTEN]);
    }
    for (size_t i = 0; r == 0 && i < a.n && !why[0]; i++) {
        if (ipaddr_any(&a.a[i])) {
            snprintf(why, sizeof why, "takes every address, the diode's included");
            break;
        }
        for (size_t j = 0; dresolved && j < d->n && !why[0]; j++)
            if (ipaddr_eq(&a.a[i], &d->a[j]))
                snprintf(why, sizeof why, "is the diode address ([link] listen, line %u)",
                         p->sec[SEC_LINK].line[K_LISTEN]);
        if (!why[0] && c->link.interface[0] && host_checks && on_interface(c->link.interface, &a.a[i]))
            snprintf(why, sizeof why, "is an address of the diode interface '%s'", c->link.interface);
    }
    if (!dresolved && !why[0] && strcasecmp(host, c->link.listen_host) == 0)
        snprintf(why, sizeof why, "is the diode address ([link] listen, line %u)",
                 p->sec[SEC_LINK].line[K_LISTEN]);
    if (!why[0])
        return;
    if (c->link.allow_services_on_diode)
        warn(p, line, "[%s] listen '%s' %s; allowed by [link] allow_services_on_diode "
             "(drop egress on the diode NIC: docs/operations.md)", sec_names[kind], listen, why);
    else
        sl_diag_add(p->diag, p->file, line,
                    "[%s] listen '%s' %s: a SYN forged on the fibre would draw a reply onto it; "
                    "bind an IT-side address (or set [link] allow_services_on_diode = on)",
                    sec_names[kind], listen, why);
}

static void do_diode_binds(struct parse *p)
{
    struct sl_rxconf *c = p->c;
    if (c->link.transport != SL_RXCONF_UDP || !c->link.listen_host[0])
        return;
    bool host_checks = !(p->flags & SL_RXCONF_SKIP_HOST_CHECKS);
    struct addrset d;
    int r = resolve_all(&d, c->link.listen_host, false, !host_checks);
    if (r != 0 && host_checks)
        sl_diag_add(p->diag, p->file, p->sec[SEC_LINK].line[K_LISTEN],
                    "[link] listen '%s': cannot resolve '%s' (%s)", c->link.listen,
                    c->link.listen_host, gai_strerror(r));
    if (c->modbus.enabled && c->modbus.listen[0])
        diode_bind(p, SEC_MODBUS, K_MB_LISTEN, c->modbus.listen, &d, r == 0);
    if (c->http.enabled && c->http.listen[0])
        diode_bind(p, SEC_HTTP, K_HTTP_LISTEN, c->http.listen, &d, r == 0);
    /* A wildcard [link] listen hides which address is the diode's: the
     * services' addresses cannot be judged against it. */
    bool dany = false;
    for (size_t i = 0; r == 0 && i < d.n; i++)
        dany |= ipaddr_any(&d.a[i]);
    if ((c->modbus.enabled || c->http.enabled) && !c->link.allow_services_on_diode &&
        !c->link.interface[0] && dany)
        warn(p, p->sec[SEC_LINK].line[K_LISTEN],
             "[link] listen '%s' takes every address: cannot tell whether [modbus] or [http] "
             "share the diode NIC; listen on the diode address or name it in [link] interface",
             c->link.listen);
}

sl_err sl_rxconf_parse(struct sl_rxconf *out, const char *text, size_t len, const char *file,
                       const char *base_dir, unsigned flags, struct sl_diag *diag)
{
    struct parse p;
    memset(out, 0, sizeof *out);
    memset(&p, 0, sizeof p);
    snprintf(out->file, sizeof out->file, "%s", file);
    p.c = out;
    p.diag = diag;
    p.file = out->file;
    p.base_dir = base_dir;
    p.flags = flags;
    p.src = (struct sl_ini_src){ .text = text, .len = len, .diag = diag, .file = out->file,
                                 .section = on_section, .ctx = &p };
    p.cur = SEC_NONE;
    size_t before = sl_diag_total(diag);

    int r = ini_parse_stream(sl_ini_reader, &p.src, handler, &p);
    if (r > 0 && sl_diag_total(diag) == before)
        sl_diag_add(diag, out->file, (unsigned)r, "syntax error");   /* safety net */
    else if (r < 0)
        p.nomem = true;

    do_link(&p);
    do_fec(&p);
    do_keys(&p);
    do_mirror(&p);
    do_modbus(&p);
    do_http(&p);
    do_diode_binds(&p);
    do_mqtt(&p);
    do_files(&p);
    do_rx(&p);
    for (int i = 0; i < SEC__COUNT; i++)
        for (int k = 0; k < KEYS_MAX; k++)
            free(p.sec[i].val[k]);
    if (p.nomem)
        return SL_ERR_NOMEM;
    return sl_diag_total(diag) == before ? SL_OK : SL_ERR_CONFIG;
}

sl_err sl_rxconf_load(struct sl_rxconf *out, const char *path, unsigned flags, struct sl_diag *diag)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "re");
    if (!f) {
        sl_diag_add(diag, path, 0, "cannot open configuration: %s", strerror(errno));
        return SL_ERR_IO;
    }
    /* Configurations are small; 1 MiB bounds a mistaken path. */
    size_t cap = 1u << 20;
    char *text = malloc(cap);
    if (!text) {
        fclose(f);
        return SL_ERR_NOMEM;
    }
    size_t len = fread(text, 1, cap, f);
    bool err = ferror(f) != 0, big = len == cap;
    fclose(f);
    if (err || big) {
        sl_diag_add(diag, path, 0, err ? "cannot read configuration" : "configuration larger than 1 MiB");
        free(text);
        return SL_ERR_IO;
    }
    char dir[SL_RXCONF_STR_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        dir[0] = '\0';
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    sl_err e = sl_rxconf_parse(out, text, len, path, dir, flags, diag);
    free(text);
    return e;
}

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
