/* raw TX and pcap RX on the loopback interface, addressed 127.0.0.1 to
 * 127.0.0.1: a kernel UDP socket accepts our hand-built frames (so the IPv4
 * and UDP checksums are right by the kernel's own judgement) and a pcap
 * capture parses the same frames.
 *
 * A frame injected on lo has no route attached, so the kernel treats a
 * 127.0.0.1 source as martian unless route_localnet and accept_local are set. The test runs in
 * a child process inside its own network namespace (only lo, only
 * 127.0.0.1) where it may set that; the host is untouched. An integration
 * test (test_hw_raw): it needs root and reports SKIP, with the reason,
 * without it. The refusal without CAP_NET_RAW is a unit test (test_raw.c). */
#define _GNU_SOURCE   /* unshare, CLONE_NEWNET */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hw_test_util.h"
#include "sl_hw.h"
#include "sl_test.h"

#define DLEN 1000u
#define NDG  200u

static sl_err drain(struct sl_hw *rx, uint32_t *next, uint32_t *bad, uint32_t want)
{
    static uint8_t mem[64][DLEN];
    sl_err e = SL_OK;
    for (int k = 0; k < 200 && *next < want; k++) {
        struct sl_hw_rxmsg msgs[64];
        for (int i = 0; i < 64; i++)
            msgs[i] = (struct sl_hw_rxmsg){ mem[i], DLEN, 0, NULL };
        size_t got = 0;
        e = sl_hw_recv(rx, &got, msgs, 64, 200);
        if (e == SL_ERR_AGAIN)
            break;
        if (e != SL_OK)
            return e;
        for (size_t i = 0; i < got; i++, (*next)++) {
            uint8_t exp[DLEN];
            hw_fill(exp, DLEN, *next);
            if (msgs[i].len != DLEN || memcmp(exp, msgs[i].data, DLEN) != 0)
                (*bad)++;
        }
    }
    return e;
}

static unsigned fails;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "  raw child: %s:%d: %s\n", __FILE__, __LINE__, #c); fails++; } } while (0)
#define CHECK_FATAL(c) do { if (!(c)) { CHECK(c); return; } } while (0)

#define CHECK_EQ(a, b) CHECK((a) == (b))
#define CHECK_EQ_FATAL(a, b) CHECK_FATAL((a) == (b))

static void raw_body(void)
{
    struct sl_hw_config uc;
    sl_hw_config_init(&uc);
    uc.transport = SL_HW_UDP;
    uc.dir = SL_HW_RX;
    uc.datagram_bytes = DLEN;
    struct sockaddr_in *a = (struct sockaddr_in *)&uc.addr;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uc.addr_len = sizeof *a;
    struct sl_hw *urx = NULL, *prx = NULL, *tx = NULL;
    CHECK_EQ_FATAL(sl_hw_open(&urx, NULL, 0, &uc), SL_OK);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    CHECK_EQ_FATAL(getsockname(sl_hw_fd(urx), (struct sockaddr *)&bound, &blen), 0);
    uint16_t port = ntohs(bound.sin_port);

    struct sl_hw_config rc;
    sl_hw_config_init(&rc);
    rc.transport = SL_HW_RAW;
    rc.dir = SL_HW_TX;
    rc.datagram_bytes = DLEN;
    strcpy(rc.interface, "lo");
    memset(rc.frame.dst_mac, 0, sizeof rc.frame.dst_mac);   /* lo's address */
    rc.frame.src_ip = rc.frame.dst_ip = INADDR_LOOPBACK;
    rc.frame.src_port = 40001;
    rc.frame.dst_port = port;
    char why[SL_HW_WARNING_BYTES];
    /* The child holds CAP_NET_RAW (checked before): only SL_OK is right. */
    sl_err e = sl_hw_open(&tx, why, sizeof why, &rc);
    if (e != SL_OK)
        fprintf(stderr, "\n  raw open: %s\n", why);
    CHECK_EQ_FATAL(e, SL_OK);

    struct sl_hw_config pc;
    sl_hw_config_init(&pc);
    pc.transport = SL_HW_PCAP;
    pc.dir = SL_HW_RX;
    pc.datagram_bytes = DLEN;
    pc.port = port;
    pc.pcap_buffer_bytes = 4 * 1024 * 1024;
    strcpy(pc.interface, "lo");
    e = sl_hw_open(&prx, why, sizeof why, &pc);
    CHECK_EQ(e, SL_OK);
    if (e != SL_OK)
        fprintf(stderr, "\n  pcap open: %s\n", why);

    static uint8_t data[NDG][DLEN];
    const uint8_t *ptrs[NDG];
    for (uint32_t i = 0; i < NDG; i++) {
        hw_fill(data[i], DLEN, i);
        ptrs[i] = data[i];
    }
    size_t sent = 0;
    for (uint32_t off = 0; off < NDG; off += 50) {
        size_t s = 0;
        CHECK_EQ(sl_hw_send(tx, &s, ptrs + off, 50), SL_OK);
        sent += s;
    }
    CHECK_EQ(sent, NDG);

    uint32_t next = 0, bad = 0;
    CHECK_EQ(drain(urx, &next, &bad, NDG), SL_OK);
    CHECK_EQ(next, NDG);
    CHECK_EQ(bad, 0u);
    if (prx) {
        next = bad = 0;
        CHECK_EQ(drain(prx, &next, &bad, NDG), SL_OK);
        CHECK_EQ(next, NDG);
        CHECK_EQ(bad, 0u);
        struct sl_hw_stats st;
        sl_hw_stats(prx, &st);
        CHECK_EQ(st.rx_rejected, 0u);
        CHECK_EQ(st.rx_kernel_drops, 0u);
        CHECK(sl_hw_fd(prx) >= 0);
        /* pcap is receive-only. */
        CHECK_EQ(sl_hw_send(prx, &sent, ptrs, 1), SL_ERR_STATE);
        /* Nothing more: a timeout, not an error. */
        size_t got = 0;
        struct sl_hw_rxmsg m = { data[0], DLEN, 0, NULL };
        CHECK_EQ(sl_hw_recv(prx, &got, &m, 1, 50), SL_ERR_AGAIN);
    }
    struct sl_hw_stats ts;
    sl_hw_stats(tx, &ts);
    CHECK_EQ(ts.datagrams, NDG);
    CHECK_EQ(ts.tx_errors, 0u);
    sl_hw_close(prx);
    sl_hw_close(tx);
    sl_hw_close(urx);
}

/* Child: a private network namespace with lo up and route_localnet on.
 * On failure why says which step and why (the test is then skipped). */
static int netns_setup(void *ctx, char *why, size_t why_cap)
{
    (void)ctx;
    if (unshare(CLONE_NEWNET) != 0) {
        snprintf(why, why_cap, "cannot unshare a network namespace (%s): needs root", strerror(errno));
        return -1;
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
        snprintf(why, why_cap, "cannot read lo's flags in the namespace (%s)", strerror(errno));
        return -1;
    }
    ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
        snprintf(why, why_cap, "cannot bring lo up in the namespace (%s)", strerror(errno));
        return -1;
    }
    close(s);
    /* route_localnet: a 127/8 source without an attached route is not
     * martian; accept_local: a source that is one of our own addresses is
     * accepted (the kernel's loopback shortcut normally skips both checks). */
    static const char *const knobs[] = { "/proc/sys/net/ipv4/conf/lo/route_localnet",
                                         "/proc/sys/net/ipv4/conf/lo/accept_local" };
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        int fd = open(knobs[i], O_WRONLY | O_CLOEXEC);
        ssize_t w = fd >= 0 ? write(fd, "1", 1) : -1;
        if (w != 1)
            snprintf(why, why_cap, "cannot write %s (%s)", knobs[i], strerror(errno));
        if (fd >= 0)
            close(fd);
        if (w != 1)
            return -1;
    }
    if (!hw_have_cap(CAP_NET_RAW)) {
        snprintf(why, why_cap, "no CAP_NET_RAW in the namespace");
        return -1;
    }
    return 0;
}

/* Needs root (a private network namespace, CAP_NET_RAW): skipped with the
 * reason when either is missing; otherwise every frame must arrive. */
static int raw_child(void *ctx)
{
    (void)ctx;
    raw_body();
    return fails ? 1 : 0;
}

SL_TEST(raw, loopback_frames_reach_udp_and_pcap)
{
    /* The child's loops are bounded (200 receive rounds of <= 200 ms). */
    sl_test_in_child(netns_setup, raw_child, NULL);
}
