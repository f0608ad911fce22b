#include "sl_crc.h"

#include <isa-l/crc.h>
#include <limits.h>

/* ISA-L keeps the register un-inverted on entry and exit: it takes the
 * running state and returns it without the final XOR. */
uint32_t sl_crc_extend(uint32_t crc, const void *p, size_t len)
{
    /* crc32_iscsi takes a non-const pointer but only reads through it. */
    unsigned char *q = (unsigned char *)(uintptr_t)p;
    unsigned int state = crc ^ 0xFFFFFFFFu;
    while (len > 0) {
        size_t n = len > (size_t)INT_MAX ? (size_t)INT_MAX : len;
        state = crc32_iscsi(q, (int)n, state);
        q += n;
        len -= n;
    }
    return state ^ 0xFFFFFFFFu;
}

uint32_t sl_crc_compute(const void *p, size_t len)
{
    return sl_crc_extend(0, p, len);
}
