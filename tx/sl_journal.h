/* The TX change journal: every value change, with its source time and a
 * per-TX change sequence number, appended to a bounded on-disk journal under
 * state_dir, so that history can be re-sent later (backfill) to an RX that
 * missed it. sluice-tx's snapshot engine appends, its flusher thread
 * (sl_journald.h) commits, the backfill carousel reads.
 *
 * Threads: one appender (the snapshot engine: sl_journal_append), one
 * flusher (a non-hot thread: sl_journal_flush and sl_journal_trim, ~every
 * 100 ms), any number of readers (sl_journal_iter_*, sl_journal_tag_read),
 * each with its own iterator; open and close with none of them running.
 * Appends encode into an in-memory buffer under a mutex that the flusher
 * takes only to swap two buffers (O(1), never across I/O), so an append
 * never waits on the disk. The flusher writes the swapped buffer with one
 * pwrite per segment and fdatasync (group commit).
 *
 * Sequence numbers start at 1, strictly increase, and are never reused,
 * even after a crash that lost records still in memory or tore the tail of
 * a file: the journal persists a high-water mark (the file "mark")
 * seq_reserve numbers ahead of the last one handed out, refreshed by the
 * flusher, and a reopened journal continues above both that mark and the
 * last valid record. The mark file's blocks are allocated at open and
 * rewritten in place (two CRC'd slots, pwrite + fdatasync), so it moves on a
 * full disk too: seqs handed out (and sent live) while the disk is full are
 * never handed out again after a restart. Numbers that never reach the disk (lost in memory, or
 * skipped after a restart) are written as a GAP record, so a reader can tell
 * a void range from a missing one.
 *
 * Bounds: max_bytes on disk (whole segments deleted oldest first; checked
 * at every flush), window_s (sl_journal_trim), two buffers of buffer_bytes in
 * memory; appends beyond a full buffer while the disk fails are counted as
 * lost, never blocked. A damaged file never crashes the reader: every length
 * is checked against the file and every block against its CRC32C; the valid
 * part of a segment ends at its first bad block. Format: docs/history.md.
 *
 * Identity: a journal has a random non-zero 64-bit journal_id made when it
 * is created and kept in the file "id" beside the segments; the seqs belong
 * to it. A wiped directory is a new journal with a new id, so a receiver
 * never mistakes reused seqs for ones it already holds. A lost id, or
 * records made with other tag maps (cfg->schema_fp against the file
 * "schema"), also make a new id, and the segments found are deleted rather
 * than served under it (RX would store them twice, or under other tags). */
#ifndef SL_JOURNAL_H
#define SL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_JOURNAL_MAX_BYTES_DEFAULT (256ull << 20)   /* [backfill] max_bytes */
#define SL_JOURNAL_WINDOW_S_DEFAULT 86400u            /* [backfill] window_s */
#define SL_JOURNAL_BUFFER_DEFAULT (8u << 20)          /* per buffer (two) */
#define SL_JOURNAL_RESERVE_DEFAULT (1ull << 22)       /* seq numbers persisted ahead */
#define SL_JOURNAL_SEGMENT_MIN (64u << 10)
#define SL_JOURNAL_SEGMENT_MAX (64u << 20)
#define SL_JOURNAL_DIR_NAME "journal"                 /* under state_dir */

struct sl_journal_config {
    const char *dir;            /* created 0700 if missing (its parent must exist) */
    uint64_t max_bytes;         /* 0: SL_JOURNAL_MAX_BYTES_DEFAULT */
    uint64_t window_s;          /* 0: SL_JOURNAL_WINDOW_S_DEFAULT */
    uint64_t segment_bytes;     /* 0: max_bytes / 16; clamped to [SEGMENT_MIN,
                                 * SEGMENT_MAX] and at most max_bytes / 4 */
    size_t buffer_bytes;        /* 0: SL_JOURNAL_BUFFER_DEFAULT; at least 64 KiB */
    uint64_t seq_reserve;       /* 0: SL_JOURNAL_RESERVE_DEFAULT */
    uint64_t epoch;             /* the TX epoch, written in each segment header */
    uint64_t schema_fp;         /* the tag map's fingerprint (non-zero; 0: not
                                 * checked): kept in the file "schema"; a
                                 * journal made with another one is renewed
                                 * (new id, its segments deleted) */
    bool no_sync;               /* skip fdatasync (benchmarks and tests only) */
};

/* Counters since open (sl_journal_stats). The open_* ones describe what
 * the opening scan found: the caller logs them once. */
struct sl_journal_stats {
    uint64_t appended;          /* records accepted by sl_journal_append */
    uint64_t lost;              /* appends dropped: both buffers full (disk failing) */
    uint64_t unreserved;        /* seqs handed out above the persisted mark */
    uint64_t flushed;           /* records written and synced (gap records included) */
    uint64_t write_errors;      /* failed flushes (ENOSPC, EIO, EFBIG) */
    uint64_t trimmed_segments;  /* segments deleted by max_bytes or window_s */
    uint64_t read_errors;       /* blocks found damaged by readers after open */
    uint64_t bytes;             /* on disk, valid parts of all segments */
    uint64_t segments;
    uint64_t next_seq;          /* the next seq append hands out */
    uint64_t oldest_seq;        /* first seq still on disk (0: none) */
    uint64_t oldest_time_us;    /* oldest source time in the oldest segment
                                 * holding a value (0: none) */
    uint64_t open_torn_bytes;   /* cut from the newest segment's tail at open */
    uint64_t open_bad_segments; /* segments whose valid part ends early, or
                                 * with a bad header (deleted) */
    bool open_mark_lost;        /* mark file missing or damaged while
                                 * segments exist: seqs jumped 2 * reserve */
    bool open_id_renewed;       /* id file missing or damaged while segments
                                 * exist: a new journal_id was made (and the
                                 * segments deleted) */
    bool open_schema_changed;   /* made with another tag map (schema_fp): a new
                                 * journal_id, the segments deleted */
    uint64_t open_discarded_segments; /* deleted by the two above */
    uint64_t clock_step_us;     /* the largest forward wall-clock step the window
                                 * trim saw (sl_journal_trim_clocks) */
    uint64_t journal_id;        /* sl_journal_id */
};

enum sl_journal_kind {
    SL_JOURNAL_VALUE = 0,       /* one value change */
    SL_JOURNAL_GAP = 1,         /* seqs [seq, seq + count) exist nowhere */
};

/* One record as read back. */
struct sl_journal_rec {
    uint64_t seq;
    uint64_t count;             /* 1 for a value; the gap's length */
    uint64_t source_time_us;    /* value only */
    uint64_t raw;               /* value only: the register image bits */
    uint32_t tag_id;
    uint32_t quality;           /* OPC UA StatusCode */
    uint8_t type;               /* SL_TYPE_* (any value 0..15 round-trips) */
    uint8_t kind;               /* enum sl_journal_kind */
};

struct sl_journal;
struct sl_journal_iter;

/* Opens (or creates) the journal in cfg->dir: scans every segment (start-up
 * cost: one read and CRC of the valid bytes, ~max_bytes), truncates the
 * newest segment's torn tail, deletes segments with a bad header, recovers
 * the next seq, and persists a new mark. SL_ERR_IO (errno) when the
 * directory or the mark cannot be made; SL_ERR_RANGE for a config out of
 * range, or when the next seq would pass 2^61 (only a damaged or forged
 * journal claims that many: move it away; half the wire's limit
 * SL_HREC_SEQ_LIMIT, so every seq a run hands out can be sent);
 * SL_ERR_NOMEM. *out is NULL on failure; a failed open writes no mark and
 * no record. */
__attribute__((warn_unused_result))
sl_err sl_journal_open(struct sl_journal **out, const struct sl_journal_config *cfg);

/* The same in an already open directory dir_fd (duplicated; the caller
 * keeps its own): cfg->dir is then not used (may be NULL). sluice-tx opens
 * the directory before it drops privileges and seccomp, and everything
 * the journal creates, renames and deletes goes through that descriptor. */
__attribute__((warn_unused_result))
sl_err sl_journal_open_at(struct sl_journal **out, const struct sl_journal_config *cfg, int dir_fd);

/* The journal's id: random, non-zero, fixed for the journal's life (the
 * file "id"). Any thread. */
uint64_t sl_journal_id(const struct sl_journal *j);

/* Flushes what it can (errors ignored) and frees. After a complete flush
 * the mark is set to exactly the next seq, so a clean restart continues
 * without a gap. NULL: no-op. */
void sl_journal_close(struct sl_journal *j);

/* Appends one value change and sets *seq_out (may be NULL) to its seq.
 * Never blocks on the disk, never allocates: when both buffers are full
 * (flushes failing) the record is counted lost, still gets its seq (the
 * caller may have sent it live) and SL_OK is returned; the lost range is
 * written as a GAP later. SL_ERR_RANGE (no seq) for type > 15 or at
 * SL_HREC_SEQ_LIMIT (not reached: see open). Cost: a
 * mutex and ~10-20 encoded bytes. One appender thread. */
sl_err sl_journal_append(struct sl_journal *j, uint32_t tag_id, uint64_t source_time_us,
                         uint64_t raw, uint8_t type, uint32_t quality, uint64_t *seq_out);

/* The same for a run of appends under one lock: begin, any number of
 * sl_journal_append_held (each exactly as sl_journal_append), end. The
 * flusher waits for end, so keep a run short (the snapshot holds it for
 * at most SL_SNAPSHOT_JOURNAL_RUN appends, a few tens of µs; the mutex is
 * not fair, so back-to-back runs can keep the flusher waiting for several,
 * as a lock per append could); nothing else
 * on the journal may be called in between by the same thread. Saves a
 * mutex pair per change on the appender's hot path. */
void sl_journal_append_begin(struct sl_journal *j);
sl_err sl_journal_append_held(struct sl_journal *j, uint32_t tag_id, uint64_t source_time_us,
                              uint64_t raw, uint8_t type, uint32_t quality, uint64_t *seq_out);
void sl_journal_append_end(struct sl_journal *j);

/* Group commit: first refreshes the persisted seq mark when fewer than
 * seq_reserve / 2 are left, then writes everything appended so far, syncs
 * it, rotates segments at segment_bytes and deletes the oldest segments
 * above max_bytes. On failure (SL_ERR_IO, errno kept: ENOSPC, EFBIG, EIO) no
 * partial block stays in the file and the records stay in memory for the
 * next call. One flusher thread. */
__attribute__((warn_unused_result))
sl_err sl_journal_flush(struct sl_journal *j);

/* Deletes whole segments, oldest first, while the journal is above
 * max_bytes or the segment's newest source time is older than
 * now_us - window_s. The segment being written is never deleted. Returns
 * SL_ERR_IO when an unlink failed (the rest is still done). Flusher thread. */
sl_err sl_journal_trim(struct sl_journal *j, uint64_t now_us);
/* The same with both clocks (the flusher): a segment's age is measured as
 * if the wall clock had not been stepped forward since the segment was
 * written (wall - monotonic then and now), so a step forward does not
 * delete the backlog; its records age from then on at the monotonic
 * clock's rate. A step back only keeps segments longer. */
sl_err sl_journal_trim_clocks(struct sl_journal *j, uint64_t wall_us, uint64_t mono_us);

/* A copy of the counters. Any thread. */
void sl_journal_stats(struct sl_journal *j, struct sl_journal_stats *out);

/* Readers: an iterator over the flushed part of the journal, allocated once
 * (one 64 KiB block buffer) and re-positioned as often as needed. The
 * segments are taken as they are at the seek; later appends are not seen
 * until the next seek, and segments trimmed meanwhile are skipped. */
__attribute__((warn_unused_result))
sl_err sl_journal_iter_new(struct sl_journal_iter **out, struct sl_journal *j);
void sl_journal_iter_free(struct sl_journal_iter *it);

/* Positions for the carousel: segments newest first, records inside a
 * segment in append order, only segments and records whose source time is
 * >= since_us (gaps are always returned). */
__attribute__((warn_unused_result))
sl_err sl_journal_iter_newest(struct sl_journal_iter *it, uint64_t since_us);

/* Positions at seq: records with seq >= from_seq (a gap that contains it
 * included) in increasing seq order, across segments. */
__attribute__((warn_unused_result))
sl_err sl_journal_iter_from_seq(struct sl_journal_iter *it, uint64_t from_seq);

/* The next record: SL_OK; SL_ERR_EOF at the end. A damaged block ends its
 * segment (counted in read_errors) and iteration goes on with the next one.
 * *first_of_segment (may be NULL) is the first seq of the record's segment,
 * so the carousel can tell where a segment starts. */
__attribute__((warn_unused_result))
sl_err sl_journal_iter_next(struct sl_journal_iter *it, struct sl_journal_rec *rec,
                            uint64_t *first_of_segment);

/* One tag's values with from_us <= source time < to_us, in source-time
 * order (ties in seq order), into out (cap records); *n is set. Scans the
 * segments whose time range overlaps (reusing it). SL_ERR_OVERFLOW when
 * more than cap matched: out then holds the first cap in seq order, sorted. */
__attribute__((warn_unused_result))
sl_err sl_journal_tag_read(struct sl_journal_iter *it, uint32_t tag_id, uint64_t from_us,
                           uint64_t to_us, struct sl_journal_rec *out, size_t cap, size_t *n);

#endif
