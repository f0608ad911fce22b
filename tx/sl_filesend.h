/* Sends whole files over the file channel through an sl_sender (same FEC,
 * signing and pacing as the tag channel). Each file becomes FILE_BEGIN +
 * FILE_DATA... + FILE_END_TREE messages (proto/sl_fmsg.h); data is read
 * from disk straight into block payloads, always last in its block, and
 * hashed once there: that SHA-256 (the chunk's leaf) is both the block's
 * split digest and an entry of the file's tree digest (sl_ftree.h), so
 * each file byte is hashed once and memory stays one block whatever the
 * file size.
 *
 * Two ways in: sl_filesend_file sends a whole file at once (bulk mode), and
 * a job (sl_filesend_open / _step / _close) sends one block per step, so
 * the daemon's loop can pace a file against its rate share and keep beacons
 * and tag blocks going between steps (tx/sl_spool.h). */
#ifndef SL_FILESEND_H
#define SL_FILESEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "sl_err.h"
#include "sl_ftree.h"
#include "sl_sender.h"
#include "sl_wire.h"

/* Called after every block with bytes sent so far of this file. */
typedef void (*sl_filesend_progress_fn)(void *ctx, const char *name, uint64_t done, uint64_t total);

/* One file being sent. The caller owns the struct; _open fills it. */
struct sl_filesend {
    int fd;                     /* owned, -1 when closed */
    uint32_t file_id;
    uint64_t size;              /* at open: what FILE_BEGIN announces */
    uint64_t sent;              /* data bytes in committed blocks */
    bool begun, ended;
    bool digested;              /* digest final (FILE_END_TREE retried after a link error) */
    uint8_t digest[SL_FILE_SHA256_BYTES];   /* the tree digest */
    struct stat st;             /* at open: the change check compares with it */
    struct sl_ftree_acc tree;   /* the chunks' leaves so far, owned */
    char name[SL_FILE_NAME_MAX + 1];
};

/* Starts a job on fd (a regular file, open for reading; owned by the job
 * from here on, closed by sl_filesend_close even on error) sent as file_id
 * (unique within the TX session) under name. SL_ERR_RANGE if name is empty
 * or longer than SL_FILE_NAME_MAX, SL_ERR_IO if fd is not a regular file,
 * SL_ERR_NOMEM. Allocates one digest context (the tree's). */
__attribute__((warn_unused_result))
sl_err sl_filesend_open(struct sl_filesend *fs, int fd, const char *name, uint32_t file_id);

/* Writes and commits the next block of the job: FILE_BEGIN with the first
 * data, then data, and once every byte has gone, FILE_END_TREE with the
 * tree digest (in the block of the last data, before it, when it fits
 * there, else in one of its own at the next step).
 * Before FILE_END_TREE the file is fstat'ed again: if its size, mtime, inode or
 * device differ from the open's, nothing more is sent and SL_ERR_MISMATCH
 * is returned (the copy on RX never completes; resend it as a new file id).
 * A file that shrank while read is SL_ERR_MISMATCH too, a read error
 * SL_ERR_IO (errno kept). The sender's own result goes to *link apart: a
 * block that was committed counts as sent even when the link then lost
 * frames (FEC or another copy covers it); when no block could be had,
 * *link says why and nothing moved (try again later). *done is set once
 * FILE_END_TREE is committed. Cost: one pread, one SHA-256 pass over the
 * data read, and one block. */
__attribute__((warn_unused_result))
sl_err sl_filesend_step(struct sl_filesend *fs, struct sl_sender *snd, bool *done, sl_err *link);

/* Closes the file and frees the digest context; safe twice and on a zeroed
 * job whose fd is -1. */
void sl_filesend_close(struct sl_filesend *fs);

/* True when st describes a different file, or the same file changed, than
 * the job's stat at open (size, mtime, inode, device). */
bool sl_filesend_changed(const struct sl_filesend *fs, const struct stat *st);

/* Sends the file at path as file_id under its base name in one go, then
 * leaves the last block queued (call sl_sender_flush). SL_ERR_IO if the file
 * cannot be opened or read (errno kept), SL_ERR_MISMATCH if it changed while
 * read; SL_ERR_RANGE if its base name is empty or too long. */
__attribute__((warn_unused_result))
sl_err sl_filesend_file(struct sl_sender *snd, const char *path, uint32_t file_id,
                        sl_filesend_progress_fn progress, void *ctx);

#endif
