/* The backfill carousel (sl_carousel.h): a producer that reads the journal
 * level by level into a ring of HISTORY payloads, and a consumer in the
 * send loop that puts them on the history channel within the share. */
#define _GNU_SOURCE
#include "sl_carousel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_fec.h"
#include "sl_hmsg.h"
#include "sl_journal.h"
#include "sl_log.h"
#include "sl_pace.h"
#include "sl_sender.h"
#include "sl_thread.h"
#include "sl_wire.h"

#define BURST_BLOCKS 2u          /* the bucket's depth: full blocks' wire time */
#define OLDEST_SCAN_MAX 4096u    /* records read to find the journal's oldest value */

struct level {
    struct sl_journal_iter *it;
    uint64_t window_us;
    uint64_t vtime;              /* bytes / weight: start-time fair queueing */
    uint64_t next_start_us;      /* monotonic: no new pass before */
    uint64_t pass_mono_us;       /* monotonic: the current pass started */
};

struct sl_carousel {
    struct sl_carousel_config cfg;
    unsigned nlevels;
    struct level lv[SL_CAROUSEL_LEVELS_MAX];
    uint64_t vclock;             /* vtime of the level served last */

    /* the batch: records of one level, sorted by tag, being encoded */
    struct sl_hrec *batch;
    size_t batch_cap, batch_n, batch_pos;
    unsigned batch_level;
    bool batch_ends_pass;        /* its level's pass is done once it is encoded */
    struct sl_hstatus batch_hs;  /* the status its payloads carry (taken at its read) */

    /* the journal's oldest value time, found again when oldest_seq moves */
    struct sl_journal_iter *oit;
    uint64_t oldest_seq, oldest_time_us;
    bool oldest_known;
    uint64_t last_payload_us;    /* monotonic: the producer's last payload */

    /* ring: slots [head, tail) are ready; the producer owns the others */
    uint8_t *slot[SL_CAROUSEL_RING];
    size_t slot_len[SL_CAROUSEL_RING];
    uint32_t slot_records[SL_CAROUSEL_RING];
    _Atomic uint64_t head, tail;

    /* consumer: the share's token bucket on wire time */
    uint64_t next_us;            /* monotonic: the next block may go then */
    uint64_t burst_us;

    pthread_mutex_t mu;          /* stats, and the producer's sleep */
    pthread_cond_t cv;
    struct sl_carousel_stats st;
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

unsigned sl_carousel_level_count(uint64_t window_s, uint64_t base_window_s)
{
    if (base_window_s == 0)
        base_window_s = SL_CAROUSEL_W0_S;
    unsigned n = 1;
    uint64_t w = base_window_s;
    while (w < window_s && n < SL_CAROUSEL_LEVELS_MAX) {
        w *= 2;
        n++;
    }
    return n;
}

uint64_t sl_carousel_wire_bytes(unsigned k, unsigned m, unsigned symbol_bytes, size_t len)
{
    if (len == 0 || symbol_bytes == 0)
        return 0;
    size_t kb = (len + SL_BLOCK_OVERHEAD + symbol_bytes - 1) / symbol_bytes;
    if (kb > k)
        kb = k;
    unsigned frames = (unsigned)kb + sl_fec_repair_count(k, m, (unsigned)kb);
    return frames * sl_pace_wire_bytes(SL_FRAME_OVERHEAD + (size_t)symbol_bytes);
}

/* Wire time in µs of wire bytes at the share: bits / (Mbit/s). */
static uint64_t wire_us(const struct sl_carousel *c, uint64_t wire)
{
    return (uint64_t)((double)wire * 8.0 / c->cfg.rate_mbps);
}

sl_err sl_carousel_create(struct sl_carousel **out, const struct sl_carousel_config *cfg)
{
    *out = NULL;
    if (!cfg->journal || cfg->window_s == 0 || !(cfg->rate_mbps > 0) || cfg->k == 0 || cfg->m == 0 ||
        cfg->k + cfg->m > SL_FEC_MAX_SYMBOLS || cfg->symbol_bytes == 0 || cfg->payload_cap < 64)
        return SL_ERR_RANGE;
    struct sl_carousel *c = calloc(1, sizeof *c);
    if (!c)
        return SL_ERR_NOMEM;
    c->cfg = *cfg;
    if (c->cfg.base_window_s == 0)
        c->cfg.base_window_s = SL_CAROUSEL_W0_S;
    if (c->cfg.batch_records == 0)
        c->cfg.batch_records = SL_CAROUSEL_BATCH_DEFAULT;
    pthread_mutex_init(&c->mu, NULL);
    /* The producer sleeps on the monotonic clock: a wall-clock step back
     * must not stop the backfill (nor the status) for the step's length. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&c->head, 0);
    atomic_init(&c->tail, 0);
    atomic_init(&c->stop, false);
    c->nlevels = sl_carousel_level_count(c->cfg.window_s, c->cfg.base_window_s);
    c->st.levels = c->nlevels;
    bool ok = true;
    for (unsigned j = 0; j < c->nlevels; j++) {
        uint64_t w = c->cfg.base_window_s << j;
        if (w > c->cfg.window_s)
            w = c->cfg.window_s;
        c->lv[j].window_us = w * 1000000u;
        c->st.level[j].window_s = w;
        ok &= sl_journal_iter_new(&c->lv[j].it, cfg->journal) == SL_OK;
    }
    ok &= sl_journal_iter_new(&c->oit, cfg->journal) == SL_OK;
    c->batch_cap = c->cfg.batch_records;
    c->batch = calloc(c->batch_cap, sizeof *c->batch);
    ok &= c->batch != NULL;
    for (unsigned i = 0; i < SL_CAROUSEL_RING; i++)
        ok &= (c->slot[i] = malloc(cfg->payload_cap)) != NULL;
    if (!ok) {
        sl_carousel_destroy(c);
        return SL_ERR_NOMEM;
    }
    c->burst_us = BURST_BLOCKS * wire_us(c, sl_carousel_wire_bytes(cfg->k, cfg->m, cfg->symbol_bytes,
                                                                     cfg->payload_cap));
    *out = c;
    return SL_OK;
}

/* ---- producer ------------------------------------------------------------ */

static bool ring_full(struct sl_carousel *c)
{
    return atomic_load_explicit(&c->tail, memory_order_relaxed) -
           atomic_load_explicit(&c->head, memory_order_acquire) >= SL_CAROUSEL_RING;
}

/* Hands the slot at tail to the consumer and wakes the send loop. */
static void publish(struct sl_carousel *c, size_t len, uint32_t records, uint64_t now_us)
{
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
    c->slot_len[t % SL_CAROUSEL_RING] = len;
    c->slot_records[t % SL_CAROUSEL_RING] = records;
    atomic_store_explicit(&c->tail, t + 1, memory_order_release);
    c->last_payload_us = now_us;
    if (c->cfg.wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(c->cfg.wake_fd, &one, sizeof one);   /* full counter: already awake */
        (void)w;
    }
}

/* Producer-side counters: under mu, since sl_carousel_stats copies them
 * from another thread. */
static void count(struct sl_carousel *c, uint64_t *field)
{
    pthread_mutex_lock(&c->mu);
    (*field)++;
    pthread_mutex_unlock(&c->mu);
}

static void journal_status(struct sl_carousel *c, struct sl_hstatus *hs, struct sl_journal_stats *js)
{
    sl_journal_stats(c->cfg.journal, js);
    hs->journal_id = sl_journal_id(c->cfg.journal);
    hs->next_seq = js->next_seq ? js->next_seq : 1;
    hs->oldest_seq = js->oldest_seq <= hs->next_seq ? js->oldest_seq : hs->next_seq;
}

/* Source time of the journal's oldest value, looked up again only when its
 * oldest seq moved (a trim); false when it holds no value. */
static bool oldest_time(struct sl_carousel *c, const struct sl_journal_stats *js, uint64_t *out)
{
    if (!js->oldest_seq)
        return false;
    if (js->oldest_seq != c->oldest_seq) {
        c->oldest_seq = js->oldest_seq;
        c->oldest_known = false;
        struct sl_journal_rec r;
        if (sl_journal_iter_from_seq(c->oit, js->oldest_seq) == SL_OK)
            for (unsigned i = 0; i < OLDEST_SCAN_MAX && sl_journal_iter_next(c->oit, &r, NULL) == SL_OK; i++)
                if (r.kind == SL_JOURNAL_VALUE) {
                    c->oldest_time_us = r.source_time_us;
                    c->oldest_known = true;
                    break;
                }
    }
    *out = c->oldest_time_us;
    return c->oldest_known;
}

/* Levels worth running at now: level j + 1 only while level j's window
 * does not already reach the oldest value (else it re-sends the same). An
 * empty journal, or one whose values are all newer than now: level 0 only;
 * one whose oldest value cannot be read: every level (coverage first). */
static unsigned useful_levels(struct sl_carousel *c, const struct sl_journal_stats *js, uint64_t now_us)
{
    uint64_t t;
    if (!js->oldest_seq)
        return 1;
    if (!oldest_time(c, js, &t))
        return c->nlevels;
    if (t >= now_us)
        return 1;
    unsigned n = 1;
    while (n < c->nlevels && c->lv[n - 1].window_us < now_us - t)
        n++;
    return n;
}

/* The inverse of level j's share of the carousel's bytes when `useful`
 * levels run: level 0 (short gaps: cuts, restarts, bursts) one half, the
 * highest level (the whole journal or window_s: every record is re-sent
 * within a bounded time) one quarter, the levels between them the last
 * quarter equally. With two levels, a half each; with one, all. */
static uint64_t inv_weight(unsigned j, unsigned useful)
{
    if (useful == 1)
        return 1;
    if (j == 0 || useful == 2)
        return 2;
    return j == useful - 1 ? 4 : 4 * (uint64_t)(useful - 2);
}

static int rec_cmp(const void *a, const void *b)
{
    const struct sl_hrec *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind > y->kind ? -1 : 1;   /* gaps first */
    if (x->tag_id != y->tag_id)
        return x->tag_id < y->tag_id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Ends level j's pass at monotonic mono_us. Level 0's pass time against
 * its window says whether the share keeps up with the change rate (logged
 * on change). */
static void pass_done(struct sl_carousel *c, unsigned j, uint64_t mono_us)
{
    struct sl_carousel_level *L = &c->st.level[j];
    uint64_t start = c->lv[j].pass_mono_us;
    pthread_mutex_lock(&c->mu);
    L->active = false;
    L->passes++;
    L->last_pass_us = mono_us > start ? mono_us - start : 0;
    bool behind = j == 0 && L->last_pass_us > c->lv[0].window_us;
    bool was = c->st.behind != 0;
    if (j == 0)
        c->st.behind = behind;
    pthread_mutex_unlock(&c->mu);
    if (j != 0 || behind == was)
        return;
    if (behind)
        sl_log_id(SL_LOG_WARNING, "SL-TX-BACKFILL-BEHIND",
                  "backfill: a pass over the last %llu s took %.1f s: the journal changes faster than "
                  "[backfill] share (%.3g Mbit/s) re-sends them; short gaps heal more slowly and older ones "
                  "may be trimmed before they are re-sent",
                  (unsigned long long)L->window_s, (double)L->last_pass_us / 1e6, c->cfg.rate_mbps);
    else
        sl_log_id(SL_LOG_NOTICE, "SL-TX-BACKFILL-OK",
                  "backfill: a pass over the last %llu s takes %.1f s again: the share keeps up",
                  (unsigned long long)L->window_s, (double)L->last_pass_us / 1e6);
}

/* Reads up to a batch of level j's pass into c->batch, sorted; starts the
 * pass first when none is active and ends it at the journal's end. The
 * window is on the wall clock (source times are), the schedule on the
 * monotonic one. */
static void read_batch(struct sl_carousel *c, unsigned j, uint64_t wall_us, uint64_t mono_us)
{
    struct level *lv = &c->lv[j];
    struct sl_carousel_level *L = &c->st.level[j];
    if (!L->active) {
        uint64_t since = wall_us > lv->window_us ? wall_us - lv->window_us : 0;
        if (sl_journal_iter_newest(lv->it, since) != SL_OK) {
            count(c, &c->st.read_errors);
            lv->next_start_us = mono_us + SL_CAROUSEL_IDLE_US;
            return;
        }
        pthread_mutex_lock(&c->mu);
        L->active = true;
        L->pass_start_us = wall_us;
        pthread_mutex_unlock(&c->mu);
        lv->pass_mono_us = mono_us;
        lv->next_start_us = mono_us + SL_CAROUSEL_IDLE_US;
        if (lv->vtime < c->vclock)
            lv->vtime = c->vclock;   /* no credit for the time it had nothing to do */
    }
    c->batch_n = c->batch_pos = 0;
    c->batch_level = j;
    struct sl_journal_rec r;
    sl_err e = SL_OK;
    while (c->batch_n < c->batch_cap && (e = sl_journal_iter_next(lv->it, &r, NULL)) == SL_OK) {
        struct sl_hrec *h = &c->batch[c->batch_n++];
        h->seq = r.seq;
        h->count = r.count;
        h->source_time_us = r.source_time_us;
        h->raw = r.raw;
        h->tag_id = r.kind == SL_JOURNAL_VALUE ? r.tag_id : 0;
        h->quality = r.quality;
        h->type = r.type;
        h->kind = r.kind == SL_JOURNAL_GAP ? SL_HREC_GAP : SL_HREC_VALUE;
    }
    /* The pass ends when its last batch is encoded (encode_batch), so its
     * time counts the sending, up to the ring's three payloads. */
    c->batch_ends_pass = e != SL_OK;
    if (e != SL_OK && e != SL_ERR_EOF)
        count(c, &c->st.read_errors);
    if (c->batch_n > 1)
        qsort(c->batch, c->batch_n, sizeof *c->batch, rec_cmp);
    /* The status every payload of this batch carries, taken now (after the
     * seek: next_seq is above every record read) with oldest_seq no higher
     * than the batch's lowest seq: a trim while the batch is encoded must
     * not make a payload declare its own records gone (RX would drop those
     * of the following payloads as below its floor). */
    struct sl_journal_stats js;
    journal_status(c, &c->batch_hs, &js);
    for (size_t i = 0; i < c->batch_n; i++)
        if (c->batch[i].seq < c->batch_hs.oldest_seq)
            c->batch_hs.oldest_seq = c->batch[i].seq;
}

/* Encodes the batch's next records into free slots until the batch is done
 * or the ring is full, each payload with the batch's status. */
static void encode_batch(struct sl_carousel *c, unsigned useful, uint64_t now_us)
{
    const struct sl_hstatus *hs = &c->batch_hs;
    while (c->batch_pos < c->batch_n && !ring_full(c)) {
        uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
        struct sl_hmsg_writer w;
        if (sl_hmsg_writer_init(&w, c->slot[t % SL_CAROUSEL_RING], c->cfg.payload_cap, hs) != SL_OK) {
            c->batch_pos = c->batch_n;   /* a status the codec refuses: a journal bug */
            count(c, &c->st.refused);
            return;
        }
        uint32_t n = 0;
        while (c->batch_pos < c->batch_n) {
            sl_err e = sl_hmsg_put(&w, &c->batch[c->batch_pos]);
            if (e == SL_ERR_CAPACITY && n > 0)
                break;
            if (e == SL_OK)
                n++;
            else
                count(c, &c->st.refused);   /* the codec's rules, or a record no payload holds */
            c->batch_pos++;
        }
        if (n == 0)
            continue;
        size_t len = sl_hmsg_finish(&w);
        if (len == 0)
            continue;
        struct level *lv = &c->lv[c->batch_level];
        lv->vtime += len * inv_weight(c->batch_level, useful);
        pthread_mutex_lock(&c->mu);
        c->st.level[c->batch_level].records += n;
        c->st.level[c->batch_level].bytes += len;
        pthread_mutex_unlock(&c->mu);
        publish(c, len, n, now_us);
    }
    if (c->batch_pos >= c->batch_n && c->batch_ends_pass) {
        c->batch_ends_pass = false;
        pass_done(c, c->batch_level, now_us);
    }
}

bool sl_carousel_produce(struct sl_carousel *c, uint64_t wall_us, uint64_t now_us, uint64_t *next_us)
{
    *next_us = now_us + SL_CAROUSEL_IDLE_US;
    if (ring_full(c))
        return false;
    struct sl_hstatus hs;
    struct sl_journal_stats js;
    journal_status(c, &hs, &js);
    unsigned useful = useful_levels(c, &js, wall_us);
    if (c->batch_pos < c->batch_n) {
        encode_batch(c, useful, now_us);
        return true;
    }
    /* Levels past the useful ones stop; their passes start again later. */
    for (unsigned j = useful; j < c->nlevels; j++)
        if (!c->st.level[j].skipped) {
            pthread_mutex_lock(&c->mu);
            c->st.level[j].active = false;
            c->st.level[j].skipped = true;
            pthread_mutex_unlock(&c->mu);
        }
    int pick = -1;
    uint64_t best = 0;
    for (unsigned j = 0; j < useful; j++) {
        if (c->st.level[j].skipped) {
            pthread_mutex_lock(&c->mu);
            c->st.level[j].skipped = false;
            pthread_mutex_unlock(&c->mu);
        }
        bool ready = c->st.level[j].active || now_us >= c->lv[j].next_start_us;
        /* A level about to start a pass starts at the clock: no credit. */
        uint64_t v = c->lv[j].vtime < c->vclock && !c->st.level[j].active ? c->vclock : c->lv[j].vtime;
        if (ready && (pick < 0 || v < best)) {
            pick = (int)j;
            best = v;
        }
        if (!ready && c->lv[j].next_start_us < *next_us)
            *next_us = c->lv[j].next_start_us;
    }
    if (pick >= 0) {
        /* The clock is the start tag of the batch served: a level that
         * wakes up starts there, so it gets no credit for its idle time. */
        c->vclock = best;
        read_batch(c, (unsigned)pick, wall_us, now_us);
        encode_batch(c, useful, now_us);
        return true;
    }
    /* Nothing to re-send: the status alone, about once a second, so RX
     * learns the journal's head even from an idle plant. */
    uint64_t due = c->last_payload_us + SL_CAROUSEL_IDLE_US;
    if (now_us < due && c->last_payload_us != 0) {
        if (due < *next_us)
            *next_us = due;
        return false;
    }
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
    struct sl_hmsg_writer w;
    size_t len = 0;
    if (sl_hmsg_writer_init(&w, c->slot[t % SL_CAROUSEL_RING], c->cfg.payload_cap, &hs) == SL_OK)
        len = sl_hmsg_finish(&w);
    if (len == 0) {
        c->last_payload_us = now_us;
        return false;
    }
    pthread_mutex_lock(&c->mu);
    c->st.status_only++;
    pthread_mutex_unlock(&c->mu);
    publish(c, len, 0, now_us);
    return true;
}

static void *producer(void *arg)
{
    struct sl_carousel *c = arg;
    /* Reading, sorting and encoding the journal is bulk work that only
     * heals history: on a busy TX it must yield to the send loop (live
     * tags) and the pollers, or its bursts show as live latency. Refused
     * (a container's policy), it runs on at the old priority. */
    if (sl_thread_lower_priority(SL_THREAD_NICE_BACKGROUND) != SL_OK)
        sl_log(SL_LOG_WARNING, "backfill carousel keeps its priority: setpriority: %s", strerror(errno));
    while (!atomic_load(&c->stop)) {
        uint64_t now = sl_clock_mono_us(), next;
        if (sl_carousel_produce(c, sl_clock_wall_us(), now, &next))
            continue;
        /* Ring full (woken by the consumer's pop) or nothing due before
         * next; never longer than the idle period. */
        uint64_t wait = ring_full(c) ? SL_CAROUSEL_IDLE_US : (next > now ? next - now : 0);
        if (wait > SL_CAROUSEL_IDLE_US)
            wait = SL_CAROUSEL_IDLE_US;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + wait * 1000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_mutex_lock(&c->mu);
        if (!atomic_load(&c->stop) && (ring_full(c) || wait > 0))
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

sl_err sl_carousel_start(struct sl_carousel *c)
{
    int rc = pthread_create(&c->thread, NULL, producer, c);
    if (rc != 0) {
        errno = rc;
        return SL_ERR_IO;
    }
    c->started = true;
    (void)pthread_setname_np(c->thread, "tx-backfill");   /* ps -L, top -H, perf */
    return SL_OK;
}

void sl_carousel_destroy(struct sl_carousel *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        atomic_store(&c->stop, true);
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    for (unsigned j = 0; j < SL_CAROUSEL_LEVELS_MAX; j++)
        sl_journal_iter_free(c->lv[j].it);
    sl_journal_iter_free(c->oit);
    free(c->batch);
    for (unsigned i = 0; i < SL_CAROUSEL_RING; i++)
        free(c->slot[i]);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- consumer ------------------------------------------------------------ */

const uint8_t *sl_carousel_peek(struct sl_carousel *c, uint64_t now_us, size_t *len)
{
    *len = 0;
    uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&c->tail, memory_order_acquire) || now_us < c->next_us)
        return NULL;
    *len = c->slot_len[h % SL_CAROUSEL_RING];
    return c->slot[h % SL_CAROUSEL_RING];
}

void sl_carousel_pop(struct sl_carousel *c, bool sent, uint64_t now_us)
{
    uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&c->tail, memory_order_acquire))
        return;
    size_t len = c->slot_len[h % SL_CAROUSEL_RING];
    uint32_t n = c->slot_records[h % SL_CAROUSEL_RING];
    if (sent) {
        /* Charged its wire time; a turn that came late (the tag channel
         * had the link) catches up at most the bucket's depth, so no
         * credit piles up while the carousel waited. */
        uint64_t wire = sl_carousel_wire_bytes(c->cfg.k, c->cfg.m, c->cfg.symbol_bytes, len);
        uint64_t floor = now_us > c->burst_us ? now_us - c->burst_us : 0;
        c->next_us = (c->next_us > floor ? c->next_us : floor) + wire_us(c, wire);
        pthread_mutex_lock(&c->mu);
        c->st.blocks++;
        c->st.records += n;
        c->st.payload_bytes += len;
        c->st.wire_bytes += wire;
        pthread_mutex_unlock(&c->mu);
    }
    atomic_store_explicit(&c->head, h + 1, memory_order_release);
    pthread_mutex_lock(&c->mu);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

sl_err sl_carousel_run(struct sl_carousel *c, struct sl_sender *snd, bool tags_due, uint64_t now_us)
{
    size_t len;
    const uint8_t *p = sl_carousel_peek(c, now_us, &len);
    if (!p)
        return SL_OK;
    if (tags_due) {   /* live tags first: the history block waits a turn */
        pthread_mutex_lock(&c->mu);
        c->st.deferred++;
        pthread_mutex_unlock(&c->mu);
        return SL_OK;
    }
    uint8_t *dst;
    size_t cap;
    sl_err e = sl_sender_block(snd, &dst, &cap, SL_CHANNEL_HISTORY);
    if (e != SL_OK)
        return e;
    bool fits = len <= cap;
    if (fits)
        memcpy(dst, p, len);
    e = sl_sender_commit(snd, fits ? len : 0, sl_clock_wall_us(), sl_clock_mono_us());
    sl_carousel_pop(c, fits && e == SL_OK, now_us);
    return e;
}

uint64_t sl_carousel_deadline(const struct sl_carousel *c)
{
    uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&((struct sl_carousel *)c)->tail, memory_order_acquire))
        return UINT64_MAX;
    return c->next_us;
}

void sl_carousel_stats(struct sl_carousel *c, struct sl_carousel_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

void sl_carousel_log_counters(struct sl_carousel *c)
{
    struct sl_carousel_stats st;
    sl_carousel_stats(c, &st);
    sl_log(SL_LOG_INFO, "backfill: %llu blocks, %llu records, %llu bytes on the link; %llu level-0 passes "
           "(last %.1f s over %llu s), %llu status-only, %llu refused, %llu read errors",
           (unsigned long long)st.blocks, (unsigned long long)st.records, (unsigned long long)st.wire_bytes,
           (unsigned long long)st.level[0].passes, (double)st.level[0].last_pass_us / 1e6,
           (unsigned long long)st.level[0].window_s, (unsigned long long)st.status_only,
           (unsigned long long)st.refused, (unsigned long long)st.read_errors);
}
