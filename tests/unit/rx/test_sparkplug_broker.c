/* The Sparkplug B edge node against a real mosquitto started by the test on
 * 127.0.0.1 and a free port, observed by a libmosquitto subscriber that
 * decodes every payload with the generated protobuf-c code: births wait
 * for the primary host's STATE, an offline STATE ends the session with
 * NDEATH and the next connection has the next bdSeq, an older STATE is
 * ignored; a stale link kills every device and its return rebirths them; a
 * schema without a device kills that device and rebirths the node; NCMD
 * rebirths come at most one a second; a DBIRTH larger than the DDATA buffer
 * grows it. Both clients are driven from this thread.
 * An integration test (a child daemon): SKIP without mosquitto. */
#include <mosquitto.h>
#include <poll.h>
#include <stdlib.h>

#include "rx_broker.h"
#include "rx_fixture.h"
#include "sl_clock.h"
#include "sl_sparkplug.h"
#include "sparkplug_b.pb-c.h"

/* ---- the observer: every Sparkplug message, in order ---------------------- */

#define MSG_MAX 512
struct msg {
    char topic[128];
    uint64_t seq, bdseq;
    bool has_seq, has_bdseq;
    size_t metrics;
};
static struct msg seen[MSG_MAX];
static int nseen;

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
    (void)mosq;
    (void)obj;
    if (nseen == MSG_MAX || strncmp(m->topic, "spBv1.0/g1/", 11) != 0)
        return;
    Sparkplug__Payload *p = sparkplug__payload__unpack(NULL, (size_t)m->payloadlen, m->payload);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct msg *s = &seen[nseen++];
    memset(s, 0, sizeof *s);
    snprintf(s->topic, sizeof s->topic, "%s", m->topic + 11);
    s->has_seq = p->has_seq;
    s->seq = p->seq;
    s->metrics = p->n_metrics;
    for (size_t i = 0; i < p->n_metrics; i++)
        if (p->metrics[i]->name && strcmp(p->metrics[i]->name, "bdSeq") == 0) {
            s->has_bdseq = true;
            s->bdseq = p->metrics[i]->long_value;
        }
    sparkplug__payload__free_unpacked(p, NULL);
}

/* The index of the first message on topic (after "spBv1.0/g1/") from
 * index from on, or -1. */
static int find(const char *topic, int from)
{
    for (int i = from; i < nseen; i++)
        if (strcmp(seen[i].topic, topic) == 0)
            return i;
    return -1;
}

static struct mosquitto *client(uint16_t port, const char *id)
{
    struct mosquitto *c = mosquitto_new(id, true, NULL);
    CU_ASSERT_FATAL(c != NULL);
    mosquitto_message_callback_set(c, on_message);
    CU_ASSERT_FATAL(mosquitto_connect(c, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS);
    CU_ASSERT_FATAL(mosquitto_subscribe(c, NULL, "spBv1.0/g1/#", 1) == MOSQ_ERR_SUCCESS);
    return c;
}

static void state(struct mosquitto *c, bool online, uint64_t ts)
{
    char b[96];
    int n = snprintf(b, sizeof b, "{\"online\":%s,\"timestamp\":%llu}", online ? "true" : "false",
                     (unsigned long long)ts);
    CU_ASSERT(mosquitto_publish(c, NULL, "spBv1.0/STATE/scada", n, b, 1, true) == MOSQ_ERR_SUCCESS);
}

static void rebirth(struct mosquitto *c)
{
    uint8_t b[128];
    Sparkplug__Payload__Metric mt = SPARKPLUG__PAYLOAD__METRIC__INIT;
    mt.name = (char *)SL_SPARKPLUG_METRIC_REBIRTH;
    mt.value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
    mt.boolean_value = true;
    Sparkplug__Payload__Metric *list[1] = { &mt };
    Sparkplug__Payload p = SPARKPLUG__PAYLOAD__INIT;
    p.n_metrics = 1;
    p.metrics = list;
    size_t n = protobuf_c_message_pack(&p.base, b);
    CU_ASSERT(mosquitto_publish(c, NULL, "spBv1.0/g1/NCMD/n1", (int)n, b, 1, false) == MOSQ_ERR_SUCCESS);
}

/* ---- driving the edge node like the rx-mqtt thread ------------------------ */

static void hook(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    sl_sparkplug_notify(ctx, ev, pos);
}

static void step(struct sl_sparkplug *s, struct mosquitto *obs)
{
    uint64_t now = sl_clock_mono_ms();
    int t = sl_sparkplug_timeout_ms(s, now);
    struct pollfd p = { .fd = sl_sparkplug_fd(s), .events = POLLIN };
    if (sl_sparkplug_want_write(s))
        p.events |= POLLOUT;
    short rev = 0;
    if (p.fd >= 0 && poll(&p, 1, t < 2 ? t : 2) > 0)
        rev = p.revents;
    else if (p.fd < 0 && t > 0)
        usleep(2000);
    uint64_t before = sl_clock_mono_ms();
    CU_ASSERT(sl_sparkplug_run(s, rev, sl_clock_mono_ms()) == SL_OK);
    CU_ASSERT(sl_clock_mono_ms() - before < 200);   /* never blocks the loop */
    mosquitto_loop(obs, 1, 8);
}

/* Steps for ms milliseconds, or until topic appears from index from on
 * (topic NULL: the whole time); returns its index or -1. */
static int run_until(struct sl_sparkplug *s, struct mosquitto *obs, const char *topic, int from, unsigned ms)
{
    uint64_t end = sl_clock_mono_ms() + ms;
    while (sl_clock_mono_ms() < end) {
        step(s, obs);
        int i = topic ? find(topic, from) : -1;
        if (i >= 0)
            return i;
    }
    return topic ? find(topic, from) : -1;
}

static struct sl_sparkplug *open_spb(uint16_t port, const struct sl_mirror *m, const char *host,
                                     unsigned ddata_max, struct sl_mqttconn **conn)
{
    char broker[32], why[200];
    snprintf(broker, sizeof broker, "127.0.0.1:%u", (unsigned)port);
    struct sl_mqttconn_config cc = { .broker = broker, .client_id = "spb-test", .keepalive_s = 10 };
    CU_ASSERT_FATAL(sl_mqttconn_open(conn, &cc, why, sizeof why) == SL_OK);
    struct sl_sparkplug_config sc = { .group_id = "g1", .edge_node_id = "n1", .primary_host_id = host,
                                      .max_tags = 64, .ddata_max_metrics = ddata_max, .backoff_min_ms = 50,
                                      .backoff_max_ms = 200 };
    struct sl_sparkplug *s = NULL;
    CU_ASSERT_FATAL(sl_sparkplug_open(&s, &sc, *conn, m) == SL_OK);
    return s;
}

/* One case's world: a broker child, the observer, the fixture mirror (live
 * link, every tag Good) and the edge node following it. */
struct world {
    pid_t pid;
    uint16_t port;
    struct mosquitto *obs;
    struct sl_mirror *m;
    struct sl_mqttconn *conn;
    struct sl_sparkplug *s;
};

static bool world_start(struct world *w, const char *host, unsigned ddata_max)
{
    if (!sl_test_on_path("mosquitto")) {
        sl_test_skip("mosquitto not on PATH (Debian package mosquitto)");
        return false;
    }
    w->port = broker_free_port();
    w->pid = broker_start(w->port);
    nseen = 0;
    mosquitto_lib_init();
    w->obs = client(w->port, "obs");
    w->m = fx_mirror(3);
    fx_fill(w->m, 1000);
    sl_mirror_tick(w->m, 100, 0);
    w->s = open_spb(w->port, w->m, host, ddata_max, &w->conn);
    sl_mirror_set_hook(w->m, hook, w->s);
    return true;
}

static void world_stop(struct world *w)
{
    sl_sparkplug_close(w->s);
    sl_mqttconn_close(w->conn);
    mosquitto_destroy(w->obs);
    sl_mirror_destroy(w->m);
    broker_stop(w->pid);
}

SL_TEST(spb_broker, primary_host_state)
{
    struct world w;
    if (!world_start(&w, "scada", 0))
        return;
    struct sl_sparkplug *s = w.s;
    struct mosquitto *obs = w.obs;

    /* Connected, but no birth while the host has said nothing. */
    CU_ASSERT(run_until(s, obs, "NBIRTH/n1", 0, 600) < 0);
    struct sl_sparkplug_stats st;
    sl_sparkplug_stats(s, &st);
    CU_ASSERT(st.connected);
    CU_ASSERT_FALSE(st.host_online);
    state(obs, true, 1000);
    int nb = run_until(s, obs, "NBIRTH/n1", 0, 3000);
    CU_ASSERT_FATAL(nb >= 0);
    CU_ASSERT(seen[nb].has_bdseq && seen[nb].bdseq == 0 && seen[nb].seq == 0);
    int d1 = run_until(s, obs, "DBIRTH/n1/unit1", nb, 2000), d7 = run_until(s, obs, "DBIRTH/n1/unit7", nb, 2000);
    CU_ASSERT(d1 > nb && d7 > nb);
    CU_ASSERT(seen[d1].metrics == 15 && seen[d7].metrics == 1);

    /* An older STATE is ignored; a newer offline one ends the session. */
    state(obs, false, 500);
    (void)run_until(s, obs, NULL, 0, 300);
    sl_sparkplug_stats(s, &st);
    CU_ASSERT_EQUAL(st.state_ignored, 1);
    CU_ASSERT(st.host_online);
    int mark = nseen;
    state(obs, false, 2000);
    int nd = run_until(s, obs, "NDEATH/n1", mark, 3000);
    CU_ASSERT_FATAL(nd >= 0);
    CU_ASSERT(seen[nd].has_bdseq && seen[nd].bdseq == 0 && !seen[nd].has_seq);
    /* It reconnects (next bdSeq) and waits for the host again. */
    CU_ASSERT(run_until(s, obs, "NBIRTH/n1", nd, 800) < 0);
    sl_sparkplug_stats(s, &st);
    CU_ASSERT(st.connected && st.bdseq == 1 && !st.host_online);
    state(obs, true, 3000);
    nb = run_until(s, obs, "NBIRTH/n1", nd, 3000);
    CU_ASSERT_FATAL(nb >= 0);
    CU_ASSERT(seen[nb].bdseq == 1);
    world_stop(&w);
}

SL_TEST(spb_broker, link_schema_and_ncmd)
{
    /* One metric per DDATA: the encode buffer made at open holds one
     * metric, so every DBIRTH grows it. */
    struct world w;
    if (!world_start(&w, NULL, 1))
        return;
    struct sl_sparkplug *s = w.s;
    struct mosquitto *obs = w.obs;
    struct sl_mirror *m = w.m;
    CU_ASSERT_FATAL(run_until(s, obs, "DBIRTH/n1/unit7", 0, 3000) >= 0);
    int d1 = find("DBIRTH/n1/unit1", 0);
    CU_ASSERT(d1 >= 0 && seen[d1].metrics == 15);

    /* A change: one DDATA of its device. */
    struct sl_value v = fx_val(15, SL_TYPE_UINT16, 77, SL_Q_GOOD, 2000);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 2001) == SL_OK);
    int dd = run_until(s, obs, "DDATA/n1/unit7", 0, 2000);
    CU_ASSERT(dd >= 0 && seen[dd].metrics == 1);

    /* Stale link: both devices die; back: both are born again. */
    int mark = nseen;
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT(run_until(s, obs, "DDEATH/n1/unit1", mark, 2000) >= 0);
    CU_ASSERT(run_until(s, obs, "DDEATH/n1/unit7", mark, 2000) >= 0);
    mark = nseen;
    sl_mirror_tick(m, 5001, 5001);
    CU_ASSERT(run_until(s, obs, "DBIRTH/n1/unit1", mark, 2000) >= 0);
    CU_ASSERT(run_until(s, obs, "DBIRTH/n1/unit7", mark, 2000) >= 0);
    CU_ASSERT(find("NBIRTH/n1", mark) < 0);

    /* A schema without unit 7: it dies, then the node is reborn. */
    mark = nseen;
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 4, 0, 1, FX_TAGS - 1, d, FX_TAGS - 1) == SL_OK);
    int death = run_until(s, obs, "DDEATH/n1/unit7", mark, 2000);
    int nb = run_until(s, obs, "NBIRTH/n1", mark, 2000);
    CU_ASSERT(death >= 0 && nb > death);
    CU_ASSERT(run_until(s, obs, "DBIRTH/n1/unit1", nb, 2000) > nb);
    (void)run_until(s, obs, NULL, 0, 200);
    CU_ASSERT(find("DBIRTH/n1/unit7", nb) < 0);

    /* seq: every message since the NBIRTH counts up from 0. */
    uint64_t want = 0;
    for (int i = nb; i < nseen; i++) {
        if (strncmp(seen[i].topic, "NDEATH", 6) == 0)
            continue;
        CU_ASSERT_EQUAL(seen[i].seq, want);
        want = (want + 1) % 256;
    }

    /* NCMD rebirths: honoured, but at most one a second. */
    mark = nseen;
    rebirth(obs);
    int r1 = run_until(s, obs, "NBIRTH/n1", mark, 3000);
    CU_ASSERT_FATAL(r1 >= 0);
    uint64_t t1 = sl_clock_mono_ms();
    rebirth(obs);
    int r2 = run_until(s, obs, "NBIRTH/n1", r1 + 1, 3000);
    CU_ASSERT_FATAL(r2 > r1);
    CU_ASSERT(sl_clock_mono_ms() - t1 >= SL_SPARKPLUG_REBIRTH_MIN_MS - 100);
    struct sl_sparkplug_stats st;
    sl_sparkplug_stats(s, &st);
    CU_ASSERT_EQUAL(st.rebirth_requests, 2);
    world_stop(&w);
}
