/* GET /api/history: the request's parameters and the response's encoding
 * (docs/services.md "GET /api/history"). Pure: no I/O, no clock (now is
 * passed in), no allocation; the HTTP thread parses, the history query
 * thread (sl_histq) encodes the points a backend yields.
 *
 *   tag=PATH/NAME     required, 1..SL_HIST_TAG_MAX bytes, no control bytes
 *   from=, to=        RFC 3339 (Z or +HH:MM/-HH:MM, optional fraction up to
 *                     9 digits, truncated to µs); default to = now and
 *                     from = to - 1 h; from < to
 *   limit=N           points returned, 1..SL_HISTAPI_LIMIT_MAX, default
 *                     SL_HISTAPI_LIMIT_DEFAULT (the first N in time order)
 *   step=DURATION     N{ms,s,m,h,d}: one point per non-empty bucket
 *                     [from + i*step, from + (i+1)*step), with min, max,
 *                     avg, last, count; at most SL_HISTAPI_BUCKETS_MAX
 *                     buckets in [from, to)
 *   format=json|csv   default json
 * Unknown parameters are ignored. */
#ifndef SL_HISTAPI_H
#define SL_HISTAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_histdb.h"
#include "sl_json.h"

#define SL_HISTAPI_LIMIT_DEFAULT 10000u
#define SL_HISTAPI_LIMIT_MAX     1000000u
#define SL_HISTAPI_BUCKETS_MAX   100000u
#define SL_HISTAPI_RANGE_US      3600000000ll           /* default range: 1 h */
#define SL_HISTAPI_STEP_MIN_US   1000ll                 /* 1 ms */
#define SL_HISTAPI_STEP_MAX_US   (366ll * 86400000000ll) /* 366 days */
#define SL_HISTAPI_POINT_MAX     512u   /* longest encoded point (JSON or CSV), bytes */

struct sl_histapi_req {
    char tag[SL_HIST_TAG_MAX + 1];
    int64_t from_us, to_us;     /* [from, to), µs since the Unix epoch */
    size_t limit;
    int64_t step_us;            /* 0: raw points */
    bool csv;
};

/* The value of query parameter key, or NULL when absent. */
typedef const char *(*sl_histapi_arg_fn)(void *ctx, const char *key);

/* Fills *r from the parameters arg yields, with now_us for the defaults.
 * SL_ERR_RANGE with *why (a static sentence for the 400 body) on any bad
 * parameter. */
__attribute__((warn_unused_result))
sl_err sl_histapi_parse(struct sl_histapi_req *r, sl_histapi_arg_fn arg, void *ctx, int64_t now_us,
                        const char **why);

/* RFC 3339 date-time to µs since the Unix epoch (years 0001..9999). A
 * space in place of the offset's '+' is accepted: an unencoded '+' in a
 * query string arrives as a space. SL_ERR_RANGE when malformed. */
__attribute__((warn_unused_result))
sl_err sl_histapi_parse_time(const char *s, int64_t *us);

/* "500ms", "10s", "5m", "1h", "1d" to µs (a whole number and a unit);
 * SL_ERR_RANGE when malformed or outside STEP_MIN..STEP_MAX. */
__attribute__((warn_unused_result))
sl_err sl_histapi_parse_duration(const char *s, int64_t *us);

/* The encoder: head, then each point the backend yields (in time order),
 * then tail. Each call appends to b (a fixed buffer the caller drains
 * between calls: each call writes at most SL_HISTAPI_POINT_MAX bytes, the
 * tail at most two points' worth). */
struct sl_histapi_enc {
    const struct sl_histapi_req *req;
    size_t count;               /* points (buckets) written */
    bool full;                  /* limit reached: further points are refused */
    /* the open bucket (step mode) */
    bool open;
    int64_t b_start;
    uint64_t b_n, b_nums;       /* points, points with a number */
    double b_min, b_max, b_sum, b_last;
    uint32_t b_quality;
    uint8_t b_type;
    bool b_backfill;
};

void sl_histapi_enc_init(struct sl_histapi_enc *e, const struct sl_histapi_req *r);
void sl_histapi_head(struct sl_histapi_enc *e, struct sl_jbuf *b);
/* false once limit points are out: the caller stops the query (more). */
bool sl_histapi_point(struct sl_histapi_enc *e, const struct sl_histdb_point *p, struct sl_jbuf *b);
/* more: the query had points beyond the limit ("truncated":true). */
void sl_histapi_tail(struct sl_histapi_enc *e, bool more, struct sl_jbuf *b);

/* The Content-Type of the response. */
const char *sl_histapi_type(const struct sl_histapi_req *r);

#endif
