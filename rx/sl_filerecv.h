/* The file channel's receiving end ([files] directory = DIR): rebuilds
 * files from FILE_BEGIN / FILE_DATA / FILE_END messages of verified blocks
 * (proto/sl_fmsg.h) and publishes each one only whole and verified.
 *
 * A file is written to a hidden temporary name in the directory
 * (".sluice-part-<session>-<id>", mode 0600, O_EXCL), at the offsets the
 * messages give (blocks may complete out of order). It is published when
 * every byte has arrived and FILE_END has given the size and SHA-256: the
 * temporary file is fsync'd, read back and hashed, and linked into place
 * under its sanitised name; link(2) never replaces an existing file, so a
 * name that exists gets ".1", ".2", ... appended (logged). The directory is
 * fsync'd. A file that cannot be completed (data lost beyond FEC, hash
 * mismatch, disk full, inconsistent sizes, timed out) is discarded, logged
 * by name and counted; nothing partial is ever visible under a real name.
 *
 * Names are sanitised: '/', '\\', control characters and DEL become '_'; a
 * name starting with '.' (including "." and "..") gets a leading '_'. */
#ifndef SL_FILERECV_H
#define SL_FILERECV_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_fmsg.h"

#define SL_FILERECV_SLOTS_DEFAULT 16u

struct sl_filerecv_config {
    const char *directory;      /* must exist; opened once (O_DIRECTORY) */
    unsigned slots;             /* files in progress at once (1..1024) */
    uint64_t max_bytes;         /* largest file accepted; 0 = no limit */
    uint64_t idle_timeout_us;   /* discard a file with no progress this long */
    /* One line per file outcome (published, renamed, discarded + reason). */
    void (*log)(void *ctx, int ok, const char *line);
    void *ctx;
};

struct sl_filerecv_stats {
    uint64_t files_ok;          /* published whole and verified */
    uint64_t files_renamed;     /* of which got a ".N" suffix (name existed) */
    uint64_t files_failed;      /* discarded, any reason */
    uint64_t failed_incomplete; /* data missing at FILE_END + timeout, or idle */
    uint64_t failed_hash;       /* SHA-256 mismatch */
    uint64_t failed_io;         /* write/fsync/link errors, e.g. disk full */
    uint64_t failed_invalid;    /* sizes or offsets inconsistent, too big */
    uint64_t failed_busy;       /* no free slot */
    uint64_t bytes_written;
    uint64_t messages_bad;      /* malformed file messages */
    unsigned in_progress;
};

struct sl_filerecv;

/* Opens the directory and allocates the slots. SL_ERR_IO (errno kept) if
 * the directory cannot be opened, SL_ERR_RANGE for a bad config. */
__attribute__((warn_unused_result))
sl_err sl_filerecv_create(struct sl_filerecv **out, const struct sl_filerecv_config *cfg);

/* Discards every file still in progress (logged) and frees everything. */
void sl_filerecv_destroy(struct sl_filerecv *fr);

/* Applies the file messages in one verified block payload of the given TX
 * session. Malformed messages are counted and skipped (the rest of the
 * payload is not trusted past a framing error). Cost: one pwrite per
 * FILE_DATA; at completion one read-back pass over the file for SHA-256. */
void sl_filerecv_payload(struct sl_filerecv *fr, uint64_t session, const uint8_t *payload, size_t len,
                         uint64_t now_us);

/* Discards files idle for longer than idle_timeout_us. */
void sl_filerecv_tick(struct sl_filerecv *fr, uint64_t now_us);

void sl_filerecv_stats(const struct sl_filerecv *fr, struct sl_filerecv_stats *out);

/* The sanitised form of name into out (cap >= SL_FILE_NAME_MAX + 2). */
void sl_filerecv_sanitize(char *out, size_t cap, const char *name);

#endif
