/* Helpers shared by the hw test files. */
#ifndef HW_TEST_UTIL_H
#define HW_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* True when capability number cap (CAP_NET_RAW is 13, CAP_SYS_ADMIN 21)
 * is in this process's effective set, read from /proc/self/status. */
static inline bool hw_have_cap(unsigned cap)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return false;
    char line[256];
    unsigned long long eff = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "CapEff: %llx", &eff) == 1;
    fclose(f);
    return found && cap < 64 && (eff >> cap & 1u);
}

#endif
