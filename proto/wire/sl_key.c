#include "sl_key.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>

struct sl_key_secret {
    uint8_t sk[SL_KEY_SK_BYTES];
    struct sl_key_public pub;
    struct sl_signer signer;    /* sl_key_signer: ctx is this key */
};

_Static_assert(SL_KEY_SK_BYTES == crypto_sign_SECRETKEYBYTES, "libsodium secret key size");
_Static_assert(SL_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "libsodium public key size");
_Static_assert(SL_SIG_BYTES == crypto_sign_BYTES, "libsodium signature size");
_Static_assert(SL_KEY_SEED_BYTES == crypto_sign_SEEDBYTES, "libsodium seed size");

void sl_key_id(uint8_t id[SL_KEY_ID_BYTES], const uint8_t pk[SL_PK_BYTES])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof h, pk, SL_PK_BYTES, NULL, 0);
    memcpy(id, h, SL_KEY_ID_BYTES);
}

void sl_key_id_format(char out[SL_KEY_ID_HEX_BYTES], const uint8_t id[SL_KEY_ID_BYTES])
{
    sodium_bin2hex(out, SL_KEY_ID_HEX_BYTES, id, SL_KEY_ID_BYTES);
}

void sl_key_public_make(struct sl_key_public *out, const uint8_t pk[SL_PK_BYTES])
{
    memcpy(out->pk, pk, SL_PK_BYTES);
    sl_key_id(out->id, pk);
}

static sl_err secret_alloc(struct sl_key_secret **out)
{
    *out = NULL;
    if (sodium_init() < 0)
        return SL_ERR_NOMEM;
    struct sl_key_secret *k = sodium_malloc(sizeof *k);
    if (!k)
        return SL_ERR_NOMEM;
    memset(k, 0, sizeof *k);   /* sodium_malloc fills with garbage */
    *out = k;
    return SL_OK;
}

static sl_err key_sign(void *ctx, uint8_t *sigs, const uint8_t *msgs, size_t len, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sl_key_sign(sigs + i * SL_SIG_BYTES, msgs + i * len, len, ctx);
    return SL_OK;
}

/* Finishes a freshly filled key: public half, id, its signer, then
 * read-only. */
static void secret_seal(struct sl_key_secret *k)
{
    sl_key_public_make(&k->pub, k->sk + SL_KEY_SEED_BYTES);
    k->signer.sign = key_sign;
    k->signer.ctx = k;
    k->signer.batch_max = 1;    /* nothing to save by gathering */
    k->signer.pub = k->pub;
    sodium_mprotect_readonly(k);
}

const struct sl_signer *sl_key_signer(const struct sl_key_secret *k)
{
    return &k->signer;
}

sl_err sl_signer_sign_batch(const struct sl_signer *s, uint8_t *sigs, const uint8_t *msgs, size_t len, size_t n)
{
    if (n == 0 || n > s->batch_max)
        return SL_ERR_RANGE;
    sl_err e = s->sign(s->ctx, sigs, msgs, len, n);
    if (e != SL_OK)
        memset(sigs, 0, n * SL_SIG_BYTES);
    return e;
}

sl_err sl_signer_sign(const struct sl_signer *s, uint8_t sig[SL_SIG_BYTES], const uint8_t *msg, size_t len)
{
    return sl_signer_sign_batch(s, sig, msg, len, 1);
}

sl_err sl_key_generate(struct sl_key_secret **out)
{
    struct sl_key_secret *k;
    sl_err e = secret_alloc(&k);
    if (e != SL_OK)
        return e;
    uint8_t pk[SL_PK_BYTES];
    crypto_sign_keypair(pk, k->sk);
    secret_seal(k);
    *out = k;
    return SL_OK;
}

sl_err sl_key_from_seed(struct sl_key_secret **out, const uint8_t seed[SL_KEY_SEED_BYTES])
{
    struct sl_key_secret *k;
    sl_err e = secret_alloc(&k);
    if (e != SL_OK)
        return e;
    uint8_t pk[SL_PK_BYTES];
    crypto_sign_seed_keypair(pk, k->sk, seed);
    secret_seal(k);
    *out = k;
    return SL_OK;
}

void sl_key_free(struct sl_key_secret *k)
{
    if (!k)
        return;
    sodium_mprotect_readwrite(k);
    sodium_memzero(k, sizeof *k);
    sodium_free(k);
}

void sl_key_public_of(struct sl_key_public *out, const struct sl_key_secret *k)
{
    *out = k->pub;
}

/* Decodes exactly want_hex hex digits, optionally followed by one newline,
 * into bin (want_hex / 2 bytes). */
static sl_err decode_hex_line(uint8_t *bin, const char *text, size_t len, size_t want_hex)
{
    if (len == want_hex + 1 && text[want_hex] == '\n')
        len--;
    if (len != want_hex)
        return SL_ERR_CONFIG;
    size_t bin_len = 0;
    if (sodium_hex2bin(bin, want_hex / 2, text, want_hex, NULL, &bin_len, NULL) != 0 ||
        bin_len != want_hex / 2)
        return SL_ERR_CONFIG;
    return SL_OK;
}

sl_err sl_key_secret_from_hex(struct sl_key_secret **out, const char *text, size_t len)
{
    *out = NULL;
    struct sl_key_secret *k;
    sl_err e = secret_alloc(&k);
    if (e != SL_OK)
        return e;
    e = decode_hex_line(k->sk, text, len, SL_KEY_SECRET_HEX);
    if (e == SL_OK) {
        /* The libsodium secret key repeats the public key after the seed;
         * text whose halves disagree would sign under a key that is not
         * the one published. */
        uint8_t pk[SL_PK_BYTES];
        uint8_t sk[SL_KEY_SK_BYTES];
        crypto_sign_seed_keypair(pk, sk, k->sk);
        if (sodium_memcmp(sk, k->sk, sizeof sk) != 0)
            e = SL_ERR_CONFIG;
        sodium_memzero(sk, sizeof sk);
    }
    if (e != SL_OK) {
        sl_key_free(k);
        return e;
    }
    secret_seal(k);
    *out = k;
    return SL_OK;
}

sl_err sl_key_secret_to_hex(char *out, size_t cap, const struct sl_key_secret *k)
{
    if (cap < SL_KEY_SECRET_HEX + 1)
        return SL_ERR_RANGE;
    sodium_bin2hex(out, SL_KEY_SECRET_HEX + 1, k->sk, SL_KEY_SK_BYTES);
    return SL_OK;
}

sl_err sl_key_public_from_hex(struct sl_key_public *out, const char *text, size_t len)
{
    uint8_t pk[SL_PK_BYTES];
    memset(out, 0, sizeof *out);
    sl_err e = decode_hex_line(pk, text, len, SL_KEY_PUBLIC_HEX);
    if (e != SL_OK)
        return e;
    sl_key_public_make(out, pk);
    return SL_OK;
}

void sl_key_public_to_hex(char out[SL_KEY_PUBLIC_HEX + 1u], const struct sl_key_public *k)
{
    sodium_bin2hex(out, SL_KEY_PUBLIC_HEX + 1, k->pk, SL_PK_BYTES);
}

/* libsodium only: the secret never leaves guarded memory. Messages are
 * short (a block is signed as header || SHA-256(payload), 76 bytes; a beacon
 * is 132), so the hashing inside Ed25519 no longer matters and an OpenSSL
 * signer (once used for its faster SHA-512, at the price of a second,
 * unguarded copy of the seed) has nothing left to win. */
void sl_key_sign(uint8_t sig[SL_SIG_BYTES], const void *msg, size_t len, const struct sl_key_secret *k)
{
    crypto_sign_detached(sig, NULL, msg, len, k->sk);
}

sl_err sl_key_verify(const struct sl_key_public *k, const uint8_t sig[SL_SIG_BYTES], const void *msg,
                     size_t len)
{
    if (crypto_sign_verify_detached(sig, msg, len, k->pk) != 0)
        return SL_ERR_SIGNATURE;
    return SL_OK;
}

bool sl_key_sig_canonical(const uint8_t sig[SL_SIG_BYTES])
{
    /* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
    static const uint8_t order[32] = {
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    };
    const uint8_t *s = sig + 32;
    for (int i = 31; i >= 0; i--) {
        if (s[i] != order[i])
            return s[i] < order[i];
    }
    return false;   /* s == L */
}

void sl_key_set_init(struct sl_key_set *s)
{
    memset(s, 0, sizeof *s);
}

sl_err sl_key_set_add(struct sl_key_set *s, const struct sl_key_public *k)
{
    if (sl_key_set_find(s, k->id))
        return SL_ERR_DUPLICATE;
    if (s->count >= SL_KEY_SET_MAX)
        return SL_ERR_TABLE_FULL;
    s->key[s->count++] = *k;
    return SL_OK;
}

sl_err sl_key_set_signer(const struct sl_key_public **key, const struct sl_key_set *s,
                         const uint8_t id[SL_KEY_ID_BYTES], const uint8_t sig[SL_SIG_BYTES])
{
    *key = sl_key_set_find(s, id);
    if (!*key)
        return SL_ERR_UNKNOWN_KEY;
    if (!sl_key_sig_canonical(sig)) {
        *key = NULL;
        return SL_ERR_SIGNATURE;
    }
    return SL_OK;
}

const struct sl_key_public *sl_key_set_find(const struct sl_key_set *s, const uint8_t id[SL_KEY_ID_BYTES])
{
    for (size_t i = 0; i < s->count && i < SL_KEY_SET_MAX; i++)
        if (memcmp(s->key[i].id, id, SL_KEY_ID_BYTES) == 0)
            return &s->key[i];
    return NULL;
}
