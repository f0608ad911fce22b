/* The Modbus server's per-peer connection cap with IPv6 sources: several
 * addresses of one /64 on the loopback of a private network namespace
 * (rx_netns6.h). An integration test (test_rx_netns6): needs root and
 * ip(8), reports SKIP with the reason without them. The per-peer key itself
 * and the IPv4 cap are unit tests in test_mbserver.c. */
#define _GNU_SOURCE   /* unshare (rx_netns6.h) */
#include <stdbool.h>

#include "rx_fixture.h"
#include "rx_mbclient.h"
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
    if (!rx_mb_closed_by_server(pump, s, c, 0))
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
    rx_mb_read_req(req, 3, 1, 3, 10, 1);
    if (send(d, req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req || rx_mb_recv_n(pump, s, d, resp, 11, 0) != 11)
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

