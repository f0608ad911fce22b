/* Syslog-channel messages (channel SL_CHANNEL_SYSLOG): one SYSLOG message
 * per syslog message, many in a block's payload (a batch). They use the
 * common message header (type, flags, body_len; see sl_msg_split). Layout:
 * sl_wire.h (SL_SYSLOG_*), docs/protocol-messages.md.
 *
 * The text is the syslog message exactly as TX received it, minus its
 * transport framing (UDP datagram, TCP octet count or newline): RFC 5424 and
 * RFC 3164 alike, never parsed or rewritten. The sender's address and the
 * time TX took the message in travel beside it. Pure codec: no I/O, no
 * clock, no allocation. */
#ifndef SL_LOGMSG_H
#define SL_LOGMSG_H

#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_wire.h"

struct sl_logmsg {
    uint64_t recv_time_us;                   /* TX wall clock at intake */
    uint8_t addr[SL_SYSLOG_ADDR_BYTES];      /* IPv6; IPv4 as ::ffff:a.b.c.d */
    uint16_t port;
    uint8_t transport;                       /* SL_SYSLOG_UDP / SL_SYSLOG_TCP */
    uint8_t flags;                           /* SL_SYSLOG_F_* */
    const uint8_t *text;                     /* borrowed: the sender's bytes */
    size_t text_len;                         /* 1..SL_SYSLOG_TEXT_MAX */
};

/* Bytes one message of text_len bytes takes in a payload, header included. */
static inline size_t sl_logmsg_bytes(size_t text_len)
{
    return SL_MSG_HDR_BYTES + SL_SYSLOG_HDR_BYTES + text_len;
}

/* Appends m (whole message, header included) to out[*off..cap); *off
 * advances. SL_ERR_RANGE for an empty or over-long text, an unknown
 * transport or flag; SL_ERR_CAPACITY (nothing written) if it does not fit. */
__attribute__((warn_unused_result))
sl_err sl_logmsg_put(uint8_t *out, size_t cap, size_t *off, const struct sl_logmsg *m);

/* Decodes one SYSLOG body (as split by sl_msg_split). SL_ERR_TYPE for
 * another type, SL_ERR_TRUNCATED for a body without text, SL_ERR_LENGTH for
 * text over SL_SYSLOG_TEXT_MAX, SL_ERR_RANGE for an unknown transport or
 * flag. text points into body. *out zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_logmsg_decode(struct sl_logmsg *out, uint8_t type, const uint8_t *body, size_t len);

/* Checks a whole syslog payload before anything of it is used: every
 * message splits and decodes, and the payload is exactly consumed. *count
 * = messages (0 on failure). A batch is delivered whole or not at all. */
__attribute__((warn_unused_result))
sl_err sl_logmsg_batch_check(const uint8_t *payload, size_t len, size_t *count);

/* The next message of a payload that passed sl_logmsg_batch_check; false
 * at its end. */
bool sl_logmsg_next(struct sl_buf *b, struct sl_logmsg *out);

/* The sender's address as text ("192.0.2.7" for IPv4-mapped, else IPv6),
 * into out (at least 46 bytes). */
void sl_logmsg_addr_text(char *out, size_t cap, const uint8_t addr[SL_SYSLOG_ADDR_BYTES]);

#endif
