/* The Modbus server's per-peer connection cap with IPv6 sources: several
 * addresses of one /64 on the loopback of a private network namespace
 * (rx_netns6.h). An integration test (test_rx_netns6): needs root and
 * ip(8), reports SKIP with the reason without them. The per-peer key itself
 * and the IPv4 cap are unit tests in test_mbserver.c. */
#define _GNU_SOURCE   /* unshare (rx_netns6.h) */
#include <errno.h>
#include <stdbool.h>

#include "rx_fixture.h"
#include "rx_netns6.h"
#include "sl_mbserver.h"

/* The helpers below run in the namespace child: no CUnit assertion. */

/* A few server turns; false when one failed. */
static bool pump(struct sl_mbserver *s, uint64_t now_ms)
{
    for (int i = 0; i < 4; i++)
        if (sl_mbserver_poll_once(s, 5, now_ms) != SL_OK)
            return false;
    return true;
}

/* Reads exactly n bytes, pumping the server in between; returns bytes got
 * (less on EOF or after ~2 s). */
static size_t recv_n(struct sl_mbserver *s, int fd, uint8_t *p, size_t n, uint64_t now_ms)
{
    size_t got = 0;
    for (int round = 0; round < 400 && got < n; round++) {
        ssize_t r = recv(fd, p + got, n - got, MSG_DONTWAIT);
        if (r == 0)
            break;
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (!pump(s, now_ms))
            break;
    }
    return got;
}

/* True when the server has closed the client's connection. */
static bool closed_by_server(struct sl_mbserver *s, int fd, uint64_t now_ms)
{
    for (int round = 0; round < 100; round++) {
        uint8_t c;
        ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r > 0 || !pump(s, now_ms))
            return false;
    }
    return false;
}

/* A read request (function fc, count registers from addr) as an MBAP ADU. */
static size_t mk_read(uint8_t *b, uint16_t tid, uint8_t unit, uint8_t fc, uint16_t addr,
                      uint16_t count)
{
    const uint8_t adu[12] = { (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, unit, fc,
                              (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(count >> 8),
                              (uint8_t)count };
    memcpy(b, adu, sizeof adu);
    return sizeof adu;
}

/* Live, in a private network namespace (root only; SKIP otherwise):
 * three sources in fd00:5:1:1::/64 count as one peer against
 * max_conns_per_peer = 2 (the old per-address key let each in); a source
 * in the next /64 is another peer. Returns 0 or the failed check. */
static int v6_peer_body(void *ctx)
{
    const struct sl_mirror *m = ctx;
    struct sl_mbserver_config cfg = { .listen = "[fd00:5:1:1::1]:0", .max_conns = 8,
                                      .max_conns_per_peer = 2 };
    struct sl_mbserver *s = NULL;
    if (sl_mbserver_open(&s, &cfg, m) != SL_OK)
        return 1;
    uint16_t port = sl_mbserver_port(s);
    int a = rx_client6("fd00:5:1:1::1", "fd00:5:1:1::1", port);
    int b = rx_client6("fd00:5:1:1::2", "fd00:5:1:1::1", port);
    if (!pump(s, 0))
        return 7;
    int c = rx_client6("fd00:5:1:1::3", "fd00:5:1:1::1", port);
    if (a < 0 || b < 0 || c < 0)
        return 2;
    if (!closed_by_server(s, c, 0))
        return 3;
    int d = rx_client6("fd00:5:1:2::1", "fd00:5:1:1::1", port);
    if (d < 0)
        return 4;
    if (!pump(s, 0))
        return 8;
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    if (st.refused_peer != 1 || st.accepted != 3 || sl_mbserver_conns(s) != 3)
        return 5;
    uint8_t req[12], resp[16];
    mk_read(req, 3, 1, 3, 10, 1);
    if (send(d, req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req || recv_n(s, d, resp, 11, 0) != 11)
        return 6;
    close(a);
    close(b);
    close(c);
    close(d);
    sl_mbserver_close(s);
    return 0;
}

SL_TEST(mbserver, per_peer_cap_ipv6_by_64)
{
    static const char *const addrs[] = { "fd00:5:1:1::1", "fd00:5:1:1::2", "fd00:5:1:1::3",
                                         "fd00:5:1:2::1", NULL };
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    rx_netns6_case(v6_peer_body, m, addrs);
    sl_mirror_destroy(m);
}

