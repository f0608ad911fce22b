/* Small-file helpers for key files and persisted state: whole-file reads
 * with a size cap, and crash-safe replacement (temp file, fsync, rename or
 * link, fsync of the directory). Start-up and checkpoint paths only; never
 * on the per-frame path. errno is left as the failing system call set it. */
#ifndef SL_FILE_H
#define SL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "sl_err.h"

/* Reads all of fd (from its current offset) into buf of cap bytes and sets
 * *len. SL_ERR_LENGTH if the file holds more than cap bytes, SL_ERR_IO on a
 * read error. Does not close fd. Cost: one read(2) per chunk. */
__attribute__((warn_unused_result))
sl_err sl_file_read_fd(void *buf, size_t cap, size_t *len, int fd);

/* close(fd) keeping errno as it was: for the error path of a step that
 * failed before the close, whose errno the caller reports. */
void sl_file_close_keep_errno(int fd);

/* open(path, flags | O_NOFOLLOW | O_CLOEXEC) and fstat of the opened fd
 * into *st, so what the caller then checks is the file it reads. On
 * failure *fd is -1 (nothing left open) and errno is the failing call's:
 * SL_ERR_NOT_FOUND for ENOENT, SL_ERR_IO otherwise (ELOOP: path is a
 * symbolic link). */
__attribute__((warn_unused_result))
sl_err sl_file_open_stat(int *fd, struct stat *st, const char *path, int flags);

/* Replaces path with len bytes of data, created with exactly mode. The
 * bytes go to "<path>.tmp.<pid>" (O_EXCL, O_NOFOLLOW), are fsync'd, then
 * moved into place: rename(2) when replace is true; link(2) when false, so
 * an existing path is never overwritten (SL_ERR_EXISTS) and no other
 * process ever sees a partial file. The directory is fsync'd last.
 * SL_ERR_RANGE if the path is too long; SL_ERR_IO otherwise. */
__attribute__((warn_unused_result))
sl_err sl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace);

/* Refuses a path RX or TX is about to open or hand over with privileges when
 * its last component is a symbolic link or a regular file with more than one
 * hard link (SL_ERR_PERM): either would let whoever can write the directory
 * redirect a root-owned open, create or chown onto another file (e.g.
 * mirror.db -> /etc/ld.so.preload). SL_OK when absent or a plain entry;
 * SL_ERR_IO (errno) when lstat fails otherwise. Start-up only; the caller
 * still opens with O_NOFOLLOW, since this check alone is racy. */
__attribute__((warn_unused_result))
sl_err sl_file_check_nolink(const char *path);

/* The directory part of path into out (cap bytes): "dir/f" -> "dir",
 * "/f" -> "/", "f" -> "."; truncated to cap. Returns out. */
const char *sl_file_dir_of(char *out, size_t cap, const char *path);

/* chown(path, uid, gid) without following a link: the path is opened
 * O_PATH | O_NOFOLLOW, checked on that descriptor (a directory, or a regular
 * file with exactly one link; anything else SL_ERR_PERM), and changed with
 * fchownat(AT_EMPTY_PATH), so the file checked is the file changed.
 * SL_ERR_NOT_FOUND when absent; SL_ERR_IO (errno) on a system error. */
__attribute__((warn_unused_result))
sl_err sl_file_chown_nofollow(const char *path, uid_t uid, gid_t gid);

/* Flags for sl_file_open_trusted. */
#define SL_FILE_NO_OTHER_READ 1u   /* a secret: others may not read it either */

/* Opens a file whose contents decide trust (a trusted public key, an HTTP
 * token) read-only without following a final link or blocking on a FIFO,
 * and checks the opened file: a regular file (SL_ERR_CONFIG); no write bit
 * for group or others, owned by root or by owner (SL_ERR_PERM), and with
 * SL_FILE_NO_OTHER_READ no read bit for others either (SL_ERR_PERM: 0600 and
 * 0640 pass). why (cap bytes, may be NULL) gets a one-line reason on
 * SL_ERR_PERM/SL_ERR_CONFIG. On SL_OK *fd is open (the caller closes it);
 * SL_ERR_NOT_FOUND / SL_ERR_IO (errno) when it cannot be opened. */
__attribute__((warn_unused_result))
sl_err sl_file_open_trusted(int *fd, const char *path, uid_t owner, unsigned flags, char *why, size_t cap);

#endif
