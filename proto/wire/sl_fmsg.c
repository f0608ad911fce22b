#include "sl_fmsg.h"

#include <stdbool.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_msg.h"
#include "sl_wire.h"

static sl_err name_ok(const char *name, size_t *len)
{
    size_t n = name ? strnlen(name, SL_FILE_NAME_MAX + 1) : 0;
    if (n == 0 || n > SL_FILE_NAME_MAX)
        return SL_ERR_RANGE;
    *len = n;
    return SL_OK;
}

/* FILE_BEGIN and FILE_END / FILE_END_TREE (type): file_id, size, (END only: digest),
 * name_len, name. Everything is checked before a byte is written. */
static sl_err put_named(uint8_t *out, size_t cap, size_t *off, uint8_t type, uint32_t file_id,
                        uint64_t size, const uint8_t *sha256, const char *name)
{
    size_t n;
    if (name_ok(name, &n) != SL_OK)
        return SL_ERR_RANGE;
    bool end = type == SL_MSG_FILE_END || type == SL_MSG_FILE_END_TREE;
    size_t name_at = end ? SL_FILE_END_OFF_NAME_LEN : SL_FILE_BEGIN_OFF_NAME_LEN;
    size_t body = name_at + 1 + n;
    if (*off > cap || SL_MSG_HDR_BYTES + body > cap - *off)
        return SL_ERR_CAPACITY;
    uint8_t *p = out + *off;
    sl_msg_put_hdr(p, type, body);
    p += SL_MSG_HDR_BYTES;
    sl_be32_put(p + SL_FILE_OFF_ID, file_id);
    sl_be64_put(p + SL_FILE_OFF_SIZE, size);
    if (end)
        memcpy(p + SL_FILE_END_OFF_SHA256, sha256, SL_FILE_SHA256_BYTES);
    p[name_at] = (uint8_t)n;
    memcpy(p + name_at + 1, name, n);
    *off += SL_MSG_HDR_BYTES + body;
    return SL_OK;
}

sl_err sl_fmsg_put_begin(uint8_t *out, size_t cap, size_t *off, uint32_t file_id, uint64_t size,
                         const char *name)
{
    return put_named(out, cap, off, SL_MSG_FILE_BEGIN, file_id, size, NULL, name);
}

sl_err sl_fmsg_put_end(uint8_t *out, size_t cap, size_t *off, uint32_t file_id, uint64_t size,
                       const uint8_t sha256[SL_FILE_SHA256_BYTES], const char *name)
{
    return put_named(out, cap, off, SL_MSG_FILE_END, file_id, size, sha256, name);
}

sl_err sl_fmsg_put_end_tree(uint8_t *out, size_t cap, size_t *off, uint32_t file_id, uint64_t size,
                            const uint8_t digest[SL_FILE_SHA256_BYTES], const char *name)
{
    return put_named(out, cap, off, SL_MSG_FILE_END_TREE, file_id, size, digest, name);
}

size_t sl_fmsg_data_room(size_t cap)
{
    if (cap <= SL_MSG_HDR_BYTES + SL_FILE_DATA_HDR)
        return 0;
    size_t room = cap - SL_MSG_HDR_BYTES - SL_FILE_DATA_HDR;
    return room < SL_MSG_BODY_MAX - SL_FILE_DATA_HDR ? room : SL_MSG_BODY_MAX - SL_FILE_DATA_HDR;
}

sl_err sl_fmsg_put_data(uint8_t *out, size_t cap, size_t *off, uint8_t **data, uint32_t file_id,
                        uint64_t offset, size_t len)
{
    *data = NULL;
    if (len == 0)
        return SL_ERR_RANGE;
    if (*off > cap || len > sl_fmsg_data_room(cap - *off))
        return SL_ERR_CAPACITY;
    uint8_t *p = out + *off;
    sl_msg_put_hdr(p, SL_MSG_FILE_DATA, SL_FILE_DATA_HDR + len);
    sl_be32_put(p + SL_MSG_HDR_BYTES + SL_FILE_OFF_ID, file_id);
    sl_be64_put(p + SL_MSG_HDR_BYTES + SL_FILE_OFF_OFFSET, offset);
    *data = p + SL_MSG_HDR_BYTES + SL_FILE_DATA_HDR;
    *off += SL_MSG_HDR_BYTES + SL_FILE_DATA_HDR + len;
    return SL_OK;
}

/* Reads name_len u8 + name through the cursor into out (NUL-terminated). */
static sl_err get_name(struct sl_buf *b, char out[SL_FILE_NAME_MAX + 1])
{
    uint8_t n;
    const uint8_t *p;
    sl_err e = sl_buf_get_u8(b, &n);
    if (e == SL_OK)
        e = sl_buf_get_ptr(b, &p, n);
    if (e != SL_OK)
        return e;
    if (n == 0 || memchr(p, 0, n))
        return SL_ERR_RANGE;
    memcpy(out, p, n);
    out[n] = '\0';
    return SL_OK;
}

sl_err sl_fmsg_decode(struct sl_fmsg *out, uint8_t type, const uint8_t *body, size_t len)
{
    memset(out, 0, sizeof *out);
    struct sl_fmsg m = { .type = type };
    struct sl_buf b = sl_buf_make(body, len);
    sl_err e;
    switch (type) {
    case SL_MSG_FILE_BEGIN:
        e = sl_buf_get_u32be(&b, &m.file_id);
        if (e == SL_OK)
            e = sl_buf_get_u64be(&b, &m.size);
        if (e == SL_OK)
            e = get_name(&b, m.name);
        break;
    case SL_MSG_FILE_DATA:
        e = sl_buf_get_u32be(&b, &m.file_id);
        if (e == SL_OK)
            e = sl_buf_get_u64be(&b, &m.offset);
        if (e == SL_OK) {
            m.data_len = sl_buf_left(&b);
            if (m.data_len == 0 || m.offset > UINT64_MAX - m.data_len)
                e = SL_ERR_LENGTH;
            else
                e = sl_buf_get_ptr(&b, &m.data, m.data_len);
        }
        break;
    case SL_MSG_FILE_END:
    case SL_MSG_FILE_END_TREE:   /* same body; only the digest's rule differs */
        e = sl_buf_get_u32be(&b, &m.file_id);
        if (e == SL_OK)
            e = sl_buf_get_u64be(&b, &m.size);
        if (e == SL_OK)
            e = sl_buf_get_bytes(&b, m.sha256, sizeof m.sha256);
        if (e == SL_OK)
            e = get_name(&b, m.name);
        break;
    default:
        return SL_ERR_TYPE;
    }
    if (e == SL_OK)
        e = sl_buf_end(&b);
    if (e == SL_OK)
        *out = m;
    return e;
}
