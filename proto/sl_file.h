/* Small-file helpers for key files and persisted state: whole-file reads
 * with a size cap, and crash-safe replacement (temp file, fsync, rename or
 * link, fsync of the directory). Start-up and checkpoint paths only; never
 * on the per-frame path. errno is left as the failing system call set it. */
#ifndef SL_FILE_H
#define SL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sl_err.h"

/* Reads all of fd (from its current offset) into buf of cap bytes and sets
 * *len. SL_ERR_LENGTH if the file holds more than cap bytes, SL_ERR_IO on a
 * read error. Does not close fd. Cost: one read(2) per chunk. */
__attribute__((warn_unused_result))
sl_err sl_file_read_fd(void *buf, size_t cap, size_t *len, int fd);

/* Replaces path with len bytes of data, created with exactly mode. The
 * bytes go to "<path>.tmp.<pid>" (O_EXCL, O_NOFOLLOW), are fsync'd, then
 * moved into place: rename(2) when replace is true; link(2) when false, so
 * an existing path is never overwritten (SL_ERR_EXISTS) and no other
 * process ever sees a partial file. The directory is fsync'd last.
 * SL_ERR_RANGE if the path is too long; SL_ERR_IO otherwise. */
__attribute__((warn_unused_result))
sl_err sl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace);

#endif
