/* sluice-bench udpfloor: what the kernel alone costs to move bulk bytes
 * over the same link Sluice uses (docs/performance.md, "Kernel floor").
 *
 *   udpfloor send --dest HOST:PORT --bytes N   a connected UDP socket, the
 *       bytes as datagrams of --datagram payload bytes, UDP_SEGMENT (GSO)
 *       super-packets of --gso datagrams, --batch datagrams per sendmmsg,
 *       as fast as the kernel takes them; then a few end markers.
 *   udpfloor recv --listen HOST:PORT --bytes N --out FILE   bind, UDP_GRO,
 *       recvmmsg, every payload byte appended to FILE, fsync.
 *
 * Both copy hw/sl_udp.c's socket set-up (DF, forced buffers, the tiny
 * receive buffer on the sending socket, one iovec per datagram gathered into
 * super-packets, 64 KiB GRO slots) so the difference to sluice-tx and
 * sluice-rx is Sluice's own work: framing, FEC, hashing, signatures,
 * pacing and reassembly. There is no protocol here: a datagram lost is
 * counted, never repaired. Each side prints one JSON line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* sendmmsg, recvmmsg */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "sl_frame.h"
#include "sl_hw.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define DATAGRAM_DEFAULT 1472u           /* mtu 1500 - IPv4 20 - UDP 8 */
#define BATCH_DEFAULT    SL_HW_BATCH_DEFAULT
#define GRO_SLOT_BYTES   65536u          /* one coalesced buffer, as sl_udp */
#define GRO_SLOTS_MAX    32u
#define CMSG_BYTES       128u
#define TIMEOUT_S_DEFAULT 60u
#define IDLE_MS_DEFAULT  2000u
#define RCVBUF_WANT      (1 << 30)       /* "as large as allowed": sl_hw_sockbuf's ceiling */
#define SNDBUF_WANT      SL_HW_SOCKBUF_DEFAULT
/* The end marker: magic then the bytes sent (big-endian u64). Its length
 * differs from a full datagram; only the last segment of a buffer can be
 * short, so only that one is compared. */
#define MARKER_MAGIC     "SLUICE-FLOOR-END"
#define MARKER_MAGIC_LEN 16u
#define MARKER_BYTES     (MARKER_MAGIC_LEN + 8u)
#define MARKERS          10u
#define MARKER_GAP_NS    50000000ull     /* 50 ms: let a full receive queue drain */

union cmsg_space {
    struct cmsghdr align;
    uint8_t b[CMSG_BYTES];
};

struct floor_args {
    bool send;
    const char *addr;         /* --dest or --listen */
    const char *out;          /* recv: --out */
    uint64_t bytes;
    size_t datagram, gso, batch;
    unsigned timeout_s, idle_ms;
};

static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-bench udpfloor send --dest HOST:PORT --bytes N [--datagram %u] [--gso 64]\n"
            "                                  [--batch %u] [--timeout-s %u]\n"
            "       sluice-bench udpfloor recv --listen HOST:PORT --bytes N --out FILE [--datagram %u]\n"
            "                                  [--batch %u] [--timeout-s %u] [--idle-ms %u]\n\n"
            "The kernel floor of a bulk transfer: UDP datagrams of --datagram payload bytes\n"
            "(default: Sluice's at mtu 1500), sent with UDP GSO (--gso datagrams per\n"
            "super-packet, capped at %u and at 64 KiB; 1 = off) in sendmmsg calls of\n"
            "--batch datagrams, received with UDP GRO and recvmmsg and appended to FILE,\n"
            "fsynced. No FEC, no hashing, no signatures, no pacing; loss is counted, not\n"
            "repaired. send stops after N bytes or --timeout-s, then sends %u end markers\n"
            "%llu ms apart; recv stops at N bytes, an end marker, --idle-ms without data\n"
            "after the first, or --timeout-s. Each prints one JSON line: bytes, datagrams,\n"
            "cpu_s (getrusage utime + stime of the whole process, start-up included),\n"
            "cpu_data_s (the same over the data phase alone), wall_s (send: first to last\n"
            "data datagram; recv: first datagram to the last byte written, plus the\n"
            "fsync), and more.\n",
            DATAGRAM_DEFAULT, BATCH_DEFAULT, TIMEOUT_S_DEFAULT, DATAGRAM_DEFAULT, BATCH_DEFAULT,
            TIMEOUT_S_DEFAULT, IDLE_MS_DEFAULT, SL_HW_GSO_SEGMENTS_MAX, MARKERS,
            (unsigned long long)(MARKER_GAP_NS / 1000000u));
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* 0 = parsed, 1 = --help printed, 2 = bad usage (message printed). */
static int parse(int argc, char **argv, struct floor_args *a)
{
    memset(a, 0, sizeof *a);
    a->datagram = DATAGRAM_DEFAULT;
    a->gso = SL_HW_GSO_SEGMENTS_MAX;
    a->batch = BATCH_DEFAULT;
    a->timeout_s = TIMEOUT_S_DEFAULT;
    a->idle_ms = IDLE_MS_DEFAULT;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 1;
    }
    if (strcmp(argv[1], "send") == 0)
        a->send = true;
    else if (strcmp(argv[1], "recv") != 0) {
        fprintf(stderr, "sluice-bench udpfloor: 'send' or 'recv', not '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    bool have_bytes = false;
    for (int i = 2; i < argc; i += 2) {   /* options come as OPTION VALUE pairs */
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool ok = v != NULL;
        if (strcmp(o, a->send ? "--dest" : "--listen") == 0)
            a->addr = v;
        else if (!a->send && strcmp(o, "--out") == 0)
            a->out = v;
        else if (strcmp(o, "--bytes") == 0)
            ok = ok && parse_u64(v, 1, UINT64_MAX / 2, &a->bytes) && (have_bytes = true);
        else if (strcmp(o, "--datagram") == 0)
            ok = ok && parse_u64(v, MARKER_BYTES + 1, SL_UDP_PAYLOAD_MAX, &n) && (a->datagram = n);
        else if (a->send && strcmp(o, "--gso") == 0)
            ok = ok && parse_u64(v, 1, SL_HW_GSO_SEGMENTS_MAX, &n) && (a->gso = n);
        else if (strcmp(o, "--batch") == 0)
            ok = ok && parse_u64(v, 1, SL_HW_BATCH_MAX, &n) && (a->batch = n);
        else if (strcmp(o, "--timeout-s") == 0)
            ok = ok && parse_u64(v, 1, 3600, &n) && (a->timeout_s = (unsigned)n);
        else if (!a->send && strcmp(o, "--idle-ms") == 0)
            ok = ok && parse_u64(v, 10, 600000, &n) && (a->idle_ms = (unsigned)n);
        else {
            fprintf(stderr, "sluice-bench udpfloor %s: unknown option '%s'\n", argv[1], o);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "sluice-bench udpfloor %s: bad or missing value for %s\n", argv[1], o);
            return 2;
        }
    }
    if (!a->addr || !have_bytes || (!a->send && !a->out)) {
        fprintf(stderr, "sluice-bench udpfloor %s: needs %s HOST:PORT, --bytes N%s\n", argv[1],
                a->send ? "--dest" : "--listen", a->send ? "" : " and --out FILE");
        return 2;
    }
    return 0;
}

/* Forced buffer when root (as sl_hw_sockbuf), else capped by the sysctl;
 * returns what the kernel granted (its doubled figure) or -1. */
static int sockbuf(int fd, bool tx, int want)
{
    int force = tx ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, plain = tx ? SO_SNDBUF : SO_RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, force, &want, sizeof want) != 0)
        (void)setsockopt(fd, SOL_SOCKET, plain, &want, sizeof want);
    int granted = 0;
    socklen_t len = sizeof granted;
    if (getsockopt(fd, SOL_SOCKET, plain, &granted, &len) != 0)
        return -1;
    return granted;
}

/* As sl_udp: errors with which the kernel refuses a GSO send on this path. */
static bool gso_refused(int err)
{
    return err == EIO || err == EINVAL || err == EMSGSIZE || err == EOPNOTSUPP || err == ENOPROTOOPT;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

struct send_result {
    uint64_t bytes, datagrams, calls;
    size_t gso;                 /* datagrams per super-packet in the end; 1 = none */
    int sndbuf;
    uint64_t first_ns, last_ns;
    double cpu_data_s;          /* CPU of the data phase alone */
    bool timed_out;
};

/* The data phase. Returns 0, or an errno with *what naming the call. */
static int send_data(int fd, const struct floor_args *a, const uint8_t *buf, struct mmsghdr *msgs,
                     struct iovec *iov, struct send_result *r, const char **what)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)a->timeout_s * 1000000000u;
    size_t dlen = a->datagram;
    unsigned refused_retries = 0;
    /* Each call sends at least one datagram or fails; the bound allows a
     * call per datagram, twice over, plus the retries below. */
    uint64_t max_calls = (a->bytes / dlen + 1) * 2 + 64;
    double c0 = cpu_s();
    r->first_ns = bench_now_ns();
    while (r->bytes < a->bytes) {
        if (r->calls >= max_calls || bench_now_ns() > deadline) {
            r->timed_out = true;
            break;
        }
        /* This call's datagrams, the last one short when N is not a
         * multiple of the datagram size. */
        size_t n = 0;
        uint64_t left = a->bytes - r->bytes;
        while (n < a->batch && left > 0) {
            size_t len = left < dlen ? (size_t)left : dlen;
            iov[n].iov_base = (void *)(uintptr_t)(buf + n * dlen);   /* sendmsg does not write */
            iov[n].iov_len = len;
            left -= len;
            n++;
        }
        size_t per = r->gso, nmsg = (n + per - 1) / per;
        for (size_t m = 0; m < nmsg; m++) {
            size_t first = m * per, cnt = n - first < per ? n - first : per;
            memset(&msgs[m], 0, sizeof msgs[m]);
            msgs[m].msg_hdr.msg_iov = &iov[first];
            msgs[m].msg_hdr.msg_iovlen = cnt;
        }
        r->calls++;
        int k = sendmmsg(fd, msgs, (unsigned)nmsg, 0);
        if (k < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            if (r->gso > 1 && gso_refused(err)) {
                int zero = 0;
                (void)setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero);
                r->gso = 1;
                continue;
            }
            /* An ICMP port-unreachable from before the receiver bound,
             * reported on this send: nothing was lost by this call. */
            if (err == ECONNREFUSED && refused_retries++ < 16)
                continue;
            *what = "sendmmsg";
            return err;
        }
        for (int m = 0; m < k; m++)
            for (size_t j = 0; j < msgs[m].msg_hdr.msg_iovlen; j++) {
                r->bytes += msgs[m].msg_hdr.msg_iov[j].iov_len;
                r->datagrams++;
            }
    }
    r->last_ns = bench_now_ns();
    r->cpu_data_s = cpu_s() - c0;
    return 0;
}

static int run_send(const struct floor_args *a)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (sl_hw_addr_parse(&ss, &sslen, a->addr, 0) != SL_OK) {
        fprintf(stderr, "sluice-bench udpfloor send: bad --dest '%s'\n", a->addr);
        return 2;
    }
    uint8_t *buf = malloc(a->batch * a->datagram);
    struct mmsghdr *msgs = calloc(a->batch, sizeof *msgs);
    struct iovec *iov = calloc(a->batch, sizeof *iov);
    int fd = -1, rc = 1, err = 0;
    const char *what = "malloc";
    struct send_result r = { .gso = 1 };
    if (!buf || !msgs || !iov) {
        errno = ENOMEM;
        goto sys;
    }
    /* Incompressible bytes (xorshift64), the same every call: the kernel
     * copies them and never looks inside. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < a->batch * a->datagram; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)(x >> 32);
    }
    what = "socket";
    fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0)
        goto sys;
    int one = 1, pmtu = IP_PMTUDISC_DO;
    if (ss.ss_family == AF_INET)
        (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
    else
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof one);
    what = "getsockopt SO_SNDBUF";
    if ((r.sndbuf = sockbuf(fd, true, SNDBUF_WANT)) < 0)
        goto sys;
    what = "connect";
    if (connect(fd, (const struct sockaddr *)&ss, sslen) != 0)
        goto sys;
    int tiny = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
    size_t segs = SL_UDP_PAYLOAD_MAX / a->datagram;
    if (segs > a->gso)
        segs = a->gso;
    if (segs > 1) {
        int gso = (int)a->datagram;
        if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso) == 0)
            r.gso = segs;
    }
    if ((err = send_data(fd, a, buf, msgs, iov, &r, &what)) != 0)
        goto report;
    /* End markers, spaced so a receive queue full of data has drained
     * enough to take one; the receiver stops at the first. */
    uint8_t marker[MARKER_BYTES];
    memcpy(marker, MARKER_MAGIC, MARKER_MAGIC_LEN);
    for (unsigned i = 0; i < 8; i++)
        marker[MARKER_MAGIC_LEN + i] = (uint8_t)(r.bytes >> (56 - 8 * i));
    for (unsigned i = 0; i < MARKERS; i++) {
        if (i)
            sleep_ns(MARKER_GAP_NS);
        (void)send(fd, marker, sizeof marker, 0);   /* a lost marker: the receiver's idle stop */
    }
    rc = r.timed_out ? 1 : 0;
report:
    printf("{\"bytes\":%" PRIu64 ",\"datagrams\":%" PRIu64 ",\"cpu_s\":%.4f,\"wall_s\":%.4f,"
           "\"cpu_data_s\":%.4f,\"datagram\":%zu,\"gso\":%zu,\"calls\":%" PRIu64 ",\"sndbuf\":%d,\"timed_out\":%s}\n",
           r.bytes, r.datagrams, cpu_s(), r.last_ns > r.first_ns ? (double)(r.last_ns - r.first_ns) / 1e9 : 0.0,
           r.cpu_data_s, a->datagram, r.gso, r.calls, r.sndbuf, r.timed_out ? "true" : "false");
    fflush(stdout);
    if (err)
        goto sys_err;
    if (r.timed_out)
        fprintf(stderr, "sluice-bench udpfloor send: stopped after %u s with %" PRIu64 " of %" PRIu64 " bytes\n",
                a->timeout_s, r.bytes, a->bytes);
    goto out;
sys:
    err = errno;
sys_err:
    fprintf(stderr, "sluice-bench udpfloor send: %s: %s\n", what, strerror(err));
    rc = 1;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(msgs);
    free(iov);
    return rc;
}

struct recv_state {
    size_t slots, slot_bytes;
    uint8_t *slab;
    struct mmsghdr *msgs;
    struct iovec *iov, *wiov;
    union cmsg_space *cmsg;
    /* figures */
    uint64_t bytes, datagrams, calls, writes, truncated;
    uint32_t kernel_drops;
    bool marker;
    uint64_t sent;                /* from the marker */
    uint64_t first_ns, last_ns;   /* first datagram; last data byte written */
};

/* Segment size of slot s (the UDP_GRO cmsg), and the kernel's drop count. */
static size_t slot_seg(struct recv_state *st, size_t s)
{
    struct msghdr *mh = &st->msgs[s].msg_hdr;
    size_t seg = st->msgs[s].msg_len;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
            c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t drops;
            memcpy(&drops, CMSG_DATA(c), sizeof drops);
            if (drops > st->kernel_drops)
                st->kernel_drops = drops;
        } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int gso;
            memcpy(&gso, CMSG_DATA(c), sizeof gso);
            if (gso > 0)
                seg = (size_t)gso;
        }
    }
    return seg;
}

/* Appends iov[0..n) to fd, resuming after short writes. Returns 0 or errno. */
static int write_all(int fd, struct iovec *iov, size_t n)
{
    size_t i = 0;
    /* Each pass either finishes an iovec or advances into one; a write of
     * 0 bytes is an error, so the loop is bounded by the bytes to write. */
    while (i < n) {
        ssize_t w = writev(fd, iov + i, (int)(n - i > IOV_MAX ? IOV_MAX : n - i));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        size_t left = (size_t)w;
        while (i < n && left >= iov[i].iov_len)
            left -= iov[i++].iov_len;
        if (left) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return 0;
}

/* One recvmmsg's worth: the data of every slot in one writev. Returns
 * 0, EAGAIN when nothing was waiting, or an errno (*what names the call). */
static int recv_batch(int sock, int out, struct recv_state *st, const char **what)
{
    for (size_t s = 0; s < st->slots; s++) {
        struct msghdr *mh = &st->msgs[s].msg_hdr;
        memset(mh, 0, sizeof *mh);
        mh->msg_iov = &st->iov[s];
        mh->msg_iovlen = 1;
        mh->msg_control = st->cmsg[s].b;
        mh->msg_controllen = sizeof st->cmsg[s].b;
        st->msgs[s].msg_len = 0;
    }
    st->calls++;
    int r = recvmmsg(sock, st->msgs, (unsigned)st->slots, MSG_DONTWAIT, NULL);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return EAGAIN;
        *what = "recvmmsg";
        return errno;
    }
    if (st->first_ns == 0 && r > 0)
        st->first_ns = bench_now_ns();
    size_t nw = 0;
    for (int s = 0; s < r; s++) {
        size_t total = st->msgs[s].msg_len, seg = slot_seg(st, (size_t)s);
        if (st->msgs[s].msg_hdr.msg_flags & MSG_TRUNC) {
            st->truncated++;
            continue;
        }
        if (total == 0 || seg == 0)
            continue;
        const uint8_t *p = st->slab + (size_t)s * st->slot_bytes;
        /* GRO coalesces equal segments and at most one shorter last one:
         * only that one can be a marker. */
        size_t last = total % seg ? total % seg : seg;
        if (last == MARKER_BYTES && memcmp(p + total - last, MARKER_MAGIC, MARKER_MAGIC_LEN) == 0) {
            const uint8_t *m = p + total - last + MARKER_MAGIC_LEN;
            st->marker = true;
            st->sent = 0;
            for (unsigned i = 0; i < 8; i++)
                st->sent = st->sent << 8 | m[i];
            total -= last;
        }
        if (!total)
            continue;
        st->datagrams += (total + seg - 1) / seg;
        st->bytes += total;
        st->wiov[nw].iov_base = (void *)(uintptr_t)p;
        st->wiov[nw].iov_len = total;
        nw++;
    }
    if (nw) {
        st->writes++;
        int err = write_all(out, st->wiov, nw);
        if (err) {
            *what = "writev";
            return err;
        }
        st->last_ns = bench_now_ns();
    }
    return r > 0 ? 0 : EAGAIN;
}

static int run_recv(const struct floor_args *a)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (sl_hw_addr_parse(&ss, &sslen, a->addr, 0) != SL_OK) {
        fprintf(stderr, "sluice-bench udpfloor recv: bad --listen '%s'\n", a->addr);
        return 2;
    }
    struct recv_state st = { .slots = a->batch, .slot_bytes = a->datagram };
    int sock = -1, out = -1, rc = 1, err = 0, rcvbuf = 0, one = 1;
    bool gro = false;
    const char *what = "socket", *end = "timeout";
    double fsync_s = 0, c0 = 0, cpu_data = 0;
    sock = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (sock < 0)
        goto sys;
    if (setsockopt(sock, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) {
        gro = true;
        st.slot_bytes = GRO_SLOT_BYTES;
        /* As sl_udp: one coalesced buffer holds many datagrams, fewer slots. */
        st.slots = a->batch / 4 ? a->batch / 4 : 1;
        if (st.slots > GRO_SLOTS_MAX)
            st.slots = GRO_SLOTS_MAX;
    }
    what = "malloc";
    st.slab = malloc(st.slots * st.slot_bytes);
    st.msgs = calloc(st.slots, sizeof *st.msgs);
    st.iov = calloc(st.slots, sizeof *st.iov);
    st.wiov = calloc(st.slots, sizeof *st.wiov);
    st.cmsg = calloc(st.slots, sizeof *st.cmsg);
    if (!st.slab || !st.msgs || !st.iov || !st.wiov || !st.cmsg) {
        errno = ENOMEM;
        goto sys;
    }
    for (size_t s = 0; s < st.slots; s++) {
        st.iov[s].iov_base = st.slab + s * st.slot_bytes;
        st.iov[s].iov_len = st.slot_bytes;
    }
    what = "setsockopt SO_RXQ_OVFL";
    if (setsockopt(sock, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0)
        goto sys;
    what = "getsockopt SO_RCVBUF";
    if ((rcvbuf = sockbuf(sock, false, RCVBUF_WANT)) < 0)
        goto sys;
    what = "bind";
    if (bind(sock, (const struct sockaddr *)&ss, sslen) != 0)
        goto sys;
    what = "open --out";
    out = open(a->out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0)
        goto sys;
    uint64_t start = bench_now_ns(), deadline = start + (uint64_t)a->timeout_s * 1000000000u;
    uint64_t idle_ns = (uint64_t)a->idle_ms * 1000000u, last_rx = start;
    c0 = cpu_s();   /* the wait before the first datagram is polls: next to nothing */
    /* Bounded by the deadline; each pass either receives or polls <= 50 ms. */
    for (;;) {
        uint64_t now = bench_now_ns();
        if (st.bytes >= a->bytes) {
            end = "bytes";
            break;
        }
        if (st.marker) {
            end = "marker";
            break;
        }
        if (now > deadline)
            break;
        if (st.first_ns && now - last_rx > idle_ns) {
            end = "idle";
            break;
        }
        err = recv_batch(sock, out, &st, &what);
        if (err == 0) {
            last_rx = bench_now_ns();
            continue;
        }
        if (err != EAGAIN)
            goto report;
        err = 0;
        struct pollfd p = { .fd = sock, .events = POLLIN };
        if (poll(&p, 1, 50) < 0 && errno != EINTR) {
            what = "poll";
            err = errno;
            goto report;
        }
    }
    uint64_t f0 = bench_now_ns();
    if (fsync(out) != 0) {
        what = "fsync";
        err = errno;
    }
    fsync_s = (double)(bench_now_ns() - f0) / 1e9;
    cpu_data = cpu_s() - c0;
    rc = err == 0 && st.bytes > 0 ? 0 : 1;
report:;
    uint64_t expect = st.marker ? st.sent : a->bytes;
    double wall = st.last_ns > st.first_ns ? (double)(st.last_ns - st.first_ns) / 1e9 + fsync_s : 0.0;
    printf("{\"bytes\":%" PRIu64 ",\"lost_bytes\":%" PRIu64 ",\"cpu_s\":%.4f,\"wall_s\":%.4f,"
           "\"cpu_data_s\":%.4f,\"datagrams\":%" PRIu64 ",\"sent_bytes\":%" PRIu64 ",\"fsync_s\":%.4f,\"end\":\"%s\","
           "\"gro\":%s,\"rcvbuf\":%d,\"kernel_drops\":%" PRIu32 ",\"truncated\":%" PRIu64 ","
           "\"calls\":%" PRIu64 ",\"writes\":%" PRIu64 "}\n",
           st.bytes, expect > st.bytes ? expect - st.bytes : 0, cpu_s(), wall, cpu_data, st.datagrams,
           st.marker ? st.sent : 0, fsync_s, err ? "error" : end, gro ? "true" : "false", rcvbuf,
           st.kernel_drops, st.truncated, st.calls, st.writes);
    fflush(stdout);
    if (err)
        goto sys_err;
    if (st.bytes == 0)
        fprintf(stderr, "sluice-bench udpfloor recv: nothing arrived within %u s\n", a->timeout_s);
    goto out;
sys:
    err = errno;
sys_err:
    fprintf(stderr, "sluice-bench udpfloor recv: %s: %s\n", what, strerror(err));
    rc = 1;
out:
    if (out >= 0)
        close(out);
    if (sock >= 0)
        close(sock);
    free(st.slab);
    free(st.msgs);
    free(st.iov);
    free(st.wiov);
    free(st.cmsg);
    return rc;
}

int bench_udpfloor(int argc, char **argv)
{
    struct floor_args a;
    int p = parse(argc, argv, &a);
    if (p == 1)
        return 0;
    if (p)
        return 2;
    return a.send ? run_send(&a) : run_recv(&a);
}
