/* The SQLite history backend through the public sl_histdb API: round trip
 * across day partitions, query order/limit/more, idempotent re-puts,
 * journal blobs with the rows in one transaction, rollback, retention
 * dropping whole days, the reader's "no history yet", and a disk that
 * refuses to grow (RLIMIT_FSIZE) rolling the batch back, then a retry. */
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "history_fixture.h"
#include "sl_histdb.h"
#include "sl_test.h"

#include <CUnit/CUnit.h>

#define DAY_US 86400000000LL
#define T0     (20000LL * DAY_US)   /* 2024-10-04 00:00 UTC */

static struct sl_histdb *open_db(const char *path, bool writer)
{
    struct sl_histdb_config cfg = { .database = path, .retention_days = 30 };
    struct sl_histdb *db = NULL;
    char err[256];
    sl_err e = sl_histdb_open(&db, &cfg, writer, err, sizeof err);
    if (e != SL_OK)
        fprintf(stderr, "open %s: %s\n", path, err);
    CU_ASSERT_FATAL(e == SL_OK);
    CU_ASSERT_STRING_EQUAL(sl_histdb_kind(db), "sqlite");
    return db;
}

struct collect {
    size_t n;
    struct sl_histdb_point p[64];
    size_t stop_after;
};

static bool collect_fn(void *ctx, const struct sl_histdb_point *p)
{
    struct collect *c = ctx;
    if (c->n < 64)
        c->p[c->n] = *p;
    c->n++;
    return !c->stop_after || c->n < c->stop_after;
}

static struct sl_histdb_row row(uint32_t tag, int64_t ts, uint64_t seq, double v)
{
    return (struct sl_histdb_row){ .tag = tag, .ts_us = ts, .journal_id = 0xfeedface12345678ull, .seq = seq,
                                   .raw = (uint64_t)seq | 0x8000000000000000ull, .value = v, .quality = 0,
                                   .type = 8, .origin = SL_HIST_LIVE };
}

SL_TEST(histdb, config_needs_exactly_one_backend)
{
    struct sl_histdb *db = (struct sl_histdb *)1;
    char err[128];
    struct sl_histdb_config none = { 0 };
    CU_ASSERT_EQUAL(sl_histdb_open(&db, &none, true, err, sizeof err), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(db);
    struct sl_histdb_config both = { .database = "/tmp/x.db", .url = "postgresql://h/db" };
    CU_ASSERT_EQUAL(sl_histdb_open(&db, &both, true, err, sizeof err), SL_ERR_CONFIG);
    CU_ASSERT(strstr(err, "exactly one") != NULL);
}

SL_TEST(histdb, reader_before_writer_says_no_history)
{
    const char *path = hist_db_path("none.db");
    struct sl_histdb_config cfg = { .database = path };
    struct sl_histdb *db = NULL;
    char err[256];
    CU_ASSERT_EQUAL(sl_histdb_open(&db, &cfg, false, err, sizeof err), SL_ERR_IO);
    CU_ASSERT(strstr(err, "no history yet") != NULL);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);   /* a reader creates nothing */
}

SL_TEST(histdb, round_trip_across_days)
{
    const char *path = hist_db_path("rt.db");
    struct sl_histdb *w = open_db(path, true);
    uint32_t a, b, a2;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "acme/plant/area/line/temp", &a), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "acme/plant/area/line/flow", &b), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "acme/plant/area/line/temp", &a2), SL_OK);
    CU_ASSERT_EQUAL(a, a2);
    CU_ASSERT_NOT_EQUAL(a, b);
    /* 3 days, out of order, one NaN, tag b interleaved. */
    struct sl_histdb_row r[] = {
        row(a, T0 + 2 * DAY_US + 5, 7, 7.5),  row(a, T0 + 10, 1, 1.0),          row(b, T0 + 11, 2, -2.0),
        row(a, T0 + DAY_US - 1, 3, NAN),      row(a, T0 + DAY_US, 4, 4.0),      row(a, T0 + 10, 0, 0.5),
        row(b, T0 + 2 * DAY_US + 1, 6, 6.0),
    };
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, r, sizeof r / sizeof r[0]), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put_journal(w, 0xfeedface12345678ull, "state1", 6), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);

    struct sl_histdb *rd = open_db(path, false);
    struct collect c = { 0 };
    bool more = true;
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/temp", T0, T0 + 3 * DAY_US, 100, collect_fn, &c, &more),
                    SL_OK);
    CU_ASSERT_FALSE(more);
    CU_ASSERT_EQUAL_FATAL(c.n, 5);
    /* Source-time order, ties by seq, across three day tables. */
    CU_ASSERT_EQUAL(c.p[0].ts_us, T0 + 10);
    CU_ASSERT_EQUAL(c.p[0].value, 0.5);
    CU_ASSERT_EQUAL(c.p[1].ts_us, T0 + 10);
    CU_ASSERT_EQUAL(c.p[1].value, 1.0);
    CU_ASSERT_EQUAL(c.p[1].raw, 1 | 0x8000000000000000ull);
    CU_ASSERT(isnan(c.p[2].value));
    CU_ASSERT_EQUAL(c.p[3].ts_us, T0 + DAY_US);
    CU_ASSERT_EQUAL(c.p[4].ts_us, T0 + 2 * DAY_US + 5);
    CU_ASSERT_EQUAL(c.p[4].type, 8);
    /* [from, to) bounds. */
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/temp", T0 + 11, T0 + DAY_US, 100, collect_fn, &c, NULL),
                    SL_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    /* limit: the first ones, and more set, also when the limit ends a day. */
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/temp", T0, T0 + 3 * DAY_US, 2, collect_fn, &c, &more),
                    SL_OK);
    CU_ASSERT_EQUAL(c.n, 2);
    CU_ASSERT_TRUE(more);
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/temp", T0, T0 + 3 * DAY_US, 3, collect_fn, &c, &more),
                    SL_OK);
    CU_ASSERT_EQUAL(c.n, 3);
    CU_ASSERT_TRUE(more);
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/temp", T0, T0 + 3 * DAY_US, 5, collect_fn, &c, &more),
                    SL_OK);
    CU_ASSERT_EQUAL(c.n, 5);
    CU_ASSERT_FALSE(more);
    /* The callback stops early: not an error. */
    c = (struct collect){ .stop_after = 2 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/temp", T0, T0 + 3 * DAY_US, 100, collect_fn, &c, NULL),
                    SL_OK);
    CU_ASSERT_EQUAL(c.n, 2);
    /* Unknown tag, oversized name: no points, SL_OK. */
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "nope/x", T0, T0 + 3 * DAY_US, 100, collect_fn, &c, NULL), SL_OK);
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_EQUAL(sl_histdb_query(rd, big, T0, T0 + 3 * DAY_US, 100, collect_fn, &c, NULL), SL_OK);
    CU_ASSERT_EQUAL(c.n, 0);
    /* A reader writes nothing. */
    CU_ASSERT_EQUAL(sl_histdb_begin(rd), SL_ERR_STATE);

    /* Re-putting the same rows stores nothing twice. */
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, r, sizeof r / sizeof r[0]), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(rd, "acme/plant/area/line/flow", 0, T0 + 3 * DAY_US, 100, collect_fn, &c, NULL),
                    SL_OK);
    CU_ASSERT_EQUAL(c.n, 2);
    sl_histdb_close(rd);
    sl_histdb_close(w);

    /* The layout docs/history.md shows. */
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st;
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, "SELECT group_concat(name || ':' || rows, ' ') FROM partitions", -1, &st,
                                       NULL) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_step(st) == SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0),
                           "history_20241004:4 history_20241005:1 history_20241006:2");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

struct jctx {
    int n;
    uint64_t id;
    char blob[32];
};

static sl_err journal_fn(void *ctx, uint64_t id, const void *blob, size_t len)
{
    struct jctx *j = ctx;
    j->n++;
    j->id = id;
    memcpy(j->blob, blob, len < 31 ? len : 31);
    j->blob[len < 31 ? len : 31] = '\0';
    return SL_OK;
}

SL_TEST(histdb, rollback_undoes_rows_journal_and_tags)
{
    const char *path = hist_db_path("rb.db");
    struct sl_histdb *w = open_db(path, true);
    uint32_t a;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "p/a", &a), SL_OK);
    struct sl_histdb_row r = row(a, T0 + 5, 1, 1.0);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, &r, 1), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put_journal(w, 42, "x", 1), SL_OK);
    sl_histdb_rollback(w);
    struct jctx j = { 0 };
    CU_ASSERT_EQUAL(sl_histdb_load_journals(w, journal_fn, &j), SL_OK);
    CU_ASSERT_EQUAL(j.n, 0);
    /* The tag id and the day's table went with the rollback; the next batch
     * makes both again. */
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "p/a", &a), SL_OK);
    r.tag = a;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, &r, 1), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put_journal(w, 0xffffffffffffffffull, "blob-2", 6), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
    /* A time outside 1970..9999 refuses the put, touching nothing. */
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    struct sl_histdb_row bad[2] = { row(a, T0 + 6, 2, 2.0), row(a, -1, 3, 3.0) };
    CU_ASSERT_EQUAL(sl_histdb_put(w, bad, 2), SL_ERR_RANGE);
    sl_histdb_rollback(w);
    sl_histdb_close(w);
    w = open_db(path, true);
    j = (struct jctx){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_load_journals(w, journal_fn, &j), SL_OK);
    CU_ASSERT_EQUAL(j.n, 1);
    CU_ASSERT_EQUAL(j.id, 0xffffffffffffffffull);
    CU_ASSERT_STRING_EQUAL(j.blob, "blob-2");
    struct collect c = { 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(w, "p/a", 0, T0 + DAY_US, 100, collect_fn, &c, NULL), SL_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    sl_histdb_close(w);
}

SL_TEST(histdb, retention_drops_whole_days)
{
    const char *path = hist_db_path("ret.db");
    struct sl_histdb *w = open_db(path, true);
    uint32_t a;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "p/a", &a), SL_OK);
    struct sl_histdb_row r[40];
    for (int i = 0; i < 40; i++)
        r[i] = row(a, T0 + (i / 10) * DAY_US + i, (uint64_t)i + 1, i);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, r, 40), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
    uint64_t n = 99;
    /* Mid-day 2: days 0 and 1 go, day 2 stays whole. */
    CU_ASSERT_EQUAL(sl_histdb_retain(w, T0 + 2 * DAY_US + DAY_US / 2, &n), SL_OK);
    CU_ASSERT_EQUAL(n, 20);
    struct collect c = { 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(w, "p/a", 0, T0 + 10 * DAY_US, 100, collect_fn, &c, NULL), SL_OK);
    CU_ASSERT_EQUAL(c.n, 20);
    CU_ASSERT_EQUAL(c.p[0].ts_us, T0 + 2 * DAY_US + 20);
    CU_ASSERT_EQUAL(sl_histdb_retain(w, T0 + 2 * DAY_US + DAY_US / 2, &n), SL_OK);
    CU_ASSERT_EQUAL(n, 0);
    /* The writer's cached statement for a dropped day is gone with it: a
     * late row of that day makes the table again. */
    struct sl_histdb_row late = row(a, T0 + 7, 100, 1.0);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, &late, 1), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
    c = (struct collect){ 0 };
    CU_ASSERT_EQUAL(sl_histdb_query(w, "p/a", 0, T0 + 10 * DAY_US, 100, collect_fn, &c, NULL), SL_OK);
    CU_ASSERT_EQUAL(c.n, 21);
    /* Not inside a batch. */
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL(sl_histdb_retain(w, T0, &n), SL_ERR_STATE);
    sl_histdb_rollback(w);
    sl_histdb_close(w);
}

/* More days in one batch than the writer keeps statements for. */
SL_TEST(histdb, many_days_in_one_batch)
{
    const char *path = hist_db_path("many.db");
    struct sl_histdb *w = open_db(path, true);
    uint32_t a;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "p/a", &a), SL_OK);
    struct sl_histdb_row r[60];
    for (int i = 0; i < 60; i++)
        r[i] = row(a, T0 + (i % 20) * DAY_US + i, (uint64_t)i + 1, i);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, r, 60), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
    uint64_t n = 0;
    CU_ASSERT_EQUAL(sl_histdb_retain(w, T0 + 30 * DAY_US, &n), SL_OK);
    CU_ASSERT_EQUAL(n, 60);   /* the row counts survived the statement cache */
    sl_histdb_close(w);
}

/* The disk refuses to grow (RLIMIT_FSIZE, SIGXFSZ ignored): the batch fails
 * with SL_ERR_IO and rolls back whole; with room again, the same batch
 * commits. In a child: the limit is process-wide. */
static int fsize_body(void *ctx)
{
    const char *path = ctx;
    struct sl_histdb_config cfg = { .database = path };
    struct sl_histdb *w = NULL;
    char err[256];
    if (sl_histdb_open(&w, &cfg, true, err, sizeof err) != SL_OK)
        return 2;
    uint32_t a;
    if (sl_histdb_tag(w, "p/a", &a) != SL_OK)
        return 3;
    struct stat st;
    if (stat(path, &st) != 0)
        return 4;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { (rlim_t)st.st_size + 65536, RLIM_INFINITY };
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 5;
    enum { N = 20000 };
    static struct sl_histdb_row r[N];
    for (int i = 0; i < N; i++)
        r[i] = row(a, T0 + i, (uint64_t)i + 1, i);
    sl_err e = sl_histdb_begin(w);
    if (e == SL_OK)
        e = sl_histdb_put(w, r, N);
    if (e == SL_OK)
        e = sl_histdb_put_journal(w, 7, "j", 1);
    if (e == SL_OK)
        e = sl_histdb_commit(w);
    if (e != SL_ERR_IO)
        return 6;
    fprintf(stderr, "expected failure: %s\n", sl_histdb_errmsg(w));
    sl_histdb_rollback(w);
    struct collect c = { 0 };
    if (sl_histdb_query(w, "p/a", 0, T0 + DAY_US, 10, collect_fn, &c, NULL) != SL_OK || c.n != 0)
        return 7;
    rl.rlim_cur = RLIM_INFINITY;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 8;
    if (sl_histdb_begin(w) != SL_OK || sl_histdb_tag(w, "p/a", &a) != SL_OK || sl_histdb_put(w, r, N) != SL_OK ||
        sl_histdb_put_journal(w, 7, "j", 1) != SL_OK || sl_histdb_commit(w) != SL_OK)
        return 9;
    struct jctx j = { 0 };
    if (sl_histdb_load_journals(w, journal_fn, &j) != SL_OK || j.n != 1)
        return 10;
    bool more = false;
    c = (struct collect){ 0 };
    if (sl_histdb_query(w, "p/a", 0, T0 + DAY_US, N, collect_fn, &c, &more) != SL_OK || c.n != N || more)
        return 11;
    sl_histdb_close(w);
    return 0;
}

SL_TEST(histdb, full_disk_rolls_back_then_retries)
{
    static char path[256];
    snprintf(path, sizeof path, "%s", hist_db_path("full.db"));
    sl_test_in_child(NULL, fsize_body, path);
}

/* A repeated (tag, ts, seq, journal) is an ignored duplicate, never a failed
 * batch: in one batch, across batches, and across merges (staged, merged,
 * staged again, merged again). Queries see staged rows before the merge. */
SL_TEST(histdb, repeats_ignored_and_merge_idempotent)
{
    const char *path = hist_db_path("idem.db");
    struct sl_histdb *w = open_db(path, true);
    uint32_t a;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "p/a", &a), SL_OK);
    struct sl_histdb_row r[3] = { row(a, T0 + 5, 1, 1.0), row(a, T0 + 5, 1, 1.0), row(a, T0 + 6, 2, 2.0) };
    for (int pass = 0; pass < 2; pass++) {
        CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
        CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, r, 3), SL_OK);
        CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
        struct collect c = { 0 };
        CU_ASSERT_EQUAL(sl_histdb_query(w, "p/a", T0, T0 + DAY_US, 100, collect_fn, &c, NULL), SL_OK);
        CU_ASSERT_EQUAL(c.n, 2);   /* staged (and merged) rows, each once */
        CU_ASSERT_EQUAL(sl_histdb_merge(w), SL_OK);
        CU_ASSERT_EQUAL(sl_histdb_merge(w), SL_OK);
        c = (struct collect){ 0 };
        CU_ASSERT_EQUAL(sl_histdb_query(w, "p/a", T0, T0 + DAY_US, 100, collect_fn, &c, NULL), SL_OK);
        CU_ASSERT_EQUAL(c.n, 2);
    }
    uint64_t n = 0;
    CU_ASSERT_EQUAL(sl_histdb_retain(w, T0 + 2 * DAY_US, &n), SL_OK);
    CU_ASSERT_EQUAL(n, 2);   /* partitions counted what the merges stored, once */
    sl_histdb_close(w);
}
