/* The configuration core both daemons share: an INI file read with
 * libinih through sl_ini_reader (sl_ini.h), in two phases.
 *
 * Phase 1 (sl_conf_parse) records every key's text and line in a table of
 * sections the daemon supplies, reporting unknown sections and keys,
 * duplicates, keys outside a section and over-long values. Phase 2 is the
 * daemon's finish callback: it reads the recorded keys through the typed
 * getters below, which report a bad value as `file:line: message` into the
 * diag list and keep going, so `--check` lists every problem at once.
 *
 * One HOST:PORT grammar (sl_conf_hostport_parse) serves every address in
 * both daemons and the code that binds or connects: the text `--check`
 * accepts is the text the service parses again (or the struct it binds
 * from), never a second dialect. Start-up only: allocates and may read
 * files; nothing here is on a data path. */
#ifndef SL_CONF_H
#define SL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sl_diag.h"
#include "sl_err.h"
#include "sl_ini.h"

struct addrinfo;

#define SL_CONF_STR_MAX       1024u   /* bytes of a resolved path or value, with NUL (a line
                                         itself is at most 197 bytes: libinih's buffer) */
#define SL_CONF_KEYS_MAX      16u     /* keys one section may define */
#define SL_CONF_SECTIONS_MAX  16u     /* sections one daemon may define */
#define SL_CONF_NAME_MAX      64u     /* [section NAME]: bytes of NAME */
#define SL_CONF_IFNAME_MAX    16u     /* IF_NAMESIZE, with NUL */
#define SL_CONF_FILE_MAX      (1u << 20)   /* a configuration file larger than this is refused */

/* Parse flags (the daemons' SL_*CONF_SKIP_HOST_CHECKS are this bit). */
#define SL_CONF_SKIP_HOST_CHECKS 1u   /* no stat, no key files, no user or DNS look-ups */

/* One section kind of a daemon's table. named = 0: a single [name]; named
 * = N: any number up to N of [name NAME] (NAME of A-Z a-z 0-9 _ - .,
 * 1..SL_CONF_NAME_MAX bytes, unique), e.g. TX's [device NAME]. */
struct sl_conf_section {
    const char *name;
    const char *const *keys;        /* NULL-terminated, at most SL_CONF_KEYS_MAX */
    unsigned named;
};

/* One section as written: its header line and each key's text and line. */
struct sl_conf_sec {
    int kind;                       /* index into the section table */
    unsigned header;                /* line of the header, 0 = section absent */
    unsigned line[SL_CONF_KEYS_MAX];    /* line of each key, 0 = absent */
    char *val[SL_CONF_KEYS_MAX];    /* owned copies */
    char name[SL_CONF_NAME_MAX + 1];    /* named sections: NAME */
};

/* The state of one parse, handed to the daemon's finish callback. */
struct sl_conf {
    const struct sl_conf_section *tab;
    size_t ntab;
    struct sl_diag *diag;
    const char *file;               /* name used in messages */
    const char *base_dir;           /* relative paths resolve here (NULL/"": cwd) */
    unsigned flags;                 /* SL_CONF_SKIP_HOST_CHECKS */
    void *out;                      /* the daemon's configuration struct */
    struct sl_ini_src src;
    struct sl_conf_sec single[SL_CONF_SECTIONS_MAX];    /* by kind; header 0 = absent */
    struct sl_conf_sec *named;      /* named sections in file order */
    size_t nnamed, namedcap;
    struct sl_conf_sec *cur;        /* section being read; NULL: none yet */
    bool cur_unknown;               /* in a section already reported */
    bool nomem;                     /* set by anyone who failed to allocate */
};

/* What a daemon supplies: its sections and the phase-2 callback, which
 * reads p->single[...] / p->named[...] into p->out. */
struct sl_conf_spec {
    const struct sl_conf_section *sections;
    size_t nsections;               /* at most SL_CONF_SECTIONS_MAX */
    void (*finish)(struct sl_conf *p);
    size_t out_bytes;               /* sizeof the configuration struct: zeroed first */
    size_t file_off;                /* offsetof its char file[SL_CONF_STR_MAX]: the name
                                       messages use, kept for the daemon's own */
};

/* Zeroes out, stores file in it and runs both phases over text (len
 * bytes). SL_OK when diag gained no problem, SL_ERR_CONFIG when it did,
 * SL_ERR_NOMEM when something could not be allocated (out is filled as far
 * as possible in every case). */
__attribute__((warn_unused_result))
sl_err sl_conf_parse(const struct sl_conf_spec *spec, void *out, const char *text, size_t len,
                     const char *file, const char *base_dir, unsigned flags, struct sl_diag *diag);

/* Reads path (at most SL_CONF_FILE_MAX bytes) and parses it with base_dir =
 * the file's directory. An unreadable or oversized file is one diag entry
 * ("cannot open configuration: ...") and SL_ERR_IO (out zeroed). */
__attribute__((warn_unused_result))
sl_err sl_conf_load(const struct sl_conf_spec *spec, void *out, const char *path, unsigned flags,
                    struct sl_diag *diag);

/* Defines a daemon's two entry points over its spec, as its header
 * declares them: sl_err PARSE(TYPE *out, text, len, file, base_dir, flags,
 * diag) and sl_err LOAD(TYPE *out, path, flags, diag). */
#define SL_CONF_ENTRY_POINTS(TYPE, PARSE, LOAD, SPEC)                                            \
    sl_err PARSE(TYPE *out, const char *text, size_t len, const char *file, const char *base_dir, \
                 unsigned flags, struct sl_diag *diag)                                           \
    {                                                                                            \
        return sl_conf_parse(&(SPEC), out, text, len, file, base_dir, flags, diag);              \
    }                                                                                            \
    sl_err LOAD(TYPE *out, const char *path, unsigned flags, struct sl_diag *diag)               \
    {                                                                                            \
        return sl_conf_load(&(SPEC), out, path, flags, diag);                                    \
    }

/* ---- getters: section s (of p), key index k ---------------------------------
 * Each reports a bad value at the key's line as "bad KEY 'VALUE' (...)" (the
 * text the unit tests pin) and returns false; an absent key leaves the
 * default and returns true unless said otherwise. */

/* The key's text, or NULL when absent. */
const char *sl_conf_val(const struct sl_conf_sec *s, int k);

/* The key's name in the table. */
const char *sl_conf_key(const struct sl_conf *p, const struct sl_conf_sec *s, int k);

/* The line to blame for a key: its own, else the section header. */
unsigned sl_conf_line(const struct sl_conf_sec *s, int k);

/* One entry of a comma-separated list: from *q, blanks trimmed, into
 * [*a, *b); *q moves past the comma. False when the list is used up. */
bool sl_conf_list_next(const char **q, const char **a, const char **b);

/* Host checks on (stat, look-ups)? */
bool sl_conf_host_checks(const struct sl_conf *p);

/* "file:line: message" into p's diag. */
void sl_conf_error(struct sl_conf *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Present, else "[sec]: missing required key 'k'WHY" (named sections:
 * "sec 'NAME': missing ...") at the header. */
bool sl_conf_require(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *why);

/* Absent, else "key 'k' WHY" at its line. */
bool sl_conf_forbid(struct sl_conf *p, const struct sl_conf_sec *s, int k, const char *why);

/* A decimal integer in [min, max] (no sign, no blanks), else "bad k 'v'
 * (integer MIN..MAX)". *out = def when absent or bad. */
bool sl_conf_u64(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint64_t min, uint64_t max,
                 uint64_t def, uint64_t *out);
bool sl_conf_u32(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint32_t min, uint32_t max,
                 uint32_t def, uint32_t *out);

/* Plain numeric keys of a section as one table: each entry is read with
 * sl_conf_u32 into the uint32_t at byte offset off of base (SL_CONF_U32
 * builds an entry from a struct type and field). True when all were good. */
struct sl_conf_u32_field {
    int key;
    uint32_t min, max, def;
    size_t off;
};
#define SL_CONF_U32(KEY, MIN, MAX, DEF, TYPE, FIELD) { KEY, MIN, MAX, DEF, offsetof(TYPE, FIELD) }
bool sl_conf_u32_fields(struct sl_conf *p, const struct sl_conf_sec *s,
                        const struct sl_conf_u32_field *f, size_t n, void *base);

/* One of names[i].name (list ends with a NULL name) into *out =
 * names[i].value, else "bad k 'v' (SHOWN)"; *out untouched when absent or
 * bad. SL_CONF_ON_OFF and SL_CONF_YES_NO are the booleans. */
struct sl_conf_name {
    const char *name;
    int value;
};
extern const struct sl_conf_name SL_CONF_ON_OFF[];    /* on|off */
extern const struct sl_conf_name SL_CONF_YES_NO[];    /* yes|no, on|off accepted too */
bool sl_conf_enum(struct sl_conf *p, const struct sl_conf_sec *s, int k,
                  const struct sl_conf_name *names, const char *shown, int *out);
bool sl_conf_bool(struct sl_conf *p, const struct sl_conf_sec *s, int k,
                  const struct sl_conf_name *names, bool *out);

/* A path, resolved against p->base_dir into out (SL_CONF_STR_MAX bytes):
 * "empty k" or "path 'v' too long" when unusable. False (out "") when
 * absent or unusable. */
bool sl_conf_path(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out);

/* The same resolution for text that is not a whole value (one entry of a
 * list); reports "path '...' too long" at line. */
bool sl_conf_resolve(struct sl_conf *p, char *out, const char *v, size_t n, unsigned line);

/* A network interface name (1..15 bytes, no '/' or blanks) into out
 * (SL_CONF_IFNAME_MAX bytes). */
bool sl_conf_ifname(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out);

/* A user to run as (out: cap bytes); with host checks it must exist. */
bool sl_conf_user(struct sl_conf *p, const struct sl_conf_sec *s, int k, char *out, size_t cap);

/* Which keys a choice (a transport, a protocol) needs or refuses: for
 * every rule whose `when` equals when, require (why appended to the
 * message) or forbid ("key 'k' WHY") its key. */
struct sl_conf_rule {
    int when;
    int key;
    bool require;
    const char *why;
};
void sl_conf_rules(struct sl_conf *p, const struct sl_conf_sec *s, const struct sl_conf_rule *rules,
                   size_t n, int when);

/* ---- HOST:PORT ---------------------------------------------------------------
 * The one address grammar (table in docs/rx.md, "Addresses"):
 *   HOST:PORT        HOST: IPv4 dotted quad or a host name (A-Z a-z 0-9 - . _,
 *                    1..253 bytes, resolved when binding or connecting)
 *   [IPV6]:PORT      an IPv6 literal in brackets, optionally %zone
 *   [IPV4]:PORT      a dotted quad in brackets (as getaddrinfo took it)
 *   *:PORT           every address, where the flags allow it (listeners)
 *   HOST / [IPV6]    where a default port applies
 * PORT: 1..5 decimal digits, 1..65535 (0 where the flags allow it). Bare
 * IPv6 without brackets, an empty host, blanks and trailing junk are
 * refused. No DNS here. */
#define SL_HOSTPORT_HOST_MAX   256u   /* host text with NUL */

#define SL_HOSTPORT_DEFAULT_PORT 1u   /* the port may be left out (then default_port) */
#define SL_HOSTPORT_PORT_ZERO    2u   /* port 0 accepted: a listener gets a free port */
#define SL_HOSTPORT_ANY          4u   /* "*" accepted: every address (listeners) */
#define SL_HOSTPORT_LISTENER     (SL_HOSTPORT_PORT_ZERO | SL_HOSTPORT_ANY)

struct sl_hostport {
    char host[SL_HOSTPORT_HOST_MAX];  /* without brackets; "*" for any */
    uint16_t port;
    int family;                       /* AF_INET, AF_INET6 (literals), AF_UNSPEC (a name, any) */
    bool any;                         /* "*" */
};

/* Parses text into *out (zeroed on failure) by the grammar above; why
 * (cap bytes, may be NULL) says what is wrong. SL_ERR_CONFIG when refused. */
__attribute__((warn_unused_result))
sl_err sl_conf_hostport_parse(struct sl_hostport *out, const char *text, uint16_t default_port,
                              unsigned flags, char *why, size_t cap);

/* Resolution flags. */
#define SL_HOSTPORT_PASSIVE   1u      /* for bind(): "*" is the wildcard address */
#define SL_HOSTPORT_NUMERIC   2u      /* no /etc/hosts or DNS: a name fails (EAI_NONAME) */

/* getaddrinfo for hp with the hints every bind and connect of Sluice uses
 * (AF_UNSPEC, socktype, AI_NUMERICSERV, AI_PASSIVE when asked). *res must
 * be freed with freeaddrinfo. Returns 0 or the EAI_* code. May block on DNS
 * for a name: start-up only. */
int sl_conf_hostport_resolve(struct addrinfo **res, const struct sl_hostport *hp, int socktype,
                             unsigned rflags);

/* Parse and resolve text in one go, into the first address (for callers
 * that take a string: the link, the services). SL_ERR_CONFIG when refused
 * by the grammar or not resolvable. */
__attribute__((warn_unused_result))
sl_err sl_conf_hostport_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *text,
                                 uint16_t default_port, unsigned flags, int socktype,
                                 unsigned rflags);

/* The getter: key k of s by the grammar into *out, else "bad k 'v'WHAT
 * (FORM): WHY" where FORM lists the accepted shapes for flags and WHY is
 * the parser's reason. */
bool sl_conf_hostport(struct sl_conf *p, const struct sl_conf_sec *s, int k, uint16_t default_port,
                      unsigned flags, const char *what, struct sl_hostport *out);

#endif
