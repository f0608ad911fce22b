/* RX history ([history]): the rx-hist thread's logic (docs/history.md "RX
 * history").
 *
 * Intake copies every tag-channel and history-channel payload into the
 * history queue; the rx-hist thread hands each to sl_history_payload, which
 * decodes DELTA_SEQ (live) and HISTORY (backfill) messages, maps each
 * value's tag id to PATH/NAME, type, scale and offset through the mirror's
 * schema, and keeps the value as a pending row when its (journal, seq) was
 * never received. sl_history_tick commits the pending rows together with
 * the changed journals' accounting in one transaction (every
 * SL_HISTORY_BATCH_MS or SL_HISTORY_BATCH_ROWS rows); a failed commit keeps
 * everything pending and is retried (back-off), so nothing is lost but
 * what the pending room cannot hold, and that stays missing for the
 * backfill carousel's next pass.
 *
 * Gap accounting, per TX journal (journal_id):
 *   done     an interval set of seqs received, void (GAP records) or lost
 *   floor    seqs below it are all done (the set keeps nothing below)
 *   base     the journal's oldest_seq in the first status RX saw from it
 *            (next_seq when that journal was empty); floor starts there
 *   next     the journal's next_seq in its latest status
 *   missing  seqs in [floor, next) not in done
 * A status whose oldest_seq passes floor makes the missing seqs below it
 * lost (counted) and moves floor up. Memory is bounded: at most
 * SL_HISTORY_RANGES ranges per journal, allocated as holes appear (past it
 * the lowest hole is counted lost, yet its seqs are still taken when they
 * come: the set's given_up_hi) and SL_HISTORY_JOURNALS journals (a status
 * of a new one retires the one heard of longest ago; a silent journal is
 * retired too; their missing seqs count lost).
 *
 * Not thread-safe: one thread (rx-hist) calls everything but
 * sl_history_stats' reader, which takes a copy the owner published. */
#ifndef SL_HISTORY_H
#define SL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_histdb.h"

struct sl_mirror;

#define SL_HISTORY_RANGES       262144u  /* interval ranges per journal at most (24 B each: 6 MB) */
#define SL_HISTORY_JOURNALS     8u       /* TX journals tracked at once */
#define SL_HISTORY_BATCH_MS     200u     /* a pending row waits at most this long for its commit */
#define SL_HISTORY_BATCH_ROWS   20000u   /* ... or this many rows make a batch */
#define SL_HISTORY_PENDING_ROWS 200000u  /* rows kept while the database fails (about 15 MB) */
#define SL_HISTORY_RETRY_MS     1000u    /* first retry after a failed batch; doubles to 30 s */
#define SL_HISTORY_RETAIN_MS    3600000u /* retention runs at open and this often */
#define SL_HISTORY_FUTURE_US    86400000000ull  /* source times beyond now + this are refused (counted) */
#define SL_HISTORY_WINDOW_MAX   (1ull << 32)    /* a first status's next - oldest at most (seqs) */
#define SL_HISTORY_JUMP_SEQS    (1ull << 20)    /* next_seq may grow by this ... */
#define SL_HISTORY_JUMP_PER_S   1000000ull      /* ... plus this per second since the journal was last heard */
#define SL_HISTORY_IDLE_US      600000000ull    /* a journal silent this long while another talks is retired */
#define SL_HISTORY_STALE_US     (2ull * 86400000000ull)  /* ... and any journal silent this long */
#define SL_HISTORY_NO_STATUS_MS 60000u          /* no journal status this long: warned, flagged */
#define SL_HISTORY_SAVE_RANGES  4096u    /* a set of more ranges is saved ... */
#define SL_HISTORY_SAVE_MS      10000u   /* ... at most this often (and at stop) */

/* ---- the interval set (pure; exposed for the tests) ---------------------- */

struct sl_ivrange {
    uint64_t lo, hi;    /* [lo, hi) */
    uint64_t t_us;      /* source time of seq lo when it came as a value; 0 unknown */
};

struct sl_ivset {
    struct sl_ivrange *r;   /* sorted, disjoint, non-adjacent; r[0..n) lies in base[0..alloc) */
    struct sl_ivrange *base;/* the allocation: ranges dropped or filled at the front move r up, O(1) */
    uint32_t n, alloc, cap; /* used, allocated, at most */
    uint64_t total;         /* seqs in the set */
    uint64_t given_up_hi;   /* given-up holes all lie below this; 0 none */
};

sl_err sl_ivset_init(struct sl_ivset *s, uint32_t cap);
void sl_ivset_free(struct sl_ivset *s);
/* True when seq is in the set. O(log n). */
bool sl_ivset_has(const struct sl_ivset *s, uint64_t seq);
/* Adds [lo, hi) (t_us: source time of lo, 0 unknown); returns how many seqs
 * were new. When the set would exceed cap ranges, the lowest hole is
 * filled first, its length added to *forced (the caller counts it lost)
 * and given_up_hi raised past it (seqs below it may be given up, not
 * received). O(n) worst case, O(log n) for the common append. */
uint64_t sl_ivset_add(struct sl_ivset *s, uint64_t lo, uint64_t hi, uint64_t t_us, uint64_t *forced);
/* Seqs of [lo, hi) in the set. O(n). */
uint64_t sl_ivset_count(const struct sl_ivset *s, uint64_t lo, uint64_t hi);
/* Drops everything below floor. */
void sl_ivset_trim(struct sl_ivset *s, uint64_t floor);

/* ---- one journal's accounting (pure; exposed for the tests) --------------- */

struct sl_hjournal {
    uint64_t id;            /* 0 = free slot */
    bool have_status;
    uint64_t base, floor, next;
    struct sl_ivset done;
    uint64_t last_us;       /* wall time last heard of (retirement order) */
    uint64_t status_us;     /* wall time of its last status (the seq jump bound) */
    uint64_t missing_since_us;  /* when missing last went above 0 */
    bool dirty;             /* changed since its blob was last saved */
    bool saving;            /* its blob is in the open batch */
    uint64_t save_due_ms;   /* a large set is saved again not before this */
};

sl_err sl_hjournal_init(struct sl_hjournal *j, uint64_t id);
void sl_hjournal_free(struct sl_hjournal *j);
/* A status (oldest_seq 0: empty journal). Returns seqs that became lost. */
uint64_t sl_hjournal_status(struct sl_hjournal *j, uint64_t oldest_seq, uint64_t next_seq, uint64_t now_us);
/* True when seq is new (neither received, void nor below floor). */
bool sl_hjournal_want(const struct sl_hjournal *j, uint64_t seq);
/* Marks [seq, seq + count) done: a received value (t_us its source time)
 * or a GAP (t_us 0). Returns seqs the range bound forced to lost. */
uint64_t sl_hjournal_mark(struct sl_hjournal *j, uint64_t seq, uint64_t count, uint64_t t_us);
/* Missing seqs (0 before the first status). */
uint64_t sl_hjournal_missing(const struct sl_hjournal *j);
/* Estimated age of the oldest missing change at now_us, 0 when none: now -
 * source time of the first received change after the first hole; without
 * one, now - missing_since_us. */
uint64_t sl_hjournal_oldest_age_us(const struct sl_hjournal *j, uint64_t now_us);
/* The saved state (versioned, varint-coded). SL_ERR_OVERFLOW if cap is too
 * small (SL_HISTORY_BLOB_MAX always fits). */
#define SL_HISTORY_BLOB_MAX (64u + (size_t)SL_HISTORY_RANGES * 30u)
sl_err sl_hjournal_encode(const struct sl_hjournal *j, uint8_t *out, size_t cap, size_t *len);
/* Restores j (initialised with its id) from a blob; a bad blob is
 * SL_ERR_HEADER and leaves j empty (its seqs count missing again once a
 * status comes: the backfill re-sends them, the database ignores repeats). */
sl_err sl_hjournal_decode(struct sl_hjournal *j, const void *blob, size_t len);

/* ---- the rx-hist thread's state -------------------------------------------- */

struct sl_history_config {
    struct sl_histdb_config db;
    struct sl_mirror *mirror;
    int mirror_slot;            /* a reader slot for this thread */
    uint32_t batch_ms;          /* 0: SL_HISTORY_BATCH_MS */
    uint32_t batch_rows;        /* 0: SL_HISTORY_BATCH_ROWS */
    uint32_t pending_rows;      /* 0: SL_HISTORY_PENDING_ROWS */
};

struct sl_history_stats {
    uint64_t rows;              /* committed */
    uint64_t backfill_rows;     /* of rows, those that came by backfill (gaps healed) */
    uint64_t duplicates;        /* values already received (not inserted) */
    uint64_t lost;              /* seqs declared lost */
    uint64_t write_failures;    /* failed batches */
    uint64_t unknown_tag;       /* values whose tag id the schema lacks (skipped, still missing) */
    uint64_t dropped;           /* values refused for lack of pending room (still missing) */
    uint64_t bad_payloads;      /* payloads the decoders refused */
    uint64_t bad_time;          /* values with a source time outside 1970..now + 1 day or past retention (not stored) */
    uint64_t bad_seq;           /* statuses and values whose seq jumps beyond the bound (refused) */
    uint64_t schema_mismatch;   /* backfilled values whose type differs from the schema's (not stored, lost) */
    uint64_t unsequenced;       /* DELTA values without a seq: TX's journal is off, not recorded */
    uint64_t retired;           /* journals retired (slot bound, or silent) */
    bool no_status;             /* gauge: [history] on, no journal status for SL_HISTORY_NO_STATUS_MS */
    uint64_t retained_rows;     /* rows retention dropped */
    uint64_t missing;           /* gauge: sum over journals */
    uint64_t oldest_age_us;     /* gauge: max over journals */
    uint32_t journals;          /* gauge */
    uint32_t pending;           /* gauge: rows not yet committed */
    bool failing;               /* the last batch failed */
};

struct sl_history;

/* Allocates the state (pending rows, journals); opens nothing. */
__attribute__((warn_unused_result))
sl_err sl_history_create(struct sl_history **out, const struct sl_history_config *cfg);
/* Opens the writer (after the privilege drop), loads the journals, runs
 * retention once. errbuf gets the reason on failure. */
__attribute__((warn_unused_result))
sl_err sl_history_open(struct sl_history *h, uint64_t wall_us, char *errbuf, size_t errcap);
/* One queued payload (channel SL_CHANNEL_TAGS or SL_CHANNEL_HISTORY),
 * received at wall_us. Never fails: what it cannot take is counted. */
void sl_history_payload(struct sl_history *h, uint16_t channel, const uint8_t *p, size_t len, uint64_t wall_us);
/* Intake's filter for a tag-channel payload: true when it holds a DELTA_SEQ
 * or DELTA message (what rx-hist records or counts); KEYFRAME and SCHEMA
 * chunks are not queued. O(messages), no copy. */
bool sl_history_wants_tags(const uint8_t *p, size_t len);
/* The history queue's room: about this many bytes of payload slots
 * (at least 64, at most 4,096 slots of the largest payload). */
#define SL_HISTORY_QUEUE_BYTES (16u << 20)
/* Opens the database first when sl_history_open failed (retried with
 * back-off, logged once per state change as SL-RX-HISTORY-OPEN).
 * Commits when due (or when force), runs retention when due. SL_OK when
 * nothing failed; SL_ERR_IO when the batch failed (logged once per state
 * change, retried later). */
sl_err sl_history_tick(struct sl_history *h, uint64_t mono_ms, uint64_t wall_us, bool force);
void sl_history_stats(const struct sl_history *h, struct sl_history_stats *out, uint64_t wall_us);
/* Rows committed so far (stats' rows), O(1): the owner publishes after a commit. */
uint64_t sl_history_rows(const struct sl_history *h);
/* Closes the writer (no commit: call sl_history_tick(force) first). */
void sl_history_destroy(struct sl_history *h);

#endif
