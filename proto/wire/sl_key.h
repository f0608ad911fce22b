/* Ed25519 keys (libsodium): generation, key files, key ids, signing and
 * verification, and the receiver's set of trusted public keys.
 *
 * Key files are hex text, one line, lower case when written; loaders accept
 * either case and an optional single trailing newline, nothing else:
 *   sluice.key  128 hex digits: the 64-byte libsodium secret key
 *               (32-byte seed followed by the 32-byte public key); mode 0600.
 *               Loading refuses (SL_ERR_PERM) if group or others have any
 *               permission bit, and checks the embedded public key against
 *               the seed (SL_ERR_CONFIG if they disagree).
 *   sluice.pub  64 hex digits: the 32-byte public key.
 * A malformed key file is SL_ERR_CONFIG; a missing one SL_ERR_NOT_FOUND.
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
#include <sys/types.h>

#include "sl_err.h"
#include "sl_wire.h"

#define SL_KEY_SECRET_FILE   "sluice.key"
#define SL_KEY_PUBLIC_FILE   "sluice.pub"
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

/* Writes the secret key file (mode 0600) and the public key file (0644),
 * each replaced atomically (sl_file_write_atomic). Unless force, refuses
 * with SL_ERR_EXISTS before writing anything if either path exists, and the
 * secret is created with link(2) so it can never clobber a file. The hex
 * text is staged in guarded memory and wiped. SL_ERR_IO with errno set on
 * a system error. */
__attribute__((warn_unused_result))
sl_err sl_key_save(const char *secret_path, const char *public_path, const struct sl_key_secret *k,
                   bool force);

/* Loads a secret key file into guarded memory (caller frees). Checks, in
 * order: opens with O_NOFOLLOW (SL_ERR_NOT_FOUND / SL_ERR_IO), fstat on that
 * fd: regular file (SL_ERR_CONFIG) and no group/other permission bits
 * (SL_ERR_PERM), size and hex format (SL_ERR_CONFIG), seed/public-key
 * consistency (SL_ERR_CONFIG). *out is NULL on failure. */
__attribute__((warn_unused_result))
sl_err sl_key_load_secret(struct sl_key_secret **out, const char *path);

/* Loads a public key file. Errors as for sl_key_load_secret, without the
 * permission check. *out is zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_key_load_public(struct sl_key_public *out, const char *path);

/* Loads a public key file that decides what RX trusts: as
 * sl_key_load_public, but the file is checked on the opened descriptor by
 * sl_file_open_trusted: a symbolic link, a file writable by group or others,
 * or one owned by a user other than root and owner (the daemon's user) is
 * SL_ERR_PERM, since whoever can rewrite it can make RX accept their
 * frames. why (cap bytes, may be NULL) gets the reason. */
__attribute__((warn_unused_result))
sl_err sl_key_load_trusted(struct sl_key_public *out, const char *path, uid_t owner, char *why,
                           size_t cap);

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
