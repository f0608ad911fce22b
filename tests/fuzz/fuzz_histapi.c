/* GET /api/history's parameters as an IT client sends them: the input is
 * a query string ("k=v&k=v", at most 8 pairs, taken verbatim) parsed by
 * sl_histapi_parse; an accepted request must hold its bounds, and the
 * encoder, fed points made from the input's bytes, must keep each point
 * within SL_HISTAPI_POINT_MAX bytes. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sl_histapi.h"
#include "sl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct q {
    char text[4096];
    const char *k[8], *v[8];
    int n;
};

static const char *arg(void *ctx, const char *key)
{
    const struct q *q = ctx;
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->k[i], key) == 0)
            return q->v[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct q q;
    if (size >= sizeof q.text)
        return 0;
    memcpy(q.text, data, size);
    q.text[size] = '\0';
    q.n = 0;
    for (char *p = q.text; p && q.n < 8;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        q.k[q.n] = p;
        q.v[q.n] = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        q.n++;
        p = amp ? amp + 1 : NULL;
    }
    struct sl_histapi_req r;
    const char *why;
    const int64_t now = 1796655600000000ll;
    if (sl_histapi_parse(&r, arg, &q, now, &why) != SL_OK) {
        if (!why || !*why)
            __builtin_trap();   /* every refusal says why */
        return 0;
    }
    if (r.from_us >= r.to_us || r.limit < 1 || r.limit > SL_HISTAPI_LIMIT_MAX || !r.tag[0] ||
        strlen(r.tag) > SL_HIST_TAG_MAX)
        __builtin_trap();
    if (r.step_us && (r.step_us < SL_HISTAPI_STEP_MIN_US ||
                      (uint64_t)(r.to_us - r.from_us - 1) / (uint64_t)r.step_us + 1 > SL_HISTAPI_BUCKETS_MAX))
        __builtin_trap();
    static char buf[64 * 1024];
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, buf, sizeof buf);
    struct sl_histapi_enc e;
    sl_histapi_enc_init(&e, &r);
    sl_histapi_head(&e, &b);
    size_t step = r.step_us ? (size_t)(r.step_us / 3 + 1) : 1000;
    for (size_t i = 0; i < size && i < 64; i++) {
        struct sl_histdb_point p = { .ts_us = r.from_us + (int64_t)(i * step), .quality = data[i] * 0x01010101u,
                                     .type = (uint8_t)(data[i] % 11), .origin = data[i] & 1u };
        uint64_t bits = 0x7ff0000000000001ull * (data[i] % 3 == 0) + (uint64_t)data[i] * 0x0123456789abcdefull;
        memcpy(&p.value, &bits, sizeof p.value);
        size_t before = b.len;
        if (!sl_histapi_point(&e, &p, &b))
            break;
        if (b.len - before > SL_HISTAPI_POINT_MAX)
            __builtin_trap();
    }
    size_t before = b.len;
    sl_histapi_tail(&e, false, &b);
    if (b.failed || b.len - before > 2 * SL_HISTAPI_POINT_MAX)
        __builtin_trap();
    return 0;
}
