#include "sl_pace.h"

#include <math.h>

uint64_t sl_pace_wire_bytes(size_t datagram_bytes)
{
    uint64_t l2 = (uint64_t)datagram_bytes + SL_PACE_IP_UDP;
    if (l2 < SL_PACE_ETH_MIN_PAYLOAD)
        l2 = SL_PACE_ETH_MIN_PAYLOAD;
    return l2 + SL_PACE_ETH_OVERHEAD;
}

sl_err sl_pace_init(struct sl_pace *p, double rate_mbps, size_t datagram_bytes, unsigned burst)
{
    *p = (struct sl_pace){ 0 };
    if (!isfinite(rate_mbps) || rate_mbps < 0 || rate_mbps > 1e7 || datagram_bytes == 0 ||
        datagram_bytes > 1u << 20)
        return SL_ERR_RANGE;
    p->rate_kbps = (uint64_t)llround(rate_mbps * 1000.0);
    if (rate_mbps > 0 && p->rate_kbps == 0)
        return SL_ERR_RANGE;            /* below 1 kbit/s would silently mean unpaced */
    p->cost = sl_pace_wire_bytes(datagram_bytes) * 8u * 1000000u;
    if (burst == 0 && p->rate_kbps) {
        /* Datagrams per SL_PACE_AUTO_BURST_NS: rate * t / cost. */
        uint64_t n = (uint64_t)SL_PACE_AUTO_BURST_NS * p->rate_kbps / p->cost;
        burst = n < 4 ? 4 : (unsigned)(n > SL_PACE_BURST_MAX ? SL_PACE_BURST_MAX : n);
    }
    if (burst == 0 || burst > SL_PACE_BURST_MAX)
        burst = burst ? SL_PACE_BURST_MAX : 4;
    p->burst = burst;
    p->cap = (uint64_t)burst * p->cost;
    return SL_OK;
}

/* Advances the bucket to now. The elapsed time is clamped to what fills an
 * empty bucket, so the multiplication cannot overflow after a long pause. */
static void refill(struct sl_pace *p, uint64_t now_ns)
{
    if (!p->started) {
        p->started = true;
        p->tokens = p->cap;
        p->last_ns = now_ns;
        return;
    }
    if (now_ns <= p->last_ns)
        return;
    uint64_t dt = now_ns - p->last_ns;
    uint64_t fill_ns = p->cap / p->rate_kbps + 1;
    if (dt >= fill_ns)
        p->tokens = p->cap;
    else {
        p->tokens += dt * p->rate_kbps;
        if (p->tokens > p->cap)
            p->tokens = p->cap;
    }
    p->last_ns = now_ns;
}

unsigned sl_pace_grant(struct sl_pace *p, uint64_t now_ns)
{
    if (!p->rate_kbps) {
        p->last_ns = now_ns;
        return SL_PACE_BURST_MAX;
    }
    refill(p, now_ns);
    uint64_t n = p->tokens / p->cost;
    p->tokens -= n * p->cost;
    return (unsigned)n;
}

void sl_pace_refund(struct sl_pace *p, unsigned n)
{
    if (!p->rate_kbps)
        return;
    uint64_t add = (uint64_t)n * p->cost;
    p->tokens = add > p->cap - p->tokens ? p->cap : p->tokens + add;
}

uint64_t sl_pace_next_ns(const struct sl_pace *p, unsigned want)
{
    if (!p->rate_kbps || !p->started)
        return p->last_ns;
    if (want == 0)
        want = 1;
    if (want > p->burst)
        want = p->burst;
    uint64_t need = (uint64_t)want * p->cost;
    if (p->tokens >= need)
        return p->last_ns;
    uint64_t missing = need - p->tokens;
    return p->last_ns + (missing + p->rate_kbps - 1) / p->rate_kbps;   /* ceil */
}
