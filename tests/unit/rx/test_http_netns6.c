/* HTTP's per-peer limits with IPv6 sources: several addresses of one /64
 * on the loopback of a private network namespace (rx_netns6.h). An
 * integration test (test_rx_netns6): needs root and ip(8), reports SKIP
 * with the reason without them. The IPv4 per-peer limits are unit tests in
 * test_http.c. */
#define _GNU_SOURCE   /* unshare (rx_netns6.h) */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>

#include "rx_fixture.h"
#include "rx_netns6.h"
#include "sl_http.h"

/* Reads what fd has until want appears (pumping h); no CUnit jumps, for
 * the netns child. ~2 s at most. */
static bool seen6(struct sl_http *h, int fd, const char *want)
{
    char buf[4096];
    size_t len = 0;
    for (int round = 0; round < 1000; round++) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, MSG_DONTWAIT);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            if (strstr(buf, want))
                return true;
            if (len == sizeof buf - 1)
                len = 0;
        } else if (n == 0) {
            return false;
        }
        int t = sl_http_timeout_ms(h);
        struct pollfd p = { .fd = sl_http_fd(h), .events = POLLIN };
        poll(&p, 1, t < 2 ? t : 2);
        sl_http_run(h);
    }
    return false;
}

/* Live, in a private network namespace (root only; SKIP otherwise):
 * sources in fd00:5:1:1::/64 are one peer for max_conns_per_peer (2) and
 * max_sse_per_peer (1); a source in the next /64 is another. Returns 0 or
 * the failed check. */
static int v6_http_body(void *ctx)
{
    const struct sl_mirror *m = ctx;
    struct sl_http_config cfg = { .listen = "[fd00:5:1:1::1]:0", .max_conns = 16, .max_conns_per_peer = 2,
                                  .max_sse = 8, .max_sse_per_peer = 1, .max_tags = 64 };
    struct sl_http *h = NULL;
    if (sl_http_open(&h, &cfg, m, NULL, NULL) != SL_OK)
        return 1;
    uint16_t port = sl_http_port(h);
    const char sreq[] = "GET /api/stream HTTP/1.1\r\nHost: [fd00:5:1:1::1]\r\n\r\n";
    int a = rx_client6("fd00:5:1:1::1", "fd00:5:1:1::1", port);
    if (a < 0 || send(a, sreq, sizeof sreq - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof sreq - 1) ||
        !seen6(h, a, "event: hello"))
        return 2;
    /* A stream from another address of the /64: its one stream is taken. */
    int b = rx_client6("fd00:5:1:1::2", "fd00:5:1:1::1", port);
    if (b < 0 || send(b, sreq, sizeof sreq - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof sreq - 1) ||
        !seen6(h, b, " 503 "))
        return 3;
    /* Two connections held by the /64 (a, and b unless 503 closed it):
     * open a third from ::3 and count refusals at accept. */
    int c = rx_client6("fd00:5:1:1::3", "fd00:5:1:1::1", port);
    if (c < 0)
        return 4;
    for (int i = 0; i < 50; i++) {
        struct pollfd p = { .fd = sl_http_fd(h), .events = POLLIN };
        poll(&p, 1, 2);
        sl_http_run(h);
    }
    int d = rx_client6("fd00:5:1:2::1", "fd00:5:1:1::1", port);
    if (d < 0 || send(d, sreq, sizeof sreq - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof sreq - 1) ||
        !seen6(h, d, "event: hello"))
        return 5;
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    if (st.sse_refused_peer != 1 || st.sse_clients != 2)
        return 6;
    /* A third connection from the /64 while a and c are open (b was
     * answered 503 and may still be open too): refused at accept. */
    int e = rx_client6("fd00:5:1:1::4", "fd00:5:1:1::1", port);
    if (e < 0)
        return 7;
    bool closed = false;
    for (int round = 0; round < 1000 && !closed; round++) {
        char x[256];
        ssize_t r = recv(e, x, sizeof x, MSG_DONTWAIT);
        closed = r == 0 || (r < 0 && errno == ECONNRESET);
        struct pollfd p = { .fd = sl_http_fd(h), .events = POLLIN };
        poll(&p, 1, 2);
        sl_http_run(h);
    }
    sl_http_stats(h, &st);
    if (!closed || st.refused_peer < 1)
        return 8;
    close(a);
    close(b);
    close(c);
    close(d);
    close(e);
    sl_http_close(h);
    return 0;
}

SL_TEST(http, per_peer_ipv6_by_64)
{
    static const char *const addrs[] = { "fd00:5:1:1::1", "fd00:5:1:1::2", "fd00:5:1:1::3",
                                         "fd00:5:1:1::4", "fd00:5:1:2::1", NULL };
    struct sl_mirror *m = fx_mirror(3);
    rx_netns6_case(v6_http_body, m, addrs);
    sl_mirror_destroy(m);
}

