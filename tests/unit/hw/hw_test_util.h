/* Helpers shared by the hw test files. */
#ifndef HW_TEST_UTIL_H
#define HW_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Datagram i of a test stream: index in the first 4 bytes, then bytes that
 * depend on i and position, so a swapped or shifted datagram is noticed. */
static inline void hw_fill(uint8_t *p, size_t len, uint32_t i)
{
    uint32_t x = i * 2654435761u + 1;
    for (size_t k = 0; k < len; k++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[k] = (uint8_t)x;
    }
    if (len >= 4) {
        p[0] = (uint8_t)(i >> 24);
        p[1] = (uint8_t)(i >> 16);
        p[2] = (uint8_t)(i >> 8);
        p[3] = (uint8_t)i;
    }
}

#endif
