#include "sl_hmsg.h"

#include <string.h>

#include "sl_msg.h"

/* HISTORY body (docs/protocol-messages.md has it byte by byte):
 *
 *   journal_id u64, oldest_seq u64, next_seq u64      the status, 24 bytes
 *   then runs until the body ends, each:
 *     kind u8      0: a GAP run; 1..8: a value run of that SL_TYPE_*
 *     tag_id       varint (value runs only, <= 2^32 - 1)
 *     count u16    records in the run, >= 1
 *     count records
 *
 *   value record:  head varint   zigzag(seq - prev_seq) << 1 | q
 *                  time varint   zigzag(dt - prev_dt), dt = time - prev_time
 *                  raw varint    integer types: zigzag(value - prev value),
 *                                signed types sign-extended first;
 *                                floats: raw XOR prev_raw
 *                  quality varint only when q = 1 (else prev_quality)
 *   gap record:    seq varint    zigzag(seq - prev_seq)
 *                  len varint    count - 1
 *
 * prev_seq (the last seq a record covered) and prev_time run on across the
 * runs of a message and start at 0 in each message, so every message
 * decodes alone. prev_dt, prev_raw and prev_quality start at 0 with every
 * run, and the first record of a run leaves prev_dt at 0: its dt spans
 * from another tag's record and says nothing about this tag's period.
 * Differences are taken modulo 2^64, so any 64-bit time round-trips. */

#define STATUS_BYTES   24u
#define RUN_GAP        0u
#define RUN_HDR_MAX    (1u + 5u + 2u)                     /* kind, tag varint, count */
#define REC_MAX        (3u * SL_VARINT_MAX + 5u)          /* head, time, raw, quality */
#define RUN_COUNT_MAX  0xFFFFu

static uint64_t zz_enc(uint64_t v)   /* v holds an int64 modulo 2^64 */
{
    return (v << 1) ^ (uint64_t)-(int64_t)(v >> 63);
}

static uint64_t zz_dec(uint64_t u)
{
    return (u >> 1) ^ (uint64_t)-(int64_t)(u & 1u);
}

/* The value a raw stands for, as the delta is taken: signed types
 * sign-extended (int16 0xFFFF -> -1, so a counter crossing zero costs one
 * byte), others as they are. */
static uint64_t raw_num(uint8_t type, uint64_t raw)
{
    switch (type) {
    case SL_TYPE_INT16: return (uint64_t)(int64_t)(int16_t)(uint16_t)raw;
    case SL_TYPE_INT32: return (uint64_t)(int64_t)(int32_t)(uint32_t)raw;
    default:            return raw;
    }
}

/* Inverse of raw_num: SL_ERR_RANGE when num is outside the type's range,
 * so one raw has exactly one encoding. */
static sl_err num_raw(uint8_t type, uint64_t num, uint64_t *raw)
{
    int64_t s = (int64_t)num;
    switch (type) {
    case SL_TYPE_INT16:
        if (s < INT16_MIN || s > INT16_MAX)
            return SL_ERR_RANGE;
        *raw = num & 0xFFFFu;
        return SL_OK;
    case SL_TYPE_INT32:
        if (s < INT32_MIN || s > INT32_MAX)
            return SL_ERR_RANGE;
        *raw = num & 0xFFFFFFFFu;
        return SL_OK;
    default: {
        struct sl_value v = { .type = type, .raw = num };
        if (sl_msg_value_check(&v) != SL_OK)
            return SL_ERR_RANGE;
        *raw = num;
        return SL_OK;
    }
    }
}

static bool is_float(uint8_t type)
{
    return type == SL_TYPE_FLOAT32 || type == SL_TYPE_FLOAT64;
}

static bool status_ok(const struct sl_hstatus *st)
{
    return st->journal_id != 0 && st->next_seq != 0 && st->next_seq <= SL_HREC_SEQ_LIMIT &&
           st->oldest_seq <= st->next_seq;
}

sl_err sl_hmsg_rec_check(const struct sl_hrec *r)
{
    if (r->kind == SL_HREC_GAP) {
        if (r->seq == 0 || r->count == 0 || r->seq >= SL_HREC_SEQ_LIMIT ||
            r->count > SL_HREC_SEQ_LIMIT - r->seq)
            return SL_ERR_RANGE;
        return SL_OK;
    }
    if (r->kind != SL_HREC_VALUE)
        return SL_ERR_TYPE;
    struct sl_value v = { .tag_id = r->tag_id, .type = r->type, .raw = r->raw };
    sl_err e = sl_msg_value_check(&v);
    if (e != SL_OK)
        return e;
    if (r->count != 1 || r->seq == 0 || r->seq >= SL_HREC_SEQ_LIMIT)
        return SL_ERR_RANGE;
    return SL_OK;
}

/* ---- writer -------------------------------------------------------------- */

static void ctx_reset_msg(struct sl_hmsg_ctx *c)
{
    memset(c, 0, sizeof *c);
}

static void put_status(uint8_t *p, const struct sl_hstatus *st)
{
    sl_be64_put(p, st->journal_id);
    sl_be64_put(p + 8, st->oldest_seq);
    sl_be64_put(p + 16, st->next_seq);
}

sl_err sl_hmsg_writer_init(struct sl_hmsg_writer *w, void *buf, size_t cap, const struct sl_hstatus *st)
{
    memset(w, 0, sizeof *w);
    if (!status_ok(st))
        return SL_ERR_RANGE;
    w->p = buf;
    w->cap = cap;
    w->st = *st;
    return SL_OK;
}

/* Encodes r at out against *c (updated), opening a run when r does not
 * continue the open one; *run_at gets the run's count offset within out,
 * or SIZE_MAX when r joined the open run. Returns the bytes written, at
 * most RUN_HDR_MAX + REC_MAX. */
static size_t enc_rec(struct sl_hmsg_ctx *c, const struct sl_hrec *r, uint8_t *out, size_t *run_at)
{
    bool gap = r->kind == SL_HREC_GAP;
    uint8_t kind = gap ? (uint8_t)RUN_GAP : r->type;
    size_t n = 0;
    *run_at = SIZE_MAX;
    if (!c->run_open || c->run_count >= RUN_COUNT_MAX || c->run_kind != kind ||
        (!gap && c->run_tag != r->tag_id)) {
        out[n++] = kind;
        if (!gap)
            n += sl_varint_put(out + n, r->tag_id);
        *run_at = n;
        out[n++] = 0;
        out[n++] = 0;
        c->run_open = true;
        c->run_kind = kind;
        c->run_tag = gap ? 0 : r->tag_id;
        c->run_count = 0;
        c->prev_dt = 0;
        c->prev_raw = 0;
        c->prev_quality = 0;
    }
    if (gap) {
        n += sl_varint_put(out + n, zz_enc(r->seq - c->prev_seq));
        n += sl_varint_put(out + n, r->count - 1u);
        c->prev_seq = r->seq + r->count - 1u;
    } else {
        bool q = r->quality != c->prev_quality;
        n += sl_varint_put(out + n, (zz_enc(r->seq - c->prev_seq) << 1) | (q ? 1u : 0u));
        uint64_t dt = r->source_time_us - c->prev_time;
        n += sl_varint_put(out + n, zz_enc(dt - c->prev_dt));
        if (is_float(r->type))
            n += sl_varint_put(out + n, r->raw ^ c->prev_raw);
        else
            n += sl_varint_put(out + n, zz_enc(raw_num(r->type, r->raw) - raw_num(r->type, c->prev_raw)));
        if (q)
            n += sl_varint_put(out + n, r->quality);
        c->prev_seq = r->seq;
        c->prev_dt = c->run_count == 0 ? 0 : dt;
        c->prev_time = r->source_time_us;
        c->prev_raw = r->raw;
        c->prev_quality = r->quality;
    }
    c->run_count++;
    return n;
}

/* Copies an encoded record in and patches the run's count and the
 * message's length, so bytes [0, off) are a valid payload after every
 * append. */
static void commit(struct sl_hmsg_writer *w, const uint8_t *rec, size_t n, size_t run_at,
                   const struct sl_hmsg_ctx *c)
{
    memcpy(w->p + w->off, rec, n);
    if (run_at != SIZE_MAX)
        w->run_count_off = w->off + run_at;
    w->off += n;
    w->c = *c;
    sl_be16_put(w->p + w->run_count_off, (uint16_t)c->run_count);
    sl_msg_put_hdr(w->p + w->msg_off, SL_MSG_HISTORY, w->off - w->msg_off - SL_MSG_HDR_BYTES);
}

/* Opens a message (header and status) at off; the caller checked room. */
static void open_msg(struct sl_hmsg_writer *w)
{
    w->msg_off = w->off;
    sl_msg_put_hdr(w->p + w->off, SL_MSG_HISTORY, STATUS_BYTES);
    put_status(w->p + w->off + SL_MSG_HDR_BYTES, &w->st);
    w->off += SL_MSG_HDR_BYTES + STATUS_BYTES;
    w->open = true;
    ctx_reset_msg(&w->c);
}

sl_err sl_hmsg_put(struct sl_hmsg_writer *w, const struct sl_hrec *r)
{
    sl_err e = sl_hmsg_rec_check(r);
    if (e != SL_OK)
        return e;
    uint8_t rec[RUN_HDR_MAX + REC_MAX];
    size_t run_at, n;
    struct sl_hmsg_ctx c;
    if (w->open) {
        c = w->c;
        n = enc_rec(&c, r, rec, &run_at);
        size_t body = w->off - w->msg_off - SL_MSG_HDR_BYTES;
        if (n <= SL_MSG_BODY_MAX - body) {
            if (n > w->cap - w->off)
                return SL_ERR_CAPACITY;
            commit(w, rec, n, run_at, &c);
            return SL_OK;
        }
    }
    /* A new message: its state starts afresh, so the record is encoded
     * again (it now opens a run and carries its full time). */
    ctx_reset_msg(&c);
    n = enc_rec(&c, r, rec, &run_at);
    if (SL_MSG_HDR_BYTES + STATUS_BYTES + n > w->cap - w->off)
        return SL_ERR_CAPACITY;
    open_msg(w);
    commit(w, rec, n, run_at, &c);
    return SL_OK;
}

size_t sl_hmsg_finish(struct sl_hmsg_writer *w)
{
    if (w->off == 0) {
        if (SL_MSG_HDR_BYTES + STATUS_BYTES > w->cap)
            return 0;
        open_msg(w);
    }
    w->open = false;
    return w->off;
}

/* ---- reader -------------------------------------------------------------- */

static sl_err get_varint(struct sl_buf *b, uint64_t *v)
{
    /* Inside a body, a varint cut short by the end or too long is a
     * length error: the body is framed, only its contents lie. */
    return sl_buf_get_varint(b, v) == SL_OK ? SL_OK : SL_ERR_LENGTH;
}

/* Status at the head of a body; b moves past it. */
static sl_err get_status(struct sl_buf *b, struct sl_hstatus *st)
{
    if (sl_buf_left(b) < STATUS_BYTES)
        return SL_ERR_TRUNCATED;
    const uint8_t *p = b->p + b->off;
    st->journal_id = sl_be64_get(p);
    st->oldest_seq = sl_be64_get(p + 8);
    st->next_seq = sl_be64_get(p + 16);
    b->off += STATUS_BYTES;
    return status_ok(st) ? SL_OK : SL_ERR_HEADER;
}

/* Reads a run header into c. */
static sl_err get_run(struct sl_buf *b, struct sl_hmsg_ctx *c)
{
    uint8_t kind;
    uint16_t count;
    uint64_t tag = 0;
    if (sl_buf_get_u8(b, &kind) != SL_OK)
        return SL_ERR_LENGTH;
    if (kind != RUN_GAP && sl_wire_type_regs(kind) == 0)
        return SL_ERR_TYPE;
    if (kind != RUN_GAP) {
        sl_err e = get_varint(b, &tag);
        if (e != SL_OK)
            return e;
        if (tag > UINT32_MAX)
            return SL_ERR_RANGE;
    }
    if (sl_buf_get_u16be(b, &count) != SL_OK)
        return SL_ERR_LENGTH;
    if (count == 0)
        return SL_ERR_HEADER;
    c->run_kind = kind;
    c->run_tag = (uint32_t)tag;
    c->run_count = count;
    c->run_open = true;
    c->prev_dt = 0;
    c->prev_raw = 0;
    c->prev_quality = 0;
    return SL_OK;
}

/* Reads one record of the current run into *out, checking it. */
static sl_err get_rec(struct sl_buf *b, struct sl_hmsg_ctx *c, struct sl_hrec *out)
{
    uint64_t a, t;
    memset(out, 0, sizeof *out);
    sl_err e = get_varint(b, &a);
    if (e != SL_OK)
        return e;
    if (c->run_kind == RUN_GAP) {
        uint64_t len;
        if ((e = get_varint(b, &len)) != SL_OK)
            return e;
        out->kind = SL_HREC_GAP;
        out->seq = c->prev_seq + zz_dec(a);
        out->count = len + 1u;   /* len == UINT64_MAX wraps to 0: refused below */
        if ((e = sl_hmsg_rec_check(out)) != SL_OK)
            return e;
        c->prev_seq = out->seq + out->count - 1u;
    } else {
        bool q = (a & 1u) != 0;
        out->kind = SL_HREC_VALUE;
        out->count = 1;
        out->tag_id = c->run_tag;
        out->type = c->run_kind;
        out->seq = c->prev_seq + zz_dec(a >> 1);
        if ((e = get_varint(b, &t)) != SL_OK)
            return e;
        uint64_t dt = c->prev_dt + zz_dec(t);
        out->source_time_us = c->prev_time + dt;
        uint64_t v;
        if ((e = get_varint(b, &v)) != SL_OK)
            return e;
        if (is_float(out->type)) {
            out->raw = c->prev_raw ^ v;
        } else {
            e = num_raw(out->type, raw_num(out->type, c->prev_raw) + zz_dec(v), &out->raw);
            if (e != SL_OK)
                return e;
        }
        out->quality = c->prev_quality;
        if (q) {
            if ((e = get_varint(b, &v)) != SL_OK)
                return e;
            if (v > UINT32_MAX)
                return SL_ERR_RANGE;
            out->quality = (uint32_t)v;
        }
        if ((e = sl_hmsg_rec_check(out)) != SL_OK)
            return e;
        c->prev_seq = out->seq;
        c->prev_dt = c->run_open ? 0 : dt;
        c->prev_time = out->source_time_us;
        c->prev_raw = out->raw;
        c->prev_quality = out->quality;
    }
    c->run_open = false;
    c->run_count--;
    return SL_OK;
}

/* One step: the next record into *out (*got true), or the end of the
 * payload (*got false). Checks everything it reads, including that every
 * message repeats the status of the first (r->st once set). */
static sl_err step(struct sl_hmsg_reader *r, struct sl_hrec *out, bool *got)
{
    *got = false;
    while (r->c.run_count == 0 && sl_buf_left(&r->body) == 0) {
        if (sl_buf_left(&r->b) == 0)
            return SL_OK;
        uint8_t type;
        const uint8_t *body;
        size_t len;
        sl_err e = sl_msg_split(&r->b, &type, &body, &len);
        if (e != SL_OK)
            return e;
        if (type != SL_MSG_HISTORY)
            return SL_ERR_TYPE;
        r->body = sl_buf_make(body, len);
        struct sl_hstatus st;
        if ((e = get_status(&r->body, &st)) != SL_OK)
            return e;
        if (r->st.journal_id != 0 && memcmp(&st, &r->st, sizeof st) != 0)
            return SL_ERR_HEADER;
        r->st = st;
        ctx_reset_msg(&r->c);
    }
    if (r->c.run_count == 0) {
        sl_err e = get_run(&r->body, &r->c);
        if (e != SL_OK)
            return e;
    }
    sl_err e = get_rec(&r->body, &r->c, out);
    if (e != SL_OK)
        return e;
    *got = true;
    return SL_OK;
}

sl_err sl_hmsg_reader_init(struct sl_hmsg_reader *r, const void *payload, size_t len, struct sl_hstatus *st)
{
    memset(r, 0, sizeof *r);
    if (st)
        memset(st, 0, sizeof *st);
    if (len == 0)
        return SL_ERR_TRUNCATED;
    struct sl_hmsg_reader walk;
    memset(&walk, 0, sizeof walk);
    walk.b = sl_buf_make(payload, len);
    struct sl_hrec rec;
    bool got;
    sl_err e;
    do {
        e = step(&walk, &rec, &got);
    } while (e == SL_OK && got);
    if (e != SL_OK)
        return e;
    r->b = sl_buf_make(payload, len);
    r->st = walk.st;
    if (st)
        *st = walk.st;
    return SL_OK;
}

bool sl_hmsg_next(struct sl_hmsg_reader *r, struct sl_hrec *out)
{
    bool got;
    if (step(r, out, &got) != SL_OK || !got) {
        memset(out, 0, sizeof *out);
        r->b.off = r->b.len;
        r->body.off = r->body.len;
        r->c.run_count = 0;
        return false;
    }
    return true;
}
