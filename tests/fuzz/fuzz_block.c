/* BLOCK open against fixed frame fields and one trusted key (the protocol
 * test key and the fixture block header). The input is zero-padded to
 * whole symbols of S = 64, as the FEC decoder would hand it over.
 * Properties: no crash or over-read; success only with the payload inside
 * the block and a header equal to the expected frame fields; a split block
 * (SL_BLOCK_FLAG_SPLIT) only with 1 <= split < L, its leaf the SHA-256 of
 * payload[split, L), and flags and split as the header bytes say. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/proto/proto_fixture.h"
#include "sl_block.h"
#include "sl_ftree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_key_secret *key;
static struct sl_key_set trusted;

/* The key lives for the whole run; free it at exit so LeakSanitizer sees
 * no leak from the signing backend's own allocations. */
__attribute__((destructor)) static void free_key(void)
{
    sl_key_free(key);
    key = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key) {
        key = fx_key();
        if (!key)
            __builtin_trap();
        struct sl_key_public pub;
        sl_key_public_of(&pub, key);
        sl_key_set_init(&trusted);
        if (sl_key_set_add(&trusted, &pub) != SL_OK)
            __builtin_trap();
    }
    if (size > 64u * FX_SYMBOL_SIZE)
        return 0;
    size_t k = (size + FX_SYMBOL_SIZE - 1) / FX_SYMBOL_SIZE;
    size_t len = k * FX_SYMBOL_SIZE;
    /* Exact-size heap copy so ASan sees any read past the block. */
    uint8_t *blk = malloc(len ? len : 1);
    if (!blk)
        return 0;
    if (size)
        memcpy(blk, data, size);
    memset(blk + size, 0, len - size);
    struct sl_block_expect x;
    fx_block_expect(&x, key, (uint8_t)k);
    const uint8_t *p;
    size_t plen;
    struct sl_block_hdr h;
    sl_err e = sl_block_open(&p, &plen, &h, blk, len, &x, &trusted);
    if (e == SL_OK) {
        if (p != blk + SL_BLOCK_HDR_BYTES || plen + SL_BLOCK_OVERHEAD > len ||
            len - plen - SL_BLOCK_OVERHEAD >= FX_SYMBOL_SIZE || h.session != FX_SESSION ||
            h.epoch != FX_EPOCH || h.block_seq != FX_BLOCK_SEQ)
            __builtin_trap();
        uint8_t flags = blk[SL_BLOCK_OFF_FLAGS];
        uint16_t split = (uint16_t)(blk[SL_BLOCK_OFF_SPLIT] << 8 | blk[SL_BLOCK_OFF_SPLIT + 1]);
        if (h.split != split || (flags != 0 && flags != SL_BLOCK_FLAG_SPLIT) || (flags == 0) != (split == 0) ||
            (split != 0 && split >= plen))
            __builtin_trap();
        if (split != 0) {
            uint8_t l[SL_FTREE_LEAF_BYTES];
            sl_ftree_leaf(l, p + split, plen - split);
            if (memcmp(l, h.leaf, sizeof l) != 0)
                __builtin_trap();
        }
    } else if (p || plen || h.session) {
        __builtin_trap();
    }
    free(blk);
    return 0;
}
