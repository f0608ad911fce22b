#include "sl_msg.h"
#include "sl_hmsg.h"   /* SL_HREC_SEQ_LIMIT: live and backfilled seqs share one range */

#include <math.h>
#include <string.h>

/* Every offset and size used here is in sl_wire.h. */

/* ---- validation ---------------------------------------------------------- */

/* Largest raw a type may carry: the value's own width, zero-extended. 0 for
 * an unknown type (bool's 1 is still distinguishable from it). */
static uint64_t raw_max(uint8_t type)
{
    switch (type) {
    case SL_TYPE_BOOL:    return 1u;
    case SL_TYPE_INT16:
    case SL_TYPE_UINT16:  return 0xFFFFu;
    case SL_TYPE_INT32:
    case SL_TYPE_UINT32:
    case SL_TYPE_FLOAT32: return 0xFFFFFFFFu;
    case SL_TYPE_INT64:
    case SL_TYPE_FLOAT64: return UINT64_MAX;
    default:              return 0;
    }
}

/* Registers (or bits) a type occupies in the Modbus map. */
static sl_err raw_check(uint8_t type, uint64_t raw)
{
    uint64_t max = raw_max(type);
    if (max == 0)
        return SL_ERR_TYPE;
    return raw > max ? SL_ERR_RANGE : SL_OK;
}

sl_err sl_msg_value_check(const struct sl_value *v)
{
    return raw_check(v->type, v->raw);
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF)
 * without C0 controls, DEL or C1 controls: these strings end up in HTTP,
 * MQTT topics, logs and terminals on the IT side. */
static bool text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return false;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (uint32_t)(s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
            (cp >= 0x80 && cp <= 0x9F))
            return false;
        i += len;
    }
    return true;
}

/* Everything about a tag except its strings. */
static sl_err tag_fields_check(const struct sl_schema_tag *t)
{
    if (raw_max(t->type) == 0)
        return SL_ERR_TYPE;
    if (t->reg < SL_REG_HOLDING || t->reg > SL_REG_DISCRETE || t->word_order > SL_WORD_DCBA)
        return SL_ERR_RANGE;
    bool bit_space = t->reg == SL_REG_COIL || t->reg == SL_REG_DISCRETE;
    if (bit_space != (t->type == SL_TYPE_BOOL))
        return SL_ERR_RANGE;
    unsigned width = sl_wire_type_regs(t->type);   /* >= 1: the type passed raw_max */
    /* Word order only means something across registers; one canonical
     * spelling keeps schema fingerprints stable. */
    if (width == 1 && t->word_order != SL_WORD_ABCD)
        return SL_ERR_RANGE;
    if ((uint32_t)t->address + width - 1u > 0xFFFFu)
        return SL_ERR_RANGE;
    if (!isfinite(t->scale) || !isfinite(t->offset))
        return SL_ERR_RANGE;
    return SL_OK;
}

/* A NUL-terminated string in a cap-byte array: at least min bytes, and the
 * terminator present (so at most cap - 1 bytes). */
static sl_err string_check(const char *s, size_t cap, size_t min)
{
    size_t n = strnlen(s, cap);
    if (n == cap || n < min || !text_ok((const uint8_t *)s, n))
        return SL_ERR_RANGE;
    return SL_OK;
}

sl_err sl_msg_tag_check(const struct sl_schema_tag *t)
{
    sl_err e = tag_fields_check(t);
    if (e == SL_OK)
        e = string_check(t->name, sizeof t->name, 1);
    if (e == SL_OK)
        e = string_check(t->path, sizeof t->path, 0);
    if (e == SL_OK)
        e = string_check(t->units, sizeof t->units, 0);
    return e;
}

/* Chunk header rules shared by KEYFRAME and SCHEMA: every chunk of a
 * non-empty set holds at least one item, so there are never more chunks
 * than items; an empty set is one empty chunk. */
static bool chunk_ok(uint16_t chunk, uint16_t chunks, uint32_t total, size_t count)
{
    if (chunks == 0 || chunk >= chunks || count > total)
        return false;
    if (total == 0)
        return chunks == 1;
    return count > 0 && chunks <= total;
}

/* ---- sizing -------------------------------------------------------------- */

static size_t values_fit(size_t cap, size_t hdr, size_t stride, size_t max)
{
    if (cap < SL_MSG_HDR_BYTES + hdr + stride)
        return 0;
    size_t n = (cap - SL_MSG_HDR_BYTES - hdr) / stride;
    return n < max ? n : max;
}

size_t sl_msg_delta_fit(size_t cap)
{
    return values_fit(cap, SL_DELTA_HDR_BYTES, SL_VALUE_BYTES, SL_DELTA_VALUES_MAX);
}

size_t sl_msg_delta_seq_fit(size_t cap)
{
    return values_fit(cap, SL_DELTA_SEQ_HDR_BYTES, SL_VALUE_SEQ_BYTES, SL_DELTA_SEQ_VALUES_MAX);
}

size_t sl_msg_keyframe_fit(size_t cap)
{
    return values_fit(cap, SL_KEYFRAME_HDR_BYTES, SL_VALUE_BYTES, SL_KEYFRAME_VALUES_MAX);
}

size_t sl_msg_tag_bytes(const struct sl_schema_tag *t)
{
    return SL_SCHEMA_TAG_FIXED + strnlen(t->name, sizeof t->name) +
           strnlen(t->path, sizeof t->path) + strnlen(t->units, sizeof t->units);
}

/* Bytes a SCHEMA message may spend on tags in cap bytes of payload. */
static size_t schema_room(size_t cap)
{
    size_t fixed = SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES;
    if (cap < fixed)
        return 0;
    size_t room = cap - fixed;
    size_t body_room = SL_MSG_BODY_MAX - SL_SCHEMA_HDR_BYTES;
    return room < body_room ? room : body_room;
}

size_t sl_msg_schema_fit(size_t cap, const struct sl_schema_tag *tags, size_t n)
{
    size_t room = schema_room(cap), used = 0, i = 0;
    /* count is u16; 65535 tags of >= 27 bytes never fit one body anyway. */
    for (; i < n && i < UINT16_MAX; i++) {
        size_t b = sl_msg_tag_bytes(&tags[i]);
        if (b > room - used)
            break;
        used += b;
    }
    return i;
}

/* ---- writer -------------------------------------------------------------- */

void sl_msg_writer_init(struct sl_msg_writer *w, void *buf, size_t cap)
{
    w->p = buf;
    w->cap = cap;
    w->off = 0;
}

void sl_msg_put_hdr(uint8_t *p, uint8_t type, size_t body_len)
{
    p[SL_MSG_OFF_TYPE] = type;
    p[SL_MSG_OFF_FLAGS] = 0;
    sl_be16_put(p + SL_MSG_OFF_LEN, (uint16_t)body_len);
}

static void put_value(uint8_t *p, const struct sl_value *v)
{
    sl_be32_put(p + SL_VALUE_OFF_TAG, v->tag_id);
    p[SL_VALUE_OFF_TYPE] = v->type;
    sl_be64_put(p + SL_VALUE_OFF_RAW, v->raw);
    sl_be32_put(p + SL_VALUE_OFF_QUALITY, v->quality);
    sl_be64_put(p + SL_VALUE_OFF_TIME, v->source_time_us);
}

static void put_chunk_hdr(uint8_t *p, uint32_t id, uint16_t chunk, uint16_t chunks,
                          uint32_t total, size_t count)
{
    sl_be32_put(p + SL_CHUNK_OFF_ID, id);
    sl_be16_put(p + SL_CHUNK_OFF_CHUNK, chunk);
    sl_be16_put(p + SL_CHUNK_OFF_CHUNKS, chunks);
    sl_be32_put(p + SL_CHUNK_OFF_TOTAL, total);
    sl_be16_put(p + SL_CHUNK_OFF_COUNT, (uint16_t)count);
}

static bool seq_ok(uint64_t seq)
{
    return seq >= 1 && seq < SL_HREC_SEQ_LIMIT;
}

/* Validates values[0..n) (and their seqs when with_seq) before a single
 * byte is written. */
static sl_err values_check(const struct sl_value *values, size_t n, bool with_seq)
{
    for (size_t i = 0; i < n; i++) {
        sl_err e = sl_msg_value_check(&values[i]);
        if (e == SL_OK && with_seq && !seq_ok(values[i].seq))
            e = SL_ERR_RANGE;
        if (e != SL_OK)
            return e;
    }
    return SL_OK;
}

/* Shared by DELTA and KEYFRAME: takes the first min(n, fit) values (fit:
 * what the space left holds, already checked by the caller), checks them,
 * then writes the message header, leaves hdr bytes for the
 * message-specific header (*at, for the caller to fill) and the value
 * entries. On error nothing is written and *taken stays 0. */
static sl_err put_values(struct sl_msg_writer *w, uint8_t **at, size_t *taken, uint8_t type, size_t hdr,
                         const struct sl_value *values, size_t n, size_t fit)
{
    bool with_seq = type == SL_MSG_DELTA_SEQ;
    size_t stride = with_seq ? SL_VALUE_SEQ_BYTES : SL_VALUE_BYTES;
    size_t count = n < fit ? n : fit;
    sl_err e = values_check(values, count, with_seq);
    if (e != SL_OK)
        return e;
    size_t body = hdr + count * stride;
    *at = w->p + w->off + SL_MSG_HDR_BYTES;
    uint8_t *p = *at + hdr;
    sl_msg_put_hdr(w->p + w->off, type, body);
    for (size_t i = 0; i < count; i++, p += stride) {
        put_value(p, &values[i]);
        if (with_seq)
            sl_be64_put(p + SL_VALUE_BYTES, values[i].seq);
    }
    w->off += SL_MSG_HDR_BYTES + body;
    *taken = count;
    return SL_OK;
}

/* DELTA, or DELTA_SEQ when journal_id != 0 (the public entry points
 * refuse journal_id 0 for DELTA_SEQ). */
static sl_err put_delta_any(struct sl_msg_writer *w, size_t *taken, uint64_t journal_id,
                            const struct sl_value *values, size_t n)
{
    bool with_seq = journal_id != 0;
    *taken = 0;
    if (n == 0)
        return SL_ERR_RANGE;
    size_t left = w->cap - w->off;
    size_t fit = with_seq ? sl_msg_delta_seq_fit(left) : sl_msg_delta_fit(left);
    if (fit == 0)
        return SL_ERR_CAPACITY;
    uint8_t *hdr;
    sl_err e = put_values(w, &hdr, taken, with_seq ? SL_MSG_DELTA_SEQ : SL_MSG_DELTA,
                          with_seq ? SL_DELTA_SEQ_HDR_BYTES : SL_DELTA_HDR_BYTES, values, n, fit);
    if (e != SL_OK)
        return e;
    if (with_seq) {
        sl_be64_put(hdr + SL_DELTA_SEQ_OFF_JOURNAL, journal_id);
        sl_be16_put(hdr + SL_DELTA_SEQ_OFF_COUNT, (uint16_t)*taken);
    } else {
        sl_be16_put(hdr + SL_DELTA_OFF_COUNT, (uint16_t)*taken);
    }
    return SL_OK;
}

sl_err sl_msg_put_delta(struct sl_msg_writer *w, size_t *taken,
                        const struct sl_value *values, size_t n)
{
    return put_delta_any(w, taken, 0, values, n);
}

sl_err sl_msg_put_delta_seq(struct sl_msg_writer *w, size_t *taken, uint64_t journal_id,
                            const struct sl_value *values, size_t n)
{
    if (journal_id == 0) {
        *taken = 0;
        return SL_ERR_RANGE;
    }
    return put_delta_any(w, taken, journal_id, values, n);
}

sl_err sl_msg_put_keyframe(struct sl_msg_writer *w, size_t *taken, uint32_t keyframe_id,
                           uint16_t chunk, uint16_t chunks, uint32_t total_tags,
                           const struct sl_value *values, size_t n)
{
    *taken = 0;
    if (!chunk_ok(chunk, chunks, total_tags, n))
        return SL_ERR_RANGE;
    size_t left = w->cap - w->off;
    size_t fit = sl_msg_keyframe_fit(left);
    if (n == 0) {
        /* The one empty chunk of an empty keyframe. */
        if (left < SL_MSG_HDR_BYTES + SL_KEYFRAME_HDR_BYTES)
            return SL_ERR_CAPACITY;
    } else if (fit == 0) {
        return SL_ERR_CAPACITY;
    }
    uint8_t *hdr;
    sl_err e = put_values(w, &hdr, taken, SL_MSG_KEYFRAME, SL_KEYFRAME_HDR_BYTES, values, n, fit);
    if (e == SL_OK)
        put_chunk_hdr(hdr, keyframe_id, chunk, chunks, total_tags, *taken);
    return e;
}

static uint8_t *put_string(uint8_t *p, const char *s, size_t len)
{
    *p++ = (uint8_t)len;
    if (len)
        memcpy(p, s, len);
    return p + len;
}

sl_err sl_msg_put_schema(struct sl_msg_writer *w, size_t *taken, uint32_t schema_id,
                         uint16_t chunk, uint16_t chunks, uint32_t total_tags,
                         const struct sl_schema_tag *tags, size_t n)
{
    *taken = 0;
    if (!chunk_ok(chunk, chunks, total_tags, n))
        return SL_ERR_RANGE;
    size_t left = w->cap - w->off;
    if (left < SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES)
        return SL_ERR_CAPACITY;
    /* Measure, then validate each tag that fits, so nothing is written for
     * a bad tag and a bad tag beyond this chunk is left for the next call. */
    size_t room = schema_room(left), used = 0, count = 0;
    for (; count < n && count < UINT16_MAX; count++) {
        size_t b = sl_msg_tag_bytes(&tags[count]);
        if (b > room - used)
            break;
        sl_err e = sl_msg_tag_check(&tags[count]);
        if (e != SL_OK)
            return e;
        used += b;
    }
    if (count == 0 && n > 0)
        return SL_ERR_CAPACITY;

    size_t body = SL_SCHEMA_HDR_BYTES + used;
    uint8_t *p = w->p + w->off;
    sl_msg_put_hdr(p, SL_MSG_SCHEMA, body);
    p += SL_MSG_HDR_BYTES;
    put_chunk_hdr(p, schema_id, chunk, chunks, total_tags, count);
    p += SL_SCHEMA_HDR_BYTES;
    for (size_t i = 0; i < count; i++) {
        const struct sl_schema_tag *t = &tags[i];
        uint64_t bits;
        sl_be32_put(p + SL_TAG_OFF_ID, t->tag_id);
        p[SL_TAG_OFF_TYPE] = t->type;
        p[SL_TAG_OFF_REG] = t->reg;
        p[SL_TAG_OFF_WORD_ORDER] = t->word_order;
        p[SL_TAG_OFF_MIRROR_UNIT] = t->mirror_unit;
        sl_be16_put(p + SL_TAG_OFF_ADDRESS, t->address);
        memcpy(&bits, &t->scale, sizeof bits);
        sl_be64_put(p + SL_TAG_OFF_SCALE, bits);
        memcpy(&bits, &t->offset, sizeof bits);
        sl_be64_put(p + SL_TAG_OFF_OFFSET, bits);
        p += SL_SCHEMA_TAG_HEAD;
        p = put_string(p, t->name, strlen(t->name));
        p = put_string(p, t->path, strlen(t->path));
        p = put_string(p, t->units, strlen(t->units));
    }
    w->off += SL_MSG_HDR_BYTES + body;
    *taken = count;
    return SL_OK;
}

static bool event_kind_ok(uint8_t kind)
{
    return kind >= SL_EVENT_DEVICE_DOWN && kind <= SL_EVENT_TX_START;
}

sl_err sl_msg_put_event(struct sl_msg_writer *w, uint8_t kind, uint8_t mirror_unit,
                        uint64_t time_us, const char *text, size_t text_len)
{
    if (!event_kind_ok(kind) || text_len > SL_EVENT_TEXT_MAX || (text_len && !text) ||
        (text_len && !text_ok((const uint8_t *)text, text_len)))
        return SL_ERR_RANGE;
    size_t body = SL_EVENT_HDR_BYTES + text_len;
    if (SL_MSG_HDR_BYTES + body > w->cap - w->off)
        return SL_ERR_CAPACITY;
    uint8_t *p = w->p + w->off;
    sl_msg_put_hdr(p, SL_MSG_EVENT, body);
    p += SL_MSG_HDR_BYTES;
    p[SL_EVENT_OFF_KIND] = kind;
    p[SL_EVENT_OFF_UNIT] = mirror_unit;
    sl_be64_put(p + SL_EVENT_OFF_TIME, time_us);
    sl_be16_put(p + SL_EVENT_OFF_TEXT_LEN, (uint16_t)text_len);
    if (text_len)
        memcpy(p + SL_EVENT_HDR_BYTES, text, text_len);
    w->off += SL_MSG_HDR_BYTES + body;
    return SL_OK;
}

/* ---- iterators ----------------------------------------------------------- */

bool sl_msg_value_next(struct sl_value_iter *it, struct sl_value *out)
{
    if (it->pos >= it->count) {
        memset(out, 0, sizeof *out);
        return false;
    }
    /* The decoder checked count * stride == bytes present: fixed offsets. */
    const uint8_t *p = it->p + (size_t)it->pos * it->stride;
    out->tag_id = sl_be32_get(p + SL_VALUE_OFF_TAG);
    out->type = p[SL_VALUE_OFF_TYPE];
    out->raw = sl_be64_get(p + SL_VALUE_OFF_RAW);
    out->quality = sl_be32_get(p + SL_VALUE_OFF_QUALITY);
    out->source_time_us = sl_be64_get(p + SL_VALUE_OFF_TIME);
    out->seq = it->stride == SL_VALUE_SEQ_BYTES ? sl_be64_get(p + SL_VALUE_BYTES) : 0;
    it->pos++;
    return true;
}

/* Reads a length-prefixed string of at most max bytes into out (max + 1
 * bytes of room), NUL-terminated. */
static sl_err get_string(struct sl_buf *b, char *out, size_t max)
{
    uint8_t len;
    const uint8_t *s;
    if (sl_buf_get_u8(b, &len) != SL_OK || sl_buf_get_ptr(b, &s, len) != SL_OK)
        return SL_ERR_LENGTH;
    if (len > max || !text_ok(s, len))
        return SL_ERR_RANGE;
    memcpy(out, s, len);
    out[len] = '\0';
    return SL_OK;
}

/* Parses and checks one tag; b moves past it only on success. */
static sl_err parse_tag(struct sl_buf *b, struct sl_schema_tag *t)
{
    struct sl_buf save = *b;
    const uint8_t *p;
    memset(t, 0, sizeof *t);
    sl_err e = sl_buf_get_ptr(b, &p, SL_SCHEMA_TAG_HEAD) == SL_OK ? SL_OK : SL_ERR_LENGTH;
    if (e == SL_OK) {
        uint64_t bits;
        t->tag_id = sl_be32_get(p + SL_TAG_OFF_ID);
        t->type = p[SL_TAG_OFF_TYPE];
        t->reg = p[SL_TAG_OFF_REG];
        t->word_order = p[SL_TAG_OFF_WORD_ORDER];
        t->mirror_unit = p[SL_TAG_OFF_MIRROR_UNIT];
        t->address = sl_be16_get(p + SL_TAG_OFF_ADDRESS);
        bits = sl_be64_get(p + SL_TAG_OFF_SCALE);
        memcpy(&t->scale, &bits, sizeof bits);
        bits = sl_be64_get(p + SL_TAG_OFF_OFFSET);
        memcpy(&t->offset, &bits, sizeof bits);
        e = get_string(b, t->name, SL_NAME_MAX);
    }
    if (e == SL_OK)
        e = get_string(b, t->path, SL_PATH_MAX);
    if (e == SL_OK)
        e = get_string(b, t->units, SL_UNITS_MAX);
    if (e == SL_OK)
        e = tag_fields_check(t);
    if (e == SL_OK && t->name[0] == '\0')
        e = SL_ERR_RANGE;
    if (e != SL_OK) {
        memset(t, 0, sizeof *t);
        *b = save;
    }
    return e;
}

bool sl_msg_tag_next(struct sl_tag_iter *it, struct sl_schema_tag *out)
{
    if (it->pos >= it->count || parse_tag(&it->b, out) != SL_OK) {
        memset(out, 0, sizeof *out);
        it->pos = it->count;
        return false;
    }
    it->pos++;
    return true;
}

/* ---- decoders ------------------------------------------------------------ */

sl_err sl_msg_split(struct sl_buf *b, uint8_t *type, const uint8_t **body, size_t *body_len)
{
    *type = 0;
    *body = NULL;
    *body_len = 0;
    if (sl_buf_left(b) < SL_MSG_HDR_BYTES)
        return SL_ERR_TRUNCATED;
    const uint8_t *h = b->p + b->off;
    size_t len = sl_be16_get(h + SL_MSG_OFF_LEN);
    if (h[SL_MSG_OFF_FLAGS] != 0)
        return SL_ERR_HEADER;
    if (len > sl_buf_left(b) - SL_MSG_HDR_BYTES)
        return SL_ERR_TRUNCATED;
    *type = h[SL_MSG_OFF_TYPE];
    *body = h + SL_MSG_HDR_BYTES;
    *body_len = len;
    b->off += SL_MSG_HDR_BYTES + len;
    return SL_OK;
}

/* count entries of stride bytes must fill rest exactly. */
static sl_err count_matches(size_t count, size_t stride, size_t rest)
{
    size_t need = count * stride;   /* count <= 65535: no wrap */
    if (need > rest)
        return SL_ERR_LENGTH;
    return need < rest ? SL_ERR_TRAILING : SL_OK;
}

static sl_err values_body_check(const uint8_t *p, size_t count, size_t stride)
{
    for (size_t i = 0; i < count; i++, p += stride) {
        sl_err e = raw_check(p[SL_VALUE_OFF_TYPE], sl_be64_get(p + SL_VALUE_OFF_RAW));
        if (e == SL_OK && stride == SL_VALUE_SEQ_BYTES && !seq_ok(sl_be64_get(p + SL_VALUE_BYTES)))
            e = SL_ERR_RANGE;
        if (e != SL_OK)
            return e;
    }
    return SL_OK;
}

/* DELTA (count, 25-byte entries) and DELTA_SEQ (journal_id, count, 33-byte
 * entries ending in their seq). check == false only for bodies a
 * successful check already covered (sl_msg_next): the header is parsed
 * again, the entries are not. */
static sl_err decode_delta_any(struct sl_msg_delta *out, const uint8_t *body, size_t len, bool check,
                               bool with_seq)
{
    size_t hdr = with_seq ? SL_DELTA_SEQ_HDR_BYTES : SL_DELTA_HDR_BYTES;
    size_t stride = with_seq ? SL_VALUE_SEQ_BYTES : SL_VALUE_BYTES;
    memset(out, 0, sizeof *out);
    if (len < hdr)
        return SL_ERR_TRUNCATED;
    uint64_t journal_id = with_seq ? sl_be64_get(body + SL_DELTA_SEQ_OFF_JOURNAL) : 0;
    uint16_t count = sl_be16_get(body + (with_seq ? SL_DELTA_SEQ_OFF_COUNT : SL_DELTA_OFF_COUNT));
    sl_err e = count_matches(count, stride, len - hdr);
    if (e == SL_OK && (count == 0 || (with_seq && journal_id == 0)))
        e = SL_ERR_HEADER;
    if (e == SL_OK && check)
        e = values_body_check(body + hdr, count, stride);
    if (e != SL_OK)
        return e;
    out->journal_id = journal_id;
    out->values.p = body + hdr;
    out->values.count = count;
    out->values.stride = (uint16_t)stride;
    return SL_OK;
}

struct chunk_hdr {
    uint32_t id, total;
    uint16_t chunk, chunks, count;
};

static void get_chunk_hdr(struct chunk_hdr *h, const uint8_t *p)
{
    h->id = sl_be32_get(p + SL_CHUNK_OFF_ID);
    h->chunk = sl_be16_get(p + SL_CHUNK_OFF_CHUNK);
    h->chunks = sl_be16_get(p + SL_CHUNK_OFF_CHUNKS);
    h->total = sl_be32_get(p + SL_CHUNK_OFF_TOTAL);
    h->count = sl_be16_get(p + SL_CHUNK_OFF_COUNT);
}

static sl_err decode_keyframe(struct sl_msg_keyframe *out, const uint8_t *body, size_t len,
                              bool check)
{
    memset(out, 0, sizeof *out);
    if (len < SL_KEYFRAME_HDR_BYTES)
        return SL_ERR_TRUNCATED;
    struct chunk_hdr h;
    get_chunk_hdr(&h, body);
    sl_err e = count_matches(h.count, SL_VALUE_BYTES, len - SL_KEYFRAME_HDR_BYTES);
    if (e == SL_OK && !chunk_ok(h.chunk, h.chunks, h.total, h.count))
        e = SL_ERR_HEADER;
    if (e == SL_OK && check)
        e = values_body_check(body + SL_KEYFRAME_HDR_BYTES, h.count, SL_VALUE_BYTES);
    if (e != SL_OK)
        return e;
    out->keyframe_id = h.id;
    out->chunk = h.chunk;
    out->chunks = h.chunks;
    out->total_tags = h.total;
    out->values.p = body + SL_KEYFRAME_HDR_BYTES;
    out->values.count = h.count;
    out->values.stride = SL_VALUE_BYTES;
    return SL_OK;
}

static sl_err decode_schema(struct sl_msg_schema *out, const uint8_t *body, size_t len,
                            bool check)
{
    memset(out, 0, sizeof *out);
    if (len < SL_SCHEMA_HDR_BYTES)
        return SL_ERR_TRUNCATED;
    struct chunk_hdr h;
    get_chunk_hdr(&h, body);
    struct sl_buf tags = sl_buf_make(body + SL_SCHEMA_HDR_BYTES, len - SL_SCHEMA_HDR_BYTES);
    sl_err e = SL_OK;
    if (check) {
        /* Tags are variable-sized, so the length check is a walk over
         * every tag. A tag that is well-sized but invalid is stepped over
         * by its length bytes and reported only once the walk has found
         * the lengths sound, keeping the documented order: LENGTH and
         * TRAILING, then HEADER, then the first item error. */
        struct sl_buf walk = tags;
        struct sl_schema_tag t;
        sl_err item = SL_OK;
        for (uint16_t i = 0; i < h.count && e == SL_OK; i++) {
            sl_err pe = parse_tag(&walk, &t);
            if (pe == SL_ERR_LENGTH) {
                e = pe;
            } else if (pe != SL_OK) {
                /* Skip the bad tag by its length bytes to finish the
                 * length check; report the item error afterwards. */
                if (item == SL_OK)
                    item = pe;
                uint8_t l;
                if (sl_buf_skip(&walk, SL_SCHEMA_TAG_HEAD) != SL_OK)
                    e = SL_ERR_LENGTH;
                for (int s = 0; s < 3 && e == SL_OK; s++) {
                    if (sl_buf_get_u8(&walk, &l) != SL_OK || sl_buf_skip(&walk, l) != SL_OK)
                        e = SL_ERR_LENGTH;
                }
            }
        }
        if (e == SL_OK && sl_buf_end(&walk) != SL_OK)
            e = SL_ERR_TRAILING;
        if (e == SL_OK && !chunk_ok(h.chunk, h.chunks, h.total, h.count))
            e = SL_ERR_HEADER;
        if (e == SL_OK)
            e = item;
    }
    if (e != SL_OK)
        return e;
    out->schema_id = h.id;
    out->chunk = h.chunk;
    out->chunks = h.chunks;
    out->total_tags = h.total;
    out->tags.b = tags;
    out->tags.count = h.count;
    return SL_OK;
}

sl_err sl_msg_decode_delta(struct sl_msg_delta *out, const uint8_t *body, size_t len)
{
    return decode_delta_any(out, body, len, true, false);
}

sl_err sl_msg_decode_delta_seq(struct sl_msg_delta *out, const uint8_t *body, size_t len)
{
    return decode_delta_any(out, body, len, true, true);
}

sl_err sl_msg_decode_keyframe(struct sl_msg_keyframe *out, const uint8_t *body, size_t len)
{
    return decode_keyframe(out, body, len, true);
}

sl_err sl_msg_decode_schema(struct sl_msg_schema *out, const uint8_t *body, size_t len)
{
    return decode_schema(out, body, len, true);
}

sl_err sl_msg_decode_event(struct sl_msg_event *out, const uint8_t *body, size_t len)
{
    memset(out, 0, sizeof *out);
    if (len < SL_EVENT_HDR_BYTES)
        return SL_ERR_TRUNCATED;
    size_t text_len = sl_be16_get(body + SL_EVENT_OFF_TEXT_LEN);
    size_t rest = len - SL_EVENT_HDR_BYTES;
    if (text_len > rest)
        return SL_ERR_LENGTH;
    if (text_len < rest)
        return SL_ERR_TRAILING;
    const uint8_t *text = body + SL_EVENT_HDR_BYTES;
    if (!event_kind_ok(body[SL_EVENT_OFF_KIND]) || text_len > SL_EVENT_TEXT_MAX || !text_ok(text, text_len))
        return SL_ERR_RANGE;
    out->kind = body[SL_EVENT_OFF_KIND];
    out->mirror_unit = body[SL_EVENT_OFF_UNIT];
    out->time_us = sl_be64_get(body + SL_EVENT_OFF_TIME);
    out->text_len = (uint16_t)text_len;
    memcpy(out->text, text, text_len);
    out->text[text_len] = '\0';
    return SL_OK;
}

/* ---- payload reader ------------------------------------------------------ */

static sl_err decode_msg(struct sl_msg *out, uint8_t type, const uint8_t *body, size_t len,
                         bool check)
{
    memset(out, 0, sizeof *out);
    sl_err e;
    switch (type) {
    case SL_MSG_SCHEMA:   e = decode_schema(&out->u.schema, body, len, check); break;
    case SL_MSG_KEYFRAME: e = decode_keyframe(&out->u.keyframe, body, len, check); break;
    case SL_MSG_DELTA:    e = decode_delta_any(&out->u.delta, body, len, check, false); break;
    case SL_MSG_EVENT:    e = sl_msg_decode_event(&out->u.event, body, len); break;
    case SL_MSG_DELTA_SEQ: e = decode_delta_any(&out->u.delta, body, len, check, true); break;
    default:              e = SL_ERR_TYPE; break;
    }
    if (e == SL_OK)
        out->type = type;
    return e;
}

sl_err sl_msg_reader_init(struct sl_msg_reader *r, const void *payload, size_t len)
{
    r->b = sl_buf_make(payload, len);
    struct sl_buf walk = r->b;
    struct sl_msg m;
    while (sl_buf_left(&walk) > 0) {
        uint8_t type;
        const uint8_t *body;
        size_t body_len;
        sl_err e = sl_msg_split(&walk, &type, &body, &body_len);
        if (e == SL_OK)
            e = decode_msg(&m, type, body, body_len, true);
        if (e != SL_OK) {
            r->b = sl_buf_make(NULL, 0);
            return e;
        }
    }
    return SL_OK;
}

bool sl_msg_next(struct sl_msg_reader *r, struct sl_msg *out)
{
    uint8_t type;
    const uint8_t *body;
    size_t body_len;
    if (sl_buf_left(&r->b) == 0 || sl_msg_split(&r->b, &type, &body, &body_len) != SL_OK ||
        decode_msg(out, type, body, body_len, false) != SL_OK) {
        memset(out, 0, sizeof *out);
        r->b.off = r->b.len;
        return false;
    }
    return true;
}
