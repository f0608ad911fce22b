/* Runs a test body in a child process inside a private network namespace
 * whose loopback carries chosen IPv6 addresses, so the services' per-peer
 * limits can be tried with several sources in one /64 (the host's own
 * loopback has ::1 only). Needs root (unshare CLONE_NEWNET) and ip(8);
 * without them the caller skips. The child uses no CUnit assertion that
 * could jump (a FATAL one would longjmp into the child's copy of the test
 * runner) and leaves with _exit, so no destructor of the test runs twice. */
#ifndef RX_NETNS6_H
#define RX_NETNS6_H

/* unshare(2) needs _GNU_SOURCE defined before the first system header:
 * define it at the top of the including file. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RX_NETNS6_SKIP 77

/* addrs: NULL-terminated IPv6 addresses put on lo (as /64, nodad). Returns
 * body's result (0: pass, else the failed check's number) or
 * RX_NETNS6_SKIP when no private namespace could be made. */
static inline int rx_in_netns6(int (*body)(void *), void *ctx, const char *const *addrs)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return RX_NETNS6_SKIP;
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) != 0 || system("ip link set lo up") != 0)
            _exit(RX_NETNS6_SKIP);
        for (const char *const *a = addrs; *a; a++) {
            char cmd[160];
            snprintf(cmd, sizeof cmd, "ip -6 addr add %s/64 dev lo nodad", *a);
            if (system(cmd) != 0)
                _exit(RX_NETNS6_SKIP);
        }
        _exit(body(ctx));
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 100;
    return WEXITSTATUS(status);
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
