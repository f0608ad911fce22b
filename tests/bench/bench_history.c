/* sluice-bench history [ROWS [TAGS [DB [BATCH]]]]: the SQLite history backend
 * (rx/sl_histdb_sqlite.c) as rx-hist drives it: insert rate in batches of
 * BATCH rows (default 20,000; one transaction each), then the query time for one tag's
 * hour and one tag's whole range (docs/performance.md "History").
 *
 * The plant: TAGS tags (default 10,000) updated round-robin, ROWS rows
 * (default 10,000,000) spread evenly over 30 days of source time, so each
 * day is one partition of ROWS/30 rows and a tag's month is ROWS/TAGS
 * points. DB (default a new file under /tmp, removed afterwards) may name
 * an existing database to query again without inserting (ROWS 0). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "sl_histdb.h"
#include "sl_wire.h"

#define BATCH_DEFAULT 20000u
#define DAYS    30u
#define DAY_US  86400000000ull
#define T0_US   1796083200000000ull   /* 2026-12-01 00:00 UTC */
#define REPEAT  21

static bool count_fn(void *ctx, const struct sl_histdb_point *p)
{
    (void)p;
    (*(uint64_t *)ctx)++;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median and worst of REPEAT queries of tag t over [from, to). */
static int time_query(struct sl_histdb *r, unsigned tags, int64_t from, int64_t to, const char *what)
{
    uint64_t ns[REPEAT], pts = 0;
    for (int i = 0; i < REPEAT; i++) {
        char name[64];
        snprintf(name, sizeof name, "acme/plant/area/line/tag%u", (unsigned)(((unsigned)i * 7919u) % tags));
        uint64_t n = 0, t0 = bench_now_ns();
        if (sl_histdb_query(r, name, from, to, 1000000, count_fn, &n, NULL) != SL_OK) {
            fprintf(stderr, "query: %s\n", sl_histdb_errmsg(r));
            return 1;
        }
        ns[i] = bench_now_ns() - t0;
        pts = n;
    }
    qsort(ns, REPEAT, sizeof ns[0], cmp_u64);
    printf("  %-22s %8" PRIu64 " points  median %8.2f ms  worst %8.2f ms\n", what, pts, (double)ns[REPEAT / 2] / 1e6,
           (double)ns[REPEAT - 1] / 1e6);
    return 0;
}

int bench_history(int argc, char **argv)
{
    double rows_d = argc > 1 ? strtod(argv[1], NULL) : 1e7;
    unsigned tags = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 10000u;
    char made[] = "/tmp/sluice-bench-history-XXXXXX";
    char path[512];
    bool own = argc <= 3 || strcmp(argv[3], "-") == 0;
    unsigned batch = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : BATCH_DEFAULT;
    if (own) {
        if (!mkdtemp(made))
            return 1;
        snprintf(path, sizeof path, "%s/history.db", made);
    } else {
        snprintf(path, sizeof path, "%s", argv[3]);
    }
    if (!(rows_d >= 0 && rows_d <= 1e10) || tags < 1 || tags > 1000000 || batch < 1 || batch > 1000000) {
        fprintf(stderr, "usage: sluice-bench history [ROWS [TAGS [DB|- [BATCH]]]]\n");
        return 2;
    }
    uint64_t rows = (uint64_t)rows_d;
    struct sl_histdb_config cfg = { .database = path, .retention_days = 3650 };
    char err[256];
    struct sl_histdb *w;
    if (sl_histdb_open(&w, &cfg, true, err, sizeof err) != SL_OK) {
        fprintf(stderr, "open %s: %s\n", path, err);
        return 1;
    }
    uint32_t *ids = malloc(tags * sizeof *ids);
    struct sl_histdb_row *b = malloc(batch * sizeof *b);
    if (!ids || !b)
        return 1;
    for (unsigned t = 0; t < tags; t++) {
        char name[64];
        snprintf(name, sizeof name, "acme/plant/area/line/tag%u", t);
        if (sl_histdb_tag(w, name, &ids[t]) != SL_OK) {
            fprintf(stderr, "tag: %s\n", sl_histdb_errmsg(w));
            return 1;
        }
    }
    printf("history insert: %" PRIu64 " rows, %u tags, %u days, batches of %u rows, %s\n", rows, tags, DAYS, batch,
           path);
    uint64_t step_ns = rows ? (uint64_t)DAYS * DAY_US * 1000u / rows : 0;   /* source time between rows, ns */
    uint64_t t_start = bench_now_ns(), t_mark = t_start, mark_rows = 0, worst_batch = 0;
    uint64_t report = rows / 10 ? rows / 10 : 1;
    for (uint64_t i = 0; i < rows;) {
        size_t n = 0;
        for (; n < batch && i < rows; n++, i++) {
            float v = (float)sin((double)i * 1e-3) * 100.0f;
            uint32_t bits;
            memcpy(&bits, &v, sizeof bits);
            b[n] = (struct sl_histdb_row){ .tag = ids[i % tags],
                                           .ts_us = (int64_t)(T0_US + i * step_ns / 1000u),
                                           .journal_id = 0x5a5a5a5a5a5a5a5aull, .seq = i + 1, .raw = bits,
                                           .value = v, .quality = i % 100 == 99 ? SL_Q_BAD_COMM_ERROR : 0,
                                           .type = SL_TYPE_FLOAT32, .origin = SL_HIST_LIVE };
        }
        uint64_t t0 = bench_now_ns();
        if (sl_histdb_begin(w) != SL_OK || sl_histdb_put(w, b, n) != SL_OK ||
            sl_histdb_put_journal(w, 0x5a5a5a5a5a5a5a5aull, "x", 1) != SL_OK || sl_histdb_commit(w) != SL_OK) {
            fprintf(stderr, "batch: %s\n", sl_histdb_errmsg(w));
            return 1;
        }
        uint64_t dt = bench_now_ns() - t0;
        worst_batch = dt > worst_batch ? dt : worst_batch;
        if (i / report != (i - n) / report || i == rows) {
            uint64_t now = bench_now_ns();
            printf("  %11" PRIu64 " rows  %9.0f rows/s (last %" PRIu64 ")  worst batch %.1f ms\n", i,
                   (double)(i - mark_rows) / ((double)(now - t_mark) / 1e9), i - mark_rows, (double)worst_batch / 1e6);
            t_mark = now;
            mark_rows = i;
            worst_batch = 0;
        }
    }
    if (rows) {
        /* The rows the backend staged reach their day tables (SQLite: every
         * 30 s or 2 M rows; the rest now): part of the cost. */
        uint64_t t_m = bench_now_ns();
        if (sl_histdb_merge(w) != SL_OK) {
            fprintf(stderr, "merge: %s\n", sl_histdb_errmsg(w));
            return 1;
        }
        printf("  final merge %.1f s\n", (double)(bench_now_ns() - t_m) / 1e9);
        double secs = (double)(bench_now_ns() - t_start) / 1e9;
        struct stat st;
        stat(path, &st);
        printf("  total %.1f s, %.0f rows/s, file %.1f MB (%.1f bytes/row)\n", secs, (double)rows / secs,
               (double)st.st_size / 1e6, (double)st.st_size / (double)rows);
    }
    sl_histdb_close(w);
    struct sl_histdb *r;
    if (sl_histdb_open(&r, &cfg, false, err, sizeof err) != SL_OK) {
        fprintf(stderr, "open reader: %s\n", err);
        return 1;
    }
    printf("history query (one tag, %d tags tried, page cache warm):\n", REPEAT);
    int rc = time_query(r, tags, (int64_t)(T0_US + 14 * DAY_US), (int64_t)(T0_US + 14 * DAY_US + 3600000000ull),
                        "hour (mid-month)");
    rc |= time_query(r, tags, (int64_t)(T0_US + 14 * DAY_US), (int64_t)(T0_US + 15 * DAY_US), "day");
    rc |= time_query(r, tags, (int64_t)T0_US, (int64_t)(T0_US + DAYS * DAY_US), "month (30 partitions)");
    sl_histdb_close(r);
    free(ids);
    free(b);
    if (own) {
        char p[600];
        unlink(path);
        snprintf(p, sizeof p, "%s-wal", path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", path);
        unlink(p);
        rmdir(made);
    }
    return rc;
}
