/* sl_sparkplug's pure parts: ids, the quality mapping, the NCMD decoder
 * (rebirth by name and by alias, everything else ignored, malformed, too
 * long, too deep, too big for the arena), the STATE reader and the
 * [sparkplug] configuration section. Payloads are
 * built with the same generated protobuf-c code a host would use. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rx_fixture.h"
#include "sl_clock.h"
#include "sl_mqtt.h"
#include "sl_rxconf.h"
#include "sl_sparkplug.h"
#include "sl_test.h"
#include "sparkplug_b.pb-c.h"

static uint8_t arena[SL_SPARKPLUG_ARENA_BYTES];

/* An NCMD payload with one boolean metric (name NULL: alias only). */
static size_t ncmd(uint8_t *out, const char *name, bool has_alias, uint64_t alias, bool value)
{
    Sparkplug__Payload__Metric mt = SPARKPLUG__PAYLOAD__METRIC__INIT;
    mt.name = (char *)name;
    mt.has_alias = has_alias;
    mt.alias = alias;
    mt.has_datatype = true;
    mt.datatype = 11;
    mt.value_case = SPARKPLUG__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
    mt.boolean_value = value;
    Sparkplug__Payload__Metric *list[1] = { &mt };
    Sparkplug__Payload p = SPARKPLUG__PAYLOAD__INIT;
    p.has_timestamp = true;
    p.timestamp = 1700000000000ull;
    p.n_metrics = 1;
    p.metrics = list;
    return protobuf_c_message_pack(&p.base, out);
}

SL_TEST(sparkplug, ids)
{
    CU_ASSERT_TRUE(sl_sparkplug_id_ok("plant1"));
    CU_ASSERT_TRUE(sl_sparkplug_id_ok("Edge-Node_1.a"));
    CU_ASSERT_FALSE(sl_sparkplug_id_ok(""));
    CU_ASSERT_FALSE(sl_sparkplug_id_ok(NULL));
    CU_ASSERT_FALSE(sl_sparkplug_id_ok("a/b"));
    CU_ASSERT_FALSE(sl_sparkplug_id_ok("a+"));
    CU_ASSERT_FALSE(sl_sparkplug_id_ok("#"));
    CU_ASSERT_FALSE(sl_sparkplug_id_ok("a b"));
    char long_id[SL_SPARKPLUG_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CU_ASSERT_FALSE(sl_sparkplug_id_ok(long_id));
    long_id[SL_SPARKPLUG_ID_MAX] = '\0';
    CU_ASSERT_TRUE(sl_sparkplug_id_ok(long_id));
}

SL_TEST(sparkplug, quality_mapping)
{
    /* Only 0 (BAD), 192 (GOOD) and 500 (STALE) are Sparkplug qualities. */
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x00000000u), 192);
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x00A80000u), 192);   /* any Good sub-code */
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x408F0000u), 500);   /* link stale, value held */
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x40900000u), 500);   /* loaded at start */
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x40000000u), 0);     /* other Uncertain */
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x80050000u), 0);
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x80310000u), 0);
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0x80320000u), 0);
    CU_ASSERT_EQUAL(sl_sparkplug_quality(0xC0000000u), 0);
    for (uint32_t hi = 0; hi < 4; hi++) {
        int32_t q = sl_sparkplug_quality(hi << 30 | 0x12340000u);
        CU_ASSERT(q == 0 || q == 192 || q == 500);
    }
}

SL_TEST(sparkplug, ncmd_rebirth_by_name_and_alias)
{
    uint8_t b[256];
    struct sl_sparkplug_ncmd c;
    size_t n = ncmd(b, SL_SPARKPLUG_METRIC_REBIRTH, false, 0, true);
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_OK);
    CU_ASSERT_TRUE(c.rebirth);
    CU_ASSERT_EQUAL(c.ignored, 0);
    n = ncmd(b, NULL, true, SL_SPARKPLUG_REBIRTH_ALIAS, true);
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_OK);
    CU_ASSERT_TRUE(c.rebirth);
    /* The static arena too. */
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, n, NULL), SL_OK);
    CU_ASSERT_TRUE(c.rebirth);
}

SL_TEST(sparkplug, ncmd_anything_else_ignored)
{
    uint8_t b[256];
    struct sl_sparkplug_ncmd c;
    size_t n = ncmd(b, SL_SPARKPLUG_METRIC_REBIRTH, false, 0, false);   /* Rebirth = false */
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_OK);
    CU_ASSERT_FALSE(c.rebirth);
    CU_ASSERT_EQUAL(c.ignored, 1);
    n = ncmd(b, "Node Control/Reboot", false, 0, true);
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_OK);
    CU_ASSERT_FALSE(c.rebirth);
    CU_ASSERT_EQUAL(c.ignored, 1);
    n = ncmd(b, NULL, true, 17, true);   /* a tag's alias: a write, never done */
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_OK);
    CU_ASSERT_FALSE(c.rebirth);
    CU_ASSERT_EQUAL(c.ignored, 1);
    /* An empty payload asks nothing: counted. */
    CU_ASSERT_EQUAL_FATAL(sl_sparkplug_ncmd_decode(&c, b, 0, arena), SL_OK);
    CU_ASSERT_FALSE(c.rebirth);
    CU_ASSERT_EQUAL(c.ignored, 1);
}

SL_TEST(sparkplug, ncmd_malformed_refused)
{
    uint8_t b[256];
    struct sl_sparkplug_ncmd c;
    size_t n = ncmd(b, SL_SPARKPLUG_METRIC_REBIRTH, false, 0, true);
    /* Every truncation of a good payload: refused or decoded, never more. */
    for (size_t k = 0; k < n; k++) {
        sl_err e = sl_sparkplug_ncmd_decode(&c, b, k, arena);
        CU_ASSERT_TRUE(e == SL_OK || e == SL_ERR_HEADER);
        if (e == SL_OK)
            CU_ASSERT_FALSE(c.rebirth && k < n / 2);
    }
    static const uint8_t junk[] = { 0x12, 0x7F, 0x01 };            /* length past the end */
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, junk, sizeof junk, arena), SL_ERR_HEADER);
    static const uint8_t group[] = { 0x13, 0x14 };                 /* wire type 3 (group) */
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, group, sizeof group, arena), SL_ERR_HEADER);
    static const uint8_t varint[] = { 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, varint, sizeof varint, arena), SL_ERR_HEADER);
    /* Too long: refused before anything is read. */
    uint8_t *big = calloc(1, SL_SPARKPLUG_NCMD_MAX + 1u);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, big, SL_SPARKPLUG_NCMD_MAX + 1u, arena), SL_ERR_LENGTH);
    free(big);
}

/* Metric -> template_value (18) -> metrics (2) -> ... nested `levels`
 * times inside one Payload metric: valid Sparkplug, but deep. Built from
 * the inside out. */
static size_t deep(uint8_t *out, size_t cap, unsigned levels)
{
    uint8_t *a = malloc(cap), *tmp = malloc(cap);
    size_t n = 0;
    for (unsigned i = 0; i < levels; i++) {
        /* Metric{template_value: Template{metrics: [<n bytes>]}} */
        size_t t = 0;
        tmp[t++] = 0x12;   /* Template.metrics */
        tmp[t++] = (uint8_t)(0x80 | (n & 0x7F));
        tmp[t++] = (uint8_t)(n >> 7);
        memcpy(tmp + t, a, n);
        t += n;
        size_t m = 0;
        a[m++] = 0x92;     /* Metric.template_value: field 18, wire type 2 */
        a[m++] = 0x01;
        a[m++] = (uint8_t)(0x80 | (t & 0x7F));
        a[m++] = (uint8_t)(t >> 7);
        memmove(a + m, tmp, t);
        n = m + t;
    }
    out[0] = 0x12;         /* Payload.metrics */
    out[1] = (uint8_t)(0x80 | (n & 0x7F));
    out[2] = (uint8_t)(n >> 7);
    memcpy(out + 3, a, n);
    free(a);
    free(tmp);
    return n + 3;
}

SL_TEST(sparkplug, ncmd_nesting_bounded_before_protobuf_c)
{
    static uint8_t b[8192];
    struct sl_sparkplug_ncmd c;
    size_t n = deep(b, sizeof b, 3);   /* 1 + 2*3 levels */
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_OK);
    CU_ASSERT_EQUAL(c.ignored, 1);
    n = deep(b, sizeof b, 40);         /* 81 levels: refused */
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, b, n, arena), SL_ERR_RANGE);
}

SL_TEST(sparkplug, ncmd_arena_bounds_memory)
{
    /* 16,384 metrics of one empty name each (0x12 0x02 0x0A 0x00): 4 bytes
     * on the wire, ~150 in protobuf-c's structs: more than the arena. */
    size_t count = SL_SPARKPLUG_NCMD_MAX / 4u;
    uint8_t *b = malloc(count * 4u);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < count; i++)
        memcpy(b + 4 * i, "\x12\x02\x0A\x00", 4);
    struct sl_sparkplug_ncmd c;
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, b, count * 4u, arena), SL_ERR_NOMEM);
    /* A thousand of them fit, and each is ignored. */
    CU_ASSERT_EQUAL(sl_sparkplug_ncmd_decode(&c, b, 4000, arena), SL_OK);
    CU_ASSERT_EQUAL(c.ignored, 1000);
    free(b);
}

SL_TEST(sparkplug, state_payloads)
{
    bool on;
    uint64_t ts;
    const char *a = "{\"online\":true,\"timestamp\":1700000000123}";
    CU_ASSERT_EQUAL(sl_sparkplug_state_parse((const uint8_t *)a, strlen(a), &on, &ts), SL_OK);
    CU_ASSERT_TRUE(on);
    CU_ASSERT_EQUAL(ts, 1700000000123ull);
    const char *b = " { \"timestamp\" : 5 , \"online\" : false, \"extra\": \"x\", \"n\": null } ";
    CU_ASSERT_EQUAL(sl_sparkplug_state_parse((const uint8_t *)b, strlen(b), &on, &ts), SL_OK);
    CU_ASSERT_FALSE(on);
    CU_ASSERT_EQUAL(ts, 5);
    static const char *const bad[] = {
        "", "{}", "{\"online\":1}", "{\"online\":\"true\"}", "{\"online\":true", "{\"online\":true}x",
        "ONLINE", "{\"online\":true,\"timestamp\":1.5}", "{\"online\":true,\"timestamp\":99999999999999999999}",
        "{\"online\":true,\"o\":{}}", "{\"online\" true}", "{\"online\":tru}", "{\"online\":true,}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(sl_sparkplug_state_parse((const uint8_t *)bad[i], strlen(bad[i]), &on, &ts),
                        SL_ERR_HEADER);
}

/* [sparkplug] in the RX configuration (syntax only: no host checks). */
static struct sl_rxconf conf;

static sl_err rxconf(const char *extra, struct sl_diag *d)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[link]\ntransport = udp\nlisten = 127.0.0.1:7400\n[keys]\ntrusted = k.pub\nstate_dir = /tmp\n%s",
             extra);
    sl_diag_free(d);
    return sl_rxconf_parse(&conf, text, strlen(text), "rx.conf", "/tmp", SL_RXCONF_SKIP_HOST_CHECKS, d);
}

static bool diag_has(const struct sl_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->count; i++)
        if (strstr(d->msg[i], needle))
            return true;
    return false;
}

SL_TEST(sparkplug, config_section)
{
    struct sl_diag d = { 0 };
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = 127.0.0.1:1883\n[sparkplug]\ngroup_id = plant1\n"
                           "edge_node_id = rx-1\nprimary_host_id = scada\nddata_max_metrics = 7\n", &d), SL_OK);
    CU_ASSERT_TRUE(conf.sparkplug.enabled);
    CU_ASSERT_STRING_EQUAL(conf.sparkplug.group_id, "plant1");
    CU_ASSERT_STRING_EQUAL(conf.sparkplug.edge_node_id, "rx-1");
    CU_ASSERT_STRING_EQUAL(conf.sparkplug.primary_host_id, "scada");
    CU_ASSERT_EQUAL(conf.sparkplug.ddata_max_metrics, 7);
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = 127.0.0.1:1883\n", &d), SL_OK);
    CU_ASSERT_FALSE(conf.sparkplug.enabled);
    CU_ASSERT_EQUAL(conf.sparkplug.ddata_max_metrics, SL_SPARKPLUG_DEFAULT_DDATA_MAX);
    /* Without [mqtt], a bad id, a missing id, a wildcard, a bad number. */
    CU_ASSERT_EQUAL(rxconf("[sparkplug]\ngroup_id = g\nedge_node_id = n\n", &d), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(diag_has(&d, "[sparkplug] needs [mqtt]"));
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = h\n[sparkplug]\ngroup_id = a/b\nedge_node_id = n\n", &d),
                    SL_ERR_CONFIG);
    CU_ASSERT_TRUE(diag_has(&d, "bad group_id 'a/b'"));
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = h\n[sparkplug]\ngroup_id = g\n", &d), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(diag_has(&d, "edge_node_id"));
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = h\n[sparkplug]\ngroup_id = g\nedge_node_id = n#\n", &d),
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = h\n[sparkplug]\ngroup_id = g\nedge_node_id = n\n"
                           "ddata_max_metrics = 0\n", &d), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(rxconf("[mqtt]\nbroker = h\n[sparkplug]\ngroup_id = g\nedge_node_id = n\nfoo = 1\n", &d),
                    SL_ERR_CONFIG);
    sl_diag_free(&d);
}

/* ---- a flapping broker: CONNACK, then the connection is closed ------------- */

struct flapper {
    int lfd;
    atomic_bool stop;           /* atomics: the test thread reads what flap() counts */
    bool sink;                  /* keep the connection, read and count everything */
    atomic_uint accepted;
    _Atomic uint64_t bytes;     /* read after the CONNECT (sink) */
};

/* Accepts, waits for the CONNECT, answers CONNACK (accepted) and closes:
 * a broker that takes every client and drops it at once. As a sink it
 * keeps the connection and swallows whatever comes until stopped. */
static void *flap(void *arg)
{
    struct flapper *f = arg;
    while (!f->stop) {
        struct pollfd p = { .fd = f->lfd, .events = POLLIN };
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            continue;
        f->accepted++;
        struct pollfd q = { .fd = c, .events = POLLIN };
        uint8_t buf[512];
        if (poll(&q, 1, 500) > 0 && read(c, buf, sizeof buf) > 0) {
            static const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };
            (void)!write(c, connack, sizeof connack);
        }
        while (f->sink && !f->stop) {
            static uint8_t big[1 << 16];
            if (poll(&q, 1, 20) <= 0)
                continue;
            ssize_t n = read(c, big, sizeof big);
            if (n <= 0)
                break;
            f->bytes += (uint64_t)n;
        }
        close(c);
    }
    return NULL;
}

static void drive(struct pollfd *p, int fd, bool want_write)
{
    p->fd = fd;
    p->events = (short)(POLLIN | (want_write ? POLLOUT : 0));
    p->revents = 0;
}

/* A listening loopback socket for a flapper, its port in broker. */
static void flapper_listen(struct flapper *f, char *broker, size_t cap)
{
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(f->lfd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    CU_ASSERT_FATAL(bind(f->lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(f->lfd, 16) == 0 &&
                    getsockname(f->lfd, (struct sockaddr *)&a, &alen) == 0);
    snprintf(broker, cap, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
}

SL_TEST(sparkplug, flapping_broker_backs_off)
{
    /* Both clients (JSON and Sparkplug) against a broker that accepts and
     * drops: the back-off must keep growing (50, 100, 200, 400, 800 ms:
     * 5 connections in 1.5 s), not start again at its minimum after each
     * CONNACK (one connection every ~50 ms: ~25). */
    struct flapper f = { .lfd = -1 };
    char broker[32];
    flapper_listen(&f, broker, sizeof broker);
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, flap, &f) == 0);

    struct sl_mirror *m = fx_mirror(3);
    fx_fill(m, 1000);
    sl_mirror_tick(m, 100, 0);
    char why[200];
    struct sl_mqttconn *conn = NULL;
    struct sl_mqttconn_config cc = { .broker = broker, .client_id = "flap-spb", .keepalive_s = 10 };
    CU_ASSERT_FATAL(sl_mqttconn_open(&conn, &cc, why, sizeof why) == SL_OK);
    struct sl_sparkplug_config sc = { .group_id = "g1", .edge_node_id = "n1", .max_tags = 64,
                                      .backoff_min_ms = 50, .backoff_max_ms = 30000 };
    struct sl_sparkplug *s = NULL;
    CU_ASSERT_FATAL(sl_sparkplug_open(&s, &sc, conn, m) == SL_OK);
    struct sl_mqtt_config qc = { .conn = { .broker = broker, .client_id = "flap-json", .keepalive_s = 10 },
                                 .max_tags = 64, .backoff_min_ms = 50, .backoff_max_ms = 30000 };
    struct sl_mqtt *q = NULL;
    CU_ASSERT_FATAL(sl_mqtt_open(&q, &qc, m, why, sizeof why) == SL_OK);

    uint64_t end = sl_clock_mono_ms() + 1500;
    while (sl_clock_mono_ms() < end) {
        struct pollfd p[2];
        drive(&p[0], sl_sparkplug_fd(s), sl_sparkplug_want_write(s));
        drive(&p[1], sl_mqtt_fd(q), sl_mqtt_want_write(q));
        if (p[0].fd < 0 && p[1].fd < 0)
            usleep(2000);
        else
            (void)poll(p, 2, 5);
        uint64_t now = sl_clock_mono_ms();
        CU_ASSERT(sl_sparkplug_run(s, p[0].fd < 0 ? 0 : p[0].revents, now) == SL_OK);
        CU_ASSERT(sl_mqtt_run(q, p[1].fd < 0 ? 0 : p[1].revents, now) == SL_OK);
    }
    struct sl_sparkplug_stats st;
    struct sl_mqtt_stats qt;
    sl_sparkplug_stats(s, &st);
    sl_mqtt_stats(q, &qt);
    printf("\n  flapping broker, 1.5 s: Sparkplug %llu connects (bdSeq %u), JSON %llu, %u accepted\n",
           (unsigned long long)st.connects, (unsigned)st.bdseq, (unsigned long long)qt.connects, (unsigned)f.accepted);
    CU_ASSERT(st.connects >= 2 && st.connects <= 6);
    CU_ASSERT(qt.connects >= 2 && qt.connects <= 6);
    f.stop = true;
    pthread_join(th, NULL);
    close(f.lfd);
    sl_mqtt_close(q);
    sl_sparkplug_close(s);
    sl_mqttconn_close(conn);
    sl_mirror_destroy(m);
}

/* ---- births at scale ------------------------------------------------------ */

#define BIG_TAGS 100000u
#define BIG_UNITS 4u

SL_TEST(sparkplug, large_schema_one_dbirth_per_turn)
{
    /* 100,000 tags on 4 devices (DBIRTHs of ~2.5 MB each) to a broker that
     * swallows everything: every run turn hands over one DBIRTH at most,
     * so a turn costs one device's tags, never the whole schema (before:
     * all four in one turn, each a scan of every tag); all four devices
     * are born in the end; the size estimate is near the bytes sent. */
    struct flapper f = { .lfd = -1, .sink = true };
    char broker[32];
    flapper_listen(&f, broker, sizeof broker);
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, flap, &f) == 0);

    struct sl_mirror_config mc = { .max_tags = BIG_TAGS, .stale_ms = 1000, .dirty_list = true };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &mc) == SL_OK);
    struct sl_schema_tag *d = calloc(BIG_TAGS, sizeof *d);
    struct sl_value *v = calloc(BIG_TAGS, sizeof *v);
    CU_ASSERT_FATAL(d && v);
    for (uint32_t i = 0; i < BIG_TAGS; i++) {
        d[i] = fx_tag(i, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_ABCD, (uint8_t)(1 + i % BIG_UNITS),
                      (uint16_t)(i / BIG_UNITS));
        v[i] = fx_val(i, SL_TYPE_UINT16, i & 0xFFFFu, SL_Q_GOOD, 1000);
    }
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 9, 0, 1, BIG_TAGS, d, BIG_TAGS) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_apply(m, v, BIG_TAGS, 1005) == SL_OK);
    sl_mirror_tick(m, 100, 0);
    CU_ASSERT_FATAL(sl_mirror_link_up(m));
    free(d);
    free(v);

    char why[200];
    struct sl_mqttconn *conn = NULL;
    struct sl_mqttconn_config cc = { .broker = broker, .client_id = "big-spb", .keepalive_s = 60 };
    CU_ASSERT_FATAL(sl_mqttconn_open(&conn, &cc, why, sizeof why) == SL_OK);
    struct sl_sparkplug_config sc = { .group_id = "g1", .edge_node_id = "n1", .max_tags = BIG_TAGS };
    struct sl_sparkplug *s = NULL;
    CU_ASSERT_FATAL(sl_sparkplug_open(&s, &sc, conn, m) == SL_OK);

    struct sl_sparkplug_stats st = { 0 };
    uint64_t end = sl_clock_mono_ms() + 10000, longest = 0;
    unsigned turns = 0, most = 0;
    while (sl_clock_mono_ms() < end && st.dbirths < BIG_UNITS) {
        struct pollfd p;
        drive(&p, sl_sparkplug_fd(s), sl_sparkplug_want_write(s));
        int t = sl_sparkplug_timeout_ms(s, sl_clock_mono_ms());
        if (p.fd < 0)
            usleep(2000);
        else
            (void)poll(&p, 1, t < 5 ? t : 5);
        uint64_t before_dbirths = st.dbirths, t0 = sl_clock_mono_ms();
        CU_ASSERT(sl_sparkplug_run(s, p.fd < 0 ? 0 : p.revents, t0) == SL_OK);
        uint64_t took = sl_clock_mono_ms() - t0;
        sl_sparkplug_stats(s, &st);
        unsigned n = (unsigned)(st.dbirths - before_dbirths);
        most = n > most ? n : most;
        longest = took > longest ? took : longest;
        turns++;
    }
    /* Let the sink read the last birth. */
    for (int i = 0; i < 200 && sl_sparkplug_want_write(s); i++) {
        struct pollfd p;
        drive(&p, sl_sparkplug_fd(s), true);
        (void)poll(&p, 1, 5);
        CU_ASSERT(sl_sparkplug_run(s, p.revents, sl_clock_mono_ms()) == SL_OK);
    }
    usleep(50000);
    sl_sparkplug_stats(s, &st);
    printf("\n  %u tags on %u devices: %llu DBIRTHs in %u turns, at most %u a turn, longest turn %llu ms; "
           "largest DBIRTH estimated %llu bytes, all %llu; %llu bytes sent\n",
           BIG_TAGS, BIG_UNITS, (unsigned long long)st.dbirths, turns, most, (unsigned long long)longest,
           (unsigned long long)st.dbirth_bytes_max, (unsigned long long)st.birth_bytes,
           (unsigned long long)atomic_load(&f.bytes));
    CU_ASSERT_EQUAL(st.dbirths, BIG_UNITS);
    CU_ASSERT_EQUAL(st.devices_born, BIG_UNITS);
    CU_ASSERT_EQUAL(most, 1);
    CU_ASSERT(st.dbirth_bytes_max > 1000000u);   /* above a megabyte: the daemon warns */
    CU_ASSERT(st.birth_bytes > f.bytes / 2 && st.birth_bytes < f.bytes * 2);
    CU_ASSERT(st.rebirth_min_ms == sl_sparkplug_rebirth_min_ms(st.birth_bytes));
    CU_ASSERT_EQUAL(sl_sparkplug_rebirth_min_ms(0), SL_SPARKPLUG_REBIRTH_MIN_MS);
    CU_ASSERT_EQUAL(sl_sparkplug_rebirth_min_ms(120000000u), 12000u);   /* 120 MB: 12 s */
    f.stop = true;
    pthread_join(th, NULL);
    close(f.lfd);
    sl_sparkplug_close(s);
    sl_mqttconn_close(conn);
    sl_mirror_destroy(m);
}
