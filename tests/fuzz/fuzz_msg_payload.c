/* A whole tag channel payload: the reader either refuses it and hands out
 * nothing, or every message it hands out re-encodes to exactly the bytes it
 * came from and the messages tile the payload (fuzz_msg.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_msg_reader r;
    struct sl_msg m;
    if (sl_msg_reader_init(&r, data, size) != SL_OK) {
        if (sl_msg_next(&r, &m))
            __builtin_trap();
        return 0;
    }
    size_t off = 0;
    while (sl_msg_next(&r, &m)) {
        size_t len = SL_MSG_HDR_BYTES + sl_be16_get(data + off + 2);
        if (len > size - off || !fuzz_msg_reencode(&m, data + off, len))
            __builtin_trap();
        off += len;
    }
    if (off != size)
        __builtin_trap();
    return 0;
}
