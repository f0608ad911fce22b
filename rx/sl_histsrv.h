/* The history query thread (rx-histsrv): answers GET /api/history off the
 * HTTP thread, so a query over a month of rows never delays another
 * client's /api/tags, an SSE stream or the Modbus server.
 *
 * Hand-off: the HTTP thread parses and checks the request (sl_histapi),
 * suspends the connection in libmicrohttpd and submits a job holding the
 * connection's socket; from then on this thread alone touches the socket.
 * It writes the whole response itself (status line, headers, body streamed
 * through one fixed SL_HISTSRV_BUF_BYTES buffer; chunked for HTTP/1.1,
 * Connection: close), shuts the socket down and calls done(conn) so the
 * HTTP thread lets libmicrohttpd close it.
 *
 * Bounds: at most slots jobs at once (one running, the rest waiting; a
 * submit beyond is refused and the HTTP thread answers 503 "busy",
 * counted); every write must make progress within send_timeout_ms and a
 * whole response may take at most SL_HISTSRV_RESPONSE_MS, else the
 * connection is cut (counted), also while reading the store (a step
 * query that reads much and writes little). The store is read in bounded
 * reads, each its own short read transaction, and the client is written
 * to only between them: a slow client never holds a snapshot open (which
 * would stop SQLite's WAL from being reset, PostgreSQL's vacuum from
 * cleaning up). Queries run one at a time on one reader
 * handle (SQLite read-only; PostgreSQL its own connection), opened at the
 * first query and again after a failure; a store that cannot be opened or
 * queried answers 503 with a JSON error (counted). */
#ifndef SL_HISTSRV_H
#define SL_HISTSRV_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_histapi.h"
#include "sl_histdb.h"

#define SL_HISTSRV_SLOTS_DEFAULT 4u
#define SL_HISTSRV_SLOTS_MAX     64u
#define SL_HISTSRV_SEND_MS       10000u     /* a write that makes no progress this long cuts the response */
#define SL_HISTSRV_RESPONSE_MS   300000u    /* a whole response, however slowly read */
#define SL_HISTSRV_BUF_BYTES     (64u * 1024u)
#define SL_HISTSRV_READ_POINTS   4096u      /* points per read of the store (each its own short transaction) */

struct sl_histsrv_config {
    struct sl_histdb_config db;   /* the store to read (the strings are copied) */
    unsigned slots;               /* 0: SL_HISTSRV_SLOTS_DEFAULT */
    uint32_t send_timeout_ms;     /* 0: SL_HISTSRV_SEND_MS */
};

/* One request handed over by the HTTP thread. */
struct sl_histsrv_job {
    int fd;                       /* the connection's socket (non-blocking; not closed here) */
    void *conn;                   /* the HTTP side's handle, given back to done */
    bool head;                    /* HEAD: the headers only */
    bool http10;                  /* HTTP/1.0: no chunked encoding, the body ends at close */
    struct sl_histapi_req req;
};

/* Called on the query thread when the job's socket is no longer used. */
typedef void (*sl_histsrv_done_fn)(void *ctx, void *conn);

struct sl_histsrv_stats {
    uint64_t queries;             /* answered 200 */
    uint64_t busy;                /* refused at submit: every slot taken */
    uint64_t failures;            /* 503: the store could not be opened or queried */
    uint64_t cut;                 /* responses cut: a client too slow, a backend failing mid-way */
    uint64_t points;              /* points (buckets) written */
};

struct sl_histsrv;

/* Allocates the queue and the buffer; opens nothing yet. SL_ERR_CONFIG
 * (neither or both of database/url, slots too many), SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_histsrv_create(struct sl_histsrv **out, const struct sl_histsrv_config *cfg);

/* Sets the completion callback (the HTTP module, at sl_http_open). */
void sl_histsrv_bind(struct sl_histsrv *q, sl_histsrv_done_fn done, void *ctx);

/* Starts the rx-histsrv thread; it installs seccomp profile `profile` with
 * flags (sl_seccomp.h) before the first query unless profile < 0.
 * fail_fd as for sl_thread_start. */
__attribute__((warn_unused_result))
sl_err sl_histsrv_start(struct sl_histsrv *q, int fail_fd, int profile, unsigned flags);

/* HTTP thread: takes a slot for the next submit. SL_ERR_TABLE_FULL when
 * every slot is taken (counted as busy); SL_ERR_STATE when not running. */
__attribute__((warn_unused_result))
sl_err sl_histsrv_reserve(struct sl_histsrv *q);

/* HTTP thread, after a successful reserve: hands the job over (copied)
 * into the reserved slot; cannot fail. */
void sl_histsrv_submit(struct sl_histsrv *q, const struct sl_histsrv_job *job);

/* Stops the thread: the running job is cut, the waiting ones are answered
 * 503; done is called for each. Then joins. Call before the HTTP server
 * closes (its suspended connections must be resumed first). */
void sl_histsrv_stop(struct sl_histsrv *q);

/* Frees everything (stops first if needed); q may be NULL. */
void sl_histsrv_destroy(struct sl_histsrv *q);

/* Any thread: the counters (relaxed atomics). */
void sl_histsrv_stats(const struct sl_histsrv *q, struct sl_histsrv_stats *out);

#endif
