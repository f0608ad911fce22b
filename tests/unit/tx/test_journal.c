/* The TX change journal: records and seqs survive a reopen; a torn tail is
 * cut at every offset of the last block; a damaged middle ends its segment;
 * trim by bytes and by window; newest-first iteration; seqs never reused
 * after a crash (a child killed before its flush, a cut file, a lost mark);
 * a write failure (RLIMIT_FSIZE) keeps records in memory, counts the
 * overflow as lost and writes it as a gap. Files live on tmpfs when there
 * is one (the mark's fsync is then free). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_hmsg.h"
#include "sl_journal.h"
#include "sl_test.h"
#include "sl_wire.h"

static char dir[128];

static void dir_make(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/sl-journal-XXXXXX", base);
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(path);
}

static void dir_remove(void)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static struct sl_journal_config cfg_of(void)
{
    struct sl_journal_config c = { .dir = dir, .max_bytes = 64ull << 20, .no_sync = true,
                                   .seq_reserve = 1000, .epoch = 7, .buffer_bytes = 1u << 20 };
    return c;
}

static struct sl_journal *jopen(const struct sl_journal_config *c)
{
    struct sl_journal *j = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journal_open(&j, c), SL_OK);
    return j;
}

/* The value record i: every type, some wide, some not Good. */
static void rec_of(uint64_t i, uint32_t *tag, uint64_t *t, uint64_t *raw, uint8_t *type, uint32_t *q)
{
    *tag = (uint32_t)(i % 97) * 1000u;
    *t = 1700000000000000ull + i * 1000u - (i % 5) * 3000u;   /* not monotone */
    *type = (uint8_t)(1 + i % 8);
    *raw = i * 0x9E3779B97F4A7C15ull;
    if (i % 3)
        *raw &= 0xFFFFu;                                        /* mostly narrow */
    *q = i % 11 == 0 ? SL_Q_BAD_COMM_ERROR : SL_Q_GOOD;
}

static void append_n(struct sl_journal *j, uint64_t from, uint64_t n, uint64_t first_seq)
{
    for (uint64_t i = from; i < from + n; i++) {
        uint32_t tag, q;
        uint64_t t, raw, seq = 0;
        uint8_t type;
        rec_of(i, &tag, &t, &raw, &type, &q);
        CU_ASSERT_EQUAL(sl_journal_append(j, tag, t, raw, type, q, &seq), SL_OK);
        if (first_seq)
            CU_ASSERT_EQUAL(seq, first_seq + (i - from));
    }
}

/* A journal in small segments (64 KiB) in a new dir, max_bytes (0: 64 MiB):
 * rounds * 1000 records (seq = record + 1), one flush a round. */
static struct sl_journal *filled(struct sl_journal_config *c, uint64_t rounds, uint64_t max_bytes)
{
    dir_make();
    *c = cfg_of();
    c->segment_bytes = 64u << 10;
    if (max_bytes)
        c->max_bytes = max_bytes;
    struct sl_journal *j = jopen(c);
    for (uint64_t i = 0; i < rounds; i++) {
        append_n(j, i * 1000, 1000, 0);
        CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    }
    return j;
}

static bool rec_is(const struct sl_journal_rec *r, uint64_t i)
{
    uint32_t tag, q;
    uint64_t t, raw;
    uint8_t type;
    rec_of(i, &tag, &t, &raw, &type, &q);
    return r->kind == SL_JOURNAL_VALUE && r->count == 1 && r->tag_id == tag &&
           r->source_time_us == t && r->raw == raw && r->type == type && r->quality == q;
}

/* Reads everything from seq 0: values must be records 0.. in order (value
 * seq s holds record s - 1 + shift... the caller's map); returns the count
 * of values and the sum of gap lengths. */
struct scan {
    uint64_t values, gaps, gap_seqs, last_seq, bad;
};

static struct scan scan_all(struct sl_journal *j, uint64_t from_seq, bool check)
{
    struct scan sc = { 0 };
    struct sl_journal_iter *it = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_from_seq(it, from_seq), SL_OK);
    struct sl_journal_rec r;
    uint64_t next = 0;
    while (sl_journal_iter_next(it, &r, NULL) == SL_OK) {
        if (next && r.seq != next)
            sc.bad++;                 /* seqs strictly increase, no hole unsaid */
        next = r.seq + r.count;
        sc.last_seq = r.seq + r.count - 1;
        if (r.kind == SL_JOURNAL_GAP) {
            sc.gaps++;
            sc.gap_seqs += r.count;
            continue;
        }
        sc.values++;
        if (check && !rec_is(&r, r.seq - 1))
            sc.bad++;
    }
    sl_journal_iter_free(it);
    return sc;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static char *seg_path(uint64_t first_seq)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/%020llu.jnl", dir, (unsigned long long)first_seq);
    return p;
}

static void *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    off_t n = file_size(path);
    CU_ASSERT_FATAL(fd >= 0 && n >= 0);
    void *p = malloc((size_t)n + 1);
    CU_ASSERT_EQUAL_FATAL(read(fd, p, (size_t)n), n);
    close(fd);
    *len = (size_t)n;
    return p;
}

static void spill(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(write(fd, p, len), (ssize_t)len);
    close(fd);
}

SL_TEST(journal, append_flush_reopen_keeps_seq_and_records)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    struct sl_journal *j = jopen(&c);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.next_seq, 1);
    append_n(j, 0, 3000, 1);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    append_n(j, 3000, 2000, 3001);
    CU_ASSERT_EQUAL(sl_journal_append(j, 1, 1, 1, 16, 0, NULL), SL_ERR_RANGE);
    sl_journal_close(j);
    CU_ASSERT_EQUAL(file_size(seg_path(1)) > 0, true);

    j = jopen(&c);
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.next_seq, 5001);    /* a clean close leaves no gap */
    CU_ASSERT_EQUAL(st.open_torn_bytes, 0);
    CU_ASSERT_EQUAL(st.open_bad_segments, 0);
    CU_ASSERT_FALSE(st.open_mark_lost);
    struct scan sc = scan_all(j, 0, true);
    CU_ASSERT_EQUAL(sc.values, 5000);
    CU_ASSERT_EQUAL(sc.gaps, 0);
    CU_ASSERT_EQUAL(sc.bad, 0);
    append_n(j, 5000, 10, 5001);
    sl_journal_close(j);
    j = jopen(&c);
    sc = scan_all(j, 4990, true);
    CU_ASSERT_EQUAL(sc.values, 21);          /* from_seq: 4990 .. 5010 */
    CU_ASSERT_EQUAL(sc.bad, 0);
    sl_journal_stats(j, &st);
    /* Compact: every record here is under 16 bytes on average. */
    CU_ASSERT(st.bytes < 5010u * 16u);
    sl_journal_close(j);
    dir_remove();
}

/* Cuts the newest segment at every offset inside its last block, and flips
 * every byte of that block: the reopened journal holds exactly the records
 * of the first flush and the seq goes on above everything handed out. */
SL_TEST(journal, torn_tail_truncated_at_every_offset)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.buffer_bytes = 64u << 10;                 /* ~250 opens: small buffers */
    struct sl_journal *j = jopen(&c);
    append_n(j, 0, 40, 1);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    size_t len1 = (size_t)file_size(seg_path(1));
    append_n(j, 40, 8, 41);
    sl_journal_close(j);
    size_t len2, mlen;
    char mark[256];
    snprintf(mark, sizeof mark, "%s/mark", dir);
    uint8_t *full = slurp(seg_path(1), &len2);
    void *mark_bytes = slurp(mark, &mlen);
    CU_ASSERT_FATAL(len2 > len1 + 44);

    unsigned fails = 0;
    for (size_t cut = len1; cut < len2 + len2 - len1; cut++) {
        bool flip = cut >= len2;
        size_t at = flip ? len1 + (cut - len2) : cut;
        if (flip) {
            full[at] ^= 0x5A;
            spill(seg_path(1), full, len2);
            full[at] ^= 0x5A;
        } else {
            spill(seg_path(1), full, cut);
        }
        spill(mark, mark_bytes, mlen);
        j = jopen(&c);
        struct sl_journal_stats st;
        sl_journal_stats(j, &st);
        struct scan sc = scan_all(j, 0, true);
        uint64_t seq = 0;
        CU_ASSERT_EQUAL(sl_journal_append(j, 5, 5, 5, SL_TYPE_UINT16, 0, &seq), SL_OK);
        if (sc.values != 40 || sc.bad || st.open_torn_bytes != (flip ? len2 : cut) - len1 ||
            seq != 49 || (size_t)file_size(seg_path(1)) != len1)
            fails++;
        sl_journal_close(j);
    }
    CU_ASSERT_EQUAL(fails, 0);
    free(full);
    free(mark_bytes);
    dir_remove();
}

/* Several small segments: a damaged byte in the middle of the oldest ends
 * that segment's valid part (counted), the others read in full; a bad
 * header deletes its segment. Nothing crashes, what is read is right. */
SL_TEST(journal, corrupted_middle_ends_that_segment)
{
    struct sl_journal_config c;
    struct sl_journal *j = filled(&c, 30, 0);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_FATAL(st.segments >= 4);
    sl_journal_close(j);

    /* The oldest segment's middle, and the third's header. */
    struct sl_journal_iter *it = NULL;
    j = jopen(&c);
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_newest(it, 0), SL_OK);
    uint64_t firsts[64], nf = 0, first, prev = 0;
    struct sl_journal_rec r;
    while (sl_journal_iter_next(it, &r, &first) == SL_OK)
        if (first != prev && nf < 64)
            firsts[nf++] = prev = first;
    sl_journal_iter_free(it);
    sl_journal_close(j);
    CU_ASSERT_FATAL(nf >= 4);
    uint64_t oldest = firsts[nf - 1], third = firsts[nf - 3];
    size_t len;
    uint8_t *b = slurp(seg_path(oldest), &len);
    b[len / 2] ^= 0xFF;
    spill(seg_path(oldest), b, len);
    free(b);
    b = slurp(seg_path(third), &len);
    b[8] ^= 0xFF;                               /* the epoch: only the CRC sees it */
    spill(seg_path(third), b, len);
    free(b);

    j = jopen(&c);
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.open_bad_segments, 2);
    CU_ASSERT_EQUAL(st.open_torn_bytes, 0);
    CU_ASSERT_EQUAL(file_size(seg_path(third)), -1);
    struct scan sc = scan_all(j, 0, true);
    CU_ASSERT_EQUAL(sc.values < 30000 && sc.values > 15000, true);
    CU_ASSERT_EQUAL(sc.bad > 0, true);          /* the holes between segments */
    CU_ASSERT_EQUAL(st.next_seq, 30001);
    sl_journal_close(j);
    dir_remove();
}

SL_TEST(journal, trim_by_bytes_and_by_window)
{
    struct sl_journal_config c;
    struct sl_journal *j = filled(&c, 100, 256u << 10);   /* four 64 KiB segments */
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT(st.bytes <= c.max_bytes);
    CU_ASSERT(st.trimmed_segments > 0);
    CU_ASSERT(st.oldest_seq > 1);
    struct scan sc = scan_all(j, 0, true);
    CU_ASSERT_EQUAL(sc.bad, 0);
    CU_ASSERT_EQUAL(sc.last_seq, 100000);
    CU_ASSERT(sc.values == 100001 - st.oldest_seq);
    sl_journal_close(j);
    dir_remove();

    /* Window: old values (t = 1000 s) fill segments, then new ones (t =
     * 2000 s); trimming at 2005 s keeps only segments with a value newer
     * than 1995 s, and never the newest one. */
    dir_make();
    c.max_bytes = 64ull << 20;
    c.window_s = 10;
    j = jopen(&c);
    for (uint64_t i = 0; i < 20000; i++)
        CU_ASSERT_EQUAL(sl_journal_append(j, 1, 1000000000ull + i, i, SL_TYPE_UINT32, 0, NULL), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    for (uint64_t i = 0; i < 20000; i++)
        CU_ASSERT_EQUAL(sl_journal_append(j, 1, 2000000000ull + i, i, SL_TYPE_UINT32, 0, NULL), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    sl_journal_stats(j, &st);
    uint64_t before = st.segments;
    CU_ASSERT_EQUAL(sl_journal_trim(j, 1005000000ull), SL_OK);   /* nothing old yet */
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.segments, before);
    CU_ASSERT_EQUAL(sl_journal_trim(j, 2005000000ull), SL_OK);
    sl_journal_stats(j, &st);
    CU_ASSERT(st.segments < before && st.segments >= 1);
    struct sl_journal_iter *it = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_from_seq(it, 0), SL_OK);
    struct sl_journal_rec r;
    uint64_t old_left = 0, new_left = 0;
    while (sl_journal_iter_next(it, &r, NULL) == SL_OK)
        *(r.source_time_us < 2000000000ull ? &old_left : &new_left) += 1;
    CU_ASSERT_EQUAL(new_left, 20000);
    CU_ASSERT(old_left < 20000);                /* at most the segment both share */
    /* Everything old: only the newest segment stays. */
    CU_ASSERT_EQUAL(sl_journal_trim(j, 9000000000ull), SL_OK);
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.segments, 1);
    sl_journal_iter_free(it);
    sl_journal_close(j);
    dir_remove();
}

SL_TEST(journal, iterates_newest_first_and_reads_a_tag_in_time_order)
{
    struct sl_journal_config c;
    struct sl_journal *j = filled(&c, 20, 0);
    struct sl_journal_iter *it = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    struct sl_journal_rec r;
    CU_ASSERT_EQUAL(sl_journal_iter_next(it, &r, NULL), SL_ERR_STATE);   /* no seek yet */
    CU_ASSERT_EQUAL(sl_journal_iter_newest(it, 0), SL_OK);
    uint64_t first, seg = UINT64_MAX, segs = 0, last_seq = 0, n = 0, bad = 0;
    while (sl_journal_iter_next(it, &r, &first) == SL_OK) {
        if (first != seg) {
            if (first >= seg)
                bad++;                          /* segments must go newest first */
            seg = first;
            segs++;
        } else if (r.seq <= last_seq) {
            bad++;                              /* inside one: append order */
        }
        last_seq = r.seq;
        if (!rec_is(&r, r.seq - 1))
            bad++;
        n++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(n, 20000);
    CU_ASSERT(segs >= 3);
    CU_ASSERT_EQUAL(seg, 1);                    /* the oldest came last */

    /* since: only values at or after it, from the newest segment down. */
    uint64_t since = 1700000000000000ull + 15000ull * 1000u;
    CU_ASSERT_EQUAL(sl_journal_iter_newest(it, since), SL_OK);
    n = bad = 0;
    while (sl_journal_iter_next(it, &r, NULL) == SL_OK) {
        if (r.source_time_us < since)
            bad++;
        n++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(n >= 4990 && n <= 5010);

    /* One tag (id 0: records i % 97 == 0), times not monotone in append
     * order: sorted on the way out, range applied. */
    struct sl_journal_rec out[300];
    size_t got = 0;
    CU_ASSERT_EQUAL(sl_journal_tag_read(it, 0, 0, UINT64_MAX, out, 300, &got), SL_OK);
    CU_ASSERT_EQUAL(got, (20000 + 96) / 97);
    for (size_t i = 1; i < got; i++)
        CU_ASSERT(out[i - 1].source_time_us <= out[i].source_time_us);
    for (size_t i = 0; i < got; i++)
        CU_ASSERT_EQUAL(out[i].tag_id, 0);
    CU_ASSERT_EQUAL(sl_journal_tag_read(it, 0, since, UINT64_MAX, out, 300, &got), SL_OK);
    CU_ASSERT(got >= 50 && got <= 53);
    CU_ASSERT_EQUAL(sl_journal_tag_read(it, 0, 0, UINT64_MAX, out, 10, &got), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(got, 10);
    sl_journal_iter_free(it);
    sl_journal_close(j);
    dir_remove();
}

/* A child appends, flushes some, appends more and dies without closing:
 * the reopened journal never hands out a seq the child handed out, says
 * the lost ones are a gap, and still does so when the file is then cut or
 * the mark is lost too. */
SL_TEST(journal, seq_never_reused_after_a_crash)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct sl_journal *j = NULL;
        if (sl_journal_open(&j, &c) != SL_OK)
            _exit(1);
        append_n(j, 0, 100, 0);
        if (sl_journal_flush(j) != SL_OK)
            _exit(2);
        append_n(j, 100, 800, 0);      /* unflushed, below the mark (1 + 1000) */
        _exit(0);
    }
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    struct sl_journal *j = jopen(&c);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.next_seq, 1001);
    CU_ASSERT_EQUAL(st.unreserved, 0);
    uint64_t seq = 0, first_next = st.next_seq;
    CU_ASSERT_EQUAL(sl_journal_append(j, 9, 9, 9, SL_TYPE_BOOL, 0, &seq), SL_OK);
    CU_ASSERT_EQUAL(seq, first_next);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    struct scan sc = scan_all(j, 0, false);
    CU_ASSERT_EQUAL(sc.values, 101);
    CU_ASSERT_EQUAL(sc.gaps, 1);
    CU_ASSERT_EQUAL(sc.gap_seqs, first_next - 101);
    CU_ASSERT_EQUAL(sc.bad, 0);
    CU_ASSERT_EQUAL(sc.last_seq, first_next);
    sl_journal_close(j);

    /* Cut the segment back to its header: the mark still holds. */
    CU_ASSERT_EQUAL(truncate(seg_path(1), 32), 0);
    j = jopen(&c);
    sl_journal_stats(j, &st);
    CU_ASSERT(st.next_seq > first_next);
    sl_journal_close(j);

    /* The mark lost as well: two reserves above the last record on disk. */
    char mark[256];
    snprintf(mark, sizeof mark, "%s/mark", dir);
    spill(mark, "garbage\n", 8);
    j = jopen(&c);
    sl_journal_stats(j, &st);
    CU_ASSERT_TRUE(st.open_mark_lost);
    CU_ASSERT(st.next_seq > first_next);
    sl_journal_close(j);
    dir_remove();
}

/* The disk refuses (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG like ENOSPC): the
 * flush fails without leaving a partial block, records stay in memory,
 * appends beyond both buffers are counted lost (never blocked), and once
 * the disk takes writes again everything kept is written, the lost part as
 * one gap. */
SL_TEST(journal, write_failure_keeps_records_and_counts_the_overflow)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.buffer_bytes = 100u << 10;       /* not a multiple of a block: the last one ends early */
    c.seq_reserve = 1ull << 30;        /* no mark write while the limit holds */
    struct sl_journal *j = jopen(&c);
    append_n(j, 0, 100, 1);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    off_t before = file_size(seg_path(1));

    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct sigaction ign = { .sa_handler = SIG_IGN }, prev;
    sigaction(SIGXFSZ, &ign, &prev);
    lim = old;
    lim.rlim_cur = (rlim_t)before + 100;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    append_n(j, 100, 1000, 101);
    errno = 0;
    sl_err e1 = sl_journal_flush(j);
    int err1 = errno;
    off_t during = file_size(seg_path(1));
    append_n(j, 1100, 30000, 1101);    /* well past two 100 KiB buffers */
    sl_err e2 = sl_journal_flush(j);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &prev, NULL);

    CU_ASSERT_EQUAL(e1, SL_ERR_IO);
    CU_ASSERT_EQUAL(err1, EFBIG);
    CU_ASSERT_EQUAL(e2, SL_ERR_IO);
    CU_ASSERT_EQUAL(during, before);         /* no partial block left */
    CU_ASSERT(st.lost > 0);
    CU_ASSERT_EQUAL(st.write_errors, 2);
    CU_ASSERT_EQUAL(st.appended, 31100);
    CU_ASSERT_EQUAL(st.flushed, 100);
    CU_ASSERT_EQUAL(st.next_seq, 31101);

    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    append_n(j, 31100, 10, 31101);     /* opens with the gap of the lost ones */
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    sl_journal_stats(j, &st);
    struct scan sc = scan_all(j, 0, true);
    CU_ASSERT_EQUAL(sc.bad, 0);
    CU_ASSERT_EQUAL(sc.gaps, 1);
    CU_ASSERT_EQUAL(st.flushed, sc.values + sc.gaps);
    CU_ASSERT_EQUAL(sc.values, 31110 - st.lost);
    CU_ASSERT_EQUAL(sc.gap_seqs, st.lost);
    CU_ASSERT_EQUAL(sc.last_seq, 31110);
    sl_journal_close(j);
    dir_remove();
}

/* The three roles at once, as the daemon will run them: one thread appends,
 * one flushes in a loop (trimming by bytes), one reads from seq 0 again and
 * again. Readers see only whole, consecutive records; at the end every
 * record is on disk once. */
struct roles {
    struct sl_journal *j;
    atomic_bool stop;
    unsigned flush_errors, read_bad, passes;
};

static void *flush_role(void *arg)
{
    struct roles *r = arg;
    while (!atomic_load(&r->stop))
        if (sl_journal_flush(r->j) != SL_OK)
            r->flush_errors++;
    return NULL;
}

static void *read_role(void *arg)
{
    struct roles *r = arg;
    struct sl_journal_iter *it = NULL;
    if (sl_journal_iter_new(&it, r->j) != SL_OK) {
        r->read_bad++;
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        struct sl_journal_rec rec;
        uint64_t next = 0;
        if (sl_journal_iter_newest(it, 0) != SL_OK)
            r->read_bad++;
        while (sl_journal_iter_next(it, &rec, NULL) == SL_OK)
            if (!rec_is(&rec, rec.seq - 1))
                r->read_bad++;
        if (sl_journal_iter_from_seq(it, 0) != SL_OK)
            r->read_bad++;
        while (sl_journal_iter_next(it, &rec, NULL) == SL_OK) {
            if (next && rec.seq != next && rec.seq < next)
                r->read_bad++;
            next = rec.seq + 1;
        }
        r->passes++;
    }
    sl_journal_iter_free(it);
    return NULL;
}

SL_TEST(journal, append_flush_and_read_at_once)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.max_bytes = 1u << 20;                     /* trims while it runs */
    c.buffer_bytes = 4u << 20;                  /* all of it: nothing lost however slow */
    struct roles r = { .j = jopen(&c) };
    pthread_t ft, rt;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ft, NULL, flush_role, &r), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&rt, NULL, read_role, &r), 0);
    for (uint64_t i = 0; i < 200; i++) {
        append_n(r.j, i * 1000, 1000, i * 1000 + 1);
        usleep(200);                            /* let the flusher keep up */
    }
    atomic_store(&r.stop, true);
    pthread_join(ft, NULL);
    pthread_join(rt, NULL);
    CU_ASSERT_EQUAL(sl_journal_flush(r.j), SL_OK);
    struct sl_journal_stats st;
    sl_journal_stats(r.j, &st);
    CU_ASSERT_EQUAL(r.flush_errors, 0);
    CU_ASSERT_EQUAL(r.read_bad, 0);
    CU_ASSERT(r.passes > 0);
    CU_ASSERT_EQUAL(st.lost, 0);
    CU_ASSERT_EQUAL(st.read_errors, 0);
    CU_ASSERT(st.bytes <= c.max_bytes);
    struct scan sc = scan_all(r.j, 0, true);
    CU_ASSERT_EQUAL(sc.bad, 0);
    CU_ASSERT_EQUAL(sc.last_seq, 200000);
    CU_ASSERT_EQUAL(sc.values, 200001 - st.oldest_seq);
    sl_journal_close(r.j);
    dir_remove();
}

/* Runs of appends under one lock (sl_journal_append_begin / _held /
 * _end) beside a flusher and a reader: the same records and seqs as
 * single appends, nothing lost, every record read back intact. */
SL_TEST(journal, append_runs_beside_flush_and_read)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.buffer_bytes = 4u << 20;
    struct roles r = { .j = jopen(&c) };
    pthread_t ft, rt;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ft, NULL, flush_role, &r), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&rt, NULL, read_role, &r), 0);
    unsigned bad = 0;
    for (uint64_t i = 0; i < 200; i++) {
        sl_journal_append_begin(r.j);
        for (uint64_t k = i * 1000; k < i * 1000 + 1000; k++) {
            uint32_t tag, q;
            uint64_t t, raw, seq = 0;
            uint8_t type;
            rec_of(k, &tag, &t, &raw, &type, &q);
            bad += sl_journal_append_held(r.j, tag, t, raw, type, q, &seq) != SL_OK || seq != k + 1;
        }
        sl_journal_append_end(r.j);
        usleep(200);
    }
    CU_ASSERT_EQUAL(sl_journal_append_held(r.j, 1, 1, 1, 16, 0, NULL), SL_ERR_RANGE);   /* type > 15 */
    atomic_store(&r.stop, true);
    pthread_join(ft, NULL);
    pthread_join(rt, NULL);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(sl_journal_flush(r.j), SL_OK);
    struct sl_journal_stats st;
    sl_journal_stats(r.j, &st);
    CU_ASSERT_EQUAL(r.flush_errors, 0);
    CU_ASSERT_EQUAL(r.read_bad, 0);
    CU_ASSERT_EQUAL(st.lost, 0);
    CU_ASSERT_EQUAL(st.appended, 200000);
    struct scan sc = scan_all(r.j, 0, true);
    CU_ASSERT_EQUAL(sc.bad, 0);
    CU_ASSERT_EQUAL(sc.last_seq, 200000);
    sl_journal_close(r.j);
    dir_remove();
}

/* Appends that run past the persisted mark (the flusher stalled) are
 * counted; the next flush moves the mark above them before writing. */
SL_TEST(journal, seqs_past_the_mark_are_counted)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    struct sl_journal *j = jopen(&c);
    append_n(j, 0, 1500, 1);                   /* the mark is 1 + 1000 */
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.unreserved, 500);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    append_n(j, 1500, 1000, 1501);             /* below the new mark 1501 + 1000 */
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.unreserved, 500);
    sl_journal_close(j);
    dir_remove();
}

SL_TEST(journal, refuses_bad_config)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    struct sl_journal *j = (struct sl_journal *)&c;
    c.max_bytes = 100u << 10;                  /* under four minimum segments */
    CU_ASSERT_EQUAL(sl_journal_open(&j, &c), SL_ERR_RANGE);
    CU_ASSERT_PTR_NULL(j);
    c = cfg_of();
    c.dir = "/nonexistent/x/journal";
    CU_ASSERT_EQUAL(sl_journal_open(&j, &c), SL_ERR_IO);
    CU_ASSERT_PTR_NULL(j);
    dir_remove();
}

/* The journal's id: random and non-zero at creation, kept across a
 * reopen, new for a wiped directory; a damaged or missing id beside
 * segments is renewed and said so (the seqs there may be another
 * journal's). */
SL_TEST(journal, id_made_kept_and_renewed)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    struct sl_journal *j = jopen(&c);
    uint64_t id = sl_journal_id(j);
    CU_ASSERT_NOT_EQUAL(id, 0);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.journal_id, id);
    CU_ASSERT_FALSE(st.open_id_renewed);
    append_n(j, 0, 10, 1);
    sl_journal_close(j);

    char path[256];
    snprintf(path, sizeof path, "%s/id", dir);
    size_t len = 0;
    char *text = slurp(path, &len);
    CU_ASSERT_EQUAL_FATAL(len, 17);
    char want[32];
    snprintf(want, sizeof want, "%016llx\n", (unsigned long long)id);
    CU_ASSERT_NSTRING_EQUAL(text, want, 17);
    free(text);

    j = jopen(&c);                               /* kept */
    CU_ASSERT_EQUAL(sl_journal_id(j), id);
    sl_journal_stats(j, &st);
    CU_ASSERT_FALSE(st.open_id_renewed);
    CU_ASSERT_EQUAL(st.next_seq, 11);
    sl_journal_close(j);

    spill(path, "00000000000000000\n", 18);      /* damaged: one digit too many */
    j = jopen(&c);
    uint64_t id2 = sl_journal_id(j);
    CU_ASSERT_NOT_EQUAL(id2, 0);
    CU_ASSERT_NOT_EQUAL(id2, id);
    sl_journal_stats(j, &st);
    CU_ASSERT_TRUE(st.open_id_renewed);
    CU_ASSERT_EQUAL(st.next_seq, 11);            /* seqs still never reused */
    /* the old records are not served under the new id (RX would store
     * them twice): their segments are gone */
    CU_ASSERT_EQUAL(st.segments, 0);
    CU_ASSERT_EQUAL(st.open_discarded_segments, 1);
    CU_ASSERT_EQUAL(st.oldest_seq, 0);
    struct sl_journal_iter *it = NULL;
    struct sl_journal_rec r;
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_from_seq(it, 1), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_next(it, &r, NULL), SL_ERR_EOF);
    sl_journal_iter_free(it);
    append_n(j, 10, 5, 11);
    sl_journal_close(j);

    CU_ASSERT_EQUAL(unlink(path), 0);            /* missing beside segments */
    j = jopen(&c);
    CU_ASSERT_NOT_EQUAL(sl_journal_id(j), id2);
    sl_journal_stats(j, &st);
    CU_ASSERT_TRUE(st.open_id_renewed);
    sl_journal_close(j);

    spill(path, "0000000000000000\n", 17);       /* zero is no id */
    j = jopen(&c);
    CU_ASSERT_NOT_EQUAL(sl_journal_id(j), 0);
    sl_journal_close(j);
    dir_remove();

    dir_make();                                  /* a wiped directory: a new journal */
    c = cfg_of();
    j = jopen(&c);
    CU_ASSERT_NOT_EQUAL(sl_journal_id(j), id);
    sl_journal_stats(j, &st);
    CU_ASSERT_FALSE(st.open_id_renewed);
    CU_ASSERT_EQUAL(st.next_seq, 1);
    sl_journal_close(j);
    dir_remove();
}

/* Opened through a directory descriptor (sluice-tx opens it before the
 * privilege drop): everything goes through it, cfg->dir unused. */
SL_TEST(journal, open_at_a_directory_descriptor)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.dir = NULL;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    struct sl_journal *j = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journal_open_at(&j, &c, fd), SL_OK);
    append_n(j, 0, 100, 1);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    sl_journal_close(j);
    CU_ASSERT_TRUE(file_size(seg_path(1)) > 0);
    CU_ASSERT_EQUAL(sl_journal_open(&j, &c), SL_ERR_RANGE);   /* neither dir nor descriptor */
    CU_ASSERT_EQUAL_FATAL(sl_journal_open_at(&j, &c, fd), SL_OK);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.next_seq, 101);
    sl_journal_close(j);
    close(fd);
    dir_remove();
}

/* The child of full_disk_never_reuses_seqs, in its own mount namespace
 * with a 512 KiB tmpfs: 0 passed, 1 failed, 77 cannot run. */
static int full_disk_child(void)
{
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 77;
    char base[] = "/tmp/sl-jfull-XXXXXX";
    if (!mkdtemp(base))
        return 77;
    if (mount("sl-jfull", base, "tmpfs", 0, "size=512k,mode=0700") != 0) {
        rmdir(base);
        return 77;
    }
    snprintf(dir, sizeof dir, "%s/j", base);
    struct sl_journal_config c = cfg_of();
    c.max_bytes = 256u << 10;
    c.buffer_bytes = 64u << 10;
    struct sl_journal *j = NULL;
    int rc = 1;
    if (sl_journal_open(&j, &c) != SL_OK)
        goto out;
    /* The disk full to the last block. */
    char filler[256];
    snprintf(filler, sizeof filler, "%s/filler", base);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    static uint8_t chunk[4096];
    while (fd >= 0 && write(fd, chunk, sizeof chunk) > 0) {
    }
    if (fd >= 0)
        close(fd);
    /* 5 reserves of appends, flushed (failing) as the flusher would. */
    uint64_t last = 0, seq = 0;
    unsigned failed = 0;
    for (uint64_t i = 0; i < 5000; i++) {
        if (sl_journal_append(j, 1, 1700000000000000ull + i, i, SL_TYPE_UINT16, SL_Q_GOOD, &seq) != SL_OK)
            goto out;
        last = seq;
        if (i % 100 == 99)
            failed += sl_journal_flush(j) != SL_OK;
    }
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    sl_journal_close(j);                      /* its last flush fails too */
    j = NULL;
    if (sl_journal_open(&j, &c) != SL_OK)     /* still full: the mark is rewritten in place */
        goto out;
    struct sl_journal_stats st2;
    sl_journal_stats(j, &st2);
    fprintf(stderr, "\n  full disk: %u failed flushes, last seq %llu, unreserved %llu; reopened at %llu\n",
            failed, (unsigned long long)last, (unsigned long long)st.unreserved,
            (unsigned long long)st2.next_seq);
    rc = failed > 0 && st2.next_seq > last ? 0 : 1;
out:
    sl_journal_close(j);
    umount2(base, MNT_DETACH);
    rmdir(base);
    return rc;
}

/* A full disk does not stop the seq mark (rewritten in place in blocks
 * allocated at open), so appends beyond the reserve while the disk is full
 * are still covered by it and a restart (even with the disk still full)
 * continues above every seq handed out (sent live), never reusing one.
 * Needs root for the tmpfs (skipped otherwise). */
SL_TEST(journal, full_disk_never_reuses_seqs)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(full_disk_child());
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        printf("\n  skipped: no mount namespace (not root)\n");
        return;
    }
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
}

/* One seq bound with the wire: a mark past 2^61 (damaged, forged, another
 * box's) refuses to open, so no run can reach the wire's 2^62; just below
 * opens, and its seqs go on the wire. */
SL_TEST(journal, seq_bound_refuses_to_open)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    struct sl_journal *j = jopen(&c);
    sl_journal_close(j);
    char path[256];
    snprintf(path, sizeof path, "%s/mark", dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    snprintf(path, sizeof path, "%s/next_seq", dir);      /* the earlier text mark is still read */
    const uint64_t marks[] = { (1ull << 62) - 1, (1ull << 61) + 1, (1ull << 61) - 10 };
    for (unsigned i = 0; i < 3; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)marks[i]);
        spill(path, text, (size_t)n);
        char mp[256];
        snprintf(mp, sizeof mp, "%s/mark", dir);
        unlink(mp);
        j = (struct sl_journal *)&c;
        sl_err e = sl_journal_open(&j, &c);
        if (i < 2) {
            CU_ASSERT_EQUAL(e, SL_ERR_RANGE);
            CU_ASSERT_PTR_NULL(j);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(e, SL_OK);
        uint64_t seq = 0;
        CU_ASSERT_EQUAL(sl_journal_append(j, 1, 1, 1, SL_TYPE_UINT16, 0, &seq), SL_OK);
        CU_ASSERT_EQUAL(seq, marks[i]);
        CU_ASSERT(seq < SL_HREC_SEQ_LIMIT);
        sl_journal_close(j);
        CU_ASSERT_EQUAL(access(path, F_OK), -1);          /* taken over by the mark file */
    }
    dir_remove();
}

/* A journal made with another tag map (schema fingerprint): a new id, the
 * old records deleted (re-sent, RX would file them under the tags that now
 * have their ids); the same map: kept. Seqs go on upwards. */
SL_TEST(journal, schema_change_renews_the_journal)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.schema_fp = 0x1111;
    struct sl_journal *j = jopen(&c);
    uint64_t id = sl_journal_id(j);
    append_n(j, 0, 20, 1);
    sl_journal_close(j);

    j = jopen(&c);                               /* the same map: kept */
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(sl_journal_id(j), id);
    CU_ASSERT_FALSE(st.open_schema_changed);
    CU_ASSERT_EQUAL(st.oldest_seq, 1);
    sl_journal_close(j);

    c.schema_fp = 0x2222;                        /* a tag inserted, say */
    j = jopen(&c);
    sl_journal_stats(j, &st);
    CU_ASSERT_NOT_EQUAL(sl_journal_id(j), id);
    CU_ASSERT_TRUE(st.open_schema_changed);
    CU_ASSERT_FALSE(st.open_id_renewed);
    CU_ASSERT_EQUAL(st.segments, 0);
    CU_ASSERT_EQUAL(st.next_seq, 21);
    struct sl_journal_iter *it = NULL;
    struct sl_journal_rec r;
    CU_ASSERT_EQUAL_FATAL(sl_journal_iter_new(&it, j), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_from_seq(it, 1), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_iter_next(it, &r, NULL), SL_ERR_EOF);   /* no old record served */
    sl_journal_iter_free(it);
    uint64_t id2 = sl_journal_id(j);
    append_n(j, 20, 5, 21);
    sl_journal_close(j);

    j = jopen(&c);                               /* and that one is kept in turn */
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(sl_journal_id(j), id2);
    CU_ASSERT_FALSE(st.open_schema_changed);
    CU_ASSERT_EQUAL(st.oldest_seq, 21);
    sl_journal_close(j);
    dir_remove();
}

/* A wall clock stepped forward by more than window_s does not delete the
 * backlog (the segments' age is taken from the monotonic clock since they
 * were written); the same time really passing does. */
SL_TEST(journal, window_trim_ignores_a_clock_step_forward)
{
    dir_make();
    struct sl_journal_config c = cfg_of();
    c.max_bytes = 1u << 20;
    c.segment_bytes = 64u << 10;
    c.window_s = 3600;
    struct sl_journal *j = jopen(&c);
    uint64_t wall = sl_clock_wall_us(), mono = sl_clock_mono_us();
    for (uint64_t i = 0; i < 20000; i++)
        CU_ASSERT_EQUAL(sl_journal_append(j, (uint32_t)(i % 50), wall - 60000000ull + i * 1000u, i,
                                          SL_TYPE_UINT32, 0, NULL), SL_OK);
    CU_ASSERT_EQUAL(sl_journal_flush(j), SL_OK);
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    uint64_t segs = st.segments;
    CU_ASSERT_FATAL(segs >= 3);
    uint64_t step = 2 * 3600 * 1000000ull;
    CU_ASSERT_EQUAL(sl_journal_trim_clocks(j, wall + step, mono), SL_OK);        /* the step */
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.segments, segs);
    CU_ASSERT(st.clock_step_us >= step - 10000000ull);
    CU_ASSERT_EQUAL(sl_journal_trim_clocks(j, wall + step, mono + step), SL_OK); /* time passing */
    sl_journal_stats(j, &st);
    CU_ASSERT_EQUAL(st.segments, 1);
    sl_journal_close(j);
    dir_remove();
}
