/* udp transport on 127.0.0.1: batches of constant-size datagrams cross
 * byte-exact and in order with GSO/GRO on and off; buffer sizes reported. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hw_test_util.h"
#include "sl_hw.h"
#include "sl_test.h"

#define N_DGRAMS 600u

struct pair {
    struct sl_hw *tx, *rx;
};

static void open_pair(struct pair *p, size_t dlen, bool gso, bool gro, size_t batch)
{
    struct sl_hw_config rc;
    sl_hw_config_init(&rc);
    rc.transport = SL_HW_UDP;
    rc.dir = SL_HW_RX;
    rc.datagram_bytes = dlen;
    rc.batch = batch;
    rc.gro = gro;
    struct sockaddr_in *a = (struct sockaddr_in *)&rc.addr;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc.addr_len = sizeof *a;
    char why[SL_HW_WARNING_BYTES];
    p->rx = p->tx = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_hw_open(&p->rx, why, sizeof why, &rc), SL_OK);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    CU_ASSERT_EQUAL_FATAL(getsockname(sl_hw_fd(p->rx), (struct sockaddr *)&bound, &blen), 0);
    struct sl_hw_config tc = rc;
    tc.dir = SL_HW_TX;
    tc.gso = gso;
    memcpy(&tc.addr, &bound, sizeof bound);
    CU_ASSERT_EQUAL_FATAL(sl_hw_open(&p->tx, why, sizeof why, &tc), SL_OK);
}

static void round_trip(size_t dlen, bool gso, bool gro)
{
    struct pair p;
    open_pair(&p, dlen, gso, gro, 64);
    uint8_t *data = malloc(N_DGRAMS * dlen);
    uint8_t *rxmem = malloc(64 * dlen);
    const uint8_t **ptrs = malloc(N_DGRAMS * sizeof *ptrs);
    CU_ASSERT_FATAL(data && rxmem && ptrs);
    for (uint32_t i = 0; i < N_DGRAMS; i++) {
        hw_fill(data + i * dlen, dlen, i);
        ptrs[i] = data + i * dlen;
    }
    struct sl_hw_stats ts, rs;
    sl_hw_stats(p.tx, &ts);
    CU_ASSERT_EQUAL(ts.gso_active, gso);

    /* Send in chunks of 100 and drain in between: the receive buffer may
     * be small when the test does not run as root. */
    size_t next = 0, recvd = 0, bad = 0;
    for (size_t off = 0; off < N_DGRAMS; off += 100) {
        size_t sent = 0;
        CU_ASSERT_EQUAL_FATAL(sl_hw_send(p.tx, &sent, ptrs + off, 100), SL_OK);
        CU_ASSERT_EQUAL(sent, 100u);
        for (int k = 0; k < 200 && recvd < off + 100; k++) {
            struct sl_hw_rxmsg msgs[64];
            for (int i = 0; i < 64; i++)
                msgs[i] = (struct sl_hw_rxmsg){ rxmem + (size_t)i * dlen, dlen, 0, NULL };
            size_t got = 0;
            sl_err e = sl_hw_recv(p.rx, &got, msgs, 64, 200);
            if (e == SL_ERR_AGAIN)
                break;
            CU_ASSERT_EQUAL_FATAL(e, SL_OK);
            for (size_t i = 0; i < got; i++, next++) {
                if (msgs[i].len != dlen || next >= N_DGRAMS ||
                    memcmp(msgs[i].data, data + next * dlen, dlen) != 0)
                    bad++;
            }
            recvd += got;
        }
    }
    CU_ASSERT_EQUAL(recvd, N_DGRAMS);
    CU_ASSERT_EQUAL(bad, 0u);
    sl_hw_stats(p.tx, &ts);
    sl_hw_stats(p.rx, &rs);
    CU_ASSERT_EQUAL(ts.datagrams, N_DGRAMS);
    CU_ASSERT_EQUAL(ts.bytes, (uint64_t)N_DGRAMS * dlen);
    CU_ASSERT_EQUAL(rs.datagrams, N_DGRAMS);
    CU_ASSERT_EQUAL(rs.rx_rejected, 0u);
    CU_ASSERT_EQUAL(rs.rx_kernel_drops, 0u);
    CU_ASSERT_EQUAL(rs.gro_active, gro);
    /* One sendmmsg per 64 datagrams at most, whatever GSO does. */
    CU_ASSERT(ts.calls <= N_DGRAMS / 64 + 6 + 2 * ts.gso_fallbacks);
    if (gso && gro) {
        /* Over loopback a GSO super-packet reaches a GRO socket whole: far
         * fewer receive calls than datagrams proves the split path ran. */
        CU_ASSERT(rs.calls < N_DGRAMS / 4);
    }
    sl_hw_close(p.tx);
    sl_hw_close(p.rx);
    free(data);
    free(rxmem);
    free(ptrs);
}

SL_TEST(udp, round_trip_gso_gro)       { round_trip(1400, true, true); }
SL_TEST(udp, round_trip_gso_no_gro)    { round_trip(1400, true, false); }
SL_TEST(udp, round_trip_plain)         { round_trip(1400, false, false); }
SL_TEST(udp, round_trip_plain_gro)     { round_trip(1472, false, true); }
SL_TEST(udp, round_trip_small_gso_gro) { round_trip(100, true, true); }

SL_TEST(udp, buffer_sizes_reported)
{
    struct pair p;
    open_pair(&p, 1000, true, true, 16);
    struct sl_hw_stats ts, rs;
    sl_hw_stats(p.tx, &ts);
    sl_hw_stats(p.rx, &rs);
    CU_ASSERT_EQUAL(ts.sockbuf_requested, SL_HW_SOCKBUF_DEFAULT);
    CU_ASSERT_EQUAL(rs.sockbuf_requested, SL_HW_SOCKBUF_DEFAULT);
    CU_ASSERT(ts.sockbuf_granted > 0);
    CU_ASSERT(rs.sockbuf_granted > 0);
    if (rs.sockbuf_forced) {
        /* Privileged: FORCE bypasses net.core.rmem_max; the kernel reports double. */
        CU_ASSERT_EQUAL(rs.sockbuf_granted, 2 * SL_HW_SOCKBUF_DEFAULT);
        CU_ASSERT_FALSE(rs.sockbuf_capped);
        CU_ASSERT_STRING_EQUAL(rs.warning, "");
    } else {
        CU_ASSERT(rs.sockbuf_capped);
        CU_ASSERT_PTR_NOT_NULL(strstr(rs.warning, "net.core.rmem_max"));
    }
    sl_hw_close(p.tx);
    sl_hw_close(p.rx);
}

SL_TEST(udp, oversize_and_misuse)
{
    struct pair p;
    open_pair(&p, 1000, false, false, 8);
    /* Slots smaller than the datagram: dropped and counted, not cut. */
    uint8_t d[1000], small[500];
    hw_fill(d, sizeof d, 1);
    const uint8_t *ptr = d;
    size_t sent = 0, got = 0;
    CU_ASSERT_EQUAL(sl_hw_send(p.tx, &sent, &ptr, 1), SL_OK);
    struct sl_hw_rxmsg m = { small, sizeof small, 0, NULL };
    CU_ASSERT_EQUAL(sl_hw_recv(p.rx, &got, &m, 1, 500), SL_ERR_AGAIN);
    struct sl_hw_stats rs;
    sl_hw_stats(p.rx, &rs);
    CU_ASSERT_EQUAL(rs.rx_reject[SL_ERR_OVERFLOW], 1u);
    /* Nothing waiting: timeout comes back as SL_ERR_AGAIN. */
    CU_ASSERT_EQUAL(sl_hw_recv(p.rx, &got, &m, 1, 20), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(got, 0u);
    /* Wrong direction. */
    CU_ASSERT_EQUAL(sl_hw_recv(p.tx, &got, &m, 1, 0), SL_ERR_STATE);
    CU_ASSERT_EQUAL(sl_hw_send(p.rx, &sent, &ptr, 1), SL_ERR_STATE);
    sl_hw_close(p.tx);
    sl_hw_close(p.rx);

    /* Configurations that do not exist. */
    struct sl_hw_config c;
    sl_hw_config_init(&c);
    struct sl_hw *h = NULL;
    char why[SL_HW_WARNING_BYTES];
    c.datagram_bytes = 1000;
    c.transport = SL_HW_PCAP;
    c.dir = SL_HW_TX;
    CU_ASSERT_EQUAL(sl_hw_open(&h, why, sizeof why, &c), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(h);
    CU_ASSERT(why[0] != '\0');
    c.transport = SL_HW_RAW;
    c.dir = SL_HW_RX;
    CU_ASSERT_EQUAL(sl_hw_open(&h, why, sizeof why, &c), SL_ERR_CONFIG);
    c.transport = SL_HW_UDP;
    c.dir = SL_HW_TX;                       /* no address */
    CU_ASSERT_EQUAL(sl_hw_open(&h, NULL, 0, &c), SL_ERR_CONFIG);
    c.batch = 0;
    CU_ASSERT_EQUAL(sl_hw_open(&h, NULL, 0, &c), SL_ERR_CONFIG);
    sl_hw_close(NULL);
}

/* A datagram longer than a receive slot (no GRO: slots are datagram_bytes)
 * is cut by the kernel: counted once as an overflow and not handed on, not
 * also delivered empty (which the receiver would count again as
 * datagram/truncated); the next one still arrives. */
SL_TEST(udp, truncated_counted_once)
{
    struct pair p;
    open_pair(&p, 200, false, false, 8);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in to;
    socklen_t tlen = sizeof to;
    CU_ASSERT_EQUAL_FATAL(getsockname(sl_hw_fd(p.rx), (struct sockaddr *)&to, &tlen), 0);
    uint8_t big[300];
    hw_fill(big, sizeof big, 3);
    CU_ASSERT_EQUAL(sendto(fd, big, sizeof big, 0, (struct sockaddr *)&to, tlen), (ssize_t)sizeof big);
    CU_ASSERT_EQUAL(sendto(fd, "abc", 3, 0, (struct sockaddr *)&to, tlen), 3);
    uint8_t b0[200], b1[200];
    struct sl_hw_rxmsg m[2] = { { b0, sizeof b0, 99, NULL }, { b1, sizeof b1, 99, NULL } };
    size_t got = 0, total = 0;
    for (int i = 0; i < 20 && total < 1; i++) {
        CU_ASSERT(sl_hw_recv(p.rx, &got, m + total, 2 - total, 100) != SL_ERR_IO);
        total += got;
    }
    CU_ASSERT_EQUAL(total, 1u);
    CU_ASSERT_EQUAL(m[0].len, 3u);
    CU_ASSERT_TRUE(m[0].data != NULL && memcmp(m[0].data, "abc", 3) == 0);
    /* Nothing more is waiting: the cut datagram did not come out empty. */
    CU_ASSERT_EQUAL(sl_hw_recv(p.rx, &got, m + 1, 1, 50), SL_ERR_AGAIN);
    struct sl_hw_stats rs;
    sl_hw_stats(p.rx, &rs);
    CU_ASSERT_EQUAL(rs.rx_reject[SL_ERR_OVERFLOW], 1u);
    close(fd);
    sl_hw_close(p.tx);
    sl_hw_close(p.rx);
}

/* An empty datagram is delivered with length 0 (the receiver counts it as
 * truncated), never silently skipped; the next one still arrives. */
SL_TEST(udp, empty_datagram_delivered)
{
    struct pair p;
    open_pair(&p, 200, false, true, 8);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in to;
    socklen_t tlen = sizeof to;
    CU_ASSERT_EQUAL_FATAL(getsockname(sl_hw_fd(p.rx), (struct sockaddr *)&to, &tlen), 0);
    CU_ASSERT_EQUAL(sendto(fd, "", 0, 0, (struct sockaddr *)&to, tlen), 0);
    CU_ASSERT_EQUAL(sendto(fd, "abc", 3, 0, (struct sockaddr *)&to, tlen), 3);
    uint8_t b0[200], b1[200];
    struct sl_hw_rxmsg m[2] = { { b0, sizeof b0, 99, NULL }, { b1, sizeof b1, 99, NULL } };
    size_t got = 0, total = 0;
    for (int i = 0; i < 50 && total < 2; i++) {
        CU_ASSERT(sl_hw_recv(p.rx, &got, m + total, 2 - total, 100) != SL_ERR_IO);
        total += got;
    }
    CU_ASSERT_EQUAL(total, 2u);
    CU_ASSERT_EQUAL(m[0].len, 0u);
    CU_ASSERT_EQUAL(m[1].len, 3u);
    CU_ASSERT_TRUE(m[1].data != NULL && memcmp(m[1].data, "abc", 3) == 0);   /* lent, read through data */
    close(fd);
    sl_hw_close(p.tx);
    sl_hw_close(p.rx);
}
