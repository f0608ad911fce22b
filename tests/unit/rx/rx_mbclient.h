/* Client side of the Modbus server tests (test_mbserver.c and, in a network
 * namespace child, test_mbserver_netns6.c). The server runs in the test's
 * own thread, so every wait pumps it through the caller's pump function
 * (false: a server turn failed, stop waiting). No CUnit assertion here:
 * the namespace child must not use one. */
#ifndef RX_MBCLIENT_H
#define RX_MBCLIENT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "sl_mbserver.h"

typedef bool (*rx_mb_pump_fn)(struct sl_mbserver *s, uint64_t now_ms);

/* Reads exactly n bytes, pumping the server in between; returns bytes got
 * (less on EOF, a failed turn or after ~2 s). */
static inline size_t rx_mb_recv_n(rx_mb_pump_fn pump, struct sl_mbserver *s, int fd, uint8_t *p,
                                  size_t n, uint64_t now_ms)
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
static inline bool rx_mb_closed_by_server(rx_mb_pump_fn pump, struct sl_mbserver *s, int fd,
                                          uint64_t now_ms)
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

/* A read request (function fc, count items from addr) as an MBAP ADU. */
static inline size_t rx_mb_read_req(uint8_t *b, uint16_t tid, uint8_t unit, uint8_t fc, uint16_t addr,
                                    uint16_t count)
{
    const uint8_t adu[12] = { (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, unit, fc,
                              (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(count >> 8),
                              (uint8_t)count };
    memcpy(b, adu, sizeof adu);
    return sizeof adu;
}

#endif
