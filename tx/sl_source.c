/* Device sources (sl_source.h): the Modbus pollers and the generator.
 *
 * Hand-off of the Modbus source. A poll's values cross to the main thread
 * through three arrays per device (a triple buffer): the poller writes one
 * (back), main reads one (front), and the third (mid) is the latest poll
 * not yet taken. Publishing is one atomic exchange of the mid index (with a
 * "fresh" bit) on each side, so neither thread ever waits for the other:
 *   - the poller's line thread, after a poll, swaps its back array in as
 *     mid and continues in the old mid (sl_poller_move_values copies the
 *     values it keeps, such as a Bad tag's last good raw value);
 *   - the main thread, in collect, swaps its front array out for a fresh
 *     mid and then feeds it into the snapshot (deadbands and change
 *     detection there), holding no lock.
 * A poll main has not taken yet is replaced by the next (the values are
 * absolute; only the newest matters). Each device also has a mutex for its
 * counters and pending up/down transitions: O(1) copies under it, never a
 * pass over tags, never held across a Modbus request. Each line has a mutex
 * guarding its stop flag and statistics; its thread sleeps on a condition
 * variable under it (released while waiting) and never holds it while
 * polling. */
#define _GNU_SOURCE
#include "sl_source.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_generator.h"
#include "sl_log.h"

#define DEV_EVENTS 8u   /* transitions a poller can report before main takes them */

/* ---- modbus: one thread per poll line -------------------------------------- */

struct devevent {
    uint8_t kind;                        /* SL_EVENT_DEVICE_UP / _DOWN */
    uint64_t time_us;
    char why[SL_POLLER_WHY_BYTES];
};

#define MID_FRESH 4u   /* in dev.mid: a poll main has not taken */

struct dev {
    const struct sl_txconf_device *cfg;
    struct sl_poller *poller;            /* owned by its line's sl_bus */
    /* The triple buffer: vals[0] is the poller's own array, vals[1..2]
     * ours; cfg->tagmap.count values each. */
    struct sl_tagval *vals[3];
    _Atomic uint32_t mid;                /* index of the latest poll | MID_FRESH */
    uint32_t back;                       /* the line's thread only: the array polls write */
    uint32_t front;                      /* main only: the array collect reads */
    pthread_mutex_t mu;
    /* Guarded by mu: */
    struct devevent ev[DEV_EVENTS];
    unsigned ev_n;
    uint64_t poll_errors;                /* failed reads since start */
    uint64_t polls_failed;               /* polls that returned an error */
    struct sl_poller_counters cnt;       /* the poller's counters after its last poll */
    enum sl_poller_state state;          /* after its last poll (systemd STATUS=) */
    /* The line's thread only: */
    sl_err last_err;                     /* of the last poll, logged when it changes */
};

struct line {
    struct sl_bus *bus;
    struct dev **devs;                   /* devs[i] is polled by sl_bus_poller(bus, i) */
    size_t n;
    pthread_t thread;
    bool running;
    int wake_fd;                         /* main's eventfd */
    pthread_mutex_t mu;
    pthread_cond_t cv;                   /* CLOCK_MONOTONIC: wakes the sleeper at stop */
    /* Guarded by mu: */
    bool stop;
    bool done;                           /* thread has left its loop */
    struct sl_bus_stats st;              /* copy after each poll, for main */
    /* Main thread only: */
    uint64_t missed_logged;              /* st.missed at the last over-subscription line */
    uint64_t log_next_us;                /* no over-subscription line before this */
    uint64_t start_us;
};

struct modbus {
    struct sl_source base;
    struct dev *dev;
    size_t ndev;
    struct line *lines;
    size_t nlines;
    int wake_fd;
};

/* Logs a poll's sl_err when it differs from the last one: the qualities
 * and up/down events already tell the device's state, this says why some
 * reads of a device that answers keep failing (exceptions, CRC errors). */
static void poll_result(struct dev *d, sl_err e, const struct sl_poller_report *rep)
{
    if (e == SL_ERR_AGAIN || e == d->last_err)
        return;
    if (e == SL_OK && d->last_err != SL_ERR_IO)   /* back from down: the "device ... up" event says it */
        sl_log_id(SL_LOG_NOTICE, "SL-TX-POLL-OK", "device %s: every read answered again", d->cfg->name);
    else if (e != SL_ERR_IO)   /* down: the "device ... down" event says it */
        sl_log_id(SL_LOG_WARNING, "SL-TX-POLL-ERR",
                  "device %s: poll: %s (%u read(s) failed%s%s)", d->cfg->name,
                  sl_strerror(e), rep->reads_failed, rep->why[0] ? ": " : "", rep->why);
    d->last_err = e;
}

/* Hands one poll's results to main: values (one atomic exchange, then the
 * poller continues in the array it got back), counters, a transition. */
static void hand_over(struct dev *d, sl_err e, const struct sl_poller_report *rep)
{
    uint32_t old = atomic_exchange_explicit(&d->mid, d->back | MID_FRESH, memory_order_acq_rel);
    d->back = old & ~MID_FRESH;   /* neither main's front nor the one just published */
    sl_poller_move_values(d->poller, d->vals[d->back]);
    pthread_mutex_lock(&d->mu);
    d->poll_errors += rep->reads_failed;
    d->polls_failed += e != SL_OK;
    sl_poller_counters(d->poller, &d->cnt);
    d->state = sl_poller_state(d->poller);
    if (rep->event) {
        if (d->ev_n == DEV_EVENTS) {
            memmove(d->ev, d->ev + 1, (DEV_EVENTS - 1) * sizeof d->ev[0]);
            d->ev_n--;
        }
        struct devevent *ev = &d->ev[d->ev_n++];
        ev->kind = rep->event;
        ev->time_us = rep->time_us;
        memcpy(ev->why, rep->why, sizeof ev->why);
    }
    pthread_mutex_unlock(&d->mu);
}

static void *poll_thread(void *arg)
{
    struct line *L = arg;
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        uint64_t due, now = sl_clock_mono_ms();
        size_t i = sl_bus_next(L->bus, &due);
        if (due > now) {
            struct timespec ts = { (time_t)(due / 1000u), (long)(due % 1000u) * 1000000L };
            pthread_cond_timedwait(&L->cv, &L->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&L->mu);
        /* The only place that can block on a PLC; no lock held. The unit
         * due first goes first, so a silent one never starves the others. */
        struct sl_poller_report rep;
        sl_err e = sl_bus_poll(L->bus, i, &rep);
        if (rep.polled) {
            poll_result(L->devs[i], e, &rep);
            hand_over(L->devs[i], e, &rep);
            uint64_t one = 1;
            ssize_t w = write(L->wake_fd, &one, sizeof one);
            (void)w;   /* a full counter already wakes main */
        }
        pthread_mutex_lock(&L->mu);
        sl_bus_stats(L->bus, &L->st);
    }
    L->done = true;
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* Takes what a poller handed over: values into the snapshot (no lock
 * held: the array is main's until it swaps it back), transitions logged and
 * queued as EVENTs. */
static void take_device(struct dev *d, struct sl_snapshot *snap, uint64_t now)
{
    struct devevent ev[DEV_EVENTS];
    unsigned nev;
    uint64_t bad = 0;
    pthread_mutex_lock(&d->mu);
    nev = d->ev_n;
    memcpy(ev, d->ev, nev * sizeof ev[0]);
    d->ev_n = 0;
    pthread_mutex_unlock(&d->mu);
    /* Only main clears MID_FRESH, so a fresh mid seen here is still fresh
     * (or fresher) at the exchange. */
    if (atomic_load_explicit(&d->mid, memory_order_acquire) & MID_FRESH) {
        uint32_t old = atomic_exchange_explicit(&d->mid, d->front, memory_order_acq_rel);
        d->front = old & ~MID_FRESH;
        const struct sl_tagval *v = d->vals[d->front];
        for (size_t i = 0; i < d->cfg->tagmap.count; i++)
            if (sl_snapshot_update(snap, d->cfg->first_tag_id + (uint32_t)i, v[i].raw, v[i].quality,
                                   v[i].time_us, now) != SL_OK)
                bad++;
    }
    if (bad)
        sl_log(SL_LOG_ERR, "device %s: %llu values refused by the snapshot (poller bug?)",
               d->cfg->name, (unsigned long long)bad);
    for (unsigned i = 0; i < nev; i++) {
        bool up = ev[i].kind == SL_EVENT_DEVICE_UP;
        char text[SL_EVENT_TEXT_MAX + 1];
        size_t len = up ? sl_snapshot_event_text(text, sizeof text, "%s up", d->cfg->name)
                        : sl_snapshot_event_text(text, sizeof text, "%s down: %s", d->cfg->name,
                                                 ev[i].why[0] ? ev[i].why : "no answer");
        sl_log_id(up ? SL_LOG_NOTICE : SL_LOG_WARNING, up ? "SL-TX-DEVICE-UP" : "SL-TX-DEVICE-DOWN", "device %.*s",
                  (int)len, text);
        if (sl_snapshot_event(snap, ev[i].kind, d->cfg->mirror_unit, ev[i].time_us, text, len) != SL_OK)
            sl_log(SL_LOG_WARNING, "device %s: event not queued", d->cfg->name);
    }
}

static uint64_t modbus_collect(struct sl_source *s, struct sl_snapshot *snap, uint64_t now)
{
    struct modbus *M = (struct modbus *)s;
    uint64_t n;
    ssize_t r = read(M->wake_fd, &n, sizeof n);   /* non-blocking: resets the counter */
    (void)r;
    for (size_t i = 0; i < M->ndev; i++)
        take_device(&M->dev[i], snap, now);
    return UINT64_MAX;   /* woken by wake_fd */
}

static uint64_t modbus_poll_errors(const struct sl_source *s)
{
    struct modbus *M = (struct modbus *)s;
    uint64_t errs = 0;
    for (size_t i = 0; i < M->ndev; i++) {
        pthread_mutex_lock(&M->dev[i].mu);
        errs += M->dev[i].poll_errors;
        pthread_mutex_unlock(&M->dev[i].mu);
    }
    return errs;
}

static size_t modbus_nlines(const struct sl_source *s)
{
    return ((const struct modbus *)s)->nlines;
}

static bool modbus_line(const struct sl_source *s, size_t i, struct sl_source_line *out)
{
    struct modbus *M = (struct modbus *)s;
    if (i >= M->nlines)
        return false;
    struct line *L = &M->lines[i];
    pthread_mutex_lock(&L->mu);
    out->st = L->st;
    pthread_mutex_unlock(&L->mu);
    out->name = sl_bus_name(L->bus);
    out->units = L->n;
    out->start_us = L->start_us;
    return true;
}

static bool modbus_unit(const struct sl_source *s, size_t i, size_t k, struct sl_source_unit *out)
{
    struct modbus *M = (struct modbus *)s;
    if (i >= M->nlines || k >= M->lines[i].n)
        return false;
    struct dev *d = M->lines[i].devs[k];
    out->cfg = d->cfg;
    pthread_mutex_lock(&d->mu);
    out->cnt = d->cnt;
    out->polls_failed = d->polls_failed;
    out->state = d->state;
    pthread_mutex_unlock(&d->mu);
    return true;
}

/* Over-subscribed lines: a unit's poll came a whole period late. One log
 * line per line and minute at most, with what was missed since the last. */
static void modbus_check(struct sl_source *s, uint64_t now)
{
    struct modbus *M = (struct modbus *)s;
    struct sl_source_line li;
    for (size_t i = 0; modbus_line(s, i, &li); i++) {
        struct line *L = &M->lines[i];
        if (li.st.missed == L->missed_logged || now < L->log_next_us)
            continue;
        uint64_t el = now > L->start_us ? now - L->start_us : 1;
        sl_log(SL_LOG_WARNING, "line %s: over-subscribed: %llu poll period(s) missed since the last "
               "report (%llu in all), busy %.0f %%; lengthen poll_ms, shorten timeout_ms, raise the "
               "baud rate or split the units over more ports", li.name,
               (unsigned long long)(li.st.missed - L->missed_logged), (unsigned long long)li.st.missed,
               100.0 * (double)li.st.busy_ms * 1000.0 / (double)el);
        L->missed_logged = li.st.missed;
        L->log_next_us = now + SL_SOURCE_LINE_LOG_EVERY_US;
    }
}

static void modbus_log_counters(struct sl_source *s, const struct sl_snapshot *snap, uint64_t now,
                                bool final)
{
    (void)snap;
    if (final)   /* the same lines as the last status: said just before */
        return;
    struct sl_source_line li;
    struct sl_source_unit u;
    for (size_t i = 0; modbus_line(s, i, &li); i++) {
        double secs = (double)(now > li.start_us ? now - li.start_us : 1) / 1e6;
        sl_log(SL_LOG_INFO, "line %s: units=%zu polls=%llu transactions=%llu (%.1f/s) busy=%.0f%% "
               "missed=%llu", li.name, li.units, (unsigned long long)li.st.polls,
               (unsigned long long)li.st.reads, (double)li.st.reads / secs,
               100.0 * (double)li.st.busy_ms / 1000.0 / secs, (unsigned long long)li.st.missed);
        for (size_t k = 0; modbus_unit(s, i, k, &u); k++) {
            const struct sl_poller_counters *c = &u.cnt;
            sl_log(SL_LOG_INFO, "device %s: unit=%u polls=%llu reads_ok=%llu reads_failed=%llu "
                   "timeouts=%llu crc_errors=%llu exceptions=%llu malformed=%llu port_errors=%llu "
                   "missed=%llu polls_failed=%llu", u.cfg->name, u.cfg->unit,
                   (unsigned long long)c->polls, (unsigned long long)c->reads_ok,
                   (unsigned long long)c->reads_failed, (unsigned long long)c->timeouts,
                   (unsigned long long)c->crc_errors, (unsigned long long)c->exceptions,
                   (unsigned long long)c->malformed, (unsigned long long)c->port_errors,
                   (unsigned long long)c->missed, (unsigned long long)u.polls_failed);
        }
    }
}

/* Starts one thread per line. */
static sl_err modbus_start(struct sl_source *s, uint64_t now)
{
    struct modbus *M = (struct modbus *)s;
    for (size_t i = 0; i < M->nlines; i++) {
        struct line *L = &M->lines[i];
        L->start_us = now;
        if (L->n > 1)
            sl_log(SL_LOG_INFO, "serial line %s: %zu units polled in turn by one thread",
                   sl_bus_name(L->bus), L->n);
        int rc = pthread_create(&L->thread, NULL, poll_thread, L);
        if (rc != 0) {
            sl_log(SL_LOG_ERR, "line %s: cannot start its thread: %s", sl_bus_name(L->bus),
                   strerror(rc));
            return SL_ERR_IO;
        }
        L->running = true;
    }
    return SL_OK;
}

static bool modbus_stop(struct sl_source *s)
{
    struct modbus *M = (struct modbus *)s;
    for (size_t i = 0; i < M->nlines; i++) {
        struct line *L = &M->lines[i];
        pthread_mutex_lock(&L->mu);
        L->stop = true;
        pthread_cond_signal(&L->cv);
        pthread_mutex_unlock(&L->mu);
    }
    uint64_t deadline = sl_clock_mono_ms() + SL_SOURCE_STOP_JOIN_MS;
    bool all = true;
    for (size_t i = 0; i < M->nlines; i++) {
        struct line *L = &M->lines[i];
        if (!L->running)
            continue;
        bool done;
        for (;;) {
            pthread_mutex_lock(&L->mu);
            done = L->done;
            pthread_mutex_unlock(&L->mu);
            if (done || sl_clock_mono_ms() >= deadline)
                break;
            struct timespec ts = { 0, 5000000L };
            nanosleep(&ts, NULL);
        }
        if (done) {
            pthread_join(L->thread, NULL);
            L->running = false;
        } else {
            sl_log(SL_LOG_WARNING, "line %s: poller still inside a Modbus request at exit",
                   sl_bus_name(L->bus));
            all = false;
        }
    }
    return all;
}

static void modbus_destroy(struct sl_source *s)
{
    struct modbus *M = (struct modbus *)s;
    for (size_t i = 0; i < M->nlines; i++) {
        struct line *L = &M->lines[i];
        sl_bus_destroy(L->bus);
        free(L->devs);
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->cv);
    }
    for (size_t i = 0; i < M->ndev; i++) {
        free(M->dev[i].vals[1]);   /* vals[0] is the poller's */
        free(M->dev[i].vals[2]);
        pthread_mutex_destroy(&M->dev[i].mu);
    }
    free(M->lines);
    free(M->dev);
    free(M);
}

static const struct sl_source_ops modbus_ops = {
    .kind = "modbus", .nlines = modbus_nlines, .start = modbus_start, .collect = modbus_collect,
    .poll_errors = modbus_poll_errors, .check = modbus_check, .log_counters = modbus_log_counters,
    .line = modbus_line, .unit = modbus_unit, .stop = modbus_stop, .destroy = modbus_destroy,
};

/* Builds one line from the devices whose bus is device `first`. */
static sl_err add_line(struct modbus *M, const struct sl_txconf *cfg, size_t first)
{
    size_t nd = cfg->ndevices;
    struct line *L = &M->lines[M->nlines];
    const struct sl_txconf_device **cfgs = calloc(nd, sizeof *cfgs);
    L->devs = calloc(nd, sizeof *L->devs);
    if (!cfgs || !L->devs) {
        free(cfgs);
        free(L->devs);
        L->devs = NULL;
        return SL_ERR_NOMEM;
    }
    for (size_t j = 0; j < M->ndev; j++)
        if (M->dev[j].cfg->bus == first) {
            cfgs[L->n] = M->dev[j].cfg;
            L->devs[L->n++] = &M->dev[j];
        }
    sl_err e = sl_bus_create(&L->bus, cfgs, L->n, NULL);
    free(cfgs);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "device %s: cannot create its poller: %s", cfg->devices[first].name,
               sl_strerror(e));
        free(L->devs);
        L->devs = NULL;
        L->n = 0;
        return e;
    }
    for (size_t k = 0; k < L->n; k++) {
        struct dev *d = L->devs[k];
        size_t n;
        d->poller = sl_bus_poller(L->bus, k);
        d->vals[0] = (struct sl_tagval *)(uintptr_t)sl_poller_values(d->poller, &n);
        d->back = 0;   /* the poller writes its own array first */
        atomic_init(&d->mid, 1u);
        d->front = 2;
    }
    L->wake_fd = M->wake_fd;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, &ca);
    pthread_condattr_destroy(&ca);
    M->nlines++;
    return SL_OK;
}

/* Groups the Modbus devices into poll lines (sl_txconf_device.bus). */
sl_err sl_source_modbus_open(struct sl_source **out, const struct sl_txconf *cfg, int wake_fd)
{
    *out = NULL;
    size_t nd = 0;
    for (size_t i = 0; i < cfg->ndevices; i++)
        nd += cfg->devices[i].protocol != SL_TXCONF_GENERATOR;
    if (nd == 0)
        return SL_OK;
    struct modbus *M = calloc(1, sizeof *M);
    if (!M)
        return SL_ERR_NOMEM;
    M->base.ops = &modbus_ops;
    M->wake_fd = wake_fd;
    M->dev = calloc(nd, sizeof *M->dev);
    M->lines = calloc(nd, sizeof *M->lines);
    sl_err e = M->dev && M->lines ? SL_OK : SL_ERR_NOMEM;
    for (size_t i = 0; e == SL_OK && i < cfg->ndevices; i++) {
        if (cfg->devices[i].protocol == SL_TXCONF_GENERATOR)
            continue;
        struct dev *d = &M->dev[M->ndev];
        d->cfg = &cfg->devices[i];
        pthread_mutex_init(&d->mu, NULL);
        M->ndev++;
        size_t n = d->cfg->tagmap.count ? d->cfg->tagmap.count : 1;
        d->vals[1] = calloc(n, sizeof *d->vals[1]);
        d->vals[2] = calloc(n, sizeof *d->vals[2]);
        if (!d->vals[1] || !d->vals[2])
            e = SL_ERR_NOMEM;
    }
    for (size_t i = 0; e == SL_OK && i < cfg->ndevices; i++)
        if (cfg->devices[i].protocol != SL_TXCONF_GENERATOR && cfg->devices[i].bus == i)
            e = add_line(M, cfg, i);   /* else a unit of a line started at an earlier device */
    if (e != SL_OK) {
        if (e == SL_ERR_NOMEM)
            sl_log(SL_LOG_ERR, "out of memory");
        if (M->dev && M->lines)
            modbus_destroy(&M->base);
        else {
            free(M->dev);
            free(M->lines);
            free(M);
        }
        return e;
    }
    *out = &M->base;
    return SL_OK;
}

/* ---- generator: synthetic updates on the main thread --------------------- */

struct gen {
    struct sl_source base;
    const struct sl_txconf_device **cfg;
    struct sl_generator *g;
    size_t n;
};

static sl_err gen_start(struct sl_source *s, uint64_t now)
{
    struct gen *G = (struct gen *)s;
    for (size_t i = 0; i < G->n; i++)
        sl_generator_init(&G->g[i], G->cfg[i]->first_tag_id, (uint32_t)G->cfg[i]->tagmap.count,
                          G->cfg[i]->rate, now);
    return SL_OK;
}

/* Feeds the updates every generator device has due into the snapshot, as
 * a poller's results would be (Good, value = source time = now). At most
 * SL_SOURCE_GEN_PER_TURN per device per turn, so beacons and blocks keep
 * their turn; the rest stay due. */
static uint64_t gen_collect(struct sl_source *s, struct sl_snapshot *snap, uint64_t now)
{
    struct gen *G = (struct gen *)s;
    uint64_t wake = UINT64_MAX;
    for (size_t i = 0; i < G->n; i++) {
        struct sl_generator *g = &G->g[i];
        uint64_t n = sl_generator_due(g, now);
        if (n > SL_SOURCE_GEN_PER_TURN)
            n = SL_SOURCE_GEN_PER_TURN;
        uint64_t bad = sl_generator_apply(g, snap, n, sl_clock_wall_us(), now);
        if (bad)
            sl_log(SL_LOG_ERR, "device %s: %llu generated values refused by the snapshot",
                   G->cfg[i]->name, (unsigned long long)bad);
        uint64_t t = n == SL_SOURCE_GEN_PER_TURN ? now : sl_generator_wake_us(g, now);
        if (t < wake)
            wake = t;
    }
    return wake;
}

static uint64_t gen_poll_errors(const struct sl_source *s)
{
    (void)s;
    return 0;
}

static void gen_log_counters(struct sl_source *s, const struct sl_snapshot *snap, uint64_t now,
                             bool final)
{
    struct gen *G = (struct gen *)s;
    if (!final)
        return;
    struct sl_snapshot_stats st;
    sl_snapshot_stats(snap, &st);
    for (size_t i = 0; i < G->n; i++)
        sl_log(SL_LOG_INFO, "generator %s: %llu updates produced, %llu skipped (behind schedule); "
               "snapshot: %llu changes, %llu delta values sent, %llu coalesced, %llu keyframes; "
               "generator ran %.3f s",
               G->cfg[i]->name, (unsigned long long)G->g[i].produced,
               (unsigned long long)G->g[i].skipped, (unsigned long long)st.changes,
               (unsigned long long)st.deltas_sent, (unsigned long long)st.coalesced,
               (unsigned long long)st.keyframes,
               /* Its own schedule's span: the rate it kept is produced / this,
                * without the daemon's start-up before the first update. */
               now > G->g[i].start_us ? (double)(now - G->g[i].start_us) / 1e6 : 0.0);
}

static size_t gen_nlines(const struct sl_source *s)
{
    (void)s;
    return 0;
}

static bool gen_line(const struct sl_source *s, size_t i, struct sl_source_line *out)
{
    (void)s, (void)i, (void)out;
    return false;
}

static bool gen_unit(const struct sl_source *s, size_t i, size_t k, struct sl_source_unit *out)
{
    (void)s, (void)i, (void)k, (void)out;
    return false;
}

static bool gen_stop(struct sl_source *s)
{
    (void)s;
    return true;
}

static void gen_destroy(struct sl_source *s)
{
    struct gen *G = (struct gen *)s;
    free(G->cfg);
    free(G->g);
    free(G);
}

static const struct sl_source_ops gen_ops = {
    .kind = "generator", .nlines = gen_nlines, .start = gen_start, .collect = gen_collect,
    .poll_errors = gen_poll_errors, .check = NULL, .log_counters = gen_log_counters,
    .line = gen_line, .unit = gen_unit, .stop = gen_stop, .destroy = gen_destroy,
};

sl_err sl_source_generator_open(struct sl_source **out, const struct sl_txconf *cfg)
{
    *out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < cfg->ndevices; i++)
        n += cfg->devices[i].protocol == SL_TXCONF_GENERATOR;
    if (n == 0)
        return SL_OK;
    struct gen *G = calloc(1, sizeof *G);
    if (G) {
        G->cfg = calloc(n, sizeof *G->cfg);
        G->g = calloc(n, sizeof *G->g);
    }
    if (!G || !G->cfg || !G->g) {
        if (G)
            gen_destroy(&G->base);
        sl_log(SL_LOG_ERR, "out of memory");
        return SL_ERR_NOMEM;
    }
    G->base.ops = &gen_ops;
    for (size_t i = 0; i < cfg->ndevices; i++)
        if (cfg->devices[i].protocol == SL_TXCONF_GENERATOR)
            G->cfg[G->n++] = &cfg->devices[i];
    *out = &G->base;
    return SL_OK;
}

/* ---- the set --------------------------------------------------------------- */

sl_err sl_sources_open(struct sl_sources *set, const struct sl_txconf *cfg, int wake_fd)
{
    memset(set, 0, sizeof *set);
    struct sl_source *s = NULL;
    sl_err e = sl_source_modbus_open(&s, cfg, wake_fd);
    if (s)
        set->s[set->n++] = s;
    if (e == SL_OK && (e = sl_source_generator_open(&s, cfg)) == SL_OK && s)
        set->s[set->n++] = s;
    return e;
}

sl_err sl_sources_start(struct sl_sources *set, uint64_t now_us)
{
    for (size_t i = 0; i < set->n; i++) {
        sl_err e = set->s[i]->ops->start(set->s[i], now_us);
        if (e != SL_OK)
            return e;
    }
    return SL_OK;
}

uint64_t sl_sources_collect(struct sl_sources *set, struct sl_snapshot *snap, uint64_t now_us)
{
    uint64_t wake = UINT64_MAX;
    for (size_t i = 0; i < set->n; i++) {
        uint64_t t = set->s[i]->ops->collect(set->s[i], snap, now_us);
        if (t < wake)
            wake = t;
    }
    return wake;
}

uint64_t sl_sources_poll_errors(const struct sl_sources *set)
{
    uint64_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += set->s[i]->ops->poll_errors(set->s[i]);
    return n;
}

void sl_sources_check(struct sl_sources *set, uint64_t now_us)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->s[i]->ops->check)
            set->s[i]->ops->check(set->s[i], now_us);
}

void sl_sources_log_counters(struct sl_sources *set, const struct sl_snapshot *snap,
                             uint64_t now_us, bool final)
{
    for (size_t i = 0; i < set->n; i++)
        set->s[i]->ops->log_counters(set->s[i], snap, now_us, final);
}

/* Maps a line number across sources to (source, its own line number). */
static const struct sl_source *line_owner(const struct sl_sources *set, size_t *i)
{
    for (size_t j = 0; j < set->n; j++) {
        size_t n = set->s[j]->ops->nlines(set->s[j]);
        if (*i < n)
            return set->s[j];
        *i -= n;
    }
    return NULL;
}

bool sl_sources_line(const struct sl_sources *set, size_t i, struct sl_source_line *out)
{
    const struct sl_source *s = line_owner(set, &i);
    return s && s->ops->line(s, i, out);
}

bool sl_sources_unit(const struct sl_sources *set, size_t i, size_t k, struct sl_source_unit *out)
{
    const struct sl_source *s = line_owner(set, &i);
    return s && s->ops->unit(s, i, k, out);
}

bool sl_sources_stop(struct sl_sources *set)
{
    bool all = true;
    for (size_t i = 0; i < set->n; i++)
        all = set->s[i]->ops->stop(set->s[i]) && all;
    return all;
}

void sl_sources_free(struct sl_sources *set)
{
    for (size_t i = 0; i < set->n; i++)
        set->s[i]->ops->destroy(set->s[i]);
    set->n = 0;
}
