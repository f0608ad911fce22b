/* Read-only HTTP services over the mirror ([http] listen, docs/services.md):
 * JSON API, server-sent events, Prometheus metrics and the live dashboard.
 *
 * libmicrohttpd runs WITHOUT a thread of its own: it uses epoll and exposes
 * one descriptor (sl_http_fd) for the daemon's poll set; sl_http_run() does
 * all the work. Every mirror read and every status callback therefore
 * happens on the daemon's one thread, between mirror writes.
 *
 * Memory: the SSE client slots (each one dirty bitmap of max_tags bits and
 * a fixed event buffer) are allocated at sl_http_open(). A change event
 * (sl_http_notify) sets bits and allocates nothing: a slow client
 * accumulates at most one pending entry per tag (latest value wins, read
 * from the mirror when sent). A request allocates its body once (growing
 * buffer) or, for /api/tags, streams it tag by tag from a small context.
 *
 * Bounds against IT clients (the loop also serves intake): max_conns in all
 * and max_conns_per_peer per peer (an IPv4 address or an IPv6 /64:
 * sl_peer.h; refused at accept, counted);
 * a request head must arrive within request_timeout_ms of the connection
 * opening or of the previous response ending (trickled bytes do not extend
 * it: slowloris), and timeout_s bounds any connection that makes no
 * progress; max_sse streams in all, max_sse_per_peer per peer. One
 * sl_http_run() handles each ready connection once (one read, one write of
 * at most one block: 64 KiB for an event stream), so its cost is bounded by
 * max_conns.
 *
 * Authentication: the bearer token only in the Authorization header (never
 * the query string: URLs end up in logs and history). EventSource cannot
 * set headers, so GET /api/session with the header sets a same-origin
 * cookie (HttpOnly, SameSite=Strict, random per server start) that
 * /api/stream accepts. Without a token, the Host header must be an IP
 * literal, "localhost" or a name in allowed_hosts (DNS rebinding). */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_datagram.h"
#include "sl_err.h"
#include "sl_histsrv.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_receiver.h"

#define SL_HTTP_DEFAULT_CONNS     64u
#define SL_HTTP_DEFAULT_TIMEOUT_S 30u
#define SL_HTTP_DEFAULT_SSE       16u      /* concurrent /api/stream clients */
#define SL_HTTP_DEFAULT_SSE_PEER  4u       /* ... from one peer (IPv4 address, IPv6 /64) */
#define SL_HTTP_DEFAULT_PER_PEER  16u      /* connections from one peer */
#define SL_HTTP_DEFAULT_REQ_MS    10000u   /* request head deadline */
#define SL_HTTP_HOSTS_MAX         1024u    /* allowed_hosts text, with NUL */
#define SL_HTTP_COOKIE            "sluice_session"
#define SL_HTTP_SSE_PING_MS       15000u   /* comment line on an idle stream */
#define SL_HTTP_STREAM_FILTERS    256u     /* ?tag= and ?path= arguments of one stream */
#define SL_HTTP_TOKEN_MAX         256u
#define SL_HTTP_BODY_MAX          (64u << 20)  /* largest built (non-streamed) body */

struct sl_histsrv;

struct sl_http_config {
    const char *listen;        /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
    const char *token;         /* NULL or "": no authentication; else the bearer token
                                  (1..SL_HTTP_TOKEN_MAX bytes, copied) */
    unsigned max_conns;        /* 0: SL_HTTP_DEFAULT_CONNS */
    unsigned timeout_s;        /* idle connection timeout; 0: SL_HTTP_DEFAULT_TIMEOUT_S */
    unsigned max_sse;          /* 0: SL_HTTP_DEFAULT_SSE */
    unsigned max_conns_per_peer;   /* 0: SL_HTTP_DEFAULT_PER_PEER (capped at max_conns) */
    unsigned max_sse_per_peer;     /* 0: SL_HTTP_DEFAULT_SSE_PEER (capped at max_sse) */
    uint32_t request_timeout_ms;   /* 0: SL_HTTP_DEFAULT_REQ_MS */
    const char *allowed_hosts;     /* NULL or comma-separated Host names accepted
                                      without a token (besides IP literals and
                                      localhost); copied */
    uint32_t max_tags;         /* the mirror's max_tags (sizes the SSE bitmaps) */
    struct sl_histsrv *histsrv;  /* GET /api/history's query thread (sl_histsrv.h), or NULL:
                                  [history] off, the route answers 503 */
};

/* A counter the daemon wants published as is (e.g. store checkpoints). */
struct sl_http_counter {
    const char *name;          /* Prometheus metric name, [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help;          /* one line */
    uint64_t value;
    bool gauge;                /* false: counter (name should end in _total) */
};

/* What the daemon knows about the link, filled on demand by the status
 * callback (at each /api/status and /metrics request). Zero it first: the
 * module treats zero as "unknown". Mirror-derived figures (tag counts by
 * quality, link state) are read from the mirror directly. */
struct sl_http_status {
    bool have_beacon;                  /* a beacon was accepted since start */
    struct sl_beacon beacon;           /* the last one: session, epoch, key id,
                                          link parameters, fingerprints, TX counters */
    uint64_t last_beacon_us;           /* RX wall clock when it arrived (µs) */
    int64_t clock_offset_us;           /* TX clock minus RX clock (beacon tx_time_us
                                          minus arrival time), the daemon's estimate */
    double frame_loss;                 /* 0..1: frames lost this session, the
                                          daemon's estimate from beacon frames_sent */
    struct sl_receiver_stats rx;       /* frames, blocks, drops by stage and reason, FEC */
    uint64_t modbus_refused_writes;
    bool modbus_on;                    /* the Modbus server runs: publish its figures */
    unsigned modbus_conns;
    struct sl_mbserver_stats modbus;
    uint64_t started_us;               /* RX start (wall clock), for uptime */
    uint64_t store_lag_ms;             /* oldest change not yet in the database, at the last checkpoint */
    const struct sl_http_counter *counters;  /* extra counters, borrowed for the call */
    size_t ncounters;
};

typedef void (*sl_http_status_fn)(void *ctx, struct sl_http_status *out);

struct sl_http_stats {
    uint64_t requests;         /* answered, any status */
    uint64_t unauthorized;     /* 401 */
    uint64_t not_allowed;      /* 405 */
    uint64_t not_found;        /* 404 */
    uint64_t sse_refused;      /* 503: every SSE slot busy */
    uint64_t sse_refused_peer; /* 503: the address holds max_sse_per_peer streams */
    uint64_t refused_cap;      /* connections refused at accept: max_conns reached */
    uint64_t refused_peer;     /* connections refused at accept: max_conns_per_peer */
    uint64_t closed_slow;      /* closed: no whole request head within request_timeout_ms */
    uint64_t bad_host;         /* 403: Host not allowed (no token configured) */
    uint64_t bad_request;      /* 400: a bad /api/stream tag or path argument, a bad /api/history parameter */
    unsigned sse_clients;      /* open /api/stream connections */
    uint64_t sse_encoded;      /* tag events encoded (a value no stream had sent yet) */
    uint64_t sse_shared;       /* tag events copied from an encoding made for another
                                  event of the same value (another stream, or the same
                                  stream after a link change) */
    bool history_on;           /* GET /api/history served ([history]): history holds its counters */
    struct sl_histsrv_stats history;
};

struct sl_http;

/* Binds cfg->listen, allocates the SSE slots and starts libmicrohttpd in
 * external-poll mode (epoll). m and the status callback are used at each
 * request and must outlive the server; status may be NULL (then only
 * mirror figures are served). SL_ERR_CONFIG for a bad address, token or
 * max_tags; SL_ERR_IO when the socket cannot be bound (errno kept);
 * SL_ERR_NOMEM. The caller owns *out (sl_http_close). Cost: about
 * max_sse * (max_tags / 8 + 18 KiB) bytes. */
__attribute__((warn_unused_result))
sl_err sl_http_open(struct sl_http **out, const struct sl_http_config *cfg,
                    const struct sl_mirror *m, sl_http_status_fn status, void *ctx);

/* Ends every stream, closes every connection and frees everything; h may
 * be NULL. */
void sl_http_close(struct sl_http *h);

/* The descriptor to poll for input (owned by the server; stable). */
int sl_http_fd(const struct sl_http *h);

/* The bound TCP port (useful after port 0). */
uint16_t sl_http_port(const struct sl_http *h);

/* Longest the daemon may wait before the next sl_http_run(), in ms, even
 * without input on sl_http_fd (pending work returns 0; at most
 * SL_HTTP_SSE_PING_MS). */
int sl_http_timeout_ms(struct sl_http *h);

/* Does all pending work without blocking: accepts, reads requests, answers
 * them from the mirror, writes, streams events, times out idle clients.
 * Call when sl_http_fd() is readable or the timeout expires. SL_ERR_IO if
 * libmicrohttpd fails. Cost: O(ready connections + bytes sent). */
sl_err sl_http_run(struct sl_http *h);

/* Feeds a mirror change to the SSE clients; call from the mirror hook (the
 * same arguments). VALUE marks the tag pending for each client that follows
 * it (a filtered stream, /api/stream?tag=PATH/NAME or ?path=PREFIX, only
 * its own tags: the others cost one bit test and never wake it); LINK sends
 * a link event and marks every tag; SCHEMA drops pending tags and sends a
 * schema event (clients reload /api/tags). O(clients) for VALUE,
 * O(clients * tags / 64) for LINK and SCHEMA; never allocates or blocks. */
void sl_http_notify(struct sl_http *h, enum sl_mirror_event ev, uint32_t pos);

void sl_http_stats(const struct sl_http *h, struct sl_http_stats *out);

/* Reads the bearer token from [http] token_file `path`: a secret, so the
 * file must not be readable by others nor writable by group or others, be
 * owned by root or `owner`, and is never read through a link. The token is
 * the first line (1..SL_HTTP_TOKEN_MAX bytes) into out; every other copy is
 * wiped. On failure out is "" and why (cap bytes) says why in one line:
 * SL_ERR_PERM / SL_ERR_CONFIG (the file's checks), SL_ERR_RANGE (token
 * empty or too long), SL_ERR_LENGTH (file over 4 KiB), SL_ERR_NOT_FOUND /
 * SL_ERR_IO. */
__attribute__((warn_unused_result))
sl_err sl_http_token_read(char out[SL_HTTP_TOKEN_MAX + 1], const char *path, uid_t owner, char *why,
                          size_t cap);

/* The embedded dashboard (rx/dashboard.html, generated at build time). */
extern const char sl_dashboard_html[];
extern const size_t sl_dashboard_html_len;
/* The trend chart's library, embedded from libjs-dygraphs at build time and
 * served at /static/dygraph.min.js and /static/dygraph.min.css. */
extern const char sl_dygraph_js[];
extern const size_t sl_dygraph_js_len;
extern const char sl_dygraph_css[];
extern const size_t sl_dygraph_css_len;

#endif
