/* The backfill carousel over a real journal (on tmpfs when there is one)
 * with a simulated clock: the level windows, each pass covering exactly its
 * window and reading the newest segment first, level 0's half of the
 * bytes, every payload a valid HISTORY payload that decodes back to the
 * journal's records with its status, the share's token bucket over
 * simulated seconds, the idle journal's status-only payload once a second,
 * live tags first. Also measures bytes per record for a 10,000-tag plant
 * (printed; docs/history.md quotes it). */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_carousel.h"
#include "sl_fec.h"
#include "sl_hmsg.h"
#include "sl_journal.h"
#include "sl_pace.h"
#include "sl_test.h"
#include "sl_thread.h"
#include "sl_wire.h"

#define T0 1800000000000000ull   /* a wall time, µs */
#define S_US 1000000ull

static char dir[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(path);
}

static struct sl_journal *jmake(uint64_t segment_bytes)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/sl-carousel-XXXXXX", base);
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    struct sl_journal_config c = { .dir = dir, .max_bytes = 256ull << 20, .no_sync = true,
                                   .segment_bytes = segment_bytes, .buffer_bytes = 8u << 20 };
    struct sl_journal *j = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journal_open(&j, &c), SL_OK);
    return j;
}

static void jdone(struct sl_journal *j)
{
    sl_journal_close(j);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ntags float32 tags, each changing once per period_us from t_from to
 * t_to (µs jitter), slowly varying; flushed. Returns the records. */
static uint64_t plant(struct sl_journal *j, uint32_t ntags, uint64_t t_from, uint64_t t_to, uint64_t period_us)
{
    uint64_t n = 0;
    for (uint64_t t = t_from; t < t_to; t += period_us)
        for (uint32_t tag = 0; tag < ntags; tag++) {
            float v = 20.0f + (float)tag * 0.01f + 0.5f * sinf((float)(t / S_US) * 0.05f + (float)tag);
            uint32_t bits;
            memcpy(&bits, &v, sizeof bits);
            uint64_t ts = t + (uint64_t)((tag * 7919u + t / 1000u) % 2000u);
            CU_ASSERT_EQUAL(sl_journal_append(j, tag + 1, ts, bits, SL_TYPE_FLOAT32, SL_Q_GOOD, NULL), SL_OK);
            n++;
        }
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    return n;
}

static struct sl_carousel_config ccfg(struct sl_journal *j, uint64_t window_s, uint64_t w0, size_t cap)
{
    struct sl_carousel_config c = { .journal = j, .window_s = window_s, .rate_mbps = 5.0, .k = 64, .m = 16,
                                    .symbol_bytes = 1424, .payload_cap = cap, .base_window_s = w0,
                                    .batch_records = 4096, .wake_fd = -1 };
    return c;
}

/* What one consumed payload held. */
struct got {
    size_t len, n;
    uint64_t min_seq, max_seq, min_t, max_t;
    struct sl_hstatus st;
};

/* Pops the next ready payload (no rate limit: the consumer's clock jumps
 * 10 s a payload) and decodes it; seen[seq - 1] counts each value seq.
 * False when none. */
static uint64_t mono = 1000000;

static bool take(struct sl_carousel *c, struct got *g, uint32_t *seen, uint64_t nseen)
{
    size_t len;
    mono += 10 * S_US;
    const uint8_t *p = sl_carousel_peek(c, mono, &len);
    if (!p)
        return false;
    memset(g, 0, sizeof *g);
    g->len = len;
    g->min_seq = g->min_t = UINT64_MAX;
    struct sl_hmsg_reader r;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_reader_init(&r, p, len, &g->st), SL_OK);
    struct sl_hrec h;
    while (sl_hmsg_next(&r, &h)) {
        g->n++;
        CU_ASSERT(h.seq + h.count <= g->st.next_seq);   /* the status covers every record */
        if (h.kind != SL_HREC_VALUE)
            continue;
        g->min_seq = h.seq < g->min_seq ? h.seq : g->min_seq;
        g->max_seq = h.seq > g->max_seq ? h.seq : g->max_seq;
        g->min_t = h.source_time_us < g->min_t ? h.source_time_us : g->min_t;
        g->max_t = h.source_time_us > g->max_t ? h.source_time_us : g->max_t;
        if (seen && h.seq >= 1 && h.seq <= nseen)
            seen[h.seq - 1]++;
    }
    sl_carousel_pop(c, true, mono);
    return true;
}

SL_TEST(carousel, level_windows)
{
    CU_ASSERT_EQUAL(sl_carousel_level_count(86400, 0), 11);   /* 120 .. 61440, then 86400 */
    CU_ASSERT_EQUAL(sl_carousel_level_count(120, 0), 1);
    CU_ASSERT_EQUAL(sl_carousel_level_count(60, 0), 1);
    CU_ASSERT_EQUAL(sl_carousel_level_count(121, 0), 2);
    CU_ASSERT_EQUAL(sl_carousel_level_count(80, 10), 4);
    CU_ASSERT_EQUAL(sl_carousel_level_count(UINT64_MAX, 1), SL_CAROUSEL_LEVELS_MAX);
    struct sl_journal *j = jmake(0);
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 86400, 0, 8192);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    struct sl_carousel_stats st;
    sl_carousel_stats(c, &st);
    CU_ASSERT_EQUAL(st.levels, 11);
    CU_ASSERT_EQUAL(st.level[0].window_s, 120);
    CU_ASSERT_EQUAL(st.level[3].window_s, 960);
    CU_ASSERT_EQUAL(st.level[9].window_s, 61440);
    CU_ASSERT_EQUAL(st.level[10].window_s, 86400);
    sl_carousel_destroy(c);
    cc.rate_mbps = 0;
    CU_ASSERT_EQUAL(sl_carousel_create(&c, &cc), SL_ERR_RANGE);
    cc = ccfg(NULL, 100, 0, 8192);
    CU_ASSERT_EQUAL(sl_carousel_create(&c, &cc), SL_ERR_RANGE);
    jdone(j);
}

SL_TEST(carousel, wire_bytes)
{
    uint64_t frame = sl_pace_wire_bytes(SL_FRAME_OVERHEAD + 1424);
    /* one data symbol, two repair (the floor for small blocks) */
    CU_ASSERT_EQUAL(sl_carousel_wire_bytes(64, 16, 1424, 10), 3 * frame);
    /* a full block: k + m frames */
    CU_ASSERT_EQUAL(sl_carousel_wire_bytes(64, 16, 1424, 64 * 1424 - SL_BLOCK_OVERHEAD), 80 * frame);
    CU_ASSERT_EQUAL(sl_carousel_wire_bytes(64, 16, 1424, 0), 0);
}

/* Every payload decodes; the records are the journal's, field for field;
 * the status is the journal's. One level (window <= W0): one pass covers
 * every record exactly once. */
SL_TEST(carousel, payloads_decode_to_the_journal)
{
    struct sl_journal *j = jmake(0);
    uint64_t now = T0 + 100 * S_US;
    uint64_t n = plant(j, 50, T0 + 10 * S_US, T0 + 90 * S_US, S_US);   /* 4000 records */
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 2048);              /* many small payloads */
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    uint32_t *seen = calloc(n, sizeof *seen);
    struct got g;
    uint64_t next, payloads = 0;
    struct sl_journal_stats js;
    sl_journal_stats(j, &js);
    for (int guard = 0; guard < 10000; guard++) {
        bool did = sl_carousel_produce(c, now, now, &next);
        bool any = false;
        while (take(c, &g, seen, n)) {
            any = true;
            payloads++;
            CU_ASSERT_EQUAL(g.st.journal_id, sl_journal_id(j));
            CU_ASSERT_EQUAL(g.st.next_seq, js.next_seq);
            CU_ASSERT_EQUAL(g.st.oldest_seq, 1);
            CU_ASSERT_TRUE(g.len <= 2048);
        }
        struct sl_carousel_stats st;
        sl_carousel_stats(c, &st);
        if (st.level[0].passes == 1 && !did && !any)
            break;
    }
    CU_ASSERT_TRUE(payloads > 10);
    uint64_t once = 0;
    for (uint64_t i = 0; i < n; i++)
        once += seen[i] == 1;
    CU_ASSERT_EQUAL(once, n);
    /* field for field against the journal */
    struct sl_journal_iter *it;
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_from_seq(it, 1), SL_OK);
    sl_carousel_destroy(c);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    CU_ASSERT_TRUE(sl_carousel_produce(c, now, now, &next));
    size_t len;
    const uint8_t *p = sl_carousel_peek(c, mono, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct sl_hmsg_reader r;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_reader_init(&r, p, len, NULL), SL_OK);
    struct sl_hrec h;
    unsigned checked = 0;
    while (sl_hmsg_next(&r, &h)) {
        struct sl_journal_rec jr;
        CU_ASSERT_EQUAL_FATAL(sl_journal_iter_from_seq(it, h.seq), SL_OK);
        CU_ASSERT_EQUAL_FATAL(sl_journal_iter_next(it, &jr, NULL), SL_OK);
        CU_ASSERT_EQUAL(jr.seq, h.seq);
        CU_ASSERT_EQUAL(jr.tag_id, h.tag_id);
        CU_ASSERT_EQUAL(jr.source_time_us, h.source_time_us);
        CU_ASSERT_EQUAL(jr.raw, h.raw);
        CU_ASSERT_EQUAL(jr.type, h.type);
        CU_ASSERT_EQUAL(jr.quality, h.quality);
        checked++;
    }
    CU_ASSERT_TRUE(checked > 20);
    sl_journal_iter_free(it);
    sl_carousel_destroy(c);
    free(seen);
    jdone(j);
}

/* W0 = 10 s, window 80 s: levels of 10, 20, 40, 80 s, over a plant that
 * keeps changing (2000 tags once a second) while the simulated clock runs
 * 50 ms a step. Every payload holds only records of its level's window;
 * each completed pass reaches back to its window's start; a pass reads the
 * newest segment first; level 0 gets about half of the bytes, level 3 (the
 * highest) a quarter, levels 1 and 2 an eighth each. */
SL_TEST(carousel, schedule_windows_order_and_shares)
{
    struct sl_journal *j = jmake(64u << 10);                           /* many segments */
    uint64_t t = T0 + 100 * S_US, planted = t - 100 * S_US;
    plant(j, 2000, planted, t, S_US);
    planted = t;
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 80, 10, 8192);
    cc.batch_records = 1000;
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    struct sl_carousel_stats st, prev;
    sl_carousel_stats(c, &prev);
    CU_ASSERT_EQUAL(prev.levels, 4);
    struct got g;
    uint64_t next, pass_min_t[4], pass_first_min[4] = { 0 }, pass_min_seq[4], bad_window = 0, bad_order = 0;
    unsigned full_passes[4] = { 0 }, short_passes[4] = { 0 };
    for (unsigned k = 0; k < 4; k++)
        pass_min_t[k] = pass_min_seq[k] = UINT64_MAX;
    for (int step = 0; step < 2400; step++, t += 50000) {              /* 120 s */
        if (t >= planted + S_US) {
            plant(j, 2000, planted, planted + S_US, S_US);
            planted += S_US;
        }
        sl_carousel_produce(c, t, t, &next);
        sl_carousel_stats(c, &st);
        int lvl = -1;
        for (unsigned k = 0; k < st.levels; k++)
            if (st.level[k].records != prev.level[k].records)
                lvl = (int)k;
        while (take(c, &g, NULL, 0)) {
            if (g.max_seq == 0)
                continue;   /* the status alone */
            CU_ASSERT_FATAL(lvl >= 0);
            uint64_t since = st.level[lvl].pass_start_us - st.level[lvl].window_s * S_US;
            if (g.min_t < since)
                bad_window++;
            if (pass_first_min[lvl] == 0)
                pass_first_min[lvl] = g.min_seq;
            pass_min_seq[lvl] = g.min_seq < pass_min_seq[lvl] ? g.min_seq : pass_min_seq[lvl];
            pass_min_t[lvl] = g.min_t < pass_min_t[lvl] ? g.min_t : pass_min_t[lvl];
        }
        for (unsigned k = 0; k < st.levels; k++)
            if (st.level[k].passes != prev.level[k].passes) {
                /* the pass reached back to its window's start (the plant's
                 * records are 1 s apart, jitter 2 ms) */
                uint64_t since = st.level[k].pass_start_us - st.level[k].window_s * S_US;
                if (pass_min_t[k] >= since && pass_min_t[k] < since + S_US + 2000)
                    full_passes[k]++;
                else
                    short_passes[k]++;
                /* newest segment first: it began above where it ended */
                if (pass_first_min[k] <= pass_min_seq[k])
                    bad_order++;
                pass_min_t[k] = pass_min_seq[k] = UINT64_MAX;
                pass_first_min[k] = 0;
            }
        prev = st;
    }
    CU_ASSERT_EQUAL(bad_window, 0);
    CU_ASSERT_EQUAL(bad_order, 0);
    for (unsigned k = 0; k < 4; k++) {
        CU_ASSERT_TRUE(full_passes[k] >= 2);
        CU_ASSERT_EQUAL(short_passes[k], 0);
    }
    sl_carousel_stats(c, &st);
    uint64_t upper = st.level[1].bytes + st.level[2].bytes + st.level[3].bytes;
    double half = (double)st.level[0].bytes / (double)(st.level[0].bytes + upper);
    CU_ASSERT_TRUE(half > 0.45 && half < 0.55);
    /* the highest level a quarter, the two between an eighth each */
    CU_ASSERT_TRUE(fabs((double)st.level[3].bytes / (double)(st.level[0].bytes + upper) - 0.25) < 0.03);
    CU_ASSERT_TRUE(fabs((double)st.level[2].bytes / (double)st.level[1].bytes - 1.0) < 0.1);
    /* the passes' lengths follow the shares: level 3's window is 8 times
     * level 0's and it gets half of level 0's bytes */
    CU_ASSERT_TRUE(st.level[0].passes > 10 * st.level[3].passes);
    printf("\n  passes %llu %llu %llu %llu, last pass %.1f %.1f %.1f %.1f s, level 0 share %.3f\n",
           (unsigned long long)st.level[0].passes, (unsigned long long)st.level[1].passes,
           (unsigned long long)st.level[2].passes, (unsigned long long)st.level[3].passes,
           (double)st.level[0].last_pass_us / 1e6, (double)st.level[1].last_pass_us / 1e6,
           (double)st.level[2].last_pass_us / 1e6, (double)st.level[3].last_pass_us / 1e6, half);
    sl_carousel_destroy(c);
    jdone(j);
}

/* A young journal (30 s) under levels of 10, 20, 40, 80 s: the 80 s level
 * would re-send the same records as the 40 s one, so it is skipped. */
SL_TEST(carousel, levels_past_the_journal_skipped)
{
    struct sl_journal *j = jmake(0);
    uint64_t now = T0 + 30 * S_US;
    plant(j, 10, T0, now, S_US);
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 80, 10, 8192);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    struct got g;
    uint64_t next, t = now;
    for (int step = 0; step < 200; step++, t += 20000) {   /* 4 s: the journal stays < 40 s old */
        sl_carousel_produce(c, t, t, &next);
        while (take(c, &g, NULL, 0)) {
        }
    }
    struct sl_carousel_stats st;
    sl_carousel_stats(c, &st);
    CU_ASSERT_TRUE(st.level[2].passes > 0);
    CU_ASSERT_TRUE(st.level[3].skipped);
    CU_ASSERT_EQUAL(st.level[3].passes, 0);
    sl_carousel_destroy(c);
    jdone(j);
}

/* The consumer never sends more than the share: over 20 simulated seconds
 * of a carousel that always has data, wire bytes within the rate plus the
 * bucket's depth, and at least 95 % of it. */
SL_TEST(carousel, share_honoured_on_a_simulated_clock)
{
    struct sl_journal *j = jmake(0);
    uint64_t wall = T0 + 200 * S_US;
    plant(j, 1000, T0 + 100 * S_US, wall, S_US);                     /* 100,000 records */
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 64 * 1424 - SL_BLOCK_OVERHEAD);
    cc.rate_mbps = 2.0;
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    uint64_t mono0 = 5000000, sent = 0, next;
    for (uint64_t us = 0; us < 20 * S_US; us += 500) {
        sl_carousel_produce(c, wall + us, wall + us, &next);
        size_t len;
        if (sl_carousel_peek(c, mono0 + us, &len)) {
            sent += sl_carousel_wire_bytes(64, 16, 1424, len);
            sl_carousel_pop(c, true, mono0 + us);
        }
    }
    double budget = 2.0e6 / 8 * 20;   /* bytes in 20 s */
    uint64_t full = sl_carousel_wire_bytes(64, 16, 1424, 64 * 1424 - SL_BLOCK_OVERHEAD);
    CU_ASSERT_TRUE((double)sent <= budget + 3.0 * (double)full);
    CU_ASSERT_TRUE((double)sent >= 0.95 * budget - (double)full);
    struct sl_carousel_stats st;
    sl_carousel_stats(c, &st);
    CU_ASSERT_EQUAL(st.wire_bytes, sent);
    /* a failed send is not charged */
    uint64_t d = sl_carousel_deadline(c);
    sl_carousel_produce(c, wall, wall, &next);
    size_t len;
    CU_ASSERT_PTR_NOT_NULL(sl_carousel_peek(c, d, &len));
    sl_carousel_pop(c, false, d);
    sl_carousel_stats(c, &st);
    CU_ASSERT_EQUAL(st.wire_bytes, sent);
    CU_ASSERT_EQUAL(sl_carousel_deadline(c), d);
    sl_carousel_destroy(c);
    jdone(j);
}

/* No record in the window: a status-only payload about once a second,
 * never more; it carries the journal's head. */
SL_TEST(carousel, idle_journal_sends_its_status_each_second)
{
    struct sl_journal *j = jmake(0);
    uint64_t now = T0 + 10000 * S_US;
    plant(j, 3, T0, T0 + 5 * S_US, S_US);                            /* long before the window */
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 4096);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    struct got g;
    uint64_t next, payloads = 0;
    for (uint64_t us = 0; us < 10 * S_US; us += 10000) {
        while (sl_carousel_produce(c, now + us, now + us, &next)) {
        }
        CU_ASSERT_TRUE(next > now + us);
        while (take(c, &g, NULL, 0)) {
            payloads++;
            CU_ASSERT_EQUAL(g.n, 0);
            CU_ASSERT_EQUAL(g.st.next_seq, 16);
            CU_ASSERT_EQUAL(g.st.oldest_seq, 1);
            CU_ASSERT_EQUAL(g.st.journal_id, sl_journal_id(j));
        }
    }
    CU_ASSERT_TRUE(payloads >= 9 && payloads <= 11);
    struct sl_carousel_stats st;
    sl_carousel_stats(c, &st);
    CU_ASSERT_EQUAL(st.status_only, payloads);
    sl_carousel_destroy(c);
    jdone(j);
}

/* Live tags first: with the tag channel due, a ready payload waits (the
 * sender is not touched) and is counted as deferred. */
SL_TEST(carousel, tags_due_defers)
{
    struct sl_journal *j = jmake(0);
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 4096);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    uint64_t next;
    while (sl_carousel_produce(c, T0, T0, &next)) {                      /* an empty pass, the status */
    }
    CU_ASSERT_EQUAL(sl_carousel_run(c, NULL, true, 1000), SL_OK);
    struct sl_carousel_stats st;
    sl_carousel_stats(c, &st);
    CU_ASSERT_EQUAL(st.deferred, 1);
    CU_ASSERT_EQUAL(st.blocks, 0);
    size_t len;
    CU_ASSERT_PTR_NOT_NULL(sl_carousel_peek(c, 1000, &len));
    sl_carousel_destroy(c);
    jdone(j);
}

/* The nice value of this process's thread named "tx-backfill" (field 19
 * of its /proc stat), or -100 when there is none. */
static int producer_nice(void)
{
    DIR *d = opendir("/proc/self/task");
    int nice = -100;
    struct dirent *e;
    while (d && nice == -100 && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *name = strchr(buf, '('), *end = strrchr(buf, ')');
        if (!name || !end || strncmp(name + 1, "tx-backfill)", 12) != 0)
            continue;
        /* after ") ": state is field 3, nice field 19 */
        const char *p = end + 2;
        for (int field = 3; field < 19 && p; field++) {
            p = strchr(p, ' ');
            if (p)
                p++;
        }
        if (p)
            nice = atoi(p);
    }
    if (d)
        closedir(d);
    return nice;
}

/* The threaded producer fills the ring, writes wake_fd, and refills the
 * ring while the consumer takes from it (run under TSan too). */
SL_TEST(carousel, thread_fills_the_ring)
{
    struct sl_journal *j = jmake(0);
    plant(j, 200, T0, T0 + 100 * S_US, S_US);                        /* ~50 payloads a pass */
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 4096);
    cc.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CU_ASSERT_FATAL(cc.wake_fd >= 0);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_start(c), SL_OK);
    size_t len = 0;
    for (int i = 0; i < 200 && !sl_carousel_peek(c, 0, &len); i++)
        usleep(5000);
    CU_ASSERT_TRUE(len > 0);
    uint64_t woken = 0;
    CU_ASSERT_EQUAL(read(cc.wake_fd, &woken, sizeof woken), (ssize_t)sizeof woken);
    CU_ASSERT_TRUE(woken >= 1);
    /* the consumer takes payloads while the producer refills the ring
     * (the journal grows meanwhile): every one decodes */
    struct got g;
    unsigned taken = 0;
    for (uint64_t i = 0; i < 400 && taken < 30; i++) {
        uint64_t at = T0 + (100 + i) * S_US;
        if (i % 10 == 0)
            plant(j, 100, at, at + 1, S_US);
        if (take(c, &g, NULL, 0))
            taken++;
        else
            usleep(2000);
    }
    CU_ASSERT_TRUE(taken >= 30);
    /* the producer is named and yields the CPU: nice raised by
     * SL_THREAD_NICE_BACKGROUND over this thread's (capped at 19) */
    int base = sl_thread_nice();
    if (base <= 19 - SL_THREAD_NICE_BACKGROUND)   /* a runner already niced past 9 cannot tell */
        CU_ASSERT_EQUAL(producer_nice(), base + SL_THREAD_NICE_BACKGROUND);
    CU_ASSERT_TRUE(producer_nice() > -100);      /* named tx-backfill either way */
    sl_carousel_destroy(c);
    close(cc.wake_fd);
    jdone(j);
}

/* Bytes per record for the plant docs/history.md computes with: 10,000
 * float32 tags changing once a second (slowly varying, µs jitter), one
 * 120 s pass in full-size payloads (k = 64, S = 1424). */
SL_TEST(carousel, bytes_per_record_10k_plant)
{
    struct sl_journal *j = jmake(0);
    uint64_t now = T0 + 20 * S_US;
    uint64_t n = plant(j, 10000, T0, now, S_US);                      /* 200,000 records */
    size_t cap = 64 * 1424 - SL_BLOCK_OVERHEAD;
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, cap);
    cc.batch_records = SL_CAROUSEL_BATCH_DEFAULT;
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    struct got g;
    uint64_t next, bytes = 0, wire = 0, recs = 0, blocks = 0;
    struct sl_carousel_stats st;
    for (int step = 0; step < 1000; step++) {
        sl_carousel_produce(c, now, now, &next);
        while (take(c, &g, NULL, 0)) {
            bytes += g.len;
            wire += sl_carousel_wire_bytes(64, 16, 1424, g.len);
            recs += g.n;
            blocks++;
        }
        sl_carousel_stats(c, &st);
        if (st.level[0].passes)
            break;
    }
    CU_ASSERT_EQUAL(recs, n);
    printf("\n  10,000-tag plant: %.2f payload bytes/record, %.2f wire bytes/record, %llu blocks\n",
           (double)bytes / (double)recs, (double)wire / (double)recs, (unsigned long long)blocks);
    CU_ASSERT_TRUE((double)wire / (double)recs < 16.0);
    sl_carousel_destroy(c);
    jdone(j);
}

/* The schedule runs on the monotonic clock: a wall clock stepped back by
 * an hour (NTP, an operator) moves the windows, not the passes, and the
 * payloads (at least the status) keep coming every second. */
SL_TEST(carousel, wall_step_back_keeps_the_schedule)
{
    struct sl_journal *j = jmake(0);
    uint64_t wall = T0 + 100 * S_US;
    plant(j, 20, T0, wall, S_US);
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 4096);
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    uint64_t m = 5000 * S_US, next;
    struct got g;
    for (unsigned phase = 0; phase < 2; phase++) {
        if (phase == 1)
            wall -= 3600 * S_US;                                     /* the step back */
        unsigned quiet = 0;
        for (unsigned s = 0; s < 30; s++) {
            unsigned got = 0;
            for (unsigned step = 0; step < 10; step++) {             /* 100 ms steps */
                while (sl_carousel_produce(c, wall, m, &next))
                    while (take(c, &g, NULL, 0))
                        got++;
                while (take(c, &g, NULL, 0))
                    got++;
                wall += S_US / 10;
                m += S_US / 10;
            }
            quiet += got == 0;
        }
        CU_ASSERT_EQUAL(quiet, 0);                                   /* something every second */
    }
    sl_carousel_destroy(c);
    jdone(j);
}

/* A trim while a batch is being encoded: every payload's status has an
 * oldest_seq at or below each record it carries (else RX, having moved its
 * floor on the first payload, drops the records of the next ones). */
SL_TEST(carousel, trim_during_a_pass_keeps_status_below_records)
{
    struct sl_journal *j = jmake(64u << 10);
    uint64_t now = T0 + 100 * S_US;
    plant(j, 250, T0, now, S_US);                                    /* 25,000 records, several segments */
    struct sl_journal_stats js;
    sl_journal_stats(j, &js);
    CU_ASSERT_FATAL(js.segments >= 3);
    struct sl_carousel *c = NULL;
    struct sl_carousel_config cc = ccfg(j, 120, 0, 2048);
    cc.batch_records = 65536;                                        /* the whole pass is one batch */
    CU_ASSERT_EQUAL_FATAL(sl_carousel_create(&c, &cc), SL_OK);
    uint64_t next;
    struct got g;
    CU_ASSERT_TRUE(sl_carousel_produce(c, now, now, &next));
    CU_ASSERT_TRUE(take(c, &g, NULL, 0));
    CU_ASSERT_EQUAL(sl_journal_trim(j, now + 2 * 86400 * S_US), SL_OK);   /* all but the newest segment */
    sl_journal_stats(j, &js);
    CU_ASSERT_FATAL(js.oldest_seq > 1);
    unsigned payloads = 0, below = 0;
    for (int guard = 0; guard < 5000; guard++) {
        bool did = sl_carousel_produce(c, now, now, &next);
        bool any = false;
        while (take(c, &g, NULL, 0)) {
            any = true;
            payloads++;
            below += g.n && g.min_seq != UINT64_MAX && g.min_seq < g.st.oldest_seq;
        }
        struct sl_carousel_stats st;
        sl_carousel_stats(c, &st);
        if (st.level[0].passes >= 1 && !did && !any)
            break;
    }
    CU_ASSERT_TRUE(payloads > 10);
    CU_ASSERT_EQUAL(below, 0);
    sl_carousel_destroy(c);
    jdone(j);
}
