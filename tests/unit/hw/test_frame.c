/* Ethernet/IPv4/UDP builder and parser: checksums checked against an
 * independent implementation, and every rejection has its own reason. */
#include <pcap/pcap.h>
#include <string.h>

#include "hw_test_util.h"
#include "sl_buf.h"
#include "sl_frame.h"
#include "sl_hw.h"
#include "sl_test.h"

/* Independent RFC 1071 checksum: 32-bit accumulation of host-assembled
 * words, folded at the end, written differently from the library's. */
static uint16_t ref_csum(const uint8_t *const *parts, const size_t *lens, int nparts)
{
    uint32_t sum = 0;
    uint8_t carry_byte = 0;
    int odd = 0;
    for (int p = 0; p < nparts; p++) {
        for (size_t i = 0; i < lens[p]; i++) {
            if (!odd) {
                carry_byte = parts[p][i];
                odd = 1;
            } else {
                sum += (uint32_t)carry_byte * 256u + parts[p][i];
                odd = 0;
            }
        }
    }
    if (odd)
        sum += (uint32_t)carry_byte * 256u;
    while (sum > 0xFFFF)
        sum = (sum >> 16) + (sum & 0xFFFF);
    return (uint16_t)(0xFFFF - sum);
}

static const struct sl_frame_addr addr = {
    .src_mac = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 },
    .dst_mac = { 0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE },
    .src_ip = 0x0A000001, .dst_ip = 0x0A000002, .src_port = 40000, .dst_port = 7400,
};

/* A good frame: header + payload of plen bytes into f; returns length. */
static size_t make_frame(uint8_t *f, size_t plen, uint32_t seed)
{
    hw_fill(f + SL_FRAME_HDR_BYTES_BUILT, plen, seed);
    CU_ASSERT_EQUAL(sl_hw_frame_build(f, &addr, 0x1234, f + SL_FRAME_HDR_BYTES_BUILT, plen), SL_OK);
    return SL_FRAME_HDR_BYTES_BUILT + plen;
}

/* Recomputes the IPv4 header checksum after a test edits the header. */
static void fix_ip_csum(uint8_t *ip)
{
    ip[10] = ip[11] = 0;
    const uint8_t *parts[1] = { ip };
    size_t lens[1] = { (size_t)(ip[0] & 0x0F) * 4 };
    uint16_t c = ref_csum(parts, lens, 1);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
}

SL_TEST(frame, built_checksums_match_reference)
{
    static const size_t sizes[] = { 0, 1, 17, 18, 1000, 1471, 1472, 8948 };
    static uint8_t f[SL_FRAME_HDR_BYTES_BUILT + 9000];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t plen = sizes[s];
        size_t len = make_frame(f, plen, (uint32_t)s);
        const uint8_t *ip = f + 14, *udp = f + 34;
        CU_ASSERT_EQUAL(memcmp(f, addr.dst_mac, 6), 0);
        CU_ASSERT_EQUAL(memcmp(f + 6, addr.src_mac, 6), 0);
        CU_ASSERT_EQUAL(f[12], 0x08);
        CU_ASSERT_EQUAL(f[13], 0x00);
        CU_ASSERT_EQUAL(ip[0], 0x45);
        CU_ASSERT_EQUAL(sl_be16_get(ip + 2), 28 + plen);
        CU_ASSERT_EQUAL(sl_be16_get(ip + 6), 0x4000);          /* DF, offset 0 */
        CU_ASSERT_EQUAL(ip[8], 64);
        CU_ASSERT_EQUAL(ip[9], 17);
        /* IPv4: recompute with the field zeroed. */
        uint8_t iph[20];
        memcpy(iph, ip, 20);
        iph[10] = iph[11] = 0;
        const uint8_t *p1[1] = { iph };
        size_t l1[1] = { 20 };
        CU_ASSERT_EQUAL(sl_be16_get(ip + 10), ref_csum(p1, l1, 1));
        /* UDP: pseudo-header + header (checksum zeroed) + payload. */
        uint8_t pseudo[12] = { ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19],
                               0, 17, (uint8_t)((8 + plen) >> 8), (uint8_t)(8 + plen) };
        uint8_t uh[8];
        memcpy(uh, udp, 8);
        uh[6] = uh[7] = 0;
        const uint8_t *p3[3] = { pseudo, uh, udp + 8 };
        size_t l3[3] = { 12, 8, plen };
        uint16_t want = ref_csum(p3, l3, 3);
        if (want == 0)
            want = 0xFFFF;
        CU_ASSERT_EQUAL(sl_be16_get(udp + 6), want);
        CU_ASSERT_EQUAL(sl_be16_get(udp), 40000);
        CU_ASSERT_EQUAL(sl_be16_get(udp + 2), 7400);
        CU_ASSERT_EQUAL(sl_be16_get(udp + 4), 8 + plen);
        /* And the parser accepts exactly what the builder made. */
        struct sl_frame_info fi;
        struct sl_frame_filter flt = { 7400, false };
        CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_OK);
        CU_ASSERT_EQUAL(fi.payload_len, plen);
        CU_ASSERT_PTR_EQUAL(fi.payload, f + 42);
        CU_ASSERT_EQUAL(fi.src_ip, 0x0A000001u);
        CU_ASSERT_EQUAL(fi.dst_port, 7400);
    }
    CU_ASSERT_EQUAL(sl_hw_frame_build(f, &addr, 0, f, SL_UDP_PAYLOAD_MAX + 1), SL_ERR_RANGE);
}

SL_TEST(frame, parse_good_padded_and_raw)
{
    uint8_t f[128];
    size_t len = make_frame(f, 10, 1);                 /* 52 bytes: short frame */
    memset(f + len, 0, sizeof f - len);
    struct sl_frame_info fi;
    struct sl_frame_filter flt = { 7400, false };
    /* Ethernet padding to the 60-byte minimum is ignored. */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, 60, SL_LINKTYPE_ETHERNET, &flt), SL_OK);
    CU_ASSERT_EQUAL(fi.payload_len, 10u);
    /* LINKTYPE_RAW: the same packet without the Ethernet header. */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f + 14, len - 14, SL_LINKTYPE_RAW, &flt), SL_OK);
    CU_ASSERT_EQUAL(fi.payload_len, 10u);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, 113, &flt), SL_ERR_TYPE);
    /* Port 0 in the filter (or no filter) accepts any port. */
    struct sl_frame_filter any = { 0, false };
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &any), SL_OK);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, NULL), SL_OK);
}

SL_TEST(frame, vlan_tag)
{
    uint8_t g[128], f[128];
    size_t len = make_frame(g, 20, 2);
    memcpy(f, g, 12);
    f[12] = 0x81; f[13] = 0x00; f[14] = 0x20; f[15] = 0x2A;   /* PCP 1, VID 42 */
    memcpy(f + 16, g + 12, len - 12);
    struct sl_frame_info fi;
    struct sl_frame_filter novlan = { 7400, false }, vlan = { 7400, true };
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len + 4, SL_LINKTYPE_ETHERNET, &novlan), SL_ERR_TYPE);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len + 4, SL_LINKTYPE_ETHERNET, &vlan), SL_OK);
    CU_ASSERT(fi.vlan);
    CU_ASSERT_EQUAL(fi.vlan_id, 42);
    CU_ASSERT_EQUAL(fi.payload_len, 20u);
    CU_ASSERT_EQUAL(memcmp(fi.payload, g + 42, 20), 0);
    /* Two stacked tags are refused. */
    uint8_t q[140];
    memcpy(q, f, 12);
    q[12] = 0x88; q[13] = 0xA8; q[14] = 0; q[15] = 7;
    memcpy(q + 16, f + 12, len + 4 - 12);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, q, len + 8, SL_LINKTYPE_ETHERNET, &vlan), SL_ERR_TYPE);
    CU_ASSERT_FALSE(fi.vlan);                       /* zeroed on failure */
}

SL_TEST(frame, each_rejection_has_its_reason)
{
    uint8_t good[128], f[128];
    size_t len = make_frame(good, 30, 3);
    struct sl_frame_info fi;
    struct sl_frame_filter flt = { 7400, false };

    memcpy(f, good, len);
    f[14 + 10] ^= 0x01;                                         /* IPv4 checksum */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_CHECKSUM);
    CU_ASSERT_PTR_NULL(fi.payload);

    memcpy(f, good, len);
    f[14 + 6] = 0x20;                                           /* MF set */
    fix_ip_csum(f + 14);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_FRAGMENT);
    memcpy(f, good, len);
    f[14 + 6] = 0x40; f[14 + 7] = 0x01;                         /* offset 8 bytes */
    fix_ip_csum(f + 14);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_FRAGMENT);

    memcpy(f, good, len);
    f[14 + 9] = 6;                                              /* TCP */
    fix_ip_csum(f + 14);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_TYPE);

    memcpy(f, good, len);
    f[12] = 0x86; f[13] = 0xDD;                                 /* IPv6 ethertype */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_TYPE);

    memcpy(f, good, len);
    f[14] = 0x65;                                               /* version 6 */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_HEADER);
    f[14] = 0x44;                                               /* IHL 4 */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_HEADER);

    memcpy(f, good, len);
    f[14 + 2] = 0; f[14 + 3] = 19;                              /* total < IHL */
    fix_ip_csum(f + 14);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_HEADER);

    memcpy(f, good, len);
    f[34 + 5] = (uint8_t)(f[34 + 5] + 1);                       /* UDP length != IP */
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_LENGTH);

    memcpy(f, good, len);
    struct sl_frame_filter other = { 7401, false };
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, f, len, SL_LINKTYPE_ETHERNET, &other), SL_ERR_FILTERED);

    /* IP options (IHL 6) are skipped correctly. */
    uint8_t o[132];
    memcpy(o, good, 34);
    o[34] = 1; o[35] = 1; o[36] = 1; o[37] = 0;                 /* NOP NOP NOP EOL */
    memcpy(o + 38, good + 34, len - 34);
    o[14] = 0x46;
    sl_be16_put(o + 16, (uint16_t)(sl_be16_get(good + 16) + 4));
    fix_ip_csum(o + 14);
    CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, o, len + 4, SL_LINKTYPE_ETHERNET, &flt), SL_OK);
    CU_ASSERT_EQUAL(fi.payload_len, 30u);
    CU_ASSERT_EQUAL(memcmp(fi.payload, good + 42, 30), 0);
}

SL_TEST(frame, truncated_at_every_length)
{
    uint8_t good[128];
    size_t len = make_frame(good, 40, 4);
    struct sl_frame_filter flt = { 7400, false };
    for (size_t n = 0; n < len; n++) {
        /* Exact-size copy so a sanitizer build sees any over-read. */
        uint8_t cut[128];
        memcpy(cut, good, n);
        struct sl_frame_info fi;
        CU_ASSERT_EQUAL(sl_hw_frame_parse(&fi, cut, n, SL_LINKTYPE_ETHERNET, &flt), SL_ERR_TRUNCATED);
        CU_ASSERT_EQUAL(fi.payload_len, 0u);
    }
}

SL_TEST(frame, bpf_filters_compile)
{
    char text[128];
    CU_ASSERT_EQUAL(sl_pcap_filter_text(text, sizeof text, 7400, SL_HW_VLAN_NONE), SL_OK);
    CU_ASSERT_STRING_EQUAL(text, "udp dst port 7400 and not vlan");
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct bpf_program prog;
    CU_ASSERT_EQUAL(pcap_compile(p, &prog, text, 1, PCAP_NETMASK_UNKNOWN), 0);
    /* The compiled filter passes our frame and not the other port. */
    uint8_t f[128];
    size_t len = make_frame(f, 16, 5);
    struct pcap_pkthdr h = { .caplen = (bpf_u_int32)len, .len = (bpf_u_int32)len };
    CU_ASSERT(pcap_offline_filter(&prog, &h, f) != 0);
    f[36] = 0x1C; f[37] = 0xE9;                                 /* dst port 7401 */
    CU_ASSERT_EQUAL(pcap_offline_filter(&prog, &h, f), 0);
    pcap_freecode(&prog);
    CU_ASSERT_EQUAL(sl_pcap_filter_text(text, sizeof text, 7400, SL_HW_VLAN_ANY), SL_OK);
    CU_ASSERT_EQUAL(pcap_compile(p, &prog, text, 1, PCAP_NETMASK_UNKNOWN), 0);
    pcap_freecode(&prog);
    pcap_close(p);
    CU_ASSERT_EQUAL(sl_pcap_filter_text(text, sizeof text, 0, SL_HW_VLAN_NONE), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_pcap_filter_text(text, 10, 7400, SL_HW_VLAN_NONE), SL_ERR_OVERFLOW);
}

SL_TEST(frame, addr_and_mac_parse)
{
    struct sockaddr_storage ss;
    socklen_t len;
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "127.0.0.1:7400", 0), SL_OK);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "127.0.0.1", 7400), SL_OK);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "[::1]:7400", 0), SL_OK);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "127.0.0.1:0", 0), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "127.0.0.1:65536", 0), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "127.0.0.1:74x", 0), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "::1:7400", 0), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_hw_addr_parse(&ss, &len, "", 7400), SL_ERR_CONFIG);
    uint8_t mac[6];
    CU_ASSERT_EQUAL(sl_hw_mac_parse(mac, "02:aa:BB:0c:dd:ee"), SL_OK);
    CU_ASSERT_EQUAL(mac[1], 0xAA);
    CU_ASSERT_EQUAL(mac[3], 0x0C);
    CU_ASSERT_EQUAL(sl_hw_mac_parse(mac, "02-aa-bb-cc-dd-ee"), SL_OK);
    CU_ASSERT_EQUAL(sl_hw_mac_parse(mac, "02:aa:bb:cc:dd"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_hw_mac_parse(mac, "02:aa:bb:cc:dd:eg"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_hw_mac_parse(mac, "02:aa:bb:cc:dd:ee:"), SL_ERR_CONFIG);
}
