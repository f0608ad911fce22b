/* The Modbus server's untrusted input path without sockets: the input is a
 * TCP byte stream from a client. It is framed, parsed and answered against
 * a small mirror exactly as sl_mbserver does per connection; every answer
 * must fit its buffer and be a well-formed ADU echoing the request. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_mbreq.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_regs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_mirror *mirror(void)
{
    static struct sl_mirror *m;
    if (m)
        return m;
    struct sl_mirror_config cfg = { .max_tags = 64, .stale_ms = 1000, .max_string_bytes = 0 };
    if (sl_mirror_create(&m, &cfg) != SL_OK)
        __builtin_trap();
    /* Unit 1: holding registers with every register type and (for
     * multi-register types) every word order, coils 0..7, discretes 0..7;
     * tag 7 is Bad at TX. */
    struct sl_schema_tag d[48];
    struct sl_value v[48];
    memset(d, 0, sizeof d);
    uint16_t addr = 0;
    size_t n = 0;
    for (uint8_t t = SL_TYPE_INT16; t <= SL_TYPE_FLOAT64; t++)
        for (uint8_t o = 0; o < (sl_regs_multi(t) ? 4 : 1); o++, n++) {
            d[n] = (struct sl_schema_tag){ .tag_id = (uint32_t)n, .type = t, .reg = SL_REG_HOLDING,
                                           .word_order = o, .mirror_unit = 1, .address = addr,
                                           .scale = 1.0, .name = "t", .path = "a/b/c/d" };
            addr = (uint16_t)(addr + sl_regs_count(t));
        }
    for (uint8_t k = 0; k < 16; k++, n++)
        d[n] = (struct sl_schema_tag){ .tag_id = (uint32_t)n, .type = SL_TYPE_BOOL,
                                       .reg = k < 8 ? SL_REG_COIL : SL_REG_DISCRETE,
                                       .mirror_unit = 1, .address = (uint16_t)(k % 8),
                                       .scale = 1.0, .name = "b", .path = "a/b/c/d" };
    if (sl_mirror_schema_chunk(m, 1, 0, 1, (uint32_t)n, d, n) != SL_OK)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        unsigned bits = d[i].type == SL_TYPE_BOOL ? 1 : 16 * sl_regs_count(d[i].type);
        uint64_t raw = 0x0102030405060708ull >> (i % 8);
        if (bits < 64)
            raw &= (1ull << bits) - 1;
        v[i] = (struct sl_value){ (uint32_t)i, d[i].type, raw, i == 7 ? 0x80050000u : 0, 1, 0 };
    }
    if (sl_mirror_apply(m, v, n, 2) != SL_OK)
        __builtin_trap();
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_mirror *m = mirror();
    /* The first byte picks the link state so 0x0A paths are reached too. */
    if (size < 1)
        return 0;
    sl_mirror_tick(m, (data[0] & 1) ? 5000 : 100, 0);
    data++;
    size--;
    size_t off = 0;
    uint8_t out[SL_MB_RESP_MAX];
    while (off < size) {
        size_t adu = 0;
        sl_err e = sl_mbreq_frame(&adu, data + off, size - off);
        if (e == SL_ERR_AGAIN) {
            if (adu && adu <= size - off)
                __builtin_trap();
            break;
        }
        if (e != SL_OK)
            break;      /* the server closes the connection here */
        if (adu < 8 || adu > SL_MB_ADU_MAX || adu > size - off)
            __builtin_trap();
        struct sl_mbreq req;
        e = sl_mbreq_parse(&req, data + off, adu);
        if (e != SL_OK)
            __builtin_trap();   /* framing accepted it: parsing must too */
        size_t n = 0;
        uint8_t code = sl_mbserver_answer(out, sizeof out, &n, &req, m);
        if (n > sizeof out || n < SL_MB_EXC_BYTES)
            __builtin_trap();
        if (code && (n != SL_MB_EXC_BYTES || out[8] != code))
            __builtin_trap();
        if (out[0] != (uint8_t)(req.tid >> 8) || out[1] != (uint8_t)req.tid || out[6] != req.unit)
            __builtin_trap();
        if ((size_t)((out[4] << 8) | out[5]) + 6u != n)
            __builtin_trap();
        off += adu;
    }
    return 0;
}
