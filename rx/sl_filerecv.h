/* The file channel's receiving end ([files] directory = DIR): rebuilds
 * files from FILE_BEGIN / FILE_DATA / FILE_END messages of verified blocks
 * (proto/sl_fmsg.h) and publishes each one only whole and verified.
 *
 * A file is written to a hidden temporary name in the directory
 * (".sluice-part-<session>-<id>", mode 0600, O_EXCL), at the offsets the
 * messages give (blocks may complete out of order), only the bytes not
 * already there (a repeat never rewrites). Its blocks are allocated when the
 * size is known (fallocate: a full disk fails the file at the start), and
 * writeback is started every 16 MiB (sync_file_range) so the fsync before
 * publishing is short. It is published when every byte has arrived and
 * FILE_END or FILE_END_TREE has given the size and the digest:
 *  - FILE_END_TREE (tree digest, sl_ftree.h): each FILE_DATA is a chunk
 *    whose leaf is the SHA-256 its block's check already computed when the
 *    block was split at the chunk's data (sl_filerecv_block), else hashed
 *    here; a chunk whose bytes are all new is kept in a list (any order,
 *    appended in O(1), sorted once at the end); a repeat whose bytes are
 *    all there already is skipped (nothing written; a wrong first copy
 *    still fails the digest); a chunk new only in part fails the file
 *    (failed_hash). A slot's lists together hold at most one entry per 512
 *    bytes of the file's own extent, + 2 (its size once known, before that
 *    the highest byte written, both counted against max_total_bytes, so
 *    the quota bounds this memory too: 48 bytes an entry, under 10 % of
 *    the bytes reserved); more fail the file (failed_invalid). No file byte
 *    is read back.
 *  - FILE_END (whole-file SHA-256, older senders): a running SHA-256 of the
 *    contiguous prefix is fed as the data is written; data that arrived
 *    ahead of a hole is read back once the hole fills, only that part.
 * With verify_readback the file is read back after fsync, its cached pages
 * first dropped (POSIX_FADV_DONTNEED, advice the kernel may not fully
 * follow) so the bytes come from the device, and the digest recomputed
 * from them: best effort against a storage or page-cache fault between
 * write and publish. The temporary file is fsync'd, verified and linked
 * into place under its sanitised name; link(2) never replaces an existing file, so a
 * name that exists gets ".1", ".2", ... appended (logged), up to
 * max_versions files of one name; past that the file is refused (logged,
 * failed_versions), never overwritten. The directory is fsync'd. A file that
 * cannot be completed (data lost beyond FEC, hash mismatch, disk full,
 * inconsistent sizes, timed out, over the quota) is discarded, logged by name
 * and counted; nothing partial is ever visible under a real name. Later
 * messages of a discarded file are dropped quietly (messages_dropped).
 *
 * Links: the directory is opened once with O_NOFOLLOW and every operation is
 * relative to that descriptor (openat/linkat/unlinkat), so renaming the
 * directory or swapping it for a symbolic link does not redirect writes;
 * temporaries are created O_CREAT | O_EXCL | O_NOFOLLOW. Temporaries left
 * by a crash are removed when the receiver is created.
 *
 * Quota: max_total_bytes bounds the bytes of regular files in the directory
 * plus the bytes reserved by files in progress (each its announced size, or
 * the highest offset written before the size is known). A file that would
 * pass it is refused (failed_quota, logged at most once a second). The
 * directory's total is scanned in full once, at create, then kept by adding
 * each published file; what IT consumers remove is found by a rescan that
 * runs in steps of at most 256 entries (one fstatat each) at most every
 * 10 ms, from sl_filerecv_payload and sl_filerecv_tick, resuming where it
 * stopped: no call costs more than one step however large the directory
 * (a pass over N entries takes N / 256 steps; files removed meanwhile
 * still count until it ends, so the quota errs on the safe side).
 *
 * Copies: TX may send a file several times under one file id ([files]
 * copies, for a lossy link). Bytes are counted once however often they
 * arrive (a slot keeps the ranges received), so a later copy fills what a
 * lost block left out of an earlier one. Once a file is published, its
 * (session, file id, SHA-256) is remembered (the last 64): later copies are
 * dropped without a write, and their FILE_END with the same digest counted
 * in files_duplicate. A file changed on TX is sent under a new id and still
 * becomes a new version (".1") as above.
 *
 * Slots: `slots` files may be in progress at once. A file TX abandoned
 * (changed while sent: it goes again under a new id, the old id never gets
 * its FILE_END) would hold its slot until idle_timeout_us; so when every
 * slot is taken, a new file id evicts rather than being refused: first the
 * oldest unfinished id of the same TX session before it (TX sends one file
 * id at a time, in order), else the slot idle longest. The same older ids
 * give their reservation back before a file is refused by the quota.
 * Evictions are logged (SL-RX-FILE-EVICTED) and counted (files_evicted, of
 * files_failed); the evicted id's later messages are dropped.
 *
 * Names are sanitised: '/', '\\', control characters and DEL become '_'; a
 * name starting with '.' (including "." and "..") gets a leading '_'. */
#ifndef SL_FILERECV_H
#define SL_FILERECV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_fmsg.h"

#define SL_FILERECV_SLOTS_DEFAULT 16u
#define SL_FILERECV_VERSIONS_DEFAULT 10u   /* NAME, NAME.1 .. NAME.9 */
#define SL_FILERECV_VERSIONS_MAX 1000u
#define SL_FILERECV_TOTAL_DEFAULT (1ull << 30)   /* [files] max_total_bytes: 1 GiB */

struct sl_filerecv_config {
    const char *directory;      /* must exist; opened once (O_DIRECTORY) */
    unsigned slots;             /* files in progress at once (1..1024) */
    uint64_t max_bytes;         /* largest file accepted; 0 = no limit */
    uint64_t idle_timeout_us;   /* discard a file with no progress this long */
    uint64_t max_total_bytes;   /* directory + in progress; 0 = no limit */
    unsigned max_versions;      /* files of one name kept (1..1000); 0 = default 10 */
    bool verify_readback;       /* re-read the file after fsync and check its digest from disk */
    /* One line per file outcome (published, renamed, discarded + reason). */
    void (*log)(void *ctx, int ok, const char *line);
    void *ctx;
};

struct sl_filerecv_stats {
    uint64_t files_ok;          /* published whole and verified */
    uint64_t files_renamed;     /* of which got a ".N" suffix (name existed) */
    uint64_t files_failed;      /* discarded, any reason */
    uint64_t failed_incomplete; /* data missing at FILE_END + timeout, or idle */
    uint64_t failed_hash;       /* digest mismatch, chunks overlapping differently, read-back differs */
    uint64_t failed_io;         /* write/fsync/link errors, e.g. disk full */
    uint64_t failed_invalid;    /* sizes or offsets inconsistent, too big */
    uint64_t files_evicted;     /* unfinished files given up for a newer one (slots or quota full) */
    uint64_t failed_quota;      /* would pass max_total_bytes */
    uint64_t failed_versions;   /* max_versions files of that name exist */
    uint64_t messages_dropped;  /* messages of a file already discarded */
    uint64_t files_duplicate;   /* later copies of a published file (same TX session, id, SHA-256) */
    uint64_t messages_duplicate;/* their messages, dropped without a write */
    uint64_t stale_removed;     /* temporaries of a previous run removed at start */
    uint64_t dir_bytes;         /* regular files in the directory (last pass + published since) */
    uint64_t scan_entries;      /* directory entries stat'ed by the quota scans (one fstatat each) */
    uint64_t scan_passes;       /* full passes over the directory completed (the first at create) */
    uint64_t reserved_bytes;    /* reserved by files in progress */
    uint64_t bytes_written;     /* distinct file bytes written (repeats are not written again) */
    uint64_t readback_bytes;    /* file bytes read back to hash (holes filled late, verify_readback) */
    uint64_t messages_bad;      /* malformed file messages */
    unsigned in_progress;
};

struct sl_filerecv;

/* Opens the directory (O_NOFOLLOW: a symbolic link is SL_ERR_IO with errno
 * ELOOP), removes stale temporaries, scans its size and allocates the
 * slots. SL_ERR_IO (errno kept) if the directory cannot be opened or read,
 * SL_ERR_RANGE for a bad config. */
__attribute__((warn_unused_result))
sl_err sl_filerecv_create(struct sl_filerecv **out, const struct sl_filerecv_config *cfg);

/* Discards every file still in progress (logged) and frees everything. */
void sl_filerecv_destroy(struct sl_filerecv *fr);

/* The next file-channel message of a payload at cursor b: framing
 * (sl_msg_split) and body (sl_fmsg_decode) in one step, as the receiver
 * and sluice-inspect both read them. SL_OK with *m filled, else the
 * decoder's error (framing is then lost for the rest of the payload). */
__attribute__((warn_unused_result))
sl_err sl_filerecv_next(struct sl_buf *b, struct sl_fmsg *m);

/* Applies the file messages in one verified block payload of the given TX
 * session. Malformed messages are counted and skipped (the rest of the
 * payload is not trusted past a framing error). split and leaf are the
 * block's (struct sl_block_hdr): when split != 0 and a FILE_DATA's data is
 * exactly payload[split, len), leaf (SHA-256 of it, computed by the block
 * check) is that chunk's leaf. Cost: one pwrite per FILE_DATA; SHA-256 of
 * the data only where the block check did not already hash it; no read-back
 * pass unless data came out of order for a FILE_END file or
 * verify_readback is on. */
void sl_filerecv_block(struct sl_filerecv *fr, uint64_t session, const uint8_t *payload, size_t len, size_t split,
                       const uint8_t *leaf, uint64_t now_us);

/* sl_filerecv_block without a split (every chunk hashed here). */
void sl_filerecv_payload(struct sl_filerecv *fr, uint64_t session, const uint8_t *payload, size_t len,
                         uint64_t now_us);

/* hurry true: the caller is behind (its queue filling up), so FILE_END
 * files' running SHA-256 is not fed from the messages for now; what it
 * misses is read back later (when no longer hurried, or at the end). Only
 * data writes stay on the path: a queue that overflows loses blocks. */
void sl_filerecv_hurry(struct sl_filerecv *fr, bool hurry);

/* Discards files idle for longer than idle_timeout_us. */
void sl_filerecv_tick(struct sl_filerecv *fr, uint64_t now_us);

void sl_filerecv_stats(const struct sl_filerecv *fr, struct sl_filerecv_stats *out);

/* The sanitised form of name into out (cap >= SL_FILE_NAME_MAX + 2). */
void sl_filerecv_sanitize(char *out, size_t cap, const char *name);

#endif
