/* Sparkplug B edge node (sl_sparkplug.h, docs/services.md "Sparkplug B").
 *
 * Encoding streams: a payload is its header (timestamp, seq) packed by
 * protobuf-c, then each metric appended as field 2 (key 0x12, length,
 * the metric packed by protobuf-c from one reused struct on the stack).
 * Protobuf readers accept fields in any order, so this is the same payload
 * a whole-message pack would give, without an array of every metric. DDATA
 * fits the buffer made at open (ddata_max_metrics metrics at most); a
 * birth larger than it grows the buffer, births being rare. */
#include "sl_sparkplug.h"

#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_clock.h"
#include "sl_regs.h"
#include "sparkplug_b.pb-c.h"

typedef Sparkplug__Payload Payload;
typedef Sparkplug__Payload__Metric Metric;
typedef Sparkplug__Payload__PropertySet PropertySet;
typedef Sparkplug__Payload__PropertyValue PropertyValue;

#define NS "spBv1.0"
#define TOPIC_MAX (sizeof NS + 3 * (SL_SPARKPLUG_ID_MAX + 1) + 16)
#define METRIC_NAME_MAX (SL_PATH_MAX + 1 + SL_NAME_MAX + 1)
#define METRIC_MAX_BYTES 512u    /* a DDATA metric packed: alias, time, value, two properties */
#define HEADER_MAX_BYTES 32u     /* timestamp and seq packed */
#define UNIT_WORDS 4u            /* 256 mirror units as a bitmap */
#define DEFAULT_INFLIGHT 64u
#define DEFAULT_PER_RUN 256u
#define DEFAULT_BACKOFF_MIN_MS 250u
#define DEFAULT_BACKOFF_MAX_MS 30000u
#define CONNECT_TIMEOUT_MS 10000u

/* Data types (the specification's DataType values). */
enum { DT_INT16 = 2, DT_INT32 = 3, DT_INT64 = 4, DT_UINT16 = 6, DT_UINT32 = 7, DT_FLOAT = 9,
       DT_DOUBLE = 10, DT_BOOLEAN = 11, DT_STRING = 12 };

enum state { WAITING, CONNECTING, CONNECTED };

struct sl_sparkplug {
    struct mosquitto *mosq;
    const struct sl_mqttconn *conn;
    const struct sl_mirror *m;
    char group[SL_SPARKPLUG_ID_MAX + 1], node[SL_SPARKPLUG_ID_MAX + 1], host[SL_SPARKPLUG_ID_MAX + 1];
    char t_nbirth[TOPIC_MAX], t_ndeath[TOPIC_MAX], t_ncmd[TOPIC_MAX], t_state[TOPIC_MAX];
    char topic[TOPIC_MAX];
    char software[64];
    unsigned max_inflight, max_per_run, ddata_max;
    uint32_t backoff_min_ms, backoff_max_ms, backoff_ms;

    enum state state;
    bool lost;                  /* set by callbacks, acted on after the loop call */
    uint64_t next_try_ms, since_ms;
    uint64_t up_ms;             /* CONNECTED: since when (0: not yet noted) */
    struct sl_mqttconn_diag diag;

    /* The session. */
    uint8_t next_bdseq;
    uint64_t host_ts;           /* newest STATE timestamp seen */
    bool host_lost;             /* the primary host went offline: NDEATH, disconnect */
    bool rebirth;               /* NBIRTH and every DBIRTH due */
    bool rebirth_asked;         /* an NCMD rebirth waits for st.rebirth_min_ms */
    uint64_t last_rebirth_ms;
    bool schema_changed;
    uint64_t present[UNIT_WORDS];   /* units of the schema at the last NBIRTH */
    uint64_t born[UNIT_WORDS];      /* units with a DBIRTH in this session */

    /* Tag positions grouped by unit, made once per rebirth (one pass over
     * the schema): a DBIRTH reads only its own device's tags. */
    uint8_t *unit_of;               /* max_tags: the unit of each position */
    uint32_t *by_unit;              /* max_tags: positions, unit by unit */
    uint32_t unit_start[257];       /* unit u: by_unit[unit_start[u] .. unit_start[u + 1]) */
    /* At most one DBIRTH is handed to libmosquitto and not yet written: a
     * birth can be megabytes, and libmosquitto copies what it queues. */
    bool birth_unwritten;
    int birth_mid;
    uint64_t birth_retry_ms;        /* a refused DBIRTH: none before this (monotonic) */

    /* Changes waiting for DDATA. */
    uint32_t max_tags;
    size_t words;
    uint64_t *dirty;
    size_t cursor;
    struct sl_sparkplug_stats st;

    uint8_t *out;               /* payload being encoded */
    size_t out_cap, out_len;
    uint8_t *arena;             /* NCMD decoding */
    uint8_t will[64];
    size_t will_len;
};

/* ---- small helpers ------------------------------------------------------- */

static bool unit_has(const uint64_t *set, unsigned u) { return set[u / 64] >> (u % 64) & 1u; }
static void unit_set(uint64_t *set, unsigned u) { set[u / 64] |= 1ull << (u % 64); }
static void unit_clear(uint64_t *set, unsigned u) { set[u / 64] &= ~(1ull << (u % 64)); }
static bool units_any(const uint64_t *set)
{
    return (set[0] | set[1] | set[2] | set[3]) != 0;
}

bool sl_sparkplug_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > SL_SPARKPLUG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c > 0x7E || c == '+' || c == '#' || c == '/')
            return false;
    }
    return true;
}

int32_t sl_sparkplug_quality(uint32_t status)
{
    if (status >> 30 == 0)
        return SL_SPARKPLUG_Q_GOOD;
    if (status == SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE || status == SL_Q_UNCERTAIN_LAST_USABLE)
        return SL_SPARKPLUG_Q_STALE;
    return SL_SPARKPLUG_Q_BAD;
}

/* ---- encoding ------------------------------------------------------------ */

/* Room for need more bytes; grows (births only) when allowed. */
static bool out_room(struct sl_sparkplug *s, size_t need, bool may_grow)
{
    if (need <= s->out_cap - s->out_len)
        return true;
    if (!may_grow)
        return false;
    size_t cap = s->out_cap;
    while (need > cap - s->out_len) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    uint8_t *p = realloc(s->out, cap);
    if (!p)
        return false;
    s->out = p;
    s->out_cap = cap;
    return true;
}

/* Starts a payload: timestamp (ms) and, unless it is a death
 * certificate's, seq. */
static void begin(struct sl_sparkplug *s, uint64_t ts_ms, bool with_seq, uint8_t seq)
{
    Payload p = SPARKPLUG__PAYLOAD__INIT;
    p.has_timestamp = true;
    p.timestamp = ts_ms;
    p.has_seq = with_seq;
    p.seq = seq;
    s->out_len = protobuf_c_message_pack(&p.base, s->out);   /* <= HEADER_MAX_BYTES */
}

/* Appends a metric as field 2 of the payload. */
static bool add_metric(struct sl_sparkplug *s, const Metric *mt, bool may_grow)
{
    size_t n = protobuf_c_message_get_packed_size(&mt->base);
    if (!out_room(s, n + 1 + SL_VARINT_MAX, may_grow))
        return false;
    s->out[s->out_len++] = 0x12;
    s->out_len += sl_varint_put(s->out + s->out_len, n);
    s->out_len += protobuf_c_message_pack(&mt->base, s->out + s->out_len);
    return true;
}

/* One tag as a metric. props/vals/keys: the caller's storage (3 each).
 * name: METRIC_NAME_MAX bytes, used for births. */
static void tag_metric(Metric *mt, PropertySet *ps, PropertyValue *vals, PropertyValue **pv, char **keys,
                       char *name, const struct sl_mirror_tag *t, bool birth, uint64_t now_ms)
{
    sparkplug__payload__metric__init(mt);
    sparkplug__payload__property_set__init(ps);
    for (int i = 0; i < 3; i++) {
        sparkplug__payload__property_value__init(&vals[i]);
        pv[i] = &vals[i];
    }
    if (birth) {
        if (t->path[0])
            snprintf(name, METRIC_NAME_MAX, "%s/%s", t->path, t->name);
        else
            snprintf(name, METRIC_NAME_MAX, "%s", t->name);
        mt->name = name;
    }
    mt->has_alias = true;
    mt->alias = t->tag_id;
    mt->has_timestamp = true;
    mt->timestamp = t->has_value ? t->source_time_us / 1000u : now_ms;
    /* The datatype is declared by the birth; DDATA should not repeat it. */
    mt->has_datatype = birth;
    bool scaled = t->scale != 1.0 || t->offset != 0.0;
    if (scaled && t->type != SL_TYPE_BOOL) {
        mt->datatype = DT_DOUBLE;
        mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE;
        mt->double_value = sl_regs_eng(t->raw, t->type, t->scale, t->offset);
    } else {
        switch (t->type) {
        case SL_TYPE_BOOL:
            mt->datatype = DT_BOOLEAN;
            mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
            mt->boolean_value = t->raw != 0;
            break;
        case SL_TYPE_INT16:
        case SL_TYPE_UINT16:
        case SL_TYPE_INT32:
        case SL_TYPE_UINT32:
            /* Signed types travel as their two's complement bits: an int16
             * is sign-extended to 32 bits first. */
            mt->datatype = t->type == SL_TYPE_INT16 ? DT_INT16 : t->type == SL_TYPE_UINT16 ? DT_UINT16
                         : t->type == SL_TYPE_INT32 ? DT_INT32 : DT_UINT32;
            mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_INT_VALUE;
            mt->int_value = t->type == SL_TYPE_INT16 ? (uint32_t)(int32_t)(int16_t)(uint16_t)t->raw
                                                     : (uint32_t)t->raw;
            break;
        case SL_TYPE_INT64:
            mt->datatype = DT_INT64;
            mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_LONG_VALUE;
            mt->long_value = t->raw;
            break;
        case SL_TYPE_FLOAT32:
            mt->datatype = DT_FLOAT;
            mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_FLOAT_VALUE;
            mt->float_value = (float)sl_regs_number(t->raw, t->type);
            break;
        default:
            mt->datatype = DT_DOUBLE;
            mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE;
            mt->double_value = sl_regs_number(t->raw, t->type);
            break;
        }
    }
    if (!t->has_value) {
        mt->has_is_null = true;
        mt->is_null = true;
        mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE__NOT_SET;
    }
    size_t n = 0;
    keys[n] = (char *)"Quality";
    vals[n].has_type = true;
    vals[n].type = DT_INT32;
    vals[n].value_case = SPARKPLUG__PAYLOAD__PROPERTY_VALUE__VALUE_INT_VALUE;
    vals[n++].int_value = (uint32_t)sl_sparkplug_quality(t->quality);
    keys[n] = (char *)"StatusCode";
    vals[n].has_type = true;
    vals[n].type = DT_UINT32;
    vals[n].value_case = SPARKPLUG__PAYLOAD__PROPERTY_VALUE__VALUE_INT_VALUE;
    vals[n++].int_value = t->quality;
    if (birth && t->units[0]) {
        keys[n] = (char *)"engUnit";
        vals[n].has_type = true;
        vals[n].type = DT_STRING;
        vals[n].value_case = SPARKPLUG__PAYLOAD__PROPERTY_VALUE__VALUE_STRING_VALUE;
        vals[n++].string_value = (char *)t->units;
    }
    ps->n_keys = ps->n_values = n;
    ps->keys = keys;
    ps->values = pv;
    mt->properties = ps;
}

/* A node metric: name, alias (0: none), datatype, time; the caller sets
 * the value. */
static void node_metric(Metric *mt, const char *name, uint64_t alias, uint32_t datatype, uint64_t now_ms)
{
    sparkplug__payload__metric__init(mt);
    mt->name = (char *)name;
    mt->has_alias = alias != 0;
    mt->alias = alias;
    mt->has_timestamp = true;
    mt->timestamp = now_ms;
    mt->has_datatype = true;
    mt->datatype = datatype;
}

/* bdSeq: in the NBIRTH with its alias (a birth names and aliases every
 * metric once aliases are in use), in the NDEATH will by name only. */
static void bdseq_metric(Metric *mt, uint8_t bdseq, uint64_t alias, uint64_t now_ms)
{
    node_metric(mt, SL_SPARKPLUG_METRIC_BDSEQ, alias, DT_INT64, now_ms);
    mt->value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_LONG_VALUE;
    mt->long_value = bdseq;
}

/* ---- publishing ---------------------------------------------------------- */

/* Publishes out[0..out_len) to topic (QoS 0, not retained, as the
 * specification has every message but the will): MOSQ_ERR_SUCCESS, or
 * libmosquitto's error (counted); *mid (may be NULL) gets the message id. */
static int publish_out(struct sl_sparkplug *s, const char *topic, int *mid)
{
    int rc = mosquitto_publish(s->mosq, mid, topic, (int)s->out_len, s->out, 0, false);
    if (rc == MOSQ_ERR_SUCCESS)
        s->st.inflight++;
    else
        s->st.publish_errors++;
    return rc;
}

static bool conn_gone(int rc) { return rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST; }

/* publish_out, false when the connection is gone. */
static bool send_out(struct sl_sparkplug *s, const char *topic)
{
    return !conn_gone(publish_out(s, topic, NULL));
}

static uint8_t next_seq(struct sl_sparkplug *s)
{
    uint8_t q = s->st.seq;
    s->st.seq = (uint8_t)(q + 1u);   /* 255 wraps to 0 */
    return q;
}

static const char *device_topic(struct sl_sparkplug *s, const char *verb, unsigned unit)
{
    snprintf(s->topic, sizeof s->topic, NS "/%s/%s/%s/unit%u", s->group, verb, s->node, unit);
    return s->topic;
}

uint64_t sl_sparkplug_metric_estimate(size_t name_bytes, size_t units_bytes)
{
    return SL_SPARKPLUG_METRIC_EST_BYTES + (uint64_t)name_bytes + (units_bytes ? units_bytes + 12u : 0u);
}

uint32_t sl_sparkplug_rebirth_min_ms(uint64_t birth_bytes)
{
    uint64_t ms = birth_bytes / SL_SPARKPLUG_REBIRTH_BYTES_PER_MS;
    if (ms < SL_SPARKPLUG_REBIRTH_MIN_MS)
        ms = SL_SPARKPLUG_REBIRTH_MIN_MS;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* The units the active schema holds, its tag positions grouped by unit
 * (a counting sort: two passes, O(tags), once per rebirth instead of one
 * scan of every tag per device) and the estimated size of each DBIRTH. */
static void schema_units(struct sl_sparkplug *s, uint64_t *set)
{
    uint32_t count[256] = { 0 };
    uint64_t bytes[256] = { 0 };
    memset(set, 0, UNIT_WORDS * sizeof *set);
    uint32_t n = sl_mirror_count(s->m);
    if (n > s->max_tags)
        n = s->max_tags;
    for (uint32_t pos = 0; pos < n; pos++) {
        struct sl_mirror_tag t;
        if (sl_mirror_get(s->m, pos, &t) != SL_OK) {
            s->unit_of[pos] = 0;   /* a hole: listed under unit 0, skipped by its DBIRTH */
            count[0]++;
            continue;
        }
        s->unit_of[pos] = t.mirror_unit;
        unit_set(set, t.mirror_unit);
        count[t.mirror_unit]++;
        bytes[t.mirror_unit] += sl_sparkplug_metric_estimate(strlen(t.path) + 1u + strlen(t.name),
                                                             strlen(t.units));
    }
    uint32_t at = 0;
    uint64_t most = 0;
    s->st.birth_bytes = 0;
    s->st.dbirth_max_unit = 0;
    for (unsigned u = 0; u < 256; u++) {
        s->unit_start[u] = at;
        at += count[u];
        s->st.birth_bytes += bytes[u];
        if (bytes[u] > most) {
            most = bytes[u];
            s->st.dbirth_max_unit = u;
        }
    }
    s->st.dbirth_bytes_max = most ? most + HEADER_MAX_BYTES : 0;
    s->unit_start[256] = at;
    uint32_t fill[256];
    memcpy(fill, s->unit_start, sizeof fill);
    for (uint32_t pos = 0; pos < n; pos++)
        s->by_unit[fill[s->unit_of[pos]]++] = pos;
    s->st.rebirth_min_ms = sl_sparkplug_rebirth_min_ms(s->st.birth_bytes);
}

static bool publish_nbirth(struct sl_sparkplug *s, uint64_t now_ms)
{
    s->st.seq = 0;
    begin(s, now_ms, true, next_seq(s));
    Metric mt;
    bdseq_metric(&mt, s->st.bdseq, SL_SPARKPLUG_BDSEQ_ALIAS, now_ms);
    bool ok = add_metric(s, &mt, true);
    node_metric(&mt, SL_SPARKPLUG_METRIC_REBIRTH, SL_SPARKPLUG_REBIRTH_ALIAS, DT_BOOLEAN, now_ms);
    mt.value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
    mt.boolean_value = false;
    ok = ok && add_metric(s, &mt, true);
    node_metric(&mt, SL_SPARKPLUG_METRIC_SOFTWARE, SL_SPARKPLUG_SOFTWARE_ALIAS, DT_STRING, now_ms);
    mt.value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_STRING_VALUE;
    mt.string_value = s->software;
    ok = ok && add_metric(s, &mt, true);
    if (!ok) {
        s->st.publish_errors++;   /* no memory for the buffer: tried again next turn */
        s->rebirth = true;
        return true;
    }
    s->st.nbirths++;
    s->st.node_born = true;
    return send_out(s, s->t_nbirth);
}

/* DBIRTH of unit u: every tag of it, current values; their pending DDATA
 * is folded in (the birth carries the latest value). The device counts as
 * born only once libmosquitto took the message: out of memory (*nomem) or
 * a refusal (too large for the client's limit) gives back the seq and
 * tries again after SL_SPARKPLUG_BIRTH_RETRY_MS; DDATA for it waits. */
static bool publish_dbirth(struct sl_sparkplug *s, unsigned u, uint64_t wall_ms, uint64_t now_ms, bool *nomem)
{
    uint8_t seq = next_seq(s);
    begin(s, wall_ms, true, seq);
    for (uint32_t i = s->unit_start[u]; i < s->unit_start[u + 1]; i++) {
        uint32_t pos = s->by_unit[i];
        struct sl_mirror_tag t;
        if (sl_mirror_get(s->m, pos, &t) != SL_OK || t.mirror_unit != u)
            continue;   /* moved by a schema change: the rebirth it causes repairs */
        Metric mt;
        PropertySet ps;
        PropertyValue vals[3], *pv[3];
        char *keys[3], name[METRIC_NAME_MAX];
        tag_metric(&mt, &ps, vals, pv, keys, name, &t, true, wall_ms);
        if (!add_metric(s, &mt, true)) {
            *nomem = true;
            s->st.seq = seq;
            s->st.dbirth_failures++;
            s->birth_retry_ms = now_ms + SL_SPARKPLUG_BIRTH_RETRY_MS;
            return true;
        }
        if (pos < s->max_tags && (s->dirty[pos / 64] >> (pos % 64) & 1u)) {
            s->dirty[pos / 64] &= ~(1ull << (pos % 64));
            s->st.pending--;
        }
    }
    int mid = 0;
    int rc = publish_out(s, device_topic(s, "DBIRTH", u), &mid);
    if (rc != MOSQ_ERR_SUCCESS) {
        s->st.seq = seq;
        s->st.dbirth_failures++;
        s->birth_retry_ms = now_ms + SL_SPARKPLUG_BIRTH_RETRY_MS;
        return !conn_gone(rc);
    }
    s->st.dbirths++;
    unit_set(s->born, u);
    /* Without a loop thread libmosquitto may write the queue inside
     * mosquitto_publish (on_publish before the mid is known here): the
     * birth is the queue's last packet, so an empty queue means written. */
    s->birth_mid = mid;
    s->birth_unwritten = mosquitto_want_write(s->mosq);
    return true;
}

static bool publish_ddeath(struct sl_sparkplug *s, unsigned u, uint64_t now_ms)
{
    begin(s, now_ms, true, next_seq(s));
    s->st.ddeaths++;
    unit_clear(s->born, u);
    return send_out(s, device_topic(s, "DDEATH", u));
}

/* The next dirty position at or after word w0 (circular); false when none. */
static bool next_dirty(const struct sl_sparkplug *s, size_t from_word, uint32_t *pos)
{
    for (size_t i = 0; i < s->words; i++) {
        size_t w = (from_word + i) % s->words;
        if (s->dirty[w]) {
            *pos = (uint32_t)(w * 64u + (unsigned)__builtin_ctzll(s->dirty[w]));
            return true;
        }
    }
    return false;
}

static void undirty(struct sl_sparkplug *s, uint32_t pos)
{
    s->dirty[pos / 64] &= ~(1ull << (pos % 64));
    s->st.pending--;
}

/* One DDATA: the first dirty tag from the cursor on, and up to ddata_max
 * dirty tags of the same unit after it. Dirty tags of a unit without a
 * DBIRTH are dropped (its birth will carry them). */
static bool publish_ddata(struct sl_sparkplug *s, uint64_t now_ms)
{
    uint32_t first;
    struct sl_mirror_tag t;
    for (;;) {
        if (!next_dirty(s, s->cursor, &first))
            return true;
        undirty(s, first);
        if (sl_mirror_get(s->m, first, &t) == SL_OK && unit_has(s->born, t.mirror_unit))
            break;
        if (!s->st.pending)
            return true;
    }
    unsigned u = t.mirror_unit, count = 0;
    s->cursor = first / 64u;
    begin(s, now_ms, true, next_seq(s));
    for (uint32_t pos = first;;) {
        Metric mt;
        PropertySet ps;
        PropertyValue vals[3], *pv[3];
        char *keys[3];
        tag_metric(&mt, &ps, vals, pv, keys, NULL, &t, false, now_ms);
        if (!add_metric(s, &mt, false)) {
            s->st.publish_errors++;   /* cannot happen: METRIC_MAX_BYTES bounds a DDATA metric */
            break;
        }
        count++;
        if (count >= s->ddata_max)
            break;
        /* The next dirty position of this unit after pos, in order. */
        bool found = false;
        for (uint32_t p = pos + 1; p < s->max_tags && !found;) {
            uint64_t w = s->dirty[p / 64] >> (p % 64);
            if (!w) {
                p = (p / 64 + 1) * 64;
                continue;
            }
            p += (uint32_t)__builtin_ctzll(w);
            if (sl_mirror_get(s->m, p, &t) != SL_OK) {
                undirty(s, p);
            } else if (t.mirror_unit == u) {
                undirty(s, p);
                pos = p;
                found = true;
                break;
            }
            p++;
        }
        if (!found)
            break;
    }
    s->st.ddata++;
    s->st.metrics += count;
    return send_out(s, device_topic(s, "DDATA", u));
}

/* ---- the session --------------------------------------------------------- */

static void build_will(struct sl_sparkplug *s, uint64_t now_ms)
{
    Metric mt;
    bdseq_metric(&mt, s->st.bdseq, 0, now_ms);
    Metric *list[1] = { &mt };
    Payload p = SPARKPLUG__PAYLOAD__INIT;
    p.has_timestamp = true;
    p.timestamp = now_ms;
    p.n_metrics = 1;
    p.metrics = list;
    s->will_len = protobuf_c_message_pack(&p.base, s->will);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct sl_sparkplug *s = obj;
    if (rc != 0) {
        sl_mqttconn_diag_connack(&s->diag, rc);
        s->lost = true;
        return;
    }
    /* libmosquitto formats (and allocates) a log line for every packet
     * while a log callback is set: it is only wanted for the handshake's
     * errors, and callbacks() sets it again before the next attempt. */
    mosquitto_log_callback_set(mosq, NULL);
    s->state = CONNECTED;
    s->st.connected = true;
    s->st.connects++;
    s->st.inflight = 0;
    s->st.node_born = false;
    s->st.devices_born = 0;
    s->st.host_online = !s->host[0];
    s->host_ts = 0;
    s->host_lost = false;
    s->up_ms = 0;               /* the back-off is reset once it has stayed up */
    s->birth_unwritten = false;
    s->birth_retry_ms = 0;
    s->rebirth = true;
    memset(s->born, 0, sizeof s->born);
    if (mosquitto_subscribe(s->mosq, NULL, s->t_ncmd, 1) != MOSQ_ERR_SUCCESS ||
        (s->host[0] && mosquitto_subscribe(s->mosq, NULL, s->t_state, 1) != MOSQ_ERR_SUCCESS))
        s->lost = true;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    (void)rc;
    struct sl_sparkplug *s = obj;
    s->lost = true;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    struct sl_sparkplug *s = obj;
    if (s->st.inflight)
        s->st.inflight--;
    if (s->birth_unwritten && mid == s->birth_mid)
        s->birth_unwritten = false;
}

/* libmosquitto's own log, while connecting: its TLS errors name why a
 * handshake failed. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *line)
{
    struct sl_sparkplug *s = obj;
    sl_mqttconn_diag_log(&s->diag, level, line);
    sl_mqttconn_diag_tls(&s->diag, mosq);
}

static void on_state(struct sl_sparkplug *s, const struct mosquitto_message *msg)
{
    bool online;
    uint64_t ts;
    if (msg->payloadlen < 0 || (size_t)msg->payloadlen > SL_SPARKPLUG_STATE_MAX ||
        sl_sparkplug_state_parse(msg->payload, (size_t)msg->payloadlen, &online, &ts) != SL_OK ||
        ts < s->host_ts) {
        s->st.state_ignored++;
        return;
    }
    s->host_ts = ts;
    if (online && !s->st.host_online) {
        s->st.host_online = true;
        s->rebirth = true;
    } else if (!online && s->st.host_online) {
        s->st.host_online = false;
        /* The specification: an edge node whose primary host goes offline
         * ends its session (NDEATH, disconnect) and births again once the
         * host is back. */
        if (s->st.node_born)
            s->host_lost = true;
    }
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    struct sl_sparkplug *s = obj;
    if (s->host[0] && strcmp(msg->topic, s->t_state) == 0) {
        on_state(s, msg);
        return;
    }
    if (strcmp(msg->topic, s->t_ncmd) != 0 || msg->payloadlen < 0) {
        s->st.ncmd_ignored++;
        return;
    }
    struct sl_sparkplug_ncmd cmd;
    if (sl_sparkplug_ncmd_decode(&cmd, msg->payload, (size_t)msg->payloadlen, s->arena) != SL_OK) {
        s->st.ncmd_ignored++;
        return;
    }
    s->st.ncmd_ignored += cmd.ignored;
    if (cmd.rebirth) {
        s->st.rebirth_requests++;
        s->rebirth_asked = true;
    }
}

/* Callbacks for a new or re-initialised client. */
static void callbacks(struct sl_sparkplug *s)
{
    mosquitto_connect_callback_set(s->mosq, on_connect);
    mosquitto_disconnect_callback_set(s->mosq, on_disconnect);
    mosquitto_publish_callback_set(s->mosq, on_publish);
    mosquitto_message_callback_set(s->mosq, on_message);
    mosquitto_log_callback_set(s->mosq, on_log);
}

static sl_err lose(struct sl_sparkplug *s, uint64_t now_ms, int rc, bool timed_out)
{
    if (s->state == CONNECTED) {
        s->st.disconnects++;
    } else {
        s->st.connect_failures++;
        sl_mqttconn_diag_error(&s->diag, rc, timed_out);
        s->st.last_fail = s->diag.fail;
    }
    s->state = WAITING;
    s->st.connected = false;
    s->st.node_born = false;
    s->st.devices_born = 0;
    s->st.inflight = 0;
    s->birth_unwritten = false;
    s->lost = false;
    s->next_try_ms = now_ms + s->backoff_ms;
    s->backoff_ms = s->backoff_ms > s->backoff_max_ms / 2 ? s->backoff_max_ms : s->backoff_ms * 2;
    if (mosquitto_reinitialise(s->mosq, sl_mqttconn_client_id(s->conn), true, s) != MOSQ_ERR_SUCCESS)
        return SL_ERR_NOMEM;
    callbacks(s);
    return SL_OK;
}

/* A new connection: the next bdSeq, its NDEATH as the will. */
static sl_err try_connect(struct sl_sparkplug *s, uint64_t now_ms)
{
    s->st.bdseq = s->next_bdseq;
    s->next_bdseq = (uint8_t)(s->next_bdseq + 1u);   /* 255 wraps to 0 */
    build_will(s, sl_clock_wall_ms());
    struct sl_mqttconn_will w = { .topic = s->t_ndeath, .payload = s->will, .len = s->will_len, .qos = 1,
                                  .retain = false };
    char why[SL_MQTTCONN_WHY_MAX];
    sl_mqttconn_diag_reset(&s->diag);
    s->diag.fail = SL_MQTTCONN_FAIL_NONE;
    sl_err e = sl_mqttconn_apply(s->conn, s->mosq, &w, why, sizeof why);
    if (e == SL_ERR_NOMEM)
        return e;
    s->since_ms = now_ms;
    s->state = CONNECTING;
    s->lost = false;
    int rc = e == SL_OK ? sl_mqttconn_connect(s->conn, s->mosq) : MOSQ_ERR_INVAL;
    if (rc != MOSQ_ERR_SUCCESS)
        return lose(s, now_ms, rc, false);
    return SL_OK;
}

static unsigned count_units(const uint64_t *set)
{
    unsigned n = 0;
    for (unsigned i = 0; i < UNIT_WORDS; i++)
        n += (unsigned)__builtin_popcountll(set[i]);
    return n;
}

/* Births, deaths and DDATA within the budgets; false when the connection
 * is gone. */
static bool publish_some(struct sl_sparkplug *s, uint64_t now_ms, bool *nomem)
{
    if (s->host[0] && !s->st.host_online)
        return true;
    uint64_t wall_ms = sl_clock_wall_ms();
    unsigned budget = s->max_per_run;
    if (s->rebirth_asked && now_ms - s->last_rebirth_ms >= s->st.rebirth_min_ms) {
        s->rebirth_asked = false;
        s->rebirth = true;
    }
    if (s->schema_changed) {
        s->schema_changed = false;
        s->rebirth = true;
    }
    if (s->rebirth) {
        /* Devices the new schema no longer has die first, in the old
         * session's seq; the rest is reborn after the NBIRTH. */
        uint64_t now_units[UNIT_WORDS];
        schema_units(s, now_units);
        for (unsigned u = 0; u < 256; u++)
            if (unit_has(s->born, u) && !unit_has(now_units, u) && !publish_ddeath(s, u, wall_ms))
                return false;
        memcpy(s->present, now_units, sizeof s->present);
        memset(s->born, 0, sizeof s->born);
        s->rebirth = false;
        s->last_rebirth_ms = now_ms;
        s->st.rebirths++;
        if (!publish_nbirth(s, wall_ms))
            return false;
        budget = budget > 1 ? budget - 1 : 0;
    }
    if (!s->st.node_born)
        return true;
    bool link = sl_mirror_link_up(s->m);
    /* One DBIRTH a turn at most, none while the last is still unwritten or
     * the in-flight cap is reached: a turn stays short whatever the
     * schema, and libmosquitto queues at most one birth. */
    bool may_birth = !s->birth_unwritten && s->st.inflight < s->max_inflight && now_ms >= s->birth_retry_ms;
    for (unsigned u = 0; u < 256 && budget; u++) {
        if (link && unit_has(s->present, u) && !unit_has(s->born, u)) {
            if (!may_birth)
                continue;
            may_birth = false;
            if (!publish_dbirth(s, u, wall_ms, now_ms, nomem))
                return false;
            if (*nomem)
                return true;
            budget--;
        } else if (!link && unit_has(s->born, u)) {
            if (!publish_ddeath(s, u, wall_ms))
                return false;
            budget--;
        }
    }
    s->st.devices_born = count_units(s->born);
    if (!units_any(s->born)) {
        /* No device to send DDATA for: the births to come carry the
         * values, so pending changes are dropped. */
        if (s->st.pending) {
            memset(s->dirty, 0, s->words * sizeof *s->dirty);
            s->st.pending = 0;
        }
        return true;
    }
    while (budget && s->st.pending && s->st.inflight < s->max_inflight) {
        if (!publish_ddata(s, wall_ms))
            return false;
        budget--;
    }
    return true;
}

/* ---- public -------------------------------------------------------------- */

sl_err sl_sparkplug_open(struct sl_sparkplug **out, const struct sl_sparkplug_config *cfg,
                         const struct sl_mqttconn *conn, const struct sl_mirror *m)
{
    *out = NULL;
    if (!cfg || !conn || !m || cfg->max_tags == 0 || cfg->max_tags > SL_MIRROR_MAX_TAGS ||
        !sl_sparkplug_id_ok(cfg->group_id) || !sl_sparkplug_id_ok(cfg->edge_node_id) ||
        (cfg->primary_host_id && cfg->primary_host_id[0] && !sl_sparkplug_id_ok(cfg->primary_host_id)) ||
        cfg->ddata_max_metrics > SL_SPARKPLUG_DDATA_MAX_MAX)
        return SL_ERR_CONFIG;
    struct sl_sparkplug *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    s->conn = conn;
    s->m = m;
    snprintf(s->group, sizeof s->group, "%s", cfg->group_id);
    snprintf(s->node, sizeof s->node, "%s", cfg->edge_node_id);
    if (cfg->primary_host_id)
        snprintf(s->host, sizeof s->host, "%s", cfg->primary_host_id);
    snprintf(s->t_nbirth, sizeof s->t_nbirth, NS "/%s/NBIRTH/%s", s->group, s->node);
    snprintf(s->t_ndeath, sizeof s->t_ndeath, NS "/%s/NDEATH/%s", s->group, s->node);
    snprintf(s->t_ncmd, sizeof s->t_ncmd, NS "/%s/NCMD/%s", s->group, s->node);
    snprintf(s->t_state, sizeof s->t_state, NS "/STATE/%s", s->host);
    snprintf(s->software, sizeof s->software, "%s", cfg->software ? cfg->software : "sluice-rx");
    s->ddata_max = cfg->ddata_max_metrics ? cfg->ddata_max_metrics : SL_SPARKPLUG_DEFAULT_DDATA_MAX;
    s->max_inflight = cfg->max_inflight ? cfg->max_inflight : DEFAULT_INFLIGHT;
    s->max_per_run = cfg->max_per_run ? cfg->max_per_run : DEFAULT_PER_RUN;
    s->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
    s->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (s->backoff_max_ms < s->backoff_min_ms)
        s->backoff_max_ms = s->backoff_min_ms;
    s->backoff_ms = s->backoff_min_ms;
    s->max_tags = cfg->max_tags;
    s->words = ((size_t)cfg->max_tags + 63) / 64;
    s->dirty = calloc(s->words, sizeof *s->dirty);
    s->unit_of = malloc(cfg->max_tags);
    s->by_unit = malloc((size_t)cfg->max_tags * sizeof *s->by_unit);
    s->st.rebirth_min_ms = SL_SPARKPLUG_REBIRTH_MIN_MS;
    s->out_cap = HEADER_MAX_BYTES + (size_t)s->ddata_max * METRIC_MAX_BYTES;
    s->out = malloc(s->out_cap);
    s->arena = malloc(SL_SPARKPLUG_ARENA_BYTES);
    if (!s->dirty || !s->unit_of || !s->by_unit || !s->out || !s->arena) {
        sl_sparkplug_close(s);
        return SL_ERR_NOMEM;
    }
    mosquitto_lib_init();
    s->mosq = mosquitto_new(sl_mqttconn_client_id(conn), true, s);
    if (!s->mosq) {
        sl_sparkplug_close(s);
        return SL_ERR_NOMEM;
    }
    callbacks(s);
    s->state = WAITING;
    s->next_try_ms = 0;
    *out = s;
    return SL_OK;
}

void sl_sparkplug_close(struct sl_sparkplug *s)
{
    if (!s)
        return;
    if (s->mosq) {
        if (s->state == CONNECTED) {
            /* A clean DISCONNECT suppresses the will: the NDEATH goes out
             * as a message of ours, with the session's bdSeq. */
            mosquitto_publish(s->mosq, NULL, s->t_ndeath, (int)s->will_len, s->will, 1, false);
            mosquitto_disconnect(s->mosq);
            for (int i = 0; i < 20 && mosquitto_want_write(s->mosq); i++) {
                struct pollfd p = { .fd = mosquitto_socket(s->mosq), .events = POLLOUT };
                if (p.fd < 0 || poll(&p, 1, 10) < 0)
                    break;
                if (mosquitto_loop_write(s->mosq, 1) != MOSQ_ERR_SUCCESS)
                    break;
            }
        }
        mosquitto_destroy(s->mosq);
        mosquitto_lib_cleanup();
    }
    free(s->dirty);
    free(s->unit_of);
    free(s->by_unit);
    free(s->out);
    free(s->arena);
    free(s);
}

int sl_sparkplug_fd(const struct sl_sparkplug *s)
{
    return s->state == WAITING ? -1 : mosquitto_socket(s->mosq);
}

bool sl_sparkplug_waiting(const struct sl_sparkplug *s) { return s->state == WAITING; }

bool sl_sparkplug_want_write(const struct sl_sparkplug *s)
{
    return s->state != WAITING && mosquitto_want_write(s->mosq);
}

int sl_sparkplug_timeout_ms(const struct sl_sparkplug *s, uint64_t now_ms)
{
    uint64_t t = 1000;
    if (s->state == WAITING) {
        uint64_t wait = s->next_try_ms > now_ms ? s->next_try_ms - now_ms : 0;
        if (wait < t)
            t = wait;
    } else if (s->state == CONNECTED && (!s->host[0] || s->st.host_online)) {
        bool link = sl_mirror_link_up(s->m);
        uint64_t due_born[UNIT_WORDS];
        bool births = false;
        for (unsigned i = 0; i < UNIT_WORDS; i++) {
            due_born[i] = link ? s->present[i] & ~s->born[i] : s->born[i];
            births |= due_born[i] != 0;
        }
        bool birth_now = link ? !s->birth_unwritten && s->st.inflight < s->max_inflight &&
                                    now_ms >= s->birth_retry_ms
                              : true;
        if (s->rebirth || s->schema_changed || s->host_lost || (s->st.node_born && births && birth_now) ||
            (s->st.pending && s->st.inflight < s->max_inflight))
            t = 0;
        else if (s->st.node_born && births && link && now_ms < s->birth_retry_ms &&
                 s->birth_retry_ms - now_ms < t)
            t = s->birth_retry_ms - now_ms;
        else if (s->rebirth_asked) {
            uint64_t at = s->last_rebirth_ms + s->st.rebirth_min_ms;
            uint64_t wait = at > now_ms ? at - now_ms : 0;
            if (wait < t)
                t = wait;
        }
    }
    return (int)t;
}

sl_err sl_sparkplug_run(struct sl_sparkplug *s, short revents, uint64_t now_ms)
{
    if (s->state != WAITING) {
        int rc = MOSQ_ERR_SUCCESS;
        if (revents & (POLLIN | POLLERR | POLLHUP))
            rc = mosquitto_loop_read(s->mosq, 16);
        if (rc == MOSQ_ERR_SUCCESS && !s->lost && (revents & POLLOUT) && mosquitto_want_write(s->mosq))
            rc = mosquitto_loop_write(s->mosq, 16);
        if (rc == MOSQ_ERR_SUCCESS && !s->lost)
            rc = mosquitto_loop_misc(s->mosq);
        bool timed_out = s->state == CONNECTING && now_ms - s->since_ms >= CONNECT_TIMEOUT_MS;
        if (rc != MOSQ_ERR_SUCCESS || s->lost || timed_out)
            return lose(s, now_ms, rc, timed_out);
    }
    if (s->state == WAITING)
        return now_ms < s->next_try_ms ? SL_OK : try_connect(s, now_ms);
    if (s->state != CONNECTED)
        return SL_OK;
    if (!s->up_ms)
        s->up_ms = now_ms ? now_ms : 1;
    else if (now_ms - s->up_ms >= sl_mqttconn_stable_ms(s->conn))
        s->backoff_ms = s->backoff_min_ms;
    if (s->host_lost) {
        /* The primary host went offline: NDEATH, then a clean disconnect;
         * the next connection waits for the host's STATE again. */
        mosquitto_publish(s->mosq, NULL, s->t_ndeath, (int)s->will_len, s->will, 1, false);
        mosquitto_disconnect(s->mosq);
        (void)mosquitto_loop_write(s->mosq, 1);
        s->backoff_ms = s->backoff_min_ms;
        return lose(s, now_ms, MOSQ_ERR_SUCCESS, false);
    }
    bool nomem = false;
    if (!publish_some(s, now_ms, &nomem) || s->lost)
        return lose(s, now_ms, MOSQ_ERR_SUCCESS, false);
    return nomem ? SL_ERR_NOMEM : SL_OK;
}

void sl_sparkplug_notify(struct sl_sparkplug *s, enum sl_mirror_event ev, uint32_t pos)
{
    if (!s)
        return;
    if (ev == SL_MIRROR_EV_VALUE) {
        if (pos >= s->max_tags)
            return;
        uint64_t bit = 1ull << (pos % 64);
        if (!(s->dirty[pos / 64] & bit)) {
            s->dirty[pos / 64] |= bit;
            s->st.pending++;
        } else {
            s->st.coalesced++;
        }
    } else if (ev == SL_MIRROR_EV_SCHEMA) {
        /* Positions moved: the rebirth sends every tag anew. */
        memset(s->dirty, 0, s->words * sizeof *s->dirty);
        s->st.pending = 0;
        s->schema_changed = true;
    }
    /* SL_MIRROR_EV_LINK: the run reads sl_mirror_link_up itself. */
}

void sl_sparkplug_stats(const struct sl_sparkplug *s, struct sl_sparkplug_stats *out)
{
    *out = s->st;
}

const char *sl_sparkplug_last_error(const struct sl_sparkplug *s)
{
    return s->diag.why;
}

/* ---- NCMD and STATE (untrusted input) ----------------------------------------- */

/* How deep len bytes nest when read as protobuf wire format: -1 when they
 * are not wire format, else the deepest level reached (depth for a message
 * without nested ones). Every length-delimited field that itself reads as
 * wire format counts as a nested message (strings rarely do; counting one
 * only errs on the safe side). Past SL_SPARKPLUG_DEPTH_MAX it stops
 * descending, so its own recursion is bounded; O(len) per level. */
static int wire_depth(const uint8_t *p, size_t len, unsigned depth)
{
    struct sl_buf b = sl_buf_make(p, len);
    int deepest = (int)depth;
    while (sl_buf_left(&b)) {
        uint64_t key, v;
        if (sl_buf_get_varint(&b, &key) != SL_OK || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFFu)
            return -1;
        switch (key & 7u) {
        case 0:
            if (sl_buf_get_varint(&b, &v) != SL_OK)
                return -1;
            break;
        case 1:
            if (sl_buf_skip(&b, 8) != SL_OK)
                return -1;
            break;
        case 5:
            if (sl_buf_skip(&b, 4) != SL_OK)
                return -1;
            break;
        case 2: {
            const uint8_t *sub;
            if (sl_buf_get_varint(&b, &v) != SL_OK || v > sl_buf_left(&b) ||
                sl_buf_get_ptr(&b, &sub, (size_t)v) != SL_OK)
                return -1;
            if (depth > SL_SPARKPLUG_DEPTH_MAX)
                break;   /* only asked whether these bytes are wire format */
            if (depth == SL_SPARKPLUG_DEPTH_MAX) {
                if (wire_depth(sub, (size_t)v, SL_SPARKPLUG_DEPTH_MAX + 1u) >= 0)
                    deepest = (int)SL_SPARKPLUG_DEPTH_MAX + 1;
            } else {
                int d = wire_depth(sub, (size_t)v, depth + 1u);
                if (d > deepest)
                    deepest = d;
            }
            break;
        }
        default:
            return -1;   /* groups (3, 4) and reserved types */
        }
        if (depth <= SL_SPARKPLUG_DEPTH_MAX && deepest > (int)SL_SPARKPLUG_DEPTH_MAX)
            return deepest;
    }
    return deepest;
}

/* protobuf-c's allocations for one NCMD: bumped in the arena, freed all at
 * once by the next decode. */
struct arena {
    uint8_t *base;
    size_t used, cap;
    bool exhausted;
};

static void *arena_alloc(void *data, size_t n)
{
    struct arena *a = data;
    size_t at = (a->used + 15u) & ~(size_t)15u;
    if (at > a->cap || n > a->cap - at) {
        a->exhausted = true;
        return NULL;
    }
    a->used = at + n;
    return a->base + at;
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

sl_err sl_sparkplug_ncmd_decode(struct sl_sparkplug_ncmd *out, const uint8_t *p, size_t len, void *arena)
{
    static _Alignas(16) uint8_t own[SL_SPARKPLUG_ARENA_BYTES];
    out->rebirth = false;
    out->ignored = 0;
    if (len > SL_SPARKPLUG_NCMD_MAX)
        return SL_ERR_LENGTH;
    int d = len ? wire_depth(p, len, 0) : 0;
    if (d < 0)
        return SL_ERR_HEADER;
    if (d > (int)SL_SPARKPLUG_DEPTH_MAX)
        return SL_ERR_RANGE;
    struct arena a = { .base = arena ? arena : own, .cap = SL_SPARKPLUG_ARENA_BYTES };
    ProtobufCAllocator alloc = { .alloc = arena_alloc, .free = arena_free, .allocator_data = &a };
    Payload *pl = sparkplug__payload__unpack(&alloc, len, p);
    if (!pl)
        return a.exhausted ? SL_ERR_NOMEM : SL_ERR_HEADER;
    for (size_t i = 0; i < pl->n_metrics; i++) {
        const Metric *mt = pl->metrics[i];
        bool named = mt->name && strcmp(mt->name, SL_SPARKPLUG_METRIC_REBIRTH) == 0;
        bool aliased = !mt->name && mt->has_alias && mt->alias == SL_SPARKPLUG_REBIRTH_ALIAS;
        if ((named || aliased) && mt->value_case == SPARKPLUG__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE &&
            mt->boolean_value)
            out->rebirth = true;
        else
            out->ignored++;
    }
    if (pl->n_metrics == 0)
        out->ignored++;
    /* Nothing to free: the arena is reused by the next decode. */
    return SL_OK;
}

/* ---- STATE: {"online":true,"timestamp":1700000000000} ------------------- */

static void skip_ws(const uint8_t *p, size_t len, size_t *i)
{
    while (*i < len && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\r' || p[*i] == '\n'))
        (*i)++;
}

/* A JSON string at p[*i] (no escapes needed for the keys we read: a
 * backslash is skipped with the byte after it). */
static bool json_string(const uint8_t *p, size_t len, size_t *i, size_t *start, size_t *n)
{
    if (*i >= len || p[*i] != '"')
        return false;
    size_t j = *i + 1;
    *start = j;
    while (j < len && p[j] != '"')
        j += p[j] == '\\' ? 2u : 1u;
    if (j >= len)
        return false;
    *n = j - *start;
    *i = j + 1;
    return true;
}

static bool word_at(const uint8_t *p, size_t len, size_t i, const char *w)
{
    size_t n = strlen(w);
    return n <= len - i && memcmp(p + i, w, n) == 0;
}

static sl_err state_parse(const uint8_t *p, size_t len, bool *online, uint64_t *ts_ms)
{
    bool have_online = false;
    size_t i = 0;
    skip_ws(p, len, &i);
    if (i >= len || p[i] != '{')
        return SL_ERR_HEADER;
    i++;
    for (bool first = true;; first = false) {
        skip_ws(p, len, &i);
        if (first && i < len && p[i] == '}')
            break;
        size_t ks, kn;
        if (!json_string(p, len, &i, &ks, &kn))
            return SL_ERR_HEADER;
        skip_ws(p, len, &i);
        if (i >= len || p[i] != ':')
            return SL_ERR_HEADER;
        i++;
        skip_ws(p, len, &i);
        bool is_online = kn == 6 && memcmp(p + ks, "online", 6) == 0;
        bool is_ts = kn == 9 && memcmp(p + ks, "timestamp", 9) == 0;
        if (i >= len)
            return SL_ERR_HEADER;
        if (word_at(p, len, i, "true") || word_at(p, len, i, "false")) {
            bool v = p[i] == 't';
            i += v ? 4u : 5u;
            if (is_online) {
                *online = v;
                have_online = true;
            } else if (is_ts) {
                return SL_ERR_HEADER;
            }
        } else if (p[i] >= '0' && p[i] <= '9') {
            uint64_t v = 0;
            bool big = false;
            while (i < len && p[i] >= '0' && p[i] <= '9') {
                big |= v > (UINT64_MAX - 9u) / 10u;
                v = v * 10u + (uint64_t)(p[i] - '0');
                i++;
            }
            if (i < len && (p[i] == '.' || p[i] == 'e' || p[i] == 'E'))
                return SL_ERR_HEADER;
            if (is_online || (is_ts && big))
                return SL_ERR_HEADER;
            if (is_ts)
                *ts_ms = v;
        } else if (p[i] == '"') {
            size_t vs, vn;
            if (is_online || is_ts || !json_string(p, len, &i, &vs, &vn))
                return SL_ERR_HEADER;
        } else if (word_at(p, len, i, "null")) {
            if (is_online)
                return SL_ERR_HEADER;
            i += 4;
        } else {
            return SL_ERR_HEADER;   /* nested objects and arrays: not a STATE payload */
        }
        skip_ws(p, len, &i);
        if (i < len && p[i] == ',') {
            i++;
            continue;
        }
        if (i < len && p[i] == '}')
            break;
        return SL_ERR_HEADER;
    }
    i++;
    skip_ws(p, len, &i);
    if (i != len || !have_online)
        return SL_ERR_HEADER;
    return SL_OK;
}

sl_err sl_sparkplug_state_parse(const uint8_t *p, size_t len, bool *online, uint64_t *ts_ms)
{
    *online = false;
    *ts_ms = 0;
    sl_err e = state_parse(p, len, online, ts_ms);
    if (e != SL_OK) {   /* outputs zeroed on failure */
        *online = false;
        *ts_ms = 0;
    }
    return e;
}
