/* Syslog-channel batch decoding: a whole payload checked, then iterated;
 * anything accepted must re-encode to the same bytes. */
#include <stdint.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_logmsg.h"
#include "sl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t again[SL_SYSLOG_TEXT_MAX + 64];
    size_t count;
    if (sl_logmsg_batch_check(data, size, &count) != SL_OK)
        return 0;
    struct sl_buf b = sl_buf_make(data, size);
    struct sl_logmsg m;
    size_t seen = 0, at = 0;
    while (sl_logmsg_next(&b, &m)) {
        size_t off = 0;
        if (sl_logmsg_put(again, sizeof again, &off, &m) != SL_OK || off != sl_logmsg_bytes(m.text_len) ||
            off > size - at || memcmp(again, data + at, off) != 0)
            __builtin_trap();
        at += off;
        seen++;
    }
    if (seen != count || at != size)
        __builtin_trap();
    return 0;
}
