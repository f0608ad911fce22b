/* Key files: the Ed25519 keys of proto/wire/sl_key.h on disk.
 *
 * Key files are hex text, one line, lower case when written; loaders accept
 * either case and an optional single trailing newline, nothing else
 * (sl_key_secret_from_hex, sl_key_public_from_hex):
 *   sluice.key  128 hex digits: the 64-byte libsodium secret key
 *               (32-byte seed followed by the 32-byte public key); mode 0600.
 *               Loading refuses (SL_ERR_PERM) if group or others have any
 *               permission bit, and checks the embedded public key against
 *               the seed (SL_ERR_CONFIG if they disagree).
 *   sluice.pub  64 hex digits: the 32-byte public key.
 * A malformed key file is SL_ERR_CONFIG; a missing one SL_ERR_NOT_FOUND.
 * Start-up only (sluice-keygen, daemon start, --check). */
#ifndef SL_KEYFILE_H
#define SL_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sl_err.h"
#include "sl_key.h"

#define SL_KEY_SECRET_FILE   "sluice.key"
#define SL_KEY_PUBLIC_FILE   "sluice.pub"

/* Writes the secret key file (mode 0600) and the public key file (0644),
 * each replaced atomically (sl_file_write_atomic). Unless force, refuses
 * with SL_ERR_EXISTS before writing anything if either path exists, and the
 * secret is created with link(2) so it can never clobber a file. The hex
 * text is staged in guarded memory and wiped. SL_ERR_IO with errno set on
 * a system error. */
__attribute__((warn_unused_result))
sl_err sl_keyfile_save(const char *secret_path, const char *public_path, const struct sl_key_secret *k,
                       bool force);

/* Loads a secret key file into guarded memory (caller frees). Checks, in
 * order: opens with O_NOFOLLOW (SL_ERR_NOT_FOUND / SL_ERR_IO), fstat on that
 * fd: regular file (SL_ERR_CONFIG) and no group/other permission bits
 * (SL_ERR_PERM), size and hex format (SL_ERR_CONFIG), seed/public-key
 * consistency (SL_ERR_CONFIG). *out is NULL on failure. */
__attribute__((warn_unused_result))
sl_err sl_keyfile_load_secret(struct sl_key_secret **out, const char *path);

/* Loads a public key file. Errors as for sl_keyfile_load_secret, without
 * the permission check. *out is zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_keyfile_load_public(struct sl_key_public *out, const char *path);

/* Loads a public key file that decides what RX trusts: as
 * sl_keyfile_load_public, but the file is checked on the opened descriptor
 * by sl_file_open_trusted: a symbolic link, a file writable by group or
 * others, or one owned by a user other than root and owner (the daemon's
 * user) is SL_ERR_PERM, since whoever can rewrite it can make RX accept
 * their frames. why (cap bytes, may be NULL) gets the reason. */
__attribute__((warn_unused_result))
sl_err sl_keyfile_load_trusted(struct sl_key_public *out, const char *path, uid_t owner, char *why,
                               size_t cap);

#endif
