/* raw transport (TX only): AF_PACKET SOCK_RAW with protocol 0, so the socket
 * is registered for no ethertype and the kernel never queues a received
 * frame to it. Each datagram leaves as our own Ethernet/IPv4/UDP frame to the
 * configured destination MAC: no IP address on the NIC, no ARP, no route.
 * The header and the caller's datagram are gathered with two iovecs (no
 * copy); a batch is one sendmmsg. PACKET_QDISC_BYPASS is deliberately not
 * set: frames go through the qdisc and the netdev egress hook, so traffic
 * shaping and the rig's nftables impairments apply as to any other packet. */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_hw_impl.h"

struct raw {
    struct sl_hw base;
    struct sockaddr_ll to;
    struct mmsghdr *msgs;
    struct iovec *iov;          /* 2 per datagram: header, payload */
    uint8_t *hdrs;              /* batch * SL_FRAME_HDR_BYTES_BUILT */
    uint16_t ip_id;
};

static void raw_close(struct sl_hw *hw)
{
    struct raw *r = (struct raw *)hw;
    if (hw->fd >= 0)
        close(hw->fd);
    free(r->msgs);
    free(r->iov);
    free(r->hdrs);
    free(r);
}

static sl_err raw_send(struct sl_hw *hw, size_t *sent, const uint8_t *const *dgrams, size_t n)
{
    struct raw *r = (struct raw *)hw;
    size_t dlen = hw->cfg.datagram_bytes;
    *sent = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *h = r->hdrs + i * SL_FRAME_HDR_BYTES_BUILT;
        sl_err e = sl_hw_frame_build(h, &hw->cfg.frame, r->ip_id++, dgrams[i], dlen);
        if (e != SL_OK)
            return e;
        r->iov[2 * i] = (struct iovec){ h, SL_FRAME_HDR_BYTES_BUILT };
        r->iov[2 * i + 1] = (struct iovec){ (void *)(uintptr_t)dgrams[i], dlen };
        memset(&r->msgs[i], 0, sizeof r->msgs[i]);
        r->msgs[i].msg_hdr.msg_name = &r->to;
        r->msgs[i].msg_hdr.msg_namelen = sizeof r->to;
        r->msgs[i].msg_hdr.msg_iov = &r->iov[2 * i];
        r->msgs[i].msg_hdr.msg_iovlen = 2;
    }
    while (*sent < n) {
        hw->st.calls++;
        int k = sendmmsg(hw->fd, r->msgs + *sent, (unsigned)(n - *sent), 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            hw->st.tx_errors++;
            return SL_ERR_IO;
        }
        *sent += (size_t)k;
    }
    return SL_OK;
}

static const struct sl_hw_ops raw_ops = { raw_send, NULL, NULL, raw_close };

static sl_err fail(struct raw *r, sl_err e)
{
    int err = errno;
    raw_close(&r->base);
    errno = err;
    return e;
}

sl_err sl_raw_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg)
{
    (void)why;
    (void)why_cap;
    *out = NULL;
    if (!cfg->interface[0] || strnlen(cfg->interface, sizeof cfg->interface) >= sizeof cfg->interface)
        return SL_ERR_CONFIG;
    if (cfg->datagram_bytes > SL_UDP_PAYLOAD_MAX)
        return SL_ERR_CONFIG;
    struct raw *r = calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->base.ops = &raw_ops;
    r->base.fd = -1;
    r->base.cfg = *cfg;
    r->base.cfg.file = NULL;
    r->msgs = calloc(cfg->batch, sizeof *r->msgs);
    r->iov = calloc(2 * cfg->batch, sizeof *r->iov);
    r->hdrs = calloc(cfg->batch, SL_FRAME_HDR_BYTES_BUILT);
    if (!r->msgs || !r->iov || !r->hdrs)
        return fail(r, SL_ERR_NOMEM);
    /* Protocol 0: transmit only, no receive hook. */
    r->base.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (r->base.fd < 0)
        return fail(r, errno == EPERM ? SL_ERR_PERM : SL_ERR_IO);
    unsigned idx = if_nametoindex(cfg->interface);
    if (idx == 0)
        return fail(r, SL_ERR_NOT_FOUND);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, cfg->interface, strnlen(cfg->interface, IF_NAMESIZE - 1));
    if (ioctl(r->base.fd, SIOCGIFHWADDR, &ifr) != 0)
        return fail(r, SL_ERR_IO);
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER && ifr.ifr_hwaddr.sa_family != ARPHRD_LOOPBACK) {
        errno = EPROTONOSUPPORT;
        return fail(r, SL_ERR_CONFIG);
    }
    memcpy(r->base.cfg.frame.src_mac, ifr.ifr_hwaddr.sa_data, SL_ETH_ADDR_BYTES);
    r->to.sll_family = AF_PACKET;
    r->to.sll_ifindex = (int)idx;
    r->to.sll_halen = SL_ETH_ADDR_BYTES;
    memcpy(r->to.sll_addr, cfg->frame.dst_mac, SL_ETH_ADDR_BYTES);
    /* Bind to the interface with protocol 0 (still no receive hook) so
     * nothing can be sent anywhere else by mistake. */
    struct sockaddr_ll b = { .sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = (int)idx };
    if (bind(r->base.fd, (const struct sockaddr *)&b, sizeof b) != 0)
        return fail(r, SL_ERR_IO);
    if (sl_hw_sockbuf(&r->base.st, r->base.fd, true, cfg->sockbuf_bytes) != SL_OK)
        return fail(r, SL_ERR_IO);
    /* Random-ish start for the IPv4 id so restarts do not repeat it at once. */
    r->ip_id = (uint16_t)(sl_clock_mono_ns() >> 10);
    *out = &r->base;
    return SL_OK;
}
