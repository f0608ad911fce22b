/* Runs a test body in a child process inside a private network namespace
 * whose loopback carries chosen IPv6 addresses, so the services' per-peer
 * limits can be tried with several sources in one /64 (the host's own
 * loopback has ::1 only). Needs root (unshare CLONE_NEWNET) and ip(8);
 * without them the caller reports SKIP with the reason (rx_netns6_case).
 * Used only by the `integration` executable test_rx_netns6. The body runs
 * through sl_test_in_child: no CUnit assertion in it. */
#ifndef RX_NETNS6_H
#define RX_NETNS6_H

/* unshare(2) needs _GNU_SOURCE defined before the first system header:
 * define it at the top of the including file. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_test.h"

struct rx_netns6 {
    const char *const *addrs;
    int (*body)(void *);
    void *ctx;
};

/* Child: a private namespace with the NULL-terminated IPv6 addresses ctx
 * on lo (as /64, nodad); on failure why says which step failed (the case
 * is then skipped). */
static inline int rx_netns6_setup(void *ctx, char *why, size_t why_cap)
{
    const char *const *addrs = ((const struct rx_netns6 *)ctx)->addrs;
    if (unshare(CLONE_NEWNET) != 0) {
        snprintf(why, why_cap, "cannot unshare a network namespace (%s): needs root", strerror(errno));
        return -1;
    }
    if (!sl_test_on_path("ip")) {
        snprintf(why, why_cap, "ip(8) not on PATH (iproute2)");
        return -1;
    }
    if (system("ip link set lo up") != 0) {
        snprintf(why, why_cap, "'ip link set lo up' failed in the namespace");
        return -1;
    }
    for (const char *const *a = addrs; *a; a++) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "ip -6 addr add %s/64 dev lo nodad", *a);
        if (system(cmd) != 0) {
            snprintf(why, why_cap, "'%s' failed (IPv6 disabled?)", cmd);
            return -1;
        }
    }
    return 0;
}

static inline int rx_netns6_body(void *ctx)
{
    const struct rx_netns6 *n = ctx;
    return n->body(n->ctx);
}

/* Runs body(ctx) in a private namespace with addrs on lo and asserts it
 * returned 0 (else the number is the failed check); SKIP with the reason
 * when no such namespace could be made. */
static inline void rx_netns6_case(int (*body)(void *), void *ctx, const char *const *addrs)
{
    struct rx_netns6 n = { addrs, body, ctx };
    sl_test_in_child(rx_netns6_setup, rx_netns6_body, &n);
}

/* A TCP client from src (an address on lo) to [dst]:port; -1 on failure. */
static inline int rx_client6(const char *src, const char *dst, uint16_t port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in6 b = { .sin6_family = AF_INET6 }, a = { .sin6_family = AF_INET6 };
    a.sin6_port = htons(port);
    if (inet_pton(AF_INET6, src, &b.sin6_addr) != 1 || inet_pton(AF_INET6, dst, &a.sin6_addr) != 1 ||
        bind(fd, (struct sockaddr *)&b, sizeof b) != 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

#endif
