/* Ed25519 keys (libsodium): generation, key ids, signing and verification,
 * the receiver's set of trusted public keys, and the hex text a key file
 * holds. No I/O here: key files are read and written by proto/rt/sl_keyfile.h.
 *
 * Key id: the first SL_KEY_ID_BYTES bytes of BLAKE2b-256 (unkeyed) of the
 * 32-byte public key. It names the signer on the wire; it is not secret.
 *
 * Secret keys live in sodium_malloc'd memory (guard pages, mlock'd, read-only
 * once loaded) and are wiped with sodium_memzero when freed. Public keys
 * are plain values. */
#ifndef SL_KEY_H
#define SL_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_wire.h"

#define SL_KEY_SEED_BYTES    32u
#define SL_KEY_SK_BYTES      64u          /* libsodium secret key: seed || pk */
#define SL_KEY_ID_HEX_BYTES  (2u * SL_KEY_ID_BYTES + 1u)   /* with NUL */
#define SL_KEY_SET_MAX       16u          /* trusted keys per receiver */

struct sl_key_public {
    uint8_t pk[SL_PK_BYTES];
    uint8_t id[SL_KEY_ID_BYTES];
};

/* Opaque; only ever in guarded memory. */
struct sl_key_secret;

/* Fixed-size set of trusted public keys, looked up by key id. */
struct sl_key_set {
    struct sl_key_public key[SL_KEY_SET_MAX];
    size_t count;
};

/* Key id of a 32-byte public key. Cost: one BLAKE2b block. */
void sl_key_id(uint8_t id[SL_KEY_ID_BYTES], const uint8_t pk[SL_PK_BYTES]);

/* Writes the key id as 16 lower-case hex digits and a NUL. */
void sl_key_id_format(char out[SL_KEY_ID_HEX_BYTES], const uint8_t id[SL_KEY_ID_BYTES]);

/* Fills *out from raw public key bytes (computes the id). */
void sl_key_public_make(struct sl_key_public *out, const uint8_t pk[SL_PK_BYTES]);

/* New random key pair in guarded memory; caller frees with sl_key_free.
 * SL_ERR_NOMEM if libsodium cannot initialise or allocate. */
__attribute__((warn_unused_result))
sl_err sl_key_generate(struct sl_key_secret **out);

/* Deterministic key pair from a 32-byte seed (test vectors, tooling).
 * Caller frees with sl_key_free. */
__attribute__((warn_unused_result))
sl_err sl_key_from_seed(struct sl_key_secret **out, const uint8_t seed[SL_KEY_SEED_BYTES]);

/* Wipes and releases a secret key; NULL is a no-op. */
void sl_key_free(struct sl_key_secret *k);

/* The public half (and id) of a secret key. */
void sl_key_public_of(struct sl_key_public *out, const struct sl_key_secret *k);

/* Hex text of a key, lower case when written; readers accept either case
 * and one optional trailing newline, nothing else (the key file format,
 * proto/rt/sl_keyfile.h). Sizes are digits only, without newline or NUL. */
#define SL_KEY_SECRET_HEX    (2u * SL_KEY_SK_BYTES)   /* 128 */
#define SL_KEY_PUBLIC_HEX    (2u * SL_PK_BYTES)       /* 64 */

/* A secret key from len bytes of text: exactly SL_KEY_SECRET_HEX hex digits
 * (the 32-byte seed, then the 32-byte public key), optionally followed by
 * one newline. Malformed text, or an embedded public key that is not the
 * seed's, is SL_ERR_CONFIG; SL_ERR_NOMEM if guarded memory cannot be had.
 * On success *out is in guarded read-only memory (caller frees with
 * sl_key_free); on failure NULL. The caller wipes its own copy of text. */
__attribute__((warn_unused_result))
sl_err sl_key_secret_from_hex(struct sl_key_secret **out, const char *text, size_t len);

/* Writes k's secret key as SL_KEY_SECRET_HEX lower-case hex digits and a
 * NUL into out (cap bytes: at least SL_KEY_SECRET_HEX + 1, else
 * SL_ERR_RANGE and nothing written). The text is the secret: the caller
 * passes guarded memory and wipes it (sodium_memzero) when done. */
__attribute__((warn_unused_result))
sl_err sl_key_secret_to_hex(char *out, size_t cap, const struct sl_key_secret *k);

/* A public key (and its id) from len bytes of text: exactly
 * SL_KEY_PUBLIC_HEX hex digits, optionally followed by one newline.
 * SL_ERR_CONFIG otherwise, with *out zeroed. */
__attribute__((warn_unused_result))
sl_err sl_key_public_from_hex(struct sl_key_public *out, const char *text, size_t len);

/* Writes k's public key as SL_KEY_PUBLIC_HEX lower-case hex digits and a
 * NUL. */
void sl_key_public_to_hex(char out[SL_KEY_PUBLIC_HEX + 1u], const struct sl_key_public *k);

/* Who signs a block or a beacon: the sealing code (sl_block_seal,
 * sl_datagram_beacon_encode) holds only this handle, never the key. Two
 * implementations: the key itself in this process (sl_key_signer: tools,
 * tests, benchmarks) and sluice-tx's signer process, which holds the key
 * in another address space (tx/sl_signer.h).
 *
 * sign writes the signatures of n messages of len bytes each, back to
 * back at msgs (a block's SL_BLOCK_SIGNED_BYTES or a beacon's
 * SL_BEACON_SIGNED_BYTES), to sigs (n * SL_SIG_BYTES) and returns SL_OK,
 * or returns why not (SL_ERR_IO: the signer process is gone; a refusal of
 * a message's shape), signing none. n is 1..batch_max: how many one call
 * may carry; more than 1 where a call costs more than the signatures (a
 * round trip to another process), so a sender may gather blocks first.
 * ctx is the implementation's; pub names the key on the wire (key id). */
#define SL_SIGN_BATCH_MAX 16u
struct sl_signer {
    sl_err (*sign)(void *ctx, uint8_t *sigs, const uint8_t *msgs, size_t len, size_t n);
    void *ctx;
    size_t batch_max;           /* 1..SL_SIGN_BATCH_MAX */
    struct sl_key_public pub;
};

/* The in-process signer of k: lives inside k's guarded memory, valid until
 * sl_key_free(k). Never fails. */
const struct sl_signer *sl_key_signer(const struct sl_key_secret *k);

/* One signature through s; sig zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_signer_sign(const struct sl_signer *s, uint8_t sig[SL_SIG_BYTES], const uint8_t *msg, size_t len);

/* n (1..s->batch_max) signatures in one call; sigs zeroed on failure,
 * SL_ERR_RANGE for a bad n. */
__attribute__((warn_unused_result))
sl_err sl_signer_sign_batch(const struct sl_signer *s, uint8_t *sigs, const uint8_t *msgs, size_t len, size_t n);

/* Detached Ed25519 signature of len bytes at msg (libsodium). Cost: ~20 µs
 * plus hashing the message twice with SHA-512, so callers sign short
 * messages (a block's header and payload digest, a beacon); once per block
 * or beacon, never per datagram. */
void sl_key_sign(uint8_t sig[SL_SIG_BYTES], const void *msg, size_t len, const struct sl_key_secret *k);

/* SL_OK if sig is k's signature of msg, else SL_ERR_SIGNATURE (including
 * non-canonical signatures and small-order keys, which libsodium rejects).
 * Cost: ~45 µs plus hashing. */
__attribute__((warn_unused_result))
sl_err sl_key_verify(const struct sl_key_public *k, const uint8_t sig[SL_SIG_BYTES], const void *msg,
                     size_t len);

/* True if the scalar s (sig bytes 32..63, little-endian) is below the group
 * order L, as RFC 8032 requires; sl_key_verify refuses the others anyway.
 * Lets a caller that rations verifications drop such a signature without
 * charging it. Cost: a 32-byte compare. */
bool sl_key_sig_canonical(const uint8_t sig[SL_SIG_BYTES]);

/* The trusted key that is to check sig, found by the signer's key id:
 * SL_ERR_UNKNOWN_KEY if the id is not in s, SL_ERR_SIGNATURE if sig is not
 * canonical (sl_key_sig_canonical), else SL_OK with *key borrowed from s
 * (NULL on failure). The shared front of every verification (blocks,
 * beacons): both refusals cost no hashing. */
__attribute__((warn_unused_result))
sl_err sl_key_set_signer(const struct sl_key_public **key, const struct sl_key_set *s,
                         const uint8_t id[SL_KEY_ID_BYTES], const uint8_t sig[SL_SIG_BYTES]);

/* Empties a trusted set. */
void sl_key_set_init(struct sl_key_set *s);

/* Adds a copy of k. SL_ERR_DUPLICATE if its key id is already present
 * (two different keys with one id are refused too), SL_ERR_TABLE_FULL at
 * SL_KEY_SET_MAX keys. */
__attribute__((warn_unused_result))
sl_err sl_key_set_add(struct sl_key_set *s, const struct sl_key_public *k);

/* The trusted key with this id, or NULL. Borrowed from s. Cost: linear in
 * the (small) set. */
const struct sl_key_public *sl_key_set_find(const struct sl_key_set *s, const uint8_t id[SL_KEY_ID_BYTES]);

#endif
