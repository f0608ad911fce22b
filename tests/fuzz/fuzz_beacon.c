/* BEACON parse + verify against one fixed trusted key (the protocol test
 * key, seed 00..1f). Properties: no crash or over-read; a beacon that
 * verifies re-encodes (deterministic Ed25519) to the identical bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../unit/proto/proto_fixture.h"
#include "sl_datagram.h"

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
    struct sl_beacon b;
    sl_err e = sl_datagram_beacon_open(&b, data, size, &trusted);
    if (e != SL_OK) {
        if (b.session || b.epoch || b.k)
            __builtin_trap();   /* output must be zeroed */
        return 0;
    }
    uint8_t out[SL_BEACON_BYTES];
    if (sl_datagram_beacon_encode(out, sizeof out, &b, sl_key_signer(key)) != SL_OK || size != SL_BEACON_BYTES ||
        memcmp(out, data, size) != 0)
        __builtin_trap();
    return 0;
}
