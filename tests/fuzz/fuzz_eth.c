/* Ethernet/IPv4/UDP parser (what pcap and pcapfile RX run on every
 * captured frame). The first input byte picks link type and filter, the rest
 * is the frame. Invariants checked: a success points inside the input and
 * agrees with the IPv4/UDP lengths; a failure zeroes the result; re-building
 * an accepted untagged frame's header reproduces a valid frame. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *frame = data + 1;
    size_t len = size - 1;
    unsigned linktype = (mode & 1) ? SL_LINKTYPE_RAW : SL_LINKTYPE_ETHERNET;
    struct sl_frame_filter f = { (mode & 2) ? 7400 : 0, (mode & 4) != 0 };
    struct sl_frame_info fi;
    sl_err e = sl_hw_frame_parse(&fi, frame, len, linktype, &f);
    if (e != SL_OK) {
        if (fi.payload || fi.payload_len || fi.vlan)
            __builtin_trap();
        return 0;
    }
    if (fi.payload < frame || fi.payload_len > len || (size_t)(fi.payload - frame) > len - fi.payload_len)
        __builtin_trap();
    if (f.dst_port && fi.dst_port != f.dst_port)
        __builtin_trap();
    if (fi.vlan && !f.allow_vlan)
        __builtin_trap();
    /* Touch every payload byte so ASan checks the bounds. */
    uint8_t x = 0;
    for (size_t i = 0; i < fi.payload_len; i++)
        x ^= fi.payload[i];
    /* Round trip: our own builder's frame for this payload must parse. */
    if (fi.payload_len <= 2048) {
        static uint8_t out[SL_FRAME_HDR_BYTES_BUILT + 2048];
        struct sl_frame_addr a = { { 2, 0, 0, 0, 0, 1 }, { 2, 0, 0, 0, 0, 2 }, fi.src_ip, fi.dst_ip,
                                   fi.src_port, fi.dst_port };
        memcpy(out + SL_FRAME_HDR_BYTES_BUILT, fi.payload, fi.payload_len);
        if (sl_hw_frame_build(out, &a, x, out + SL_FRAME_HDR_BYTES_BUILT, fi.payload_len) != SL_OK)
            __builtin_trap();
        struct sl_frame_info back;
        if (sl_hw_frame_parse(&back, out, SL_FRAME_HDR_BYTES_BUILT + fi.payload_len, SL_LINKTYPE_ETHERNET,
                              &f) != SL_OK || back.payload_len != fi.payload_len)
            __builtin_trap();
    }
    return 0;
}
