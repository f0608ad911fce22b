/* sl_http_demo: serves the HTTP services over a demo mirror (no link, no
 * TX), for the dashboard screenshot (scripts/dashboard-shot) and for trying
 * the page by hand:
 *     build/tests/unit/rx/sl_http_demo 127.0.0.1:8080 [seconds] [tags]
 * Values move every 200 ms through the mirror hook, as in the daemon. A few
 * tags report a device error or a restored value, so every colour shows. */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_http.h"
#include "sl_mirror.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct kind {
    const char *name, *units;
    uint8_t type;
    double scale, base, swing;
};

static const struct kind kinds[] = {
    { "tank_level", "%", SL_TYPE_UINT16, 0.1, 620, 180 },
    { "temperature", "degC", SL_TYPE_FLOAT32, 1, 72.5, 3.5 },
    { "pressure", "bar", SL_TYPE_FLOAT32, 1, 4.2, 0.4 },
    { "flow_rate", "m3/h", SL_TYPE_FLOAT32, 1, 18.7, 2.2 },
    { "motor_speed", "rpm", SL_TYPE_INT16, 1, 1450, 40 },
    { "pump_running", "", SL_TYPE_BOOL, 1, 1, 0 },
    { "batch_count", "", SL_TYPE_UINT32, 1, 18204, 0 },
    { "energy_total", "kWh", SL_TYPE_FLOAT64, 1, 90412.75, 0 },
};
#define KINDS (sizeof kinds / sizeof *kinds)

static const char *const areas[] = { "mixing", "filling", "packaging", "utilities" };

struct demo {
    struct sl_mirror *m;
    uint64_t started_us;
    struct sl_http *h;
};

static uint64_t raw_of(uint8_t type, double v)
{
    if (type == SL_TYPE_FLOAT32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u;
    }
    if (type == SL_TYPE_FLOAT64) {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        return u;
    }
    if (type == SL_TYPE_INT16)
        return (uint16_t)(int16_t)lround(v);
    if (type == SL_TYPE_BOOL)
        return v > 0.5;
    return (uint64_t)llround(v < 0 ? 0 : v);
}

static struct sl_value value_at(uint32_t id, double t)
{
    const struct kind *k = &kinds[id % KINDS];
    double v = k->base + k->swing * sin(t / 7.0 + id * 0.7);
    if (k->type == SL_TYPE_UINT16)
        v /= k->scale;
    if (k->type == SL_TYPE_BOOL)
        v = (id % 5) != 0;
    if (k->type == SL_TYPE_UINT32)
        v = k->base + floor(t / 3.0) + id;
    if (k->type == SL_TYPE_FLOAT64)
        v = k->base + t * 0.01 + id;
    uint32_t q = SL_Q_GOOD;
    if (id == 13 || id == 14)
        q = SL_Q_BAD_COMM_ERROR;      /* a device TX cannot reach */
    struct sl_value out = { id, k->type, raw_of(k->type, v), q, wall_us(), 0 };
    return out;
}

static void status(void *ctx, struct sl_http_status *s)
{
    struct demo *d = ctx;
    uint64_t now = wall_us();
    s->have_beacon = true;
    s->beacon.session = 0x5eed5a1ce0000001ull;
    s->beacon.epoch = 17;
    s->beacon.k = 32;
    s->beacon.m = 8;
    s->beacon.symbol_size = 1400;
    s->beacon.rate_kbps = 100000;
    s->beacon.frames_sent = (now - d->started_us) / 100;
    s->beacon.blocks_sent = s->beacon.frames_sent / 40;
    for (unsigned i = 0; i < sizeof s->beacon.config_fp; i++) {
        s->beacon.config_fp[i] = (uint8_t)(0x3c + i * 7);
        s->beacon.schema_fp[i] = (uint8_t)(0xa1 + i * 13);
    }
    s->last_beacon_us = now - 120000;
    s->clock_offset_us = 2350;
    s->frame_loss = 0.0213;
    s->rx.frames = s->beacon.frames_sent * 98 / 100;
    s->rx.datagrams = s->rx.frames + s->rx.frames / 50;
    s->rx.beacons = (now - d->started_us) / 200000;
    s->rx.blocks = s->beacon.blocks_sent;
    s->rx.blocks_recovered = s->rx.blocks / 6;
    s->rx.fec.unrecoverable = 3;
    s->rx.drops[SL_RX_FRAME][SL_ERR_CRC] = 12;
    s->modbus_refused_writes = 4;
    s->started_us = d->started_us;
}

static void hook(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct demo *d = ctx;
    sl_http_notify(d->h, ev, pos);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s HOST:PORT [seconds] [tags]\n", argv[0]);
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 0;
    uint32_t ntags = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 64;
    if (ntags == 0 || ntags > 100000)
        ntags = 64;
    struct demo d = { .started_us = wall_us() };
    struct sl_mirror_config mc = { .max_tags = ntags };
    if (sl_mirror_create(&d.m, &mc) != SL_OK || sl_mirror_schema_begin(d.m, 0xD3110, ntags) != SL_OK)
        return 1;
    for (uint32_t i = 0; i < ntags; i++) {
        const struct kind *k = &kinds[i % KINDS];
        struct sl_schema_tag t;
        memset(&t, 0, sizeof t);
        t.tag_id = i;
        t.type = k->type;
        t.reg = k->type == SL_TYPE_BOOL ? SL_REG_COIL : SL_REG_HOLDING;
        t.word_order = SL_WORD_ABCD;
        t.mirror_unit = (uint8_t)(1 + i / 16);
        t.address = (uint16_t)((i % 16) * 4);
        t.scale = k->type == SL_TYPE_UINT16 ? k->scale : 1.0;
        snprintf(t.name, sizeof t.name, "%s", k->name);
        snprintf(t.path, sizeof t.path, "acme/lyon/%s/line%u", areas[(i / KINDS) % 4],
                 (unsigned)(1 + i / (KINDS * 4)));
        snprintf(t.units, sizeof t.units, "%s", k->units);
        if (sl_mirror_schema_add(d.m, &t) != SL_OK)
            return 1;
    }
    if (sl_mirror_schema_commit(d.m) != SL_OK)
        return 1;
    for (uint32_t i = 0; i < ntags; i++) {
        struct sl_value v = value_at(i, 0);
        if (i == 21) {                /* restored from SQLite, not refreshed */
            if (sl_mirror_restore(d.m, &v, v.source_time_us - 3000000) != SL_OK)
                return 1;
        } else if (i != 30)             /* tag 30 waits for its first value */
            sl_mirror_apply(d.m, &v, 1, wall_us());
    }
    struct sl_http_config hc = { .listen = argv[1], .max_tags = ntags };
    sl_err e = sl_http_open(&d.h, &hc, d.m, status, &d);
    if (e != SL_OK) {
        fprintf(stderr, "sl_http_demo: %s: %s\n", argv[1], sl_strerror(e));
        return 1;
    }
    sl_mirror_set_hook(d.m, hook, &d);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "sl_http_demo: serving %u tags on port %u\n", (unsigned)ntags,
            (unsigned)sl_http_port(d.h));
    uint64_t start = mono_ms(), next = start;
    while (!stop && (seconds <= 0 || (double)(mono_ms() - start) < seconds * 1000)) {
        uint64_t now = mono_ms();
        if (now >= next) {
            double t = (double)(now - start) / 1000.0;
            for (uint32_t i = (uint32_t)(now / 200) % 3; i < ntags; i += 3) {
                if (i == 21 || i == 30)
                    continue;
                struct sl_value v = value_at(i, t);
                sl_mirror_apply(d.m, &v, 1, wall_us());
            }
            sl_mirror_tick(d.m, now, now);
            next = now + 200;
        }
        int to = sl_http_timeout_ms(d.h);
        int until_next = (int)(next > now ? next - now : 0);
        struct pollfd p = { .fd = sl_http_fd(d.h), .events = POLLIN };
        poll(&p, 1, to < until_next ? to : until_next);
        sl_http_run(d.h);
    }
    sl_mirror_set_hook(d.m, NULL, NULL);
    sl_http_close(d.h);
    sl_mirror_destroy(d.m);
    return 0;
}
