#include "sl_frame.h"

#include <string.h>

#include "sl_buf.h"
#include "sl_wire.h"

/* The symbol size a configured MTU allows (sl_wire.h) counts these headers. */
_Static_assert(SL_IPV4_HDR_BYTES + SL_UDP_HDR_BYTES == SL_IPV4_UDP_BYTES, "IPv4 + UDP header bytes");
_Static_assert(SL_ETH_OFF_TYPE + 2u == SL_ETH_HDR_BYTES && SL_IPV4_OFF_DST + 4u == SL_IPV4_HDR_BYTES &&
                   SL_UDP_OFF_CSUM + 2u == SL_UDP_HDR_BYTES,
               "header layouts");

/* Sums 16-bit big-endian words. Every chunk but the last must have even
 * length, which holds for the header-then-payload sequences used here. */
uint32_t sl_hw_csum_add(uint32_t sum, const uint8_t *data, size_t len)
{
    uint64_t s = sum;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        s += (uint32_t)((data[i] << 8) | data[i + 1]);
    if (i < len)
        s += (uint32_t)(data[i] << 8);
    while (s >> 32)
        s = (s & 0xFFFFFFFFu) + (s >> 32);
    return (uint32_t)s;
}

uint16_t sl_hw_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFFu) + (sum >> 16);
    return (uint16_t)sum;
}

sl_err sl_hw_frame_build(uint8_t *hdr, const struct sl_frame_addr *a, uint16_t ip_id,
                         const uint8_t *payload, size_t len)
{
    if (len > SL_UDP_PAYLOAD_MAX)
        return SL_ERR_RANGE;
    uint16_t udp_len = (uint16_t)(SL_UDP_HDR_BYTES + len);
    uint16_t ip_len = (uint16_t)(SL_IPV4_HDR_BYTES + udp_len);

    uint8_t *eth = hdr;
    memcpy(eth + SL_ETH_OFF_DST, a->dst_mac, SL_ETH_ADDR_BYTES);
    memcpy(eth + SL_ETH_OFF_SRC, a->src_mac, SL_ETH_ADDR_BYTES);
    sl_be16_put(eth + SL_ETH_OFF_TYPE, SL_ETHERTYPE_IPV4);

    uint8_t *ip = hdr + SL_ETH_HDR_BYTES;
    ip[SL_IPV4_OFF_VIHL] = SL_IPV4_VIHL_BUILT;
    ip[SL_IPV4_OFF_TOS] = 0;                    /* DSCP/ECN */
    sl_be16_put(ip + SL_IPV4_OFF_LEN, ip_len);
    sl_be16_put(ip + SL_IPV4_OFF_ID, ip_id);
    /* DF: a diode frame must never be fragmented. */
    sl_be16_put(ip + SL_IPV4_OFF_FRAG, SL_IPV4_FLAG_DF);
    ip[SL_IPV4_OFF_TTL] = SL_IPV4_TTL;
    ip[SL_IPV4_OFF_PROTO] = SL_IPPROTO_UDP;
    sl_be16_put(ip + SL_IPV4_OFF_CSUM, 0);
    sl_be32_put(ip + SL_IPV4_OFF_SRC, a->src_ip);
    sl_be32_put(ip + SL_IPV4_OFF_DST, a->dst_ip);
    sl_be16_put(ip + SL_IPV4_OFF_CSUM, (uint16_t)~sl_hw_csum_fold(sl_hw_csum_add(0, ip, SL_IPV4_HDR_BYTES)));

    uint8_t *udp = ip + SL_IPV4_HDR_BYTES;
    sl_be16_put(udp + SL_UDP_OFF_SPORT, a->src_port);
    sl_be16_put(udp + SL_UDP_OFF_DPORT, a->dst_port);
    sl_be16_put(udp + SL_UDP_OFF_LEN, udp_len);
    sl_be16_put(udp + SL_UDP_OFF_CSUM, 0);

    /* Pseudo-header: src, dst, zero+proto, UDP length. */
    uint8_t pseudo[12];
    memcpy(pseudo, ip + SL_IPV4_OFF_SRC, 8);
    pseudo[8] = 0;
    pseudo[9] = SL_IPPROTO_UDP;
    sl_be16_put(pseudo + 10, udp_len);
    uint32_t s = sl_hw_csum_add(0, pseudo, sizeof pseudo);
    s = sl_hw_csum_add(s, udp, SL_UDP_HDR_BYTES);
    s = sl_hw_csum_add(s, payload, len);
    uint16_t c = (uint16_t)~sl_hw_csum_fold(s);
    sl_be16_put(udp + SL_UDP_OFF_CSUM, c ? c : 0xFFFF);   /* 0 means "no checksum" in UDP/IPv4 */
    return SL_OK;
}

static sl_err parse_ipv4(struct sl_frame_info *out, struct sl_buf *b,
                         const struct sl_frame_filter *f)
{
    size_t ip_start = b->off;
    uint8_t vihl, tos, ttl, proto;
    uint16_t total, id, frag, csum, sport, dport, ulen, ucsum;
    uint32_t src, dst;
    sl_err e;
    if ((e = sl_buf_get_u8(b, &vihl)) != SL_OK)
        return e;
    if ((vihl >> 4) != 4)
        return SL_ERR_HEADER;
    size_t ihl = (size_t)(vihl & 0x0F) * 4;
    if (ihl < SL_IPV4_HDR_BYTES)
        return SL_ERR_HEADER;
    if ((e = sl_buf_get_u8(b, &tos)) != SL_OK || (e = sl_buf_get_u16be(b, &total)) != SL_OK ||
        (e = sl_buf_get_u16be(b, &id)) != SL_OK || (e = sl_buf_get_u16be(b, &frag)) != SL_OK ||
        (e = sl_buf_get_u8(b, &ttl)) != SL_OK || (e = sl_buf_get_u8(b, &proto)) != SL_OK ||
        (e = sl_buf_get_u16be(b, &csum)) != SL_OK || (e = sl_buf_get_u32be(b, &src)) != SL_OK ||
        (e = sl_buf_get_u32be(b, &dst)) != SL_OK)
        return e;
    (void)tos;
    (void)id;
    (void)ttl;
    (void)csum;
    if (total < ihl)
        return SL_ERR_HEADER;
    /* The whole IPv4 packet must be present; trailing Ethernet padding
     * (frames shorter than 60 bytes) is allowed and ignored. */
    if (total > b->len - ip_start)
        return SL_ERR_TRUNCATED;
    if (ihl > b->len - ip_start)
        return SL_ERR_TRUNCATED;
    if (sl_hw_csum_fold(sl_hw_csum_add(0, b->p + ip_start, ihl)) != 0xFFFF)
        return SL_ERR_CHECKSUM;
    if ((frag & SL_IPV4_FLAG_MF) || (frag & SL_IPV4_FRAG_MASK))
        return SL_ERR_FRAGMENT;
    if (proto != SL_IPPROTO_UDP)
        return SL_ERR_TYPE;
    if ((e = sl_buf_skip(b, ihl - SL_IPV4_HDR_BYTES)) != SL_OK)
        return e;
    /* From here on read only inside the IP packet. */
    struct sl_buf pkt;
    if ((e = sl_buf_sub(b, &pkt, total - ihl)) != SL_OK)
        return e;
    if ((e = sl_buf_get_u16be(&pkt, &sport)) != SL_OK || (e = sl_buf_get_u16be(&pkt, &dport)) != SL_OK ||
        (e = sl_buf_get_u16be(&pkt, &ulen)) != SL_OK || (e = sl_buf_get_u16be(&pkt, &ucsum)) != SL_OK)
        return e;
    (void)ucsum;
    if (ulen != total - ihl)
        return SL_ERR_LENGTH;
    if (f && f->dst_port && dport != f->dst_port)
        return SL_ERR_FILTERED;
    const uint8_t *payload;
    size_t plen = sl_buf_left(&pkt);
    if ((e = sl_buf_get_ptr(&pkt, &payload, plen)) != SL_OK)
        return e;
    if ((e = sl_buf_end(&pkt)) != SL_OK)
        return e;
    out->payload = payload;
    out->payload_len = plen;
    out->src_ip = src;
    out->dst_ip = dst;
    out->src_port = sport;
    out->dst_port = dport;
    return SL_OK;
}

sl_err sl_hw_frame_parse(struct sl_frame_info *out, const uint8_t *frame, size_t len,
                         unsigned linktype, const struct sl_frame_filter *filter)
{
    struct sl_frame_info info;
    memset(&info, 0, sizeof info);
    memset(out, 0, sizeof *out);
    struct sl_buf b = sl_buf_make(frame, len);
    sl_err e = SL_OK;
    if (linktype == SL_LINKTYPE_ETHERNET) {
        uint16_t type;
        if ((e = sl_buf_skip(&b, 2 * SL_ETH_ADDR_BYTES)) != SL_OK || (e = sl_buf_get_u16be(&b, &type)) != SL_OK)
            return e;
        if (type == SL_ETHERTYPE_VLAN || type == SL_ETHERTYPE_QINQ) {
            if (!filter || !filter->allow_vlan)
                return SL_ERR_TYPE;
            uint16_t tci;
            if ((e = sl_buf_get_u16be(&b, &tci)) != SL_OK || (e = sl_buf_get_u16be(&b, &type)) != SL_OK)
                return e;
            info.vlan = true;
            info.vlan_id = tci & 0x0FFF;
            if (type == SL_ETHERTYPE_VLAN || type == SL_ETHERTYPE_QINQ)
                return SL_ERR_TYPE;     /* stacked tags: not something a diode link carries */
        }
        if (type != SL_ETHERTYPE_IPV4)
            return SL_ERR_TYPE;
    } else if (linktype != SL_LINKTYPE_RAW) {
        return SL_ERR_TYPE;
    }
    if ((e = parse_ipv4(&info, &b, filter)) != SL_OK)
        return e;
    *out = info;
    return SL_OK;
}
