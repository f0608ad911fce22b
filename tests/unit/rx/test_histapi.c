/* sl_histapi: GET /api/history parameters (every 400 case, RFC 3339 forms,
 * durations, defaults), bucket maths and the JSON/CSV encodings (NaN as
 * null or an empty field, bool as true/false, backfill marked). */
#include <math.h>
#include <string.h>

#include "sl_histapi.h"
#include "sl_test.h"
#include "sl_wire.h"

#define T0 1796655600000000ll   /* 2026-12-07T15:00:00Z */

struct args {
    const char *k[8], *v[8];
};

static const char *get(void *ctx, const char *key)
{
    const struct args *a = ctx;
    for (int i = 0; i < 8 && a->k[i]; i++)
        if (strcmp(a->k[i], key) == 0)
            return a->v[i];
    return NULL;
}

static sl_err parse2(struct sl_histapi_req *r, const char *k1, const char *v1, const char *k2, const char *v2,
                     const char **why)
{
    struct args a = { { "tag", k1, k2 }, { "a/b/c/d/x", v1, v2 } };
    return sl_histapi_parse(r, get, &a, T0, why);
}

SL_TEST(histapi, rfc3339_forms)
{
    int64_t us;
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07T15:00:00Z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("1970-01-01T00:00:00Z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, 0);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07t15:00:00.123456z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0 + 123456);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07T15:00:00.5Z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0 + 500000);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07T15:00:00.123456789Z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0 + 123456);   /* truncated to µs */
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07T16:30:00+01:30", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07T16:30:00 01:30", &us), SL_OK);   /* '+' as a space */
    CU_ASSERT_EQUAL(us, T0);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07T10:00:00-05:00", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2026-12-07 15:00:00Z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, T0);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("2024-02-29T00:00:00Z", &us), SL_OK);   /* leap day */
    CU_ASSERT_EQUAL(us, 1709164800000000ll);
    CU_ASSERT_EQUAL(sl_histapi_parse_time("1969-12-31T23:59:59Z", &us), SL_OK);
    CU_ASSERT_EQUAL(us, -1000000);
    const char *badt[] = { "", "2026-12-07", "2026-12-07T15:00:00", "2026-12-07T15:00Z", "2026-13-07T15:00:00Z",
                           "2026-02-29T00:00:00Z", "2026-12-32T00:00:00Z", "2026-12-07T24:00:00Z",
                           "2026-12-07T15:60:00Z", "2026-12-07T15:00:61Z", "2026-12-07T15:00:00.Z",
                           "2026-12-07T15:00:00.1234567890Z", "2026-12-07T15:00:00+1:00", "2026-12-07T15:00:00+01",
                           "2026-12-07T15:00:00Zjunk", "2026-12-07X15:00:00Z", "0000-01-01T00:00:00Z",
                           "2026-1a-07T15:00:00Z", "now", "1796655600" };
    for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++)
        CU_ASSERT_EQUAL(sl_histapi_parse_time(badt[i], &us), SL_ERR_RANGE);
}

SL_TEST(histapi, durations)
{
    int64_t us;
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("500ms", &us), SL_OK);
    CU_ASSERT_EQUAL(us, 500000);
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("10s", &us), SL_OK);
    CU_ASSERT_EQUAL(us, 10000000);
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("5m", &us), SL_OK);
    CU_ASSERT_EQUAL(us, 300000000);
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("1h", &us), SL_OK);
    CU_ASSERT_EQUAL(us, 3600000000ll);
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("1d", &us), SL_OK);
    CU_ASSERT_EQUAL(us, 86400000000ll);
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("1ms", &us), SL_OK);
    CU_ASSERT_EQUAL(sl_histapi_parse_duration("366d", &us), SL_OK);
    const char *badd[] = { "", "0s", "0ms", "s", "10", "1.5s", "-1s", "10 s", "1w", "367d", "1sx",
                           "99999999999999999999999d", "9000h" };
    for (size_t i = 0; i < sizeof badd / sizeof badd[0]; i++)
        CU_ASSERT_EQUAL(sl_histapi_parse_duration(badd[i], &us), SL_ERR_RANGE);
}

SL_TEST(histapi, defaults)
{
    struct sl_histapi_req r;
    const char *why;
    CU_ASSERT_EQUAL(parse2(&r, NULL, NULL, NULL, NULL, &why), SL_OK);
    CU_ASSERT_STRING_EQUAL(r.tag, "a/b/c/d/x");
    CU_ASSERT_EQUAL(r.to_us, T0);
    CU_ASSERT_EQUAL(r.from_us, T0 - 3600000000ll);
    CU_ASSERT_EQUAL(r.limit, SL_HISTAPI_LIMIT_DEFAULT);
    CU_ASSERT_EQUAL(r.step_us, 0);
    CU_ASSERT_FALSE(r.csv);
    /* from alone: to = now; to alone: from = to - 1 h */
    CU_ASSERT_EQUAL(parse2(&r, "from", "2026-12-07T14:00:00Z", NULL, NULL, &why), SL_OK);
    CU_ASSERT_EQUAL(r.from_us, T0 - 3600000000ll);
    CU_ASSERT_EQUAL(r.to_us, T0);
    CU_ASSERT_EQUAL(parse2(&r, "to", "2026-12-07T13:00:00Z", NULL, NULL, &why), SL_OK);
    CU_ASSERT_EQUAL(r.to_us, T0 - 7200000000ll);
    CU_ASSERT_EQUAL(r.from_us, T0 - 10800000000ll);
    /* from in the future alone: the hour after it, not an error */
    CU_ASSERT_EQUAL(parse2(&r, "from", "2026-12-07T16:00:00Z", NULL, NULL, &why), SL_OK);
    CU_ASSERT_EQUAL(r.to_us, T0 + 7200000000ll);
    CU_ASSERT_EQUAL(parse2(&r, "limit", "1000000", "format", "csv", &why), SL_OK);
    CU_ASSERT_EQUAL(r.limit, 1000000u);
    CU_ASSERT_TRUE(r.csv);
    CU_ASSERT_STRING_EQUAL(sl_histapi_type(&r), "text/csv; charset=utf-8");
    CU_ASSERT_EQUAL(parse2(&r, "format", "json", "step", "36ms", &why), SL_OK);   /* exactly 100000 buckets */
    CU_ASSERT_EQUAL(r.step_us, 36000);
    CU_ASSERT_EQUAL(parse2(&r, "unknown", "1", NULL, NULL, &why), SL_OK);
}

SL_TEST(histapi, every_400)
{
    struct sl_histapi_req r;
    const char *why;
    struct args none = { { NULL }, { NULL } };
    CU_ASSERT_EQUAL(sl_histapi_parse(&r, get, &none, T0, &why), SL_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "missing tag"));
    struct args empty = { { "tag" }, { "" } };
    CU_ASSERT_EQUAL(sl_histapi_parse(&r, get, &empty, T0, &why), SL_ERR_RANGE);
    static char longtag[SL_HIST_TAG_MAX + 2];
    memset(longtag, 'a', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = '\0';
    struct args lt = { { "tag" }, { longtag } };
    CU_ASSERT_EQUAL(sl_histapi_parse(&r, get, &lt, T0, &why), SL_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "too long"));
    longtag[SL_HIST_TAG_MAX] = '\0';   /* exactly the maximum */
    CU_ASSERT_EQUAL(sl_histapi_parse(&r, get, &lt, T0, &why), SL_OK);
    struct args ctl = { { "tag" }, { "a/b\nc" } };
    CU_ASSERT_EQUAL(sl_histapi_parse(&r, get, &ctl, T0, &why), SL_ERR_RANGE);
    struct {
        const char *k1, *v1, *k2, *v2, *why;
    } cases[] = {
        { "from", "yesterday", NULL, NULL, "bad from" },
        { "to", "2026-12-07T15:00:00", NULL, NULL, "bad to" },
        { "from", "2026-12-07T15:00:00Z", "to", "2026-12-07T15:00:00Z", "before to" },
        { "from", "2026-12-07T16:00:00Z", "to", "2026-12-07T15:00:00Z", "before to" },
        { "limit", "0", NULL, NULL, "bad limit" },
        { "limit", "1000001", NULL, NULL, "bad limit" },
        { "limit", "99999999999999999999999", NULL, NULL, "bad limit" },
        { "limit", "-5", NULL, NULL, "bad limit" },
        { "limit", "10x", NULL, NULL, "bad limit" },
        { "limit", "", NULL, NULL, "bad limit" },
        { "step", "0s", NULL, NULL, "bad step" },
        { "step", "fast", NULL, NULL, "bad step" },
        { "step", "", NULL, NULL, "bad step" },
        { "step", "35ms", NULL, NULL, "too many buckets" },
        { "step", "1ms", "from", "2026-01-01T00:00:00Z", "too many buckets" },
        { "format", "xml", NULL, NULL, "unknown format" },
        { "format", "", NULL, NULL, "unknown format" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        why = "";
        CU_ASSERT_EQUAL(parse2(&r, cases[i].k1, cases[i].v1, cases[i].k2, cases[i].v2, &why), SL_ERR_RANGE);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].why));
    }
}

static struct sl_histdb_point pt(int64_t ts, double v, uint32_t q, uint8_t type, uint8_t origin)
{
    struct sl_histdb_point p = { .ts_us = ts, .value = v, .quality = q, .type = type, .origin = origin };
    return p;
}

static char out[8192];

/* Runs the encoder over n points into out; returns how many it took. */
static size_t encode(const struct sl_histapi_req *r, const struct sl_histdb_point *p, size_t n, bool more)
{
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, out, sizeof out - 1);
    struct sl_histapi_enc e;
    sl_histapi_enc_init(&e, r);
    sl_histapi_head(&e, &b);
    size_t i = 0;
    while (i < n && sl_histapi_point(&e, &p[i], &b))
        i++;
    sl_histapi_tail(&e, more || i < n, &b);
    CU_ASSERT_FALSE(b.failed);
    out[b.len] = '\0';
    return i;
}

SL_TEST(histapi, json_raw)
{
    struct sl_histapi_req r = { .tag = "plant/\"q\"/x", .from_us = T0, .to_us = T0 + 10000000, .limit = 10 };
    struct sl_histdb_point p[] = { pt(T0 + 123456, 1.5, 0, SL_TYPE_FLOAT32, SL_HIST_LIVE),
                                   pt(T0 + 1000000, NAN, 0x80050000u, SL_TYPE_FLOAT64, SL_HIST_BACKFILL),
                                   pt(T0 + 2000000, 1, 0, SL_TYPE_BOOL, SL_HIST_LIVE),
                                   pt(T0 + 3000000, 0, 0, SL_TYPE_BOOL, SL_HIST_LIVE) };
    CU_ASSERT_EQUAL(encode(&r, p, 4, false), 4);
    CU_ASSERT_STRING_EQUAL(out, "{\"tag\":\"plant/\\\"q\\\"/x\",\"points\":["
                                "\n{\"ts\":\"2026-12-07T15:00:00.123456Z\",\"value\":1.5,\"quality\":0},"
                                "\n{\"ts\":\"2026-12-07T15:00:01.000000Z\",\"value\":null,\"quality\":2147811328,"
                                "\"backfill\":true},"
                                "\n{\"ts\":\"2026-12-07T15:00:02.000000Z\",\"value\":true,\"quality\":0},"
                                "\n{\"ts\":\"2026-12-07T15:00:03.000000Z\",\"value\":false,\"quality\":0}"
                                "\n],\"count\":4,\"truncated\":false}\n");
    /* the limit: two taken, truncated */
    r.limit = 2;
    CU_ASSERT_EQUAL(encode(&r, p, 4, false), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"count\":2,\"truncated\":true}"));
    /* nothing: an empty list */
    CU_ASSERT_EQUAL(encode(&r, p, 0, false), 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"tag\":\"plant/\\\"q\\\"/x\",\"points\":[\n],\"count\":0,\"truncated\":false}\n");
}

SL_TEST(histapi, csv_raw)
{
    struct sl_histapi_req r = { .tag = "a/x", .from_us = T0, .to_us = T0 + 10000000, .limit = 10, .csv = true };
    struct sl_histdb_point p[] = { pt(T0 + 123456, -2.25, 0, SL_TYPE_FLOAT32, SL_HIST_LIVE),
                                   pt(T0 + 1000000, NAN, 0x40900000u, SL_TYPE_FLOAT64, SL_HIST_BACKFILL),
                                   pt(T0 + 2000000, 1, 0, SL_TYPE_BOOL, SL_HIST_LIVE) };
    CU_ASSERT_EQUAL(encode(&r, p, 3, false), 3);
    CU_ASSERT_STRING_EQUAL(out, "ts,value,quality\n"
                                "2026-12-07T15:00:00.123456Z,-2.25,0\n"
                                "2026-12-07T15:00:01.000000Z,,1083179008\n"
                                "2026-12-07T15:00:02.000000Z,true,0\n");
}

SL_TEST(histapi, buckets)
{
    /* step 10 s from T0: buckets [T0, T0+10s), [T0+10s, ..) ...; the empty
     * ones are left out. */
    struct sl_histapi_req r = { .tag = "a/x", .from_us = T0, .to_us = T0 + 60000000, .limit = 10,
                                .step_us = 10000000 };
    struct sl_histdb_point p[] = { pt(T0, 1, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 4000000, 5, 0, SL_TYPE_FLOAT64, SL_HIST_BACKFILL),
                                   pt(T0 + 9999999, 3, 0x40900000u, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 10000000, NAN, 0x80050000u, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 35000000, 7, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 36000000, NAN, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE) };
    CU_ASSERT_EQUAL(encode(&r, p, 6, false), 6);
    CU_ASSERT_STRING_EQUAL(out, "{\"tag\":\"a/x\",\"step_ms\":10000,\"points\":["
                                "\n{\"ts\":\"2026-12-07T15:00:00.000000Z\",\"value\":3,\"quality\":1083179008,"
                                "\"min\":1,\"max\":5,\"avg\":3,\"last\":3,\"count\":3,\"backfill\":true},"
                                "\n{\"ts\":\"2026-12-07T15:00:10.000000Z\",\"value\":null,\"quality\":2147811328,"
                                "\"min\":null,\"max\":null,\"avg\":null,\"last\":null,\"count\":1},"
                                "\n{\"ts\":\"2026-12-07T15:00:30.000000Z\",\"value\":7,\"quality\":0,"
                                "\"min\":7,\"max\":7,\"avg\":7,\"last\":null,\"count\":2}"
                                "\n],\"count\":3,\"truncated\":false}\n");
    r.csv = true;
    CU_ASSERT_EQUAL(encode(&r, p, 6, false), 6);
    CU_ASSERT_STRING_EQUAL(out, "ts,value,quality,min,max,avg,last,count\n"
                                "2026-12-07T15:00:00.000000Z,3,1083179008,1,5,3,3,3\n"
                                "2026-12-07T15:00:10.000000Z,,2147811328,,,,,1\n"
                                "2026-12-07T15:00:30.000000Z,7,0,7,7,7,,2\n");
    /* limit 2 buckets: the encoder refuses the point that would open a third */
    r.csv = false;
    r.limit = 2;
    CU_ASSERT_EQUAL(encode(&r, p, 6, false), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"count\":2,\"truncated\":true}"));
    /* bool buckets: numbers for min/max/avg, last as true/false */
    struct sl_histdb_point bp[] = { pt(T0 + 1, 1, 0, SL_TYPE_BOOL, SL_HIST_LIVE),
                                    pt(T0 + 2, 0, 0, SL_TYPE_BOOL, SL_HIST_LIVE) };
    r.limit = 10;
    encode(&r, bp, 2, false);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"value\":0.5,\"quality\":0,\"min\":0,\"max\":1,\"avg\":0.5,\"last\":false"));
    r.csv = true;
    encode(&r, bp, 2, false);
    CU_ASSERT_STRING_EQUAL(out, "ts,value,quality,min,max,avg,last,count\n"
                                "2026-12-07T15:00:00.000000Z,0.5,0,0,1,0.5,false,2\n");
}

SL_TEST(histapi, bucket_alignment)
{
    /* Buckets start at from (not at an epoch multiple): from = T0 + 3 s,
     * step 5 s: a point at T0 + 7.9 s lies in [T0+3, T0+8), one at T0 + 8 s
     * in the next. A point before from or at to is ignored. */
    struct sl_histapi_req r = { .tag = "a/x", .from_us = T0 + 3000000, .to_us = T0 + 13000000, .limit = 10,
                                .step_us = 5000000, .csv = true };
    struct sl_histdb_point p[] = { pt(T0, 99, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 7900000, 1, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 8000000, 2, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE),
                                   pt(T0 + 13000000, 99, 0, SL_TYPE_FLOAT64, SL_HIST_LIVE) };
    encode(&r, p, 4, false);
    CU_ASSERT_STRING_EQUAL(out, "ts,value,quality,min,max,avg,last,count\n"
                                "2026-12-07T15:00:03.000000Z,1,0,1,1,1,1,1\n"
                                "2026-12-07T15:00:08.000000Z,2,0,2,2,2,2,1\n");
}
