/* udp transport: kernel UDP sockets, batched with sendmmsg/recvmmsg.
 * TX: connect()ed to the destination (fast path: no per-packet route
 * lookup), never reads; with GSO each sendmmsg message is one super-packet
 * of up to SL_HW_GSO_SEGMENTS_MAX datagrams gathered by iovecs straight from
 * the caller's buffers (UDP_SEGMENT socket option, so no per-message cmsg).
 * RX: bind-only, never sends; with GRO the kernel hands over coalesced
 * buffers that are split here at the gso_size from the UDP_GRO cmsg. */
#include <errno.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sl_hw_impl.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define GRO_BUF_BYTES 65536u
#define GRO_SLOTS_MAX 32u
#define CMSG_BYTES    128u

union cmsg_space {
    struct cmsghdr align;
    uint8_t b[CMSG_BYTES];
};

struct udp {
    struct sl_hw base;
    struct mmsghdr *msgs;       /* batch (TX) or slots (RX) */
    struct iovec *iov;          /* batch (TX) or slots (RX) */
    /* RX only */
    union cmsg_space *cmsg;     /* one per slot */
    uint8_t *slab;              /* slots * slot_bytes */
    size_t slots, slot_bytes;
    size_t filled;              /* slots holding data from the last recvmmsg */
    size_t cur;                 /* slot being delivered */
    size_t cur_off;             /* offset of the next segment in cur */
    size_t seg[GRO_SLOTS_MAX > SL_HW_BATCH_MAX ? GRO_SLOTS_MAX : SL_HW_BATCH_MAX];
    /* TX only */
    size_t gso_segs;            /* datagrams per super-packet; 1 = no GSO */
};

static void udp_close(struct sl_hw *hw)
{
    struct udp *u = (struct udp *)hw;
    if (hw->fd >= 0)
        close(hw->fd);
    free(u->msgs);
    free(u->iov);
    free(u->cmsg);
    free(u->slab);
    free(u);
}

static void gso_off(struct udp *u, const char *why)
{
    int zero = 0;
    (void)setsockopt(u->base.fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero);
    u->gso_segs = 1;
    u->base.st.gso_active = false;
    sl_hw_warn(&u->base.st, why);
}

/* Errors with which the kernel refuses a GSO send it cannot do on this path
 * (EIO: device without checksum offload; EINVAL/EMSGSIZE: gso_size beyond
 * the path MTU or segment limits; EOPNOTSUPP on some virtual devices). */
static bool gso_refused(int err)
{
    return err == EIO || err == EINVAL || err == EMSGSIZE || err == EOPNOTSUPP || err == ENOPROTOOPT;
}

static sl_err udp_send(struct sl_hw *hw, size_t *sent, const uint8_t *const *dgrams, size_t n)
{
    struct udp *u = (struct udp *)hw;
    size_t dlen = hw->cfg.datagram_bytes;
    *sent = 0;
    for (size_t i = 0; i < n; i++) {
        u->iov[i].iov_base = (void *)(uintptr_t)dgrams[i];  /* sendmsg does not write */
        u->iov[i].iov_len = dlen;
    }
    unsigned refused_retries = 0;
    while (*sent < n) {
        size_t left = n - *sent;
        size_t per = u->gso_segs;
        size_t nmsg = (left + per - 1) / per;
        for (size_t m = 0; m < nmsg; m++) {
            size_t first = *sent + m * per;
            size_t cnt = n - first < per ? n - first : per;
            memset(&u->msgs[m], 0, sizeof u->msgs[m]);
            u->msgs[m].msg_hdr.msg_iov = &u->iov[first];
            u->msgs[m].msg_hdr.msg_iovlen = cnt;
        }
        hw->st.calls++;
        int r = sendmmsg(hw->fd, u->msgs, (unsigned)nmsg, 0);
        if (r < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            hw->st.tx_errors++;
            if (u->gso_segs > 1 && gso_refused(err)) {
                hw->st.gso_fallbacks++;
                gso_off(u, "UDP GSO refused by the kernel on this path; sending datagrams singly.");
                continue;
            }
            /* A connected UDP socket reports an earlier ICMP port-unreachable
             * on the next send; nothing was lost by this call, so retry. On
             * a real diode no ICMP ever comes back. */
            if (err == ECONNREFUSED && refused_retries++ < 4)
                continue;
            errno = err;
            return SL_ERR_IO;
        }
        for (int m = 0; m < r; m++)
            *sent += u->msgs[m].msg_hdr.msg_iovlen;
    }
    return SL_OK;
}

/* Hands out datagrams still held from the last recvmmsg. */
static size_t deliver(struct udp *u, struct sl_hw_rxmsg *msgs, size_t n)
{
    size_t got = 0;
    while (got < n && u->cur < u->filled) {
        size_t total = u->msgs[u->cur].msg_len;
        size_t seg = u->seg[u->cur];
        if (seg == 0) {
            /* Truncated by the kernel: already counted (link/overflow)
             * when it was read; handing it on as empty would count it a
             * second time as datagram/truncated. */
            u->cur++;
            u->cur_off = 0;
            continue;
        }
        if (total == 0) {
            /* An empty datagram is still a datagram: hand it over so the
             * receiver counts it (datagram/truncated) instead of it
             * vanishing here. */
            msgs[got++].len = 0;
            u->cur++;
            u->cur_off = 0;
            continue;
        }
        if (u->cur_off >= total) {
            u->cur++;
            u->cur_off = 0;
            continue;
        }
        size_t len = total - u->cur_off < seg ? total - u->cur_off : seg;
        const uint8_t *src = u->slab + u->cur * u->slot_bytes + u->cur_off;
        u->cur_off += len;
        if (len > msgs[got].cap || len > u->base.cfg.datagram_bytes) {
            sl_hw_reject(&u->base.st, SL_ERR_OVERFLOW);
            continue;
        }
        /* Lent, not copied: the slab slot stays untouched until the next
         * recvmmsg, which only the next sl_hw_recv() makes (the receiver
         * copies each symbol into its block once; a second copy here was
         * a tenth of the intake thread's time at bulk rates). */
        msgs[got].data = src;
        msgs[got].len = len;
        got++;
    }
    return got;
}

static void read_cmsgs(struct udp *u, size_t slot)
{
    struct msghdr *mh = &u->msgs[slot].msg_hdr;
    u->seg[slot] = u->msgs[slot].msg_len ? u->msgs[slot].msg_len : 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
            c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t drops;
            memcpy(&drops, CMSG_DATA(c), sizeof drops);
            /* Cumulative per socket; only present once non-zero. */
            if (drops > u->base.st.rx_kernel_drops)
                u->base.st.rx_kernel_drops = drops;
        } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int gso;
            memcpy(&gso, CMSG_DATA(c), sizeof gso);
            if (gso > 0)
                u->seg[slot] = (size_t)gso;
        }
    }
}

static sl_err udp_recv(struct sl_hw *hw, size_t *got, struct sl_hw_rxmsg *msgs, size_t n, int timeout_ms)
{
    struct udp *u = (struct udp *)hw;
    *got = deliver(u, msgs, n);
    if (*got)
        return SL_OK;
    /* Try first, poll only when empty: under load that saves a syscall. */
    for (int attempt = 0; attempt < 2; attempt++) {
        for (size_t s = 0; s < u->slots; s++) {
            struct msghdr *mh = &u->msgs[s].msg_hdr;
            mh->msg_name = NULL;
            mh->msg_namelen = 0;
            mh->msg_iov = &u->iov[s];
            mh->msg_iovlen = 1;
            mh->msg_control = u->cmsg[s].b;
            mh->msg_controllen = sizeof u->cmsg[s].b;
            mh->msg_flags = 0;
            u->msgs[s].msg_len = 0;
        }
        hw->st.calls++;
        int r = recvmmsg(hw->fd, u->msgs, (unsigned)u->slots, MSG_DONTWAIT, NULL);
        if (r > 0) {
            u->filled = (size_t)r;
            u->cur = 0;
            u->cur_off = 0;
            for (size_t s = 0; s < u->filled; s++) {
                read_cmsgs(u, s);
                if (u->msgs[s].msg_hdr.msg_flags & MSG_TRUNC) {
                    sl_hw_reject(&hw->st, SL_ERR_OVERFLOW);
                    u->seg[s] = 0;   /* deliver() skips it */
                }
            }
            *got = deliver(u, msgs, n);
            return *got ? SL_OK : SL_ERR_AGAIN;
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return SL_ERR_IO;
        if (attempt == 1 || timeout_ms == 0)
            break;
        struct pollfd p = { .fd = hw->fd, .events = POLLIN };
        int pr = poll(&p, 1, timeout_ms);
        if (pr < 0 && errno != EINTR)
            return SL_ERR_IO;
        if (pr <= 0)
            break;
    }
    return SL_ERR_AGAIN;
}

static const struct sl_hw_ops udp_ops = { udp_send, udp_recv, NULL, udp_close };

static sl_err fail(struct udp *u, sl_err e)
{
    int err = errno;
    udp_close(&u->base);
    errno = err;
    return e;
}

sl_err sl_udp_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg)
{
    (void)why;
    (void)why_cap;
    *out = NULL;
    if (cfg->addr_len == 0 || (cfg->addr.ss_family != AF_INET && cfg->addr.ss_family != AF_INET6))
        return SL_ERR_CONFIG;
    struct udp *u = calloc(1, sizeof *u);
    if (!u)
        return SL_ERR_NOMEM;
    u->base.ops = &udp_ops;
    u->base.cfg = *cfg;
    u->base.cfg.file = NULL;
    u->base.fd = socket(cfg->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (u->base.fd < 0)
        return fail(u, SL_ERR_IO);
    int fd = u->base.fd;
    int one = 1;
    bool v4 = cfg->addr.ss_family == AF_INET;

    if (cfg->dir == SL_HW_TX) {
        u->msgs = calloc(cfg->batch, sizeof *u->msgs);
        u->iov = calloc(cfg->batch, sizeof *u->iov);
        if (!u->msgs || !u->iov)
            return fail(u, SL_ERR_NOMEM);
        /* DF: a datagram too big for the path fails loudly (EMSGSIZE)
         * instead of being fragmented, which a diode receiver rejects. */
        int pmtu = IP_PMTUDISC_DO;
        if (v4)
            (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
        else
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof one);
        if (sl_hw_sockbuf(&u->base.st, fd, true, cfg->sockbuf_bytes) != SL_OK)
            return fail(u, SL_ERR_IO);
        if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) != 0)
            return fail(u, SL_ERR_IO);
        /* Keep the receive side as small as the kernel allows: nothing is
         * ever read from this socket. */
        int tiny = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
        u->gso_segs = 1;
        size_t segs = SL_UDP_PAYLOAD_MAX / cfg->datagram_bytes;
        if (segs > SL_HW_GSO_SEGMENTS_MAX)
            segs = SL_HW_GSO_SEGMENTS_MAX;
        if (cfg->gso && segs > 1) {
            int gso = (int)cfg->datagram_bytes;
            if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso) == 0) {
                u->gso_segs = segs;
                u->base.st.gso_active = true;
            } else {
                sl_hw_warn(&u->base.st, "UDP GSO (UDP_SEGMENT) not supported by this kernel; sending datagrams singly.");
            }
        }
    } else {
        u->slots = cfg->batch;
        u->slot_bytes = cfg->datagram_bytes;
        if (cfg->gro) {
            if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) {
                u->base.st.gro_active = true;
                u->slot_bytes = GRO_BUF_BYTES;
                /* One coalesced buffer holds many datagrams: fewer slots. */
                u->slots = cfg->batch / 4 ? cfg->batch / 4 : 1;
                if (u->slots > GRO_SLOTS_MAX)
                    u->slots = GRO_SLOTS_MAX;
            } else {
                sl_hw_warn(&u->base.st, "UDP GRO not supported by this kernel.");
            }
        }
        u->msgs = calloc(u->slots, sizeof *u->msgs);
        u->iov = calloc(u->slots, sizeof *u->iov);
        u->cmsg = calloc(u->slots, sizeof *u->cmsg);
        u->slab = malloc(u->slots * u->slot_bytes);
        if (!u->msgs || !u->iov || !u->cmsg || !u->slab)
            return fail(u, SL_ERR_NOMEM);
        for (size_t s = 0; s < u->slots; s++) {
            u->iov[s].iov_base = u->slab + s * u->slot_bytes;
            u->iov[s].iov_len = u->slot_bytes;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0)
            return fail(u, SL_ERR_IO);
        if (sl_hw_sockbuf(&u->base.st, fd, false, cfg->sockbuf_bytes) != SL_OK)
            return fail(u, SL_ERR_IO);
        if (bind(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) != 0)
            return fail(u, SL_ERR_IO);
    }
    *out = &u->base;
    return SL_OK;
}
