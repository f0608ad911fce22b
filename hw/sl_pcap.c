/* pcap transport (RX only): libpcap live capture on the diode interface,
 * which needs no IP address. Immediate mode (no buffering delay), a large
 * kernel ring, PCAP_D_IN, and a BPF filter on the UDP destination port so
 * the kernel drops everything else before the copy. Every captured frame is
 * parsed again by sl_hw_frame_parse() (BPF is a prefilter, not a parser).
 * This file never calls pcap_inject() or pcap_sendpacket(): the receive
 * side of a diode never transmits. */
#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_hw_impl.h"

struct pcap_rx {
    struct sl_hw base;
    pcap_t *p;
    struct sl_frame_filter filter;
    int linktype;               /* SL_LINKTYPE_* this capture delivers */
    /* Per dispatch: where the callback writes. */
    struct sl_hw_rxmsg *out;
    size_t out_n, out_got;
};

static void pcap_rx_close(struct sl_hw *hw)
{
    struct pcap_rx *c = (struct pcap_rx *)hw;
    if (c->p)
        pcap_close(c->p);
    free(c);
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct pcap_rx *c = (struct pcap_rx *)(void *)user;
    if (c->out_got >= c->out_n)
        return;                 /* cannot happen: dispatch count is bounded */
    if (h->caplen < h->len) {
        sl_hw_reject(&c->base.st, SL_ERR_TRUNCATED);
        return;
    }
    struct sl_frame_info fi;
    sl_err e = sl_hw_frame_parse(&fi, bytes, h->caplen, (unsigned)c->linktype, &c->filter);
    if (e != SL_OK) {
        sl_hw_reject(&c->base.st, e);
        return;
    }
    struct sl_hw_rxmsg *m = &c->out[c->out_got];
    if (fi.payload_len > m->cap || fi.payload_len > c->base.cfg.datagram_bytes) {
        sl_hw_reject(&c->base.st, SL_ERR_OVERFLOW);
        return;
    }
    memcpy(m->buf, fi.payload, fi.payload_len);
    m->len = fi.payload_len;
    c->out_got++;
}

static sl_err pcap_rx_recv(struct sl_hw *hw, size_t *got, struct sl_hw_rxmsg *msgs, size_t n, int timeout_ms)
{
    struct pcap_rx *c = (struct pcap_rx *)hw;
    c->out = msgs;
    c->out_n = n;
    c->out_got = 0;
    /* Dispatch first, poll only when it found nothing; a second dispatch
     * after poll. Rejected frames consume dispatch count but not slots. */
    for (int attempt = 0; attempt < 2; attempt++) {
        hw->st.calls++;
        int r = pcap_dispatch(c->p, (int)(n - c->out_got), on_packet, (u_char *)(void *)c);
        if (r == PCAP_ERROR) {
            errno = EIO;
            return SL_ERR_IO;
        }
        if (c->out_got)
            break;
        if (attempt == 1 || timeout_ms == 0 || r > 0)
            break;
        struct pollfd pfd = { .fd = hw->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno != EINTR)
            return SL_ERR_IO;
        if (pr <= 0)
            break;
    }
    *got = c->out_got;
    return *got ? SL_OK : SL_ERR_AGAIN;
}

static void pcap_rx_refresh(struct sl_hw *hw)
{
    struct pcap_rx *c = (struct pcap_rx *)hw;
    struct pcap_stat ps;
    if (pcap_stats(c->p, &ps) == 0) {
        hw->st.rx_kernel_drops = ps.ps_drop;
        hw->st.rx_if_drops = ps.ps_ifdrop;
    }
}

static const struct sl_hw_ops pcap_rx_ops = { NULL, pcap_rx_recv, pcap_rx_refresh, pcap_rx_close };

sl_err sl_pcap_filter_text(char *out, size_t cap, uint16_t port, enum sl_hw_vlan vlan)
{
    int k;
    if (port == 0)
        return SL_ERR_CONFIG;
    if (vlan == SL_HW_VLAN_ANY)
        k = snprintf(out, cap, "udp dst port %u or (vlan and udp dst port %u)", (unsigned)port, (unsigned)port);
    else
        k = snprintf(out, cap, "udp dst port %u and not vlan", (unsigned)port);
    return k < 0 || (size_t)k >= cap ? SL_ERR_OVERFLOW : SL_OK;
}

static sl_err fail(struct pcap_rx *c, sl_err e, const char *what, char *why, size_t why_cap)
{
    if (why && why_cap && c->p)
        snprintf(why, why_cap, "%s on %s: %s", what, c->base.cfg.interface, pcap_geterr(c->p));
    pcap_rx_close(&c->base);
    return e;
}

sl_err sl_pcap_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg)
{
    *out = NULL;
    if (!cfg->interface[0] || strnlen(cfg->interface, sizeof cfg->interface) >= sizeof cfg->interface ||
        cfg->port == 0)
        return SL_ERR_CONFIG;
    char filter[128];
    if (sl_pcap_filter_text(filter, sizeof filter, cfg->port, cfg->vlan) != SL_OK)
        return SL_ERR_CONFIG;
    struct pcap_rx *c = calloc(1, sizeof *c);
    if (!c)
        return SL_ERR_NOMEM;
    c->base.ops = &pcap_rx_ops;
    c->base.cfg = *cfg;
    c->base.cfg.file = NULL;
    c->base.fd = -1;
    c->filter.dst_port = cfg->port;
    c->filter.allow_vlan = cfg->vlan == SL_HW_VLAN_ANY;
    char errbuf[PCAP_ERRBUF_SIZE];
    errbuf[0] = '\0';
    c->p = pcap_create(cfg->interface, errbuf);
    if (!c->p) {
        if (why && why_cap)
            snprintf(why, why_cap, "pcap_create on %s: %s", cfg->interface, errbuf);
        free(c);
        return SL_ERR_IO;
    }
    /* Snap length: the whole datagram plus the largest header we parse. */
    int snap = (int)(cfg->datagram_bytes + SL_FRAME_HDR_BYTES_MAX);
    int bufsz = cfg->pcap_buffer_bytes > 0 ? cfg->pcap_buffer_bytes : SL_HW_PCAP_BUFFER_DEFAULT;
    if (pcap_set_snaplen(c->p, snap) != 0 || pcap_set_immediate_mode(c->p, 1) != 0 ||
        pcap_set_buffer_size(c->p, bufsz) != 0 || pcap_set_promisc(c->p, cfg->promisc ? 1 : 0) != 0 ||
        pcap_set_timeout(c->p, 1) != 0)
        return fail(c, SL_ERR_IO, "pcap setup", why, why_cap);
    int a = pcap_activate(c->p);
    if (a < 0) {
        sl_err e = (a == PCAP_ERROR_PERM_DENIED) ? SL_ERR_PERM
                 : (a == PCAP_ERROR_NO_SUCH_DEVICE) ? SL_ERR_NOT_FOUND : SL_ERR_IO;
        return fail(c, e, "pcap_activate", why, why_cap);
    }
    if (a > 0)
        sl_hw_warn(&c->base.st, pcap_statustostr(a));
    int dlt = pcap_datalink(c->p);
    if (dlt == DLT_EN10MB)
        c->linktype = SL_LINKTYPE_ETHERNET;
    else if (dlt == DLT_RAW || dlt == DLT_IPV4)
        c->linktype = SL_LINKTYPE_RAW;
    else
        return fail(c, SL_ERR_CONFIG, "unsupported link type", why, why_cap);
    /* Only frames arriving on the interface. */
    (void)pcap_setdirection(c->p, PCAP_D_IN);
    struct bpf_program prog;
    if (pcap_compile(c->p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0)
        return fail(c, SL_ERR_CONFIG, "pcap_compile", why, why_cap);
    int sf = pcap_setfilter(c->p, &prog);
    pcap_freecode(&prog);
    if (sf != 0)
        return fail(c, SL_ERR_IO, "pcap_setfilter", why, why_cap);
    if (pcap_setnonblock(c->p, 1, errbuf) != 0)
        return fail(c, SL_ERR_IO, "pcap_setnonblock", why, why_cap);
    c->base.fd = pcap_get_selectable_fd(c->p);
    if (c->base.fd < 0)
        return fail(c, SL_ERR_IO, "no selectable descriptor", why, why_cap);
    /* The granted ring is libpcap's business; report what was asked. */
    c->base.st.sockbuf_requested = bufsz;
    c->base.st.sockbuf_granted = bufsz;
    *out = &c->base;
    return SL_OK;
}
