/* RX history: decode, map, gap accounting, batching, retention (see
 * sl_history.h; operators' view in docs/history.md "RX history"). */
#include "sl_history.h"

#include "sl_buf.h"
#include "sl_hmsg.h"
#include "sl_log.h"
#include "sl_mirror.h"
#include "sl_msg.h"
#include "sl_regs.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_VERSION  2u   /* 2 adds given_up_hi; 1 still loads */
#define IVSET_FIRST   1024u
#define DAY_US        86400000000ull
#define TS_MAX_US     253402300800000000ull   /* 10000-01-01: the backends' bound */
#define RETRY_MAX_MS  30000u

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* ---- interval set ------------------------------------------------------------ */

sl_err sl_ivset_init(struct sl_ivset *s, uint32_t cap)
{
    memset(s, 0, sizeof *s);
    if (cap < 2)
        return SL_ERR_RANGE;
    /* Memory follows the holes: IVSET_FIRST ranges at first, doubled on
     * demand up to cap. */
    s->alloc = cap < IVSET_FIRST ? cap : IVSET_FIRST;
    s->base = malloc((size_t)s->alloc * sizeof *s->base);
    if (!s->base)
        return SL_ERR_NOMEM;
    s->r = s->base;
    s->cap = cap;
    return SL_OK;
}

void sl_ivset_free(struct sl_ivset *s)
{
    free(s->base);
    memset(s, 0, sizeof *s);
}

/* First range whose hi >= seq (touching or containing it), n if none. */
static uint32_t first_reaching(const struct sl_ivset *s, uint64_t seq)
{
    uint32_t a = 0, b = s->n;
    while (a < b) {
        uint32_t m = a + (b - a) / 2;
        if (s->r[m].hi < seq)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

bool sl_ivset_has(const struct sl_ivset *s, uint64_t seq)
{
    uint32_t i = first_reaching(s, seq + 1);
    return i < s->n && s->r[i].lo <= seq && seq < s->r[i].hi;
}

uint64_t sl_ivset_add(struct sl_ivset *s, uint64_t lo, uint64_t hi, uint64_t t_us, uint64_t *forced)
{
    if (lo >= hi)
        return 0;
    uint32_t i = first_reaching(s, lo);
    uint32_t j = i;
    uint64_t overlap = 0;
    while (j < s->n && s->r[j].lo <= hi) {
        uint64_t a = s->r[j].lo > lo ? s->r[j].lo : lo;
        uint64_t b = s->r[j].hi < hi ? s->r[j].hi : hi;
        if (b > a)
            overlap += b - a;
        j++;
    }
    if (j > i) {
        /* Merge ranges i..j-1 with [lo, hi) into range i. */
        struct sl_ivrange m = s->r[i];
        if (lo < m.lo || (lo == m.lo && !m.t_us))
            m.t_us = t_us;
        m.lo = lo < m.lo ? lo : m.lo;
        m.hi = hi > s->r[j - 1].hi ? hi : s->r[j - 1].hi;
        s->r[i] = m;
        uint32_t d = j - i - 1;
        if (d && i < s->n / 2) {
            /* Backfill fills the lowest holes first: move the shorter side. */
            memmove(&s->r[d], &s->r[0], (size_t)(i + 1) * sizeof *s->r);
            s->r += d;
        } else if (d) {
            memmove(&s->r[i + 1], &s->r[j], (size_t)(s->n - j) * sizeof *s->r);
        }
        s->n -= d;
        s->total += (hi - lo) - overlap;
        return (hi - lo) - overlap;
    }
    if (s->n == s->alloc && s->alloc < s->cap) {
        uint32_t na = s->alloc > s->cap / 2 ? s->cap : s->alloc * 2;
        size_t off = (size_t)(s->r - s->base);
        struct sl_ivrange *nb = realloc(s->base, (size_t)na * sizeof *s->base);
        if (nb) {
            s->base = nb;
            s->r = nb + off;
            s->alloc = na;
        }
    }
    if (s->n == s->alloc) {
        /* Full (or no memory to grow): the lowest hole is given up and
         * counted, then the add again. given_up_hi remembers where given-up
         * holes end: below it the set no longer tells received from given
         * up, so the journal keeps accepting those seqs (sl_hjournal_want). */
        uint64_t hole = s->r[1].lo - s->r[0].hi;
        s->total += hole;
        if (s->r[1].lo > s->given_up_hi)
            s->given_up_hi = s->r[1].lo;
        s->r[1].lo = s->r[0].lo;
        s->r[1].t_us = s->r[0].t_us;
        s->r++;
        s->n--;
        if (forced)
            *forced += hole;
        /* The given-up hole may have held part of [lo, hi). */
        return sl_ivset_add(s, lo, hi, t_us, forced);
    }
    if (s->r > s->base && i < s->n / 2) {
        /* Room below the first range: move the shorter front down. */
        s->r--;
        memmove(&s->r[0], &s->r[1], (size_t)i * sizeof *s->r);
    } else {
        if ((size_t)(s->r - s->base) + s->n == s->alloc) {
            memmove(s->base, s->r, (size_t)s->n * sizeof *s->r);   /* compact: once per freed front */
            s->r = s->base;
        }
        memmove(&s->r[i + 1], &s->r[i], (size_t)(s->n - i) * sizeof *s->r);
    }
    s->r[i] = (struct sl_ivrange){ lo, hi, t_us };
    s->n++;
    s->total += hi - lo;
    return hi - lo;
}

uint64_t sl_ivset_count(const struct sl_ivset *s, uint64_t lo, uint64_t hi)
{
    uint64_t c = 0;
    for (uint32_t i = first_reaching(s, lo); i < s->n && s->r[i].lo < hi; i++) {
        uint64_t a = s->r[i].lo > lo ? s->r[i].lo : lo;
        uint64_t b = s->r[i].hi < hi ? s->r[i].hi : hi;
        if (b > a)
            c += b - a;
    }
    return c;
}

void sl_ivset_trim(struct sl_ivset *s, uint64_t floor)
{
    uint32_t k = 0;
    while (k < s->n && s->r[k].hi <= floor) {
        s->total -= s->r[k].hi - s->r[k].lo;
        k++;
    }
    s->r += k;
    s->n -= k;
    if (!s->n)
        s->r = s->base;
    if (s->n && s->r[0].lo < floor) {
        s->total -= floor - s->r[0].lo;
        s->r[0].lo = floor;
    }
}

/* ---- one journal ------------------------------------------------------------- */

sl_err sl_hjournal_init(struct sl_hjournal *j, uint64_t id)
{
    memset(j, 0, sizeof *j);
    j->id = id;
    return sl_ivset_init(&j->done, SL_HISTORY_RANGES);
}

void sl_hjournal_free(struct sl_hjournal *j)
{
    sl_ivset_free(&j->done);
    memset(j, 0, sizeof *j);
}

uint64_t sl_hjournal_missing(const struct sl_hjournal *j)
{
    /* O(1): every range lies in [floor, next) once a status came (a
     * status or value beyond next raises next), so the set's total is the
     * done count of the window. */
    if (!j->have_status || j->next <= j->floor || j->done.total >= j->next - j->floor)
        return 0;
    return (j->next - j->floor) - j->done.total;
}

uint64_t sl_hjournal_status(struct sl_hjournal *j, uint64_t oldest_seq, uint64_t next_seq, uint64_t now_us)
{
    uint64_t before = sl_hjournal_missing(j);
    /* An empty journal (oldest 0) holds nothing below next. */
    uint64_t eff = oldest_seq ? oldest_seq : next_seq;
    uint64_t lost = 0;
    j->last_us = now_us;
    j->status_us = now_us;
    if (!j->have_status) {
        j->have_status = true;
        j->base = j->floor = eff;
        j->next = next_seq;
        sl_ivset_trim(&j->done, j->floor);
        /* Values seen before this status may lie beyond its next_seq. */
        if (j->done.n && j->done.r[j->done.n - 1].hi > j->next)
            j->next = j->done.r[j->done.n - 1].hi;
        j->dirty = true;
    } else {
        if (next_seq > j->next) {
            j->next = next_seq;
            j->dirty = true;
        }
        if (eff > j->floor) {
            uint64_t top = eff < j->next ? eff : j->next;
            if (top > j->floor)
                lost = (top - j->floor) - sl_ivset_count(&j->done, j->floor, top);
            j->floor = eff;
            sl_ivset_trim(&j->done, j->floor);
            j->dirty = true;
        }
    }
    uint64_t after = sl_hjournal_missing(j);
    if (!before && after)
        j->missing_since_us = now_us;
    return lost;
}

bool sl_hjournal_want(const struct sl_hjournal *j, uint64_t seq)
{
    /* Below given_up_hi a seq in the set may be a hole given up for room,
     * not a received change: take it (the database ignores a repeat). */
    return seq >= j->floor && (seq < j->done.given_up_hi || !sl_ivset_has(&j->done, seq));
}

uint64_t sl_hjournal_mark(struct sl_hjournal *j, uint64_t seq, uint64_t count, uint64_t t_us)
{
    uint64_t lo = seq, hi = seq + count;
    if (hi <= j->floor)
        return 0;
    if (lo < j->floor) {
        lo = j->floor;
        t_us = 0;
    }
    /* A value beyond the last status's next_seq says the journal has
     * handed out every seq below it: the gap a cut left shows with the
     * first live value after it, before the carousel's next status. */
    if (j->have_status && hi > j->next) {
        uint64_t before = sl_hjournal_missing(j);
        j->next = hi;
        j->dirty = true;
        if (!before && lo > j->floor && j->done.total < lo - j->floor)
            j->missing_since_us = t_us ? t_us : j->last_us;
    }
    uint64_t forced = 0;
    if (sl_ivset_add(&j->done, lo, hi, t_us, &forced))
        j->dirty = true;
    if (forced)
        j->dirty = true;
    return forced;
}

uint64_t sl_hjournal_oldest_age_us(const struct sl_hjournal *j, uint64_t now_us)
{
    if (!sl_hjournal_missing(j))
        return 0;
    const struct sl_ivset *s = &j->done;
    /* The first hole is at floor (no range there) or after range 0; the
     * range after it holds the first change received beyond the hole. */
    uint32_t after = (s->n && s->r[0].lo <= j->floor) ? 1 : 0;
    uint64_t t = 0;
    if (after < s->n && s->r[after].lo < j->next)
        t = s->r[after].t_us;
    if (!t)
        t = j->missing_since_us;
    return now_us > t ? now_us - t : 0;
}

sl_err sl_hjournal_encode(const struct sl_hjournal *j, uint8_t *out, size_t cap, size_t *len)
{
    if (cap < SL_HISTORY_BLOB_MAX)
        return SL_ERR_OVERFLOW;
    size_t o = 0;
    out[o++] = BLOB_VERSION;
    out[o++] = j->have_status ? 1 : 0;
    o += sl_varint_put(out + o, j->base);
    o += sl_varint_put(out + o, j->floor);
    o += sl_varint_put(out + o, j->next);
    o += sl_varint_put(out + o, j->last_us);
    o += sl_varint_put(out + o, j->missing_since_us);
    o += sl_varint_put(out + o, j->done.given_up_hi);
    o += sl_varint_put(out + o, j->done.n);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < j->done.n; i++) {
        const struct sl_ivrange *r = &j->done.r[i];
        o += sl_varint_put(out + o, r->lo - prev);
        o += sl_varint_put(out + o, r->hi - r->lo);
        o += sl_varint_put(out + o, r->t_us);
        prev = r->hi;
    }
    *len = o;
    return SL_OK;
}

sl_err sl_hjournal_decode(struct sl_hjournal *j, const void *blob, size_t len)
{
    struct sl_buf b = sl_buf_make(blob, len);
    uint8_t ver, hs;
    uint64_t base, floor, next, last, since, given = 0, n;
    sl_err e = sl_buf_get_u8(&b, &ver);
    if (e == SL_OK)
        e = ver == BLOB_VERSION || ver == 1 ? sl_buf_get_u8(&b, &hs) : SL_ERR_VERSION;
    if (e == SL_OK)
        e = sl_buf_get_varint(&b, &base);
    if (e == SL_OK)
        e = sl_buf_get_varint(&b, &floor);
    if (e == SL_OK)
        e = sl_buf_get_varint(&b, &next);
    if (e == SL_OK)
        e = sl_buf_get_varint(&b, &last);
    if (e == SL_OK)
        e = sl_buf_get_varint(&b, &since);
    if (e == SL_OK && ver >= 2)
        e = sl_buf_get_varint(&b, &given);
    if (e == SL_OK)
        e = sl_buf_get_varint(&b, &n);
    if (e == SL_OK && (n > j->done.cap || hs > 1 || given > SL_HREC_SEQ_LIMIT))
        e = SL_ERR_RANGE;
    if (e == SL_OK && n > j->done.alloc) {
        struct sl_ivrange *nb = realloc(j->done.base, (size_t)n * sizeof *nb);
        if (!nb)
            e = SL_ERR_NOMEM;
        else {
            j->done.base = nb;
            j->done.alloc = (uint32_t)n;
        }
    }
    j->done.r = j->done.base;
    j->done.n = 0;
    j->done.total = 0;
    uint64_t prev = 0;
    for (uint64_t i = 0; e == SL_OK && i < n; i++) {
        uint64_t gap, width, t;
        e = sl_buf_get_varint(&b, &gap);
        if (e == SL_OK)
            e = sl_buf_get_varint(&b, &width);
        if (e == SL_OK)
            e = sl_buf_get_varint(&b, &t);
        /* Sorted, disjoint, non-adjacent, non-empty, within 2^62. */
        if (e == SL_OK && ((i > 0 && gap == 0) || width == 0 || gap > SL_HREC_SEQ_LIMIT ||
                           width > SL_HREC_SEQ_LIMIT || prev + gap + width > SL_HREC_SEQ_LIMIT))
            e = SL_ERR_RANGE;
        if (e == SL_OK) {
            j->done.r[j->done.n++] = (struct sl_ivrange){ prev + gap, prev + gap + width, t };
            j->done.total += width;
            prev += gap + width;
        }
    }
    if (e == SL_OK && sl_buf_left(&b))
        e = SL_ERR_TRAILING;
    if (e != SL_OK) {
        j->done.n = 0;
        j->done.total = 0;
        j->done.given_up_hi = 0;
        j->have_status = false;
        j->base = j->floor = j->next = 0;
        return SL_ERR_HEADER;
    }
    j->have_status = hs != 0;
    j->base = base;
    j->floor = floor;
    j->next = next;
    j->last_us = last;
    j->missing_since_us = since;
    j->done.given_up_hi = given;
    /* A saved set may reach past next (saved before the raise). */
    if (j->have_status && j->done.n && j->done.r[j->done.n - 1].hi > j->next)
        j->next = j->done.r[j->done.n - 1].hi;
    if (j->have_status && j->floor > j->next)
        j->next = j->floor;
    j->dirty = false;
    return SL_OK;
}

/* ---- the thread's state ---------------------------------------------------------- */

struct sl_history {
    struct sl_history_config cfg;
    struct sl_histdb *db;
    struct sl_hjournal j[SL_HISTORY_JOURNALS];
    struct sl_histdb_row *rows;     /* pending, cfg.pending_rows */
    size_t npend;
    size_t npend_backfill;          /* of npend, origin backfill */
    uint64_t oldest_pend_ms;        /* wall ms the oldest pending row (or journal change) came; 0 none */
    uint64_t retired[SL_HISTORY_JOURNALS];   /* journal ids whose saved state the next batch empties */
    size_t nretired;
    uint64_t next_try_ms;           /* after a failure: not before */
    uint32_t retry_ms;
    uint64_t next_retain_ms;
    uint8_t *blob;                  /* SL_HISTORY_BLOB_MAX */
    struct sl_history_stats st;
    uint64_t cutoff_us;             /* rows older than this are past retention */
    uint64_t status_ms;             /* wall ms of the last journal status (or of open); 0 none */
    uint64_t log_ms[3];             /* throttled warnings: last logged (wall ms) */
    uint64_t log_held[3];           /* ... and how many held back since */
    bool warned_unseq;
    char name[SL_HIST_TAG_MAX + 2];
};

enum { LOG_JOURNAL, LOG_SEQ, LOG_SCHEMA };

/* A warning at most once a minute per kind; the ones held back are
 * counted into the next. True when the caller may log now (*held: how
 * many were held back before it). */
static bool log_due(struct sl_history *h, int kind, uint64_t wall_ms, uint64_t *held)
{
    if (h->log_ms[kind] && wall_ms - h->log_ms[kind] < 60000u) {
        h->log_held[kind]++;
        return false;
    }
    h->log_ms[kind] = wall_ms ? wall_ms : 1;
    *held = h->log_held[kind];
    h->log_held[kind] = 0;
    return true;
}

sl_err sl_history_create(struct sl_history **out, const struct sl_history_config *cfg)
{
    *out = NULL;
    struct sl_history *h = calloc(1, sizeof *h);
    if (!h)
        return SL_ERR_NOMEM;
    h->cfg = *cfg;
    if (!h->cfg.batch_ms)
        h->cfg.batch_ms = SL_HISTORY_BATCH_MS;
    if (!h->cfg.batch_rows)
        h->cfg.batch_rows = SL_HISTORY_BATCH_ROWS;
    if (!h->cfg.pending_rows)
        h->cfg.pending_rows = SL_HISTORY_PENDING_ROWS;
    if (h->cfg.pending_rows < h->cfg.batch_rows)
        h->cfg.pending_rows = h->cfg.batch_rows;
    h->rows = malloc((size_t)h->cfg.pending_rows * sizeof *h->rows);
    h->blob = malloc(SL_HISTORY_BLOB_MAX);
    h->retry_ms = SL_HISTORY_RETRY_MS;
    if (!h->rows || !h->blob) {
        sl_history_destroy(h);
        return SL_ERR_NOMEM;
    }
    *out = h;
    return SL_OK;
}

void sl_history_destroy(struct sl_history *h)
{
    if (!h)
        return;
    sl_histdb_close(h->db);
    for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++)
        if (h->j[i].id)
            sl_hjournal_free(&h->j[i]);
    free(h->rows);
    free(h->blob);
    free(h);
}

/* Retires j: its missing seqs count lost, its saved state is emptied by
 * the next batch, its slot is free. */
static void retire(struct sl_history *h, struct sl_hjournal *j)
{
    h->st.lost = sat_add(h->st.lost, sl_hjournal_missing(j));
    h->st.retired++;
    if (h->nretired < SL_HISTORY_JOURNALS)
        h->retired[h->nretired++] = j->id;
    if (!h->oldest_pend_ms)
        h->oldest_pend_ms = 1;
    sl_hjournal_free(j);
}

enum { J_FIND, J_FREE, J_EVICT };

/* The slot of journal id; J_FREE: a free slot when none (a live value's
 * journal: values alone never retire a journal); J_EVICT (a status), a free slot or the one heard of
 * longest ago (retired: its missing seqs count lost, its saved state is
 * emptied by the next batch). NULL when not tracked. */
static struct sl_hjournal *journal(struct sl_history *h, uint64_t id, int create, uint64_t now_us)
{
    struct sl_hjournal *free_slot = NULL, *old = NULL;
    for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++) {
        struct sl_hjournal *j = &h->j[i];
        if (j->id == id)
            return j;
        if (!j->id && !free_slot)
            free_slot = j;
        if (j->id && (!old || j->last_us < old->last_us))
            old = j;
    }
    if (create == J_FIND || (create == J_FREE && !free_slot))
        return NULL;
    if (!free_slot) {
        uint64_t m = sl_hjournal_missing(old), held;
        if (log_due(h, LOG_JOURNAL, now_us / 1000u, &held))
            sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-JOURNAL",
                      "history: journal %016" PRIx64 " retired for journal %016" PRIx64 " (%u tracked at most); "
                      "its %" PRIu64 " missing changes count lost (%" PRIu64 " like it not logged)",
                      old->id, id, SL_HISTORY_JOURNALS, m, held);
        retire(h, old);
        free_slot = old;
    }
    if (sl_hjournal_init(free_slot, id) != SL_OK)
        return NULL;
    free_slot->last_us = now_us;
    free_slot->dirty = true;
    return free_slot;
}

static sl_err load_one(void *ctx, uint64_t id, const void *blob, size_t len)
{
    struct sl_history *h = ctx;
    if (!id || !len)
        return SL_OK;   /* retired */
    struct sl_hjournal *j = journal(h, id, J_EVICT, 0);
    if (!j)
        return SL_ERR_NOMEM;
    if (sl_hjournal_decode(j, blob, len) != SL_OK)
        sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-JOURNAL",
                  "history: saved state of journal %016" PRIx64 " unreadable: starting it afresh "
                  "(backfill re-sends, repeats are ignored)", id);
    return SL_OK;
}

static void retain(struct sl_history *h, uint64_t wall_us)
{
    uint64_t keep = (uint64_t)h->cfg.db.retention_days * DAY_US;
    h->cutoff_us = wall_us > keep ? wall_us - keep : 0;
    uint64_t n = 0;
    if (sl_histdb_retain(h->db, (int64_t)h->cutoff_us, &n) != SL_OK) {
        sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-RETAIN", "history: retention failed: %s (retried in an hour)",
                  sl_histdb_errmsg(h->db));
        return;
    }
    h->st.retained_rows += n;
    if (n)
        sl_log_id(SL_LOG_INFO, "SL-RX-HISTORY-RETAIN", "history: %" PRIu64 " rows older than %" PRIu32
                  " days dropped", n, h->cfg.db.retention_days);
}

sl_err sl_history_open(struct sl_history *h, uint64_t wall_us, char *errbuf, size_t errcap)
{
    sl_err e = sl_histdb_open(&h->db, &h->cfg.db, true, errbuf, errcap);
    if (e != SL_OK)
        return e;
    e = sl_histdb_load_journals(h->db, load_one, h);
    if (e != SL_OK) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "load journals: %s", sl_histdb_errmsg(h->db));
        sl_histdb_close(h->db);
        h->db = NULL;
        for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++)
            if (h->j[i].id)
                sl_hjournal_free(&h->j[i]);
        return e;
    }
    if (h->cfg.db.retention_days)
        retain(h, wall_us);
    return SL_OK;
}

/* Takes one value as a pending row when new. */
/* The most next_seq may grow by at wall_us: a journal hands out at most
 * SL_HISTORY_JUMP_PER_S seqs a second (a forged or corrupt status must not
 * pin missing near 2^62). */
static bool seq_plausible(const struct sl_hjournal *j, uint64_t next, uint64_t wall_us)
{
    if (!j->have_status || next <= j->next)
        return true;
    uint64_t el_s = wall_us > j->status_us ? (wall_us - j->status_us) / 1000000u : 0;
    uint64_t bound = SL_HISTORY_JUMP_SEQS + (el_s > 1000000u ? 1000000u : el_s) * SL_HISTORY_JUMP_PER_S;
    return next - j->next <= bound;
}

static void bad_seq(struct sl_history *h, const struct sl_hjournal *j, uint64_t seq, uint64_t wall_ms)
{
    uint64_t held;
    h->st.bad_seq++;
    if (log_due(h, LOG_SEQ, wall_ms, &held))
        sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-JOURNAL",
                  "history: journal %016" PRIx64 " seq %" PRIu64 " jumps beyond %" PRIu64 " too far: refused "
                  "(sluice_history_bad_seq_total; %" PRIu64 " like it not logged)", j->id, seq, j->next, held);
}

static void take_value(struct sl_history *h, struct sl_hjournal *j, const struct sl_value *v, uint8_t origin,
                       uint64_t wall_ms)
{
    if (!sl_hjournal_want(j, v->seq)) {
        h->st.duplicates++;
        return;
    }
    if (!seq_plausible(j, v->seq + 1, wall_ms * 1000u)) {
        bad_seq(h, j, v->seq, wall_ms);
        return;
    }
    uint64_t future = wall_ms * 1000u + SL_HISTORY_FUTURE_US;
    if (v->source_time_us >= TS_MAX_US || v->source_time_us < h->cutoff_us ||
        (wall_ms && v->source_time_us > future)) {
        /* Never stored (past retention, a day or more in the future, or a
         * time no backend keeps): done, so it is not missing for ever. */
        h->st.bad_time++;
        h->st.lost += sl_hjournal_mark(j, v->seq, 1, 0);
        return;
    }
    if (h->npend >= h->cfg.pending_rows) {
        h->st.dropped++;   /* stays missing: the next carousel pass brings it */
        return;
    }
    uint32_t pos;
    struct sl_mirror_tag t;
    if (sl_mirror_find(h->cfg.mirror, v->tag_id, &pos) != SL_OK ||
        sl_mirror_get(h->cfg.mirror, pos, &t) != SL_OK) {
        h->st.unknown_tag++;
        return;
    }
    if (origin == SL_HIST_BACKFILL && t.type != v->type) {
        /* Journaled under another schema (TX's tag list changed since):
         * the id names another tag now. Not stored, counted lost. */
        uint64_t held;
        h->st.schema_mismatch++;
        h->st.lost += 1 + sl_hjournal_mark(j, v->seq, 1, 0);
        if (log_due(h, LOG_SCHEMA, wall_ms, &held))
            sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-SCHEMA",
                      "history: backfilled change %" PRIu64 " of tag id %" PRIu32 " has type %u, the schema says "
                      "%s/%s is type %u: not stored, counted lost (sluice_history_schema_mismatch_total; %" PRIu64
                      " like it not logged)", v->seq, v->tag_id, v->type, t.path, t.name, t.type, held);
        return;
    }
    int n = snprintf(h->name, sizeof h->name, "%s/%s", t.path, t.name);
    uint32_t tag;
    if (n < 0 || (size_t)n > SL_HIST_TAG_MAX || sl_histdb_tag(h->db, h->name, &tag) != SL_OK) {
        h->st.dropped++;
        return;
    }
    h->npend_backfill += origin == SL_HIST_BACKFILL;
    h->rows[h->npend++] = (struct sl_histdb_row){
        .tag = tag,
        .ts_us = (int64_t)v->source_time_us,
        .journal_id = j->id,
        .seq = v->seq,
        .raw = v->raw,
        .value = sl_regs_eng(v->raw, v->type, t.scale, t.offset),
        .quality = v->quality,
        .type = v->type,
        .origin = origin,
    };
    if (!h->oldest_pend_ms)
        h->oldest_pend_ms = wall_ms ? wall_ms : 1;
    h->st.lost += sl_hjournal_mark(j, v->seq, 1, v->source_time_us);
}

bool sl_history_wants_tags(const uint8_t *p, size_t len)
{
    struct sl_msg_reader r;
    if (sl_msg_reader_init(&r, p, len) != SL_OK)
        return false;
    struct sl_msg m;
    while (sl_msg_next(&r, &m))
        if (m.type == SL_MSG_DELTA_SEQ || m.type == SL_MSG_DELTA)
            return true;
    return false;
}

void sl_history_payload(struct sl_history *h, uint16_t channel, const uint8_t *p, size_t len, uint64_t wall_us)
{
    uint64_t wall_ms = wall_us / 1000u;   /* the batch timer's clock */
    if (!h->db)
        return;
    sl_mirror_read_begin(h->cfg.mirror, h->cfg.mirror_slot);
    if (channel == SL_CHANNEL_TAGS) {
        struct sl_msg_reader r;
        if (sl_msg_reader_init(&r, p, len) != SL_OK) {
            h->st.bad_payloads++;   /* intake's decoder counts it too */
        } else {
            struct sl_msg m;
            while (sl_msg_next(&r, &m)) {
                if (m.type == SL_MSG_DELTA) {
                    /* TX's journal is off: changes without seqs cannot be
                     * accounted for, so history does not record them. */
                    h->st.unsequenced += m.u.delta.values.count;
                    if (!h->warned_unseq)
                        sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-JOURNAL",
                                  "history: values arrive without change sequence numbers: TX's journal is off "
                                  "([backfill] on TX); history is not recorded (sluice_history_unsequenced_values_total)");
                    h->warned_unseq = true;
                    continue;
                }
                if (m.type != SL_MSG_DELTA_SEQ)
                    continue;   /* KEYFRAMEs carry no seq and stay out of history */
                struct sl_hjournal *j = journal(h, m.u.delta.journal_id, J_FREE, wall_us);
                if (!j)
                    continue;
                j->last_us = wall_us;
                struct sl_value v;
                while (sl_msg_value_next(&m.u.delta.values, &v))
                    take_value(h, j, &v, SL_HIST_LIVE, wall_ms);
            }
        }
    } else if (channel == SL_CHANNEL_HISTORY) {
        struct sl_hmsg_reader r;
        struct sl_hstatus st;
        if (sl_hmsg_reader_init(&r, p, len, &st) != SL_OK) {
            h->st.bad_payloads++;
        } else {
            h->status_ms = wall_ms ? wall_ms : 1;
            if (h->st.no_status)
                sl_log_id(SL_LOG_NOTICE, "SL-RX-HISTORY-JOURNAL", "history: journal status arriving again");
            h->st.no_status = false;
            struct sl_hjournal *j = journal(h, st.journal_id, J_EVICT, wall_us);
            if (j && (!seq_plausible(j, st.next_seq, wall_us) ||
                      (!j->have_status && st.oldest_seq && st.next_seq - st.oldest_seq > SL_HISTORY_WINDOW_MAX))) {
                bad_seq(h, j, st.next_seq, wall_ms);
                if (!j->have_status && !j->done.n)
                    retire(h, j);   /* made for this status only */
                j = NULL;
            }
            if (j) {
                struct sl_hrec rec;
                while (sl_hmsg_next(&r, &rec)) {
                    if (rec.kind == SL_HREC_GAP) {
                        h->st.lost += sl_hjournal_mark(j, rec.seq, rec.count, 0);
                        continue;
                    }
                    struct sl_value v = { .tag_id = rec.tag_id, .type = rec.type, .raw = rec.raw,
                                          .quality = rec.quality, .source_time_us = rec.source_time_us,
                                          .seq = rec.seq };
                    take_value(h, j, &v, SL_HIST_BACKFILL, wall_ms);
                }
                /* After the records: a seq this payload brought is not lost. */
                h->st.lost += sl_hjournal_status(j, st.oldest_seq, st.next_seq, wall_us);
                if (j->dirty && !h->oldest_pend_ms)
                    h->oldest_pend_ms = wall_ms ? wall_ms : 1;
            }
        }
    }
    sl_mirror_read_end(h->cfg.mirror, h->cfg.mirror_slot);
}

/* One transaction: up to batch_rows... all pending rows, and every dirty
 * journal's state. All or nothing. */
static sl_err commit(struct sl_history *h, uint64_t mono_ms, bool force)
{
    sl_err e = sl_histdb_begin(h->db);
    if (e == SL_OK && h->npend)
        e = sl_histdb_put(h->db, h->rows, h->npend);
    for (size_t i = 0; i < SL_HISTORY_JOURNALS && e == SL_OK; i++) {
        struct sl_hjournal *j = &h->j[i];
        if (!j->id || !j->dirty)
            continue;
        /* A large set (many holes) is saved at most every
         * SL_HISTORY_SAVE_MS, not with every batch: rows committed since
         * its last save count missing again after a crash, their backfill
         * is stored again and the database ignores the repeats. */
        if (!force && j->done.n > SL_HISTORY_SAVE_RANGES && mono_ms < j->save_due_ms)
            continue;
        j->save_due_ms = mono_ms + SL_HISTORY_SAVE_MS;
        j->saving = true;
        size_t n;
        e = sl_hjournal_encode(j, h->blob, SL_HISTORY_BLOB_MAX, &n);
        if (e == SL_OK)
            e = sl_histdb_put_journal(h->db, j->id, h->blob, n);
    }
    for (size_t i = 0; i < h->nretired && e == SL_OK; i++)
        e = sl_histdb_put_journal(h->db, h->retired[i], "", 0);
    if (e == SL_OK)
        e = sl_histdb_commit(h->db);
    if (e != SL_OK) {
        sl_histdb_rollback(h->db);
        for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++)
            if (h->j[i].saving) {
                h->j[i].saving = false;
                h->j[i].save_due_ms = 0;
            }
        return e;
    }
    h->nretired = 0;
    for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++)
        if (h->j[i].saving) {
            h->j[i].saving = false;
            h->j[i].dirty = false;
        }
    h->st.rows += h->npend;
    h->st.backfill_rows += h->npend_backfill;
    h->npend = 0;
    h->npend_backfill = 0;
    h->oldest_pend_ms = 0;
    return SL_OK;
}

/* Journals that went silent: one not heard of for SL_HISTORY_IDLE_US while
 * another was heard of within the last minute (TX's state was wiped or TX
 * replaced: its old journal will never heal), or for SL_HISTORY_STALE_US
 * at all, is retired, its missing counted lost. And the no-status flag:
 * [history] on but no journal status for SL_HISTORY_NO_STATUS_MS (TX's
 * journal or backfill off, or the history channel not crossing). */
static void idle_journals(struct sl_history *h, uint64_t wall_us)
{
    uint64_t wall_ms = wall_us / 1000u;
    if (!h->status_ms)
        h->status_ms = wall_ms ? wall_ms : 1;
    if (!h->st.no_status && wall_ms > h->status_ms && wall_ms - h->status_ms >= SL_HISTORY_NO_STATUS_MS) {
        h->st.no_status = true;
        sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-JOURNAL",
                  "history: no journal status for %u s: is TX's journal on ([backfill] on TX) and its history "
                  "channel crossing? (sluice_history_no_status)", SL_HISTORY_NO_STATUS_MS / 1000u);
    }
    bool active = false;
    for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++)
        if (h->j[i].id && h->j[i].last_us + 60000000u >= wall_us)
            active = true;
    for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++) {
        struct sl_hjournal *j = &h->j[i];
        if (!j->id || !j->last_us || j->last_us > wall_us)
            continue;
        uint64_t silent = wall_us - j->last_us;
        if (silent >= SL_HISTORY_STALE_US || (active && silent >= SL_HISTORY_IDLE_US)) {
            sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-JOURNAL",
                      "history: journal %016" PRIx64 " silent for %" PRIu64 " s: retired, its %" PRIu64
                      " missing changes count lost", j->id, silent / 1000000u, sl_hjournal_missing(j));
            retire(h, j);
        }
    }
}

sl_err sl_history_tick(struct sl_history *h, uint64_t mono_ms, uint64_t wall_us, bool force)
{
    sl_err e = SL_OK;
    if (!h->db) {
        /* Not open yet (a PostgreSQL server away at start): retried with
         * the batches' back-off; until then payloads are not taken, so
         * their changes stay missing for the backfill to bring. */
        if (mono_ms < h->next_try_ms)
            return SL_OK;
        char err[256] = "";
        e = sl_history_open(h, wall_us, err, sizeof err);
        if (e != SL_OK) {
            if (!h->st.failing)
                sl_log_id(SL_LOG_ERR, "SL-RX-HISTORY-OPEN", "history: cannot open the database: %s (retried)",
                          err);
            h->st.failing = true;
            h->st.write_failures++;
            h->next_try_ms = mono_ms + h->retry_ms;
            h->retry_ms = h->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : h->retry_ms * 2;
            return e;
        }
        sl_log_id(SL_LOG_NOTICE, "SL-RX-HISTORY-OPEN", "history: database open (%s)", sl_histdb_kind(h->db));
        h->st.failing = false;
        h->retry_ms = SL_HISTORY_RETRY_MS;
    }
    uint64_t pend_age_ms = h->oldest_pend_ms ? wall_us / 1000u - h->oldest_pend_ms : 0;
    bool due = (h->oldest_pend_ms || h->nretired) && (force || h->npend >= h->cfg.batch_rows || pend_age_ms >= h->cfg.batch_ms);
    if (due && (force || mono_ms >= h->next_try_ms)) {
        e = commit(h, mono_ms, force);
        if (e != SL_OK) {
            h->st.write_failures++;
            if (!h->st.failing)
                sl_log_id(SL_LOG_ERR, "SL-RX-HISTORY-WRITE",
                          "history: writing %zu rows failed: %s (kept, retried; sluice_history_write_failures_total)",
                          h->npend, sl_histdb_errmsg(h->db));
            h->st.failing = true;
            h->next_try_ms = mono_ms + h->retry_ms;
            h->retry_ms = h->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : h->retry_ms * 2;
        } else {
            if (h->st.failing)
                sl_log_id(SL_LOG_NOTICE, "SL-RX-HISTORY-WRITE", "history: writing again (%" PRIu64
                          " batches had failed)", h->st.write_failures);
            h->st.failing = false;
            h->retry_ms = SL_HISTORY_RETRY_MS;
        }
    }
    /* A forced tick (stop) leaves no row staged in the backend. */
    if (force && !h->st.failing && sl_histdb_merge(h->db) != SL_OK)
        sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-WRITE", "history: merging staged rows failed: %s (kept, retried)",
                  sl_histdb_errmsg(h->db));
    idle_journals(h, wall_us);
    /* Retention runs while batches fail too: on a full disk, dropping the
     * oldest day frees the pages the next batch needs. */
    if (h->cfg.db.retention_days && mono_ms >= h->next_retain_ms) {
        if (h->next_retain_ms)
            retain(h, wall_us);
        h->next_retain_ms = mono_ms + SL_HISTORY_RETAIN_MS;
    }
    return e;
}

uint64_t sl_history_rows(const struct sl_history *h) { return h->st.rows; }

void sl_history_stats(const struct sl_history *h, struct sl_history_stats *out, uint64_t wall_us)
{
    *out = h->st;
    out->missing = 0;
    out->oldest_age_us = 0;
    out->journals = 0;
    for (size_t i = 0; i < SL_HISTORY_JOURNALS; i++) {
        const struct sl_hjournal *j = &h->j[i];
        if (!j->id)
            continue;
        out->journals++;
        out->missing = sat_add(out->missing, sl_hjournal_missing(j));
        uint64_t a = sl_hjournal_oldest_age_us(j, wall_us);
        if (a > out->oldest_age_us)
            out->oldest_age_us = a;
    }
    out->pending = (uint32_t)h->npend;
}
