/* sluice-sim: the demo's built-in PLC. A libmodbus TCP server (several
 * clients at once, one select loop) whose holding/input registers and
 * coils/discretes move every SL_SIM_TICK_MS: ramps, sines, counters and
 * toggles in every type and word order of the tag-map format, plus a few
 * static setpoints that keep what clients write, like a PLC's memory.
 * `--print-tags` prints the matching tag map (docs/examples/sim-tags.csv).
 *
 * `--rtu /dev/PATH --units 1,2,3` makes it the slaves of a Modbus RTU
 * serial line instead: one libmodbus RTU context answering several unit ids
 * (each with its own register image and phases, so units differ), silent
 * for every other unit id as a real bus is. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <modbus.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_conf.h"
#include "sl_log.h"
#include "sl_regs.h"
#include "sl_wire.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define SL_SIM_TICK_MS    100
#define SL_SIM_CLIENTS    64
#define SL_SIM_HOLDING    128
#define SL_SIM_INPUT      16
#define SL_SIM_COILS      16
#define SL_SIM_DISCRETES  16
#define SL_SIM_PATH       "demo/site1/area1/line1"
#define SL_SIM_MAX_UNITS  32
#define SL_SIM_RTU_STALE_S 0.1   /* bytes that frame nothing for this long are dropped */

enum gen {
    GEN_STATIC,    /* a: initial value; keeps client writes */
    GEN_RAMP,      /* from a, rising b per second, wrapping after c */
    GEN_SINE,      /* a + b * sin(2 pi t / c + phase) */
    GEN_COUNTER,   /* a + b per second, integer, wraps at the type's width */
    GEN_TOGGLE,    /* bool flipping every a seconds */
};

struct simtag {
    const char *name;
    uint8_t reg, type, order;
    uint16_t address;
    const char *scale, *offset, *units, *deadband;   /* CSV text, "" = default */
    enum gen gen;
    double a, b, c;
};

#define H SL_REG_HOLDING
#define I SL_REG_INPUT
#define C SL_REG_COIL
#define D SL_REG_DISCRETE
#define ABCD SL_WORD_ABCD
#define CDAB SL_WORD_CDAB
#define BADC SL_WORD_BADC
#define DCBA SL_WORD_DCBA

/* One row per tag; addresses leave gaps so the grouping rule is exercised.
 * Kept as one literal row per tag (no generating macro): the integration
 * fixture (tests/integration/sl_chain.py, sim_tags) reads the generators
 * from these rows. */
static const struct simtag tags[] = {
    { "temp_raw",        H, SL_TYPE_INT16,   ABCD,  0, "0.1", "",     "degC", "0.5", GEN_SINE,    200, 150, 60 },
    { "parts_count",     H, SL_TYPE_UINT16,  ABCD,  1, "",    "",     "",     "",    GEN_COUNTER, 0, 5, 0 },
    { "flow_i32_abcd",   H, SL_TYPE_INT32,   ABCD, 10, "",    "",     "l/h",  "",    GEN_SINE,    -50000, 100000, 30 },
    { "flow_i32_cdab",   H, SL_TYPE_INT32,   CDAB, 12, "",    "",     "l/h",  "",    GEN_SINE,    -50000, 100000, 30 },
    { "flow_i32_badc",   H, SL_TYPE_INT32,   BADC, 14, "",    "",     "l/h",  "",    GEN_SINE,    -50000, 100000, 30 },
    { "flow_i32_dcba",   H, SL_TYPE_INT32,   DCBA, 16, "",    "",     "l/h",  "",    GEN_SINE,    -50000, 100000, 30 },
    { "energy_u32_abcd", H, SL_TYPE_UINT32,  ABCD, 20, "0.001", "",   "kWh",  "",    GEN_COUNTER, 4000000000.0, 1234, 0 },
    { "energy_u32_cdab", H, SL_TYPE_UINT32,  CDAB, 22, "0.001", "",   "kWh",  "",    GEN_COUNTER, 4000000000.0, 1234, 0 },
    { "energy_u32_badc", H, SL_TYPE_UINT32,  BADC, 24, "0.001", "",   "kWh",  "",    GEN_COUNTER, 4000000000.0, 1234, 0 },
    { "energy_u32_dcba", H, SL_TYPE_UINT32,  DCBA, 26, "0.001", "",   "kWh",  "",    GEN_COUNTER, 4000000000.0, 1234, 0 },
    { "level_f32_abcd",  H, SL_TYPE_FLOAT32, ABCD, 30, "",    "",     "m",    "0.01", GEN_SINE,   5, 4, 20 },
    { "level_f32_cdab",  H, SL_TYPE_FLOAT32, CDAB, 32, "",    "",     "m",    "0.01", GEN_SINE,   5, 4, 20 },
    { "level_f32_badc",  H, SL_TYPE_FLOAT32, BADC, 34, "",    "",     "m",    "0.01", GEN_SINE,   5, 4, 20 },
    { "level_f32_dcba",  H, SL_TYPE_FLOAT32, DCBA, 36, "",    "",     "m",    "0.01", GEN_SINE,   5, 4, 20 },
    { "ticks_i64_abcd",  H, SL_TYPE_INT64,   ABCD, 40, "",    "",     "",     "",    GEN_COUNTER, -5000000000.0, 1000000, 0 },
    { "ticks_i64_cdab",  H, SL_TYPE_INT64,   CDAB, 44, "",    "",     "",     "",    GEN_COUNTER, -5000000000.0, 1000000, 0 },
    { "ticks_i64_badc",  H, SL_TYPE_INT64,   BADC, 48, "",    "",     "",     "",    GEN_COUNTER, -5000000000.0, 1000000, 0 },
    { "ticks_i64_dcba",  H, SL_TYPE_INT64,   DCBA, 52, "",    "",     "",     "",    GEN_COUNTER, -5000000000.0, 1000000, 0 },
    { "pressure_f64_abcd", H, SL_TYPE_FLOAT64, ABCD, 60, "",  "",     "bar",  "",    GEN_RAMP,    1, 0.25, 10 },
    { "pressure_f64_cdab", H, SL_TYPE_FLOAT64, CDAB, 64, "",  "",     "bar",  "",    GEN_RAMP,    1, 0.25, 10 },
    { "pressure_f64_badc", H, SL_TYPE_FLOAT64, BADC, 68, "",  "",     "bar",  "",    GEN_RAMP,    1, 0.25, 10 },
    { "pressure_f64_dcba", H, SL_TYPE_FLOAT64, DCBA, 72, "",  "",     "bar",  "",    GEN_RAMP,    1, 0.25, 10 },
    { "speed_setpoint",  H, SL_TYPE_FLOAT32, ABCD, 100, "",   "",     "rpm",  "",    GEN_STATIC,  1450.5, 0, 0 },
    { "mode",            H, SL_TYPE_UINT16,  ABCD, 102, "",   "",     "",     "",    GEN_STATIC,  1, 0, 0 },
    { "vibration_raw",   I, SL_TYPE_INT16,   ABCD,  0, "0.01", "",    "mm/s", "",    GEN_SINE,    300, 250, 7 },
    { "tank_percent",    I, SL_TYPE_UINT16,  ABCD,  1, "0.1", "",     "%",    "",    GEN_RAMP,    0, 20, 1000 },
    { "voltage",         I, SL_TYPE_FLOAT32, CDAB,  2, "",    "",     "V",    "",    GEN_SINE,    230, 5, 13 },
    { "cycles",          I, SL_TYPE_INT32,   DCBA,  4, "",    "",     "",     "",    GEN_COUNTER, 0, 3, 0 },
    { "heat_flux",       I, SL_TYPE_FLOAT64, BADC,  8, "1000", "-273.15", "W", "",   GEN_SINE,    1.5, 0.5, 17 },
    { "motor_run",       C, SL_TYPE_BOOL,    ABCD,  0, "",    "",     "",     "",    GEN_TOGGLE,  1, 0, 0 },
    { "valve_open",      C, SL_TYPE_BOOL,    ABCD,  1, "",    "",     "",     "",    GEN_TOGGLE,  3, 0, 0 },
    { "maintenance",     C, SL_TYPE_BOOL,    ABCD,  5, "",    "",     "",     "",    GEN_STATIC,  0, 0, 0 },
    { "door_closed",     D, SL_TYPE_BOOL,    ABCD,  0, "",    "",     "",     "",    GEN_TOGGLE,  0.5, 0, 0 },
    { "estop_ok",        D, SL_TYPE_BOOL,    ABCD,  1, "",    "",     "",     "",    GEN_STATIC,  1, 0, 0 },
};
#define NTAGS (sizeof tags / sizeof tags[0])

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void print_tags(void)
{
    printf("# Tag map of sluice-sim (generated by `sluice-sim --print-tags`; a test compares\n"
           "# this file with the output). One row per tag, see docs/tx.md. Registers move\n"
           "# every %d ms; speed_setpoint, mode, maintenance and estop_ok keep what\n"
           "# clients write.\n", SL_SIM_TICK_MS);
    printf("name,path,register,address,type,word_order,scale,offset,units,deadband\n");
    for (size_t i = 0; i < NTAGS; i++) {
        const struct simtag *t = &tags[i];
        printf("%s,%s,%s,%u,%s,%s,%s,%s,%s,%s\n", t->name, SL_SIM_PATH,
               sl_regs_space_name(t->reg), t->address, sl_regs_type_name(t->type),
               sl_regs_multi(t->type) ? sl_regs_order_name(t->order) : "", t->scale, t->offset,
               t->units, t->deadband);
    }
}

/* The value's bit pattern for type (integers wrap at their width). */
static uint64_t to_raw(double v, uint8_t type)
{
    switch (type) {
    case SL_TYPE_BOOL:    return v != 0.0;
    case SL_TYPE_INT16:
    case SL_TYPE_UINT16:  return (uint16_t)(int64_t)llround(fmod(v, 65536.0));
    case SL_TYPE_INT32:
    case SL_TYPE_UINT32:  return (uint32_t)(int64_t)llround(fmod(v, 4294967296.0));
    case SL_TYPE_INT64:   return (uint64_t)(int64_t)llround(v);
    case SL_TYPE_FLOAT32: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u;
    }
    case SL_TYPE_FLOAT64: {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        return u;
    }
    default:              return 0;
    }
}

static double gen_value(const struct simtag *t, double secs, double phase)
{
    switch (t->gen) {
    case GEN_RAMP:    return t->a + fmod(secs * t->b, t->c);
    case GEN_SINE:    return t->a + t->b * sin(2.0 * M_PI * secs / t->c + phase);
    case GEN_COUNTER: return t->a + floor(secs * t->b);
    case GEN_TOGGLE:  return fmod(floor(secs / t->a + phase), 2.0);
    case GEN_STATIC:
    default:          return t->a;
    }
}

static void write_tag(modbus_mapping_t *mb, const struct simtag *t, double v)
{
    uint16_t regs[SL_REGS_MAX];
    unsigned n = sl_regs_count(t->type);
    if (sl_regs_encode(regs, n, to_raw(v, t->type), t->type, t->order) != SL_OK)
        return;   /* cannot happen for the table above */
    switch (t->reg) {
    case SL_REG_HOLDING:  memcpy(mb->tab_registers + t->address, regs, n * sizeof *regs); break;
    case SL_REG_INPUT:    memcpy(mb->tab_input_registers + t->address, regs, n * sizeof *regs); break;
    case SL_REG_COIL:     mb->tab_bits[t->address] = (uint8_t)regs[0]; break;
    case SL_REG_DISCRETE: mb->tab_input_bits[t->address] = (uint8_t)regs[0]; break;
    default:              break;
    }
}

static void update(modbus_mapping_t *mb, double secs, const double *phase, bool first)
{
    for (size_t i = 0; i < NTAGS; i++)
        if (first || tags[i].gen != GEN_STATIC)
            write_tag(mb, &tags[i], gen_value(&tags[i], secs, phase[i]));
}

/* Phases of the moving values for one seed: one phase per family (same
 * generator, other word order), so the four orders of a value always decode
 * to the same number. */
static void make_phases(double *phase, unsigned long seed)
{
    srand((unsigned)seed);
    for (size_t i = 0; i < NTAGS; i++) {
        phase[i] = 2.0 * M_PI * (double)rand() / ((double)RAND_MAX + 1.0);
        for (size_t j = 0; j < i; j++)
            if (tags[j].gen == tags[i].gen && tags[j].a == tags[i].a && tags[j].b == tags[i].b &&
                tags[j].c == tags[i].c && tags[j].type == tags[i].type)
                phase[i] = phase[j];
    }
}

static double mono_s(void)
{
    return (double)sl_clock_mono_ns() / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sluice-sim -l HOST:PORT [--seed S]\n"
            "       sluice-sim --rtu /dev/PATH [--units 1,2,...] [--baud B] [--parity N|E|O]\n"
            "                  [--data-bits 7|8] [--stop-bits 1|2] [--seed S]\n"
            "       sluice-sim --print-tags | --help | --version\n"
            "\n"
            "A Modbus TCP PLC simulator for demos and tests: holding and input registers,\n"
            "coils and discrete inputs whose values move every %d ms (ramps, sines,\n"
            "counters, toggles) in every type and word order of the tag-map format.\n"
            "Serves up to %d clients at once, any unit id; accepts writes like a PLC.\n"
            "\n"
            "  -l, --listen HOST:PORT  address to listen on (e.g. 127.0.0.1:5020, [::1]:5020, *:5020)\n"
            "  -r, --rtu PATH          be the slaves of a Modbus RTU serial line on PATH instead\n"
            "                          (a serial port, or one end of a socat pty pair)\n"
            "  -u, --units LIST        RTU unit ids answered, comma-separated (1..247, default 1);\n"
            "                          every unit has its own values (seed S + unit); requests for\n"
            "                          other units get no answer, as on a real bus\n"
            "      --baud B            RTU baud rate (default 19200)\n"
            "      --parity N|E|O      RTU parity (default E)\n"
            "      --data-bits 7|8     (default 8)\n"
            "      --stop-bits 1|2     (default 1)\n"
            "  -s, --seed S            phase seed for the moving values (default 1)\n"
            "  -p, --print-tags        print the matching tag map CSV and exit\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "SIGTERM or SIGINT stops it (exit 0).\n",
            SL_SIM_TICK_MS, SL_SIM_CLIENTS);
}

static int serve(const char *listen, unsigned long seed)
{
    /* The daemons' listener grammar (sl_conf.h): HOST:PORT, [IPV6]:PORT,
     * [IPV4]:PORT, *:PORT, port 0 for a free one. */
    struct sl_hostport hp;
    char why[64], port[8];
    if (sl_conf_hostport_parse(&hp, listen, 0, SL_HOSTPORT_LISTENER, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "bad listen address '%s' (HOST:PORT, [IPv6]:PORT or *:PORT): %s", listen, why);
        return 2;
    }
    snprintf(port, sizeof port, "%u", (unsigned)hp.port);

    /* libmodbus binds every address when the node is NULL. */
    modbus_t *ctx = modbus_new_tcp_pi(hp.any ? NULL : hp.host, port);
    modbus_mapping_t *mb = modbus_mapping_new(SL_SIM_COILS, SL_SIM_DISCRETES, SL_SIM_HOLDING,
                                              SL_SIM_INPUT);
    if (!ctx || !mb) {
        sl_log(SL_LOG_ERR, "out of memory");
        return 1;
    }
    int lfd = modbus_tcp_pi_listen(ctx, SL_SIM_CLIENTS);
    if (lfd < 0) {
        sl_log(SL_LOG_ERR, "cannot listen on %s: %s", listen, modbus_strerror(errno));
        modbus_mapping_free(mb);
        modbus_free(ctx);
        return 1;
    }
    /* A client that stalls mid-request must not stall the others for long. */
    modbus_set_indication_timeout(ctx, 1, 0);

    double phase[NTAGS];
    make_phases(phase, seed);
    double t0 = mono_s(), next = t0;
    update(mb, 0.0, phase, true);
    sl_log(SL_LOG_INFO, "listening on %s (%zu tags, seed %lu)", listen, NTAGS, seed);

    int clients[SL_SIM_CLIENTS];
    size_t nclients = 0;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!stop) {
        double now = mono_s();
        if (now >= next) {
            update(mb, now - t0, phase, false);
            next += SL_SIM_TICK_MS / 1000.0;
            if (next < now)
                next = now + SL_SIM_TICK_MS / 1000.0;
        }
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(lfd, &rd);
        int maxfd = lfd;
        for (size_t i = 0; i < nclients; i++) {
            FD_SET(clients[i], &rd);
            if (clients[i] > maxfd)
                maxfd = clients[i];
        }
        double wait = next - mono_s();
        if (wait < 0)
            wait = 0;
        struct timeval tv = { (time_t)wait, (suseconds_t)((wait - floor(wait)) * 1e6) };
        int n = select(maxfd + 1, &rd, NULL, NULL, &tv);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sl_log(SL_LOG_ERR, "select: %s", strerror(errno));
            break;
        }
        if (n == 0)
            continue;
        if (FD_ISSET(lfd, &rd)) {
            int fd = modbus_tcp_pi_accept(ctx, &lfd);
            if (fd >= 0 && (nclients == SL_SIM_CLIENTS || fd >= FD_SETSIZE))
                close(fd);          /* full: the client sees the connection close */
            else if (fd >= 0)
                clients[nclients++] = fd;
        }
        for (size_t i = 0; i < nclients;) {
            if (!FD_ISSET(clients[i], &rd)) {
                i++;
                continue;
            }
            modbus_set_socket(ctx, clients[i]);
            int rc = modbus_receive(ctx, query);
            if (rc > 0) {
                modbus_reply(ctx, query, rc, mb);
                i++;
            } else if (rc == 0) {
                i++;                /* not for us; libmodbus ignored it */
            } else {
                close(clients[i]);  /* closed or garbled: drop this client only */
                clients[i] = clients[--nclients];
            }
        }
    }
    for (size_t i = 0; i < nclients; i++)
        close(clients[i]);
    close(lfd);
    modbus_set_socket(ctx, -1);
    modbus_mapping_free(mb);
    modbus_free(ctx);
    sl_log(SL_LOG_INFO, "stopped");
    return 0;
}

/* ---- RTU: several units on one serial line ------------------------------- */

struct rtu_opts {
    const char *path;
    uint8_t units[SL_SIM_MAX_UNITS];
    size_t nunits;
    long baud;
    char parity;
    int data_bits, stop_bits;
};

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* Length of the RTU request frame in q (header, PDU, CRC) from its function
 * code; 0 for a code we do not serve or not enough bytes to tell. have is
 * how many bytes q holds. */
static size_t rtu_request_len(const uint8_t *q, size_t have)
{
    if (have < 2)
        return 0;
    switch (q[1]) {
    case 1: case 2: case 3: case 4: case 5: case 6:
        return 8;
    case 15: case 16:
        return have >= 7 ? 9u + q[6] : 0;
    default:
        return 0;
    }
}

/* Length of a slave's answer frame at q (0: cannot tell yet or not one). */
static size_t rtu_answer_len(const uint8_t *q, size_t have)
{
    if (have < 2)
        return 0;
    if (q[1] & 0x80)
        return 5;
    switch (q[1]) {
    case 1: case 2: case 3: case 4:
        return have >= 3 ? 5u + q[2] : 0;
    case 5: case 6: case 15: case 16:
        return 8;
    default:
        return 0;
    }
}

static bool rtu_crc_ok(const uint8_t *q, size_t len, size_t have)
{
    if (len < 4 || len > have)
        return false;
    uint16_t crc = crc16(q, len - 2);
    return q[len - 2] == (uint8_t)(crc & 0xFF) && q[len - 1] == (uint8_t)(crc >> 8);
}

/* The line carries the master's requests and the other units' answers. We
 * frame it ourselves, by CRC (as a slave that cannot trust the timing of a
 * descheduled process must): libmodbus's own RTU receive assumes that after
 * a request for another unit the next frame is that unit's answer and skips
 * it, which swallows the master's next request when that unit is silent or
 * we were late to read. Each request for one of our units is answered
 * through libmodbus (modbus_reply) with the context's slave id set to that
 * unit; everything else (other units' requests and answers, broadcasts) is
 * consumed without an answer. Returns bytes consumed from q[0..have), 0 =
 * need more bytes. *u is our unit index for a request to answer, else
 * SIZE_MAX; *bad is set when a byte was dropped to resynchronise. */
static size_t rtu_frame(const struct rtu_opts *o, const uint8_t *q, size_t have, size_t *u,
                        bool *bad)
{
    *u = SIZE_MAX;
    *bad = false;
    if (have < 4)
        return 0;
    size_t rl = rtu_request_len(q, have), al = rtu_answer_len(q, have);
    if (rtu_crc_ok(q, rl, have)) {
        for (size_t i = 0; i < o->nunits; i++)
            if (o->units[i] == q[0])
                *u = i;
        return rl;
    }
    if (rtu_crc_ok(q, al, have))
        return al;
    /* Wait while a candidate frame may still be arriving, else resync. */
    if ((rl == 0 && al == 0 && have < 9) || (rl > have && rl <= MODBUS_RTU_MAX_ADU_LENGTH) ||
        (al > have && al <= MODBUS_RTU_MAX_ADU_LENGTH))
        return 0;
    *bad = true;
    return 1;
}

static int serve_rtu(const struct rtu_opts *o, unsigned long seed)
{
    modbus_t *ctx = modbus_new_rtu(o->path, (int)o->baud, o->parity, o->data_bits, o->stop_bits);
    if (!ctx) {
        sl_log(SL_LOG_ERR, "bad RTU settings for %s: %s", o->path, modbus_strerror(errno));
        return 2;
    }
    modbus_mapping_t *mb[SL_SIM_MAX_UNITS];
    double phase[SL_SIM_MAX_UNITS][NTAGS];
    for (size_t u = 0; u < o->nunits; u++) {
        mb[u] = modbus_mapping_new(SL_SIM_COILS, SL_SIM_DISCRETES, SL_SIM_HOLDING, SL_SIM_INPUT);
        if (!mb[u]) {
            sl_log(SL_LOG_ERR, "out of memory");
            return 1;
        }
        make_phases(phase[u], seed + o->units[u]);
        update(mb[u], 0.0, phase[u], true);
    }
    if (modbus_set_slave(ctx, o->units[0]) != 0 || modbus_connect(ctx) != 0) {
        sl_log(SL_LOG_ERR, "cannot open %s: %s", o->path, modbus_strerror(errno));
        for (size_t u = 0; u < o->nunits; u++)
            modbus_mapping_free(mb[u]);
        modbus_free(ctx);
        return 1;
    }
    int fd = modbus_get_socket(ctx);
    sl_log(SL_LOG_INFO, "RTU on %s, %ld %d%c%d, %zu unit(s), %zu tags each, seed %lu",
            o->path, o->baud, o->data_bits, o->parity, o->stop_bits, o->nunits, NTAGS, seed);
    double t0 = mono_s(), next = t0, last_rx = t0;
    uint8_t q[2 * MODBUS_RTU_MAX_ADU_LENGTH];
    size_t have = 0;
    unsigned long answered = 0, ignored = 0, bad = 0;
    unsigned failures = 0;
    while (!stop) {
        double now = mono_s();
        if (now >= next) {
            for (size_t u = 0; u < o->nunits; u++)
                update(mb[u], now - t0, phase[u], false);
            next += SL_SIM_TICK_MS / 1000.0;
            if (next < now)
                next = now + SL_SIM_TICK_MS / 1000.0;
        }
        if (have && now - last_rx > SL_SIM_RTU_STALE_S) {
            bad++;   /* a fragment nothing completed: noise or a cut frame */
            have = 0;
        }
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        double wait = next - mono_s();
        if (have && wait > SL_SIM_RTU_STALE_S)
            wait = SL_SIM_RTU_STALE_S;
        if (wait < 0)
            wait = 0;
        struct timeval tv = { (time_t)wait, (suseconds_t)((wait - floor(wait)) * 1e6) };
        int n = select(fd + 1, &rd, NULL, NULL, &tv);
        if (n < 0 && errno != EINTR) {
            sl_log(SL_LOG_ERR, "select: %s", strerror(errno));
            break;
        }
        if (n <= 0)
            continue;
        ssize_t r = read(fd, q + have, sizeof q - have);
        if (r <= 0) {
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            /* A closed peer (the pty's other side): retry a while, then give up. */
            if (++failures > 50) {
                sl_log(SL_LOG_ERR, "%s: %s", o->path, r < 0 ? strerror(errno) : "closed");
                break;
            }
            struct timespec ts = { 0, 100000000L };
            nanosleep(&ts, NULL);
            continue;
        }
        failures = 0;
        have += (size_t)r;
        last_rx = mono_s();
        for (;;) {
            size_t u;
            bool dropped;
            size_t len = rtu_frame(o, q, have, &u, &dropped);
            if (len == 0)
                break;
            if (dropped)
                bad++;
            else if (u == SIZE_MAX || q[0] == 0)
                ignored++;   /* another unit's request or answer, or a broadcast */
            else if (modbus_set_slave(ctx, q[0]) == 0 && modbus_reply(ctx, q, (int)len, mb[u]) > 0)
                answered++;
            else
                bad++;
            memmove(q, q + len, have - len);
            have -= len;
        }
        if (have == sizeof q)   /* cannot happen with the resync above; never overflow */
            have = 0;
    }
    sl_log(SL_LOG_INFO, "stopped: %lu answered, %lu for other units, %lu bad", answered,
            ignored, bad);
    modbus_close(ctx);
    modbus_free(ctx);
    for (size_t u = 0; u < o->nunits; u++)
        modbus_mapping_free(mb[u]);
    return 0;
}

static bool parse_units(struct rtu_opts *o, const char *text)
{
    const char *p = text;
    o->nunits = 0;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno || end == p || v < 1 || v > 247 || o->nunits == SL_SIM_MAX_UNITS)
            return false;
        for (size_t i = 0; i < o->nunits; i++)
            if (o->units[i] == v)
                return false;
        o->units[o->nunits++] = (uint8_t)v;
        if (*end == ',')
            end++;
        else if (*end)
            return false;
        p = end;
    }
    return o->nunits > 0;
}

static bool parse_long(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    sl_log_init("sluice-sim");
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "seed", required_argument, NULL, 's' },
        { "print-tags", no_argument, NULL, 'p' },
        { "rtu", required_argument, NULL, 'r' },
        { "units", required_argument, NULL, 'u' },
        { "baud", required_argument, NULL, 'B' },
        { "parity", required_argument, NULL, 'P' },
        { "data-bits", required_argument, NULL, 'D' },
        { "stop-bits", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = NULL;
    unsigned long seed = 1;
    struct rtu_opts rtu = { .units = { 1 }, .nunits = 1, .baud = 19200, .parity = 'E',
                            .data_bits = 8, .stop_bits = 1 };
    bool units_given = false;
    long n;
    int c;
    while ((c = getopt_long(argc, argv, "l:s:phVr:u:", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rtu.path = optarg;
            break;
        case 'u':
            if (!parse_units(&rtu, optarg)) {
                sl_log(SL_LOG_ERR, "bad units '%s' (distinct ids 1..247, comma-separated, "
                        "at most %d)", optarg, SL_SIM_MAX_UNITS);
                return 2;
            }
            units_given = true;
            break;
        case 'B':
            if (!parse_long(optarg, 300, 4000000, &rtu.baud)) {
                sl_log(SL_LOG_ERR, "bad baud '%s'", optarg);
                return 2;
            }
            break;
        case 'P':
            if (strlen(optarg) != 1 || !strchr("NEO", optarg[0])) {
                sl_log(SL_LOG_ERR, "bad parity '%s' (N, E or O)", optarg);
                return 2;
            }
            rtu.parity = optarg[0];
            break;
        case 'D':
        case 'S':
            if (!parse_long(optarg, c == 'D' ? 7 : 1, c == 'D' ? 8 : 2, &n)) {
                sl_log(SL_LOG_ERR, "bad %s '%s'", c == 'D' ? "data bits" : "stop bits", optarg);
                return 2;
            }
            *(c == 'D' ? &rtu.data_bits : &rtu.stop_bits) = (int)n;
            break;
        case 'l':
            listen = optarg;
            break;
        case 's': {
            char *end;
            errno = 0;
            seed = strtoul(optarg, &end, 10);
            if (errno || *end || !*optarg) {
                sl_log(SL_LOG_ERR, "bad seed '%s'", optarg);
                return 2;
            }
            break;
        }
        case 'p':
            print_tags();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sluice-sim %s\n", SL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!listen == !rtu.path || optind != argc || (units_given && !rtu.path)) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: select returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return rtu.path ? serve_rtu(&rtu, seed) : serve(listen, seed);
}
