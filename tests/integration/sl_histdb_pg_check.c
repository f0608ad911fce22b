/* The PostgreSQL history backend (rx/sl_histdb_pg.c) against a real server
 * that test_histdb_pg.py starts (sl_pg.py). Two modes:
 *
 *   sl_histdb_pg_check suite URL PASSWORD WRONG_PASSWORD [hang]
 *       every op: schema, reader before schema, batches over several days'
 *       partitions, idempotent journal blobs, rollback (rows, tags and
 *       partitions of the batch gone), query order/limits/early stop,
 *       retention dropping partitions, a server stop in the middle (the
 *       batch fails with SL_ERR_IO, then the retried batch lands whole after
 *       the reconnect), a wrong password, URL checks and masking; with
 *       "hang", a server that stops answering (the call gives up after
 *       15 s). Server changes are a handshake on stdout/stdin: the
 *       program prints STOP, START, RESTART, HANG or RESUME and waits for a
 *       line.
 *   sl_histdb_pg_check unresolvable URL
 *       URL's host name cannot be resolved (the caller points DNS at a dead
 *       address): reader and writer opens fail with the reason, no SIGSYS
 *       under SL_PG_SANDBOX.
 *   sl_histdb_pg_check bench URL PASSWORD ROWS TAGS DAYS
 *       insert rate (COPY batches of 20,000 rows) and one tag's hour and
 *       month query times; prints figures, asserts nothing.
 *
 * Prints "ok ..." per check and "FAIL ..." then exits 1 at the first
 * failure. PASSWORD "-" for none.
 *
 * SL_PG_SANDBOX=1 runs the suite under sluice-rx's lists: the process-wide
 * rx list and both history thread lists (rx-hist, rx-query) stacked, all
 * with outbound sockets, as sluice-rx loads them with [history] url: a
 * call libpq makes that a list lacks kills the program (SIGSYS). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sl_histdb.h"
#include "sl_seccomp.h"

#define DAY_US 86400000000LL

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            printf(__VA_ARGS__);                                                         \
            printf("\n");                                                                \
            fflush(stdout);                                                              \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define OK(...)                                                                          \
    do {                                                                                 \
        printf("ok ");                                                                   \
        printf(__VA_ARGS__);                                                             \
        printf("\n");                                                                    \
        fflush(stdout);                                                                  \
    } while (0)

static struct sl_histdb *open_db(const char *url, const char *pw, bool writer)
{
    struct sl_histdb_config c = { .url = url, .password = pw, .retention_days = 30 };
    struct sl_histdb *db = NULL;
    char err[256];
    sl_err e = sl_histdb_open(&db, &c, writer, err, sizeof err);
    CHECK(e == SL_OK, "open %s: %s: %s", writer ? "writer" : "reader", sl_strerror(e), err);
    CHECK(!strcmp(sl_histdb_kind(db), "postgresql"), "kind %s", sl_histdb_kind(db));
    return db;
}

struct collect {
    struct sl_histdb_point p[4096];
    size_t n, stop_after;
};

static bool collect_fn(void *ctx, const struct sl_histdb_point *p)
{
    struct collect *c = ctx;
    if (c->n < sizeof c->p / sizeof c->p[0])
        c->p[c->n] = *p;
    c->n++;
    return !c->stop_after || c->n < c->stop_after;
}

static size_t query(struct sl_histdb *r, const char *tag, int64_t from, int64_t to, size_t limit, struct collect *c,
                    bool *more)
{
    c->n = 0;
    sl_err e = sl_histdb_query(r, tag, from, to, limit, collect_fn, c, more);
    CHECK(e == SL_OK, "query %s: %s: %s", tag, sl_strerror(e), sl_histdb_errmsg(r));
    return c->n;
}

struct jseen {
    uint64_t id[8];
    char blob[8][16];
    size_t len[8];
    size_t n;
};

static sl_err journal_fn(void *ctx, uint64_t id, const void *blob, size_t len)
{
    struct jseen *j = ctx;
    if (j->n < 8 && len < 16) {
        j->id[j->n] = id;
        memcpy(j->blob[j->n], blob, len);
        j->len[j->n] = len;
    }
    j->n++;
    return SL_OK;
}

static struct sl_histdb_row row(uint32_t tag, int64_t ts, uint64_t jid, uint64_t seq, double v)
{
    struct sl_histdb_row r = { .tag = tag, .ts_us = ts, .journal_id = jid, .seq = seq, .value = v,
                               .quality = 0x40900000u, .type = 7, .origin = SL_HIST_BACKFILL };
    memcpy(&r.raw, &v, 8);
    return r;
}

static sl_err batch(struct sl_histdb *w, const struct sl_histdb_row *rows, size_t n, uint64_t jid, const char *blob)
{
    sl_err e = sl_histdb_begin(w);
    if (e == SL_OK)
        e = sl_histdb_put(w, rows, n);
    if (e == SL_OK && blob)
        e = sl_histdb_put_journal(w, jid, blob, strlen(blob));
    if (e == SL_OK)
        e = sl_histdb_commit(w);
    if (e != SL_OK)
        sl_histdb_rollback(w);
    return e;
}

static void handshake(const char *word)
{
    printf("%s\n", word);
    fflush(stdout);
    char line[64];
    CHECK(fgets(line, sizeof line, stdin), "no answer to %s", word);
}

static int suite(const char *url, const char *pw, const char *wrong, bool hang)
{
    char err[256];
    struct sl_histdb *db = NULL;
    struct sl_histdb_config c = { .url = url, .password = pw };

    /* URL checks and masking (no server needed). */
    CHECK(sl_histdb_pg_check_url(url, err, sizeof err) == SL_OK, "check_url %s: %s", url, err);
    CHECK(sl_histdb_pg_check_url("postgresql:///sluice?host=/run/postgresql", err, sizeof err) == SL_ERR_CONFIG,
          "socket dir accepted");
    CHECK(sl_histdb_pg_check_url("postgresql:///sluice", err, sizeof err) == SL_ERR_CONFIG, "no host accepted");
    CHECK(sl_histdb_pg_check_url("mysql://x/y", err, sizeof err) == SL_ERR_CONFIG, "mysql accepted");
    char m[256];
    sl_histdb_pg_mask_url("postgresql://u:top:secret@h:5432/db?sslmode=require&password=other", m, sizeof m);
    CHECK(!strcmp(m, "postgresql://u:***@h:5432/db?sslmode=require&password=***"), "mask: %s", m);
    sl_histdb_pg_mask_url("postgresql://u@h/db", m, sizeof m);
    CHECK(!strcmp(m, "postgresql://u@h/db"), "mask: %s", m);
    /* A URL libpq cannot parse: libpq's own text quotes the token or the
     * whole URL; the error names the mistake and the part, never a value. */
    static const char *const bad[][2] = {
        { "postgresql://sluice:S3cretPw%zz@db.example/hist", "user or password" },
        { "postgresql://sluice:S3cretPw@[::1/hist", "closing ]" },
        { "postgresql://sluice:S3c\"retPw%zz@h/d", "user or password" },
        { "postgresql://u:S3cretPw@h/d?password=S3cretPw%zz", "query parameters" },
        { "postgresql://u:S3cretPw@h/d?password", "query parameters" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(sl_histdb_pg_check_url(bad[i][0], err, sizeof err) == SL_ERR_CONFIG, "bad url accepted: %zu", i);
        CHECK(!strstr(err, "S3c") && !strstr(err, "retPw") && strstr(err, bad[i][1]) &&
                  strstr(err, "cannot be parsed"), "bad url %zu: %s", i, err);
    }
    OK("url checks and masking; a URL that does not parse: %s", err);

    /* A reader before any writer: the schema is not there yet. */
    sl_err e = sl_histdb_open(&db, &c, false, err, sizeof err);
    CHECK(e == SL_ERR_IO && strstr(err, "no history yet"), "reader before schema: %s %s", sl_strerror(e), err);
    OK("reader before the schema: %s", err);

    /* Wrong password: a clear error, nothing logged of the password. */
    c.password = wrong;
    e = sl_histdb_open(&db, &c, true, err, sizeof err);
    CHECK(e == SL_ERR_IO && strstr(err, "password authentication failed"), "wrong password: %s %s",
          sl_strerror(e), err);
    CHECK(!strstr(err, wrong), "password in the error text: %s", err);
    OK("wrong password: %s", err);
    c.password = pw;

    struct sl_histdb *w = open_db(url, pw, true);
    struct sl_histdb *w2 = open_db(url, pw, true);   /* schema creation is idempotent */
    sl_histdb_close(w2);
    uint32_t t1, t1b, t2;
    CHECK(sl_histdb_tag(w, "ent/site/area/line/temp", &t1) == SL_OK, "tag: %s", sl_histdb_errmsg(w));
    CHECK(sl_histdb_tag(w, "ent/site/area/line/temp", &t1b) == SL_OK && t1b == t1, "tag id changed");
    CHECK(sl_histdb_tag(w, "ent/site/area/line/flow", &t2) == SL_OK && t2 != t1, "tag ids");
    OK("tag ids %u %u", t1, t2);

    /* A batch over three days: today, yesterday, five days ago. */
    int64_t now = now_us(), today0 = now / DAY_US * DAY_US;
    static struct sl_histdb_row rows[3000];
    size_t n = 0;
    for (int d = 0; d < 3; d++) {
        int64_t base = d == 0 ? today0 + 1000 : d == 1 ? today0 - DAY_US + 1000 : today0 - 5 * DAY_US + 1000;
        for (int i = 0; i < 500; i++) {
            rows[n] = row(t1, base + i * 1000000LL, 77, (uint64_t)(d * 1000 + i + 1), d * 1000 + i);
            n++;
        }
    }
    /* Same ts, seqs out of order (ties sort by seq), and a NaN. */
    rows[n++] = row(t1, today0 + 1000, 77, 5000, 1.5);
    rows[n++] = row(t1, today0 + 1000, 77, 4999, NAN);
    for (int i = 0; i < 100; i++)
        rows[n++] = row(t2, today0 + 2000 + i, 78, (uint64_t)i + 1, -i);
    e = batch(w, rows, n, 77, "abc");
    CHECK(e == SL_OK, "batch: %s", sl_histdb_errmsg(w));
    OK("batch of %zu rows over 3 days", n);

    struct sl_histdb *r = open_db(url, pw, false);
    static struct collect col;
    bool more = true;
    size_t got = query(r, "ent/site/area/line/temp", today0 - 10 * DAY_US, today0 + DAY_US, 4000, &col, &more);
    CHECK(got == 1502 && !more, "all rows: %zu more %d", got, more);
    for (size_t i = 1; i < got; i++)
        CHECK(col.p[i - 1].ts_us <= col.p[i].ts_us, "order at %zu", i);
    /* The first of today: ts today0+1000 has seqs 1, 4999 (NaN), 5000 in seq order. */
    size_t k = 1000;
    CHECK(col.p[k].ts_us == today0 + 1000 && col.p[k].value == 0.0, "today first %" PRId64 " %g", col.p[k].ts_us,
          col.p[k].value);
    CHECK(isnan(col.p[k + 1].value) && col.p[k + 2].value == 1.5, "ties in seq order, NaN: %g %g",
          col.p[k + 1].value, col.p[k + 2].value);
    double v;
    memcpy(&v, &col.p[k + 2].raw, 8);
    CHECK(v == 1.5 && col.p[k + 2].quality == 0x40900000u && col.p[k + 2].type == 7 &&
              col.p[k + 2].origin == SL_HIST_BACKFILL, "fields");
    CHECK(col.p[0].ts_us == today0 - 5 * DAY_US + 1000 && col.p[0].value == 2000.0, "oldest first");
    OK("query order, ties by seq, NaN, every field");

    /* Limits, more, early stop, empty ranges, unknown tags. */
    got = query(r, "ent/site/area/line/temp", today0 - 10 * DAY_US, today0 + DAY_US, 10, &col, &more);
    CHECK(got == 10 && more, "limit 10: %zu %d", got, more);
    got = query(r, "ent/site/area/line/flow", 0, today0 + DAY_US, 100, &col, &more);
    CHECK(got == 100 && !more, "limit = count: %zu %d", got, more);
    col.stop_after = 3;
    got = query(r, "ent/site/area/line/flow", 0, today0 + DAY_US, 100, &col, &more);
    col.stop_after = 0;
    CHECK(got == 3, "early stop: %zu", got);
    got = query(r, "ent/site/area/line/flow", today0 + 2000 + 10, today0 + 2000 + 20, 100, &col, &more);
    CHECK(got == 10 && col.p[0].value == -10.0, "from inclusive, to exclusive: %zu", got);
    got = query(r, "no/such/tag", 0, today0 + DAY_US, 100, &col, &more);
    CHECK(got == 0 && !more, "unknown tag");
    got = query(r, "ent/site/area/line/flow", today0, today0, 100, &col, &more);
    CHECK(got == 0, "empty range");
    OK("limits, more, early stop, [from, to), unknown tag");

    /* Journal blobs: replaced, not added; load gives the latest. */
    CHECK(batch(w, NULL, 0, 77, "xyz") == SL_OK, "journal: %s", sl_histdb_errmsg(w));
    CHECK(batch(w, NULL, 0, UINT64_MAX - 1, "") == SL_OK, "journal 2: %s", sl_histdb_errmsg(w));
    struct jseen js = { 0 };
    CHECK(sl_histdb_load_journals(w, journal_fn, &js) == SL_OK, "load: %s", sl_histdb_errmsg(w));
    CHECK(js.n == 2, "journals %zu", js.n);
    bool f77 = false, fmax = false;
    for (size_t i = 0; i < 2; i++) {
        if (js.id[i] == 77)
            f77 = js.len[i] == 3 && !memcmp(js.blob[i], "xyz", 3);
        if (js.id[i] == UINT64_MAX - 1)
            fmax = js.len[i] == 0;
    }
    CHECK(f77 && fmax, "journal contents");
    struct jseen jr = { 0 };
    CHECK(sl_histdb_load_journals(r, journal_fn, &jr) == SL_OK && jr.n == 2, "reader load");
    OK("journal blobs replaced, 64-bit ids kept");

    /* Rollback: rows, a new tag and a new day's partition of the batch vanish. */
    uint32_t t3;
    CHECK(sl_histdb_begin(w) == SL_OK, "begin");
    CHECK(sl_histdb_tag(w, "ent/site/area/line/new", &t3) == SL_OK, "tag in batch: %s", sl_histdb_errmsg(w));
    struct sl_histdb_row old[2] = { row(t3, today0 - 100 * DAY_US, 79, 1, 1), row(t1, today0 + 5, 79, 2, 2) };
    CHECK(sl_histdb_put(w, old, 2) == SL_OK, "put: %s", sl_histdb_errmsg(w));
    CHECK(sl_histdb_put_journal(w, 79, "r", 1) == SL_OK, "pj");
    sl_histdb_rollback(w);
    got = query(r, "ent/site/area/line/new", 0, today0 + DAY_US, 100, &col, &more);
    CHECK(got == 0, "rolled-back rows visible");
    got = query(r, "ent/site/area/line/temp", today0 + 5, today0 + 6, 100, &col, &more);
    CHECK(got == 0, "rolled-back rows visible (2)");
    /* The same again commits: the tag and the partition are made anew. */
    CHECK(sl_histdb_tag(w, "ent/site/area/line/new", &t3) == SL_OK, "tag again: %s", sl_histdb_errmsg(w));
    old[0].tag = t3;
    CHECK(batch(w, old, 2, 79, "r") == SL_OK, "after rollback: %s", sl_histdb_errmsg(w));
    got = query(r, "ent/site/area/line/new", 0, today0 + DAY_US, 100, &col, &more);
    CHECK(got == 1 && col.p[0].ts_us == today0 - 100 * DAY_US, "after rollback: %zu", got);
    OK("rollback drops rows, tag and partition of the batch; the retry lands");

    /* Retention: whole days before the cut go. */
    uint64_t dropped = 0;
    e = sl_histdb_retain(w, today0 - 2 * DAY_US, &dropped);
    CHECK(e == SL_OK, "retain: %s", sl_histdb_errmsg(w));
    got = query(r, "ent/site/area/line/temp", 0, today0 - 2 * DAY_US, 4000, &col, &more);
    CHECK(got == 0, "rows before the cut: %zu", got);
    got = query(r, "ent/site/area/line/new", 0, today0, 100, &col, &more);
    CHECK(got == 0, "100 days old row kept");
    got = query(r, "ent/site/area/line/temp", today0 - DAY_US, today0 + DAY_US, 4000, &col, &more);
    CHECK(got == 1003, "rows after the cut: %zu", got);
    OK("retention dropped the old partitions (estimated %" PRIu64 " rows)", dropped);

    /* The server goes away in the middle: the batch fails (SL_ERR_IO, the
     * text), then once it is back the retried batch lands whole. */
    handshake("STOP");
    static struct sl_histdb_row rb[5000];
    for (size_t i = 0; i < 5000; i++)
        rb[i] = row(t2, today0 + 10000000 + (int64_t)i, 80, i + 1, (double)i);
    e = batch(w, rb, 5000, 80, "restart");
    CHECK(e == SL_ERR_IO && sl_histdb_errmsg(w)[0], "batch while down: %s", sl_strerror(e));
    OK("batch while the server is down: %s", sl_histdb_errmsg(w));
    e = sl_histdb_query(r, "ent/site/area/line/flow", 0, today0 + DAY_US, 10, collect_fn, &col, &more);
    CHECK(e == SL_ERR_IO, "query while down: %s", sl_strerror(e));
    handshake("START");
    double t0 = mono_s();
    int tries = 0;
    do {
        tries++;
        e = batch(w, rb, 5000, 80, "restart");
        if (e != SL_OK) {
            struct timespec ts = { 0, 200000000 };
            nanosleep(&ts, NULL);
        }
    } while (e != SL_OK && mono_s() - t0 < 20);
    CHECK(e == SL_OK, "batch after restart: %s", sl_histdb_errmsg(w));
    OK("batch after the restart landed in %.1f s, %d tries", mono_s() - t0, tries);
    t0 = mono_s();
    do {
        col.n = 0;
        e = sl_histdb_query(r, "ent/site/area/line/flow", today0 + 10000000, today0 + DAY_US, 6000, collect_fn,
                            &col, &more);
        if (e != SL_OK) {
            struct timespec ts = { 0, 200000000 };
            nanosleep(&ts, NULL);
        }
    } while (e != SL_OK && mono_s() - t0 < 20);
    CHECK(e == SL_OK && col.n == 5000, "after restart: %s %zu rows", sl_histdb_errmsg(r), col.n);
    for (size_t i = 0; i < 4096; i++)
        CHECK(col.p[i].value == (double)i, "row %zu", i);
    js.n = 0;
    CHECK(sl_histdb_load_journals(w, journal_fn, &js) == SL_OK && js.n == 4, "journals after restart %zu", js.n);
    OK("the retried batch whole (5000 rows once), journals 4");

    /* A COMMIT that went through but whose reply was lost (the connection
     * died after COMMIT was sent): the caller cannot tell, rolls back its
     * side and sends the same batch again. The database keeps one copy;
     * a batch half of which is stored stores the other half. */
    e = batch(w, rb, 5000, 80, "restart");
    CHECK(e == SL_OK, "the same batch again: %s", sl_histdb_errmsg(w));
    col.n = 0;
    e = sl_histdb_query(r, "ent/site/area/line/flow", today0 + 10000000, today0 + DAY_US, 20000, collect_fn, &col,
                        &more);
    CHECK(e == SL_OK && col.n == 5000, "the same batch twice: %zu rows (want 5000)", col.n);
    static struct sl_histdb_row ov[4000];
    for (size_t i = 0; i < 4000; i++)
        ov[i] = row(t3, today0 + 30000000 + (int64_t)i, 83, i + 1, (double)i);
    CHECK(batch(w, ov, 2000, 83, "half") == SL_OK, "first half: %s", sl_histdb_errmsg(w));
    CHECK(batch(w, ov, 4000, 83, "whole") == SL_OK, "overlapping batch: %s", sl_histdb_errmsg(w));
    got = query(r, "ent/site/area/line/new", today0 + 30000000, today0 + DAY_US, 8000, &col, &more);
    CHECK(got == 4000, "overlapping batches: %zu rows (want 4000)", got);
    for (size_t i = 0; i < got; i++)
        CHECK(col.p[i].value == (double)i, "overlap row %zu", i);
    OK("a batch sent twice (a lost COMMIT reply) stored once; an overlapping one adds only its new rows");

    /* A restart between two queries: the reader's connection is stale; the
     * next query reconnects and answers at once (reads are idempotent). */
    handshake("RESTART");
    col.n = 0;
    e = sl_histdb_query(r, "ent/site/area/line/flow", today0 + 10000000, today0 + DAY_US, 6000, collect_fn, &col,
                        &more);
    CHECK(e == SL_OK && col.n == 5000, "first query after a restart: %s %s (%zu)", sl_strerror(e),
          sl_histdb_errmsg(r), col.n);
    OK("the first query after a server restart answered on a new connection");
    for (size_t i = 0; i < 10; i++)
        rb[i] = row(t2, today0 + 15000000 + (int64_t)i, 82, i + 1, (double)i);
    e = batch(w, rb, 10, 82, "restart2");
    CHECK(e == SL_OK, "first batch after a restart: %s", sl_histdb_errmsg(w));
    OK("the first batch after a server restart landed on a new connection");

    /* A server that stops answering (processes stopped: TCP still fine,
     * keepalives answered): the call gives up after its 15 s, the
     * connection is dropped, and once the server answers again the batch
     * lands. */
    if (hang) {
        handshake("HANG");
        for (size_t i = 0; i < 100; i++)
            rb[i] = row(t2, today0 + 20000000 + (int64_t)i, 81, i + 1, (double)i);
        t0 = mono_s();
        e = batch(w, rb, 100, 81, "hang");
        double waited = mono_s() - t0;
        CHECK(e == SL_ERR_IO && strstr(sl_histdb_errmsg(w), "no answer") && waited < 20,
              "batch to a hung server: %s after %.1f s: %s", sl_strerror(e), waited, sl_histdb_errmsg(w));
        OK("batch to a hung server gave up after %.1f s: %s", waited, sl_histdb_errmsg(w));
        handshake("RESUME");
        t0 = mono_s();
        do {
            e = batch(w, rb, 100, 81, "hang");
            if (e != SL_OK) {
                struct timespec ts = { 0, 200000000 };
                nanosleep(&ts, NULL);
            }
        } while (e != SL_OK && mono_s() - t0 < 20);
        CHECK(e == SL_OK, "batch after resume: %s", sl_histdb_errmsg(w));
        got = query(r, "ent/site/area/line/flow", today0 + 20000000, today0 + DAY_US, 200, &col, &more);
        CHECK(got == 100, "rows after the hang: %zu", got);
        OK("after the server answers again the batch lands once (%zu rows)", got);
    }

    /* A reader refuses writes. */
    CHECK(sl_histdb_begin(r) != SL_OK, "reader begin");
    sl_histdb_close(r);
    sl_histdb_close(w);
    printf("PASS\n");
    return 0;
}

/* ---- bench -------------------------------------------------------------------------- */

static bool count_fn(void *ctx, const struct sl_histdb_point *p)
{
    (void)p;
    (*(size_t *)ctx)++;
    return true;
}

static int bench(const char *url, const char *pw, uint64_t nrows, uint32_t ntags, uint32_t days)
{
    struct sl_histdb *w = open_db(url, pw, true);
    uint32_t *ids = calloc(ntags, sizeof *ids);
    char name[64];
    for (uint32_t t = 0; t < ntags; t++) {
        snprintf(name, sizeof name, "bench/site/area/line/t%05u", t);
        CHECK(sl_histdb_tag(w, name, &ids[t]) == SL_OK, "tag %s", sl_histdb_errmsg(w));
    }
    /* Rows in time order over the last `days` days, round robin over the
     * tags (as a plant's changes arrive): per tag one row every
     * days*86400/(nrows/ntags) seconds. */
    int64_t end = now_us(), span = (int64_t)days * DAY_US;
    int64_t step = span / (int64_t)(nrows ? nrows : 1);
    const size_t B = 20000;
    struct sl_histdb_row *rows = calloc(B, sizeof *rows);
    double t0 = mono_s();
    uint64_t done = 0;
    while (done < nrows) {
        size_t n = nrows - done < B ? (size_t)(nrows - done) : B;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = done + i;
            rows[i] = row(ids[k % ntags], end - span + (int64_t)k * step, 1, k + 1, (double)(k % 1000) * 0.5);
            rows[i].origin = SL_HIST_LIVE;
        }
        CHECK(batch(w, rows, n, 1, "bench") == SL_OK, "batch %s", sl_histdb_errmsg(w));
        done += n;
    }
    double dt = mono_s() - t0;
    if (nrows)
        printf("insert: %" PRIu64 " rows in %.1f s = %.0f rows/s (COPY batches of %zu)\n", nrows, dt,
               (double)nrows / dt, B);
    fflush(stdout);
    sl_histdb_close(w);
    struct sl_histdb *r = open_db(url, pw, false);
    struct {
        const char *what;
        int64_t len;
    } q[2] = { { "hour", 3600000000LL }, { "month", 30 * DAY_US } };
    for (int i = 0; i < 2; i++) {
        double best = 1e9, sum = 0;
        size_t pts = 0;
        for (int rep = 0; rep < 7; rep++) {
            snprintf(name, sizeof name, "bench/site/area/line/t%05u", (unsigned)(rep * 37) % ntags);
            int64_t from = end - q[i].len - (int64_t)rep * 3600000000LL;
            size_t cnt = 0;
            double a = mono_s();
            CHECK(sl_histdb_query(r, name, from, from + q[i].len, 1000000, count_fn, &cnt, NULL) == SL_OK,
                  "query %s", sl_histdb_errmsg(r));
            double b = mono_s() - a;
            if (rep) {   /* the first warms the cache */
                sum += b;
                best = b < best ? b : best;
            }
            pts = cnt;
        }
        printf("query one tag's %s: %zu points, best %.2f ms, mean %.2f ms\n", q[i].what, pts, best * 1e3,
               sum / 6 * 1e3);
    }
    sl_histdb_close(r);
    free(rows);
    free(ids);
    return 0;
}

static void sandbox(const char *url)
{
    char host[256], why[160];
    sl_histdb_pg_url_host(url, host, sizeof host);
    if (host[0])
        sl_seccomp_preload_names(host);
    static const enum sl_seccomp_profile ps[] = { SL_SECCOMP_RX, SL_SECCOMP_RX_HIST, SL_SECCOMP_RX_QUERY };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        CHECK(sl_seccomp_install(ps[i], SL_SECCOMP_F_CONNECT, why, sizeof why) == SL_OK, "seccomp %s: %s",
              sl_seccomp_profile_name(ps[i]), why);
    /* The lists are on: a new Unix socket is refused (EACCES, not a kill). */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd < 0 && errno == EACCES, "AF_UNIX socket under the lists: fd %d errno %d", fd, errno);
    OK("sandboxed: rx, rx-hist and rx-query lists with outbound sockets (host %s)", host);
}

/* A host name only DNS could answer, with DNS not answering, under the
 * lists: the opens fail with the resolver's reason (the lookup's own calls,
 * sendmmsg among them, are on the history threads' lists: no SIGSYS). */
static int unresolvable(const char *url)
{
    char err[256];
    struct sl_histdb *db = NULL;
    struct sl_histdb_config c = { .url = url };
    for (int w = 0; w < 2; w++) {
        sl_err e = sl_histdb_open(&db, &c, w == 1, err, sizeof err);
        CHECK(e == SL_ERR_IO && strstr(err, "cannot resolve the host name"), "%s open: %s %s",
              w ? "writer" : "reader", sl_strerror(e), err);
    }
    OK("a name DNS cannot answer: %s", err);
    printf("PASS\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && getenv("SL_PG_SANDBOX") && !strcmp(getenv("SL_PG_SANDBOX"), "1"))
        sandbox(argv[2]);
    if ((argc == 5 || (argc == 6 && !strcmp(argv[5], "hang"))) && !strcmp(argv[1], "suite"))
        return suite(argv[2], strcmp(argv[3], "-") ? argv[3] : NULL, argv[4], argc == 6);
    if (argc == 3 && !strcmp(argv[1], "unresolvable"))
        return unresolvable(argv[2]);
    if (argc == 7 && !strcmp(argv[1], "bench"))
        return bench(argv[2], strcmp(argv[3], "-") ? argv[3] : NULL, strtoull(argv[4], NULL, 10),
                     (uint32_t)strtoul(argv[5], NULL, 10), (uint32_t)strtoul(argv[6], NULL, 10));
    fprintf(stderr, "usage: %s suite URL PASSWORD|- WRONG_PASSWORD [hang]\n"
                    "       %s bench URL PASSWORD|- ROWS TAGS DAYS   (ROWS 0: the queries only)\n", argv[0],
            argv[0]);
    return 2;
}
