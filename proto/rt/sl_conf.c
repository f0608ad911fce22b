#include "sl_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- phase 1: every key's text and line --------------------------------------
 * libinih calls the handler for key lines only and does not pass line
 * numbers in Debian's build, so it reads through sl_ini_reader, which counts
 * lines, hands section headers to section_line below and reports syntax
 * errors; it strips leading blanks, which turns off inih's multi-line
 * continuation (one `key = value` per line). The handler only records; the
 * daemon's finish callback interprets once everything is known (a
 * transport or protocol decides what other keys mean wherever they are). */

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

/* [kind NAME]: a new named section, or NULL after reporting why not. */
static struct sl_conf_sec *named_section(struct sl_conf *p, int kind, const char *nm, size_t nl)
{
    const struct sl_conf_section *t = &p->tab[kind];
    bool ok = nl > 0 && nl <= SL_CONF_NAME_MAX;
    for (size_t i = 0; ok && i < nl; i++)
        ok = name_char(nm[i]);
    if (!ok) {
        sl_conf_error(p, p->src.line, "bad %s name '%.*s' (1..%u of A-Z a-z 0-9 _ - .)", t->name,
                      (int)nl, nm, SL_CONF_NAME_MAX);
        return NULL;
    }
    size_t count = 0;
    for (size_t i = 0; i < p->nnamed; i++) {
        const struct sl_conf_sec *o = &p->named[i];
        if (o->kind != kind)
            continue;
        count++;
        if (strlen(o->name) == nl && memcmp(o->name, nm, nl) == 0) {
            sl_conf_error(p, p->src.line, "duplicate %s name '%.*s' (first at line %u)", t->name,
                          (int)nl, nm, o->header);
            return NULL;
        }
    }
    if (count == t->named) {
        sl_conf_error(p, p->src.line, "more than %u %ss", t->named, t->name);
        return NULL;
    }
    if (p->nnamed == p->namedcap) {
        size_t cap = p->namedcap ? p->namedcap * 2 : 8;
        struct sl_conf_sec *d = realloc(p->named, cap * sizeof *d);
        if (!d) {
            p->nomem = true;
            return NULL;
        }
        p->named = d;
        p->namedcap = cap;
    }
    struct sl_conf_sec *d = &p->named[p->nnamed++];
    memset(d, 0, sizeof *d);
    memcpy(d->name, nm, nl);
    d->kind = kind;
    d->header = p->src.line;
    return d;
}

/* A section header line "[...]" (leading blanks already stripped). */
static void section_line(void *ctx, const char *s, size_t n)
{
    struct sl_conf *p = ctx;
    const char *end = memchr(s, ']', n);
    p->cur = NULL;
    p->cur_unknown = true;
    if (!end) {
        sl_conf_error(p, p->src.line, "unterminated section header");
        return;
    }
    const char *a = s + 1, *b = end;
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    size_t len = (size_t)(b - a);
    for (size_t i = 0; i < p->ntab; i++) {
        const struct sl_conf_section *t = &p->tab[i];
        size_t tl = strlen(t->name);
        if (len == tl && memcmp(a, t->name, tl) == 0) {
            if (t->named) {
                sl_conf_error(p, p->src.line, "section [%s] needs a name: [%s NAME]", t->name,
                              t->name);
                return;
            }
            struct sl_conf_sec *sec = &p->single[i];
            /* A repeated section goes on filling the first: a key set in
             * both is then reported as a duplicate key too. */
            if (sec->header)
                sl_conf_error(p, p->src.line, "duplicate section [%s] (first at line %u)", t->name,
                              sec->header);
            else
                sec->header = p->src.line;
            p->cur = sec;
            p->cur_unknown = false;
            return;
        }
        if (t->named && len > tl && memcmp(a, t->name, tl) == 0 && (a[tl] == ' ' || a[tl] == '\t')) {
            const char *nm = a + tl;
            while (nm < b && (*nm == ' ' || *nm == '\t'))
                nm++;
            p->cur = named_section(p, (int)i, nm, (size_t)(b - nm));
            p->cur_unknown = p->cur == NULL;
            return;
        }
    }
    sl_conf_error(p, p->src.line, "unknown section [%.*s]", (int)len, a);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct sl_conf *p = user;
    (void)section;   /* p->cur, kept by the reader, is authoritative */
    if (p->cur_unknown)
        return 1;    /* already reported at the section header */
    if (!p->cur) {
        sl_conf_error(p, p->src.line, "key '%s' outside any section", name);
        return 1;
    }
    struct sl_conf_sec *s = p->cur;
    const struct sl_conf_section *t = &p->tab[s->kind];
    int k = -1;
    for (int i = 0; t->keys[i] && i < (int)SL_CONF_KEYS_MAX; i++)
        if (strcmp(t->keys[i], name) == 0)
            k = i;
    if (k < 0) {
        sl_conf_error(p, p->src.line, "unknown key '%s' in [%s]", name, t->name);
        return 1;
    }
    if (s->line[k]) {
        sl_conf_error(p, p->src.line, "duplicate key '%s' (first at line %u)", name, s->line[k]);
        return 1;
    }
    if (strlen(value) >= SL_CONF_STR_MAX) {
        sl_conf_error(p, p->src.line, "value of '%s' longer than %u bytes", name, SL_CONF_STR_MAX - 1);
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

static void free_sec(struct sl_conf_sec *s)
{
    for (unsigned k = 0; k < SL_CONF_KEYS_MAX; k++)
        free(s->val[k]);
}

sl_err sl_conf_parse(const struct sl_conf_spec *spec, void *out, const char *text, size_t len,
                     const char *file, const char *base_dir, unsigned flags, struct sl_diag *diag)
{
    memset(out, 0, spec->out_bytes);
    char *name = (char *)out + spec->file_off;
    snprintf(name, SL_CONF_STR_MAX, "%s", file);
    file = name;
    if (spec->nsections > SL_CONF_SECTIONS_MAX)
        return SL_ERR_CONFIG;
    /* Large (the single sections' tables): on the heap, start-up only. */
    struct sl_conf *p = calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->tab = spec->sections;
    p->ntab = spec->nsections;
    p->diag = diag;
    p->file = file;
    p->base_dir = base_dir;
    p->flags = flags;
    p->out = out;
    for (size_t i = 0; i < p->ntab; i++)
        p->single[i].kind = (int)i;
    p->src = (struct sl_ini_src){ .text = text, .len = len, .diag = diag, .file = file,
                                  .section = section_line, .ctx = p };
    size_t before = sl_diag_total(diag);

    int r = ini_parse_stream(sl_ini_reader, &p->src, handler, p);
    if (r > 0 && sl_diag_total(diag) == before)
        sl_diag_add(diag, file, (unsigned)r, "syntax error");   /* safety net */
    else if (r < 0)
        p->nomem = true;

    spec->finish(p);
    for (size_t i = 0; i < p->ntab; i++)
        free_sec(&p->single[i]);
    for (size_t i = 0; i < p->nnamed; i++)
        free_sec(&p->named[i]);
    free(p->named);
    bool nomem = p->nomem;
    free(p);
    if (nomem)
        return SL_ERR_NOMEM;
    return sl_diag_total(diag) == before ? SL_OK : SL_ERR_CONFIG;
}

sl_err sl_conf_load(const struct sl_conf_spec *spec, void *out, const char *path, unsigned flags,
                    struct sl_diag *diag)
{
    memset(out, 0, spec->out_bytes);
    FILE *f = fopen(path, "re");
    if (!f) {
        sl_diag_add(diag, path, 0, "cannot open configuration: %s", strerror(errno));
        return SL_ERR_IO;
    }
    /* Configurations are small; the cap bounds a mistaken path. */
    char *text = malloc(SL_CONF_FILE_MAX);
    if (!text) {
        fclose(f);
        return SL_ERR_NOMEM;
    }
    size_t len = fread(text, 1, SL_CONF_FILE_MAX, f);
    bool err = ferror(f) != 0, big = len == SL_CONF_FILE_MAX;
    fclose(f);
    if (err || big) {
        sl_diag_add(diag, path, 0, err ? "cannot read configuration" : "configuration larger than 1 MiB");
        free(text);
        return SL_ERR_IO;
    }
    char dir[SL_CONF_STR_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        dir[0] = '\0';
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    sl_err e = sl_conf_parse(spec, out, text, len, path, dir, flags, diag);
    free(text);
    return e;
}

/* ---- phase 2: typed getters ---------------------------------------------------- */

const char *sl_conf_val(const struct sl_conf_sec *s, int k)
{
    return s->line[k] ? s->val[k] : NULL;
}

const char *sl_conf_key(const struct sl_conf *p, const struct sl_conf_sec *s, int k)
{
    return p->tab[s->kind].keys[k];
}

unsigned sl_conf_line(const struct sl_conf_sec *s, int k)
{
    return s->line[k] ? s->line[k] : s->header;
}

bool sl_conf_list_next(const char **q, const char **a, const char **b)
{
    if (!*q)
        return false;
    const char *comma = strchr(*q, ',');
    *a = *q;
    *b = comma ? comma : *q + strlen(*q);
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
    *q = comma ? comma + 1 : NULL;
    return true;
}

bool sl_conf_host_checks(const struct sl_conf *p)
{
    return !(p->flags & SL_CONF_SKIP_HOST_CHECKS);
}

void sl_conf_error(struct sl_conf *p, unsigned line, const char *fmt, ...)
{
    char m[SL_DIAG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    sl_diag_add(p->diag, p->file, line, "%s", m);
}

bool sl_conf_require(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *why)
{
    if (sl_conf_val(s, k))
        return true;
    const struct sl_conf_section *t = &p->tab[s->kind];
    if (t->named)
        sl_conf_error(p, s->header, "%s '%s': missing required key '%s'%s", t->name, s->name,
                      t->keys[k], why);
    else
        sl_conf_error(p, s->header, "[%s]: missing required key '%s'%s", t->name, t->keys[k], why);
    return false;
}

bool sl_conf_forbid(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *why)
{
    if (!sl_conf_val(s, k))
        return true;
    sl_conf_error(p, s->line[k], "key '%s' %s", sl_conf_key(p, s, k), why);
    return false;
}

void sl_conf_rules(struct sl_conf *p, const struct sl_conf_sec *s, const struct sl_conf_rule *rules,
                   size_t n, int when)
{
    for (size_t i = 0; i < n; i++) {
        if (rules[i].when != when)
            continue;
        if (rules[i].require)
            sl_conf_require(p, s, rules[i].key, rules[i].why);
        else
            sl_conf_forbid(p, s, rules[i].key, rules[i].why);
    }
}

/* Decimal digits only, no overflow. */
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

bool sl_conf_u64(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint64_t min, uint64_t max,
                 uint64_t def, uint64_t *out)
{
    const char *v = sl_conf_val(s, k);
    uint64_t n;
    *out = def;
    if (!v)
        return true;
    if (!parse_u64(v, &n) || n < min || n > max) {
        sl_conf_error(p, s->line[k], "bad %s '%s' (integer %llu..%llu)", sl_conf_key(p, s, k), v,
                      (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = n;
    return true;
}

bool sl_conf_u32(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint32_t min, uint32_t max,
                 uint32_t def, uint32_t *out)
{
    uint64_t n;
    bool ok = sl_conf_u64(p, s, k, min, max, def, &n);
    *out = (uint32_t)n;
    return ok;
}

bool sl_conf_u32_fields(struct sl_conf *p, const struct sl_conf_sec *s,
                        const struct sl_conf_u32_field *f, size_t n, void *base)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        ok &= sl_conf_u32(p, s, f[i].key, f[i].min, f[i].max, f[i].def, &v);
        memcpy((char *)base + f[i].off, &v, sizeof v);
    }
    return ok;
}

const struct sl_conf_name SL_CONF_ON_OFF[] = { { "on", 1 }, { "off", 0 }, { NULL, 0 } };
const struct sl_conf_name SL_CONF_YES_NO[] = { { "yes", 1 }, { "no", 0 }, { "on", 1 }, { "off", 0 },
                                               { NULL, 0 } };

bool sl_conf_enum(struct sl_conf *p, const struct sl_conf_sec *s, int k,
                  const struct sl_conf_name *names, const char *shown, int *out)
{
    const char *v = sl_conf_val(s, k);
    if (!v)
        return true;
    for (size_t i = 0; names[i].name; i++) {
        if (strcmp(v, names[i].name) == 0) {
            *out = names[i].value;
            return true;
        }
    }
    sl_conf_error(p, s->line[k], "bad %s '%s' (%s)", sl_conf_key(p, s, k), v, shown);
    return false;
}

bool sl_conf_bool(struct sl_conf *p, const struct sl_conf_sec *s, int k,
                  const struct sl_conf_name *names, bool *out)
{
    int v = *out;
    bool ok = sl_conf_enum(p, s, k, names, names == SL_CONF_YES_NO ? "yes|no" : "on|off", &v);
    *out = v != 0;
    return ok;
}

bool sl_conf_resolve(struct sl_conf *p, char *out, const char *v, size_t n, unsigned line)
{
    int w;
    if (v[0] == '/' || !p->base_dir || !p->base_dir[0])
        w = snprintf(out, SL_CONF_STR_MAX, "%.*s", (int)n, v);
    else
        w = snprintf(out, SL_CONF_STR_MAX, "%s/%.*s", p->base_dir, (int)n, v);
    if (w < 0 || (size_t)w >= SL_CONF_STR_MAX) {
        sl_conf_error(p, line, "path '%.*s' too long", (int)n, v);
        out[0] = '\0';
        return false;
    }
    return true;
}

bool sl_conf_path(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out)
{
    const char *v = sl_conf_val(s, k);
    out[0] = '\0';
    if (!v)
        return false;
    if (!*v) {
        sl_conf_error(p, s->line[k], "empty %s", sl_conf_key(p, s, k));
        return false;
    }
    return sl_conf_resolve(p, out, v, strlen(v), s->line[k]);
}

bool sl_conf_ifname(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out)
{
    const char *v = sl_conf_val(s, k);
    if (!v)
        return true;
    if (!*v || strlen(v) >= SL_CONF_IFNAME_MAX || strchr(v, '/') || strchr(v, ' ')) {
        sl_conf_error(p, s->line[k], "bad interface name '%s' (1..%u bytes, no '/' or spaces)", v,
                      SL_CONF_IFNAME_MAX - 1);
        return false;
    }
    snprintf(out, SL_CONF_IFNAME_MAX, "%s", v);
    return true;
}

bool sl_conf_user(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out, size_t cap)
{
    const char *v = sl_conf_val(s, k);
    if (!v)
        return true;
    if (!*v || strlen(v) >= cap) {
        sl_conf_error(p, s->line[k], "bad user '%s'", v);
        return false;
    }
    snprintf(out, cap, "%s", v);
    if (sl_conf_host_checks(p)) {
        errno = 0;
        if (!getpwnam(v)) {
            sl_conf_error(p, s->line[k], "user '%s' does not exist", v);
            return false;
        }
    }
    return true;
}

/* ---- HOST:PORT ------------------------------------------------------------------ */

static sl_err hp_fail(struct sl_hostport *out, char *why, size_t cap, const char *msg)
{
    memset(out, 0, sizeof *out);
    if (why && cap)
        snprintf(why, cap, "%s", msg);
    return SL_ERR_CONFIG;
}

/* A host name as resolvers take it: 1..253 of A-Z a-z 0-9 - . _ (a dotted
 * quad passes here too; getaddrinfo reads it as a number). */
static bool host_name(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(h[i]))
            return false;
    return true;
}

sl_err sl_conf_hostport_parse(struct sl_hostport *out, const char *text, uint16_t default_port,
                              unsigned flags, char *why, size_t cap)
{
    const char *h, *rest;
    size_t hl;
    memset(out, 0, sizeof *out);
    if (why && cap)
        why[0] = '\0';
    if (!text || !*text)
        return hp_fail(out, why, cap, "empty");
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (!rb)
            return hp_fail(out, why, cap, "'[' without ']'");
        h = text + 1;
        hl = (size_t)(rb - h);
        rest = rb + 1;
    } else {
        const char *colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':'))
            return hp_fail(out, why, cap, "an IPv6 address needs brackets: [V6]:PORT");
        h = text;
        hl = colon ? (size_t)(colon - text) : strlen(text);
        rest = text + hl;
    }
    if (hl == 0)
        return hp_fail(out, why, cap, "no host");
    if (hl >= sizeof out->host)
        return hp_fail(out, why, cap, "host too long");
    char host[SL_HOSTPORT_HOST_MAX];
    memcpy(host, h, hl);
    host[hl] = '\0';
    int family = AF_UNSPEC;
    bool any = false;
    if (text[0] == '[') {
        /* An IPv6 literal, optionally with a %zone (an interface name), or
         * an IPv4 dotted quad (getaddrinfo used to take "[1.2.3.4]:PORT",
         * so configurations may hold it). */
        char addr[SL_HOSTPORT_HOST_MAX];
        const char *pct = strchr(host, '%');
        size_t al = pct ? (size_t)(pct - host) : hl;
        struct in6_addr a6;
        struct in_addr a4;
        memcpy(addr, host, al);
        addr[al] = '\0';
        if (!pct && inet_pton(AF_INET, host, &a4) == 1)
            family = AF_INET;
        else if (inet_pton(AF_INET6, addr, &a6) != 1)
            return hp_fail(out, why, cap, "not an IPv6 or IPv4 address in brackets");
        else if (pct && (!pct[1] || strlen(pct + 1) >= SL_CONF_IFNAME_MAX ||
                         !host_name(pct + 1, strlen(pct + 1))))
            return hp_fail(out, why, cap, "bad %zone (an interface name)");
        else
            family = AF_INET6;
    } else if (strcmp(host, "*") == 0) {
        if (!(flags & SL_HOSTPORT_ANY))
            return hp_fail(out, why, cap, "'*' (every address) only for a listener");
        any = true;
    } else {
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) == 1)
            family = AF_INET;
        else if (!host_name(host, hl))
            return hp_fail(out, why, cap, "not an IPv4 address or host name");
    }
    uint64_t port = default_port;
    if (*rest == '\0') {
        if (!(flags & SL_HOSTPORT_DEFAULT_PORT))
            return hp_fail(out, why, cap, "no port");
    } else if (*rest != ':') {
        return hp_fail(out, why, cap, "junk after the host");
    } else {
        const char *pn = rest + 1;
        if (!*pn || strlen(pn) > 5 || !parse_u64(pn, &port))
            return hp_fail(out, why, cap, "port not 1..5 decimal digits");
    }
    if (port > 65535 || (port == 0 && !(flags & SL_HOSTPORT_PORT_ZERO)))
        return hp_fail(out, why, cap, (flags & SL_HOSTPORT_PORT_ZERO) ? "port outside 0..65535"
                                                                        : "port outside 1..65535");
    memcpy(out->host, host, hl + 1);
    out->port = (uint16_t)port;
    out->family = family;
    out->any = any;
    return SL_OK;
}

int sl_conf_hostport_resolve(struct addrinfo **res, const struct sl_hostport *hp, int socktype,
                             unsigned rflags)
{
    struct addrinfo hints;
    char port[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICSERV | ((rflags & SL_HOSTPORT_PASSIVE) ? AI_PASSIVE : 0) |
                     ((rflags & SL_HOSTPORT_NUMERIC) ? AI_NUMERICHOST : 0);
    snprintf(port, sizeof port, "%u", (unsigned)hp->port);
    *res = NULL;
    int r = getaddrinfo(hp->any ? NULL : hp->host, port, &hints, res);
    if (r == 0 && !*res)
        r = EAI_NONAME;
    return r;
}

sl_err sl_conf_hostport_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *text,
                                 uint16_t default_port, unsigned flags, int socktype,
                                 unsigned rflags)
{
    struct sl_hostport hp;
    struct addrinfo *res = NULL;
    memset(ss, 0, sizeof *ss);
    *len = 0;
    if (sl_conf_hostport_parse(&hp, text, default_port, flags, NULL, 0) != SL_OK)
        return SL_ERR_CONFIG;
    if (sl_conf_hostport_resolve(&res, &hp, socktype, rflags) != 0)
        return SL_ERR_CONFIG;
    sl_err e = SL_ERR_CONFIG;
    if (res->ai_addrlen <= sizeof *ss) {
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        e = SL_OK;
    }
    freeaddrinfo(res);
    return e;
}

/* The shapes the grammar accepts under flags, for the getter's message. */
static const char *hp_forms(unsigned flags)
{
    bool any = (flags & SL_HOSTPORT_ANY) != 0, dflt = (flags & SL_HOSTPORT_DEFAULT_PORT) != 0;
    if (any && dflt)
        return "HOST:PORT, [IPv6]:PORT, *:PORT or HOST";
    if (any)
        return "HOST:PORT, [IPv6]:PORT or *:PORT";
    if (dflt)
        return "HOST:PORT, [IPv6]:PORT or HOST";
    return "HOST:PORT or [IPv6]:PORT";
}

bool sl_conf_hostport(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint16_t default_port,
                      unsigned flags, const char *what, struct sl_hostport *out)
{
    const char *v = sl_conf_val(s, k);
    char why[64];
    if (!v)
        return true;
    if (sl_conf_hostport_parse(out, v, default_port, flags, why, sizeof why) == SL_OK)
        return true;
    sl_conf_error(p, s->line[k], "bad %s '%s'%s (%s): %s", sl_conf_key(p, s, k), v, what ? what : "",
                  hp_forms(flags), why);
    return false;
}
