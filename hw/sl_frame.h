/* Ethernet II / IPv4 / UDP framing for the transports that carry their own
 * headers: raw (TX builds frames), pcap (RX parses captured frames) and
 * pcapfile (both). Pure functions: no I/O, no allocation, no clock.
 *
 * Built frames: Ethernet II (no VLAN tag), IPv4 with IHL 5, DF set, TTL 64,
 * header checksum filled, UDP checksum filled (0 transmitted as 0xFFFF).
 * Parsed frames: optional single 802.1Q/802.1ad tag, IPv4 only, options
 * allowed (IHL 5..15), fragments rejected, header checksum verified, IP
 * total length and UDP length must agree with each other and fit the
 * capture (Ethernet padding after the IP packet is allowed). The UDP
 * checksum is not verified: on veth and loopback the kernel leaves
 * CHECKSUM_PARTIAL packets with only the pseudo-header sum in that field, and
 * every Sluice datagram carries its own CRC32C. */
#ifndef SL_FRAME_H
#define SL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_ETH_ADDR_BYTES   6u
#define SL_ETH_HDR_BYTES    14u
#define SL_VLAN_TAG_BYTES   4u
#define SL_IPV4_HDR_BYTES   20u      /* without options */
#define SL_IPV4_HDR_MAX     60u      /* IHL 15 */
#define SL_UDP_HDR_BYTES    8u
/* Header bytes of a frame we build: 14 + 20 + 8. */
#define SL_FRAME_HDR_BYTES_BUILT (SL_ETH_HDR_BYTES + SL_IPV4_HDR_BYTES + SL_UDP_HDR_BYTES)
/* Largest header a parsed frame may have: Ethernet, one tag, IHL 15, UDP. */
#define SL_FRAME_HDR_BYTES_MAX (SL_ETH_HDR_BYTES + SL_VLAN_TAG_BYTES + SL_IPV4_HDR_MAX + SL_UDP_HDR_BYTES)
/* Largest UDP payload in one IPv4 packet: 65535 - 20 - 8. */
#define SL_UDP_PAYLOAD_MAX  65507u

/* Field offsets of the headers we build (and that the raw transport puts on
 * the fibre): Ethernet II, IPv4 without options, UDP. */
#define SL_ETH_OFF_DST      0u
#define SL_ETH_OFF_SRC      6u
#define SL_ETH_OFF_TYPE     12u
#define SL_IPV4_OFF_VIHL    0u       /* version (4 bits), IHL in words (4 bits) */
#define SL_IPV4_OFF_TOS     1u
#define SL_IPV4_OFF_LEN     2u       /* total length */
#define SL_IPV4_OFF_ID      4u
#define SL_IPV4_OFF_FRAG    6u       /* flags (3 bits), fragment offset (13) */
#define SL_IPV4_OFF_TTL     8u
#define SL_IPV4_OFF_PROTO   9u
#define SL_IPV4_OFF_CSUM    10u
#define SL_IPV4_OFF_SRC     12u
#define SL_IPV4_OFF_DST     16u
#define SL_IPV4_VIHL_BUILT  0x45u    /* version 4, IHL 5 */
#define SL_IPV4_FLAG_DF     0x4000u
#define SL_IPV4_FLAG_MF     0x2000u
#define SL_IPV4_FRAG_MASK   0x1FFFu
#define SL_UDP_OFF_SPORT    0u
#define SL_UDP_OFF_DPORT    2u
#define SL_UDP_OFF_LEN      4u
#define SL_UDP_OFF_CSUM     6u

#define SL_ETHERTYPE_IPV4   0x0800u
#define SL_ETHERTYPE_VLAN   0x8100u
#define SL_ETHERTYPE_QINQ   0x88A8u
#define SL_IPPROTO_UDP      17u
#define SL_IPV4_TTL         64u

/* pcap link types we read and write (tcpdump.org/linktypes.html). */
#define SL_LINKTYPE_ETHERNET 1u
#define SL_LINKTYPE_RAW      101u     /* bare IPv4/IPv6 packet */

/* Addresses of a built frame. IPs and ports in host byte order. */
struct sl_frame_addr {
    uint8_t src_mac[SL_ETH_ADDR_BYTES];
    uint8_t dst_mac[SL_ETH_ADDR_BYTES];
    uint32_t src_ip;
    uint32_t dst_ip;
    uint16_t src_port;
    uint16_t dst_port;
};

/* What a parse found. payload points into the parsed frame (not owned). */
struct sl_frame_info {
    const uint8_t *payload;
    size_t payload_len;
    uint32_t src_ip, dst_ip;        /* host order */
    uint16_t src_port, dst_port;
    bool vlan;                      /* a tag was present */
    uint16_t vlan_id;               /* 12-bit VID when vlan */
};

/* Parse options. */
struct sl_frame_filter {
    uint16_t dst_port;              /* 0: any port */
    bool allow_vlan;                /* accept one 802.1Q/802.1ad tag */
};

/* Writes the 42-byte Ethernet/IPv4/UDP header for payload[0..len) into
 * hdr (SL_FRAME_HDR_BYTES_BUILT bytes of room); the payload itself is not
 * copied, so callers can gather header and payload with two iovecs. ip_id is
 * the IPv4 identification (any value: DF is set). Fails with SL_ERR_RANGE
 * when len exceeds SL_UDP_PAYLOAD_MAX. Cost: one pass over the payload for
 * the UDP checksum. */
__attribute__((warn_unused_result))
sl_err sl_hw_frame_build(uint8_t *hdr, const struct sl_frame_addr *a, uint16_t ip_id,
                         const uint8_t *payload, size_t len);

/* Parses one captured frame of link type SL_LINKTYPE_ETHERNET or
 * SL_LINKTYPE_RAW through the cursor. On success *out describes the UDP
 * payload (pointing into frame). Failures, each its own reason:
 *   SL_ERR_TRUNCATED  shorter than a header or than the IP total length says
 *   SL_ERR_TYPE       not IPv4, not UDP, a tag when !allow_vlan, two tags,
 *                     or an unknown link type
 *   SL_ERR_HEADER     IPv4 version != 4 or IHL < 5 or total length < IHL
 *   SL_ERR_CHECKSUM   IPv4 header checksum wrong
 *   SL_ERR_FRAGMENT   MF set or fragment offset non-zero
 *   SL_ERR_LENGTH     UDP length disagrees with the IP total length
 *   SL_ERR_FILTERED   UDP destination port is not filter->dst_port
 * *out is zeroed on failure. Cost: O(IP header), no payload pass. */
__attribute__((warn_unused_result))
sl_err sl_hw_frame_parse(struct sl_frame_info *out, const uint8_t *frame, size_t len,
                         unsigned linktype, const struct sl_frame_filter *filter);

/* RFC 1071 one's-complement sum of data folded to 16 bits, not inverted;
 * seed with a previous partial sum (0 to start). Exposed for tests. */
uint32_t sl_hw_csum_add(uint32_t sum, const uint8_t *data, size_t len);
uint16_t sl_hw_csum_fold(uint32_t sum);

#endif
