#include "sl_snapshot.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_hmsg.h"
#include "sl_journal.h"
#include "sl_log.h"
#include "sl_regs.h"

#define NONE UINT32_MAX
#define EVENT_BYTES (SL_MSG_HDR_BYTES + SL_EVENT_HDR_BYTES + SL_EVENT_TEXT_MAX)

/* Per-tag state: 56 bytes. The pending list is intrusive (prev/next tag
 * indices), so removing a tag a keyframe has just carried is O(1) and the
 * FIFO can never hold a tag twice. The type is here because an update
 * checks it; everything else about the tag is read from the schema source
 * only when a SCHEMA chunk is written. */
struct tagstate {
    uint64_t raw, time_us;
    uint64_t sent_raw;           /* last value put on the wire (delta or keyframe);
                                  * with a journal: the last value journaled */
    uint64_t queued_us;          /* when it joined the pending list */
    uint32_t quality;
    uint32_t sent_quality;
    uint32_t prev, next;
    uint8_t type;                /* SL_TYPE_* */
    bool pending;
    bool urgent;                 /* quality changed: due at once */
};
_Static_assert(sizeof(struct tagstate) <= 56, "per-tag state grew");

/* The change a journaled tag's pending delta carries (its value and
 * quality are the tag's sent_raw and sent_quality): kept only with a
 * journal, 16 bytes a tag. */
struct jtag {
    uint64_t seq;                /* its change seq (>= 1; 0: nothing journaled yet) */
    uint64_t time_us;            /* its source time */
};

/* What a deadband needs; kept only when some tag has one. */
struct band {
    double scale, deadband;
};

/* A set sent in chunks spread over an interval: keyframes and the schema. */
struct spread {
    uint64_t start_us;
    uint32_t next;               /* next chunk to write; == chunks when done */
    uint32_t chunks;
};

struct event {
    uint8_t bytes[EVENT_BYTES];  /* one encoded EVENT message */
    uint16_t len;
};

struct sl_snapshot {
    uint32_t ntags;
    uint32_t schema_id;
    uint64_t keyframe_us, max_delay_us;
    uint32_t schema_every;
    size_t payload_cap;
    uint32_t chunk_values;       /* keyframe chunk size (last chunk may be smaller) */
    size_t delta_full;           /* pending values that make a full block */

    sl_snapshot_tag_fn tag_fn;       /* the schema, read on demand */
    const void *tag_ctx;
    void (*release)(void *ctx);      /* frees tag_ctx when owned, else NULL */
    struct tagstate *tag;            /* ntags */
    struct band *band;               /* ntags, or NULL: every deadband is 0 */
    struct sl_journal *journal;      /* sl_snapshot_set_journal, or NULL */
    uint64_t journal_id;
    struct jtag *jtag;               /* ntags with a journal, else NULL */
    struct sl_value *scratch;        /* max(chunk_values, one DELTA) values */
    size_t scratch_n;
    struct sl_schema_tag *sc_scratch;    /* chunk_values records: one SCHEMA chunk */
    uint32_t *schema_start;          /* first tag of each schema chunk, +1 sentinel */
    uint32_t *schema_bytes;          /* each chunk's encoded SCHEMA message bytes: a block
                                      * without that much room is passed over without
                                      * reading the chunk's tags */
    size_t schema_start_n;

    uint32_t head, tail;             /* pending FIFO */
    uint32_t npending, nurgent;

    struct spread kf;
    uint32_t kf_id;
    uint64_t kf_started;             /* keyframes started since create */
    struct spread sc;
    bool sc_active, sc_urgent;

    struct event ev[SL_SNAPSHOT_EVENTS];
    uint32_t ev_head, ev_n;

    struct sl_snapshot_stats st;
};

/* ---- set-up -------------------------------------------------------------- */

static void array_tag(const void *ctx, uint32_t tag_id, struct sl_snapshot_tag *out)
{
    *out = ((const struct sl_snapshot_tag *)ctx)[tag_id];
}

/* Bytes of SCHEMA tag records one message can carry in cap bytes of
 * payload: what sl_msg_schema_fit measures against. */
static size_t schema_room(size_t cap)
{
    size_t fixed = SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES;
    if (cap < fixed)
        return 0;
    size_t room = cap - fixed, body_room = SL_MSG_BODY_MAX - SL_SCHEMA_HDR_BYTES;
    return room < body_room ? room : body_room;
}

/* One pass over a schema read through fn: checks every tag (its id is its
 * index, deadband >= 0, sl_msg_tag_check; types equal to types[] when
 * given), plans the SCHEMA chunks greedily (as many whole records as fit
 * an empty payload, at most per, the same cut sl_msg_schema_fit makes) into
 * starts[0..*nchunks] with each chunk's message bytes in bytes[0..*nchunks),
 * and says whether any deadband is non-zero. */
static sl_err scan_schema(uint32_t *starts, uint32_t *bytes, size_t starts_n, uint32_t *nchunks, bool *banded,
                          sl_snapshot_tag_fn fn, const void *ctx, uint32_t n, size_t payload_cap,
                          uint32_t per, const struct tagstate *types)
{
    size_t room = schema_room(payload_cap), used = 0;
    const size_t fixed = SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES;
    uint32_t c = 0, count = 0;
    *banded = false;
    starts[0] = 0;
    bytes[0] = (uint32_t)fixed;
    for (uint32_t i = 0; i < n; i++) {
        struct sl_snapshot_tag t;
        fn(ctx, i, &t);
        if (types && t.schema.type != types[i].type)
            return SL_ERR_MISMATCH;
        if (t.schema.tag_id != i || !(t.deadband >= 0))
            return SL_ERR_RANGE;
        sl_err e = sl_msg_tag_check(&t.schema);
        if (e != SL_OK)
            return e;
        *banded |= t.deadband > 0;
        size_t b = sl_msg_tag_bytes(&t.schema);
        if (b > room)
            return SL_ERR_RANGE;
        if (count == per || count == UINT16_MAX || b > room - used) {
            if (c >= UINT16_MAX || c + 1 >= starts_n)
                return SL_ERR_RANGE;
            bytes[c] = (uint32_t)(fixed + used);
            starts[++c] = i;
            count = 0;
            used = 0;
        }
        count++;
        used += b;
    }
    if (n > 0) {
        if (c >= UINT16_MAX || c + 1 >= starts_n)
            return SL_ERR_RANGE;
        bytes[c] = (uint32_t)(fixed + used);
        starts[++c] = n;
    } else {
        starts[1] = 0;   /* an empty set is one empty chunk */
    }
    *nchunks = c ? c : 1;
    return SL_OK;
}

/* Takes a scanned schema: deadbands into band (when given). */
static void fill_band(struct band *band, sl_snapshot_tag_fn fn, const void *ctx, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct sl_snapshot_tag t;
        fn(ctx, i, &t);
        band[i].scale = t.schema.scale;
        band[i].deadband = t.deadband;
    }
}

static void schema_start(struct sl_snapshot *s, uint64_t now_us, bool urgent)
{
    s->sc.start_us = now_us;
    s->sc.next = 0;
    s->sc_active = true;
    s->sc_urgent = urgent;
}

void sl_snapshot_destroy(struct sl_snapshot *s)
{
    if (!s)
        return;
    if (s->release)
        s->release((void *)s->tag_ctx);
    free(s->tag);
    free(s->band);
    free(s->jtag);
    free(s->scratch);
    free(s->sc_scratch);
    free(s->schema_start);
    free(s->schema_bytes);
    free(s);
}

sl_err sl_snapshot_create(struct sl_snapshot **out, const struct sl_snapshot_config *cfg,
                          uint64_t now_us)
{
    *out = NULL;
    if ((cfg->ntags && !cfg->tags && !cfg->tag_fn) || cfg->keyframe_ms == 0 ||
        cfg->schema_every > SL_SNAPSHOT_SCHEMA_EVERY_MAX || cfg->payload_cap > SL_BLOCK_PAYLOAD_MAX)
        return SL_ERR_RANGE;
    size_t fit = sl_msg_keyframe_fit(cfg->payload_cap);
    size_t dfit = sl_msg_delta_fit(cfg->payload_cap);
    if (fit == 0 || dfit == 0 || cfg->chunk_values > fit)
        return SL_ERR_RANGE;

    uint32_t per = cfg->chunk_values;
    if (per == 0) {
        /* Enough chunks to spread a big table, never so small that each
         * costs a nearly empty block. */
        uint64_t want = ((uint64_t)cfg->ntags + SL_SNAPSHOT_SLICES_MAX - 1) / SL_SNAPSHOT_SLICES_MAX;
        if (want < SL_SNAPSHOT_CHUNK_MIN)
            want = SL_SNAPSHOT_CHUNK_MIN;
        per = (uint32_t)(want < fit ? want : fit);
    }
    uint64_t kchunks = cfg->ntags ? ((uint64_t)cfg->ntags + per - 1) / per : 1;
    /* Schema chunks hold up to per records, fewer when records are long:
     * bound the worst case (every record at its maximum) so a schema
     * loaded later by sl_snapshot_set_schema() always plans. */
    size_t body = cfg->payload_cap - SL_MSG_HDR_BYTES;
    if (body > SL_MSG_BODY_MAX)
        body = SL_MSG_BODY_MAX;
    if (cfg->payload_cap < SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES + SL_SCHEMA_TAG_MAX_BYTES)
        return SL_ERR_RANGE;
    uint64_t worst = (body - SL_SCHEMA_HDR_BYTES) / SL_SCHEMA_TAG_MAX_BYTES;
    if (worst > per)
        worst = per;
    if (kchunks > UINT16_MAX || (cfg->ntags + worst - 1) / worst > UINT16_MAX)
        return SL_ERR_RANGE;

    struct sl_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    size_t nt = cfg->ntags ? cfg->ntags : 1;
    s->scratch_n = per > dfit ? per : dfit;   /* both <= SL_DELTA_VALUES_MAX */
    /* At most 65535 chunks (checked above), at most one per tag. */
    s->schema_start_n = (nt < UINT16_MAX ? nt : UINT16_MAX) + 1;
    s->tag = calloc(nt, sizeof *s->tag);
    s->scratch = calloc(s->scratch_n, sizeof *s->scratch);
    s->sc_scratch = calloc(per, sizeof *s->sc_scratch);
    s->schema_start = calloc(s->schema_start_n, sizeof *s->schema_start);
    s->schema_bytes = calloc(s->schema_start_n, sizeof *s->schema_bytes);
    struct sl_snapshot_tag *own = NULL;
    if (cfg->tags) {
        own = malloc(nt * sizeof *own);
        if (own) {
            memcpy(own, cfg->tags, cfg->ntags * sizeof *own);
            s->release = free;
        }
    }
    s->tag_fn = cfg->tags ? array_tag : cfg->tag_fn;
    s->tag_ctx = cfg->tags ? own : cfg->tag_ctx;
    if (!s->tag || !s->scratch || !s->sc_scratch || !s->schema_start || !s->schema_bytes ||
        (cfg->tags && !own)) {
        sl_snapshot_destroy(s);
        return SL_ERR_NOMEM;
    }
    s->ntags = cfg->ntags;
    s->schema_id = cfg->schema_id;
    s->keyframe_us = (uint64_t)cfg->keyframe_ms * 1000u;
    s->max_delay_us = (uint64_t)cfg->max_delay_ms * 1000u;
    s->schema_every = cfg->schema_every ? cfg->schema_every : SL_SNAPSHOT_SCHEMA_EVERY_MAX;
    s->payload_cap = cfg->payload_cap;
    s->chunk_values = per;
    s->delta_full = dfit;
    bool banded;
    sl_err e = scan_schema(s->schema_start, s->schema_bytes, s->schema_start_n, &s->sc.chunks, &banded, s->tag_fn,
                           s->tag_ctx, s->ntags, s->payload_cap, per, NULL);
    if (e == SL_OK && banded) {
        s->band = calloc(nt, sizeof *s->band);
        if (s->band)
            fill_band(s->band, s->tag_fn, s->tag_ctx, s->ntags);
        else
            e = SL_ERR_NOMEM;
    }
    if (e != SL_OK) {
        sl_snapshot_destroy(s);
        return e;
    }
    for (uint32_t i = 0; i < cfg->ntags; i++) {
        struct tagstate *t = &s->tag[i];
        struct sl_snapshot_tag st;
        s->tag_fn(s->tag_ctx, i, &st);
        t->type = st.schema.type;
        t->quality = t->sent_quality = SL_Q_BAD_WAITING_INITIAL;
        t->prev = t->next = NONE;
    }
    s->head = s->tail = NONE;
    s->kf.chunks = (uint32_t)kchunks;
    s->kf.start_us = now_us;
    s->kf.next = 0;
    s->kf_id = 1;
    s->kf_started = 1;
    schema_start(s, now_us, true);
    *out = s;
    return SL_OK;
}

sl_err sl_snapshot_set_schema_fn(struct sl_snapshot *s, sl_snapshot_tag_fn fn, const void *ctx,
                                 void (*release)(void *ctx), uint32_t ntags, uint32_t schema_id,
                                 uint64_t now_us)
{
    /* Planned and checked aside, then swapped in: nothing changes on error. */
    if (ntags != s->ntags)
        return SL_ERR_MISMATCH;
    uint32_t *starts = calloc(s->schema_start_n, sizeof *starts);
    uint32_t *bytes = calloc(s->schema_start_n, sizeof *bytes);
    uint32_t nchunks = 0;
    bool banded = false;
    sl_err e = starts && bytes ? SL_OK : SL_ERR_NOMEM;
    if (e == SL_OK)
        e = scan_schema(starts, bytes, s->schema_start_n, &nchunks, &banded, fn, ctx, ntags, s->payload_cap,
                        s->chunk_values, s->tag);
    struct band *band = NULL;
    if (e == SL_OK && banded && !(band = calloc(ntags ? ntags : 1, sizeof *band)))
        e = SL_ERR_NOMEM;
    if (e != SL_OK) {
        free(starts);
        free(bytes);
        return e;
    }
    if (band)
        fill_band(band, fn, ctx, ntags);
    free(s->band);
    s->band = band;
    free(s->schema_start);
    s->schema_start = starts;
    free(s->schema_bytes);
    s->schema_bytes = bytes;
    s->sc.chunks = nchunks;
    if (s->release)
        s->release((void *)s->tag_ctx);
    s->release = release;
    s->tag_fn = fn;
    s->tag_ctx = ctx;
    s->schema_id = schema_id;
    schema_start(s, now_us, true);
    return SL_OK;
}

sl_err sl_snapshot_set_schema(struct sl_snapshot *s, const struct sl_snapshot_tag *tags,
                              uint32_t ntags, uint32_t schema_id, uint64_t now_us)
{
    if (ntags != s->ntags)
        return SL_ERR_MISMATCH;
    struct sl_snapshot_tag *own = malloc((ntags ? ntags : 1) * sizeof *own);
    if (!own)
        return SL_ERR_NOMEM;
    memcpy(own, tags, ntags * sizeof *own);
    sl_err e = sl_snapshot_set_schema_fn(s, array_tag, own, free, ntags, schema_id, now_us);
    if (e != SL_OK)
        free(own);
    return e;
}

/* ---- updates ------------------------------------------------------------- */

static void unlink_pending(struct sl_snapshot *s, uint32_t id)
{
    struct tagstate *t = &s->tag[id];
    if (t->prev != NONE)
        s->tag[t->prev].next = t->next;
    else
        s->head = t->next;
    if (t->next != NONE)
        s->tag[t->next].prev = t->prev;
    else
        s->tail = t->prev;
    t->prev = t->next = NONE;
    t->pending = false;
    if (t->urgent)
        s->nurgent--;
    t->urgent = false;
    s->npending--;
}

/* Largest raw each type can carry (the sl_msg_value_check rule): the
 * tag's type was checked at create, so an update only compares widths. */
static const uint64_t type_max[16] = {
    [SL_TYPE_BOOL] = 1u,
    [SL_TYPE_INT16] = 0xFFFFu, [SL_TYPE_UINT16] = 0xFFFFu,
    [SL_TYPE_INT32] = 0xFFFFFFFFu, [SL_TYPE_UINT32] = 0xFFFFFFFFu, [SL_TYPE_FLOAT32] = 0xFFFFFFFFu,
    [SL_TYPE_INT64] = UINT64_MAX, [SL_TYPE_FLOAT64] = UINT64_MAX,
};

/* One update of a known tag (tag_id < ntags). held: the caller holds the
 * journal's append lock (sl_journal_append_begin). */
static inline sl_err update_one(struct sl_snapshot *s, uint32_t tag_id, uint64_t raw, uint32_t quality,
                                uint64_t source_time_us, uint64_t now_us, bool held)
{
    struct tagstate *t = &s->tag[tag_id];
    if (raw > type_max[t->type & 15u])
        return SL_ERR_RANGE;
    t->raw = raw;
    t->quality = quality;
    t->time_us = source_time_us;
    s->st.updates++;
    bool qchange = quality != t->sent_quality;
    /* Without deadbands any other bit pattern is a change (the rule of
     * sl_regs_deadband_exceeded for a band of 0), decided inline. */
    const struct band *b = s->band ? &s->band[tag_id] : NULL;
    if (!qchange && (raw == t->sent_raw ||
                     (b && !sl_regs_deadband_exceeded(t->sent_raw, raw, t->type, b->scale, b->deadband))))
        return SL_OK;   /* within the band of what RX holds (or of what was
                         * journaled); a pending entry stays */
    if (s->journal) {
        /* The journal holds every change past the band; the pending
         * delta carries the newest one with its seq, and the ones it
         * replaces reach RX by backfill. */
        uint64_t seq = 0;
        sl_err e = held ? sl_journal_append_held(s->journal, tag_id, source_time_us, raw, t->type, quality, &seq)
                        : sl_journal_append(s->journal, tag_id, source_time_us, raw, t->type, quality, &seq);
        if (e != SL_OK)
            return e;   /* a type above 15: not reached (checked above) */
        t->sent_raw = raw;
        t->sent_quality = quality;
        s->jtag[tag_id].seq = seq;
        s->jtag[tag_id].time_us = source_time_us;
        s->st.journaled++;
    }
    s->st.changes++;
    if (t->pending) {
        s->st.coalesced++;   /* the waiting value is replaced by this one */
    } else {
        t->pending = true;
        t->queued_us = now_us;
        t->next = NONE;
        t->prev = s->tail;
        if (s->tail != NONE)
            s->tag[s->tail].next = tag_id;
        else
            s->head = tag_id;
        s->tail = tag_id;
        s->npending++;
    }
    if (qchange && !t->urgent) {
        t->urgent = true;
        s->nurgent++;
    }
    return SL_OK;
}

sl_err sl_snapshot_update(struct sl_snapshot *s, uint32_t tag_id, uint64_t raw, uint32_t quality,
                          uint64_t source_time_us, uint64_t now_us)
{
    if (tag_id >= s->ntags)
        return SL_ERR_RANGE;
    return update_one(s, tag_id, raw, quality, source_time_us, now_us, false);
}

uint32_t sl_snapshot_update_range(struct sl_snapshot *s, uint32_t first, uint32_t n, uint64_t raw,
                                  uint32_t quality, uint64_t source_time_us, uint64_t now_us)
{
    if (first >= s->ntags)
        return n;
    uint32_t refused = 0;
    if (n > s->ntags - first) {
        refused = n - (s->ntags - first);
        n = s->ntags - first;
    }
    /* The journal's lock once per run, not once per change. The mutex is
     * not fair: between back-to-back runs the flusher may lose the lock
     * again, so in the worst case it waits for the whole call (one
     * generator turn, SL_SOURCE_GEN_PER_TURN changes, ~10 ms), as it could
     * with a lock per change; its buffer absorbs that (a full one is a
     * counted gap). */
    for (uint32_t done = 0; done < n;) {
        uint32_t run = n - done < SL_SNAPSHOT_JOURNAL_RUN ? n - done : SL_SNAPSHOT_JOURNAL_RUN;
        if (s->journal)
            sl_journal_append_begin(s->journal);
        for (uint32_t i = first + done, end = first + done + run; i < end; i++)
            refused += update_one(s, i, raw, quality, source_time_us, now_us, s->journal != NULL) != SL_OK;
        if (s->journal)
            sl_journal_append_end(s->journal);
        done += run;
    }
    return refused;
}

sl_err sl_snapshot_set_journal(struct sl_snapshot *s, struct sl_journal *j)
{
    if (!j || s->journal)
        return SL_ERR_RANGE;
    s->jtag = calloc(s->ntags ? s->ntags : 1, sizeof *s->jtag);
    if (!s->jtag)
        return SL_ERR_NOMEM;
    s->journal = j;
    s->journal_id = sl_journal_id(j);
    s->delta_full = sl_msg_delta_seq_fit(s->payload_cap);
    /* What RX holds is no longer the band's reference: what was journaled
     * is, and nothing has been yet. Pending deltas were queued without a
     * seq: they wait for the next change (the keyframe carries the value). */
    while (s->npending) {
        unlink_pending(s, s->head);
        s->st.satisfied++;
    }
    return SL_OK;
}

uint32_t sl_snapshot_schema_every(sl_snapshot_tag_fn fn, const void *ctx, uint32_t ntags,
                                  size_t payload_cap, double rate_mbps, uint32_t keyframe_ms)
{
    size_t body = payload_cap > SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES
                      ? payload_cap - SL_MSG_HDR_BYTES - SL_SCHEMA_HDR_BYTES : 1;
    double bytes = 0;
    for (uint32_t i = 0; i < ntags; i++) {
        struct sl_snapshot_tag t;
        fn(ctx, i, &t);
        bytes += (double)sl_msg_tag_bytes(&t.schema);
    }
    double chunks = bytes > 0 ? (double)(uint64_t)((bytes + (double)body - 1) / (double)body) : 1;
    bytes += chunks * (SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES + SL_BLOCK_OVERHEAD);
    double budget = rate_mbps * 1e6 / 8.0 * keyframe_ms / 1000.0 * SL_SNAPSHOT_SCHEMA_SHARE;
    if (budget <= 0 || bytes > (SL_SNAPSHOT_SCHEMA_EVERY_MAX - 1) * budget)
        return SL_SNAPSHOT_SCHEMA_EVERY_MAX;
    return (uint32_t)(bytes / budget) + 1;
}

size_t sl_snapshot_event_text(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
    return len;
}

sl_err sl_snapshot_event(struct sl_snapshot *s, uint8_t kind, uint8_t mirror_unit, uint64_t time_us,
                         const char *text, size_t text_len)
{
    struct event tmp;
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, tmp.bytes, sizeof tmp.bytes);
    sl_err e = sl_msg_put_event(&w, kind, mirror_unit, time_us, text, text_len);
    if (e != SL_OK)
        return e == SL_ERR_CAPACITY ? SL_ERR_RANGE : e;
    if (s->ev_n == SL_SNAPSHOT_EVENTS) {
        s->ev_head = (s->ev_head + 1) % SL_SNAPSHOT_EVENTS;   /* drop the oldest */
        s->ev_n--;
        s->st.events_dropped++;
    }
    struct event *slot = &s->ev[(s->ev_head + s->ev_n) % SL_SNAPSHOT_EVENTS];
    memcpy(slot->bytes, tmp.bytes, w.off);
    slot->len = (uint16_t)w.off;
    s->ev_n++;
    return SL_OK;
}

/* ---- scheduling ---------------------------------------------------------- */

static uint64_t chunk_due(const struct spread *sp, uint64_t interval_us)
{
    if (sp->next >= sp->chunks)
        return sp->start_us + interval_us;   /* the next set's first chunk */
    return sp->start_us + interval_us * sp->next / sp->chunks;
}

static uint64_t delta_due(const struct sl_snapshot *s)
{
    if (!s->npending)
        return UINT64_MAX;
    if (s->nurgent || s->npending >= s->delta_full)
        return 0;
    return s->tag[s->head].queued_us + s->max_delay_us;
}

static uint64_t schema_due(const struct sl_snapshot *s)
{
    if (!s->sc_active)
        return UINT64_MAX;
    return s->sc_urgent ? 0 : chunk_due(&s->sc, s->keyframe_us);
}

/* Starts the next keyframe once the current one is complete and its
 * interval is over; a schedule more than an interval behind restarts at
 * now instead of bursting to catch up. */
static void roll(struct sl_snapshot *s, uint64_t now_us)
{
    if (s->kf.next < s->kf.chunks || now_us < s->kf.start_us + s->keyframe_us)
        return;
    s->kf.start_us += s->keyframe_us;
    if (now_us >= s->kf.start_us + s->keyframe_us)
        s->kf.start_us = now_us;
    s->kf.next = 0;
    s->kf_id++;
    if (s->kf_started++ % s->schema_every == 0 && !s->sc_active)
        schema_start(s, s->kf.start_us, false);
}

uint64_t sl_snapshot_next_due_us(const struct sl_snapshot *s)
{
    if (s->ev_n)
        return 0;
    uint64_t due = chunk_due(&s->kf, s->keyframe_us);
    uint64_t d = delta_due(s);
    if (d < due)
        due = d;
    d = schema_due(s);
    return d < due ? d : due;
}

/* ---- writing ------------------------------------------------------------- */

static void fill_value(const struct sl_snapshot *s, uint32_t id, struct sl_value *v)
{
    const struct tagstate *t = &s->tag[id];
    v->tag_id = id;
    v->type = t->type;
    v->raw = t->raw;
    v->quality = t->quality;
    v->source_time_us = t->time_us;
}

/* A pending delta: the current value, or with a journal the change
 * journaled last, with its seq. */
static void fill_delta(const struct sl_snapshot *s, uint32_t id, struct sl_value *v)
{
    fill_value(s, id, v);
    v->seq = 0;
    if (s->journal) {
        const struct tagstate *t = &s->tag[id];
        v->raw = t->sent_raw;
        v->quality = t->sent_quality;
        v->source_time_us = s->jtag[id].time_us;
        v->seq = s->jtag[id].seq;
    }
}

/* With a journal, sent_* are the last journaled value and stay so. */
static void mark_sent(struct sl_snapshot *s, uint32_t id)
{
    struct tagstate *t = &s->tag[id];
    if (s->journal)
        return;
    t->sent_raw = t->raw;
    t->sent_quality = t->quality;
}

static size_t room(const struct sl_msg_writer *w)
{
    return w->cap - w->off;
}

/* Events, oldest first, while they fit. */
static void write_events(struct sl_snapshot *s, struct sl_msg_writer *w)
{
    while (s->ev_n) {
        const struct event *ev = &s->ev[s->ev_head];
        if (ev->len > room(w))
            return;
        memcpy(w->p + w->off, ev->bytes, ev->len);   /* encoded and checked at queue time */
        w->off += ev->len;
        s->ev_head = (s->ev_head + 1) % SL_SNAPSHOT_EVENTS;
        s->ev_n--;
        s->st.events_sent++;
    }
}

/* One whole keyframe chunk if it fits; false otherwise (nothing written). */
static bool write_kf_chunk(struct sl_snapshot *s, struct sl_msg_writer *w)
{
    uint32_t c = s->kf.next;
    uint32_t first = c * s->chunk_values;
    uint32_t n = s->ntags - first < s->chunk_values ? s->ntags - first : s->chunk_values;
    /* Only a whole chunk keeps "every tag exactly once per keyframe". */
    if (SL_MSG_HDR_BYTES + SL_KEYFRAME_HDR_BYTES + (size_t)n * SL_VALUE_BYTES > room(w))
        return false;
    for (uint32_t i = 0; i < n; i++)
        fill_value(s, first + i, &s->scratch[i]);
    size_t taken = 0;
    sl_err e = sl_msg_put_keyframe(w, &taken, s->kf_id, (uint16_t)c, (uint16_t)s->kf.chunks, s->ntags,
                                   s->scratch, n);
    if (e != SL_OK || taken != n)
        return false;   /* sized and checked above: not reached */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = first + i;
        /* The keyframe carries the same absolute value; but not the
         * journaled change's seq, so with a journal the delta still goes. */
        if (s->tag[id].pending && !s->journal) {
            unlink_pending(s, id);
            s->st.satisfied++;
        }
        mark_sent(s, id);
    }
    s->st.keyframe_chunks++;
    if (++s->kf.next == s->kf.chunks)
        s->st.keyframes++;
    return true;
}

static bool write_schema_chunk(struct sl_snapshot *s, struct sl_msg_writer *w)
{
    uint32_t c = s->sc.next;
    uint32_t first = s->schema_start[c], n = s->schema_start[c + 1] - first;
    /* A block filled by deltas asks for the due chunk at its end, block
     * after block: its size, known since the scan, answers without
     * reading (and copying) every tag of the chunk each time. */
    if (s->schema_bytes[c] > room(w))
        return false;
    /* n <= chunk_values (scan_schema): the chunk's records fit the scratch. */
    for (uint32_t i = 0; i < n; i++) {
        struct sl_snapshot_tag t;
        s->tag_fn(s->tag_ctx, first + i, &t);
        s->sc_scratch[i] = t.schema;
    }
    if (n ? sl_msg_schema_fit(room(w), s->sc_scratch, n) < n
          : room(w) < SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES)
        return false;   /* whole chunks only */
    size_t taken = 0;
    sl_err e = sl_msg_put_schema(w, &taken, s->schema_id, (uint16_t)c, (uint16_t)s->sc.chunks, s->ntags,
                                 s->sc_scratch, n);
    if (e != SL_OK || taken != n)
        return false;   /* fit said it fits and tags were checked: not reached */
    s->st.schema_chunks++;
    if (++s->sc.next == s->sc.chunks) {
        s->sc_active = false;
        s->sc_urgent = false;
        s->st.schemas++;
    }
    return true;
}

/* A pending delta the encoder refused (with a journal: a seq outside
 * 1 .. SL_HREC_SEQ_LIMIT - 1, which the journal never hands out, so only a
 * bug gets here): dropped and counted, logged once, so that one bad entry
 * at the head can never hold back every other tag's deltas. The value
 * still reaches RX by the next keyframe. */
static void drop_refused(struct sl_snapshot *s, uint32_t id)
{
    if (s->st.delta_refused++ == 0)
        sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-SEQ",
                  "journal: a delta with seq %llu cannot be sent (the wire takes 1 .. 2^62 - 1): dropped, "
                  "the value goes by keyframe (further ones counted only)",
                  (unsigned long long)(s->journal ? s->jtag[id].seq : 0));
    unlink_pending(s, id);
}

/* Every pending delta that fits, oldest first. */
static void write_deltas(struct sl_snapshot *s, struct sl_msg_writer *w)
{
    while (s->npending) {
        size_t fit = s->journal ? sl_msg_delta_seq_fit(room(w)) : sl_msg_delta_fit(room(w));
        if (fit == 0)
            return;
        if (s->journal && (s->jtag[s->head].seq == 0 || s->jtag[s->head].seq >= SL_HREC_SEQ_LIMIT)) {
            drop_refused(s, s->head);
            continue;
        }
        size_t n = 0;
        for (uint32_t id = s->head; id != NONE && n < fit && n < s->scratch_n; id = s->tag[id].next) {
            if (s->journal && (s->jtag[id].seq == 0 || s->jtag[id].seq >= SL_HREC_SEQ_LIMIT))
                break;   /* dropped when it reaches the head */
            fill_delta(s, id, &s->scratch[n++]);
        }
        size_t taken = 0;
        sl_err e = s->journal ? sl_msg_put_delta_seq(w, &taken, s->journal_id, s->scratch, n)
                              : sl_msg_put_delta(w, &taken, s->scratch, n);
        if (e != SL_OK && taken == 0 && s->npending) {
            /* Values were checked on update, seqs above: not reached. Still,
             * never leave a refused entry at the head. */
            drop_refused(s, s->head);
            continue;
        }
        if (taken == 0)
            return;
        for (size_t i = 0; i < taken; i++) {
            uint32_t id = s->head;
            unlink_pending(s, id);
            mark_sent(s, id);
        }
        s->st.deltas_sent += taken;
    }
}

sl_err sl_snapshot_fill(struct sl_snapshot *s, uint8_t *payload, size_t cap, uint64_t now_us,
                        size_t *used)
{
    *used = 0;
    roll(s, now_us);
    if (sl_snapshot_next_due_us(s) > now_us)
        return SL_ERR_AGAIN;
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, payload, cap);

    write_events(s, &w);
    while (s->sc_active && s->sc_urgent && write_schema_chunk(s, &w))
        ;
    if (s->sc_active && s->sc_urgent && w.off > 0)
        goto done;   /* values only after the whole new schema */
    /* Overload: chunks a whole interval late go ahead of deltas. */
    while (s->kf.next < s->kf.chunks && chunk_due(&s->kf, s->keyframe_us) + s->keyframe_us <= now_us &&
           write_kf_chunk(s, &w))
        s->st.late++;
    while (s->sc_active && schema_due(s) + s->keyframe_us <= now_us && write_schema_chunk(s, &w))
        s->st.late++;
    write_deltas(s, &w);
    while (s->kf.next < s->kf.chunks && chunk_due(&s->kf, s->keyframe_us) <= now_us && write_kf_chunk(s, &w))
        ;
    while (s->sc_active && schema_due(s) <= now_us && write_schema_chunk(s, &w))
        ;
done:
    if (w.off == 0)
        return SL_ERR_CAPACITY;
    *used = w.off;
    s->st.blocks++;
    return SL_OK;
}

/* ---- queries ------------------------------------------------------------- */

sl_err sl_snapshot_value(const struct sl_snapshot *s, uint32_t tag_id, struct sl_value *out)
{
    memset(out, 0, sizeof *out);
    if (tag_id >= s->ntags)
        return SL_ERR_RANGE;
    fill_value(s, tag_id, out);
    return SL_OK;
}

void sl_snapshot_stats(const struct sl_snapshot *s, struct sl_snapshot_stats *out)
{
    *out = s->st;
    out->pending = s->npending;
    out->keyframe_id = s->kf_id;
}

/* Tag id's device: the last whose first_tag_id <= id (devices number
 * their tags in order from 0). */
static const struct sl_txconf_device *conf_device(const struct sl_txconf *c, uint32_t id)
{
    size_t lo = 0, hi = c->ndevices;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->devices[mid].first_tag_id <= id)
            lo = mid;
        else
            hi = mid;
    }
    return c->ndevices ? &c->devices[lo] : NULL;
}

void sl_snapshot_conf_tag(const void *ctx, uint32_t tag_id, struct sl_snapshot_tag *out)
{
    const struct sl_txconf *c = ctx;
    const struct sl_txconf_device *dev = conf_device(c, tag_id);
    memset(out, 0, sizeof *out);
    if (!dev || tag_id - dev->first_tag_id >= dev->tagmap.count) {
        out->schema.tag_id = UINT32_MAX;   /* not a tag: create and set_schema refuse it */
        return;
    }
    const struct sl_tag *t = &dev->tagmap.tags[tag_id - dev->first_tag_id];
    sl_tagmap_schema_tag(&out->schema, t, tag_id, dev->mirror_unit);
    out->deadband = t->deadband;
}

uint32_t sl_snapshot_conf_schema_id(const struct sl_txconf *c)
{
    uint8_t fp[SL_FP_BYTES];
    sl_txconf_schema_fp(fp, c);
    return (uint32_t)fp[SL_FP_BYTES - 4] << 24 | (uint32_t)fp[SL_FP_BYTES - 3] << 16 |
           (uint32_t)fp[SL_FP_BYTES - 2] << 8 | fp[SL_FP_BYTES - 1];
}

sl_err sl_snapshot_tags_from_conf(struct sl_snapshot_tag **out, uint32_t *schema_id,
                                  const struct sl_txconf *c)
{
    *out = NULL;
    struct sl_snapshot_tag *tags = calloc(c->ntags ? c->ntags : 1, sizeof *tags);
    if (!tags)
        return SL_ERR_NOMEM;
    for (uint32_t id = 0; id < c->ntags; id++) {
        sl_snapshot_conf_tag(c, id, &tags[id]);
        if (tags[id].schema.tag_id != id) {
            free(tags);
            return SL_ERR_RANGE;
        }
    }
    *schema_id = sl_snapshot_conf_schema_id(c);
    *out = tags;
    return SL_OK;
}

uint32_t sl_snapshot_delay_ms(const struct sl_txconf *c)
{
    return (c->snapshot.max_delay_ms + 1u) / 2u;
}

sl_err sl_snapshot_from_conf(struct sl_snapshot **out, uint32_t *schema_id, const struct sl_txconf *c,
                             size_t payload_cap, uint64_t now_us)
{
    *schema_id = sl_snapshot_conf_schema_id(c);
    struct sl_snapshot_config sc = {
        .tag_fn = sl_snapshot_conf_tag, .tag_ctx = c, .ntags = c->ntags, .schema_id = *schema_id,
        .keyframe_ms = c->snapshot.keyframe_ms, .max_delay_ms = sl_snapshot_delay_ms(c),
        .schema_every = sl_snapshot_schema_every(sl_snapshot_conf_tag, c, c->ntags, payload_cap,
                                                 c->link.rate_mbps, c->snapshot.keyframe_ms),
        .payload_cap = payload_cap,
    };
    sl_err e = sl_snapshot_create(out, &sc, now_us);
    if (e != SL_OK)
        sl_log(SL_LOG_ERR, "cannot create the snapshot engine: %s", sl_strerror(e));
    return e;
}
