/* Shared by the msg fuzz targets and tests/unit/msg: the decoders accept
 * exactly what the encoders produce, so every message a decoder accepts is
 * re-encoded here and must come out byte for byte identical. */
#ifndef FUZZ_MSG_H
#define FUZZ_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_msg.h"

/* Largest number of tags one SCHEMA body can hold (27-byte minimum each). */
#define FUZZ_MSG_TAGS_MAX ((SL_MSG_BODY_MAX - SL_SCHEMA_HDR_BYTES) / SL_SCHEMA_TAG_FIXED + 1u)

static struct sl_value fuzz_msg_values[SL_DELTA_VALUES_MAX];
static struct sl_schema_tag fuzz_msg_tags[FUZZ_MSG_TAGS_MAX];
static uint8_t fuzz_msg_out[SL_MSG_HDR_BYTES + SL_MSG_BODY_MAX];

/* Re-encodes m and compares with the message's original bytes (header
 * included). Drains m's iterators. Also checks every value and tag handed
 * out passes the encoder-side checks. */
static inline bool fuzz_msg_reencode(struct sl_msg *m, const uint8_t *orig, size_t orig_len)
{
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, fuzz_msg_out, orig_len);
    size_t n = 0, taken = 0;
    sl_err e;
    switch (m->type) {
    case SL_MSG_DELTA:
        while (n < SL_DELTA_VALUES_MAX && sl_msg_value_next(&m->u.delta.values, &fuzz_msg_values[n]))
            n++;
        if (n != m->u.delta.values.count)
            return false;
        e = sl_msg_put_delta(&w, &taken, fuzz_msg_values, n);
        break;
    case SL_MSG_DELTA_SEQ:
        while (n < SL_DELTA_SEQ_VALUES_MAX && sl_msg_value_next(&m->u.delta.values, &fuzz_msg_values[n]))
            n++;
        if (n != m->u.delta.values.count)
            return false;
        e = sl_msg_put_delta_seq(&w, &taken, m->u.delta.journal_id, fuzz_msg_values, n);
        break;
    case SL_MSG_KEYFRAME: {
        struct sl_msg_keyframe *k = &m->u.keyframe;
        while (n < SL_KEYFRAME_VALUES_MAX && sl_msg_value_next(&k->values, &fuzz_msg_values[n]))
            n++;
        if (n != k->values.count)
            return false;
        e = sl_msg_put_keyframe(&w, &taken, k->keyframe_id, k->chunk, k->chunks, k->total_tags,
                                fuzz_msg_values, n);
        break;
    }
    case SL_MSG_SCHEMA: {
        struct sl_msg_schema *s = &m->u.schema;
        while (n < FUZZ_MSG_TAGS_MAX && sl_msg_tag_next(&s->tags, &fuzz_msg_tags[n]))
            n++;
        if (n != s->tags.count)
            return false;
        e = sl_msg_put_schema(&w, &taken, s->schema_id, s->chunk, s->chunks, s->total_tags,
                              fuzz_msg_tags, n);
        break;
    }
    case SL_MSG_EVENT: {
        struct sl_msg_event *ev = &m->u.event;
        if (strlen(ev->text) != ev->text_len)
            return false;
        e = sl_msg_put_event(&w, ev->kind, ev->mirror_unit, ev->time_us, ev->text, ev->text_len);
        break;   /* all or nothing: n == taken == 0 */
    }
    default:
        return false;
    }
    for (size_t i = 0; i < n && m->type != SL_MSG_SCHEMA; i++)
        if (sl_msg_value_check(&fuzz_msg_values[i]) != SL_OK)
            return false;
    return e == SL_OK && taken == n && w.off == orig_len && memcmp(fuzz_msg_out, orig, orig_len) == 0;
}

/* Decodes one body with the type's own entry point, as sl_msg_next would. */
static inline sl_err fuzz_msg_decode_body(struct sl_msg *m, uint8_t type, const uint8_t *body,
                                          size_t len)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    switch (type) {
    case SL_MSG_DELTA:    return sl_msg_decode_delta(&m->u.delta, body, len);
    case SL_MSG_DELTA_SEQ: return sl_msg_decode_delta_seq(&m->u.delta, body, len);
    case SL_MSG_KEYFRAME: return sl_msg_decode_keyframe(&m->u.keyframe, body, len);
    case SL_MSG_SCHEMA:   return sl_msg_decode_schema(&m->u.schema, body, len);
    case SL_MSG_EVENT:    return sl_msg_decode_event(&m->u.event, body, len);
    default:              return SL_ERR_TYPE;
    }
}

/* Fuzz one body decoder: bodies over SL_MSG_BODY_MAX cannot be framed and
 * are skipped; an accepted body must re-encode to itself. */
static inline void fuzz_msg_body(uint8_t type, const uint8_t *data, size_t size)
{
    static uint8_t framed[SL_MSG_HDR_BYTES + SL_MSG_BODY_MAX];
    if (size > SL_MSG_BODY_MAX)
        return;
    struct sl_msg m;
    if (fuzz_msg_decode_body(&m, type, data, size) != SL_OK) {
        static const uint8_t zero[sizeof m.u];
        if (memcmp(&m.u, zero, sizeof m.u) != 0)
            __builtin_trap();   /* outputs are zeroed on failure */
        return;
    }
    framed[0] = type;
    framed[1] = 0;
    sl_be16_put(framed + 2, (uint16_t)size);
    if (size)
        memcpy(framed + SL_MSG_HDR_BYTES, data, size);
    if (!fuzz_msg_reencode(&m, framed, SL_MSG_HDR_BYTES + size))
        __builtin_trap();
}

#endif
