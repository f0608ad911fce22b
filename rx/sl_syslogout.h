/* RX syslog output: the syslog channel's batches (sl_logmsg.h) written to
 * a file and/or re-emitted to the IT SIEM.
 *
 * A batch is checked whole first (sl_logmsg_batch_check): a bad one is
 * counted (batches_bad) and nothing of it is used. Each message then goes
 *  - to `file`: appended as one line. Control characters inside the
 *    message (LF, CR, NUL, ... everything below 0x20 except TAB, and DEL)
 *    are written as '#' and three octal digits (LF is "#012"), as
 *    rsyslog's control-character escaping does, so one message is always
 *    one line; every other byte is unchanged. A write that stops part-way
 *    (disk full) keeps the whole lines and cuts the torn one off again, so
 *    no line is ever continued by the next. Reopened by
 *    sl_syslogout_reopen (SIGHUP) for logrotate.
 *  - to `forward`: udp://HOST:PORT, one datagram per message, or
 *    tcp://HOST:PORT, octet-counted (RFC 6587 "LEN SP MSG"), the bytes as
 *    TX received them (the sender's host and timestamp are in the message
 *    and stay). TCP is non-blocking: a bounded queue (queue_bytes) holds
 *    what the SIEM has not taken; when it is full the message is dropped
 *    and counted; a lost connection is retried with back-off (1 s doubling
 *    to 30 s), the message cut by the loss is dropped (counted) and the
 *    queue goes out on the next connection. A dead SIEM never blocks.
 * Everything is allocated at create. One thread (the channel worker) calls
 * payload and tick; reopen and stats may be called from any thread. */
#ifndef SL_SYSLOGOUT_H
#define SL_SYSLOGOUT_H

#include <stddef.h>
#include <stdint.h>

#include "sl_conf.h"
#include "sl_err.h"

#define SL_SYSLOGOUT_QUEUE_DEFAULT (1u << 20)   /* TCP forward queue, bytes */

enum sl_syslogout_proto { SL_SYSLOGOUT_NONE, SL_SYSLOGOUT_UDP, SL_SYSLOGOUT_TCP };

struct sl_syslogout_config {
    char file[SL_CONF_STR_MAX];         /* "" = no file */
    uint8_t proto;                      /* enum sl_syslogout_proto */
    struct sl_hostport forward;         /* when proto != NONE */
    uint32_t queue_bytes;               /* TCP forward queue */
};

struct sl_syslogout_stats {
    uint64_t messages;                  /* in batches that passed the check */
    uint64_t written;                   /* lines appended to the file */
    uint64_t forwarded;                 /* handed to the SIEM socket */
    uint64_t dropped;                   /* not written or not forwarded: queue full, send or write error */
    uint64_t batches_bad;               /* payloads that failed the check */
    uint64_t reopens;
    uint64_t connected;                 /* 1 while the TCP forward is connected */
};

/* Parses "udp://HOST:PORT" / "tcp://HOST:PORT" (the one HOST:PORT
 * grammar after the scheme) into proto and hp. SL_ERR_CONFIG with why
 * filled when refused. */
__attribute__((warn_unused_result))
sl_err sl_syslogout_parse_forward(uint8_t *proto, struct sl_hostport *hp, const char *text, char *why,
                                  size_t cap);

struct sl_syslogout;

/* Opens the file (O_APPEND, created 0640) and the forward socket (UDP:
 * connected now; TCP: connecting in the background). SL_ERR_IO (errno
 * kept) when the file cannot be opened, SL_ERR_CONFIG when forward does not
 * resolve, SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_syslogout_create(struct sl_syslogout **out, const struct sl_syslogout_config *cfg);
void sl_syslogout_destroy(struct sl_syslogout *o);

/* One verified payload of the syslog channel. now_us: monotonic. */
void sl_syslogout_payload(struct sl_syslogout *o, const uint8_t *payload, size_t len, uint64_t now_us);

/* Connects, reconnects and drains the TCP queue; call it at least every
 * sl_syslogout_tick_ms. */
void sl_syslogout_tick(struct sl_syslogout *o, uint64_t now_us);
#define SL_SYSLOGOUT_TICK_MS 100u

/* Asks for the file to be reopened before the next write (logrotate moved
 * it). Any thread; async-signal-safe (one atomic store). */
void sl_syslogout_reopen(struct sl_syslogout *o);

/* Any thread (relaxed atomics). */
void sl_syslogout_stats(const struct sl_syslogout *o, struct sl_syslogout_stats *out);

#endif
