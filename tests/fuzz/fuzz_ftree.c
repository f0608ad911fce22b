/* The file tree's chunk list (RX) and accumulator (TX) under random add
 * sequences. Input: u16be size (0..65535), u8 max_chunks, then records of
 * u16be offset, u16be len, u8 leaf byte. Properties: no crash; an add that
 * overlaps a recorded chunk is never accepted (checked against a byte map);
 * a repeat is accepted only as the same chunk; a refused add changes
 * nothing; the list stays sorted and disjoint within max_chunks; complete
 * means covered == size; a complete list's digest equals the accumulator's
 * fed the same chunks in order, and an incomplete one has none. */
#include <stdint.h>
#include <string.h>

#include "sl_ftree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint64_t fsize = (uint64_t)data[0] << 8 | data[1];
    size_t max_chunks = data[2];
    data += 3;
    size -= 3;
    static uint8_t owner[65536];   /* 0: free; else 1 + the leaf byte of the chunk holding it */
    memset(owner, 0, sizeof owner);
    struct sl_ftree t;
    sl_ftree_init(&t, fsize, max_chunks);
    for (; size >= 5; data += 5, size -= 5) {
        uint64_t off = (uint64_t)data[0] << 8 | data[1];
        uint32_t len = (uint32_t)data[2] << 8 | data[3];
        uint8_t leaf[SL_FTREE_LEAF_BYTES];
        memset(leaf, data[4], sizeof leaf);
        size_t n0 = t.n;
        uint64_t cov0 = t.covered;
        bool dup = false;
        sl_err e = sl_ftree_add(&t, off, len, leaf, &dup);
        bool in_range = len > 0 && off + len <= fsize;
        bool any_taken = false;
        if (in_range)
            for (uint64_t i = off; i < off + len; i++)
                any_taken |= owner[i] != 0;
        if (e == SL_OK && !dup) {
            if (!in_range || any_taken || t.n != n0 + 1 || t.covered != cov0 + len)
                __builtin_trap();   /* accepted an overlap or out of range */
            for (uint64_t i = off; i < off + len; i++)
                owner[i] = (uint8_t)(1u + data[4]);
        } else if (e == SL_OK) {
            /* A duplicate: the exact chunk is there. */
            size_t j;
            for (j = 0; j < t.n; j++)
                if (t.c[j].offset == off && t.c[j].len == len && memcmp(t.c[j].leaf, leaf, sizeof leaf) == 0)
                    break;
            if (j == t.n || t.n != n0 || t.covered != cov0)
                __builtin_trap();
        } else {
            if (dup || t.n != n0 || t.covered != cov0)
                __builtin_trap();
            if ((e == SL_ERR_RANGE) != !in_range)
                __builtin_trap();
            if (e == SL_ERR_CAPACITY && (any_taken || t.n < max_chunks))
                __builtin_trap();
        }
    }
    if (t.n > max_chunks)
        __builtin_trap();
    uint64_t sum = 0;
    for (size_t i = 0; i < t.n; i++) {
        sum += t.c[i].len;
        if (i > 0 && t.c[i - 1].offset + t.c[i - 1].len > t.c[i].offset)
            __builtin_trap();
    }
    if (sum != t.covered || sl_ftree_complete(&t) != (t.covered == fsize))
        __builtin_trap();
    uint8_t dt[SL_FILE_SHA256_BYTES], da[SL_FILE_SHA256_BYTES];
    sl_err e = sl_ftree_final(&t, dt);
    if (sl_ftree_complete(&t)) {
        struct sl_ftree_acc a;
        if (e != SL_OK || sl_ftree_acc_init(&a, fsize) != SL_OK)
            __builtin_trap();
        for (size_t i = 0; i < t.n; i++)
            if (sl_ftree_acc_add(&a, t.c[i].offset, t.c[i].len, t.c[i].leaf) != SL_OK)
                __builtin_trap();
        if (sl_ftree_acc_final(&a, da) != SL_OK || memcmp(da, dt, sizeof da) != 0)
            __builtin_trap();
        sl_ftree_acc_free(&a);
    } else if (e != SL_ERR_TRUNCATED) {
        __builtin_trap();
    }
    sl_ftree_free(&t);
    return 0;
}
