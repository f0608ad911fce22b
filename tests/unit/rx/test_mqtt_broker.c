/* The MQTT publisher against a real mosquitto broker started by the test on
 * 127.0.0.1 and a free port (never 1883: Debian runs a system broker
 * there), observed by a libmosquitto subscriber: every tag retained with
 * the JSON shape, a stale link republishes every quality as 0x408F0000, the
 * status topic, the last will when the connection dies, reconnect with
 * backoff, coalescing while the broker is away, the in-flight cap. Both
 * clients are driven from this thread with bounded loops. An integration
 * test (test_mqtt_broker, a child daemon): reports SKIP without mosquitto. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rx_broker.h"
#include "rx_fixture.h"
#include "sl_clock.h"
#include "sl_mqtt.h"

/* The broker is a child daemon: without mosquitto the case is skipped. */
static bool broker_missing(void)
{
    if (sl_test_on_path("mosquitto"))
        return false;
    sl_test_skip("mosquitto not on PATH (Debian package mosquitto)");
    return true;
}

/* ---- the subscriber: latest payload per topic ----------------------------- */

#define SUB_MAX 64
struct seen {
    char topic[SUB_MAX][160];
    char payload[SUB_MAX][512];
    bool retained[SUB_MAX];
    int n;
    int total;
};

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    struct seen *s = obj;
    int i;
    for (i = 0; i < s->n && strcmp(s->topic[i], msg->topic); i++)
        ;
    if (i == s->n) {
        if (s->n == SUB_MAX)
            return;
        snprintf(s->topic[s->n++], sizeof s->topic[0], "%s", msg->topic);
    }
    snprintf(s->payload[i], sizeof s->payload[0], "%.*s", msg->payloadlen,
             (const char *)msg->payload);
    s->retained[i] = msg->retain;
    s->total++;
}

static const char *payload_of(const struct seen *s, const char *topic)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->topic[i], topic))
            return s->payload[i];
    return NULL;
}

static struct mosquitto *sub_start(uint16_t port, struct seen *s)
{
    memset(s, 0, sizeof *s);
    struct mosquitto *c = mosquitto_new("test-sub", true, s);
    CU_ASSERT_FATAL(c != NULL);
    mosquitto_message_callback_set(c, on_message);
    CU_ASSERT_FATAL(mosquitto_connect(c, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS);
    CU_ASSERT_FATAL(mosquitto_subscribe(c, NULL, "uns/#", 1) == MOSQ_ERR_SUCCESS);
    return c;
}

/* ---- driving the publisher like the daemon does --------------------------- */

static unsigned g_max_inflight;

static void hook(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    sl_mqtt_notify(ctx, ev, pos);
}

static void step(struct sl_mqtt *q, struct mosquitto *sub)
{
    uint64_t now = sl_clock_mono_ms();
    int t = sl_mqtt_timeout_ms(q, now);
    struct pollfd p = { .fd = sl_mqtt_fd(q), .events = POLLIN };
    if (sl_mqtt_want_write(q))
        p.events |= POLLOUT;
    short rev = 0;
    if (p.fd >= 0 && poll(&p, 1, t < 2 ? t : 2) > 0)
        rev = p.revents;
    else if (p.fd < 0 && t > 0)
        usleep(2000);
    uint64_t before = sl_clock_mono_ms();
    CU_ASSERT(sl_mqtt_run(q, rev, sl_clock_mono_ms()) == SL_OK);
    CU_ASSERT(sl_clock_mono_ms() - before < 200);        /* never blocks the loop */
    struct sl_mqtt_stats st;
    sl_mqtt_stats(q, &st);
    CU_ASSERT(st.inflight <= g_max_inflight);
    if (sub)
        mosquitto_loop(sub, 1, 8);
}

/* Steps until cond() holds or ~8 s pass. */
static bool until(struct sl_mqtt *q, struct mosquitto *sub, bool (*cond)(void *), void *arg)
{
    uint64_t end = sl_clock_mono_ms() + 8000;
    while (sl_clock_mono_ms() < end) {
        if (cond(arg))
            return true;
        step(q, sub);
    }
    return cond(arg);
}

static bool idle(void *arg)
{
    struct sl_mqtt_stats st;
    sl_mqtt_stats(arg, &st);
    return st.connected && st.pending == 0 && st.inflight == 0;
}

static bool all_tags(void *arg)
{
    struct seen *s = arg;
    return s->n == FX_TAGS + 1;
}

static bool all_stale(void *arg)
{
    struct seen *s = arg;
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += strstr(s->payload[i], "\"quality\":1083113472,") != NULL;
    const char *st = payload_of(s, "uns/_sluice/status");
    return n == FX_TAGS && st && strstr(st, "\"link_up\":false");
}

static bool status_has(void *arg)
{
    void **a = arg;
    const char *st = payload_of(a[0], "uns/_sluice/status");
    return st && strstr(st, a[1]);
}

static struct sl_mqtt *open_q(uint16_t port, const struct sl_mirror *m, unsigned inflight)
{
    char broker[32];
    snprintf(broker, sizeof broker, "127.0.0.1:%u", (unsigned)port);
    struct sl_mqtt_config cfg = { .conn = { .broker = broker, .client_id = "sluice-test", .keepalive_s = 10 },
                                  .prefix = "uns", .max_tags = 64, .max_inflight = inflight,
                                  .max_per_run = 3, .backoff_min_ms = 50,
                                  .backoff_max_ms = 400 };
    g_max_inflight = inflight;
    struct sl_mqtt *q = NULL;
    CU_ASSERT_FATAL(sl_mqtt_open(&q, &cfg, m, NULL, 0) == SL_OK);
    return q;
}

SL_TEST(mqtt, retained_tags_link_stale_and_will)
{
    if (broker_missing())
        return;
    uint16_t port = broker_free_port();
    pid_t broker = broker_start(port);
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    sl_mirror_tick(m, 100, 0);
    struct sl_mqtt *q = open_q(port, m, 4);
    sl_mirror_set_hook(m, hook, q);
    CU_ASSERT_FATAL(until(q, NULL, idle, q));

    /* A subscriber arriving later gets every tag from the retained store. */
    struct seen seen;
    struct mosquitto *sub = sub_start(port, &seen);
    CU_ASSERT(until(q, sub, all_tags, &seen));
    for (int i = 0; i < seen.n; i++)
        CU_ASSERT(seen.retained[i]);
    CU_ASSERT_STRING_EQUAL(payload_of(&seen, "uns/acme/plant1/area1/line1/tag5"),
                           "{\"value\":48879,\"quality\":0,\"quality_name\":\"Good\","
                           "\"ts\":\"1970-01-01T00:00:00.001000Z\","
                           "\"rx_ts\":\"1970-01-01T00:00:00.001005Z\"}");
    CU_ASSERT_STRING_EQUAL(payload_of(&seen, "uns/acme/plant1/area1/line1/tag11"),
                           "{\"value\":true,\"quality\":0,\"quality_name\":\"Good\","
                           "\"ts\":\"1970-01-01T00:00:00.001000Z\","
                           "\"rx_ts\":\"1970-01-01T00:00:00.001005Z\"}");
    CU_ASSERT(payload_of(&seen, "uns/acme/plant1/area7/line1/tag15") != NULL);
    const char *st = payload_of(&seen, "uns/_sluice/status");
    CU_ASSERT_FATAL(st != NULL);
    CU_ASSERT(strncmp(st, "{\"online\":true,\"link_up\":true,\"schema_id\":3,\"tags\":16,", 54) == 0);

    /* One change: one message with the new value. */
    int before = seen.total;
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 7, SL_Q_GOOD, 2000);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 2001) == SL_OK);
    CU_ASSERT(until(q, sub, idle, q));
    for (int i = 0; i < 50; i++)
        step(q, sub);
    CU_ASSERT_EQUAL(seen.total, before + 1);
    CU_ASSERT(strncmp(payload_of(&seen, "uns/acme/plant1/area1/line1/tag5"), "{\"value\":7,", 11) == 0);

    /* The link goes stale: every tag's quality is republished. */
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT(until(q, sub, all_stale, &seen));
    CU_ASSERT(strstr(payload_of(&seen, "uns/acme/plant1/area1/line1/tag5"),
                     "\"quality_name\":\"UncertainNoCommunicationLastUsableValue\"") != NULL);

    /* The connection dies under the publisher: the broker publishes the
     * will; the publisher reconnects and is online again. */
    CU_ASSERT_FATAL(sl_mqtt_fd(q) >= 0);
    shutdown(sl_mqtt_fd(q), SHUT_RDWR);
    void *will[2] = { &seen, "\"online\":false,\"reason\":\"connection lost\"" };
    CU_ASSERT(until(q, sub, status_has, will));
    void *back[2] = { &seen, "\"online\":true" };
    CU_ASSERT(until(q, sub, status_has, back));
    CU_ASSERT(until(q, sub, idle, q));
    struct sl_mqtt_stats s;
    sl_mqtt_stats(q, &s);
    CU_ASSERT_EQUAL(s.connects, 2);
    CU_ASSERT_EQUAL(s.disconnects, 1);
    CU_ASSERT(s.acked >= s.published);

    /* A clean close says offline itself (a DISCONNECT suppresses the will). */
    sl_mirror_set_hook(m, NULL, NULL);
    sl_mqtt_close(q);
    void *bye[2] = { &seen, "\"online\":false,\"reason\":\"shutdown\"" };
    for (int i = 0; i < 300 && !status_has(bye); i++)
        mosquitto_loop(sub, 5, 8);
    CU_ASSERT(status_has(bye));
    mosquitto_disconnect(sub);
    mosquitto_destroy(sub);
    broker_stop(broker);
    sl_mirror_destroy(m);
}

static bool connected(void *arg)
{
    struct sl_mqtt_stats st;
    sl_mqtt_stats(arg, &st);
    return st.connected;
}

SL_TEST(mqtt, broker_away_backoff_and_coalescing)
{
    if (broker_missing())
        return;
    uint16_t port = broker_free_port();
    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    struct sl_mqtt *q = open_q(port, m, 2);
    sl_mirror_set_hook(m, hook, q);
    /* No broker: attempts fail fast and back off; nothing blocks. */
    uint64_t end = sl_clock_mono_ms() + 600;
    while (sl_clock_mono_ms() < end)
        step(q, NULL);
    struct sl_mqtt_stats st;
    sl_mqtt_stats(q, &st);
    CU_ASSERT(!st.connected);
    CU_ASSERT(st.connect_failures >= 2);
    CU_ASSERT(st.connect_failures <= 8);       /* 50, 100, 200, 400, 400 ms ... */
    CU_ASSERT(sl_mqtt_timeout_ms(q, sl_clock_mono_ms()) <= 400);
    /* Changes while away coalesce: one pending entry per tag. */
    for (uint64_t i = 0; i < 1000; i++) {
        struct sl_value v = fx_val(5, SL_TYPE_UINT16, i, SL_Q_GOOD, 2000 + i);
        CU_ASSERT(sl_mirror_apply(m, &v, 1, 3000 + i) == SL_OK);
    }
    sl_mqtt_stats(q, &st);
    CU_ASSERT_EQUAL(st.pending, 1);
    /* The broker appears: connected within the backoff cap, and every tag
     * is sent with at most 2 in flight. */
    pid_t broker = broker_start(port);
    CU_ASSERT(until(q, NULL, connected, q));
    CU_ASSERT(until(q, NULL, idle, q));
    sl_mqtt_stats(q, &st);
    CU_ASSERT_EQUAL(st.published, FX_TAGS);
    CU_ASSERT_EQUAL(st.connects, 1);
    struct seen seen;
    struct mosquitto *sub = sub_start(port, &seen);
    CU_ASSERT(until(q, sub, all_tags, &seen));
    CU_ASSERT(strncmp(payload_of(&seen, "uns/acme/plant1/area1/line1/tag5"), "{\"value\":999,", 13) == 0);
    mosquitto_disconnect(sub);
    mosquitto_destroy(sub);
    sl_mirror_set_hook(m, NULL, NULL);
    sl_mqtt_close(q);
    broker_stop(broker);
    sl_mirror_destroy(m);
}
