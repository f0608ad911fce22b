/* TX syslog intake: the OT side's syslog (RFC 5424 and RFC 3164, as
 * rsyslog, syslog-ng or logger send it) over UDP and TCP on one port,
 * batched onto the syslog channel (SL_CHANNEL_SYSLOG, codec sl_logmsg.h).
 *
 * Messages are taken as they are: the transport framing is removed (a UDP
 * datagram's trailing LF; TCP octet counting "LEN SP MSG" per RFC 6587, or
 * LF-terminated lines, detected per connection from the first byte) and
 * nothing else. A message must open with a PRI ("<N>", 1..3 digits), which
 * both RFCs require: anything else is binary junk, dropped and counted.
 * Longer than max_message: the first max_message bytes go, flagged
 * truncated, and the rest is skipped (counted). Over max_rate messages/s
 * (a token bucket holding one second): dropped and counted. Every drop
 * reason is summed in one [SL-TX-SYSLOG-DROP] line at most every 10 s.
 *
 * Bounds: max_connections TCP connections, max_per_peer per source
 * address (more are accepted and closed at once, counted), idle_s without
 * a byte closes one; every socket is non-blocking and every buffer is
 * allocated by sl_syslogin_create. One call of sl_syslogin_run reads a
 * bounded amount (a few hundred messages), so a flood never starves the
 * tag channel: the daemon's loop comes back to its tag blocks and beacons
 * each turn, and the rest waits in the kernel's socket buffer (whose own
 * overflow the kernel drops and counts: SO_MEMINFO, dropped_kernel, read
 * once a second).
 *
 * Batching: a block is sent when the next message no longer fits in the
 * payload, or when the oldest waiting message has waited batch_ms. The
 * caller supplies the send function (the daemon: one syslog block on the
 * sender), so the module is tested without a link. Single-threaded: the
 * daemon's main thread owns it.
 *
 * Link share: with rate_mbps set, each block sent is charged its wire
 * bytes (what the send function reports: data and repair frames with their
 * Ethernet overhead) at rate_mbps, and the next block waits until that
 * time has passed; no credit builds up while syslog is quiet. So syslog
 * never holds more than rate_mbps of the link over any interval, plus one
 * block, and a flood cannot queue blocks in front of the tag channel's.
 * Messages wait in the one batch meanwhile; one that no longer fits is
 * dropped and counted (dropped_share). */
#ifndef SL_SYSLOGIN_H
#define SL_SYSLOGIN_H

#include <stddef.h>
#include <stdint.h>

#include "sl_conf.h"
#include "sl_err.h"

struct sl_syslogin_config {
    struct sl_hostport listen;          /* UDP and TCP */
    uint32_t max_message;               /* bytes, at most SL_SYSLOG_TEXT_MAX */
    uint32_t max_rate;                  /* messages per second */
    uint32_t batch_ms;                  /* longest wait of a message for its block */
    uint32_t max_connections;
    uint32_t max_per_peer;
    uint32_t idle_s;
    double rate_mbps;                   /* wire Mbit/s syslog blocks may use; 0: unpaced */
};

struct sl_syslogin_stats {
    uint64_t received;                  /* messages taken into a batch */
    uint64_t dropped_rate;              /* over max_rate */
    uint64_t dropped_share;             /* batch full while it waited for rate_mbps */
    uint64_t dropped_invalid;           /* no PRI, empty, broken octet count */
    uint64_t dropped_kernel;            /* UDP datagrams the kernel dropped, socket buffer full */
    uint64_t truncated;                 /* longer than max_message (sent cut) */
    uint64_t refused_connections;       /* over max_connections or max_per_peer */
    uint64_t batches;                   /* blocks handed to the send function */
    uint64_t batches_failed;            /* the send function refused them */
    uint64_t bytes;                     /* message bytes received */
    uint64_t connections;               /* open now */
};

/* Sends one batch: payload[0..len) is a whole syslog payload. Sets
 * *wire_bytes to what the block cost on the link (frames with their
 * Ethernet overhead; 0 when nothing went), which the pacing charges. */
typedef sl_err (*sl_syslogin_send_fn)(void *ctx, const uint8_t *payload, size_t len, uint64_t *wire_bytes);

struct sl_syslogin;

/* Binds UDP and TCP on cfg->listen (port 0: TCP gets a free port and UDP
 * the same) and allocates everything: payload_cap bytes of batch, the UDP
 * receive ring, one max_message buffer per connection. SL_ERR_RANGE when
 * max_message does not fit in payload_cap, SL_ERR_IO (errno kept) when a
 * bind fails, SL_ERR_CONFIG when the address does not resolve,
 * SL_ERR_NOMEM. Start-up only. */
__attribute__((warn_unused_result))
sl_err sl_syslogin_create(struct sl_syslogin **out, const struct sl_syslogin_config *cfg,
                          size_t payload_cap, sl_syslogin_send_fn send, void *send_ctx);

/* Sends what waits (stop), closes every socket and frees. NULL is fine. */
void sl_syslogin_destroy(struct sl_syslogin *in);

/* One descriptor (epoll) that polls readable whenever any socket has
 * something: the daemon adds it to its ppoll set. */
int sl_syslogin_fd(const struct sl_syslogin *in);

/* The bound port (the one asked for, or the free one port 0 got). */
uint16_t sl_syslogin_port(const struct sl_syslogin *in);

/* One turn: accepts, reads a bounded amount from ready sockets, closes idle
 * connections, and sends the batch when full or due. now_us is the
 * monotonic clock (timers), wall_us the wall clock (each message's
 * recv_time_us). Never blocks. */
void sl_syslogin_run(struct sl_syslogin *in, uint64_t now_us, uint64_t wall_us);

/* When the waiting batch falls due (monotonic µs): batch_ms after its
 * first message, or at once when full, but never before rate_mbps allows
 * the next block; UINT64_MAX when empty. */
uint64_t sl_syslogin_deadline(const struct sl_syslogin *in);

/* Sends the waiting batch now and reads the kernel's drop count (stop). */
void sl_syslogin_flush(struct sl_syslogin *in);

void sl_syslogin_stats(const struct sl_syslogin *in, struct sl_syslogin_stats *out);

#endif
