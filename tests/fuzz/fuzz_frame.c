/* DATA frame parser (and the type peek RX dispatches on). Properties: no
 * crash or over-read on any input; a frame that parses re-encodes to the
 * identical bytes; the zero-copy symbol lies inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_datagram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[SL_FRAME_MAX_BYTES];
    uint8_t type;
    sl_err pe = sl_datagram_peek(&type, data, size);
    struct sl_data_frame f;
    sl_err e = sl_datagram_data_parse(&f, data, size);
    if (e != SL_OK) {
        if (f.symbol || f.symbol_size)
            __builtin_trap();   /* output must be zeroed */
        return 0;
    }
    if (pe != SL_OK || type != SL_FRAME_DATA)
        __builtin_trap();
    if (size != SL_FRAME_OVERHEAD + (size_t)f.symbol_size || f.symbol != data + SL_FRAME_HDR_BYTES)
        __builtin_trap();
    size_t len = 0;
    if (sl_datagram_data_encode(out, sizeof out, &len, &f) != SL_OK || len != size ||
        memcmp(out, data, size) != 0)
        __builtin_trap();
    return 0;
}
