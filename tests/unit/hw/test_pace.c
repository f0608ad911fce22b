/* Pacer: exact grants on synthetic time, achieved rate over a simulated
 * second, burst cap, unpaced mode; one real-time run through udp. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw_test_util.h"
#include "sl_hw.h"
#include "sl_pace.h"
#include "sl_test.h"

SL_TEST(pace, wire_bytes_count_ethernet_overhead)
{
    CU_ASSERT_EQUAL(sl_pace_wire_bytes(1472), 1472u + 28 + 38);   /* full 1500-MTU frame: 1538 */
    CU_ASSERT_EQUAL(sl_pace_wire_bytes(1000), 1066u);
    /* Short frames are padded to the 64-byte minimum (+8 preamble, +12 IFG). */
    CU_ASSERT_EQUAL(sl_pace_wire_bytes(1), 84u);
    CU_ASSERT_EQUAL(sl_pace_wire_bytes(18), 84u);
    CU_ASSERT_EQUAL(sl_pace_wire_bytes(19), 85u);
}

SL_TEST(pace, exact_grants_on_synthetic_time)
{
    /* 1000-byte datagrams cost 1066*8 = 8528 bits; at 8.528 Mbit/s that is
     * exactly one datagram per millisecond. */
    struct sl_pace p;
    CU_ASSERT_EQUAL(sl_pace_init(&p, 8.528, 1000, 4), SL_OK);
    uint64_t t0 = 1000000000ull;
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0), 4u);          /* full bucket at start */
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0), 0u);
    CU_ASSERT_EQUAL(sl_pace_next_ns(&p, 1), t0 + 1000000);
    CU_ASSERT_EQUAL(sl_pace_next_ns(&p, 3), t0 + 3000000);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0 + 999999), 0u);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0 + 1000000), 1u);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0 + 3500000), 2u);
    CU_ASSERT_EQUAL(sl_pace_next_ns(&p, 1), t0 + 4000000);
    /* Time going backwards grants nothing and breaks nothing. */
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0), 0u);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0 + 4000000), 1u);
    /* Refund: an unsent grant is available again at once. */
    sl_pace_refund(&p, 1);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, t0 + 4000000), 1u);
}

SL_TEST(pace, burst_cap_after_idle)
{
    struct sl_pace p;
    CU_ASSERT_EQUAL(sl_pace_init(&p, 100.0, 1472, 8), SL_OK);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, 5), 8u);
    /* An hour idle still gives one burst, not a flood (and no overflow). */
    CU_ASSERT_EQUAL(sl_pace_grant(&p, 5 + 3600ull * 1000000000ull), 8u);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, 5 + 3600ull * 1000000000ull), 0u);
    /* Far future: clamp, no overflow in dt * rate. */
    CU_ASSERT_EQUAL(sl_pace_grant(&p, UINT64_MAX / 2), 8u);
    sl_pace_refund(&p, 100);                 /* refund never exceeds the cap */
    CU_ASSERT_EQUAL(sl_pace_grant(&p, UINT64_MAX / 2), 8u);
}

SL_TEST(pace, simulated_second_within_one_percent)
{
    static const double rates[] = { 1.0, 10.0, 95.5, 1000.0, 10000.0 };
    static const size_t sizes[] = { 64, 1200, 1472, 8948 };
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            struct sl_pace p;
            CU_ASSERT_EQUAL_FATAL(sl_pace_init(&p, rates[r], sizes[s], 0), SL_OK);
            /* A sender that wakes exactly when told and sends what it gets. */
            uint64_t t = 0, bits = 0;
            unsigned first = sl_pace_grant(&p, t);
            (void)first;            /* initial burst: not part of the steady rate */
            uint64_t iters = 0;
            while (t < 1000000000ull && iters < 10000000ull) {
                t = sl_pace_next_ns(&p, p.burst);
                bits += sl_pace_grant(&p, t) * sl_pace_wire_bytes(sizes[s]) * 8;
                iters++;
            }
            double achieved_mbps = (double)bits / ((double)t / 1e9) / 1e6;
            CU_ASSERT(achieved_mbps > rates[r] * 0.99 && achieved_mbps < rates[r] * 1.01);
        }
    }
}

SL_TEST(pace, jittery_wakeups_keep_the_rate)
{
    /* Wake-ups late by 0..300 µs: the bucket catches up within its burst. */
    struct sl_pace p;
    CU_ASSERT_EQUAL(sl_pace_init(&p, 200.0, 1472, 16), SL_OK);
    uint64_t t = 0, bits = 0;
    (void)sl_pace_grant(&p, t);
    uint32_t x = 12345;
    for (int i = 0; i < 1000000 && t < 2000000000ull; i++) {
        x = x * 1103515245u + 12345u;
        t = sl_pace_next_ns(&p, 8) + (x >> 8) % 300000;
        bits += sl_pace_grant(&p, t) * sl_pace_wire_bytes(1472) * 8;
    }
    double mbps = (double)bits / ((double)t / 1e9) / 1e6;
    CU_ASSERT(mbps > 198.0 && mbps < 202.0);
}

SL_TEST(pace, unpaced_and_bad_rates)
{
    struct sl_pace p;
    CU_ASSERT_EQUAL(sl_pace_init(&p, 0, 1472, 0), SL_OK);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, 1), SL_PACE_BURST_MAX);
    CU_ASSERT_EQUAL(sl_pace_grant(&p, 1), SL_PACE_BURST_MAX);
    CU_ASSERT_EQUAL(sl_pace_next_ns(&p, 1), 1u);
    CU_ASSERT_EQUAL(sl_pace_init(&p, -1, 1472, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_pace_init(&p, 1e300, 1472, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_pace_init(&p, 0.0001, 1472, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_pace_init(&p, 10, 0, 0), SL_ERR_RANGE);
    /* Automatic burst: ~250 µs worth, at least 4, at most the cap. */
    CU_ASSERT_EQUAL(sl_pace_init(&p, 1.0, 1472, 0), SL_OK);
    CU_ASSERT_EQUAL(p.burst, 4u);
    CU_ASSERT_EQUAL(sl_pace_init(&p, 10000.0, 1472, 0), SL_OK);
    CU_ASSERT_EQUAL(p.burst, 203u);          /* 250e-6 * 1e10 / 12304 */
    CU_ASSERT_EQUAL(sl_pace_init(&p, 10.0, 1472, 100000), SL_OK);
    CU_ASSERT_EQUAL(p.burst, SL_PACE_BURST_MAX);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

SL_TEST(pace, real_time_one_second_over_loopback)
{
    enum { DLEN = 1000 };
    const double rate = 40.0;                          /* Mbit/s on the wire */
    const uint64_t per_s = (uint64_t)(rate * 1e6 / (double)(sl_pace_wire_bytes(DLEN) * 8));   /* 4690 */
    struct sl_hw_config rc;
    sl_hw_config_init(&rc);
    rc.transport = SL_HW_UDP;
    rc.dir = SL_HW_RX;
    rc.datagram_bytes = DLEN;
    struct sockaddr_in *a = (struct sockaddr_in *)&rc.addr;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = 0;
    rc.addr_len = sizeof *a;
    struct sl_hw *rx = NULL, *tx = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_hw_open(&rx, NULL, 0, &rc), SL_OK);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    CU_ASSERT_EQUAL_FATAL(getsockname(sl_hw_fd(rx), (struct sockaddr *)&bound, &blen), 0);

    struct sl_hw_config tc = rc;
    tc.dir = SL_HW_TX;
    memcpy(&tc.addr, &bound, sizeof bound);
    CU_ASSERT_EQUAL_FATAL(sl_hw_open(&tx, NULL, 0, &tc), SL_OK);

    static uint8_t data[64][DLEN];
    const uint8_t *ptrs[64];
    for (int i = 0; i < 64; i++) {
        hw_fill(data[i], DLEN, (uint32_t)i);
        ptrs[i] = data[i];
    }
    static uint8_t rxbuf[64][DLEN];
    struct sl_hw_rxmsg msgs[64];
    struct sl_pace p;
    CU_ASSERT_EQUAL_FATAL(sl_pace_init(&p, rate, DLEN, 8), SL_OK);
    uint64_t total = 0, received = 0;
    (void)sl_pace_grant(&p, mono_ns());              /* spend the initial burst outside the measurement */
    uint64_t t0 = mono_ns();
    /* Send in chunks of 64 until per_s datagrams are out; drain RX between
     * chunks so the socket buffer never decides the outcome. */
    for (int round = 0; round < 10000 && total < per_s; round++) {
        size_t chunk = per_s - total < 64 ? (size_t)(per_s - total) : 64, sent = 0;
        CU_ASSERT_EQUAL_FATAL(sl_hw_send_paced(tx, &p, &sent, ptrs, chunk), SL_OK);
        total += sent;
        for (int k = 0; k < 4; k++) {
            for (int i = 0; i < 64; i++)
                msgs[i] = (struct sl_hw_rxmsg){ rxbuf[i], DLEN, 0, NULL };
            size_t got = 0;
            if (sl_hw_recv(rx, &got, msgs, 64, 0) != SL_OK)
                break;
            received += got;
        }
    }
    uint64_t t1 = mono_ns();
    for (int k = 0; k < 1000 && received < total; k++) {
        for (int i = 0; i < 64; i++)
            msgs[i] = (struct sl_hw_rxmsg){ rxbuf[i], DLEN, 0, NULL };
        size_t got = 0;
        if (sl_hw_recv(rx, &got, msgs, 64, 100) != SL_OK)
            break;
        received += got;
    }
    double secs = (double)(t1 - t0) / 1e9;
    double achieved = (double)total * (double)sl_pace_wire_bytes(DLEN) * 8 / secs / 1e6;
    CU_ASSERT(achieved > rate * 0.75 && achieved < rate * 1.25);
    CU_ASSERT(secs > 0.75 && secs < 1.5);
    CU_ASSERT_EQUAL(received, total);
    sl_hw_close(tx);
    sl_hw_close(rx);
}
