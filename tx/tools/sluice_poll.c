/* sluice-poll: a debug tool. Loads a sluice-tx configuration, polls its
 * devices with the same pollers sluice-tx uses and prints every tag's raw
 * value, engineering value, quality and source time. No link, no keys. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_bus.h"
#include "sl_clock.h"
#include "sl_log.h"
#include "sl_poller.h"
#include "sl_regs.h"
#include "sl_txconf.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sluice-poll -c FILE [--once | --count N] [--device NAME]\n"
            "\n"
            "Polls the [device] sections of a sluice-tx configuration and prints, per poll:\n"
            "  poll DEVICE ok=READS failed=READS\n"
            "  tag DEVICE NAME raw=0xHEX value=ENG q=0xQUALITY t=SOURCE_TIME_US\n"
            "and on a device state change:\n"
            "  event DEVICE up|down [WHY]\n"
            "\n"
            "  -c, --config FILE   sluice-tx configuration (key file and user are not checked)\n"
            "  -1, --once          poll every device once and exit\n"
            "  -n, --count N       poll every device N times and exit (default: until SIGTERM)\n"
            "  -d, --device NAME   poll only this device\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "Exit status: 0 done, 1 runtime failure, 2 usage or configuration errors.\n");
}

static void print_poll(struct sl_poller *p, const struct sl_poller_report *rep)
{
    const struct sl_txconf_device *d = sl_poller_device(p);
    if (rep->event)
        printf("event %s %s%s%s\n", d->name, rep->event == SL_EVENT_DEVICE_UP ? "up" : "down",
               rep->why[0] ? " " : "", rep->why);
    printf("poll %s ok=%u failed=%u\n", d->name, rep->reads_ok, rep->reads_failed);
    size_t n;
    const struct sl_tagval *v = sl_poller_values(p, &n);
    for (size_t i = 0; i < n; i++) {
        const struct sl_tag *t = &d->tagmap.tags[i];
        printf("tag %s %s raw=0x%llx value=%.17g q=0x%08X t=%llu\n", d->name, t->name,
               (unsigned long long)v[i].raw, sl_regs_eng(v[i].raw, t->type, t->scale, t->offset),
               v[i].quality, (unsigned long long)v[i].time_us);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    sl_log_init("sluice-poll");
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "once", no_argument, NULL, '1' },
        { "count", required_argument, NULL, 'n' },  { "device", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf = NULL, *only = NULL;
    unsigned long count = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:1n:d:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case '1': count = 1; break;
        case 'n': {
            char *end;
            errno = 0;
            count = strtoul(optarg, &end, 10);
            if (errno || *end || !*optarg || count == 0) {
                sl_log(SL_LOG_ERR, "bad count '%s'", optarg);
                return 2;
            }
            break;
        }
        case 'd': only = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sluice-poll %s\n", SL_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!conf || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct sl_diag diag;
    struct sl_txconf cfg;
    sl_diag_init(&diag);
    sl_err e = sl_txconf_load(&cfg, conf, SL_TXCONF_SKIP_HOST_CHECKS, &diag);
    if (e != SL_OK) {
        if (sl_diag_total(&diag))
            sl_log_diag(&diag);
        else
            sl_log(SL_LOG_ERR, "%s", sl_strerror(e));
        sl_diag_free(&diag);
        sl_txconf_free(&cfg);
        return e == SL_ERR_NOMEM ? 1 : 2;
    }
    sl_diag_free(&diag);

    /* The devices of one serial port share it, as in sluice-tx (sl_bus.h). */
    struct sl_bus **buses = calloc(cfg.ndevices ? cfg.ndevices : 1, sizeof *buses);
    const struct sl_txconf_device **grp = calloc(cfg.ndevices ? cfg.ndevices : 1, sizeof *grp);
    unsigned long *done = calloc(cfg.ndevices ? cfg.ndevices : 1, sizeof *done);
    size_t nb = 0, np = 0;
    int rc = 0;
    if (!buses || !grp || !done) {
        sl_log(SL_LOG_ERR, "out of memory");
        rc = 1;
    }
    for (size_t i = 0; rc == 0 && i < cfg.ndevices; i++) {
        const struct sl_txconf_device *d = &cfg.devices[i];
        if (d->protocol == SL_TXCONF_GENERATOR || (only && strcmp(only, d->name) != 0) ||
            (!only && d->bus != i))
            continue;
        size_t n = 0;
        for (size_t j = i; j < cfg.ndevices; j++)
            if (j == i || (!only && cfg.devices[j].bus == i && cfg.devices[j].protocol != SL_TXCONF_GENERATOR))
                grp[n++] = &cfg.devices[j];
        e = sl_bus_create(&buses[nb], grp, n, NULL);
        if (e != SL_OK) {
            sl_log(SL_LOG_ERR, "device %s: %s", d->name, sl_strerror(e));
            rc = 1;
        } else {
            nb++;
            np += n;
        }
    }
    if (rc == 0 && np == 0) {
        sl_log(SL_LOG_ERR, "no device named '%s'", only ? only : "");
        rc = 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* done[] is indexed by device: the k-th poller of bus b is the device
     * sl_poller_device() names; its index in cfg.devices is its offset. */
    while (rc == 0 && !stop) {
        uint64_t now = sl_clock_mono_ms(), next = UINT64_MAX;
        size_t finished = 0;
        for (size_t b = 0; b < nb; b++) {
            for (size_t k = 0; k < sl_bus_count(buses[b]); k++) {
                struct sl_poller *p = sl_bus_poller(buses[b], k);
                size_t di = (size_t)(sl_poller_device(p) - cfg.devices);
                if (count && done[di] >= count) {
                    finished++;
                    continue;
                }
                uint64_t due = sl_poller_due_ms(p);
                if (due <= now) {
                    struct sl_poller_report rep;
                    /* Failures show up as qualities and events; the status is for the daemon. */
                    sl_err pe = sl_bus_poll(buses[b], k, &rep);
                    (void)pe;
                    if (rep.polled) {
                        print_poll(p, &rep);
                        done[di]++;
                    }
                    due = sl_poller_due_ms(p);
                    now = sl_clock_mono_ms();
                }
                if (due < next)
                    next = due;
            }
        }
        if (finished == np)
            break;
        now = sl_clock_mono_ms();
        if (next > now) {
            uint64_t ms = next - now;
            struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
            nanosleep(&ts, NULL);   /* a signal cuts it short */
        }
    }
    for (size_t b = 0; b < nb; b++)
        sl_bus_destroy(buses[b]);
    free(buses);
    free(grp);
    free(done);
    sl_txconf_free(&cfg);
    return rc;
}
