/* MQTT Unified Namespace publisher (sl_mqtt.h, docs/services.md). */
#include "sl_mqtt.h"

#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_conf.h"
#include "sl_json.h"

#define TOPIC_MAX   (SL_MQTT_PREFIX_MAX + 1 + SL_PATH_MAX + 1 + SL_NAME_MAX + 1)
#define STATUS_SUFFIX "/_sluice/status"
#define WILL_PAYLOAD "{\"online\":false,\"reason\":\"connection lost\"}"
#define BYE_PAYLOAD  "{\"online\":false,\"reason\":\"shutdown\"}"

enum state { WAITING, CONNECTING, CONNECTED };

struct sl_mqtt {
    struct mosquitto *mosq;
    const struct sl_mirror *m;
    struct sl_mqttconn *conn;  /* broker, TLS, credentials, client id */
    struct sl_mqttconn_diag diag;  /* why the last attempt failed */
    bool unusable;             /* setup refused the TLS files: each attempt retries it */
    char prefix[SL_MQTT_PREFIX_MAX + 1];
    char status_topic[SL_MQTT_PREFIX_MAX + sizeof STATUS_SUFFIX];
    unsigned max_inflight, max_per_run;
    uint32_t backoff_min_ms, backoff_max_ms, backoff_ms;

    enum state state;
    bool lost;                 /* set by callbacks, acted on after the loop call */
    bool fresh;                /* the client has never connected: no reinitialise */
    uint64_t next_try_ms;      /* WAITING: when to connect again */
    uint64_t since_ms;         /* CONNECTING: when the attempt started */
    uint64_t up_ms;            /* CONNECTED: since when (0: not yet noted) */

    uint32_t max_tags;
    size_t words;
    uint64_t *dirty;           /* one bit per tag position */
    size_t cursor;             /* round-robin word index */
    bool status_dirty;
    struct sl_mqtt_stats st;

    char topic[TOPIC_MAX];
    char payload[SL_JSON_TAG_MAX];
};

static void mark_all(struct sl_mqtt *q)
{
    uint32_t n = sl_mirror_count(q->m);
    if (n > q->max_tags)
        n = q->max_tags;
    memset(q->dirty, 0, q->words * sizeof *q->dirty);
    memset(q->dirty, 0xFF, (n / 64) * sizeof *q->dirty);
    if (n % 64)
        q->dirty[n / 64] = (1ull << (n % 64)) - 1;
    q->st.pending = n;
    q->status_dirty = true;
}

/* ---- libmosquitto callbacks (run inside loop_read/loop_write) ------------ */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct sl_mqtt *q = obj;
    if (rc != 0) {             /* CONNACK refused */
        sl_mqttconn_diag_connack(&q->diag, rc);
        q->lost = true;
        return;
    }
    /* libmosquitto formats (and allocates) a log line for every packet
     * while a log callback is set: it is only wanted for the handshake's
     * errors, and setup() sets it again before the next attempt. */
    mosquitto_log_callback_set(mosq, NULL);
    q->state = CONNECTED;
    q->st.connected = true;
    q->st.connects++;
    q->up_ms = 0;              /* the back-off is reset once it has stayed up */
    q->st.inflight = 0;
    mark_all(q);               /* retained state may be older than ours */
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    (void)rc;
    struct sl_mqtt *q = obj;
    q->lost = true;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    (void)mid;
    struct sl_mqtt *q = obj;
    q->st.acked++;
    if (q->st.inflight)
        q->st.inflight--;
}

/* libmosquitto's own log, while connecting: only its TLS errors are kept
 * (the reason a handshake failed); the daemon logs state changes itself. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *line)
{
    struct sl_mqtt *q = obj;
    sl_mqttconn_diag_log(&q->diag, level, line);
    sl_mqttconn_diag_tls(&q->diag, mosq);
}

/* Callbacks, options, TLS, credentials and will for a new or
 * re-initialised client. SL_ERR_IO (q->diag.why says why) when the TLS
 * files cannot be used: the client is then unusable until a later setup
 * succeeds. */
static sl_err setup(struct sl_mqtt *q)
{
    mosquitto_connect_callback_set(q->mosq, on_connect);
    mosquitto_disconnect_callback_set(q->mosq, on_disconnect);
    mosquitto_publish_callback_set(q->mosq, on_publish);
    mosquitto_log_callback_set(q->mosq, on_log);
    mosquitto_int_option(q->mosq, MOSQ_OPT_SEND_MAXIMUM, (int)q->max_inflight);
    struct sl_mqttconn_will will = { .topic = q->status_topic, .payload = WILL_PAYLOAD,
                                     .len = strlen(WILL_PAYLOAD), .qos = 1, .retain = true };
    char why[SL_MQTTCONN_WHY_MAX];
    sl_err e = sl_mqttconn_apply(q->conn, q->mosq, &will, why, sizeof why);
    q->unusable = e != SL_OK;
    if (e == SL_ERR_IO) {
        q->diag.fail = SL_MQTTCONN_FAIL_TLS;
        snprintf(q->diag.why, sizeof q->diag.why, "%s", why);
    }
    return e;
}

/* ---- connection ---------------------------------------------------------- */

/* Drops the connection (closing the socket without DISCONNECT, so the
 * broker publishes the will) and schedules the next attempt. */
static sl_err lose(struct sl_mqtt *q, uint64_t now_ms)
{
    if (q->state == CONNECTED) {
        q->st.disconnects++;
    } else {
        q->st.connect_failures++;
        q->st.failures_by[q->diag.fail < SL_MQTTCONN_FAIL__COUNT ? q->diag.fail : SL_MQTTCONN_FAIL_NET]++;
        q->st.last_fail = (uint8_t)q->diag.fail;
    }
    q->state = WAITING;
    q->st.connected = false;
    q->st.inflight = 0;
    q->lost = false;
    q->next_try_ms = now_ms + q->backoff_ms;
    q->backoff_ms = q->backoff_ms > q->backoff_max_ms / 2 ? q->backoff_max_ms : q->backoff_ms * 2;
    /* Re-initialising closes the socket and forgets queued messages: after
     * the reconnect every tag is published again anyway. */
    if (mosquitto_reinitialise(q->mosq, sl_mqttconn_client_id(q->conn), true, q) != MOSQ_ERR_SUCCESS)
        return SL_ERR_NOMEM;
    sl_err e = setup(q);
    return e == SL_ERR_IO ? SL_OK : e;     /* unusable: retried at the next attempt */
}

/* Starts an attempt: TCP connect, TLS handshake and CONNACK then go on in
 * the loop calls of sl_mqtt_run, bounded by SL_MQTT_CONNECT_TIMEOUT_MS. */
static sl_err try_connect(struct sl_mqtt *q, uint64_t now_ms)
{
    q->since_ms = now_ms;
    q->state = CONNECTING;
    q->lost = false;
    sl_mqttconn_diag_reset(&q->diag);
    if (q->unusable) {
        sl_err e = setup(q);
        if (e == SL_ERR_IO)
            return lose(q, now_ms);    /* counted as a TLS failure, q->diag says why */
        if (e != SL_OK)
            return e;
    }
    int rc = sl_mqttconn_connect(q->conn, q->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        sl_mqttconn_diag_error(&q->diag, rc, false);
        return lose(q, now_ms);
    }
    return SL_OK;
}

/* ---- publishing ---------------------------------------------------------- */

/* Appends a topic level, with the MQTT wildcards + and # (not allowed in a
 * published topic) replaced by '_'. */
static size_t put_level(char *dst, size_t at, const char *s)
{
    for (; *s && at < TOPIC_MAX - 1; s++)
        dst[at++] = (*s == '+' || *s == '#') ? '_' : *s;
    return at;
}

static bool publish_status(struct sl_mqtt *q)
{
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, q->payload, sizeof q->payload);
    sl_jbuf_lit(&b, "{\"online\":true,\"link_up\":");
    sl_jbuf_lit(&b, sl_mirror_link_up(q->m) ? "true" : "false");
    sl_jbuf_lit(&b, ",\"schema_id\":");
    sl_json_u64(&b, sl_mirror_schema_id(q->m));
    sl_jbuf_lit(&b, ",\"tags\":");
    sl_json_u64(&b, sl_mirror_count(q->m));
    sl_jbuf_lit(&b, ",\"ts\":");
    sl_json_time(&b, sl_clock_wall_us());
    sl_jbuf_lit(&b, "}");
    int rc = mosquitto_publish(q->mosq, NULL, q->status_topic, (int)b.len, b.p, 1, true);
    if (rc == MOSQ_ERR_SUCCESS) {
        q->st.inflight++;
        return true;
    }
    q->st.publish_errors++;
    return rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST;
}

/* Publishes the tag at pos; false when the connection is gone. */
static bool publish_tag(struct sl_mqtt *q, uint32_t pos)
{
    struct sl_mirror_tag t;
    if (sl_mirror_get(q->m, pos, &t) != SL_OK)
        return true;           /* schema shrank: nothing to send */
    size_t at = put_level(q->topic, 0, q->prefix);
    q->topic[at++] = '/';
    if (t.path[0]) {
        at = put_level(q->topic, at, t.path);
        q->topic[at++] = '/';
    }
    at = put_level(q->topic, at, t.name);
    q->topic[at] = '\0';
    struct sl_jbuf b;
    sl_jbuf_fixed(&b, q->payload, sizeof q->payload);
    sl_json_tag(&b, &t, 0, SL_JSON_TAG_MQTT);
    if (b.failed) {
        q->st.publish_errors++;
        return true;
    }
    int rc = mosquitto_publish(q->mosq, NULL, q->topic, (int)b.len, b.p, 1, true);
    if (rc == MOSQ_ERR_SUCCESS) {
        q->st.published++;
        q->st.inflight++;
        return true;
    }
    q->st.publish_errors++;
    return rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST;
}

/* Up to max_per_run publishes, keeping at most max_inflight unacknowledged. */
static bool publish_some(struct sl_mqtt *q)
{
    unsigned budget = q->max_per_run;
    if (q->status_dirty && q->st.inflight < q->max_inflight) {
        q->status_dirty = false;
        if (!publish_status(q))
            return false;
        budget--;
    }
    for (size_t i = 0; i < q->words && q->st.pending; i++) {
        size_t w = (q->cursor + i) % q->words;
        while (q->dirty[w]) {
            if (budget == 0 || q->st.inflight >= q->max_inflight) {
                q->cursor = w;
                return true;
            }
            unsigned bit = (unsigned)__builtin_ctzll(q->dirty[w]);
            q->dirty[w] &= q->dirty[w] - 1;
            q->st.pending--;
            budget--;
            if (!publish_tag(q, (uint32_t)(w * 64u + bit)))
                return false;
        }
    }
    q->cursor = 0;
    return true;
}

/* ---- public -------------------------------------------------------------- */

sl_err sl_mqtt_open(struct sl_mqtt **out, const struct sl_mqtt_config *cfg,
                    const struct sl_mirror *m, char *why, size_t cap)
{
    *out = NULL;
    if (cap)
        why[0] = '\0';
    if (!cfg || !m || cfg->max_tags == 0 || cfg->max_tags > SL_MIRROR_MAX_TAGS)
        return SL_ERR_CONFIG;
    const char *prefix = cfg->prefix && *cfg->prefix ? cfg->prefix : SL_MQTT_DEFAULT_PREFIX;
    size_t pl = strlen(prefix);
    if (pl > SL_MQTT_PREFIX_MAX || strpbrk(prefix, "+#") || prefix[0] == '/' ||
        prefix[pl - 1] == '/') {
        if (cap)
            snprintf(why, cap, "bad prefix '%s'", prefix);
        return SL_ERR_CONFIG;
    }

    struct sl_mqtt *q = calloc(1, sizeof *q);
    if (!q)
        return SL_ERR_NOMEM;
    q->m = m;
    sl_err e = sl_mqttconn_open(&q->conn, &cfg->conn, why, cap);
    if (e != SL_OK) {
        free(q);
        return e;
    }
    memcpy(q->prefix, prefix, pl + 1);
    snprintf(q->status_topic, sizeof q->status_topic, "%s%s", prefix, STATUS_SUFFIX);
    q->max_inflight = cfg->max_inflight ? cfg->max_inflight : SL_MQTT_DEFAULT_INFLIGHT;
    if (q->max_inflight > 65535)
        q->max_inflight = 65535;
    q->max_per_run = cfg->max_per_run ? cfg->max_per_run : SL_MQTT_DEFAULT_PER_RUN;
    q->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : SL_MQTT_DEFAULT_BACKOFF_MIN_MS;
    q->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : SL_MQTT_DEFAULT_BACKOFF_MAX_MS;
    if (q->backoff_max_ms < q->backoff_min_ms)
        q->backoff_max_ms = q->backoff_min_ms;
    q->backoff_ms = q->backoff_min_ms;
    q->max_tags = cfg->max_tags;
    q->words = ((size_t)cfg->max_tags + 63) / 64;
    q->dirty = calloc(q->words, sizeof *q->dirty);
    if (!q->dirty) {
        sl_mqttconn_close(q->conn);
        free(q);
        return SL_ERR_NOMEM;
    }
    mosquitto_lib_init();
    q->mosq = mosquitto_new(sl_mqttconn_client_id(q->conn), true, q);
    e = q->mosq ? setup(q) : SL_ERR_NOMEM;
    if (e != SL_OK) {
        if (e == SL_ERR_IO && cap)
            snprintf(why, cap, "%s", q->diag.why);
        sl_mqtt_close(q);
        return e;
    }
    q->state = WAITING;
    q->next_try_ms = 0;        /* first attempt at the first run */
    *out = q;
    return SL_OK;
}

void sl_mqtt_close(struct sl_mqtt *q)
{
    if (!q)
        return;
    if (q->mosq) {
        if (q->state == CONNECTED) {
            /* A clean DISCONNECT suppresses the will, so say goodbye
             * ourselves; flush for at most ~200 ms. */
            mosquitto_publish(q->mosq, NULL, q->status_topic, (int)strlen(BYE_PAYLOAD),
                              BYE_PAYLOAD, 1, true);
            mosquitto_disconnect(q->mosq);
            for (int i = 0; i < 20 && mosquitto_want_write(q->mosq); i++) {
                struct pollfd p = { .fd = mosquitto_socket(q->mosq), .events = POLLOUT };
                if (p.fd < 0 || poll(&p, 1, 10) < 0)
                    break;
                if (mosquitto_loop_write(q->mosq, 1) != MOSQ_ERR_SUCCESS)
                    break;
            }
        }
        mosquitto_destroy(q->mosq);
        mosquitto_lib_cleanup();
    }
    sl_mqttconn_close(q->conn);
    free(q->dirty);
    free(q);
}

int sl_mqtt_fd(const struct sl_mqtt *q)
{
    return q->state == WAITING ? -1 : mosquitto_socket(q->mosq);
}

bool sl_mqtt_waiting(const struct sl_mqtt *q) { return q->state == WAITING; }

bool sl_mqtt_want_write(const struct sl_mqtt *q)
{
    return q->state != WAITING && mosquitto_want_write(q->mosq);
}

int sl_mqtt_timeout_ms(const struct sl_mqtt *q, uint64_t now_ms)
{
    uint64_t t = 1000;     /* keepalive and connect timeout checks */
    if (q->state == WAITING) {
        uint64_t wait = q->next_try_ms > now_ms ? q->next_try_ms - now_ms : 0;
        if (wait < t)
            t = wait;
    } else if (q->state == CONNECTED && (q->st.pending || q->status_dirty) &&
               q->st.inflight < q->max_inflight) {
        t = 0;
    }
    return (int)t;
}

sl_err sl_mqtt_run(struct sl_mqtt *q, short revents, uint64_t now_ms)
{
    if (q->state != WAITING) {
        int rc = MOSQ_ERR_SUCCESS;
        if (revents & (POLLIN | POLLERR | POLLHUP))
            rc = mosquitto_loop_read(q->mosq, 16);
        if (rc == MOSQ_ERR_SUCCESS && !q->lost && (revents & POLLOUT) &&
            mosquitto_want_write(q->mosq))
            rc = mosquitto_loop_write(q->mosq, 16);
        if (rc == MOSQ_ERR_SUCCESS && !q->lost)
            rc = mosquitto_loop_misc(q->mosq);
        bool timed_out = q->state == CONNECTING && now_ms - q->since_ms >= SL_MQTT_CONNECT_TIMEOUT_MS;
        if (rc != MOSQ_ERR_SUCCESS || q->lost || timed_out) {
            if (q->state == CONNECTING)
                sl_mqttconn_diag_error(&q->diag, rc, timed_out && rc == MOSQ_ERR_SUCCESS && !q->lost);
            return lose(q, now_ms);
        }
    }
    if (q->state == WAITING) {
        if (now_ms < q->next_try_ms)
            return SL_OK;
        return try_connect(q, now_ms);
    }
    if (q->state == CONNECTED) {
        if (!q->up_ms)
            q->up_ms = now_ms ? now_ms : 1;
        else if (now_ms - q->up_ms >= sl_mqttconn_stable_ms(q->conn))
            q->backoff_ms = q->backoff_min_ms;
        if (!publish_some(q) || q->lost)
            return lose(q, now_ms);
    }
    return SL_OK;
}

void sl_mqtt_notify(struct sl_mqtt *q, enum sl_mirror_event ev, uint32_t pos)
{
    if (!q)
        return;
    if (ev == SL_MIRROR_EV_VALUE) {
        if (pos >= q->max_tags)
            return;
        uint64_t bit = 1ull << (pos % 64);
        if (!(q->dirty[pos / 64] & bit)) {
            q->dirty[pos / 64] |= bit;
            q->st.pending++;
        } else {
            q->st.coalesced++;
        }
    } else if (ev == SL_MIRROR_EV_LINK || ev == SL_MIRROR_EV_SCHEMA) {
        mark_all(q);
    }
}

void sl_mqtt_stats(const struct sl_mqtt *q, struct sl_mqtt_stats *out)
{
    *out = q->st;
}

const char *sl_mqtt_last_error(const struct sl_mqtt *q) { return q->diag.why; }

const char *sl_mqtt_client_id(const struct sl_mqtt *q) { return sl_mqttconn_client_id(q->conn); }
