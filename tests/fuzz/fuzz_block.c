/* BLOCK open against fixed frame fields and one trusted key (the protocol
 * test key and the fixture block header). The input is zero-padded to
 * whole symbols of S = 64, as the FEC decoder would hand it over.
 * Properties: no crash or over-read; success only with the payload inside
 * the block and a header equal to the expected frame fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/proto/proto_fixture.h"
#include "sl_block.h"

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
    } else if (p || plen || h.session) {
        __builtin_trap();
    }
    free(blk);
    return 0;
}
