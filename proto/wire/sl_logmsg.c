#include "sl_logmsg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "sl_msg.h"

sl_err sl_logmsg_put(uint8_t *out, size_t cap, size_t *off, const struct sl_logmsg *m)
{
    if (m->text_len == 0 || m->text_len > SL_SYSLOG_TEXT_MAX ||
        (m->transport != SL_SYSLOG_UDP && m->transport != SL_SYSLOG_TCP) ||
        (m->flags & ~SL_SYSLOG_F_TRUNCATED))
        return SL_ERR_RANGE;
    size_t n = sl_logmsg_bytes(m->text_len);
    if (*off > cap || n > cap - *off)
        return SL_ERR_CAPACITY;
    uint8_t *p = out + *off;
    sl_msg_put_hdr(p, SL_MSG_SYSLOG, SL_SYSLOG_HDR_BYTES + m->text_len);
    p += SL_MSG_HDR_BYTES;
    sl_be64_put(p + SL_SYSLOG_OFF_TIME, m->recv_time_us);
    memcpy(p + SL_SYSLOG_OFF_ADDR, m->addr, SL_SYSLOG_ADDR_BYTES);
    sl_be16_put(p + SL_SYSLOG_OFF_PORT, m->port);
    p[SL_SYSLOG_OFF_TRANSPORT] = m->transport;
    p[SL_SYSLOG_OFF_FLAGS] = m->flags;
    memcpy(p + SL_SYSLOG_HDR_BYTES, m->text, m->text_len);
    *off += n;
    return SL_OK;
}

sl_err sl_logmsg_decode(struct sl_logmsg *out, uint8_t type, const uint8_t *body, size_t len)
{
    memset(out, 0, sizeof *out);
    if (type != SL_MSG_SYSLOG)
        return SL_ERR_TYPE;
    struct sl_logmsg m;
    memset(&m, 0, sizeof m);
    struct sl_buf b = sl_buf_make(body, len);
    sl_err e = sl_buf_get_u64be(&b, &m.recv_time_us);
    if (e == SL_OK)
        e = sl_buf_get_bytes(&b, m.addr, sizeof m.addr);
    if (e == SL_OK)
        e = sl_buf_get_u16be(&b, &m.port);
    if (e == SL_OK)
        e = sl_buf_get_u8(&b, &m.transport);
    if (e == SL_OK)
        e = sl_buf_get_u8(&b, &m.flags);
    if (e != SL_OK)
        return e;
    m.text_len = sl_buf_left(&b);
    if (m.text_len == 0)
        return SL_ERR_TRUNCATED;
    if (m.text_len > SL_SYSLOG_TEXT_MAX)
        return SL_ERR_LENGTH;
    if ((m.transport != SL_SYSLOG_UDP && m.transport != SL_SYSLOG_TCP) ||
        (m.flags & ~SL_SYSLOG_F_TRUNCATED))
        return SL_ERR_RANGE;
    e = sl_buf_get_ptr(&b, &m.text, m.text_len);
    if (e == SL_OK)
        e = sl_buf_end(&b);
    if (e == SL_OK)
        *out = m;
    return e;
}

sl_err sl_logmsg_batch_check(const uint8_t *payload, size_t len, size_t *count)
{
    *count = 0;
    struct sl_buf b = sl_buf_make(payload, len);
    size_t n = 0;
    while (sl_buf_left(&b)) {
        uint8_t type;
        const uint8_t *body;
        size_t blen;
        struct sl_logmsg m;
        sl_err e = sl_msg_split(&b, &type, &body, &blen);
        if (e == SL_OK)
            e = sl_logmsg_decode(&m, type, body, blen);
        if (e != SL_OK)
            return e;
        n++;
    }
    if (n == 0)
        return SL_ERR_TRUNCATED;
    *count = n;
    return SL_OK;
}

bool sl_logmsg_next(struct sl_buf *b, struct sl_logmsg *out)
{
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    if (!sl_buf_left(b) || sl_msg_split(b, &type, &body, &blen) != SL_OK)
        return false;
    return sl_logmsg_decode(out, type, body, blen) == SL_OK;
}

void sl_logmsg_addr_text(char *out, size_t cap, const uint8_t addr[SL_SYSLOG_ADDR_BYTES])
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (cap == 0)
        return;
    out[0] = '\0';
    if (memcmp(addr, mapped, sizeof mapped) == 0)
        inet_ntop(AF_INET, addr + 12, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, addr, out, (socklen_t)cap);
}
