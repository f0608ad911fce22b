/* JSON text for the RX services (sl_json.h). */
#include "sl_json.h"


#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_prom.h"
#include "sl_regs.h"
#include "sl_wire.h"

void sl_jbuf_fixed(struct sl_jbuf *b, char *mem, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->p = mem;
    b->cap = cap;
    b->limit = cap;
}

sl_err sl_jbuf_alloc(struct sl_jbuf *b, size_t initial, size_t limit)
{
    memset(b, 0, sizeof *b);
    if (initial == 0 || limit < initial)
        return SL_ERR_RANGE;
    b->p = malloc(initial);
    if (!b->p)
        return SL_ERR_NOMEM;
    b->cap = initial;
    b->limit = limit;
    b->grow = true;
    return SL_OK;
}

void sl_jbuf_free(struct sl_jbuf *b)
{
    if (b->grow)
        free(b->p);
    memset(b, 0, sizeof *b);
}

void sl_jbuf_reset(struct sl_jbuf *b)
{
    b->len = 0;
    b->failed = false;
}

/* Makes room for n more bytes; false (and failed) when impossible. */
static bool reserve(struct sl_jbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n <= b->cap - b->len)
        return true;
    if (!b->grow || n > b->limit - b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap = cap > b->limit / 2 ? b->limit : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

const char *sl_jbuf_cstr(struct sl_jbuf *b)
{
    if (b->failed || !reserve(b, 1))
        return "";
    b->p[b->len] = '\0';
    return b->p;
}

void sl_jbuf_put(struct sl_jbuf *b, const void *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void sl_jbuf_lit(struct sl_jbuf *b, const char *s)
{
    sl_jbuf_put(b, s, strlen(s));
}

void sl_jbuf_printf(struct sl_jbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = true;     /* only short fields are formatted this way */
        return;
    }
    sl_jbuf_put(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid
 * (overlong, surrogate, above U+10FFFF, truncated). *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

void sl_json_strn(struct sl_jbuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    sl_jbuf_put(b, "\"", 1);
    size_t i = 0, run = 0;     /* bytes [i - run, i) pass through unchanged */
    while (i < n) {
        uint32_t cp = 0;
        size_t len = utf8_seq(s + i, n - i, &cp);
        bool plain = len > 1 ? (cp != 0x2028 && cp != 0x2029)
                             : (len == 1 && cp >= 0x20 && cp != '"' && cp != '\\' &&
                                cp != 0x7F && cp != '<' && cp != '>' && cp != '&');
        if (plain) {
            i += len;
            run += len;
            continue;
        }
        sl_jbuf_put(b, s + i - run, run);
        run = 0;
        char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
        if (len == 0) {
            sl_jbuf_lit(b, "\\ufffd");
            i++;
            continue;
        }
        switch (cp) {
        case '"': sl_jbuf_put(b, "\\\"", 2); break;
        case '\\': sl_jbuf_put(b, "\\\\", 2); break;
        case '\b': sl_jbuf_put(b, "\\b", 2); break;
        case '\f': sl_jbuf_put(b, "\\f", 2); break;
        case '\n': sl_jbuf_put(b, "\\n", 2); break;
        case '\r': sl_jbuf_put(b, "\\r", 2); break;
        case '\t': sl_jbuf_put(b, "\\t", 2); break;
        default:
            esc[2] = hex[(cp >> 12) & 0xF];
            esc[3] = hex[(cp >> 8) & 0xF];
            esc[4] = hex[(cp >> 4) & 0xF];
            esc[5] = hex[cp & 0xF];
            sl_jbuf_put(b, esc, sizeof esc);
        }
        i += len;
    }
    sl_jbuf_put(b, s + i - run, run);
    sl_jbuf_put(b, "\"", 1);
}

void sl_json_str(struct sl_jbuf *b, const char *s)
{
    sl_json_strn(b, s ? s : "", s ? strlen(s) : 0);
}

/* The decimal digits of v, written backwards ending at end; returns the
 * first. Integers are most of an event stream's bytes (ids, values, raw,
 * quality, times): printf per number cost more than the rest of a tag. */
static char *digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    return end;
}

void sl_json_u64(struct sl_jbuf *b, uint64_t v)
{
    char tmp[20];
    char *p = digits(tmp + sizeof tmp, v);
    sl_jbuf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

void sl_json_i64(struct sl_jbuf *b, int64_t v)
{
    char tmp[21];
    char *p = digits(tmp + sizeof tmp, v < 0 ? 0u - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    sl_jbuf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

void sl_json_num(struct sl_jbuf *b, double v)
{
    if (!isfinite(v)) {
        sl_jbuf_lit(b, "null");
        return;
    }
    /* Whole numbers below 1e16 (counts, scaled integers, µs times): the
     * loop below prints their plain digits (%.15g below 1e15; %.16g up to
     * 1e16 unless %.15g reads back, i.e. a trailing zero), so print them
     * directly. -0 keeps its sign through the loop. */
    if (v > -1e16 && v < 1e16 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        int64_t i = (int64_t)v;
        uint64_t a = i < 0 ? 0u - (uint64_t)i : (uint64_t)i;
        if (a < 1000000000000000ull || a % 10u != 0) {
            sl_json_i64(b, i);
            return;
        }
    }
    /* Shortest of %.15g..%.17g that reads back exactly: 0.1 stays "0.1". */
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    sl_jbuf_lit(b, tmp);
}

void sl_json_time(struct sl_jbuf *b, uint64_t us)
{
    /* The text up to the second, per thread, for the last second seen: a
     * stream writes two times per tag and nearly all fall in the same
     * second, so gmtime and printf run about once a second. */
    static _Thread_local uint64_t last = UINT64_MAX;
    static _Thread_local char head[48];
    static _Thread_local size_t head_len;
    uint64_t secs = us / 1000000u;
    if (secs != last) {
        time_t t = (time_t)secs;
        struct tm tm;
        if (!gmtime_r(&t, &tm)) {
            sl_jbuf_lit(b, "null");
            return;
        }
        int n = snprintf(head, sizeof head, "\"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n < 0 || (size_t)n >= sizeof head) {
            sl_jbuf_lit(b, "null");
            return;
        }
        head_len = (size_t)n;
        last = secs;
    }
    char tail[8] = { 0, 0, 0, 0, 0, 0, 'Z', '"' };
    uint32_t frac = (uint32_t)(us % 1000000u);
    for (int i = 5; i >= 0; i--, frac /= 10u)
        tail[i] = (char)('0' + frac % 10u);
    sl_jbuf_put(b, head, head_len);
    sl_jbuf_put(b, tail, sizeof tail);
}

void sl_json_hex(struct sl_jbuf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sl_jbuf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char two[2] = { hex[p[i] >> 4], hex[p[i] & 0xF] };
        sl_jbuf_put(b, two, 2);
    }
    sl_jbuf_put(b, "\"", 1);
}

static void jbuf_sink(void *ctx, const char *s, size_t n)
{
    sl_jbuf_put(ctx, s, n);
}

void sl_prom_label_jbuf(struct sl_jbuf *b, const char *s)
{
    sl_prom_label(s, jbuf_sink, b);
}

const char *sl_quality_name(uint32_t q)
{
    switch (q) {
    case SL_Q_GOOD: return "Good";
    case SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE: return "UncertainNoCommunicationLastUsableValue";
    case SL_Q_UNCERTAIN_LAST_USABLE: return "UncertainLastUsableValue";
    case SL_Q_BAD_COMM_ERROR: return "BadCommunicationError";
    case SL_Q_BAD_NO_COMM: return "BadNoCommunication";
    case SL_Q_BAD_WAITING_INITIAL: return "BadWaitingForInitialData";
    default: break;
    }
    switch (q >> 30) {
    case 0: return "Good";
    case 1: return "Uncertain";
    default: return "Bad";
    }
}

/* A float32 (or a value computed from one) in the shortest form that reads
 * back to the same float: 75.0467 rather than the widened
 * 75.04669952392578, which claims digits the PLC never had. */
static void put_f32(struct sl_jbuf *b, double v)
{
    if (!isfinite(v) || fabs(v) > 3.4e38) {
        sl_json_num(b, v);
        return;
    }
    char tmp[40];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 9 || strtof(tmp, NULL) == (float)v)
            break;
    }
    sl_jbuf_lit(b, tmp);
}

/* The typed number before scale and offset, exactly for integers. */
static void put_raw(struct sl_jbuf *b, uint64_t raw, uint8_t type)
{
    switch (type) {
    case SL_TYPE_BOOL: sl_json_u64(b, raw ? 1 : 0); break;
    case SL_TYPE_INT16: sl_json_i64(b, (int16_t)(uint16_t)raw); break;
    case SL_TYPE_UINT16: sl_json_u64(b, (uint16_t)raw); break;
    case SL_TYPE_INT32: sl_json_i64(b, (int32_t)(uint32_t)raw); break;
    case SL_TYPE_UINT32: sl_json_u64(b, (uint32_t)raw); break;
    case SL_TYPE_INT64: sl_json_i64(b, (int64_t)raw); break;
    case SL_TYPE_FLOAT32: put_f32(b, sl_regs_number(raw, type)); break;
    default: sl_json_num(b, sl_regs_number(raw, type)); break;
    }
}

/* Offsets of b's text from base, for the cuts (an encoding is at most
 * SL_JSON_TAG_MAX bytes, so they fit 16 bits). */
static uint16_t cut_at(const struct sl_jbuf *b, size_t base)
{
    return (uint16_t)(b->len - base);
}

/* The age field and the closing brace of the HTTP form. */
static void put_age(struct sl_jbuf *b, const struct sl_mirror_tag *t, uint64_t now_us)
{
    sl_jbuf_lit(b, ",\"age_ms\":");
    if (t->has_value)
        sl_json_u64(b, now_us > t->source_time_us ? (now_us - t->source_time_us) / 1000u : 0);
    else
        sl_jbuf_lit(b, "null");
    sl_jbuf_put(b, "}", 1);
}

/* sl_json_tag's writer; with c (HTTP form only), stops before the age and
 * records where each part the live form reuses begins and ends. */
static void tag_write(struct sl_jbuf *b, const struct sl_mirror_tag *t, uint64_t now_us,
                      unsigned which, struct sl_json_tag_cuts *c)
{
    size_t base = b->len;
    bool http = which & SL_JSON_TAG_HTTP;
    bool live = which & SL_JSON_TAG_LIVE;
    if (http || live) {
        sl_jbuf_lit(b, "{\"id\":");
        sl_json_u64(b, t->tag_id);
    }
    if (c)
        c->id_end = cut_at(b, base);
    if (http) {
        sl_jbuf_lit(b, ",\"name\":");
        sl_json_str(b, t->name);
        sl_jbuf_lit(b, ",\"path\":");
        sl_json_str(b, t->path);
    }
    if (c)
        c->value = cut_at(b, base);
    sl_jbuf_lit(b, http || live ? ",\"value\":" : "{\"value\":");
    if (!t->has_value)
        sl_jbuf_lit(b, "null");
    else if (t->type == SL_TYPE_BOOL)
        sl_jbuf_lit(b, t->raw ? "true" : "false");
    else if (t->type == SL_TYPE_FLOAT32)
        put_f32(b, sl_regs_eng(t->raw, t->type, t->scale, t->offset));
    else
        sl_json_num(b, sl_regs_eng(t->raw, t->type, t->scale, t->offset));
    if (http || live) {
        sl_jbuf_lit(b, ",\"raw\":");
        if (t->has_value)
            put_raw(b, t->raw, t->type);
        else
            sl_jbuf_lit(b, "null");
    }
    if (c)
        c->raw_end = cut_at(b, base);
    if (http) {
        sl_jbuf_lit(b, ",\"type\":");
        sl_json_str(b, sl_regs_type_name(t->type));
        sl_jbuf_lit(b, ",\"units\":");
        sl_json_str(b, t->units);
    }
    if (c)
        c->quality = cut_at(b, base);
    sl_jbuf_lit(b, ",\"quality\":");
    sl_json_u64(b, t->quality);
    if (c)
        c->quality_end = cut_at(b, base);
    if (!live) {
        sl_jbuf_lit(b, ",\"quality_name\":");
        sl_json_str(b, sl_quality_name(t->quality));
    }
    if (c)
        c->ts = cut_at(b, base);
    sl_jbuf_lit(b, ",\"ts\":");
    if (t->has_value)
        sl_json_time(b, t->source_time_us);
    else
        sl_jbuf_lit(b, "null");
    sl_jbuf_lit(b, ",\"rx_ts\":");
    if (t->has_value)
        sl_json_time(b, t->rx_time_us);
    else
        sl_jbuf_lit(b, "null");
    if (c) {
        c->len = cut_at(b, base);
        return;
    }
    if (http)
        put_age(b, t, now_us);
    else
        sl_jbuf_put(b, "}", 1);
}

void sl_json_tag(struct sl_jbuf *b, const struct sl_mirror_tag *t, uint64_t now_us,
                 unsigned which)
{
    tag_write(b, t, now_us, which, NULL);
}

void sl_json_tag_shared(struct sl_jbuf *b, const struct sl_mirror_tag *t, struct sl_json_tag_cuts *c)
{
    memset(c, 0, sizeof *c);
    tag_write(b, t, 0, SL_JSON_TAG_HTTP, c);
}

void sl_json_tag_put_shared(struct sl_jbuf *b, const char *text, const struct sl_json_tag_cuts *c,
                            const struct sl_mirror_tag *t, uint64_t now_us, unsigned which)
{
    if (which & SL_JSON_TAG_HTTP) {
        sl_jbuf_put(b, text, c->len);
        put_age(b, t, now_us);
        return;
    }
    /* The live form: {"id":N ,"value":V,"raw":R ,"quality":Q ,"ts":..,"rx_ts":.. } */
    sl_jbuf_put(b, text, c->id_end);
    sl_jbuf_put(b, text + c->value, (size_t)(c->raw_end - c->value));
    sl_jbuf_put(b, text + c->quality, (size_t)(c->quality_end - c->quality));
    sl_jbuf_put(b, text + c->ts, (size_t)(c->len - c->ts));
    sl_jbuf_put(b, "}", 1);
}
