/* sluice-bench journal [RATE [SECONDS [DIR]]]: the TX change journal's
 * append cost and its sustained rate with group commit running beside it,
 * the bytes a record takes on disk, the opening scan and the read-back rate
 * (docs/history.md).
 *
 * The plant: 10,000 tags round-robin, float32 values, source time +1 µs a
 * record, 1 % not Good. First a burst of BURST appends into an empty
 * buffer, nothing else running (the in-memory cost of one append). Then
 * RATE records/s (default 2,000,000, the TX's peak tag update rate) for
 * SECONDS (default 10), paced in batches of BATCH, while a second thread
 * calls sl_journal_flush every 100 ms (pwrite + fdatasync), as the daemon
 * will; the run counts only when lost is 0 (the flusher kept up) and the
 * rate reached is RATE. DIR (default a new directory under /tmp) is removed
 * afterwards only when the tool made it. */
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "sl_journal.h"
#include "sl_wire.h"

#define TAGS 10000u
#define FLUSH_NS 100000000ull
#define BURST 500000u
#define BATCH 1000u

struct flusher {
    struct sl_journal *j;
    atomic_bool stop;
    uint64_t flushes, worst_ns, errors;
};

static void *flush_loop(void *arg)
{
    struct flusher *f = arg;
    while (!atomic_load(&f->stop)) {
        usleep((useconds_t)(FLUSH_NS / 1000u));
        uint64_t t0 = bench_now_ns();
        if (sl_journal_flush(f->j) != SL_OK)
            f->errors++;
        uint64_t dt = bench_now_ns() - t0;
        f->worst_ns = dt > f->worst_ns ? dt : f->worst_ns;
        f->flushes++;
    }
    return NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *fw)
{
    (void)st, (void)flag, (void)fw;
    return remove(path);
}

/* Appends n records from *i on (the plant above). */
static void append_plant(struct sl_journal *j, float *v, uint64_t *i, uint64_t n)
{
    for (uint64_t end = *i + n; *i < end; (*i)++) {
        unsigned tag = (unsigned)(*i % TAGS);
        v[tag] += 0.25f;
        uint32_t bits;
        memcpy(&bits, &v[tag], sizeof bits);
        uint32_t q = *i % 100 == 99 ? SL_Q_BAD_COMM_ERROR : SL_Q_GOOD;
        (void)sl_journal_append(j, tag, 1700000000000000ull + *i, bits, SL_TYPE_FLOAT32, q, NULL);
    }
}

int bench_journal(int argc, char **argv)
{
    double rate = argc > 1 ? strtod(argv[1], NULL) : 2e6;
    double seconds = argc > 2 ? strtod(argv[2], NULL) : 10.0;
    char made[] = "/tmp/sluice-bench-journal-XXXXXX";
    const char *dir = argc > 3 ? argv[3] : mkdtemp(made);
    if (!dir || !(rate >= 1000.0 && rate <= 1e9) || !(seconds > 0.0 && seconds <= 3600.0)) {
        fprintf(stderr, "usage: sluice-bench journal [RATE [SECONDS [DIR]]]\n");
        return 2;
    }
    struct sl_journal_config cfg = { .dir = dir, .epoch = 1 };
    struct sl_journal *j = NULL;
    if (sl_journal_open(&j, &cfg) != SL_OK) {
        fprintf(stderr, "sluice-bench journal: cannot open a journal in %s\n", dir);
        return 1;
    }
    static float v[TAGS];
    for (unsigned k = 0; k < TAGS; k++)
        v[k] = (float)k;
    uint64_t i = 0, t0 = bench_now_ns();
    append_plant(j, v, &i, BURST);
    uint64_t burst_ns = bench_now_ns() - t0;
    sl_err burst_flush = sl_journal_flush(j);

    struct flusher f = { .j = j };
    pthread_t th;
    pthread_create(&th, NULL, flush_loop, &f);
    uint64_t records = (uint64_t)(rate * seconds), busy_ns = 0, start = i;
    t0 = bench_now_ns();
    while (i - start < records) {
        uint64_t due = t0 + (uint64_t)((double)(i - start) * 1e9 / rate), now = bench_now_ns();
        if (now < due)
            usleep((useconds_t)((due - now) / 1000u));
        uint64_t b0 = bench_now_ns(), left = records - (i - start);
        append_plant(j, v, &i, left < BATCH ? left : BATCH);
        busy_ns += bench_now_ns() - b0;
    }
    uint64_t append_ns = bench_now_ns() - t0;
    atomic_store(&f.stop, true);
    pthread_join(th, NULL);
    uint64_t t1 = bench_now_ns();
    sl_err last = sl_journal_flush(j);
    uint64_t final_ns = bench_now_ns() - t1;
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    sl_journal_close(j);

    t1 = bench_now_ns();
    if (sl_journal_open(&j, &cfg) != SL_OK) {
        fprintf(stderr, "sluice-bench journal: cannot reopen %s\n", dir);
        return 1;
    }
    uint64_t open_ns = bench_now_ns() - t1;
    struct sl_journal_stats st2;
    sl_journal_stats(j, &st2);
    struct sl_journal_iter *it = NULL;
    uint64_t read = 0;
    t1 = bench_now_ns();
    if (sl_journal_iter_new(&it, j) == SL_OK && sl_journal_iter_from_seq(it, 0) == SL_OK) {
        struct sl_journal_rec r;
        while (sl_journal_iter_next(it, &r, NULL) == SL_OK)
            read++;
    }
    uint64_t read_ns = bench_now_ns() - t1;
    sl_journal_iter_free(it);
    sl_journal_close(j);

    printf("journal: %u tags, float32, flush every %llu ms (fdatasync) in %s\n", TAGS,
           FLUSH_NS / 1000000u, dir);
    printf("  burst       %u appends in memory: %.0f ns each (%.1f M/s)%s\n", BURST,
           (double)burst_ns / BURST, (double)BURST * 1e3 / (double)burst_ns,
           burst_flush == SL_OK ? "" : ", flush failed");
    printf("  sustained   %.2f M records/s for %.1f s (asked %.2f M/s): appends %.0f ns each, "
           "%.0f %% of one core; lost %llu, unreserved %llu\n",
           (double)records * 1e3 / (double)append_ns, (double)append_ns / 1e9, rate / 1e6,
           (double)busy_ns / (double)records, 100.0 * (double)busy_ns / (double)append_ns,
           (unsigned long long)st.lost, (unsigned long long)st.unreserved);
    printf("  flushes     %llu, worst %.1f ms, errors %llu, final %.1f ms (%s)\n",
           (unsigned long long)f.flushes, (double)f.worst_ns / 1e6,
           (unsigned long long)f.errors, (double)final_ns / 1e6, last == SL_OK ? "ok" : "failed");
    printf("  on disk     %.2f bytes/record, %llu segments, %.1f MiB, trimmed %llu segments\n",
           st.flushed ? (double)st.bytes / (double)st.flushed : 0.0,
           (unsigned long long)st.segments, (double)st.bytes / 1048576.0,
           (unsigned long long)st.trimmed_segments);
    printf("  reopen      %.1f ms (scan of %.1f MiB), next_seq %llu\n", (double)open_ns / 1e6,
           (double)st2.bytes / 1048576.0, (unsigned long long)st2.next_seq);
    printf("  read back   %.2f M records/s (%llu records)\n",
           read_ns ? (double)read * 1e3 / (double)read_ns : 0.0, (unsigned long long)read);
    if (argc <= 3)
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return st.lost == 0 && last == SL_OK ? 0 : 1;
}
