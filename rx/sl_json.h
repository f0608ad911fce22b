/* JSON (and Prometheus label) text for the RX services: one output buffer
 * type, string escaping, numbers, ISO-8601 times, OPC UA quality names and
 * the tag object shared by HTTP and MQTT (docs/services.md).
 *
 * A buffer is either fixed (caller's memory, never grows: the SSE and MQTT
 * scratch, so a change event costs no allocation) or growable (one body per
 * HTTP request, doubled as needed). Appends never fail loudly: a fixed
 * buffer that runs out, or a growable one whose allocation fails, sets
 * `failed` and ignores further input, so a caller checks once at the end. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_mirror.h"

struct sl_jbuf {
    char *p;          /* text, not NUL-terminated (see sl_jbuf_cstr) */
    size_t len, cap;
    size_t limit;     /* growable: largest cap allowed */
    bool grow;        /* p is owned and may be reallocated */
    bool failed;      /* an append did not fit */
};

/* A fixed buffer over mem[0..cap): no allocation ever. */
void sl_jbuf_fixed(struct sl_jbuf *b, char *mem, size_t cap);

/* A growable buffer: first allocation of `initial` bytes happens here
 * (SL_ERR_NOMEM), then doubling up to `limit` bytes. Free with
 * sl_jbuf_free or take b->p (then the caller frees it). */
__attribute__((warn_unused_result))
sl_err sl_jbuf_alloc(struct sl_jbuf *b, size_t initial, size_t limit);
void sl_jbuf_free(struct sl_jbuf *b);

void sl_jbuf_reset(struct sl_jbuf *b);
/* NUL-terminates the text (not counted in len) and returns it; "" when the
 * buffer failed or has no room for the NUL. */
const char *sl_jbuf_cstr(struct sl_jbuf *b);

void sl_jbuf_put(struct sl_jbuf *b, const void *s, size_t n);
void sl_jbuf_lit(struct sl_jbuf *b, const char *s);     /* strlen(s) bytes, verbatim */
void sl_jbuf_printf(struct sl_jbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A JSON string literal of s (n bytes): quotes; `"` and `\` escaped;
 * control characters as \b \f \n \r \t or \u00XX; DEL, U+2028 and U+2029
 * and `<` `>` `&` as \uXXXX (safe inside HTML and JavaScript); other
 * non-ASCII passed through as UTF-8; invalid UTF-8 bytes become \ufffd.
 * O(n). */
void sl_json_strn(struct sl_jbuf *b, const char *s, size_t n);
void sl_json_str(struct sl_jbuf *b, const char *s);

/* Numbers: integers exactly; doubles in the shortest form that reads back
 * to the same value (up to 17 digits); NaN and infinities as null (JSON
 * has no spelling for them). */
void sl_json_u64(struct sl_jbuf *b, uint64_t v);
void sl_json_i64(struct sl_jbuf *b, int64_t v);
void sl_json_num(struct sl_jbuf *b, double v);

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (UTC, quoted) for µs since the Unix epoch. */
void sl_json_time(struct sl_jbuf *b, uint64_t us);

/* Lower-case hex of n bytes, quoted. */
void sl_json_hex(struct sl_jbuf *b, const uint8_t *p, size_t n);

/* A Prometheus label value into b, escaped by sl_prom_label (proto/rt),
 * no quotes added. */
void sl_prom_label_jbuf(struct sl_jbuf *b, const char *s);

/* OPC UA StatusCode names for the codes the mirror uses (docs/mirror.md
 * §1.1); any other code is named by its severity: "Good", "Uncertain" or
 * "Bad" (top two bits). Static strings. */
const char *sl_quality_name(uint32_t q);

/* Fields of the tag object (sl_json_tag). */
#define SL_JSON_TAG_HTTP 1u   /* id, name, path, value, raw, type, units, quality,
                                 quality_name, ts, rx_ts, age_ms */
#define SL_JSON_TAG_MQTT 2u   /* value, quality, quality_name, ts, rx_ts */
#define SL_JSON_TAG_LIVE 4u   /* id, value, raw, quality, ts, rx_ts: /api/stream?batch=1,
                                 whose reader has names, paths, units from /api/tags */
/* The live form's longest object: an id, a float64 value and raw (shortest
 * round-trip text, each under 32 bytes), a quality and two RFC 3339 times. */
#define SL_JSON_TAG_LIVE_MAX 256u

/* Writes one tag as a JSON object with the fields of `which`. value is the
 * engineering value (sl_regs_eng; bool as true/false), raw the typed number
 * before scale and offset (integers exact, floats shortest; float32 tags at
 * float precision), ts/rx_ts the
 * source and receive times (null without a value), age_ms = now_us - ts
 * (not below 0; null without a value). At most SL_JSON_TAG_MAX bytes.
 * O(strings), no allocation. */
#define SL_JSON_TAG_MAX 2048u
void sl_json_tag(struct sl_jbuf *b, const struct sl_mirror_tag *t, uint64_t now_us,
                 unsigned which);

/* One encoding of a tag's value shared by every event stream that sends it:
 * the HTTP form up to (not including) its age, which depends on when it is
 * sent, plus where the parts the live form reuses begin and end (offsets
 * from the start of the text). */
struct sl_json_tag_cuts {
    uint16_t id_end;                /* {"id":N            [0, id_end) */
    uint16_t value, raw_end;        /* ,"value":V,"raw":R [value, raw_end) */
    uint16_t quality, quality_end;  /* ,"quality":Q       [quality, quality_end) */
    uint16_t ts;                    /* ,"ts":T,"rx_ts":T  [ts, len) */
    uint16_t len;                   /* the whole shared text */
};

/* Appends t's shared text to b and fills c (offsets from b->len at the
 * call). At most SL_JSON_TAG_MAX bytes; same cost as sl_json_tag. */
void sl_json_tag_shared(struct sl_jbuf *b, const struct sl_mirror_tag *t, struct sl_json_tag_cuts *c);

/* Appends the object sl_json_tag(b, t, now_us, which) would write, byte for
 * byte, from text and c made by sl_json_tag_shared for the same value of t
 * (which: SL_JSON_TAG_HTTP or SL_JSON_TAG_LIVE). Copies only, plus the age
 * (HTTP form). */
void sl_json_tag_put_shared(struct sl_jbuf *b, const char *text, const struct sl_json_tag_cuts *c,
                            const struct sl_mirror_tag *t, uint64_t now_us, unsigned which);

#endif
