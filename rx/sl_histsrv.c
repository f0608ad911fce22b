/* The history query thread (sl_histsrv.h). */
#include "sl_histsrv.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_json.h"
#include "sl_log.h"
#include "sl_seccomp.h"
#include "sl_thread.h"

#define POLL_SLICE_MS 100   /* a blocked write looks at the stop flag this often */

struct sl_histsrv {
    struct sl_histdb_config dbc;
    char *database, *url, *password;
    struct sl_histdb *db;          /* the reader, query thread only; NULL until opened */
    unsigned slots;
    uint32_t send_ms;
    sl_histsrv_done_fn done;
    void *done_ctx;
    int profile;
    unsigned flags;
    struct sl_thread th;
    bool started;
    /* the queue: a ring of slots jobs under mu (held only to copy a job in
     * or out, never across I/O) */
    pthread_mutex_t mu;
    struct sl_histsrv_job *jobs;
    unsigned head, count, reserved;
    bool stopping;
    /* the running job's response */
    char *buf;                     /* SL_HISTSRV_BUF_BYTES, plus room for a chunk's framing */
    struct sl_histdb_point *pts;   /* SL_HISTSRV_READ_POINTS: one read's points, sent after it ended */
    struct sl_jbuf out;
    int fd;
    bool chunked, broken;
    uint64_t deadline_ms;
    bool reopen_logged;
    _Atomic uint64_t n_queries, n_busy, n_failures, n_cut, n_points;
};

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

sl_err sl_histsrv_create(struct sl_histsrv **out, const struct sl_histsrv_config *cfg)
{
    *out = NULL;
    bool have_db = cfg->db.database && *cfg->db.database, have_url = cfg->db.url && *cfg->db.url;
    if (have_db == have_url || cfg->slots > SL_HISTSRV_SLOTS_MAX)
        return SL_ERR_CONFIG;
    struct sl_histsrv *q = calloc(1, sizeof *q);
    if (!q)
        return SL_ERR_NOMEM;
    q->slots = cfg->slots ? cfg->slots : SL_HISTSRV_SLOTS_DEFAULT;
    q->send_ms = cfg->send_timeout_ms ? cfg->send_timeout_ms : SL_HISTSRV_SEND_MS;
    q->profile = -1;
    q->fd = -1;
    bool ok = true;
    q->database = dup_or_null(have_db ? cfg->db.database : NULL, &ok);
    q->url = dup_or_null(have_url ? cfg->db.url : NULL, &ok);
    q->password = dup_or_null(cfg->db.password, &ok);
    q->dbc.database = q->database;
    q->dbc.url = q->url;
    q->dbc.password = q->password;
    q->dbc.retention_days = cfg->db.retention_days;
    q->jobs = calloc(q->slots, sizeof *q->jobs);
    /* Room for a chunk's size line and CRLF before and after the data. */
    q->buf = malloc(SL_HISTSRV_BUF_BYTES + 32);
    q->pts = malloc(SL_HISTSRV_READ_POINTS * sizeof *q->pts);
    if (!ok || !q->jobs || !q->buf || !q->pts || pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q->jobs);
        free(q->buf);
        free(q->pts);
        free(q->database);
        free(q->url);
        free(q->password);
        free(q);
        return SL_ERR_NOMEM;
    }
    *out = q;
    return SL_OK;
}

void sl_histsrv_bind(struct sl_histsrv *q, sl_histsrv_done_fn done, void *ctx)
{
    q->done = done;
    q->done_ctx = ctx;
}

sl_err sl_histsrv_reserve(struct sl_histsrv *q)
{
    sl_err e = SL_OK;
    pthread_mutex_lock(&q->mu);
    if (q->stopping || !q->started)
        e = SL_ERR_STATE;
    else if (q->count + q->reserved >= q->slots)
        e = SL_ERR_TABLE_FULL;
    else
        q->reserved++;
    pthread_mutex_unlock(&q->mu);
    if (e == SL_ERR_TABLE_FULL)
        count(&q->n_busy, 1);
    return e;
}

void sl_histsrv_submit(struct sl_histsrv *q, const struct sl_histsrv_job *job)
{
    pthread_mutex_lock(&q->mu);
    /* Even when stopping: sl_histsrv_stop answers what is left in the ring. */
    q->reserved--;
    q->jobs[(q->head + q->count++) % q->slots] = *job;
    bool wake = !q->stopping;   /* stopping: the eventfd may be closed already */
    pthread_mutex_unlock(&q->mu);
    uint64_t one = 1;
    if (wake)
        (void)!write(sl_thread_wake_fd(&q->th), &one, sizeof one);
}

/* ---- writing the response ---------------------------------------------------- */

/* Writes n bytes, waiting at most send_ms for each bit of progress and
 * never past the response's deadline; marks the response broken on any
 * failure (the rest is skipped). */
static void put_raw(struct sl_histsrv *q, const char *p, size_t n)
{
    uint64_t last = sl_clock_mono_ms();
    while (n && !q->broken) {
        ssize_t w = send(q->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            last = sl_clock_mono_ms();
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            q->broken = true;
            break;
        }
        uint64_t now = sl_clock_mono_ms();
        if (now - last >= q->send_ms || now >= q->deadline_ms || sl_thread_should_stop(&q->th)) {
            q->broken = true;
            break;
        }
        struct pollfd pf = { .fd = q->fd, .events = POLLOUT };
        (void)poll(&pf, 1, POLL_SLICE_MS);
    }
}

/* Sends what out holds (one chunk when chunked) and empties it. */
static void flush(struct sl_histsrv *q)
{
    if (q->out.len == 0 || q->broken) {
        sl_jbuf_reset(&q->out);
        return;
    }
    if (q->chunked) {
        char sz[24];
        int k = snprintf(sz, sizeof sz, "%zx\r\n", q->out.len);
        put_raw(q, sz, (size_t)k);
        put_raw(q, q->out.p, q->out.len);
        put_raw(q, "\r\n", 2);
    } else {
        put_raw(q, q->out.p, q->out.len);
    }
    sl_jbuf_reset(&q->out);
}

/* The status line and headers (never chunked themselves). */
static void put_head(struct sl_histsrv *q, const struct sl_histsrv_job *j, unsigned status, const char *reason,
                     const char *type)
{
    char h[512];
    int k = snprintf(h, sizeof h,
                     "HTTP/1.%d %u %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\nConnection: close\r\n%s\r\n",
                     j->http10 ? 0 : 1, status, reason, type,
                     q->chunked ? "Transfer-Encoding: chunked\r\n" : "");
    put_raw(q, h, (size_t)k);
}

/* A JSON error as the HTTP module words them, as the whole response. */
static void put_error(struct sl_histsrv *q, const struct sl_histsrv_job *j, const char *msg)
{
    q->chunked = false;
    char body[512];
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, body, sizeof body);
    sl_jbuf_lit(&b, "{\"error\":");
    sl_json_str(&b, msg);
    sl_jbuf_lit(&b, ",\"status\":503}\n");
    if (b.failed)
        return;
    char h[512];
    int k = snprintf(h, sizeof h,
                     "HTTP/1.%d 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     j->http10 ? 0 : 1, b.len);
    put_raw(q, h, (size_t)k);
    if (!j->head)
        put_raw(q, b.p, b.len);
}

struct run {
    struct sl_histsrv *q;
    struct sl_histapi_enc enc;
    bool stopped;                  /* the encoder's limit, or a broken client */
    /* the read in progress (on_point) */
    size_t skip;                   /* points at its first ts that an earlier read sent already */
    size_t n;                      /* points in q->pts */
    uint64_t seen;
    bool late;                     /* the response's deadline passed (or stop) during the read */
};

/* Each point of one read: kept in q->pts, nothing written to the socket
 * while the store's read is open. The response's deadline is looked at
 * every 256 rows, so a step query over a long range that writes little
 * is bounded like any other. */
static bool on_point(void *ctx, const struct sl_histdb_point *p)
{
    struct run *r = ctx;
    struct sl_histsrv *q = r->q;
    if (r->skip) {
        r->skip--;
        return true;
    }
    if ((++r->seen & 255u) == 0 && (sl_clock_mono_ms() >= q->deadline_ms || sl_thread_should_stop(&q->th))) {
        r->late = true;
        return false;
    }
    if (r->n < SL_HISTSRV_READ_POINTS)
        q->pts[r->n++] = *p;
    return true;
}

/* Encodes one read's points into out, sending out whenever it could not
 * take another point; false once the response ends early (the encoder's
 * limit, a broken client, stop). */
static bool send_points(struct run *r)
{
    struct sl_histsrv *q = r->q;
    for (size_t i = 0; i < r->n; i++) {
        if (q->out.cap - q->out.len < SL_HISTAPI_POINT_MAX)
            flush(q);
        if (q->broken || sl_thread_should_stop(&q->th) || !sl_histapi_point(&r->enc, &q->pts[i], &q->out)) {
            r->stopped = true;
            return false;
        }
    }
    return true;
}

/* The query in reads of at most SL_HISTSRV_READ_POINTS points, each its
 * own sl_histdb_query (one short read transaction: SQLite's WAL can be
 * checkpointed and reset, PostgreSQL's vacuum is not held back), the
 * points sent to the client only between reads: a client that reads
 * slowly holds no snapshot of the store open. The next read starts at the
 * last point's source time and skips the points of that time it sent
 * already (points are in (ts, seq) order). Rows written between two reads
 * at a time already passed are not shown: the answer is the store as each
 * read saw it. */
static sl_err query_chunked(struct sl_histsrv *q, const struct sl_histsrv_job *j, struct run *r, bool *more)
{
    const struct sl_histapi_req *rq = &j->req;
    /* With step the limit counts buckets, so rows are read until the
     * encoder has its limit of buckets or the range ends. */
    size_t left = rq->step_us ? SIZE_MAX : rq->limit;
    int64_t from = rq->from_us;
    size_t same = 0;   /* points sent at time `from` */
    *more = false;
    while (left) {
        size_t want = left < SL_HISTSRV_READ_POINTS ? left : SL_HISTSRV_READ_POINTS;
        r->n = 0;
        r->skip = same;
        bool beyond = false;
        sl_err e = sl_histdb_query(q->db, rq->tag, from, rq->to_us, want + same, on_point, r, &beyond);
        if (e != SL_OK)
            return e;
        if (r->late) {
            q->broken = true;
            return SL_OK;
        }
        if (!send_points(r))
            return SL_OK;
        if (r->n < want || !beyond)
            return SL_OK;   /* the range is done */
        if (left != SIZE_MAX)
            left -= r->n;
        if (!left) {
            *more = true;
            return SL_OK;
        }
        int64_t last = q->pts[r->n - 1].ts_us;
        size_t tail = 0;
        while (tail < r->n && q->pts[r->n - 1 - tail].ts_us == last)
            tail++;
        same = tail == r->n && last == from ? same + tail : tail;
        from = last;
        if (sl_clock_mono_ms() >= q->deadline_ms) {
            q->broken = true;
            return SL_OK;
        }
    }
    return SL_OK;
}

/* The reader, opened when needed; false (and the reason in why) when the
 * store cannot be reached. */
static bool reader(struct sl_histsrv *q, char *why, size_t cap)
{
    if (q->db)
        return true;
    sl_err e = sl_histdb_open(&q->db, &q->dbc, false, why, cap);
    if (e != SL_OK) {
        q->db = NULL;
        if (!why[0])
            snprintf(why, cap, "%s", sl_strerror(e));
        if (!q->reopen_logged)
            sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-QUERY", "history store not readable: %s", why);
        q->reopen_logged = true;
        return false;
    }
    q->reopen_logged = false;
    return true;
}

static void run_job(struct sl_histsrv *q, const struct sl_histsrv_job *j)
{
    q->fd = j->fd;
    q->broken = false;
    q->chunked = false;
    q->deadline_ms = sl_clock_mono_ms() + SL_HISTSRV_RESPONSE_MS;
    sl_jbuf_fixed(&q->out, q->buf, SL_HISTSRV_BUF_BYTES);
    char why[256] = "";
    if (!reader(q, why, sizeof why)) {
        count(&q->n_failures, 1);
        char msg[320];
        snprintf(msg, sizeof msg, "history store not reachable: %s", why);
        put_error(q, j, msg);
        return;
    }
    q->chunked = !j->http10 && !j->head;
    put_head(q, j, 200, "OK", sl_histapi_type(&j->req));
    if (j->head) {
        count(&q->n_queries, 1);
        return;
    }
    struct run r = { .q = q };
    sl_histapi_enc_init(&r.enc, &j->req);
    sl_histapi_head(&r.enc, &q->out);
    bool more = false;
    sl_err e = query_chunked(q, j, &r, &more);
    count(&q->n_points, r.enc.count);
    if (e != SL_OK || q->broken || sl_thread_should_stop(&q->th)) {
        /* Mid-way: the chunked body stays unterminated, so the client sees
         * a broken response rather than a short list passed off as whole. */
        if (e != SL_OK) {
            sl_log_id(SL_LOG_WARNING, "SL-RX-HISTORY-QUERY", "history query failed: %s",
                      sl_histdb_errmsg(q->db));
            sl_histdb_close(q->db);
            q->db = NULL;
        }
        flush(q);
        count(&q->n_cut, 1);
        return;
    }
    if (q->out.cap - q->out.len < 2 * SL_HISTAPI_POINT_MAX)
        flush(q);
    sl_histapi_tail(&r.enc, more || (r.stopped && r.enc.full), &q->out);
    flush(q);
    if (q->chunked)
        put_raw(q, "0\r\n\r\n", 5);
    if (q->broken)
        count(&q->n_cut, 1);
    else
        count(&q->n_queries, 1);
}

/* The job's socket is done with: the client gets end of stream, and the
 * HTTP side may close it. */
static void finish(struct sl_histsrv *q, const struct sl_histsrv_job *j)
{
    shutdown(j->fd, SHUT_WR);
    q->fd = -1;
    if (q->done)
        q->done(q->done_ctx, j->conn);
}

static bool take(struct sl_histsrv *q, struct sl_histsrv_job *j)
{
    pthread_mutex_lock(&q->mu);
    bool have = q->count > 0;
    if (have) {
        *j = q->jobs[q->head];
        q->head = (q->head + 1) % q->slots;
        q->count--;
    }
    pthread_mutex_unlock(&q->mu);
    return have;
}

static sl_err histsrv_main(struct sl_thread *th, void *arg)
{
    struct sl_histsrv *q = arg;
    if (sl_thread_lower_priority(SL_THREAD_NICE_BACKGROUND) != SL_OK)   /* queries yield to the latency path */
        sl_log(SL_LOG_WARNING, "rx-histsrv keeps its priority: setpriority: %s", strerror(errno));
    if (q->profile >= 0) {
        char why[256];
        if (sl_seccomp_install((enum sl_seccomp_profile)q->profile, q->flags, why, sizeof why) != SL_OK)
            return sl_thread_fail(th, SL_ERR_PERM, "seccomp: %s", why);
        sl_seccomp_selftest(sl_seccomp_profile_name((enum sl_seccomp_profile)q->profile));
    }
    struct sl_histsrv_job j;
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        struct pollfd pf = { .fd = sl_thread_wake_fd(th), .events = POLLIN };
        int pr = poll(&pf, 1, 1000);
        if (pr < 0 && errno != EINTR)
            return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
        if (pr > 0)
            sl_thread_wake_clear(th);
        while (!sl_thread_should_stop(th) && take(q, &j)) {
            run_job(q, &j);
            finish(q, &j);
        }
    }
    return SL_OK;
}

sl_err sl_histsrv_start(struct sl_histsrv *q, int fail_fd, int profile, unsigned flags)
{
    q->profile = profile;
    q->flags = flags;
    pthread_mutex_lock(&q->mu);
    q->started = true;
    pthread_mutex_unlock(&q->mu);
    sl_err e = sl_thread_start(&q->th, "rx-histsrv", histsrv_main, q, fail_fd);
    if (e != SL_OK) {
        pthread_mutex_lock(&q->mu);
        q->started = false;
        pthread_mutex_unlock(&q->mu);
    }
    return e;
}

void sl_histsrv_stop(struct sl_histsrv *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    bool was = q->started && !q->stopping;
    q->stopping = true;
    pthread_mutex_unlock(&q->mu);
    if (!was)
        return;
    sl_thread_stop(&q->th);
    (void)sl_thread_join(&q->th);
    /* The waiting ones: answered here, on the owner's thread now. */
    struct sl_histsrv_job j;
    while (take(q, &j)) {
        q->fd = j.fd;
        q->broken = false;
        q->deadline_ms = sl_clock_mono_ms() + 1000;
        put_error(q, &j, "shutting down");
        finish(q, &j);
    }
    if (q->db) {
        sl_histdb_close(q->db);
        q->db = NULL;
    }
}

void sl_histsrv_destroy(struct sl_histsrv *q)
{
    if (!q)
        return;
    sl_histsrv_stop(q);
    pthread_mutex_destroy(&q->mu);
    free(q->jobs);
    free(q->buf);
    free(q->pts);
    free(q->database);
    free(q->url);
    if (q->password) {
        memset(q->password, 0, strlen(q->password));
        free(q->password);
    }
    free(q);
}

void sl_histsrv_stats(const struct sl_histsrv *q, struct sl_histsrv_stats *out)
{
    out->queries = atomic_load_explicit(&q->n_queries, memory_order_relaxed);
    out->busy = atomic_load_explicit(&q->n_busy, memory_order_relaxed);
    out->failures = atomic_load_explicit(&q->n_failures, memory_order_relaxed);
    out->cut = atomic_load_explicit(&q->n_cut, memory_order_relaxed);
    out->points = atomic_load_explicit(&q->n_points, memory_order_relaxed);
}
