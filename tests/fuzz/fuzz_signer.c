/* The signer process's request check (sl_signer_answer) on arbitrary bytes,
 * as a compromised main process could send them. The signer is bound to
 * session 1, epoch 1 first. Whatever comes in: the reply is exactly its
 * header plus count signatures; a signed reply only for block or beacon
 * shapes of that session and epoch (magic, version, key id checked again
 * here), and every signature it returns verifies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_signer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sl_key_secret *key;
    static struct sl_key_public pub;
    if (!key) {
        uint8_t seed[SL_KEY_SEED_BYTES];
        memset(seed, 0x5A, sizeof seed);
        if (sl_key_from_seed(&key, seed) != SL_OK)
            abort();
        sl_key_public_of(&pub, key);
    }
    struct sl_signer_state st;
    sl_signer_state_init(&st, key);
    uint8_t bind[SL_SIGNER_BIND_BYTES] = { SL_SIGNER_OP_BIND, 0, 0, 0 };
    uint64_t one = 1;
    memcpy(bind + SL_SIGNER_HDR_BYTES, &one, 8);
    memcpy(bind + SL_SIGNER_HDR_BYTES + 8, &one, 8);
    static uint8_t rep[SL_SIGNER_REPLY_MAX];
    if (sl_signer_answer(rep, bind, sizeof bind, &st, key) != SL_SIGNER_HDR_BYTES || rep[0] != SL_OK)
        abort();
    size_t rlen = sl_signer_answer(rep, data, size, &st, key);
    size_t n = rep[1];
    if (rlen != SL_SIGNER_HDR_BYTES + n * SL_SIG_BYTES || rep[2] || rep[3])
        abort();
    if (rep[0] != SL_OK) {
        if (n != 0)
            abort();
        return 0;
    }
    if (n == 0)
        return 0;   /* the binding again is refused; nothing else signs nothing */
    size_t item = data[0] == SL_SIGNER_OP_BLOCK ? SL_BLOCK_SIGNED_BYTES : SL_BEACON_SIGNED_BYTES;
    if (size != SL_SIGNER_HDR_BYTES + n * item)
        abort();
    for (size_t i = 0; i < n; i++) {
        const uint8_t *m = data + SL_SIGNER_HDR_BYTES + i * item;
        uint16_t magic = (uint16_t)(m[0] << 8 | m[1]);
        uint64_t session = be64(m + SL_BLOCK_OFF_SESSION), epoch = be64(m + SL_BLOCK_OFF_EPOCH);
        if (item == SL_BLOCK_SIGNED_BYTES && (magic != SL_BLOCK_MAGIC || m[2] != SL_BLOCK_VERSION))
            abort();
        if (item == SL_BEACON_SIGNED_BYTES &&
            (magic != SL_WIRE_MAGIC || m[3] != SL_FRAME_BEACON ||
             memcmp(m + SL_BEACON_OFF_KEY_ID, pub.id, SL_KEY_ID_BYTES) != 0))
            abort();
        if (session != 1 || epoch != 1)
            abort();
        if (sl_key_verify(&pub, rep + SL_SIGNER_HDR_BYTES + i * SL_SIG_BYTES, m, item) != SL_OK)
            abort();
    }
    return 0;
}
