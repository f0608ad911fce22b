/* The file tree's chunk list (RX) and accumulator (TX) under random add
 * sequences. Input: u16be size (0..65535), u8 max_chunks, then records of
 * u16be offset, u16be len, u8 leaf byte. Properties: no crash; an add is
 * refused for range exactly when out of range; a refused add changes
 * nothing; a duplicate is reported only for the last entry's exact chunk;
 * the list stays within max_chunks; at the end (checked against a byte map
 * of the distinct accepted chunks) final refuses exactly the lists where
 * two chunks overlap other than as exact duplicates, and otherwise the list
 * is sorted and disjoint, complete means covered == size, and a complete
 * list's digest equals the accumulator's fed the same chunks in order. */
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
    static uint8_t owner[65536];   /* how many distinct accepted chunks hold the byte (saturating) */
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
        if (e == SL_OK && !dup) {
            if (!in_range || t.n != n0 + 1 || t.covered != cov0 + len)
                __builtin_trap();
        } else if (e == SL_OK) {
            const struct sl_ftree_chunk *c = &t.c[t.n - 1];
            if (t.n != n0 || t.covered != cov0 || c->offset != off || c->len != len ||
                memcmp(c->leaf, leaf, sizeof leaf) != 0)
                __builtin_trap();
        } else {
            if (dup || t.n != n0 || t.covered != cov0)
                __builtin_trap();
            if ((e == SL_ERR_RANGE) != !in_range)
                __builtin_trap();
            if (e == SL_ERR_CAPACITY && t.n < max_chunks)
                __builtin_trap();
        }
    }
    if (t.n > max_chunks)
        __builtin_trap();
    /* The model: distinct entries (exact duplicates once) on a byte map;
     * two at the same offset with another len or leaf also conflict. */
    bool conflict = false;
    for (size_t i = 0; i < t.n; i++) {
        bool again = false;
        for (size_t j = 0; j < i && !again; j++) {
            const struct sl_ftree_chunk *a = &t.c[j], *b = &t.c[i];
            again = a->offset == b->offset && a->len == b->len && memcmp(a->leaf, b->leaf, sizeof a->leaf) == 0;
        }
        if (again)
            continue;
        for (uint64_t k = t.c[i].offset; k < t.c[i].offset + t.c[i].len; k++)
            if (owner[k]++ != 0)
                conflict = true;
    }
    uint64_t want_cov = 0;
    for (uint64_t k = 0; k < fsize; k++)
        want_cov += owner[k] != 0;
    bool complete = sl_ftree_complete(&t);
    if (conflict) {
        uint8_t dx[SL_FILE_SHA256_BYTES];
        if (complete || sl_ftree_final(&t, dx) != SL_ERR_MISMATCH)
            __builtin_trap();
        sl_ftree_free(&t);
        return 0;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < t.n; i++) {
        sum += t.c[i].len;
        if (i > 0 && t.c[i - 1].offset + t.c[i - 1].len > t.c[i].offset)
            __builtin_trap();
    }
    if (sum != t.covered || sum != want_cov || complete != (t.covered == fsize))
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
