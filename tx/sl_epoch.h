/* sluice-tx's run locks and epoch: one sluice-tx per state_dir and per
 * signing key, and an epoch that grows across restarts.
 *
 * The epoch in state_dir is one per signing key on RX (its replay window is
 * per key id and channel, beacons included), so a second process on the same
 * state_dir or key (a `--send` beside the daemon) would take a newer epoch
 * and RX would then drop every frame and beacon of the running daemon as
 * older until the daemon restarted. The second process is refused instead:
 * exclusive flocks held for the whole run (fds never closed, released by the
 * kernel at exit), the holder's pid written inside for the refusal message.
 * The refused process exits SL_EPOCH_EXIT_IN_USE, sends nothing and leaves
 * the epoch alone. Every failure is logged here (sl_log), once. */
#ifndef SL_EPOCH_H
#define SL_EPOCH_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_key.h"

#define SL_EPOCH_EXIT_IN_USE 3       /* state_dir or key held by another sluice-tx */
#define SL_EPOCH_KEY_LOCK_DIR "/run/lock"

/* The key lock of a run: its fd (-1: none) and the path to unlink at stop. */
struct sl_epoch_keylock {
    int fd;
    char path[sizeof SL_EPOCH_KEY_LOCK_DIR + SL_KEY_ID_HEX_BYTES + 24];
};

/* Takes state_dir/lock (state_dir created 0700 if missing). *fd is the held
 * lock. SL_OK; SL_ERR_EXISTS when another sluice-tx holds it (the message
 * names its pid and, for bulk, what to do); SL_ERR_IO otherwise. */
__attribute__((warn_unused_result))
sl_err sl_epoch_lock_state_dir(int *fd, const char *state_dir, bool bulk);

/* Takes SL_EPOCH_KEY_LOCK_DIR/sluice-tx-<keyid>.lock (pub: the signing
 * key's public half; the secret stays in the signer): state_dir/lock alone
 * misses a --send given the daemon's key with another state_dir. The file
 * is created 0600 and trusted only when owned by root, by us or by the key
 * file's owner (another local user can neither hold it nor plant one to keep
 * TX from starting: an untrusted file is ignored, with a warning). After the
 * flock the path must still name the locked inode (a finishing holder
 * unlinks it), else retry. SL_OK with kl->fd >= 0 (locked) or -1 (the
 * directory is missing or not writable: state_dir only, warned once);
 * SL_ERR_EXISTS when another sluice-tx holds the key. */
__attribute__((warn_unused_result))
sl_err sl_epoch_lock_key(struct sl_epoch_keylock *kl, const struct sl_key_public *pub,
                         const char *key_file, bool bulk);

/* Removes the key lock file while still holding it (nobody can lock an inode
 * about to vanish: lock_key re-checks the path), then closes it. Fails
 * quietly when privileges were dropped (the sticky directory lets only the
 * owner unlink); the next run reuses the file. fd < 0: no-op. */
void sl_epoch_unlock_key(struct sl_epoch_keylock *kl);

/* Reads state_dir/epoch (decimal; missing = 0), writes epoch + 1 back with
 * fsync (sl_file_write_atomic) and returns it in *out: a restarted TX always
 * uses a larger epoch, so RX never mistakes it for a replay. A corrupt file
 * is an error (SL_ERR_CONFIG) rather than a silent restart from 1, which RX
 * would refuse; SL_ERR_IO when it cannot be read or written. */
__attribute__((warn_unused_result))
sl_err sl_epoch_next(uint64_t *out, const char *state_dir);

#endif
