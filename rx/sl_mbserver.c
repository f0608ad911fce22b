/* accept4() */
#define _GNU_SOURCE
#include "sl_mbserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_conf.h"
#include "sl_peer.h"

/* Input holds several pipelined requests; output several responses, so a
 * burst is answered without waiting for the client between requests. The
 * input buffer is also the per-turn read cap: one recv of at most its free
 * space per connection per turn. */
#define IN_BYTES     SL_MBSERVER_READ_BYTES
#define OUT_BYTES    2048u
#define MAX_EVENTS   64
#define ACCEPT_BURST 64
#define LISTEN_TAG   UINT32_MAX

struct conn {
    int fd;                   /* -1: free slot */
    uint32_t events;          /* registered epoll events */
    uint64_t last_req_ms;     /* last complete request (or accept) */
    uint64_t partial_ms;      /* when an incomplete request was first seen */
    bool partial;             /* an incomplete request waits on the client */
    bool readable, writable;  /* epoll reported it; not yet handled */
    bool pending;             /* whole requests buffered, answerable now */
    bool held;                /* rate budget spent: not read from until it refills */
    bool hup;                 /* epoll reported HUP or ERR: closed at its next turn */
    uint64_t tokens;          /* rate budget left, in thousandths of a request */
    uint64_t fill_ms;         /* tokens last refilled at */
    uint8_t addr[SL_PEER_KEY_BYTES];   /* sl_peer_key: IPv4 address or IPv6 /64, per-peer cap */
    size_t in_len;
    size_t out_off, out_len;  /* unsent bytes are out[out_off, out_len) */
    char peer[SL_MBSERVER_PEER_MAX];
    uint8_t in[IN_BYTES];
    uint8_t out[OUT_BYTES];
};

struct sl_mbserver {
    int lfd;
    int epfd;
    uint16_t port;
    unsigned max_conns;
    unsigned nconns;
    unsigned per_peer;
    unsigned conn_reqs, turn_reqs;
    unsigned rr;              /* slot served first next turn (round robin) */
    unsigned npending;        /* slots with work left after the last turn */
    uint32_t rate;            /* reqs_per_s; 0: no budget */
    uint64_t burst;           /* bucket size, thousandths of a request */
    int wake_ms;              /* -1, or ms until a held slot may go on */
    uint32_t idle_ms;
    uint32_t req_ms;
    uint64_t now_ms;
    const struct sl_mirror *m;
    struct conn *conns;       /* [max_conns] */
    sl_mbserver_write_hook hook;
    void *hook_ctx;
    struct sl_mbserver_stats st;
};

/* ---- the answer: pure -----------------------------------------------------*/

static uint8_t exception(uint8_t *out, size_t cap, size_t *out_len, const struct sl_mbreq *req,
                         uint8_t code)
{
    if (sl_mbreq_exception(out, cap, out_len, req, code) != SL_OK)
        *out_len = 0;
    return code;
}

uint8_t sl_mbserver_answer(uint8_t *out, size_t cap, size_t *out_len, const struct sl_mbreq *req,
                           const struct sl_mirror *m)
{
    *out_len = 0;
    if (req->exception)
        return exception(out, cap, out_len, req, req->exception);
    if (!sl_mirror_has_unit(m, req->unit))
        return exception(out, cap, out_len, req, SL_MB_EX_GATEWAY_PATH);

    bool bits = req->fc == SL_MB_FC_READ_COILS || req->fc == SL_MB_FC_READ_DISCRETE;
    uint8_t reg = req->fc == SL_MB_FC_READ_COILS      ? SL_REG_COIL
                  : req->fc == SL_MB_FC_READ_DISCRETE ? SL_REG_DISCRETE
                  : req->fc == SL_MB_FC_READ_HOLDING  ? SL_REG_HOLDING
                                                      : SL_REG_INPUT;
    size_t nbytes = bits ? ((size_t)req->count + 7u) / 8u : 2u * req->count;
    if (cap < SL_MB_MBAP_BYTES + 2u + nbytes || nbytes > 250u)
        return exception(out, cap, out_len, req, SL_MB_EX_ILLEGAL_VALUE);

    /* Data goes straight into its place in the response. */
    uint8_t *data = out + SL_MB_MBAP_BYTES + 2u;
    uint16_t words[SL_MB_MAX_REGS];
    uint32_t quality;
    sl_err e = bits ? sl_mirror_read_bits(m, req->unit, reg, req->addr, req->count, data, &quality)
                    : sl_mirror_read_regs(m, req->unit, reg, req->addr, req->count, words, &quality);
    if (e != SL_OK)
        return exception(out, cap, out_len, req, SL_MB_EX_ILLEGAL_ADDRESS);
    if (!sl_mirror_link_up(m))
        return exception(out, cap, out_len, req, SL_MB_EX_GATEWAY_PATH);
    if (quality != SL_Q_GOOD)
        return exception(out, cap, out_len, req, SL_MB_EX_GATEWAY_TARGET);

    sl_be16_put(out, req->tid);
    sl_be16_put(out + 2, 0);
    sl_be16_put(out + 4, (uint16_t)(3u + nbytes));
    out[6] = req->unit;
    out[7] = req->fc;
    out[8] = (uint8_t)nbytes;
    if (!bits)
        for (unsigned i = 0; i < req->count; i++)
            sl_be16_put(data + 2 * i, words[i]);
    *out_len = SL_MB_MBAP_BYTES + 2u + nbytes;
    return 0;
}

/* ---- sockets --------------------------------------------------------------*/

static sl_err bind_listen(struct sl_mbserver *s, const char *listen_at)
{
    /* The grammar [modbus] listen was checked with (sl_conf): "*" is every
     * address, port 0 a free one; the resolver call is the one --check
     * compared against the diode address. */
    struct sl_hostport hp;
    struct addrinfo *res = NULL;
    if (sl_conf_hostport_parse(&hp, listen_at, 0, SL_HOSTPORT_LISTENER, NULL, 0) != SL_OK ||
        sl_conf_hostport_resolve(&res, &hp, SOCK_STREAM, SL_HOSTPORT_PASSIVE) != 0)
        return SL_ERR_CONFIG;
    sl_err e = SL_ERR_IO;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            s->lfd = fd;
            e = SL_OK;
            break;
        }
        int saved = errno;
        close(fd);
        errno = saved;
    }
    freeaddrinfo(res);
    if (e != SL_OK)
        return e;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) != 0)
        return SL_ERR_IO;
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return SL_OK;
}

sl_err sl_mbserver_open(struct sl_mbserver **out, const struct sl_mbserver_config *cfg,
                        const struct sl_mirror *m)
{
    *out = NULL;
    if (!cfg || !m)
        return SL_ERR_CONFIG;
    struct sl_mbserver *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    s->lfd = -1;
    s->epfd = -1;
    s->m = m;
    s->max_conns = cfg->max_conns ? cfg->max_conns : SL_MBSERVER_DEFAULT_CONNS;
    s->idle_ms = cfg->idle_ms ? cfg->idle_ms : SL_MBSERVER_DEFAULT_IDLE_MS;
    s->req_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : SL_MBSERVER_DEFAULT_REQ_MS;
    s->per_peer = cfg->max_conns_per_peer ? cfg->max_conns_per_peer : SL_MBSERVER_DEFAULT_PER_PEER;
    if (s->per_peer > s->max_conns)
        s->per_peer = s->max_conns;
    s->conn_reqs = cfg->reqs_per_conn ? cfg->reqs_per_conn : SL_MBSERVER_DEFAULT_CONN_REQS;
    s->turn_reqs = cfg->reqs_per_turn ? cfg->reqs_per_turn : SL_MBSERVER_DEFAULT_TURN_REQS;
    if (s->turn_reqs < s->conn_reqs)
        s->turn_reqs = s->conn_reqs;
    s->rate = cfg->reqs_per_s;
    /* rate requests/s for BURST_MS ms, in thousandths; at least one request. */
    s->burst = (uint64_t)s->rate * SL_MBSERVER_BURST_MS;
    if (s->burst < 1000u)
        s->burst = 1000u;
    s->wake_ms = -1;
    s->conns = calloc(s->max_conns, sizeof *s->conns);
    if (!s->conns) {
        sl_mbserver_close(s);
        return SL_ERR_NOMEM;
    }
    for (unsigned i = 0; i < s->max_conns; i++)
        s->conns[i].fd = -1;
    sl_err e = bind_listen(s, cfg->listen);
    if (e == SL_OK) {
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTEN_TAG };
        if (s->epfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) != 0)
            e = SL_ERR_IO;
    }
    if (e != SL_OK) {
        int saved = errno;
        sl_mbserver_close(s);
        errno = saved;
        return e;
    }
    *out = s;
    return SL_OK;
}

static void conn_close(struct sl_mbserver *s, struct conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd);   /* also removes it from the epoll set */
    c->fd = -1;
    c->pending = c->readable = c->writable = c->partial = c->held = c->hup = false;
    s->nconns--;
}

void sl_mbserver_close(struct sl_mbserver *s)
{
    if (!s)
        return;
    if (s->conns)
        for (unsigned i = 0; i < s->max_conns; i++)
            conn_close(s, &s->conns[i]);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s->conns);
    free(s);
}

int sl_mbserver_fd(const struct sl_mbserver *s) { return s->epfd; }
uint16_t sl_mbserver_port(const struct sl_mbserver *s) { return s->port; }
unsigned sl_mbserver_conns(const struct sl_mbserver *s) { return s->nconns; }
int sl_mbserver_timeout_ms(const struct sl_mbserver *s) { return s->npending ? 0 : s->wake_ms; }
void sl_mbserver_stats(const struct sl_mbserver *s, struct sl_mbserver_stats *out) { *out = s->st; }

void sl_mbserver_set_write_hook(struct sl_mbserver *s, sl_mbserver_write_hook fn, void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}

static void format_peer(char *dst, size_t cap, const struct sockaddr_storage *ss)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        port = ntohs(in->sin_port);
        snprintf(dst, cap, "%s:%u", a, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
        port = ntohs(in6->sin6_port);
        snprintf(dst, cap, "[%s]:%u", a, port);
    } else {
        snprintf(dst, cap, "?");
    }
}

/* Accepts up to ACCEPT_BURST waiting clients. Over the total cap or the
 * per-peer cap a client is accepted and closed at once, so it learns
 * immediately instead of waiting in the backlog. One scan of the slots
 * per client finds a free one and counts the peer's: O(max_conns). */
static void accept_all(struct sl_mbserver *s)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;   /* EAGAIN, or a transient error the next event retries */
        uint8_t key[SL_PEER_KEY_BYTES];
        sl_peer_key(key, (const struct sockaddr *)&ss);
        struct conn *c = NULL;
        unsigned same = 0;
        for (unsigned j = 0; j < s->max_conns; j++) {
            struct conn *x = &s->conns[j];
            if (x->fd < 0) {
                if (!c)
                    c = x;
            } else if (memcmp(x->addr, key, sizeof key) == 0) {
                same++;
            }
        }
        if (c && same >= s->per_peer) {
            close(fd);
            s->st.refused_peer++;
            continue;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = c ? (uint32_t)(c - s->conns) : 0 };
        if (!c || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            s->st.refused_cap++;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->events = EPOLLIN;
        c->last_req_ms = s->now_ms;
        c->partial = c->pending = c->readable = c->writable = c->held = c->hup = false;
        /* One request's worth, not a full bucket: a client that spent its
         * budget gains nothing by reconnecting. */
        c->tokens = 1000u;
        c->fill_ms = s->now_ms;
        c->in_len = 0;
        c->out_off = c->out_len = 0;
        memcpy(c->addr, key, sizeof key);
        format_peer(c->peer, sizeof c->peer, &ss);
        s->nconns++;
        s->st.accepted++;
    }
}

/* Answers whole buffered requests, at most max of them, while a
 * maximum-size response still fits in the output buffer; *done gets the
 * number answered. Each one restarts the connection's idle clock. Returns
 * false if the stream is broken (bad MBAP header). */
static bool process(struct sl_mbserver *s, struct conn *c, unsigned max, unsigned *done)
{
    size_t off = 0;
    *done = 0;
    while (*done < max && off < c->in_len && OUT_BYTES - c->out_len >= SL_MB_RESP_MAX) {
        size_t adu;
        sl_err e = sl_mbreq_frame(&adu, c->in + off, c->in_len - off);
        if (e == SL_ERR_AGAIN)
            break;
        struct sl_mbreq req;
        if (e == SL_OK)
            e = sl_mbreq_parse(&req, c->in + off, adu);
        if (e != SL_OK) {
            s->st.bad_frames++;
            return false;
        }
        off += adu;
        (*done)++;
        c->last_req_ms = s->now_ms;
        s->st.requests++;
        if (req.write) {
            s->st.refused_writes++;
            if (s->hook)
                s->hook(s->hook_ctx, c->peer, &req);
        }
        size_t n;
        uint8_t code = sl_mbserver_answer(c->out + c->out_len, OUT_BYTES - c->out_len, &n, &req, s->m);
        if (code)
            s->st.exceptions[code & 15u]++;
        else
            s->st.served++;
        c->out_len += n;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return true;
}

/* Sends what is pending. Returns false on a socket error. */
static bool flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return true;
}

/* Answers buffered requests while the socket takes the answers, up to
 * *quota requests (decremented): once the output is flushed, requests
 * already read must not wait for a socket event that may never come (the
 * client may have sent its last). */
static bool drain(struct sl_mbserver *s, struct conn *c, unsigned *quota)
{
    while (*quota) {
        unsigned done;
        if (!process(s, c, *quota, &done) || !flush(c))
            return false;
        *quota -= done;
        if (done == 0 || c->out_len)
            return true;
    }
    return true;
}

/* Compacts the output buffer and registers the events the slot can take
 * now: no EPOLLIN while the input buffer is full or a response could not
 * be buffered (level-triggered epoll would otherwise spin on data we
 * refuse to read). */
static bool rearm(struct sl_mbserver *s, struct conn *c)
{
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    uint32_t want = 0;
    if (!c->held && c->in_len < IN_BYTES && OUT_BYTES - c->out_len >= SL_MB_RESP_MAX)
        want |= EPOLLIN;
    if (c->out_len)
        want |= EPOLLOUT;
    if (want == c->events)
        return true;
    struct epoll_event ev = { .events = want, .data.u32 = (uint32_t)(c - s->conns) };
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return false;
    c->events = want;
    return true;
}

/* Whole requests at the start of the input buffer (at most the buffer's
 * worth: O(IN_BYTES / 8)). */
static unsigned whole_requests(const struct conn *c)
{
    unsigned n = 0;
    size_t off = 0, adu;
    while (off < c->in_len && sl_mbreq_frame(&adu, c->in + off, c->in_len - off) == SL_OK) {
        off += adu;
        n++;
    }
    return n;
}

/* Adds the tokens earned since the last fill (rate thousandths of a
 * request per ms), up to the bucket; releases a held slot that has a
 * whole request again. O(1). */
static void refill(struct sl_mbserver *s, struct conn *c, uint64_t now_ms)
{
    if (c->fd < 0 || now_ms <= c->fill_ms)
        return;
    uint64_t dt = now_ms - c->fill_ms;
    if (dt > 1000000u)
        dt = 1000000u;   /* a full bucket anyway; no overflow after a long pause */
    c->tokens += dt * s->rate;
    if (c->tokens > s->burst)
        c->tokens = s->burst;
    c->fill_ms = now_ms;
    if (c->held && c->tokens >= 1000u) {
        c->held = false;
        c->readable = true;
    }
}

/* One connection's turn: flush, answer what is buffered, read once (at
 * most the input buffer's free space), answer again, all within *budget
 * requests (decremented) and the per-connection cap. Then records whether
 * whole requests remain (pending: served next turn without a socket event,
 * counted as deferred) or an incomplete one waits on the client (its
 * deadline starts). */
static void serve(struct sl_mbserver *s, struct conn *c, unsigned *budget)
{
    /* A hung-up or failed socket can take no answers: close it now. Read
     * first, it might never see its EOF (a full input buffer is not read)
     * and level-triggered HUP would wake the loop every turn. */
    if (c->hup) {
        s->st.closed_peer++;
        conn_close(s, c);
        return;
    }
    uint64_t bad_before = s->st.bad_frames;
    unsigned quota = s->conn_reqs < *budget ? s->conn_reqs : *budget;
    if (s->rate && c->tokens / 1000u < quota)
        quota = (unsigned)(c->tokens / 1000u);
    unsigned start = quota;
    bool ok = true;
    if (c->writable) {
        c->writable = false;
        ok = flush(c);
    }
    if (ok)
        ok = drain(s, c, &quota);
    if (ok && c->readable && !c->held && c->in_len < IN_BYTES && OUT_BYTES - c->out_len >= SL_MB_RESP_MAX) {
        c->readable = false;
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_BYTES - c->in_len, 0);
        if (n == 0) {
            ok = false;
        } else if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                ok = false;
        } else {
            c->in_len += (size_t)n;
            ok = drain(s, c, &quota);
        }
    }
    *budget -= start - quota;
    if (s->rate) {
        c->tokens -= (uint64_t)(start - quota) * 1000u;
        /* Spent: the rest stays in the kernel's buffer (TCP pushes back
         * on the client) until the bucket refills. */
        if (c->tokens < 1000u && !c->held) {
            c->held = true;
            s->st.rate_limited++;
        }
        if (c->held)
            c->readable = false;   /* EPOLLIN comes off below; re-armed when it refills */
    }
    if (ok)
        ok = rearm(s, c);
    if (!ok) {
        if (s->st.bad_frames == bad_before)
            s->st.closed_peer++;
        conn_close(s, c);
        return;
    }
    size_t adu;
    bool whole = c->in_len && sl_mbreq_frame(&adu, c->in, c->in_len) == SL_OK;
    /* Blocked on the client reading its answers is not pending: EPOLLOUT
     * wakes it. Blocked on our caps is. */
    c->pending = whole && !c->held && OUT_BYTES - c->out_len >= SL_MB_RESP_MAX;
    if (c->pending)
        s->st.deferred += whole_requests(c);
    if (c->in_len && !whole && c->out_len == 0) {
        if (!c->partial) {
            c->partial = true;
            c->partial_ms = s->now_ms;
        }
    } else {
        c->partial = false;
    }
}

sl_err sl_mbserver_poll_once(struct sl_mbserver *s, int timeout_ms, uint64_t now_ms)
{
    s->now_ms = now_ms;
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(s->epfd, evs, MAX_EVENTS, s->npending ? 0 : timeout_ms);
    if (n < 0 && errno != EINTR)
        return SL_ERR_IO;
    for (int i = 0; i < n; i++) {
        uint32_t tag = evs[i].data.u32;
        if (tag == LISTEN_TAG) {
            accept_all(s);
        } else if (tag < s->max_conns && s->conns[tag].fd >= 0) {
            struct conn *c = &s->conns[tag];
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                c->readable = true;
            if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                c->writable = true;
            /* A dead socket is closed at its turn, even over budget. */
            if (evs[i].events & (EPOLLHUP | EPOLLERR))
                c->hup = true;
        }
    }
    /* Rate budgets fill with time; a held slot whose bucket has a whole
     * request again goes on: marked readable, so its turn reads (EAGAIN
     * if nothing came) and re-arms EPOLLIN. */
    if (s->rate)
        for (unsigned i = 0; i < s->max_conns; i++)
            refill(s, &s->conns[i], now_ms);
    /* Round robin from where the last turn stopped, within the budget. */
    unsigned budget = s->turn_reqs;
    unsigned next = s->rr;
    for (unsigned k = 0; k < s->max_conns; k++) {
        unsigned i = (s->rr + k) % s->max_conns;
        struct conn *c = &s->conns[i];
        if (c->fd < 0 || !(c->readable || c->writable || c->pending))
            continue;
        if (budget == 0) {
            next = i;
            break;
        }
        serve(s, c, &budget);
        next = (i + 1) % s->max_conns;
    }
    s->rr = next;
    s->npending = 0;
    s->wake_ms = -1;
    for (unsigned i = 0; i < s->max_conns; i++) {
        struct conn *c = &s->conns[i];
        if (c->fd < 0)
            continue;
        if (now_ms >= c->last_req_ms && now_ms - c->last_req_ms >= s->idle_ms) {
            s->st.closed_idle++;
            conn_close(s, c);
        } else if (c->partial && now_ms >= c->partial_ms && now_ms - c->partial_ms >= s->req_ms) {
            s->st.closed_slow++;
            conn_close(s, c);
        } else if (c->pending || c->readable || c->writable) {
            s->npending++;
        } else if (c->held) {
            /* ceil(missing thousandths / rate per ms), at least 1 ms */
            uint64_t ms = (1000u - c->tokens + s->rate - 1u) / s->rate;
            int w = ms > 1000u ? 1000 : (int)ms;
            if (s->wake_ms < 0 || w < s->wake_ms)
                s->wake_ms = w;
        }
    }
    return SL_OK;
}
