/* Bulk mode: sends whole files over the file channel through an sl_sender
 * (same FEC, signing and pacing as the tag channel). Each file becomes
 * FILE_BEGIN + FILE_DATA... + FILE_END messages (proto/sl_fmsg.h); data is
 * read from disk straight into block payloads and hashed (SHA-256) on the
 * way, so memory stays one block whatever the file size. */
#ifndef SL_FILESEND_H
#define SL_FILESEND_H

#include <stdint.h>

#include "sl_err.h"
#include "sl_sender.h"

/* Called after every block with bytes sent so far of this file. */
typedef void (*sl_filesend_progress_fn)(void *ctx, const char *name, uint64_t done, uint64_t total);

/* Sends the file at path as file_id (unique within the TX session) under
 * its base name, then leaves the last block queued (call sl_sender_flush).
 * SL_ERR_IO if the file cannot be opened or read (errno kept), or shrinks
 * while being read; SL_ERR_RANGE if its base name is empty or too long.
 * Cost: one read(2) and one block per payload-full of data. */
__attribute__((warn_unused_result))
sl_err sl_filesend_file(struct sl_sender *snd, const char *path, uint32_t file_id,
                        sl_filesend_progress_fn progress, void *ctx);

#endif
