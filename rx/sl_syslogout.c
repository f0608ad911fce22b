/* RX syslog output (sl_syslogout.h). */
#define _GNU_SOURCE
#include "sl_syslogout.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_log.h"
#include "sl_logmsg.h"

/* File write buffer: at least one message of control characters only,
 * each written as 4 bytes, plus its LF. */
#define OUT_BYTES        (4u * SL_SYSLOG_TEXT_MAX + 64u)
#define BACKOFF_MIN_US   1000000u
#define BACKOFF_MAX_US   30000000u
#define LEN_DIGITS       5u         /* SL_SYSLOG_TEXT_MAX has 5 digits */

_Static_assert(OUT_BYTES >= 4u * SL_SYSLOG_TEXT_MAX + 1u, "one escaped message fits");

enum tcp_state { TCP_IDLE, TCP_CONNECTING, TCP_UP };

struct sl_syslogout {
    struct sl_syslogout_config cfg;
    int file_fd;
    atomic_int want_reopen;
    bool file_failing;
    bool torn;                          /* the file ends inside a line: a LF goes first */
    uint8_t *out;                       /* OUT_BYTES: escaped lines before write() */
    size_t out_len, out_msgs;
    /* forward */
    int sock;
    struct sockaddr_storage dst;
    socklen_t dst_len;
    enum tcp_state tcp;
    uint64_t retry_at_us, backoff_us;
    uint8_t *queue;                     /* TCP: "LEN SP MSG" records, queue_bytes */
    size_t qlen;
    size_t head_left;                   /* bytes of the head record not yet sent (0: at a boundary) */
    struct {
        _Atomic uint64_t messages, written, forwarded, dropped, batches_bad, reopens, connected;
    } st;
};

#define BUMP(o, f, n) atomic_fetch_add_explicit(&(o)->st.f, (n), memory_order_relaxed)

sl_err sl_syslogout_parse_forward(uint8_t *proto, struct sl_hostport *hp, const char *text, char *why,
                                  size_t cap)
{
    *proto = SL_SYSLOGOUT_NONE;
    memset(hp, 0, sizeof *hp);
    uint8_t p;
    if (strncmp(text, "udp://", 6) == 0)
        p = SL_SYSLOGOUT_UDP;
    else if (strncmp(text, "tcp://", 6) == 0)
        p = SL_SYSLOGOUT_TCP;
    else {
        if (why)
            snprintf(why, cap, "not udp://HOST:PORT or tcp://HOST:PORT");
        return SL_ERR_CONFIG;
    }
    sl_err e = sl_conf_hostport_parse(hp, text + 6, 0, 0, why, cap);
    if (e == SL_OK)
        *proto = p;
    return e;
}

/* ---- file ------------------------------------------------------------------ */

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
}

/* A write stopped at off of out_len (disk full, file size limit): the
 * lines wholly written stay and count as written; the torn one is cut off
 * again (truncated back to where it began, or, if that fails, ended with
 * a LF) so the next flush starts a line of its own. Returns the lines
 * kept. */
static size_t out_torn(struct sl_syslogout *o, off_t start, size_t off)
{
    size_t keep = off, lines = 0;
    while (keep && o->out[keep - 1] != '\n')
        keep--;
    for (size_t i = 0; i < keep; i++)
        lines += o->out[i] == '\n';
    if (keep == off || (start >= 0 && ftruncate(o->file_fd, start + (off_t)keep) == 0))
        return lines;
    /* Not cut back: end the torn line now, or before the next flush. */
    o->torn = write(o->file_fd, "\n", 1) != 1;
    return lines;
}

/* Writes the buffered lines; a failure drops what was not written whole
 * (counted) and logs once per run of failures. */
static void out_flush(struct sl_syslogout *o)
{
    if (o->out_len == 0)
        return;
    size_t off = 0;
    int err = 0;
    /* O_APPEND: the write starts at the end, where a torn line is cut back to. */
    off_t start = o->file_fd >= 0 ? lseek(o->file_fd, 0, SEEK_END) : -1;
    if (o->torn && o->file_fd >= 0 && write(o->file_fd, "\n", 1) == 1) {
        o->torn = false;
        start++;
    }
    while (o->file_fd >= 0 && off < o->out_len) {
        ssize_t n = write(o->file_fd, o->out + off, o->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)n;
    }
    if (off == o->out_len) {
        BUMP(o, written, o->out_msgs);
        if (o->file_failing)
            sl_log(SL_LOG_NOTICE, "[syslog] file %s: writing again", o->cfg.file);
        o->file_failing = false;
    } else {
        size_t kept = off ? out_torn(o, start, off) : 0;
        BUMP(o, written, kept);
        BUMP(o, dropped, o->out_msgs - kept);
        if (!o->file_failing)
            sl_log_id(SL_LOG_WARNING, "SL-RX-SYSLOG-FILE", "[syslog] file %s: %s (messages dropped, counted)",
                      o->cfg.file, o->file_fd < 0 ? "not open" : strerror(err));
        o->file_failing = true;
    }
    o->out_len = 0;
    o->out_msgs = 0;
}

static void reopen_if_asked(struct sl_syslogout *o)
{
    if (!o->cfg.file[0] || !atomic_exchange(&o->want_reopen, 0))
        return;
    out_flush(o);
    int fd = open_file(o->cfg.file);
    if (fd < 0) {
        sl_log_id(SL_LOG_WARNING, "SL-RX-SYSLOG-FILE", "[syslog] file %s: reopen failed: %s (keeping the old one)",
                  o->cfg.file, strerror(errno));
        return;
    }
    if (o->file_fd >= 0)
        close(o->file_fd);
    o->file_fd = fd;
    o->torn = false;   /* a new file */
    BUMP(o, reopens, 1);
    sl_log(SL_LOG_NOTICE, "[syslog] file %s reopened", o->cfg.file);
}

/* One message as one line: control characters as #ooo, then LF. */
static void file_line(struct sl_syslogout *o, const uint8_t *p, size_t n)
{
    /* Worst case 4 bytes per input byte plus LF must fit after a flush. */
    if (4 * n + 1 > OUT_BYTES - o->out_len)
        out_flush(o);
    uint8_t *w = o->out + o->out_len;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *w++ = '#';
            *w++ = (uint8_t)('0' + ((c >> 6) & 7));
            *w++ = (uint8_t)('0' + ((c >> 3) & 7));
            *w++ = (uint8_t)('0' + (c & 7));
        } else {
            *w++ = c;
        }
    }
    *w++ = '\n';
    o->out_len = (size_t)(w - o->out);
    o->out_msgs++;
}

/* ---- forward ------------------------------------------------------------- */

static void tcp_drop_conn(struct sl_syslogout *o, uint64_t now_us)
{
    if (o->sock >= 0)
        close(o->sock);
    o->sock = -1;
    if (o->tcp == TCP_UP)
        sl_log_id(SL_LOG_WARNING, "SL-RX-SYSLOG-FWD-DOWN", "[syslog] forward %s:%u: connection lost; "
                  "queueing up to %u bytes, retrying", o->cfg.forward.host, o->cfg.forward.port,
                  o->cfg.queue_bytes);
    o->tcp = TCP_IDLE;
    atomic_store_explicit(&o->st.connected, 0, memory_order_relaxed);
    o->backoff_us = o->backoff_us ? o->backoff_us * 2 : BACKOFF_MIN_US;
    if (o->backoff_us > BACKOFF_MAX_US)
        o->backoff_us = BACKOFF_MAX_US;
    o->retry_at_us = now_us + o->backoff_us;
    /* A record cut by the loss cannot be finished on a new connection. */
    if (o->head_left) {
        memmove(o->queue, o->queue + o->head_left, o->qlen - o->head_left);
        o->qlen -= o->head_left;
        o->head_left = 0;
        BUMP(o, dropped, 1);
    }
}

static void tcp_connect(struct sl_syslogout *o, uint64_t now_us)
{
    o->sock = socket(o->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (o->sock < 0 || (connect(o->sock, (struct sockaddr *)&o->dst, o->dst_len) != 0 &&
                        errno != EINPROGRESS)) {
        o->tcp = TCP_CONNECTING;   /* so the drop below backs off */
        tcp_drop_conn(o, now_us);
        return;
    }
    o->tcp = TCP_CONNECTING;
}

/* Record length of the record at q: "LEN SP" + LEN. */
static size_t record_len(const uint8_t *q)
{
    size_t len = 0, i = 0;
    while (q[i] != ' ')
        len = len * 10u + (size_t)(q[i++] - '0');
    return i + 1 + len;
}

static void tcp_drain(struct sl_syslogout *o, uint64_t now_us)
{
    while (o->qlen) {
        ssize_t n = send(o->sock, o->queue, o->qlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            tcp_drop_conn(o, now_us);
            return;
        }
        /* Walk the records sent, so a loss later knows where the head's
         * record ends. */
        size_t left = (size_t)n, at = 0;
        while (left) {
            if (o->head_left == 0) {
                o->head_left = record_len(o->queue + at);
                BUMP(o, forwarded, 1);
            }
            size_t take = left < o->head_left ? left : o->head_left;
            o->head_left -= take;
            left -= take;
            at += take;
        }
        memmove(o->queue, o->queue + n, o->qlen - (size_t)n);
        o->qlen -= (size_t)n;
    }
}

void sl_syslogout_tick(struct sl_syslogout *o, uint64_t now_us)
{
    reopen_if_asked(o);
    if (o->cfg.proto != SL_SYSLOGOUT_TCP)
        return;
    if (o->tcp == TCP_IDLE && now_us >= o->retry_at_us)
        tcp_connect(o, now_us);
    if (o->tcp == TCP_CONNECTING) {
        struct pollfd pfd = { .fd = o->sock, .events = POLLOUT };
        if (poll(&pfd, 1, 0) <= 0)
            return;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(o->sock, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            tcp_drop_conn(o, now_us);
            return;
        }
        o->tcp = TCP_UP;
        o->backoff_us = 0;
        atomic_store_explicit(&o->st.connected, 1, memory_order_relaxed);
        sl_log_id(SL_LOG_NOTICE, "SL-RX-SYSLOG-FWD-UP", "[syslog] forward %s:%u: connected",
                  o->cfg.forward.host, o->cfg.forward.port);
    }
    if (o->tcp == TCP_UP)
        tcp_drain(o, now_us);
}

static void forward_one(struct sl_syslogout *o, const uint8_t *p, size_t n)
{
    if (o->cfg.proto == SL_SYSLOGOUT_UDP) {
        if (o->sock >= 0 && send(o->sock, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n)
            BUMP(o, forwarded, 1);
        else
            BUMP(o, dropped, 1);
        return;
    }
    char hdr[LEN_DIGITS + 2];
    int h = snprintf(hdr, sizeof hdr, "%zu ", n);
    if (h <= 0 || (size_t)h + n > o->cfg.queue_bytes - o->qlen) {
        BUMP(o, dropped, 1);
        return;
    }
    memcpy(o->queue + o->qlen, hdr, (size_t)h);
    memcpy(o->queue + o->qlen + (size_t)h, p, n);
    o->qlen += (size_t)h + n;
}

void sl_syslogout_payload(struct sl_syslogout *o, const uint8_t *payload, size_t len, uint64_t now_us)
{
    size_t count;
    if (sl_logmsg_batch_check(payload, len, &count) != SL_OK) {
        BUMP(o, batches_bad, 1);
        return;
    }
    BUMP(o, messages, count);
    reopen_if_asked(o);
    struct sl_buf b = sl_buf_make(payload, len);
    struct sl_logmsg m;
    while (sl_logmsg_next(&b, &m)) {
        if (o->cfg.file[0])
            file_line(o, m.text, m.text_len);
        if (o->cfg.proto != SL_SYSLOGOUT_NONE)
            forward_one(o, m.text, m.text_len);
    }
    out_flush(o);
    sl_syslogout_tick(o, now_us);
}

void sl_syslogout_reopen(struct sl_syslogout *o)
{
    if (o)
        atomic_store(&o->want_reopen, 1);
}

void sl_syslogout_stats(const struct sl_syslogout *o, struct sl_syslogout_stats *out)
{
    out->messages = atomic_load_explicit(&o->st.messages, memory_order_relaxed);
    out->written = atomic_load_explicit(&o->st.written, memory_order_relaxed);
    out->forwarded = atomic_load_explicit(&o->st.forwarded, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&o->st.dropped, memory_order_relaxed);
    out->batches_bad = atomic_load_explicit(&o->st.batches_bad, memory_order_relaxed);
    out->reopens = atomic_load_explicit(&o->st.reopens, memory_order_relaxed);
    out->connected = atomic_load_explicit(&o->st.connected, memory_order_relaxed);
}

/* ---- life ------------------------------------------------------------------ */

sl_err sl_syslogout_create(struct sl_syslogout **out, const struct sl_syslogout_config *cfg)
{
    *out = NULL;
    struct sl_syslogout *o = calloc(1, sizeof *o);
    if (!o)
        return SL_ERR_NOMEM;
    o->cfg = *cfg;
    if (o->cfg.queue_bytes < 2 * (SL_SYSLOG_TEXT_MAX + LEN_DIGITS + 1))
        o->cfg.queue_bytes = 2 * (SL_SYSLOG_TEXT_MAX + LEN_DIGITS + 1);
    o->file_fd = o->sock = -1;
    o->out = malloc(OUT_BYTES);
    sl_err e = o->out ? SL_OK : SL_ERR_NOMEM;
    if (e == SL_OK && cfg->proto == SL_SYSLOGOUT_TCP) {
        o->queue = malloc(o->cfg.queue_bytes);
        if (!o->queue)
            e = SL_ERR_NOMEM;
    }
    if (e == SL_OK && cfg->file[0]) {
        o->file_fd = open_file(cfg->file);
        if (o->file_fd < 0)
            e = SL_ERR_IO;
    }
    if (e == SL_OK && cfg->proto != SL_SYSLOGOUT_NONE) {
        struct addrinfo *res = NULL;
        int type = cfg->proto == SL_SYSLOGOUT_UDP ? SOCK_DGRAM : SOCK_STREAM;
        if (sl_conf_hostport_resolve(&res, &cfg->forward, type, 0) != 0 || !res ||
            res->ai_addrlen > sizeof o->dst) {
            e = SL_ERR_CONFIG;
        } else {
            memcpy(&o->dst, res->ai_addr, res->ai_addrlen);
            o->dst_len = res->ai_addrlen;
        }
        if (res)
            freeaddrinfo(res);
    }
    if (e == SL_OK && cfg->proto == SL_SYSLOGOUT_UDP) {
        o->sock = socket(o->dst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (o->sock < 0 || connect(o->sock, (struct sockaddr *)&o->dst, o->dst_len) != 0)
            e = SL_ERR_IO;
    }
    if (e != SL_OK) {
        int saved = errno;
        sl_syslogout_destroy(o);
        errno = saved;
        return e;
    }
    if (cfg->proto == SL_SYSLOGOUT_TCP)
        tcp_connect(o, 0);
    *out = o;
    return SL_OK;
}

void sl_syslogout_destroy(struct sl_syslogout *o)
{
    if (!o)
        return;
    if (o->sock >= 0)
        close(o->sock);
    if (o->file_fd >= 0)
        close(o->file_fd);
    free(o->queue);
    free(o->out);
    free(o);
}
