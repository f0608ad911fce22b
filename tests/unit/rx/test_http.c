/* The HTTP services over 127.0.0.1 with a plain socket client, all driven
 * from this one thread (the server runs only inside sl_http_run, as in the
 * daemon): JSON validity and escaping, one tag and one path, 404/405/401,
 * bearer token, Prometheus lines, SSE events after sl_http_notify with
 * coalescing, 10,000 tags, the dashboard. Also the JSON writer itself. */
#define _GNU_SOURCE   /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rx_fixture.h"
#include "sl_http.h"
#include "sl_json.h"

/* ---- a tiny JSON validator (RFC 8259 grammar) ----------------------------- */

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *j_value(const char *p, int depth);

static const char *j_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == 0 || c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 5;
                continue;
            }
            if (!*p || !strchr("\"\\/bfnrt", *p))
                return NULL;
        }
        p++;
    }
    return p + 1;
}

static const char *j_number(const char *p)
{
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > s ? p : NULL;
}

static const char *j_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    p = ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = j_string(ws(p));
                if (!p)
                    return NULL;
                p = ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            p = j_value(p, depth + 1);
            if (!p)
                return NULL;
            p = ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '"')
        return j_string(p);
    if (!strncmp(p, "true", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    if (!strncmp(p, "null", 4))
        return p + 4;
    return j_number(p);
}

static bool json_valid(const char *s)
{
    const char *e = j_value(s, 0);
    return e && *ws(e) == '\0';
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- server and client ---------------------------------------------------- */

static struct sl_http_status g_status;

static void fill_status(void *ctx, struct sl_http_status *s)
{
    (void)ctx;
    *s = g_status;
}

static struct sl_http *start(const struct sl_mirror *m, const char *token, unsigned max_sse,
                             uint32_t max_tags)
{
    struct sl_http_config cfg = { .listen = "127.0.0.1:0", .token = token, .max_conns = 16,
                                  .timeout_s = 5, .max_sse = max_sse, .max_tags = max_tags };
    struct sl_http *h = NULL;
    CU_ASSERT_FATAL(sl_http_open(&h, &cfg, m, fill_status, NULL) == SL_OK);
    CU_ASSERT_FATAL(sl_http_port(h) != 0);
    CU_ASSERT_FATAL(sl_http_fd(h) >= 0);
    return h;
}

/* What the daemon's loop does: wait on the fd (briefly), then run. */
static void pump(struct sl_http *h)
{
    int t = sl_http_timeout_ms(h);
    struct pollfd p = { .fd = sl_http_fd(h), .events = POLLIN };
    CU_ASSERT(poll(&p, 1, t < 2 ? t : 2) >= 0);
    CU_ASSERT(sl_http_run(h) == SL_OK);
}

static int client(struct sl_http *h)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(sl_http_port(h)) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

struct resp {
    int status;
    char *text;        /* whole response, NUL-terminated */
    size_t len;
    const char *body;
};

static void resp_free(struct resp *r)
{
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* Appends what the socket has; returns false on EOF. */
static bool drain(int fd, struct resp *r, size_t *cap)
{
    for (;;) {
        if (*cap - r->len < 65536) {
            *cap = *cap * 2 + 65536;
            r->text = realloc(r->text, *cap);
            CU_ASSERT_FATAL(r->text != NULL);
            r->text[r->len] = '\0';   /* a fresh buffer holds no stale text for strstr */
        }
        ssize_t n = recv(fd, r->text + r->len, *cap - r->len - 1, MSG_DONTWAIT);
        if (n == 0)
            return false;
        if (n < 0)
            return true;
        r->len += (size_t)n;
        r->text[r->len] = '\0';
    }
}

/* Sends a raw request and reads until the server closes (HTTP/1.0). */
static struct resp request_raw(struct sl_http *h, const char *req)
{
    struct resp r = { 0 };
    size_t cap = 0;
    int fd = client(h);
    CU_ASSERT_FATAL(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    for (int round = 0; round < 5000; round++) {
        if (!drain(fd, &r, &cap))
            break;
        pump(h);
    }
    close(fd);
    CU_ASSERT_FATAL(r.text != NULL);
    sscanf(r.text, "HTTP/1.%*d %d", &r.status);
    char *sep = strstr(r.text, "\r\n\r\n");
    r.body = sep ? sep + 4 : "";
    return r;
}

static struct resp get(struct sl_http *h, const char *method, const char *path,
                       const char *extra)
{
    char req[1024];
    snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: localhost\r\n%s\r\n", method, path,
             extra ? extra : "");
    return request_raw(h, req);
}

static bool has_header(const struct resp *r, const char *line)
{
    size_t hl = (size_t)(r->body - r->text);
    char *hdrs = strndup(r->text, hl);
    bool ok = strcasestr(hdrs, line) != NULL;
    free(hdrs);
    return ok;
}

static void hook(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    sl_http_notify(ctx, ev, pos);
}

/* A mirror whose tag 1 has a name and path with every character that
 * needs care in JSON and HTML (controls cannot cross the wire at all). */
static struct sl_mirror *nasty_mirror(void)
{
    struct sl_mirror_config cfg = { .max_tags = 8, .stale_ms = 1000 };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    struct sl_schema_tag d[2];
    d[0] = fx_tag(0, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_ABCD, 1, 0);
    d[0].scale = 0.5;
    d[0].offset = 10;
    d[1] = fx_tag(1, SL_TYPE_BOOL, SL_REG_COIL, SL_WORD_ABCD, 1, 0);
    /* No '/' in a name: RX refuses it at schema apply (an MQTT topic level). */
    snprintf(d[1].name, sizeof d[1].name, "q\"uo\\te<script>&\xc3\xa9\xe2\x82\xac");
    snprintf(d[1].path, sizeof d[1].path, "acme/plant 1/\xc3\xa1rea/line1");
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 9, 0, 1, 2, d, 2) == SL_OK);
    struct sl_value v[2] = { fx_val(0, SL_TYPE_FLOAT32, 0x42280000u /* 42.0f */, SL_Q_GOOD, 1000),
                             fx_val(1, SL_TYPE_BOOL, 1, SL_Q_GOOD, 2000000) };
    CU_ASSERT(sl_mirror_apply(m, v, 2, 3000000) == SL_OK);
    return m;
}

/* ---- the JSON writer ------------------------------------------------------ */

SL_TEST(json, escaping)
{
    char mem[256];
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, mem, sizeof mem);
    const char s[] = "a\"b\\c\n\x01\x7f</\xc3\xa9\xe2\x80\xa8\xff!";
    sl_json_strn(&b, s, sizeof s - 1);
    CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b),
                           "\"a\\\"b\\\\c\\n\\u0001\\u007f\\u003c/\xc3\xa9\\u2028\\ufffd!\"");
    CU_ASSERT(json_valid(sl_jbuf_cstr(&b)));
    /* Truncated and overlong sequences are replaced, never passed on. */
    sl_jbuf_reset(&b);
    sl_json_str(&b, "\xe2\x82");
    CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b), "\"\\ufffd\\ufffd\"");
    sl_jbuf_reset(&b);
    sl_json_str(&b, "\xc0\xaf");
    CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b), "\"\\ufffd\\ufffd\"");
}

SL_TEST(json, numbers_and_times)
{
    char mem[128];
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, mem, sizeof mem);
    sl_json_num(&b, 0.1);
    sl_jbuf_lit(&b, " ");
    sl_json_num(&b, 123456.0);
    sl_jbuf_lit(&b, " ");
    sl_json_num(&b, 0.0 / 0.0);
    sl_jbuf_lit(&b, " ");
    sl_json_num(&b, 1.0 / 3.0);
    sl_jbuf_lit(&b, " ");
    sl_json_i64(&b, INT64_MIN);
    CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b),
                           "0.1 123456 null 0.3333333333333333 -9223372036854775808");
    sl_jbuf_reset(&b);
    sl_json_time(&b, 1000);
    sl_json_time(&b, 1700000000123456ull);
    CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b),
                           "\"1970-01-01T00:00:00.001000Z\"\"2023-11-14T22:13:20.123456Z\"");
}

/* The shared encoding rebuilds sl_json_tag's output byte for byte, in
 * the HTTP and the live form, for every type, without a value, Good and
 * stale, and with names that need escaping. */
SL_TEST(json, shared_tag_matches_direct)
{
    struct sl_mirror *m = fx_mirror(3);
    char a[SL_JSON_TAG_MAX], d[SL_JSON_TAG_MAX], shared[SL_JSON_TAG_MAX];
    struct sl_jbuf ab, db, sb;
    const uint64_t now = 1700000000123456ull;
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            fx_fill(m, now - 2500000);
        if (round == 2)
            sl_mirror_tick(m, 100000, 0);
        for (uint32_t pos = 0; pos < FX_TAGS; pos++) {
            struct sl_mirror_tag t;
            CU_ASSERT_FATAL(sl_mirror_get(m, pos, &t) == SL_OK);
            if (pos == 3)
                t.units = "<b>\"\xe2\x80\xa8u\"";
            sl_jbuf_fixed(&sb, shared, sizeof shared);
            struct sl_json_tag_cuts c;
            sl_json_tag_shared(&sb, &t, &c);
            CU_ASSERT_FATAL(!sb.failed);
            CU_ASSERT_EQUAL(c.len, sb.len);
            const unsigned forms[2] = { SL_JSON_TAG_HTTP, SL_JSON_TAG_LIVE };
            for (int f = 0; f < 2; f++) {
                sl_jbuf_fixed(&ab, a, sizeof a);
                sl_jbuf_fixed(&db, d, sizeof d);
                sl_json_tag_put_shared(&ab, shared, &c, &t, now, forms[f]);
                sl_json_tag(&db, &t, now, forms[f]);
                CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&ab), sl_jbuf_cstr(&db));
            }
        }
    }
    sl_mirror_destroy(m);
}

/* The number and time writers print integers and times without printf:
 * byte for byte what printf prints, across the edges (sign, -0, 1e15 and
 * 1e16, 2^53 and above, a second's turn, a five-digit year). */
SL_TEST(json, fast_numbers_match_printf)
{
    static const double nums[] = {
        0.0, -0.0, 1.0, -1.0, 7.0, 123456789.0, 999999999999999.0, 1e15, -1e15, 1e15 + 1.0,
        1765100000123456.0, 1765100000000000.0, 1765100000000010.0, 9007199254740992.0,
        9007199254740994.0, 9999999999999998.0, 1e16, -1e16, 1e17, 0.5, -2.5, 1e300, 4294967295.0,
        -9223372036854775808.0,
    };
    char mem[128], want[96];
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, mem, sizeof mem);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(want, sizeof want, "%.*g", prec, nums[i]);
            if (prec == 17 || strtod(want, NULL) == nums[i])
                break;
        }
        sl_jbuf_reset(&b);
        sl_json_num(&b, nums[i]);
        CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b), want);
    }
    static const int64_t ints[] = { 0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, 1234567890123 };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(want, sizeof want, "%" PRId64 " %" PRIu64, ints[i], (uint64_t)ints[i]);
        sl_jbuf_reset(&b);
        sl_json_i64(&b, ints[i]);
        sl_jbuf_lit(&b, " ");
        sl_json_u64(&b, (uint64_t)ints[i]);
        CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b), want);
    }
    static const uint64_t times[] = { 0, 999999, 1000000, 1700000000999999ull, 1700000001000000ull,
                                      1700000000000001ull, 1700000000999999ull, 253402300800000000ull };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        time_t t = (time_t)(times[i] / 1000000u);
        struct tm tm;
        CU_ASSERT_FATAL(gmtime_r(&t, &tm) != NULL);
        snprintf(want, sizeof want, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06uZ\"", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)(times[i] % 1000000u));
        sl_jbuf_reset(&b);
        sl_json_time(&b, times[i]);
        CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b), want);
    }
}

SL_TEST(json, fixed_buffer_fails_cleanly)
{
    char mem[8];
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, mem, sizeof mem);
    sl_jbuf_lit(&b, "0123456789");
    CU_ASSERT(b.failed);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_STRING_EQUAL(sl_jbuf_cstr(&b), "");
}

SL_TEST(json, quality_names)
{
    CU_ASSERT_STRING_EQUAL(sl_quality_name(SL_Q_GOOD), "Good");
    CU_ASSERT_STRING_EQUAL(sl_quality_name(SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE),
                           "UncertainNoCommunicationLastUsableValue");
    CU_ASSERT_STRING_EQUAL(sl_quality_name(SL_Q_BAD_WAITING_INITIAL), "BadWaitingForInitialData");
    CU_ASSERT_STRING_EQUAL(sl_quality_name(0x80340000u), "Bad");
    CU_ASSERT_STRING_EQUAL(sl_quality_name(0x40000000u), "Uncertain");
}

/* ---- endpoints ------------------------------------------------------------ */

SL_TEST(http, tags_json_and_escaping)
{
    struct sl_mirror *m = nasty_mirror();
    struct sl_http *h = start(m, NULL, 2, 8);
    struct resp r = get(h, "GET", "/api/tags", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(has_header(&r, "Content-Type: application/json"));
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strstr(r.body, "\"count\":2}") != NULL);
    CU_ASSERT(strstr(r.body, "\"schema_id\":9") != NULL);
    /* 42.0 * 0.5 + 10 = 31 (engineering), raw 42 (typed, unscaled). */
    CU_ASSERT(strstr(r.body, "{\"id\":0,\"name\":\"tag0\",\"path\":\"acme/plant1/area1/line1\","
                             "\"value\":31,\"raw\":42,\"type\":\"float32\",\"units\":\"degC\","
                             "\"quality\":0,\"quality_name\":\"Good\","
                             "\"ts\":\"1970-01-01T00:00:00.001000Z\","
                             "\"rx_ts\":\"1970-01-01T00:00:03.000000Z\",\"age_ms\":") != NULL);
    CU_ASSERT(strstr(r.body, "\"name\":\"q\\\"uo\\\\te\\u003cscript\\u003e\\u0026\xc3\xa9\xe2\x82\xac\","
                             "\"path\":\"acme/plant 1/\xc3\xa1rea/line1\",\"value\":true,\"raw\":1,"
                             "\"type\":\"bool\"") != NULL);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

SL_TEST(http, one_tag_one_path_and_404)
{
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    struct sl_http *h = start(m, NULL, 2, 64);
    struct resp r = get(h, "GET", "/api/tags/acme/plant1/area1/line1/tag5", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strncmp(r.body, "{\"id\":5,\"name\":\"tag5\",", 22) == 0);
    CU_ASSERT(strstr(r.body, "\"value\":48879,\"raw\":48879,\"type\":\"uint16\"") != NULL);
    resp_free(&r);
    /* Percent-encoding is decoded before matching. */
    r = get(h, "GET", "/api/tags/acme/plant1/area1/line1/tag%35", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strstr(r.body, "\"id\":5,") != NULL);
    resp_free(&r);
    /* A path lists the tags at and under it. */
    r = get(h, "GET", "/api/tags/acme/plant1/area7/line1", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strstr(r.body, "\"count\":1}") != NULL);
    CU_ASSERT(strstr(r.body, "\"name\":\"tag15\"") != NULL);
    resp_free(&r);
    r = get(h, "GET", "/api/tags/acme/plant1", NULL);
    CU_ASSERT(strstr(r.body, "\"count\":16}") != NULL);
    resp_free(&r);
    /* A path prefix that is not a whole segment is not a path. */
    r = get(h, "GET", "/api/tags/acme/plant", NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    r = get(h, "GET", "/api/tags/acme/plant1/area1/line1/nope", NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT(has_header(&r, "Content-Type: application/json"));
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strstr(r.body, "\"status\":404") != NULL);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

SL_TEST(http, methods_and_unknown_paths)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http *h = start(m, NULL, 2, 64);
    static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        struct resp r = get(h, methods[i], "/api/tags", "Content-Length: 0\r\n");
        CU_ASSERT_EQUAL(r.status, 405);
        CU_ASSERT(has_header(&r, "Allow: GET, HEAD"));
        CU_ASSERT(json_valid(r.body));
        resp_free(&r);
    }
    struct resp r = get(h, "POST", "/metrics", "Content-Length: 5\r\n\r\nhello");
    CU_ASSERT_EQUAL(r.status, 405);
    resp_free(&r);
    r = get(h, "GET", "/etc/passwd", NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":\"not found\",\"status\":404}\n");
    resp_free(&r);
    r = get(h, "HEAD", "/api/tags", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "");
    resp_free(&r);
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.not_allowed, 6);
    CU_ASSERT_EQUAL(st.not_found, 1);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

SL_TEST(http, bearer_token)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http *h = start(m, "s3cret-t0ken", 2, 64);
    struct resp r = get(h, "GET", "/api/status", NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    CU_ASSERT(has_header(&r, "WWW-Authenticate: Bearer"));
    CU_ASSERT(json_valid(r.body));
    resp_free(&r);
    static const char *const wrong[] = { "Authorization: Bearer s3cret-t0ke\r\n",
                                         "Authorization: Bearer s3cret-t0ken2\r\n",
                                         "Authorization: Basic s3cret-t0ken\r\n",
                                         "Authorization: Bearer \r\n" };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        r = get(h, "GET", "/api/tags", wrong[i]);
        CU_ASSERT_EQUAL(r.status, 401);
        resp_free(&r);
    }
    r = get(h, "GET", "/api/tags", "Authorization: Bearer s3cret-t0ken\r\n");
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    r = get(h, "GET", "/", "Authorization: bearer s3cret-t0ken\r\n");
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* Never in the query string (URLs land in logs and history): refused
     * even when right, on every path. */
    static const char *const query[] = { "/metrics?access_token=s3cret-t0ken",
                                         "/api/stream?access_token=s3cret-t0ken",
                                         "/api/tags?token=s3cret-t0ken" };
    for (size_t i = 0; i < sizeof query / sizeof *query; i++) {
        r = get(h, "GET", query[i], NULL);
        CU_ASSERT_EQUAL(r.status, 401);
        resp_free(&r);
    }
    sl_http_close(h);
    sl_mirror_destroy(m);
}

static void demo_status(void)
{
    memset(&g_status, 0, sizeof g_status);
    g_status.have_beacon = true;
    g_status.beacon.session = 0x0123456789abcdefull;
    g_status.beacon.epoch = 42;
    g_status.beacon.frames_sent = 1000;
    g_status.beacon.config_fp[0] = 0xAB;
    g_status.last_beacon_us = 1700000000000000ull;
    g_status.clock_offset_us = -1500;
    g_status.frame_loss = 0.25;
    g_status.rx.frames = 100;
    g_status.rx.blocks = 10;
    g_status.rx.blocks_recovered = 4;
    g_status.rx.beacons = 7;
    g_status.rx.fec.unrecoverable = 2;
    g_status.rx.drops[SL_RX_FRAME][SL_ERR_CRC] = 3;
    g_status.rx.drops[SL_RX_BLOCK][SL_ERR_SIGNATURE] = 1;
    g_status.modbus_refused_writes = 2;
}

SL_TEST(http, metrics_prometheus)
{
    static const struct sl_http_counter extra[] = {
        { "sluice_store_checkpoints_total", "SQLite checkpoints", 5, false },
    };
    demo_status();
    g_status.counters = extra;
    g_status.ncounters = 1;
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    sl_mirror_tick(m, 100, 0);
    struct sl_http *h = start(m, NULL, 2, 64);
    struct resp r = get(h, "GET", "/metrics", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
    static const char *const want[] = {
        "\nsluice_link_up 1\n",
        "\nsluice_rx_frames_total 100\n",
        "\nsluice_rx_blocks_total 10\n",
        "\nsluice_rx_blocks_recovered_total 4\n",
        "\nsluice_rx_blocks_unrecoverable_total 2\n",
        "\nsluice_rx_beacons_total 7\n",
        "\nsluice_rx_drops_total{stage=\"frame\",reason=\"crc\"} 3\n",
        "\nsluice_rx_drops_total{stage=\"block\",reason=\"signature\"} 1\n",
        "\nsluice_mirror_tags{quality=\"Good\"} 16\n",
        "\nsluice_mirror_tags{quality=\"BadNoCommunication\"} 0\n",
        "\nsluice_mirror_schema_tags 16\n",
        "\nsluice_mirror_unit_tags{unit=\"1\",quality=\"good\"} 15\n",
        "\nsluice_mirror_unit_tags{unit=\"1\",quality=\"bad\"} 0\n",
        "\nsluice_mirror_unit_tags{unit=\"7\",quality=\"good\"} 1\n",
        "\n# TYPE sluice_build_info gauge\nsluice_build_info{version=\"",
        "\",side=\"rx\"} 1\n",
        "\nsluice_modbus_refused_writes_total 2\n",
        "\nsluice_tx_epoch 42\n",
        "\nsluice_clock_offset_seconds -0.0015\n",
        "\nsluice_rx_frame_loss_ratio 0.25\n",
        "\nsluice_tx_info{session=\"0123456789abcdef\",key_id=\"",
        "\n# TYPE sluice_rx_drops_total counter\n",
        "\n# TYPE sluice_store_checkpoints_total counter\nsluice_store_checkpoints_total 5\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        bool found = strstr(r.body, want[i]) != NULL;
        if (!found)
            fprintf(stderr, "missing metric line: %s", want[i]);
        CU_ASSERT(found);
    }
    /* Every line is a comment or `name[{labels}] value`. */
    char *copy = strdup(r.body), *save = NULL;
    size_t lines = 0;
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        lines++;
        if (ln[0] == '#') {
            CU_ASSERT(!strncmp(ln, "# HELP sluice_", 14) || !strncmp(ln, "# TYPE sluice_", 14));
            continue;
        }
        size_t name = strspn(ln, "abcdefghijklmnopqrstuvwxyz_0123456789:");
        CU_ASSERT(name > 0);
        char *rest = ln + name;
        if (*rest == '{') {
            rest = strchr(rest, '}');
            CU_ASSERT_FATAL(rest != NULL);
            rest++;
        }
        CU_ASSERT(*rest == ' ');
        char *end = NULL;
        strtod(rest + 1, &end);
        CU_ASSERT(end && end != rest + 1 && *end == '\0');
    }
    CU_ASSERT(lines > 40);
    free(copy);
    resp_free(&r);
    g_status.counters = NULL;
    g_status.ncounters = 0;
    sl_http_close(h);
    sl_mirror_destroy(m);
}

SL_TEST(http, status_json)
{
    demo_status();
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    sl_mirror_tick(m, 5000, 0);              /* stale */
    struct sl_http *h = start(m, NULL, 2, 64);
    struct resp r = get(h, "GET", "/api/status", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strstr(r.body, "\"link\":{\"up\":false,\"last_beacon\":\"2023-11-14T22:13:20.000000Z\"") != NULL);
    CU_ASSERT(strstr(r.body, "\"clock_offset_ms\":-1.5,\"frame_loss\":0.25}") != NULL);
    CU_ASSERT(strstr(r.body, "\"tx\":{\"session\":\"0123456789abcdef\",\"epoch\":42,") != NULL);
    CU_ASSERT(strstr(r.body, "\"config_fp\":\"ab00") != NULL);
    CU_ASSERT(strstr(r.body, "\"drops\":{\"frame\":{\"crc\":3},\"block\":{\"signature\":1}}") != NULL);
    CU_ASSERT(strstr(r.body, "\"UncertainNoCommunicationLastUsableValue\":16") != NULL);
    CU_ASSERT(strstr(r.body, "\"modbus\":{\"refused_writes\":2}") != NULL);
    resp_free(&r);
    sl_http_close(h);
    /* Without a status callback: mirror figures only, tx null. */
    struct sl_http_config cfg = { .listen = "127.0.0.1:0", .max_tags = 64 };
    CU_ASSERT_FATAL(sl_http_open(&h, &cfg, m, NULL, NULL) == SL_OK);
    r = get(h, "GET", "/api/status", NULL);
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strstr(r.body, "\"tx\":null") != NULL);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* Reads the stream into *acc until `want` appears (pumping the server). */
static bool stream_until(struct sl_http *h, int fd, struct resp *acc, size_t *cap,
                         const char *want)
{
    for (int round = 0; round < 1000; round++) {
        if (acc->text && strstr(acc->text, want))
            return true;
        if (!drain(fd, acc, cap))
            return acc->text && strstr(acc->text, want);
        pump(h);
    }
    return false;
}

SL_TEST(http, sse_events_coalesce)
{
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    sl_mirror_tick(m, 100, 0);
    struct sl_http *h = start(m, NULL, 1, 64);
    sl_mirror_set_hook(m, hook, h);
    int fd = client(h);
    const char req[] = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    CU_ASSERT_FATAL(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1));
    struct resp acc = { 0 };
    size_t cap = 0;
    CU_ASSERT_FATAL(stream_until(h, fd, &acc, &cap,
                                 "event: hello\ndata: {\"schema_id\":3,\"generation\":"));
    CU_ASSERT(strstr(acc.text, "Content-Type: text/event-stream") != NULL);
    CU_ASSERT(strstr(acc.text, "\"tags\":16,\"link_up\":true}\n\n") != NULL);
    /* The only slot is taken: a second stream is refused, not queued. */
    struct resp busy = get(h, "GET", "/api/stream", NULL);
    CU_ASSERT_EQUAL(busy.status, 503);
    resp_free(&busy);

    /* Two changes of tag 5 before the client is served: one event, the
     * latest value. */
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 111, SL_Q_GOOD, 2000);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 2001) == SL_OK);
    v = fx_val(5, SL_TYPE_UINT16, 222, SL_Q_GOOD, 3000);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 3001) == SL_OK);
    CU_ASSERT(stream_until(h, fd, &acc, &cap, "\"value\":222,"));
    CU_ASSERT_EQUAL(count_of(acc.text, "event: tag\n"), 1);
    CU_ASSERT(strstr(acc.text, "event: tag\ndata: {\"id\":5,\"name\":\"tag5\",") != NULL);
    CU_ASSERT(strstr(acc.text, "\"value\":111,") == NULL);

    /* Link stale: a link event and every tag with its new quality. */
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT(stream_until(h, fd, &acc, &cap, "event: link\ndata: {\"up\":false}\n\n"));
    for (int i = 0; i < 50 && count_of(acc.text, "event: tag\n") < 17; i++)
        stream_until(h, fd, &acc, &cap, "never");
    CU_ASSERT_EQUAL(count_of(acc.text, "event: tag\n"), 17);
    CU_ASSERT_EQUAL(count_of(acc.text, "\"quality\":1083113472,"), 16);   /* 0x408F0000 */

    /* A new schema: pending tags dropped, a schema event sent. */
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    CU_ASSERT(sl_mirror_schema_chunk(m, 4, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    CU_ASSERT(stream_until(h, fd, &acc, &cap, "event: schema\ndata: {\"schema_id\":4,"));

    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.sse_clients, 1);
    CU_ASSERT_EQUAL(st.sse_refused, 1);
    close(fd);
    /* The server notices the closed client at its next write (a change). */
    v = fx_val(5, SL_TYPE_UINT16, 333, SL_Q_GOOD, 4000);
    for (int i = 0; i < 200 && st.sse_clients; i++) {
        v.source_time_us += 1;
        v.raw++;
        CU_ASSERT(sl_mirror_apply(m, &v, 1, v.source_time_us) == SL_OK);
        pump(h);
        sl_http_stats(h, &st);
    }
    CU_ASSERT_EQUAL(st.sse_clients, 0);
    resp_free(&acc);
    sl_mirror_set_hook(m, NULL, NULL);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* Decodes the chunked body of an HTTP/1.1 response held in r->text (head
 * included) into a NUL-terminated string; *complete says the last chunk
 * (size 0) was seen. Only whole chunks are decoded, so it can be called
 * again as more bytes arrive. Returns NULL on a malformed chunk head. */
static char *dechunk(const struct resp *r, bool *complete)
{
    *complete = false;
    const char *p = r->text ? strstr(r->text, "\r\n\r\n") : NULL;
    if (!p)
        return calloc(1, 1);
    p += 4;
    const char *end = r->text + r->len;
    char *out = malloc(r->len + 1);
    CU_ASSERT_FATAL(out != NULL);
    size_t n = 0;
    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            break;                           /* chunk head not here yet */
        char *after = NULL;
        unsigned long size = strtoul(p, &after, 16);
        if (after == p || (after != eol && *after != ';')) {
            free(out);
            return NULL;
        }
        const char *data = eol + 2;
        if (size == 0) {
            *complete = true;
            break;
        }
        if ((size_t)(end - data) < size + 2)
            break;                           /* chunk not whole yet */
        if (memcmp(data + size, "\r\n", 2) != 0) {
            free(out);
            return NULL;
        }
        memcpy(out + n, data, size);
        n += size;
        p = data + size + 2;
    }
    out[n] = '\0';
    return out;
}

/* Reads a chunked event stream until its decoded body holds `want`
 * (pumping the server); the decoded body, or NULL (free it). */
static char *events_until(struct sl_http *h, int fd, struct resp *acc, size_t *cap, const char *want)
{
    for (int round = 0; round < 2000; round++) {
        bool complete;
        char *body = dechunk(acc, &complete);
        CU_ASSERT_FATAL(body != NULL);
        if (strstr(body, want))
            return body;
        free(body);
        if (!drain(fd, acc, cap))
            break;
        pump(h);
    }
    return NULL;
}

/* Reads a chunked event stream until its decoded body holds `want` at
 * least n times (pumping the server); the decoded body, or NULL (free it). */
static char *events_count(struct sl_http *h, int fd, struct resp *acc, size_t *cap, const char *want,
                          size_t n)
{
    for (int round = 0; round < 2000; round++) {
        bool complete;
        char *body = dechunk(acc, &complete);
        CU_ASSERT_FATAL(body != NULL);
        if (count_of(body, want) >= n)
            return body;
        free(body);
        if (!drain(fd, acc, cap))
            break;
        pump(h);
    }
    return NULL;
}

/* Checks every "tags" event of a decoded stream body: data is one JSON
 * array of live-form objects (id, value, raw, quality, ts, rx_ts; no
 * names, paths, units or quality names). Counts the events and the tags,
 * marking seen[id]. */
static void check_tags_events(const char *body, unsigned *events, unsigned *tags, bool *seen,
                              unsigned nseen)
{
    *events = *tags = 0;
    for (const char *e = strstr(body, "event: tags\ndata: "); e; e = strstr(e, "event: tags\ndata: ")) {
        e += strlen("event: tags\ndata: ");
        const char *nl = strstr(e, "\n\n");
        CU_ASSERT_FATAL(nl != NULL);
        char *data = strndup(e, (size_t)(nl - e));
        CU_ASSERT(json_valid(data));
        CU_ASSERT(data[0] == '[' && data[strlen(data) - 1] == ']');
        CU_ASSERT(strstr(data, "\"name\"") == NULL && strstr(data, "\"path\"") == NULL);
        CU_ASSERT(strstr(data, "\"units\"") == NULL && strstr(data, "\"quality_name\"") == NULL);
        CU_ASSERT(strstr(data, "\"age_ms\"") == NULL && strstr(data, "\"type\"") == NULL);
        CU_ASSERT(strlen(data) + 32 <= 16u * 1024u);      /* one event's buffer */
        for (const char *t = strstr(data, "{\"id\":"); t; t = strstr(t + 1, "{\"id\":")) {
            unsigned id = (unsigned)strtoul(t + 6, NULL, 10);
            CU_ASSERT(strncmp(strchr(t, ','), ",\"value\":", 9) == 0);
            if (id < nseen)
                seen[id] = true;
            (*tags)++;
        }
        (*events)++;
        free(data);
        e = nl;
    }
}

/* A mirror of n tags "tag_NNNN" under "acme/plant1/area<i/100>/line1"
 * (int64 and float64 alternately, position i named tag_<i> or, reversed,
 * tag_<n-1-i>), schema schema_id; the tags only, values are the caller's. */
static void area_schema(struct sl_mirror *m, uint32_t schema_id, uint32_t n, bool reversed)
{
    CU_ASSERT_FATAL(sl_mirror_schema_begin(m, schema_id, n) == SL_OK);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = reversed ? n - 1 - i : i;
        struct sl_schema_tag t = fx_tag(i, i % 2 ? SL_TYPE_FLOAT64 : SL_TYPE_INT64, SL_REG_HOLDING,
                                        SL_WORD_ABCD, 1, (uint16_t)(i * 4));
        snprintf(t.name, sizeof t.name, "tag_%04u", (unsigned)k);
        snprintf(t.path, sizeof t.path, "acme/plant1/area%u/line1", (unsigned)(k / 100));
        snprintf(t.units, sizeof t.units, "<b>\"u\"");
        CU_ASSERT_FATAL(sl_mirror_schema_add(m, &t) == SL_OK);
    }
    CU_ASSERT_FATAL(sl_mirror_schema_commit(m) == SL_OK);
}

/* A mirror of n tags (area_schema, schema 5), stale after 1 s. */
static struct sl_mirror *area_mirror(uint32_t n)
{
    struct sl_mirror_config cfg = { .max_tags = n, .stale_ms = 1000 };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    area_schema(m, 5, n, false);
    return m;
}

/* /api/stream?batch=1 (the dashboard's stream): changed tags travel as
 * "tags" events, each a JSON array of live-form objects, many per event,
 * split across events when one is full; control events are unchanged. The
 * body is chunked (HTTP/1.1) and decoded as such, so an event cut by a
 * chunk boundary is read whole. */
SL_TEST(http, sse_batch_stream)
{
    enum { N = 2000 };
    struct sl_mirror *m = area_mirror(N);
    static struct sl_value v[N];
    for (uint32_t i = 0; i < N; i++)     /* widest values: int64 min, a long double */
        v[i] = fx_val(i, i % 2 ? SL_TYPE_FLOAT64 : SL_TYPE_INT64,
                      i % 2 ? 0xC00921FB54442D18ull /* -pi */ : 0x8000000000000000ull, SL_Q_GOOD, 1000);
    CU_ASSERT(sl_mirror_apply(m, v, N, 2000) == SL_OK);
    sl_mirror_tick(m, 100, 0);
    struct sl_http *h = start(m, NULL, 2, N);
    sl_mirror_set_hook(m, hook, h);
    int fd = client(h);
    const char req[] = "GET /api/stream?batch=1 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    CU_ASSERT_FATAL(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1));
    struct resp acc = { 0 };
    size_t cap = 0;
    char *body = events_until(h, fd, &acc, &cap, "event: hello\ndata: {\"schema_id\":5,");
    CU_ASSERT_FATAL(body != NULL);
    free(body);
    CU_ASSERT(strcasestr(acc.text, "Transfer-Encoding: chunked") != NULL);

    /* Every tag changes: all of them arrive, in full events of many tags. */
    for (uint32_t i = 0; i < N; i++)
        v[i].source_time_us = 3000;
    CU_ASSERT(sl_mirror_apply(m, v, N, 3001) == SL_OK);
    body = events_count(h, fd, &acc, &cap, "{\"id\":", N);
    CU_ASSERT_FATAL(body != NULL);
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    unsigned events = 0, tags = 0;
    check_tags_events(body, &events, &tags, seen, N);
    CU_ASSERT_EQUAL(tags, N);
    unsigned missing = 0;
    for (unsigned i = 0; i < N; i++)
        missing += !seen[i];
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT(events >= 2);                         /* split when full ... */
    CU_ASSERT(events <= N / 50);                    /* ... and many tags per event */
    CU_ASSERT_EQUAL(count_of(body, "event: tag\n"), 0);
    /* The live form of tag 0 and 1, exactly. */
    CU_ASSERT(strstr(body, "{\"id\":0,\"value\":-9.223372036854776e+18,\"raw\":-9223372036854775808,"
                           "\"quality\":0,\"ts\":\"1970-01-01T00:00:00.003000Z\","
                           "\"rx_ts\":\"1970-01-01T00:00:00.003001Z\"}") != NULL);
    CU_ASSERT(strstr(body, "{\"id\":1,\"value\":-3.141592653589793,\"raw\":-3.141592653589793,"
                           "\"quality\":0,") != NULL);
    free(body);

    /* Link stale: the link event, then every tag again with its new quality. */
    size_t before = acc.len;
    sl_mirror_tick(m, 5000, 0);
    body = events_count(h, fd, &acc, &cap, "\"quality\":1083113472", N);   /* 0x408F0000 */
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(strstr(body, "event: link\ndata: {\"up\":false}\n\n") != NULL);
    CU_ASSERT(acc.len > before);
    CU_ASSERT_EQUAL(count_of(body, "\"quality\":1083113472"), N);   /* 0x408F0000 */
    free(body);

    /* A plain stream beside it still gets one "tag" event per tag, full form. */
    int fd2 = client(h);
    const char req2[] = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CU_ASSERT_FATAL(send(fd2, req2, sizeof req2 - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req2 - 1));
    struct resp acc2 = { 0 };
    size_t cap2 = 0;
    body = events_until(h, fd2, &acc2, &cap2, "event: hello");
    CU_ASSERT_FATAL(body != NULL);
    free(body);
    v[7].source_time_us = 9000;
    CU_ASSERT(sl_mirror_apply(m, &v[7], 1, 9001) == SL_OK);
    body = events_until(h, fd2, &acc2, &cap2, "event: tag\ndata: {\"id\":7,\"name\":\"tag_0007\",");
    CU_ASSERT(body != NULL);
    if (body)
        CU_ASSERT(strstr(body, "\"units\":\"\\u003cb\\u003e\\\"u\\\"\"") != NULL);
    free(body);
    close(fd2);
    close(fd);
    resp_free(&acc);
    resp_free(&acc2);
    sl_mirror_set_hook(m, NULL, NULL);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* Opens an event stream with request rq and reads it up to its hello. */
static int open_stream(struct sl_http *h, const char *rq, struct resp *acc, size_t *cap)
{
    int fd = client(h);
    CU_ASSERT_FATAL(send(fd, rq, strlen(rq), MSG_NOSIGNAL) == (ssize_t)strlen(rq));
    char *b = events_until(h, fd, acc, cap, "event: hello");
    CU_ASSERT_FATAL(b != NULL);
    free(b);
    return fd;
}

/* The last event of a decoded stream body that starts with `head`, up to
 * its blank line (malloc'd), or NULL. */
static char *last_event(const char *body, const char *head)
{
    const char *e = NULL;
    for (const char *p = strstr(body, head); p; p = strstr(p + 1, head))
        e = p;
    if (!e)
        return NULL;
    const char *end = strstr(e, "\n\n");
    return end ? strndup(e, (size_t)(end - e + 2)) : NULL;
}

/* Every stream sends a changed tag from one encoding made for that value:
 * two plain streams get identical events (and a batch stream the live form
 * of it), the tag encoded once for the three; and a new value, or the same
 * value with a new quality, is never answered from the old encoding. The
 * source times lie in 2100, so age_ms is 0 whichever turn sends it. */
SL_TEST(http, sse_shared_encoding)
{
    const uint64_t t2100 = 4102444800000000ull;
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, t2100);
    sl_mirror_tick(m, 100, 0);
    struct sl_http *h = start(m, NULL, 3, 64);
    sl_mirror_set_hook(m, hook, h);
    const char plain[] = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    const char batch[] = "GET /api/stream?batch=1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int fd[3];
    struct resp acc[3] = { { 0 } };
    size_t cap[3] = { 0 };
    for (int i = 0; i < 3; i++)
        fd[i] = open_stream(h, i < 2 ? plain : batch, &acc[i], &cap[i]);
    struct sl_http_stats st0, st;
    sl_http_stats(h, &st0);

    /* One change, three streams: one encoding, shared twice. */
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 111, SL_Q_GOOD, t2100 + 1);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, t2100 + 2) == SL_OK);
    char *b0 = events_until(h, fd[0], &acc[0], &cap[0], "\"value\":111,");
    char *b1 = events_until(h, fd[1], &acc[1], &cap[1], "\"value\":111,");
    char *b2 = events_until(h, fd[2], &acc[2], &cap[2], "{\"id\":5,\"value\":111,");
    CU_ASSERT_FATAL(b0 && b1 && b2);
    char *e0 = last_event(b0, "event: tag\ndata: {\"id\":5,");
    char *e1 = last_event(b1, "event: tag\ndata: {\"id\":5,");
    CU_ASSERT_FATAL(e0 && e1);
    CU_ASSERT_STRING_EQUAL(e0, e1);
    /* Byte for byte what the tag's own encoding is, in both forms. */
    struct sl_mirror_tag t;
    CU_ASSERT_FATAL(sl_mirror_get(m, 5, &t) == SL_OK);
    char mem[SL_JSON_TAG_MAX + 64];
    struct sl_jbuf jb;
    sl_jbuf_fixed(&jb, mem, sizeof mem);
    sl_jbuf_lit(&jb, "event: tag\ndata: ");
    sl_json_tag(&jb, &t, t2100 - 1000000, SL_JSON_TAG_HTTP);
    sl_jbuf_lit(&jb, "\n\n");
    CU_ASSERT_STRING_EQUAL(e0, sl_jbuf_cstr(&jb));
    CU_ASSERT(strstr(e0, ",\"age_ms\":0}") != NULL);
    sl_jbuf_reset(&jb);
    sl_json_tag(&jb, &t, 0, SL_JSON_TAG_LIVE);
    CU_ASSERT(strstr(b2, sl_jbuf_cstr(&jb)) != NULL);
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.sse_encoded - st0.sse_encoded, 1);
    CU_ASSERT_EQUAL(st.sse_shared - st0.sse_shared, 2);
    free(e0);
    free(e1);
    free(b0);
    free(b1);
    free(b2);

    /* A new value between two reads of one stream: the new text, encoded
     * again; the other stream, read later, gets the same latest text. */
    for (uint64_t val = 222; val <= 333; val += 111) {
        v = fx_val(5, SL_TYPE_UINT16, val, SL_Q_GOOD, t2100 + val);
        CU_ASSERT(sl_mirror_apply(m, &v, 1, t2100 + val + 1) == SL_OK);
        char want[32];
        snprintf(want, sizeof want, "\"value\":%" PRIu64 ",", val);
        b0 = events_until(h, fd[0], &acc[0], &cap[0], want);
        CU_ASSERT_FATAL(b0 != NULL);
        e0 = last_event(b0, "event: tag\ndata: {\"id\":5,");
        CU_ASSERT_FATAL(e0 != NULL);
        CU_ASSERT(strstr(e0, want) != NULL);
        free(e0);
        free(b0);
    }
    b1 = events_until(h, fd[1], &acc[1], &cap[1], "\"value\":333,");
    b0 = events_until(h, fd[0], &acc[0], &cap[0], "\"value\":333,");
    CU_ASSERT_FATAL(b0 && b1);
    e0 = last_event(b0, "event: tag\ndata: {\"id\":5,");
    e1 = last_event(b1, "event: tag\ndata: {\"id\":5,");
    CU_ASSERT_FATAL(e0 && e1);
    CU_ASSERT_STRING_EQUAL(e0, e1);
    free(e0);
    free(e1);
    free(b0);
    free(b1);

    /* The same value with a new quality (link stale): the new quality. */
    sl_mirror_tick(m, 5000, 0);
    b0 = events_until(h, fd[0], &acc[0], &cap[0], "\"value\":333,\"raw\":333,\"type\":\"uint16\","
                                                  "\"units\":\"degC\",\"quality\":1083113472,");
    CU_ASSERT(b0 != NULL);
    free(b0);
    b2 = events_until(h, fd[2], &acc[2], &cap[2], "{\"id\":5,\"value\":333,\"raw\":333,\"quality\":1083113472,");
    CU_ASSERT(b2 != NULL);
    free(b2);

    for (int i = 0; i < 3; i++) {
        close(fd[i]);
        resp_free(&acc[i]);
    }
    sl_mirror_set_hook(m, NULL, NULL);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* A tag whose text is longer than a shared slot (long name and path, units
 * that escape to six bytes a character) is encoded per stream, still byte
 * for byte sl_json_tag, and never counted as shared. */
SL_TEST(http, sse_long_tag_encoded_per_stream)
{
    struct sl_mirror_config mc = { .max_tags = 4, .stale_ms = 100000 };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &mc) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_schema_begin(m, 9, 1) == SL_OK);
    struct sl_schema_tag d = fx_tag(0, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_ABCD, 1, 0);
    memset(d.name, 'n', SL_NAME_MAX - 1);
    d.name[SL_NAME_MAX - 1] = '\0';
    snprintf(d.path, sizeof d.path, "acme/plant1/area1/%0100u", 7u);
    memset(d.units, '<', SL_UNITS_MAX - 1);
    d.units[SL_UNITS_MAX - 1] = '\0';
    CU_ASSERT_FATAL(sl_mirror_schema_add(m, &d) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_schema_commit(m) == SL_OK);
    const uint64_t t2100 = 4102444800000000ull;
    struct sl_value v = fx_val(0, SL_TYPE_UINT16, 42, SL_Q_GOOD, t2100);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, t2100 + 1) == SL_OK);
    sl_mirror_tick(m, 100, 0);
    struct sl_http *h = start(m, NULL, 2, 4);
    sl_mirror_set_hook(m, hook, h);
    const char plain[] = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int fd[2];
    struct resp acc[2] = { { 0 } };
    size_t cap[2] = { 0 };
    for (int i = 0; i < 2; i++)
        fd[i] = open_stream(h, plain, &acc[i], &cap[i]);
    v = fx_val(0, SL_TYPE_UINT16, 43, SL_Q_GOOD, t2100 + 5);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, t2100 + 6) == SL_OK);
    struct sl_mirror_tag t;
    CU_ASSERT_FATAL(sl_mirror_get(m, 0, &t) == SL_OK);
    char mem[SL_JSON_TAG_MAX + 64];
    struct sl_jbuf jb;
    sl_jbuf_fixed(&jb, mem, sizeof mem);
    sl_jbuf_lit(&jb, "event: tag\ndata: ");
    sl_json_tag(&jb, &t, 0, SL_JSON_TAG_HTTP);
    sl_jbuf_lit(&jb, "\n\n");
    CU_ASSERT(jb.len > 400);   /* longer than a slot's text */
    for (int i = 0; i < 2; i++) {
        char *b = events_until(h, fd[i], &acc[i], &cap[i], "\"value\":43,");
        CU_ASSERT_FATAL(b != NULL);
        char *e = last_event(b, "event: tag\ndata: {\"id\":0,");
        CU_ASSERT_FATAL(e != NULL);
        CU_ASSERT_STRING_EQUAL(e, sl_jbuf_cstr(&jb));
        free(e);
        free(b);
        close(fd[i]);
        resp_free(&acc[i]);
    }
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.sse_shared, 0);
    sl_mirror_set_hook(m, NULL, NULL);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* Counts the "tag" events of a decoded stream body by tag name: each
 * name's events into got[k] for "tag_<k>" (k < n); returns the events. */
static unsigned tag_events_by_name(const char *body, unsigned *got, unsigned n)
{
    unsigned events = 0;
    memset(got, 0, n * sizeof *got);
    for (const char *e = strstr(body, "event: tag\ndata: "); e; e = strstr(e + 1, "event: tag\ndata: ")) {
        const char *nm = strstr(e, "\"name\":\"tag_");
        CU_ASSERT_FATAL(nm != NULL);
        unsigned k = (unsigned)strtoul(nm + strlen("\"name\":\"tag_"), NULL, 10);
        if (k < n)
            got[k]++;
        events++;
    }
    return events;
}

/* /api/stream?tag=PATH/NAME&path=PREFIX: a stream that follows only the
 * tags it names (a display of a few tags): bad arguments are a 400 JSON
 * error, unknown names are listed in the hello event, the followed tags'
 * current values come at once, changes to any other tag send nothing, and
 * a schema change that moves positions is followed by name. */
SL_TEST(http, sse_filtered_stream)
{
    enum { N = 2000 };
    struct sl_mirror *m = area_mirror(N);
    static struct sl_value v[N];
    for (uint32_t i = 0; i < N; i++)
        v[i] = fx_val(i, i % 2 ? SL_TYPE_FLOAT64 : SL_TYPE_INT64, 7, SL_Q_GOOD, 1000);
    CU_ASSERT(sl_mirror_apply(m, v, N, 2000) == SL_OK);
    sl_mirror_tick(m, 100, 0);
    struct sl_http *h = start(m, NULL, 2, N);
    sl_mirror_set_hook(m, hook, h);

    /* Refused before a slot is taken: empty, overlong, control characters,
     * more than SL_HTTP_STREAM_FILTERS arguments. */
    static const char *const bad[] = {
        "/api/stream?tag=", "/api/stream?tag", "/api/stream?path=/",
        "/api/stream?tag=a%01b", "/api/stream?path=acme%0aplant",
        ("/api/stream?tag=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct resp r = get(h, "GET", bad[i], NULL);
        CU_ASSERT_EQUAL(r.status, 400);
        CU_ASSERT(json_valid(r.body));
        CU_ASSERT(strstr(r.body, "\"status\":400") != NULL);
        resp_free(&r);
    }
    size_t ml = 64 + (SL_HTTP_STREAM_FILTERS + 1) * 6;
    char *many = malloc(ml);
    CU_ASSERT_FATAL(many != NULL);
    size_t at = (size_t)snprintf(many, ml, "GET /api/stream?batch=1");
    for (unsigned i = 0; i <= SL_HTTP_STREAM_FILTERS; i++)
        at += (size_t)snprintf(many + at, ml - at, "&tag=x");
    snprintf(many + at, ml - at, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
    struct resp r = request_raw(h, many);
    free(many);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT(strstr(r.body, "more than 256") != NULL);
    resp_free(&r);
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.bad_request, sizeof bad / sizeof bad[0] + 1);
    CU_ASSERT_EQUAL(st.sse_clients, 0);
    r = get(h, "GET", "/metrics", NULL);
    CU_ASSERT(strstr(r.body, "\nsluice_http_bad_requests_total 7\n") != NULL);
    resp_free(&r);

    /* One tag (named twice), one unknown tag, one unknown path, and the
     * path area1 (not area10..area19: whole segments, trailing '/' ok). */
    int fd = client(h);
    const char req[] = "GET /api/stream?tag=acme/plant1/area3/line1/tag_0305&tag=nope/tag_1"
                       "&path=acme/plant1/area1/&tag=acme/plant1/area3/line1/tag_0305&path=acme/plant"
                       " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CU_ASSERT_FATAL(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1));
    struct resp acc = { 0 };
    size_t cap = 0;
    char *body = events_count(h, fd, &acc, &cap, "event: tag\n", 101);
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(strstr(body, "\"link_up\":true,\"unknown\":[\"nope/tag_1\",\"acme/plant\"],"
                           "\"unknown_count\":2,\"following\":101}\n\n") != NULL);
    static unsigned got[N];
    CU_ASSERT_EQUAL(tag_events_by_name(body, got, N), 101);
    CU_ASSERT_EQUAL(got[305], 1);
    for (unsigned i = 100; i < 200; i++)
        CU_ASSERT_EQUAL(got[i], 1);
    free(body);

    /* Every tag changes: only the 101 followed ones are sent again. */
    for (uint32_t i = 0; i < N; i++) {
        v[i].raw = 8;
        v[i].source_time_us = 3000;
    }
    CU_ASSERT(sl_mirror_apply(m, v, N, 3001) == SL_OK);
    body = events_count(h, fd, &acc, &cap, "event: tag\n", 202);
    CU_ASSERT_FATAL(body != NULL);
    for (int i = 0; i < 20; i++)        /* anything more would show now */
        pump(h);
    free(body);
    drain(fd, &acc, &cap);
    bool complete;
    body = dechunk(&acc, &complete);
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT_EQUAL(tag_events_by_name(body, got, N), 202);
    CU_ASSERT_EQUAL(got[305], 2);
    CU_ASSERT_EQUAL(got[100] + got[199] + got[0] + got[1000] + got[1999], 4);
    free(body);

    /* A new schema with the positions reversed: the stream follows the
     * same names at their new positions. */
    area_schema(m, 6, N, true);
    body = events_until(h, fd, &acc, &cap, "event: schema\ndata: {\"schema_id\":6,");
    CU_ASSERT_FATAL(body != NULL);
    free(body);
    body = events_until(h, fd, &acc, &cap, "\"unknown_count\":2,\"following\":101}\n\n");
    CU_ASSERT(body != NULL);
    free(body);
    struct sl_value one = fx_val(N - 1 - 305, SL_TYPE_INT64, 4242, SL_Q_GOOD, 5000);
    if ((N - 1 - 305) % 2)
        one.type = SL_TYPE_FLOAT64;
    CU_ASSERT(sl_mirror_apply(m, &one, 1, 5001) == SL_OK);
    body = events_until(h, fd, &acc, &cap, "\"name\":\"tag_0305\",\"path\":\"acme/plant1/area3/line1\",\"value\":");
    CU_ASSERT(body != NULL);
    free(body);
    close(fd);
    resp_free(&acc);

    /* A path under one already followed (or the same again) adds nothing
     * and is not walked again; one beside it adds its own tags. */
    fd = client(h);
    const char req2[] = "GET /api/stream?batch=1&path=acme/plant1/area2&path=acme/plant1/area2/line1"
                        "&path=acme/plant1/area2&path=acme/plant1/area3 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CU_ASSERT_FATAL(send(fd, req2, sizeof req2 - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req2 - 1));
    memset(&acc, 0, sizeof acc);
    cap = 0;
    body = events_until(h, fd, &acc, &cap, "\"unknown\":[],\"unknown_count\":0,\"following\":200}\n\n");
    CU_ASSERT(body != NULL);
    free(body);
    close(fd);
    resp_free(&acc);
    sl_mirror_set_hook(m, NULL, NULL);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* The page names quality codes itself (the live stream sends codes only):
 * its table must hold every name sl_quality_name gives. */
SL_TEST(http, dashboard_knows_quality_names)
{
    static const uint32_t codes[] = { SL_Q_GOOD, SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE,
                                      SL_Q_UNCERTAIN_LAST_USABLE, SL_Q_BAD_COMM_ERROR,
                                      SL_Q_BAD_NO_COMM, SL_Q_BAD_WAITING_INITIAL };
    char *page = strndup((const char *)sl_dashboard_html, sl_dashboard_html_len);
    CU_ASSERT_FATAL(page != NULL);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char entry[96];
        snprintf(entry, sizeof entry, "0x%08X: \"%s\"", (unsigned)codes[i], sl_quality_name(codes[i]));
        CU_ASSERT(codes[i] == 0 || strstr(page, entry) != NULL);
        if (codes[i] != 0 && !strstr(page, entry))
            fprintf(stderr, "dashboard lacks %s\n", entry);
    }
    CU_ASSERT(strstr(page, "{ 0: \"Good\",") != NULL);
    free(page);
}

SL_TEST(http, close_with_open_stream)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http *h = start(m, NULL, 2, 64);
    int fd = client(h);
    const char req[] = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CU_ASSERT_FATAL(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1));
    struct resp acc = { 0 };
    size_t cap = 0;
    CU_ASSERT(stream_until(h, fd, &acc, &cap, "event: hello"));
    pump(h);                     /* now suspended, waiting for changes */
    sl_http_close(h);            /* must end the suspended stream cleanly */
    close(fd);
    resp_free(&acc);
    sl_mirror_destroy(m);
}

SL_TEST(http, ten_thousand_tags)
{
    enum { N = 10000 };
    struct sl_mirror_config cfg = { .max_tags = N, .stale_ms = 1000 };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_schema_begin(m, 77, N) == SL_OK);
    for (uint32_t i = 0; i < N; i++) {
        struct sl_schema_tag t = fx_tag(i, SL_TYPE_FLOAT32, SL_REG_INPUT, SL_WORD_ABCD,
                                        (uint8_t)(1 + i / 30000), (uint16_t)(i * 2));
        snprintf(t.name, sizeof t.name, "temperature_%05u", (unsigned)i);
        snprintf(t.path, sizeof t.path, "acme/plant1/area%u/line%u", (unsigned)(i / 1000),
                 (unsigned)(i % 10));
        CU_ASSERT_FATAL(sl_mirror_schema_add(m, &t) == SL_OK);
    }
    CU_ASSERT_FATAL(sl_mirror_schema_commit(m) == SL_OK);
    static struct sl_value v[N];
    for (uint32_t i = 0; i < N; i++)
        v[i] = fx_val(i, SL_TYPE_FLOAT32, 0x41200000u /* 10.0f */, SL_Q_GOOD, 1000 + i);
    CU_ASSERT(sl_mirror_apply(m, v, N, 5000000) == SL_OK);
    struct sl_http *h = start(m, NULL, 2, N);
    struct resp r = get(h, "GET", "/api/tags", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(json_valid(r.body));
    CU_ASSERT(strstr(r.body, "\"count\":10000}") != NULL);
    CU_ASSERT_EQUAL(count_of(r.body, "\"quality_name\":\"Good\""), N);
    CU_ASSERT(strstr(r.body, "\"name\":\"temperature_09999\"") != NULL);
    resp_free(&r);
    r = get(h, "GET", "/api/tags/acme/plant1/area9/line9/temperature_09999", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

SL_TEST(http, dashboard_and_config_errors)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http *h = start(m, NULL, 2, 64);
    struct resp r = get(h, "GET", "/", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(has_header(&r, "Content-Type: text/html"));
    CU_ASSERT(has_header(&r, "Content-Security-Policy: default-src 'self'"));
    CU_ASSERT_EQUAL(strlen(r.body), sl_dashboard_html_len);
    CU_ASSERT(strstr(r.body, "/api/stream") != NULL);
    CU_ASSERT(strstr(r.body, "http://") == NULL && strstr(r.body, "https://") == NULL);
    resp_free(&r);
    sl_http_close(h);

    struct sl_http_config cfg = { .listen = "127.0.0.1", .max_tags = 64 };
    CU_ASSERT_EQUAL(sl_http_open(&h, &cfg, m, NULL, NULL), SL_ERR_CONFIG);
    cfg.listen = "127.0.0.1:99999";
    CU_ASSERT_EQUAL(sl_http_open(&h, &cfg, m, NULL, NULL), SL_ERR_CONFIG);
    cfg.listen = "127.0.0.1:0";
    cfg.max_tags = 0;
    CU_ASSERT_EQUAL(sl_http_open(&h, &cfg, m, NULL, NULL), SL_ERR_CONFIG);
    CU_ASSERT(h == NULL);
    sl_mirror_destroy(m);
}

/* EventSource cannot send the header: /api/session (with the header) sets
 * a cookie that /api/stream, and only it, accepts. */
SL_TEST(http, session_cookie_for_the_stream)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http *h = start(m, "s3cret-t0ken", 2, 64);
    struct resp r = get(h, "GET", "/api/session", NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    resp_free(&r);
    r = get(h, "GET", "/api/session", "Authorization: Bearer s3cret-t0ken\r\n");
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(has_header(&r, "HttpOnly; SameSite=Strict"));
    const char *k = strstr(r.text, SL_HTTP_COOKIE "=");
    CU_ASSERT_FATAL(k != NULL);
    char cookie[128];
    snprintf(cookie, sizeof cookie, "Cookie: %.*s\r\n", (int)strlen(SL_HTTP_COOKIE "=") + 64, k);
    resp_free(&r);
    /* The cookie opens the stream. */
    char req[512];
    snprintf(req, sizeof req, "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n%s\r\n", cookie);
    int fd = client(h);
    CU_ASSERT_FATAL(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    struct resp acc = { 0 };
    size_t cap = 0;
    CU_ASSERT(stream_until(h, fd, &acc, &cap, "event: hello"));
    close(fd);
    resp_free(&acc);
    /* Not elsewhere, and not a wrong one. */
    r = get(h, "GET", "/api/tags", cookie);
    CU_ASSERT_EQUAL(r.status, 401);
    resp_free(&r);
    r = get(h, "GET", "/api/stream",
            "Cookie: " SL_HTTP_COOKIE "=0000000000000000000000000000000000000000000000000000000000000000\r\n");
    CU_ASSERT_EQUAL(r.status, 401);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

static struct resp get_host(struct sl_http *h, const char *host, const char *extra)
{
    char req[512];
    snprintf(req, sizeof req, "GET /api/status HTTP/1.0\r\nHost: %s\r\n%s\r\n", host,
             extra ? extra : "");
    return request_raw(h, req);
}

/* DNS rebinding: without a token only IP literals, localhost and
 * allowed_hosts are served; with a token the token suffices. */
SL_TEST(http, host_check)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http_config cfg = { .listen = "127.0.0.1:0", .max_conns = 16, .max_tags = 64,
                                  .allowed_hosts = "scada.plant.example, hmi" };
    struct sl_http *h = NULL;
    CU_ASSERT_FATAL(sl_http_open(&h, &cfg, m, fill_status, NULL) == SL_OK);
    static const char *const good[] = { "127.0.0.1", "127.0.0.1:8080", "10.1.2.3:80", "[::1]",
                                        "[::1]:8080", "localhost", "LOCALHOST:80",
                                        "scada.plant.example", "SCADA.plant.example:8080", "hmi" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        struct resp r = get_host(h, good[i], NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        if (r.status != 200)
            fprintf(stderr, "Host %s: %d\n", good[i], r.status);
        resp_free(&r);
    }
    static const char *const bad[] = { "evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                                       "localhost.evil.example", "hmi.evil", "[::1", "127.0.0.1:x",
                                       "scada.plant.example.evil" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct resp r = get_host(h, bad[i], NULL);
        CU_ASSERT_EQUAL(r.status, 403);
        if (r.status != 403)
            fprintf(stderr, "Host %s: %d\n", bad[i], r.status);
        resp_free(&r);
    }
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.bad_host, sizeof bad / sizeof *bad);
    sl_http_close(h);
    /* With a token: any Host, the token decides. */
    h = start(m, "s3cret-t0ken", 2, 64);
    struct resp r = get_host(h, "evil.example", "Authorization: Bearer s3cret-t0ken\r\n");
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    r = get_host(h, "evil.example", NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

static int client_from(struct sl_http *h, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in b = { .sin_family = AF_INET };
    CU_ASSERT_FATAL(inet_pton(AF_INET, src, &b.sin_addr) == 1);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&b, sizeof b) == 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(sl_http_port(h)) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* True when the server closed fd (pumping it meanwhile, ~2 s at most). */
static bool http_closed(struct sl_http *h, int fd)
{
    for (int round = 0; round < 1000; round++) {
        char c[256];
        ssize_t r = recv(fd, c, sizeof c, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        pump(h);
    }
    return false;
}

SL_TEST(http, per_peer_connections_and_streams)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http_config cfg = { .listen = "127.0.0.1:0", .max_conns = 16, .max_conns_per_peer = 3,
                                  .max_sse = 8, .max_sse_per_peer = 2, .max_tags = 64 };
    struct sl_http *h = NULL;
    CU_ASSERT_FATAL(sl_http_open(&h, &cfg, m, fill_status, NULL) == SL_OK);
    /* Two streams from one address; the third is refused, another
     * address still gets one. */
    const char sreq[] = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int fd[3];
    struct resp acc = { 0 };
    size_t cap = 0;
    for (int i = 0; i < 2; i++) {
        fd[i] = client_from(h, "127.0.0.1");
        CU_ASSERT_FATAL(send(fd[i], sreq, sizeof sreq - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof sreq - 1));
        CU_ASSERT(stream_until(h, fd[i], &acc, &cap, "event: hello"));
        resp_free(&acc);
        cap = 0;
    }
    struct resp r = get(h, "GET", "/api/stream", NULL);
    CU_ASSERT_EQUAL(r.status, 503);
    resp_free(&r);
    int other = client_from(h, "127.0.0.2");
    CU_ASSERT_FATAL(send(other, sreq, sizeof sreq - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof sreq - 1));
    CU_ASSERT(stream_until(h, other, &acc, &cap, "event: hello"));
    resp_free(&acc);
    cap = 0;
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.sse_refused_peer, 1);
    CU_ASSERT_EQUAL(st.sse_clients, 3);
    /* 127.0.0.1 holds two streams; one more connection is its third, a
     * fourth is refused at accept. */
    fd[2] = client_from(h, "127.0.0.1");
    pump(h);
    int extra = client_from(h, "127.0.0.1");
    CU_ASSERT(http_closed(h, extra));
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.refused_peer, 1);
    /* The third connection still works. */
    const char treq[] = "GET /api/status HTTP/1.0\r\nHost: localhost\r\n\r\n";
    CU_ASSERT_FATAL(send(fd[2], treq, sizeof treq - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof treq - 1));
    CU_ASSERT(stream_until(h, fd[2], &acc, &cap, "\"mirror\":"));
    resp_free(&acc);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    close(extra);
    close(other);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* Slowloris: a head trickled a byte at a time is cut at
 * request_timeout_ms (real clock) while another client is answered. */
SL_TEST(http, slowloris_closed_good_client_served)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_http_config cfg = { .listen = "127.0.0.1:0", .max_conns = 16, .timeout_s = 30,
                                  .request_timeout_ms = 300, .max_tags = 64 };
    struct sl_http *h = NULL;
    CU_ASSERT_FATAL(sl_http_open(&h, &cfg, m, fill_status, NULL) == SL_OK);
    int slow = client(h);
    const char head[] = "GET /api/status HTTP/1.1\r\nHost: localhost\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool closed = false;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < sizeof head - 1 && !closed; i++) {
        if (send(slow, head + i, 1, MSG_NOSIGNAL) != 1)
            break;
        for (int k = 0; k < 25; k++)          /* ~50 ms per byte */
            pump(h);
        char c[64];
        ssize_t n = recv(slow, c, sizeof c, MSG_DONTWAIT);
        closed = n == 0 || (n < 0 && errno == ECONNRESET);
        if (i % 4 == 0) {
            struct resp r = get(h, "GET", "/api/status", NULL);
            CU_ASSERT_EQUAL(r.status, 200);
            resp_free(&r);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!closed)
        closed = http_closed(h, slow);
    CU_ASSERT(closed);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT(el < 2.0);
    struct sl_http_stats st;
    sl_http_stats(h, &st);
    CU_ASSERT_EQUAL(st.closed_slow, 1);
    close(slow);
    sl_http_close(h);
    sl_mirror_destroy(m);
}

/* /api/tags/<x> through the index gives what the scan gave, and follows a
 * schema change (new names found, old ones gone). */
SL_TEST(http, tag_index_follows_schema)
{
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    struct sl_http *h = start(m, NULL, 2, 64);
    /* Every tag by its own URL equals its element in /api/tags. */
    struct resp all = get(h, "GET", "/api/tags", NULL);
    CU_ASSERT_EQUAL(all.status, 200);
    for (uint32_t pos = 0; pos < sl_mirror_count(m); pos++) {
        struct sl_mirror_tag t;
        CU_ASSERT_FATAL(sl_mirror_get(m, pos, &t) == SL_OK);
        char url[256];
        snprintf(url, sizeof url, "/api/tags/%s/%s", t.path, t.name);
        struct resp r = get(h, "GET", url, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        char idname[96];
        snprintf(idname, sizeof idname, "{\"id\":%u,\"name\":\"%s\"", t.tag_id, t.name);
        CU_ASSERT(strncmp(r.body, idname, strlen(idname)) == 0);
        CU_ASSERT(strstr(all.body, idname) != NULL);
        resp_free(&r);
    }
    resp_free(&all);
    /* Rename every tag: the index is rebuilt. */
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    for (unsigned i = 0; i < FX_TAGS; i++)
        snprintf(d[i].name, sizeof d[i].name, "renamed%u", i);
    snprintf(d[15].path, sizeof d[15].path, "acme/plant2/x/y");
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 4, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    struct resp r = get(h, "GET", "/api/tags/acme/plant1/area1/line1/tag5", NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    r = get(h, "GET", "/api/tags/acme/plant1/area1/line1/renamed5", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strstr(r.body, "\"id\":5,\"name\":\"renamed5\"") != NULL);
    resp_free(&r);
    r = get(h, "GET", "/api/tags/acme/plant2", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strstr(r.body, "\"count\":1}") != NULL);
    resp_free(&r);
    r = get(h, "GET", "/api/tags/acme/plant1/area7", NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    sl_http_close(h);
    sl_mirror_destroy(m);
}
