/* History channel codec: HISTORY messages (SL_MSG_HISTORY on
 * SL_CHANNEL_HISTORY), the backfill carousel's unit. Byte by byte in
 * docs/protocol-messages.md.
 *
 * A HISTORY message carries the sending journal's status (its id, the
 * oldest seq it still holds, the next seq it will hand out) and a list of
 * journal records: value changes and GAP ranges (seqs that exist nowhere).
 * Records are grouped in per-tag runs; inside a run seqs, source times and
 * values are delta-coded (times delta-of-delta, all as zig-zag varints; no
 * schema repeated), so a steadily polled analog tag costs a few bytes per
 * change. A message with no record is valid: it still carries the status.
 *
 * Encoding: a writer over the caller's payload buffer, like sl_msg's: each
 * append fits or returns SL_ERR_CAPACITY leaving the payload valid and
 * untouched; the writer opens a new message when a body reaches
 * SL_MSG_BODY_MAX. Records are validated with the decoder's rules (value
 * type and raw width as sl_msg_value_check, seq >= 1, seq + count within
 * 2^62, gap count >= 1), so TX can never emit a record RX would refuse.
 *
 * Decoding: sl_hmsg_reader_init checks the whole payload (every message,
 * every varint, every record) before the first record is handed out; a
 * payload that fails yields nothing. Nothing is allocated.
 *
 * Pure code: no I/O, no clock, no global state. */
#ifndef SL_HMSG_H
#define SL_HMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_wire.h"

#define SL_HREC_VALUE 0u    /* one value change */
#define SL_HREC_GAP   1u    /* seqs [seq, seq + count) exist nowhere */
#define SL_HREC_SEQ_LIMIT (1ull << 62)   /* seq + count never passes this */

/* The journal's status, in every HISTORY message. */
struct sl_hstatus {
    uint64_t journal_id;    /* random at the journal's creation, never 0 */
    uint64_t oldest_seq;    /* first seq the journal still holds (0: empty) */
    uint64_t next_seq;      /* every seq below was handed out (>= 1) */
};

/* One journal record (the same fields as the TX journal's record). */
struct sl_hrec {
    uint64_t seq;               /* >= 1 */
    uint64_t count;             /* 1 for a value; the gap's length (>= 1) */
    uint64_t source_time_us;    /* value only */
    uint64_t raw;               /* value only: bit pattern as sl_value.raw */
    uint32_t tag_id;            /* value only */
    uint32_t quality;           /* value only: OPC UA StatusCode */
    uint8_t type;               /* value only: SL_TYPE_* */
    uint8_t kind;               /* SL_HREC_* */
};

/* SL_OK when r can cross the wire (the rules above), else SL_ERR_TYPE or
 * SL_ERR_RANGE. O(1). */
__attribute__((warn_unused_result))
sl_err sl_hmsg_rec_check(const struct sl_hrec *r);

/* ---- writer -------------------------------------------------------------- */

/* Private: the delta state shared by writer and reader. prev_seq and
 * prev_time live per message; the rest restarts with every run. */
struct sl_hmsg_ctx {
    uint64_t prev_seq, prev_time, prev_dt, prev_raw;
    uint32_t prev_quality;
    uint32_t run_tag;       /* value runs */
    uint32_t run_count;     /* writer: records in the run; reader: records left */
    uint8_t run_kind;       /* run header byte: 0 GAP run, else the value type */
    bool run_open;          /* writer: a run is open; reader: next is its first record */
};

struct sl_hmsg_writer {
    uint8_t *p;             /* payload buffer, not owned */
    size_t cap;
    size_t off;             /* bytes of complete messages and the open one */
    size_t msg_off;         /* where the open message starts (its header) */
    bool open;              /* a message is open */
    struct sl_hstatus st;
    size_t run_count_off;   /* the open run's u16 record count */
    struct sl_hmsg_ctx c;
};

/* Starts an empty payload over buf[0..cap) whose messages carry *st.
 * SL_ERR_RANGE for an invalid status (journal_id 0, next_seq 0 or above
 * SL_HREC_SEQ_LIMIT, oldest_seq above next_seq). */
__attribute__((warn_unused_result))
sl_err sl_hmsg_writer_init(struct sl_hmsg_writer *w, void *buf, size_t cap, const struct sl_hstatus *st);

/* Appends one record. SL_ERR_CAPACITY when it does not fit (the payload
 * stays valid: finish it and carry r over to the next one); SL_ERR_TYPE /
 * SL_ERR_RANGE for a record sl_hmsg_rec_check refuses (nothing written). */
__attribute__((warn_unused_result))
sl_err sl_hmsg_put(struct sl_hmsg_writer *w, const struct sl_hrec *r);

/* Closes the open message and returns the payload length. A writer with no
 * record yet still writes one message (the status alone), so an idle
 * journal's status reaches RX. 0 when not even that fits. */
size_t sl_hmsg_finish(struct sl_hmsg_writer *w);

/* ---- reader -------------------------------------------------------------- */

struct sl_hmsg_reader {
    struct sl_buf b;        /* the payload; empty after a failed init */
    struct sl_hstatus st;   /* status of the message being read */
    /* decoder state (private) */
    struct sl_buf body;     /* rest of the message being read */
    struct sl_hmsg_ctx c;
};

/* Checks the whole payload[0..len) (only HISTORY messages; any other type is
 * SL_ERR_TYPE; framing, varints, counts and records: SL_ERR_TRUNCATED,
 * SL_ERR_LENGTH, SL_ERR_TRAILING, SL_ERR_HEADER, SL_ERR_RANGE, SL_ERR_TYPE),
 * and readies r. Every message of one payload must carry the same status
 * (else SL_ERR_HEADER). *st (may be NULL) gets it. An empty payload is
 * SL_ERR_TRUNCATED. O(len). */
__attribute__((warn_unused_result))
sl_err sl_hmsg_reader_init(struct sl_hmsg_reader *r, const void *payload, size_t len, struct sl_hstatus *st);

/* Next record of a checked payload; false (and *out zeroed) at the end.
 * Cannot fail after a successful init. */
bool sl_hmsg_next(struct sl_hmsg_reader *r, struct sl_hrec *out);

#endif
