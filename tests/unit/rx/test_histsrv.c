/* sl_histsrv: the history query thread over a real SQLite store (written
 * through sl_histdb's writer), each job's "connection" one end of a
 * socketpair: the whole HTTP/1.1 response (chunked JSON, CSV for HTTP/1.0,
 * HEAD), a store that cannot be opened (503, counted), the slots (busy,
 * counted), a client that stops reading (cut within the send timeout) and
 * stop answering the waiting jobs 503; reads in bounded pieces: a stalled
 * client holds no read transaction (the WAL can be checkpointed and
 * truncated meanwhile), points sharing a time across a piece's edge are
 * each sent once, limits at the edge. */
#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_histsrv.h"
#include "sl_test.h"
#include "sl_wire.h"

#define T0 1796655600000000ll   /* 2026-12-07T15:00:00Z */

static int done_calls;
static void *done_conn[16];

static void on_done(void *ctx, void *conn)
{
    (void)ctx;
    if (done_calls < 16)
        done_conn[done_calls] = conn;
    __atomic_add_fetch(&done_calls, 1, __ATOMIC_SEQ_CST);
}

/* n rows of tag a/b/x, per_ts of them at each second from T0, value i. */
static void make_store_ts(const char *path, int n, int per_ts)
{
    struct sl_histdb_config cfg = { .database = path, .retention_days = 3650 };
    struct sl_histdb *db;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sl_histdb_open(&db, &cfg, true, err, sizeof err), SL_OK);
    uint32_t id;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(db, "a/b/x", &id), SL_OK);
    static struct sl_histdb_row rows[5000];
    for (int i = 0; i < n; i++)
        rows[i] = (struct sl_histdb_row){ .tag = id, .ts_us = T0 + (int64_t)(i / per_ts) * 1000000, .journal_id = 7,
                                          .seq = (uint64_t)i + 1, .value = i, .type = SL_TYPE_FLOAT64,
                                          .origin = i == 1 ? SL_HIST_BACKFILL : SL_HIST_LIVE };
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(db), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(db, rows, (size_t)n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(db), SL_OK);
    sl_histdb_close(db);
}

static void remove_store(const char *dir, const char *path)
{
    char f[160];
    unlink(path);
    snprintf(f, sizeof f, "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof f, "%s-shm", path);
    unlink(f);
    rmdir(dir);
}

static void make_store(const char *path, int n)
{
    make_store_ts(path, n, 1);
}

/* Reads the peer's whole response (until end of stream) into buf. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 5000) != 1)
            break;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static void wait_done(int want)
{
    for (int i = 0; i < 500 && __atomic_load_n(&done_calls, __ATOMIC_SEQ_CST) < want; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(__atomic_load_n(&done_calls, __ATOMIC_SEQ_CST), want);
}

static struct sl_histsrv_job job(int fd, void *conn, bool csv)
{
    struct sl_histsrv_job j = { .fd = fd, .conn = conn };
    snprintf(j.req.tag, sizeof j.req.tag, "a/b/x");
    j.req.from_us = T0;
    j.req.to_us = T0 + 3600000000ll;
    j.req.limit = 10000;
    j.req.csv = csv;
    return j;
}

SL_TEST(histsrv, responses)
{
    char dir[] = "/tmp/sl-histsrv-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/h.db", dir);
    make_store(path, 3);
    struct sl_histsrv *q;
    struct sl_histsrv_config cfg = { .db = { .database = path }, .slots = 2 };
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_create(&q, &cfg), SL_OK);
    sl_histsrv_bind(q, on_done, NULL);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_ERR_STATE);   /* not started */
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_start(q, -1, -1, 0), SL_OK);
    done_calls = 0;
    static char buf[1 << 16];

    /* HTTP/1.1 JSON: chunked, the body whole, then end of stream. */
    int sp[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    struct sl_histsrv_job j = job(sp[0], (void *)1, false);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &j);
    read_all(sp[1], buf, sizeof buf);
    wait_done(1);
    CU_ASSERT_PTR_EQUAL(done_conn[0], (void *)1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Transfer-Encoding: chunked\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Connection: close\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"tag\":\"a/b/x\",\"points\":[\n{\"ts\":\"2026-12-07T15:00:00.000000Z\","
                                       "\"value\":0,\"quality\":0},\n{\"ts\":\"2026-12-07T15:00:01.000000Z\","
                                       "\"value\":1,\"quality\":0,\"backfill\":true},"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"count\":3,\"truncated\":false}\n\r\n0\r\n\r\n"));
    close(sp[0]);
    close(sp[1]);

    /* HTTP/1.0 CSV: no chunks, the body ends at close. */
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    j = job(sp[0], (void *)2, true);
    j.http10 = true;
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &j);
    read_all(sp[1], buf, sizeof buf);
    wait_done(2);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.0 200 OK\r\nContent-Type: text/csv; charset=utf-8\r\n"));
    CU_ASSERT_PTR_NULL(strstr(buf, "chunked"));
    const char *body = strstr(buf, "\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_STRING_EQUAL(body + 4, "ts,value,quality\n2026-12-07T15:00:00.000000Z,0,0\n"
                                     "2026-12-07T15:00:01.000000Z,1,0\n2026-12-07T15:00:02.000000Z,2,0\n");
    close(sp[0]);
    close(sp[1]);

    /* HEAD: headers only. */
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    j = job(sp[0], (void *)3, false);
    j.head = true;
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &j);
    size_t n = read_all(sp[1], buf, sizeof buf);
    wait_done(3);
    CU_ASSERT(n > 4 && strcmp(buf + n - 4, "\r\n\r\n") == 0);
    close(sp[0]);
    close(sp[1]);

    struct sl_histsrv_stats st;
    sl_histsrv_stats(q, &st);
    CU_ASSERT_EQUAL(st.queries, 3);
    CU_ASSERT_EQUAL(st.points, 6);
    CU_ASSERT_EQUAL(st.failures, 0);
    sl_histsrv_destroy(q);
    remove_store(dir, path);
}

SL_TEST(histsrv, store_missing_503)
{
    struct sl_histsrv *q;
    struct sl_histsrv_config cfg = { .db = { .database = "/nonexistent/dir/h.db" } };
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_create(&q, &cfg), SL_OK);
    sl_histsrv_bind(q, on_done, NULL);
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_start(q, -1, -1, 0), SL_OK);
    done_calls = 0;
    int sp[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    struct sl_histsrv_job j = job(sp[0], NULL, false);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &j);
    static char buf[4096];
    read_all(sp[1], buf, sizeof buf);
    wait_done(1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.1 503 Service Unavailable\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"error\":\"history store not reachable: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, ",\"status\":503}\n"));
    struct sl_histsrv_stats st;
    sl_histsrv_stats(q, &st);
    CU_ASSERT_EQUAL(st.failures, 1);
    close(sp[0]);
    close(sp[1]);
    sl_histsrv_destroy(q);
    /* neither or both of database and url */
    struct sl_histsrv_config none = { .db = { .database = NULL } };
    CU_ASSERT_EQUAL(sl_histsrv_create(&q, &none), SL_ERR_CONFIG);
}

SL_TEST(histsrv, busy_stalled_and_stop)
{
    char dir[] = "/tmp/sl-histsrv-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/h.db", dir);
    make_store(path, 5000);
    struct sl_histsrv *q;
    /* one running + one waiting; a write stalled 1 s is cut. The stop case
     * below needs its stalled job still running when stop comes, ~100 ms
     * after it started: the timeout leaves room for a loaded machine (a
     * sanitizer build beside other tests) to be late by most of a second. */
    struct sl_histsrv_config cfg = { .db = { .database = path }, .slots = 1, .send_timeout_ms = 1000 };
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_create(&q, &cfg), SL_OK);
    sl_histsrv_bind(q, on_done, NULL);
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_start(q, -1, -1, 0), SL_OK);
    done_calls = 0;
    int a[2], b[2], c[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c), 0);
    int small = 4096;
    setsockopt(a[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    /* a: 3600 points (the hour) nobody reads (stalls the thread); b waits; c is refused. */
    struct sl_histsrv_job ja = job(a[0], (void *)10, false), jb = job(b[0], (void *)11, false);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &ja);
    usleep(100000);   /* a is taken: running */
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &jb);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_ERR_TABLE_FULL);
    struct sl_histsrv_stats st;
    sl_histsrv_stats(q, &st);
    CU_ASSERT_EQUAL(st.busy, 1);
    /* a is cut after the 1 s send timeout; then b runs and is answered. */
    static char buf[1 << 20];
    read_all(b[1], buf, sizeof buf);
    wait_done(2);
    CU_ASSERT_PTR_EQUAL(done_conn[0], (void *)10);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"count\":3600,\"truncated\":false}"));
    sl_histsrv_stats(q, &st);
    CU_ASSERT_EQUAL(st.cut, 1);
    CU_ASSERT_EQUAL(st.queries, 1);
    /* stop with one stalled and one waiting: the waiting one gets 503 */
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    struct sl_histsrv_job ja2 = job(a[0], (void *)12, false);
    sl_histsrv_submit(q, &ja2);
    usleep(100000);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    struct sl_histsrv_job jc = job(c[0], (void *)13, false);
    sl_histsrv_submit(q, &jc);
    sl_histsrv_stop(q);
    CU_ASSERT_EQUAL(done_calls, 4);
    read_all(c[1], buf, sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "503 Service Unavailable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "shutting down"));
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_ERR_STATE);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
        close(c[i]);
    }
    sl_histsrv_destroy(q);
    remove_store(dir, path);
}


/* A client that does not read holds no read transaction of the store:
 * while its response is stalled, a writer's TRUNCATE checkpoint completes
 * and the WAL is emptied (it could not while a reader's snapshot stayed
 * open in the middle of a statement). */
SL_TEST(histsrv, stalled_client_holds_no_snapshot)
{
    char dir[] = "/tmp/sl-histsrv-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128], wal[160];
    snprintf(path, sizeof path, "%s/h.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    make_store(path, 5000);
    struct sl_histsrv *q;
    struct sl_histsrv_config cfg = { .db = { .database = path }, .send_timeout_ms = 5000 };
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_create(&q, &cfg), SL_OK);
    sl_histsrv_bind(q, on_done, NULL);
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_start(q, -1, -1, 0), SL_OK);
    done_calls = 0;
    int a[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    int small = 4096;
    setsockopt(a[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct sl_histsrv_job ja = job(a[0], (void *)20, false);
    CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
    sl_histsrv_submit(q, &ja);
    /* The response stalls once the socket's few KB are full. */
    usleep(300000);
    CU_ASSERT_EQUAL(__atomic_load_n(&done_calls, __ATOMIC_SEQ_CST), 0);   /* still answering */
    sqlite3 *w;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &w), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(w, "CREATE TABLE fxp_t (x); INSERT INTO fxp_t VALUES (1)", NULL, NULL, NULL),
                    SQLITE_OK);
    int log = -1, ck = -1;
    int rc = sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ck);
    CU_ASSERT_EQUAL(rc, SQLITE_OK);
    CU_ASSERT_EQUAL(log, 0);
    struct stat st_wal;
    CU_ASSERT(stat(wal, &st_wal) != 0 || st_wal.st_size == 0);
    sqlite3_close(w);
    /* The client reads again: the whole answer, nothing lost or repeated. */
    static char buf[1 << 20];
    read_all(a[1], buf, sizeof buf);
    wait_done(1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"count\":3600,\"truncated\":false}"));
    close(a[0]);
    close(a[1]);
    sl_histsrv_destroy(q);
    remove_store(dir, path);
}

/* Points that share a time across the edge of a read are each sent once,
 * in order; a limit at the edge says truncated only when more exist. */
SL_TEST(histsrv, reads_in_pieces)
{
    char dir[] = "/tmp/sl-histsrv-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/h.db", dir);
    make_store_ts(path, 5000, 7);   /* 7 points per second: the edge at 4096 falls inside a second */
    struct sl_histsrv *q;
    struct sl_histsrv_config cfg = { .db = { .database = path } };
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_create(&q, &cfg), SL_OK);
    sl_histsrv_bind(q, on_done, NULL);
    CU_ASSERT_EQUAL_FATAL(sl_histsrv_start(q, -1, -1, 0), SL_OK);
    done_calls = 0;
    static char buf[1 << 20];
    static const struct {
        size_t limit, count;
        bool truncated;
    } cases[] = { { 10000, 5000, false }, { 5000, 5000, false }, { 4096, 4096, true }, { 4097, 4097, true },
                  { 4999, 4999, true } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int sp[2];
        CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
        struct sl_histsrv_job j = job(sp[0], NULL, true);
        j.http10 = true;
        j.req.limit = cases[c].limit;
        CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
        sl_histsrv_submit(q, &j);
        read_all(sp[1], buf, sizeof buf);
        wait_done((int)c + 1);
        const char *body = strstr(buf, "\r\n\r\nts,value,quality\n");
        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        body += strlen("\r\n\r\nts,value,quality\n");
        size_t n = 0;
        bool order = true;
        for (const char *l = body; *l; n++) {
            const char *comma = strchr(l, ',');
            const char *nl = strchr(l, '\n');
            if (!comma || !nl)
                break;
            order = order && strtol(comma + 1, NULL, 10) == (long)n;
            l = nl + 1;
        }
        CU_ASSERT_EQUAL(n, cases[c].count);
        CU_ASSERT(order);
        close(sp[0]);
        close(sp[1]);
    }
    /* truncated is JSON only: the same limits as JSON. */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int sp[2];
        CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
        struct sl_histsrv_job j = job(sp[0], NULL, false);
        j.http10 = true;
        j.req.limit = cases[c].limit;
        CU_ASSERT_EQUAL(sl_histsrv_reserve(q), SL_OK);
        sl_histsrv_submit(q, &j);
        read_all(sp[1], buf, sizeof buf);
        char want[64];
        snprintf(want, sizeof want, "\"count\":%zu,\"truncated\":%s}", cases[c].count,
                 cases[c].truncated ? "true" : "false");
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, want));
        close(sp[0]);
        close(sp[1]);
    }
    sl_histsrv_destroy(q);
    remove_store(dir, path);
}
