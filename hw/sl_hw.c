#include "sl_hw_impl.h"
#include "sl_conf.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sl_clock.h"
#include "sl_log.h"
#include "sl_wire.h"

void sl_hw_config_init(struct sl_hw_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch = SL_HW_BATCH_DEFAULT;
    cfg->gso = true;
    cfg->gro = true;
    cfg->sockbuf_bytes = SL_HW_SOCKBUF_DEFAULT;
    cfg->pcap_buffer_bytes = SL_HW_PCAP_BUFFER_DEFAULT;
    cfg->port = SL_DEFAULT_PORT;
    cfg->vlan = SL_HW_VLAN_NONE;
    static const uint8_t src[SL_ETH_ADDR_BYTES] = { 0x02, 0, 0, 0, 0, 0x01 };
    static const uint8_t dst[SL_ETH_ADDR_BYTES] = { 0x02, 0, 0, 0, 0, 0x02 };
    memcpy(cfg->frame.src_mac, src, sizeof src);
    memcpy(cfg->frame.dst_mac, dst, sizeof dst);
    cfg->frame.src_ip = 0xC0000201u;    /* 192.0.2.1 (TEST-NET-1) */
    cfg->frame.dst_ip = 0xC0000202u;    /* 192.0.2.2 */
    cfg->frame.src_port = SL_DEFAULT_PORT;
    cfg->frame.dst_port = SL_DEFAULT_PORT;
}

sl_err sl_hw_addr_parse(struct sockaddr_storage *out, socklen_t *out_len, const char *text,
                        uint16_t default_port)
{
    /* The grammar [link] listen / destination were checked with (sl_conf). */
    return sl_conf_hostport_sockaddr(out, out_len, text, default_port,
                                     default_port ? SL_HOSTPORT_DEFAULT_PORT : 0u, SOCK_DGRAM, 0);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

sl_err sl_hw_mac_parse(uint8_t out[SL_ETH_ADDR_BYTES], const char *text)
{
    uint8_t mac[SL_ETH_ADDR_BYTES];
    memset(out, 0, SL_ETH_ADDR_BYTES);
    if (!text || strlen(text) != 17)
        return SL_ERR_CONFIG;
    for (size_t i = 0; i < SL_ETH_ADDR_BYTES; i++) {
        const char *p = text + i * 3;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0)
            return SL_ERR_CONFIG;
        if (i < 5 && p[2] != ':' && p[2] != '-')
            return SL_ERR_CONFIG;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, mac, sizeof mac);
    return SL_OK;
}

static const char *transport_name(enum sl_hw_transport t)
{
    switch (t) {
    case SL_HW_UDP: return "udp";
    case SL_HW_RAW: return "raw";
    case SL_HW_PCAP: return "pcap";
    case SL_HW_PCAPFILE: return "pcapfile";
    }
    return "unknown";
}

sl_err sl_hw_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg)
{
    char scratch[SL_HW_WARNING_BYTES];
    if (!why || why_cap == 0) {
        why = scratch;
        why_cap = sizeof scratch;
    }
    why[0] = '\0';
    *out = NULL;
    sl_err e = SL_ERR_CONFIG;
    bool tx = cfg->dir == SL_HW_TX;
    if (cfg->datagram_bytes == 0 || cfg->datagram_bytes > SL_UDP_PAYLOAD_MAX ||
        cfg->batch == 0 || cfg->batch > SL_HW_BATCH_MAX || (cfg->dir != SL_HW_TX && cfg->dir != SL_HW_RX)) {
        snprintf(why, why_cap, "link: datagram size, batch or direction out of range");
        return SL_ERR_CONFIG;
    }
    switch (cfg->transport) {
    case SL_HW_UDP:
        e = sl_udp_open(out, why, why_cap, cfg);
        break;
    case SL_HW_RAW:
        e = tx ? sl_raw_open(out, why, why_cap, cfg) : SL_ERR_CONFIG;
        break;
    case SL_HW_PCAP:
        e = !tx ? sl_pcap_open(out, why, why_cap, cfg) : SL_ERR_CONFIG;
        break;
    case SL_HW_PCAPFILE:
        e = sl_pcapfile_open(out, why, why_cap, cfg);
        break;
    }
    if (e != SL_OK && why[0] == '\0') {
        int err = errno;
        if (e == SL_ERR_IO || e == SL_ERR_PERM || e == SL_ERR_NOT_FOUND)
            snprintf(why, why_cap, "link %s %s: %s (%s)", transport_name(cfg->transport), tx ? "TX" : "RX",
                     sl_strerror(e), strerror(err));
        else
            snprintf(why, why_cap, "link %s %s: %s", transport_name(cfg->transport), tx ? "TX" : "RX",
                     sl_strerror(e));
        errno = err;
    }
    return e;
}

sl_err sl_hw_send_small(struct sl_hw *hw, const uint8_t *dg, size_t len)
{
    if (hw->cfg.dir != SL_HW_TX || !hw->ops->send)
        return SL_ERR_STATE;
    if (len == 0 || len > hw->cfg.datagram_bytes)
        return SL_ERR_RANGE;
    /* Every transport reads the datagram length from the config at call
     * time, so one shorter send is a temporary override. A UDP GSO socket
     * sends a datagram no longer than its segment size as a plain one. */
    size_t keep = hw->cfg.datagram_bytes;
    hw->cfg.datagram_bytes = len;
    size_t done = 0;
    sl_err e = hw->ops->send(hw, &done, &dg, 1);
    hw->cfg.datagram_bytes = keep;
    hw->st.datagrams += done;
    hw->st.bytes += done * len;
    if (e == SL_OK && done != 1)
        e = SL_ERR_IO;
    return e;
}

sl_err sl_hw_send(struct sl_hw *hw, size_t *sent, const uint8_t *const *dgrams, size_t n)
{
    *sent = 0;
    if (hw->cfg.dir != SL_HW_TX || !hw->ops->send)
        return SL_ERR_STATE;
    while (*sent < n) {
        size_t chunk = n - *sent;
        if (chunk > hw->cfg.batch)
            chunk = hw->cfg.batch;
        size_t done = 0;
        sl_err e = hw->ops->send(hw, &done, dgrams + *sent, chunk);
        *sent += done;
        hw->st.datagrams += done;
        hw->st.bytes += done * hw->cfg.datagram_bytes;
        if (e != SL_OK)
            return e;
        if (done == 0)
            return SL_ERR_IO;   /* transports never return SL_OK without progress */
    }
    return SL_OK;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
    /* EINTR: just re-check the bucket; the caller loops. */
    (void)clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

sl_err sl_hw_send_paced(struct sl_hw *hw, struct sl_pace *pace, size_t *sent,
                        const uint8_t *const *dgrams, size_t n)
{
    *sent = 0;
    while (*sent < n) {
        unsigned grant = sl_pace_grant(pace, sl_clock_mono_ns());
        if (grant == 0) {
            size_t left = n - *sent;
            unsigned want = left < pace->burst ? (unsigned)left : pace->burst;
            sleep_until_ns(sl_pace_next_ns(pace, want));
            continue;
        }
        size_t chunk = n - *sent;
        if (chunk > grant) {
            chunk = grant;
        } else {
            sl_pace_refund(pace, (unsigned)(grant - chunk));
        }
        size_t done = 0;
        sl_err e = sl_hw_send(hw, &done, dgrams + *sent, chunk);
        *sent += done;
        if (e != SL_OK) {
            sl_pace_refund(pace, (unsigned)(chunk - done));
            return e;
        }
    }
    return SL_OK;
}

sl_err sl_hw_recv(struct sl_hw *hw, size_t *got, struct sl_hw_rxmsg *msgs, size_t n, int timeout_ms)
{
    *got = 0;
    if (hw->cfg.dir != SL_HW_RX || !hw->ops->recv)
        return SL_ERR_STATE;
    if (n == 0)
        return SL_ERR_RANGE;
    if (n > hw->cfg.batch)
        n = hw->cfg.batch;
    for (size_t i = 0; i < n; i++)
        msgs[i].data = NULL;
    sl_err e = hw->ops->recv(hw, got, msgs, n, timeout_ms);
    hw->st.datagrams += *got;
    for (size_t i = 0; i < *got; i++) {
        if (!msgs[i].data)        /* a transport that copied into buf */
            msgs[i].data = msgs[i].buf;
        hw->st.bytes += msgs[i].len;
    }
    return e;
}

void sl_hw_stats(struct sl_hw *hw, struct sl_hw_stats *out)
{
    if (hw->ops->refresh)
        hw->ops->refresh(hw);
    *out = hw->st;
}

int sl_hw_fd(const struct sl_hw *hw)
{
    return hw->fd;
}

void sl_hw_close(struct sl_hw *hw)
{
    if (hw)
        hw->ops->close(hw);
}

void sl_hw_warn(struct sl_hw_stats *st, const char *text)
{
    size_t used = strnlen(st->warning, sizeof st->warning);
    if (used + 1 >= sizeof st->warning)
        return;
    snprintf(st->warning + used, sizeof st->warning - used, "%s%s", used ? " " : "", text);
}

sl_err sl_hw_sockbuf(struct sl_hw_stats *st, int fd, bool tx, int want)
{
    if (want <= 0)
        want = SL_HW_SOCKBUF_DEFAULT;
    if (want > (1 << 30))
        want = 1 << 30;
    st->sockbuf_requested = want;
    int force = tx ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
    int plain = tx ? SO_SNDBUF : SO_RCVBUF;
    st->sockbuf_forced = setsockopt(fd, SOL_SOCKET, force, &want, sizeof want) == 0;
    if (!st->sockbuf_forced)
        (void)setsockopt(fd, SOL_SOCKET, plain, &want, sizeof want);  /* capped by the sysctl */
    int granted = 0;
    socklen_t len = sizeof granted;
    if (getsockopt(fd, SOL_SOCKET, plain, &granted, &len) != 0)
        return SL_ERR_IO;
    st->sockbuf_granted = granted;
    /* The kernel doubles the request for its bookkeeping and reports that. */
    st->sockbuf_capped = granted / 2 < want;
    if (st->sockbuf_capped) {
        char msg[SL_HW_WARNING_BYTES];
        snprintf(msg, sizeof msg,
                 "%s buffer capped at %d bytes (asked %d): run as root for %s or raise net.core.%s",
                 tx ? "send" : "receive", granted / 2, want,
                 tx ? "SO_SNDBUFFORCE" : "SO_RCVBUFFORCE", tx ? "wmem_max" : "rmem_max");
        sl_hw_warn(st, msg);
    }
    return SL_OK;
}

sl_err sl_hw_open_logged(struct sl_hw **out, const struct sl_hw_config *cfg)
{
    char why[256] = "";
    sl_err e = sl_hw_open(out, why, sizeof why, cfg);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot open the link: %s%s%s", why[0] ? why : sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        return e;
    }
    struct sl_hw_stats st;
    sl_hw_stats(*out, &st);
    if (st.warning[0])
        sl_log(SL_LOG_WARNING, "link: %s", st.warning);
    return SL_OK;
}
