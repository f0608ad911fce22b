/* The Sparkplug B edge node's untrusted input: an NCMD payload from the
 * broker (any host that may publish to spBv1.0/<group>/NCMD/<node>), and
 * a primary host's STATE payload. Both are decoded as sl_sparkplug's
 * message callback does: the NCMD through the nesting check and protobuf-c
 * into the fixed arena, never more than one rebirth request and one
 * ignored count per metric. The first byte picks the reader. */
#include <stddef.h>
#include <stdint.h>

#include "sl_sparkplug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(16) uint8_t arena[SL_SPARKPLUG_ARENA_BYTES];
    if (size == 0)
        return 0;
    if (data[0] & 1u) {
        bool online;
        uint64_t ts;
        if (size - 1 <= SL_SPARKPLUG_STATE_MAX &&
            sl_sparkplug_state_parse(data + 1, size - 1, &online, &ts) != SL_OK && (online || ts))
            __builtin_trap();   /* a refused STATE says nothing */
        return 0;
    }
    struct sl_sparkplug_ncmd c;
    sl_err e = sl_sparkplug_ncmd_decode(&c, data + 1, size - 1, arena);
    if (e != SL_OK && (c.rebirth || c.ignored))
        __builtin_trap();   /* a refused payload asks nothing */
    if (e == SL_OK && c.ignored > size)
        __builtin_trap();   /* a metric takes at least one byte */
    return 0;
}
