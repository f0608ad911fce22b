/* Read-only Modbus TCP server over the mirror ([modbus] listen).
 *
 * Serves FC 1-4 at each device's mirror_unit and the PLC's addresses; every
 * write and unknown function is refused (docs/mirror.md has the exception
 * table). Non-blocking sockets on one epoll instance, driven by the daemon's
 * loop: put sl_mbserver_fd() in its poll set and call sl_mbserver_poll_once()
 * when it is readable (or on a timer, for idle timeouts).
 *
 * All memory is taken at sl_mbserver_open(): max_conns connection slots with
 * fixed input and output buffers. A request is answered from those buffers
 * with no allocation. Frames split across TCP segments and several requests
 * in one segment are handled; a client that does not read its responses is
 * paused (no more requests read from it) until it does.
 *
 * Fairness (the daemon runs intake and every service on one thread, so a
 * turn here must stay short whatever a client sends): one call answers at
 * most reqs_per_conn requests per connection and reqs_per_turn in all, and
 * reads at most SL_MBSERVER_READ_BYTES per connection; connections are
 * served round robin, so the one after the last served goes first next
 * turn. Requests left buffered wait for the next call (counted as
 * deferred; sl_mbserver_timeout_ms() then says 0 so the daemon does not
 * sleep on them). A connection may also have a request-rate budget
 * (reqs_per_s, a token bucket holding 100 ms of requests): one that has
 * spent it is not read from until the bucket refills, so a client in a
 * tight pipelined loop costs the thread at most that rate however fast it
 * sends (TCP pushes back on it), while a polling client never meets it.
 * A peer (an IPv4 address or an IPv6 /64: sl_peer.h)
 * holds at most max_conns_per_peer connections. A connection is closed when no complete request arrived for
 * idle_ms (bytes that never form a request do not count: slowloris), or
 * when an incomplete request has been waiting request_timeout_ms. */
#ifndef SL_MBSERVER_H
#define SL_MBSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_mbreq.h"
#include "sl_mirror.h"

#define SL_MBSERVER_DEFAULT_CONNS    64u
#define SL_MBSERVER_DEFAULT_IDLE_MS  60000u
#define SL_MBSERVER_DEFAULT_PER_PEER 8u       /* connections per peer (IPv4 address, IPv6 /64) */
#define SL_MBSERVER_DEFAULT_REQ_MS   5000u    /* deadline of an incomplete request */
#define SL_MBSERVER_DEFAULT_CONN_REQS 16u     /* requests answered per connection per turn */
#define SL_MBSERVER_DEFAULT_TURN_REQS 256u    /* requests answered per turn, all connections */
#define SL_MBSERVER_BURST_MS        100u     /* a rate budget's bucket: this long at the rate */
#define SL_MBSERVER_READ_BYTES       1024u    /* bytes read per connection per turn (its input buffer) */
#define SL_MBSERVER_PEER_MAX         64u    /* "[v6 address]:port" + NUL */

struct sl_mbserver_config {
    const char *listen;      /* "HOST:PORT", "[V6]:PORT"; port 0 picks a free one */
    unsigned max_conns;      /* 0 means SL_MBSERVER_DEFAULT_CONNS */
    uint32_t idle_ms;        /* 0 means SL_MBSERVER_DEFAULT_IDLE_MS */
    unsigned max_conns_per_peer;   /* 0: SL_MBSERVER_DEFAULT_PER_PEER (capped at max_conns) */
    uint32_t request_timeout_ms;   /* 0: SL_MBSERVER_DEFAULT_REQ_MS */
    unsigned reqs_per_conn;        /* 0: SL_MBSERVER_DEFAULT_CONN_REQS */
    unsigned reqs_per_turn;        /* 0: SL_MBSERVER_DEFAULT_TURN_REQS (at least reqs_per_conn) */
    uint32_t reqs_per_s;           /* requests answered per connection per second; 0: no budget */
};

struct sl_mbserver_stats {
    uint64_t accepted;           /* connections taken */
    uint64_t refused_cap;        /* accepted and closed at once: all slots busy */
    uint64_t refused_peer;       /* accepted and closed at once: the source address
                                    already holds max_conns_per_peer connections */
    uint64_t closed_idle;        /* closed after idle_ms without a complete request */
    uint64_t closed_slow;        /* closed: a request incomplete for request_timeout_ms */
    uint64_t deferred;           /* whole requests left buffered at the end of a turn
                                    (a request waiting two turns counts twice) */
    uint64_t rate_limited;       /* times a connection spent its request-rate budget
                                    and was held until it refilled */
    uint64_t closed_peer;        /* closed by the client or a socket error */
    uint64_t bad_frames;         /* closed on a malformed MBAP header */
    uint64_t requests;           /* well-framed requests */
    uint64_t served;             /* answered with data */
    uint64_t refused_writes;     /* write function codes refused */
    uint64_t exceptions[16];     /* by exception code */
};

/* Called for every refused write, with the client as "ADDR:PORT", so the
 * daemon can log it (rate-limited). Must not call back into the server. */
typedef void (*sl_mbserver_write_hook)(void *ctx, const char *peer, const struct sl_mbreq *req);

struct sl_mbserver;

/* Binds and listens on cfg->listen and allocates every connection slot
 * (about 3.5 KiB each). m is read at each request and must outlive the
 * server. SL_ERR_CONFIG for an unparsable address, SL_ERR_IO for socket
 * errors (errno kept). The caller owns *out (sl_mbserver_close). */
__attribute__((warn_unused_result))
sl_err sl_mbserver_open(struct sl_mbserver **out, const struct sl_mbserver_config *cfg,
                        const struct sl_mirror *m);

/* Closes every connection and the listening socket; s may be NULL. */
void sl_mbserver_close(struct sl_mbserver *s);

/* One descriptor (the epoll instance) that is readable whenever the server
 * has work; owned by the server. */
int sl_mbserver_fd(const struct sl_mbserver *s);

/* The bound port (useful after port 0). */
uint16_t sl_mbserver_port(const struct sl_mbserver *s);

/* Waits up to timeout_ms (0: no wait) for socket events and handles them:
 * accepts, reads, answers, writes, within the per-turn caps above; then
 * closes connections idle for idle_ms or stuck in a request for
 * request_timeout_ms at now_ms (the caller's monotonic clock). SL_ERR_IO
 * only if epoll itself fails. Cost: O(events + connections) plus at most
 * reqs_per_turn answers. */
sl_err sl_mbserver_poll_once(struct sl_mbserver *s, int timeout_ms, uint64_t now_ms);

/* 0 when whole requests wait in a buffer (the next sl_mbserver_poll_once
 * must come without waiting for a socket event); the ms until the first
 * connection held by its rate budget may go on (at least 1: a caller that
 * waits longer only delays that client, whose bucket keeps filling up to
 * SL_MBSERVER_BURST_MS worth); else -1 (no wish: the descriptor and the
 * caller's own timer suffice). Relative to the last poll's now_ms. O(1). */
int sl_mbserver_timeout_ms(const struct sl_mbserver *s);

void sl_mbserver_set_write_hook(struct sl_mbserver *s, sl_mbserver_write_hook fn, void *ctx);

/* Open connections now. */
unsigned sl_mbserver_conns(const struct sl_mbserver *s);

void sl_mbserver_stats(const struct sl_mbserver *s, struct sl_mbserver_stats *out);

/* Answers one parsed request from the mirror into out[0..cap) (cap >=
 * SL_MB_RESP_MAX): data, or the exception chosen in this order: the
 * parser's (0x01, 0x03, 0x02); unit id served by no device 0x0A; an address
 * in the range covered by no tag 0x02; link stale 0x0A; any covering tag
 * not Good 0x0B. Returns the exception code sent (0 for data). Pure: no
 * I/O, no allocation; O(log tags + count). */
uint8_t sl_mbserver_answer(uint8_t *out, size_t cap, size_t *out_len, const struct sl_mbreq *req,
                           const struct sl_mirror *m);

#endif
