/* Drives the cursor with a byte-coded program: the input both says which
 * getter to call and is the data, so every width meets every boundary. */
#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nops = data[0] % 16;
    if (size < 1 + nops)
        return 0;
    struct sl_buf b = sl_buf_make(data + 1 + nops, size - 1 - nops);
    uint8_t tmp[64];
    for (size_t i = 0; i < nops; i++) {
        uint8_t op = data[1 + i];
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        const uint8_t *p;
        sl_err e = SL_OK;
        switch (op % 7) {
        case 0: e = sl_buf_get_u8(&b, &u8); break;
        case 1: e = sl_buf_get_u16be(&b, &u16); break;
        case 2: e = sl_buf_get_u32be(&b, &u32); break;
        case 3: e = sl_buf_get_u64be(&b, &u64); break;
        case 4: e = sl_buf_get_bytes(&b, tmp, op % sizeof tmp); break;
        case 5: e = sl_buf_get_ptr(&b, &p, op); if (e == SL_OK && op) tmp[0] = p[op - 1]; break;
        default: e = sl_buf_skip(&b, op / 7); break;
        }
        if (b.off > b.len)
            __builtin_trap();
        (void)e;
    }
    if (sl_buf_end(&b) != SL_OK && b.off == b.len)
        __builtin_trap();
    return 0;
}
