/* The PostgreSQL history backend (sl_histdb.h, url = postgresql://...),
 * through libpq. Schema and operator set-up in docs/history.md
 * ("PostgreSQL backend"):
 *   sluice_tags      (id serial, path_name text unique)
 *   sluice_journals  (journal_id bigint primary key, state bytea, updated timestamptz)
 *   sluice_history   (tag, ts timestamptz, seq, journal_id, value, raw, quality, type, origin)
 *                    partitioned by RANGE (ts), one partition per UTC day
 *                    (sluice_history_YYYYMMDD), UNIQUE index
 *                    (tag, ts, seq, journal_id) covering the other columns
 *                    (a tag's range is read from the index alone: 7x faster
 *                    for a month than visiting the heap).
 *
 * Writes: one transaction per batch; rows go with COPY ... (FORMAT binary)
 * (no text formatting of doubles, no per-row statement) into a temporary
 * staging table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING moves
 * them into sluice_history: a row already stored is skipped, so a batch
 * sent twice (a COMMIT whose reply was lost and that the caller retries, a
 * lost journal blob, a retired journal coming back, two RX on one
 * database) never stores a row twice. The journal blobs in the same
 * transaction. A day's partition is created the
 * first time a row of that day comes (today's and tomorrow's ahead, outside
 * the batch, so the batch seldom takes the parent's lock). Retention drops
 * whole partitions. Queries: one statement per call, streamed row by row
 * (single-row mode), LIMIT n+1 to tell *more.
 *
 * Connection loss: the failing call returns SL_ERR_IO with libpq's text;
 * the next begin (writer) or query (reader) reconnects, at most once per
 * back-off step (1 s doubling to 30 s), with a non-blocking connect bounded
 * by CONNECT_MS so the calling thread's heartbeat keeps moving.
 *
 * Only TCP is accepted (sl_histdb_pg_check_url): RX's seccomp list refuses
 * new AF_UNIX sockets once it is loaded, so a socket-directory URL would
 * connect at start and then fail at the first reconnect. */
#define _GNU_SOURCE   /* timegm, explicit_bzero */
#include "sl_histdb_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_MS      5000    /* one connection attempt, TCP + TLS + auth */
#define CALL_MS         15000   /* one round trip; beyond it the server is taken as hung */
#define BACKOFF_MIN_MS  1000
#define BACKOFF_MAX_MS  30000
#define DAY_US          86400000000LL
/* µs between the Unix epoch and PostgreSQL's (2000-01-01), for binary timestamptz. */
#define PG_EPOCH_US     946684800000000LL
#define HIST_COLS       9
#define PIN_ADDRS       4       /* addresses of the host name kept (IPv4 and IPv6 of a dual-stack host) */

struct tagent {
    char *name;         /* NULL: free slot */
    uint32_t id;
    bool pending;       /* created in the open transaction (forgotten on rollback) */
};

struct pgdb {
    struct sl_histdb base;
    PGconn *conn;
    bool writer;
    char *url;
    char *password;             /* from password_file; wiped at close */
    char home_files[5][320];    /* libpq's per-user files under the RX user's home (connect_once) */
    /* The URL's host name resolved once (resolve_pin): every connection
     * then passes hostaddr= and never asks DNS again. pin_host is the name
     * repeated once per address (libpq pairs host and hostaddr lists; the
     * name still serves TLS verification and .pgpass). */
    bool pin_wanted;            /* the URL names one host by name, no hostaddr */
    char pin_host[PIN_ADDRS * 256];
    char pin_addr[PIN_ADDRS * INET6_ADDRSTRLEN + PIN_ADDRS];
    int64_t next_try_ms;        /* monotonic: no reconnect before */
    int64_t backoff_ms;
    bool in_tx;
    bool in_copy;
    bool staged;                /* rows COPYed into sluice_stage in the open transaction */
    bool hung;                  /* the last call timed out; its text is in base.err */
    /* tag cache (writer): open addressing, power-of-two capacity */
    struct tagent *tags;
    size_t tag_cap, tag_n;
    /* days that have a partition (days since the Unix epoch) */
    int32_t *days;
    size_t day_n, day_cap;
    size_t day_committed;       /* days[0..day_committed) survive a rollback */
    /* COPY buffer, kept between batches */
    unsigned char *buf;
    size_t buf_cap;
};

/* ---- small helpers ----------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* libpq's messages end in newlines and may span lines: one log line. */
static void set_err(struct pgdb *p, const char *what, const char *msg)
{
    snprintf(p->base.err, sizeof p->base.err, "%s%s%s", what, msg && msg[0] ? ": " : "", msg ? msg : "");
    char *o = p->base.err;
    for (const char *c = p->base.err; *c; c++) {
        char ch = (*c == '\n' || *c == '\r' || *c == '\t') ? ' ' : *c;
        if (ch == ' ' && o > p->base.err && o[-1] == ' ')
            continue;
        *o++ = ch;
    }
    *o = '\0';
    size_t n = strlen(p->base.err);
    while (n && p->base.err[n - 1] == ' ')
        p->base.err[--n] = '\0';
}

static sl_err conn_err(struct pgdb *p, const char *what)
{
    set_err(p, what, p->conn ? PQerrorMessage(p->conn) : "not connected");
    return SL_ERR_IO;
}

static sl_err res_err(struct pgdb *p, const char *what, PGresult *r)
{
    if (!r && p->hung)
        return SL_ERR_IO;
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !m[0])
        m = p->conn ? PQerrorMessage(p->conn) : "not connected";
    set_err(p, what, m);
    PQclear(r);
    return SL_ERR_IO;
}

static void put_be16(unsigned char *o, uint16_t v)
{
    o[0] = (unsigned char)(v >> 8);
    o[1] = (unsigned char)v;
}

static void put_be32(unsigned char *o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        o[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void put_be64(unsigned char *o, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        o[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const unsigned char *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | s[i];
    return v;
}

/* Floor division: days since the Unix epoch of a µs time (negative too). */
static int32_t day_of(int64_t us)
{
    int64_t d = us / DAY_US;
    if (us % DAY_US < 0)
        d--;
    return (int32_t)d;
}

static void day_name(int32_t day, char *out, size_t cap)
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "sluice_history_%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* Waits until libpq holds a whole result, at most until deadline (ms,
 * monotonic). A server that accepted the connection and then stopped
 * answering (stopped, swapping, a stalled disk) would hold PQexec for
 * ever, and TCP keepalives do not see it (its kernel still answers): past
 * the deadline the connection is dropped, the next call reconnects. */
static bool wait_ready(struct pgdb *p, int64_t deadline)
{
    while (p->conn && PQisBusy(p->conn)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            set_err(p, "postgresql", "no answer within 15 s: connection dropped");
            p->hung = true;
            PQfinish(p->conn);
            p->conn = NULL;
            p->in_copy = false;
            return false;
        }
        struct pollfd pf = { .fd = PQsocket(p->conn), .events = POLLIN };
        int rc = poll(&pf, 1, (int)left);
        if (rc < 0 && errno != EINTR)
            return false;
        if (rc > 0 && !PQconsumeInput(p->conn))
            return false;
    }
    return p->conn != NULL;
}

/* The next result within the deadline; NULL at the end, or on a failure
 * with *failed set. */
static PGresult *next_result(struct pgdb *p, int64_t deadline, bool *failed)
{
    if (!wait_ready(p, deadline)) {
        *failed = true;
        return NULL;
    }
    return PQgetResult(p->conn);
}

/* PQexec / PQexecParams bounded by CALL_MS: nparams < 0 sends sql as a
 * simple query (several statements allowed). Returns the first error
 * result, else the last one, or a COPY_IN result at once; NULL when the
 * call failed without one (PQresultStatus(NULL) is an error). */
static PGresult *exec_bounded(struct pgdb *p, const char *sql, int nparams, const char *const *vals,
                              const int *lens, const int *fmts, int resfmt)
{
    p->hung = false;
    if (!p->conn)
        return NULL;
    int ok = nparams < 0 ? PQsendQuery(p->conn, sql)
                         : PQsendQueryParams(p->conn, sql, nparams, NULL, vals, lens, fmts, resfmt);
    if (!ok)
        return NULL;
    int64_t deadline = mono_ms() + CALL_MS;
    bool failed = false;
    PGresult *keep = NULL, *r;
    while ((r = next_result(p, deadline, &failed))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN) {
            PQclear(keep);
            return r;
        }
        bool keep_err = keep && PQresultStatus(keep) != PGRES_COMMAND_OK && PQresultStatus(keep) != PGRES_TUPLES_OK;
        if (keep_err) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
    }
    if (failed) {
        PQclear(keep);
        return NULL;
    }
    return keep;
}

static PGresult *exec_simple(struct pgdb *p, const char *sql)
{
    return exec_bounded(p, sql, -1, NULL, NULL, NULL, 0);
}

/* Simple statement, no result rows. */
static sl_err exec_cmd(struct pgdb *p, const char *sql)
{
    PGresult *r = exec_simple(p, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        return res_err(p, "postgresql", r);
    PQclear(r);
    return SL_OK;
}

/* ---- URL checks and masking (--check, logs) -------------------------------- */

/* The host and hostaddr values of a parsed URL (NULL when not given). */
static void url_hosts(const PQconninfoOption *opts, const char **host, const char **hostaddr)
{
    *host = *hostaddr = NULL;
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (!strcmp(o->keyword, "host"))
            *host = o->val;
        else if (!strcmp(o->keyword, "hostaddr"))
            *hostaddr = o->val;
    }
}

/* Whether libpq parses url with its part [cut, cut + len) replaced by with. */
static bool parses_with(const char *url, size_t cut, size_t len, const char *with)
{
    size_t n = strlen(url), w = strlen(with);
    char *t = malloc(n - len + w + 1);
    if (!t)
        return false;
    memcpy(t, url, cut);
    memcpy(t + cut, with, w);
    memcpy(t + cut + w, url + cut + len, n - cut - len + 1);
    PQconninfoOption *o = PQconninfoParse(t, NULL);
    explicit_bzero(t, n - len + w);
    free(t);
    PQconninfoFree(o);
    return o != NULL;
}

/* The reason a URL does not parse, without any of its text. libpq's own
 * message quotes the offending token or the whole URL, password included
 * (a bad percent escape in the password echoes the password), and --check
 * prints it, start-up logs it: so the message is reduced to a class of
 * mistake and the part of the URL it is in, found by parsing again with
 * that part replaced. */
static void parse_error(const char *url, const char *perr, char *err, size_t cap)
{
    static const struct {
        const char *libpq, *what;
    } cls[] = {
        { "invalid percent-encoded token", "a bad percent escape (%XX)" },
        { "forbidden value %00", "a %00 escape" },
        { "end of string reached when looking for matching", "an IPv6 address without its closing ]" },
        { "IPv6 host address may not be empty", "an empty IPv6 address []" },
        { "unexpected character", "an unexpected character after the host" },
        { "invalid URI query parameter", "an unknown query parameter" },
        { "missing key/value separator", "a query parameter without =value" },
        { "extra key/value separator", "a query parameter with two =" },
        { "invalid connection option", "an unknown connection option" },
    };
    const char *what = "a form libpq does not accept";
    for (size_t i = 0; perr && i < sizeof cls / sizeof cls[0]; i++)
        if (!strncmp(perr, cls[i].libpq, strlen(cls[i].libpq)))
            what = cls[i].what;
    const char *part = "host, port or database";
    const char *auth = strstr(url, "://");
    if (auth) {
        size_t a = (size_t)(auth + 3 - url), alen = strcspn(url + a, "/?"), at = 0;
        for (size_t i = a; i < a + alen; i++)
            if (url[i] == '@')
                at = i;
        const char *q = strchr(url + a, '?');
        if (at && parses_with(url, a, at - a, "u"))
            part = "user or password";
        else if (q && parses_with(url, (size_t)(q - url), strlen(q), ""))
            part = "query parameters (?...)";
    }
    snprintf(err, cap, "url cannot be parsed: %s in the %s (the value is not shown)", what, part);
}

sl_err sl_histdb_pg_check_url(const char *url, char *err, size_t cap)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        parse_error(url, perr, err, cap);
        if (perr) {
            explicit_bzero(perr, strlen(perr));
            PQfreemem(perr);
        }
        return SL_ERR_CONFIG;
    }
    const char *host, *hostaddr;
    url_hosts(opts, &host, &hostaddr);
    sl_err e = SL_OK;
    if (strncmp(url, "postgresql://", 13) && strncmp(url, "postgres://", 11)) {
        snprintf(err, cap, "url must start with postgresql://");
        e = SL_ERR_CONFIG;
    } else if ((!host || !host[0]) && (!hostaddr || !hostaddr[0])) {
        snprintf(err, cap, "url names no host: give one (TCP only; a Unix socket cannot be reopened once "
                           "the sandbox is on)");
        e = SL_ERR_CONFIG;
    } else if (host && (host[0] == '/' || host[0] == '@' || strstr(host, ",/") || strstr(host, ",@"))) {
        snprintf(err, cap, "url names a Unix socket directory: use a TCP host (the sandbox refuses new "
                           "Unix sockets)");
        e = SL_ERR_CONFIG;
    }
    PQconninfoFree(opts);
    return e;
}

void sl_histdb_pg_url_host(const char *url, char *host, size_t cap)
{
    if (!cap)
        return;
    host[0] = '\0';
    PQconninfoOption *opts = url ? PQconninfoParse(url, NULL) : NULL;
    if (!opts)
        return;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "host") && o->val) {
            size_t n = strcspn(o->val, ",");   /* the first of a host list */
            snprintf(host, cap, "%.*s", (int)(n < cap ? n : cap - 1), o->val);
        }
    PQconninfoFree(opts);
}

void sl_histdb_pg_mask_url(const char *url, char *out, size_t cap)
{
    /* postgresql://user:SECRET@host/db?password=SECRET: both masked. */
    if (!cap)
        return;
    size_t o = 0;
    const char *s = url ? url : "";
    const char *auth = strstr(s, "://");
    const char *at = NULL, *colon = NULL;
    if (auth) {
        auth += 3;
        size_t alen = strcspn(auth, "/?");
        for (const char *c = auth; c < auth + alen; c++)
            if (*c == '@')
                at = c;
        if (at)
            colon = memchr(auth, ':', (size_t)(at - auth));
    }
    for (const char *c = s; *c && o + 1 < cap;) {
        if (colon && c == colon + 1 && c < at) {
            for (const char *m = "***"; *m && o + 1 < cap; m++)
                out[o++] = *m;
            c = at;
            continue;
        }
        if (!strncmp(c, "password=", 9) && (c == s || c[-1] == '?' || c[-1] == '&')) {
            for (const char *m = "password=***"; *m && o + 1 < cap; m++)
                out[o++] = *m;
            c += 9 + strcspn(c + 9, "&");
            continue;
        }
        out[o++] = *c++;
    }
    out[o] = '\0';
}

/* ---- connection --------------------------------------------------------------- */

static void drop_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Whether the URL names one host by name (not an address, not a list,
 * no hostaddr): the case resolve_pin handles. */
static bool pin_wanted(const char *url)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (!opts)
        return false;
    const char *host, *hostaddr;
    url_hosts(opts, &host, &hostaddr);
    unsigned char a[16];
    bool want = host && host[0] && !strchr(host, ',') && (!hostaddr || !hostaddr[0]) &&
                strlen(host) < 255 && inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1;
    PQconninfoFree(opts);
    return want;
}

/* libpq resolves a host name inside PQconnectStart/PQconnectPoll with a
 * blocking getaddrinfo that no timeout of ours bounds: with the DNS server
 * down that is the resolver's timeout × attempts × servers (up to 30 s
 * with glibc's defaults) at every reconnect, enough for the unit's
 * watchdog to restart all of sluice-rx over an IT-side DNS outage. So the
 * name is looked up once, by the first connection, and its addresses are
 * kept for every later one: a reconnect never waits on DNS. A name that
 * moves to another address needs a restart of sluice-rx (docs/history.md).
 * Until a lookup succeeds each attempt tries it again (as libpq would). */
static sl_err resolve_pin(struct pgdb *p)
{
    if (!p->pin_wanted || p->pin_addr[0])
        return SL_OK;
    char host[256];
    sl_histdb_pg_url_host(p->url, host, sizeof host);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        set_err(p, "postgresql connect: cannot resolve the host name", gai_strerror(rc));
        return SL_ERR_IO;
    }
    char addrs[PIN_ADDRS][INET6_ADDRSTRLEN];
    int n = 0;
    for (struct addrinfo *a = res; a && n < PIN_ADDRS; a = a->ai_next) {
        const void *src = a->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                        : a->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                                                   : NULL;
        if (!src || !inet_ntop(a->ai_family, src, addrs[n], sizeof addrs[n]))
            continue;
        bool dup = false;
        for (int i = 0; i < n; i++)
            dup = dup || !strcmp(addrs[i], addrs[n]);
        if (!dup)
            n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        set_err(p, "postgresql connect: cannot resolve the host name", "no address");
        return SL_ERR_IO;
    }
    size_t ho = 0, ao = 0;
    for (int i = 0; i < n; i++) {
        ho += (size_t)snprintf(p->pin_host + ho, sizeof p->pin_host - ho, "%s%s", i ? "," : "", host);
        ao += (size_t)snprintf(p->pin_addr + ao, sizeof p->pin_addr - ao, "%s%s", i ? "," : "", addrs[i]);
    }
    return SL_OK;
}

/* One connection attempt, non-blocking, bounded by CONNECT_MS (DNS aside:
 * see resolve_pin). */
static sl_err connect_once(struct pgdb *p)
{
    if (p->conn) {
        PQfinish(p->conn);
        p->conn = NULL;
    }
    p->in_tx = p->in_copy = p->staged = false;
    sl_err pe = resolve_pin(p);
    if (pe != SL_OK)
        return pe;
    /* Defaults first, the URL's own settings override them, the password
     * from password_file last (it wins over one in the URL). keepalives and
     * tcp_user_timeout: a server that vanishes without a FIN (a cable, a
     * crash of its host) fails the call within ~10 s, not hours. With the
     * statement timeouts below, no call blocks the thread for longer than
     * ~15 s: under the unit's WatchdogSec (30 s), so a sick database never
     * gets sluice-rx restarted. */
    const char *kw[24], *val[24];
    int n = 0;
    kw[n] = "connect_timeout", val[n++] = "5";
    kw[n] = "application_name", val[n++] = p->writer ? "sluice-rx history" : "sluice-rx query";
    kw[n] = "keepalives", val[n++] = "1";
    kw[n] = "keepalives_idle", val[n++] = "5";
    kw[n] = "keepalives_interval", val[n++] = "2";
    kw[n] = "keepalives_count", val[n++] = "3";
    kw[n] = "tcp_user_timeout", val[n++] = "10000";
    /* libpq looks for ~/.postgresql/ certificates and ~/.pgpass under
     * $HOME, which after the privilege drop is still root's: an unreadable
     * directory there fails the TLS set-up ("could not open certificate
     * file ... Permission denied"). The same files under the home of the
     * user RX runs as, unless the URL names its own. */
    static const char *const home_kw[5] = { "sslcert", "sslkey", "sslrootcert", "sslcrl", "passfile" };
    for (int i = 0; i < 5; i++)
        if (p->home_files[i][0])
            kw[n] = home_kw[i], val[n++] = p->home_files[i];
    kw[n] = "dbname", val[n++] = p->url;
    if (p->pin_addr[0]) {   /* after dbname: overrides the URL's host */
        kw[n] = "host", val[n++] = p->pin_host;
        kw[n] = "hostaddr", val[n++] = p->pin_addr;
    }
    if (p->password)
        kw[n] = "password", val[n++] = p->password;
    kw[n] = NULL, val[n] = NULL;
    p->conn = PQconnectStartParams(kw, val, 1);
    if (!p->conn) {
        set_err(p, "postgresql", "out of memory");
        return SL_ERR_IO;
    }
    if (PQstatus(p->conn) == CONNECTION_BAD)
        return conn_err(p, "postgresql connect");
    int64_t deadline = mono_ms() + CONNECT_MS;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK)
            break;
        if (st == PGRES_POLLING_FAILED)
            return conn_err(p, "postgresql connect");
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            set_err(p, "postgresql connect", "timed out");
            PQfinish(p->conn);
            p->conn = NULL;
            return SL_ERR_IO;
        }
        struct pollfd pf = { .fd = PQsocket(p->conn), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
        int rc = poll(&pf, 1, (int)left);
        if (rc < 0 && errno != EINTR) {
            set_err(p, "postgresql connect", strerror(errno));
            return SL_ERR_IO;
        }
        if (rc > 0 || st == PGRES_POLLING_ACTIVE)
            st = PQconnectPoll(p->conn);
    }
    /* Notices (e.g. "relation already exists, skipping") would go to
     * stderr unformatted: the failures that matter come back as errors. */
    PQsetNoticeProcessor(p->conn, drop_notice, NULL);
    /* A statement that hangs (a lock held by an operator's session) fails
     * instead of stopping the thread for ever. Readers never write. */
    sl_err e = exec_cmd(p, p->writer ? "SET statement_timeout = '15s'; SET lock_timeout = '5s'; "
                                               "SET client_min_messages = warning"
                                     : "SET statement_timeout = '15s'; SET default_transaction_read_only = on");
    return e;
}

/* Connected (or reconnected now), or SL_ERR_IO while the back-off runs. */
static sl_err ensure_conn(struct pgdb *p, sl_err (*after)(struct pgdb *))
{
    if (p->conn && PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) == PQTRANS_IDLE)
        return SL_OK;
    int64_t now = mono_ms();
    if (now < p->next_try_ms) {
        if (!p->base.err[0])
            set_err(p, "postgresql", "not connected (retrying)");
        return SL_ERR_IO;
    }
    sl_err e = connect_once(p);
    if (e == SL_OK && after)
        e = after(p);
    if (e != SL_OK) {
        p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (p->backoff_ms > BACKOFF_MAX_MS)
            p->backoff_ms = BACKOFF_MAX_MS;
        p->next_try_ms = now + p->backoff_ms;
        return e;
    }
    p->backoff_ms = 0;
    p->base.err[0] = '\0';
    return SL_OK;
}

/* ---- schema and partitions (writer) ---------------------------------------- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS sluice_tags ("
    " id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " path_name text NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS sluice_journals ("
    " journal_id bigint PRIMARY KEY,"
    " state bytea NOT NULL,"
    " updated timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS sluice_history ("
    " tag integer NOT NULL,"
    " ts timestamptz NOT NULL,"
    " seq bigint NOT NULL,"
    " journal_id bigint NOT NULL,"
    " value double precision,"
    " raw bigint NOT NULL,"
    " quality bigint NOT NULL,"
    " type smallint NOT NULL,"
    " origin smallint NOT NULL"
    ") PARTITION BY RANGE (ts);"
    /* The covering index is the uniqueness too (no second index to
     * maintain): ts is the partition key, so it may be unique on the
     * partitioned table. The plain index of earlier versions goes. */
    "CREATE UNIQUE INDEX IF NOT EXISTS sluice_history_key ON sluice_history (tag, ts, seq, journal_id) "
    "INCLUDE (value, raw, quality, type, origin);"
    "DROP INDEX IF EXISTS sluice_history_tag_ts;";

/* Per connection: where a batch's COPY lands before the merge (emptied by
 * every COMMIT, gone with the connection). */
static const char stage_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS sluice_stage (LIKE sluice_history) ON COMMIT DELETE ROWS";

static bool day_known(const struct pgdb *p, int32_t d)
{
    for (size_t i = 0; i < p->day_n; i++)
        if (p->days[i] == d)
            return true;
    return false;
}

static sl_err day_add(struct pgdb *p, int32_t d)
{
    if (p->day_n == p->day_cap) {
        size_t cap = p->day_cap ? p->day_cap * 2 : 64;
        int32_t *nd = realloc(p->days, cap * sizeof *nd);
        if (!nd) {
            set_err(p, "postgresql", "out of memory");
            return SL_ERR_NOMEM;
        }
        p->days = nd;
        p->day_cap = cap;
    }
    p->days[p->day_n++] = d;
    return SL_OK;
}

/* The partitions that exist, from the catalogue (names sluice_history_YYYYMMDD). */
static sl_err load_days(struct pgdb *p)
{
    p->day_n = p->day_committed = 0;
    PGresult *r = exec_simple(p, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                  "WHERE i.inhparent = 'sluice_history'::regclass");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return res_err(p, "postgresql partitions", r);
    for (int i = 0; i < PQntuples(r); i++) {
        int y, m, d;
        if (sscanf(PQgetvalue(r, i, 0), "sluice_history_%4d%2d%2d", &y, &m, &d) != 3)
            continue;
        struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
        time_t t = timegm(&tm);
        if (day_add(p, (int32_t)(t / 86400)) != SL_OK) {
            PQclear(r);
            return SL_ERR_NOMEM;
        }
    }
    PQclear(r);
    p->day_committed = p->day_n;
    return SL_OK;
}

static sl_err make_partition(struct pgdb *p, int32_t d)
{
    char name[48], sql[256], from[32], to[32];
    day_name(d, name, sizeof name);
    time_t t0 = (time_t)d * 86400, t1 = t0 + 86400;
    struct tm a, b;
    gmtime_r(&t0, &a);
    gmtime_r(&t1, &b);
    strftime(from, sizeof from, "%Y-%m-%d 00:00:00+00", &a);
    strftime(to, sizeof to, "%Y-%m-%d 00:00:00+00", &b);
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s PARTITION OF sluice_history FOR VALUES FROM ('%s') TO ('%s')",
             name, from, to);
    sl_err e = exec_cmd(p, sql);
    if (e != SL_OK)
        return e;
    return day_add(p, d);
}

static sl_err writer_setup(struct pgdb *p)
{
    sl_err e = exec_cmd(p, schema_sql);
    if (e == SL_OK)
        e = exec_cmd(p, stage_sql);
    if (e == SL_OK)
        e = load_days(p);
    return e;
}

/* ---- tag cache ------------------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct tagent *tag_slot(struct pgdb *p, const char *name)
{
    size_t mask = p->tag_cap - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask)
        if (!p->tags[i].name || !strcmp(p->tags[i].name, name))
            return &p->tags[i];
}

static sl_err tag_cache_add(struct pgdb *p, const char *name, uint32_t id, bool pending)
{
    if ((p->tag_n + 1) * 2 > p->tag_cap) {
        size_t cap = p->tag_cap ? p->tag_cap * 2 : 1024;
        struct tagent *old = p->tags;
        size_t oldcap = p->tag_cap;
        p->tags = calloc(cap, sizeof *p->tags);
        if (!p->tags) {
            p->tags = old;
            set_err(p, "postgresql", "out of memory");
            return SL_ERR_NOMEM;
        }
        p->tag_cap = cap;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].name)
                *tag_slot(p, old[i].name) = old[i];
        free(old);
    }
    struct tagent *s = tag_slot(p, name);
    s->name = strdup(name);
    if (!s->name) {
        set_err(p, "postgresql", "out of memory");
        return SL_ERR_NOMEM;
    }
    s->id = id;
    s->pending = pending;
    p->tag_n++;
    return SL_OK;
}

/* Forgets (rollback) or keeps (commit) the tags created in the transaction.
 * Removal rebuilds the table (rare: only a failed batch that made tags). */
static void tag_cache_settle(struct pgdb *p, bool keep)
{
    bool any = false;
    for (size_t i = 0; i < p->tag_cap; i++)
        if (p->tags[i].name && p->tags[i].pending) {
            if (keep)
                p->tags[i].pending = false;
            else
                any = true;
        }
    if (!any)
        return;
    struct tagent *old = p->tags;
    size_t cap = p->tag_cap;
    p->tags = calloc(cap, sizeof *p->tags);
    if (!p->tags) {   /* keep nothing rather than something wrong */
        p->tags = old;
        for (size_t i = 0; i < cap; i++) {
            free(old[i].name);
            old[i].name = NULL;
        }
        p->tag_n = 0;
        return;
    }
    p->tag_n = 0;
    for (size_t i = 0; i < cap; i++) {
        if (!old[i].name)
            continue;
        if (old[i].pending) {
            free(old[i].name);
            continue;
        }
        *tag_slot(p, old[i].name) = old[i];
        p->tag_n++;
    }
    free(old);
}

/* ---- COPY -------------------------------------------------------------------------- */

static const unsigned char copy_header[19] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0,
                                               0, 0, 0, 0, 0, 0, 0, 0 };

static sl_err copy_end(struct pgdb *p)
{
    if (!p->in_copy)
        return SL_OK;
    p->in_copy = false;
    unsigned char trailer[2] = { 0xff, 0xff };
    if (PQputCopyData(p->conn, (const char *)trailer, 2) != 1 || PQputCopyEnd(p->conn, NULL) != 1)
        return conn_err(p, "postgresql copy");
    sl_err e = SL_OK;
    PGresult *r;
    bool failed = false;
    int64_t deadline = mono_ms() + CALL_MS;
    p->hung = false;
    while ((r = next_result(p, deadline, &failed))) {
        if (e == SL_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
            e = res_err(p, "postgresql copy", r);
            continue;
        }
        PQclear(r);
    }
    if (failed && e == SL_OK)
        e = res_err(p, "postgresql copy", NULL);
    return e;
}

static sl_err copy_start(struct pgdb *p)
{
    if (p->in_copy)
        return SL_OK;
    PGresult *r = exec_simple(p, "COPY sluice_stage (tag, ts, seq, journal_id, value, raw, quality, type, "
                                  "origin) FROM STDIN (FORMAT binary)");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return res_err(p, "postgresql copy", r);
    PQclear(r);
    p->in_copy = true;
    if (PQputCopyData(p->conn, (const char *)copy_header, sizeof copy_header) != 1)
        return conn_err(p, "postgresql copy");
    return SL_OK;
}

/* One row in binary COPY: 2 + 9 × 4 (lengths) + 4+8+8+8+8+8+8+2+2 bytes. */
#define ROW_BYTES (2 + HIST_COLS * 4 + 4 + 8 + 8 + 8 + 8 + 8 + 8 + 2 + 2)

static size_t encode_row(unsigned char *o, const struct sl_histdb_row *r)
{
    unsigned char *s = o;
    put_be16(s, HIST_COLS), s += 2;
    put_be32(s, 4), put_be32(s + 4, r->tag), s += 8;
    put_be32(s, 8), put_be64(s + 4, (uint64_t)(r->ts_us - PG_EPOCH_US)), s += 12;
    put_be32(s, 8), put_be64(s + 4, r->seq), s += 12;
    put_be32(s, 8), put_be64(s + 4, r->journal_id), s += 12;
    if (isnan(r->value)) {
        put_be32(s, 0xffffffffu), s += 4;
    } else {
        uint64_t bits;
        memcpy(&bits, &r->value, 8);
        put_be32(s, 8), put_be64(s + 4, bits), s += 12;
    }
    put_be32(s, 8), put_be64(s + 4, r->raw), s += 12;
    put_be32(s, 8), put_be64(s + 4, r->quality), s += 12;
    put_be32(s, 2), put_be16(s + 4, r->type), s += 6;
    put_be32(s, 2), put_be16(s + 4, r->origin), s += 6;
    return (size_t)(s - o);
}

/* ---- ops: writer ------------------------------------------------------------------ */

static sl_err pg_tag(struct sl_histdb *db, const char *path_name, uint32_t *id)
{
    struct pgdb *p = (struct pgdb *)db;
    size_t len = strlen(path_name);
    if (!len || len > SL_HIST_TAG_MAX)
        return SL_ERR_RANGE;
    if (p->tag_cap) {
        struct tagent *s = tag_slot(p, path_name);
        if (s->name) {
            *id = s->id;
            return SL_OK;
        }
    }
    if (!p->in_tx) {
        sl_err e = ensure_conn(p, writer_setup);
        if (e != SL_OK)
            return e;
    }
    sl_err e = copy_end(p);
    if (e != SL_OK)
        return e;
    /* DO UPDATE (a no-op write) so RETURNING gives the id of a row that
     * already exists too; once per tag per process thanks to the cache. */
    const char *v[1] = { path_name };
    PGresult *r = exec_bounded(p,
                               "INSERT INTO sluice_tags (path_name) VALUES ($1) ON CONFLICT (path_name) "
                               "DO UPDATE SET path_name = EXCLUDED.path_name RETURNING id",
                               1, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return res_err(p, "postgresql tag", r);
    long t = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (t <= 0 || t > (long)UINT32_MAX) {
        set_err(p, "postgresql tag", "id out of range");
        return SL_ERR_IO;
    }
    *id = (uint32_t)t;
    return tag_cache_add(p, path_name, *id, p->in_tx);
}

static sl_err begin_once(struct pgdb *p)
{
    sl_err e = ensure_conn(p, writer_setup);
    if (e != SL_OK)
        return e;
    /* Today's and tomorrow's partitions ahead, outside the batch: creating
     * one takes a lock on sluice_history that would otherwise be held (and
     * stall readers) until the batch commits. */
    int32_t today = day_of((int64_t)time(NULL) * 1000000);
    for (int32_t d = today; d <= today + 1; d++)
        if (!day_known(p, d) && (e = make_partition(p, d)) != SL_OK)
            return e;
    p->day_committed = p->day_n;
    if ((e = exec_cmd(p, "BEGIN")) != SL_OK)
        return e;
    p->in_tx = true;
    return SL_OK;
}

/* Like a query, a batch's first statement on a connection the server
 * closed meanwhile (a restart) fails at once: nothing was written, so it
 * is tried once more on a new connection rather than failing the batch. */
static sl_err pg_begin(struct sl_histdb *db)
{
    struct pgdb *p = (struct pgdb *)db;
    if (p->in_tx) {
        set_err(p, "postgresql", "batch already open");
        return SL_ERR_STATE;
    }
    bool was_up = p->conn && PQstatus(p->conn) == CONNECTION_OK;
    sl_err e = begin_once(p);
    if (e == SL_ERR_IO && was_up && !p->hung && (!p->conn || PQstatus(p->conn) == CONNECTION_BAD))
        e = begin_once(p);
    return e;
}

static sl_err pg_put(struct sl_histdb *db, const struct sl_histdb_row *rows, size_t n)
{
    struct pgdb *p = (struct pgdb *)db;
    if (!p->in_tx) {
        set_err(p, "postgresql", "put outside a batch");
        return SL_ERR_STATE;
    }
    sl_err e;
    /* Partitions for days not seen yet (backfill of older days): COPY must
     * be ended for the DDL, so look before sending anything. */
    for (size_t i = 0; i < n; i++) {
        int32_t d = day_of(rows[i].ts_us);
        if (day_known(p, d))
            continue;
        if ((e = copy_end(p)) != SL_OK || (e = make_partition(p, d)) != SL_OK)
            return e;
    }
    if (n == 0)
        return SL_OK;
    if ((e = copy_start(p)) != SL_OK)
        return e;
    p->staged = true;
    size_t chunk = 4096;
    if (p->buf_cap < chunk * ROW_BYTES) {
        unsigned char *nb = realloc(p->buf, chunk * ROW_BYTES);
        if (!nb) {
            set_err(p, "postgresql", "out of memory");
            return SL_ERR_NOMEM;
        }
        p->buf = nb;
        p->buf_cap = chunk * ROW_BYTES;
    }
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk, off = 0;
        for (size_t j = 0; j < m; j++)
            off += encode_row(p->buf + off, &rows[i + j]);
        if (PQputCopyData(p->conn, (const char *)p->buf, (int)off) != 1)
            return conn_err(p, "postgresql copy");
    }
    return SL_OK;
}

static sl_err pg_put_journal(struct sl_histdb *db, uint64_t journal_id, const void *blob, size_t len)
{
    struct pgdb *p = (struct pgdb *)db;
    if (!p->in_tx) {
        set_err(p, "postgresql", "put_journal outside a batch");
        return SL_ERR_STATE;
    }
    if (len > INT32_MAX)
        return SL_ERR_RANGE;
    sl_err e = copy_end(p);
    if (e != SL_OK)
        return e;
    unsigned char jid[8];
    put_be64(jid, journal_id);
    const char *v[2] = { (const char *)jid, len ? (const char *)blob : "" };
    int l[2] = { 8, (int)len };
    int f[2] = { 1, 1 };
    PGresult *r = exec_bounded(p,
                               "INSERT INTO sluice_journals (journal_id, state) VALUES ($1::bigint, $2::bytea) "
                               "ON CONFLICT (journal_id) DO UPDATE SET state = EXCLUDED.state, updated = now()",
                               2, v, l, f, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return res_err(p, "postgresql journal", r);
    PQclear(r);
    return SL_OK;
}

static sl_err pg_commit(struct sl_histdb *db)
{
    struct pgdb *p = (struct pgdb *)db;
    if (!p->in_tx) {
        set_err(p, "postgresql", "commit outside a batch");
        return SL_ERR_STATE;
    }
    sl_err e = copy_end(p);
    /* The merge: rows already stored (same tag, ts, seq, journal) skipped. */
    if (e == SL_OK && p->staged)
        e = exec_cmd(p, "INSERT INTO sluice_history SELECT * FROM sluice_stage ON CONFLICT DO NOTHING");
    if (e == SL_OK)
        e = exec_cmd(p, "COMMIT");
    if (e != SL_OK) {
        /* Not known to be durable: the caller rolls back and retries. */
        return e;
    }
    p->in_tx = false;
    p->staged = false;
    p->day_committed = p->day_n;
    tag_cache_settle(p, true);
    return SL_OK;
}

static void pg_rollback(struct sl_histdb *db)
{
    struct pgdb *p = (struct pgdb *)db;
    if (!p->in_tx)
        return;
    if (p->in_copy && p->conn) {
        PQputCopyEnd(p->conn, "rolled back");
        PGresult *r;
        bool failed = false;
        int64_t deadline = mono_ms() + CALL_MS;
        while ((r = next_result(p, deadline, &failed)))
            PQclear(r);
        p->in_copy = false;
    }
    if (p->conn && PQstatus(p->conn) == CONNECTION_OK) {
        PQclear(exec_simple(p, "ROLLBACK"));
    }
    p->in_tx = p->staged = false;
    p->day_n = p->day_committed;   /* partitions made in the batch are gone too */
    tag_cache_settle(p, false);
}

static sl_err pg_load_journals(struct sl_histdb *db, sl_histdb_journal_fn fn, void *ctx)
{
    struct pgdb *p = (struct pgdb *)db;
    if (p->in_tx)
        return SL_ERR_STATE;
    sl_err e = ensure_conn(p, p->writer ? writer_setup : NULL);
    if (e != SL_OK)
        return e;
    PGresult *r = exec_bounded(p, "SELECT journal_id, state FROM sluice_journals ORDER BY journal_id", 0, NULL,
                               NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return res_err(p, "postgresql journals", r);
    for (int i = 0; i < PQntuples(r) && e == SL_OK; i++) {
        if (PQgetlength(r, i, 0) != 8)
            continue;
        uint64_t jid = get_be64((const unsigned char *)PQgetvalue(r, i, 0));
        e = fn(ctx, jid, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    }
    PQclear(r);
    return e;
}

static sl_err pg_retain(struct sl_histdb *db, int64_t before_us, uint64_t *rows)
{
    struct pgdb *p = (struct pgdb *)db;
    if (rows)
        *rows = 0;
    if (p->in_tx)
        return SL_ERR_STATE;
    sl_err e = ensure_conn(p, writer_setup);
    if (e != SL_OK)
        return e;
    /* The catalogue, not the cache: another writer (a restarted RX) may
     * have made partitions this one has not seen. */
    if ((e = load_days(p)) != SL_OK)
        return e;
    uint64_t dropped = 0;
    for (size_t i = 0; i < p->day_n;) {
        int32_t d = p->days[i];
        if ((int64_t)(d + 1) * DAY_US > before_us) {
            i++;
            continue;
        }
        char name[48], sql[160];
        day_name(d, name, sizeof name);
        /* reltuples: the planner's estimate, free (a count would read the whole day). */
        snprintf(sql, sizeof sql, "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE relname = '%s'", name);
        PGresult *r = exec_simple(p, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            dropped += (uint64_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", name);
        if ((e = exec_cmd(p, sql)) != SL_OK)
            return e;
        p->days[i] = p->days[--p->day_n];
    }
    p->day_committed = p->day_n;
    if (rows)
        *rows = dropped;
    return SL_OK;
}

/* ---- ops: reader -------------------------------------------------------------------- */

static sl_err reader_check(struct pgdb *p)
{
    PGresult *r = exec_simple(p, "SELECT to_regclass('sluice_history') IS NOT NULL AND "
                                  "to_regclass('sluice_tags') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return res_err(p, "postgresql", r);
    bool ok = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ok) {
        set_err(p, "postgresql", "no history yet (no sluice_history table)");
        return SL_ERR_IO;
    }
    return SL_OK;
}

static sl_err query_once(struct pgdb *p, const char *path_name, int64_t from_us, int64_t to_us, size_t limit,
                         sl_histdb_point_fn fn, void *ctx, bool *more, size_t *gotp)
{
    sl_err e = ensure_conn(p, reader_check);
    if (e != SL_OK)
        return e;
    unsigned char from[8], to[8], lim[8];
    put_be64(from, (uint64_t)(from_us - PG_EPOCH_US));
    put_be64(to, (uint64_t)(to_us - PG_EPOCH_US));
    put_be64(lim, limit >= INT64_MAX ? (uint64_t)INT64_MAX : (uint64_t)limit + 1);
    const char *v[4] = { path_name, (const char *)from, (const char *)to, (const char *)lim };
    int l[4] = { (int)strlen(path_name), 8, 8, 8 };
    int f[4] = { 0, 1, 1, 1 };
    /* The tag's id as a sub-select: one round trip; the planner still uses
     * (tag, ts, seq) on each partition the [from, to) range leaves. */
    if (!PQsendQueryParams(p->conn,
                           "SELECT ts, value, raw, quality, type, origin FROM sluice_history "
                           "WHERE tag = (SELECT id FROM sluice_tags WHERE path_name = $1) "
                           "AND ts >= $2::timestamptz AND ts < $3::timestamptz ORDER BY ts, seq LIMIT $4::bigint",
                           4, NULL, v, l, f, 1))
        return conn_err(p, "postgresql query");
    PQsetSingleRowMode(p->conn);
    size_t got = 0;
    bool stop = false, failed = false;
    PGresult *r;
    p->hung = false;
    /* The deadline is for the server's answer, renewed by every row: a
     * long result that keeps flowing is no hang. */
    int64_t deadline = mono_ms() + CALL_MS;
    while ((r = next_result(p, deadline, &failed))) {
        deadline = mono_ms() + CALL_MS;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && !stop && e == SL_OK) {
            if (got == limit) {
                if (more)
                    *more = true;
                stop = true;
            } else {
                struct sl_histdb_point pt;
                const unsigned char *c0 = (const unsigned char *)PQgetvalue(r, 0, 0);
                pt.ts_us = (int64_t)get_be64(c0) + PG_EPOCH_US;
                if (PQgetisnull(r, 0, 1)) {
                    pt.value = NAN;
                } else {
                    uint64_t bits = get_be64((const unsigned char *)PQgetvalue(r, 0, 1));
                    memcpy(&pt.value, &bits, 8);
                }
                pt.raw = get_be64((const unsigned char *)PQgetvalue(r, 0, 2));
                pt.quality = (uint32_t)get_be64((const unsigned char *)PQgetvalue(r, 0, 3));
                const unsigned char *t = (const unsigned char *)PQgetvalue(r, 0, 4);
                pt.type = t[1];
                const unsigned char *o = (const unsigned char *)PQgetvalue(r, 0, 5);
                pt.origin = o[1];
                got++;
                if (!fn(ctx, &pt))
                    stop = true;   /* the rest is read and dropped (at most limit + 1 rows) */
            }
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && e == SL_OK) {
            e = res_err(p, "postgresql query", r);
            continue;
        }
        PQclear(r);
    }
    if (failed && e == SL_OK)
        e = res_err(p, "postgresql query", NULL);
    *gotp = got;
    return e;
}

/* A query on a connection the server closed meanwhile (a restart, an idle
 * timeout) fails at once: reads are idempotent, so before any point went
 * out it is tried once more on a new connection instead of failing the
 * request. */
static sl_err pg_query(struct sl_histdb *db, const char *path_name, int64_t from_us, int64_t to_us, size_t limit,
                       sl_histdb_point_fn fn, void *ctx, bool *more)
{
    struct pgdb *p = (struct pgdb *)db;
    if (more)
        *more = false;
    if (limit == 0 || from_us >= to_us)
        return SL_OK;
    size_t got = 0;
    bool was_up = p->conn && PQstatus(p->conn) == CONNECTION_OK;
    sl_err e = query_once(p, path_name, from_us, to_us, limit, fn, ctx, more, &got);
    if (e == SL_ERR_IO && was_up && got == 0 && !p->hung && (!p->conn || PQstatus(p->conn) == CONNECTION_BAD))
        e = query_once(p, path_name, from_us, to_us, limit, fn, ctx, more, &got);
    return e;
}

/* ---- open / close ------------------------------------------------------------------ */

static void pg_close(struct sl_histdb *db)
{
    struct pgdb *p = (struct pgdb *)db;
    if (p->in_tx)
        pg_rollback(db);
    if (p->conn)
        PQfinish(p->conn);
    for (size_t i = 0; i < p->tag_cap; i++)
        free(p->tags[i].name);
    free(p->tags);
    free(p->days);
    free(p->buf);
    free(p->url);
    if (p->password) {
        explicit_bzero(p->password, strlen(p->password));
        free(p->password);
    }
    free(p);
}

static sl_err refuse(struct sl_histdb *db)
{
    set_err((struct pgdb *)db, "postgresql", "not allowed on a reader handle");
    return SL_ERR_STATE;
}

static sl_err ro_tag(struct sl_histdb *db, const char *n, uint32_t *id) { (void)n, (void)id; return refuse(db); }
static sl_err ro_begin(struct sl_histdb *db) { return refuse(db); }
static sl_err ro_put(struct sl_histdb *db, const struct sl_histdb_row *r, size_t n) { (void)r, (void)n; return refuse(db); }
static sl_err ro_put_journal(struct sl_histdb *db, uint64_t j, const void *b, size_t n)
{
    (void)j, (void)b, (void)n;
    return refuse(db);
}
static sl_err ro_commit(struct sl_histdb *db) { return refuse(db); }
static void ro_rollback(struct sl_histdb *db) { (void)db; }
static sl_err ro_retain(struct sl_histdb *db, int64_t b, uint64_t *rows)
{
    (void)b;
    if (rows)
        *rows = 0;
    return refuse(db);
}
static sl_err wo_query(struct sl_histdb *db, const char *n, int64_t f, int64_t t, size_t l, sl_histdb_point_fn fn,
                       void *ctx, bool *more)
{
    (void)n, (void)f, (void)t, (void)l, (void)fn, (void)ctx;
    if (more)
        *more = false;
    return refuse(db);
}

static const struct sl_histdb_ops writer_ops = {
    .kind = "postgresql", .tag = pg_tag, .begin = pg_begin, .put = pg_put, .put_journal = pg_put_journal,
    .commit = pg_commit, .rollback = pg_rollback, .load_journals = pg_load_journals, .retain = pg_retain,
    .query = wo_query, .close = pg_close,
};

static const struct sl_histdb_ops reader_ops = {
    .kind = "postgresql", .tag = ro_tag, .begin = ro_begin, .put = ro_put, .put_journal = ro_put_journal,
    .commit = ro_commit, .rollback = ro_rollback, .load_journals = pg_load_journals, .retain = ro_retain,
    .query = pg_query, .close = pg_close,
};

sl_err sl_histdb_pg_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer, char *errbuf,
                         size_t errcap)
{
    *out = NULL;
    char why[256];
    sl_err e = sl_histdb_pg_check_url(cfg->url, why, sizeof why);
    if (e != SL_OK) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "%s", why);
        return e;
    }
    struct pgdb *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(cfg->url)) || (cfg->password && !(p->password = strdup(cfg->password)))) {
        if (p) {
            free(p->url);
            free(p);
        }
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "out of memory");
        return SL_ERR_NOMEM;
    }
    p->base.ops = writer ? &writer_ops : &reader_ops;
    p->writer = writer;
    p->pin_wanted = pin_wanted(p->url);
    struct passwd pw, *pwr = NULL;
    char pwbuf[1024];
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwr) == 0 && pwr && pwr->pw_dir && pwr->pw_dir[0]) {
        static const char *const rel[5] = { ".postgresql/postgresql.crt", ".postgresql/postgresql.key",
                                            ".postgresql/root.crt", ".postgresql/root.crl", ".pgpass" };
        for (int i = 0; i < 5; i++)
            snprintf(p->home_files[i], sizeof p->home_files[i], "%s/%s", pwr->pw_dir, rel[i]);
    }
    e = ensure_conn(p, writer ? writer_setup : reader_check);
    if (e != SL_OK) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "%s", p->base.err);
        pg_close(&p->base);
        return e;
    }
    *out = &p->base;
    return SL_OK;
}
