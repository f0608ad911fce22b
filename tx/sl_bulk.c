/* sluice-tx --send (sl_bulk.h). */
#include "sl_bulk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_filesend.h"
#include "sl_log.h"

struct bulk {
    sl_bulk_beacon_fn *beacon;
    void *ctx;
    bool tty;
    uint64_t start_us, last_print_us, next_beacon_us, beacon_us;
};

static void bulk_progress(void *arg, const char *name, uint64_t done, uint64_t total)
{
    struct bulk *b = arg;
    uint64_t now = sl_clock_mono_us();
    if (now >= b->next_beacon_us) {   /* RX keeps seeing the session during long files */
        b->beacon(b->ctx);
        b->next_beacon_us = now + b->beacon_us;
    }
    if (!b->tty || (now - b->last_print_us < SL_BULK_PROGRESS_EVERY_US && done < total))
        return;
    b->last_print_us = now;
    double secs = (double)(now - b->start_us) / 1e6;
    double rate = secs > 0 ? (double)done / secs : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    /* A terminal progress line redrawn in place: not a log line. */
    fprintf(stderr, "\r%s: %llu/%llu bytes, %.1f Mbit/s, ETA %.0f s   ", name, (unsigned long long)done,
            (unsigned long long)total, rate * 8 / 1e6, eta);
    if (done >= total)
        fputc('\n', stderr);
}

sl_err sl_bulk_check(char *const *paths, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            sl_log(SL_LOG_ERR, "cannot send %s: %s", paths[i],
                   fd < 0 ? strerror(errno) : "not a regular file");
            if (fd >= 0)
                close(fd);
            return SL_ERR_IO;
        }
        close(fd);
    }
    return SL_OK;
}

sl_err sl_bulk_send(struct sl_sender *snd, char *const *paths, int n, uint32_t beacon_ms,
                    sl_bulk_beacon_fn *beacon, void *ctx)
{
    sl_err e = SL_OK;
    struct bulk b = {
        .beacon = beacon, .ctx = ctx, .tty = isatty(STDERR_FILENO) == 1,
        .start_us = sl_clock_mono_us(), .beacon_us = (uint64_t)beacon_ms * 1000u,
    };
    for (unsigned i = 0; i < SL_BULK_PRE_BEACONS; i++) {
        beacon(ctx);
        struct timespec ts = { 0, 20000000L };
        nanosleep(&ts, NULL);
    }
    b.next_beacon_us = sl_clock_mono_us() + b.beacon_us;
    for (int i = 0; i < n; i++) {
        b.start_us = b.last_print_us = sl_clock_mono_us();
        e = sl_filesend_file(snd, paths[i], (uint32_t)i + 1, bulk_progress, &b);
        if (e != SL_OK) {
            if (b.tty)
                fputc('\n', stderr);
            sl_log(SL_LOG_ERR, "cannot send %s: %s%s%s", paths[i], sl_strerror(e),
                   e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
            break;
        }
        sl_log(SL_LOG_INFO, "sent %s as file %d", paths[i], i + 1);
    }
    return e;
}
