#include "sl_txconf.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_ini.h"
#include "sl_generator.h"

/* ---- phase 1: collect every key's text and line ------------------------------
 * libinih calls the handler for key lines only and does not pass line
 * numbers in Debian's build, so we feed it through sl_ini_reader (proto/sl_ini.h): it
 * counts lines, classifies each one (so sections, duplicates and syntax
 * errors are found with their line), strips leading blanks (which turns off
 * inih's multi-line continuation: one `key = value` per line) and replaces
 * over-long lines with a comment after reporting them. Values are checked in
 * phase 2, once everything is known (a device's protocol decides what its
 * address means wherever the keys appear). */

enum sec { SEC_LINK, SEC_FEC, SEC_KEYS, SEC_SNAPSHOT, SEC_TX, SEC__SINGLE, SEC_DEVICE = SEC__SINGLE,
           SEC_UNKNOWN, SEC_NONE };

enum { K_TRANSPORT, K_DESTINATION, K_GSO, K_INTERFACE, K_DESTINATION_MAC, K_FILE, K_RATE_MBPS,
       K_MTU };
enum { K_K, K_M, K_INTERLEAVE };
enum { K_SIGNING_KEY, K_STATE_DIR };
enum { K_KEYFRAME_MS, K_BEACON_MS, K_MAX_DELAY_MS };
enum { K_USER, K_METRICS_FILE };
enum { K_PROTOCOL, K_ADDRESS, K_UNIT, K_MIRROR_UNIT, K_POLL_MS, K_TIMEOUT_MS, K_TAGS, K_BAUD,
       K_PARITY, K_DATA_BITS, K_STOP_BITS, K_MAX_GAP, K_RATE, K_RS485, K_RTS, K_RTS_DELAY_US };

#define KEYS_MAX 16

static const char *const sec_names[SEC__SINGLE + 1] = { "link", "fec", "keys", "snapshot", "tx",
                                                         "device" };
static const char *const sec_keys[SEC__SINGLE + 1][KEYS_MAX + 1] = {
    [SEC_LINK] = { "transport", "destination", "gso", "interface", "destination_mac", "file",
                   "rate_mbps", "mtu", NULL },
    [SEC_FEC] = { "k", "m", "interleave", NULL },
    [SEC_KEYS] = { "signing_key", "state_dir", NULL },
    [SEC_SNAPSHOT] = { "keyframe_ms", "beacon_ms", "max_delay_ms", NULL },
    [SEC_TX] = { "user", "metrics_file", NULL },
    [SEC_DEVICE] = { "protocol", "address", "unit", "mirror_unit", "poll_ms", "timeout_ms", "tags",
                     "baud", "parity", "data_bits", "stop_bits", "max_gap", "rate", "rs485", "rts",
                     "rts_delay_us", NULL },
};

struct rawsec {
    unsigned header;              /* line of [section], 0 = absent */
    unsigned line[KEYS_MAX];      /* line of each key, 0 = absent */
    char *val[KEYS_MAX];          /* owned copies */
    char name[SL_NAME_MAX + 1];   /* device name */
};

struct parse {
    struct sl_txconf *c;
    struct sl_diag *diag;
    const char *file;
    const char *base_dir;
    unsigned flags;
    struct sl_ini_src src;              /* text, offset and line number */
    enum sec cur;
    size_t cur_dev;
    struct rawsec single[SEC__SINGLE];
    struct rawsec *dev;
    size_t ndev, devcap;
    bool nomem;
};

static bool valid_devname(const char *s, size_t n)
{
    if (n == 0 || n > SL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

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
    for (int i = 0; i < SEC__SINGLE; i++) {
        if (len == strlen(sec_names[i]) && memcmp(a, sec_names[i], len) == 0) {
            if (p->single[i].header)
                sl_diag_add(p->diag, p->file, p->src.line, "duplicate section [%s] (first at line %u)",
                            sec_names[i], p->single[i].header);
            else
                p->single[i].header = p->src.line;
            p->cur = (enum sec)i;
            return;
        }
    }
    if (len > 6 && memcmp(a, "device", 6) == 0 && (a[6] == ' ' || a[6] == '\t')) {
        const char *nm = a + 6;
        while (nm < b && (*nm == ' ' || *nm == '\t'))
            nm++;
        size_t nl = (size_t)(b - nm);
        if (!valid_devname(nm, nl)) {
            sl_diag_add(p->diag, p->file, p->src.line,
                        "bad device name '%.*s' (1..%u of A-Z a-z 0-9 _ - .)", (int)nl, nm,
                        SL_NAME_MAX);
            return;
        }
        for (size_t i = 0; i < p->ndev; i++) {
            if (strlen(p->dev[i].name) == nl && memcmp(p->dev[i].name, nm, nl) == 0) {
                sl_diag_add(p->diag, p->file, p->src.line,
                            "duplicate device name '%.*s' (first at line %u)", (int)nl, nm,
                            p->dev[i].header);
                return;
            }
        }
        if (p->ndev == SL_TXCONF_MAX_DEVICES) {
            sl_diag_add(p->diag, p->file, p->src.line, "more than %u devices", SL_TXCONF_MAX_DEVICES);
            return;
        }
        if (p->ndev == p->devcap) {
            size_t cap = p->devcap ? p->devcap * 2 : 8;
            struct rawsec *d = realloc(p->dev, cap * sizeof *d);
            if (!d) {
                p->nomem = true;
                return;
            }
            p->dev = d;
            p->devcap = cap;
        }
        struct rawsec *d = &p->dev[p->ndev];
        memset(d, 0, sizeof *d);
        memcpy(d->name, nm, nl);
        d->header = p->src.line;
        p->cur = SEC_DEVICE;
        p->cur_dev = p->ndev++;
        return;
    }
    if (len == 6 && memcmp(a, "device", 6) == 0)
        sl_diag_add(p->diag, p->file, p->src.line, "section [device] needs a name: [device NAME]");
    else
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
    struct rawsec *s;
    int kind;
    if (p->cur == SEC_UNKNOWN)
        return 1;    /* already reported at the section header */
    if (p->cur == SEC_NONE) {
        sl_diag_add(p->diag, p->file, p->src.line, "key '%s' outside any section", name);
        return 1;
    }
    if (p->cur == SEC_DEVICE) {
        s = &p->dev[p->cur_dev];
        kind = SEC_DEVICE;
    } else {
        s = &p->single[(int)p->cur];
        kind = (int)p->cur;
    }
    int k = -1;
    for (int i = 0; sec_keys[kind][i]; i++)
        if (strcmp(sec_keys[kind][i], name) == 0)
            k = i;
    const char *sname = kind == SEC_DEVICE ? "device" : sec_names[kind];
    if (k < 0) {
        sl_diag_add(p->diag, p->file, p->src.line, "unknown key '%s' in [%s]", name, sname);
        return 1;
    }
    if (s->line[k]) {
        sl_diag_add(p->diag, p->file, p->src.line, "duplicate key '%s' (first at line %u)", name,
                    s->line[k]);
        return 1;
    }
    if (strlen(value) >= SL_TXCONF_STR_MAX) {
        sl_diag_add(p->diag, p->file, p->src.line, "value of '%s' longer than %u bytes", name,
                    SL_TXCONF_STR_MAX - 1);
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

static bool parse_u32(const char *v, uint32_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (const char *q = v; *q; q++) {
        if (*q < '0' || *q > '9' || n > UINT32_MAX / 10)
            return false;
        n = n * 10 + (uint64_t)(*q - '0');
    }
    if (n > UINT32_MAX)
        return false;
    *out = (uint32_t)n;
    return true;
}

/* Reads key k of s as an integer in [min, max] into *out (default def when
 * absent); reports and returns false when bad. */
static bool num(struct parse *p, const struct rawsec *s, int kind, int k, uint32_t min,
                uint32_t max, uint32_t def, uint32_t *out)
{
    const char *v = val(s, k);
    *out = def;
    if (!v)
        return true;
    uint32_t n;
    if (!parse_u32(v, &n) || n < min || n > max) {
        sl_diag_add(p->diag, p->file, s->line[k], "bad %s '%s' (integer %u..%u)",
                    sec_keys[kind][k], v, min, max);
        return false;
    }
    *out = n;
    return true;
}

static bool require(struct parse *p, const struct rawsec *s, int kind, int k, const char *why)
{
    if (val(s, k))
        return true;
    if (kind == SEC_DEVICE)
        sl_diag_add(p->diag, p->file, s->header, "device '%s': missing required key '%s'%s",
                    s->name, sec_keys[kind][k], why);
    else
        sl_diag_add(p->diag, p->file, s->header, "[%s]: missing required key '%s'%s",
                    sec_names[kind], sec_keys[kind][k], why);
    return false;
}

static void forbid(struct parse *p, const struct rawsec *s, int kind, int k, const char *why)
{
    if (val(s, k))
        sl_diag_add(p->diag, p->file, s->line[k], "key '%s' %s", sec_keys[kind][k], why);
}

/* Resolves v against base_dir into out (SL_TXCONF_STR_MAX). */
static void resolve(struct parse *p, char *out, const char *v, unsigned line)
{
    int n;
    if (v[0] == '/' || !p->base_dir || !p->base_dir[0])
        n = snprintf(out, SL_TXCONF_STR_MAX, "%s", v);
    else
        n = snprintf(out, SL_TXCONF_STR_MAX, "%s/%s", p->base_dir, v);
    if (n < 0 || (size_t)n >= SL_TXCONF_STR_MAX) {
        sl_diag_add(p->diag, p->file, line, "path '%s' too long", v);
        out[0] = '\0';
    }
}

sl_err sl_txconf_split_hostport(char *host, size_t cap, uint16_t *port, const char *text,
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
    uint32_t pn = default_port;
    if (colon && (!parse_u32(colon + 1, &pn) || pn < 1 || pn > 65535))
        return SL_ERR_CONFIG;
    if (pn < 1 || pn > 65535)
        return SL_ERR_CONFIG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)pn;
    return SL_OK;
}

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

static void do_link(struct parse *p)
{
    struct sl_txconf *c = p->c;
    const struct rawsec *s = &p->single[SEC_LINK];
    const char *v;
    c->link.gso = true;
    c->link.dest_port = SL_DEFAULT_PORT;
    c->link.rate_mbps = SL_TXCONF_DEFAULT_RATE_MBPS;
    if (!s->header) {
        sl_diag_add(p->diag, p->file, 0, "missing section [link]");
    } else if (require(p, s, SEC_LINK, K_TRANSPORT, "")) {
        v = val(s, K_TRANSPORT);
        if (strcmp(v, "udp") == 0)
            c->link.transport = SL_TXCONF_UDP;
        else if (strcmp(v, "raw") == 0)
            c->link.transport = SL_TXCONF_RAW;
        else if (strcmp(v, "pcapfile") == 0)
            c->link.transport = SL_TXCONF_PCAPFILE;
        else
            sl_diag_add(p->diag, p->file, s->line[K_TRANSPORT],
                        "bad transport '%s' (udp|raw|pcapfile)", v);
    }
    switch (c->link.transport) {
    case SL_TXCONF_UDP:
        require(p, s, SEC_LINK, K_DESTINATION, " for transport udp");
        /* interface is optional here: the diode NIC, for link health. */
        forbid(p, s, SEC_LINK, K_DESTINATION_MAC, "does not apply to transport udp");
        forbid(p, s, SEC_LINK, K_FILE, "does not apply to transport udp");
        break;
    case SL_TXCONF_RAW:
        require(p, s, SEC_LINK, K_INTERFACE, " for transport raw");
        require(p, s, SEC_LINK, K_DESTINATION_MAC, " for transport raw");
        forbid(p, s, SEC_LINK, K_GSO, "applies only to transport udp");
        forbid(p, s, SEC_LINK, K_FILE, "does not apply to transport raw");
        break;
    case SL_TXCONF_PCAPFILE:
        require(p, s, SEC_LINK, K_FILE, " for transport pcapfile");
        forbid(p, s, SEC_LINK, K_GSO, "applies only to transport udp");
        forbid(p, s, SEC_LINK, K_INTERFACE, "does not apply to transport pcapfile");
        forbid(p, s, SEC_LINK, K_DESTINATION_MAC, "does not apply to transport pcapfile");
        break;
    default:
        break;
    }
    if ((v = val(s, K_DESTINATION))) {
        snprintf(c->link.destination, sizeof c->link.destination, "%s", v);
        if (sl_txconf_split_hostport(c->link.dest_host, sizeof c->link.dest_host,
                                     &c->link.dest_port, v, SL_DEFAULT_PORT) != SL_OK)
            sl_diag_add(p->diag, p->file, s->line[K_DESTINATION],
                        "bad destination '%s' (HOST:PORT, [IPv6]:PORT or HOST)", v);
    }
    if ((v = val(s, K_GSO))) {
        if (strcmp(v, "on") == 0)
            c->link.gso = true;
        else if (strcmp(v, "off") == 0)
            c->link.gso = false;
        else
            sl_diag_add(p->diag, p->file, s->line[K_GSO], "bad gso '%s' (on|off)", v);
    }
    if ((v = val(s, K_INTERFACE))) {
        if (!*v || strlen(v) >= SL_TXCONF_IFNAME_MAX || strchr(v, '/') || strchr(v, ' '))
            sl_diag_add(p->diag, p->file, s->line[K_INTERFACE],
                        "bad interface name '%s' (1..%u bytes, no '/' or spaces)", v,
                        SL_TXCONF_IFNAME_MAX - 1);
        else
            snprintf(c->link.interface, sizeof c->link.interface, "%s", v);
    }
    if ((v = val(s, K_DESTINATION_MAC)) && !parse_mac(v, c->link.destination_mac))
        sl_diag_add(p->diag, p->file, s->line[K_DESTINATION_MAC],
                    "bad destination_mac '%s' (aa:bb:cc:dd:ee:ff)", v);
    if ((v = val(s, K_FILE))) {
        if (!*v)
            sl_diag_add(p->diag, p->file, s->line[K_FILE], "empty file");
        else
            resolve(p, c->link.file, v, s->line[K_FILE]);
    }
    if ((v = val(s, K_RATE_MBPS))) {
        char *end;
        errno = 0;
        double r = strtod(v, &end);
        if (!*v || *end || errno || !(r >= 0.064 && r <= 100000.0) || strchr(v, 'x') ||
            strchr(v, 'X'))
            sl_diag_add(p->diag, p->file, s->line[K_RATE_MBPS],
                        "bad rate_mbps '%s' (0.064..100000)", v);
        else
            c->link.rate_mbps = r;
    }
    c->link.rate_kbps = (uint32_t)(c->link.rate_mbps * 1000.0 + 0.5);
    /* The symbol must stay within SL_SYMBOL_MIN..SL_SYMBOL_MAX once IPv4,
     * UDP and the frame header are taken off. */
    num(p, s, SEC_LINK, K_MTU, 576, SL_SYMBOL_MAX + SL_IPV4_UDP_BYTES + SL_FRAME_OVERHEAD,
        SL_TXCONF_DEFAULT_MTU, &c->link.mtu);
    c->link.symbol_bytes = SL_SYMBOL_FOR_MTU(c->link.mtu);
}

static void do_fec(struct parse *p)
{
    const struct rawsec *s = &p->single[SEC_FEC];
    uint32_t k, m, d;
    bool ok = num(p, s, SEC_FEC, K_K, 1, SL_FEC_MAX_SYMBOLS - 1, SL_TXCONF_DEFAULT_K, &k);
    ok &= num(p, s, SEC_FEC, K_M, 1, SL_FEC_MAX_SYMBOLS - 1, SL_TXCONF_DEFAULT_M, &m);
    num(p, s, SEC_FEC, K_INTERLEAVE, 1, 64, SL_TXCONF_DEFAULT_INTERLEAVE, &d);   /* sl_sender limit */
    if (ok && k + m > SL_FEC_MAX_SYMBOLS)
        sl_diag_add(p->diag, p->file, s->line[K_M] ? s->line[K_M] : s->line[K_K],
                    "k + m = %u exceeds %u (GF(2^8) Reed-Solomon)", k + m, SL_FEC_MAX_SYMBOLS);
    p->c->fec.k = (uint8_t)k;
    p->c->fec.m = (uint8_t)m;
    p->c->fec.interleave = (uint8_t)d;
}

/* Only mode and readability: the key's contents are checked where it is
 * loaded (proto), so --check needs no crypto. */
static void check_key_file(struct parse *p, const char *path, unsigned line)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        sl_diag_add(p->diag, p->file, line, "signing_key '%s': %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        sl_diag_add(p->diag, p->file, line, "signing_key '%s' is not a regular file", path);
        return;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        sl_diag_add(p->diag, p->file, line,
                    "signing_key '%s' is accessible by group or others (mode %04o); "
                    "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        sl_diag_add(p->diag, p->file, line, "signing_key '%s' is not readable: %s", path,
                    strerror(errno));
    else
        close(fd);
}

static void do_keys(struct parse *p)
{
    struct sl_txconf *c = p->c;
    const struct rawsec *s = &p->single[SEC_KEYS];
    const char *v;
    snprintf(c->keys.state_dir, sizeof c->keys.state_dir, "%s", SL_TXCONF_DEFAULT_STATE_DIR);
    if (!s->header) {
        sl_diag_add(p->diag, p->file, 0, "missing section [keys]");
        return;
    }
    if (require(p, s, SEC_KEYS, K_SIGNING_KEY, "")) {
        v = val(s, K_SIGNING_KEY);
        if (!*v)
            sl_diag_add(p->diag, p->file, s->line[K_SIGNING_KEY], "empty signing_key");
        else
            resolve(p, c->keys.signing_key, v, s->line[K_SIGNING_KEY]);
        if (c->keys.signing_key[0] && !(p->flags & SL_TXCONF_SKIP_HOST_CHECKS))
            check_key_file(p, c->keys.signing_key, s->line[K_SIGNING_KEY]);
    }
    if ((v = val(s, K_STATE_DIR))) {
        if (!*v)
            sl_diag_add(p->diag, p->file, s->line[K_STATE_DIR], "empty state_dir");
        else
            resolve(p, c->keys.state_dir, v, s->line[K_STATE_DIR]);
    }
    struct stat st;
    /* A missing state_dir is created at start; something else in its place is not. */
    if (!(p->flags & SL_TXCONF_SKIP_HOST_CHECKS) && c->keys.state_dir[0] &&
        stat(c->keys.state_dir, &st) == 0 && !S_ISDIR(st.st_mode))
        sl_diag_add(p->diag, p->file, s->line[K_STATE_DIR] ? s->line[K_STATE_DIR] : s->header,
                    "state_dir '%s' is not a directory", c->keys.state_dir);
}

static void do_snapshot(struct parse *p)
{
    const struct rawsec *s = &p->single[SEC_SNAPSHOT];
    num(p, s, SEC_SNAPSHOT, K_KEYFRAME_MS, 100, 3600000, SL_TXCONF_DEFAULT_KEYFRAME_MS,
        &p->c->snapshot.keyframe_ms);
    num(p, s, SEC_SNAPSHOT, K_BEACON_MS, 10, 60000, SL_TXCONF_DEFAULT_BEACON_MS,
        &p->c->snapshot.beacon_ms);
    num(p, s, SEC_SNAPSHOT, K_MAX_DELAY_MS, 0, 1000, SL_TXCONF_DEFAULT_MAX_DELAY_MS,
        &p->c->snapshot.max_delay_ms);
}

/* The metrics file is replaced by rename from a temporary file beside it,
 * so its directory must exist; the path itself must not be a directory. */
static void do_metrics_file(struct parse *p)
{
    const struct rawsec *s = &p->single[SEC_TX];
    const char *v = val(s, K_METRICS_FILE);
    unsigned line = s->line[K_METRICS_FILE];
    if (!v)
        return;
    if (!*v) {
        sl_diag_add(p->diag, p->file, line, "empty metrics_file");
        return;
    }
    resolve(p, p->c->tx.metrics_file, v, line);
    const char *path = p->c->tx.metrics_file;
    const char *slash = strrchr(path, '/');
    if (!path[0] || (slash && !slash[1])) {
        if (path[0])
            sl_diag_add(p->diag, p->file, line, "metrics_file '%s' names no file", path);
        p->c->tx.metrics_file[0] = '\0';
        return;
    }
    if (p->flags & SL_TXCONF_SKIP_HOST_CHECKS)
        return;
    char dir[SL_TXCONF_STR_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0)
        sl_diag_add(p->diag, p->file, line, "metrics_file '%s': directory '%s': %s", path, dir,
                    strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        sl_diag_add(p->diag, p->file, line, "metrics_file '%s': '%s' is not a directory", path, dir);
    else if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        sl_diag_add(p->diag, p->file, line, "metrics_file '%s' is a directory", path);
}

static void do_tx(struct parse *p)
{
    const struct rawsec *s = &p->single[SEC_TX];
    do_metrics_file(p);
    const char *v = val(s, K_USER);
    if (!v)
        return;
    if (!*v || strlen(v) >= sizeof p->c->tx.user) {
        sl_diag_add(p->diag, p->file, s->line[K_USER], "bad user '%s'", v);
        return;
    }
    snprintf(p->c->tx.user, sizeof p->c->tx.user, "%s", v);
    if (!(p->flags & SL_TXCONF_SKIP_HOST_CHECKS)) {
        errno = 0;
        if (!getpwnam(v))
            sl_diag_add(p->diag, p->file, s->line[K_USER], "user '%s' does not exist", v);
    }
}

/* protocol = generator: `tags` is a tag count and `rate` updates per
 * second (tx/sl_generator.h); nothing is polled, so the Modbus keys do not
 * apply. */
static void do_generator(struct parse *p, const struct rawsec *s, struct sl_txconf_device *d)
{
    uint32_t n;
    static const int modbus_only[] = { K_ADDRESS, K_POLL_MS, K_TIMEOUT_MS, K_MAX_GAP, K_BAUD,
                                       K_PARITY, K_DATA_BITS, K_STOP_BITS, K_RS485, K_RTS,
                                       K_RTS_DELAY_US };
    for (size_t i = 0; i < sizeof modbus_only / sizeof modbus_only[0]; i++)
        forbid(p, s, SEC_DEVICE, modbus_only[i], "does not apply to protocol generator");
    num(p, s, SEC_DEVICE, K_UNIT, 0, 255, SL_TXCONF_DEFAULT_UNIT, &n);
    d->unit = (uint8_t)n;
    num(p, s, SEC_DEVICE, K_MIRROR_UNIT, 0, 255, d->unit, &n);
    d->mirror_unit = (uint8_t)n;
    num(p, s, SEC_DEVICE, K_RATE, 0, SL_GENERATOR_MAX_RATE, SL_GENERATOR_DEFAULT_RATE, &d->rate);
    if (require(p, s, SEC_DEVICE, K_TAGS, " (the number of tags)") &&
        num(p, s, SEC_DEVICE, K_TAGS, 1, SL_GENERATOR_MAX_TAGS, 1, &n)) {
        sl_err e = sl_generator_tagmap(&d->tagmap, d->name, n);
        if (e == SL_ERR_NOMEM)
            p->nomem = true;
        else if (e != SL_OK)
            sl_diag_add(p->diag, p->file, s->header, "device '%s': cannot build its tags: %s",
                        d->name, sl_strerror(e));
    }
}

/* RS-485 options of a serial line: rs485 = on|off (kernel RS-485 mode,
 * TIOCSRS485 through libmodbus), rts = none|up|down (libmodbus drives RTS
 * around each request, for adapters without automatic direction control)
 * and rts_delay_us (settle time either side of the request, only with rts). */
static void do_serial_options(struct parse *p, const struct rawsec *s, struct sl_txconf_device *d)
{
    const char *v;
    if ((v = val(s, K_RS485))) {
        if (strcmp(v, "on") == 0)
            d->rs485 = true;
        else if (strcmp(v, "off") != 0)
            sl_diag_add(p->diag, p->file, s->line[K_RS485], "bad rs485 '%s' (on|off)", v);
    }
    d->rts = SL_TXCONF_RTS_NONE;
    if ((v = val(s, K_RTS))) {
        if (strcmp(v, "up") == 0)
            d->rts = SL_TXCONF_RTS_UP;
        else if (strcmp(v, "down") == 0)
            d->rts = SL_TXCONF_RTS_DOWN;
        else if (strcmp(v, "none") != 0)
            sl_diag_add(p->diag, p->file, s->line[K_RTS], "bad rts '%s' (none|up|down)", v);
    }
    if (d->rts == SL_TXCONF_RTS_NONE)
        forbid(p, s, SEC_DEVICE, K_RTS_DELAY_US, "applies only with rts = up|down");
    else
        num(p, s, SEC_DEVICE, K_RTS_DELAY_US, 0, 1000000, 0, &d->rts_delay_us);
}

static void do_device(struct parse *p, const struct rawsec *s, struct sl_txconf_device *d)
{
    const char *v;
    uint32_t n;
    snprintf(d->name, sizeof d->name, "%s", s->name);
    d->line = s->header;
    if (require(p, s, SEC_DEVICE, K_PROTOCOL, "")) {
        v = val(s, K_PROTOCOL);
        if (strcmp(v, "modbus-tcp") == 0)
            d->protocol = SL_TXCONF_MODBUS_TCP;
        else if (strcmp(v, "modbus-rtu") == 0)
            d->protocol = SL_TXCONF_MODBUS_RTU;
        else if (strcmp(v, "generator") == 0)
            d->protocol = SL_TXCONF_GENERATOR;
        else
            sl_diag_add(p->diag, p->file, s->line[K_PROTOCOL],
                        "bad protocol '%s' (modbus-tcp|modbus-rtu|generator)", v);
    }
    bool rtu = d->protocol == SL_TXCONF_MODBUS_RTU;
    if (d->protocol == SL_TXCONF_GENERATOR) {
        do_generator(p, s, d);
        return;
    }
    forbid(p, s, SEC_DEVICE, K_RATE, "applies only to protocol generator");
    if (require(p, s, SEC_DEVICE, K_ADDRESS, "")) {
        v = val(s, K_ADDRESS);
        snprintf(d->address, sizeof d->address, "%s", v);
        if (d->protocol == SL_TXCONF_MODBUS_TCP &&
            sl_txconf_split_hostport(d->host, sizeof d->host, &d->port, v,
                                     SL_TXCONF_DEFAULT_MODBUS_PORT) != SL_OK)
            sl_diag_add(p->diag, p->file, s->line[K_ADDRESS],
                        "bad address '%s' for modbus-tcp (HOST:PORT, [IPv6]:PORT or HOST)", v);
        if (rtu && v[0] != '/')
            sl_diag_add(p->diag, p->file, s->line[K_ADDRESS],
                        "bad address '%s' for modbus-rtu (a serial device such as /dev/ttyUSB0)", v);
        if (rtu) {
            /* Two names for one port (a udev symlink and /dev/ttyUSB0) are
             * one bus; a port that is not plugged in yet keeps its name. */
            char *canon = realpath(v, NULL);
            snprintf(d->line_path, sizeof d->line_path, "%s",
                     canon && strlen(canon) < sizeof d->line_path ? canon : v);
            free(canon);
        }
    }
    /* Modbus RTU allows units 1..247 (0 is broadcast); TCP gateways also use 0 and 255. */
    num(p, s, SEC_DEVICE, K_UNIT, rtu ? 1 : 0, rtu ? 247 : 255, SL_TXCONF_DEFAULT_UNIT, &n);
    d->unit = (uint8_t)n;
    num(p, s, SEC_DEVICE, K_MIRROR_UNIT, 0, 255, d->unit, &n);
    d->mirror_unit = (uint8_t)n;
    num(p, s, SEC_DEVICE, K_POLL_MS, 10, 3600000, SL_TXCONF_DEFAULT_POLL_MS, &d->poll_ms);
    num(p, s, SEC_DEVICE, K_TIMEOUT_MS, 10, 60000, SL_TXCONF_DEFAULT_TIMEOUT_MS, &d->timeout_ms);
    num(p, s, SEC_DEVICE, K_MAX_GAP, 0, 120, SL_TXCONF_DEFAULT_MAX_GAP, &n);
    d->max_gap = (uint16_t)n;

    d->baud = SL_TXCONF_DEFAULT_BAUD;
    d->parity = SL_TXCONF_DEFAULT_PARITY;
    d->data_bits = SL_TXCONF_DEFAULT_DATA_BITS;
    d->stop_bits = SL_TXCONF_DEFAULT_STOP_BITS;
    if (d->protocol == SL_TXCONF_MODBUS_TCP) {
        static const int rtu_only[] = { K_BAUD, K_PARITY, K_DATA_BITS, K_STOP_BITS, K_RS485, K_RTS,
                                        K_RTS_DELAY_US };
        for (size_t i = 0; i < sizeof rtu_only / sizeof rtu_only[0]; i++)
            forbid(p, s, SEC_DEVICE, rtu_only[i], "applies only to protocol modbus-rtu");
    } else if (rtu) {
        do_serial_options(p, s, d);
        num(p, s, SEC_DEVICE, K_BAUD, 300, 4000000, SL_TXCONF_DEFAULT_BAUD, &d->baud);
        if ((v = val(s, K_PARITY))) {
            if (strcmp(v, "none") == 0 || strcmp(v, "N") == 0)
                d->parity = 'N';
            else if (strcmp(v, "even") == 0 || strcmp(v, "E") == 0)
                d->parity = 'E';
            else if (strcmp(v, "odd") == 0 || strcmp(v, "O") == 0)
                d->parity = 'O';
            else
                sl_diag_add(p->diag, p->file, s->line[K_PARITY],
                            "bad parity '%s' (none|even|odd)", v);
        }
        if (num(p, s, SEC_DEVICE, K_DATA_BITS, 7, 8, SL_TXCONF_DEFAULT_DATA_BITS, &n))
            d->data_bits = (uint8_t)n;
        if (num(p, s, SEC_DEVICE, K_STOP_BITS, 1, 2, SL_TXCONF_DEFAULT_STOP_BITS, &n))
            d->stop_bits = (uint8_t)n;
    }
    if (require(p, s, SEC_DEVICE, K_TAGS, "")) {
        v = val(s, K_TAGS);
        if (!*v) {
            sl_diag_add(p->diag, p->file, s->line[K_TAGS], "empty tags");
        } else {
            resolve(p, d->tags, v, s->line[K_TAGS]);
            if (d->tags[0]) {
                sl_err e = sl_tagmap_load(&d->tagmap, d->tags, p->diag);
                if (e == SL_ERR_NOMEM)
                    p->nomem = true;
                else if (e == SL_ERR_IO)   /* the message names the map; point at the key too */
                    sl_diag_add(p->diag, p->file, s->line[K_TAGS], "device '%s': tag map unusable",
                                d->name);
            }
        }
    }
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
static void group_buses(struct parse *p)
{
    struct sl_txconf *c = p->c;
    for (size_t i = 0; i < c->ndevices; i++) {
        struct sl_txconf_device *d = &c->devices[i];
        d->bus = (uint16_t)i;
        if (d->protocol != SL_TXCONF_MODBUS_RTU || !d->line_path[0])
            continue;
        const struct rawsec *s = &p->dev[i];
        for (size_t j = 0; j < i; j++) {
            const struct sl_txconf_device *o = &c->devices[j];
            if (o->protocol != SL_TXCONF_MODBUS_RTU || strcmp(o->line_path, d->line_path) != 0)
                continue;
            d->bus = o->bus;
            int k = line_difference(o, d);
            if (k >= 0)
                sl_diag_add(p->diag, p->file, s->line[k] ? s->line[k] : s->line[K_ADDRESS],
                            "device '%s': %s differs from device '%s' (line %u) on the same serial "
                            "line %s; every device on one port needs the same baud, parity, "
                            "data_bits, stop_bits, rs485, rts and rts_delay_us",
                            d->name, sec_keys[SEC_DEVICE][k], o->name, o->line, d->line_path);
            break;
        }
        for (size_t j = 0; j < i; j++) {
            const struct sl_txconf_device *o = &c->devices[j];
            if (o->protocol == SL_TXCONF_MODBUS_RTU && o->bus == d->bus && o->unit == d->unit) {
                sl_diag_add(p->diag, p->file, s->line[K_UNIT] ? s->line[K_UNIT] : s->header,
                            "device '%s': unit %u is already polled by device '%s' (line %u) on "
                            "serial line %s", d->name, d->unit, o->name, o->line, d->line_path);
                break;
            }
        }
    }
}

/* mirror_unit collisions and path/name clashes between devices. */
static void cross_checks(struct parse *p)
{
    struct sl_txconf *c = p->c;
    group_buses(p);
    for (size_t i = 0; i < c->ndevices; i++)
        for (size_t j = 0; j < i; j++)
            if (c->devices[i].mirror_unit == c->devices[j].mirror_unit) {
                const struct rawsec *s = &p->dev[i];
                unsigned line = s->line[K_MIRROR_UNIT] ? s->line[K_MIRROR_UNIT]
                              : s->line[K_UNIT] ? s->line[K_UNIT] : s->header;
                sl_diag_add(p->diag, p->file, line,
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

static void free_raw(struct parse *p)
{
    for (int i = 0; i < SEC__SINGLE; i++)
        for (int k = 0; k < KEYS_MAX; k++)
            free(p->single[i].val[k]);
    for (size_t i = 0; i < p->ndev; i++)
        for (int k = 0; k < KEYS_MAX; k++)
            free(p->dev[i].val[k]);
    free(p->dev);
}

sl_err sl_txconf_parse(struct sl_txconf *out, const char *text, size_t len, const char *file,
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
    do_snapshot(&p);
    do_tx(&p);
    if (p.ndev == 0)
        sl_diag_add(diag, out->file, 0, "no [device NAME] section");
    if (p.ndev) {
        out->devices = calloc(p.ndev, sizeof *out->devices);
        if (!out->devices)
            p.nomem = true;
    }
    if (out->devices) {
        out->ndevices = p.ndev;
        for (size_t i = 0; i < p.ndev; i++) {
            do_device(&p, &p.dev[i], &out->devices[i]);
            out->devices[i].first_tag_id = out->ntags;
            out->ntags += (uint32_t)out->devices[i].tagmap.count;
        }
        cross_checks(&p);
    }
    free_raw(&p);
    if (p.nomem)
        return SL_ERR_NOMEM;
    return sl_diag_total(diag) == before ? SL_OK : SL_ERR_CONFIG;
}

sl_err sl_txconf_load(struct sl_txconf *out, const char *path, unsigned flags,
                      struct sl_diag *diag)
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
    char dir[SL_TXCONF_STR_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        dir[0] = '\0';
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    sl_err e = sl_txconf_parse(out, text, len, path, dir, flags, diag);
    free(text);
    return e;
}

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
