/* GET /api/history parameters and encoding (sl_histapi.h). */
#include "sl_histapi.h"

#include <math.h>
#include <string.h>

#include "sl_wire.h"

#define US_PER_S   1000000ll
#define US_PER_DAY (86400ll * US_PER_S)

/* ---- parsing --------------------------------------------------------------- */

/* Exactly n decimal digits at s into *v. */
static bool digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
 * days_from_civil): no timegm, so no time zone and no locale. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

sl_err sl_histapi_parse_time(const char *s, int64_t *us)
{
    int y, mo, d, h, mi, sec;
    size_t n = strlen(s);
    /* YYYY-MM-DDTHH:MM:SS is 19 bytes, then a fraction and the offset. */
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return SL_ERR_RANGE;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return SL_ERR_RANGE;
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        int64_t scale = 100000;
        while (*p >= '0' && *p <= '9') {
            if (++nd > 9)
                return SL_ERR_RANGE;
            frac += (*p - '0') * scale;   /* digits past the 6th: scale 0, truncated */
            scale /= 10;
            p++;
        }
        if (nd == 0)
            return SL_ERR_RANGE;
    }
    int64_t off_s;
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        off_s = 0;
    } else if (p[0] == '+' || p[0] == '-' || p[0] == ' ') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || p[6] != '\0' || oh > 23 ||
            om > 59)
            return SL_ERR_RANGE;
        off_s = (int64_t)oh * 3600 + om * 60;
        if (p[0] == '-')
            off_s = -off_s;
    } else {
        return SL_ERR_RANGE;
    }
    /* A leap second (:60) counts as the next second, as timegm would. */
    int64_t t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + sec - off_s;
    *us = t * US_PER_S + frac;
    return SL_OK;
}

sl_err sl_histapi_parse_duration(const char *s, int64_t *us)
{
    int64_t v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        if (v > SL_HISTAPI_STEP_MAX_US / 1000)   /* already beyond any unit's bound */
            return SL_ERR_RANGE;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p == s)
        return SL_ERR_RANGE;
    int64_t unit;
    if (strcmp(p, "ms") == 0)
        unit = 1000;
    else if (strcmp(p, "s") == 0)
        unit = US_PER_S;
    else if (strcmp(p, "m") == 0)
        unit = 60 * US_PER_S;
    else if (strcmp(p, "h") == 0)
        unit = 3600 * US_PER_S;
    else if (strcmp(p, "d") == 0)
        unit = US_PER_DAY;
    else
        return SL_ERR_RANGE;
    if (v > SL_HISTAPI_STEP_MAX_US / unit)
        return SL_ERR_RANGE;
    v *= unit;
    if (v < SL_HISTAPI_STEP_MIN_US)
        return SL_ERR_RANGE;
    *us = v;
    return SL_OK;
}

static sl_err bad(const char **why, const char *msg)
{
    *why = msg;
    return SL_ERR_RANGE;
}

sl_err sl_histapi_parse(struct sl_histapi_req *r, sl_histapi_arg_fn arg, void *ctx, int64_t now_us,
                        const char **why)
{
    memset(r, 0, sizeof *r);
    *why = "";
    const char *tag = arg(ctx, "tag");
    if (!tag || !*tag)
        return bad(why, "missing tag (tag=PATH/NAME)");
    size_t tl = strlen(tag);
    if (tl > SL_HIST_TAG_MAX)
        return bad(why, "tag too long");
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)tag[i] < 0x20 || tag[i] == 0x7f)
            return bad(why, "tag holds a control character");
    memcpy(r->tag, tag, tl + 1);

    const char *from = arg(ctx, "from"), *to = arg(ctx, "to");
    bool have_from = from && *from, have_to = to && *to;
    if (have_from && sl_histapi_parse_time(from, &r->from_us) != SL_OK)
        return bad(why, "bad from: RFC 3339 expected, e.g. 2026-12-07T15:00:00Z");
    if (have_to && sl_histapi_parse_time(to, &r->to_us) != SL_OK)
        return bad(why, "bad to: RFC 3339 expected, e.g. 2026-12-07T16:00:00.5+01:00");
    if (!have_to)
        r->to_us = have_from && r->from_us >= now_us ? r->from_us + SL_HISTAPI_RANGE_US : now_us;
    if (!have_from)
        r->from_us = r->to_us - SL_HISTAPI_RANGE_US;
    if (r->from_us >= r->to_us)
        return bad(why, "from must be before to");

    r->limit = SL_HISTAPI_LIMIT_DEFAULT;
    const char *lim = arg(ctx, "limit");
    if (lim) {
        uint64_t v = 0;
        const char *p = lim;
        for (; *p >= '0' && *p <= '9'; p++) {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v > SL_HISTAPI_LIMIT_MAX)
                return bad(why, "bad limit: 1..1000000");
        }
        if (p == lim || *p || v == 0)
            return bad(why, "bad limit: 1..1000000");
        r->limit = (size_t)v;
    }

    const char *step = arg(ctx, "step");
    if (step) {
        if (sl_histapi_parse_duration(step, &r->step_us) != SL_OK)
            return bad(why, "bad step: a whole number and ms, s, m, h or d (1ms..366d)");
        /* The span may overflow only beyond any sane range: the parsed
         * times lie within years 1..9999 (under 2^58 µs). */
        uint64_t span = (uint64_t)(r->to_us - r->from_us);
        if ((span - 1) / (uint64_t)r->step_us + 1 > SL_HISTAPI_BUCKETS_MAX)
            return bad(why, "too many buckets: (to - from) / step must not exceed 100000");
    }

    const char *fmt = arg(ctx, "format");
    if (fmt && strcmp(fmt, "csv") == 0)
        r->csv = true;
    else if (fmt && strcmp(fmt, "json") != 0)
        return bad(why, "unknown format: json or csv");
    return SL_OK;
}

const char *sl_histapi_type(const struct sl_histapi_req *r)
{
    return r->csv ? "text/csv; charset=utf-8" : "application/json";
}

/* ---- encoding -------------------------------------------------------------- */

void sl_histapi_enc_init(struct sl_histapi_enc *e, const struct sl_histapi_req *r)
{
    memset(e, 0, sizeof *e);
    e->req = r;
}

void sl_histapi_head(struct sl_histapi_enc *e, struct sl_jbuf *b)
{
    if (e->req->csv) {
        sl_jbuf_lit(b, e->req->step_us ? "ts,value,quality,min,max,avg,last,count\n" : "ts,value,quality\n");
        return;
    }
    sl_jbuf_lit(b, "{\"tag\":");
    sl_json_str(b, e->req->tag);
    if (e->req->step_us) {
        sl_jbuf_lit(b, ",\"step_ms\":");
        sl_json_num(b, (double)e->req->step_us / 1000.0);
    }
    sl_jbuf_lit(b, ",\"points\":[");
}

/* A CSV time: the JSON form without its quotes. */
static void csv_time(struct sl_jbuf *b, int64_t us)
{
    size_t at = b->len;
    sl_json_time(b, (uint64_t)us);
    if (b->failed || b->len < at + 2 || b->p[at] != '"')
        return;
    memmove(b->p + at, b->p + at + 1, b->len - at - 2);
    b->len -= 2;
}

/* A number, or in CSV an empty field for NaN (JSON: null). */
static void num(struct sl_jbuf *b, double v, bool csv)
{
    if (csv && !isfinite(v))
        return;
    sl_json_num(b, v);
}

/* One raw point: the stored engineering value; bool as true/false. */
static void put_raw_point(struct sl_histapi_enc *e, const struct sl_histdb_point *p, struct sl_jbuf *b)
{
    bool csv = e->req->csv;
    if (!csv)
        sl_jbuf_lit(b, e->count ? ",\n{\"ts\":" : "\n{\"ts\":");
    if (csv)
        csv_time(b, p->ts_us);
    else
        sl_json_time(b, (uint64_t)p->ts_us);
    sl_jbuf_lit(b, csv ? "," : ",\"value\":");
    if (p->type == SL_TYPE_BOOL && !isnan(p->value))
        sl_jbuf_lit(b, p->value != 0 ? "true" : "false");
    else
        num(b, p->value, csv);
    sl_jbuf_lit(b, csv ? "," : ",\"quality\":");
    sl_json_u64(b, p->quality);
    if (csv) {
        sl_jbuf_lit(b, "\n");
        return;
    }
    if (p->origin == SL_HIST_BACKFILL)
        sl_jbuf_lit(b, ",\"backfill\":true");
    sl_jbuf_lit(b, "}");
}

/* The open bucket as one point: value = avg of its numbers (null when it
 * holds none), quality = its last point's. */
static void put_bucket(struct sl_histapi_enc *e, struct sl_jbuf *b)
{
    bool csv = e->req->csv;
    double avg = e->b_nums ? e->b_sum / (double)e->b_nums : NAN;
    double mn = e->b_nums ? e->b_min : NAN, mx = e->b_nums ? e->b_max : NAN;
    if (csv) {
        csv_time(b, e->b_start);
        sl_jbuf_lit(b, ",");
        num(b, avg, true);
        sl_jbuf_printf(b, ",%u,", (unsigned)e->b_quality);
        num(b, mn, true);
        sl_jbuf_lit(b, ",");
        num(b, mx, true);
        sl_jbuf_lit(b, ",");
        num(b, avg, true);
        sl_jbuf_lit(b, ",");
        if (e->b_type == SL_TYPE_BOOL && !isnan(e->b_last))
            sl_jbuf_lit(b, e->b_last != 0 ? "true" : "false");
        else
            num(b, e->b_last, true);
        sl_jbuf_printf(b, ",%llu\n", (unsigned long long)e->b_n);
    } else {
        sl_jbuf_lit(b, e->count ? ",\n{\"ts\":" : "\n{\"ts\":");
        sl_json_time(b, (uint64_t)e->b_start);
        sl_jbuf_lit(b, ",\"value\":");
        sl_json_num(b, avg);
        sl_jbuf_lit(b, ",\"quality\":");
        sl_json_u64(b, e->b_quality);
        sl_jbuf_lit(b, ",\"min\":");
        sl_json_num(b, mn);
        sl_jbuf_lit(b, ",\"max\":");
        sl_json_num(b, mx);
        sl_jbuf_lit(b, ",\"avg\":");
        sl_json_num(b, avg);
        sl_jbuf_lit(b, ",\"last\":");
        if (e->b_type == SL_TYPE_BOOL && !isnan(e->b_last))
            sl_jbuf_lit(b, e->b_last != 0 ? "true" : "false");
        else
            sl_json_num(b, e->b_last);
        sl_jbuf_lit(b, ",\"count\":");
        sl_json_u64(b, e->b_n);
        if (e->b_backfill)
            sl_jbuf_lit(b, ",\"backfill\":true");
        sl_jbuf_lit(b, "}");
    }
    e->count++;
    e->open = false;
    if (e->count >= e->req->limit)
        e->full = true;
}

bool sl_histapi_point(struct sl_histapi_enc *e, const struct sl_histdb_point *p, struct sl_jbuf *b)
{
    if (e->full)
        return false;
    const struct sl_histapi_req *r = e->req;
    if (!r->step_us) {
        put_raw_point(e, p, b);
        e->count++;
        e->full = e->count >= r->limit;
        return true;
    }
    if (p->ts_us < r->from_us || p->ts_us >= r->to_us)
        return true;   /* a backend keeps to [from, to); belt and braces */
    int64_t start = r->from_us + (p->ts_us - r->from_us) / r->step_us * r->step_us;
    if (e->open && start != e->b_start) {
        put_bucket(e, b);
        if (e->full)
            return false;
    }
    if (!e->open) {
        e->open = true;
        e->b_start = start;
        e->b_n = e->b_nums = 0;
        e->b_sum = 0;
        e->b_backfill = false;
    }
    e->b_n++;
    e->b_last = p->value;
    e->b_quality = p->quality;
    e->b_type = p->type;
    e->b_backfill |= p->origin == SL_HIST_BACKFILL;
    if (!isnan(p->value)) {
        if (!e->b_nums || p->value < e->b_min)
            e->b_min = p->value;
        if (!e->b_nums || p->value > e->b_max)
            e->b_max = p->value;
        e->b_sum += p->value;
        e->b_nums++;
    }
    return true;
}

void sl_histapi_tail(struct sl_histapi_enc *e, bool more, struct sl_jbuf *b)
{
    if (e->open && !e->full)
        put_bucket(e, b);
    if (e->req->csv)
        return;
    sl_jbuf_printf(b, "\n],\"count\":%llu,\"truncated\":%s}\n", (unsigned long long)e->count,
                   more ? "true" : "false");
}
