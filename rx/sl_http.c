/* Read-only HTTP services over the mirror (sl_http.h, docs/services.md). */
#include "sl_http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_conf.h"
#include "sl_file.h"
#include "sl_histsrv.h"
#include "sl_json.h"
#include "sl_metrics.h"
#include "sl_peer.h"
#include "sl_regs.h"

#define BLOCK_BYTES   (16u * 1024u)    /* content-reader block */
/* An event stream's block: a full stream moves ~270 bytes a tag, and each
 * block costs the HTTP thread a loop turn (poll, the subscription drain,
 * MHD_run, one send), so a busy stream takes bigger blocks. The send
 * buffer MHD gives a chunked response is what is left of the connection's
 * memory (CONN_MEMORY), which must hold it. */
#define SSE_BLOCK_BYTES (64u * 1024u)
#define CONN_MEMORY     (128u * 1024u)
/* One SSE event: a tag, or (batch streams) as many tags as fit in their
 * live form (up to ~140), so a browser pays its per-event cost once per
 * many tags, not per tag. */
#define EVENT_BYTES   (16u * 1024u)
_Static_assert(EVENT_BYTES >= SL_JSON_TAG_MAX + 64u, "an event holds at least one tag");
#define TAGS_PREFIX   "/api/tags/"

/* One tag's event text, shared by every stream: the first stream that
 * sends a value encodes it (sl_json_tag_shared) and every other stream,
 * in either form, copies it (sl_json_tag_put_shared), until the value
 * changes. 16 streams following the same tags encode each change once,
 * not 16 times. The key is the value itself as sl_mirror_get read it (raw,
 * quality, both times, has_value) and the schema generation (which fixes
 * id, names, type, scale and units at a position), so a slot whose key
 * differs from what was just read is rewritten: it can never hand out a
 * stale encoding. One slot per position below ENC_TAGS_MAX (tags above
 * it are encoded per stream, as before); the array is reserved at start
 * (calloc: pages are touched only for positions a stream sends), at most
 * ENC_TAGS_MAX x ENC_SLOT_BYTES = 40 MiB; 30.5 MiB at 100,000 tags. */
#define ENC_SLOT_BYTES 320u
#define ENC_TAGS_MAX   (1u << 17)
struct enc {
    uint64_t gen;                  /* schema generation of the text */
    uint64_t raw, src_us, rx_us;   /* the value it was made from */
    uint32_t quality;
    uint8_t state;                 /* ENC_EMPTY, ENC_TEXT, ENC_LONG */
    uint8_t has_value;
    struct sl_json_tag_cuts c;
    char text[ENC_SLOT_BYTES - 38u - sizeof(struct sl_json_tag_cuts)];
};
enum { ENC_EMPTY, ENC_TEXT, ENC_LONG /* longer than text[]: encoded per stream */ };
_Static_assert(sizeof(struct enc) == ENC_SLOT_BYTES, "one slot is ENC_SLOT_BYTES");

/* One open connection, as MHD reports it (its socket context). */
struct hconn {
    struct MHD_Connection *conn;   /* NULL: free */
    uint8_t key[SL_PEER_KEY_BYTES];   /* sl_peer_key: IPv4 address or IPv6 /64 */
    uint64_t since_ms;             /* opened, or its last response ended */
    bool in_request;               /* the head arrived; answering or streaming */
    bool killed;                   /* shut down for the head deadline */
};

/* Tag index, rebuilt when the schema generation changes: "path/name" ->
 * position, and every path and path prefix (whole segments) -> the range
 * of positions holding tags at or under it. Open addressing, power-of-two
 * sizes, at most half full. */
struct pfx {
    uint32_t first1;               /* first position + 1; 0: empty */
    uint32_t last;                 /* last position */
    uint32_t len;                  /* prefix length in the path of first */
};

struct sse {
    struct sl_http *h;
    uint8_t key[SL_PEER_KEY_BYTES];   /* sl_peer_key of the client */
    struct MHD_Connection *conn;
    bool used, suspended, closing;
    bool ev_hello, ev_schema, ev_link, ev_ping;
    bool batch;                /* /api/stream?batch=1: "tags" events carrying arrays */
    bool filtered;             /* ?tag= / ?path=: only the positions in mask */
    uint64_t *bits;            /* pending tag positions (latest value wins) */
    uint64_t *mask;            /* filtered: the positions followed, resolved from the
                                  request's arguments at hello and after each schema
                                  change (positions move) */
    uint64_t now_us;           /* wall clock of this write turn (one read per turn) */
    size_t cursor;             /* next word to scan: round robin over the table */
    uint64_t last_ms;          /* monotonic time of the last bytes handed to MHD */
    struct sl_jbuf ev;         /* the event being sent, over text[] */
    size_t ev_off;
    char text[EVENT_BYTES];
};

struct sl_http {
    struct MHD_Daemon *d;
    const struct sl_mirror *m;
    sl_http_status_fn status;
    void *ctx;
    char token[SL_HTTP_TOKEN_MAX + 1];
    size_t token_len;
    unsigned timeout_s;
    unsigned max_conns, per_peer, sse_per_peer;
    uint32_t req_ms;
    struct hconn *conns;       /* [nslots] */
    unsigned nslots;
    char hosts[SL_HTTP_HOSTS_MAX];
    char cookie[65];           /* hex of 32 random bytes */
    uint64_t idx_gen;          /* generation the index reflects; UINT64_MAX: none */
    uint32_t *idx_name;        /* [idx_name_mask + 1]: position + 1, 0 empty */
    uint32_t idx_name_mask;
    struct pfx *idx_pfx;       /* [idx_pfx_mask + 1] */
    uint32_t idx_pfx_mask, idx_pfx_n;
    uint32_t max_tags;
    size_t words;              /* bitmap words per SSE slot */
    struct sse *sse;
    unsigned nsse;
    /* The used slots, for sl_http_notify: it runs for every change (millions
     * a second), and a slot is 16 KiB apart from the next, so walking every
     * slot's flag would cost a cache miss per slot per change. */
    struct sse **live;
    unsigned nlive;
    struct enc *enc;           /* [nenc]: the shared encodings */
    uint32_t nenc;
    uint16_t port;
    int fd;
    struct sl_http_stats st;
    struct sl_histsrv *histsrv;  /* NULL: [history] off */
};

/* A streamed tag list: /api/tags, or the tags under one path. */
struct tagstream {
    struct sl_http *h;
    uint64_t generation;
    uint64_t now_us;
    uint32_t pos, end, count;  /* positions scanned: [pos, end) */
    int phase;                 /* 0 head, 1 tags, 2 tail, 3 done */
    char filter[SL_PATH_MAX + 2];
    size_t filter_len;         /* 0: every tag */
    struct sl_jbuf out;
    size_t off;
    char text[SL_JSON_TAG_MAX + 256];
};

/* ---- responses ----------------------------------------------------------- */

static void common_headers(struct MHD_Response *r, const char *type)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* Queues b's text (ownership passes to MHD) with status and type. */
static enum MHD_Result send_body(struct sl_http *h, struct MHD_Connection *c, unsigned status,
                                 const char *type, struct sl_jbuf *b, const char *allow)
{
    if (b->failed) {
        sl_jbuf_free(b);
        return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        sl_jbuf_free(b);
        return MHD_NO;
    }
    b->p = NULL;       /* MHD frees it */
    b->grow = false;
    common_headers(r, type);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"sluice\"");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    h->st.requests++;
    return ret;
}

static enum MHD_Result send_error(struct sl_http *h, struct MHD_Connection *c, unsigned status,
                                  const char *msg, const char *allow)
{
    struct sl_jbuf b;
    if (sl_jbuf_alloc(&b, 256, 4096) != SL_OK)
        return MHD_NO;
    sl_jbuf_lit(&b, "{\"error\":");
    sl_json_str(&b, msg);
    sl_jbuf_printf(&b, ",\"status\":%u}\n", status);
    return send_body(h, c, status, "application/json", &b, allow);
}

/* ---- authentication ------------------------------------------------------ */

/* Compares without an early exit, so the time taken does not say how many
 * leading bytes of a guess were right; it depends on the token's length
 * only. */
static bool token_ok(const struct sl_http *h, const char *got)
{
    if (!got)
        return false;
    size_t n = strlen(got);
    unsigned diff = (unsigned)(n != h->token_len);
    for (size_t i = 0; i < h->token_len; i++) {
        unsigned char g = i < n ? (unsigned char)got[i] : 0;
        diff |= (unsigned)(g ^ (unsigned char)h->token[i]);
    }
    return diff == 0;
}

/* The token in the Authorization header; for /api/stream also the session
 * cookie (EventSource cannot set headers). Never the query string: a URL
 * lands in proxy logs, browser history and Referer headers. */
static bool authorized(const struct sl_http *h, struct MHD_Connection *c, bool stream)
{
    if (h->token_len == 0)
        return true;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        return token_ok(h, a);
    }
    if (stream) {
        const char *k = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, SL_HTTP_COOKIE);
        if (k && strlen(k) == 64) {
            unsigned diff = 0;
            for (size_t i = 0; i < 64; i++)
                diff |= (unsigned)(k[i] ^ h->cookie[i]);
            return diff == 0;
        }
    }
    return false;
}

/* DNS rebinding: a page from evil.example whose name is re-pointed at this
 * server is same-origin for the browser, but its requests carry
 * "Host: evil.example". Without a token, accept only an IP literal (with
 * or without port), "localhost", or a configured name. No Host at all
 * (HTTP/1.0 tools) is not a browser and passes. */
static bool host_ok(const struct sl_http *h, struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!v)
        return true;
    char host[256];
    size_t n;
    if (v[0] == '[') {
        const char *rb = strchr(v, ']');
        if (!rb || (rb[1] && rb[1] != ':') || (size_t)(rb - v - 1) >= sizeof host)
            return false;
        n = (size_t)(rb - v - 1);
        memcpy(host, v + 1, n);
        host[n] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1;
    }
    const char *colon = strchr(v, ':');
    n = colon ? (size_t)(colon - v) : strlen(v);
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, v, n);
    host[n] = '\0';
    if (colon && (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1)))
        return false;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1 || strcasecmp(host, "localhost") == 0)
        return true;
    const char *q = h->hosts, *a, *b;
    while (sl_conf_list_next(&q, &a, &b))
        if ((size_t)(b - a) == n && strncasecmp(a, host, n) == 0)
            return true;
    return false;
}

/* GET /api/session: with a good Authorization header, the cookie that lets
 * this browser open /api/stream. */
static enum MHD_Result send_session(struct sl_http *h, struct MHD_Connection *c)
{
    struct sl_jbuf b;
    if (sl_jbuf_alloc(&b, 64, 256) != SL_OK)
        return MHD_NO;
    sl_jbuf_lit(&b, h->token_len ? "{\"auth\":true}\n" : "{\"auth\":false}\n");
    if (b.failed) {
        sl_jbuf_free(&b);
        return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        sl_jbuf_free(&b);
        return MHD_NO;
    }
    b.p = NULL;
    common_headers(r, "application/json");
    if (h->token_len) {
        char cookie[160];
        snprintf(cookie, sizeof cookie,
                 SL_HTTP_COOKIE "=%s; Path=/api/stream; HttpOnly; SameSite=Strict", h->cookie);
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    h->st.requests++;
    return ret;
}

/* ---- tag lists ----------------------------------------------------------- */

static void stream_head(struct tagstream *s)
{
    struct sl_jbuf *b = &s->out;
    sl_jbuf_lit(b, "{\"schema_id\":");
    sl_json_u64(b, sl_mirror_schema_id(s->h->m));
    sl_jbuf_lit(b, ",\"generation\":");
    sl_json_u64(b, s->generation);
    sl_jbuf_lit(b, ",\"link_up\":");
    sl_jbuf_lit(b, sl_mirror_link_up(s->h->m) ? "true" : "false");
    sl_jbuf_lit(b, ",\"time\":");
    sl_json_time(b, s->now_us);
    if (s->filter_len) {
        sl_jbuf_lit(b, ",\"path\":");
        sl_json_strn(b, s->filter, s->filter_len - 1);
    }
    sl_jbuf_lit(b, ",\"tags\":[");
}

/* True when the tag's path is the filter path or lies under it. */
static bool under(const struct tagstream *s, const struct sl_mirror_tag *t)
{
    size_t pl = strlen(t->path), fl = s->filter_len - 1;   /* filter holds "path/" */
    return (pl == fl && memcmp(t->path, s->filter, fl) == 0) ||
           (pl > fl && memcmp(t->path, s->filter, fl + 1) == 0);
}

/* Produces the next piece of the body into s->out; false at the end. */
static bool stream_next(struct tagstream *s)
{
    sl_jbuf_reset(&s->out);
    s->off = 0;
    if (s->phase == 0) {
        stream_head(s);
        s->phase = 1;
        s->count = 0;
        return true;
    }
    if (s->phase == 1) {
        uint32_t n = sl_mirror_count(s->h->m);
        if (n > s->end)
            n = s->end;
        while (s->pos < n) {
            struct sl_mirror_tag t;
            uint32_t pos = s->pos++;
            if (sl_mirror_get(s->h->m, pos, &t) != SL_OK)
                break;
            if (s->filter_len && !under(s, &t))
                continue;
            if (s->count++)
                sl_jbuf_lit(&s->out, ",\n");
            sl_json_tag(&s->out, &t, s->now_us, SL_JSON_TAG_HTTP);
            return true;
        }
        s->phase = 2;
    }
    if (s->phase == 2) {
        sl_jbuf_printf(&s->out, "],\"count\":%" PRIu32 "}\n", s->count);
        s->phase = 3;
        return true;
    }
    return false;
}

static ssize_t stream_read(void *cls, uint64_t at, char *buf, size_t max)
{
    (void)at;
    struct tagstream *s = cls;
    /* A schema change moved the positions: a clean end is impossible, so
     * the client sees a broken chunked body rather than a mixed list. */
    if (sl_mirror_generation(s->h->m) != s->generation)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = 0;
    while (n < max) {
        if (s->off >= s->out.len && !stream_next(s))
            break;
        size_t k = s->out.len - s->off;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, s->out.p + s->off, k);
        s->off += k;
        n += k;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    free(cls);
}

/* Streams every tag (filter NULL) or those at or under one path, looking
 * only at positions [first, end). */
static enum MHD_Result send_tags(struct sl_http *h, struct MHD_Connection *c, const char *filter,
                                 uint32_t first, uint32_t end)
{
    struct tagstream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->h = h;
    s->generation = sl_mirror_generation(h->m);
    s->now_us = sl_clock_wall_us();
    s->pos = first;
    s->end = end;
    sl_jbuf_fixed(&s->out, s->text, sizeof s->text);
    if (filter) {
        s->filter_len = strlen(filter) + 1;
        memcpy(s->filter, filter, s->filter_len - 1);
        s->filter[s->filter_len - 1] = '/';
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_BYTES, stream_read, s, stream_free);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    common_headers(r, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    h->st.requests++;
    return ret;
}

/* FNV-1a, 64 bit, continued from h (start with FNV_START). */
#define FNV_START 0xcbf29ce484222325ull
static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The index key of a tag: "path/name", or "name" with an empty path. */
static uint64_t tag_hash(const struct sl_mirror_tag *t)
{
    size_t pl = strlen(t->path);
    uint64_t x = fnv(FNV_START, t->path, pl);
    if (pl)
        x = fnv(x, "/", 1);
    return fnv(x, t->name, strlen(t->name));
}

static bool tag_is(const struct sl_mirror_tag *t, const char *rest, size_t rl)
{
    size_t pl = strlen(t->path), nl = strlen(t->name);
    size_t full = pl ? pl + 1 + nl : nl;
    return full == rl && (pl == 0 || (memcmp(rest, t->path, pl) == 0 && rest[pl] == '/')) &&
           memcmp(rest + (pl ? pl + 1 : 0), t->name, nl) == 0;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 16;
    while (p < n && p < (1u << 31))
        p <<= 1;
    return p;
}

/* Finds the slot of prefix path[0..len) (its entry, or the empty slot where
 * it belongs). */
static struct pfx *pfx_slot(struct sl_http *h, const char *path, uint32_t len)
{
    uint32_t i = (uint32_t)fnv(FNV_START, path, len) & h->idx_pfx_mask;
    for (;;) {
        struct pfx *e = &h->idx_pfx[i];
        if (!e->first1)
            return e;
        struct sl_mirror_tag t;
        if (e->len == len && sl_mirror_get(h->m, e->first1 - 1, &t) == SL_OK &&
            memcmp(t.path, path, len) == 0)
            return e;
        i = (i + 1) & h->idx_pfx_mask;
    }
}

static void index_free(struct sl_http *h)
{
    free(h->idx_name);
    free(h->idx_pfx);
    h->idx_name = NULL;
    h->idx_pfx = NULL;
    h->idx_gen = UINT64_MAX;
}

/* Doubles the prefix table (rehashing every entry). */
static bool pfx_grow(struct sl_http *h)
{
    struct pfx *old = h->idx_pfx;
    uint32_t oldn = h->idx_pfx_mask + 1;
    if (oldn >= (1u << 30))
        return false;
    h->idx_pfx = calloc((size_t)oldn * 2, sizeof *h->idx_pfx);
    if (!h->idx_pfx) {
        h->idx_pfx = old;
        return false;
    }
    h->idx_pfx_mask = oldn * 2 - 1;
    for (uint32_t i = 0; i < oldn; i++) {
        struct sl_mirror_tag t;
        if (old[i].first1 && sl_mirror_get(h->m, old[i].first1 - 1, &t) == SL_OK)
            *pfx_slot(h, t.path, old[i].len) = old[i];
    }
    free(old);
    return true;
}

/* Builds the index for the mirror's current generation. Runs on the first
 * lookup after a schema change: O(tags x path depth) once, then every
 * lookup is O(1). Allocates (only here); false when memory runs out (the
 * caller falls back to 503). */
static bool index_build(struct sl_http *h)
{
    uint64_t gen = sl_mirror_generation(h->m);
    if (h->idx_name && h->idx_gen == gen)
        return true;
    index_free(h);
    uint32_t n = sl_mirror_count(h->m);
    uint32_t nn = pow2_at_least((uint64_t)n * 2);
    h->idx_name = calloc(nn, sizeof *h->idx_name);
    h->idx_pfx = calloc(nn, sizeof *h->idx_pfx);
    if (!h->idx_name || !h->idx_pfx) {
        index_free(h);
        return false;
    }
    h->idx_name_mask = nn - 1;
    h->idx_pfx_mask = nn - 1;
    h->idx_pfx_n = 0;
    for (uint32_t pos = 0; pos < n; pos++) {
        struct sl_mirror_tag t;
        if (sl_mirror_get(h->m, pos, &t) != SL_OK)
            break;
        uint32_t i = (uint32_t)tag_hash(&t) & h->idx_name_mask;
        while (h->idx_name[i])
            i = (i + 1) & h->idx_name_mask;   /* duplicates: the first one wins at lookup */
        h->idx_name[i] = pos + 1;
        size_t pl = strlen(t.path);
        for (size_t k = 1; k <= pl; k++) {
            if (k < pl && t.path[k] != '/')
                continue;
            if ((uint64_t)(h->idx_pfx_n + 1) * 2 > (uint64_t)h->idx_pfx_mask + 1 && !pfx_grow(h)) {
                index_free(h);
                return false;
            }
            struct pfx *e = pfx_slot(h, t.path, (uint32_t)k);
            if (!e->first1) {
                e->first1 = pos + 1;
                e->len = (uint32_t)k;
                h->idx_pfx_n++;
            }
            e->last = pos;
        }
    }
    h->idx_gen = gen;
    return true;
}

/* The position + 1 of the tag whose "path/name" is rest[0..rl) (its
 * snapshot in *t), 0 when there is none. The index must be built. */
static uint32_t index_find(struct sl_http *h, const char *rest, size_t rl, struct sl_mirror_tag *t)
{
    uint32_t i = (uint32_t)fnv(FNV_START, rest, rl) & h->idx_name_mask;
    for (; h->idx_name[i]; i = (i + 1) & h->idx_name_mask)
        if (sl_mirror_get(h->m, h->idx_name[i] - 1, t) == SL_OK && tag_is(t, rest, rl))
            return h->idx_name[i];
    return 0;
}

/* /api/tags/<path>/<name>: the tag whose "path/name" is rest, else the list
 * of tags at or under the path rest, else 404. O(1) through the index
 * (rebuilt after a schema change), plus the listed range for a path. */
static enum MHD_Result send_tag(struct sl_http *h, struct MHD_Connection *c, const char *rest)
{
    size_t rl = strlen(rest);
    while (rl && rest[rl - 1] == '/')
        rl--;
    if (rl == 0)
        return send_tags(h, c, NULL, 0, UINT32_MAX);
    if (!index_build(h))
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory for the tag index", NULL);
    struct sl_mirror_tag t;
    if (index_find(h, rest, rl, &t)) {
        struct sl_jbuf b;
        if (sl_jbuf_alloc(&b, 1024, SL_JSON_TAG_MAX + 8) != SL_OK)
            return MHD_NO;
        sl_json_tag(&b, &t, sl_clock_wall_us(), SL_JSON_TAG_HTTP);
        sl_jbuf_lit(&b, "\n");
        return send_body(h, c, MHD_HTTP_OK, "application/json", &b, NULL);
    }
    if (rl <= SL_PATH_MAX) {
        const struct pfx *e = pfx_slot(h, rest, (uint32_t)rl);
        if (e->first1) {
            char path[SL_PATH_MAX + 1];
            memcpy(path, rest, rl);
            path[rl] = '\0';
            return send_tags(h, c, path, e->first1 - 1, e->last + 1);
        }
    }
    h->st.not_found++;
    return send_error(h, c, MHD_HTTP_NOT_FOUND, "no such tag or path", NULL);
}

/* ---- status and metrics -------------------------------------------------- */

static void get_status(struct sl_http *h, struct sl_http_status *s)
{
    memset(s, 0, sizeof *s);
    if (h->status)
        h->status(h->ctx, s);
}

static uint64_t drops_total(const struct sl_receiver_stats *rx)
{
    uint64_t t = 0;
    for (int st = 0; st < SL_RX_STAGES; st++)
        for (int e = 0; e < SL_ERR__COUNT; e++)
            t += rx->drops[st][e];
    return t;
}

static void field_u64(struct sl_jbuf *b, const char *key, uint64_t v, bool first)
{
    sl_jbuf_printf(b, "%s\"%s\":%" PRIu64, first ? "" : ",", key, v);
}

static enum MHD_Result send_status(struct sl_http *h, struct MHD_Connection *c)
{
    struct sl_http_status s;
    get_status(h, &s);
    uint64_t now = sl_clock_wall_us();
    struct sl_jbuf b;
    if (sl_jbuf_alloc(&b, 8192, SL_HTTP_BODY_MAX) != SL_OK)
        return MHD_NO;
    sl_jbuf_lit(&b, "{\"time\":");
    sl_json_time(&b, now);
    sl_jbuf_lit(&b, ",\"started\":");
    if (s.started_us)
        sl_json_time(&b, s.started_us);
    else
        sl_jbuf_lit(&b, "null");

    sl_jbuf_lit(&b, ",\"link\":{\"up\":");
    sl_jbuf_lit(&b, sl_mirror_link_up(h->m) ? "true" : "false");
    sl_jbuf_lit(&b, ",\"last_beacon\":");
    if (s.have_beacon) {
        sl_json_time(&b, s.last_beacon_us);
        sl_jbuf_lit(&b, ",\"beacon_age_ms\":");
        sl_json_u64(&b, now > s.last_beacon_us ? (now - s.last_beacon_us) / 1000u : 0);
        sl_jbuf_lit(&b, ",\"clock_offset_ms\":");
        sl_json_num(&b, (double)s.clock_offset_us / 1000.0);
    } else {
        sl_jbuf_lit(&b, "null,\"beacon_age_ms\":null,\"clock_offset_ms\":null");
    }
    sl_jbuf_lit(&b, ",\"frame_loss\":");
    sl_json_num(&b, s.frame_loss);
    sl_jbuf_lit(&b, "}");

    sl_jbuf_lit(&b, ",\"tx\":");
    if (s.have_beacon) {
        const struct sl_beacon *bc = &s.beacon;
        sl_jbuf_printf(&b, "{\"session\":\"%016" PRIx64 "\"", bc->session);
        field_u64(&b, "epoch", bc->epoch, false);
        sl_jbuf_lit(&b, ",\"key_id\":");
        sl_json_hex(&b, bc->key_id, sizeof bc->key_id);
        sl_jbuf_lit(&b, ",\"config_fp\":");
        sl_json_hex(&b, bc->config_fp, sizeof bc->config_fp);
        sl_jbuf_lit(&b, ",\"schema_fp\":");
        sl_json_hex(&b, bc->schema_fp, sizeof bc->schema_fp);
        field_u64(&b, "highest_block", bc->highest_block, false);
        field_u64(&b, "k", bc->k, false);
        field_u64(&b, "m", bc->m, false);
        field_u64(&b, "symbol_size", bc->symbol_size, false);
        field_u64(&b, "interleave", bc->interleave, false);
        field_u64(&b, "rate_kbps", bc->rate_kbps, false);
        field_u64(&b, "frames_sent", bc->frames_sent, false);
        field_u64(&b, "blocks_sent", bc->blocks_sent, false);
        field_u64(&b, "poll_errors", bc->poll_errors, false);
        field_u64(&b, "queue_drops", bc->queue_drops, false);
        sl_jbuf_lit(&b, "}");
    } else {
        sl_jbuf_lit(&b, "null");
    }

    const struct sl_receiver_stats *rx = &s.rx;
    sl_jbuf_lit(&b, ",\"rx\":{");
    field_u64(&b, "datagrams", rx->datagrams, true);
    field_u64(&b, "frames", rx->frames, false);
    field_u64(&b, "beacons", rx->beacons, false);
    field_u64(&b, "blocks", rx->blocks, false);
    field_u64(&b, "blocks_recovered", rx->blocks_recovered, false);
    field_u64(&b, "blocks_unrecoverable", rx->fec.unrecoverable, false);
    field_u64(&b, "blocks_evicted", rx->fec.evicted, false);
    field_u64(&b, "fec_symbols", rx->fec.symbols_in, false);
    field_u64(&b, "fec_duplicates", rx->fec.duplicates, false);
    field_u64(&b, "fec_late", rx->fec.late, false);
    field_u64(&b, "drops_total", drops_total(rx), false);
    sl_jbuf_lit(&b, ",\"drops\":{");
    bool first_stage = true;
    for (int st = 0; st < SL_RX_STAGES; st++) {
        bool first = true;
        for (int e = 0; e < SL_ERR__COUNT; e++) {
            if (!rx->drops[st][e])
                continue;
            if (first) {
                sl_jbuf_lit(&b, first_stage ? "" : ",");
                sl_json_str(&b, sl_receiver_stage_name((enum sl_rx_stage)st));
                sl_jbuf_lit(&b, ":{");
                first_stage = false;
            }
            sl_jbuf_lit(&b, first ? "" : ",");
            sl_json_str(&b, sl_err_name((sl_err)e));
            sl_jbuf_printf(&b, ":%" PRIu64, rx->drops[st][e]);
            first = false;
        }
        if (!first)
            sl_jbuf_lit(&b, "}");
    }
    sl_jbuf_lit(&b, "}}");

    struct sl_mirror_stats ms;
    sl_mirror_stats(h->m, &ms);
    struct sl_metrics_qcount q;
    sl_metrics_qualities(h->m, &q);
    sl_jbuf_lit(&b, ",\"mirror\":{");
    field_u64(&b, "schema_id", sl_mirror_schema_id(h->m), true);
    field_u64(&b, "generation", sl_mirror_generation(h->m), false);
    field_u64(&b, "tags", sl_mirror_count(h->m), false);
    field_u64(&b, "applied", ms.applied, false);
    field_u64(&b, "older", ms.older, false);
    field_u64(&b, "schema_loads", ms.schema_loads, false);
    field_u64(&b, "schema_errors", ms.schema_errors, false);
    sl_jbuf_lit(&b, ",\"by_quality\":{");
    for (int i = 0; i < SL_METRICS_QNAMES; i++)
        field_u64(&b, q.name[i], q.n[i], i == 0);
    sl_jbuf_lit(&b, "}}");

    sl_jbuf_lit(&b, ",\"modbus\":{");
    field_u64(&b, "refused_writes", s.modbus_refused_writes, true);
    sl_jbuf_lit(&b, "},\"http\":{");
    field_u64(&b, "requests", h->st.requests, true);
    field_u64(&b, "sse_clients", h->st.sse_clients, false);
    /* The page asks before it fetches a trend: with [history] off it says
     * so instead of drawing a 503 into the browser's console. */
    sl_jbuf_lit(&b, h->histsrv != NULL ? ",\"history\":true" : ",\"history\":false");
    sl_jbuf_lit(&b, "},\"counters\":{");
    for (size_t i = 0; i < s.ncounters; i++) {
        sl_jbuf_lit(&b, i ? "," : "");
        sl_json_str(&b, s.counters[i].name);
        sl_jbuf_printf(&b, ":%" PRIu64, s.counters[i].value);
    }
    sl_jbuf_lit(&b, "}}\n");
    return send_body(h, c, MHD_HTTP_OK, "application/json", &b, NULL);
}

/* The metrics are defined and rendered by sl_metrics (one module for the
 * daemon's every counter); this only serves them. */
static enum MHD_Result send_metrics(struct sl_http *h, struct MHD_Connection *c)
{
    struct sl_http_status s;
    get_status(h, &s);
    struct sl_jbuf b;
    if (sl_jbuf_alloc(&b, 16384, SL_HTTP_BODY_MAX) != SL_OK)
        return MHD_NO;
    struct sl_http_stats hs;
    sl_http_stats(h, &hs);
    sl_metrics_prom(&b, &s, &hs, h->m, sl_clock_wall_us());
    return send_body(h, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &b, NULL);
}

/* ---- connections ---------------------------------------------------------- */

static struct hconn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* MHD asks before taking a connection: refuse when the slots are full or
 * the address holds per_peer of them already (counted). O(slots). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    struct sl_http *h = cls;
    uint8_t key[SL_PEER_KEY_BYTES];
    sl_peer_key(key, addr);
    unsigned same = 0, used = 0;
    for (unsigned i = 0; i < h->nslots; i++) {
        if (!h->conns[i].conn)
            continue;
        used++;
        if (memcmp(h->conns[i].key, key, sizeof key) == 0)
            same++;
    }
    if (used >= h->max_conns) {
        h->st.refused_cap++;
        return MHD_NO;
    }
    if (same >= h->per_peer) {
        h->st.refused_peer++;
        return MHD_NO;
    }
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct sl_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct hconn *k = NULL;
        for (unsigned i = 0; i < h->nslots && !k; i++)
            if (!h->conns[i].conn)
                k = &h->conns[i];
        *socket_context = k;
        if (!k)
            return;   /* cannot happen: on_accept checked; then just untracked */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        sl_peer_key(k->key, ci ? ci->client_addr : NULL);
        k->conn = c;
        k->since_ms = sl_clock_mono_ms();
        k->in_request = k->killed = false;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct hconn *k = *socket_context;
        if (k)
            k->conn = NULL;
        *socket_context = NULL;
    }
}

/* A response was sent in full (or the request ended otherwise): the head
 * deadline starts again for the next request on this connection. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con_cls;
    (void)toe;
    struct hconn *k = conn_of(c);
    if (k) {
        k->in_request = false;
        k->since_ms = sl_clock_mono_ms();
    }
}

/* Shuts down connections whose request head is overdue. MHD cannot close
 * a connection on request from outside, so the socket is shut down and MHD
 * closes it when it next reads (end of stream). O(slots). */
static void reap_slow(struct sl_http *h, uint64_t now)
{
    for (unsigned i = 0; i < h->nslots; i++) {
        struct hconn *k = &h->conns[i];
        if (!k->conn || k->in_request || k->killed || now - k->since_ms < h->req_ms)
            continue;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(k->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
            continue;
        shutdown(ci->connect_fd, SHUT_RDWR);
        k->killed = true;
        h->st.closed_slow++;
    }
}

/* ---- server-sent events -------------------------------------------------- */

static void sse_resume(struct sse *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* A filtered stream's arguments (?tag=PATH/NAME, ?path=PREFIX), walked
 * with MHD_get_connection_values: checked once at the request, resolved to
 * positions at hello and after each schema change. */
struct filt {
    struct sl_http *h;
    struct sse *s;             /* NULL: only check the arguments */
    struct sl_jbuf *b;         /* resolving: the event the unknown names go to */
    unsigned n;                /* tag and path arguments seen */
    uint32_t following;        /* resolving: positions marked */
    uint32_t unknown;          /* resolving: arguments naming nothing */
    const char *bad;           /* checking: why the request is refused */
    /* resolving: the paths scanned so far (MHD's copies, alive for the
     * request), so a path at or under one of them is not scanned again:
     * 256 times the root would otherwise walk the table 256 times. */
    struct { const char *p; size_t n; } seen[SL_HTTP_STREAM_FILTERS];
    unsigned nseen;
};

/* Marks position pos followed, with its current value pending (a display
 * gets every value it follows at once, not at the tag's next change). */
static void filt_mark(struct filt *f, uint32_t pos)
{
    uint64_t bit = 1ull << (pos % 64);
    if (pos >= f->h->max_tags || (f->s->mask[pos / 64] & bit))
        return;
    f->s->mask[pos / 64] |= bit;
    f->s->bits[pos / 64] |= bit;
    f->following++;
}

/* Marks the tags named by one argument; false when it names none. */
static bool filt_resolve(struct filt *f, bool path, const char *v, size_t vl)
{
    struct sl_http *h = f->h;
    struct sl_mirror_tag t;
    if (!path) {
        uint32_t p1 = index_find(h, v, vl, &t);
        if (p1)
            filt_mark(f, p1 - 1);
        return p1 != 0;
    }
    if (vl > SL_PATH_MAX)
        return false;
    const struct pfx *e = pfx_slot(h, v, (uint32_t)vl);
    if (!e->first1)
        return false;
    for (unsigned i = 0; i < f->nseen; i++) {
        size_t n = f->seen[i].n;
        if (n <= vl && memcmp(f->seen[i].p, v, n) == 0 && (n == vl || v[n] == '/'))
            return true;   /* its tags are marked already */
    }
    if (f->nseen < SL_HTTP_STREAM_FILTERS) {
        f->seen[f->nseen].p = v;
        f->seen[f->nseen++].n = vl;
    }
    /* [first, last] may hold tags of other paths between (positions follow
     * the schema's order): only those at or under the prefix count. */
    for (uint32_t pos = e->first1 - 1; pos <= e->last; pos++) {
        if (sl_mirror_get(h->m, pos, &t) != SL_OK)
            break;
        size_t pl = strlen(t.path);
        if (pl >= vl && memcmp(t.path, v, vl) == 0 && (pl == vl || t.path[vl] == '/'))
            filt_mark(f, pos);
    }
    return true;
}

static enum MHD_Result filt_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct filt *f = cls;
    bool path = strcmp(key, "path") == 0;
    if (!path && strcmp(key, "tag") != 0)
        return MHD_YES;   /* batch, or anything else: not a filter */
    if (++f->n > SL_HTTP_STREAM_FILTERS) {
        f->bad = "more than 256 tag and path arguments";
        return MHD_NO;
    }
    size_t vl = value ? strlen(value) : 0;
    while (path && vl && value[vl - 1] == '/')
        vl--;   /* "area/line/" is the path "area/line" */
    if (vl == 0) {
        f->bad = path ? "empty path argument" : "empty tag argument";
        return MHD_NO;
    }
    if (vl > (path ? SL_PATH_MAX : SL_PATH_MAX + 1 + SL_NAME_MAX)) {
        f->bad = path ? "path argument longer than a path" : "tag argument longer than path/name";
        return MHD_NO;
    }
    for (size_t i = 0; i < vl; i++) {
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
            f->bad = "control character in a tag or path argument";
            return MHD_NO;
        }
    }
    if (!f->s)
        return MHD_YES;
    if (!filt_resolve(f, path, value, vl)) {
        f->unknown++;
        /* Named in the event while it fits (the rest only counted). */
        struct sl_jbuf *b = f->b;
        if (b->len + vl * 6 + 64 < b->cap) {
            sl_jbuf_lit(b, f->unknown > 1 ? "," : "");
            sl_json_strn(b, value, vl);
        }
    }
    return MHD_YES;
}

/* Rebuilds s->mask (and marks every followed tag pending) from the
 * request's arguments, appending to the hello or schema event
 * ,"following":N,"unknown":[...],"unknown_count":K. An index that cannot
 * be built (no memory) leaves the stream following nothing, said so by
 * the counts. */
static void sse_refilter(struct sse *s, struct sl_jbuf *b)
{
    struct sl_http *h = s->h;
    struct filt f = { .h = h, .s = s, .b = b };
    memset(s->mask, 0, h->words * sizeof *s->mask);
    sl_jbuf_lit(b, ",\"unknown\":[");
    if (index_build(h))
        MHD_get_connection_values(s->conn, MHD_GET_ARGUMENT_KIND, filt_arg, &f);
    sl_jbuf_printf(b, "],\"unknown_count\":%" PRIu32 ",\"following\":%" PRIu32, f.unknown, f.following);
}

/* The slot of position pos holding t's current value, encoded now if it
 * held another (or none); NULL: no slot (position above the cache, or the
 * text longer than a slot). O(1) copy on a hit; one encoding on a miss. */
static const struct enc *enc_get(struct sl_http *h, uint32_t pos, const struct sl_mirror_tag *t)
{
    if (pos >= h->nenc)
        return NULL;
    struct enc *e = &h->enc[pos];
    uint64_t gen = sl_mirror_generation(h->m);
    if (e->state == ENC_EMPTY || e->gen != gen || e->raw != t->raw || e->src_us != t->source_time_us ||
        e->rx_us != t->rx_time_us || e->quality != t->quality || e->has_value != t->has_value) {
        struct sl_jbuf eb;
        sl_jbuf_fixed(&eb, e->text, sizeof e->text);
        sl_json_tag_shared(&eb, t, &e->c);
        e->gen = gen;
        e->raw = t->raw;
        e->src_us = t->source_time_us;
        e->rx_us = t->rx_time_us;
        e->quality = t->quality;
        e->has_value = t->has_value;
        e->state = eb.failed ? ENC_LONG : ENC_TEXT;
        h->st.sse_encoded++;
    } else if (e->state == ENC_TEXT) {
        h->st.sse_shared++;
    }
    return e->state == ENC_TEXT ? e : NULL;
}

/* Appends position pos (value t) to b in form `which`, from the shared
 * slot when there is one: byte for byte what sl_json_tag writes. */
static void put_tag(struct sl_http *h, struct sl_jbuf *b, uint32_t pos, const struct sl_mirror_tag *t,
                    uint64_t now_us, unsigned which)
{
    const struct enc *e = enc_get(h, pos, t);
    if (e)
        sl_json_tag_put_shared(b, e->text, &e->c, t, now_us, which);
    else
        sl_json_tag(b, t, now_us, which);
}

/* Fills s->ev with the next event; false when nothing is pending. */
static bool sse_next(struct sse *s)
{
    const struct sl_mirror *m = s->h->m;
    struct sl_jbuf *b = &s->ev;
    sl_jbuf_reset(b);
    s->ev_off = 0;
    if (s->ev_hello || s->ev_schema) {
        sl_jbuf_lit(b, s->ev_hello ? "retry: 2000\nevent: hello\ndata: {\"schema_id\":"
                                   : "event: schema\ndata: {\"schema_id\":");
        s->ev_hello = s->ev_schema = false;
        sl_json_u64(b, sl_mirror_schema_id(m));
        sl_jbuf_lit(b, ",\"generation\":");
        sl_json_u64(b, sl_mirror_generation(m));
        sl_jbuf_lit(b, ",\"tags\":");
        sl_json_u64(b, sl_mirror_count(m));
        sl_jbuf_lit(b, ",\"link_up\":");
        sl_jbuf_lit(b, sl_mirror_link_up(m) ? "true" : "false");
        if (s->filtered)
            sse_refilter(s, b);
        sl_jbuf_lit(b, "}\n\n");
        return !b->failed;
    }
    if (s->ev_link) {
        s->ev_link = false;
        sl_jbuf_lit(b, sl_mirror_link_up(m) ? "event: link\ndata: {\"up\":true}\n\n"
                                            : "event: link\ndata: {\"up\":false}\n\n");
        return true;
    }
    uint32_t count = sl_mirror_count(m);
    size_t words = s->h->words;
    uint32_t batched = 0;
    for (size_t i = 0; i < words; i++) {
        size_t w = (s->cursor + i) % words;
        while (s->bits[w]) {
            /* A batch stops while one more tag and the closing "]" still fit. */
            if (batched && b->len + SL_JSON_TAG_LIVE_MAX + 8u > b->cap) {
                s->cursor = w;
                goto close_batch;
            }
            unsigned bit = (unsigned)__builtin_ctzll(s->bits[w]);
            s->bits[w] &= s->bits[w] - 1;
            uint32_t pos = (uint32_t)(w * 64u + bit);
            struct sl_mirror_tag t;
            if (pos >= count || sl_mirror_get(m, pos, &t) != SL_OK)
                continue;
            s->cursor = w;
            if (!s->batch) {
                sl_jbuf_lit(b, "event: tag\ndata: ");
                put_tag(s->h, b, pos, &t, s->now_us, SL_JSON_TAG_HTTP);
                sl_jbuf_lit(b, "\n\n");
                return !b->failed;
            }
            sl_jbuf_lit(b, batched++ ? "," : "event: tags\ndata: [");
            put_tag(s->h, b, pos, &t, 0, SL_JSON_TAG_LIVE);
        }
    }
close_batch:
    if (batched) {
        sl_jbuf_lit(b, "]\n\n");
        return !b->failed;
    }
    if (s->ev_ping) {
        s->ev_ping = false;
        sl_jbuf_lit(b, ": ping\n\n");
        return true;
    }
    return false;
}

static ssize_t sse_read(void *cls, uint64_t at, char *buf, size_t max)
{
    (void)at;
    struct sse *s = cls;
    if (s->closing)
        return MHD_CONTENT_READER_END_OF_STREAM;
    s->now_us = sl_clock_wall_us();
    size_t n = 0;
    while (n < max) {
        if (s->ev_off >= s->ev.len && !sse_next(s))
            break;
        size_t k = s->ev.len - s->ev_off;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, s->ev.p + s->ev_off, k);
        s->ev_off += k;
        n += k;
    }
    if (n == 0) {
        /* Nothing to say: park the connection until sl_http_notify or the
         * ping timer resumes it (returning 0 unsuspended would spin). */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        return 0;
    }
    s->last_ms = sl_clock_mono_ms();
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    struct sl_http *h = s->h;
    for (unsigned i = 0; i < h->nlive; i++) {
        if (h->live[i] == s) {
            h->live[i] = h->live[--h->nlive];
            break;
        }
    }
    s->used = false;
    s->suspended = false;
    s->conn = NULL;
    s->h->st.sse_clients--;
}

static enum MHD_Result send_stream(struct sl_http *h, struct MHD_Connection *c, bool head)
{
    struct filt f = { .h = h };
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, filt_arg, &f);
    if (f.bad) {
        h->st.bad_request++;
        return send_error(h, c, MHD_HTTP_BAD_REQUEST, f.bad, NULL);
    }
    struct sse *s = NULL;
    for (unsigned i = 0; i < h->nsse && !head; i++) {
        if (!h->sse[i].used) {
            s = &h->sse[i];
            break;
        }
    }
    if (!s && !head) {
        h->st.sse_refused++;
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many event streams", NULL);
    }
    const struct hconn *k = conn_of(c);
    if (s && k) {
        unsigned same = 0;
        for (unsigned i = 0; i < h->nsse; i++)
            if (h->sse[i].used && memcmp(h->sse[i].key, k->key, sizeof k->key) == 0)
                same++;
        if (same >= h->sse_per_peer) {
            h->st.sse_refused_peer++;
            return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "too many event streams from this address", NULL);
        }
    }
    struct MHD_Response *r;
    if (head) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        memset(s->bits, 0, h->words * sizeof *s->bits);
        memset(s->mask, 0, h->words * sizeof *s->mask);
        s->filtered = f.n > 0;
        if (k)
            memcpy(s->key, k->key, sizeof s->key);
        else
            memset(s->key, 0, sizeof s->key);
        s->conn = c;
        s->used = true;
        h->live[h->nlive++] = s;
        s->suspended = s->closing = s->ev_schema = s->ev_link = s->ev_ping = false;
        const char *batch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "batch");
        s->batch = batch && strcmp(batch, "1") == 0;
        s->ev_hello = true;
        s->cursor = 0;
        s->last_ms = sl_clock_mono_ms();
        sl_jbuf_fixed(&s->ev, s->text, sizeof s->text);
        s->ev_off = 0;
        h->st.sse_clients++;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK_BYTES, sse_read, s,
                                              sse_free);
        if (!r) {
            sse_free(s);
            return MHD_NO;
        }
        /* Idle timeout well above the ping period: a live stream is never
         * cut, a dead peer (its window full) is. */
        unsigned t = 3 * SL_HTTP_SSE_PING_MS / 1000;
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                  h->timeout_s > t ? h->timeout_s : t);
    }
    common_headers(r, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    h->st.requests++;
    return ret;
}

void sl_http_notify(struct sl_http *h, enum sl_mirror_event ev, uint32_t pos)
{
    if (!h || !h->nlive)
        return;
    uint32_t count = ev == SL_MIRROR_EV_VALUE ? 0 : sl_mirror_count(h->m);
    for (unsigned i = 0; i < h->nlive; i++) {
        struct sse *s = h->live[i];
        if (s->closing)
            continue;
        if (ev == SL_MIRROR_EV_VALUE) {
            if (pos >= h->max_tags)
                continue;
            uint64_t bit = 1ull << (pos % 64);
            /* A tag this stream does not follow: no mark, no wake-up. */
            if (s->filtered && !(s->mask[pos / 64] & bit))
                continue;
            s->bits[pos / 64] |= bit;
        } else if (ev == SL_MIRROR_EV_LINK) {
            s->ev_link = true;
            size_t n = count < h->max_tags ? count : h->max_tags;
            if (s->filtered) {
                for (size_t w = 0; w < (n + 63) / 64; w++)
                    s->bits[w] |= s->mask[w];
            } else {
                memset(s->bits, 0xFF, (n / 64) * sizeof *s->bits);
                if (n % 64)
                    s->bits[n / 64] |= (1ull << (n % 64)) - 1;
            }
        } else if (ev == SL_MIRROR_EV_SCHEMA) {
            memset(s->bits, 0, h->words * sizeof *s->bits);
            /* Positions moved: the filter is resolved again when the
             * schema event is written (sse_next). */
            if (s->filtered)
                memset(s->mask, 0, h->words * sizeof *s->mask);
            s->ev_schema = true;
            s->ev_link = false;
        } else {
            continue;
        }
        sse_resume(s);
    }
}

/* A file embedded in the binary (the chart library), cacheable: it changes
 * only with the binary. */
static enum MHD_Result send_static(struct sl_http *h, struct MHD_Connection *c, const char *body, size_t len,
                                   const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    h->st.requests++;
    return ret;
}

/* ---- history ------------------------------------------------------------- */

/* The con_cls of a request handed to the history query thread: when the
 * thread resumes the connection, libmicrohttpd calls on_request again, and
 * this says "answered already, close it". */
static char histsrv_handed;

static const char *history_arg(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

/* Query thread: the job's socket is shut down; libmicrohttpd closes the
 * connection on its next run (MHD_resume_connection is thread-safe with
 * MHD_ALLOW_SUSPEND_RESUME, whose inter-thread channel wakes sl_http_fd). */
static void histsrv_done(void *ctx, void *conn)
{
    (void)ctx;
    MHD_resume_connection(conn);
}

/* GET /api/history: parameters checked here (400), the query handed to the
 * history query thread with the connection's socket (503 when [history]
 * is off or every slot is busy). Costs this thread a parse and a copy. */
static enum MHD_Result send_history(struct sl_http *h, struct MHD_Connection *c, bool head, const char *version,
                                    void **con_cls)
{
    if (!h->histsrv)
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "history is off (no [history] section)", NULL);
    struct sl_histsrv_job j;
    memset(&j, 0, sizeof j);
    const char *why = "";
    if (sl_histapi_parse(&j.req, history_arg, c, (int64_t)sl_clock_wall_us(), &why) != SL_OK) {
        h->st.bad_request++;
        return send_error(h, c, MHD_HTTP_BAD_REQUEST, why, NULL);
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return MHD_NO;
    j.fd = ci->connect_fd;
    j.conn = c;
    j.head = head;
    j.http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
    sl_err e = sl_histsrv_reserve(h->histsrv);
    if (e != SL_OK)
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                          e == SL_ERR_TABLE_FULL ? "busy: too many history queries at once, retry later"
                                                 : "history queries are not being served",
                          NULL);
    /* Suspended before the submit: from then on the query thread may
     * finish and resume the connection at any moment. */
    MHD_suspend_connection(c);
    sl_histsrv_submit(h->histsrv, &j);
    *con_cls = &histsrv_handed;
    h->st.requests++;
    return MHD_YES;
}

/* ---- dispatch ------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)upload_data;
    struct sl_http *h = cls;
    *upload_size = 0;     /* any request body is ignored */
    if (*con_cls == &histsrv_handed)
        return MHD_NO;    /* the history query thread answered: close */
    struct hconn *k = conn_of(c);
    if (k)
        k->in_request = true;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        h->st.not_allowed++;
        return send_error(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", "GET, HEAD");
    }
    if (!h->token_len && !host_ok(h, c)) {
        h->st.bad_host++;
        return send_error(h, c, MHD_HTTP_FORBIDDEN,
                          "Host not allowed (use an IP address, localhost, [http] allowed_hosts, or a token)",
                          NULL);
    }
    if (!authorized(h, c, strcmp(url, "/api/stream") == 0)) {
        h->st.unauthorized++;
        return send_error(h, c, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token", NULL);
    }
    if (strcmp(url, "/api/session") == 0)
        return send_session(h, c);
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sl_dashboard_html_len, (void *)sl_dashboard_html, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        common_headers(r, "text/html; charset=utf-8");
        /* Everything the page needs is inline or same-origin. */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                "style-src 'self' 'unsafe-inline'; img-src 'self' data:");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        h->st.requests++;
        return ret;
    }
    if (strcmp(url, "/static/dygraph.min.js") == 0)
        return send_static(h, c, sl_dygraph_js, sl_dygraph_js_len, "text/javascript; charset=utf-8");
    if (strcmp(url, "/static/dygraph.min.css") == 0)
        return send_static(h, c, sl_dygraph_css, sl_dygraph_css_len, "text/css; charset=utf-8");
    if (strcmp(url, "/api/tags") == 0)
        return send_tags(h, c, NULL, 0, UINT32_MAX);
    if (strncmp(url, TAGS_PREFIX, strlen(TAGS_PREFIX)) == 0)
        return send_tag(h, c, url + strlen(TAGS_PREFIX));
    if (strcmp(url, "/api/status") == 0)
        return send_status(h, c);
    if (strcmp(url, "/api/stream") == 0)
        return send_stream(h, c, head);
    if (strcmp(url, "/metrics") == 0)
        return send_metrics(h, c);
    if (strcmp(url, "/api/history") == 0)
        return send_history(h, c, head, version, con_cls);
    h->st.not_found++;
    return send_error(h, c, MHD_HTTP_NOT_FOUND, "not found", NULL);
}

/* ---- life cycle ---------------------------------------------------------- */

/* Resolves "HOST:PORT", "[V6]:PORT" or "*:PORT" (port 0: a free one) into
 * *ss by the grammar [http] listen was checked with (sl_conf), with the
 * resolver call --check compared against the diode address. */
static sl_err parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    return sl_conf_hostport_sockaddr(ss, len, text, 0, SL_HOSTPORT_LISTENER, SOCK_STREAM,
                                     SL_HOSTPORT_PASSIVE);
}

sl_err sl_http_open(struct sl_http **out, const struct sl_http_config *cfg,
                    const struct sl_mirror *m, sl_http_status_fn status, void *ctx)
{
    *out = NULL;
    if (!cfg || !m || cfg->max_tags == 0 || cfg->max_tags > SL_MIRROR_MAX_TAGS)
        return SL_ERR_CONFIG;
    size_t tl = cfg->token ? strlen(cfg->token) : 0;
    if (tl > SL_HTTP_TOKEN_MAX ||
        (cfg->allowed_hosts && strlen(cfg->allowed_hosts) >= SL_HTTP_HOSTS_MAX))
        return SL_ERR_CONFIG;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    sl_err e = parse_listen(cfg->listen, &ss, &sl);
    if (e != SL_OK)
        return e;

    struct sl_http *h = calloc(1, sizeof *h);
    if (!h)
        return SL_ERR_NOMEM;
    h->m = m;
    h->status = status;
    h->ctx = ctx;
    memcpy(h->token, cfg->token ? cfg->token : "", tl);
    h->token_len = tl;
    h->timeout_s = cfg->timeout_s ? cfg->timeout_s : SL_HTTP_DEFAULT_TIMEOUT_S;
    h->req_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : SL_HTTP_DEFAULT_REQ_MS;
    h->idx_gen = UINT64_MAX;
    h->max_tags = cfg->max_tags;
    h->histsrv = cfg->histsrv;
    if (h->histsrv)
        sl_histsrv_bind(h->histsrv, histsrv_done, h);
    h->words = ((size_t)cfg->max_tags + 63) / 64;
    h->nsse = cfg->max_sse ? cfg->max_sse : SL_HTTP_DEFAULT_SSE;
    h->sse_per_peer = cfg->max_sse_per_peer ? cfg->max_sse_per_peer : SL_HTTP_DEFAULT_SSE_PEER;
    if (h->sse_per_peer > h->nsse)
        h->sse_per_peer = h->nsse;
    if (cfg->allowed_hosts)
        snprintf(h->hosts, sizeof h->hosts, "%s", cfg->allowed_hosts);
    uint8_t rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        sl_http_close(h);
        return SL_ERR_IO;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(h->cookie + 2 * i, 3, "%02x", rnd[i]);
    h->sse = calloc(h->nsse, sizeof *h->sse);
    h->live = calloc(h->nsse, sizeof *h->live);
    h->nenc = cfg->max_tags < ENC_TAGS_MAX ? cfg->max_tags : ENC_TAGS_MAX;
    h->enc = calloc(h->nenc ? h->nenc : 1, sizeof *h->enc);
    if (!h->sse || !h->live || !h->enc)
        goto nomem;
    for (unsigned i = 0; i < h->nsse; i++) {
        h->sse[i].h = h;
        h->sse[i].bits = calloc(h->words, sizeof *h->sse[i].bits);
        h->sse[i].mask = calloc(h->words, sizeof *h->sse[i].mask);
        if (!h->sse[i].bits || !h->sse[i].mask)
            goto nomem;
    }
    unsigned conns = cfg->max_conns ? cfg->max_conns : SL_HTTP_DEFAULT_CONNS;
    h->per_peer = cfg->max_conns_per_peer ? cfg->max_conns_per_peer : SL_HTTP_DEFAULT_PER_PEER;
    if (h->per_peer > conns)
        h->per_peer = conns;
    /* on_accept enforces max_conns (and counts refusals); MHD's own limit,
     * a few above, is a backstop, and the spare slots cover connections
     * MHD still counts while closing. */
    h->max_conns = conns;
    h->nslots = conns + 8;
    h->conns = calloc(h->nslots, sizeof *h->conns);
    if (!h->conns)
        goto nomem;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->d = MHD_start_daemon(flags, 0, on_accept, h, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, conns + 8,
                            /* A backstop only: on_accept refuses (and counts) first. */
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->per_peer + 1,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                            MHD_OPTION_END);
    if (!h->d) {
        sl_http_close(h);
        return SL_ERR_IO;
    }
    const union MHD_DaemonInfo *fi = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!fi || !pi) {
        sl_http_close(h);
        return SL_ERR_IO;
    }
    h->fd = fi->epoll_fd;
    h->port = pi->port;
    *out = h;
    return SL_OK;
nomem:
    sl_http_close(h);
    return SL_ERR_NOMEM;
}

void sl_http_close(struct sl_http *h)
{
    if (!h)
        return;
    if (h->d) {
        /* Streams end cleanly; MHD must not be stopped with a connection
         * still suspended. */
        for (unsigned i = 0; i < h->nsse; i++) {
            if (h->sse[i].used) {
                h->sse[i].closing = true;
                sse_resume(&h->sse[i]);
            }
        }
        MHD_run(h->d);
        MHD_stop_daemon(h->d);
    }
    if (h->sse)
        for (unsigned i = 0; i < h->nsse; i++) {
            free(h->sse[i].bits);
            free(h->sse[i].mask);
        }
    free(h->sse);
    free(h->enc);
    free(h->live);
    free(h->conns);
    index_free(h);
    sodium_memzero(h->cookie, sizeof h->cookie);
    sodium_memzero(h->token, sizeof h->token);
    free(h);
}

int sl_http_fd(const struct sl_http *h)
{
    return h->fd;
}

uint16_t sl_http_port(const struct sl_http *h)
{
    return h->port;
}

int sl_http_timeout_ms(struct sl_http *h)
{
    uint64_t t = SL_HTTP_SSE_PING_MS;
    MHD_UNSIGNED_LONG_LONG mt = 0;
    if (MHD_get_timeout(h->d, &mt) == MHD_YES && mt < t)
        t = mt;
    if (h->st.sse_clients) {
        uint64_t now = sl_clock_mono_ms();
        for (unsigned i = 0; i < h->nsse; i++) {
            const struct sse *s = &h->sse[i];
            if (!s->used || !s->suspended)
                continue;
            uint64_t due = s->last_ms + SL_HTTP_SSE_PING_MS;
            uint64_t wait = due > now ? due - now : 0;
            if (wait < t)
                t = wait;
        }
    }
    return (int)t;
}

sl_err sl_http_run(struct sl_http *h)
{
    reap_slow(h, sl_clock_mono_ms());
    if (h->st.sse_clients) {
        uint64_t now = sl_clock_mono_ms();
        for (unsigned i = 0; i < h->nsse; i++) {
            struct sse *s = &h->sse[i];
            if (s->used && s->suspended && now - s->last_ms >= SL_HTTP_SSE_PING_MS) {
                s->ev_ping = true;
                sse_resume(s);
            }
        }
    }
    return MHD_run(h->d) == MHD_YES ? SL_OK : SL_ERR_IO;
}

void sl_http_stats(const struct sl_http *h, struct sl_http_stats *out)
{
    *out = h->st;
    out->history_on = h->histsrv != NULL;
    if (h->histsrv)
        sl_histsrv_stats(h->histsrv, &out->history);
}

sl_err sl_http_token_read(char out[SL_HTTP_TOKEN_MAX + 1], const char *path, uid_t owner, char *why,
                          size_t cap)
{
    char text[4096];
    size_t tlen = 0;
    int fd = -1;
    out[0] = '\0';
    if (cap)
        why[0] = '\0';
    /* A secret: not world-readable, not writable by others, owned by root
     * or `owner`, never read through a link. */
    sl_err e = sl_file_open_trusted(&fd, path, owner, SL_FILE_NO_OTHER_READ, why, cap);
    if (e == SL_OK) {
        e = sl_file_read_fd(text, sizeof text - 1, &tlen, fd);
        sl_file_close_keep_errno(fd);
    }
    if (e != SL_OK || tlen == 0) {
        if (cap && !why[0])
            snprintf(why, cap, "%s", e == SL_OK ? "empty" : e == SL_ERR_LENGTH ? "longer than 4 KiB"
                                                                               : strerror(errno));
        sodium_memzero(text, sizeof text);
        return e == SL_OK ? SL_ERR_CONFIG : e;
    }
    text[tlen] = '\0';
    text[strcspn(text, "\r\n")] = '\0';
    size_t tl = strlen(text);
    if (tl == 0 || tl > SL_HTTP_TOKEN_MAX) {
        sodium_memzero(text, sizeof text);
        snprintf(why, cap, "token must be 1..%u bytes on the first line", SL_HTTP_TOKEN_MAX);
        return SL_ERR_RANGE;
    }
    memcpy(out, text, tl + 1);
    sodium_memzero(text, sizeof text);
    return SL_OK;
}
