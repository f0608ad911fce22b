/* Token-bucket pacer for constant-size datagrams. Pure: the caller passes
 * the time (CLOCK_MONOTONIC ns), so the arithmetic is unit-testable and the
 * daemon decides how to sleep (sl_hw_send_paced() is the ready-made shell).
 *
 * Each datagram costs its bits on the wire, not just its payload:
 *   wire bytes = 8 preamble+SFD + 14 Ethernet + max(46, 20 IPv4 + 8 UDP + D)
 *                + 4 FCS + 12 inter-frame gap        (D = datagram bytes)
 * so rate_mbps is the line rate the link really sees (1472-byte datagrams
 * cost 1538 wire bytes). The bucket holds at most `burst` datagrams: a
 * sender that fell behind catches up by at most one burst, never more.
 *
 * Arithmetic is exact integer: tokens are micro-bits; the bucket fills at
 * rate_kbps micro-bits per nanosecond; one datagram costs wire_bits * 10^6.
 * No drift accumulates however long it runs. */
#ifndef SL_PACE_H
#define SL_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

/* Per-datagram Ethernet framing outside the IP packet:
 * preamble+SFD 8, header 14, FCS 4, inter-frame gap 12. */
#define SL_PACE_ETH_OVERHEAD   38u
#define SL_PACE_IP_UDP         28u      /* IPv4 20 + UDP 8 */
#define SL_PACE_ETH_MIN_PAYLOAD 46u     /* short frames are padded on the wire */
#define SL_PACE_BURST_MAX      256u
/* burst 0 asks for the automatic size: the datagrams that fit in this long
 * (at least 4), so the sender sleeps about every 250 µs at high rates. */
#define SL_PACE_AUTO_BURST_NS  250000u

struct sl_pace {
    uint64_t rate_kbps;     /* 0: unpaced */
    uint64_t cost;          /* micro-bits per datagram */
    uint64_t cap;           /* bucket size: burst * cost */
    uint64_t tokens;        /* micro-bits available at `last` */
    uint64_t last_ns;       /* time tokens was computed for */
    unsigned burst;
    bool started;           /* first grant fills the bucket */
};

/* Wire bytes one datagram of datagram_bytes occupies (formula above). */
uint64_t sl_pace_wire_bytes(size_t datagram_bytes);

/* Sets up p for rate_mbps (0 = unpaced; fractions allowed down to 1 kbit/s)
 * and datagrams of datagram_bytes, holding at most burst datagrams (0: auto,
 * see SL_PACE_AUTO_BURST_NS; capped at SL_PACE_BURST_MAX). SL_ERR_RANGE for a
 * negative, non-finite or absurd (> 10 Tbit/s) rate or a zero size. */
__attribute__((warn_unused_result))
sl_err sl_pace_init(struct sl_pace *p, double rate_mbps, size_t datagram_bytes, unsigned burst);

/* How many datagrams may leave at now_ns: 0..burst (unpaced: always
 * SL_PACE_BURST_MAX). The caller must send exactly what it is
 * granted or return the rest with sl_pace_refund(). The first call fills the
 * bucket. Time going backwards is treated as no time passing. O(1). */
unsigned sl_pace_grant(struct sl_pace *p, uint64_t now_ns);

/* Gives back n granted datagrams that were not sent. */
void sl_pace_refund(struct sl_pace *p, unsigned n);

/* Earliest time at which sl_pace_grant() returns at least want (1..burst)
 * datagrams; sleep until then once per burst. Returns last grant time when
 * already available or unpaced. O(1). */
uint64_t sl_pace_next_ns(const struct sl_pace *p, unsigned want);

#endif
