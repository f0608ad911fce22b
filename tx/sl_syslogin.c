/* TX syslog intake (sl_syslogin.h). */
#define _GNU_SOURCE
#include "sl_syslogin.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_log.h"
#include "sl_logmsg.h"

#define UDP_BATCH        32u        /* datagrams per recvmmsg */
#define UDP_CALLS        4u         /* recvmmsg calls per turn: <= 128 datagrams */
#define EVENTS_PER_TURN  64u        /* ready sockets looked at per turn */
#define OCTET_DIGITS     9u         /* "LEN SP": LEN up to 999999999 */
#define DROP_LOG_US      10000000u  /* one [SL-TX-SYSLOG-DROP] line per 10 s at most */
#define SWEEP_US         1000000u   /* idle connections and kernel drops looked at once a second */
#define EV_UDP           0u
#define EV_LISTEN        1u
#define EV_CONN          2u         /* + connection index */

enum framing { FRAME_UNKNOWN, FRAME_OCTET, FRAME_LINE };

struct conn {
    int fd;                         /* -1: free slot */
    uint8_t addr[SL_SYSLOG_ADDR_BYTES];
    uint16_t port;
    enum framing framing;
    uint64_t last_us;               /* last byte, monotonic */
    uint8_t *buf;                   /* max_message + OCTET_DIGITS + 1 bytes */
    size_t len;
    uint64_t skip;                  /* octet: bytes of a cut message still to discard */
    bool skip_line;                 /* line: discarding up to the next LF */
};

struct sl_syslogin {
    struct sl_syslogin_config cfg;
    int ep, udp, lsn;
    uint16_t port;
    sl_syslogin_send_fn send;
    void *send_ctx;
    /* UDP receive ring */
    uint8_t *ubuf;
    struct mmsghdr umsg[UDP_BATCH];
    struct iovec uiov[UDP_BATCH];
    struct sockaddr_storage ufrom[UDP_BATCH];
    /* TCP */
    struct conn *conns;
    size_t conn_cap;
    /* the batch being filled */
    uint8_t *batch;
    size_t batch_cap, batch_len;
    uint64_t batch_since_us;        /* monotonic time of its first message */
    bool batch_full;                /* a message did not fit: send as soon as the share allows */
    uint64_t next_us;               /* rate_mbps: the next block may go then (monotonic) */
    uint64_t now_us;                /* this turn's monotonic clock */
    /* max_rate: tokens in millionths of a message */
    uint64_t tokens, tokens_max, tokens_at_us;
    uint64_t next_sweep_us;
    uint64_t wall_us;               /* this turn's wall clock */
    struct sl_syslogin_stats st;
    struct sl_syslogin_stats logged;    /* st at the last drop line */
    uint64_t drop_log_at_us;
};

static void addr_of(const struct sockaddr_storage *ss, uint8_t addr[SL_SYSLOG_ADDR_BYTES],
                    uint16_t *port)
{
    memset(addr, 0, SL_SYSLOG_ADDR_BYTES);
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        addr[10] = addr[11] = 0xff;
        memcpy(addr + 12, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        memcpy(addr, &a->sin6_addr, SL_SYSLOG_ADDR_BYTES);
        *port = ntohs(a->sin6_port);
    }
}

/* Sends the batch (if any) through the caller's function and charges its
 * wire bytes to the share: the next block waits that long at rate_mbps
 * from now (or from when this one was allowed, if later). No credit: a
 * quiet spell never lets a burst of blocks out ahead of the tag channel. */
static void send_batch(struct sl_syslogin *in, uint64_t now_us)
{
    if (in->batch_len == 0)
        return;
    uint64_t wire = 0;
    if (in->send(in->send_ctx, in->batch, in->batch_len, &wire) == SL_OK)
        in->st.batches++;
    else
        in->st.batches_failed++;
    in->batch_len = 0;
    in->batch_full = false;
    if (in->cfg.rate_mbps > 0) {
        uint64_t cost = (uint64_t)((double)wire * 8.0 / in->cfg.rate_mbps);   /* bits / (Mbit/s) = µs */
        in->next_us = (in->next_us > now_us ? in->next_us : now_us) + cost;
    }
}

/* max_rate as a token bucket holding one second's worth. */
static bool take_token(struct sl_syslogin *in, uint64_t now_us)
{
    if (now_us > in->tokens_at_us) {
        uint64_t add = (now_us - in->tokens_at_us) * in->cfg.max_rate;   /* µs * msg/s = 1e-6 msg */
        in->tokens = add > in->tokens_max - in->tokens ? in->tokens_max : in->tokens + add;
        in->tokens_at_us = now_us;
    }
    if (in->tokens < 1000000u)
        return false;
    in->tokens -= 1000000u;
    return true;
}

/* "<N>" with 1..3 digits: what RFC 5424 and RFC 3164 both open with. */
static bool has_pri(const uint8_t *p, size_t n)
{
    if (n < 3 || p[0] != '<')
        return false;
    size_t i = 1;
    while (i < n && i <= 4 && p[i] >= '0' && p[i] <= '9')
        i++;
    return i >= 2 && i <= 4 && i < n && p[i] == '>';
}

/* One message off the wire into the batch, or counted as dropped. */
static void take(struct sl_syslogin *in, const uint8_t *p, size_t n, const uint8_t *addr,
                 uint16_t port, uint8_t transport, bool cut, uint64_t now_us)
{
    if (!has_pri(p, n)) {
        in->st.dropped_invalid++;
        return;
    }
    if (!take_token(in, now_us)) {
        in->st.dropped_rate++;
        return;
    }
    if (sl_logmsg_bytes(n) > in->batch_cap - in->batch_len) {
        if (now_us < in->next_us) {
            /* The full batch waits for the share; no second buffer. */
            in->batch_full = true;
            in->st.dropped_share++;
            return;
        }
        send_batch(in, now_us);
    }
    if (cut)
        in->st.truncated++;
    struct sl_logmsg m = { .recv_time_us = in->wall_us, .port = port, .transport = transport,
                           .flags = cut ? SL_SYSLOG_F_TRUNCATED : 0, .text = p, .text_len = n };
    memcpy(m.addr, addr, SL_SYSLOG_ADDR_BYTES);
    if (in->batch_len == 0)
        in->batch_since_us = now_us;
    if (sl_logmsg_put(in->batch, in->batch_cap, &in->batch_len, &m) != SL_OK) {
        in->st.dropped_invalid++;   /* cannot happen: sizes checked at create */
        return;
    }
    in->st.received++;
    in->st.bytes += n;
}

/* ---- UDP ------------------------------------------------------------------ */

static void read_udp(struct sl_syslogin *in, uint64_t now_us)
{
    size_t cap = in->cfg.max_message;
    for (unsigned call = 0; call < UDP_CALLS; call++) {
        for (unsigned i = 0; i < UDP_BATCH; i++) {
            in->uiov[i].iov_base = in->ubuf + (size_t)i * cap;
            in->uiov[i].iov_len = cap;
            memset(&in->umsg[i].msg_hdr, 0, sizeof in->umsg[i].msg_hdr);
            in->umsg[i].msg_hdr.msg_iov = &in->uiov[i];
            in->umsg[i].msg_hdr.msg_iovlen = 1;
            in->umsg[i].msg_hdr.msg_name = &in->ufrom[i];
            in->umsg[i].msg_hdr.msg_namelen = sizeof in->ufrom[i];
        }
        int got = recvmmsg(in->udp, in->umsg, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
            return;
        for (int i = 0; i < got; i++) {
            const uint8_t *p = in->uiov[i].iov_base;
            size_t n = in->umsg[i].msg_len;
            bool cut = (in->umsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
            /* A datagram is one message; a trailing LF (CR LF) some senders
             * add is framing, not message. */
            if (!cut && n && p[n - 1] == '\n')
                n--;
            if (!cut && n && p[n - 1] == '\r')
                n--;
            uint8_t addr[SL_SYSLOG_ADDR_BYTES];
            uint16_t port;
            addr_of(&in->ufrom[i], addr, &port);
            take(in, p, n, addr, port, SL_SYSLOG_UDP, cut, now_us);
        }
        if ((unsigned)got < UDP_BATCH)
            return;
    }
}

/* ---- TCP ------------------------------------------------------------------ */

static void conn_close(struct sl_syslogin *in, struct conn *c)
{
    epoll_ctl(in->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    in->st.connections--;
}

static void accept_conns(struct sl_syslogin *in, uint64_t now_us)
{
    for (unsigned tries = 0; tries < 16; tries++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(in->lsn, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uint8_t addr[SL_SYSLOG_ADDR_BYTES];
        uint16_t port;
        addr_of(&ss, addr, &port);
        struct conn *slot = NULL;
        uint32_t same = 0;
        for (size_t i = 0; i < in->conn_cap; i++) {
            struct conn *c = &in->conns[i];
            if (c->fd < 0) {
                if (!slot)
                    slot = c;
            } else if (memcmp(c->addr, addr, sizeof addr) == 0) {
                same++;
            }
        }
        struct epoll_event ev = { .events = EPOLLIN };
        if (slot)
            ev.data.u32 = EV_CONN + (uint32_t)(slot - in->conns);
        if (!slot || same >= in->cfg.max_per_peer || epoll_ctl(in->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            in->st.refused_connections++;
            continue;
        }
        slot->fd = fd;
        memcpy(slot->addr, addr, sizeof addr);
        slot->port = port;
        slot->framing = FRAME_UNKNOWN;
        slot->last_us = now_us;
        slot->len = 0;
        slot->skip = 0;
        slot->skip_line = false;
        in->st.connections++;
    }
}

/* Octet counting: "LEN SP MSG". Returns bytes consumed from buf (0: need
 * more), or SIZE_MAX when the count is broken (the stream is lost). */
static size_t octet_one(struct sl_syslogin *in, struct conn *c, const uint8_t *p, size_t n,
                        uint64_t now_us)
{
    size_t i = 0;
    uint64_t len = 0;
    while (i < n && i < OCTET_DIGITS && p[i] >= '0' && p[i] <= '9')
        len = len * 10u + (uint64_t)(p[i++] - '0');
    if (i == n)
        return 0;
    if (i == 0 || p[i] != ' ' || len == 0)
        return SIZE_MAX;
    size_t hdr = i + 1, max = in->cfg.max_message;
    if (len <= max) {
        if (n - hdr < len)
            return 0;
        take(in, p + hdr, (size_t)len, c->addr, c->port, SL_SYSLOG_TCP, false, now_us);
        return hdr + (size_t)len;
    }
    if (n - hdr < max)
        return 0;
    take(in, p + hdr, max, c->addr, c->port, SL_SYSLOG_TCP, true, now_us);
    c->skip = len - max;
    return hdr + max;
}

/* Newline framing: one line (LF, CR LF) per message. */
static size_t line_one(struct sl_syslogin *in, struct conn *c, const uint8_t *p, size_t n,
                       bool full, uint64_t now_us)
{
    const uint8_t *lf = memchr(p, '\n', n);
    if (c->skip_line) {
        if (!lf)
            return n;
        c->skip_line = false;
        return (size_t)(lf - p) + 1;
    }
    if (!lf) {
        if (!full)
            return 0;
        /* Longer than max_message: the first part goes, cut, and the rest
         * of the line is skipped. */
        take(in, p, in->cfg.max_message, c->addr, c->port, SL_SYSLOG_TCP, true, now_us);
        c->skip_line = true;
        return in->cfg.max_message;
    }
    size_t m = (size_t)(lf - p);
    if (m && p[m - 1] == '\r')
        m--;
    size_t max = in->cfg.max_message;
    if (m)   /* empty lines between messages are framing slack; a long one is cut to max_message */
        take(in, p, m > max ? max : m, c->addr, c->port, SL_SYSLOG_TCP, m > max, now_us);
    return (size_t)(lf - p) + 1;
}

static void read_conn(struct sl_syslogin *in, struct conn *c, uint64_t now_us)
{
    size_t cap = in->cfg.max_message + OCTET_DIGITS + 1;
    ssize_t r = read(c->fd, c->buf + c->len, cap - c->len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    bool eof = r <= 0;
    if (r > 0) {
        c->len += (size_t)r;
        c->last_us = now_us;
    }
    size_t off = 0;
    while (off < c->len) {
        const uint8_t *p = c->buf + off;
        size_t n = c->len - off, used;
        if (c->skip) {
            used = c->skip < n ? (size_t)c->skip : n;
            c->skip -= used;
        } else {
            if (c->framing == FRAME_UNKNOWN)
                c->framing = p[0] >= '1' && p[0] <= '9' ? FRAME_OCTET : FRAME_LINE;
            if (c->framing == FRAME_OCTET)
                used = octet_one(in, c, p, n, now_us);
            else
                used = line_one(in, c, p, n, n >= in->cfg.max_message, now_us);
        }
        if (used == SIZE_MAX) {
            in->st.dropped_invalid++;
            conn_close(in, c);
            return;
        }
        if (used == 0)
            break;
        off += used;
    }
    if (off)
        memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (eof) {
        /* A last line without its LF still counts as a message. */
        if (c->len && c->framing == FRAME_LINE && !c->skip_line)
            take(in, c->buf, c->len, c->addr, c->port, SL_SYSLOG_TCP, false, now_us);
        else if (c->len || c->skip)
            in->st.dropped_invalid++;
        conn_close(in, c);
    }
}

/* The UDP socket's drop count (buffer full), from SO_MEMINFO: exact
 * whenever it is read, unlike SO_RXQ_OVFL, which reports drops only with a
 * later datagram. */
static void kernel_drops(struct sl_syslogin *in)
{
    uint32_t mi[SK_MEMINFO_VARS];
    socklen_t len = sizeof mi;
    if (getsockopt(in->udp, SOL_SOCKET, SO_MEMINFO, mi, &len) == 0 && len > SK_MEMINFO_DROPS * sizeof mi[0])
        in->st.dropped_kernel = mi[SK_MEMINFO_DROPS];
}

static void sweep_idle(struct sl_syslogin *in, uint64_t now_us)
{
    uint64_t idle = (uint64_t)in->cfg.idle_s * 1000000u;
    for (size_t i = 0; i < in->conn_cap; i++) {
        struct conn *c = &in->conns[i];
        if (c->fd >= 0 && now_us - c->last_us >= idle)
            conn_close(in, c);
    }
}

static void log_drops(struct sl_syslogin *in, uint64_t now_us)
{
    if (now_us < in->drop_log_at_us)
        return;
    uint64_t rate = in->st.dropped_rate - in->logged.dropped_rate;
    uint64_t share = in->st.dropped_share - in->logged.dropped_share;
    uint64_t bad = in->st.dropped_invalid - in->logged.dropped_invalid;
    uint64_t cut = in->st.truncated - in->logged.truncated;
    uint64_t refused = in->st.refused_connections - in->logged.refused_connections;
    uint64_t kernel = in->st.dropped_kernel - in->logged.dropped_kernel;
    if (rate + share + bad + cut + refused + kernel == 0)
        return;
    sl_log_id(SL_LOG_WARNING, "SL-TX-SYSLOG-DROP",
              "syslog: %llu over max_rate %u/s, %llu over the link share (%.3g Mbit/s), %llu dropped by the "
              "kernel (socket buffer full), %llu invalid, %llu truncated to %u bytes, %llu connections refused "
              "in the last 10 s",
              (unsigned long long)rate, in->cfg.max_rate, (unsigned long long)share, in->cfg.rate_mbps,
              (unsigned long long)kernel, (unsigned long long)bad, (unsigned long long)cut, in->cfg.max_message,
              (unsigned long long)refused);
    in->logged = in->st;
    in->drop_log_at_us = now_us + DROP_LOG_US;
}

void sl_syslogin_run(struct sl_syslogin *in, uint64_t now_us, uint64_t wall_us)
{
    in->wall_us = wall_us;
    in->now_us = now_us;
    struct epoll_event ev[EVENTS_PER_TURN];
    int n = epoll_wait(in->ep, ev, EVENTS_PER_TURN, 0);
    for (int i = 0; i < n; i++) {
        uint32_t id = ev[i].data.u32;
        if (id == EV_UDP)
            read_udp(in, now_us);
        else if (id == EV_LISTEN)
            accept_conns(in, now_us);
        else if (id - EV_CONN < in->conn_cap && in->conns[id - EV_CONN].fd >= 0)
            read_conn(in, &in->conns[id - EV_CONN], now_us);
    }
    if (now_us >= in->next_sweep_us) {
        sweep_idle(in, now_us);
        kernel_drops(in);
        in->next_sweep_us = now_us + SWEEP_US;
    }
    if (in->batch_len && now_us >= sl_syslogin_deadline(in))
        send_batch(in, now_us);
    log_drops(in, now_us);
}

uint64_t sl_syslogin_deadline(const struct sl_syslogin *in)
{
    if (in->batch_len == 0)
        return UINT64_MAX;
    uint64_t due = in->batch_full ? 0 : in->batch_since_us + (uint64_t)in->cfg.batch_ms * 1000u;
    return due > in->next_us ? due : in->next_us;
}

void sl_syslogin_flush(struct sl_syslogin *in)
{
    send_batch(in, in->now_us);
    kernel_drops(in);   /* the stop line's figures are exact */
}

int sl_syslogin_fd(const struct sl_syslogin *in) { return in->ep; }

uint16_t sl_syslogin_port(const struct sl_syslogin *in) { return in->port; }

void sl_syslogin_stats(const struct sl_syslogin *in, struct sl_syslogin_stats *out) { *out = in->st; }

/* ---- life ------------------------------------------------------------------- */

static int bind_one(const struct sl_hostport *hp, uint16_t port, int type)
{
    struct sl_hostport h = *hp;
    h.port = port;
    struct addrinfo *res = NULL;
    if (sl_conf_hostport_resolve(&res, &h, type, SL_HOSTPORT_PASSIVE) != 0 || !res) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = socket(res->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    if (fd >= 0 && type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd >= 0 && res->ai_family == AF_INET6)   /* "*" as :: takes IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (fd >= 0 && (bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
                    (type == SOCK_STREAM && listen(fd, 64) != 0))) {
        int saved = errno;
        close(fd);
        errno = saved;
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    uint8_t addr[SL_SYSLOG_ADDR_BYTES];
    uint16_t port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_of(&ss, addr, &port);
    return port;
}

sl_err sl_syslogin_create(struct sl_syslogin **out, const struct sl_syslogin_config *cfg,
                          size_t payload_cap, sl_syslogin_send_fn send, void *send_ctx)
{
    *out = NULL;
    if (cfg->max_message == 0 || cfg->max_message > SL_SYSLOG_TEXT_MAX ||
        sl_logmsg_bytes(cfg->max_message) > payload_cap || cfg->max_rate == 0 ||
        cfg->max_connections == 0 || cfg->idle_s == 0 || !(cfg->rate_mbps >= 0))
        return SL_ERR_RANGE;
    struct sl_syslogin *in = calloc(1, sizeof *in);
    if (!in)
        return SL_ERR_NOMEM;
    in->cfg = *cfg;
    in->ep = in->udp = in->lsn = -1;
    in->send = send;
    in->send_ctx = send_ctx;
    in->batch_cap = payload_cap;
    in->conn_cap = cfg->max_connections;
    in->batch = malloc(payload_cap);
    in->ubuf = malloc((size_t)UDP_BATCH * cfg->max_message);
    in->conns = calloc(in->conn_cap, sizeof *in->conns);
    sl_err e = in->batch && in->ubuf && in->conns ? SL_OK : SL_ERR_NOMEM;
    for (size_t i = 0; e == SL_OK && i < in->conn_cap; i++) {
        in->conns[i].fd = -1;
        in->conns[i].buf = malloc(cfg->max_message + OCTET_DIGITS + 1);
        if (!in->conns[i].buf)
            e = SL_ERR_NOMEM;
    }
    in->tokens = in->tokens_max = (uint64_t)cfg->max_rate * 1000000u;
    if (e == SL_OK) {
        in->lsn = bind_one(&cfg->listen, cfg->listen.port, SOCK_STREAM);
        if (in->lsn >= 0)
            in->port = port_of(in->lsn);
        if (in->lsn >= 0)
            in->udp = bind_one(&cfg->listen, in->port, SOCK_DGRAM);
        in->ep = epoll_create1(EPOLL_CLOEXEC);
        if (in->lsn < 0 || in->udp < 0 || in->ep < 0)
            e = errno == EADDRNOTAVAIL ? SL_ERR_CONFIG : SL_ERR_IO;
    }
    if (e == SL_OK) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_UDP };
        struct epoll_event el = { .events = EPOLLIN, .data.u32 = EV_LISTEN };
        if (epoll_ctl(in->ep, EPOLL_CTL_ADD, in->udp, &ev) != 0 ||
            epoll_ctl(in->ep, EPOLL_CTL_ADD, in->lsn, &el) != 0)
            e = SL_ERR_IO;
    }
    if (e != SL_OK) {
        int saved = errno;
        in->send = NULL;
        sl_syslogin_destroy(in);
        errno = saved;
        return e;
    }
    *out = in;
    return SL_OK;
}

void sl_syslogin_destroy(struct sl_syslogin *in)
{
    if (!in)
        return;
    if (in->send)
        send_batch(in, in->now_us);
    for (size_t i = 0; in->conns && i < in->conn_cap; i++) {
        if (in->conns[i].fd >= 0)
            close(in->conns[i].fd);
        free(in->conns[i].buf);
    }
    if (in->udp >= 0)
        close(in->udp);
    if (in->lsn >= 0)
        close(in->lsn);
    if (in->ep >= 0)
        close(in->ep);
    free(in->conns);
    free(in->ubuf);
    free(in->batch);
    free(in);
}
