/* sl_mirror_bench: how fast the intake thread applies values to a
 * 100,000-tag mirror, alone and with reader threads spinning on
 * sl_mirror_read_regs (100 registers) and sl_mirror_get in read sections,
 * with or without followers (subscriptions) to mark. The figures in
 * docs/mirror.md §1.3 come from it.
 *
 *     sl_mirror_bench [READERS [FOLLOWERS [SECONDS]]]     (defaults 3 0 2)
 *
 * Prints the best of five runs (each SECONDS / 5) of values applied per
 * second of wall time and per CPU second of the writer thread (the second
 * is steadier on a shared machine), and reader turns per second. Not a
 * test: it asserts nothing about time. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_mirror.h"

#define TAGS 100000u
#define BATCH 64

static struct sl_mirror *mirror;
static atomic_bool stop;
static atomic_ulong turns;

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *reader(void *arg)
{
    (void)arg;
    int slot = sl_mirror_reader_register(mirror);
    unsigned seed = (unsigned)slot + 1u;
    unsigned long n = 0;
    uint16_t regs[100];
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint32_t q;
        struct sl_mirror_tag t;
        sl_mirror_read_begin(mirror, slot);
        uint16_t addr = (uint16_t)((unsigned)rand_r(&seed) % 60000u);
        if (sl_mirror_read_regs(mirror, 1, SL_REG_HOLDING, addr, 100, regs, &q) != SL_OK ||
            sl_mirror_get(mirror, (uint32_t)rand_r(&seed) % TAGS, &t) != SL_OK)
            abort();
        sl_mirror_read_end(mirror, slot);
        n++;
    }
    atomic_fetch_add(&turns, n);
    return NULL;
}

struct result {
    double wall, cpu, turns;   /* per second */
};

static struct result run(unsigned readers, double secs)
{
    pthread_t th[SL_MIRROR_READERS_MAX];
    atomic_store(&stop, false);
    atomic_store(&turns, 0);
    for (unsigned i = 0; i < readers; i++)
        if (pthread_create(&th[i], NULL, reader, NULL) != 0)
            abort();
    struct sl_value v[BATCH];
    struct sl_mirror_origin o;
    memset(&o, 1, sizeof o);
    o.epoch = 1;
    o.block_seq = 0;
    uint64_t applied = 0, k = 0;
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t1;
    do {
        for (int r = 0; r < 100; r++) {
            for (int i = 0; i < BATCH; i++, k++) {
                v[i].tag_id = (uint32_t)((k * 7919u) % TAGS);   /* scattered, like keyframes of many devices */
                v[i].type = SL_TYPE_UINT16;
                v[i].raw = k & 0xFFFFu;
                v[i].quality = SL_Q_GOOD;
                v[i].source_time_us = 1000u + k;
            }
            o.block_seq++;
            if (sl_mirror_apply_block(mirror, &o, v, BATCH, 5, 0) != SL_OK)
                abort();
            applied += BATCH;
        }
        t1 = clock_s(CLOCK_MONOTONIC);
    } while (t1 - t0 < secs);
    double c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    atomic_store(&stop, true);
    for (unsigned i = 0; i < readers; i++)
        pthread_join(th[i], NULL);
    struct result res = { (double)applied / (t1 - t0), (double)applied / (c1 - c0),
                          (double)atomic_load(&turns) / (t1 - t0) };
    return res;
}

int main(int argc, char **argv)
{
    unsigned readers = argc > 1 ? (unsigned)atoi(argv[1]) : 3u;
    unsigned followers = argc > 2 ? (unsigned)atoi(argv[2]) : 0u;
    double secs = argc > 3 ? atof(argv[3]) : 2.0;
    if (readers > SL_MIRROR_READERS_MAX || secs <= 0) {
        fprintf(stderr, "usage: sl_mirror_bench [READERS<=%d [FOLLOWERS [SECONDS]]]\n",
                SL_MIRROR_READERS_MAX);
        return 2;
    }
    struct sl_mirror_config cfg = { .max_tags = TAGS, .stale_ms = 1000, .max_string_bytes = 0 };
    if (sl_mirror_create(&mirror, &cfg) != SL_OK || sl_mirror_schema_begin(mirror, 1, TAGS) != SL_OK)
        return 1;
    for (uint32_t i = 0; i < TAGS; i++) {   /* uint16 holding registers, unit 1 then 2 */
        struct sl_schema_tag d;
        memset(&d, 0, sizeof d);
        d.tag_id = i;
        d.type = SL_TYPE_UINT16;
        d.reg = SL_REG_HOLDING;
        d.mirror_unit = (uint8_t)(1u + i / 65536u);
        d.address = (uint16_t)(i % 65536u);
        d.scale = 1.0;
        snprintf(d.name, sizeof d.name, "t%u", (unsigned)i);
        snprintf(d.path, sizeof d.path, "acme/plant1/area1/line1");
        if (sl_mirror_schema_add(mirror, &d) != SL_OK)
            return 1;
    }
    if (sl_mirror_schema_commit(mirror) != SL_OK)
        return 1;
    for (unsigned i = 0; i < followers; i++) {
        struct sl_mirror_sub *s;
        if (sl_mirror_subscribe(mirror, -1, &s) != SL_OK)
            return 1;
    }
    struct result best = { 0, 0, 0 };
    for (int i = 0; i < 5; i++) {
        struct result r = run(readers, secs / 5);
        if (r.cpu > best.cpu)
            best = r;
    }
    printf("%u readers, %u followers: %.1f M values/s (%.1f M per writer CPU second), "
           "%.2f M reader turns/s\n",
           readers, followers, best.wall / 1e6, best.cpu / 1e6, best.turns / 1e6);
    sl_mirror_destroy(mirror);
    return 0;
}
